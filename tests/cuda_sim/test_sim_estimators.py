"""device="cuda" / "auto" through the estimators, in the CUDA simulator: GPU arrays,
device shuffling, determinism, partial_fit across devices, pickling, errors."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from numba import cuda

from fastgd import FastSGDClassifier, FastSGDRegressor, _device
from fastgd._kernels import counter
from fastgd._executors.base import batch_work
from fastgd._kernels import cpu as kcpu
from fastgd._kernels.bundles import Rows, epoch_control
from fastgd._kernels import cuda as kc
from fastgd._kernels import cuda_layout as layout


def data(n=29, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 0.3 + 0.1 * rng.normal(size=n)


PARAMS = dict(batch_size=12, optimizer="adam", eta0=0.05, max_iter=2, tol=None,
              random_state=0, shuffle=False)
SHUFFLED = {**PARAMS, "shuffle": True}


class HostCounterBackend:
    """The CPU loop fed the GPU's epoch order (``counter.counter_order``): the
    reference a shuffled GPU fit must match."""

    def __init__(self, X, Y, sw, cw, train_idx, prog, batch=None, mode=None):
        self.X, self.Y, self.sw, self.cw, self.prog = X, Y, sw, cw, prog
        self.train_idx = train_idx
        self.batch = prog.batch_size or train_idx.shape[0]

    def start(self, state):
        pass

    def epoch(self, state, seed, active, eta_fixed, epoch, out):
        k, d1 = state.theta.shape
        order = self.train_idx if seed is None else counter.counter_order(self.train_idx,
                                                                          seed)
        kcpu.epoch_batch(
            Rows(self.X, self.Y, self.sw, self.cw), order, kcpu.NO_LOOKAHEAD,
            self.prog.kernel_program(self.X, self.train_idx.shape[0], k),
            state, batch_work(k, d1 - 1),
            epoch_control(active, eta_fixed, epoch), out)


@pytest.mark.parametrize("mode", ["step", "cooperative"])
def test_device_shuffle_matches_host_order(mode, monkeypatch):
    monkeypatch.setattr(kc, "MODE", mode)
    X, y = data()
    gpu = FastSGDRegressor(device="cuda", **SHUFFLED).fit(X, y)
    monkeypatch.setattr(kc, "CudaBackend", HostCounterBackend)
    ref = FastSGDRegressor(device="cuda", **SHUFFLED).fit(X, y)
    np.testing.assert_allclose(gpu.coef_, ref.coef_, rtol=0, atol=1e-10)
    # and the order really is shuffled: not the unshuffled fit
    monkeypatch.undo()
    plain = FastSGDRegressor(device="cuda", **PARAMS).fit(X, y)
    assert np.abs(plain.coef_ - gpu.coef_).max() > 1e-6


def test_order_kernel_is_the_host_permutation():
    rows = np.arange(3, 60, 2, dtype=np.int64)  # a subset, as with early stopping
    for seed in (0, 1, 2**62 + 12345):
        ints = np.zeros(layout.NI, dtype=np.int64)
        ints[layout.I_HALF_BITS], ints[layout.I_KEYS:layout.I_KEYS + 4] = \
            counter.counter_keys(rows.shape[0], seed)
        out = cuda.device_array(rows.shape[0], dtype=np.int64)
        kc._k_order[4, kc.TPB](cuda.to_device(rows), cuda.to_device(ints), out)
        host = counter.counter_order(rows, seed)
        np.testing.assert_array_equal(out.copy_to_host(), host)
        assert sorted(host.tolist()) == rows.tolist()


def test_shuffled_gpu_fit_is_reproducible():
    X, y = data()
    a = FastSGDRegressor(device="cuda", **SHUFFLED).fit(X, y)
    b = FastSGDRegressor(device="cuda", **SHUFFLED).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)  # bit-identical
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    c = FastSGDRegressor(device="cuda", **{**SHUFFLED, "random_state": 1}).fit(X, y)
    assert np.abs(a.coef_ - c.coef_).max() > 1e-6


def test_numba_device_array_is_not_copied():
    X, y = data()
    Xd = cuda.to_device(X)
    from fastgd._program import lower

    be = kc.CudaBackend(Xd, y[:, None], np.ones(29), np.ones((1, 2)),
                        np.arange(29), lower(FastSGDRegressor(**PARAMS)))
    assert be.X is Xd
    host = FastSGDRegressor(device="cuda", **PARAMS).fit(X, y)
    dev = FastSGDRegressor(device="cuda", **PARAMS).fit(Xd, cuda.to_device(y))
    np.testing.assert_array_equal(dev.coef_, host.coef_)
    assert dev.n_features_in_ == 3 and dev.device_ == "cuda"
    np.testing.assert_allclose(dev.predict(X), host.predict(X))


def test_device_array_with_early_stopping():
    X, _ = data(n=60)
    y = (X[:, 0] > 0).astype(int)
    params = dict(batch_size=16, max_iter=30, tol=1e-3, early_stopping=True,
                  validation_fraction=0.25, n_iter_no_change=2, random_state=0,
                  shuffle=False)
    dev = FastSGDClassifier(device="cuda", **params).fit(cuda.to_device(X), y)
    cpu = FastSGDClassifier(device="cpu", **params).fit(X, y)
    np.testing.assert_allclose(dev.coef_, cpu.coef_, atol=1e-10)
    assert dev.validation_scores_ == cpu.validation_scores_


def test_device_array_errors():
    X, y = data()
    with pytest.raises(ValueError, match="X is a GPU array"):
        FastSGDRegressor(device="cpu", **PARAMS).fit(cuda.to_device(X), y)
    with pytest.raises(ValueError, match="float32 or float64"):
        FastSGDRegressor(device="cuda", **PARAMS).fit(cuda.to_device(X.astype(np.int32)), y)
    with pytest.raises(ValueError, match="2-D"):
        FastSGDRegressor(device="cuda", **PARAMS).fit(cuda.to_device(X[:, 0].copy()), y)
    est = FastSGDRegressor(device="cuda", **PARAMS).fit(cuda.to_device(X), y)
    with pytest.raises(ValueError, match="features"):
        est.partial_fit(cuda.to_device(X[:, :2].copy()), y)


def test_refused_modes_are_clear_errors():
    X, y = data()
    with pytest.raises(ValueError, match="per-sample.*batch_size=256"):
        FastSGDRegressor(device="cuda").fit(X, y)  # batch_size=1, optimizer="sgd"
    with pytest.raises(ValueError, match="sparse"):
        FastSGDRegressor(device="cuda", batch_size=8).fit(sp.csr_matrix(X), y)
    # batch_size=1 with a stateful optimizer is a batch mode: it runs
    FastSGDRegressor(device="cuda", batch_size=1, optimizer="adam", max_iter=1,
                     tol=None).fit(X[:10], y[:10])


def test_auto_picks_gpu_for_large_problems(monkeypatch):
    X, y = data()
    small = FastSGDRegressor(device="auto", **PARAMS).fit(X, y)
    assert small.device_ == "cpu"
    monkeypatch.setattr(_device, "AUTO_MIN_ELEMENTS", X.size)
    big = FastSGDRegressor(device="auto", **PARAMS).fit(X, y)
    assert big.device_ == "cuda"
    np.testing.assert_allclose(big.coef_, small.coef_, atol=1e-10)
    # modes the GPU does not run stay on the CPU
    assert FastSGDRegressor(device="auto", max_iter=1, tol=None).fit(X, y).device_ == "cpu"
    assert FastSGDRegressor(device="auto", **PARAMS).fit(sp.csr_matrix(X),
                                                          y).device_ == "cpu"
    # data already on the GPU trains there whatever its size
    monkeypatch.setattr(_device, "AUTO_MIN_ELEMENTS", 10**12)
    assert FastSGDRegressor(device="auto", **PARAMS).fit(cuda.to_device(X),
                                                         y).device_ == "cuda"


@pytest.mark.parametrize("devices", [("cpu", "cuda", "cpu"), ("cuda", "cpu", "cuda")])
def test_partial_fit_moves_between_devices(devices):
    X, _ = data()
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    params = dict(batch_size=12, optimizer="momentum", eta0=0.05, shuffle=True,
                  random_state=0, average=2, loss="log_loss")
    mixed = FastSGDClassifier(**params)
    ref = FastSGDClassifier(**params)
    for i, dev in enumerate(devices):
        mixed.set_params(device=dev)
        mixed.partial_fit(X, y, classes=[0, 1] if i == 0 else None)
    # the same epochs on one device each: the optimizer state, counters, averages and
    # random stream carried over; only the epoch orders differ by device (CPU:
    # NumPy permutation, GPU: counter permutation), so rebuild those on the reference
    for i, dev in enumerate(devices):
        ref.set_params(device=dev)
        ref.partial_fit(X, y, classes=[0, 1] if i == 0 else None)
    np.testing.assert_allclose(mixed.coef_, ref.coef_, atol=1e-10)
    assert mixed.t_ == ref.t_ == 3 * 3 + 1
    for key, val in ref.optimizer_state_.items():
        np.testing.assert_allclose(mixed.optimizer_state_[key], val, atol=1e-10)


def test_partial_fit_cpu_then_gpu_equals_cpu_only():
    X, y = data()
    params = dict(batch_size=12, optimizer="adam", eta0=0.05, shuffle=False,
                  batch_norm=True)
    cpu = FastSGDRegressor(**params)
    mixed = FastSGDRegressor(**params)
    for dev in ("cpu", "cuda", "cuda", "cpu"):
        cpu.partial_fit(X, y)
        mixed.set_params(device=dev).partial_fit(X, y)
    np.testing.assert_allclose(mixed.coef_, cpu.coef_, atol=1e-10)
    np.testing.assert_allclose(mixed.bn_running_var_, cpu.bn_running_var_, rtol=1e-12)
    assert mixed.optimizer_state_["step"] == cpu.optimizer_state_["step"] == 12


def test_gpu_fitted_estimator_pickles_to_host_arrays():
    X, y = data()
    est = FastSGDRegressor(device="cuda", **PARAMS).fit(X, y)
    for value in vars(est).values():
        assert not _device.is_device_array(value)
    for value in vars(est._state).values():
        assert not _device.is_device_array(value)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), est.predict(X))


def test_callbacks_and_warm_start_on_gpu():
    X, y = data()
    seen = []
    est = FastSGDRegressor(device="cuda", warm_start=True,
                           callbacks=[lambda info: seen.append(info.coef.copy())],
                           **PARAMS).fit(X, y)
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[-1], est.coef_)
    first = est.coef_.copy()
    est.fit(X, y)
    ref = FastSGDRegressor(device="cpu", warm_start=True, **PARAMS).fit(X, y).fit(X, y)
    assert np.abs(est.coef_ - first).max() > 0
    np.testing.assert_allclose(est.coef_, ref.coef_, atol=1e-10)
