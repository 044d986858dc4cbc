"""Rule-level tests: the scalar maths of ``fastgd/_kernels/rules.py`` (interpreted) and
its Numba compilation in ``fastgd/_kernels/cpu.py`` against the plain reference
``tests/naive.py`` (written from docs/semantics.md).

The reference itself is cross-checked against ``torch.optim`` / ``torch.optim.lr_scheduler``
where torch is installed.
"""

import math
import zlib
from functools import partial

import numpy as np
import pytest
from numpy.testing import assert_allclose

import naive
from fastgd import optim, schedules
from fastgd._kernels import cpu, rules

RTOL = 1e-12

LOSS_CODES = {
    "squared_error": rules.SQUARED_ERROR,
    "huber": rules.HUBER,
    "epsilon_insensitive": rules.EPSILON_INSENSITIVE,
    "squared_epsilon_insensitive": rules.SQUARED_EPSILON_INSENSITIVE,
}
IMPLS = {"rules": rules, "cpu": cpu}


# ================================================================================ losses
def _loss_grid():
    vals = [-3.0, -1.2, -0.5, -0.1, -0.05, 0.0, 0.03, 0.1, 0.4, 1.0, 2.5, 1e7, -1e7]
    return [(p, y) for p in vals for y in vals[:8]]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("epsilon", [0.1, 0.7])
@pytest.mark.parametrize("loss", naive.LOSSES)
def test_loss_value_and_dloss_vs_naive(loss, epsilon, impl):
    mod = IMPLS[impl]
    code = LOSS_CODES[loss]
    for p, y in _loss_grid():
        assert_allclose(mod.loss_value(code, p, y, epsilon),
                        naive.loss_value(loss, p, y, epsilon), rtol=1e-14, atol=0,
                        err_msg=f"{loss} value p={p} y={y}")
        assert_allclose(mod.loss_dloss(code, p, y, epsilon),
                        naive.loss_dloss(loss, p, y, epsilon), rtol=1e-14, atol=0,
                        err_msg=f"{loss} dloss p={p} y={y}")


@pytest.mark.parametrize("loss", naive.LOSSES)
def test_loss_at_kinks(loss):
    """At |p - y| == epsilon exactly both sides of each formula agree with naive."""
    eps = 0.25  # exactly representable, so p - y == +-eps exactly
    for y in [0.0, 1.0, -2.0]:
        for p in [y + eps, y - eps, y]:
            code = LOSS_CODES[loss]
            assert rules.loss_value(code, p, y, eps) == naive.loss_value(loss, p, y, eps)
            assert rules.loss_dloss(code, p, y, eps) == naive.loss_dloss(loss, p, y, eps)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("loss", naive.LOSSES)
def test_dloss_is_derivative(loss, impl):
    """Central finite differences of the loss, away from the kinks |p-y| in {0, eps}."""
    mod = IMPLS[impl]
    code = LOSS_CODES[loss]
    eps = 0.3
    rng = np.random.default_rng(0)
    h = 1e-6
    checked = 0
    for _ in range(200):
        p, y = rng.normal(scale=2.0, size=2)
        r = abs(p - y)
        if min(r, abs(r - eps)) < 1e-3:
            continue
        fd = (mod.loss_value(code, p + h, y, eps) - mod.loss_value(code, p - h, y, eps)) / (2 * h)
        assert_allclose(mod.loss_dloss(code, p, y, eps), fd, rtol=1e-6, atol=1e-7)
        fdn = (naive.loss_value(loss, p + h, y, eps)
               - naive.loss_value(loss, p - h, y, eps)) / (2 * h)
        assert_allclose(naive.loss_dloss(loss, p, y, eps), fdn, rtol=1e-6, atol=1e-7)
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("impl", IMPLS)
def test_clip_dloss(impl):
    mod = IMPLS[impl]
    for d in [-1e300, -2e12, -1e12, -5.0, 0.0, 3.0, 1e12, 1e13, 1e300]:
        assert mod.clip_dloss(d) == naive.clip_dloss(d)
    assert naive.clip_dloss(-1e13) == -1e12 and naive.clip_dloss(1e13) == 1e12


