"""Scalar update maths shared by every loop (CPU now, GPU later) and by Python.

Everything here is plain Python using ``math`` only, so that the same source runs
three ways: interpreted (``Schedule.__call__``, :func:`fastgd.minimize` with a Python
gradient), compiled by ``numba.njit`` inside the CPU loops, and compiled by
``numba.cuda.jit`` for the GPU. Options arrive as integer codes and float arrays; no
function here raises, reads mutable globals or allocates.

The formulas are written out in ``docs/semantics.md``.
"""

import math

# ---------------------------------------------------------------- loss codes
SQUARED_ERROR = 0
HUBER = 1
EPSILON_INSENSITIVE = 2
SQUARED_EPSILON_INSENSITIVE = 3
# classification losses, targets y in {-1, +1} (log_loss: y in {0, 1}); ``eps`` carries
# the margin threshold of the hinge losses (1 for hinge, 0 for perceptron)
HINGE = 4
SQUARED_HINGE = 5
MODIFIED_HUBER = 6
LOG_LOSS = 7

#: scikit-learn clips dloss/dp to this magnitude (``MAX_DLOSS`` in ``_sgd_fast``).
MAX_DLOSS = 1e12


def loss_value(code, p, y, eps):
    """Loss ``l(p, y)`` of one sample (scikit-learn's conventions)."""
    if code == SQUARED_ERROR:
        r = p - y
        return 0.5 * r * r
    elif code == HUBER:
        a = abs(y - p)
        if a <= eps:
            return 0.5 * a * a
        return eps * (a - 0.5 * eps)
    elif code == EPSILON_INSENSITIVE:
        r = abs(y - p) - eps
        return r if r > 0.0 else 0.0
    elif code == SQUARED_EPSILON_INSENSITIVE:
        r = abs(y - p) - eps
        return r * r if r > 0.0 else 0.0
    elif code == HINGE:
        z = p * y
        return eps - z if z <= eps else 0.0
    elif code == SQUARED_HINGE:
        z = eps - p * y
        return z * z if z > 0.0 else 0.0
    elif code == MODIFIED_HUBER:
        z = p * y
        if z >= 1.0:
            return 0.0
        elif z >= -1.0:
            return (1.0 - z) * (1.0 - z)
        return -4.0 * z
    else:  # LOG_LOSS: log(1 + exp(p)) - y p, as scikit-learn's log1pexp
        if p <= -37.0:
            lp = math.exp(p)
        elif p <= -2.0:
            lp = math.log1p(math.exp(p))
        elif p <= 18.0:
            lp = math.log(1.0 + math.exp(p))
        elif p <= 33.3:
            lp = p + math.exp(-p)
        else:
            lp = p
        return lp - y * p


def loss_dloss(code, p, y, eps):
    """Derivative ``dl/dp`` of :func:`loss_value`, unclipped."""
    if code == SQUARED_ERROR:
        return p - y
    elif code == HUBER:
        r = p - y
        if abs(r) <= eps:
            return r
        return eps if r >= 0.0 else -eps
    elif code == EPSILON_INSENSITIVE:
        if y - p > eps:
            return -1.0
        elif p - y > eps:
            return 1.0
        return 0.0
    elif code == SQUARED_EPSILON_INSENSITIVE:
        z = y - p
        if z > eps:
            return -2.0 * (z - eps)
        elif z < -eps:
            return 2.0 * (-z - eps)
        return 0.0
    elif code == HINGE:
        return -y if p * y <= eps else 0.0
    elif code == SQUARED_HINGE:
        z = eps - p * y
        return -2.0 * y * z if z > 0.0 else 0.0
    elif code == MODIFIED_HUBER:
        z = p * y
        if z >= 1.0:
            return 0.0
        elif z >= -1.0:
            return 2.0 * (1.0 - z) * -y
        return -4.0 * y
    else:  # LOG_LOSS: expit(p) - y, as scikit-learn's cgradient_half_binomial
        if p > -37.0:
            e = math.exp(-p)
            return ((1.0 - y) - y * e) / (1.0 + e)
        return math.exp(p) - y


