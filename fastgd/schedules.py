r"""Learning-rate schedules: *how far* to step at counter ``t``.

Each schedule counts either optimizer **updates** (``unit="update"``) or completed
**epochs** (``unit="epoch"``), over the whole training history (``partial_fit`` calls
continue the count). ``sched(t)`` evaluates the very function the compiled loops call
(:func:`fastgd._kernels.rules.lr_at`), so plots show what training used.

``lr=None`` (the default) means "the estimator's ``eta0``"; evaluated on its own, such
a schedule returns the multiplier of the base rate (base 1.0).

The epoch-unit schedules give, per epoch, the closed forms of
``torch.optim.lr_scheduler`` (``StepLR``, ``MultiStepLR``, ``ExponentialLR``,
``CosineAnnealingLR``, ``CosineAnnealingWarmRestarts``); :class:`OneCycle` is
``OneCycleLR`` (per update, two phases).

Examples
--------
>>> from fastgd.schedules import Cosine, Warmup
>>> sched = Warmup(Cosine(T_max=100, lr=0.1), warmup_steps=5)
>>> round(sched(0), 6), round(sched(5), 6)
(0.0, 0.1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils._param_validation import InvalidParameterError

from ._kernels import rules as _r
from ._spec import Spec
from ._typing import Unit
from ._validation import check_int, check_real

_UNITS = {"update": _r.UNIT_UPDATE, "epoch": _r.UNIT_EPOCH}


class Schedule(Spec):
    """Base class of the learning-rate schedules."""

    _code: int | None = None
    _default_unit: Unit = "update"

    def _check_unit(self):
        unit = getattr(self, "unit", self._default_unit)
        if unit not in _UNITS:
            raise InvalidParameterError(
                f"The 'unit' parameter of {type(self).__name__} must be one of "
                f"{sorted(_UNITS)}; got {unit!r}."
            )
        return _UNITS[unit]

    def _base(self, eta0):
        lr = self.lr if self.lr is not None else eta0
        return check_real(type(self).__name__, "lr", lr, low=0.0, low_open=True)

    def _lower(self, eta0=1.0, context=None):
        """Validate; return ``(code, sp, unit)`` for the kernels (see ``rules``)."""
        sp = [self._base(eta0), 0.0, 0.0] + list(self._extra(context or {}))
        return self._code, np.asarray(sp, dtype=np.float64), self._check_unit()

    def _extra(self, context):
        return []

    def _host_rate(self, eta0=1.0):
        """``epoch -> rate`` computed on the host once per epoch, or None (the kernels
        evaluate the schedule themselves)."""
        return None

    @property
    def counts(self) -> Unit:
        """``"update"`` or ``"epoch"``: what the counter ``t`` counts."""
        return getattr(self, "unit", self._default_unit)

    def __call__(self, t: float | ArrayLike, eta0: float = 1.0) -> float | np.ndarray:
        """Learning rate at counter ``t`` (a number or an array of counters)."""
        code, sp, _ = self._lower(eta0)
        if np.ndim(t) == 0:
            return float(_r.lr_at(code, sp, float(t)))
        return np.array([_r.lr_at(code, sp, float(v)) for v in np.ravel(t)]).reshape(
            np.shape(t)
        )


class Constant(Schedule):
    r""":math:`\eta_t = \eta_0`.

    Parameters
    ----------
    lr : float or None, default=None
    unit : {"update", "epoch"}, default="update"
    """

    _code = _r.SCHED_CONSTANT

    def __init__(self, lr: float | None = None, unit: Unit = "update") -> None:
        self.lr = lr
        self.unit = unit


class InverseScaling(Schedule):
    r"""scikit-learn's ``"invscaling"``: :math:`\eta_t = \eta_0 / (t+1)^{p}`.

    Parameters
    ----------
    power_t : float, default=0.25
    lr : float or None, default=None
    unit : {"update", "epoch"}, default="update"
    """

    _code = _r.SCHED_INVSCALING

    def __init__(self, power_t: float = 0.25, lr: float | None = None,
                 unit: Unit = "update") -> None:
        self.power_t = power_t
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        return [check_real("InverseScaling", "power_t", self.power_t)]


class Optimal(Schedule):
    r"""scikit-learn's ``"optimal"`` rate (Bottou): :math:`\eta_t = 1/(\alpha(t_0 + t))`.

    :math:`t_0 = 1/(\alpha \eta_{init})` with :math:`\eta_{init} = u / \max(1, \ell'(-u, 1))`,
    :math:`u = \sqrt{1/\sqrt{\alpha}}`; ``alpha`` and the loss come from the estimator.
    ``lr`` is not used.

    Parameters
    ----------
    alpha : float or None, default=None
        Regularization strength; ``None`` takes the estimator's ``alpha``.
    """

    _code = _r.SCHED_OPTIMAL

    def __init__(self, alpha: float | None = None) -> None:
        self.alpha = alpha
        self.lr = None

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def _base(self, eta0):
        return 1.0

    def _extra(self, context):
        alpha = self.alpha if self.alpha is not None else context.get("alpha", 1e-4)
        alpha = check_real("Optimal", "alpha", alpha, low=0.0, low_open=True)
        loss_code = context.get("loss_code", _r.SQUARED_ERROR)
        loss_eps = context.get("loss_eps", 0.1)
        typw = math.sqrt(1.0 / math.sqrt(alpha))
        initial_eta0 = typw / max(1.0, _r.loss_dloss(loss_code, -typw, 1.0, loss_eps))
        return [alpha, 1.0 / (initial_eta0 * alpha)]


class Step(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^{\lfloor t / s \rfloor}` (``StepLR``).

    Parameters
    ----------
    step_size : int
    gamma : float, default=0.1
    lr : float or None, default=None
    unit : {"epoch", "update"}, default="epoch"
    """

    _code = _r.SCHED_STEP
    _default_unit = "epoch"

    def __init__(self, step_size: int, gamma: float = 0.1, lr: float | None = None,
                 unit: Unit = "epoch") -> None:
        self.step_size = step_size
        self.gamma = gamma
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        return [float(check_int("Step", "step_size", self.step_size, low=1)),
                check_real("Step", "gamma", self.gamma, low=0.0)]


