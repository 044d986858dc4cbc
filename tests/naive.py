"""Slow, obviously-correct NumPy reference of fastgd's semantics.

Written from ``docs/semantics.md`` (and, for scikit-learn's algorithm, from
``sklearn/linear_model/_sgd_fast.pyx.tp``), independently of ``fastgd``: nothing here
imports it. Everything is plain Python / NumPy, one sample or one batch at a time,
with the true (unscaled) weight vector; speed is not a goal, readability is.

Conventions
-----------
* A *loss* is named as in scikit-learn (``"squared_error"``, ``"huber"``,
  ``"epsilon_insensitive"``, ``"squared_epsilon_insensitive"``), with ``epsilon``.
* An *optimizer* is a name (``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``,
  ``"rmsprop"``, ``"adadelta"``, ``"adam"``, ``"adamw"``) or a pair ``(name, hp)`` with
  a dict of hyper-parameters (the names of ``torch.optim`` / ``fastgd.optim``); missing
  ones take the defaults of :data:`OPTIMIZER_DEFAULTS`.
* An optimizer update is a function ``update(theta, g, state, k, lr, hp, n_decay)``
  returning the new ``theta``; ``state`` is a dict, filled on the first call and
  updated in place; ``k`` is the step number (1 at the first update); the first
  ``n_decay`` coordinates are weights (weight decay applies), the rest the intercept.
* A *schedule* is a pair ``(fn, unit)`` with ``fn(t) -> learning rate`` and ``unit``
  ``"update"`` or ``"epoch"``; the ``lr_*`` functions below build ``fn`` with
  :func:`functools.partial`.
"""

import math
from functools import partial

import numpy as np

MAX_DLOSS = 1e12

LOSSES = ("squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive")


# =============================================================================== losses
def loss_value(loss, p, y, epsilon=0.1):
    """``l(p, y)`` of one sample."""
    p = float(p)
    y = float(y)
    if loss == "squared_error":
        return 0.5 * (p - y) ** 2
    if loss == "huber":
        r = abs(p - y)
        if r <= epsilon:
            return 0.5 * r**2
        return epsilon * (r - 0.5 * epsilon)
    if loss == "epsilon_insensitive":
        return max(0.0, abs(y - p) - epsilon)
    if loss == "squared_epsilon_insensitive":
        return max(0.0, abs(y - p) - epsilon) ** 2
    raise ValueError(loss)


def loss_dloss(loss, p, y, epsilon=0.1):
    """``dl/dp`` of one sample, not clipped."""
    p = float(p)
    y = float(y)
    if loss == "squared_error":
        return p - y
    if loss == "huber":
        r = p - y
        if abs(r) <= epsilon:
            return r
        return epsilon if r >= 0 else -epsilon
    if loss == "epsilon_insensitive":
        if y - p > epsilon:
            return -1.0
        if p - y > epsilon:
            return 1.0
        return 0.0
    if loss == "squared_epsilon_insensitive":
        if y - p > epsilon:
            return -2.0 * (y - p - epsilon)
        if y - p < -epsilon:
            return 2.0 * (p - y - epsilon)
        return 0.0
    raise ValueError(loss)


def clip_dloss(d):
    """scikit-learn's ``MAX_DLOSS`` clipping."""
    return min(max(d, -MAX_DLOSS), MAX_DLOSS)


# =========================================================================== optimizers
OPTIMIZER_DEFAULTS = {
    "sgd": dict(weight_decay=0.0),
    "momentum": dict(momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0),
    "adagrad": dict(lr_decay=0.0, eps=1e-10, initial_accumulator_value=0.0,
                    weight_decay=0.0),
    "rmsprop": dict(alpha=0.99, eps=1e-8, momentum=0.0, centered=False, weight_decay=0.0),
    "adadelta": dict(rho=0.9, eps=1e-6, weight_decay=0.0),
    "adam": dict(beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=False, weight_decay=0.0),
    "adamw": dict(beta1=0.9, beta2=0.999, eps=1e-8, amsgrad=False, weight_decay=0.01),
}


def resolve_optimizer(optimizer):
    """``name`` or ``(name, hp)`` -> ``(name, full hp dict)``; "nesterov" is momentum."""
    if isinstance(optimizer, str):
        name, hp = optimizer, {}
    else:
        name, hp = optimizer
    if name == "nesterov":
        name, hp = "momentum", dict(hp, nesterov=True)
    full = dict(OPTIMIZER_DEFAULTS[name])
    for key, value in hp.items():
        if key not in full:
            raise ValueError(f"unknown hyper-parameter {key!r} of {name}")
        full[key] = value
    return name, full