def clip_dloss(d):
    """Clip ``dl/dp`` to ``[-MAX_DLOSS, MAX_DLOSS]`` as scikit-learn does."""
    if d < -MAX_DLOSS:
        return -MAX_DLOSS
    if d > MAX_DLOSS:
        return MAX_DLOSS
    return d


# ------------------------------------------------------------ schedule codes
# Layout of the schedule parameter array ``sp`` (float64):
#   sp[0] base learning rate (eta0, or max_lr for OneCycle)
#   sp[1] warm-up length W in the schedule's unit (0: none)
#   sp[2] warm-up start factor f
#   sp[3:] code-specific values, listed beside each code.
SCHED_CONSTANT = 0  # -
SCHED_OPTIMAL = 1  # sp[3] alpha, sp[4] t0
SCHED_INVSCALING = 2  # sp[3] power_t
SCHED_STEP = 3  # sp[3] step_size, sp[4] gamma
SCHED_MULTISTEP = 4  # sp[3] gamma, sp[4] count k, sp[5:5+k] sorted milestones
SCHED_EXPONENTIAL = 5  # sp[3] gamma
SCHED_COSINE = 6  # sp[3] T_max, sp[4] eta_min
SCHED_COSINE_RESTARTS = 7  # sp[3] T_0, sp[4] T_mult, sp[5] eta_min
SCHED_ONECYCLE = 8  # sp[3] total_steps, sp[4] pct_start, sp[5] cos?1:0,
#                     sp[6] div_factor, sp[7] final_div_factor
SCHED_INVSQRT = 9  # sp[3] warmup_steps
# sp[3] number of segments k, sp[4:3+k] the k-1 milestones (increasing), then a pair
# (code, offset) per segment; each segment's own layout (sp[0..2] and its values) starts
# at its offset. sp[1], sp[2] are a warm-up in front of the whole sequence.
SCHED_SEQUENTIAL = 10

UNIT_UPDATE = 0
UNIT_EPOCH = 1


