"""Numba-compiled training loops for the CPU.

Two loops, each running one epoch over the rows listed in ``order`` for ``K`` linear
outputs at once (one model per output; ``K = 1`` for a plain regression or a binary
classifier, one per class for one-vs-rest, one per target for multi-output regression):

* :func:`epoch_plain` -- scikit-learn's per-sample algorithm (``_plain_sgd``), run for
  each output: a scaled weight vector ``w * wscale`` (L2 by rescaling), the cumulative
  truncated gradient for L1, and Bottou's lazy averaging (ASGD). Per step it costs
  O(nnz of the row) per output.
* :func:`epoch_batch` -- every other mode: minibatch / full batch / per-sample with a
  stateful optimizer, clipping, input batch normalization, and the multinomial
  (softmax) model whose ``K`` outputs share one loss.

``X`` is a 2-D array (C or Fortran order) or a CSR tuple ``(data, indices, indptr)``
(see :mod:`fastgd._kernels.rows`). Options are integer codes and float arrays (one
specialization per input kind and dtype); the loops never raise and never allocate;
the engine (:mod:`fastgd._engine`) turns what they report into errors and histories.
Outputs whose ``active[k]`` is 0 are skipped (they have converged). Per output, the
scalar results are added to ``out[k]``, which the caller zeroes at the start of an
epoch, so an epoch may run as several calls over consecutive parts of its rows (an
output's first update of the epoch is the one made while its update count is 0):

    out[k, 0] objective sum (loss + penalty, unweighted, as scikit-learn)
    out[k, 1] sample-weighted loss sum      out[k, 2] sum of sample weights
    out[k, 3] sum of pre-clip gradient norms out[k, 4] learning rate of the first update
    out[k, 5] number of updates made

Only ``reassoc`` and ``contract`` fast-math flags are used: they let LLVM vectorize the
dot products while keeping NaN/inf checks meaningful.
"""

import math

import numpy as np
from numba import types
from numba.extending import overload

from . import rules as _r
from ._jit import kernel
from .rows import (PREFETCH_DISTANCE, index_prefetch, row_add_norms, row_axpy, row_dot,
                   row_dot_sq, row_l1_truncate, sample_prefetch)

FASTMATH = {"reassoc", "contract"}

loss_value = kernel(inline="always", fastmath=FASTMATH)(_r.loss_value)
loss_dloss = kernel(inline="always", fastmath=FASTMATH)(_r.loss_dloss)
clip_dloss = kernel(inline="always", fastmath=FASTMATH)(_r.clip_dloss)
lr_at = kernel(fastmath=FASTMATH)(_r.lr_at)
opt_update = kernel(fastmath=FASTMATH)(_r.opt_update)
clip_gradient = kernel(fastmath=FASTMATH)(_r.clip_gradient)

# indices into the scalar state of epoch_plain (one row of ``sc`` per output)
S_INTERCEPT, S_WSCALE, S_SQNORM, S_L1NORM, S_AVG_A, S_AVG_B, S_AVG_INTERCEPT, S_U = range(8)
N_PLAIN_SCALARS = 8

PEN_NONE, PEN_L1, PEN_L2, PEN_ELASTICNET = 0, 1, 2, 3  # scikit-learn's codes


@kernel(fastmath=FASTMATH)
def _reset_wscale(w, aw, sc):
    """Fold ``wscale`` and the lazy average's a/b into the arrays (scikit-learn)."""
    n = w.shape[0]
    a = sc[S_AVG_A]
    inv_b = 1.0 / sc[S_AVG_B]
    if a != 0.0 or inv_b != 1.0:
        for j in range(n):
            aw[j] = (aw[j] + a * w[j]) * inv_b
    sc[S_AVG_A] = 0.0
    sc[S_AVG_B] = 1.0
    ws = sc[S_WSCALE]
    for j in range(n):
        w[j] *= ws
    sc[S_WSCALE] = 1.0


@kernel(fastmath=FASTMATH)
def finalize_plain(W, AW, SC):
    """Bring the scaled representation of every output back to plain arrays."""
    for k in range(W.shape[0]):
        _reset_wscale(W[k], AW[k], SC[k])