def _coupled_decay(theta, g, wd, n_decay):
    """``g + wd * w`` on the weights (not on the intercept)."""
    g = np.array(g, dtype=np.float64)
    if wd != 0.0:
        g[:n_decay] = g[:n_decay] + wd * theta[:n_decay]
    return g


def sgd_update(theta, g, state, k, lr, hp, n_decay):
    g = _coupled_decay(theta, g, hp["weight_decay"], n_decay)
    return theta - lr * g


def momentum_update(theta, g, state, k, lr, hp, n_decay):
    g = _coupled_decay(theta, g, hp["weight_decay"], n_decay)
    mu = hp["momentum"]
    if k == 1:
        v = g.copy()
    else:
        v = mu * state["v"] + (1.0 - hp["dampening"]) * g
    state["v"] = v
    if hp["nesterov"]:
        d = g + mu * v
    else:
        d = v
    return theta - lr * d


def adagrad_update(theta, g, state, k, lr, hp, n_decay):
    g = _coupled_decay(theta, g, hp["weight_decay"], n_decay)
    if "G" not in state:
        state["G"] = np.full(len(theta), float(hp["initial_accumulator_value"]))
    state["G"] = state["G"] + g * g
    clr = lr / (1.0 + (k - 1) * hp["lr_decay"])
    return theta - clr * g / (np.sqrt(state["G"]) + hp["eps"])


def rmsprop_update(theta, g, state, k, lr, hp, n_decay):
    g = _coupled_decay(theta, g, hp["weight_decay"], n_decay)
    a = hp["alpha"]
    n = len(theta)
    state.setdefault("S", np.zeros(n))
    state.setdefault("M", np.zeros(n))
    state.setdefault("B", np.zeros(n))
    state["S"] = a * state["S"] + (1.0 - a) * g * g
    if hp["centered"]:
        state["M"] = a * state["M"] + (1.0 - a) * g
        D = np.sqrt(state["S"] - state["M"] ** 2) + hp["eps"]
    else:
        D = np.sqrt(state["S"]) + hp["eps"]
    if hp["momentum"] > 0:
        state["B"] = hp["momentum"] * state["B"] + g / D
        return theta - lr * state["B"]
    return theta - lr * g / D


def adadelta_update(theta, g, state, k, lr, hp, n_decay):
    g = _coupled_decay(theta, g, hp["weight_decay"], n_decay)
    rho = hp["rho"]
    eps = hp["eps"]
    n = len(theta)
    state.setdefault("S", np.zeros(n))
    state.setdefault("A", np.zeros(n))
    state["S"] = rho * state["S"] + (1.0 - rho) * g * g
    delta = np.sqrt(state["A"] + eps) / np.sqrt(state["S"] + eps) * g
    state["A"] = rho * state["A"] + (1.0 - rho) * delta * delta
    return theta - lr * delta


def _adam_core(theta, g, state, k, lr, hp):
    b1, b2 = hp["beta1"], hp["beta2"]
    n = len(theta)
    state.setdefault("m", np.zeros(n))
    state.setdefault("v", np.zeros(n))
    state.setdefault("vmax", np.zeros(n))
    state["m"] = b1 * state["m"] + (1.0 - b1) * g
    state["v"] = b2 * state["v"] + (1.0 - b2) * g * g
    if hp["amsgrad"]:
        state["vmax"] = np.maximum(state["vmax"], state["v"])
        v = state["vmax"]
    else:
        v = state["v"]
    step = lr / (1.0 - b1**k)
    denom = np.sqrt(v) / math.sqrt(1.0 - b2**k) + hp["eps"]
    return theta - step * state["m"] / denom


def adam_update(theta, g, state, k, lr, hp, n_decay):
    g = _coupled_decay(theta, g, hp["weight_decay"], n_decay)
    return _adam_core(theta, g, state, k, lr, hp)


def adamw_update(theta, g, state, k, lr, hp, n_decay):
    theta = np.array(theta, dtype=np.float64)
    theta[:n_decay] = theta[:n_decay] * (1.0 - lr * hp["weight_decay"])
    return _adam_core(theta, np.asarray(g, dtype=np.float64), state, k, lr, hp)


