"""Device functions of the CUDA backend (``cuda.jit(device=True)``) and its settings.

The kernels of :mod:`fastgd._kernels.cuda` are thin loops over these. Arguments are
the buffers of :mod:`fastgd._kernels.cuda_layout`: ``X`` (n, d), ``YW`` (n, K+1:
targets then sample weight), ``order`` (the epoch's row order), ``M``/``V``/``F``/``C``
(state, per-output numbers, per-feature vectors, float options), ``I`` (int options),
``Gp`` (slot partial sums), ``Ps`` (batch-norm slot sums) and ``Scr`` (scratch of the
general gradient path).

Sums
----
A batch's rows are cut into slots (:func:`fastgd._kernels.cuda_layout.slot_rows`),
each summed by one block into ``Gp[slot]``; the step adds the slots in slot order.
Within a slot every sum has a fixed order, set by the settings below, so a fit is
deterministic run to run and identical in every execution mode; no atomics anywhere.
The CPU loop adds rows one by one, so GPU and CPU agree to rounding, not bitwise.

Gradient paths
--------------
* :func:`grad_regs`, one output (no multinomial) and ``d <= LW * QMAX`` features: a
  warp per row, lane ``l`` holding features ``l, l + LW, ...`` in registers. The warp
  reads a row once, coalesced (consecutive lanes, consecutive addresses), reduces the
  prediction with warp shuffles, and every lane adds ``dl/dp * x`` to its features'
  sums in registers; at the slot's end the block adds its warps' sums in warp order.
  Each warp reads ``U`` rows before using them, to keep more loads in flight.
* :func:`grad_tile`, any other model: the slot is cut in tiles of ``TPB`` rows; a
  warp per row computes the K predictions (coalesced reads, shuffles), a thread per
  row the losses and ``dl/dp``, then a thread per (output, feature) sums the tile's
  rows (coalesced again, the tile still in L1).

Arithmetic is float64: float32 ``X`` is read as float32 (half the bytes) and promoted
in registers, as on the CPU.

Settings (environment variables read at import; kernels compile them in)
----------------------------------------------------------------------
``TPB`` (``FASTGD_CUDA_TPB``, default 256)
    Threads per block, a power of two up to 512 (static shared memory stays under
    48 KiB). CI's simulator runs use 8 so that multi-slot, multi-tile and partial
    paths run on tiny data; a block smaller than a warp is one partial warp of ``TPB``
    lanes (shuffle masks name exactly those lanes).
``MAX_BLOCKS`` (``FASTGD_CUDA_MAX_BLOCKS``, default 1024)
    Most slots of a batch (and blocks of a step-mode gradient launch): part of the
    summation order, hence of the results (device independent).
"""

import math
import os

import numpy as np
from numba import config, cuda

from . import rules as _r
from .counter import permuted_index
from .cuda_layout import (C_AVERAGE, C_BN_EPS, C_BN_MOMENTUM, C_EPOCH, F_BN_MEAN,
                          F_BN_VAR, F_INV_SD, F_MU, GP_EXTRA, I_BATCH, I_BN,
                          I_FIT_INTERCEPT, I_HALF_BITS, I_KEYS, I_LOSS, I_MAX_SLOTS,
                          I_MULTI, I_NT, I_OPT, I_SCHED, I_SLOT_MIN, I_UNIT, I_V_SP,
                          M_AVG, M_G, M_STATE, M_THETA, M_WEFF, OUT_LR, OUT_N, OUT_NORM,
                          OUT_OBJ, V_ACTIVE, V_CLIP_NORM, V_CLIP_VALUE, V_CWNEG,
                          V_CWPOS, V_EPS, V_ETA, V_HP, V_KSTEP, V_L1, V_L2, V_OUT,
                          V_TUPD, slot_rows)

SIMULATOR = bool(config.ENABLE_CUDASIM)
TPB = int(os.environ.get("FASTGD_CUDA_TPB", "256"))
MAX_BLOCKS = int(os.environ.get("FASTGD_CUDA_MAX_BLOCKS", "1024"))
if TPB < 1 or TPB > 512 or TPB & (TPB - 1) or MAX_BLOCKS < 1:
    raise ValueError(
        "FASTGD_CUDA_TPB must be a power of two from 1 to 512 and FASTGD_CUDA_MAX_BLOCKS "
        f"a positive integer; got {TPB} and {MAX_BLOCKS}."
    )
