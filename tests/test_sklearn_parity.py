"""Parity of FastSGDRegressor with scikit-learn's SGDRegressor.

With ``batch_size=1, optimizer="sgd"`` (no clipping, no batch norm) and
``shuffle=False`` fastgd runs scikit-learn's ``_plain_sgd`` algorithm exactly
(docs/semantics.md, "Exception -- scikit-learn's algorithm"), so coefficients,
intercept, ``n_iter_`` and ``t_`` must agree to round-off.
"""

import itertools
import re
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor
from sklearn.preprocessing import StandardScaler

from fastgd import FastSGDRegressor

LOSSES = ["squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]
PENALTIES = [None, "l2", "l1", "elasticnet"]
LEARNING_RATES = ["constant", "optimal", "invscaling", "adaptive"]
AVERAGES = [False, True, 10]
TOLS = {"tol_none": None, "tol_default": 1e-3}

RTOL = 1e-9
OVERFLOW = "Floating-point under-/overflow occurred at epoch"
COMMON = dict(shuffle=False, max_iter=20, alpha=0.01, eta0=0.05)


def _alpha(learning_rate):
    # "optimal" takes eta ~ 1/(alpha (t0 + t)): a larger alpha keeps its first steps
    # stable, so that the comparison is not one of two exploding trajectories
    return 0.1 if learning_rate == "optimal" else 0.01


def _data(n=60, d=5, seed=0, dtype=np.float64):
    X, y = make_regression(n_samples=n, n_features=d, noise=10.0, random_state=seed)
    X = StandardScaler().fit_transform(X) / np.sqrt(d)  # ||x_i||^2 ~ 1
    y = (y - y.mean()) / y.std()
    return X.astype(dtype), y.astype(dtype)


X64, Y64 = _data()


def _fast(**params):
    return FastSGDRegressor(batch_size=1, optimizer="sgd", **params)


def _fit_both(fast, sk, X, y, **fit_kw):
    """Fit both; return the ConvergenceWarning flag of each."""
    flags = []
    for est in (fast, sk):
        kw = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in fit_kw.items()}
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            est.fit(X.copy(), y.copy(), **kw)
        flags.append(any(issubclass(w.category, ConvergenceWarning) for w in rec))
    return flags


def _assert_same(fast, sk, rtol=RTOL, atol=1e-12, check_t=True):
    assert fast.n_iter_ == sk.n_iter_, (fast.n_iter_, sk.n_iter_)
    assert fast.coef_.shape == sk.coef_.shape
    assert fast.intercept_.shape == sk.intercept_.shape == (1,)
    assert_allclose(fast.coef_, sk.coef_, rtol=rtol, atol=atol)
    assert_allclose(fast.intercept_, sk.intercept_, rtol=rtol, atol=atol)
    if check_t:
        assert fast.t_ == sk.t_, (fast.t_, sk.t_)


