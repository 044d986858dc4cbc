"""fastgd: gradient-descent training of linear models in compiled loops.

Public names: :class:`FastSGDClassifier`, :class:`FastSGDRegressor`, their
grid-search twins :class:`FastSGDClassifierCV` and :class:`FastSGDRegressorCV`,
:func:`minimize`, :func:`warmup`, :class:`DivergenceWarning`, and the modules
:mod:`fastgd.optim` (update rules) and :mod:`fastgd.schedules` (learning rates).
"""

from . import optim, schedules
from ._bookkeeping import DivergenceWarning
from ._minimize import minimize
from ._warmup import warmup
from .linear_model import (FastSGDClassifier, FastSGDClassifierCV, FastSGDRegressor,
                           FastSGDRegressorCV)

__version__ = "0.2.0"

__all__ = [
    "DivergenceWarning", "FastSGDClassifier", "FastSGDClassifierCV", "FastSGDRegressor",
    "FastSGDRegressorCV", "minimize", "optim", "schedules", "warmup", "__version__",
]
