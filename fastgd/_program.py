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
from ._kernels.bundles import KernelProgram, OutputParams
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
    # ``epoch -> rate`` evaluated on the host before each epoch (a Lambda schedule), or
    # None; its rate reaches the kernels as ``eta_fixed``, so nothing recompiles
    host_lr: object = None
    # per-output hyper-parameters of several models trained in one pass (the CV
    # estimators); None: every output takes the scalars above
    outputs: OutputParams = None


    def per_output(self, n_outputs):
        """The per-output hyper-parameters (:class:`~fastgd._kernels.bundles.
        OutputParams`) of ``n_outputs`` outputs: ``outputs`` when set, else this
        program's values for every output."""
        k = int(n_outputs)
        if self.outputs is not None:
            if self.outputs.alpha.shape[0] != k:
                raise ValueError(f"the program holds hyper-parameters of "
                                 f"{self.outputs.alpha.shape[0]} outputs, not {k}")
            return self.outputs

        def full(value):
            return np.full(k, float(value), dtype=np.float64)

        def rows(values):
            return np.ascontiguousarray(np.tile(np.asarray(values, dtype=np.float64),
                                                (k, 1)))

        return OutputParams(
            alpha=full(self.alpha), l1_ratio=full(self.l1_ratio),
            alpha_l2=full(self.alpha_l2), alpha_l1=full(self.alpha_l1),
            loss_eps=full(self.loss_eps), clip_value=full(self.clip_value),
            clip_norm=full(self.clip_norm), opt_hp=rows(self.opt_hp),
            sched_sp=rows(self.sched_sp))

    def kernel_program(self, X, n_train, n_outputs=1, n_targets=None):
        """The :class:`~fastgd._kernels.bundles.KernelProgram` of a fit on ``X`` (a
        dense array or a CSR tuple) over ``n_train`` rows for ``n_outputs`` outputs of
        ``n_targets`` target columns (None: one per output). Every field has a fixed
        type, so that no value causes a compile."""
        dense = isinstance(X, np.ndarray)
        dtype = X.dtype if dense else X[0].dtype
        per = self.per_output(n_outputs)
        return KernelProgram(
            batch_size=int(self.batch_size if self.batch_size > 0 else max(n_train, 1)),
            fit_intercept=bool(self.fit_intercept), multinomial=bool(self.multinomial),
            n_targets=int(n_outputs if n_targets is None else n_targets),
            loss_code=int(self.loss_code), loss_eps=per.loss_eps,
            penalty=int(self.penalty), alpha=per.alpha, l1_ratio=per.l1_ratio,
            alpha_l2=per.alpha_l2, alpha_l1=per.alpha_l1, clip_value=per.clip_value,
            clip_norm=per.clip_norm, opt_code=int(self.opt_code), opt_hp=per.opt_hp,
            sched_code=int(self.sched_code), sched_sp=per.sched_sp,
            sched_unit=int(self.sched_unit), average=float(self.average),
            batch_norm=bool(self.batch_norm), bn_momentum=float(self.bn_momentum),
            bn_eps=float(self.bn_eps),
            # scikit-learn's decay of sparse intercept updates; its wscale floor
            intercept_decay=1.0 if dense else 0.01,
            wscale_threshold=1e-9 if dtype == np.float64 else 1e-6,
        )


def resolve_rate(est, optimizer):
    """``(learning_rate, eta0)`` of a fit: what the user set, else the optimizer's defaults.

    ``None`` means "what the chosen optimizer expects": for plain SGD scikit-learn's
    defaults (the estimator's ``_sklearn_learning_rate`` and ``eta0=0.01``, so that
    ``optimizer="sgd"`` stays ``SGDRegressor``/``SGDClassifier``); for the other rules
    a constant rate at ``torch.optim``'s default ``lr`` (``Optimizer.default_lr``).
    """
    torch_lr = optimizer.default_lr
    learning_rate = est.learning_rate
    if learning_rate is None:
        learning_rate = est._sklearn_learning_rate if torch_lr is None else "constant"
    eta0 = est.eta0
    if eta0 is None:
        eta0 = 0.01 if torch_lr is None else torch_lr
    return learning_rate, float(eta0)


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

    learning_rate, eta0 = resolve_rate(est, optimizer)
    schedule = _sched.resolve(learning_rate, power_t=est.power_t, alpha=None)
    context = {"alpha": alpha, "loss_code": loss_code, "loss_eps": loss_eps}
    if isinstance(schedule, _sched.Optimal) and schedule.alpha is None and alpha == 0.0:
        raise ValueError(
            "alpha must be > 0 since learning_rate is 'optimal'. alpha is used to "
            "compute the optimal learning rate."
        )
    sched_code, sched_sp, sched_unit = schedule._lower(eta0, context)

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
        adaptive=learning_rate == "adaptive",
        clip_value=clip_value,
        clip_norm=clip_norm,
        batch_norm=bool(est.batch_norm),
        bn_momentum=float(est.bn_momentum),
        bn_eps=float(est.bn_eps),
        average=average,
        fit_intercept=bool(est.fit_intercept),
        multinomial=bool(multinomial),
        host_lr=schedule._host_rate(eta0),
    )