# --------------------------------------------------------------- the full grid
@pytest.mark.parametrize("tol", list(TOLS.values()), ids=list(TOLS))
@pytest.mark.parametrize(
    "loss, penalty, learning_rate, average",
    list(itertools.product(LOSSES, PENALTIES, LEARNING_RATES, AVERAGES)),
)
def test_exact_parity_grid(loss, penalty, learning_rate, average, tol):
    params = dict(COMMON, loss=loss, penalty=penalty, learning_rate=learning_rate,
                  average=average, tol=tol, alpha=_alpha(learning_rate))
    fast, sk = _fast(**params), SGDRegressor(**params)
    w_fast, w_sk = _fit_both(fast, sk, X64, Y64)
    _assert_same(fast, sk)
    assert w_fast == w_sk, "ConvergenceWarning emitted by one estimator only"
    assert_allclose(fast.predict(X64), sk.predict(X64), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "loss, learning_rate",
    # "optimal" with alpha=1e-4 is excluded: eta ~ 10 makes both trajectories
    # explode (to ~1e13) without overflowing, where round-off is amplified chaotically.
    [(loss, lr) for loss in ["squared_error", "huber"] for lr in LEARNING_RATES
     if lr != "optimal"],
)
def test_exact_parity_default_alpha(loss, learning_rate):
    # scikit-learn's defaults (alpha=1e-4, eta0=0.01): either both train identically,
    # or both diverge at the same epoch.
    params = dict(loss=loss, learning_rate=learning_rate, shuffle=False, max_iter=15)
    fast, sk = _fast(**params), SGDRegressor(**params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            sk.fit(X64, Y64)
    except ValueError as exc:
        epoch = re.search(r"epoch #(\d+)", str(exc)).group(1)
        with pytest.raises(ValueError, match=f"occurred at epoch #{epoch}\\b"):
            fast.fit(X64, Y64)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast.fit(X64, Y64)
    _assert_same(fast, sk)


# --------------------------------------------------------------- sample weights
@pytest.mark.parametrize("tol", [None, 1e-3])
@pytest.mark.parametrize("average", [False, True, 10])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize(
    "loss, learning_rate",
    list(zip(LOSSES, LEARNING_RATES, strict=True)) + [("squared_error", "invscaling")],
)
def test_parity_sample_weight(loss, learning_rate, penalty, average, tol):
    rng = np.random.RandomState(1)
    sw = rng.uniform(0.2, 3.0, size=X64.shape[0])
    sw[::7] = 0.0  # zero weights too
    params = dict(COMMON, loss=loss, penalty=penalty, learning_rate=learning_rate,
                  alpha=_alpha(learning_rate),
                  average=average, tol=tol)
    fast, sk = _fast(**params), SGDRegressor(**params)
    w_fast, w_sk = _fit_both(fast, sk, X64, Y64, sample_weight=sw)
    _assert_same(fast, sk)
    assert w_fast == w_sk


def test_parity_sample_weight_ones_equals_none():
    params = dict(COMMON, learning_rate="invscaling", tol=None)
    a = _fast(**params).fit(X64, Y64)
    b = _fast(**params).fit(X64, Y64, sample_weight=np.ones(X64.shape[0]))
    assert_allclose(a.coef_, b.coef_, rtol=0, atol=0)
    assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=0)


# --------------------------------------------------------------- no intercept
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("learning_rate", LEARNING_RATES)
def test_parity_no_intercept(learning_rate, penalty, average):
    params = dict(COMMON, learning_rate=learning_rate,
                  alpha=_alpha(learning_rate), penalty=penalty, average=average,
                  fit_intercept=False, tol=1e-3)
    fast, sk = _fast(**params), SGDRegressor(**params)
    _fit_both(fast, sk, X64, Y64 + 0.7)
    _assert_same(fast, sk)
    assert fast.intercept_[0] == 0.0


# --------------------------------------------------------------- early stopping
@pytest.mark.parametrize("random_state", [0, 3])
@pytest.mark.parametrize("tol", [None, 1e-3])
@pytest.mark.parametrize("average", AVERAGES)
# Exact parity only where scikit-learn's validation scores are right: it scores its
# per-sample path with the weight array *without* its running L2 scale factor, which
# fastgd deliberately does not copy (see test_early_stopping_scores_true_weights).
@pytest.mark.parametrize("penalty", [None, "l1"])
@pytest.mark.parametrize("learning_rate", LEARNING_RATES)
def test_parity_early_stopping(learning_rate, penalty, average, tol, random_state):
    params = dict(COMMON, learning_rate=learning_rate,
                  alpha=_alpha(learning_rate), penalty=penalty, average=average,
                  tol=tol, early_stopping=True, validation_fraction=0.2,
                  n_iter_no_change=3, random_state=random_state, max_iter=30)
    fast, sk = _fast(**params), SGDRegressor(**params)
    w_fast, w_sk = _fit_both(fast, sk, X64, Y64)
    _assert_same(fast, sk, check_t=False)
    _assert_t_counts_training_rows(fast, sk, X64.shape[0], 0.2)
    assert w_fast == w_sk
    assert len(fast.validation_scores_) == fast.n_iter_


