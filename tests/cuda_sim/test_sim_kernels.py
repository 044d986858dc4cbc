"""GPU kernels vs the CPU loop, option by option, in the CUDA simulator.

Every fit runs on the GPU backend with 8 threads per block and at most 3 slots (see
conftest.py) and is compared with the same fit on the CPU. The CPU sums rows
sequentially, the GPU in slots, warps and trees, so the two agree to rounding: 1e-10
in float64. The option matrix runs in step mode (a gradient launch of a block per
slot: the multi-block path the simulator can run); the three modes sum the same slots
in the same order, which ``test_modes_are_bitwise_identical`` checks on one fit of
each kind (the simulator runs the cooperative kernel on one block). On a GPU
(``FASTGD_TEST_REAL_GPU=1``) the matrix runs in every mode.
"""

import numpy as np
import pytest

from fastgd import FastSGDClassifier, FastSGDRegressor, optim, schedules
from fastgd._kernels import cuda as kc

MODES = ["step"] if kc.SIMULATOR else ["step", "persistent", "cooperative"]


@pytest.fixture(params=MODES)
def mode(request, monkeypatch):
    monkeypatch.setattr(kc, "MODE", request.param)
    return request.param


def data(n=29, d=3, k=1, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    w = rng.normal(size=(d, k))
    Y = X @ w + 0.3 + 0.1 * rng.normal(size=(n, k))
    return X, (Y[:, 0] if k == 1 else Y)


def labels(X, n_classes=3):
    s = X[:, 0] + 0.5 * X[:, 1]
    return np.digitize(s, np.quantile(s, np.linspace(0, 1, n_classes + 1)[1:-1]))


def pair(Est, X, y, atol=1e-10, sample_weight=None, **params):
    """Fit on the CPU and on the GPU; check same weights, histories, counters."""
    params = {"max_iter": 2, "tol": None, "shuffle": False, "random_state": 0, **params}
    cpu = Est(device="cpu", **params).fit(X, y, sample_weight=sample_weight)
    gpu = Est(device="cuda", **params).fit(X, y, sample_weight=sample_weight)
    assert gpu.device_ == "cuda" and cpu.device_ == "cpu"
    assert isinstance(gpu.coef_, np.ndarray) and gpu.coef_.dtype == cpu.coef_.dtype
    scale = max(1.0, float(np.abs(cpu.coef_).max()))
    np.testing.assert_allclose(gpu.coef_, cpu.coef_, rtol=0, atol=atol * scale)
    np.testing.assert_allclose(gpu.intercept_, cpu.intercept_, rtol=0, atol=atol * scale)
    np.testing.assert_allclose(gpu.loss_curve_, cpu.loss_curve_, rtol=atol)
    np.testing.assert_allclose(gpu.lr_curve_, cpu.lr_curve_, rtol=atol)
    np.testing.assert_allclose(gpu.grad_norm_curve_, cpu.grad_norm_curve_, rtol=1e-8)
    assert gpu.n_iter_ == cpu.n_iter_ and gpu.t_ == cpu.t_
    for key, value in cpu.optimizer_state_.items():
        np.testing.assert_allclose(gpu.optimizer_state_[key], value, rtol=1e-8,
                                   atol=atol * scale)
    return cpu, gpu


OPTIMIZERS = [
    "sgd", "momentum", "nesterov", "adagrad", "adadelta", "adamw",
    optim.Momentum(momentum=0.9, dampening=0.3, weight_decay=0.01),
    optim.RMSprop(alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01),
    optim.Adam(amsgrad=True, weight_decay=0.01),
    optim.Adagrad(lr_decay=0.1, initial_accumulator_value=0.1),
]


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=str)
def test_optimizers(mode, opt):
    X, y = data()
    pair(FastSGDRegressor, X, y, batch_size=12, optimizer=opt, eta0=0.05)


SCHEDULES = [
    "invscaling", "optimal", "adaptive",
    schedules.Step(step_size=2, gamma=0.5),
    schedules.MultiStep(milestones=[1, 3], gamma=0.3, unit="update"),
    schedules.Warmup(schedules.Exponential(gamma=0.9, unit="update"), warmup_steps=2,
                     start_factor=0.1),
    schedules.Cosine(T_max=5, eta_min=0.001),
    schedules.CosineWarmRestarts(T_0=2, T_mult=2, unit="update"),
    schedules.OneCycle(total_steps=6),
    schedules.InverseSqrt(warmup_steps=2),
]


