"""fastgd: gradient-descent training of linear models in compiled loops.

Public names: :class:`FastSGDClassifier`, :class:`FastSGDRegressor`, :func:`minimize`, and the modules
:mod:`fastgd.optim` (update rules) and :mod:`fastgd.schedules` (learning rates).
"""

from . import optim, schedules
from ._minimize import minimize
from .linear_model import FastSGDClassifier, FastSGDRegressor

__version__ = "0.1.0"

__all__ = ["FastSGDClassifier", "FastSGDRegressor", "minimize", "optim", "schedules", "__version__"]
