"""Epoch orders: the full permutation (shuffle=True) against a plain-Python reference,
and shuffle="block": every row once per epoch, reproducible, same quality of fit."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import FastSGDClassifier, FastSGDRegressor
from fastgd._kernels.shuffle import block_order, draw_permutation, permutation
from fastgd.linear_model._base import MAX_INT
from fitting import fit_quietly as _fit


@pytest.mark.parametrize("n, block", [(1, 1), (10, 3), (100, 7), (1000, 64), (64, 64),
                                      (5, 100)])
def test_block_order_is_a_permutation_of_whole_blocks(n, block):
    rows = np.arange(n, dtype=np.int64) * 2 + 1  # arbitrary row ids
    out = block_order(rows, block, 7, np.empty(n, dtype=np.int64),
                      np.empty(n, dtype=np.int64))
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
    a = block_order(rows, 16, 3, np.empty(500, dtype=np.int64),
                    np.empty(500, dtype=np.int64))
    b = block_order(rows, 16, 3, np.empty(500, dtype=np.int64),
                    np.empty(500, dtype=np.int64))
    c = block_order(rows, 16, 4, np.empty(500, dtype=np.int64),
                    np.empty(500, dtype=np.int64))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, rows)


@pytest.mark.parametrize("n, block", [(1, 1), (10, 3), (100, 7), (1000, 64), (64, 64),
                                      (5, 100), (103, 10)])
def test_block_lookahead_streams_the_next_block_in_storage_order(n, block):
    """Position p of a block names the p-th row of the block after it (-1 past that
    block's end, and in the last block): a plain-Python reading of the order."""
    rows = np.arange(n, dtype=np.int64) * 3 + 2
    lookahead = np.full(n, -7, dtype=np.int64)
    out = block_order(rows, block, 11, np.empty(n, dtype=np.int64), lookahead)
    starts = []  # (position in out, block index) of each block, in epoch order
    pos = 0
    while pos < n:
        b = int(np.searchsorted(rows, out[pos])) // block
        starts.append((pos, b))
        pos += min(block, n - b * block)
    expected = np.full(n, -1, dtype=np.int64)
    for (pos, b), nxt in zip(starts, starts[1:] + [None]):
        size = min(block, n - b * block)
        if nxt is None:
            continue
        following = rows[nxt[1] * block:(nxt[1] + 1) * block]
        for p in range(min(size, len(following))):
            expected[pos + p] = following[p]
    np.testing.assert_array_equal(lookahead, expected)
    # every row outside the first block and the short block's overflow is named once
    named = lookahead[lookahead >= 0]
    assert len(set(named.tolist())) == len(named)
    # without room for it, no lookahead and the same order
    same = block_order(rows, block, 11, np.empty(n, dtype=np.int64),
                       np.empty(0, dtype=np.int64))
    np.testing.assert_array_equal(same, out)


@pytest.mark.parametrize("kind, block, streamed", [
    ("dense", None, True), ("dense", 20, True), ("dense", 50_000, False),
    ("fortran", None, False), ("csr", None, False)])
@pytest.mark.parametrize("batch_size", [1, 8])
def test_which_block_epochs_stream_the_next_block(monkeypatch, kind, block, streamed,
                                                  batch_size):
    """Dense C-ordered blocks up to STREAM_MAX_BLOCK_BYTES get a lookahead; larger
    blocks, Fortran rows and CSR prefetch in their order (an empty lookahead)."""
    from fastgd import _orders
    from fastgd._kernels import cpu
    seen = []
    name = "epoch_plain" if batch_size == 1 else "epoch_batch"
    real = getattr(cpu, name)

    def spy(rows, order, lookahead, *args):
        seen.append((len(order), len(lookahead)))
        return real(rows, order, lookahead, *args)

    monkeypatch.setattr(cpu, name, spy)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 50))
    y = X[:, 0] + 0.1 * rng.normal(size=600)
    if kind == "fortran":
        X = np.asfortranarray(X)
    elif kind == "csr":
        X = sp.csr_matrix(X)
    est = FastSGDRegressor(shuffle="block", shuffle_block_size=block, max_iter=2,
                           tol=None, batch_size=batch_size, random_state=0)
    _fit(est, X, y)
    assert len(seen) == 2
    assert all(n_la == (n if streamed else 0) for n, n_la in seen)
    if kind == "dense" and block == 50_000:
        assert 50_000 * X.shape[1] * 8 > _orders.STREAM_MAX_BLOCK_BYTES


M64 = 2**64 - 1


def _reference_draw(state, bound):
    """splitmix64's next state and a number in [0, bound) (Lemire's multiply-shift)."""
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return state, ((z >> 32) * bound) >> 32