# ============================================================================ optimizers
# (naive name, hyper-parameters): fastgd.optim objects are built from the same dict
OPT_SETTINGS = [
    ("sgd", {}),
    ("sgd", {"weight_decay": 0.1}),
    ("momentum", {}),
    ("momentum", {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.05}),
    ("momentum", {"momentum": 0.8, "nesterov": True}),
    ("momentum", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.2}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.2, "weight_decay": 0.1,
                 "eps": 1e-3}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True}),
    ("rmsprop", {"momentum": 0.5, "alpha": 0.9}),
    ("rmsprop", {"centered": True, "momentum": 0.7, "weight_decay": 0.1, "eps": 1e-4}),
    ("adadelta", {}),
    ("adadelta", {"rho": 0.5, "eps": 1e-3, "weight_decay": 0.1}),
    ("adam", {}),
    ("adam", {"amsgrad": True}),
    ("adam", {"beta1": 0.5, "beta2": 0.9, "eps": 1e-4, "weight_decay": 0.1}),
    ("adam", {"amsgrad": True, "beta1": 0.0, "beta2": 0.5, "weight_decay": 0.05}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.3, "amsgrad": True, "beta2": 0.95}),
    ("adamw", {"weight_decay": 0.0}),
]
OPT_CLASSES = {
    "sgd": optim.SGD, "momentum": optim.Momentum, "adagrad": optim.Adagrad,
    "rmsprop": optim.RMSprop, "adadelta": optim.Adadelta, "adam": optim.Adam,
    "adamw": optim.AdamW,
}


def _opt_id(setting):
    name, hp = setting
    return name + "".join(f"-{k}={v}" for k, v in hp.items())


def _run_kernel_optimizer(mod, setting, thetas0, grads, lrs, n_params, n_decay):
    name, hp = setting
    code, hp_arr = OPT_CLASSES[name](**hp)._lower()
    theta = thetas0.copy()
    state = np.zeros((rules.N_STATE, theta.shape[0]), dtype=np.float64)
    if code == rules.OPT_ADAGRAD:  # the engine's job: G starts at initial_accumulator_value
        state[0, :] = hp_arr[3]
    out = []
    for k, (g, lr) in enumerate(zip(grads, lrs), start=1):
        mod.opt_update(code, hp_arr, state, k, lr, theta, g.copy(), n_params, n_decay)
        out.append(theta.copy())
    return out


def _run_naive_optimizer(setting, theta0, grads, lrs, n_params, n_decay):
    theta = theta0[:n_params].copy()
    state = {}
    out = []
    for k, (g, lr) in enumerate(zip(grads, lrs), start=1):
        theta = naive.optimizer_update(setting, theta, g[:n_params], state, k, lr, n_decay)
        out.append(theta.copy())
    return out


