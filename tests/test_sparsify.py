"""``sparsify()`` / ``densify()``, scikit-learn's ``SparseCoefMixin`` (issue 21, item 2)."""

import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import SGDRegressor

from fastgd import FastSGDClassifier, FastSGDRegressor

L1 = dict(penalty="l1", alpha=0.05, max_iter=15, tol=None, random_state=0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 12))
    w = np.zeros((12, 2))
    w[:3] = rng.normal(size=(3, 2))  # 9 of 12 features do not matter: L1 zeros them
    Y = X @ w + 0.05 * rng.normal(size=(120, 2))
    labels = np.digitize(Y[:, 0], np.quantile(Y[:, 0], [0.33, 0.66]))
    return X, Y, labels


# per-sample SGD (scikit-learn's truncated L1 steps) sets coefficients to exactly
# zero; the minibatch and multinomial modes take L1 subgradient steps, which do not
CASES = {
    "regressor": (FastSGDRegressor, dict(), "y"),
    "multi-output regressor": (FastSGDRegressor, dict(), "Y"),
    "binary": (FastSGDClassifier, dict(loss="log_loss"), "binary"),
    "one-vs-rest": (FastSGDClassifier, dict(loss="modified_huber"), "labels"),
    "multinomial": (FastSGDClassifier, dict(loss="log_loss", multi_class="multinomial",
                                            batch_size=8, optimizer="adam"), "labels"),
}


def _target(data, which):
    X, Y, labels = data
    return {"y": Y[:, 0], "Y": Y, "binary": labels > 0, "labels": labels}[which]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def _outputs(est, X):
    methods = ["predict"] + [m for m in ("decision_function", "predict_proba")
                             if hasattr(est, m)]
    return {m: getattr(est, m)(X) for m in methods}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", list(CASES))
def test_sparsify_predicts_the_same_and_densify_restores(data, case, dtype):
    cls, params, which = CASES[case]
    X = data[0].astype(dtype)
    y = _target(data, which)
    est = _fit(cls(**L1, **params), X, y)
    dense_coef = est.coef_.copy()
    before = _outputs(est, X)
    before_sparse_X = _outputs(est, sp.csr_matrix(X))

    assert est.sparsify() is est
    coef = est.coef_
    assert isinstance(coef, sp.csr_matrix)
    assert coef.shape == (dense_coef.reshape(-1, X.shape[1]).shape)
    assert coef.dtype == dtype
    assert coef.nnz == np.count_nonzero(dense_coef)
    if est.algorithm_ == "sklearn":
        assert coef.nnz < dense_coef.size / 2  # L1's exact zeros are not stored
    for Xin, expected in ((X, before), (sp.csr_matrix(X), before_sparse_X)):
        after = _outputs(est, Xin)
        if cls is FastSGDClassifier:  # labels: the same; scores: to rounding
            np.testing.assert_array_equal(after.pop("predict"), expected["predict"])
        for m in after:
            assert after[m].shape == expected[m].shape and after[m].dtype == expected[m].dtype
            tol = 1e-12 if dtype == np.float64 else 1e-5
            np.testing.assert_allclose(after[m], expected[m], rtol=tol, atol=tol)

    restored = pickle.loads(pickle.dumps(est))  # a sparsified model pickles
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))

    assert est.densify() is est
    assert isinstance(est.coef_, np.ndarray)
    assert est.coef_.shape == dense_coef.shape and est.coef_.dtype == dense_coef.dtype
    np.testing.assert_array_equal(est.coef_, dense_coef)
    assert est.densify().coef_ is est.coef_  # dense stays as it is


def test_matches_scikit_learn(data):
    """The same sparse matrix as scikit-learn's (same algorithm, no shuffling). One
    target: fastgd's is 2-D, (1, n_features), as scikit-learn's before 1.9 (1.9 makes
    a 1-D csr_matrix of shape (n_features,))."""
    X, Y, _ = data
    params = dict(L1, shuffle=False)
    ours = _fit(FastSGDRegressor(**params), X, Y[:, 0]).sparsify()
    theirs = _fit(SGDRegressor(**params), X, Y[:, 0]).sparsify()
    assert isinstance(ours.coef_, sp.csr_matrix) and isinstance(theirs.coef_, sp.csr_matrix)
    assert ours.coef_.shape == (1, X.shape[1])
    np.testing.assert_array_equal(ours.coef_.indices, theirs.coef_.indices)
    np.testing.assert_allclose(ours.coef_.data, theirs.coef_.data, rtol=1e-10)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-10)


@pytest.mark.parametrize("case", ["regressor", "one-vs-rest"])
def test_training_continues_after_sparsify(data, case):
    """partial_fit continues from the estimator's state, fit with warm_start from
    coef_: both as if sparsify had not been called, both leave coef_ dense."""
    cls, params, which = CASES[case]
    X = data[0]
    y = _target(data, which)
    kw = {"classes": np.unique(y)} if cls is FastSGDClassifier else {}
    plain = cls(**L1, **params).partial_fit(X, y, **kw)
    sparse = cls(**L1, **params).partial_fit(X, y, **kw).sparsify()
    plain.partial_fit(X, y)
    sparse.partial_fit(X, y)
    assert isinstance(sparse.coef_, np.ndarray)
    np.testing.assert_array_equal(sparse.coef_, plain.coef_)

    warm_plain = _fit(cls(warm_start=True, **L1, **params), X, y)
    warm_sparse = _fit(cls(warm_start=True, **L1, **params), X, y).sparsify()
    _fit(warm_plain, X, y)
    _fit(warm_sparse, X, y)
    assert isinstance(warm_sparse.coef_, np.ndarray)
    np.testing.assert_array_equal(warm_sparse.coef_, warm_plain.coef_)


@pytest.mark.parametrize("method, word", [("sparsify", "sparsifying"),
                                          ("densify", "densifying")])
def test_unfitted_estimator_raises(method, word):
    with pytest.raises(NotFittedError, match=f"must be fitted before {word}"):
        getattr(FastSGDRegressor(), method)()


def test_fit_line_plot_with_sparse_coef():
    plt = pytest.importorskip("matplotlib.pyplot")
    from fastgd import plot

    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(60, 1))
    y = 1.5 * X[:, 0] + 0.5
    est = FastSGDRegressor(learning_rate="constant", eta0=0.05, random_state=0).fit(X, y)
    label = plot.fit_line(est, X, y).get_lines()[0].get_label()
    ax = plot.fit_line(est.sparsify(), X, y)
    assert ax.get_lines()[0].get_label() == label
    plt.close("all")
