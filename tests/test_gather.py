"""Shuffled epochs trained from gathered chunks of rows (fastgd._executors.gathered)
give results bit-identical to the loop reading the rows in place, on one thread and on
two."""

import numpy as np
import pytest
import scipy.sparse as sp

import fastgd._executors.gathered as gather
from fastgd import FastSGDClassifier, FastSGDRegressor, schedules
from fastgd._kernels.bundles import Rows
from fastgd._kernels.row_copy import gather_rows
from fastgd._kernels.shuffle import draw_permutation
from fastgd._orders import ShuffleAhead
from fastgd._program import lower
from fitting import fit_quietly as _fit


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(503, 7))
    X[rng.random(X.shape) < 0.4] = 0.0
    Y = X @ rng.normal(size=(7, 2)) + 0.1 * rng.normal(size=(503, 2))
    sw = rng.uniform(0.5, 2.0, size=503)
    return X, Y, sw


@pytest.fixture
def chunks(monkeypatch):
    """Gather every shuffled epoch, in chunks of about 17 rows (the last one shorter)."""
    calls = []
    real = gather.Gathered.run

    def counted(self, *args, **kwargs):
        calls.append((self.chunk_rows, self.pool is not None))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(gather.Gathered, "run", counted)
    monkeypatch.setattr(gather, "GATHER_MIN_BYTES", 0)
    monkeypatch.setattr(gather, "PER_SAMPLE_MIN_ROW_BYTES", 0)
    monkeypatch.setattr(gather, "MINIBATCH_MIN_ROW_BYTES", 0)
    monkeypatch.setattr(gather, "CHUNK_BYTES", 17 * 7 * 8)
    return calls


REGRESSION = [
    dict(),
    dict(penalty="elasticnet", average=10, loss="huber"),
    dict(penalty="l1", learning_rate="invscaling", eta0=0.05),
    dict(batch_size=5, optimizer="momentum", eta0=0.05, learning_rate="constant"),
    dict(batch_size=8, optimizer="adam", eta0=0.05, average=2,
         learning_rate=schedules.Cosine(T_max=150, unit="update"),
         clip_norm=1.0),
    dict(batch_size=4, batch_norm=True, eta0=0.05, learning_rate="constant"),
    dict(early_stopping=True, n_iter_no_change=2, validation_fraction=0.2),
]


def _same(a, b, sums_exact=True):
    """Same weights bit for bit; the epochs' loss sums too, or (``sums_exact=False``,
    gathered against in place) to rounding: with ``reassoc`` the compiler may keep a
    sum in a register for the length of a call, so where the calls start changes its
    rounding."""
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.n_iter_ == b.n_iter_
    if sums_exact:
        np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    else:
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-14, atol=0)


# batch norm refuses sparse input (centering destroys sparsity)
CASES = [(p, sparse) for p in REGRESSION for sparse in (False, True)
         if not (sparse and p.get("batch_norm"))]


@pytest.mark.parametrize(("params", "sparse"), CASES)
def test_gathered_epochs_are_bit_identical(data, params, sparse, chunks, monkeypatch):
    X, Y, sw = data
    Xin = sp.csr_matrix(X) if sparse else X
    multi = "batch_norm" not in params and not sparse  # one multi-output case per mode
    y = Y if multi else Y[:, 0]
    kw = dict(max_iter=6, tol=None, random_state=3, **params)
    if params.get("early_stopping"):
        kw["tol"] = 1e-3
    one = _fit(FastSGDRegressor(**kw), Xin, y, sample_weight=sw)
    # one thread: dense rows are gathered, CSR rows trained in place
    assert bool(chunks) != sparse and {r for r, _ in chunks} != {1}
    assert not any(p for _, p in chunks)
    chunks.clear()
    two = _fit(FastSGDRegressor(n_jobs=2, **kw), Xin, y, sample_weight=sw)
    # one output (or outputs scored together for early stopping): the second thread
    # gathers ahead; otherwise the outputs train on one thread each
    piped = y.ndim == 1 or bool(params.get("early_stopping"))
    assert all(p == piped for _, p in chunks) and bool(chunks) == (piped or not sparse)
    for rows, _ in chunks:  # no batch is split between two chunks
        assert rows % params.get("batch_size", 1) == 0
    monkeypatch.setattr(gather, "GATHER_MIN_BYTES", 2**62)
    chunks.clear()
    ref = _fit(FastSGDRegressor(**kw), Xin, y, sample_weight=sw)
    assert not chunks
    _same(one, ref, sums_exact=False)
    # (two outputs on two threads add their loss sums after the epoch, and CSR rows
    # on one thread are trained in place, in one call: sums to rounding there)
    _same(two, one, sums_exact=piped and not sparse)


