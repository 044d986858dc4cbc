"""fastgd's threads under every joblib backend (issue 21, item 1).

fastgd splits one-vs-rest classes and multi-output targets over threads of the calling
process, which write the training state in place. An enclosing
``joblib.parallel_backend`` context (``loky``, ``multiprocessing``, ``threading``, or a
Dask cluster's) must change nothing: the threads stay threads of this process, and
``n_jobs`` counts threads of this machine whatever the context says.
"""

import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastgd import FastSGDClassifier, FastSGDRegressor
from fitting import split_small_batches  # noqa: F401 (a fixture)

try:
    from fastgd.linear_model._base import thread_count
except ImportError:
    from joblib import effective_n_jobs as thread_count

BACKENDS = ["loky", "multiprocessing", "threading", "dask"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    # two worker threads in this process: the dask backend's n_jobs is 2, not 1
    client = distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                                dashboard_address=":0")
    yield client
    client.close()


@pytest.fixture
def in_backend(request):
    """``in_backend(name)``: a context in which joblib's active backend is ``name``."""

    def context(name, **kwargs):
        if name == "dask":
            request.getfixturevalue("dask_client")  # the backend needs a live client
        return joblib.parallel_backend(name, **kwargs)

    return context


@pytest.fixture(scope="module")
def problems():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    X[rng.random(X.shape) < 0.5] = 0.0
    labels = rng.integers(0, 5, size=60)  # 5 one-vs-rest classes
    Y = X @ rng.normal(size=(8, 3)) + 0.1 * rng.normal(size=(60, 3))
    return {
        "ovr dense": (FastSGDClassifier, X, labels),
        "ovr csr": (FastSGDClassifier, sp.csr_matrix(X), labels),
        "multi-output regressor": (FastSGDRegressor, X, Y),
    }


MODES = {
    "per-sample": dict(),
    "minibatch adam": dict(batch_size=8, optimizer="adam", learning_rate="constant",
                           eta0=0.01),
}


def _coef(cls, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = cls(max_iter=4, tol=None, random_state=0, **params).fit(X, y)
    return est.coef_, est.intercept_


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("problem", ["ovr dense", "ovr csr", "multi-output regressor"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_and_n_jobs_give_the_sequential_model(problems, in_backend, backend,
                                                             problem, mode):
    """The acceptance test: n_jobs in {1, 2, 4} under every backend equals n_jobs=1
    outside any backend, bit for bit (on the original code, loky and multiprocessing
    returned an all-zero model)."""
    cls, X, y = problems[problem]
    ref_coef, ref_intercept = _coef(cls, X, y, n_jobs=1, **MODES[mode])
    assert np.abs(ref_coef).max() > 0.01
    for n_jobs in (1, 2, 4):
        with in_backend(backend):
            coef, intercept = _coef(cls, X, y, n_jobs=n_jobs, **MODES[mode])
        np.testing.assert_array_equal(coef, ref_coef, err_msg=f"n_jobs={n_jobs}")
        np.testing.assert_array_equal(intercept, ref_intercept, err_msg=f"n_jobs={n_jobs}")


@pytest.mark.usefixtures("split_small_batches")
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_backends_worker_count_is_not_fastgds_thread_count(problems, in_backend,
                                                             backend):
    """``n_jobs=None`` is one thread under any backend context (scikit-learn's
    ``effective_n_jobs`` would return the context's count, a Dask cluster's threads).
    Full-batch gradients are summed per thread, so the thread count shows in the
    rounding: the original code gave the two-thread sums here."""
    _, X, _ = problems["ovr dense"]
    Y = problems["multi-output regressor"][2]
    params = dict(batch_size="full", learning_rate="constant", eta0=0.1)
    one_coef, _ = _coef(FastSGDRegressor, X, Y, n_jobs=1, **params)
    two_coef, _ = _coef(FastSGDRegressor, X, Y, n_jobs=2, **params)
    assert not np.array_equal(one_coef, two_coef)  # the test can tell them apart
    with in_backend(backend, n_jobs=2):
        coef, _ = _coef(FastSGDRegressor, X, Y, **params)
        assert thread_count(None) == 1
    np.testing.assert_array_equal(coef, one_coef)


OTHER_THREADS = {
    # a full batch's gradient summed over 2 row ranges on 2 threads
    "full-batch row ranges": dict(batch_size="full", learning_rate="constant", eta0=0.1,
                                  n_jobs=2),
    # a large minibatch split the same way
    "large-minibatch row ranges": dict(batch_size=4096, learning_rate="constant",
                                       eta0=0.1, n_jobs=2),
    # one output, shuffled epochs: a second thread copies the next rows ahead
    "copy-ahead thread": dict(n_jobs=2),
}


@pytest.mark.usefixtures("split_small_batches")
@pytest.mark.parametrize("place", list(OTHER_THREADS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_fastgds_other_threads_under_every_backend(in_backend, backend, place):
    """Every other place fastgd runs threads gives, inside a backend context, the
    model it gives outside one."""
    from fastgd._executors.gathered import gather_all

    rng = np.random.default_rng(1)
    X = rng.normal(size=(8200, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.1 * rng.normal(size=8200)
    params = OTHER_THREADS[place]
    with gather_all():  # copy ahead even on data this small
        ref_coef, _ = _coef(FastSGDRegressor, X, y, **params)
        with in_backend(backend):
            coef, _ = _coef(FastSGDRegressor, X, y, **params)
    np.testing.assert_array_equal(coef, ref_coef)


def test_thread_count_rule():
    assert thread_count(None) == 1
    assert thread_count(3) == 3
    assert thread_count(-1) == joblib.cpu_count()
    assert thread_count(-(joblib.cpu_count() + 5)) == 1
    with pytest.raises(ValueError, match="n_jobs == 0"):
        thread_count(0)
    with joblib.parallel_backend("threading", n_jobs=7):
        assert thread_count(-1) == joblib.cpu_count()
