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

The loops take the typed bundles of :mod:`fastgd._kernels.bundles`. ``X`` is a 2-D
array (C or Fortran order) or a CSR tuple ``(data, indices, indptr)`` (see
:mod:`fastgd._kernels.rows`). Options are integer codes and floats (one specialization
per input kind and dtype); the loops never raise and never allocate; the training
loop (:mod:`fastgd._loop`) turns what they report into errors and histories. Outputs
whose ``active[k]`` is 0 are skipped (they have converged). Per output, the epoch's
statistics are added to ``out[k, OUT_*]``, which the caller zeroes at the start of an
epoch, so an epoch may run as several calls over consecutive parts of its rows (an
output's first update of the epoch is the one made while its update count in ``out``
is 0).

Only ``reassoc`` and ``contract`` fast-math flags are used: they let LLVM vectorize the
dot products while keeping NaN/inf checks meaningful. The loops take their bundles'
fields one name per statement: in functions that inline the row helpers, Numba 0.68
can mix up a multi-name unpacking (``a, b = t.a, t.b``) and write to the wrong array.
"""

import math

import numpy as np
from numba import types
from numba.extending import overload

from . import rules
from ._jit import kernel
from .bundles import (GRAD_ROWS, OUT_LOSS, OUT_LR, OUT_NORM, OUT_OBJECTIVE,
                      OUT_UPDATES, OUT_WEIGHT, S_AVG_A, S_AVG_B, S_AVG_INTERCEPT,
                      S_INTERCEPT, S_L1NORM, S_SQNORM, S_U, S_WSCALE)
from .rows import (PREFETCH_DISTANCE, index_prefetch, row_add_norms, row_add_sqnorm,
                   row_axpy, row_dot, row_l1_truncate, row_sq, sample_prefetch)
from .tiles import row_dot_fixed, rows_axpy, rows_dot

FASTMATH = {"reassoc", "contract"}

loss_value = kernel(inline="always", fastmath=FASTMATH)(rules.loss_value)
loss_dloss = kernel(inline="always", fastmath=FASTMATH)(rules.loss_dloss)
clip_dloss = kernel(inline="always", fastmath=FASTMATH)(rules.clip_dloss)
lr_at = kernel(fastmath=FASTMATH)(rules.lr_at)
opt_update = kernel(fastmath=FASTMATH)(rules.opt_update)
clip_gradient = kernel(fastmath=FASTMATH)(rules.clip_gradient)

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


@kernel(inline="always", fastmath=FASTMATH_PLAIN)
def _asgd_step(X, i, AW, k, step, num_iter, wscale, intercept, avg_a, avg_b,
               avg_intercept):
    """Bottou's lazy averaging after the ``num_iter``-th averaged step (scikit-learn's
    ``add_average``): the average is ``(AW[k] + avg_a W[k]) / avg_b`` in the scaled
    representation; returns the new ``(avg_a, avg_b, avg_intercept)``."""
    mu = 1.0 / num_iter
    row_axpy(X, i, avg_a * -step, AW, k)
    if num_iter > 1.0:
        avg_b /= (1.0 - mu)
    avg_a += mu * avg_b * wscale
    avg_intercept += (intercept - avg_intercept) / num_iter
    return avg_a, avg_b, avg_intercept


#: rows per block when several outputs share a per-sample epoch. Each output runs
#: over a block in turn, so that its scalar state stays in registers for the block
#: while the block's rows stay in cache (L2) for the next output; a block is one call
#: per output, whose set-up a longer block spreads over more rows.
PLAIN_BLOCK_ROWS = 256


@kernel(fastmath=FASTMATH_PLAIN, nogil=True)
def epoch_plain(rows, order, lookahead, prog, st, ctl, out):
    """One epoch of scikit-learn's per-sample SGD for each active output.

    ``rows``: :class:`~fastgd._kernels.bundles.Rows`; ``prog``: the
    :class:`~fastgd._kernels.bundles.KernelProgram`; ``st``: the
    :class:`~fastgd._kernels.bundles.PlainState` (weights, averaged weights and L1
    ledger of shape (K, d), the scalars ``SC`` (K, 8) and the update counts), updated
    in place; ``ctl``: the :class:`~fastgd._kernels.bundles.EpochControl`
    (``eta_fixed[k] > 0`` overrides the schedule: the ``"adaptive"`` rate).
    scikit-learn's counter ``t`` of output k is ``updates[k] + 1``.

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
    n_out = st.W.shape[0]
    n_rows = order.shape[0]
    block = n_rows if n_out == 1 else PLAIN_BLOCK_ROWS
    if block < 1:
        block = 1
    # the first output through a block prefetches its rows for the others
    lead = 0
    while lead < n_out and not ctl.active[lead]:
        lead += 1
    # invscaling without warm-up divides by t ** power_t at every row: the outputs of a
    # block at the same count with the same power_t share one table of those powers
    # (the same calls, the same bits); a grid search's models all are
    shared = (n_out > 1 and prog.sched_unit != rules.UNIT_EPOCH
              and prog.sched_code == rules.SCHED_INVSCALING)
    powers = np.empty(block if shared else 0)
    # every output of a block reads the rows' squared norms from one table
    xsq = np.empty(block if n_out > 1 else 0)
    X = rows.X
    for b0 in range(0, n_rows, block):
        b1 = b0 + block if b0 + block < n_rows else n_rows
        if xsq.shape[0] > 0:
            for ii in range(b0, b1):
                xsq[ii - b0] = row_sq(X, order[ii])
        table_t = -1.0
        table_p = 0.0
        for k in range(n_out):
            if ctl.active[k]:
                use = (shared and ctl.eta_fixed[k] <= 0.0
                       and prog.sched_sp[k, 1] == 0.0)
                if use:
                    t_k = st.updates[k] + 1.0
                    p_k = prog.sched_sp[k, 3]
                    if t_k != table_t or p_k != table_p:
                        for r in range(b1 - b0):
                            powers[r] = math.pow(t_k + r, p_k)
                        table_t = t_k
                        table_p = p_k
                # (flags computed here, not constants: a constant argument would
                # make Numba compile the callee twice, for the literal and for bool)
                _plain_output_block(rows, order, lookahead, b0, b1, k, k == lead, prog,
                                    st, ctl, out, powers, use, xsq)