@pytest.mark.parametrize("with_intercept", [True, False], ids=["intercept", "no-intercept"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("setting", OPT_SETTINGS, ids=_opt_id)
def test_optimizer_update_vs_naive(setting, impl, with_intercept):
    rng = np.random.default_rng(zlib.crc32(_opt_id(setting).encode()))
    d = 4
    n_total = d + 1
    n_params = d + 1 if with_intercept else d
    theta0 = rng.normal(size=n_total)
    n_steps = 8
    # gradients of varying scale (incl. exact zeros) and a varying learning rate
    grads = [rng.normal(scale=10.0 ** rng.integers(-3, 2), size=n_total)
             for _ in range(n_steps)]
    grads[3][1] = 0.0
    lrs = [0.05 * (1 + 0.1 * k) for k in range(n_steps)]
    got = _run_kernel_optimizer(IMPLS[impl], setting, theta0, grads, lrs, n_params, d)
    exp = _run_naive_optimizer(setting, theta0, grads, lrs, n_params, d)
    for k, (a, b) in enumerate(zip(got, exp), start=1):
        assert_allclose(a[:n_params], b, rtol=RTOL, atol=1e-15, err_msg=f"step {k}")
        # coordinates past n_params (the intercept when not fitted) are never touched
        assert_allclose(a[n_params:], theta0[n_params:], rtol=0, atol=0)


@pytest.mark.parametrize("name", list(OPT_CLASSES))
def test_optimizer_defaults_match_spec(name):
    assert OPT_CLASSES[name]().get_params() == naive.OPTIMIZER_DEFAULTS[name]


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                  "adadelta", "adam", "adamw"])
def test_optimizer_strings(name):
    base, hp = naive.resolve_optimizer(name)
    assert optim.resolve(name) == OPT_CLASSES[base](**hp)


def test_adamw_decouples_and_skips_intercept():
    """AdamW with g = 0 only decays the weights: w (1 - lr wd), intercept untouched."""
    theta = np.array([1.0, -2.0, 3.0])
    code, hp = optim.AdamW(weight_decay=0.5)._lower()
    state = np.zeros((rules.N_STATE, 3))
    rules.opt_update(code, hp, state, 1, 0.1, theta, np.zeros(3), 3, 2)
    assert_allclose(theta, [0.95, -1.9, 3.0], rtol=1e-15)


# ============================================================================ schedules
def _sched_cases():
    """(id, fastgd schedule, naive function of t (eta0 = 0.2), default unit)."""
    eta0 = 0.2
    N = naive
    P = partial
    cos10 = P(N.lr_cosine, eta0=eta0, T_max=10, eta_min=0.01)
    return [
        ("constant", schedules.Constant(), P(N.lr_constant, eta0=eta0), "update"),
        ("constant-lr", schedules.Constant(lr=0.3), P(N.lr_constant, eta0=0.3), "update"),
        ("invscaling", schedules.InverseScaling(), P(N.lr_invscaling, eta0=eta0), "update"),
        ("invscaling-0.7", schedules.InverseScaling(power_t=0.7),
         P(N.lr_invscaling, eta0=eta0, power_t=0.7), "update"),
        ("step", schedules.Step(3), P(N.lr_step, eta0=eta0, step_size=3), "epoch"),
        ("step-0.5", schedules.Step(step_size=4, gamma=0.5, lr=0.1),
         P(N.lr_step, eta0=0.1, step_size=4, gamma=0.5), "epoch"),
        ("multistep", schedules.MultiStep([10, 3, 7], gamma=0.3),
         P(N.lr_multistep, eta0=eta0, milestones=[3, 7, 10], gamma=0.3), "epoch"),
        ("multistep-dup", schedules.MultiStep([0, 5, 5]),
         P(N.lr_multistep, eta0=eta0, milestones=[0, 5, 5]), "epoch"),
        ("exponential", schedules.Exponential(0.9),
         P(N.lr_exponential, eta0=eta0, gamma=0.9), "epoch"),
        ("cosine", schedules.Cosine(T_max=10, eta_min=0.01), cos10, "epoch"),
        ("cosine-0", schedules.Cosine(T_max=7), P(N.lr_cosine, eta0=eta0, T_max=7), "epoch"),
        ("sgdr", schedules.CosineWarmRestarts(T_0=5),
         P(N.lr_cosine_warm_restarts, eta0=eta0, T_0=5), "epoch"),
        ("sgdr-mult2", schedules.CosineWarmRestarts(T_0=3, T_mult=2, eta_min=0.02),
         P(N.lr_cosine_warm_restarts, eta0=eta0, T_0=3, T_mult=2, eta_min=0.02), "epoch"),
        ("sgdr-mult3", schedules.CosineWarmRestarts(T_0=2, T_mult=3),
         P(N.lr_cosine_warm_restarts, eta0=eta0, T_0=2, T_mult=3), "epoch"),
        ("onecycle", schedules.OneCycle(total_steps=50),
         P(N.lr_onecycle, eta0=eta0, total_steps=50), "update"),
        ("onecycle-linear", schedules.OneCycle(total_steps=40, pct_start=0.25,
                                                anneal_strategy="linear", div_factor=10.0,
                                                final_div_factor=100.0, lr=1.0),
         P(N.lr_onecycle, eta0=1.0, total_steps=40, pct_start=0.25,
           anneal_strategy="linear", div_factor=10.0, final_div_factor=100.0), "update"),
        ("invsqrt", schedules.InverseSqrt(warmup_steps=8),
         P(N.lr_inverse_sqrt, eta0=eta0, warmup_steps=8), "update"),
        ("warmup-constant", schedules.Warmup("constant", warmup_steps=5),
         P(N.lr_warmup, inner=P(N.lr_constant, eta0=eta0), warmup_steps=5), "update"),
        ("warmup-invscaling", schedules.Warmup("invscaling", 4, start_factor=0.25),
         P(N.lr_warmup, inner=P(N.lr_invscaling, eta0=eta0), warmup_steps=4,
           start_factor=0.25), "update"),
        ("warmup-cosine", schedules.Warmup(schedules.Cosine(T_max=10, eta_min=0.01), 3,
                                           start_factor=0.1),
         P(N.lr_warmup, inner=cos10, warmup_steps=3, start_factor=0.1), "epoch"),
        ("warmup-0", schedules.Warmup(schedules.Exponential(0.8), 0),
         P(N.lr_exponential, eta0=eta0, gamma=0.8), "epoch"),
    ]