def lr_at(code, sp, t):
    """Learning rate at counter ``t`` (updates or epochs made so far), warm-up included.

    One function body (no helper calls) so that it compiles unchanged for the CPU
    and the GPU. A ``SCHED_SEQUENTIAL`` schedule first picks the segment that ``t``
    falls in and restarts the count there; the segment's own layout is then read at
    offset ``o`` of ``sp`` (0 for every other schedule), so the closed forms below
    serve both.
    """
    o = 0
    outer = 1.0
    if code == SCHED_SEQUENTIAL:
        w = sp[1]
        if w > 0.0 and t < w:
            f = sp[2]
            outer = f + (1.0 - f) * t / w
            t = 0.0
        else:
            t = t - w
        k = int(sp[3])
        i = 0
        start = 0.0
        while i < k - 1 and sp[4 + i] <= t:
            start = sp[4 + i]
            i += 1
        t = t - start
        h = 4 + (k - 1) + 2 * i
        code = int(sp[h])
        o = int(sp[h + 1])
    factor = 1.0
    w = sp[o + 1]
    if w > 0.0 and t < w:
        f = sp[o + 2]
        factor = f + (1.0 - f) * t / w
        t = 0.0
    else:
        t = t - w
    lr = sp[o]
    if code == SCHED_CONSTANT:
        val = lr
    elif code == SCHED_OPTIMAL:
        # scikit-learn: 1 / (alpha * (optimal_init + t_sk - 1)) with t_sk = t + 1
        val = 1.0 / (sp[o + 3] * (sp[o + 4] + t))
    elif code == SCHED_INVSCALING:
        val = lr / math.pow(t + 1.0, sp[o + 3])
    elif code == SCHED_STEP:
        val = lr * math.pow(sp[o + 4], math.floor(t / sp[o + 3]))
    elif code == SCHED_MULTISTEP:
        k = int(sp[o + 4])
        n = 0
        for i in range(k):
            if sp[o + 5 + i] <= t:
                n += 1
        val = lr * math.pow(sp[o + 3], n)
    elif code == SCHED_EXPONENTIAL:
        val = lr * math.pow(sp[o + 3], t)
    elif code == SCHED_COSINE:
        t_max = sp[o + 3]
        eta_min = sp[o + 4]
        val = eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * t / t_max)) / 2.0
    elif code == SCHED_COSINE_RESTARTS:
        t0 = sp[o + 3]
        t_mult = sp[o + 4]
        eta_min = sp[o + 5]
        if t_mult == 1.0:
            t_cur = t - t0 * math.floor(t / t0)
            t_i = t0
        else:
            # walk the cycles with exact arithmetic: a log-based cycle index rounds
            # down at some restarts (log(243)/log(3) = 4.999...), O(log t) steps
            t_cur = t
            t_i = t0
            while t_cur >= t_i:
                t_cur -= t_i
                t_i *= t_mult
        val = eta_min + (lr - eta_min) * (1.0 + math.cos(math.pi * t_cur / t_i)) / 2.0
    elif code == SCHED_ONECYCLE:
        total = sp[o + 3]
        initial = lr / sp[o + 6]
        final = initial / sp[o + 7]
        end1 = sp[o + 4] * total - 1.0
        end2 = total - 1.0
        tt = t if t < end2 else end2
        if tt <= end1:
            start = initial
            end = lr
            pct = tt / end1
        else:
            start = lr
            end = final
            pct = (tt - end1) / (end2 - end1)
        if sp[o + 5] == 1.0:
            val = end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)
        else:
            val = (end - start) * pct + start
    else:  # SCHED_INVSQRT
        wu = sp[o + 3]
        s = t + 1.0
        a = 1.0 / math.sqrt(s)
        b = s * math.pow(wu, -1.5)
        val = lr * math.sqrt(wu) * (a if a < b else b)
    return val * factor * outer


# ----------------------------------------------------------- optimizer codes
# Layout of the hyper-parameter array ``hp`` (float64), per code:
OPT_SGD = 0  # hp[0] weight_decay
OPT_MOMENTUM = 1  # hp[0] weight_decay, hp[1] momentum, hp[2] dampening, hp[3] nesterov
OPT_ADAGRAD = 2  # hp[0] weight_decay, hp[1] lr_decay, hp[2] eps, hp[3] initial_acc
OPT_RMSPROP = 3  # hp[0] weight_decay, hp[1] alpha, hp[2] eps, hp[3] momentum, hp[4] centered
OPT_ADADELTA = 4  # hp[0] weight_decay, hp[1] rho, hp[2] eps
OPT_ADAM = 5  # hp[0] weight_decay, hp[1] beta1, hp[2] beta2, hp[3] eps, hp[4] amsgrad
OPT_ADAMW = 6  # same layout as OPT_ADAM; weight decay is decoupled

#: rows of optimizer state at most (state has shape (rows, n_params))
N_STATE = 3
#: rows of optimizer state each code reads and writes
STATE_ROWS = (1, 1, 1, 3, 2, 3, 3)


