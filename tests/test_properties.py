"""Property-based robustness tests (hypothesis).

Random shapes, dtypes, memory layouts, batch modes, optimizers, schedules, clipping,
batch norm, sparse input and shuffling: ``fit`` either returns a finite model (with the
documented dtype) or raises one of the documented ``ValueError`` messages; it never
crashes, never emits a ``RuntimeWarning`` (but the documented ``DivergenceWarning``
on problems scaled so badly that training runs away), never returns NaN and never
mutates its inputs. ``minimize`` on random convex quadratics returns a well-shaped trajectory that
is finite, or ``success=False`` with a message.
"""

import itertools
import warnings

import numba
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, UndefinedMetricWarning

from fastgd import DivergenceWarning, FastSGDClassifier, FastSGDRegressor, minimize
from fastgd.schedules import Cosine, Step, Warmup

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam",
              "adamw"]
SCHEDULES = ["constant", "invscaling", "adaptive", "optimal", "cosine", "warmup_step"]
BATCH_SIZES = [1, 2, 7, "full"]

OVERFLOW = "Floating-point under-/overflow occurred at epoch"
SPLIT = "validation set"
# scikit-learn's ShuffleSplit raises first when n_samples is tiny (e.g. 1 sample)
SPLIT_SKLEARN = "resulting train set will be empty"
BN_SPARSE = "batch_norm=True is not supported for sparse input"
N_CLASSES = "number of classes has to be greater than one"
# scikit-learn's StratifiedShuffleSplit (classifier early stopping) on tiny data
STRATIFIED = ("least populated class", "should be greater or equal to the number of classes")

_SETTINGS = dict(deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
_memmap_ids = itertools.count()


def _schedule(name):
    if name == "cosine":
        return Cosine(T_max=5)
    if name == "warmup_step":
        return Warmup(Step(2), 2)
    return name


@st.composite
def datasets(draw):
    """(seed, n_samples, n_features, dtype, layout, sparse, scale)."""
    n = draw(st.sampled_from([1, 2, 3]) if draw(st.integers(0, 9)) == 0
             else st.integers(1, 40))
    d = draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(["float32", "float64", "int"]))
    # 1e150 only in float64 (it would be inf in float32): drives the overflow check
    scales = [1.0, 1.0, 1e3, 1e8] + ([1e150] if dtype == "float64" else [])
    return dict(
        seed=draw(st.integers(0, 2**31 - 1)),
        n=n,
        d=d,
        dtype=dtype,
        layout=draw(st.sampled_from(["C", "F", "strided", "readonly", "memmap"])),
        sparse=draw(st.booleans()),
        scale=draw(st.sampled_from(scales)),
        const_col=draw(st.booleans()),
    )


@st.composite
def fit_params(draw, sparse):
    sched = draw(st.sampled_from(SCHEDULES))
    alpha = draw(st.sampled_from([1e-4, 1e-2, 1.0]) if sched == "optimal"
                 else st.sampled_from([0.0, 1e-4, 1e-2, 1.0]))
    return dict(
        penalty=draw(st.sampled_from(["l2", "l1", "elasticnet", None])),
        alpha=alpha,
        max_iter=draw(st.integers(1, 5)),
        tol=draw(st.sampled_from([None, 1e-3])),
        shuffle=draw(st.sampled_from([True, False, "block"])),
        random_state=draw(st.integers(0, 3)),
        learning_rate=_schedule(sched),
        eta0=draw(st.sampled_from([1e-3, 0.01, 0.5, 10.0])),
        early_stopping=draw(st.booleans()),
        n_iter_no_change=draw(st.integers(1, 3)),
        average=draw(st.sampled_from([False, False, True, 3])),
        batch_size=draw(st.sampled_from(BATCH_SIZES)),
        optimizer=draw(st.sampled_from(OPTIMIZERS)),
        clip_norm=draw(st.sampled_from([None, None, 0.5, 10.0])),
        clip_value=draw(st.sampled_from([None, None, 0.1, 5.0])),
        batch_norm=draw(st.booleans()) and not sparse,
    )


