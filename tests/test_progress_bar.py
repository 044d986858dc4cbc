"""The ``verbose=1`` progress bar (issue 21, item 6): its length and estimate come from
the epochs run, not from ``max_iter``, and it ends saying how training ended."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from fastgd import DivergenceWarning, FastSGDClassifier, FastSGDRegressor


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    return X, X @ np.array([1.0, 2.0, 3.0])


def _bar(capsys, fit):
    """The bar's frames (tqdm redraws with carriage returns) written by ``fit()``."""
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", DivergenceWarning)
        est = fit()
    frames = [f.strip() for f in capsys.readouterr().err.replace("\r", "\n").splitlines()]
    return est, [f for f in frames if f]


def test_a_converged_fit_ends_full_saying_so(data, capsys):
    X, y = data
    est, frames = _bar(capsys, lambda: FastSGDRegressor(verbose=1, random_state=0).fit(X, y))
    n = est.n_iter_
    assert 1 < n < est.max_iter
    assert frames[-1].startswith(f"FastSGDRegressor: converged at epoch {n}: 100%")
    assert f"{n}/{n}" in frames[-1]
    # never a length, a percentage or an estimate taken from max_iter=1000
    assert not any("/1000" in f for f in frames)
    assert not any("%" in f for f in frames[:-2])


def test_a_fixed_length_fit_shows_its_length(data, capsys):
    X, y = data
    _, frames = _bar(capsys, lambda: FastSGDRegressor(verbose=1, max_iter=4, tol=None)
                     .fit(X, y))
    assert "0/4" in frames[0]  # tol=None: all 4 epochs run, a true length and estimate
    assert frames[-1].startswith("FastSGDRegressor: max_iter reached (4 epochs): 100%")
    assert "4/4" in frames[-1]


def test_not_converging_within_max_iter(data, capsys):
    X, y = data
    _, frames = _bar(capsys, lambda: FastSGDRegressor(verbose=1, max_iter=3).fit(X, y))
    assert frames[-1].startswith("FastSGDRegressor: max_iter reached (3 epochs): 100%")


def test_stopped_by_a_callback(data, capsys):
    X, y = data
    _, frames = _bar(capsys, lambda: FastSGDRegressor(
        verbose=1, callbacks=[lambda info: info.epoch >= 3]).fit(X, y))
    assert frames[-1].startswith(
        "FastSGDRegressor: stopped early (callback) at epoch 3: 100%")
    assert "3/3" in frames[-1]


def test_restored_divergence(data, capsys):
    X, y = data
    est, frames = _bar(capsys, lambda: FastSGDRegressor(
        verbose=1, batch_size="full", learning_rate="constant", eta0=0.01, max_iter=50,
        tol=None, on_divergence="restore").fit(X * 1e150, y))
    n = est.n_iter_
    assert frames[-1].startswith(
        f"FastSGDRegressor: diverged at epoch {n + 1}, kept epoch {n}: 100%")


def test_partial_fit_and_classifier(data, capsys):
    X, y = data
    _, frames = _bar(capsys, lambda: FastSGDClassifier(verbose=1).partial_fit(
        X, y > 0, classes=[False, True]))
    assert frames[-1].startswith("FastSGDClassifier: partial_fit epoch done: 100%")
    assert "1/1" in frames[-1]
