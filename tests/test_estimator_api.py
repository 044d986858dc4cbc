"""FastSGDRegressor as a scikit-learn estimator: API contract, validation, state."""

import pickle
import re
import warnings

import numba
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, ShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgd import FastSGDRegressor
from fastgd.optim import Adam, Momentum
from fastgd.schedules import Cosine

# ------------------------------------------------------------------ data
_Xr, _yr = make_regression(n_samples=120, n_features=6, noise=5.0, random_state=0)
X = StandardScaler().fit_transform(_Xr)
Y = (_yr - _yr.mean()) / _yr.std()

# modes that go through different code paths
MODES = {
    "plain": dict(),
    "plain_l1_avg": dict(penalty="elasticnet", average=5),
    "adam_minibatch": dict(batch_size=16, optimizer="adam", eta0=0.01),
    "momentum_full": dict(batch_size="full", optimizer="momentum", learning_rate="constant"),
    "batch_norm": dict(batch_size=16, batch_norm=True),
    "rmsprop_clip": dict(clip_norm=1.0, optimizer="rmsprop"),
}


def _quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kwargs)


# ------------------------------------------------------------------ sklearn checks
ESTIMATORS = [
    FastSGDRegressor(),
    FastSGDRegressor(batch_size=32, optimizer="adam"),
    FastSGDRegressor(batch_size="full", optimizer="momentum", learning_rate="constant"),
    FastSGDRegressor(batch_norm=True, batch_size=16),
    FastSGDRegressor(clip_norm=1.0, optimizer="rmsprop"),
]


def _expected_failed_checks(estimator):
    return {
        # as scikit-learn's own SGDRegressor (sklearn/utils/_test_common/
        # instance_generator.py): a weight of 2 is not the same as a repeated row for
        # stochastic/minibatch training (the number of updates per epoch, the
        # composition of the batches, the shuffled order and the unweighted
        # convergence objective all change); batch gradients are normalized by the
        # number of rows m, not by the sum of weights (docs/semantics.md), so even
        # full-batch GD is not invariant.
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is not equivalent to removing/repeating samples."
        ),
        "check_sample_weight_equivalence_on_sparse_data": (
            "sample_weight is not equivalent to removing/repeating samples."
        ),
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ caller arrays
@pytest.mark.parametrize("mode", list(MODES))
def test_never_mutates_inputs(mode):
    rng = np.random.RandomState(0)
    Xc, yc = X.copy(), Y.copy()
    sw = rng.uniform(0.5, 2.0, size=X.shape[0])
    coef_init = rng.normal(size=X.shape[1])
    intercept_init = np.array([0.2])
    originals = [a.copy() for a in (Xc, yc, sw, coef_init, intercept_init)]
    est = FastSGDRegressor(max_iter=5, tol=None, random_state=0, **MODES[mode])
    est.fit(Xc, yc, coef_init=coef_init, intercept_init=intercept_init, sample_weight=sw)
    est.partial_fit(Xc, yc, sample_weight=sw)
    est.predict(Xc)
    est.score(Xc, yc, sample_weight=sw)
    for before, after in zip(originals, (Xc, yc, sw, coef_init, intercept_init), strict=True):
        assert_array_equal(before, after)
    # the fitted parameters do not alias the caller's arrays
    coef_before = est.coef_.copy()
    coef_init[:] = 99.0
    intercept_init[:] = 99.0
    assert_array_equal(est.coef_, coef_before)
    assert est.intercept_[0] != 99.0


@pytest.mark.parametrize("mode", list(MODES))
def test_never_mutates_inputs_float32_and_early_stopping(mode):
    X32, y32 = X.astype(np.float32), Y.astype(np.float32)
    X_before, y_before = X32.copy(), y32.copy()
    est = FastSGDRegressor(max_iter=5, tol=None, random_state=0, early_stopping=True,
                           **MODES[mode])
    est.fit(X32, y32)
    assert_array_equal(X32, X_before)
    assert_array_equal(y32, y_before)


@pytest.mark.parametrize("mode", list(MODES))
def test_read_only_and_fortran_inputs(mode):
    params = dict(max_iter=5, tol=None, random_state=0, **MODES[mode])
    ref = FastSGDRegressor(**params).fit(X, Y)

    Xro, yro = X.copy(), Y.copy()
    Xro.setflags(write=False)
    yro.setflags(write=False)
    sw = np.ones(X.shape[0])
    sw.setflags(write=False)
    ro = FastSGDRegressor(**params).fit(Xro, yro, sample_weight=sw)
    ro.partial_fit(Xro, yro)
    assert_allclose(ro.predict(Xro), ro.predict(X))

    Xf = np.asfortranarray(X)
    fo = FastSGDRegressor(**params).fit(Xf, Y)
    for other in (fo,):
        assert_allclose(other.coef_, ref.coef_, rtol=1e-12, atol=1e-14)
        assert_allclose(other.intercept_, ref.intercept_, rtol=1e-12, atol=1e-14)
    ro_ref = FastSGDRegressor(**params).fit(X, Y)
    ro_ref.partial_fit(X, Y)
    assert_allclose(ro.coef_, ro_ref.coef_, rtol=1e-12, atol=1e-14)

    # Fortran-ordered read-only float32
    Xf32 = np.asfortranarray(X.astype(np.float32))
    Xf32.setflags(write=False)
    f32 = FastSGDRegressor(**params).fit(Xf32, Y.astype(np.float32))
    c32 = FastSGDRegressor(**params).fit(np.ascontiguousarray(Xf32), Y.astype(np.float32))
    assert f32.coef_.dtype == np.float32
    assert_allclose(f32.coef_, c32.coef_, rtol=1e-6, atol=1e-7)