def _make_X(data, tmp_path):
    rng = np.random.default_rng(data["seed"])
    n, d = data["n"], data["d"]
    base = rng.normal(size=(n, 2 * d)) * data["scale"]
    if data["const_col"]:
        base[:, 0] = 3.0
    if data["sparse"]:
        base[rng.random(base.shape) < 0.5] = 0.0
    if data["dtype"] == "int":
        base = np.round(base).astype(np.int64)
    else:
        base = base.astype(data["dtype"])
    layout = data["layout"]
    X = np.ascontiguousarray(base[:, :d])
    if data["sparse"]:
        return sp.csr_matrix(X), rng
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided":
        X = base[:, ::2]  # non-contiguous view of a wider array
        assert not (X.flags.c_contiguous or X.flags.f_contiguous) or d == 1
    elif layout == "readonly":
        X.setflags(write=False)
    elif layout == "memmap":
        path = tmp_path / f"X{next(_memmap_ids)}.dat"
        mm = np.memmap(path, dtype=X.dtype, mode="w+", shape=X.shape)
        mm[:] = X
        mm.flush()
        del mm
        X = np.memmap(path, dtype=X.dtype, mode="r", shape=(n, d))
    return X, rng


def _snapshot(X):
    if sp.issparse(X):
        return (X.data.copy(), X.indices.copy(), X.indptr.copy())
    return np.array(X, copy=True)


def _assert_unchanged(X, snap):
    if sp.issparse(X):
        for a, b in zip((X.data, X.indices, X.indptr), snap):
            np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_array_equal(np.asarray(X), snap)


def _expected_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


def _fit_checked(est, X, y, sw, allowed):
    """Fit with RuntimeWarning as error; return True if fitted, False if an allowed
    ValueError was raised."""
    snaps = (_snapshot(X), np.array(y, copy=True),
             None if sw is None else np.array(sw, copy=True))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", UndefinedMetricWarning)  # R² of 1 val. row
            warnings.simplefilter("error", RuntimeWarning)
            # the documented report of a finite model whose training ran away (feature
            # scales up to 1e150): recorded, not an error
            warnings.simplefilter("always", DivergenceWarning)
            est.fit(X, y, sample_weight=sw)
            pred = est.predict(X)
        assert all(w.category is DivergenceWarning for w in caught)
        if caught:
            event("DivergenceWarning")
        fitted = True
    except ValueError as exc:
        msg = str(exc)
        if not any(a in msg for a in allowed):
            raise
        fitted = False
        event(f"ValueError: {msg[:40]}")
    else:
        event("fitted")
    _assert_unchanged(X, snaps[0])
    np.testing.assert_array_equal(y, snaps[1])
    if sw is not None:
        np.testing.assert_array_equal(sw, snaps[2])
    if fitted:
        dt = _expected_dtype(X)
        assert est.coef_.dtype == dt, (est.coef_.dtype, dt)
        assert est.intercept_.dtype == dt, (est.intercept_.dtype, dt)
        assert np.isfinite(est.coef_).all(), est.coef_
        assert np.isfinite(est.intercept_).all(), est.intercept_
        assert pred.shape == (X.shape[0],)
        if np.issubdtype(np.asarray(pred).dtype, np.floating):
            assert np.isfinite(pred).all()
    return fitted, (pred if fitted else None)


@settings(max_examples=600, **_SETTINGS)
@given(data=datasets(), p=st.data())
def test_regressor_fit_finite_or_documented_error(data, p, tmp_path):
    params = p.draw(fit_params(data["sparse"]))
    loss = p.draw(st.sampled_from(["squared_error", "huber", "epsilon_insensitive",
                                   "squared_epsilon_insensitive"]))
    X, rng = _make_X(data, tmp_path)
    y = rng.normal(size=data["n"]) * p.draw(st.sampled_from([1.0, 1e4]))
    sw = p.draw(st.sampled_from([None, "random"]))
    if sw == "random":
        sw = rng.uniform(0.0, 2.0, size=data["n"])
        sw.setflags(write=False)
    est = FastSGDRegressor(loss=loss, **params)
    allowed = [OVERFLOW, SPLIT, SPLIT_SKLEARN]
    fitted, pred = _fit_checked(est, X, y, sw, allowed)
    if fitted:
        assert est.coef_.shape == (data["d"],)
        assert est.intercept_.shape == (1,)
        assert np.asarray(pred).dtype in (np.float32, np.float64)


def test_regressor_batch_norm_sparse_refused():
    X = sp.csr_matrix(np.eye(4))
    with pytest.raises(ValueError, match=BN_SPARSE):
        FastSGDRegressor(batch_norm=True, max_iter=2).fit(X, np.arange(4.0))


