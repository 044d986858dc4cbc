"""What only a GPU can test: a cooperative grid of many blocks, the launches through
compiled kernels, PyTorch and CuPy inputs, realistic block sizes and data sizes.

Run on a GPU machine with the default block size::

    FASTGD_TEST_REAL_GPU=1 pytest tests/cuda_sim/test_gpu_device.py -q

Skipped in numba-cuda's simulator (its grid sync is a block sync, so a cooperative grid
runs there as one block, and it has no compiled kernels) and with a block smaller than
a warp (the ``FASTGD_CUDA_TPB=8`` run of the other kernel tests).
"""

import numpy as np
import pytest

from fastgd import FastSGDClassifier, FastSGDRegressor
from fastgd._state import TrainState
from fastgd._kernels import cuda as kc
from fastgd._kernels.cuda_layout import OUT_N
from fastgd._program import lower

pytestmark = [
    pytest.mark.skipif(kc.SIMULATOR, reason="a grid of many cooperating blocks and "
                       "compiled kernels need a GPU; the simulator runs one block"),
    pytest.mark.skipif(kc.TPB < 32, reason="run with a realistic FASTGD_CUDA_TPB"),
]


def data(n=20_000, d=50, k=1, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    Y = X @ rng.normal(size=(d, k)) / np.sqrt(d) + 0.1 * rng.normal(size=(n, k))
    return X, (Y[:, 0] if k == 1 else Y)


def fit(Est, X, y, mode, monkeypatch, **params):
    monkeypatch.setattr(kc, "MODE", mode)
    params = {"max_iter": 2, "tol": None, "random_state": 0, "shuffle": False, **params}
    return Est(device="cuda", **params).fit(X, y)


CASES = {
    "regs": (FastSGDRegressor, dict(k=1), dict(batch_size=2048, optimizer="adam",
                                                eta0=0.01, clip_norm=1.0)),
    "tile-wide": (FastSGDRegressor, dict(k=1, d=300), dict(batch_size=1024,
                                                           optimizer="momentum",
                                                           eta0=0.01)),
    "tile-batch-norm": (FastSGDRegressor, dict(k=2), dict(batch_size=1000,
                                                         batch_norm=True, eta0=0.01)),
    "multinomial": (FastSGDClassifier, dict(k=4), dict(batch_size=512, loss="log_loss",
                                                      multi_class="multinomial",
                                                      eta0=0.05, average=5)),
}


def _case(case):
    Est, shape, params = CASES[case]
    X, y = data(k=shape["k"], d=shape.get("d", 50))
    if Est is FastSGDClassifier:
        y = np.argmax(y, axis=1)
    return Est, X, y, params


@pytest.mark.parametrize("coop_grid", [0, 3], ids=["resident-grid", "3-blocks"])
@pytest.mark.parametrize("case", list(CASES))
def test_cooperative_grid_matches_step_mode_and_cpu(case, coop_grid, monkeypatch):
    Est, X, y, params = _case(case)
    monkeypatch.setattr(kc, "COOP_GRID", coop_grid)
    step = fit(Est, X, y, "step", monkeypatch, **params)
    coop = fit(Est, X, y, "cooperative", monkeypatch, **params)
    if params.get("batch_norm"):
        # measured on an H200: one ulp apart (the compiler fuses a multiply-add of the
        # batch statistics in one kernel and not in the other; docs/gpu.md)
        np.testing.assert_allclose(coop.coef_, step.coef_, rtol=1e-15, atol=1e-17)
        np.testing.assert_allclose(coop.intercept_, step.intercept_, rtol=1e-15)
    else:
        np.testing.assert_array_equal(coop.coef_, step.coef_)
        np.testing.assert_array_equal(coop.intercept_, step.intercept_)
        assert coop.loss_curve_ == step.loss_curve_
    cpu = Est(device="cpu", max_iter=2, tol=None, random_state=0, shuffle=False,
              **params).fit(X, y)
    scale = float(np.abs(cpu.coef_).max())
    assert np.abs(coop.coef_ - cpu.coef_).max() <= 1e-10 * scale


def test_persistent_mode_matches_step_mode(monkeypatch):
    Est, X, y, params = _case("regs")
    step = fit(Est, X, y, "step", monkeypatch, **params)
    pers = fit(Est, X, y, "persistent", monkeypatch, **params)
    np.testing.assert_array_equal(pers.coef_, step.coef_)


def _backend(X, y, batch, mode):
    prog = lower(FastSGDRegressor(batch_size=batch))
    return kc.CudaBackend(X, y[:, None], np.ones(len(y)), np.ones((1, 2)),
                          np.arange(len(y)), prog, mode=mode), prog


def test_cooperative_backend_uses_many_blocks_and_compiled_launches():
    X, y = data()
    be, prog = _backend(X, y, 2048, "cooperative")
    assert be.mode == "cooperative" and be.grid > 1 and be.grid <= be.n_slots
    state = TrainState.new(1, X.shape[1], prog).batch_arrays()
    be.start(state)
    out = np.zeros((1, 6))
    be.epoch(state, 1234, np.ones(1, bool), np.zeros(1), 0.0, out)
    assert be.launch["cooperative"].fast and be.launch["order"].fast
    assert out[0, OUT_N] == -(-len(y) // 2048)
    compiled = be.launch["cooperative"].compiled
    print("cooperative kernel: registers", compiled.regs_per_thread, "local bytes",
          compiled.local_mem_per_thread, "grid", be.grid)
    if kc.MAX_REGISTERS > 0:
        assert compiled.regs_per_thread <= kc.MAX_REGISTERS


def test_shuffled_cooperative_fits_repeat_bit_for_bit(monkeypatch):
    X, y = data(dtype=np.float32)
    a = fit(FastSGDRegressor, X, y, "cooperative", monkeypatch, batch_size=256,
            shuffle=True, optimizer="momentum", eta0=0.01)
    b = fit(FastSGDRegressor, X, y, "cooperative", monkeypatch, batch_size=256,
            shuffle=True, optimizer="momentum", eta0=0.01)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.coef_.dtype == np.float32


def test_torch_cuda_tensor_input(monkeypatch):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    X, y = data(n=4000, dtype=np.float32)
    params = dict(batch_size=256, max_iter=2, tol=None, random_state=0)
    ref = FastSGDRegressor(device="cuda", **params).fit(X, y)
    est = FastSGDRegressor(device="cuda", **params).fit(
        torch.as_tensor(X, device="cuda"), torch.as_tensor(y, device="cuda"))
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    assert est.coef_.dtype == np.float32 and est.device_ == "cuda"


def test_cupy_input():
    cp = pytest.importorskip("cupy")
    X, y = data(n=4000, dtype=np.float32)
    params = dict(batch_size=256, max_iter=2, tol=None, random_state=0)
    ref = FastSGDRegressor(device="cuda", **params).fit(X, y)
    est = FastSGDRegressor(device="cuda", **params).fit(cp.asarray(X), y)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
