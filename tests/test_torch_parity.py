"""Parity with PyTorch: schedules, optimizers, clipping, batch norm and ``minimize``.

fastgd promises the formulas of ``torch.optim`` / ``torch.optim.lr_scheduler`` /
``torch.nn.BatchNorm1d`` (docs/semantics.md). Here the same problem is solved with
both libraries in float64 and the results compared to a tight relative tolerance.

Torch-side conventions used throughout (they are what makes the two comparable):

* loss ``0.5 * MSELoss(reduction="mean")`` = fastgd's ``squared_error`` (½r², gradient
  averaged over the batch);
* the bias lives in its own parameter group with ``weight_decay=0`` (fastgd never decays
  the intercept);
* epoch-unit schedules: ``scheduler.step()`` once per epoch; ``OneCycleLR`` once per
  update, always with ``cycle_momentum=False`` (fastgd's OneCycle does not touch momentum);
* clipping: ``clip_grad_value_`` then ``clip_grad_norm_`` over ``[weight, bias]`` between
  ``backward()`` and ``step()``;
* ``foreach=False`` (the single-tensor reference implementations).

Scalar maths may differ in the last ulp between the two (``lerp_`` vs ``b m + (1-b) g``,
recursive vs closed-form schedules), hence rtol 1e-9 on trained coefficients and 1e-12
on schedule values / ``minimize`` trajectories.
"""

import inspect
import math

import numba
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402
from torch.optim import lr_scheduler as tls  # noqa: E402

from fastgd import optim as fo  # noqa: E402
from fastgd import schedules as fs  # noqa: E402

F64 = torch.float64
BASE_LR = 0.3


def _fastgd():
    """The estimator and ``minimize`` (imported lazily: schedules tests need neither)."""
    from fastgd import FastSGDRegressor, minimize

    return FastSGDRegressor, minimize


# ======================================================================= schedules


def _dummy_optimizer(lr=BASE_LR):
    p = torch.zeros(1, dtype=F64, requires_grad=True)
    return torch.optim.SGD([p], lr=lr)


# (id, fastgd schedule with lr=BASE_LR, torch scheduler factory, number of epochs)
EPOCH_SCHEDULES = [
    ("step", fs.Step(step_size=3, gamma=0.5, lr=BASE_LR),
     lambda o: tls.StepLR(o, step_size=3, gamma=0.5), 25),
    ("step1", fs.Step(step_size=1, gamma=0.9, lr=BASE_LR),
     lambda o: tls.StepLR(o, step_size=1, gamma=0.9), 25),
    ("multistep", fs.MultiStep(milestones=[9, 2, 5], gamma=0.3, lr=BASE_LR),
     lambda o: tls.MultiStepLR(o, milestones=[9, 2, 5], gamma=0.3), 15),
    ("multistep_repeated", fs.MultiStep(milestones=[0, 3, 3, 7], gamma=0.5, lr=BASE_LR),
     lambda o: tls.MultiStepLR(o, milestones=[0, 3, 3, 7], gamma=0.5), 12),
    ("exponential", fs.Exponential(gamma=0.9, lr=BASE_LR),
     lambda o: tls.ExponentialLR(o, gamma=0.9), 40),
    ("cosine", fs.Cosine(T_max=10, eta_min=0.01, lr=BASE_LR),
     lambda o: tls.CosineAnnealingLR(o, T_max=10, eta_min=0.01), 35),
    ("cosine_eta_min0", fs.Cosine(T_max=7, lr=BASE_LR),
     lambda o: tls.CosineAnnealingLR(o, T_max=7), 30),
    ("warm_restarts_mult1", fs.CosineWarmRestarts(T_0=4, T_mult=1, eta_min=0.001, lr=BASE_LR),
     lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=1, eta_min=0.001), 30),
    ("warm_restarts_mult2", fs.CosineWarmRestarts(T_0=3, T_mult=2, eta_min=0.002, lr=BASE_LR),
     lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.002), 200),
    ("warm_restarts_mult2_T1", fs.CosineWarmRestarts(T_0=1, T_mult=2, lr=BASE_LR),
     lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=1, T_mult=2), 300),
]


def _torch_epoch_lrs(make_sched, n):
    """Per-epoch rates of a torch scheduler: (stepped, closed form or None)."""
    opt = _dummy_optimizer()
    sched = make_sched(opt)
    stepped, closed = [], []
    for _ in range(n):
        stepped.append(sched.get_last_lr()[0])
        if hasattr(sched, "_get_closed_form_lr"):
            closed.append(sched._get_closed_form_lr()[0])
        opt.step()  # no gradients: a no-op that keeps torch from warning about the order
        sched.step()
    return np.array(stepped), (np.array(closed) if closed else None)


@pytest.mark.parametrize(
    "fg_sched, make_torch, n", [c[1:] for c in EPOCH_SCHEDULES],
    ids=[c[0] for c in EPOCH_SCHEDULES],
)
def test_epoch_schedule_matches_torch(fg_sched, make_torch, n):
    stepped, closed = _torch_epoch_lrs(make_torch, n)
    ours = np.array([fg_sched(t) for t in range(n)])
    assert fg_sched.counts == "epoch"
    if closed is not None:
        # StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR: fastgd implements the
        # closed forms, compare to them tightly ...
        np.testing.assert_allclose(ours, closed, rtol=1e-12, atol=0)
        # ... and to what stepping torch's scheduler actually gives (recursive
        # products / cosine ratios drift by a few ulps; absolute slack for the zeros of
        # the cosine).
        np.testing.assert_allclose(ours, stepped, rtol=1e-12, atol=1e-15)
    else:
        # CosineAnnealingWarmRestarts: torch's step() without an epoch is an exact
        # integer recursion on T_cur / T_i.
        np.testing.assert_allclose(ours, stepped, rtol=1e-12, atol=0)


