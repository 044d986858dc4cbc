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

import math

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError

from ._kernels import rules as _r
from ._spec import Spec
from ._validation import check_int, check_real

_UNITS = {"update": _r.UNIT_UPDATE, "epoch": _r.UNIT_EPOCH}


class Schedule(Spec):
    """Base class of the learning-rate schedules."""

    _code = None
    _default_unit = "update"

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

    @property
    def counts(self):
        """``"update"`` or ``"epoch"``: what the counter ``t`` counts."""
        return getattr(self, "unit", self._default_unit)

    def __call__(self, t, eta0=1.0):
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

    def __init__(self, lr=None, unit="update"):
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

    def __init__(self, power_t=0.25, lr=None, unit="update"):
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

    def __init__(self, alpha=None):
        self.alpha = alpha
        self.lr = None

    def get_params(self, deep=True):
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

    def __init__(self, step_size, gamma=0.1, lr=None, unit="epoch"):
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

    def __init__(self, milestones, gamma=0.1, lr=None, unit="epoch"):
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

    def __init__(self, gamma, lr=None, unit="epoch"):
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

    def __init__(self, T_max, eta_min=0.0, lr=None, unit="epoch"):
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

    def __init__(self, T_0, T_mult=1, eta_min=0.0, lr=None, unit="epoch"):
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

    def __init__(self, total_steps, pct_start=0.3, anneal_strategy="cos", div_factor=25.0,
                 final_div_factor=1e4, lr=None, unit="update"):
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

    def __init__(self, warmup_steps, lr=None, unit="update"):
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

    def __init__(self, schedule, warmup_steps, start_factor=0.0):
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.start_factor = start_factor

    @property
    def counts(self):
        return _inner(self.schedule).counts

    @property
    def lr(self):
        return _inner(self.schedule).lr

    def _lower(self, eta0=1.0, context=None):
        inner = _inner(self.schedule)
        if isinstance(inner, Warmup):
            raise ValueError("Warmup cannot wrap another Warmup.")
        code, sp, unit = inner._lower(eta0, context)
        sp[1] = float(check_int("Warmup", "warmup_steps", self.warmup_steps, low=0))
        sp[2] = check_real("Warmup", "start_factor", self.start_factor, low=0.0, high=1.0)
        return code, sp, unit


def _inner(schedule):
    if isinstance(schedule, Schedule):
        return schedule
    if schedule == "constant":
        return Constant()
    if schedule == "invscaling":
        return InverseScaling()
    raise InvalidParameterError(
        "The 'schedule' parameter of Warmup must be a fastgd.schedules.Schedule, "
        f"'constant' or 'invscaling'; got {schedule!r}."
    )


SKLEARN_NAMES = ("constant", "optimal", "invscaling", "adaptive")


def resolve(learning_rate, power_t=0.25, alpha=None):
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
]