SCHED_CASES = _sched_cases()
T_VALUES = list(range(0, 130)) + [199, 200, 201, 1000, 12345]


@pytest.mark.parametrize("case", SCHED_CASES, ids=[c[0] for c in SCHED_CASES])
def test_schedule_vs_naive(case):
    _, sched, fn, unit = case
    code, sp, unit_code = sched._lower(0.2)
    assert unit_code == {"update": rules.UNIT_UPDATE, "epoch": rules.UNIT_EPOCH}[unit]
    assert sched.counts == unit
    for t in T_VALUES:
        exp = fn(t)
        assert_allclose(rules.lr_at(code, sp, float(t)), exp, rtol=RTOL, atol=1e-15,
                        err_msg=f"t={t}")
        assert_allclose(cpu.lr_at(code, sp, float(t)), exp, rtol=RTOL, atol=1e-15,
                        err_msg=f"t={t}")
        assert_allclose(sched(t, 0.2), exp, rtol=RTOL, atol=1e-15, err_msg=f"t={t}")
    # lr=None evaluates as a multiplier of 1.0 (eta_min is absolute: not a multiplier)
    if sched.lr is None and "eta_min" not in repr(sched):
        assert_allclose(sched(7) * 0.2, fn(7), rtol=RTOL, atol=1e-15)
    # arrays of counters
    ts = np.array([[0, 1], [5, 33]])
    assert_allclose(sched(ts, 0.2), [[fn(0), fn(1)], [fn(5), fn(33)]], rtol=RTOL,
                    atol=1e-15)


@pytest.mark.parametrize("epsilon", [0.1, 3.0])
@pytest.mark.parametrize("alpha", [1e-4, 0.01, 0.5])
@pytest.mark.parametrize("loss", naive.LOSSES)
def test_optimal_schedule(loss, alpha, epsilon):
    sched = schedules.Optimal()
    ctx = {"alpha": alpha, "loss_code": LOSS_CODES[loss], "loss_eps": epsilon}
    code, sp, unit = sched._lower(0.01, ctx)
    assert unit == rules.UNIT_UPDATE
    for t in [0, 1, 2, 10, 999, 123456]:
        exp = naive.lr_optimal(t, alpha, loss, epsilon)
        assert_allclose(rules.lr_at(code, sp, float(t)), exp, rtol=RTOL)
        assert_allclose(cpu.lr_at(code, sp, float(t)), exp, rtol=RTOL)
    # an explicit alpha wins over the estimator's
    code, sp, _ = schedules.Optimal(alpha=0.3)._lower(0.01, ctx)
    assert_allclose(rules.lr_at(code, sp, 4.0), naive.lr_optimal(4, 0.3, loss, epsilon),
                    rtol=RTOL)