OPTIMIZERS = {
    "sgd": sgd_update,
    "momentum": momentum_update,
    "adagrad": adagrad_update,
    "rmsprop": rmsprop_update,
    "adadelta": adadelta_update,
    "adam": adam_update,
    "adamw": adamw_update,
}


def optimizer_update(optimizer, theta, g, state, k, lr, n_decay):
    """One update of ``optimizer`` (name or ``(name, hp)``); returns the new theta."""
    name, hp = resolve_optimizer(optimizer)
    theta = np.array(theta, dtype=np.float64)
    return OPTIMIZERS[name](theta, np.asarray(g, dtype=np.float64), state, k, lr, hp,
                            n_decay)


# ============================================================================ schedules
def lr_constant(t, eta0):
    return eta0


def lr_invscaling(t, eta0, power_t=0.25):
    return eta0 / (t + 1.0) ** power_t


def lr_optimal(t, alpha, loss="squared_error", epsilon=0.1):
    typw = math.sqrt(1.0 / math.sqrt(alpha))
    eta_init = typw / max(1.0, loss_dloss(loss, -typw, 1.0, epsilon))
    t0 = 1.0 / (alpha * eta_init)
    return 1.0 / (alpha * (t0 + t))


def lr_step(t, eta0, step_size, gamma=0.1):
    return eta0 * gamma ** (t // step_size)


def lr_multistep(t, eta0, milestones, gamma=0.1):
    n = sum(1 for m in milestones if m <= t)
    return eta0 * gamma**n


def lr_exponential(t, eta0, gamma):
    return eta0 * gamma**t


def lr_cosine(t, eta0, T_max, eta_min=0.0):
    return eta_min + (eta0 - eta_min) * (1.0 + math.cos(math.pi * t / T_max)) / 2.0


def lr_cosine_warm_restarts(t, eta0, T_0, T_mult=1, eta_min=0.0):
    """SGDR: cycles of lengths T_0, T_0*T_mult, T_0*T_mult**2, ... (integer t)."""
    t = int(t)
    T_i = T_0
    t_cur = t
    if T_mult == 1:
        t_cur = t % T_0
    else:
        while t_cur >= T_i:
            t_cur -= T_i
            T_i *= T_mult
    return eta_min + (eta0 - eta_min) * (1.0 + math.cos(math.pi * t_cur / T_i)) / 2.0


def lr_onecycle(t, eta0, total_steps, pct_start=0.3, anneal_strategy="cos",
                div_factor=25.0, final_div_factor=1e4):
    """torch's OneCycleLR (two phases); after ``total_steps - 1`` it stays at the end."""
    max_lr = eta0
    initial = max_lr / div_factor
    final = initial / final_div_factor
    end1 = pct_start * total_steps - 1.0
    end2 = total_steps - 1.0
    t = min(t, end2)
    if t <= end1:
        start, end, pct = initial, max_lr, t / end1
    else:
        start, end, pct = max_lr, final, (t - end1) / (end2 - end1)
    if anneal_strategy == "cos":
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)
    return (end - start) * pct + start


def lr_inverse_sqrt(t, eta0, warmup_steps):
    W = warmup_steps
    return eta0 * math.sqrt(W) * min((t + 1.0) ** -0.5, (t + 1.0) * W**-1.5)


def lr_warmup(t, inner, warmup_steps, start_factor=0.0):
    """Linear warm-up of ``warmup_steps`` in front of ``inner`` (a function of t)."""
    W = warmup_steps
    if t < W:
        return inner(0) * (start_factor + (1.0 - start_factor) * t / W)
    return inner(t - W)


def lr_sequential(t, parts, milestones):
    """``parts[i]`` (a function of t) from milestone ``i`` on, counting from 0 there
    (torch's ``SequentialLR`` with closed-form schedulers, optax's ``join_schedules``)."""
    starts = [0] + list(milestones)
    i = sum(1 for m in milestones if m <= t)
    return parts[i](t - starts[i])


def lr_lambda(t, eta0, fn):
    """torch's ``LambdaLR``: ``eta0 * fn(epoch)``."""
    return eta0 * fn(int(t))


def schedule(fn, unit="update", **params):
    """``(partial(fn, **params), unit)``."""
    return partial(fn, **params), unit


