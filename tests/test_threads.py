"""n_jobs: multi-threaded full-batch and large-minibatch gradients equal
single-threaded ones to rounding, and are bit-for-bit reproducible for a given thread
count."""

import numpy as np
import pytest
import scipy.sparse as sp

from fastgd import FastSGDClassifier, FastSGDRegressor, _loop
from fitting import fit_quietly as _fit
from fitting import split_small_batches

#: the threshold of a fit outside these tests (their data are small: every test here
#: but the threshold's own lowers it, ``split_small_batches``)
BYTES_PER_THREAD = _loop.BYTES_PER_THREAD
pytestmark = pytest.mark.usefixtures(split_small_batches.__name__)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(501, 7))
    X[rng.random(X.shape) < 0.3] = 0.0
    Y = X @ rng.normal(size=(7, 2)) + 0.1 * rng.normal(size=(501, 2))
    return X, Y


MODES = [
    dict(learning_rate="constant", eta0=0.1),
    dict(optimizer="adam", eta0=0.05, learning_rate="constant", penalty="elasticnet"),
    dict(optimizer="momentum", eta0=0.05, learning_rate="constant", clip_norm=0.5,
         average=3),
    dict(optimizer="rmsprop", eta0=0.01, learning_rate="invscaling", loss="huber"),
]


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("two_d", [False, True])
@pytest.mark.parametrize("params", MODES)
def test_threads_match_one_thread(data, params, two_d, sparse):
    X, Y = data
    y = Y if two_d else Y[:, 0]
    Xin = sp.csr_matrix(X) if sparse else X
    one = _fit(FastSGDRegressor(batch_size="full", max_iter=15, tol=None, **params), Xin, y)
    for n_jobs in (2, 3):
        many = _fit(FastSGDRegressor(batch_size="full", max_iter=15, tol=None,
                                     n_jobs=n_jobs, **params), Xin, y)
        np.testing.assert_allclose(many.coef_, one.coef_, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(many.loss_curve_, one.loss_curve_, rtol=1e-10)
        again = _fit(FastSGDRegressor(batch_size="full", max_iter=15, tol=None,
                                      n_jobs=n_jobs, **params), Xin, y)
        np.testing.assert_array_equal(again.coef_, many.coef_)


def test_threads_multinomial_and_ovr(data):
    X, Y = data
    labels = np.digitize(Y[:, 0], np.quantile(Y[:, 0], [0.33, 0.66]))
    for params in (dict(loss="log_loss", multi_class="multinomial"), dict()):
        kw = dict(batch_size="full", max_iter=10, tol=None, learning_rate="constant",
                  eta0=0.1, **params)
        one = _fit(FastSGDClassifier(**kw), X, labels)
        two = _fit(FastSGDClassifier(n_jobs=2, **kw), X, labels)
        np.testing.assert_allclose(two.coef_, one.coef_, rtol=1e-10, atol=1e-13)


def test_batch_norm_runs_on_one_thread(data):
    X, Y = data
    kw = dict(batch_size="full", max_iter=5, tol=None, batch_norm=True)
    one = _fit(FastSGDRegressor(**kw), X, Y[:, 0])
    two = _fit(FastSGDRegressor(n_jobs=2, **kw), X, Y[:, 0])
    np.testing.assert_array_equal(two.coef_, one.coef_)


def test_threads_with_early_stopping_and_callbacks(data):
    X, Y = data
    seen = []
    kw = dict(batch_size="full", max_iter=30, learning_rate="constant", eta0=0.1,
              early_stopping=True, random_state=0, callbacks=[lambda i: seen.append(i.epoch)])
    one = _fit(FastSGDRegressor(**kw), X, Y[:, 0])
    two = _fit(FastSGDRegressor(n_jobs=2, **kw), X, Y[:, 0])
    np.testing.assert_allclose(two.coef_, one.coef_, rtol=1e-10)
    assert two.n_iter_ == one.n_iter_


@pytest.mark.parametrize("shuffle", [True, False, "block"])
@pytest.mark.parametrize("params", MODES)
def test_large_minibatch_threads_match_one_thread(params, shuffle, monkeypatch):
    """Large minibatches split their gradient over threads."""
    from fastgd._executors.threaded import ThreadedBatches

    batch = 4096

    calls = []
    threaded = ThreadedBatches.run
    monkeypatch.setattr(ThreadedBatches, "run",
                        lambda *a, **k: calls.append(1) or threaded(*a, **k))

    rng = np.random.default_rng(1)
    n = 2 * batch + 1000  # two full batches and a partial one
    X = rng.normal(size=(n, 5))
    Y = X @ rng.normal(size=(5, 2)) + 0.1 * rng.normal(size=(n, 2))
    kw = dict(batch_size=batch, max_iter=4, tol=None, random_state=0,
              shuffle=shuffle, **params)
    for y in (Y[:, 0], Y):
        one = _fit(FastSGDRegressor(**kw), X, y)
        many = _fit(FastSGDRegressor(n_jobs=2, **kw), X, y)
        np.testing.assert_allclose(many.coef_, one.coef_, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(many.loss_curve_, one.loss_curve_, rtol=1e-10)
        assert many.t_ == one.t_ and many.lr_curve_ == one.lr_curve_
        again = _fit(FastSGDRegressor(n_jobs=2, **kw), X, y)
        np.testing.assert_array_equal(again.coef_, many.coef_)
    labels = (Y[:, 0] > 0).astype(int) + (Y[:, 1] > 0)
    for cls_kw in (dict(loss="log_loss", multi_class="multinomial"), dict()):
        ckw = dict(kw, **cls_kw)
        one = _fit(FastSGDClassifier(**ckw), X, labels)
        many = _fit(FastSGDClassifier(n_jobs=2, **ckw), X, labels)
        np.testing.assert_allclose(many.coef_, one.coef_, rtol=1e-10, atol=1e-13)
    # 4 epochs of each n_jobs=2 fit ran threaded: 2 regressors x 2 + 2 classifiers
    assert len(calls) == 4 * 6


@pytest.mark.parametrize("kind", ["threads", "gatherer"])
@pytest.mark.parametrize("stop", ["divergence", "callback"])
def test_worker_threads_end_when_a_fit_raises(data, kind, stop, monkeypatch):
    """The gradient threads (full batch) and the gathering thread (shuffled per-sample)
    are shut down when training ends in an exception, not left to the garbage
    collector."""
    import threading

    import fastgd._executors.gathered as gather

    X, Y = data
    monkeypatch.setattr(gather, "GATHER_MIN_BYTES", 0)
    params = dict(batch_size="full") if kind == "threads" else {}
    if stop == "divergence":
        params.update(eta0=1e200, learning_rate="constant")
    else:
        def raising(info):
            raise KeyError("stop here")
        params.update(callbacks=raising)
    before = set(threading.enumerate())
    est = FastSGDRegressor(max_iter=5, tol=None, n_jobs=2, random_state=0, **params)
    with pytest.raises(ValueError if stop == "divergence" else KeyError):
        est.fit(X, Y[:, 0])
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []


@pytest.mark.parametrize("batch, d, dtype, threads, expected", [
    # a 4,096-row float32 batch of 100 features (1.6 MB) stays on one thread: cut in two
    # it ran 1.12x slower than one thread on 2 cores (1.20x on 16)
    (4096, 100, np.float32, 16, 1), (8192, 100, np.float32, 16, 3),
    (4096, 100, np.float64, 16, 3), (4096, 100, np.float64, 2, 2),
    (2048, 100, np.float64, 16, 1), (100_000, 100, np.float64, 16, 16),
    ("full", 3, np.float64, 16, 4), (4096, 3, np.float64, 16, 1),
])
def test_batches_get_enough_bytes_per_thread(batch, d, dtype, threads, expected,
                                             monkeypatch):
    """Many cores never split a batch into slivers: a thread gets a share only with
    ``BYTES_PER_THREAD`` of the batch's rows (n_jobs=-1 on 16 cores used to cut a
    4,096-row batch in 16 and ran 2.1x slower than one thread)."""
    from fastgd._executors.threaded import ThreadedBatches
    from fastgd._kernels.bundles import Rows
    from fastgd._loop import plan
    from fastgd._program import lower

    monkeypatch.setattr(_loop, "BYTES_PER_THREAD", BYTES_PER_THREAD)
    assert BYTES_PER_THREAD == 2**20
    est = FastSGDRegressor(batch_size=batch, optimizer="momentum")
    est._validate_params()
    n = 200_000
    X = np.zeros((n, d), dtype=dtype)
    rows = Rows(X, np.zeros((n, 1)), np.ones(n), np.ones((1, 2)))
    executor, orders = plan(lower(est), rows, np.arange(n), shuffle=False,
                            n_threads=threads)
    try:
        got = executor.n_threads if isinstance(executor, ThreadedBatches) else 1
        assert got == expected
    finally:
        executor.close()
