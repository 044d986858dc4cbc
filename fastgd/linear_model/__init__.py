"""Linear estimators trained by the compiled gradient-descent loops."""

from ._classifier import FastSGDClassifier
from ._cv import FastSGDClassifierCV, FastSGDRegressorCV
from ._regressor import FastSGDRegressor

__all__ = ["FastSGDClassifier", "FastSGDClassifierCV", "FastSGDRegressor",
           "FastSGDRegressorCV"]