class MultiStep(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^{|\{m \in \text{milestones}: m \le t\}|}` (``MultiStepLR``).

    Parameters
    ----------
    milestones : sequence of int
    gamma : float, default=0.1
    lr : float or None, default=None
    unit : {"epoch", "update"}, default="epoch"
    """

    _code = _r.SCHED_MULTISTEP
    _default_unit = "epoch"

    def __init__(self, milestones: Sequence[int], gamma: float = 0.1,
                 lr: float | None = None, unit: Unit = "epoch") -> None:
        self.milestones = milestones
        self.gamma = gamma
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        try:
            ms = sorted(int(check_int("MultiStep", "milestones", m, low=0))
                        for m in self.milestones)
        except TypeError:
            raise InvalidParameterError(
                "The 'milestones' parameter of MultiStep must be a sequence of ints; "
                f"got {self.milestones!r}."
            ) from None
        return [check_real("MultiStep", "gamma", self.gamma, low=0.0), float(len(ms))] + [
            float(m) for m in ms
        ]


class Exponential(Schedule):
    r""":math:`\eta_t = \eta_0\,\gamma^t` (``ExponentialLR``).

    Parameters
    ----------
    gamma : float
    lr : float or None, default=None
    unit : {"epoch", "update"}, default="epoch"
    """

    _code = _r.SCHED_EXPONENTIAL
    _default_unit = "epoch"

    def __init__(self, gamma: float, lr: float | None = None, unit: Unit = "epoch") -> None:
        self.gamma = gamma
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        return [check_real("Exponential", "gamma", self.gamma, low=0.0)]


class Cosine(Schedule):
    r"""Cosine annealing (``CosineAnnealingLR`` closed form).

    :math:`\eta_t = \eta_{min} + (\eta_0 - \eta_{min})\,(1 + \cos(\pi t / T_{max}))/2`.
    Past ``T_max`` the cosine continues (as PyTorch's closed form).

    Parameters
    ----------
    T_max : int
    eta_min : float, default=0
    lr : float or None, default=None
    unit : {"epoch", "update"}, default="epoch"
    """

    _code = _r.SCHED_COSINE
    _default_unit = "epoch"

    def __init__(self, T_max: int, eta_min: float = 0.0, lr: float | None = None,
                 unit: Unit = "epoch") -> None:
        self.T_max = T_max
        self.eta_min = eta_min
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        return [float(check_int("Cosine", "T_max", self.T_max, low=1)),
                check_real("Cosine", "eta_min", self.eta_min, low=0.0)]


class CosineWarmRestarts(Schedule):
    r"""SGDR (``CosineAnnealingWarmRestarts``): cosine cycles of length
    :math:`T_0, T_0 T_{mult}, T_0 T_{mult}^2, \dots`.

    Parameters
    ----------
    T_0 : int
    T_mult : int, default=1
    eta_min : float, default=0
    lr : float or None, default=None
    unit : {"epoch", "update"}, default="epoch"
    """

    _code = _r.SCHED_COSINE_RESTARTS
    _default_unit = "epoch"

    def __init__(self, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 lr: float | None = None, unit: Unit = "epoch") -> None:
        self.T_0 = T_0
        self.T_mult = T_mult
        self.eta_min = eta_min
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        name = "CosineWarmRestarts"
        return [float(check_int(name, "T_0", self.T_0, low=1)),
                float(check_int(name, "T_mult", self.T_mult, low=1)),
                check_real(name, "eta_min", self.eta_min, low=0.0)]


class OneCycle(Schedule):
    r"""One-cycle policy (Smith), as ``OneCycleLR`` with ``three_phase=False``.

    The rate rises from ``lr/div_factor`` to ``lr`` over the first
    ``pct_start * total_steps - 1`` steps, then anneals to
    ``lr/(div_factor*final_div_factor)`` at step ``total_steps - 1`` and stays there.

    Parameters
    ----------
    total_steps : int
    pct_start : float, default=0.3
    anneal_strategy : {"cos", "linear"}, default="cos"
    div_factor : float, default=25
    final_div_factor : float, default=1e4
    lr : float or None, default=None
        The peak (PyTorch's ``max_lr``).
    unit : {"update", "epoch"}, default="update"
    """

    _code = _r.SCHED_ONECYCLE

    def __init__(self, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: Literal["cos", "linear"] = "cos", div_factor: float = 25.0,
                 final_div_factor: float = 1e4, lr: float | None = None,
                 unit: Unit = "update") -> None:
        self.total_steps = total_steps
        self.pct_start = pct_start
        self.anneal_strategy = anneal_strategy
        self.div_factor = div_factor
        self.final_div_factor = final_div_factor
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        name = "OneCycle"
        total = check_int(name, "total_steps", self.total_steps, low=2)
        pct = check_real(name, "pct_start", self.pct_start, low=0.0, high=1.0,
                         low_open=True, high_open=True)
        if self.anneal_strategy not in ("cos", "linear"):
            raise InvalidParameterError(
                "The 'anneal_strategy' parameter of OneCycle must be one of "
                f"['cos', 'linear']; got {self.anneal_strategy!r}."
            )
        end1 = pct * total - 1.0
        if not 0.0 < end1 < total - 1.0:
            raise ValueError(
                f"OneCycle: pct_start * total_steps - 1 = {end1} must lie strictly "
                f"between 0 and total_steps - 1 = {total - 1}."
            )
        return [float(total), pct, 1.0 if self.anneal_strategy == "cos" else 0.0,
                check_real(name, "div_factor", self.div_factor, low=0.0, low_open=True),
                check_real(name, "final_div_factor", self.final_div_factor, low=0.0,
                           low_open=True)]


class InverseSqrt(Schedule):
    r"""Transformer schedule (Vaswani et al.): linear rise, then :math:`\propto 1/\sqrt{t}`.

    :math:`\eta_t = \eta_0 \sqrt{W}\,\min((t+1)^{-1/2}, (t+1) W^{-3/2})`, so the peak
    :math:`\eta_0` is reached at :math:`t + 1 = W`.

    Parameters
    ----------
    warmup_steps : int
    lr : float or None, default=None
    unit : {"update", "epoch"}, default="update"
    """

    _code = _r.SCHED_INVSQRT

    def __init__(self, warmup_steps: int, lr: float | None = None,
                 unit: Unit = "update") -> None:
        self.warmup_steps = warmup_steps
        self.lr = lr
        self.unit = unit

    def _extra(self, context):
        return [float(check_int("InverseSqrt", "warmup_steps", self.warmup_steps, low=1))]


class Warmup(Schedule):
    r"""Linear warm-up in front of any schedule.

    For :math:`t < W`: :math:`\eta_t = \text{inner}(0)\,(f + (1-f)\,t/W)`; afterwards
    :math:`\eta_t = \text{inner}(t - W)`. Counts in the inner schedule's unit.

    Parameters
    ----------
    schedule : Schedule or str
        The inner schedule (``"constant"`` or ``"invscaling"`` also accepted).
    warmup_steps : int
    start_factor : float, default=0
    """

    def __init__(self, schedule: Schedule | Literal["constant", "invscaling"],
                 warmup_steps: int, start_factor: float = 0.0) -> None:
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.start_factor = start_factor

    @property
    def counts(self) -> Unit:
        return _inner(self.schedule).counts

    @property
    def lr(self) -> float | None:
        return _inner(self.schedule).lr

    def _lower(self, eta0=1.0, context=None):
        inner = _inner(self.schedule)
        if isinstance(inner, Warmup):
            raise ValueError("Warmup cannot wrap another Warmup.")
        if isinstance(inner, Lambda):
            raise ValueError("Warmup cannot wrap a Lambda schedule: write the warm-up "
                             "into its function.")
        code, sp, unit = inner._lower(eta0, context)
        sp[1] = float(check_int("Warmup", "warmup_steps", self.warmup_steps, low=0))
        sp[2] = check_real("Warmup", "start_factor", self.start_factor, low=0.0, high=1.0)
        return code, sp, unit


class Sequential(Schedule):
    r"""Schedules one after another (PyTorch's ``SequentialLR``, optax's
    ``join_schedules``).

    With milestones :math:`m_1 < \dots < m_{k-1}` (and :math:`m_0 = 0`), the rate at
    :math:`m_{i} \le t < m_{i+1}` is that of ``schedules[i]`` at :math:`t - m_i`: each
    schedule starts its own count at its milestone, from its own base rate (its ``lr``,
    or ``eta0``). Every schedule counts in the same unit, which is the sequence's; the
    milestones are in that unit.

    Parameters
    ----------
    schedules : sequence of Schedule
        At least one; ``"constant"`` and ``"invscaling"`` are accepted too. Neither
        another ``Sequential`` (flatten it) nor a :class:`Lambda` (write the whole
        sequence into its function).
    milestones : sequence of int
        ``len(schedules) - 1`` strictly increasing counts, the first >= 1.

    Examples
    --------
    >>> from fastgd.schedules import Constant, Cosine, Sequential, Step, Warmup
    >>> warm_cos = Sequential([Warmup(Constant(unit="epoch"), warmup_steps=5,
    ...                               start_factor=0.1), Cosine(T_max=45)], milestones=[5])
    >>> [round(warm_cos(t, eta0=0.1), 4) for t in (0, 4, 5, 50)]
    [0.01, 0.082, 0.1, 0.0]
    >>> then_step = Sequential([Cosine(T_max=50), Step(step_size=10, gamma=0.5, lr=0.01)],
    ...                        milestones=[50])
    >>> [round(then_step(t, eta0=0.1), 4) for t in (49, 50, 60)]
    [0.0001, 0.01, 0.005]
    """

    def __init__(self, schedules: Sequence[Schedule | Literal["constant", "invscaling"]],
                 milestones: Sequence[int]) -> None:
        self.schedules = schedules
        self.milestones = milestones

    def _parts(self):
        """The validated ``(schedules, milestones)``."""
        for name in ("schedules", "milestones"):
            value = getattr(self, name)
            if isinstance(value, (str, Schedule)) or not hasattr(value, "__iter__"):
                raise InvalidParameterError(
                    f"The '{name}' parameter of Sequential must be a sequence; got "
                    f"{value!r}."
                )
        scheds = [_inner(s, "Sequential") for s in self.schedules]
        ms = [check_int("Sequential", "milestones", m, low=1) for m in self.milestones]
        if not scheds:
            raise ValueError("Sequential needs at least one schedule.")
        if len(ms) != len(scheds) - 1:
            raise ValueError(
                f"Sequential needs one milestone fewer than schedules; got "
                f"{len(scheds)} schedules and {len(ms)} milestones."
            )
        if any(b <= a for a, b in zip(ms, ms[1:])):
            raise ValueError(f"Sequential's milestones must increase strictly; got {ms}.")
        for s in scheds:
            if isinstance(s, (Sequential, Lambda)) or (
                    isinstance(s, Warmup) and isinstance(_inner(s.schedule), Sequential)):
                raise ValueError(
                    f"Sequential cannot hold a {type(s).__name__} schedule"
                    + (": flatten the sequences into one." if not isinstance(s, Lambda)
                       else ": write the whole sequence into the Lambda's function.")
                )
        units = {s.counts for s in scheds}
        if len(units) > 1:
            raise ValueError(
                "Sequential's schedules must count in one unit; got "
                + ", ".join(f"{type(s).__name__} ({s.counts})" for s in scheds) + "."
            )
        return scheds, ms

    @property
    def counts(self) -> Unit:
        return self._parts()[0][0].counts

    @property
    def lr(self) -> None:
        return None

    def _lower(self, eta0=1.0, context=None):
        scheds, ms = self._parts()
        blocks = [s._lower(eta0, context) for s in scheds]
        k = len(blocks)
        head = [float(blocks[0][1][0]), 0.0, 0.0, float(k)] + [float(m) for m in ms]
        offset = len(head) + 2 * k
        tail = []
        for code, sp, _ in blocks:
            head += [float(code), float(offset)]
            tail += list(sp)
            offset += len(sp)
        return _r.SCHED_SEQUENTIAL, np.asarray(head + tail, dtype=np.float64), blocks[0][2]


class Lambda(Schedule):
    r"""A rate from your own function of the epoch (PyTorch's ``LambdaLR``).

    :math:`\eta_e = \eta_0\, f(e)` for epoch :math:`e = 0, 1, \dots` (counted over the
    whole training history, as the other epoch-unit schedules). ``fn`` is called on
    the host once per epoch and its rate handed to the compiled loop as a number, so
    any Python function works and nothing is recompiled. It must return a finite
    float >= 0.

    A ``lambda`` (or a closure) cannot be pickled: an estimator holding one cannot be
    pickled or sent to Dask workers by the standard pickler. Define ``fn`` with
    ``def`` at module level to keep the estimator picklable.

    Parameters
    ----------
    fn : callable
        ``fn(epoch: int) -> float``, the multiplier of the base rate.
    lr : float or None, default=None
        The base rate :math:`\eta_0`; None takes the estimator's ``eta0``.

    Examples
    --------
    >>> from fastgd.schedules import Lambda
    >>> def halve_every_10(epoch):
    ...     return 0.5 ** (epoch // 10)
    >>> sched = Lambda(halve_every_10, lr=0.1)
    >>> sched.counts, sched(0), sched(25)
    ('epoch', 0.1, 0.025)
    """

    _code = _r.SCHED_CONSTANT
    _default_unit = "epoch"

    def __init__(self, fn: Callable[[int], float], lr: float | None = None) -> None:
        self.fn = fn
        self.lr = lr

    def _check_fn(self):
        if not callable(self.fn):
            raise InvalidParameterError(
                f"The 'fn' parameter of Lambda must be a callable; got {self.fn!r}."
            )

    def _lower(self, eta0=1.0, context=None):
        # the kernels see a constant 0: every epoch's rate arrives from the host (a rate
        # of 0 from fn then also means 0)
        self._check_fn()
        self._base(eta0)
        return _r.SCHED_CONSTANT, np.zeros(3, dtype=np.float64), _r.UNIT_EPOCH

    def _host_rate(self, eta0=1.0):
        self._check_fn()
        return _LambdaRate(self.fn, self._base(eta0))

    def __call__(self, t: float | ArrayLike, eta0: float = 1.0) -> float | np.ndarray:
        """Learning rate at epoch ``t`` (a number or an array of epochs)."""
        rate = self._host_rate(eta0)
        if np.ndim(t) == 0:
            return rate(int(t))
        return np.array([rate(int(v)) for v in np.ravel(t)]).reshape(np.shape(t))


class _LambdaRate:
    """``epoch -> base * fn(epoch)``, checked (picklable when ``fn`` is)."""

    def __init__(self, fn, base):
        self.fn = fn
        self.base = base

    def __call__(self, epoch):
        value = self.fn(int(epoch))
        try:
            factor = float(value)
        except (TypeError, ValueError):
            factor = math.nan
        if not (math.isfinite(factor) and factor >= 0.0):
            raise ValueError(
                f"The function of the Lambda schedule returned {value!r} at epoch "
                f"{int(epoch)}; it must return a finite float >= 0."
            )
        return self.base * factor


def _inner(schedule, owner="Warmup"):
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str) and schedule == "constant":
        return Constant()
    if isinstance(schedule, str) and schedule == "invscaling":
        return InverseScaling()
    what = ("'schedule' parameter of Warmup must be" if owner == "Warmup"
            else "'schedules' parameter of Sequential must hold")
    raise InvalidParameterError(
        f"The {what} a fastgd.schedules.Schedule, 'constant' or 'invscaling'; "
        f"got {schedule!r}."
    )


SKLEARN_NAMES = ("constant", "optimal", "invscaling", "adaptive")


def resolve(learning_rate: str | Schedule, power_t: float = 0.25,
            alpha: float | None = None) -> Schedule:
    """Map the estimator's ``learning_rate`` to a :class:`Schedule` (``adaptive`` too)."""
    if isinstance(learning_rate, Schedule):
        return learning_rate
    if learning_rate == "constant" or learning_rate == "adaptive":
        return Constant()
    if learning_rate == "invscaling":
        return InverseScaling(power_t=power_t)
    if learning_rate == "optimal":
        return Optimal(alpha=alpha)
    raise InvalidParameterError(
        f"The 'learning_rate' parameter must be one of {list(SKLEARN_NAMES)} or a "
        f"fastgd.schedules.Schedule; got {learning_rate!r}."
    )


__all__ = [
    "Schedule", "Constant", "InverseScaling", "Optimal", "Step", "MultiStep",
    "Exponential", "Cosine", "CosineWarmRestarts", "OneCycle", "InverseSqrt", "Warmup",
    "Sequential", "Lambda",
]
