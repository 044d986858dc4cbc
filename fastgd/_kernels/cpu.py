"""Numba-compiled training loops for the CPU.

Two loops, each running one epoch over the rows listed in ``order``:

* :func:`epoch_plain` -- scikit-learn's per-sample algorithm (``_plain_sgd``): a
  scaled weight vector ``w * wscale`` (L2 by rescaling), the cumulative truncated
  gradient for L1, and Bottou's lazy averaging (ASGD).
* :func:`epoch_batch` -- every other mode: minibatch / full batch / per-sample with a
  stateful optimizer, clipping and input batch normalization.

Both take options as integer codes and float arrays (one compiled specialization per
dtype and memory layout of ``X``), never raise and never allocate per step; the
engine (:mod:`fastgd._engine`) turns what they report into errors and histories.
Status and scalar results come back in the ``out`` array:

    out[0] objective sum (loss + penalty, unweighted, as scikit-learn)
    out[1] sample-weighted loss sum      out[2] sum of sample weights
    out[3] sum of pre-clip gradient norms out[4] learning rate of the first update
    out[5] number of updates made

Only ``reassoc`` and ``contract`` fast-math flags are used: they let LLVM vectorize the
dot products while keeping NaN/inf checks meaningful.
"""

import math

import numpy as np
from numba import njit

from . import rules as _r

FASTMATH = {"reassoc", "contract"}

loss_value = njit(inline="always", fastmath=FASTMATH, cache=True)(_r.loss_value)
loss_dloss = njit(inline="always", fastmath=FASTMATH, cache=True)(_r.loss_dloss)
clip_dloss = njit(inline="always", fastmath=FASTMATH, cache=True)(_r.clip_dloss)
lr_at = njit(fastmath=FASTMATH, cache=True)(_r.lr_at)
opt_update = njit(fastmath=FASTMATH, cache=True)(_r.opt_update)
clip_gradient = njit(fastmath=FASTMATH, cache=True)(_r.clip_gradient)

# indices into the scalar state of epoch_plain
S_INTERCEPT, S_WSCALE, S_SQNORM, S_L1NORM, S_AVG_A, S_AVG_B, S_AVG_INTERCEPT, S_U = range(8)
N_PLAIN_SCALARS = 8

PEN_NONE, PEN_L1, PEN_L2, PEN_ELASTICNET = 0, 1, 2, 3  # scikit-learn's codes


@njit(fastmath=FASTMATH, cache=True)
def _reset_wscale(w, aw, sc, averaging):
    """Fold ``wscale`` (and the lazy average's a/b) into the arrays (scikit-learn)."""
    n = w.shape[0]
    if averaging:
        a = sc[S_AVG_A]
        inv_b = 1.0 / sc[S_AVG_B]
        for j in range(n):
            aw[j] = (aw[j] + a * w[j]) * inv_b
        sc[S_AVG_A] = 0.0
        sc[S_AVG_B] = 1.0
    ws = sc[S_WSCALE]
    for j in range(n):
        w[j] *= ws
    sc[S_WSCALE] = 1.0


@njit(fastmath=FASTMATH, cache=True)
def finalize_plain(w, aw, sc, averaging):
    """Bring the scaled representation back to plain arrays (end of fit)."""
    _reset_wscale(w, aw, sc, averaging)


