"""Lowering: estimator options -> plain integers and float arrays for the kernels.

Everything a kernel needs to know about *how* to train is decided here, once per
``fit``/``partial_fit`` call, so that the compiled loops see only numbers (one
specialization per dtype and layout, no recompilation when a hyper-parameter changes).
"""

from dataclasses import dataclass

import numpy as np

from . import optim as _optim
from . import schedules as _sched
from ._kernels import rules as _r
from ._kernels.cpu import PEN_ELASTICNET, PEN_L1, PEN_L2, PEN_NONE
from ._warnings import warn

#: loss name -> (code, whether ``epsilon`` is its parameter, fixed parameter otherwise)
LOSSES = {
    "squared_error": (_r.SQUARED_ERROR, True, 0.0),
    "huber": (_r.HUBER, True, 0.0),
    "epsilon_insensitive": (_r.EPSILON_INSENSITIVE, True, 0.0),
    "squared_epsilon_insensitive": (_r.SQUARED_EPSILON_INSENSITIVE, True, 0.0),
    "hinge": (_r.HINGE, False, 1.0),
    "perceptron": (_r.HINGE, False, 0.0),
    "squared_hinge": (_r.SQUARED_HINGE, False, 1.0),
    "modified_huber": (_r.MODIFIED_HUBER, False, 0.0),
    "log_loss": (_r.LOG_LOSS, False, 0.0),
}

PENALTY_CODES = {None: PEN_NONE, "l2": PEN_L2, "l1": PEN_L1, "elasticnet": PEN_ELASTICNET}


@dataclass
class Program:
    """What to run: the lowered options of one fit call."""

    plain: bool  # scikit-learn's per-sample algorithm (epoch_plain)
    batch_size: int  # 0 means "all training rows"
    loss_code: int
    loss_eps: float
    penalty: int
    alpha: float
    l1_ratio: float
    alpha_l2: float  # coefficient of w in the penalty gradient (batch path)
    alpha_l1: float  # coefficient of sign(w)
    opt_code: int
    opt_hp: np.ndarray
    sched_code: int
    sched_sp: np.ndarray
    sched_unit: int
    adaptive: bool
    clip_value: float  # 0: off
    clip_norm: float  # 0: off
    batch_norm: bool
    bn_momentum: float
    bn_eps: float
    average: float  # 0: off
    fit_intercept: bool
    multinomial: bool  # K outputs = logits of one softmax model (log_loss)


def _check_sgd_params(est):
    """The checks scikit-learn's SGD estimators make beyond the parameter constraints,
    with their messages."""
    if est.penalty == "elasticnet" and est.l1_ratio is None:
        raise ValueError("l1_ratio must be set when penalty is 'elasticnet'")
    if est.power_t < 0:
        warn(
            "Negative values for `power_t` are deprecated in version 1.8 and will raise "
            "an error in 1.10. Use values in the range [0.0, inf) instead.",
            FutureWarning,
        )


def lower(est, multinomial=False):
    """Build the :class:`Program` of an estimator whose parameters are validated."""
    _check_sgd_params(est)
    loss_code, uses_epsilon, fixed = LOSSES[est.loss]
    loss_eps = float(est.epsilon) if uses_epsilon else fixed
    penalty = PENALTY_CODES[est.penalty]
    alpha = float(est.alpha)
    l1_ratio = float(est.l1_ratio) if est.l1_ratio is not None else 0.0
    if penalty == PEN_L2:
        rho = 0.0
    elif penalty == PEN_L1:
        rho = 1.0
    elif penalty == PEN_ELASTICNET:
        rho = l1_ratio
    else:
        rho = 0.0
    a = alpha if penalty != PEN_NONE else 0.0

    optimizer = _optim.resolve(est.optimizer)
    opt_code, opt_hp = optimizer._lower()

    schedule = _sched.resolve(est.learning_rate, power_t=est.power_t, alpha=None)
    context = {"alpha": alpha, "loss_code": loss_code, "loss_eps": loss_eps}
    if isinstance(schedule, _sched.Optimal) and schedule.alpha is None and alpha == 0.0:
        raise ValueError(
            "alpha must be > 0 since learning_rate is 'optimal'. alpha is used to "
            "compute the optimal learning rate."
        )
    sched_code, sched_sp, sched_unit = schedule._lower(float(est.eta0), context)

    bs = est.batch_size
    batch_size = 0 if bs is None or bs == "full" else int(bs)
    clip_value = float(est.clip_value) if est.clip_value is not None else 0.0
    clip_norm = float(est.clip_norm) if est.clip_norm is not None else 0.0
    plain = (
        not multinomial
        and batch_size == 1
        and opt_code == _r.OPT_SGD
        and opt_hp[0] == 0.0
        and clip_value == 0.0
        and clip_norm == 0.0
        and not est.batch_norm
    )
    average = float(est.average) if est.average else 0.0
    return Program(
        plain=plain,
        batch_size=batch_size,
        loss_code=loss_code,
        loss_eps=loss_eps,
        penalty=penalty,
        alpha=alpha,
        l1_ratio=l1_ratio,
        alpha_l2=a * (1.0 - rho),
        alpha_l1=a * rho,
        opt_code=opt_code,
        opt_hp=opt_hp,
        sched_code=sched_code,
        sched_sp=sched_sp,
        sched_unit=sched_unit,
        adaptive=est.learning_rate == "adaptive",
        clip_value=clip_value,
        clip_norm=clip_norm,
        batch_norm=bool(est.batch_norm),
        bn_momentum=float(est.bn_momentum),
        bn_eps=float(est.bn_eps),
        average=average,
        fit_intercept=bool(est.fit_intercept),
        multinomial=bool(multinomial),
    )