@kernel(fastmath=FASTMATH_PLAIN, nogil=True)
def _plain_output_block(rows, order, lookahead, b0, b1, k, pf, prog, st, ctl, out,
                        powers, use_powers, xsq_table):
    """Output ``k`` of :func:`epoch_plain` over positions ``b0:b1`` of ``order``; its
    scalar state and hyper-parameters in registers for the block. ``pf``: prefetch
    the rows ahead. ``use_powers``: the rate is ``eta0 / powers[ii - b0]``
    (invscaling, :func:`epoch_plain`'s table), what ``lr_at`` gives. A non-empty
    ``xsq_table``: the rows' ``||x_i||^2`` are ``xsq_table[ii - b0]``, what ``row_sq``
    gives."""
    X = rows.X
    Y = rows.Y
    sw = rows.sw
    W = st.W
    AW = st.AW
    SC = st.SC
    penalty = prog.penalty
    alpha = prog.alpha[k]
    average = prog.average
    loss_eps = prog.loss_eps[k]
    sp = prog.sched_sp[k]
    ycol = k % prog.n_targets
    fixed = ctl.eta_fixed[k]
    # a rate that cannot change within the call is computed once (the same value:
    # lr_at of a constant schedule without warm-up is sp[0] times 1.0)
    eta_same = prog.sched_unit == rules.UNIT_EPOCH or (
        prog.sched_code == rules.SCHED_CONSTANT and sp[1] <= 0.0)
    eta_call = lr_at(prog.sched_code, sp,
                     ctl.epoch if prog.sched_unit == rules.UNIT_EPOCH else 0.0)
    l2_scale_on = penalty == PEN_L2 or penalty == PEN_ELASTICNET
    l1_on = penalty == PEN_L1 or penalty == PEN_ELASTICNET
    l1_ratio = prog.l1_ratio[k]
    if penalty == PEN_L2:
        l1_ratio = 0.0
    elif penalty == PEN_L1:
        l1_ratio = 1.0
    l2c = alpha * (1.0 - l1_ratio) if penalty != PEN_NONE else 0.0
    fi = 1.0 if prog.fit_intercept else 0.0
    n_rows = order.shape[0]
    streamed = lookahead.shape[0] > 0
    t = st.updates[k] + 1.0
    wscale = SC[k, S_WSCALE]
    intercept = SC[k, S_INTERCEPT]
    sqnorm = SC[k, S_SQNORM]
    l1norm = SC[k, S_L1NORM]
    avg_a = SC[k, S_AVG_A]
    avg_b = SC[k, S_AVG_B]
    avg_intercept = SC[k, S_AVG_INTERCEPT]
    u = SC[k, S_U]
    cw_pos = rows.cw[k, 0]
    cw_neg = rows.cw[k, 1]
    first = out[k, OUT_UPDATES] == 0.0
    # the epoch's sums go on from where the output's previous block left them: the
    # same running sums, row by row, whatever the blocks (one model or many)
    o_obj = out[k, OUT_OBJECTIVE]
    o_wloss = out[k, OUT_LOSS]
    o_w = out[k, OUT_WEIGHT]
    o_norm = out[k, OUT_NORM]
    for ii in range(b0, b1):
        i = order[ii]
        if pf and streamed:
            ahead = lookahead[ii]
            if ahead >= 0:
                sample_prefetch(X, Y, sw, ahead)
        elif pf and ii + PREFETCH_DISTANCE < n_rows:
            ahead = order[ii + PREFETCH_DISTANCE]
            # rows read in storage order are streamed by the hardware prefetcher:
            # software prefetches would only cost instructions
            if ahead != i + PREFETCH_DISTANCE:
                sample_prefetch(X, Y, sw, ahead)
                if ii + 2 * PREFETCH_DISTANCE < n_rows:
                    index_prefetch(X, order[ii + 2 * PREFETCH_DISTANCE])
        s = sw[i]
        dot = row_dot(X, i, W, k)
        xsq = xsq_table[ii - b0] if xsq_table.shape[0] > 0 else row_sq(X, i)
        dot *= wscale
        p = dot + intercept
        if fixed > 0.0:
            eta = fixed
        elif eta_same:
            eta = eta_call
        elif use_powers:
            eta = sp[0] / powers[ii - b0]
        else:
            eta = lr_at(prog.sched_code, sp, t - 1.0)
        if first:
            out[k, OUT_LR] = eta
            first = False
        yi = Y[i, ycol]
        lv = loss_value(prog.loss_code, p, yi, loss_eps)
        obj = lv
        if penalty != PEN_NONE:
            nrm = math.sqrt(sqnorm)
            obj += alpha * ((1.0 - l1_ratio) * 0.5 * nrm * nrm + l1_ratio * l1norm)
        o_obj += obj
        o_wloss += s * lv
        o_w += s
        class_weight = cw_pos if yi > 0.0 else cw_neg
        dloss = clip_dloss(loss_dloss(prog.loss_code, p, yi, loss_eps))
        # pre-clip gradient norm of the loss + L2 part (what a clip would see)
        cg = class_weight * s * dloss
        g2 = cg * cg * (xsq + fi) + 2.0 * cg * l2c * dot + l2c * l2c * sqnorm
        o_norm += math.sqrt(g2) if g2 > 0.0 else 0.0
        update = -eta * dloss
        update *= class_weight * s
        wdot = dot  # x_i . w at the current scale (the tracked norm's update reads it)
        if l2_scale_on:
            f = 1.0 - ((1.0 - l1_ratio) * eta * alpha)
            if f < 0.0:
                f = 0.0
            wdot *= f
            wscale *= f
            sqnorm *= f * f
            l1norm *= abs(f)
            if wscale < prog.wscale_threshold:
                SC[k, S_WSCALE] = wscale
                SC[k, S_AVG_A] = avg_a
                SC[k, S_AVG_B] = avg_b
                _reset_wscale(W[k], AW[k], SC[k])
                wscale = SC[k, S_WSCALE]
                avg_a = SC[k, S_AVG_A]
                avg_b = SC[k, S_AVG_B]
        # the step in the scaled representation; one value with two uses (weights
        # and average): LLVM's reassociation sinks a division that has a single use
        # into the loop that uses it, one vector division per element
        step = update / wscale
        if update != 0.0:
            if l1_on:
                l2acc, l1acc = row_add_norms(X, i, step, W, k)
                l1norm = l1acc * wscale
                sqnorm = l2acc * (wscale * wscale)
            else:  # the objective reads the L1 norm only with an L1 part
                sqnorm = row_add_sqnorm(X, i, step, W, k, sqnorm, update, wdot, xsq,
                                        wscale)
            if prog.fit_intercept:
                intercept += update * prog.intercept_decay
        if average > 0.0 and average <= t:
            avg_a, avg_b, avg_intercept = _asgd_step(
                X, i, AW, k, step, t - average + 1.0, wscale, intercept, avg_a, avg_b,
                avg_intercept)
        if l1_on:
            u += l1_ratio * eta * alpha
            row_l1_truncate(X, i, W, st.Q, k, u, wscale)
        t = t + 1.0
    st.updates[k] = t - 1.0
    SC[k, S_WSCALE] = wscale
    SC[k, S_INTERCEPT] = intercept
    SC[k, S_SQNORM] = sqnorm
    SC[k, S_L1NORM] = l1norm
    SC[k, S_AVG_A] = avg_a
    SC[k, S_AVG_B] = avg_b
    SC[k, S_AVG_INTERCEPT] = avg_intercept
    SC[k, S_U] = u
    out[k, OUT_OBJECTIVE] = o_obj
    out[k, OUT_LOSS] = o_wloss
    out[k, OUT_WEIGHT] = o_w
    out[k, OUT_NORM] = o_norm
    out[k, OUT_UPDATES] += b1 - b0


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
def epoch_batch(rows, order, lookahead, prog, st, work, ctl, out):
    """One epoch of minibatch training with an arbitrary optimizer, for K outputs.

    ``st`` (:class:`~fastgd._kernels.bundles.BatchState`): ``theta[k]`` holds
    ``(w_1..w_d, b)`` of output k, ``opt_state[k]`` its optimizer state
    (rows x (d+1)), ``step[k]`` its optimizer step count, ``updates[k]`` the updates
    made before this epoch, ``avg[k]`` its averaged parameters; ``work``
    (:class:`~fastgd._kernels.bundles.BatchWork`) holds scratch arrays. With
    ``prog.multinomial`` the K outputs are the logits of one softmax model: one loss,
    one clipping norm over all of them; ``Y`` is then one-hot.
    """
    theta = st.theta
    n_out = theta.shape[0]
    n_features = theta.shape[1] - 1
    n_rows = order.shape[0]
    weff_all = work.weff
    mu = work.mu
    inv_sd = work.inv_sd
    # a range, not a counter from 0: a constant first value would make Numba compile
    # every callee twice (for the literal 0 and for int64)
    for start in range(0, n_rows, prog.batch_size):
        stop = start + prog.batch_size
        if stop > n_rows:
            stop = n_rows
        batch_norm_batch(rows.X, order, start, stop, st.bn_mean, st.bn_var,
                         prog.bn_momentum, prog.bn_eps, mu, inv_sd, prog.batch_norm)
        for k in range(n_out):
            if not ctl.active[k]:
                continue
            th = theta[k]
            weff = weff_all[k]
            b = th[n_features]
            if prog.batch_norm:
                # two loops: a reduction fused with array writes gets a runtime alias
                # check under `reassoc`, whose two versions sum in different orders,
                # making results depend on memory addresses
                for j in range(n_features):
                    weff[j] = th[j] * inv_sd[j]
                for j in range(n_features):
                    b -= weff[j] * mu[j]
            else:
                for j in range(n_features):
                    weff[j] = th[j]
            work.beff[k] = b
            g = work.G[k]
            for j in range(n_features + 1):
                g[j] = 0.0
        batch_grad(rows, order, lookahead, start, stop, prog, ctl.active, work, out)
        batch_step(stop - start, prog, st, work, ctl, out)