@njit(fastmath=FASTMATH, cache=True)
def epoch_plain(X, y, sw, order, w, aw, q, sc, t, fit_intercept,
                loss_code, eps, penalty, alpha, l1_ratio, average,
                sched_code, sp, sched_unit, epoch, wscale_threshold, out):
    """One epoch of scikit-learn's per-sample SGD; ``t`` is scikit-learn's counter.

    ``w``/``aw``/``q`` (weights, averaged weights, L1 ledger) and ``sc`` (scalars, see
    ``S_*``) are updated in place and carry over to the next epoch.
    """
    n_features = X.shape[1]
    averaging = average > 0.0
    l2_scale_on = penalty == PEN_L2 or penalty == PEN_ELASTICNET
    l1_on = penalty == PEN_L1 or penalty == PEN_ELASTICNET
    if penalty == PEN_L2:
        l1_ratio = 0.0
    elif penalty == PEN_L1:
        l1_ratio = 1.0
    l2c = alpha * (1.0 - l1_ratio) if penalty != PEN_NONE else 0.0
    fi = 1.0 if fit_intercept else 0.0
    obj = 0.0
    wloss = 0.0
    wsum = 0.0
    gsum = 0.0
    for ii in range(order.shape[0]):
        i = order[ii]
        wscale = sc[S_WSCALE]
        dot = 0.0
        xsq = 0.0
        for j in range(n_features):
            xv = X[i, j]
            dot += w[j] * xv
            xsq += xv * xv
        dot *= wscale
        p = dot + sc[S_INTERCEPT]
        if sched_unit == _r.UNIT_EPOCH:
            eta = lr_at(sched_code, sp, epoch)
        else:
            eta = lr_at(sched_code, sp, t - 1.0)
        if ii == 0:
            out[4] = eta
        yi = y[i]
        s = sw[i]
        lv = loss_value(loss_code, p, yi, eps)
        obj += lv
        if penalty != PEN_NONE:
            nrm = math.sqrt(sc[S_SQNORM])
            obj += alpha * ((1.0 - l1_ratio) * 0.5 * nrm * nrm + l1_ratio * sc[S_L1NORM])
        wloss += s * lv
        wsum += s
        dloss = clip_dloss(loss_dloss(loss_code, p, yi, eps))
        # pre-clip gradient norm of the loss + L2 part (the quantity a clip would see)
        c = s * dloss
        g2 = c * c * (xsq + fi) + 2.0 * c * l2c * dot + l2c * l2c * sc[S_SQNORM]
        gsum += math.sqrt(g2) if g2 > 0.0 else 0.0
        update = -eta * dloss
        update *= s
        if l2_scale_on:
            f = 1.0 - ((1.0 - l1_ratio) * eta * alpha)
            if f < 0.0:
                f = 0.0
            sc[S_WSCALE] *= f
            sc[S_SQNORM] *= f * f
            sc[S_L1NORM] *= abs(f)
            if sc[S_WSCALE] < wscale_threshold:
                _reset_wscale(w, aw, sc, averaging)
        wscale = sc[S_WSCALE]
        if update != 0.0:
            cw = update / wscale
            l2acc = 0.0
            l1acc = 0.0
            for j in range(n_features):
                wj = w[j] + X[i, j] * cw
                w[j] = wj
                l2acc += wj * wj
                l1acc += abs(wj)
            sc[S_SQNORM] = l2acc * (wscale * wscale)
            sc[S_L1NORM] = l1acc * wscale
        if fit_intercept:
            if update != 0.0:
                sc[S_INTERCEPT] += update
        if averaging and average <= t:
            num_iter = t - average + 1.0
            mu = 1.0 / num_iter
            a = sc[S_AVG_A]
            ca = -update / wscale
            for j in range(n_features):
                aw[j] += a * X[i, j] * ca
            if num_iter > 1.0:
                sc[S_AVG_B] /= (1.0 - mu)
            sc[S_AVG_A] += mu * sc[S_AVG_B] * wscale
            sc[S_AVG_INTERCEPT] += (sc[S_INTERCEPT] - sc[S_AVG_INTERCEPT]) / num_iter
        if l1_on:
            sc[S_U] += l1_ratio * eta * alpha
            u = sc[S_U]
            for j in range(n_features):
                z = w[j]
                if wscale * z > 0.0:
                    v = w[j] - ((u + q[j]) / wscale)
                    w[j] = v if v > 0.0 else 0.0
                elif wscale * z < 0.0:
                    v = w[j] + ((u - q[j]) / wscale)
                    w[j] = v if v < 0.0 else 0.0
                q[j] += wscale * (w[j] - z)
        t += 1.0
    out[0] = obj
    out[1] = wloss
    out[2] = wsum
    out[3] = gsum
    out[5] = order.shape[0]


@njit(fastmath=FASTMATH, cache=True)
def _batch_norm_stats(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps,
                      mu, inv_sd):
    """Per-feature normalization of one batch; updates the running statistics.

    Fills ``mu`` and ``inv_sd = 1/sqrt(var + eps)`` used to normalize this batch.
    """
    n_features = X.shape[1]
    m = stop - start
    if m == 1:
        i = order[start]
        for j in range(n_features):
            delta = X[i, j] - bn_mean[j]
            bn_mean[j] += bn_momentum * delta
            bn_var[j] = (1.0 - bn_momentum) * (bn_var[j] + bn_momentum * delta * delta)
            mu[j] = bn_mean[j]
            inv_sd[j] = 1.0 / math.sqrt(bn_var[j] + bn_eps)
        return
    for j in range(n_features):
        mu[j] = 0.0
        inv_sd[j] = 0.0
    for ii in range(start, stop):
        i = order[ii]
        for j in range(n_features):
            mu[j] += X[i, j]
    inv_m = 1.0 / m
    for j in range(n_features):
        mu[j] *= inv_m
    for ii in range(start, stop):
        i = order[ii]
        for j in range(n_features):
            dv = X[i, j] - mu[j]
            inv_sd[j] += dv * dv
    unbias = m / (m - 1.0)
    for j in range(n_features):
        var = inv_sd[j] * inv_m
        bn_mean[j] = (1.0 - bn_momentum) * bn_mean[j] + bn_momentum * mu[j]
        bn_var[j] = (1.0 - bn_momentum) * bn_var[j] + bn_momentum * var * unbias
        inv_sd[j] = 1.0 / math.sqrt(var + bn_eps)