def _restart_boundaries(T_0, T_mult, n_cycles):
    out, start, T_i = [], 0, T_0
    for _ in range(n_cycles):
        start += T_i
        T_i *= T_mult
        out.append(start)
    return out


# Every cycle start for a few (T_0, T_mult), including those where a log-based cycle
# index floor(log(t / T_0 * (T_mult - 1) + 1) / log(T_mult)) rounds one cycle too low
# in float64 (e.g. T_0=1, T_mult=3, t=121: torch's closed form gives eta_min there).
SGDR_STARTS = [(T_0, T_mult, t)
               for T_0 in (1, 2, 3) for T_mult in (2, 3, 4, 5)
               for t in _restart_boundaries(T_0, T_mult, 9)]
SGDR_LOG_MISSES = [(T_0, T_mult, t) for T_0, T_mult, t in SGDR_STARTS
                   if math.floor(math.log(t / T_0 * (T_mult - 1) + 1) / math.log(T_mult))
                   != round(math.log(t / T_0 * (T_mult - 1) + 1) / math.log(T_mult))]


def test_sgdr_cases_include_log_misses():
    assert (1, 3, 121) in SGDR_LOG_MISSES


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("T_0,T_mult,t", SGDR_STARTS)
def test_cosine_warm_restarts_at_cycle_starts(T_0, T_mult, t, impl):
    """Around the start of each cycle: eta_min-ish just before, the base rate at it."""
    mod = IMPLS[impl]
    sched = schedules.CosineWarmRestarts(T_0=T_0, T_mult=T_mult, eta_min=0.01)
    code, sp, _ = sched._lower(1.0)
    assert_allclose(mod.lr_at(code, sp, float(t)), 1.0, rtol=1e-12)
    for tt in (t - 1, t, t + 1):
        exp = naive.lr_cosine_warm_restarts(tt, 1.0, T_0, T_mult, 0.01)
        assert_allclose(mod.lr_at(code, sp, float(tt)), exp, rtol=1e-9, atol=1e-12,
                        err_msg=f"T_0={T_0} T_mult={T_mult} t={tt}")