#: lanes of a warp as the kernels use it (a smaller block is one partial warp)
LW = min(32, TPB)
#: warps per block
NW = TPB // LW
#: shuffle mask: exactly the warp's lanes (inactive lanes in a mask are undefined)
MASK = (1 << LW) - 1
#: features per lane held in registers: grad_regs takes d <= LW * QMAX
QMAX = 4
#: rows a warp of grad_regs reads before using them
U = 4
UQ = U * QMAX
#: rows of the smallest slot: one group of U rows per warp
SLOT_MIN = NW * U
#: register cap of the kernels that hold a gradient path (``FASTGD_CUDA_MAX_REGISTERS``,
#: 0: none): 64 lets four 256-thread blocks share a multiprocessor, keeping more rows
#: in flight; without a cap the compiler uses 80-90 for the register path (two blocks)
MAX_REGISTERS = int(os.environ.get("FASTGD_CUDA_MAX_REGISTERS", "64"))
GS_SHAPE = (NW, LW * QMAX)
OS_SHAPE = (NW, 4)

if SIMULATOR:
    from . import _cudasim

    _cudasim.install()

_dev = cuda.jit(device=True)
loss_value = _dev(_r.loss_value)
loss_dloss = _dev(_r.loss_dloss)
clip_dloss = _dev(_r.clip_dloss)
lr_at = _dev(_r.lr_at)
opt_update = _dev(_r.opt_update)
slot_rows_dev = _dev(slot_rows)
permuted_index_dev = _dev(permuted_index)


@cuda.jit(device=True)
def joint_outputs(I):
    """Outputs per model: ``I_NT`` for the multinomial model (one loss, objective and
    clipped vector for its outputs), else 1."""
    return I[I_NT] if I[I_MULTI] != 0 else 1


def regs_path(n_outputs, n_features, multinomial):
    """Whether :func:`grad_regs` computes this model's gradient."""
    return n_outputs == 1 and not multinomial and n_features <= LW * QMAX


# ------------------------------------------------------------------ reductions
@cuda.jit(device=True)
def warp_sum(v):
    """Sum of ``v`` over the warp's lanes, in every lane (xor butterfly: each lane
    adds the same pairs, so every lane holds the same bits)."""
    off = LW // 2
    while off > 0:
        v += cuda.shfl_xor_sync(MASK, v, off)
        off //= 2
    return v