@kernel(fastmath=FASTMATH, nogil=True)
def _one_output_grad(rows, order, lookahead, start, stop, prog, work, out):
    """:func:`batch_grad` of a single output, its sums in registers.

    ``G`` and ``out`` could alias each other for the compiler, so sums kept there
    would go back to memory at every row. The residuals of ``GRAD_ROWS`` rows go to
    ``R`` and are then added to ``G`` by ``rows_axpy``, as for several outputs (a
    row-by-row update would reload each part of ``G`` right after storing it, which
    a partial store at the row's end makes slow).
    """
    X = rows.X
    Y = rows.Y
    sw = rows.sw
    G = work.G
    R = work.R
    idx = work.idx
    idx[0] = 0
    n_features = G.shape[1] - 1
    n_rows = order.shape[0]
    loss_code = prog.loss_code
    eps = prog.loss_eps[0]
    # one loop for both kinds of prefetch: a branch between them inside the loop
    # slowed narrow full-batch epochs measurably
    pf_rows = lookahead if lookahead.shape[0] > 0 else order
    shift = 0 if lookahead.shape[0] > 0 else PREFETCH_DISTANCE
    b = work.beff[0]
    weff = work.weff
    cw_pos = rows.cw[0, 0]
    cw_neg = rows.cw[0, 1]
    o_obj = 0.0
    o_wloss = 0.0
    o_w = 0.0
    g_b = 0.0
    for c0 in range(start, stop, GRAD_ROWS):
        c1 = c0 + GRAD_ROWS if c0 + GRAD_ROWS < stop else stop
        for ii in range(c0, c1):
            if ii + 2 * shift < n_rows:
                index_prefetch(X, pf_rows[ii + 2 * shift])
            if ii + shift < n_rows:
                ahead = pf_rows[ii + shift]
                if ahead >= 0:
                    sample_prefetch(X, Y, sw, ahead)
            i = order[ii]
            s = sw[i]
            p = b + row_dot_fixed(X, i, weff, 0)
            yi = Y[i, 0]
            lv = loss_value(loss_code, p, yi, eps)
            o_obj += lv
            o_wloss += s * lv
            o_w += s
            class_weight = cw_pos if yi > 0.0 else cw_neg
            d = class_weight * s * clip_dloss(loss_dloss(loss_code, p, yi, eps))
            R[0, ii - c0] = d
            if d != 0.0:
                g_b += d
        rows_axpy(X, order, c0, c1, R, G, idx, 1)
    out[0, OUT_OBJECTIVE] += o_obj
    out[0, OUT_LOSS] += o_wloss
    out[0, OUT_WEIGHT] += o_w
    G[0, n_features] += g_b