def reference_permutation(rows, seed):
    """The inside-out Fisher-Yates shuffle in Python integers: splitmix64 for the
    random stream, Lemire's multiply-shift for a number in [0, i]."""
    state, out = seed, [0] * len(rows)
    for i, r in enumerate(rows):
        state, j = _reference_draw(state, i + 1)
        out[i] = out[j]
        out[j] = int(r)
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 1001])
@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_permutation_matches_the_reference(n, seed):
    rows = np.arange(n, dtype=np.int64) * 3 + 5  # arbitrary row ids (a training subset)
    out = permutation(rows, seed, np.empty(n, dtype=np.int64))
    assert out.tolist() == reference_permutation(rows.tolist(), seed)
    assert sorted(out.tolist()) == rows.tolist()


def reference_block_order(rows, block, seed):
    """Backward Fisher-Yates over the blocks, then over each block's rows in the
    order the blocks come, one draw after the other from one stream."""
    n = len(rows)
    n_blocks = -(-n // block)
    state, perm = seed, list(range(n_blocks))
    for i in range(n_blocks - 1, 0, -1):
        state, j = _reference_draw(state, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    out = []
    for b in perm:
        part = list(rows[b * block:(b + 1) * block])
        for k in range(len(part) - 1, 0, -1):
            state, j = _reference_draw(state, k + 1)
            part[k], part[j] = part[j], part[k]
        out += part
    return out


@pytest.mark.parametrize("n, block", [(0, 3), (1, 1), (5, 1), (5, 2), (1000, 7),
                                      (1000, 327), (1001, 5000), (4099, 1024)])
@pytest.mark.parametrize("seed", [0, 1, 2**63 - 1])
def test_block_order_matches_the_reference(n, block, seed):
    # the kernel makes a block's draws before its swaps, from the stream's counter;
    # the order must be the one of drawing between swaps
    rows = np.arange(n, dtype=np.int64) * 3 + 5
    out = block_order(rows, block, seed, np.empty(n, dtype=np.int64),
                      np.empty(n, dtype=np.int64))
    assert out.tolist() == reference_block_order(rows.tolist(), block, seed)


def test_permutation_is_uniform():
    """Over 240,000 seeds each of the 24 orders of 4 rows comes up about 10,000 times
    (the seeds are fixed, so the counts are too: chi-square 17.0 on 23 degrees of
    freedom, where 49.7 is p = 0.001), and every row lands at every place about 60,000
    times (at most 324 off, 1.5 standard deviations; the bound, 1,000, is 4.7)."""
    rows = np.arange(4, dtype=np.int64)
    out = np.empty(4, dtype=np.int64)
    counts, places = {}, np.zeros((4, 4))
    for seed in range(240_000):
        order = tuple(permutation(rows, seed, out).tolist())
        counts[order] = counts.get(order, 0) + 1
        places[np.arange(4), order] += 1
    assert len(counts) == 24
    chi2 = sum((c - 10_000) ** 2 / 10_000 for c in counts.values())
    assert chi2 < 49.7
    assert np.abs(places - 60_000).max() < 1_000


def test_draw_permutation_takes_one_draw_of_the_generator():
    rows = np.arange(10, 60, dtype=np.int64)
    rng, ref = np.random.default_rng(3), np.random.default_rng(3)
    a = draw_permutation(rng, rows)
    seed = int(ref.integers(0, 2**63))
    assert a.tolist() == reference_permutation(rows.tolist(), seed)
    assert rng.bit_generator.state == ref.bit_generator.state
    assert not np.array_equal(draw_permutation(rng, rows), a)  # the next epoch's


@pytest.mark.parametrize("params", [dict(), dict(batch_size=8, optimizer="adam")])
def test_shuffled_epoch_visits_rows_in_the_drawn_order(params):
    """One shuffled epoch is the unshuffled epoch over the rows reordered by
    ``draw_permutation`` from the generator ``random_state`` seeds."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 4))
    y = X @ rng.normal(size=4)
    gen = np.random.default_rng(np.random.RandomState(7).randint(0, MAX_INT))
    order = draw_permutation(gen, np.arange(50, dtype=np.int64))
    kw = dict(max_iter=1, tol=None, **params)
    shuffled = _fit(FastSGDRegressor(shuffle=True, random_state=7, **kw), X, y)
    ordered = _fit(FastSGDRegressor(shuffle=False, **kw), X[order], y[order])
    np.testing.assert_array_equal(shuffled.coef_, ordered.coef_)
    np.testing.assert_array_equal(shuffled.intercept_, ordered.intercept_)


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