def test_early_stopping_scores_true_weights():
    """With L2 shrinkage fastgd's validation scores are the R^2 of the real model."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import ShuffleSplit

    params = dict(COMMON, learning_rate="constant", penalty="l2", early_stopping=True,
                  validation_fraction=0.2, n_iter_no_change=3, random_state=0,
                  max_iter=1, tol=None)
    fast = _fast(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fast.fit(X64, Y64)
    _, idx_val = next(ShuffleSplit(test_size=0.2, random_state=0).split(X64))
    assert fast.validation_scores_[0] == pytest.approx(
        r2_score(Y64[idx_val], fast.predict(X64[idx_val])), rel=1e-9)


def _assert_t_counts_training_rows(fast, sk, n, validation_fraction):
    # fastgd's t_ is "updates made + 1"; scikit-learn adds n_iter_ * n_samples,
    # counting the held-out validation rows that were never trained on.
    n_val = int(np.ceil(validation_fraction * n))
    assert fast.t_ == 1 + fast.n_iter_ * (n - n_val)
    assert sk.t_ == 1 + sk.n_iter_ * n


def test_parity_early_stopping_sample_weight():
    rng = np.random.RandomState(5)
    sw = rng.uniform(0.5, 2.0, size=X64.shape[0])
    params = dict(COMMON, learning_rate="adaptive", tol=1e-3, early_stopping=True,
                  validation_fraction=0.25, n_iter_no_change=2, random_state=7,
                  max_iter=40, penalty=None)
    fast, sk = _fast(**params), SGDRegressor(**params)
    _fit_both(fast, sk, X64, Y64, sample_weight=sw)
    _assert_same(fast, sk, check_t=False)
    _assert_t_counts_training_rows(fast, sk, X64.shape[0], 0.25)


# --------------------------------------------------------------- coef_init / intercept_init
@pytest.mark.parametrize("average", [False, True, 10])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("intercept_shape", ["scalar", "1d"])
def test_parity_coef_init(penalty, average, intercept_shape):
    rng = np.random.RandomState(2)
    coef_init = rng.normal(size=X64.shape[1])
    intercept_init = 0.3 if intercept_shape == "scalar" else np.array([0.3])
    params = dict(COMMON, penalty=penalty, average=average, tol=1e-3,
                  learning_rate="invscaling")
    fast, sk = _fast(**params), SGDRegressor(**params)
    _fit_both(fast, sk, X64, Y64, coef_init=coef_init, intercept_init=intercept_init)
    _assert_same(fast, sk)


def test_parity_coef_init_no_intercept():
    coef_init = np.linspace(-1, 1, X64.shape[1])
    params = dict(COMMON, fit_intercept=False, tol=None, learning_rate="constant")
    fast, sk = _fast(**params), SGDRegressor(**params)
    _fit_both(fast, sk, X64, Y64, coef_init=coef_init, intercept_init=0.5)
    _assert_same(fast, sk)
    assert_allclose(fast.intercept_, [0.5])


# --------------------------------------------------------------- warm start
# average=False only: with averaging, scikit-learn 1.9's warm start continues from the
# non-averaged iterate (it ignores coef_init once coef_ exists) and restarts its lazy
# average without clearing the old one, so its result is
#     (fresh average from the non-averaged iterate) + previous_average / n_updates.
# fastgd restarts from coef_ with a fresh average (test_warm_start_average_semantics).
@pytest.mark.parametrize("average", [False])
@pytest.mark.parametrize("penalty", PENALTIES)
@pytest.mark.parametrize("learning_rate", LEARNING_RATES)
def test_parity_warm_start(learning_rate, penalty, average):
    params = dict(COMMON, learning_rate=learning_rate,
                  alpha=_alpha(learning_rate), penalty=penalty, average=average,
                  warm_start=True, tol=1e-3, max_iter=5)
    fast, sk = _fast(**params), SGDRegressor(**params)
    X2, y2 = _data(seed=1)
    _fit_both(fast, sk, X64, Y64)
    _assert_same(fast, sk)
    # second fit on other data continues from the first fit's coef_/intercept_
    _fit_both(fast, sk, X2, y2)
    _assert_same(fast, sk)
    # and a third with a changed hyper-parameter
    fast.set_params(eta0=0.005)
    sk.set_params(eta0=0.005)
    _fit_both(fast, sk, X64, Y64)
    _assert_same(fast, sk)


@pytest.mark.parametrize("average", [True, 10])
def test_warm_start_average_semantics(average):
    # implicit restart (warm_start) == explicit restart from coef_/intercept_
    params = dict(COMMON, learning_rate="invscaling", average=average, tol=None,
                  max_iter=5)
    X2, y2 = _data(seed=1)
    warm = _fast(warm_start=True, **params).fit(X64, Y64)
    first_coef, first_intercept = warm.coef_.copy(), warm.intercept_.copy()
    warm.fit(X2, y2)
    explicit = _fast(**params).fit(X2, y2, coef_init=first_coef,
                                   intercept_init=first_intercept)
    assert_allclose(warm.coef_, explicit.coef_, rtol=1e-12, atol=1e-15)
    assert_allclose(warm.intercept_, explicit.intercept_, rtol=1e-12, atol=1e-15)
    assert warm.t_ == explicit.t_


def test_parity_refit_without_warm_start_restarts():
    params = dict(COMMON, tol=None, max_iter=3)
    fast, sk = _fast(**params), SGDRegressor(**params)
    _fit_both(fast, sk, X64, Y64)
    _fit_both(fast, sk, X64, Y64)
    _assert_same(fast, sk)
    fresh = _fast(**params).fit(X64, Y64)
    assert_allclose(fast.coef_, fresh.coef_, rtol=0, atol=0)


# --------------------------------------------------------------- partial_fit
@pytest.mark.parametrize("average", AVERAGES)
@pytest.mark.parametrize("penalty", [None, "l2"])
@pytest.mark.parametrize("learning_rate", LEARNING_RATES)
@pytest.mark.parametrize("loss", LOSSES)
def test_parity_partial_fit(loss, learning_rate, penalty, average):
    params = dict(COMMON, loss=loss, learning_rate=learning_rate,
                  alpha=_alpha(learning_rate), penalty=penalty,
                  average=average, tol=1e-3)
    fast, sk = _fast(**params), SGDRegressor(**params)
    chunks = np.array_split(np.arange(X64.shape[0]), 3)
    rng = np.random.RandomState(4)
    sw = rng.uniform(0.5, 2.0, size=X64.shape[0])
    for k, idx in enumerate(chunks):
        kw = {"sample_weight": sw[idx]} if k == 1 else {}
        fast.partial_fit(X64[idx], Y64[idx], **kw)
        sk.partial_fit(X64[idx], Y64[idx], **kw)
        _assert_same(fast, sk)


@pytest.mark.parametrize("penalty", [None, "l2"])
@pytest.mark.parametrize("learning_rate", ["optimal", "invscaling"])
def test_parity_fit_then_partial_fit(learning_rate, penalty):
    params = dict(COMMON, learning_rate=learning_rate,
                  alpha=_alpha(learning_rate), penalty=penalty, tol=None,
                  max_iter=4)
    fast, sk = _fast(**params), SGDRegressor(**params)
    _fit_both(fast, sk, X64, Y64)
    for _ in range(3):
        fast.partial_fit(X64, Y64)
        sk.partial_fit(X64, Y64)
        _assert_same(fast, sk)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_partial_fit_l1_single_call_matches(penalty):
    # one partial_fit call is one epoch from scratch: no L1 ledger to carry yet
    params = dict(COMMON, penalty=penalty, learning_rate="invscaling")
    fast, sk = _fast(**params), SGDRegressor(**params)
    fast.partial_fit(X64, Y64)
    sk.partial_fit(X64, Y64)
    _assert_same(fast, sk)


# --------------------------------------------------------------- float32
@pytest.mark.parametrize("average", [False, True])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet"])
@pytest.mark.parametrize("loss", ["squared_error", "huber"])
def test_float32_close_to_sklearn(loss, penalty, average):
    X32, y32 = X64.astype(np.float32), Y64.astype(np.float32)
    params = dict(COMMON, loss=loss, penalty=penalty, average=average, tol=None,
                  learning_rate="invscaling")
    fast, sk = _fast(**params), SGDRegressor(**params)
    fast.fit(X32, y32)
    sk.fit(X32, y32)
    assert fast.coef_.dtype == np.float32
    assert fast.intercept_.dtype == np.float32
    assert fast.n_iter_ == sk.n_iter_
    scale = np.abs(sk.coef_).max()
    assert_allclose(fast.coef_, sk.coef_, rtol=1e-4, atol=1e-4 * scale)
    assert_allclose(fast.intercept_, sk.intercept_, rtol=1e-4, atol=1e-4 * scale)
    # float64 internally: float32 result equals the float64 fit on the same
    # (float32-rounded) data, cast to float32
    ref = _fast(**params).fit(X32.astype(np.float64), y32.astype(np.float64))
    assert_allclose(fast.coef_, ref.coef_.astype(np.float32), rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------- shuffle=True
def test_shuffle_true_reaches_sklearn_r2_on_diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    r2_fast, r2_sk = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for rs in range(5):
            params = dict(random_state=rs, shuffle=True)
            r2_fast.append(FastSGDRegressor(**params).fit(X, y).score(X, y))
            r2_sk.append(SGDRegressor(**params).fit(X, y).score(X, y))
    assert abs(np.mean(r2_fast) - np.mean(r2_sk)) < 0.005, (r2_fast, r2_sk)
    assert np.mean(r2_fast) > 0.45


@pytest.mark.parametrize("learning_rate, alpha, average", [
    ("optimal", 0.3, False),  # smaller alpha: eta ~ 1/alpha blows up on 10 features
    ("adaptive", 0.01, True),
    ("constant", 0.01, True),
])
def test_shuffle_true_similar_quality_other_schedules(learning_rate, alpha, average):
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    r2_fast, r2_sk = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for rs in range(5):
            params = dict(random_state=rs, learning_rate=learning_rate, alpha=alpha,
                          eta0=0.001, average=average)
            r2_fast.append(FastSGDRegressor(**params).fit(X, y).score(X, y))
            r2_sk.append(SGDRegressor(**params).fit(X, y).score(X, y))
    assert abs(np.mean(r2_fast) - np.mean(r2_sk)) < 0.005, (r2_fast, r2_sk)


# --------------------------------------------------------------- warnings and errors
def test_convergence_warning_when_max_iter_reached():
    params = dict(COMMON, max_iter=2, tol=1e-3)
    with pytest.warns(ConvergenceWarning, match="Maximum number of iteration"):
        fast = _fast(**params).fit(X64, Y64)
    assert fast.n_iter_ == 2
    with pytest.warns(ConvergenceWarning):
        SGDRegressor(**params).fit(X64, Y64)


def test_no_convergence_warning_with_tol_none():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fast = _fast(**dict(COMMON, max_iter=2, tol=None)).fit(X64, Y64)
    assert fast.n_iter_ == 2


def test_no_convergence_warning_when_converged():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fast = FastSGDRegressor(random_state=0).fit(X64, Y64)
    assert fast.n_iter_ < 1000


def test_partial_fit_no_convergence_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        FastSGDRegressor(max_iter=1).partial_fit(X64, Y64)


def _diverging_data():
    # (X * 1e10 does not overflow in either library: dloss is clipped to 1e12, so the
    # weights only reach ~1e22.) Two features at 1e200 overflow in the first epoch.
    X = X64.copy()
    X[:, :2] *= 1e200
    return X, Y64


@pytest.mark.parametrize("est_cls", [FastSGDRegressor, SGDRegressor])
def test_divergence_raises(est_cls):
    X, y = _diverging_data()
    est = est_cls(eta0=1.0, learning_rate="constant", shuffle=False, max_iter=20)
    with pytest.raises(ValueError, match=OVERFLOW + r" #\d+"):
        est.fit(X, y)


def test_divergence_message_and_epoch_match_sklearn():
    X, y = _diverging_data()
    params = dict(eta0=1.0, learning_rate="constant", shuffle=False, max_iter=20)
    with pytest.raises(ValueError) as sk_exc:
        SGDRegressor(**params).fit(X, y)
    with pytest.raises(ValueError) as fast_exc:
        _fast(**params).fit(X, y)
    sk_epoch = re.search(r"epoch #(\d+)", str(sk_exc.value)).group(1)
    msg = str(fast_exc.value)
    assert f"occurred at epoch #{sk_epoch}" in msg, msg
    assert re.search(r"scal", msg, re.IGNORECASE), msg
    assert re.search(r"clip", msg, re.IGNORECASE), msg


@pytest.mark.parametrize("extra", [
    dict(batch_size=8, optimizer="sgd"),
    dict(batch_size="full", optimizer="momentum"),
    dict(batch_size=1, optimizer="momentum"),
])
def test_divergence_raises_other_modes(extra):
    X, y = _diverging_data()
    params = dict(eta0=1.0, learning_rate="constant", shuffle=False, max_iter=20)
    params.update(extra)
    with pytest.raises(ValueError, match=OVERFLOW) as exc:
        FastSGDRegressor(**params).fit(X, y)
    assert re.search(r"clip", str(exc.value), re.IGNORECASE)
