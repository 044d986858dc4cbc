"""FastSGDRegressorCV / FastSGDClassifierCV: every candidate and fold trained in one
pass per fold equals the estimator fitted alone on the same rows, bit for bit."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, FitFailedWarning
from sklearn.model_selection import GridSearchCV, KFold, ParameterGrid, StratifiedKFold

from fastgd import (FastSGDClassifier, FastSGDClassifierCV, FastSGDRegressor,
                    FastSGDRegressorCV, optim, schedules)


def _quiet():
    warnings.simplefilter("ignore", ConvergenceWarning)


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(180, 6))
    w = rng.normal(size=(6, 2))
    Y = X @ w + 0.1 * rng.normal(size=(180, 2))
    Xs = X * (rng.random(X.shape) < 0.5)
    return X, Y, sp.csr_matrix(Xs), Xs @ w[:, 0]


@pytest.fixture(scope="module")
def clf_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(210, 5))
    labels = np.digitize(X @ rng.normal(size=5) + 0.3 * rng.normal(size=210),
                         [-0.8, 0.0, 0.8])
    return X, labels


REGRESSION = {
    "per-sample, shuffled": (
        dict(alpha=[1e-4, 1e-2], eta0=[0.003, 0.01]), dict(max_iter=12)),
    "per-sample, elastic net, averaged": (
        dict(l1_ratio=[0.1, 0.6], power_t=[0.25, 0.5]),
        dict(penalty="elasticnet", average=5, max_iter=8, tol=None)),
    "minibatch momentum, 2 targets": (
        dict(alpha=[1e-4, 1e-3], optimizer=[optim.Momentum(momentum=0.5),
                                            optim.Momentum(momentum=0.9)]),
        dict(batch_size=16, learning_rate="constant", eta0=0.01, max_iter=10)),
    "adam, clipping, cosine": (
        dict(clip_norm=[0.5, 5.0], eta0=[0.01, 0.05]),
        dict(batch_size=8, optimizer="adam",
             learning_rate=schedules.Cosine(T_max=10), max_iter=10, tol=None)),
    "full batch, early stopping": (
        dict(tol=[1e-4, 1e-2], n_iter_no_change=[2, 4]),
        dict(batch_size="full", optimizer="momentum", learning_rate="constant",
             eta0=0.05, early_stopping=True, max_iter=40)),
    "adaptive rate, batch sizes (two groups)": (
        dict(batch_size=[1, 12], eta0=[0.01, 0.03]),
        dict(learning_rate="adaptive", max_iter=30, n_iter_no_change=2, tol=1e-2)),
}


def _alone(Est, base, cand, X, y, rows):
    """The estimator fitted alone on ``rows``."""
    est = Est(**base, **cand, random_state=0)
    with warnings.catch_warnings():
        _quiet()
        return est.fit(X[rows], y[rows])


def _check_against_alone(search, Est, base, grid, X, y, splits):
    """Every candidate's every fold (and its model on all rows) equals its fit alone."""
    res = search.cv_results_
    for c, cand in enumerate(ParameterGrid(grid)):
        assert res["params"][c] == cand
        for f, (train, test) in enumerate(splits):
            alone = _alone(Est, base, cand, X, y, train)
            assert res[f"split{f}_test_score"][c] == alone.score(X[test], y[test])
            assert res[f"split{f}_n_iter"][c] == alone.n_iter_
            assert res[f"split{f}_loss_curve"][c] == alone.loss_curve_
        full = _alone(Est, base, cand, X, y, np.arange(X.shape[0]))
        assert res["refit_n_iter"][c] == full.n_iter_
        assert res["refit_loss_curve"][c] == full.loss_curve_
    best = _alone(Est, base, search.best_params_, X, y, np.arange(X.shape[0]))
    np.testing.assert_array_equal(search.best_estimator_.coef_, best.coef_)
    np.testing.assert_array_equal(search.coef_, best.coef_)
    np.testing.assert_array_equal(search.intercept_, best.intercept_)
    np.testing.assert_array_equal(search.predict(X), best.predict(X))
    # the diagnostics too (per-sample: the rows' ||x||^2 come from a table shared by
    # the models of a block, and alone from the row)
    assert search.best_estimator_.grad_norm_curve_ == best.grad_norm_curve_