@pytest.mark.parametrize("sched", SCHEDULES, ids=str)
def test_schedules(mode, sched):
    X, y = data()
    pair(FastSGDRegressor, X, y, batch_size=12, learning_rate=sched, eta0=0.05,
         alpha=0.01, max_iter=3)


@pytest.mark.parametrize("clip", [dict(clip_value=0.05), dict(clip_norm=0.1),
                                  dict(clip_value=0.05, clip_norm=0.08)], ids=str)
def test_clipping(mode, clip):
    X, y = data(k=2)
    pair(FastSGDRegressor, X, y, batch_size=12, optimizer="momentum", eta0=0.05, **clip)


@pytest.mark.parametrize("loss", ["squared_error", "huber", "epsilon_insensitive",
                                  "squared_epsilon_insensitive"])
def test_regression_losses_multi_output(mode, loss):
    X, y = data(k=2)
    pair(FastSGDRegressor, X, y, batch_size=12, loss=loss, epsilon=0.2, eta0=0.05)


@pytest.mark.parametrize("loss", ["hinge", "perceptron", "squared_hinge",
                                  "modified_huber", "log_loss"])
def test_classification_losses_ovr(mode, loss):
    X, _ = data()
    sw = np.linspace(0.5, 1.5, X.shape[0])
    pair(FastSGDClassifier, X, labels(X), batch_size=12, loss=loss, eta0=0.05,
         class_weight={0: 2.0, 1: 1.0, 2: 0.5}, sample_weight=sw)


@pytest.mark.parametrize("penalty", [None, "l2", "l1", "elasticnet"])
def test_penalties(mode, penalty):
    X, y = data()
    pair(FastSGDRegressor, X, y, batch_size=12, penalty=penalty, alpha=0.05,
         l1_ratio=0.4, optimizer="adam", eta0=0.05)


@pytest.mark.parametrize("batch_size", [12, 1, "full"])
def test_batch_norm(mode, batch_size):
    # n=25 with batches of 12 ends on a batch of one row (the running-stats path)
    X, y = data(n=25)
    X = X * np.array([5.0, 0.2, 1.0]) + 3.0
    cpu, gpu = pair(FastSGDRegressor, X, y, batch_size=batch_size, batch_norm=True,
                    optimizer="sgd" if batch_size != 1 else "momentum", eta0=0.02)
    np.testing.assert_allclose(gpu.bn_running_mean_, cpu.bn_running_mean_, rtol=1e-12)
    np.testing.assert_allclose(gpu.bn_running_var_, cpu.bn_running_var_, rtol=1e-12)


def test_multinomial_with_clipping_and_averaging(mode):
    X, _ = data()
    pair(FastSGDClassifier, X, labels(X, 4), batch_size=12, loss="log_loss",
         multi_class="multinomial", clip_norm=0.1, average=2, eta0=0.1,
         penalty="elasticnet", alpha=0.01)


def test_averaging_without_intercept(mode):
    X, y = data(k=2)
    pair(FastSGDRegressor, X, y, batch_size=12, average=3, fit_intercept=False,
         optimizer="adagrad", eta0=0.1)


def test_full_batch_grid_strided(mode):
    # 50 rows, chunks of 8, 3 blocks: every block sums several chunks
    X, y = data(n=50, k=2)
    pair(FastSGDRegressor, X, y, batch_size="full", optimizer="rmsprop", eta0=0.01,
         max_iter=3)


@pytest.mark.parametrize("d", [20, 40], ids=["regs-3-lanes-deep", "tile-wide"])
def test_wide_rows(mode, d):
    # 8 lanes x 4 registers: 20 features fill 3 registers per lane on the register
    # path, 40 features take the tile path (and several lanes' strides)
    assert kc.regs_path(1, 20, False) and not kc.regs_path(1, 40, False)
    X, y = data(n=37, d=d)
    pair(FastSGDRegressor, X, y, batch_size=16, optimizer="momentum", eta0=0.01,
         penalty="l2", alpha=0.01)


