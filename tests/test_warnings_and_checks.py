"""scikit-learn's remaining parameter checks, and warnings that point at the user's
call (issue 21, items 3 and 4).

Items 3: the messages and types are compared with scikit-learn's own, raised by
``SGDRegressor``/``SGDClassifier`` on the same call. Item 4: every warning fastgd
emits during ``fit``/``partial_fit`` names this file (``w.filename == __file__``), so
``warnings.filterwarnings(..., module=...)`` on the caller's module works.
"""

import re
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor

from fastgd import DivergenceWarning, FastSGDClassifier, FastSGDRegressor
from fastgd.callbacks import Checkpoint


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)
    labels = np.digitize(y, [-1.0, 1.0])  # 3 classes
    return X, y, labels


def _raised(fn):
    with pytest.raises(Exception) as info:
        fn()
    return type(info.value), str(info.value)


def _recorded(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return caught


# ------------------------------------------------------------------ item 3: checks
@pytest.mark.parametrize("pair", [(FastSGDRegressor, SGDRegressor),
                                  (FastSGDClassifier, SGDClassifier)])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_elasticnet_without_l1_ratio_is_scikit_learns_error(data, pair, method):
    X, y, labels = data
    ours, theirs = pair
    target = labels if ours is FastSGDClassifier else y
    extra = {"classes": np.unique(labels)} if (method == "partial_fit"
                                               and ours is FastSGDClassifier) else {}

    def call(cls):
        return lambda: getattr(cls(penalty="elasticnet", l1_ratio=None), method)(
            X, target, **extra)

    expected = _raised(call(theirs))
    assert expected == (ValueError, "l1_ratio must be set when penalty is 'elasticnet'")
    assert _raised(call(ours)) == expected
    # an explicit ratio, or another penalty with None, is fine
    ours(penalty="elasticnet", l1_ratio=0.5, max_iter=2, tol=None).fit(X, target)
    ours(penalty="l2", l1_ratio=None, max_iter=2, tol=None).fit(X, target)


@pytest.mark.parametrize("pair", [(FastSGDRegressor, SGDRegressor),
                                  (FastSGDClassifier, SGDClassifier)])
def test_negative_power_t_is_scikit_learns_future_warning(data, pair):
    X, y, labels = data
    ours, theirs = pair
    target = labels if ours is FastSGDClassifier else y
    params = dict(learning_rate="invscaling", eta0=0.01, max_iter=3, tol=None)

    def messages(cls, power_t):
        caught = _recorded(lambda: cls(power_t=power_t, **params).fit(X, target))
        return [(w.category, str(w.message)) for w in caught
                if issubclass(w.category, FutureWarning)]

    expected = messages(theirs, -0.5)
    assert len(expected) == 1 and "power_t" in expected[0][1]
    assert messages(ours, -0.5) == expected
    assert messages(theirs, 0.0) == messages(ours, 0.0) == []
    assert messages(ours, 0.25) == []
    # partial_fit warns too (scikit-learn's partial_fit does not check power_t)
    kw = {"classes": np.unique(labels)} if ours is FastSGDClassifier else {}
    caught = _recorded(lambda: ours(power_t=-0.5).partial_fit(X, target, **kw))
    assert [str(w.message) for w in caught if w.category is FutureWarning] == \
        [expected[0][1]]


def test_partial_fit_balanced_is_scikit_learns_error(data):
    X, _, labels = data
    classes = np.unique(labels)
    expected = _raised(lambda: SGDClassifier(class_weight="balanced").partial_fit(
        X, labels, classes=classes))
    assert expected[0] is ValueError and "compute_class_weight" in expected[1]
    assert _raised(lambda: FastSGDClassifier(class_weight="balanced").partial_fit(
        X, labels, classes=classes)) == expected
    # fit computes the weights from the whole y
    FastSGDClassifier(class_weight="balanced", max_iter=2, tol=None).fit(X, labels)


# ---------------------------------------------------- item 4: warnings point here
def _only(caught, category):
    found = [w for w in caught if issubclass(w.category, category)]
    assert len(found) >= 1, [str(w.message) for w in caught]
    return found


def _points_here(caught, category):
    for w in _only(caught, category):
        assert w.filename == __file__, (w.filename, w.lineno, str(w.message))


@pytest.mark.parametrize("cls", [FastSGDRegressor, FastSGDClassifier])
@pytest.mark.parametrize("n_jobs", [None, 2])
def test_convergence_warning_points_at_the_call(data, cls, n_jobs):
    X, y, labels = data
    target = labels if cls is FastSGDClassifier else y
    caught = _recorded(lambda: cls(max_iter=2, n_jobs=n_jobs).fit(X, target))
    _points_here(caught, ConvergenceWarning)


def test_resume_warning_points_at_the_call(data, tmp_path):
    X, y, _ = data
    path = tmp_path / "ckpt.pkl"
    _recorded(lambda: FastSGDRegressor(max_iter=4, callbacks=[Checkpoint(path, every=2)])
              .fit(X, y))
    caught = _recorded(lambda: Checkpoint.resume(path, X, y))
    _points_here(caught, ConvergenceWarning)


@pytest.mark.parametrize("n_jobs", [None, 2])
def test_restore_divergence_warning_points_at_the_call(data, n_jobs):
    """With ``n_jobs=2`` the one-vs-rest groups diverge on worker threads; the warning
    is still issued from the caller's thread, pointing at the caller."""
    X, _, labels = data
    est = FastSGDClassifier(loss="squared_error", learning_rate="constant", eta0=1e10,
                            max_iter=20, tol=None, on_divergence="restore", n_jobs=n_jobs,
                            random_state=0)
    caught = _recorded(lambda: est.fit(X * 1e100, labels))
    found = _only(caught, DivergenceWarning)
    assert all("on_divergence='restore'" in str(w.message) for w in found)
    _points_here(caught, DivergenceWarning)
    assert np.isfinite(est.coef_).all()


def test_future_warning_points_at_the_call(data):
    X, y, _ = data
    caught = _recorded(lambda: FastSGDRegressor(power_t=-1.0, max_iter=2, tol=None).fit(X, y))
    _points_here(caught, FutureWarning)


def test_filtering_by_the_callers_module_works(data):
    X, y, _ = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=ConvergenceWarning,
                                module=re.escape(__name__))
        FastSGDRegressor(max_iter=2).fit(X, y)
    assert not [w for w in caught if w.category is ConvergenceWarning]


def test_dask_fit_warning_points_at_the_call(data):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    import fastgd.dask as fdask

    X, y, _ = data
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=":0") as client:
        caught = _recorded(lambda: fdask.fit(
            FastSGDRegressor(batch_size="full", max_iter=2), da.from_array(X, chunks=30),
            da.from_array(y, chunks=30), strategy="gd", client=client, timeout=60))
    _points_here(caught, ConvergenceWarning)
