r"""Update rules: which *direction* to step in.

Names, defaults and formulas follow ``torch.optim``; the learning rate is not a
parameter here -- it comes from the schedule (:mod:`fastgd.schedules`), as in optax.
Every rule works on the flat parameter vector :math:`\theta = (w, b)`; weight decay is
never applied to the intercept :math:`b`. :math:`g` is the (penalized, clipped)
gradient, :math:`\eta_t` the scheduled learning rate and :math:`k` the optimizer's
step number (1 at the first update).

Examples
--------
>>> from fastgd import FastSGDRegressor
>>> from fastgd.optim import Adam
>>> est = FastSGDRegressor(batch_size=32, optimizer=Adam(beta2=0.99))
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import numpy as np

from ._kernels import rules as _r
from ._spec import Spec
from ._validation import check_bool, check_real


class Optimizer(Spec, metaclass=ABCMeta):
    """Base class of the update rules."""

    _code: int | None = None
    #: ``torch.optim``'s default ``lr`` for this rule (torch 2.13): the estimators'
    #: ``eta0`` when it is left at None, with a constant rate. ``None`` (plain
    #: :class:`SGD`): scikit-learn's defaults instead (``eta0=0.01`` and the estimator's
    #: ``learning_rate``), so that ``optimizer="sgd"`` stays ``SGDRegressor``.
    default_lr: float | None = None

    @abstractmethod
    def _hyper(self):
        """Validated hyper-parameters in the layout of ``rules.opt_update``."""

    def _lower(self):
        """Validate and return ``(code, hp)``: integer opcode and float64 array."""
        return self._code, np.asarray(self._hyper(), dtype=np.float64)


def _wd(self):
    return check_real(type(self).__name__, "weight_decay", self.weight_decay, low=0.0)


class SGD(Optimizer):
    r"""Plain gradient step: :math:`\theta \leftarrow \theta - \eta_t (g + \lambda w)`.

    Parameters
    ----------
    weight_decay : float, default=0
        L2 coefficient :math:`\lambda` added to the gradient (as ``torch.optim.SGD``).
        With the estimators prefer ``penalty``/``alpha``, which scikit-learn users know.
    """

    _code = _r.OPT_SGD

    def __init__(self, weight_decay: float = 0.0) -> None:
        self.weight_decay = weight_decay

    def _hyper(self):
        return [_wd(self)]


class Momentum(Optimizer):
    r"""Heavy-ball or Nesterov momentum (``torch.optim.SGD`` with ``momentum > 0``).

    .. math::

        v_1 = g_1,\quad v_k = \mu v_{k-1} + (1-\tau) g_k,\qquad
        \theta \leftarrow \theta - \eta_t \cdot
        \begin{cases} g_k + \mu v_k & \text{nesterov} \\ v_k & \text{otherwise}\end{cases}

    Parameters
    ----------
    momentum : float, default=0.9
        :math:`\mu` in [0, 1). (PyTorch's default is 0, which is plain SGD; use
        :class:`SGD` for that.)
    dampening : float, default=0
        :math:`\tau`; must be 0 with ``nesterov=True`` (as PyTorch).
    nesterov : bool, default=False
    weight_decay : float, default=0
    """

    _code = _r.OPT_MOMENTUM
    default_lr = 1e-3

    def __init__(self, momentum: float = 0.9, dampening: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weight_decay = weight_decay

    def _hyper(self):
        name = type(self).__name__
        mu = check_real(name, "momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        damp = check_real(name, "dampening", self.dampening, low=0.0, high=1.0)
        nest = check_bool(name, "nesterov", self.nesterov)
        if nest and (mu <= 0.0 or damp != 0.0):
            raise ValueError("Nesterov momentum requires momentum > 0 and zero dampening.")
        return [_wd(self), mu, damp, float(nest)]


class Adagrad(Optimizer):
    r"""AdaGrad (Duchi et al., 2011), as ``torch.optim.Adagrad``.

    .. math::

        G \leftarrow G + g^2,\qquad
        \theta \leftarrow \theta - \frac{\eta_t}{1 + (k-1)\,\text{lr\_decay}}
        \frac{g}{\sqrt{G} + \epsilon}

    Parameters
    ----------
    lr_decay : float, default=0
    eps : float, default=1e-10
    initial_accumulator_value : float, default=0
        Starting value of :math:`G`.
    weight_decay : float, default=0
    """

    _code = _r.OPT_ADAGRAD
    default_lr = 1e-2

    def __init__(self, lr_decay: float = 0.0, eps: float = 1e-10,
                 initial_accumulator_value: float = 0.0, weight_decay: float = 0.0) -> None:
        self.lr_decay = lr_decay
        self.eps = eps
        self.initial_accumulator_value = initial_accumulator_value
        self.weight_decay = weight_decay

    def _hyper(self):
        name = type(self).__name__
        return [
            _wd(self),
            check_real(name, "lr_decay", self.lr_decay, low=0.0),
            check_real(name, "eps", self.eps, low=0.0),
            check_real(name, "initial_accumulator_value", self.initial_accumulator_value,
                       low=0.0),
        ]


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), as ``torch.optim.RMSprop``.

    .. math::

        S \leftarrow \alpha S + (1-\alpha) g^2,\quad
        M \leftarrow \alpha M + (1-\alpha) g \ \text{(centered)},\quad
        D = \sqrt{S - M^2} + \epsilon \ \text{or}\ \sqrt{S} + \epsilon

        B \leftarrow \mu B + g / D,\ \theta \leftarrow \theta - \eta_t B
        \quad\text{(momentum } \mu > 0\text{, else } \theta \leftarrow \theta - \eta_t g/D)

    Parameters
    ----------
    alpha : float, default=0.99
    eps : float, default=1e-8
    momentum : float, default=0
    centered : bool, default=False
    weight_decay : float, default=0
    """

    _code = _r.OPT_RMSPROP
    default_lr = 1e-2

    def __init__(self, alpha: float = 0.99, eps: float = 1e-8, momentum: float = 0.0,
                 centered: bool = False, weight_decay: float = 0.0) -> None:
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.centered = centered
        self.weight_decay = weight_decay

    def _hyper(self):
        name = type(self).__name__
        return [
            _wd(self),
            check_real(name, "alpha", self.alpha, low=0.0, high=1.0),
            check_real(name, "eps", self.eps, low=0.0),
            check_real(name, "momentum", self.momentum, low=0.0, high=1.0, high_open=True),
            float(check_bool(name, "centered", self.centered)),
        ]


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    .. math::

        S \leftarrow \rho S + (1-\rho) g^2,\quad
        \Delta = \frac{\sqrt{A + \epsilon}}{\sqrt{S + \epsilon}}\, g,\quad
        A \leftarrow \rho A + (1-\rho)\Delta^2,\quad
        \theta \leftarrow \theta - \eta_t \Delta

    Its default rate is PyTorch's, 1.0 (``eta0=None`` with the estimators).

    Parameters
    ----------
    rho : float, default=0.9
    eps : float, default=1e-6
    weight_decay : float, default=0
    """

    _code = _r.OPT_ADADELTA
    default_lr = 1.0

    def __init__(self, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0) -> None:
        self.rho = rho
        self.eps = eps
        self.weight_decay = weight_decay

    def _hyper(self):
        name = type(self).__name__
        return [
            _wd(self),
            check_real(name, "rho", self.rho, low=0.0, high=1.0),
            check_real(name, "eps", self.eps, low=0.0),
        ]


class Adam(Optimizer):
    r"""Adam (Kingma & Ba, 2015), as ``torch.optim.Adam`` (L2 ``weight_decay``).

    .. math::

        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
        \hat v = \max(\hat v, v)\ \text{(amsgrad)}

        \theta \leftarrow \theta - \frac{\eta_t}{1-\beta_1^k}
        \frac{m}{\sqrt{v}/\sqrt{1-\beta_2^k} + \epsilon}

    Parameters
    ----------
    beta1, beta2 : float, default=0.9, 0.999
    eps : float, default=1e-8
    amsgrad : bool, default=False
    weight_decay : float, default=0
        Added to the gradient (coupled L2). See :class:`AdamW` for decoupled decay.
    """

    _code = _r.OPT_ADAM
    default_lr = 1e-3

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 amsgrad: bool = False, weight_decay: float = 0.0) -> None:
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.amsgrad = amsgrad
        self.weight_decay = weight_decay

    def _hyper(self):
        name = type(self).__name__
        return [
            _wd(self),
            check_real(name, "beta1", self.beta1, low=0.0, high=1.0, high_open=True),
            check_real(name, "beta2", self.beta2, low=0.0, high=1.0, high_open=True),
            check_real(name, "eps", self.eps, low=0.0),
            float(check_bool(name, "amsgrad", self.amsgrad)),
        ]


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``.

    First :math:`w \leftarrow w (1 - \eta_t \lambda)` (not the intercept), then the
    :class:`Adam` step without an L2 term.

    Parameters
    ----------
    beta1, beta2 : float, default=0.9, 0.999
    eps : float, default=1e-8
    amsgrad : bool, default=False
    weight_decay : float, default=0.01
    """

    _code = _r.OPT_ADAMW

    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 amsgrad: bool = False, weight_decay: float = 0.01) -> None:
        super().__init__(beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad,
                         weight_decay=weight_decay)


_BY_NAME = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": lambda: Momentum(nesterov=True),
    "adagrad": Adagrad,
    "rmsprop": RMSprop,
    "adadelta": Adadelta,
    "adam": Adam,
    "adamw": AdamW,
}

OPTIMIZER_NAMES = tuple(_BY_NAME)


def resolve(optimizer: str | Optimizer) -> Optimizer:
    """Turn a name or an :class:`Optimizer` into an :class:`Optimizer`."""
    from sklearn.utils._param_validation import InvalidParameterError

    if isinstance(optimizer, Optimizer):
        return optimizer
    if isinstance(optimizer, str) and optimizer in _BY_NAME:
        return _BY_NAME[optimizer]()
    raise InvalidParameterError(
        f"The 'optimizer' parameter must be one of {sorted(OPTIMIZER_NAMES)} or an "
        f"instance of fastgd.optim.Optimizer; got {optimizer!r}."
    )