@njit(fastmath=FASTMATH, cache=True)
def epoch_batch(X, y, sw, order, batch_size, theta, fit_intercept,
                loss_code, eps, alpha_l2, alpha_l1,
                clip_value, clip_norm,
                opt_code, hp, state, kstep,
                sched_code, sp, sched_unit, t_updates, epoch,
                average, avg,
                batch_norm, bn_momentum, bn_eps, bn_mean, bn_var,
                g, mu, inv_sd, weff, out):
    """One epoch of minibatch training with an arbitrary optimizer.

    ``theta`` holds ``(w_1..w_d, b)``; ``state`` the optimizer state (rows x (d+1));
    ``kstep[0]`` the optimizer's step count; ``avg`` the averaged parameters; ``g``,
    ``mu``, ``inv_sd`` and ``weff`` are work arrays of length ``d + 1``.
    ``t_updates`` counts the updates made before this epoch.
    """
    n_features = X.shape[1]
    n_rows = order.shape[0]
    n_params = n_features + 1 if fit_intercept else n_features
    obj = 0.0
    wloss = 0.0
    wsum = 0.0
    gsum = 0.0
    n_updates = 0
    start = 0
    while start < n_rows:
        stop = start + batch_size
        if stop > n_rows:
            stop = n_rows
        m = stop - start
        if sched_unit == _r.UNIT_EPOCH:
            lr = lr_at(sched_code, sp, epoch)
        else:
            lr = lr_at(sched_code, sp, t_updates)
        if n_updates == 0:
            out[4] = lr
        # effective weights on the raw features (batch norm folded in)
        b_eff = theta[n_features]
        if batch_norm:
            _batch_norm_stats(X, order, start, stop, bn_mean, bn_var, bn_momentum,
                              bn_eps, mu, inv_sd)
            # two loops: a reduction fused with array writes gets a runtime alias
            # check under `reassoc`, whose two versions sum in different orders,
            # making results depend on memory addresses
            for j in range(n_features):
                weff[j] = theta[j] * inv_sd[j]
            for j in range(n_features):
                b_eff -= weff[j] * mu[j]
        else:
            for j in range(n_features):
                weff[j] = theta[j]
        # penalty value (for the objective) from the weights before the update
        pen = 0.0
        if alpha_l2 != 0.0 or alpha_l1 != 0.0:
            sq = 0.0
            l1 = 0.0
            for j in range(n_features):
                sq += theta[j] * theta[j]
                l1 += abs(theta[j])
            pen = 0.5 * alpha_l2 * sq + alpha_l1 * l1
        for j in range(n_features + 1):
            g[j] = 0.0
        gb = 0.0
        for ii in range(start, stop):
            i = order[ii]
            p = b_eff
            for j in range(n_features):
                p += weff[j] * X[i, j]
            yi = y[i]
            s = sw[i]
            lv = loss_value(loss_code, p, yi, eps)
            obj += lv + pen
            wloss += s * lv
            wsum += s
            d = s * clip_dloss(loss_dloss(loss_code, p, yi, eps))
            if d != 0.0:
                for j in range(n_features):
                    g[j] += d * X[i, j]
                gb += d
        inv_m = 1.0 / m
        if batch_norm:
            for j in range(n_features):
                g[j] = (g[j] * inv_m - mu[j] * gb * inv_m) * inv_sd[j]
        else:
            for j in range(n_features):
                g[j] *= inv_m
        g[n_features] = gb * inv_m if fit_intercept else 0.0
        if alpha_l2 != 0.0 or alpha_l1 != 0.0:
            for j in range(n_features):
                wj = theta[j]
                sg = 1.0 if wj > 0.0 else (-1.0 if wj < 0.0 else 0.0)
                g[j] += alpha_l2 * wj + alpha_l1 * sg
        gsum += clip_gradient(g, n_params, clip_value, clip_norm)
        kstep[0] += 1
        opt_update(opt_code, hp, state, kstep[0], lr, theta, g, n_params, n_features)
        if average > 0.0 and average <= t_updates + 1.0:
            num = t_updates + 2.0 - average
            for j in range(n_features + 1):
                avg[j] += (theta[j] - avg[j]) / num
        t_updates += 1.0
        n_updates += 1
        start = stop
    out[0] = obj
    out[1] = wloss
    out[2] = wsum
    out[3] = gsum
    out[5] = n_updates