@pytest.mark.parametrize("T_0, T_mult, n", [(1, 3, 130), (2, 3, 250), (1, 10, 120)])
def test_warm_restarts_exact_at_restarts_other_multipliers(T_0, T_mult, n):
    stepped, _ = _torch_epoch_lrs(
        lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult), n)
    ours = np.array([fs.CosineWarmRestarts(T_0=T_0, T_mult=T_mult, lr=BASE_LR)(t)
                     for t in range(n)])
    np.testing.assert_allclose(ours, stepped, rtol=1e-12, atol=1e-15)


def test_schedule_lr_none_is_a_multiplier_of_eta0():
    for fg_sched, make_torch, n in [c[1:] for c in EPOCH_SCHEDULES]:
        stepped, _ = _torch_epoch_lrs(make_torch, n)
        params = fg_sched.get_params()
        params["lr"] = None
        sched = type(fg_sched)(**params)
        np.testing.assert_allclose([sched(t, eta0=BASE_LR) for t in range(n)], stepped,
                                   rtol=1e-12, atol=1e-15)
        if params.get("eta_min", 0.0) == 0.0:  # eta_min is absolute, not scaled
            np.testing.assert_allclose([BASE_LR * sched(t) for t in range(n)], stepped,
                                       rtol=1e-12, atol=1e-15)


ONE_CYCLE_CASES = [
    dict(total_steps=100, pct_start=0.3, anneal_strategy="cos"),
    dict(total_steps=100, pct_start=0.3, anneal_strategy="linear"),
    dict(total_steps=37, pct_start=0.25, anneal_strategy="cos", div_factor=10.0,
         final_div_factor=100.0),
    dict(total_steps=37, pct_start=0.25, anneal_strategy="linear", div_factor=10.0,
         final_div_factor=100.0),
    dict(total_steps=7, pct_start=0.5, anneal_strategy="cos"),
]


def _torch_one_cycle(opt, kw, max_lr):
    return tls.OneCycleLR(opt, max_lr=max_lr, three_phase=False, cycle_momentum=False,
                          **kw)


@pytest.mark.parametrize("kw", ONE_CYCLE_CASES,
                         ids=lambda kw: f"{kw['anneal_strategy']}-{kw['total_steps']}")
def test_one_cycle_matches_torch(kw):
    opt = _dummy_optimizer()
    sched = _torch_one_cycle(opt, kw, BASE_LR)
    theirs = []
    for _ in range(kw["total_steps"]):
        theirs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    ours = fs.OneCycle(lr=BASE_LR, **kw)
    assert ours.counts == "update"
    np.testing.assert_allclose([ours(t) for t in range(kw["total_steps"])], theirs,
                               rtol=1e-12, atol=0)
    ours_none = fs.OneCycle(**kw)
    np.testing.assert_allclose([ours_none(t, eta0=BASE_LR) for t in range(kw["total_steps"])],
                               theirs, rtol=1e-12, atol=0)


# ============================================== combined and user-function schedules


def _warm_linear(total_iters, start_factor, unit="epoch"):
    """fastgd's ``LinearLR(start_factor, end_factor=1, total_iters)``."""
    return fs.Warmup(fs.Constant(unit=unit), warmup_steps=total_iters,
                     start_factor=start_factor)


# (id, fastgd schedule, torch factory, number of steps). torch's SequentialLR starts
# each scheduler at its milestone from its closed form at 0 (the base rate), then steps
# it recursively: the rates after a milestone do not depend on where the previous
# scheduler left the rate, including when it is cut short (LinearLR to 8, milestone 5)
SEQUENTIAL_CASES = [
    ("linear_warmup_cosine",
     fs.Sequential([_warm_linear(5, 0.1), fs.Cosine(T_max=20)], milestones=[5]),
     lambda o: tls.SequentialLR(o, [tls.LinearLR(o, start_factor=0.1, total_iters=5),
                                    tls.CosineAnnealingLR(o, T_max=20)], milestones=[5]),
     40),
    ("cosine_then_step",
     fs.Sequential([fs.Cosine(T_max=10, eta_min=0.01), fs.Step(step_size=3, gamma=0.5)],
                   milestones=[10]),
     lambda o: tls.SequentialLR(o, [tls.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
                                    tls.StepLR(o, step_size=3, gamma=0.5)],
                                milestones=[10]),
     30),
    ("exponential_multistep_restarts",
     fs.Sequential([fs.Exponential(gamma=0.8), fs.MultiStep([2, 4], gamma=0.3),
                    fs.CosineWarmRestarts(T_0=3, T_mult=2)], milestones=[4, 9]),
     lambda o: tls.SequentialLR(o, [tls.ExponentialLR(o, gamma=0.8),
                                    tls.MultiStepLR(o, [2, 4], gamma=0.3),
                                    tls.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2)],
                                milestones=[4, 9]),
     40),
    ("warmup_cut_short",
     fs.Sequential([_warm_linear(8, 0.25), fs.Exponential(gamma=0.9)], milestones=[5]),
     lambda o: tls.SequentialLR(o, [tls.LinearLR(o, start_factor=0.25, total_iters=8),
                                    tls.ExponentialLR(o, gamma=0.9)], milestones=[5]),
     20),
    ("constant_factor_then_cosine",
     fs.Sequential([fs.Constant(lr=BASE_LR / 2, unit="epoch"), fs.Cosine(T_max=6)],
                   milestones=[3]),
     lambda o: tls.SequentialLR(o, [tls.ConstantLR(o, factor=0.5, total_iters=3),
                                    tls.CosineAnnealingLR(o, T_max=6)], milestones=[3]),
     12),
]