@pytest.mark.parametrize("params", [dict(), dict(loss="log_loss", batch_size=6,
                                                 multi_class="multinomial"),
                                    dict(loss="hinge", class_weight="balanced")])
def test_gathered_classifier_is_bit_identical(data, params, chunks, monkeypatch):
    X, Y, sw = data
    labels = np.digitize(Y[:, 0], np.quantile(Y[:, 0], [0.3, 0.7]))
    kw = dict(max_iter=5, tol=None, random_state=0, **params)
    # n_jobs=3 on three one-vs-rest outputs: each output on its own thread (gathering
    # on one thread each); the multinomial model: one model, two threads
    fits = [_fit(FastSGDClassifier(n_jobs=j, **kw), X, labels, sample_weight=sw)
            for j in (1, 3)]
    assert chunks
    monkeypatch.setattr(gather, "GATHER_MIN_BYTES", 2**62)
    ref = _fit(FastSGDClassifier(**kw), X, labels, sample_weight=sw)
    _same(fits[1], fits[0], sums_exact=params.get("multi_class") == "multinomial")
    _same(fits[0], ref, sums_exact=False)


def test_partial_fit_and_warm_start_continue_identically(data, chunks, monkeypatch):
    X, Y, _ = data
    runs = []
    for min_bytes in (0, 2**62):
        monkeypatch.setattr(gather, "GATHER_MIN_BYTES", min_bytes)
        est = FastSGDRegressor(random_state=0, warm_start=True, max_iter=3, tol=None,
                               n_jobs=2)
        _fit(est, X, Y[:, 0])
        _fit(est, X, Y[:, 0])
        for _ in range(2):
            est.partial_fit(X, Y[:, 0])
        runs.append(est.coef_.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_gather_rows_copies_rows_in_order():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    X[rng.random(X.shape) < 0.6] = 0.0
    Y = rng.normal(size=(40, 2))
    sw = rng.random(40)
    order = rng.permutation(40)
    B, YB, swB = np.full((12, 5), np.nan), np.full((12, 2), np.nan), np.full(12, np.nan)
    gather_rows(X, Y, sw, order, 7, 17, B, YB, swB)
    rows = order[7:17]
    np.testing.assert_array_equal(B[:10], X[rows])
    np.testing.assert_array_equal(YB[:10], Y[rows])
    np.testing.assert_array_equal(swB[:10], sw[rows])
    assert np.isnan(B[10:]).all()  # nothing written past the chunk

    S = sp.csr_matrix(X)
    cap = gather.csr_capacity(S.indptr, 10)
    CB = (np.zeros(cap), np.zeros(cap, dtype=S.indices.dtype),
          np.zeros(11, dtype=S.indptr.dtype))
    gather_rows((S.data, S.indices, S.indptr), Y, sw, order, 7, 17, CB, YB, swB)
    got = sp.csr_matrix(CB, shape=(10, 5))
    np.testing.assert_array_equal(got.toarray(), X[rows])


def test_csr_capacity_bounds_every_chunk():
    rng = np.random.default_rng(2)
    lengths = rng.integers(0, 30, size=200)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    for rows in (1, 7, 64, 200, 500):
        cap = gather.csr_capacity(indptr, rows)
        assert cap == np.sort(lengths)[::-1][:rows].sum()
        for _ in range(20):
            assert lengths[rng.permutation(200)[:rows]].sum() <= cap


def test_which_epochs_are_gathered():
    big = np.zeros((gather.GATHER_MIN_BYTES // 800 + 1, 100))
    for threads in (1, 2):
        assert gather.worth_gathering(big, True, threads, 1)
        assert gather.worth_gathering(big, np.True_, threads, 1)
        for batch in (1, 256):
            assert not gather.worth_gathering(big, False, threads, batch)
            # a block shuffle already reads memory in runs
            assert not gather.worth_gathering(big, "block", threads, batch)
            # Fortran order: rows are strided
            assert not gather.worth_gathering(big.T, True, threads, batch)
            # stays in the caches
            assert not gather.worth_gathering(big[:1000], True, threads, batch)
    # one thread: narrow rows train in place (800-byte rows: per-sample only)
    assert not gather.worth_gathering(big, True, 1, 256)
    wide = np.zeros((gather.GATHER_MIN_BYTES // 1024 + 1, 128))
    assert gather.worth_gathering(wide, True, 1, 256)
    narrow = np.zeros((gather.GATHER_MIN_BYTES // 504 + 1, 63))
    assert not gather.worth_gathering(narrow, True, 1, 1)
    assert gather.worth_gathering(narrow, True, 2, 1)
    assert gather.worth_gathering(narrow, True, 2, 256)
    # two threads: only minibatches of which a chunk holds two (800-byte rows, 3 MiB)
    assert gather.worth_gathering(big, True, 2, 1024)
    assert not gather.worth_gathering(big, True, 2, 2048)
    n = gather.GATHER_MIN_BYTES // 8 + 1
    csr = (np.zeros(n), np.zeros(n, dtype=np.int32), np.array([0, n]))
    assert gather.worth_gathering(csr, True, 2, 1)
    assert not gather.worth_gathering(csr, True, 1, 1)  # slower than in place on one thread
    assert not gather.worth_gathering(csr, "block", 2, 1)
    S = sp.random(10, 10, density=0.5, format="csr")
    assert not gather.worth_gathering((S.data, S.indices, S.indptr), True, 2, 1)


def test_snapshot_between_gathered_epochs_resumes_identically(data, chunks):
    """The next epoch's order is drawn ahead from a copy of the generator: a snapshot
    taken after an epoch must hold the generator as if it had not been."""
    X, Y, _ = data
    params = dict(max_iter=6, tol=None, random_state=0, n_jobs=2)
    full = _fit(FastSGDRegressor(**params), X, Y[:, 0])
    snaps = []
    _fit(FastSGDRegressor(callbacks=[lambda i: snaps.append(i.snapshot())
                                     if i.epoch == 3 else None], **params), X, Y[:, 0])
    assert any(p for _, p in chunks)
    resumed = snaps[0]
    for _ in range(3):
        resumed.partial_fit(X, Y[:, 0])
    np.testing.assert_array_equal(resumed.coef_, full.coef_)


def test_permutation_ahead_is_the_generators_next_permutation():
    from concurrent.futures import ThreadPoolExecutor

    idx = np.arange(3, 1000)
    with ThreadPoolExecutor(1) as pool:
        ahead = ShuffleAhead(idx, pool)
        rng, ref = np.random.default_rng(5), np.random.default_rng(5)
        assert ahead._take(rng) is None  # nothing drawn yet
        ahead._draw(rng)
        assert rng.bit_generator.state == ref.bit_generator.state  # rng untouched
        np.testing.assert_array_equal(ahead._take(rng), draw_permutation(ref, idx))
        assert rng.bit_generator.state == ref.bit_generator.state
        # the generator moved in between: the draw is dropped, rng left as it is
        ahead._draw(rng)
        rng.random()
        ref.random()
        assert ahead._take(rng) is None
        assert rng.bit_generator.state == ref.bit_generator.state
        # next(): the permutation drawn ahead, then the one after is drawn
        ahead._draw(rng)
        np.testing.assert_array_equal(ahead.next(rng, more=True).rows,
                                      draw_permutation(ref, idx))
        np.testing.assert_array_equal(ahead.next(rng, more=False).rows,
                                      draw_permutation(ref, idx))
        assert rng.bit_generator.state == ref.bit_generator.state


def _two_thread_executor(X, Y, sw):
    """A per-sample :class:`Gathered` executor on two threads over ``(X, Y, sw)``."""
    est = FastSGDRegressor()
    est._validate_params()
    prog = lower(est)
    rows = Rows(X, Y, sw, np.ones((Y.shape[1], 2)))
    return gather.Gathered(rows, prog.kernel_program(X, Y.shape[0], Y.shape[1]), plain=True,
                           threads=2)


@pytest.mark.parametrize("sparse", [False, True])
def test_two_thread_epoch_does_not_wait_for_a_busy_helper(sparse, monkeypatch):
    """With the helper thread busy (as while it draws the next permutation), the
    training thread copies every chunk itself and finishes the epoch, with the rows of
    the epoch in order; the helper's late copy tasks then copy nothing."""
    import threading

    monkeypatch.setattr(gather, "CHUNK_BYTES", 9 * 6 * 8)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(100, 6))
    X[rng.random(X.shape) < 0.5] = 0.0
    Y = rng.normal(size=(100, 1))
    sw = rng.random(100)
    Xk = X if not sparse else (lambda S: (S.data, S.indices, S.indptr))(sp.csr_matrix(X))
    g = _two_thread_executor(Xk, Y, sw)
    release = threading.Event()
    g.pool.submit(release.wait)  # the helper is busy until released
    order = rng.permutation(100)
    seen = []

    def train(buffers, m, *args):
        B, YB, swB, rows = buffers.B, buffers.YB, buffers.swB, buffers.order[:m]
        if sparse:
            data, indices, indptr = B
            B = sp.csr_matrix((data, indices, indptr[:m + 1]), shape=(m, 6)).toarray()
        seen.append((B[rows].copy(), YB[rows].copy(), swB[rows].copy()))

    g._train_chunk = train
    done = threading.Event()

    def run():
        g._two_threads(order, None, None, None)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(30)
    release.set()
    g.close()
    assert finished, "the epoch waited for the busy helper"
    np.testing.assert_array_equal(np.vstack([s[0] for s in seen]), X[order])
    np.testing.assert_array_equal(np.vstack([s[1] for s in seen]), Y[order])
    np.testing.assert_array_equal(np.concatenate([s[2] for s in seen]), sw[order])


def test_a_copy_failing_on_the_helper_is_raised_by_the_epoch(monkeypatch):
    import threading

    monkeypatch.setattr(gather, "CHUNK_BYTES", 9 * 6 * 8)
    real = gather.gather_rows
    main = threading.main_thread()

    def failing_off_main(*args):
        if threading.current_thread() is not main:
            raise MemoryError("helper copy failed")
        return real(*args)

    monkeypatch.setattr(gather, "gather_rows", failing_off_main)
    rng = np.random.default_rng(4)
    X, Y, sw = rng.normal(size=(90, 6)), rng.normal(size=(90, 1)), rng.random(90)
    g = _two_thread_executor(X, Y, sw)
    g.pool.submit(lambda: None).result()  # the helper is idle and takes parts at once

    def slow_train(*args):
        threading.Event().wait(0.002)  # leaves the helper parts of the next chunk

    g._train_chunk = slow_train
    with pytest.raises(MemoryError, match="helper copy failed"):
        g._two_threads(rng.permutation(90), None, None, None)
    g.close()


@pytest.mark.parametrize("batch_size", [1, 8])
def test_gathered_epochs_reuse_the_epoch_kernels_compiled_for_direct_calls(batch_size):
    """The one-thread gathered loop passes its (empty) lookahead with the type a
    direct call gives it, so a cold cache compiles each epoch kernel once per input
    type, not a second time for a read-only constant lookahead."""
    from fastgd._kernels import cpu
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = X[:, 0]
    with gather.gather_all():
        _fit(FastSGDRegressor(batch_size=batch_size, max_iter=2, tol=None,
                              random_state=0), X, y)
    kernel = cpu.epoch_plain if batch_size == 1 else cpu.epoch_batch
    lookaheads = {sig[2] for sig in kernel.signatures}
    assert lookaheads and all(t.mutable for t in lookaheads), lookaheads