# ============================================================================= clipping
def clip_gradient(g, clip_value=None, clip_norm=None):
    """Value clipping, then norm clipping (torch's formula). Returns ``(g, pre-clip norm)``."""
    g = np.array(g, dtype=np.float64)
    norm = math.sqrt(sum(float(v) * float(v) for v in g))
    if clip_value is not None:
        g = np.minimum(np.maximum(g, -clip_value), clip_value)
    if clip_norm is not None:
        cur = math.sqrt(sum(float(v) * float(v) for v in g))
        g = g * min(1.0, clip_norm / (cur + 1e-6))
    return g, norm


# ========================================================================== batch norm
def batch_norm_batch(Xb, run_mean, run_var, momentum=0.1, eps=1e-5):
    """Normalize a training batch; return ``(Xhat, new running mean, new running var)``."""
    m = Xb.shape[0]
    if m == 1:
        x = Xb[0]
        delta = x - run_mean
        run_mean = run_mean + momentum * delta
        run_var = (1.0 - momentum) * (run_var + momentum * delta * delta)
        xhat = (x - run_mean) / np.sqrt(run_var + eps)
        return xhat[None, :], run_mean, run_var
    mu = Xb.mean(axis=0)
    var = ((Xb - mu) ** 2).mean(axis=0)
    Xhat = (Xb - mu) / np.sqrt(var + eps)
    run_mean = (1.0 - momentum) * run_mean + momentum * mu
    run_var = (1.0 - momentum) * run_var + momentum * var * m / (m - 1.0)
    return Xhat, run_mean, run_var


# ========================================================================= helpers
def _l1_ratio(penalty, l1_ratio):
    if penalty == "l2":
        return 0.0
    if penalty == "l1":
        return 1.0
    if penalty == "elasticnet":
        return l1_ratio
    if penalty is None:
        return None
    raise ValueError(penalty)


def _average_start(average):
    """``average`` -> the update count where averaging starts (0: off)."""
    if average is True:
        return 1
    if average is False or average is None:
        return 0
    return int(average)


#: ``torch.optim``'s default ``lr`` (PyTorch 2.13; ``SGD`` with momentum included)
TORCH_DEFAULT_LR = {"momentum": 1e-3, "adagrad": 1e-2, "rmsprop": 1e-2, "adadelta": 1.0,
                    "adam": 1e-3, "adamw": 1e-3}


def _default_schedule(schedule_, optimizer="sgd"):
    """The regressor's default rate: scikit-learn's for plain SGD (invscaling from
    0.01, power_t 0.25), torch's constant default ``lr`` for every other optimizer."""
    if schedule_ is not None:
        return schedule_
    name, _ = resolve_optimizer(optimizer)
    if name == "sgd":
        return partial(lr_invscaling, eta0=0.01, power_t=0.25), "update"
    return partial(lr_constant, eta0=TORCH_DEFAULT_LR[name]), "update"


def _batches(n, batch_size):
    order = list(range(n))
    if batch_size is None or batch_size == "full":
        return [order]
    return [order[s:s + batch_size] for s in range(0, n, batch_size)]