@pytest.mark.parametrize("fg_sched, make_torch, n", [c[1:] for c in SEQUENTIAL_CASES],
                         ids=[c[0] for c in SEQUENTIAL_CASES])
def test_sequential_matches_torch(fg_sched, make_torch, n):
    stepped, _ = _torch_epoch_lrs(make_torch, n)
    assert fg_sched.counts == "epoch"
    ours = fg_sched(np.arange(n), eta0=BASE_LR)
    # torch steps recursively after the first epoch of each scheduler: a few ulps
    np.testing.assert_allclose(ours, stepped, rtol=1e-12, atol=1e-15)


def _lambda_decay(epoch):
    """LambdaLR's documented use: a piecewise multiplier of the epoch."""
    return 0.95 ** epoch if epoch < 10 else 0.5 / (epoch - 8)


@pytest.mark.parametrize("lr", [None, BASE_LR])
def test_lambda_matches_torch(lr):
    n = 25
    stepped, _ = _torch_epoch_lrs(lambda o: tls.LambdaLR(o, _lambda_decay), n)
    sched = fs.Lambda(_lambda_decay, lr=lr)
    assert sched.counts == "epoch"
    ours = sched(np.arange(n), eta0=BASE_LR if lr is None else 123.0)
    np.testing.assert_array_equal(ours, stepped)  # one product, as torch


# ====================================================== optimizers on a linear model

N_SAMPLES, N_FEATURES = 50, 4
COEF0 = np.array([0.5, -0.25, 0.1, 0.3])
INTERCEPT0 = 0.2


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_SAMPLES, N_FEATURES)) * np.array([1.0, 2.0, 0.5, 1.5]) + np.array(
        [0.5, -1.0, 2.0, 0.0])
    y = X @ np.array([1.5, -0.7, 2.0, 0.4]) + 3.0 + 0.3 * rng.normal(size=N_SAMPLES)
    return X, y