# ============================================================================ clipping
CLIP_CASES = [
    (None, None), (0.5, None), (None, 1.0), (None, 100.0), (0.3, 0.5), (0.3, 100.0),
    (100.0, 0.2), (1e-3, 1e-3),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("clip_value,clip_norm", CLIP_CASES)
def test_clip_gradient_vs_naive(clip_value, clip_norm, impl):
    mod = IMPLS[impl]
    rng = np.random.default_rng(3)
    for n_params in (1, 4, 6):
        for scale in (1e-4, 0.3, 5.0):
            g0 = rng.normal(scale=scale, size=6)
            g = g0.copy()
            norm = mod.clip_gradient(g, n_params,
                                     clip_value if clip_value is not None else 0.0,
                                     clip_norm if clip_norm is not None else 0.0)
            exp, exp_norm = naive.clip_gradient(g0[:n_params], clip_value, clip_norm)
            assert_allclose(norm, exp_norm, rtol=1e-14)
            assert_allclose(g[:n_params], exp, rtol=1e-14, atol=1e-300)
            assert_allclose(g[n_params:], g0[n_params:], rtol=0, atol=0)


def test_clip_norm_formula_is_torch():
    """``g * c / (N + 1e-6)``: the clipped norm is slightly below c."""
    g = np.array([3.0, 4.0])
    rules.clip_gradient(g, 2, 0.0, 1.0)
    assert_allclose(g, np.array([3.0, 4.0]) / (5.0 + 1e-6), rtol=1e-15)
    g2, n = naive.clip_gradient([3.0, 4.0], clip_norm=1.0)
    assert n == 5.0
    assert_allclose(g2, g, rtol=1e-15)


# ============================================================ the reference vs torch
def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("setting", OPT_SETTINGS, ids=_opt_id)
def test_naive_optimizer_vs_torch(setting):
    """Self-check of the reference: torch.optim on one parameter tensor (no intercept)."""
    torch = _torch()
    name, hp = setting
    full = naive.resolve_optimizer(setting)[1]
    if name in ("sgd", "momentum"):
        kw = dict(weight_decay=full["weight_decay"])
        if name == "momentum":
            kw.update(momentum=full["momentum"], dampening=full["dampening"],
                      nesterov=full["nesterov"])
        cls = torch.optim.SGD
    elif name in ("adam", "adamw"):
        kw = dict(betas=(full["beta1"], full["beta2"]), eps=full["eps"],
                  amsgrad=full["amsgrad"], weight_decay=full["weight_decay"])
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    else:
        kw = dict(full)
        cls = {"adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
               "adadelta": torch.optim.Adadelta}[name]
    rng = np.random.default_rng(5)
    theta0 = rng.normal(size=5)
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = cls([p], lr=0.05, **kw)
    theta, state = theta0.copy(), {}
    for k in range(1, 8):
        g = rng.normal(size=5)
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        theta = naive.optimizer_update(setting, theta, g, state, k, 0.05, n_decay=5)
        assert_allclose(theta, p.detach().numpy(), rtol=1e-12, atol=1e-15)


def _torch_lrs(make, n):
    torch = _torch()
    import warnings

    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=0.2)
    sch = make(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(n):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sch.step()
    return out


def test_naive_schedules_vs_torch():
    torch = _torch()
    S = torch.optim.lr_scheduler
    cases = [  # (scheduler factory, naive function, steps); OneCycleLR stops at total
        (lambda o: S.StepLR(o, 3, gamma=0.1), lambda t: naive.lr_step(t, 0.2, 3), 130),
        (lambda o: S.MultiStepLR(o, [3, 7, 10], gamma=0.3),
         lambda t: naive.lr_multistep(t, 0.2, [3, 7, 10], 0.3), 130),
        (lambda o: S.ExponentialLR(o, 0.9), lambda t: naive.lr_exponential(t, 0.2, 0.9),
         130),
        (lambda o: S.CosineAnnealingLR(o, 10, eta_min=0.01),
         lambda t: naive.lr_cosine(t, 0.2, 10, 0.01), 130),
        (lambda o: S.CosineAnnealingWarmRestarts(o, 3, T_mult=2, eta_min=0.02),
         lambda t: naive.lr_cosine_warm_restarts(t, 0.2, 3, 2, 0.02), 130),
        (lambda o: S.CosineAnnealingWarmRestarts(o, 1, T_mult=3),
         lambda t: naive.lr_cosine_warm_restarts(t, 0.2, 1, 3), 130),
        (lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=50),
         lambda t: naive.lr_onecycle(t, 0.2, 50), 50),
        (lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=40, pct_start=0.25,
                                anneal_strategy="linear", div_factor=10.0,
                                final_div_factor=100.0),
         lambda t: naive.lr_onecycle(t, 0.2, 40, 0.25, "linear", 10.0, 100.0), 40),
    ]
    for make, fn, n in cases:
        lrs = _torch_lrs(make, n)
        # torch's recursive forms (used by step()) drift from the closed forms by round-off
        assert_allclose([fn(t) for t in range(n)], lrs, rtol=1e-9, atol=1e-12)