def opt_update(code, hp, state, k, lr, theta, g, n_params, n_decay):
    """Apply one optimizer update in place.

    ``theta`` and ``g`` have length >= ``n_params``; coordinates ``< n_decay`` get
    weight decay (the weights), the others (the intercept) do not. ``k`` is the
    optimizer step number, 1 at the first update. ``g`` may be modified.
    """
    wd = hp[0]
    if code != OPT_ADAMW and wd != 0.0:
        for j in range(n_decay):
            g[j] += wd * theta[j]
    if code == OPT_SGD:
        for j in range(n_params):
            theta[j] -= lr * g[j]
    elif code == OPT_MOMENTUM:
        mu = hp[1]
        damp = 1.0 - hp[2]
        nesterov = hp[3] != 0.0
        for j in range(n_params):
            if k == 1:
                v = g[j]
            else:
                v = mu * state[0, j] + damp * g[j]
            state[0, j] = v
            if nesterov:
                theta[j] -= lr * (g[j] + mu * v)
            else:
                theta[j] -= lr * v
    elif code == OPT_ADAGRAD:
        clr = lr / (1.0 + (k - 1) * hp[1])
        eps = hp[2]
        for j in range(n_params):
            s = state[0, j] + g[j] * g[j]
            state[0, j] = s
            theta[j] -= clr * g[j] / (math.sqrt(s) + eps)
    elif code == OPT_RMSPROP:
        a = hp[1]
        eps = hp[2]
        mu = hp[3]
        centered = hp[4] != 0.0
        for j in range(n_params):
            gj = g[j]
            s = a * state[0, j] + (1.0 - a) * gj * gj
            state[0, j] = s
            if centered:
                m = a * state[1, j] + (1.0 - a) * gj
                state[1, j] = m
                den = math.sqrt(s - m * m) + eps
            else:
                den = math.sqrt(s) + eps
            if mu > 0.0:
                b = mu * state[2, j] + gj / den
                state[2, j] = b
                theta[j] -= lr * b
            else:
                theta[j] -= lr * gj / den
    elif code == OPT_ADADELTA:
        rho = hp[1]
        eps = hp[2]
        for j in range(n_params):
            gj = g[j]
            s = rho * state[0, j] + (1.0 - rho) * gj * gj
            state[0, j] = s
            delta = math.sqrt(state[1, j] + eps) / math.sqrt(s + eps) * gj
            state[1, j] = rho * state[1, j] + (1.0 - rho) * delta * delta
            theta[j] -= lr * delta
    else:  # OPT_ADAM, OPT_ADAMW
        b1 = hp[1]
        b2 = hp[2]
        eps = hp[3]
        amsgrad = hp[4] != 0.0
        if code == OPT_ADAMW and wd != 0.0:
            decay = 1.0 - lr * wd
            for j in range(n_decay):
                theta[j] *= decay
        step_size = lr / (1.0 - math.pow(b1, k))
        bc2_sqrt = math.sqrt(1.0 - math.pow(b2, k))
        for j in range(n_params):
            gj = g[j]
            m = b1 * state[0, j] + (1.0 - b1) * gj
            v = b2 * state[1, j] + (1.0 - b2) * gj * gj
            state[0, j] = m
            state[1, j] = v
            if amsgrad:
                if v > state[2, j]:
                    state[2, j] = v
                den = math.sqrt(state[2, j]) / bc2_sqrt + eps
            else:
                den = math.sqrt(v) / bc2_sqrt + eps
            theta[j] -= step_size * m / den


def clip_gradient(g, n_params, clip_value, clip_norm):
    """Clip ``g[:n_params]`` in place; return the pre-clip global L2 norm.

    ``clip_value`` / ``clip_norm`` <= 0 mean "off". Value clipping comes first.
    The returned norm is that of the gradient as it arrived.
    """
    sq = 0.0
    for j in range(n_params):
        sq += g[j] * g[j]
    norm = math.sqrt(sq)
    if clip_value > 0.0:
        for j in range(n_params):
            if g[j] > clip_value:
                g[j] = clip_value
            elif g[j] < -clip_value:
                g[j] = -clip_value
    if clip_norm > 0.0:
        if clip_value > 0.0:
            sq = 0.0
            for j in range(n_params):
                sq += g[j] * g[j]
            cur = math.sqrt(sq)
        else:
            cur = norm
        coef = clip_norm / (cur + 1e-6)
        if coef < 1.0:
            for j in range(n_params):
                g[j] *= coef
    return norm