def _batches(n, batch_size):
    if batch_size in ("full", None):
        return [np.arange(n)]
    return [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def _torch_train(make_opt, X, y, batch_size, n_epochs, *, epoch_sched=None,
                 update_sched=None, clip_norm=None, clip_value=None, batch_norm=False,
                 coef0=COEF0, intercept0=INTERCEPT0, lr=None):
    """Train nn.Linear (optionally behind BatchNorm1d) as fastgd does.

    Returns the model and per-epoch histories (mean pre-clip grad norm, first lr).
    """
    lin = nn.Linear(X.shape[1], 1, dtype=F64)
    with torch.no_grad():
        lin.weight.copy_(torch.as_tensor(coef0, dtype=F64).reshape(1, -1))
        lin.bias.fill_(float(intercept0))
    if batch_norm:
        bn = nn.BatchNorm1d(X.shape[1], affine=False, momentum=0.1, eps=1e-5, dtype=F64)
        model = nn.Sequential(bn, lin)
    else:
        model = lin
    model.train()
    groups = [{"params": [lin.weight]}, {"params": [lin.bias], "weight_decay": 0.0}]
    opt = make_opt(groups)
    esched = epoch_sched(opt) if epoch_sched is not None else None
    usched = update_sched(opt) if update_sched is not None else None
    Xt = torch.as_tensor(X, dtype=F64)
    yt = torch.as_tensor(y, dtype=F64).reshape(-1, 1)
    mse = nn.MSELoss(reduction="mean")
    norm_curve, lr_curve = [], []
    for _ in range(n_epochs):
        norms = []
        lr_curve.append(opt.param_groups[0]["lr"])
        for idx in _batches(X.shape[0], batch_size):
            idx = torch.as_tensor(idx)
            opt.zero_grad()
            loss = 0.5 * mse(model(Xt[idx]), yt[idx])
            loss.backward()
            grads = [lin.weight.grad, lin.bias.grad]
            norms.append(math.sqrt(sum(float((g * g).sum()) for g in grads)))
            if clip_value is not None:
                nn.utils.clip_grad_value_([lin.weight, lin.bias], clip_value)
            if clip_norm is not None:
                nn.utils.clip_grad_norm_([lin.weight, lin.bias], clip_norm)
            opt.step()
            if usched is not None:
                usched.step()
        norm_curve.append(np.mean(norms))
        if esched is not None:
            esched.step()
    return model, np.array(norm_curve), np.array(lr_curve)


def _fastgd_train(X, y, batch_size, n_epochs, optimizer, learning_rate, eta0, *,
                  coef0=COEF0, intercept0=INTERCEPT0, **kw):
    FastSGDRegressor, _ = _fastgd()
    est = FastSGDRegressor(penalty=None, shuffle=False, batch_size=batch_size,
                           optimizer=optimizer, learning_rate=learning_rate, eta0=eta0,
                           max_iter=n_epochs, tol=None, **kw)
    if coef0 is None:
        est.fit(X, y)
    else:
        est.fit(X, y, coef_init=coef0.copy(), intercept_init=intercept0)
    return est


def _tw(cls, **kw):
    """torch optimizer factory (single-tensor implementation)."""
    return lambda groups, lr: cls(groups, lr=lr, foreach=False, **kw)


T = torch.optim
# (id, fastgd optimizer, torch factory, learning rate)
OPTIMIZER_CASES = [
    ("sgd", fo.SGD(), _tw(T.SGD), 0.05),
    ("sgd_wd", fo.SGD(weight_decay=0.1), _tw(T.SGD, weight_decay=0.1), 0.05),
    ("momentum", fo.Momentum(momentum=0.9), _tw(T.SGD, momentum=0.9), 0.02),
    ("momentum_dampening_wd", fo.Momentum(momentum=0.8, dampening=0.3, weight_decay=0.05),
     _tw(T.SGD, momentum=0.8, dampening=0.3, weight_decay=0.05), 0.02),
    ("nesterov", fo.Momentum(momentum=0.9, nesterov=True),
     _tw(T.SGD, momentum=0.9, nesterov=True), 0.02),
    ("nesterov_string", "nesterov", _tw(T.SGD, momentum=0.9, nesterov=True), 0.02),
    ("adagrad", fo.Adagrad(), _tw(T.Adagrad), 0.3),
    ("adagrad_decay_init_acc", fo.Adagrad(lr_decay=0.01, initial_accumulator_value=0.1),
     _tw(T.Adagrad, lr_decay=0.01, initial_accumulator_value=0.1), 0.3),
    ("rmsprop", fo.RMSprop(), _tw(T.RMSprop, alpha=0.99, eps=1e-8), 0.01),
    ("rmsprop_centered", fo.RMSprop(alpha=0.9, centered=True),
     _tw(T.RMSprop, alpha=0.9, centered=True), 0.01),
    ("rmsprop_momentum", fo.RMSprop(momentum=0.5), _tw(T.RMSprop, momentum=0.5), 0.01),
    ("rmsprop_centered_momentum_wd",
     fo.RMSprop(alpha=0.95, eps=1e-6, momentum=0.3, centered=True, weight_decay=0.05),
     _tw(T.RMSprop, alpha=0.95, eps=1e-6, momentum=0.3, centered=True, weight_decay=0.05),
     0.01),
    ("adadelta", fo.Adadelta(), _tw(T.Adadelta, rho=0.9, eps=1e-6), 1.0),
    ("adadelta_wd", fo.Adadelta(rho=0.8, eps=1e-4, weight_decay=0.1),
     _tw(T.Adadelta, rho=0.8, eps=1e-4, weight_decay=0.1), 1.0),
    ("adam", fo.Adam(), _tw(T.Adam), 0.05),
    ("adam_string", "adam", _tw(T.Adam), 0.05),
    ("adam_amsgrad", fo.Adam(beta1=0.8, beta2=0.99, amsgrad=True),
     _tw(T.Adam, betas=(0.8, 0.99), amsgrad=True), 0.05),
    ("adam_wd", fo.Adam(weight_decay=0.1), _tw(T.Adam, weight_decay=0.1), 0.05),
    ("adamw", fo.AdamW(weight_decay=0.1), _tw(T.AdamW, weight_decay=0.1), 0.05),
    ("adamw_amsgrad", fo.AdamW(eps=1e-6, amsgrad=True, weight_decay=0.3),
     _tw(T.AdamW, eps=1e-6, amsgrad=True, weight_decay=0.3), 0.05),
]
N_EPOCHS = 12


def _assert_same_model(est, lin, rtol=1e-9):
    np.testing.assert_allclose(est.coef_, lin.weight.detach().numpy().ravel(), rtol=rtol)
    np.testing.assert_allclose(est.intercept_, lin.bias.detach().numpy(), rtol=rtol)


# 8: last batch of 2 rows; 7: last batch of a single row
@pytest.mark.parametrize("batch_size", ["full", 8, 7])
@pytest.mark.parametrize("fg_opt, make_torch, lr", [c[1:] for c in OPTIMIZER_CASES],
                         ids=[c[0] for c in OPTIMIZER_CASES])
def test_optimizer_matches_torch(fg_opt, make_torch, lr, batch_size):
    X, y = _data()
    lin, norms, lrs = _torch_train(lambda g: make_torch(g, lr), X, y, batch_size, N_EPOCHS)
    est = _fastgd_train(X, y, batch_size, N_EPOCHS, fg_opt, "constant", lr)
    # the run must have moved the parameters far from where they started
    assert np.abs(est.coef_ - COEF0).max() > 0.02
    _assert_same_model(est, lin)
    assert est.n_iter_ == N_EPOCHS
    n_updates = N_EPOCHS * len(_batches(N_SAMPLES, batch_size))
    assert est.t_ == n_updates + 1
    assert est.optimizer_state_["step"] == n_updates
    np.testing.assert_allclose(est.grad_norm_curve_, norms, rtol=1e-9)
    np.testing.assert_allclose(est.lr_curve_, lrs, rtol=1e-12)


@pytest.mark.parametrize("name", ["momentum", "adam", "rmsprop_centered_momentum_wd",
                                  "adamw"])
def test_per_sample_stateful_optimizer_matches_torch(name):
    """batch_size=1 with a stateful optimizer (not scikit-learn's plain algorithm)."""
    fg_opt, make_torch, lr = {c[0]: c[1:] for c in OPTIMIZER_CASES}[name]
    X, y = _data()
    lr = lr / 5
    lin, _, _ = _torch_train(lambda g: make_torch(g, lr), X, y, 1, 3)
    est = _fastgd_train(X, y, 1, 3, fg_opt, "constant", lr)
    _assert_same_model(est, lin)


def test_float32_input_trains_in_float64():
    """float32 X: parameters and state stay float64 inside, coef_ comes out float32."""
    X, y = _data()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    lin, _, _ = _torch_train(lambda g: T.Adam(g, lr=0.05, foreach=False),
                             X32.astype(np.float64), y32.astype(np.float64), 8, N_EPOCHS)
    est = _fastgd_train(X32, y32, 8, N_EPOCHS, "adam", "constant", 0.05)
    assert est.coef_.dtype == np.float32
    expected = lin.weight.detach().numpy().ravel().astype(np.float32)
    np.testing.assert_allclose(est.coef_, expected, rtol=1e-6)
    np.testing.assert_allclose(est.intercept_, lin.bias.detach().numpy().astype(np.float32),
                               rtol=1e-6)


@pytest.mark.parametrize("batch_size", ["full", 8])
def test_partial_fit_carries_optimizer_and_schedule_state(batch_size):
    """n partial_fit calls (one epoch each) = n torch epochs with the scheduler stepped."""
    X, y = _data()
    n_epochs, lr = 6, 0.1
    d = X.shape[1]
    lin, _, _ = _torch_train(lambda g: T.Adam(g, lr=lr, foreach=False), X, y, batch_size,
                             n_epochs, epoch_sched=lambda o: tls.StepLR(o, 2, gamma=0.5),
                             coef0=np.zeros(d), intercept0=0.0)
    FastSGDRegressor, _ = _fastgd()
    est = FastSGDRegressor(penalty=None, shuffle=False, batch_size=batch_size,
                           optimizer="adam", learning_rate=fs.Step(2, gamma=0.5), eta0=lr,
                           tol=None)
    for _ in range(n_epochs):
        est.partial_fit(X, y)
    _assert_same_model(est, lin)


# (id, fastgd optimizer, torch factory, lr, fastgd schedule, torch scheduler, per update?)
SCHEDULED_CASES = [
    ("momentum_step", fo.Momentum(momentum=0.9), _tw(T.SGD, momentum=0.9), 0.03,
     fs.Step(step_size=3, gamma=0.5), lambda o: tls.StepLR(o, step_size=3, gamma=0.5), False),
    ("adam_exponential", fo.Adam(), _tw(T.Adam), 0.1,
     fs.Exponential(gamma=0.8), lambda o: tls.ExponentialLR(o, gamma=0.8), False),
    ("sgd_cosine", fo.SGD(), _tw(T.SGD), 0.05,
     fs.Cosine(T_max=8, eta_min=0.001),
     lambda o: tls.CosineAnnealingLR(o, T_max=8, eta_min=0.001), False),
    ("rmsprop_multistep", fo.RMSprop(centered=True), _tw(T.RMSprop, centered=True), 0.02,
     fs.MultiStep(milestones=[2, 6], gamma=0.3),
     lambda o: tls.MultiStepLR(o, milestones=[2, 6], gamma=0.3), False),
    ("nesterov_warm_restarts", fo.Momentum(nesterov=True), _tw(T.SGD, momentum=0.9,
                                                                 nesterov=True), 0.02,
     fs.CosineWarmRestarts(T_0=2, T_mult=2),
     lambda o: tls.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2), False),
    ("adam_onecycle_cos", fo.Adam(), _tw(T.Adam), 0.1,
     "onecycle-cos", None, True),
    ("sgd_onecycle_linear", fo.SGD(), _tw(T.SGD), 0.08,
     "onecycle-linear", None, True),
    ("adamw_onecycle_cos", fo.AdamW(weight_decay=0.2), _tw(T.AdamW, weight_decay=0.2), 0.1,
     "onecycle-cos", None, True),
]