# ================================================================ general training loop
def naive_fit(X, y, *, n_epochs=1, batch_size=1, optimizer="sgd", schedule=None,
              loss="squared_error", epsilon=0.1, penalty="l2", alpha=1e-4, l1_ratio=0.15,
              fit_intercept=True, clip_norm=None, clip_value=None, batch_norm=False,
              bn_momentum=0.1, bn_eps=1e-5, average=False, sample_weight=None,
              coef_init=None, intercept_init=None):
    """Minibatch / full-batch / per-sample-with-an-optimizer training, ``shuffle=False``.

    Returns a dict: ``coef``, ``intercept`` (averaged if averaging started, batch norm
    folded), ``loss_curve``, ``lr_curve``, ``grad_norm_curve``, ``objective_curve``,
    ``n_updates``, ``t`` (updates + 1), ``bn_mean``, ``bn_var``, ``w``, ``b`` (raw).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    lr_fn, unit = _default_schedule(schedule, optimizer)
    rho = _l1_ratio(penalty, l1_ratio)
    avg_start = _average_start(average)

    w = np.zeros(d) if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = 0.0 if intercept_init is None else float(np.ravel(intercept_init)[0])
    state = {}
    k = 0  # optimizer steps
    n_updates = 0
    avg_w = np.zeros(d)
    avg_b = 0.0
    run_mean = np.zeros(d)
    run_var = np.ones(d)

    loss_curve, lr_curve, grad_norm_curve, objective_curve = [], [], [], []
    for epoch in range(n_epochs):
        sum_wloss = 0.0
        sum_w = 0.0
        sum_obj = 0.0
        norms = []
        first = True
        for B in _batches(n, batch_size):
            m = len(B)
            lr = lr_fn(epoch if unit == "epoch" else n_updates)
            if first:
                lr_curve.append(lr)
                first = False
            Xb = X[B]
            if batch_norm:
                Xb, run_mean, run_var = batch_norm_batch(Xb, run_mean, run_var,
                                                         bn_momentum, bn_eps)
            if rho is None:
                pen = 0.0
            else:
                pen = alpha * ((1.0 - rho) * 0.5 * float(np.sum(w * w))
                               + rho * float(np.sum(np.abs(w))))
            g_w = np.zeros(d)
            g_b = 0.0
            for row, i in enumerate(B):
                x = Xb[row]
                p = float(np.dot(w, x)) + b
                li = loss_value(loss, p, y[i], epsilon)
                sum_wloss += sw[i] * li
                sum_w += sw[i]
                sum_obj += li + pen
                di = sw[i] * clip_dloss(loss_dloss(loss, p, y[i], epsilon))
                g_w = g_w + di * x
                g_b = g_b + di
            g_w = g_w / m
            g_b = g_b / m
            if rho is not None:
                g_w = g_w + alpha * (1.0 - rho) * w + alpha * rho * np.sign(w)
            if fit_intercept:
                theta = np.concatenate([w, [b]])
                g = np.concatenate([g_w, [g_b]])
            else:
                theta = w.copy()
                g = g_w
            g, norm = clip_gradient(g, clip_value, clip_norm)
            norms.append(norm)
            k += 1
            theta = optimizer_update(optimizer, theta, g, state, k, lr, n_decay=d)
            w = theta[:d].copy()
            if fit_intercept:
                b = float(theta[d])
            n_updates += 1
            if avg_start and n_updates >= avg_start:
                num = n_updates - avg_start + 1
                avg_w = avg_w + (w - avg_w) / num
                avg_b = avg_b + (b - avg_b) / num
        loss_curve.append(sum_wloss / sum_w)
        grad_norm_curve.append(float(np.mean(norms)))
        objective_curve.append(sum_obj / n)

    if avg_start and n_updates >= avg_start:
        coef, intercept = avg_w.copy(), avg_b
    else:
        coef, intercept = w.copy(), b
    if batch_norm:
        coef = coef / np.sqrt(run_var + bn_eps)
        intercept = intercept - float(np.dot(coef, run_mean))
    return dict(coef=coef, intercept=intercept, loss_curve=np.array(loss_curve),
                lr_curve=np.array(lr_curve), grad_norm_curve=np.array(grad_norm_curve),
                objective_curve=np.array(objective_curve), n_updates=n_updates,
                t=n_updates + 1.0, bn_mean=run_mean, bn_var=run_var, w=w, b=b,
                optimizer_steps=k)


# ===================================================== scikit-learn's per-sample algorithm
def naive_sklearn_fit(X, y, *, n_epochs=1, schedule=None, loss="squared_error",
                      epsilon=0.1, penalty="l2", alpha=1e-4, l1_ratio=0.15,
                      fit_intercept=True, average=False, sample_weight=None,
                      coef_init=None, intercept_init=None, wscale_threshold=1e-9):
    """scikit-learn's ``_plain_sgd`` (dense, no shuffling, no early stopping), plainly.

    The weights are kept unscaled: the L2 step is an explicit multiplication. Two
    details of scikit-learn's lazy representation are reproduced explicitly:

    * the cumulative truncated-gradient L1 step (Tsuruoka et al., 2009) acts *after*
      the average was updated; scikit-learn's lazily averaged weights
      ``(aw + a * w) / b`` pick up that change of ``w`` with the weight
      ``r = a / (b * wscale)`` (tracked here as a scalar: ``r <- r / f`` when ``w`` is
      scaled by ``f``, ``r <- (1 - mu) r + mu`` at an averaging step, ``r <- 0`` when
      ``wscale`` drops below the reset threshold);
    * ``wscale`` itself is tracked only for that reset decision.

    ``grad_norm_curve`` is the mean norm of the loss + L2 gradient ``(s dl x + a(1-r) w,
    s dl)`` (the L1 part is not a gradient step in this algorithm; compare only
    without L1). ``objective_curve`` uses the exact norms of ``w`` (scikit-learn uses
    norms cached before the L1 step: compare only without L1).

    Returns a dict like :func:`naive_fit`.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = X.shape
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
    lr_fn, unit = _default_schedule(schedule)
    rho = _l1_ratio(penalty, l1_ratio)
    l2_on = penalty in ("l2", "elasticnet")
    l1_on = penalty in ("l1", "elasticnet")
    if rho is None:
        rho = 0.0
    avg_start = _average_start(average)

    w = np.zeros(d) if coef_init is None else np.array(coef_init, dtype=np.float64)
    b = 0.0 if intercept_init is None else float(np.ravel(intercept_init)[0])
    avg_w = np.zeros(d)
    avg_b = 0.0
    q = np.zeros(d)  # L1 ledger: total truncation applied to each weight
    u = 0.0  # total L1 penalty a weight could have received
    wscale = 1.0
    r = 0.0
    t = 1  # scikit-learn's counter

    loss_curve, lr_curve, grad_norm_curve, objective_curve = [], [], [], []
    l2 = alpha * (1.0 - rho) if penalty is not None else 0.0
    for epoch in range(n_epochs):
        sum_wloss = 0.0
        sum_w = 0.0
        sum_obj = 0.0
        norms = []
        for i in range(n):
            x = X[i]
            p = float(np.dot(w, x)) + b
            eta = lr_fn(epoch if unit == "epoch" else t - 1)
            if i == 0:
                lr_curve.append(eta)
            li = loss_value(loss, p, y[i], epsilon)
            sum_wloss += sw[i] * li
            sum_w += sw[i]
            sum_obj += li
            if penalty is not None:
                sum_obj += alpha * ((1.0 - rho) * 0.5 * float(np.sum(w * w))
                                    + rho * float(np.sum(np.abs(w))))
            c = sw[i] * clip_dloss(loss_dloss(loss, p, y[i], epsilon))
            # gradient of the loss + L2 part (the L1 part is not a gradient step here)
            g = np.concatenate([c * x + l2 * w, [c if fit_intercept else 0.0]])
            norms.append(math.sqrt(float(np.sum(g * g))))
            update = -eta * clip_dloss(loss_dloss(loss, p, y[i], epsilon)) * sw[i]
            if l2_on:
                f = max(0.0, 1.0 - (1.0 - rho) * eta * alpha)
                w = w * f
                wscale *= f
                if wscale < wscale_threshold:
                    wscale = 1.0
                    r = 0.0
                else:
                    r = r / f
            w = w + update * x
            if fit_intercept:
                b = b + update
            if avg_start and avg_start <= t:
                num = t - avg_start + 1
                avg_w = avg_w + (w - avg_w) / num
                avg_b = avg_b + (b - avg_b) / num
                r = (1.0 - 1.0 / num) * r + 1.0 / num
            if l1_on:
                u += rho * eta * alpha
                for j in range(d):
                    z = w[j]
                    if z > 0.0:
                        w[j] = max(0.0, w[j] - (u + q[j]))
                    elif z < 0.0:
                        w[j] = min(0.0, w[j] + (u - q[j]))
                    q[j] += w[j] - z
                    avg_w[j] += r * (w[j] - z)
            t += 1
        loss_curve.append(sum_wloss / sum_w)
        grad_norm_curve.append(float(np.mean(norms)))
        objective_curve.append(sum_obj / n)

    n_updates = t - 1
    if avg_start and avg_start <= n_updates:
        coef, intercept = avg_w.copy(), avg_b
    else:
        coef, intercept = w.copy(), b
    return dict(coef=coef, intercept=intercept, loss_curve=np.array(loss_curve),
                lr_curve=np.array(lr_curve), grad_norm_curve=np.array(grad_norm_curve),
                objective_curve=np.array(objective_curve), n_updates=n_updates,
                t=float(t), w=w, b=b)


def stopping_epoch(objective_curve, tol, n_iter_no_change):
    """scikit-learn's rule without early stopping: the epoch (1-based) training stops
    after, or ``len(objective_curve)`` if it does not stop within the curve."""
    best = math.inf
    count = 0
    for e, obj in enumerate(objective_curve):
        if obj > best - tol:
            count += 1
        else:
            count = 0
        best = min(best, obj)
        if count >= n_iter_no_change:
            return e + 1
    return len(objective_curve)