#: the ``lookahead`` of an epoch without one: the loops prefetch the row
#: ``PREFETCH_DISTANCE`` positions ahead in ``order`` (see ``epoch_plain``)
NO_LOOKAHEAD = np.empty(0, dtype=np.int64)


# scikit-learn's per-sample algorithm is compared to it to 1e-9 and some losses
# (perceptron, hinge) branch on exact values: no fused multiply-adds there
FASTMATH_PLAIN = {"reassoc"}


#: rows per block when several outputs share a per-sample epoch. Each output runs
#: over a block in turn, so that its scalar state stays in registers for the block
#: while the block's rows stay in cache for the next output.
PLAIN_BLOCK_ROWS = 32


@kernel(fastmath=FASTMATH_PLAIN, nogil=True)
def epoch_plain(X, Y, sw, cw, order, lookahead, W, AW, Q, SC, T, active, fit_intercept,
                intercept_decay, loss_code, eps, penalty, alpha, l1_ratio, average,
                sched_code, sp, sched_unit, epoch, eta_fixed, wscale_threshold, out):
    """One epoch of scikit-learn's per-sample SGD for each active output.

    ``W``/``AW``/``Q`` (weights, averaged weights, L1 ledger; shape (K, d)), ``SC``
    (scalars, see ``S_*``; shape (K, 8)) and ``T`` (scikit-learn's counter per output)
    are updated in place and carry over to the next epoch. ``cw[k]`` holds the
    positive/negative class weights of output k. ``eta_fixed[k] > 0`` overrides the
    schedule (the ``"adaptive"`` rate).

    ``lookahead`` only says which rows to prefetch: empty, the row
    ``PREFETCH_DISTANCE`` positions ahead in ``order`` (none when that is the next row
    in storage, which the hardware streams); otherwise the row ``lookahead[ii]`` at
    position ``ii`` when it is >= 0 (the block shuffle's next block, read in storage
    order: :func:`fastgd._kernels.shuffle.block_order`; dense C-ordered rows only).

    Outputs are independent (each has its own weights, scalars and counter and sees
    the rows in the same order), so the loop runs output by output over blocks of
    rows: an output's scalars live in registers, not in ``SC`` and ``out``, which the
    weight stores could alias and would force back to memory at every row. The
    weights are the same, bit for bit, as a row-by-row loop over all outputs.
    """
    n_out = W.shape[0]
    l2_scale_on = penalty == PEN_L2 or penalty == PEN_ELASTICNET
    l1_on = penalty == PEN_L1 or penalty == PEN_ELASTICNET
    if penalty == PEN_L2:
        l1_ratio = 0.0
    elif penalty == PEN_L1:
        l1_ratio = 1.0
    l2c = alpha * (1.0 - l1_ratio) if penalty != PEN_NONE else 0.0
    fi = 1.0 if fit_intercept else 0.0
    averaging = average > 0.0
    # a rate that cannot change within the call is computed once (the same value:
    # lr_at of a constant schedule without warm-up is sp[0] times 1.0)
    eta_same = sched_unit == _r.UNIT_EPOCH or (sched_code == _r.SCHED_CONSTANT
                                                and sp[1] <= 0.0)
    eta_call = lr_at(sched_code, sp, epoch if sched_unit == _r.UNIT_EPOCH else 0.0)
    n_rows = order.shape[0]
    streamed = lookahead.shape[0] > 0
    block = n_rows if n_out == 1 else PLAIN_BLOCK_ROWS
    if block < 1:
        block = 1
    for b0 in range(0, n_rows, block):
        b1 = b0 + block if b0 + block < n_rows else n_rows
        lead = True
        for k in range(n_out):
            if not active[k]:
                continue
            # the first output through a block prefetches its rows for the others
            pf = lead
            lead = False
            t = T[k]
            wscale = SC[k, S_WSCALE]
            intercept = SC[k, S_INTERCEPT]
            sqnorm = SC[k, S_SQNORM]
            l1norm = SC[k, S_L1NORM]
            avg_a = SC[k, S_AVG_A]
            avg_b = SC[k, S_AVG_B]
            avg_intercept = SC[k, S_AVG_INTERCEPT]
            u = SC[k, S_U]
            fixed = eta_fixed[k]
            cw_pos = cw[k, 0]
            cw_neg = cw[k, 1]
            first = out[k, 5] == 0.0
            o_obj = 0.0
            o_wloss = 0.0
            o_w = 0.0
            o_norm = 0.0
            for ii in range(b0, b1):
                i = order[ii]
                if pf and streamed:
                    ahead = lookahead[ii]
                    if ahead >= 0:
                        sample_prefetch(X, Y, sw, ahead)
                elif pf and ii + PREFETCH_DISTANCE < n_rows:
                    ahead = order[ii + PREFETCH_DISTANCE]
                    # rows read in storage order are streamed by the hardware
                    # prefetcher: software prefetches would only cost instructions
                    if ahead != i + PREFETCH_DISTANCE:
                        sample_prefetch(X, Y, sw, ahead)
                        if ii + 2 * PREFETCH_DISTANCE < n_rows:
                            index_prefetch(X, order[ii + 2 * PREFETCH_DISTANCE])
                s = sw[i]
                dot, xsq = row_dot_sq(X, i, W, k)
                dot *= wscale
                p = dot + intercept
                if fixed > 0.0:
                    eta = fixed
                elif eta_same:
                    eta = eta_call
                else:
                    eta = lr_at(sched_code, sp, t - 1.0)
                if first:
                    out[k, 4] = eta
                    first = False
                yi = Y[i, k]
                lv = loss_value(loss_code, p, yi, eps)
                obj = lv
                if penalty != PEN_NONE:
                    nrm = math.sqrt(sqnorm)
                    obj += alpha * ((1.0 - l1_ratio) * 0.5 * nrm * nrm + l1_ratio * l1norm)
                o_obj += obj
                o_wloss += s * lv
                o_w += s
                class_weight = cw_pos if yi > 0.0 else cw_neg
                dloss = clip_dloss(loss_dloss(loss_code, p, yi, eps))
                # pre-clip gradient norm of the loss + L2 part (what a clip would see)
                cg = class_weight * s * dloss
                g2 = cg * cg * (xsq + fi) + 2.0 * cg * l2c * dot + l2c * l2c * sqnorm
                o_norm += math.sqrt(g2) if g2 > 0.0 else 0.0
                update = -eta * dloss
                update *= class_weight * s
                if l2_scale_on:
                    f = 1.0 - ((1.0 - l1_ratio) * eta * alpha)
                    if f < 0.0:
                        f = 0.0
                    wscale *= f
                    sqnorm *= f * f
                    l1norm *= abs(f)
                    if wscale < wscale_threshold:
                        SC[k, S_WSCALE] = wscale
                        SC[k, S_AVG_A] = avg_a
                        SC[k, S_AVG_B] = avg_b
                        _reset_wscale(W[k], AW[k], SC[k])
                        wscale = SC[k, S_WSCALE]
                        avg_a = SC[k, S_AVG_A]
                        avg_b = SC[k, S_AVG_B]
                # the step in the scaled representation; one value with two uses
                # (weights and average): LLVM's reassociation sinks a division
                # that has a single use into the loop that uses it, x * (u / w) ->
                # (x * u) / w, one vector division per element (1.3x slower epochs)
                step = update / wscale
                if update != 0.0:
                    l2acc, l1acc = row_add_norms(X, i, step, W, k)
                    sqnorm = l2acc * (wscale * wscale)
                    l1norm = l1acc * wscale
                    if fit_intercept:
                        intercept += update * intercept_decay
                if averaging and average <= t:
                    num_iter = t - average + 1.0
                    mu = 1.0 / num_iter
                    row_axpy(X, i, avg_a * -step, AW, k)
                    if num_iter > 1.0:
                        avg_b /= (1.0 - mu)
                    avg_a += mu * avg_b * wscale
                    avg_intercept += (intercept - avg_intercept) / num_iter
                if l1_on:
                    u += l1_ratio * eta * alpha
                    row_l1_truncate(X, i, W, Q, k, u, wscale)
                t = t + 1.0
            T[k] = t
            SC[k, S_WSCALE] = wscale
            SC[k, S_INTERCEPT] = intercept
            SC[k, S_SQNORM] = sqnorm
            SC[k, S_L1NORM] = l1norm
            SC[k, S_AVG_A] = avg_a
            SC[k, S_AVG_B] = avg_b
            SC[k, S_AVG_INTERCEPT] = avg_intercept
            SC[k, S_U] = u
            out[k, 0] += o_obj
            out[k, 1] += o_wloss
            out[k, 2] += o_w
            out[k, 3] += o_norm
            out[k, 5] += b1 - b0