@cuda.jit(device=True)
def block_sum(red, v):
    """Sum of ``v`` over the block (warp sums added in warp order), in every thread.

    Every thread of the block must call it; ``red`` is shared, at least ``NW`` long.
    """
    t = cuda.threadIdx.x
    v = warp_sum(v)
    if t % LW == 0:
        red[t // LW] = v
    cuda.syncthreads()
    tot = 0.0
    for w in range(NW):
        tot += red[w]
    cuda.syncthreads()
    return tot


@cuda.jit(device=True)
def batch_geometry(order, I, start):
    """``(m, rows per slot, slots)`` of the batch starting at ``start``."""
    n = order.shape[0]
    m = min(I[I_BATCH], n - start)
    rows = slot_rows_dev(m, I[I_SLOT_MIN], I[I_MAX_SLOTS])
    return m, rows, (m + rows - 1) // rows


# --------------------------------------------------------------- gradient
@cuda.jit(device=True)
def grad_regs(X, YW, order, W, V, I, Gp, s, first, nr):
    """``Gp[s, 0]``: gradient and loss sums of rows ``order[first:first + nr]`` of a
    one-output model with ``d <= LW * QMAX`` (module notes: the register path)."""
    gs = cuda.shared.array(GS_SHAPE, np.float64)
    os_ = cuda.shared.array(OS_SHAPE, np.float64)
    t = cuda.threadIdx.x
    lane = t % LW
    w = t // LW
    d = X.shape[1]
    wq = cuda.local.array(QMAX, np.float64)
    acc = cuda.local.array(QMAX, np.float64)
    cols = cuda.local.array(QMAX, np.uint64)
    ps = cuda.local.array(U, np.float64)
    for q in range(QMAX):
        # lanes past the last feature read it again (no branch in the loads) with a
        # zero weight; their sums are never written out. Unsigned indices: no
        # negative-index wraparound to compute (fewer registers)
        j = lane + LW * q
        cols[q] = np.uint64(min(j, d - 1))
        wq[q] = W[0, j] if j < d else 0.0
        acc[q] = 0.0
    bias = W[0, d]
    code = I[I_LOSS]
    eps = V[0, V_EPS]
    gb = 0.0
    o0 = 0.0
    o1 = 0.0
    o2 = 0.0
    for g0 in range(w * U, nr, NW * U):  # this warp's groups of U rows
        n_u = min(U, nr - g0)  # the same in every lane: no divergence
        for u in range(U):  # U rows' loads in flight at once
            p = 0.0
            if u < n_u:
                i = np.uint64(order[first + g0 + u])
                for q in range(QMAX):
                    p += X[i, cols[q]] * wq[q]
            ps[u] = p
        for u in range(U):
            if u < n_u:
                ps[u] = warp_sum(ps[u]) + bias
        for u in range(U):
            if u < n_u:
                i = np.uint64(order[first + g0 + u])
                y = YW[i, 0]
                sv = YW[i, 1]
                lv = loss_value(code, ps[u], y, eps)
                cwk = V[0, V_CWPOS] if y > 0.0 else V[0, V_CWNEG]
                r = cwk * sv * clip_dloss(loss_dloss(code, ps[u], y, eps))
                if r != 0.0:
                    for q in range(QMAX):  # the row again, from L1
                        acc[q] += r * X[i, cols[q]]
                    gb += r
                o0 += lv
                o1 += sv * lv
                o2 += sv
    for q in range(QMAX):
        gs[w, lane + LW * q] = acc[q]
    if lane == 0:
        os_[w, 0] = gb
        os_[w, 1] = o0
        os_[w, 2] = o1
        os_[w, 3] = o2
    cuda.syncthreads()
    for c in range(t, d + 1 + GP_EXTRA, TPB):
        tot = 0.0
        for ww in range(NW):
            tot += gs[ww, c] if c < d else os_[ww, c - d]
        Gp[s, 0, c] = tot
    cuda.syncthreads()


@cuda.jit(device=True)
def tile_predict(X, W, V, nc, ish, Scr):
    """``Scr[b, r, k, 0]``: prediction of output k for tile row r (a warp per row)."""
    t = cuda.threadIdx.x
    lane = t % LW
    b = cuda.blockIdx.x
    n_out = W.shape[0]
    d = X.shape[1]
    for r in range(t // LW, nc, NW):
        i = ish[r]
        for k in range(n_out):
            if V[k, V_ACTIVE] != 0.0:
                p = 0.0
                for j in range(lane, d, LW):
                    p += X[i, j] * W[k, j]
                p = warp_sum(p)
                if lane == 0:
                    Scr[b, r, k, 0] = p + W[k, d]


@cuda.jit(device=True)
def tile_loss(YW, V, I, i, sv, Scr, r):
    """Row r of the tile (data row ``i``): ``Scr[b, r, k, 1]`` the loss and
    ``Scr[b, r, k, 0]`` the weighted ``dl/dp`` (``cpu.batch_grad``); a multinomial
    model's loss goes to its first output's ``Scr[b, r, k0, 1]``."""
    b = cuda.blockIdx.x
    n_out = V.shape[0]
    nt = I[I_NT]
    code = I[I_LOSS]
    if I[I_MULTI] != 0:
        for k0 in range(0, n_out, nt):  # one model per nt outputs
            if V[k0, V_ACTIVE] != 0.0:
                softmax_loss(YW, V, i, sv, Scr, r, k0, nt)
        return
    for k in range(n_out):
        if V[k, V_ACTIVE] != 0.0:
            y = YW[i, k % nt]
            p = Scr[b, r, k, 0]
            eps = V[k, V_EPS]
            Scr[b, r, k, 1] = loss_value(code, p, y, eps)
            cwk = V[k, V_CWPOS] if y > 0.0 else V[k, V_CWNEG]
            Scr[b, r, k, 0] = cwk * sv * clip_dloss(loss_dloss(code, p, y, eps))


@cuda.jit(device=True)
def softmax_loss(YW, V, i, sv, Scr, r, k0, nt):
    """:func:`tile_loss` of the multinomial model of outputs ``k0 .. k0 + nt - 1``."""
    b = cuda.blockIdx.x
    c_i = 0.0
    for c in range(nt):
        c_i += YW[i, c] * V[k0 + c, V_CWPOS]
    pmax = Scr[b, r, k0, 0]
    for c in range(1, nt):
        if Scr[b, r, k0 + c, 0] > pmax:
            pmax = Scr[b, r, k0 + c, 0]
    z = 0.0
    for c in range(nt):
        z += math.exp(Scr[b, r, k0 + c, 0] - pmax)
    lse = pmax + math.log(z)
    lv = lse
    for c in range(nt):
        lv -= YW[i, c] * Scr[b, r, k0 + c, 0]
    Scr[b, r, k0, 1] = lv
    for c in range(nt):
        Scr[b, r, k0 + c, 0] = c_i * sv * (math.exp(Scr[b, r, k0 + c, 0] - lse)
                                           - YW[i, c])


@cuda.jit(device=True)
def tile_accumulate(X, V, I, Gp, s, nc, ish, ssh, Scr):
    """Add the tile's loss sums and ``sum_r dl/dp x_r`` to ``Gp[s]`` (a thread per
    output for the losses, per (output, feature) for the gradient)."""
    t = cuda.threadIdx.x
    b = cuda.blockIdx.x
    n_out = V.shape[0]
    d = X.shape[1]
    d1 = d + 1
    step_k = joint_outputs(I)
    for k in range(t * step_k, n_out, TPB * step_k):
        if V[k, V_ACTIVE] != 0.0:
            o0 = 0.0
            o1 = 0.0
            o2 = 0.0
            for r in range(nc):
                lv = Scr[b, r, k, 1]
                o0 += lv
                o1 += ssh[r] * lv
                o2 += ssh[r]
            Gp[s, k, d1] += o0
            Gp[s, k, d1 + 1] += o1
            Gp[s, k, d1 + 2] += o2
    for idx in range(t, n_out * d1, TPB):
        k = idx // d1
        j = idx - k * d1
        if V[k, V_ACTIVE] != 0.0:
            acc = 0.0
            for r in range(nc):
                dv = Scr[b, r, k, 0]
                if dv != 0.0:
                    acc += dv * (X[ish[r], j] if j < d else 1.0)
            Gp[s, k, j] += acc


@cuda.jit(device=True)
def grad_tile(X, YW, order, W, V, I, Gp, Scr, s, first, nr):
    """``Gp[s]``: gradient and loss sums of rows ``order[first:first + nr]``, any
    model (module notes: the tile path)."""
    ish = cuda.shared.array(TPB, np.int64)
    ssh = cuda.shared.array(TPB, np.float64)
    t = cuda.threadIdx.x
    n_out = W.shape[0]
    ncol = W.shape[1] + GP_EXTRA
    for c in range(t, n_out * ncol, TPB):
        Gp[s, c // ncol, c % ncol] = 0.0
    for c0 in range(0, nr, TPB):
        nc = min(TPB, nr - c0)
        if t < nc:
            i = order[first + c0 + t]
            ish[t] = i
            ssh[t] = YW[i, I[I_NT]]
        cuda.syncthreads()
        tile_predict(X, W, V, nc, ish, Scr)
        cuda.syncthreads()
        if t < nc:
            tile_loss(YW, V, I, ish[t], ssh[t], Scr, t)
        cuda.syncthreads()
        tile_accumulate(X, V, I, Gp, s, nc, ish, ssh, Scr)
        cuda.syncthreads()


@cuda.jit(device=True)
def grad_slots(X, YW, order, M, V, I, Gp, Scr, start, regs):
    """This block's slots of the batch at ``start``: slots ``blockIdx, blockIdx +
    gridDim, ...`` (one per block in step mode, all in one block when persistent).

    ``regs`` (a compile-time constant of the calling kernel, see :func:`regs_path`)
    picks the path, so that a kernel holds one path's code and registers only.
    """
    m, rows, n_sl = batch_geometry(order, I, start)
    W = M[M_WEFF] if I[I_BN] != 0 else M[M_THETA]
    t = cuda.threadIdx.x
    for s in range(cuda.blockIdx.x, n_sl, cuda.gridDim.x):
        r0 = s * rows
        nr = min(rows, m - r0)
        if not regs:
            grad_tile(X, YW, order, W, V, I, Gp, Scr, s, start + r0, nr)
        elif V[0, V_ACTIVE] != 0.0:
            grad_regs(X, YW, order, W, V, I, Gp, s, start + r0, nr)
        else:
            for c in range(t, Gp.shape[2], TPB):
                Gp[s, 0, c] = 0.0


# ------------------------------------------------------------- batch norm
@cuda.jit(device=True)
def bn_slots(X, order, F, I, Ps, start, second):
    """``Ps[slot, j]``: this block's slots' sums of ``x_j`` (``second``: of
    ``(x_j - mu_j)**2``); a thread per feature, coalesced, no synchronisation."""
    m, rows, n_sl = batch_geometry(order, I, start)
    d = X.shape[1]
    for s in range(cuda.blockIdx.x, n_sl, cuda.gridDim.x):
        r0 = start + s * rows
        nr = min(rows, m - s * rows)
        for j in range(cuda.threadIdx.x, d, TPB):
            mu = F[F_MU, j]
            acc = 0.0
            for r in range(nr):
                v = X[order[r0 + r], j] * 1.0
                if second:
                    v -= mu
                    v = v * v
                acc += v
            Ps[s, j] = acc


@cuda.jit(device=True)
def bn_mean(order, F, I, Ps, start):
    """``mu_j``: the slot sums added in slot order, over m (one block)."""
    m, _, n_sl = batch_geometry(order, I, start)
    inv_m = 1.0 / m
    for j in range(cuda.threadIdx.x, Ps.shape[1], TPB):
        acc = 0.0
        for s in range(n_sl):
            acc += Ps[s, j]
        F[F_MU, j] = acc * inv_m


@cuda.jit(device=True)
def bn_finish(order, M, V, F, C, I, Ps, start, red):
    """Batch variance, running statistics, ``1/sd``, and the effective weights
    ``Weff = theta / sd``, ``Weff[k, d] = b - Weff . mu`` (``cpu._batch_norm_stats``).
    One block."""
    m, _, n_sl = batch_geometry(order, I, start)
    t = cuda.threadIdx.x
    mom = C[C_BN_MOMENTUM]
    beps = C[C_BN_EPS]
    d = Ps.shape[1]
    for j in range(t, d, TPB):
        if m == 1:
            # one row: PyTorch's BatchNorm1d cannot normalize it; fastgd uses the
            # running statistics after folding the row in (see cpu._batch_norm_stats)
            delta = F[F_MU, j] - F[F_BN_MEAN, j]
            F[F_BN_MEAN, j] += mom * delta
            F[F_BN_VAR, j] = (1.0 - mom) * (F[F_BN_VAR, j] + mom * delta * delta)
            F[F_MU, j] = F[F_BN_MEAN, j]
            F[F_INV_SD, j] = 1.0 / math.sqrt(F[F_BN_VAR, j] + beps)
        else:
            acc = 0.0
            for s in range(n_sl):
                acc += Ps[s, j]
            var = acc / m
            F[F_BN_MEAN, j] = (1.0 - mom) * F[F_BN_MEAN, j] + mom * F[F_MU, j]
            F[F_BN_VAR, j] = (1.0 - mom) * F[F_BN_VAR, j] + mom * var * (m / (m - 1.0))
            F[F_INV_SD, j] = 1.0 / math.sqrt(var + beps)
    theta = M[M_THETA]
    weff = M[M_WEFF]
    for k in range(theta.shape[0]):
        if V[k, V_ACTIVE] != 0.0:
            acc = 0.0
            for j in range(t, d, TPB):
                wj = theta[k, j] * F[F_INV_SD, j]
                weff[k, j] = wj
                acc += wj * F[F_MU, j]
            tot = block_sum(red, acc)
            if t == 0:
                weff[k, d] = theta[k, d] - tot


@cuda.jit(device=True)
def bn_phase(X, order, M, V, F, C, I, Ps, start, phase, red):
    """Phase 0-3 of a batch's normalization: sums (grid), mean (one block), squared
    deviations (grid; not for a one-row batch), statistics and weights (one block)."""
    if phase == 0 or phase == 2:
        m, _, _ = batch_geometry(order, I, start)
        if phase == 0 or m > 1:
            bn_slots(X, order, F, I, Ps, start, phase == 2)
    elif cuda.blockIdx.x == 0:
        if phase == 1:
            bn_mean(order, F, I, Ps, start)
        else:
            bn_finish(order, M, V, F, C, I, Ps, start, red)


# ------------------------------------------------------------------- step
@cuda.jit(device=True)
def reduce_slots(Gp, n_sl, M, V, red):
    """``G = sum_s Gp[s]`` and the loss sums into ``out``, by one block: columns over
    threads, and when there are fewer columns than threads, each column's slots split
    into interleaved groups added in group order (a fixed order)."""
    t = cuda.threadIdx.x
    n_out = Gp.shape[1]
    ncol = Gp.shape[2]
    d1 = ncol - GP_EXTRA
    total = n_out * ncol
    for c0 in range(0, total, TPB):
        width = min(TPB, total - c0)
        n_groups = TPB // width
        g = t // width
        acc = 0.0
        if g < n_groups:
            c = c0 + t - g * width
            k = c // ncol
            j = c - k * ncol
            for s in range(g, n_sl, n_groups):
                acc += Gp[s, k, j]
        red[t] = acc
        cuda.syncthreads()
        if t < width:
            c = c0 + t
            k = c // ncol
            j = c - k * ncol
            tot = 0.0
            for gg in range(n_groups):
                tot += red[gg * width + t]
            if j < d1:
                M[M_G, k, j] = tot
            else:
                V[k, V_OUT + OUT_OBJ + j - d1] += tot
        cuda.syncthreads()


@cuda.jit(device=True)
def clip_rows(G, k0, k1, ncols, clip_value, clip_norm, red):
    """``rules.clip_gradient`` on ``G[k0:k1, :ncols]`` as one vector, by one block.

    Returns the pre-clip L2 norm.
    """
    t = cuda.threadIdx.x
    n = (k1 - k0) * ncols
    sq = 0.0
    for idx in range(t, n, TPB):
        g = G[k0 + idx // ncols, idx % ncols]
        sq += g * g
    norm = math.sqrt(block_sum(red, sq))
    cur = norm
    if clip_value > 0.0:
        sq = 0.0
        for idx in range(t, n, TPB):
            k = k0 + idx // ncols
            j = idx % ncols
            g = G[k, j]
            if g > clip_value:
                g = clip_value
            elif g < -clip_value:
                g = -clip_value
            G[k, j] = g
            sq += g * g
        cur = math.sqrt(block_sum(red, sq))
    if clip_norm > 0.0:
        coef = clip_norm / (cur + 1e-6)
        if coef < 1.0:
            for idx in range(t, n, TPB):
                G[k0 + idx // ncols, idx % ncols] *= coef
    cuda.syncthreads()
    return norm


@cuda.jit(device=True)
def finish_grad(M, V, F, I, m, red):
    """Mean, batch-norm chain rule, penalty (and its objective), clipping (and the
    norms): ``cpu.batch_step`` up to the learning rate, each output with its own
    hyper-parameters. One block."""
    t = cuda.threadIdx.x
    G = M[M_G]
    theta = M[M_THETA]
    n_out = G.shape[0]
    d = G.shape[1] - 1
    joint = joint_outputs(I)
    inv_m = 1.0 / m
    for k in range(n_out):
        if V[k, V_ACTIVE] == 0.0:
            continue
        a2 = V[k, V_L2]
        a1 = V[k, V_L1]
        gb = G[k, d]
        cuda.syncthreads()  # every thread has read gb before thread 0 rewrites it
        for j in range(t, d, TPB):
            if I[I_BN] != 0:
                G[k, j] = (G[k, j] * inv_m - F[F_MU, j] * gb * inv_m) * F[F_INV_SD, j]
            else:
                G[k, j] *= inv_m
        if t == 0:
            G[k, d] = gb * inv_m if I[I_FIT_INTERCEPT] != 0 else 0.0
        if a2 != 0.0 or a1 != 0.0:
            sq = 0.0
            l1 = 0.0
            for j in range(t, d, TPB):
                sq += theta[k, j] * theta[k, j]
                l1 += abs(theta[k, j])
            sq = block_sum(red, sq)
            l1 = block_sum(red, l1)
            if t == 0:
                V[k - k % joint, V_OUT + OUT_OBJ] += m * (0.5 * a2 * sq + a1 * l1)
            for j in range(t, d, TPB):
                wj = theta[k, j]
                G[k, j] += a2 * wj + a1 * (1.0 if wj > 0.0 else (-1.0 if wj < 0.0
                                                                  else 0.0))
        cuda.syncthreads()
    # the multinomial model clips all its columns (the intercepts' are 0 without one)
    n_cols = d + 1 if I[I_FIT_INTERCEPT] != 0 or I[I_MULTI] != 0 else d
    for k0 in range(0, n_out, joint):
        if V[k0, V_ACTIVE] != 0.0:
            nrm = clip_rows(G, k0, k0 + joint, n_cols, V[k0, V_CLIP_VALUE],
                            V[k0, V_CLIP_NORM], red)
            if t == 0:
                V[k0, V_OUT + OUT_NORM] += nrm


@cuda.jit(device=True)
def apply_update(M, V, C, I):
    """Learning rate, optimizer update (``rules.opt_update`` one coordinate per
    thread: every rule is coordinate-wise once the gradient is final), averaging and
    counters (``cpu.batch_step`` from the learning rate on). One block."""
    t = cuda.threadIdx.x
    theta = M[M_THETA]
    G = M[M_G]
    avg = M[M_AVG]
    state = M[M_STATE:]
    n_out = theta.shape[0]
    d = theta.shape[1] - 1
    n_params = d + 1 if I[I_FIT_INTERCEPT] != 0 else d
    average = C[C_AVERAGE]
    v_sp = I[I_V_SP]
    for k in range(n_out):
        if V[k, V_ACTIVE] == 0.0:
            continue
        hp = V[k, V_HP:v_sp]
        sp = V[k, v_sp:]
        t_now = V[k, V_TUPD]
        if V[k, V_ETA] > 0.0:
            lr = V[k, V_ETA]
        elif I[I_UNIT] == _r.UNIT_EPOCH:
            lr = lr_at(I[I_SCHED], sp, C[C_EPOCH])
        else:
            lr = lr_at(I[I_SCHED], sp, t_now)
        kk = int(V[k, V_KSTEP]) + 1
        for j in range(t, n_params, TPB):
            opt_update(I[I_OPT], hp, state[:, k, j:j + 1], kk, lr, theta[k, j:j + 1],
                       G[k, j:j + 1], 1, 1 if j < d else 0)
        if average > 0.0 and average <= t_now + 1.0:
            num = t_now + 2.0 - average
            for j in range(t, d + 1, TPB):  # each thread reads what it wrote
                avg[k, j] += (theta[k, j] - avg[k, j]) / num
        cuda.syncthreads()
        if t == 0:
            if V[k, V_OUT + OUT_N] == 0.0:  # the output's first update this epoch
                V[k, V_OUT + OUT_LR] = lr
            V[k, V_KSTEP] = kk
            V[k, V_TUPD] = t_now + 1.0
            V[k, V_OUT + OUT_N] += 1.0
        cuda.syncthreads()


@cuda.jit(device=True)
def step(order, M, V, F, C, I, Gp, start, red):
    """The update from the slot partials of the batch at ``start``. One block."""
    m, _, n_sl = batch_geometry(order, I, start)
    reduce_slots(Gp, n_sl, M, V, red)
    finish_grad(M, V, F, I, m, red)
    apply_update(M, V, C, I)


@cuda.jit(device=True)
def order_at(rows, I, order, i):
    """``order[i] = rows[perm(i)]``: position i of the epoch's shuffled order."""
    n = rows.shape[0]
    if i < n:
        order[i] = rows[permuted_index_dev(i, n, I[I_HALF_BITS], I[I_KEYS:I_KEYS + 4])]