@kernel(fastmath=FASTMATH, nogil=True)
def batch_grad(rows, order, lookahead, start, stop, prog, active, work, out):
    """Add the loss gradient of rows ``order[start:stop]`` to ``work.G`` (K x (d+1),
    the intercept last; unscaled sums) and their losses to ``out``.

    ``lookahead``: the rows to prefetch, as in :func:`epoch_plain`.

    Predictions use ``work.weff``/``work.beff`` (the weights as seen by the raw
    features). Each call only reads shared data, so disjoint row ranges can run in
    parallel threads with their own ``G``/``pred``/``R``/``out``.

    With ``r_ik = c s_i l'(x_i . w_k + b_k, y_ik)`` (class weight, sample weight, loss
    derivative clipped as scikit-learn's; the softmax's ``p_ik - y_ik`` for the
    multinomial model), output k receives ``G[k, :d] += sum_i r_ik x_i`` and
    ``G[k, d] += sum_i r_ik``.
    """
    G = work.G
    n_out = G.shape[0]
    if n_out == 1 and not prog.multinomial:
        if active[0]:
            _one_output_grad(rows, order, lookahead, start, stop, prog, work, out)
        return
    X = rows.X
    Y = rows.Y
    sw = rows.sw
    cw = rows.cw
    n_features = G.shape[1] - 1
    n_rows = order.shape[0]
    pred = work.pred
    weff = work.weff
    beff = work.beff
    n_t = prog.n_targets
    # the rows' loss sums, from zero, added to ``out`` at the end: as the one-output
    # loop sums them, so that one model in a pass of many sums as it does alone
    acc = work.acc
    for k in range(n_out):
        for c in range(3):
            acc[k, c] = 0.0
    idx = work.idx
    n_idx = 0
    for k in range(n_out):
        if active[k]:
            idx[n_idx] = k
            n_idx += 1
    # GRAD_ROWS rows at a time: their predictions by tiles of rows and outputs into R
    # (rows_dot), their residuals r_ik over those, then their sum into G (rows_axpy);
    # the rows of the next chunk are prefetched while this one is computed
    pf_rows = lookahead if lookahead.shape[0] > 0 else order
    shift = 0 if lookahead.shape[0] > 0 else GRAD_ROWS
    R = work.R
    for c0 in range(start, stop, GRAD_ROWS):
        c1 = c0 + GRAD_ROWS if c0 + GRAD_ROWS < stop else stop
        for ii in range(c0, c1):
            if ii + 2 * shift < n_rows:
                index_prefetch(X, pf_rows[ii + 2 * shift])
            if ii + shift < n_rows:
                ahead = pf_rows[ii + shift]
                if ahead >= 0:
                    sample_prefetch(X, Y, sw, ahead)
        rows_dot(X, order, c0, c1, weff, idx, n_idx, R)
        for ii in range(c0, c1):
            i = order[ii]
            s = sw[i]
            col = ii - c0
            if prog.multinomial:
                for k0 in range(0, n_out, n_t):
                    if active[k0]:
                        for k in range(k0, k0 + n_t):
                            pred[k] = beff[k] + R[k, col]
                        _softmax_row(Y, i, col, s, k0, n_t, cw, pred, R, G, acc)
                continue
            # output k = g * n_t + j predicts target column j (several models of the
            # same targets in one pass: fastgd's CV estimators)
            k = 0
            for _ in range(n_out // n_t):
                for j in range(n_t):
                    if active[k]:
                        yi = Y[i, j]
                        eps = prog.loss_eps[k]
                        p = beff[k] + R[k, col]
                        lv = loss_value(prog.loss_code, p, yi, eps)
                        acc[k, OUT_OBJECTIVE] += lv
                        acc[k, OUT_LOSS] += s * lv
                        acc[k, OUT_WEIGHT] += s
                        class_weight = cw[k, 0] if yi > 0.0 else cw[k, 1]
                        d = class_weight * s * clip_dloss(
                            loss_dloss(prog.loss_code, p, yi, eps))
                        R[k, col] = d
                        if d != 0.0:
                            G[k, n_features] += d
                    k += 1
        rows_axpy(X, order, c0, c1, R, G, idx, n_idx)
    for k in range(n_out):
        for c in range(3):
            out[k, c] += acc[k, c]


@kernel(fastmath=FASTMATH, nogil=True)
def _softmax_row(Y, i, col, s, k0, n_t, cw, pred, R, G, out):
    """Row ``i`` of the multinomial model whose ``n_t`` logits are outputs
    ``k0 .. k0 + n_t - 1`` (predictions in ``pred``): its loss sums to ``out[k0]``
    (columns ``OUT_OBJECTIVE``, ``OUT_LOSS``, ``OUT_WEIGHT``), its residuals to column
    ``col`` of ``R`` and their sum to the intercepts' column of ``G``."""
    n_features = G.shape[1] - 1
    # class weight of the sample's class (Y is one-hot)
    c_i = 0.0
    for j in range(n_t):
        c_i += Y[i, j] * cw[k0 + j, 0]
    pmax = pred[k0]
    for j in range(1, n_t):
        if pred[k0 + j] > pmax:
            pmax = pred[k0 + j]
    z = 0.0
    for j in range(n_t):
        z += math.exp(pred[k0 + j] - pmax)
    lse = pmax + math.log(z)
    lv = lse
    for j in range(n_t):
        lv -= Y[i, j] * pred[k0 + j]
    out[k0, OUT_LOSS] += s * lv
    out[k0, OUT_WEIGHT] += s
    out[k0, OUT_OBJECTIVE] += lv
    for j in range(n_t):
        d = c_i * s * (math.exp(pred[k0 + j] - lse) - Y[i, j])
        R[k0 + j, col] = d
        if d != 0.0:
            G[k0 + j, n_features] += d


@kernel(fastmath=FASTMATH, nogil=True)
def batch_step(m, prog, st, work, ctl, out):
    """One update from the summed gradient ``work.G`` of a batch of ``m`` rows: mean,
    batch norm chain rule, penalty, clipping, learning rate, optimizer step,
    averaging. Hyper-parameters are per output (``prog.alpha_l2[k]``, ...)."""
    theta_all = st.theta
    G = work.G
    mu = work.mu
    inv_sd = work.inv_sd
    n_out = theta_all.shape[0]
    n_features = theta_all.shape[1] - 1
    n_params = n_features + 1 if prog.fit_intercept else n_features
    n_t = prog.n_targets
    active = ctl.active
    inv_m = 1.0 / m
    for k in range(n_out):
        if not active[k]:
            continue
        theta = theta_all[k]
        g = G[k]
        gb = g[n_features]
        if prog.batch_norm:
            for j in range(n_features):
                g[j] = (g[j] * inv_m - mu[j] * gb * inv_m) * inv_sd[j]
        else:
            for j in range(n_features):
                g[j] *= inv_m
        g[n_features] = gb * inv_m if prog.fit_intercept else 0.0
        alpha_l2 = prog.alpha_l2[k]
        alpha_l1 = prog.alpha_l1[k]
        if alpha_l2 != 0.0 or alpha_l1 != 0.0:
            sq = 0.0
            l1 = 0.0
            for j in range(n_features):
                wj = theta[j]
                sq += wj * wj
                l1 += abs(wj)
            pen = 0.5 * alpha_l2 * sq + alpha_l1 * l1
            # a multinomial model's penalty goes to its first output's objective
            out[k - k % n_t if prog.multinomial else k, OUT_OBJECTIVE] += m * pen
            for j in range(n_features):
                wj = theta[j]
                sg = 1.0 if wj > 0.0 else (-1.0 if wj < 0.0 else 0.0)
                g[j] += alpha_l2 * wj + alpha_l1 * sg
    if prog.multinomial:
        # one model: clip its whole gradient (every output) as one vector; without an
        # intercept its slots hold 0 and change neither the norm nor the clipping
        for k0 in range(0, n_out, n_t):
            if active[k0]:
                block = G[k0:k0 + n_t]
                out[k0, OUT_NORM] += clip_gradient(block.reshape(-1), block.size,
                                                   prog.clip_value[k0],
                                                   prog.clip_norm[k0])
    for k in range(n_out):
        if not active[k]:
            continue
        if not prog.multinomial:
            out[k, OUT_NORM] += clip_gradient(G[k], n_params, prog.clip_value[k],
                                              prog.clip_norm[k])
        if ctl.eta_fixed[k] > 0.0:
            lr = ctl.eta_fixed[k]
        elif prog.sched_unit == rules.UNIT_EPOCH:
            lr = lr_at(prog.sched_code, prog.sched_sp[k], ctl.epoch)
        else:
            lr = lr_at(prog.sched_code, prog.sched_sp[k], st.updates[k])
        if out[k, OUT_UPDATES] == 0.0:  # the output's first update of the epoch
            out[k, OUT_LR] = lr
        st.step[k] += 1
        theta = theta_all[k]
        opt_update(prog.opt_code, prog.opt_hp[k], st.opt_state[k], st.step[k], lr, theta,
                   G[k], n_params, n_features)
        t_now = st.updates[k]
        if prog.average > 0.0 and prog.average <= t_now + 1.0:
            num = t_now + 2.0 - prog.average
            avg = st.avg[k]
            for j in range(n_features + 1):
                avg[j] += (theta[j] - avg[j]) / num
        st.updates[k] = t_now + 1.0
        out[k, OUT_UPDATES] += 1.0
