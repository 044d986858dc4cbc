"""Fitting helpers shared by the test modules."""

import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning


def fit_quietly(est, X, y, **fit_kw):
    """``est.fit(X, y, **fit_kw)`` without the ConvergenceWarning of short fits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **fit_kw)


@pytest.fixture
def split_small_batches(monkeypatch):
    """Let batches of the tests' small data sets split their rows over threads, as a
    batch with ``BYTES_PER_THREAD`` of rows per thread does (a few rows per thread)."""
    from fastgd import _loop

    monkeypatch.setattr(_loop, "BYTES_PER_THREAD", 64)
