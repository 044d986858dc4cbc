"""Linear estimators trained by the compiled gradient-descent loops."""

from ._regressor import FastSGDRegressor

__all__ = ["FastSGDRegressor"]