@pytest.mark.parametrize("batch_size", ["full", 8])
@pytest.mark.parametrize(
    "fg_opt, make_torch, lr, fg_sched, torch_sched, per_update",
    [c[1:] for c in SCHEDULED_CASES], ids=[c[0] for c in SCHEDULED_CASES],
)
def test_scheduled_training_matches_torch(fg_opt, make_torch, lr, fg_sched, torch_sched,
                                          per_update, batch_size):
    X, y = _data()
    n_epochs = 10
    n_updates = n_epochs * len(_batches(N_SAMPLES, batch_size))
    kw = {}
    if per_update:
        strategy = fg_sched.split("-")[1]
        fg_sched = fs.OneCycle(total_steps=n_updates, pct_start=0.3,
                               anneal_strategy=strategy)
        kw["update_sched"] = lambda o: _torch_one_cycle(
            o, dict(total_steps=n_updates, pct_start=0.3, anneal_strategy=strategy), lr)
    else:
        kw["epoch_sched"] = torch_sched
    lin, norms, lrs = _torch_train(lambda g: make_torch(g, lr), X, y, batch_size, n_epochs,
                                   **kw)
    est = _fastgd_train(X, y, batch_size, n_epochs, fg_opt, fg_sched, lr)
    _assert_same_model(est, lin)
    np.testing.assert_allclose(est.lr_curve_, lrs, rtol=1e-12, atol=1e-15)