def test_strided_view_input():
    Xbig = np.zeros((X.shape[0], 2 * X.shape[1]))
    Xbig[:, ::2] = X
    view = Xbig[:, ::2]
    assert not (view.flags.c_contiguous or view.flags.f_contiguous)
    params = dict(max_iter=5, tol=None, random_state=0)
    a = FastSGDRegressor(**params).fit(view, Y)
    b = FastSGDRegressor(**params).fit(X, Y)
    assert_allclose(a.coef_, b.coef_, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", list(MODES))
def test_float32_stays_float32(mode):
    X32, y32 = X.astype(np.float32), Y.astype(np.float32)
    est = FastSGDRegressor(max_iter=5, tol=None, random_state=0, **MODES[mode]).fit(X32, y32)
    assert est.coef_.dtype == np.float32
    assert est.intercept_.dtype == np.float32
    assert est.predict(X32).dtype == np.float32
    assert est.predict(X).dtype == np.float64
    est.partial_fit(X32, y32)
    assert est.coef_.dtype == np.float32
    # float32 data with float64 targets, and integer data -> float64
    assert FastSGDRegressor(max_iter=3, tol=None).fit(X32, Y).coef_.dtype == np.float32
    Xi = np.round(X * 3).astype(np.int64)
    est_i = FastSGDRegressor(max_iter=3, tol=None, **MODES[mode]).fit(Xi, Y)
    assert est_i.coef_.dtype == np.float64
    assert est_i.predict(Xi).dtype == np.float64


def test_float32_close_to_float64():
    params = dict(max_iter=20, tol=None, random_state=0, batch_size=8, optimizer="adam")
    a = FastSGDRegressor(**params).fit(X.astype(np.float32), Y.astype(np.float32))
    b = FastSGDRegressor(**params).fit(X.astype(np.float32).astype(np.float64),
                                       Y.astype(np.float32).astype(np.float64))
    assert_allclose(a.coef_, b.coef_.astype(np.float32), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ bad data
@pytest.mark.parametrize("where", ["X", "y"])
@pytest.mark.parametrize("value, word", [(np.nan, "NaN"), (np.inf, "infinity"),
                                         (-np.inf, "infinity")])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_non_finite_data_raises(where, value, word, method):
    Xb, yb = X.copy(), Y.copy()
    if where == "X":
        Xb[3, 2] = value
    else:
        yb[5] = value
    est = FastSGDRegressor()
    with pytest.raises(ValueError, match=rf"(?i)\b{where}\b.*{word}|{word}.*\b{where}\b"):
        getattr(est, method)(Xb, yb)


def test_non_finite_predict_and_sample_weight_raise():
    est = FastSGDRegressor(max_iter=3, tol=None).fit(X, Y)
    Xb = X.copy()
    Xb[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.predict(Xb)
    sw = np.ones(X.shape[0])
    sw[2] = np.nan
    with pytest.raises(ValueError, match=r"(?i)sample_weight.*NaN|NaN.*sample_weight"):
        FastSGDRegressor().fit(X, Y, sample_weight=sw)
    sw[2] = np.inf
    with pytest.raises(ValueError, match=r"(?i)infinity|inf"):
        FastSGDRegressor().fit(X, Y, sample_weight=sw)


def test_non_finite_init_raises():
    coef = np.zeros(X.shape[1])
    coef[0] = np.nan
    with pytest.raises(ValueError, match="coef_init"):
        FastSGDRegressor().fit(X, Y, coef_init=coef)
    with pytest.raises(ValueError, match="intercept_init"):
        FastSGDRegressor().fit(X, Y, intercept_init=np.inf)


def test_wrong_shapes_raise():
    est = FastSGDRegressor(max_iter=3, tol=None)
    with pytest.raises(ValueError, match="2D"):
        est.fit(X[:, 0], Y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        est.fit(X, Y[:-1])
    with pytest.raises(ValueError):
        est.fit(X[:0], Y[:0])
    with pytest.raises(ValueError, match=r"(?i)sample_weight"):
        est.fit(X, Y, sample_weight=np.ones(X.shape[0] + 1))
    est.fit(X, Y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :-1])
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(X[:, :-1], Y)
    with pytest.raises(ValueError, match="features"):
        est.score(np.hstack([X, X[:, :1]]), Y)


def test_y_column_vector_is_a_one_output_model():
    # 2-D y means multi-output (as Ridge): one output, same coefficients as 1-D y
    est = _quiet_fit(FastSGDRegressor(max_iter=3, tol=None, random_state=0), X, Y[:, None])
    ref = _quiet_fit(FastSGDRegressor(max_iter=3, tol=None, random_state=0), X, Y)
    assert est.coef_.shape == (1, X.shape[1])
    assert_array_equal(est.coef_[0], ref.coef_)
    assert est.predict(X).shape == (X.shape[0], 1)
    assert_array_equal(est.predict(X)[:, 0], ref.predict(X))


@pytest.mark.parametrize("coef_init", [np.zeros(5), np.zeros(7), np.zeros((2, 6))])
def test_wrong_size_coef_init(coef_init):
    with pytest.raises(ValueError, match="coef_init"):
        FastSGDRegressor().fit(X, Y, coef_init=coef_init)


@pytest.mark.parametrize("intercept_init", [np.zeros(2), np.zeros((1, 2)), [1.0, 2.0]])
def test_wrong_size_intercept_init(intercept_init):
    with pytest.raises(ValueError, match="intercept_init"):
        FastSGDRegressor().fit(X, Y, intercept_init=intercept_init)


def test_accepted_init_shapes():
    a = FastSGDRegressor(max_iter=2, tol=None, shuffle=False).fit(
        X, Y, coef_init=np.ones((1, 6)), intercept_init=0.5)
    b = FastSGDRegressor(max_iter=2, tol=None, shuffle=False).fit(
        X, Y, coef_init=np.ones(6), intercept_init=np.array([0.5]))
    assert_array_equal(a.coef_, b.coef_)


# ------------------------------------------------------------------ bad parameters
@pytest.mark.parametrize("name, value", [
    ("loss", "foo"),
    ("optimizer", "foo"),
    ("batch_size", 0),
    ("batch_size", -3),
    ("batch_size", "half"),
    ("batch_size", 2.5),
    ("learning_rate", "foo"),
    ("clip_norm", -1),
    ("clip_norm", 0),
    ("clip_value", -1.0),
    ("penalty", "l3"),
    ("device", "tpu"),
    ("eta0", 0.0),
    ("alpha", -1.0),
    ("max_iter", 0),
    ("bn_momentum", 1.5),
    ("bn_eps", 0.0),
    ("average", -1),
    ("validation_fraction", 1.0),
    ("n_iter_no_change", 0),
    ("batch_norm", "yes"),
    ("restore_best_weights", "no"),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_invalid_parameters(name, value, method):
    est = FastSGDRegressor(**{name: value})
    with pytest.raises((InvalidParameterError, ValueError), match=rf"\b{name}\b"):
        getattr(est, method)(X, Y)


@pytest.mark.parametrize("make", [
    lambda: FastSGDRegressor(optimizer=Adam(beta1=1.5)),
    lambda: FastSGDRegressor(optimizer=Momentum(momentum=-0.5)),
    lambda: FastSGDRegressor(learning_rate=Cosine(T_max=0)),
])
def test_invalid_spec_hyper_parameters(make):
    with pytest.raises(ValueError, match=r"beta1|momentum|T_max"):
        make().fit(X, Y)


def test_optimal_requires_positive_alpha():
    with pytest.raises(ValueError, match="alpha"):
        FastSGDRegressor(learning_rate="optimal", alpha=0.0).fit(X, Y)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_device_cuda_not_available(method):
    from fastgd import _device

    if _device.cuda_status()[0]:
        pytest.skip("a CUDA device is present (the GPU backend is tested in tests/cuda_sim)")
    est = FastSGDRegressor(device="cuda", batch_size=8)
    with pytest.raises(ValueError) as exc:
        getattr(est, method)(X, Y)
    msg = str(exc.value)
    assert re.search(r"(?i)\b(gpu|cuda)\b", msg), msg
    assert "device='cpu'" in msg, msg


@pytest.mark.parametrize("optimizer, rate", [
    ("sgd", ("invscaling", 0.01)),
    (Adam(), ("constant", 1e-3)),
    ("adadelta", ("constant", 1.0)),
    (Momentum(nesterov=True), ("constant", 1e-3)),
])
def test_default_rate_follows_the_optimizer(optimizer, rate):
    est = FastSGDRegressor(optimizer=optimizer, batch_size=16, max_iter=2, tol=None)
    assert est.get_params()["learning_rate"] is None and est.get_params()["eta0"] is None
    _quiet_fit(est, X, Y)
    assert est.get_params()["learning_rate"] is None  # fit does not write parameters
    learning_rate, eta0 = rate
    assert est.lr_curve_[0] == eta0
    decays = learning_rate == "invscaling"
    assert (est.lr_curve_[1] < eta0) == decays
    # either one set alone keeps the other's default
    assert FastSGDRegressor(optimizer=optimizer, eta0=0.5, batch_size=16, max_iter=2,
                            tol=None).fit(X, Y).lr_curve_[0] == 0.5
    sched = _quiet_fit(FastSGDRegressor(optimizer=optimizer, learning_rate=Cosine(T_max=4),
                                        batch_size=16, max_iter=2, tol=None), X, Y)
    assert sched.lr_curve_ == [eta0, eta0 * (1 + np.cos(np.pi / 4)) / 2]


def test_default_regressor_is_sklearns():
    from sklearn.linear_model import SGDRegressor

    fast, sk = FastSGDRegressor(), SGDRegressor()
    est = _quiet_fit(FastSGDRegressor(shuffle=False, max_iter=3, tol=None), X, Y)
    ref = _quiet_fit(SGDRegressor(shuffle=False, max_iter=3, tol=None), X, Y)
    assert_allclose(est.coef_, ref.coef_, rtol=1e-10)
    assert {k: v for k, v in fast.get_params().items() if k in sk.get_params()
            and k not in ("learning_rate", "eta0")} == {
        k: v for k, v in sk.get_params().items() if k not in ("learning_rate", "eta0")}


def test_constructor_does_not_validate():
    # scikit-learn convention: __init__ stores, fit validates
    est = FastSGDRegressor(loss="foo", batch_size=0, device="tpu")
    assert est.get_params()["loss"] == "foo"


def test_partial_fit_with_early_stopping_raises():
    with pytest.raises(ValueError, match="early_stopping"):
        FastSGDRegressor(early_stopping=True).partial_fit(X, Y)


# ------------------------------------------------------------------ params / clone / pickle
def test_clone_get_set_params():
    est = FastSGDRegressor(optimizer=Adam(beta1=0.8), learning_rate=Cosine(T_max=10),
                           batch_size=8, eta0=0.05)
    params = est.get_params(deep=False)
    assert params["batch_size"] == 8
    assert params["optimizer"] == Adam(beta1=0.8)
    deep = est.get_params(deep=True)
    assert deep["optimizer__beta1"] == 0.8
    assert deep["learning_rate__T_max"] == 10
    c = clone(est)
    assert c is not est
    assert c.optimizer is not est.optimizer
    assert c.optimizer == est.optimizer
    assert c.get_params(deep=False).keys() == params.keys()
    c.set_params(optimizer__beta1=0.7, batch_size="full", learning_rate__T_max=3)
    assert c.optimizer.beta1 == 0.7
    assert est.optimizer.beta1 == 0.8  # clone is independent
    assert c.batch_size == "full"
    with pytest.raises(ValueError):
        c.set_params(not_a_param=1)

    fitted = _quiet_fit(FastSGDRegressor(max_iter=3), X, Y)
    fresh = clone(fitted)
    assert not hasattr(fresh, "coef_")


@pytest.mark.parametrize("optimizer, learning_rate", [
    ("adam", "constant"),
    ("momentum", "invscaling"),
    (Adam(amsgrad=True), Cosine(T_max=4, eta_min=1e-4)),
    ("sgd", Cosine(T_max=6)),
    (Momentum(nesterov=True), Cosine(T_max=5)),
])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_pickle_round_trip_continues_partial_fit_exactly(optimizer, learning_rate,
                                                         batch_size):
    est = FastSGDRegressor(optimizer=optimizer, learning_rate=learning_rate,
                           batch_size=batch_size, eta0=0.01, shuffle=True, random_state=0,
                           batch_norm=batch_size > 1)
    for _ in range(2):
        est.partial_fit(X, Y)
    # several restored copies: unpickling puts the state arrays at other addresses
    # (with other relative offsets); interleaved allocations vary them further
    rng = np.random.RandomState(0)
    junk, copies = [], []
    blob = pickle.dumps(est)
    for _ in range(12):
        junk.append(np.empty(rng.randint(1, 40)))
        copies.append(pickle.loads(blob))
    for restored in copies:
        assert_array_equal(restored.coef_, est.coef_)
    for _ in range(3):
        est.partial_fit(X, Y)
        for restored in copies:
            restored.partial_fit(X, Y)
    for restored in copies:
        assert_array_equal(restored.coef_, est.coef_)
        assert_array_equal(restored.intercept_, est.intercept_)
        assert restored.t_ == est.t_
        assert restored.optimizer_state_.keys() == est.optimizer_state_.keys()
        for key in est.optimizer_state_:
            assert_array_equal(restored.optimizer_state_[key], est.optimizer_state_[key],
                               err_msg=key)


def test_pickle_unfitted_and_fitted_predict():
    est = FastSGDRegressor(batch_size=8, optimizer="adam")
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params() == est.get_params()
    _quiet_fit(est, X, Y)
    restored = pickle.loads(pickle.dumps(est))
    assert_array_equal(restored.predict(X), est.predict(X))


@pytest.mark.parametrize("mode", ["plain", "plain_l1_avg", "adam_minibatch", "batch_norm"])
def test_k_partial_fits_equal_fit_max_iter_k(mode):
    # documented in partial_fit: k calls on the same data == fit(max_iter=k, tol=None)
    params = dict(random_state=0, shuffle=True, **MODES[mode])
    a = FastSGDRegressor(max_iter=4, tol=None, **params).fit(X, Y)
    b = FastSGDRegressor(**params)
    for _ in range(4):
        b.partial_fit(X, Y)
    assert_allclose(b.coef_, a.coef_, rtol=1e-10, atol=1e-13)
    assert_allclose(b.intercept_, a.intercept_, rtol=1e-10, atol=1e-13)
    assert b.t_ == a.t_


@pytest.mark.parametrize("mode", list(MODES))
def test_random_state_reproducible(mode):
    params = dict(max_iter=6, tol=None, shuffle=True, **MODES[mode])
    a = FastSGDRegressor(random_state=42, **params).fit(X, Y)
    b = FastSGDRegressor(random_state=42, **params).fit(X, Y)
    assert_array_equal(a.coef_, b.coef_)
    assert_array_equal(a.intercept_, b.intercept_)
    a.fit(X, Y)  # refit: same result again
    assert_array_equal(a.coef_, b.coef_)
    c = FastSGDRegressor(random_state=7, **params).fit(X, Y)
    if params.get("batch_size") == "full":
        # full batch reads the rows in order whatever the seed
        assert_array_equal(a.coef_, c.coef_)
    else:
        assert not np.array_equal(a.coef_, c.coef_)
    # np.random.RandomState instances are accepted too
    d = FastSGDRegressor(random_state=np.random.RandomState(3), **params).fit(X, Y)
    assert np.isfinite(d.coef_).all()


def test_random_state_reproducible_early_stopping():
    params = dict(max_iter=30, shuffle=True, early_stopping=True, batch_size=8,
                  optimizer="adam", n_iter_no_change=3)
    a = _quiet_fit(FastSGDRegressor(random_state=1, **params), X, Y)
    b = _quiet_fit(FastSGDRegressor(random_state=1, **params), X, Y)
    assert_array_equal(a.coef_, b.coef_)
    assert a.validation_scores_ == b.validation_scores_


def test_shuffle_false_ignores_random_state():
    params = dict(max_iter=5, tol=None, shuffle=False, batch_size=8, optimizer="adam")
    a = FastSGDRegressor(random_state=1, **params).fit(X, Y)
    b = FastSGDRegressor(random_state=2, **params).fit(X, Y)
    assert_array_equal(a.coef_, b.coef_)


# ------------------------------------------------------------------ pandas / pipelines
def test_dataframe_sets_feature_names():
    cols = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=cols)
    est = FastSGDRegressor(max_iter=5, tol=None, random_state=0).fit(df, pd.Series(Y))
    assert est.n_features_in_ == X.shape[1]
    assert_array_equal(est.feature_names_in_, np.array(cols, dtype=object))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        pred_df = est.predict(df)
    ref = FastSGDRegressor(max_iter=5, tol=None, random_state=0).fit(X, Y)
    assert_allclose(pred_df, ref.predict(X))
    assert not hasattr(ref, "feature_names_in_")
    with pytest.warns(UserWarning, match="feature names"):
        est.predict(X)
    with pytest.raises(ValueError, match="feature names"):
        est.predict(df[cols[::-1]])


def test_dataframe_float32_columns():
    df = pd.DataFrame(X.astype(np.float32), columns=list("abcdef"))
    est = FastSGDRegressor(max_iter=3, tol=None).fit(df, Y)
    assert est.coef_.dtype == np.float32


def test_pipeline():
    pipe = make_pipeline(StandardScaler(), FastSGDRegressor(random_state=0))
    pipe.fit(_Xr * 50 + 3, Y)
    assert pipe.score(_Xr * 50 + 3, Y) > 0.9
    pipe.set_params(fastsgdregressor__optimizer="adam", fastsgdregressor__batch_size=16)
    _quiet_fit(pipe, _Xr, Y)
    assert pipe.score(_Xr, Y) > 0.9


def test_grid_search_over_optimizer_and_batch_size():
    grid = GridSearchCV(
        FastSGDRegressor(random_state=0, max_iter=50, eta0=0.01),
        {"optimizer": ["sgd", "adam", Momentum(momentum=0.5)], "batch_size": [1, 16, "full"]},
        cv=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, Y)
    assert len(grid.cv_results_["params"]) == 9
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_score_ > 0.9
    best = grid.best_estimator_.get_params()["optimizer"]
    assert best in ("sgd", "adam", Momentum(momentum=0.5))


def test_grid_search_nested_optimizer_params():
    grid = GridSearchCV(
        FastSGDRegressor(random_state=0, max_iter=20, batch_size=16, optimizer=Adam(),
                         tol=None),
        {"optimizer__beta1": [0.5, 0.9], "learning_rate": ["constant", Cosine(T_max=20)]},
        cv=2,
    )
    grid.fit(X, Y)
    assert len(grid.cv_results_["params"]) == 4


# ------------------------------------------------------------------ no recompilation
def _dispatchers():
    from fastgd._kernels import cpu

    out = {}
    for name in dir(cpu):
        obj = getattr(cpu, name)
        if isinstance(obj, numba.core.dispatcher.Dispatcher):
            out[name] = obj
    return out


def _compile_counts():
    return {name: (len(d.signatures), len(d.overloads)) for name, d in _dispatchers().items()}


def test_dispatchers_found():
    names = set(_dispatchers())
    assert {"epoch_plain", "epoch_batch"} <= names


def test_no_recompilation_across_batch_hyper_parameters():
    warm = FastSGDRegressor(batch_size=32, optimizer="adam", max_iter=3, tol=None,
                            random_state=0)
    warm.fit(X, Y)
    before = _compile_counts()
    assert before["epoch_batch"][0] >= 1
    FastSGDRegressor(batch_size=7, optimizer="rmsprop", learning_rate=Cosine(T_max=5),
                     loss="huber", penalty="elasticnet", clip_norm=1.0, clip_value=0.5,
                     batch_norm=True, average=3, fit_intercept=False, max_iter=3,
                     tol=None, random_state=1, shuffle=False).fit(X, Y)
    assert _compile_counts() == before


def test_no_recompilation_sweep():
    from fastgd.schedules import (
        CosineWarmRestarts,
        Exponential,
        InverseSqrt,
        MultiStep,
        OneCycle,
        Step,
        Warmup,
    )

    # warm-up: one fit through each loop (per-sample scikit-learn path, batch path)
    FastSGDRegressor(max_iter=2, tol=None).fit(X, Y)
    FastSGDRegressor(batch_size=32, optimizer="adam", max_iter=2, tol=None).fit(X, Y)
    before = _compile_counts()
    configs = [
        dict(loss="huber", penalty="l1", learning_rate="optimal", average=True),
        dict(loss="epsilon_insensitive", penalty=None, learning_rate="adaptive",
             shuffle=False, early_stopping=True),
        dict(loss="squared_epsilon_insensitive", penalty="elasticnet", fit_intercept=False,
             learning_rate=Step(step_size=2), average=10, restore_best_weights=True),
        dict(batch_size="full", optimizer="momentum", learning_rate="constant"),
        dict(batch_size=None, optimizer="nesterov", learning_rate=Exponential(gamma=0.9)),
        dict(batch_size=5, optimizer="adagrad", learning_rate=MultiStep(milestones=[1, 2])),
        dict(batch_size=3, optimizer="adadelta", clip_value=0.1, loss="huber"),
        dict(batch_size=64, optimizer="adamw", learning_rate=OneCycle(total_steps=20)),
        dict(batch_size=1, optimizer="rmsprop", clip_norm=0.5,
             learning_rate=Warmup(Cosine(T_max=4), warmup_steps=3)),
        dict(batch_size=1, optimizer="sgd", batch_norm=True,
             learning_rate=InverseSqrt(warmup_steps=4)),
        dict(batch_size=1, optimizer="sgd", clip_value=1.0),
        dict(batch_size=8, optimizer=Adam(amsgrad=True, weight_decay=0.1), penalty="l1",
             learning_rate=CosineWarmRestarts(T_0=2), early_stopping=True,
             restore_best_weights=True, shuffle=False),
        dict(batch_size=16, batch_norm=True, bn_momentum=0.5, average=4, shuffle=True),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for cfg in configs:
            est = FastSGDRegressor(max_iter=3, random_state=0, **cfg).fit(X, Y)
            est.partial_fit(X, Y) if not cfg.get("early_stopping") else None
            est.fit(X, Y, sample_weight=np.linspace(0.5, 1.5, X.shape[0]))
            after = _compile_counts()
            assert after == before, (cfg, {k: (before[k], after[k]) for k in after
                                           if after[k] != before.get(k)})


# ------------------------------------------------------------------ batch norm
def _badly_scaled():
    Xb, yb = make_regression(n_samples=400, n_features=5, noise=1.0, random_state=3)
    Xb = StandardScaler().fit_transform(Xb)
    Xb[:, 0] *= 1000.0
    yb = (yb - yb.mean()) / yb.std()
    return Xb, yb


def _diverged(est_params, Xb, yb):
    """True if training blows up: the overflow error, or a useless exploding fit.

    scikit-learn's (and fastgd's) clipping of dloss/dp to 1e12 bounds each update, so
    on a feature scaled by 1000 the weights only grow linearly (to ~1e20) and never
    overflow: plain SGD at a too-large rate ends with R^2 ~ -1e30 instead of raising.
    """
    try:
        est = FastSGDRegressor(**est_params).fit(Xb, yb)
    except ValueError as exc:
        assert "Floating-point under-/overflow occurred at epoch" in str(exc)
        return True
    with np.errstate(all="ignore"):
        score = est.score(Xb, yb)
    return (not np.isfinite(est.coef_).all()) or score < -1e6


def test_batch_norm_rescues_badly_scaled_problem():
    Xb, yb = _badly_scaled()
    params = dict(batch_size=32, optimizer="sgd", learning_rate="constant",
                  max_iter=60, tol=None, random_state=0)
    found = None
    for eta0 in (0.01, 0.03, 0.1, 0.003):
        if not _diverged(dict(params, eta0=eta0), Xb, yb):
            continue  # plain minibatch SGD survived: try another rate
        bn = FastSGDRegressor(eta0=eta0, batch_norm=True, **params).fit(Xb, yb)
        if bn.score(Xb, yb) > 0.9:
            found = (eta0, bn)
            break
    assert found is not None, "no learning rate where batch_norm trains and plain diverges"
    eta0, bn = found
    assert_allclose(bn.predict(Xb), Xb @ bn.coef_ + bn.intercept_[0], rtol=1e-10,
                    atol=1e-10)
    assert bn.bn_running_mean_.shape == (Xb.shape[1],)
    assert bn.bn_running_var_.shape == (Xb.shape[1],)
    # the running variance of the large feature is ~1e6
    assert bn.bn_running_var_[0] > 1e5
    assert bn.score(Xb, yb) > 0.9


def test_batch_norm_survives_extreme_scale():
    # plain minibatch SGD only reaches the overflow error when x * 1e12 (the dloss
    # clip) overflows, at scales where batch statistics overflow too; at 1e100 it
    # silently explodes, while batch norm divides the scale out.
    Xb, yb = _badly_scaled()
    Xb = Xb.copy()
    Xb[:, 0] *= 1e97
    params = dict(batch_size=32, optimizer="sgd", learning_rate="constant",
                  max_iter=20, tol=None, random_state=0, eta0=0.01)
    assert _diverged(params, Xb, yb)
    bn = FastSGDRegressor(batch_norm=True, **params).fit(Xb, yb)
    assert np.isfinite(bn.coef_).all()
    assert bn.score(Xb, yb) > 0.9
    assert_allclose(bn.predict(Xb), Xb @ bn.coef_ + bn.intercept_[0], rtol=1e-9)


def test_batch_norm_predict_is_linear_after_partial_fit():
    Xb, yb = _badly_scaled()
    est = FastSGDRegressor(batch_size=16, batch_norm=True, eta0=0.05, random_state=0)
    for _ in range(3):
        est.partial_fit(Xb, yb)
        assert_allclose(est.predict(Xb), Xb @ est.coef_ + est.intercept_[0], rtol=1e-10,
                        atol=1e-10)


# ------------------------------------------------------------------ histories
@pytest.mark.parametrize("mode", list(MODES))
def test_histories_have_length_n_iter(mode):
    est = _quiet_fit(FastSGDRegressor(max_iter=30, random_state=0, **MODES[mode]), X, Y)
    for name in ("loss_curve_", "lr_curve_", "grad_norm_curve_"):
        assert len(getattr(est, name)) == est.n_iter_, name
        assert np.isfinite(getattr(est, name)).all(), name
    assert not hasattr(est, "validation_scores_")


@pytest.mark.parametrize("restore_best_weights", [False, True])
@pytest.mark.parametrize("mode", list(MODES))
def test_early_stopping_histories(mode, restore_best_weights):
    est = _quiet_fit(
        FastSGDRegressor(max_iter=40, random_state=0, early_stopping=True,
                         n_iter_no_change=3, restore_best_weights=restore_best_weights,
                         **MODES[mode]),
        X, Y,
    )
    assert len(est.validation_scores_) == est.n_iter_
    for name in ("loss_curve_", "lr_curve_", "grad_norm_curve_"):
        assert len(getattr(est, name)) == est.n_iter_, name


def _validation_split(n, validation_fraction, random_state):
    cv = ShuffleSplit(test_size=validation_fraction, random_state=random_state)
    _, idx_val = next(cv.split(np.zeros((n, 1))))
    return idx_val


@pytest.mark.parametrize("params", [
    dict(batch_size=16, optimizer="adam", eta0=0.05),
    dict(batch_size=8, optimizer="momentum", learning_rate="constant", eta0=0.05),
    dict(penalty=None, learning_rate="constant", eta0=0.05),  # per-sample path
])
def test_restore_best_weights_returns_best_validation_epoch(params):
    est = _quiet_fit(
        FastSGDRegressor(max_iter=25, random_state=0, early_stopping=True, tol=None,
                         validation_fraction=0.2, restore_best_weights=True, **params),
        X, Y,
    )
    assert est.n_iter_ == 25
    idx_val = _validation_split(X.shape[0], 0.2, 0)
    val_score = r2_score(Y[idx_val], est.predict(X[idx_val]))
    assert_allclose(val_score, max(est.validation_scores_), rtol=1e-9)


def test_restore_best_weights_without_early_stopping():
    est = FastSGDRegressor(max_iter=15, tol=None, batch_size=8, optimizer="adam",
                           eta0=0.05, restore_best_weights=True, random_state=0).fit(X, Y)
    assert len(est.loss_curve_) == est.n_iter_ == 15
    assert np.isfinite(est.coef_).all()


def test_histories_reset_on_refit():
    est = _quiet_fit(FastSGDRegressor(max_iter=8, early_stopping=True, random_state=0),
                     X, Y)
    assert hasattr(est, "validation_scores_")
    est.set_params(early_stopping=False, max_iter=4, tol=None)
    est.fit(X, Y)
    assert len(est.loss_curve_) == 4
    assert not hasattr(est, "validation_scores_")


def test_lr_curve_follows_schedule():
    est = FastSGDRegressor(max_iter=6, tol=None, learning_rate=Cosine(T_max=6), eta0=0.1,
                           batch_size=16, optimizer="adam", random_state=0).fit(X, Y)
    expected = [Cosine(T_max=6, lr=0.1)(e) for e in range(6)]
    assert_allclose(est.lr_curve_, expected, rtol=1e-12)


@pytest.mark.parametrize("params", [
    dict(batch_size=8, optimizer="adam", penalty="l2", alpha=0.01),
    dict(batch_size=16, batch_norm=True, penalty="elasticnet", alpha=0.01),
    dict(penalty=None),  # per-sample path, no weight scale involved
])
def test_validation_scores_are_the_models_validation_r2(params):
    est = FastSGDRegressor(max_iter=10, tol=None, early_stopping=True,
                           validation_fraction=0.2, random_state=0,
                           learning_rate="constant", eta0=0.05, **params).fit(X, Y)
    idx_val = _validation_split(X.shape[0], 0.2, 0)
    assert_allclose(est.validation_scores_[-1],
                    r2_score(Y[idx_val], est.predict(X[idx_val])), rtol=1e-9)


# scikit-learn (1.9) scores the validation set of its per-sample path with the weight
# array *without* its running scale factor (R^2 = -3.8 here for a model whose validation
# R^2 is 0.994); fastgd deliberately scores the true weights.
def test_validation_scores_true_r2_plain_l2():
    est = FastSGDRegressor(max_iter=25, tol=None, early_stopping=True,
                           validation_fraction=0.2, random_state=0, shuffle=False,
                           learning_rate="constant", eta0=0.05, penalty="l2",
                           alpha=0.01).fit(X, Y)
    idx_val = _validation_split(X.shape[0], 0.2, 0)
    assert_allclose(est.validation_scores_[-1],
                    r2_score(Y[idx_val], est.predict(X[idx_val])), rtol=1e-9)


# ------------------------------------------------------------------ scikit-learn twin
@pytest.mark.parametrize("mode", list(MODES))
def test_to_sklearn_predicts_the_same(mode):
    from sklearn.linear_model import SGDRegressor

    est = _quiet_fit(FastSGDRegressor(random_state=0, max_iter=20, **MODES[mode]), X, Y)
    twin = est.to_sklearn()
    assert type(twin) is SGDRegressor
    assert (twin.t_, twin.n_iter_, twin.n_features_in_) == (est.t_, est.n_iter_,
                                                           est.n_features_in_)
    assert twin.coef_.shape == est.coef_.shape and twin.intercept_.shape == (1,)
    assert_allclose(twin.predict(X), est.predict(X), rtol=1e-12, atol=1e-14)
    assert twin.get_params()["loss"] == est.loss


def test_to_sklearn_resolves_the_rate():
    assert FastSGDRegressor().fit(X, Y).to_sklearn().get_params()["learning_rate"] == \
        "invscaling"
    twin = _quiet_fit(FastSGDRegressor(optimizer="adam", batch_size=16, max_iter=3), X,
                      Y).to_sklearn()
    assert (twin.learning_rate, twin.eta0) == ("constant", 1e-3)
    twin = _quiet_fit(FastSGDRegressor(learning_rate=Cosine(T_max=3, lr=0.2),
                                       max_iter=3), X, Y).to_sklearn()
    assert (twin.learning_rate, twin.eta0) == ("constant", 0.2)


def test_to_sklearn_multi_output_float32_sparse_and_frames():
    import scipy.sparse as sp
    from sklearn.multioutput import MultiOutputRegressor

    X32 = X.astype(np.float32)
    Y2 = np.column_stack([Y, -2.0 * Y + 1.0])
    est = _quiet_fit(FastSGDRegressor(batch_size=8, random_state=0, max_iter=5), X32, Y2)
    twin = est.to_sklearn()
    assert type(twin) is MultiOutputRegressor and len(twin.estimators_) == 2
    assert twin.estimators_[1].coef_.dtype == np.float32
    assert_allclose(twin.predict(X32), est.predict(X32), rtol=1e-6)
    S = sp.csr_matrix(X)
    est = _quiet_fit(FastSGDRegressor(random_state=0, max_iter=5), S, Y)
    assert_allclose(est.to_sklearn().predict(S), est.predict(S), rtol=1e-12, atol=1e-14)
    frame = pd.DataFrame(X, columns=[f"x{j}" for j in range(X.shape[1])])
    est = _quiet_fit(FastSGDRegressor(random_state=0, max_iter=5), frame, Y2)
    twin = est.to_sklearn()
    assert_array_equal(twin.feature_names_in_, frame.columns)
    assert_allclose(twin.predict(frame), est.predict(frame), rtol=1e-12, atol=1e-14)