@kernel(fastmath=FASTMATH)
def _batch_norm_stats(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps,
                      mu, inv_sd):
    """Per-feature normalization of one batch (dense X); updates the running stats.

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


def batch_norm_batch(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps, mu,
                     inv_sd, batch_norm):
    """Batch statistics for batch norm when ``batch_norm`` (dense input only)."""


@overload(batch_norm_batch, inline="always")
def _ov_batch_norm_batch(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps,
                         mu, inv_sd, batch_norm):
    if isinstance(X, types.BaseTuple):
        # centering destroys sparsity: the estimators refuse batch_norm with CSR input
        def impl(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps, mu,
                 inv_sd, batch_norm):
            return None
        return impl

    def impl(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps, mu, inv_sd,
             batch_norm):
        if batch_norm:
            _batch_norm_stats(X, order, start, stop, bn_mean, bn_var, bn_momentum,
                              bn_eps, mu, inv_sd)
    return impl


@kernel(fastmath=FASTMATH, nogil=True)
def epoch_batch(X, Y, sw, cw, order, lookahead, batch_size, Theta, active,
                fit_intercept, loss_code, eps, multinomial, alpha_l2, alpha_l1,
                clip_value, clip_norm,
                opt_code, hp, State, kstep,
                sched_code, sp, sched_unit, Tupd, epoch, eta_fixed,
                average, Avg,
                batch_norm, bn_momentum, bn_eps, bn_mean, bn_var,
                G, mu, inv_sd, Weff, beff, P, out):
    """One epoch of minibatch training with an arbitrary optimizer, for K outputs.

    ``Theta[k]`` holds ``(w_1..w_d, b)`` of output k, ``State[k]`` its optimizer state
    (rows x (d+1)), ``kstep[k]`` its optimizer step count, ``Tupd[k]`` the updates made
    before this epoch, ``Avg[k]`` its averaged parameters. ``G``/``Weff`` (K x (d+1)),
    ``mu``/``inv_sd`` (d+1) and ``beff``/``P`` (K) are work arrays. With
    ``multinomial`` the K outputs are the logits of one softmax model: one loss, one
    clipping norm over all of them; ``Y`` is then one-hot.
    """
    n_out = Theta.shape[0]
    n_features = Theta.shape[1] - 1
    n_rows = order.shape[0]
    start = 0
    while start < n_rows:
        stop = start + batch_size
        if stop > n_rows:
            stop = n_rows
        m = stop - start
        batch_norm_batch(X, order, start, stop, bn_mean, bn_var, bn_momentum, bn_eps,
                         mu, inv_sd, batch_norm)
        for k in range(n_out):
            if not active[k]:
                continue
            theta = Theta[k]
            weff = Weff[k]
            b = theta[n_features]
            if batch_norm:
                # two loops: a reduction fused with array writes gets a runtime alias
                # check under `reassoc`, whose two versions sum in different orders,
                # making results depend on memory addresses
                for j in range(n_features):
                    weff[j] = theta[j] * inv_sd[j]
                for j in range(n_features):
                    b -= weff[j] * mu[j]
            else:
                for j in range(n_features):
                    weff[j] = theta[j]
            beff[k] = b
            g = G[k]
            for j in range(n_features + 1):
                g[j] = 0.0
        batch_grad(X, Y, sw, cw, order, lookahead, start, stop, active, loss_code, eps,
                   multinomial, Weff, beff, P, G, out)
        batch_step(G, m, Theta, active, fit_intercept, multinomial, alpha_l2, alpha_l1,
                   clip_value, clip_norm, opt_code, hp, State, kstep, sched_code, sp,
                   sched_unit, Tupd, epoch, eta_fixed, average, Avg, batch_norm, mu,
                   inv_sd, out)
        start = stop


@kernel(fastmath=FASTMATH, nogil=True)
def _one_output_grad(X, Y, sw, cw, order, lookahead, start, stop, active, loss_code,
                     eps, Weff, beff, G, out):
    """:func:`batch_grad` of a single output, its sums in registers.

    ``G`` and ``out`` could alias each other for the compiler, so sums kept there go
    back to memory at every row (1M x 100 float64, full batch: 44 -> 35 ms per epoch).
    Several outputs keep the row-by-row loop of :func:`batch_grad`: run output by
    output, their chains of dependent stores to one ``G[k]`` came out slower (three
    log-loss outputs: 46 -> 53 ms). A function of its own because ``row_dot`` inlined
    twice into one function trips a Numba IR check that warns at compile time.
    """
    if not active[0]:
        return
    n_features = G.shape[1] - 1
    n_rows = order.shape[0]
    # one loop for both kinds of prefetch: a branch between them inside the loop
    # slowed the full-batch epoch over 1M x 10 from 10-11 to 14-15 ms
    pf_rows = lookahead if lookahead.shape[0] > 0 else order
    shift = 0 if lookahead.shape[0] > 0 else PREFETCH_DISTANCE
    b = beff[0]
    cw_pos = cw[0, 0]
    cw_neg = cw[0, 1]
    o_obj = 0.0
    o_wloss = 0.0
    o_w = 0.0
    g_b = 0.0
    for ii in range(start, stop):
        if ii + 2 * shift < n_rows:
            index_prefetch(X, pf_rows[ii + 2 * shift])
        if ii + shift < n_rows:
            ahead = pf_rows[ii + shift]
            if ahead >= 0:
                sample_prefetch(X, Y, sw, ahead)
        i = order[ii]
        s = sw[i]
        p = b + row_dot(X, i, Weff, 0)
        yi = Y[i, 0]
        lv = loss_value(loss_code, p, yi, eps)
        o_obj += lv
        o_wloss += s * lv
        o_w += s
        class_weight = cw_pos if yi > 0.0 else cw_neg
        d = class_weight * s * clip_dloss(loss_dloss(loss_code, p, yi, eps))
        if d != 0.0:
            row_axpy(X, i, d, G, 0)
            g_b += d
    out[0, 0] += o_obj
    out[0, 1] += o_wloss
    out[0, 2] += o_w
    G[0, n_features] += g_b


@kernel(fastmath=FASTMATH, nogil=True)
def batch_grad(X, Y, sw, cw, order, lookahead, start, stop, active, loss_code, eps,
               multinomial, Weff, beff, P, G, out):
    """Add the loss gradient of rows ``order[start:stop]`` to ``G`` (K x (d+1), the
    intercept last; unscaled sums) and their losses to ``out[:, 0:3]``.

    ``lookahead``: the rows to prefetch, as in :func:`epoch_plain`.

    Predictions use ``Weff``/``beff`` (the weights as seen by the raw features). Each
    call only reads shared data, so disjoint row ranges can run in parallel threads
    with their own ``G``/``P``/``out``.

    With ``r_ik = c s_i l'(x_i . w_k + b_k, y_ik)`` (class weight, sample weight, loss
    derivative clipped as scikit-learn's; the softmax's ``p_ik - y_ik`` for the
    multinomial model), output k receives ``G[k, :d] += sum_i r_ik x_i`` and
    ``G[k, d] += sum_i r_ik``.
    """
    n_out = G.shape[0]
    n_features = G.shape[1] - 1
    n_rows = order.shape[0]
    if n_out == 1 and not multinomial:
        _one_output_grad(X, Y, sw, cw, order, lookahead, start, stop, active,
                         loss_code, eps, Weff, beff, G, out)
        return
    # one prefetch loop for both kinds, as in _one_output_grad
    pf_rows = lookahead if lookahead.shape[0] > 0 else order
    shift = 0 if lookahead.shape[0] > 0 else PREFETCH_DISTANCE
    for ii in range(start, stop):
        if ii + 2 * shift < n_rows:
            index_prefetch(X, pf_rows[ii + 2 * shift])
        if ii + shift < n_rows:
            ahead = pf_rows[ii + shift]
            if ahead >= 0:
                sample_prefetch(X, Y, sw, ahead)
        i = order[ii]
        s = sw[i]
        for k in range(n_out):
            if active[k]:
                P[k] = beff[k] + row_dot(X, i, Weff, k)
        if multinomial:
            # class weight of the sample's class (Y is one-hot)
            c_i = 0.0
            for k in range(n_out):
                c_i += Y[i, k] * cw[k, 0]
            pmax = P[0]
            for k in range(1, n_out):
                if P[k] > pmax:
                    pmax = P[k]
            z = 0.0
            for k in range(n_out):
                z += math.exp(P[k] - pmax)
            lse = pmax + math.log(z)
            lv = lse
            for k in range(n_out):
                lv -= Y[i, k] * P[k]
            out[0, 1] += s * lv
            out[0, 2] += s
            out[0, 0] += lv
            for k in range(n_out):
                d = c_i * s * (math.exp(P[k] - lse) - Y[i, k])
                if d != 0.0:
                    row_axpy(X, i, d, G, k)
                    G[k, n_features] += d
        else:
            for k in range(n_out):
                if not active[k]:
                    continue
                yi = Y[i, k]
                lv = loss_value(loss_code, P[k], yi, eps)
                out[k, 0] += lv
                out[k, 1] += s * lv
                out[k, 2] += s
                class_weight = cw[k, 0] if yi > 0.0 else cw[k, 1]
                d = class_weight * s * clip_dloss(loss_dloss(loss_code, P[k], yi, eps))
                if d != 0.0:
                    row_axpy(X, i, d, G, k)
                    G[k, n_features] += d


@kernel(fastmath=FASTMATH, nogil=True)
def batch_step(G, m, Theta, active, fit_intercept, multinomial, alpha_l2, alpha_l1,
               clip_value, clip_norm, opt_code, hp, State, kstep, sched_code, sp,
               sched_unit, Tupd, epoch, eta_fixed, average, Avg, batch_norm, mu, inv_sd,
               out):
    """One update from the summed gradient ``G`` of a batch of ``m`` rows: mean, batch
    norm chain rule, penalty, clipping, learning rate, optimizer step, averaging."""
    n_out = Theta.shape[0]
    n_features = Theta.shape[1] - 1
    n_params = n_features + 1 if fit_intercept else n_features
    inv_m = 1.0 / m
    for k in range(n_out):
        if not active[k]:
            continue
        theta = Theta[k]
        g = G[k]
        gb = g[n_features]
        if batch_norm:
            for j in range(n_features):
                g[j] = (g[j] * inv_m - mu[j] * gb * inv_m) * inv_sd[j]
        else:
            for j in range(n_features):
                g[j] *= inv_m
        g[n_features] = gb * inv_m if fit_intercept else 0.0
        if alpha_l2 != 0.0 or alpha_l1 != 0.0:
            sq = 0.0
            l1 = 0.0
            for j in range(n_features):
                wj = theta[j]
                sq += wj * wj
                l1 += abs(wj)
            pen = 0.5 * alpha_l2 * sq + alpha_l1 * l1
            out[0 if multinomial else k, 0] += m * pen
            for j in range(n_features):
                wj = theta[j]
                sg = 1.0 if wj > 0.0 else (-1.0 if wj < 0.0 else 0.0)
                g[j] += alpha_l2 * wj + alpha_l1 * sg
    if multinomial:
        # one model: clip its whole gradient (every output) as one vector; without an
        # intercept its slots hold 0 and change neither the norm nor the clipping
        out[0, 3] += clip_gradient(G.reshape(-1), G.size, clip_value, clip_norm)
    for k in range(n_out):
        if not active[k]:
            continue
        if not multinomial:
            out[k, 3] += clip_gradient(G[k], n_params, clip_value, clip_norm)
        if eta_fixed[k] > 0.0:
            lr = eta_fixed[k]
        elif sched_unit == _r.UNIT_EPOCH:
            lr = lr_at(sched_code, sp, epoch)
        else:
            lr = lr_at(sched_code, sp, Tupd[k])
        if out[k, 5] == 0.0:  # the output's first update of the epoch
            out[k, 4] = lr
        kstep[k] += 1
        theta = Theta[k]
        opt_update(opt_code, hp, State[k], kstep[k], lr, theta, G[k], n_params,
                   n_features)
        t_now = Tupd[k]
        if average > 0.0 and average <= t_now + 1.0:
            num = t_now + 2.0 - average
            avg = Avg[k]
            for j in range(n_features + 1):
                avg[j] += (theta[j] - avg[j]) / num
        Tupd[k] = t_now + 1.0
        out[k, 5] += 1.0