def test_float32_within_float32_rounding(mode):
    X, y = data(dtype=np.float32)
    # the arithmetic is float64 on both (float32 values promoted as they are read):
    # coef_ agree once rounded to float32
    _, gpu = pair(FastSGDRegressor, X, y, atol=1e-6, batch_size=12, optimizer="adam",
                    eta0=0.05)
    assert gpu.coef_.dtype == np.float32


def test_fortran_order(mode):
    X, y = data()
    pair(FastSGDRegressor, np.asfortranarray(X), y, batch_size=12, eta0=0.05)


def test_early_stopping_and_convergence(mode):
    X, _ = data(n=60)
    y = labels(X, 2)
    pair(FastSGDClassifier, X, y, batch_size=16, max_iter=30, tol=1e-3,
         early_stopping=True, validation_fraction=0.25, n_iter_no_change=2,
         restore_best_weights=True)
    Xr, yr = data(n=40, k=2)
    cpu, _ = pair(FastSGDRegressor, Xr, yr, batch_size=16, max_iter=40, tol=1e-2,
                  n_iter_no_change=2, eta0=0.05)
    assert cpu.n_iter_ < 40  # independent outputs stopped on their own


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # the simulator's numpy
def test_divergence_raises(mode):
    X, y = data()
    with pytest.raises(ValueError, match="overflow"):
        FastSGDRegressor(device="cuda", batch_size=12, learning_rate="constant",
                         eta0=1e10, max_iter=60,
                         tol=None).fit(X * 1e3, y * 1e3)


MODE_CASES = {
    "regs-adam-shuffled": (FastSGDRegressor, dict(k=1), dict(
        batch_size=12, optimizer="adam", eta0=0.05, clip_norm=0.5, penalty="l2",
        alpha=0.01, shuffle=True)),
    "tile-multi-output": (FastSGDRegressor, dict(k=2), dict(
        batch_size=12, optimizer="momentum", eta0=0.05, clip_value=0.05)),
    "multinomial": (FastSGDClassifier, dict(classes=4), dict(
        batch_size=12, loss="log_loss", multi_class="multinomial", average=2,
        penalty="elasticnet", alpha=0.01, eta0=0.1)),
    "batch-norm": (FastSGDRegressor, dict(k=1, n=25), dict(
        batch_size=12, batch_norm=True, eta0=0.02)),
    "full-batch": (FastSGDRegressor, dict(k=2, n=50), dict(
        batch_size="full", optimizer="rmsprop", eta0=0.01)),
}


@pytest.mark.parametrize("other", ["persistent", "cooperative"])
@pytest.mark.parametrize("case", list(MODE_CASES))
def test_modes_are_bitwise_identical(case, other, monkeypatch):
    Est, shape, params = MODE_CASES[case]
    X, y = data(n=shape.get("n", 29), k=shape.get("k", 1))
    if "classes" in shape:
        y = labels(X, shape["classes"])
    params = {"max_iter": 2, "tol": None, "random_state": 0, "shuffle": False, **params}
    fits = {}
    for mode in ("step", other):
        monkeypatch.setattr(kc, "MODE", mode)
        fits[mode] = Est(device="cuda", **params).fit(X, y)
    a, b = fits["step"], fits[other]
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.loss_curve_ == b.loss_curve_
    assert a.grad_norm_curve_ == b.grad_norm_curve_
    for key, value in a.optimizer_state_.items():
        np.testing.assert_array_equal(b.optimizer_state_[key], value)


def test_backend_runs_the_mode_asked(monkeypatch):
    from fastgd._program import lower

    X, y = data()
    prog = lower(FastSGDRegressor(batch_size=12))
    for mode in ("step", "persistent", "cooperative"):
        monkeypatch.setattr(kc, "MODE", mode)
        be = kc.CudaBackend(X, y[:, None], np.ones(29), np.ones((1, 2)), np.arange(29),
                            prog)
        assert be.mode == mode and be.n_slots == 3
        expected = {"step": 3, "persistent": 1, "cooperative": 1 if kc.SIMULATOR else None}
        assert be.grid == expected[mode] or (expected[mode] is None and 1 <= be.grid <= 3)
    with pytest.raises(ValueError, match="FASTGD_CUDA_MODE"):
        kc.choose_mode(12, 3, 8, "epoch")
