"""Fitting helper shared by the test modules."""

import warnings

from sklearn.exceptions import ConvergenceWarning


def fit_quietly(est, X, y, **fit_kw):
    """``est.fit(X, y, **fit_kw)`` without the ConvergenceWarning of short fits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_kw)