def _warmup_then_cosine_updates(n_updates, warm):
    fg = fs.Sequential([_warm_linear(warm, 0.1, unit="update"),
                        fs.Cosine(T_max=n_updates - warm, unit="update")],
                       milestones=[warm])

    def make_torch(o):
        return tls.SequentialLR(o, [tls.LinearLR(o, start_factor=0.1, total_iters=warm),
                                    tls.CosineAnnealingLR(o, T_max=n_updates - warm)],
                                milestones=[warm])

    return fg, make_torch


# (id, fastgd optimizer, torch factory, lr, fastgd schedule, torch scheduler)
COMBINED_TRAINING_CASES = [
    ("momentum_warmup_cosine", fo.Momentum(momentum=0.9), _tw(T.SGD, momentum=0.9), 0.03,
     SEQUENTIAL_CASES[0][1], SEQUENTIAL_CASES[0][2]),
    ("adam_cosine_then_step", fo.Adam(), _tw(T.Adam), 0.1,
     fs.Sequential([fs.Cosine(T_max=6), fs.Step(step_size=2, gamma=0.5)], milestones=[6]),
     lambda o: tls.SequentialLR(o, [tls.CosineAnnealingLR(o, T_max=6),
                                    tls.StepLR(o, step_size=2, gamma=0.5)],
                                milestones=[6])),
    ("adamw_lambda", fo.AdamW(weight_decay=0.1), _tw(T.AdamW, weight_decay=0.1), 0.1,
     fs.Lambda(_lambda_decay), lambda o: tls.LambdaLR(o, _lambda_decay)),
    ("sgd_lambda", fo.SGD(), _tw(T.SGD), 0.05,
     fs.Lambda(_lambda_decay), lambda o: tls.LambdaLR(o, _lambda_decay)),
]


@pytest.mark.parametrize("batch_size", ["full", 8])
@pytest.mark.parametrize("fg_opt, make_torch, lr, fg_sched, torch_sched",
                         [c[1:] for c in COMBINED_TRAINING_CASES],
                         ids=[c[0] for c in COMBINED_TRAINING_CASES])