@pytest.mark.parametrize("case", list(REGRESSION))
def test_regression_models_equal_fits_alone(reg_data, case):
    X, Y, _, _ = reg_data
    grid, base = REGRESSION[case]
    y = Y if "2 targets" in case else Y[:, 0]
    with warnings.catch_warnings():
        _quiet()
        search = FastSGDRegressorCV(param_grid=grid, cv=3, random_state=0,
                                    **base).fit(X, y)
    _check_against_alone(search, FastSGDRegressor, base, grid, X, y,
                         list(KFold(3).split(X)))


def test_sparse_input_equals_fits_alone(reg_data):
    _, _, Xs, ys = reg_data
    grid = dict(alpha=[1e-4, 1e-2], l1_ratio=[0.0, 0.5])
    base = dict(penalty="elasticnet", max_iter=8, tol=None)
    search = FastSGDRegressorCV(param_grid=grid, cv=3, random_state=0, **base).fit(Xs, ys)
    _check_against_alone(search, FastSGDRegressor, base, grid, Xs, ys,
                         list(KFold(3).split(Xs)))
    for est in ("ovr", "multinomial"):  # CSR classification too
        labels = (ys > np.median(ys)).astype(int) + (ys > np.quantile(ys, 0.8))
        params = dict(loss="log_loss", multi_class=est, batch_size=8, max_iter=6,
                      tol=None, learning_rate="constant")
        clf_grid = dict(eta0=[0.01, 0.05])
        search = FastSGDClassifierCV(param_grid=clf_grid, cv=3, random_state=0,
                                     **params).fit(Xs, labels)
        _check_against_alone(search, FastSGDClassifier, params, clf_grid, Xs, labels,
                             list(StratifiedKFold(3).split(Xs, labels)))


CLASSIFICATION = {
    "one-vs-rest hinge, class weights": (
        dict(alpha=[1e-4, 1e-2], class_weight=[None, "balanced"]), dict(max_iter=10)),
    "multinomial adam, clipping": (
        dict(eta0=[0.01, 0.05], clip_norm=[None, 1.0]),
        dict(loss="log_loss", multi_class="multinomial", batch_size=16,
             optimizer="adam", learning_rate="constant", max_iter=8)),
    "multinomial, early stopping": (
        dict(alpha=[1e-4, 1e-2]),
        dict(loss="log_loss", multi_class="multinomial", batch_size="full",
             optimizer="momentum", learning_rate="constant", eta0=0.1,
             early_stopping=True, n_iter_no_change=2, max_iter=30)),
    "binary modified huber": (
        dict(alpha=[1e-4, 1e-3], epsilon=[0.1, 0.5]),
        dict(loss="modified_huber", max_iter=8)),
}


@pytest.mark.parametrize("case", list(CLASSIFICATION))
def test_classification_models_equal_fits_alone(clf_data, case):
    X, labels = clf_data
    grid, base = CLASSIFICATION[case]
    y = (labels > 1).astype(int) if "binary" in case else labels
    with warnings.catch_warnings():
        _quiet()
        search = FastSGDClassifierCV(param_grid=grid, cv=3, random_state=0,
                                     **base).fit(X, y)
    _check_against_alone(search, FastSGDClassifier, base, grid, X, y,
                         list(StratifiedKFold(3).split(X, y)))
    np.testing.assert_array_equal(search.classes_, np.unique(y))