@settings(max_examples=400, **_SETTINGS)
@given(data=datasets(), p=st.data())
def test_classifier_fit_finite_or_documented_error(data, p, tmp_path):
    params = p.draw(fit_params(data["sparse"]))
    loss = p.draw(st.sampled_from(["hinge", "log_loss", "modified_huber"]))
    multi_class = p.draw(st.sampled_from(["ovr", "multinomial"])) \
        if loss == "log_loss" else "ovr"
    n_classes = p.draw(st.integers(2, 4))
    X, rng = _make_X(data, tmp_path)
    labels = p.draw(st.sampled_from([np.arange(n_classes), np.array(["a", "b", "c", "d"])
                                     [:n_classes]]))
    y = labels[rng.integers(0, n_classes, size=data["n"])]
    sw = None
    if p.draw(st.booleans()):
        sw = rng.uniform(0.0, 2.0, size=data["n"])
    est = FastSGDClassifier(loss=loss, multi_class=multi_class, **params)
    allowed = [OVERFLOW, SPLIT, SPLIT_SKLEARN, N_CLASSES, *STRATIFIED]
    fitted, pred = _fit_checked(est, X, y, sw, allowed)
    if fitted:
        k = len(np.unique(y))
        assert set(np.unique(pred)) <= set(np.unique(y))
        assert est.coef_.shape == ((1 if k == 2 else k), data["d"])
        dec = est.decision_function(X)
        assert np.isfinite(dec).all()
        if loss in ("log_loss", "modified_huber"):
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                proba = est.predict_proba(X)
            assert proba.shape == (data["n"], k)
            assert np.isfinite(proba).all()
            np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_classifier_single_class_refused():
    with pytest.raises(ValueError, match=N_CLASSES):
        FastSGDClassifier(max_iter=2).fit(np.ones((3, 2)), [1, 1, 1])


# Every class's logistic output underflowing to 0 gives uniform probabilities, as
# scikit-learn's _predict_proba_lr (once a 0/0 with NaN probabilities).
def test_predict_proba_ovr_all_scores_underflow():
    X = np.array([[1.0], [2.0], [3.0]])
    clf = FastSGDClassifier(loss="log_loss", max_iter=1, tol=None, shuffle=False)
    clf.fit(X, [0, 1, 2])
    clf.coef_[:] = 0.0
    clf.intercept_[:] = -1000.0  # expit(-1000) == 0 for every class
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, 1.0 / 3.0)


@numba.njit
def _diag_quadratic_grad(x):  # f(x) = sum_i ((i+1)^2 x_i^2 / 2 - x_i), compiled loop
    g = np.empty_like(x)
    for i in range(x.shape[0]):
        g[i] = (i + 1) ** 2 * x[i] - 1.0
    return g


def _quadratic_grad(A, b):
    def grad(x):
        return A @ x - b
    return grad


@settings(max_examples=200, **_SETTINGS)
@given(dim=st.integers(2, 4), seed=st.integers(0, 2**31 - 1),
       optimizer=st.sampled_from(OPTIMIZERS),
       lr=st.sampled_from([1e-3, 0.1, 1.0, 100.0, 1e4, "cosine", "warmup_step"]),
       n_steps=st.sampled_from([0, 1, 2, 5, 30, 200]), compiled=st.booleans(),
       clip_norm=st.sampled_from([None, 1.0]), clip_value=st.sampled_from([None, 0.5]),
       cond=st.sampled_from([1.0, 10.0, 1e4]))
def test_minimize_convex_quadratic(dim, seed, optimizer, lr, n_steps, compiled,
                                   clip_norm, clip_value, cond):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    eig = np.geomspace(1.0, cond, dim)
    A = (Q * eig) @ Q.T
    b = rng.normal(size=dim)
    x0 = rng.normal(size=dim) * 3
    x0_copy = x0.copy()
    if lr == "cosine":
        lr = Cosine(T_max=5, lr=0.1)
    elif lr == "warmup_step":
        lr = Warmup(Step(2, lr=0.5), 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        grad = _diag_quadratic_grad if compiled else _quadratic_grad(A, b)
        res = minimize(grad, x0, optimizer=optimizer, learning_rate=lr,
                       n_steps=n_steps, clip_norm=clip_norm, clip_value=clip_value)
    np.testing.assert_array_equal(x0, x0_copy)
    event(f"success={res.success}")
    assert res.trajectory.shape == (res.nit + 1, dim)
    np.testing.assert_array_equal(res.trajectory[0], x0)
    assert res.grad_norms.shape == (res.nit,)
    assert res.lrs.shape == (res.nit,)
    if res.success:
        assert res.nit == n_steps
        assert res.trajectory.shape == (n_steps + 1, dim)
        assert np.isfinite(res.trajectory).all()
        assert np.isfinite(res.x).all()
        np.testing.assert_array_equal(res.trajectory[-1], res.x)
    else:
        assert 1 <= res.nit <= n_steps
        assert isinstance(res.message, str) and "non-finite" in res.message
        assert np.isfinite(res.trajectory[:-1]).all()
