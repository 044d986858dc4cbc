"""shuffle="block": every row once per epoch, reproducible, same quality of fit."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import FastSGDClassifier, FastSGDRegressor
from fastgd._kernels.shuffle import block_order
from fitting import fit_quietly as _fit


@pytest.mark.parametrize("n, block", [(1, 1), (10, 3), (100, 7), (1000, 64), (64, 64),
                                      (5, 100)])
def test_block_order_is_a_permutation_of_whole_blocks(n, block):
    rows = np.arange(n, dtype=np.int64) * 2 + 1  # arbitrary row ids
    out = block_order(rows, block, 7, np.empty(n, dtype=np.int64))
    assert sorted(out) == sorted(rows)
    # consecutive stretches of the output are whole blocks of the input
    pos = 0
    while pos < n:
        first_block = (np.searchsorted(rows, out[pos])) // block
        size = min(block, n - first_block * block)
        chunk = out[pos:pos + size]
        assert set(np.searchsorted(rows, chunk) // block) == {first_block}
        pos += size


def test_block_order_depends_on_the_seed_only():
    rows = np.arange(500, dtype=np.int64)
    a = block_order(rows, 16, 3, np.empty(500, dtype=np.int64))
    b = block_order(rows, 16, 3, np.empty(500, dtype=np.int64))
    c = block_order(rows, 16, 4, np.empty(500, dtype=np.int64))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, rows)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 6))
    y = X @ rng.normal(size=6) + 0.1 * rng.normal(size=3000)
    return X, y


@pytest.mark.parametrize("params", [dict(), dict(batch_size=32, optimizer="adam"),
                                    dict(shuffle_block_size=10)])
def test_block_shuffle_reproducible_and_resumable(data, params):
    X, y = data
    a = _fit(FastSGDRegressor(shuffle="block", random_state=0, max_iter=4, tol=None,
                              **params), X, y)
    b = _fit(FastSGDRegressor(shuffle="block", random_state=0, max_iter=4, tol=None,
                              **params), X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    part = FastSGDRegressor(shuffle="block", random_state=0, **params)
    for _ in range(4):
        part.partial_fit(X, y)
    np.testing.assert_array_equal(part.coef_, a.coef_)


def test_block_shuffle_fits_as_well_as_a_full_shuffle(data):
    X, y = data
    full = [_fit(FastSGDRegressor(random_state=s), X, y).score(X, y) for s in range(3)]
    block = [_fit(FastSGDRegressor(shuffle="block", shuffle_block_size=50, random_state=s),
                  X, y).score(X, y) for s in range(3)]
    assert abs(np.mean(full) - np.mean(block)) < 1e-3


def test_block_shuffle_sparse_and_classifier(data):
    X, y = data
    labels = (y > 0).astype(int)
    dense = _fit(FastSGDClassifier(shuffle="block", random_state=0, max_iter=3, tol=None,
                                   fit_intercept=False), X, labels)
    sparse = _fit(FastSGDClassifier(shuffle="block", random_state=0, max_iter=3, tol=None,
                                    fit_intercept=False), sp.csr_matrix(X), labels)
    np.testing.assert_allclose(dense.coef_, sparse.coef_, rtol=1e-12)
    assert dense.score(X, labels) > 0.95


def test_bad_shuffle_values(data):
    X, y = data
    with pytest.raises(ValueError, match="shuffle"):
        FastSGDRegressor(shuffle="blocks").fit(X, y)
    with pytest.raises(ValueError, match="shuffle_block_size"):
        FastSGDRegressor(shuffle="block", shuffle_block_size=0).fit(X, y)