def test_cv_results_are_grid_search_cvs(reg_data):
    """Keys, shapes and scores of GridSearchCV's results, with a scorer and train
    scores; a list of grids."""
    X, Y, _, _ = reg_data
    grid = [dict(alpha=[1e-4, 1e-2]), dict(eta0=[0.003, 0.03], penalty=["l1"])]
    base = dict(max_iter=8, tol=None, random_state=0)
    kw = dict(cv=4, scoring="neg_mean_squared_error", return_train_score=True)
    ours = FastSGDRegressorCV(param_grid=grid, **kw, **base).fit(X, Y[:, 0])
    theirs = GridSearchCV(FastSGDRegressor(**base), grid, **kw).fit(X, Y[:, 0])
    ref = theirs.cv_results_
    assert set(ref) <= set(ours.cv_results_)
    for key, value in ref.items():
        if "time" in key:
            assert ours.cv_results_[key].shape == value.shape
        elif key.startswith("param_"):
            assert list(ours.cv_results_[key]) == list(value)
            np.testing.assert_array_equal(np.ma.getmaskarray(ours.cv_results_[key]),
                                          np.ma.getmaskarray(value))
        elif key == "params":
            assert ours.cv_results_[key] == value
        else:
            np.testing.assert_array_equal(ours.cv_results_[key], value, err_msg=key)
    assert ours.best_index_ == theirs.best_index_
    assert ours.best_params_ == theirs.best_params_
    assert ours.best_score_ == theirs.best_score_
    assert ours.n_splits_ == theirs.n_splits_


def test_threads_give_the_same_results(reg_data):
    X, Y, _, _ = reg_data
    grid = dict(alpha=[1e-4, 1e-2], eta0=[0.003, 0.01])
    one = FastSGDRegressorCV(param_grid=grid, cv=3, random_state=0, max_iter=8,
                             tol=None).fit(X, Y[:, 0])
    two = FastSGDRegressorCV(param_grid=grid, cv=3, random_state=0, max_iter=8,
                             tol=None, n_jobs=2).fit(X, Y[:, 0])
    for key in ("mean_test_score", "split0_test_score", "split2_n_iter"):
        np.testing.assert_array_equal(one.cv_results_[key], two.cv_results_[key])
    np.testing.assert_array_equal(one.coef_, two.coef_)


def test_refit_false_and_callable(reg_data, monkeypatch):
    X, Y, _, _ = reg_data
    grid = dict(alpha=[1e-4, 1e-1])
    from fastgd.linear_model import _cv

    passes = []
    real = _cv.SearchCVMixin._one_pass
    monkeypatch.setattr(_cv.SearchCVMixin, "_one_pass",
                        lambda self, g, rows, d: passes.append(len(rows)) or
                        real(self, g, rows, d))
    search = FastSGDRegressorCV(param_grid=grid, cv=3, refit=False, max_iter=5,
                                tol=None, random_state=0).fit(X, Y[:, 0])
    assert len(passes) == 3 and max(passes) < X.shape[0]  # no pass on all rows
    assert not hasattr(search, "best_estimator_") and not hasattr(search, "coef_")
    assert search.best_params_ == {"alpha": 1e-4}
    passes.clear()
    worst = FastSGDRegressorCV(param_grid=grid, cv=3, max_iter=5, tol=None,
                               random_state=0,
                               refit=lambda res: int(np.argmax(res["rank_test_score"])))
    worst.fit(X, Y[:, 0])
    assert len(passes) == 4 and worst.best_params_ == {"alpha": 1e-1}
    assert worst.best_estimator_.alpha == 1e-1


