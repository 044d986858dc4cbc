"""FastSGDRegressorCV / FastSGDClassifierCV with ``device="cuda"``, in the simulator:
one launch trains every candidate of a group (K outputs, each with its own
hyper-parameters in the state buffer) and each model equals the estimator fitted
alone on the GPU on the same rows, and the search on the CPU, to rounding.

Alone, one output of few features takes the GPU's register path and the pass the
tile path, whose sums run in another order: the two agree to rounding, not bitwise.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold

from fastgd import (FastSGDClassifier, FastSGDClassifierCV, FastSGDRegressor,
                    FastSGDRegressorCV, optim, schedules)

RTOL = 1e-9
ATOL = 1e-11


def _reg_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(36, 4))
    w = rng.normal(size=(4, 2))
    return X, X @ w + 0.3 + 0.1 * rng.normal(size=(36, 2))


def _clf_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(45, 4))
    labels = np.digitize(X @ rng.normal(size=4) + 0.3 * rng.normal(size=45), [-0.5, 0.5])
    return X, labels


REGRESSION = {
    "adam, step schedules, clipping, 2 targets": (
        dict(alpha=[1e-4, 1e-2], clip_norm=[None, 0.5],
             learning_rate=[schedules.Step(step_size=1, gamma=0.5),
                            schedules.Step(step_size=2, gamma=0.8)]),
        dict(batch_size=8, optimizer="adam", eta0=0.05, max_iter=3, tol=None)),
    "huber momentum, elastic net": (
        dict(epsilon=[0.1, 1.0], l1_ratio=[0.2, 0.7],
             optimizer=[optim.Momentum(momentum=0.5), optim.Momentum(momentum=0.9)]),
        dict(loss="huber", penalty="elasticnet", alpha=0.01, batch_size=10,
             learning_rate="constant", eta0=0.02, max_iter=3, tol=None)),
    "early stopping, per-model stopping rules": (
        dict(tol=[1e-3, 1e-1], n_iter_no_change=[1, 3]),
        dict(batch_size=12, optimizer="momentum", learning_rate="constant", eta0=0.05,
             early_stopping=True, validation_fraction=0.25, max_iter=8)),
}

CLASSIFICATION = {
    "one-vs-rest, class weights, clip_value": (
        dict(class_weight=[None, "balanced"], clip_value=[None, 0.2]),
        dict(batch_size=9, eta0=0.05, learning_rate="constant", max_iter=3, tol=None)),
    "multinomial, clip_norm": (
        dict(alpha=[1e-4, 1e-2], clip_norm=[None, 0.3]),
        dict(loss="log_loss", multi_class="multinomial", batch_size=9, eta0=0.1,
             learning_rate="constant", max_iter=3, tol=None)),
}


def _alone(Est, base, cand, X, y, rows, device="cuda"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Est(**base, **cand, random_state=0, device=device).fit(X[rows], y[rows])


def _check(search, Est, base, grid, X, y, splits):
    res = search.cv_results_
    for c, cand in enumerate(ParameterGrid(grid)):
        for f, (train, test) in enumerate(splits):
            alone = _alone(Est, base, cand, X, y, train)
            assert res[f"split{f}_n_iter"][c] == alone.n_iter_
            np.testing.assert_allclose(res[f"split{f}_loss_curve"][c], alone.loss_curve_,
                                       rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(res[f"split{f}_test_score"][c],
                                       alone.score(X[test], y[test]), rtol=RTOL)
    best = _alone(Est, base, search.best_params_, X, y, np.arange(X.shape[0]))
    assert search.device_ == "cuda" and search.best_estimator_.device_ == "cuda"
    np.testing.assert_allclose(search.coef_, best.coef_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(search.intercept_, best.intercept_, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(search.best_estimator_.grad_norm_curve_,
                               best.grad_norm_curve_, rtol=RTOL, atol=ATOL)


def _fit(Search, grid, base, X, y, device="cuda"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return Search(param_grid=grid, cv=2, random_state=0, device=device,
                      **base).fit(X, y)


@pytest.mark.parametrize("case", list(REGRESSION))
def test_regression_grid_on_the_gpu_equals_fits_alone(case):
    X, Y = _reg_data()
    grid, base = REGRESSION[case]
    y = Y if "2 targets" in case else Y[:, 0]
    search = _fit(FastSGDRegressorCV, grid, base, X, y)
    _check(search, FastSGDRegressor, base, grid, X, y, list(KFold(2).split(X)))


@pytest.mark.parametrize("case", list(CLASSIFICATION))
def test_classification_grid_on_the_gpu_equals_fits_alone(case):
    X, labels = _clf_data()
    grid, base = CLASSIFICATION[case]
    search = _fit(FastSGDClassifierCV, grid, base, X, labels)
    _check(search, FastSGDClassifier, base, grid, X, labels,
           list(StratifiedKFold(2).split(X, labels)))


@pytest.mark.parametrize("Search, case", [
    (FastSGDRegressorCV, REGRESSION["adam, step schedules, clipping, 2 targets"]),
    (FastSGDClassifierCV, CLASSIFICATION["multinomial, clip_norm"])])
def test_the_gpu_search_is_the_cpu_search(Search, case):
    # unshuffled: the GPU draws its row orders with its own counter-based shuffle
    grid, base = case
    X, y = _reg_data() if Search is FastSGDRegressorCV else _clf_data()
    base = {**base, "shuffle": False}
    gpu = _fit(Search, grid, base, X, y)
    cpu = _fit(Search, grid, base, X, y, device="cpu")
    assert gpu.best_params_ == cpu.best_params_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_allclose(gpu.cv_results_[key], cpu.cv_results_[key],
                                   rtol=RTOL)
    for curves in ("split0_loss_curve", "refit_loss_curve"):
        for a, b in zip(gpu.cv_results_[curves], cpu.cv_results_[curves]):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=RTOL, atol=ATOL)


def test_auto_trains_per_sample_groups_on_the_cpu():
    # device="auto" resolves per group: per-sample SGD stays on the CPU (the GPU
    # backend runs batches), the minibatch group goes to the GPU (for large X; here
    # the size threshold is lowered)
    from fastgd import _device

    X, Y = _reg_data()
    grid = dict(batch_size=[1, 8], eta0=[0.01, 0.02])
    base = dict(max_iter=2, tol=None, learning_rate="constant")
    old = _device.AUTO_MIN_ELEMENTS
    _device.AUTO_MIN_ELEMENTS = 1
    try:
        search = _fit(FastSGDRegressorCV, grid, base, X, Y[:, 0], device="auto")
    finally:
        _device.AUTO_MIN_ELEMENTS = old
    for c, cand in enumerate(ParameterGrid(grid)):
        alone = _alone(FastSGDRegressor, base, cand, X, Y[:, 0], np.arange(36),
                       device="auto" if cand["batch_size"] == 1 else "cuda")
        assert alone.device_ == ("cpu" if cand["batch_size"] == 1 else "cuda")
        np.testing.assert_allclose(search.cv_results_["refit_loss_curve"][c],
                                   alone.loss_curve_, rtol=RTOL, atol=ATOL)


def test_gpu_arrays_are_refused_with_a_way_out():
    from numba import cuda

    X, Y = _reg_data()
    with pytest.raises(ValueError, match="host memory"):
        FastSGDRegressorCV(param_grid={"alpha": [1e-4]}, cv=2, batch_size=8,
                           device="cuda").fit(cuda.to_device(X), Y[:, 0])