def test_combined_schedules_train_as_torch(fg_opt, make_torch, lr, fg_sched, torch_sched,
                                           batch_size):
    X, y = _data()
    n_epochs = 12
    lin, _, lrs = _torch_train(lambda g: make_torch(g, lr), X, y, batch_size, n_epochs,
                               epoch_sched=torch_sched)
    est = _fastgd_train(X, y, batch_size, n_epochs, fg_opt, fg_sched, lr)
    _assert_same_model(est, lin)
    np.testing.assert_allclose(est.lr_curve_, lrs, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("batch_size", [8, 1])
def test_sequential_per_update_trains_as_torch(batch_size):
    """A warm-up and a cosine counted in updates (``SequentialLR`` stepped per update)."""
    X, y = _data()
    n_epochs = 4
    n_updates = n_epochs * len(_batches(N_SAMPLES, batch_size))
    fg_sched, make_sched = _warmup_then_cosine_updates(n_updates, warm=n_updates // 5)
    lin, _, lrs = _torch_train(lambda g: T.Adam(g, lr=0.05, foreach=False), X, y,
                               batch_size, n_epochs, update_sched=make_sched)
    est = _fastgd_train(X, y, batch_size, n_epochs, fo.Adam(), fg_sched, 0.05)
    _assert_same_model(est, lin)
    np.testing.assert_allclose(est.lr_curve_, lrs, rtol=1e-12, atol=1e-15)


# optimizer name -> (torch class, its non-default arguments that fastgd's name implies)
DEFAULT_RATE_CASES = {
    "momentum": (T.SGD, dict(momentum=0.9)),
    "nesterov": (T.SGD, dict(momentum=0.9, nesterov=True)),
    "adagrad": (T.Adagrad, {}),
    "rmsprop": (T.RMSprop, {}),
    "adadelta": (T.Adadelta, {}),
    "adam": (T.Adam, {}),
    "adamw": (T.AdamW, {}),
}


@pytest.mark.parametrize("name", list(DEFAULT_RATE_CASES))
def test_default_rate_is_torch_default_lr(name):
    """``optimizer=name`` with ``learning_rate``/``eta0`` left at None trains as the
    torch optimizer constructed without ``lr`` (its default, constant)."""
    cls, kw = DEFAULT_RATE_CASES[name]
    X, y = _data()
    lin, _, lrs = _torch_train(lambda g: cls(g, foreach=False, **kw), X, y, 8, N_EPOCHS)
    est = _fastgd_train(X, y, 8, N_EPOCHS, name, None, None)
    _assert_same_model(est, lin)
    assert est.lr_curve_ == list(lrs)
    assert lrs[0] == inspect.signature(cls).parameters["lr"].default
    assert fo.resolve(name).default_lr == lrs[0]


# (id, fastgd optimizer, torch factory, lr, clip_norm, clip_value)
CLIP_CASES = [
    ("sgd_norm", fo.SGD(), _tw(T.SGD), 0.05, 2.0, None),
    ("momentum_norm", fo.Momentum(momentum=0.5, weight_decay=0.1),
     _tw(T.SGD, momentum=0.5, weight_decay=0.1), 0.05, 1.0, None),
    ("sgd_value", fo.SGD(), _tw(T.SGD), 0.05, None, 0.7),
    ("adam_value", fo.Adam(), _tw(T.Adam), 0.05, None, 0.5),
    ("adam_norm", fo.Adam(), _tw(T.Adam), 0.05, 1.5, None),
    ("sgd_both", fo.SGD(), _tw(T.SGD), 0.05, 1.0, 0.8),
    ("rmsprop_both", fo.RMSprop(momentum=0.2), _tw(T.RMSprop, momentum=0.2), 0.01, 0.5, 0.3),
]


@pytest.mark.parametrize("batch_size", ["full", 8])
@pytest.mark.parametrize("fg_opt, make_torch, lr, clip_norm, clip_value",
                         [c[1:] for c in CLIP_CASES], ids=[c[0] for c in CLIP_CASES])
def test_gradient_clipping_matches_torch(fg_opt, make_torch, lr, clip_norm, clip_value,
                                         batch_size):
    X, y = _data()
    n_epochs = 15
    lin, norms, _ = _torch_train(lambda g: make_torch(g, lr), X, y, batch_size, n_epochs,
                                 clip_norm=clip_norm, clip_value=clip_value)
    # the clipping must have been active in the first epoch, and the run not trivial
    limit = min(v for v in (clip_norm, clip_value) if v is not None)
    assert norms[0] > limit
    est = _fastgd_train(X, y, batch_size, n_epochs, fg_opt, "constant", lr,
                        clip_norm=clip_norm, clip_value=clip_value)
    _assert_same_model(est, lin)
    np.testing.assert_allclose(est.grad_norm_curve_, norms, rtol=1e-9)


# =================================================================== batch norm


@pytest.mark.parametrize("batch_size", ["full", 8, 16])
@pytest.mark.parametrize("optimizer, make_torch, lr", [
    ("sgd", _tw(T.SGD), 0.1),
    ("momentum", _tw(T.SGD, momentum=0.9), 0.05),
    ("adam", _tw(T.Adam), 0.1),
], ids=["sgd", "momentum", "adam"])
def test_batch_norm_matches_torch(optimizer, make_torch, lr, batch_size):
    X, y = _data()
    n_epochs = 15
    d = X.shape[1]
    model, _, _ = _torch_train(lambda g: make_torch(g, lr), X, y, batch_size, n_epochs,
                               batch_norm=True, coef0=np.zeros(d), intercept0=0.0)
    est = _fastgd_train(X, y, batch_size, n_epochs, optimizer, "constant", lr,
                        coef0=None, batch_norm=True, bn_momentum=0.1, bn_eps=1e-5)
    bn = model[0]
    np.testing.assert_allclose(est.bn_running_mean_, bn.running_mean.numpy(), rtol=1e-9)
    np.testing.assert_allclose(est.bn_running_var_, bn.running_var.numpy(), rtol=1e-9)
    model.eval()
    with torch.no_grad():
        expected = model(torch.as_tensor(X, dtype=F64)).numpy().ravel()
    np.testing.assert_allclose(X @ est.coef_ + est.intercept_[0], expected, rtol=1e-9)
    np.testing.assert_allclose(est.predict(X), expected, rtol=1e-9)
    # the folded coefficients themselves
    lin = model[1]
    scale = np.sqrt(bn.running_var.numpy() + 1e-5)
    coef = lin.weight.detach().numpy().ravel() / scale
    np.testing.assert_allclose(est.coef_, coef, rtol=1e-9)
    np.testing.assert_allclose(
        est.intercept_, lin.bias.detach().numpy() - coef @ bn.running_mean.numpy(), rtol=1e-9)


# ======================================================================= minimize

_EIG = np.array([0.2, 0.7, 1.0, 2.5, 4.0])
_Q = np.linalg.qr(np.random.default_rng(1).normal(size=(5, 5)))[0]
_A = (_Q * _EIG) @ _Q.T
_A = 0.5 * (_A + _A.T)
X0 = np.array([1.0, -2.0, 0.5, 3.0, -1.0])


@numba.njit(cache=False)
def _quad_grad(x):
    """Gradient A x of f(x) = ½ xᵀ A x, with explicit loops (same result from Python)."""
    n = x.shape[0]
    g = np.empty(n)
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += _A[i, j] * x[j]
        g[i] = s
    return g


def _torch_minimize(make_opt, lr, n_steps, *, clip_norm=None, clip_value=None,
                    sched=None):
    p = torch.tensor(X0, dtype=F64, requires_grad=True)
    opt = make_opt([{"params": [p]}], lr)
    s = sched(opt) if sched is not None else None
    traj = [p.detach().numpy().copy()]
    for _ in range(n_steps):
        p.grad = torch.from_numpy(_quad_grad(p.detach().numpy().copy()))
        if clip_value is not None:
            nn.utils.clip_grad_value_([p], clip_value)
        if clip_norm is not None:
            nn.utils.clip_grad_norm_([p], clip_norm)
        opt.step()
        if s is not None:
            s.step()
        traj.append(p.detach().numpy().copy())
    return np.array(traj)


MIN_CASES = [
    ("sgd", "sgd", _tw(T.SGD), 0.1),
    ("sgd_wd", fo.SGD(weight_decay=0.3), _tw(T.SGD, weight_decay=0.3), 0.1),
    ("momentum", fo.Momentum(momentum=0.8, dampening=0.1), _tw(T.SGD, momentum=0.8,
                                                               dampening=0.1), 0.05),
    ("nesterov", "nesterov", _tw(T.SGD, momentum=0.9, nesterov=True), 0.05),
    ("adagrad", fo.Adagrad(lr_decay=0.05, initial_accumulator_value=0.5),
     _tw(T.Adagrad, lr_decay=0.05, initial_accumulator_value=0.5), 0.5),
    ("rmsprop", "rmsprop", _tw(T.RMSprop), 0.01),
    ("rmsprop_centered_momentum", fo.RMSprop(centered=True, momentum=0.6),
     _tw(T.RMSprop, centered=True, momentum=0.6), 0.01),
    # (default eps=1e-6 barely moves in 60 steps)
    ("adadelta", fo.Adadelta(eps=1e-2), _tw(T.Adadelta, eps=1e-2), 1.0),
    ("adam", "adam", _tw(T.Adam), 0.1),
    ("adam_amsgrad_wd", fo.Adam(amsgrad=True, weight_decay=0.1),
     _tw(T.Adam, amsgrad=True, weight_decay=0.1), 0.1),
    ("adamw", fo.AdamW(weight_decay=0.2), _tw(T.AdamW, weight_decay=0.2), 0.1),
]
N_STEPS = 60


def _assert_same_trajectory(res, traj, n_steps=N_STEPS):
    assert res.trajectory.shape == (n_steps + 1, X0.size)
    np.testing.assert_array_equal(res.trajectory[0], X0)
    # atol: coordinates crossing zero; the scale of the problem is O(1)
    np.testing.assert_allclose(res.trajectory, traj, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(res.x, res.trajectory[-1])
    assert res.nit == n_steps


@pytest.mark.parametrize("fg_opt, make_torch, lr", [c[1:] for c in MIN_CASES],
                         ids=[c[0] for c in MIN_CASES])
def test_minimize_matches_torch(fg_opt, make_torch, lr):
    _, minimize = _fastgd()
    traj = _torch_minimize(make_torch, lr, N_STEPS)
    res = minimize(_quad_grad, X0.copy(), optimizer=fg_opt, learning_rate=lr,
                   n_steps=N_STEPS)
    assert np.linalg.norm(traj[-1]) < 0.9 * np.linalg.norm(X0)  # it did descend
    _assert_same_trajectory(res, traj)


@pytest.mark.parametrize("fg_opt, make_torch, lr, clip_norm, clip_value", [
    ("sgd", _tw(T.SGD), 0.1, 1.0, None),
    ("adam", _tw(T.Adam), 0.1, 0.5, None),
    ("nesterov", _tw(T.SGD, momentum=0.9, nesterov=True), 0.05, 2.0, None),
    ("sgd", _tw(T.SGD), 0.1, None, 0.4),
    ("rmsprop", _tw(T.RMSprop), 0.01, 1.0, 0.6),
], ids=["sgd_norm", "adam_norm", "nesterov_norm", "sgd_value", "rmsprop_both"])
def test_minimize_clipping_matches_torch(fg_opt, make_torch, lr, clip_norm, clip_value):
    _, minimize = _fastgd()
    traj = _torch_minimize(make_torch, lr, N_STEPS, clip_norm=clip_norm,
                           clip_value=clip_value)
    res = minimize(_quad_grad, X0.copy(), optimizer=fg_opt, learning_rate=lr,
                   n_steps=N_STEPS, clip_norm=clip_norm, clip_value=clip_value)
    assert np.linalg.norm(_quad_grad(X0)) > 2.0  # clipping was active at the start
    _assert_same_trajectory(res, traj)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_minimize_one_cycle_matches_torch(strategy):
    _, minimize = _fastgd()
    kw = dict(total_steps=N_STEPS, pct_start=0.3, anneal_strategy=strategy)
    traj = _torch_minimize(_tw(T.Adam), 0.2, N_STEPS,
                           sched=lambda o: _torch_one_cycle(o, kw, 0.2))
    res = minimize(_quad_grad, X0.copy(), optimizer="adam",
                   learning_rate=fs.OneCycle(lr=0.2, **kw), n_steps=N_STEPS)
    _assert_same_trajectory(res, traj)


def test_minimize_python_gradient_matches_torch():
    _, minimize = _fastgd()
    traj = _torch_minimize(_tw(T.SGD, momentum=0.9), 0.05, 20)
    res = minimize(lambda x: _quad_grad(x), X0.copy(), optimizer=fo.Momentum(momentum=0.9),
                   learning_rate=0.05, n_steps=20)
    _assert_same_trajectory(res, traj, n_steps=20)
