"""``fastgd.minimize``: the optimizers and schedules on a user's own objective."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from numba import njit
from numba.core.registry import CPUDispatcher
from sklearn.utils._param_validation import InvalidParameterError

from . import optim as _optim
from . import schedules as _sched
from ._kernels import cpu
from ._kernels import rules
from ._typing import OptimizerName
from ._validation import check_int, check_real

if TYPE_CHECKING:
    from scipy.optimize import OptimizeResult


@njit(fastmath=cpu.FASTMATH)
def _loop(grad, x, n_steps, opt_code, hp, state, sched_code, sp, clip_value,
          clip_norm, traj, lrs, norms):
    """Compiled once per gradient function (it is an argument, so not cached)."""
    n = x.shape[0]
    g = np.empty(n, dtype=np.float64)
    for s in range(n_steps):
        gs = grad(x)
        for j in range(n):
            g[j] = gs[j]
        norms[s] = cpu.clip_gradient(g, n, clip_value, clip_norm)
        lr = cpu.lr_at(sched_code, sp, float(s))
        lrs[s] = lr
        cpu.opt_update(opt_code, hp, state, s + 1, lr, x, g, n, n)
        for j in range(n):
            traj[s + 1, j] = x[j]
        for j in range(n):
            if not math.isfinite(x[j]):
                return s + 1
    return n_steps


def _loop_python(grad, x, n_steps, opt_code, hp, state, sched_code, sp, clip_value,
                 clip_norm, traj, lrs, norms):
    """The same loop, interpreted, for a gradient that is a plain Python callable."""
    n = x.shape[0]
    for s in range(n_steps):
        g = np.array(grad(x), dtype=np.float64).reshape(-1)
        if g.shape[0] != n:
            raise ValueError(
                f"grad returned an array of length {g.shape[0]}; expected {n}."
            )
        norms[s] = rules.clip_gradient(g, n, clip_value, clip_norm)
        lr = rules.lr_at(sched_code, sp, float(s))
        lrs[s] = lr
        rules.opt_update(opt_code, hp, state, s + 1, lr, x, g, n, n)
        traj[s + 1] = x
        if not np.isfinite(x).all():
            return s + 1
    return n_steps


def minimize(grad: Callable[[np.ndarray], ArrayLike], x0: ArrayLike, *,
             optimizer: OptimizerName | _optim.Optimizer = "sgd",
             learning_rate: float | _sched.Schedule = 0.01, n_steps: int = 100,
             clip_norm: float | None = None,
             clip_value: float | None = None) -> OptimizeResult:
    r"""Minimize a function given its gradient, with any fastgd optimizer and schedule.

    Runs ``n_steps`` updates :math:`x_{k} = \text{step}(x_{k-1}, \nabla f(x_{k-1}))`
    in a compiled loop when ``grad`` is a ``numba.njit`` function (a plain Python
    callable also works, interpreted). In the schedule, each step counts as one update
    and as one epoch. Weight decay of the optimizer applies to every coordinate.

    Parameters
    ----------
    grad : callable
        ``grad(x) -> ndarray`` of the same length as ``x`` (1-D float64).
    x0 : array-like of shape (dim,)
    optimizer : str or fastgd.optim.Optimizer, default="sgd"
    learning_rate : float or fastgd.schedules.Schedule, default=0.01
    n_steps : int, default=100
    clip_norm, clip_value : float or None
        Gradient clipping as in the estimators.

    Returns
    -------
    scipy.optimize.OptimizeResult
        ``x`` (final point), ``nit``, ``trajectory`` of shape ``(nit + 1, dim)`` (the
        start included), ``grad_norms`` (pre-clip, per step), ``lrs`` (per step),
        ``success`` (False if the iterates became non-finite) and ``message``.

    Examples
    --------
    Gradient descent in a ravine, f(x) = 0.1 x1² + 2 x2²:

    >>> import numpy as np, numba
    >>> from fastgd import minimize
    >>> @numba.njit
    ... def grad(x):
    ...     return np.array([0.2 * x[0], 4.0 * x[1]])
    >>> res = minimize(grad, [-5.0, -2.0], learning_rate=0.4, n_steps=20)
    >>> print(f"{res.x[0]:.6f} {res.x[1]:.6f}")
    -0.943467 -0.000073
    """
    from scipy.optimize import OptimizeResult  # lazily: scipy.optimize is slow to import

    x = np.array(x0, dtype=np.float64).reshape(-1)
    if x.size == 0 or not np.isfinite(x).all():
        raise ValueError("x0 must be a non-empty array of finite numbers.")
    if not callable(grad):
        raise TypeError(f"grad must be callable; got {grad!r}.")
    n_steps = check_int("minimize", "n_steps", n_steps, low=0)
    opt = _optim.resolve(optimizer)
    opt_code, hp = opt._lower()
    if isinstance(learning_rate, _sched.Schedule):
        sched_code, sp, _ = learning_rate._lower(1.0)
    elif isinstance(learning_rate, numbers.Real) and not isinstance(learning_rate, bool):
        lr = check_real("minimize", "learning_rate", learning_rate, low=0.0, low_open=True)
        sched_code, sp, _ = _sched.Constant(lr=lr)._lower(lr)
    else:
        raise InvalidParameterError(
            "The 'learning_rate' parameter of minimize must be a positive float or a "
            f"fastgd.schedules.Schedule; got {learning_rate!r}."
        )
    cv = 0.0 if clip_value is None else check_real("minimize", "clip_value", clip_value,
                                                   low=0.0, low_open=True)
    cn = 0.0 if clip_norm is None else check_real("minimize", "clip_norm", clip_norm,
                                                  low=0.0, low_open=True)
    n = x.shape[0]
    state = np.zeros((rules.STATE_ROWS[opt_code], n), dtype=np.float64)
    if opt_code == rules.OPT_ADAGRAD:
        state[0, :] = hp[3]
    traj = np.empty((n_steps + 1, n), dtype=np.float64)
    traj[0] = x
    lrs = np.zeros(n_steps, dtype=np.float64)
    norms = np.zeros(n_steps, dtype=np.float64)
    loop = _loop if isinstance(grad, CPUDispatcher) else _loop_python
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
        nit = int(loop(grad, x, n_steps, opt_code, hp, state, sched_code, sp, cv, cn,
                       traj, lrs, norms))
    success = bool(np.isfinite(x).all())
    return OptimizeResult(
        x=x,
        nit=nit,
        trajectory=traj[: nit + 1].copy(),
        grad_norms=norms[:nit].copy(),
        lrs=lrs[:nit].copy(),
        success=success,
        message=("Completed n_steps updates." if success
                 else f"Iterates became non-finite at step {nit}; lower the learning "
                      "rate or clip the gradient."),
    )