def test_a_diverging_candidate_scores_error_score(reg_data):
    X, Y, _, _ = reg_data
    X = X * 1e150
    grid = dict(eta0=[1e-300, 1e-3])
    base = dict(batch_size="full", optimizer="momentum", learning_rate="constant",
                max_iter=20, tol=None, random_state=0)
    with pytest.raises(ValueError, match="overflow"):
        FastSGDRegressor(eta0=1e-3, **base).fit(X, Y[:, 0])
    FastSGDRegressor(eta0=1e-300, **base).fit(X, Y[:, 0])  # trains
    with pytest.warns(FitFailedWarning, match="eta0"):
        search = FastSGDRegressorCV(param_grid=grid, cv=3, **base).fit(X, Y[:, 0])
    scores = search.cv_results_["mean_test_score"]
    assert np.isnan(scores[1]) and not np.isnan(scores[0])
    assert search.best_params_ == {"eta0": 1e-300}
    with pytest.raises(ValueError, match="overflow"):
        FastSGDRegressorCV(param_grid=grid, cv=3, error_score="raise", **base).fit(
            X, Y[:, 0])
    # on_divergence="restore": the last finite model, as the estimator alone keeps it
    restore = FastSGDRegressorCV(param_grid=grid, cv=3, on_divergence="restore",
                                 **base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restore.fit(X, Y[:, 0])
        alone = FastSGDRegressor(eta0=1e-3, on_divergence="restore", **base).fit(
            X, Y[:, 0])
    assert restore.cv_results_["refit_n_iter"][1] == alone.n_iter_


def test_api(reg_data, clf_data):
    X, Y, _, _ = reg_data
    search = FastSGDRegressorCV(param_grid={"alpha": [1e-4, 1e-3]}, cv=2, max_iter=5,
                                tol=None, batch_size=8, random_state=0)
    params = search.get_params()
    assert params["param_grid"] == {"alpha": [1e-4, 1e-3]} and params["batch_size"] == 8
    assert "alpha" in params and "cv" in params
    assert clone(search).get_params() == params
    assert not hasattr(search, "partial_fit")
    search.fit(X, Y[:, 0])
    again = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(again.predict(X), search.predict(X))
    assert search.score(X, Y[:, 0]) == search.best_estimator_.score(X, Y[:, 0])
    sk = search.to_sklearn()
    np.testing.assert_allclose(sk.predict(X), search.predict(X))
    with pytest.raises(ValueError, match="not parameters of FastSGDRegressor"):
        FastSGDRegressorCV(param_grid={"learning_rat": [0.1]}).fit(X, Y[:, 0])
    from fastgd import _device

    if not _device.cuda_status()[0]:  # the GPU search: tests/cuda_sim/test_sim_cv.py
        with pytest.raises(ValueError, match="device='cuda' needs an NVIDIA GPU"):
            FastSGDRegressorCV(param_grid={"device": ["cuda"]}, cv=2).fit(X, Y[:, 0])
        auto = FastSGDRegressorCV(param_grid={"alpha": [1e-4, 1e-3]}, cv=2, max_iter=5,
                                  tol=None, batch_size=8, random_state=0,
                                  device="auto").fit(X, Y[:, 0])
        assert auto.device_ == "cpu"
        np.testing.assert_array_equal(auto.coef_, search.coef_)
    Xc, labels = clf_data
    clf = FastSGDClassifierCV(param_grid={"alpha": [1e-4, 1e-2]}, cv=3, max_iter=5,
                              tol=None, loss="log_loss", random_state=0).fit(Xc, labels)
    assert clf.predict_proba(Xc).shape == (Xc.shape[0], 4)
    assert not hasattr(clf, "partial_fit")


def test_one_candidate_without_grid(reg_data):
    """No grid: the estimator's own parameters, cross-validated."""
    X, Y, _, _ = reg_data
    search = FastSGDRegressorCV(cv=3, max_iter=5, tol=None, random_state=0).fit(
        X, Y[:, 0])
    assert search.cv_results_["params"] == [{}]
    alone = FastSGDRegressor(max_iter=5, tol=None, random_state=0).fit(X, Y[:, 0])
    np.testing.assert_array_equal(search.coef_, alone.coef_)


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

CV_ESTIMATORS = [
    FastSGDRegressorCV(param_grid={"alpha": [1e-4, 1e-3]}, cv=2, max_iter=5, tol=None,
                       random_state=0),
    FastSGDClassifierCV(param_grid={"alpha": [1e-4, 1e-3]}, cv=2, max_iter=5, tol=None,
                        random_state=0),
]


def _expected_failed_checks(estimator):
    # as the estimators they search over (tests/test_estimator_api.py)
    return {name: "sample_weight is not equivalent to removing/repeating samples."
            for name in ("check_sample_weight_equivalence_on_dense_data",
                         "check_sample_weight_equivalence_on_sparse_data")}


@parametrize_with_checks(CV_ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_search(estimator, check):
    check(estimator)
