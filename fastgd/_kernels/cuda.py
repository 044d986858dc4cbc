"""numba.cuda kernels and their host driver: the ``device="cuda"`` backend.

Imported lazily (only when a fit runs on the GPU), so that importing fastgd never needs
CUDA. The maths is :mod:`fastgd._kernels.rules` compiled with
``cuda.jit(device=True)``; the semantics are those of :func:`fastgd._kernels.cpu.
epoch_batch` (minibatch / full batch, every optimizer, schedule, clipping mode, loss,
penalty, batch norm, averaging, the multinomial model), run for ``K`` outputs at once.

Design
------
One training step (one batch of ``m`` rows) is two phases:

* **gradient** (``_grad_body``): the batch's rows are cut into chunks of ``rows``
  rows; each block takes chunks ``b, b + nb, ...``. For a chunk, one thread per row
  computes the predictions, the loss and ``dl/dp`` (into a small global scratch), then
  one thread per (output, feature) sums ``dl/dp * x`` over the chunk's rows (coalesced
  reads of row-major ``X``) into the block's own slot of ``Gpart``. No atomics: every
  partial sum has one owner.
* **step** (``_step_body``, one block): adds the ``nb`` block partials in block order,
  then mean, batch-norm chain rule, penalty, clipping (block tree reductions for the
  norms), learning rate, optimizer update (``rules.opt_update`` applied one coordinate
  per thread), averaging, counters.

Both sums have a fixed order for a given launch shape, so a GPU fit is
**deterministic run to run** (no atomics anywhere). The order differs from the CPU
loop's sequential sums, so GPU and CPU agree to rounding (~1e-15 relative per step in
float64), not bitwise. Arithmetic is float64 whatever the dtype of ``X`` (as on the
CPU): float32 data is read as float32 (half the bytes) and promoted in registers.

Two ways to run an epoch, chosen per fit by :func:`choose_mode`:

* ``"step"``: per step, one launch of the gradient kernel over a grid of up to
  ``MAX_BLOCKS`` blocks and one launch of the single-block step kernel (batch norm adds
  four launches: two partial-sum passes over the batch and two single-block
  finishes). Uses the whole GPU for each batch; pays launch latency (a few
  microseconds on the device, tens of microseconds of Python per launch) per step.
* ``"epoch"``: one persistent single-block kernel runs every step of the epoch
  (the same device functions with ``nb = 1``). One launch per epoch, no launch cost
  per step, but one streaming multiprocessor does all the work.

Small batches are launch-bound, large batches bandwidth-bound: ``"auto"`` picks the
persistent kernel when a batch is at most ``PERSISTENT_MAX_BATCH_BYTES`` of ``X``.
That threshold is a design estimate: no GPU was available when this backend was
written, and ``python -m benchmarks.gpu`` times both modes side by side to calibrate
it. A cooperative (grid-synchronised) persistent kernel would combine both
advantages; it is left out because the CUDA simulator used in CI cannot run it.

Per epoch: one launch computes the shuffled order on the device
(:mod:`fastgd._kernels.counter`, from a seed drawn from the estimator's generator);
the host loop only launches kernels (no synchronisation per step); at the epoch's end
the parameters, optimizer state, counters and the (K, 6) statistics are copied back
(a few KiB) for the engine's convergence checks, histories and callbacks.

Settings (module attributes, read at import from environment variables):

``TPB`` (``FASTGD_CUDA_TPB``, default 256)
    Threads per block. CI runs the simulator with 8 so that multi-block and
    multi-chunk paths run on tiny data.
``MAX_BLOCKS`` (``FASTGD_CUDA_MAX_BLOCKS``, default 1024)
    Most blocks of a gradient launch; part of the launch shape, hence of the
    summation order (fixed, device independent).
``MODE`` (``FASTGD_CUDA_MODE``, default ``"auto"``)
    ``"auto"``, ``"step"`` or ``"epoch"``; may be changed at run time.
"""

import math
import os

import numpy as np
from numba import cuda

from . import rules as _r
from .counter import counter_keys, permuted_index

TPB = int(os.environ.get("FASTGD_CUDA_TPB", "256"))
MAX_BLOCKS = int(os.environ.get("FASTGD_CUDA_MAX_BLOCKS", "1024"))
MODE = os.environ.get("FASTGD_CUDA_MODE", "auto")
#: a chunk (rows handled by one block at a time) is at least a warp
MIN_ROWS = min(32, TPB)
#: ``"auto"`` runs the persistent kernel when a batch holds at most this many bytes of X
PERSISTENT_MAX_BATCH_BYTES = 1 << 21
MODES = ("auto", "step", "epoch")

if TPB < 1 or MAX_BLOCKS < 1:
    raise ValueError(
        f"FASTGD_CUDA_TPB and FASTGD_CUDA_MAX_BLOCKS must be positive integers; got "
        f"{TPB} and {MAX_BLOCKS}."
    )

_dev = cuda.jit(device=True)
loss_value = _dev(_r.loss_value)
loss_dloss = _dev(_r.loss_dloss)
clip_dloss = _dev(_r.clip_dloss)
lr_at = _dev(_r.lr_at)
opt_update = _dev(_r.opt_update)
_permuted_index = _dev(permuted_index)


# ------------------------------------------------------------- device helpers
@cuda.jit(device=True)
def _block_sum(red, v):
    """Sum of ``v`` over the block's threads (fixed tree order); every thread gets it."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    red[t] = v
    cuda.syncthreads()
    p = 1
    while p < nt:
        p *= 2
    h = p // 2
    while h > 0:
        if t < h and t + h < nt:
            red[t] += red[t + h]
        cuda.syncthreads()
        h //= 2
    total = red[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True)
def _clip_rows(G, k0, k1, ncols, clip_value, clip_norm, red):
    """``rules.clip_gradient`` on ``G[k0:k1, :ncols]`` seen as one vector, by one block.

    Returns the pre-clip L2 norm.
    """
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n = (k1 - k0) * ncols
    sq = 0.0
    for idx in range(t, n, nt):
        g = G[k0 + idx // ncols, idx % ncols]
        sq += g * g
    norm = math.sqrt(_block_sum(red, sq))
    if clip_value > 0.0:
        sq = 0.0
        for idx in range(t, n, nt):
            k = k0 + idx // ncols
            j = idx % ncols
            g = G[k, j]
            if g > clip_value:
                g = clip_value
            elif g < -clip_value:
                g = -clip_value
            G[k, j] = g
            sq += g * g
        cur = math.sqrt(_block_sum(red, sq))
    else:
        cur = norm
    if clip_norm > 0.0:
        coef = clip_norm / (cur + 1e-6)
        if coef < 1.0:
            for idx in range(t, n, nt):
                G[k0 + idx // ncols, idx % ncols] *= coef
    cuda.syncthreads()
    return norm


@cuda.jit(device=True)
def _bn_sum_body(X, order, start, m, rows, b, nb, mu, Psum, second):
    """``Psum[b, j]``: sum over this block's chunks of ``x_j`` (``second``: of
    ``(x_j - mu_j)**2``). One thread per feature: coalesced, no synchronisation."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    d = X.shape[1]
    for j in range(t, d, nt):
        Psum[b, j] = 0.0
    n_chunks = (m + rows - 1) // rows
    for c in range(b, n_chunks, nb):
        r0 = c * rows
        nr = m - r0 if m - r0 < rows else rows
        for j in range(t, d, nt):
            acc = 0.0
            for r in range(nr):
                v = X[order[start + r0 + r], j] * 1.0
                if second:
                    v -= mu[j]
                    v = v * v
                acc += v
            Psum[b, j] += acc


@cuda.jit(device=True)
def _bn_mean_body(Psum, nb, m, mu):
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    inv_m = 1.0 / m
    for j in range(t, mu.shape[0] - 1, nt):
        s = 0.0
        for bb in range(nb):
            s += Psum[bb, j]
        mu[j] = s * inv_m


@cuda.jit(device=True)
def _bn_finish_body(Psum, nb, m, bn_mean, bn_var, bn_momentum, bn_eps, mu, inv_sd,
                    Theta, Weff, beff, active, red):
    """Batch variance, running statistics, ``inv_sd``, and the effective weights
    ``Weff = theta * inv_sd``, ``beff = b - Weff . mu`` (``cpu._batch_norm_stats``)."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_out = Theta.shape[0]
    d = Theta.shape[1] - 1
    inv_m = 1.0 / m
    for j in range(t, d, nt):
        if m == 1:
            # one row: PyTorch's BatchNorm1d cannot normalize it; fastgd uses the
            # running statistics after folding the row in (see cpu._batch_norm_stats)
            delta = mu[j] - bn_mean[j]
            bn_mean[j] += bn_momentum * delta
            bn_var[j] = (1.0 - bn_momentum) * (bn_var[j] + bn_momentum * delta * delta)
            mu[j] = bn_mean[j]
            inv_sd[j] = 1.0 / math.sqrt(bn_var[j] + bn_eps)
        else:
            s = 0.0
            for bb in range(nb):
                s += Psum[bb, j]
            var = s * inv_m
            unbias = m / (m - 1.0)
            bn_mean[j] = (1.0 - bn_momentum) * bn_mean[j] + bn_momentum * mu[j]
            bn_var[j] = (1.0 - bn_momentum) * bn_var[j] + bn_momentum * var * unbias
            inv_sd[j] = 1.0 / math.sqrt(var + bn_eps)
    for k in range(n_out):
        if not active[k]:
            continue
        acc = 0.0
        for j in range(t, d, nt):
            w = Theta[k, j] * inv_sd[j]
            Weff[k, j] = w
            acc += w * mu[j]
        tot = _block_sum(red, acc)
        if t == 0:
            beff[k] = Theta[k, d] - tot


@cuda.jit(device=True)
def _grad_body(X, Y, sw, cw, order, start, m, rows, b, nb, active, loss_code, eps,
               multinomial, Weff, beff, D, Lv, Gpart, Opart, ish, ssh):
    """This block's share of one batch: ``Gpart[b]`` (K x (d+1)) the summed loss
    gradient of its rows, ``Opart[b]`` (K x 3) their loss sums (``cpu.batch_grad``)."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_out = Weff.shape[0]
    d1 = Weff.shape[1]
    d = d1 - 1
    for idx in range(t, n_out * d1, nt):
        Gpart[b, idx // d1, idx % d1] = 0.0
    for idx in range(t, n_out * 3, nt):
        Opart[b, idx // 3, idx % 3] = 0.0
    n_chunks = (m + rows - 1) // rows
    for c in range(b, n_chunks, nb):
        r0 = c * rows
        nr = m - r0 if m - r0 < rows else rows
        if t < nr:
            i = order[start + r0 + t]
            ish[t] = i
            s = sw[i]
            ssh[t] = s
            for k in range(n_out):
                if active[k]:
                    p = beff[k]
                    for j in range(d):
                        p += X[i, j] * Weff[k, j]
                    D[b, t, k] = p
            if multinomial:
                c_i = 0.0
                for k in range(n_out):
                    c_i += Y[i, k] * cw[k, 0]
                pmax = D[b, t, 0]
                for k in range(1, n_out):
                    if D[b, t, k] > pmax:
                        pmax = D[b, t, k]
                z = 0.0
                for k in range(n_out):
                    z += math.exp(D[b, t, k] - pmax)
                lse = pmax + math.log(z)
                lv = lse
                for k in range(n_out):
                    lv -= Y[i, k] * D[b, t, k]
                Lv[b, t, 0] = lv
                for k in range(n_out):
                    D[b, t, k] = c_i * s * (math.exp(D[b, t, k] - lse) - Y[i, k])
            else:
                for k in range(n_out):
                    if active[k]:
                        yi = Y[i, k]
                        p = D[b, t, k]
                        Lv[b, t, k] = loss_value(loss_code, p, yi, eps)
                        cwk = cw[k, 0] if yi > 0.0 else cw[k, 1]
                        D[b, t, k] = cwk * s * clip_dloss(loss_dloss(loss_code, p, yi, eps))
        cuda.syncthreads()
        n_loss = 1 if multinomial else n_out
        for k in range(t, n_loss, nt):
            if active[k]:
                o0 = 0.0
                o1 = 0.0
                o2 = 0.0
                for r in range(nr):
                    lv = Lv[b, r, k]
                    s = ssh[r]
                    o0 += lv
                    o1 += s * lv
                    o2 += s
                Opart[b, k, 0] += o0
                Opart[b, k, 1] += o1
                Opart[b, k, 2] += o2
        for idx in range(t, n_out * d1, nt):
            k = idx // d1
            j = idx - k * d1
            if active[k]:
                acc = 0.0
                for r in range(nr):
                    dv = D[b, r, k]
                    if dv != 0.0:
                        acc += dv * (X[ish[r], j] if j < d else 1.0)
                Gpart[b, k, j] += acc
        cuda.syncthreads()


@cuda.jit(device=True)
def _step_body(Gpart, Opart, nb, m, G, Theta, active, fit_intercept, multinomial,
               alpha_l2, alpha_l1, clip_value, clip_norm, opt_code, hp, State, kstep,
               sched_code, sp, sched_unit, Tupd, epoch, eta_fixed, average, Avg,
               batch_norm, mu, inv_sd, first, Weff, beff, out, red):
    """One update from the block partials of a batch of ``m`` rows (``cpu.batch_step``)."""
    t = cuda.threadIdx.x
    nt = cuda.blockDim.x
    n_out = Theta.shape[0]
    d1 = Theta.shape[1]
    d = d1 - 1
    n_params = d1 if fit_intercept else d
    inv_m = 1.0 / m
    if first:
        for idx in range(t, n_out * 6, nt):
            out[idx // 6, idx % 6] = 0.0
    cuda.syncthreads()
    for idx in range(t, n_out * d1, nt):
        k = idx // d1
        j = idx - k * d1
        s = 0.0
        for bb in range(nb):
            s += Gpart[bb, k, j]
        G[k, j] = s
    for idx in range(t, n_out * 3, nt):
        k = idx // 3
        c = idx - k * 3
        s = 0.0
        for bb in range(nb):
            s += Opart[bb, k, c]
        out[k, c] += s
    cuda.syncthreads()
    pen_on = alpha_l2 != 0.0 or alpha_l1 != 0.0
    for k in range(n_out):
        if not active[k]:
            continue
        gb = G[k, d]
        cuda.syncthreads()
        for j in range(t, d, nt):
            if batch_norm:
                G[k, j] = (G[k, j] * inv_m - mu[j] * gb * inv_m) * inv_sd[j]
            else:
                G[k, j] *= inv_m
        if t == 0:
            G[k, d] = gb * inv_m if fit_intercept else 0.0
        if pen_on:
            sq = 0.0
            l1 = 0.0
            for j in range(t, d, nt):
                wj = Theta[k, j]
                sq += wj * wj
                l1 += abs(wj)
            sq = _block_sum(red, sq)
            l1 = _block_sum(red, l1)
            if t == 0:
                out[0 if multinomial else k, 0] += m * (0.5 * alpha_l2 * sq + alpha_l1 * l1)
            for j in range(t, d, nt):
                wj = Theta[k, j]
                sg = 1.0 if wj > 0.0 else (-1.0 if wj < 0.0 else 0.0)
                G[k, j] += alpha_l2 * wj + alpha_l1 * sg
        cuda.syncthreads()
    if multinomial:
        nrm = _clip_rows(G, 0, n_out, d1, clip_value, clip_norm, red)
        if t == 0:
            out[0, 3] += nrm
    for k in range(n_out):
        if not active[k]:
            continue
        if not multinomial:
            nrm = _clip_rows(G, k, k + 1, n_params, clip_value, clip_norm, red)
            if t == 0:
                out[k, 3] += nrm
        t_now = Tupd[k]
        if eta_fixed[k] > 0.0:
            lr = eta_fixed[k]
        elif sched_unit == _r.UNIT_EPOCH:
            lr = lr_at(sched_code, sp, epoch)
        else:
            lr = lr_at(sched_code, sp, t_now)
        kk = kstep[k] + 1
        for j in range(t, n_params, nt):
            # the shared update rule, one coordinate per thread: every rule in
            # rules.opt_update is coordinate-wise once the gradient is final
            opt_update(opt_code, hp, State[k, :, j:j + 1], kk, lr, Theta[k, j:j + 1],
                       G[k, j:j + 1], 1, 1 if j < d else 0)
        if average > 0.0 and average <= t_now + 1.0:
            num = t_now + 2.0 - average
            for j in range(t, d1, nt):
                Avg[k, j] += (Theta[k, j] - Avg[k, j]) / num
        if not batch_norm:
            for j in range(t, d1, nt):
                Weff[k, j] = Theta[k, j]
                if j == d:
                    beff[k] = Theta[k, d]
        cuda.syncthreads()
        if t == 0:
            kstep[k] = kk
            Tupd[k] = t_now + 1.0
            out[k, 5] += 1.0
            if first:
                out[k, 4] = lr
        cuda.syncthreads()


# ------------------------------------------------------------------- kernels
@cuda.jit
def _k_order(rows, half_bits, keys, order):
    """``order[i] = rows[perm(i)]``: the epoch's shuffled order, one thread per row."""
    i = cuda.grid(1)
    n = rows.shape[0]
    if i < n:
        order[i] = rows[_permuted_index(i, n, half_bits, keys)]


@cuda.jit
def _k_bn_sum(X, order, start, m, rows, mu, Psum, second):
    _bn_sum_body(X, order, start, m, rows, cuda.blockIdx.x, cuda.gridDim.x, mu, Psum,
                 second)


@cuda.jit
def _k_bn_mean(Psum, nb, m, mu):
    _bn_mean_body(Psum, nb, m, mu)


@cuda.jit
def _k_bn_finish(Psum, nb, m, bn_mean, bn_var, bn_momentum, bn_eps, mu, inv_sd, Theta,
                 Weff, beff, active):
    red = cuda.shared.array(TPB, np.float64)
    _bn_finish_body(Psum, nb, m, bn_mean, bn_var, bn_momentum, bn_eps, mu, inv_sd,
                    Theta, Weff, beff, active, red)


@cuda.jit
def _k_grad(X, Y, sw, cw, order, start, m, rows, active, loss_code, eps, multinomial,
            Weff, beff, D, Lv, Gpart, Opart):
    ish = cuda.shared.array(TPB, np.int64)
    ssh = cuda.shared.array(TPB, np.float64)
    _grad_body(X, Y, sw, cw, order, start, m, rows, cuda.blockIdx.x, cuda.gridDim.x,
               active, loss_code, eps, multinomial, Weff, beff, D, Lv, Gpart, Opart,
               ish, ssh)


@cuda.jit
def _k_step(Gpart, Opart, nb, m, G, Theta, active, fit_intercept, multinomial, alpha_l2,
            alpha_l1, clip_value, clip_norm, opt_code, hp, State, kstep, sched_code, sp,
            sched_unit, Tupd, epoch, eta_fixed, average, Avg, batch_norm, mu, inv_sd,
            first, Weff, beff, out):
    red = cuda.shared.array(TPB, np.float64)
    _step_body(Gpart, Opart, nb, m, G, Theta, active, fit_intercept, multinomial,
               alpha_l2, alpha_l1, clip_value, clip_norm, opt_code, hp, State, kstep,
               sched_code, sp, sched_unit, Tupd, epoch, eta_fixed, average, Avg,
               batch_norm, mu, inv_sd, first, Weff, beff, out, red)


@cuda.jit
def _k_epoch(X, Y, sw, cw, order, batch_size, active, loss_code, eps, multinomial,
             G, Theta, fit_intercept, alpha_l2, alpha_l1, clip_value, clip_norm,
             opt_code, hp, State, kstep, sched_code, sp, sched_unit, Tupd, epoch,
             eta_fixed, average, Avg, batch_norm, bn_momentum, bn_eps, bn_mean, bn_var,
             mu, inv_sd, Psum, Weff, beff, D, Lv, Gpart, Opart, out):
    """A whole epoch in one single-block launch (the persistent mode)."""
    ish = cuda.shared.array(TPB, np.int64)
    ssh = cuda.shared.array(TPB, np.float64)
    red = cuda.shared.array(TPB, np.float64)
    rows = cuda.blockDim.x
    n_rows = order.shape[0]
    start = 0
    first = True
    while start < n_rows:
        m = n_rows - start if n_rows - start < batch_size else batch_size
        if batch_norm:
            _bn_sum_body(X, order, start, m, rows, 0, 1, mu, Psum, False)
            cuda.syncthreads()
            _bn_mean_body(Psum, 1, m, mu)
            cuda.syncthreads()
            if m > 1:
                _bn_sum_body(X, order, start, m, rows, 0, 1, mu, Psum, True)
                cuda.syncthreads()
            _bn_finish_body(Psum, 1, m, bn_mean, bn_var, bn_momentum, bn_eps, mu,
                            inv_sd, Theta, Weff, beff, active, red)
            cuda.syncthreads()
        _grad_body(X, Y, sw, cw, order, start, m, rows, 0, 1, active, loss_code, eps,
                   multinomial, Weff, beff, D, Lv, Gpart, Opart, ish, ssh)
        cuda.syncthreads()
        _step_body(Gpart, Opart, 1, m, G, Theta, active, fit_intercept, multinomial,
                   alpha_l2, alpha_l1, clip_value, clip_norm, opt_code, hp, State, kstep,
                   sched_code, sp, sched_unit, Tupd, epoch, eta_fixed, average, Avg,
                   batch_norm, mu, inv_sd, first, Weff, beff, out, red)
        cuda.syncthreads()
        first = False
        start += m


@cuda.jit
def _k_take_rows(X, idx, out):
    """``out[r, :] = X[idx[r], :]`` (validation rows of device-resident data)."""
    r, j = cuda.grid(2)
    if r < idx.shape[0] and j < X.shape[1]:
        out[r, j] = X[idx[r], j]


# --------------------------------------------------------------- host driver
def available():
    """Whether a CUDA device (or the simulator) can run kernels here."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reads as "no GPU"
        return False


def device_name():
    """Name of the current device ("simulator" under ``NUMBA_ENABLE_CUDASIM=1``)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "CUDA simulator"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def as_device(X):
    """``X`` on the device: numba device arrays as they are, ``__cuda_array_interface__``
    objects (CuPy, PyTorch) wrapped without a copy, host arrays copied once."""
    if hasattr(X, "copy_to_host"):
        return X
    if hasattr(X, "__cuda_array_interface__"):
        return cuda.as_cuda_array(X)
    return cuda.to_device(np.asarray(X))


def take_rows(X, idx):
    """Host copy of rows ``idx`` of a device array (a gather kernel, one copy back)."""
    Xd = as_device(X)
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    out = cuda.device_array((idx.shape[0], Xd.shape[1]), dtype=Xd.dtype)
    if idx.shape[0]:
        tpb = max(1, min(16, TPB))
        grid = ((idx.shape[0] + tpb - 1) // tpb, (Xd.shape[1] + tpb - 1) // tpb)
        _k_take_rows[grid, (tpb, tpb)](Xd, cuda.to_device(idx), out)
    return out.copy_to_host()


def launch_shape(m):
    """``(rows, blocks)`` of a step-mode gradient launch for a batch of ``m`` rows.

    Chunks of ``rows`` (a warp to ``TPB``) rows, at most ``MAX_BLOCKS`` blocks: a
    minibatch spreads over several multiprocessors, a full batch is grid-strided.
    Depends on ``m`` and the settings only, so the summation order is fixed.
    """
    rows = min(TPB, max(MIN_ROWS, -(-m // MAX_BLOCKS)))
    return rows, max(1, min(MAX_BLOCKS, -(-m // rows)))


def choose_mode(batch, n_features, itemsize, mode=None):
    """``"step"`` or ``"epoch"`` for a batch of ``batch`` rows (see the module notes)."""
    mode = MODE if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"FASTGD_CUDA_MODE must be one of {MODES}; got {mode!r}.")
    if mode != "auto":
        return mode
    return "epoch" if batch * n_features * itemsize <= PERSISTENT_MAX_BATCH_BYTES else "step"


class CudaBackend:
    """Device copies of one fit's data and state; runs epochs for the engine.

    ``X`` (host or device), ``Y`` (n, K), ``sw``, ``cw`` and ``train_idx`` go to the
    device once, here. :meth:`start` uploads the training state (host NumPy, the
    engine's dict); :meth:`epoch` runs one epoch and copies the state back into the
    same host arrays, so the estimator never holds a device array and a CPU fit can
    continue where a GPU fit stopped (and the reverse).
    """

    def __init__(self, X, Y, sw, cw, train_idx, prog, batch=None, mode=None):
        self.X = as_device(X)
        self.Y = cuda.to_device(np.ascontiguousarray(Y, dtype=np.float64))
        self.sw = cuda.to_device(np.ascontiguousarray(sw, dtype=np.float64))
        self.cw = cuda.to_device(np.ascontiguousarray(cw, dtype=np.float64))
        self.train_idx = cuda.to_device(np.ascontiguousarray(train_idx, dtype=np.int64))
        self.n_train = int(train_idx.shape[0])
        self.order = cuda.device_array(self.n_train, dtype=np.int64)
        if batch is None:
            batch = prog.batch_size if prog.batch_size > 0 else max(self.n_train, 1)
        self.batch = int(batch)
        self.prog = prog
        d = int(self.X.shape[1])
        k = int(Y.shape[1])
        self.mode = choose_mode(self.batch, d, self.X.dtype.itemsize, mode)
        # partial buffers for the largest launch: a step-mode batch of m <= batch rows
        # uses at most min(MAX_BLOCKS, ceil(batch / MIN_ROWS)) blocks of <= TPB rows
        rows = TPB
        nb = 1 if self.mode == "epoch" else min(MAX_BLOCKS, -(-self.batch // MIN_ROWS))
        f8 = np.float64
        self.G = cuda.device_array((k, d + 1), dtype=f8)
        self.Gpart = cuda.device_array((nb, k, d + 1), dtype=f8)
        self.Opart = cuda.device_array((nb, k, 3), dtype=f8)
        self.D = cuda.device_array((nb, rows, k), dtype=f8)
        self.Lv = cuda.device_array((nb, rows, k), dtype=f8)
        self.Psum = cuda.device_array((nb, max(d, 1)), dtype=f8)
        self.mu = cuda.to_device(np.zeros(d + 1, dtype=f8))
        self.inv_sd = cuda.to_device(np.zeros(d + 1, dtype=f8))
        self.hp = cuda.to_device(np.ascontiguousarray(prog.opt_hp, dtype=f8))
        self.sp = cuda.to_device(np.ascontiguousarray(prog.sched_sp, dtype=f8))
        self.out = cuda.device_array((k, 6), dtype=f8)
        self.dev = None

    # state keys that live on the device during a run, copied back every epoch
    _STATE = ("theta", "avg", "opt_state", "step", "updates", "bn_mean", "bn_var")

    def start(self, state):
        """Upload the training state (after the engine prepared it)."""
        self.dev = {key: cuda.to_device(np.ascontiguousarray(state[key]))
                    for key in self._STATE}
        theta = state["theta"]
        # effective weights of the first batch (batch norm recomputes them per batch)
        self.Weff = cuda.to_device(np.ascontiguousarray(theta))
        self.beff = cuda.to_device(np.ascontiguousarray(theta[:, -1]))

    def epoch(self, state, seed, active, eta_fixed, epoch, out):
        """One epoch; ``seed`` None keeps the training rows in order.

        Copies the state and the (K, 6) statistics ``out`` back to the host.
        """
        prog = self.prog
        dev = self.dev
        n = self.n_train
        if seed is None:
            order = self.train_idx
        else:
            half_bits, keys = counter_keys(n, seed)
            tpb = max(TPB, 1)
            _k_order[(n + tpb - 1) // tpb, tpb](self.train_idx, half_bits,
                                                 cuda.to_device(keys), self.order)
            order = self.order
        self.d_active = cuda.to_device(np.ascontiguousarray(active))
        self.d_eta = cuda.to_device(np.ascontiguousarray(eta_fixed, dtype=np.float64))
        if self.mode == "epoch":
            _k_epoch[1, TPB](
                self.X, self.Y, self.sw, self.cw, order, self.batch, self.d_active,
                prog.loss_code, prog.loss_eps, prog.multinomial, self.G, dev["theta"],
                prog.fit_intercept, prog.alpha_l2, prog.alpha_l1, prog.clip_value,
                prog.clip_norm, prog.opt_code, self.hp, dev["opt_state"], dev["step"],
                prog.sched_code, self.sp, prog.sched_unit, dev["updates"], float(epoch),
                self.d_eta, prog.average, dev["avg"], prog.batch_norm, prog.bn_momentum,
                prog.bn_eps, dev["bn_mean"], dev["bn_var"], self.mu, self.inv_sd,
                self.Psum, self.Weff, self.beff, self.D, self.Lv, self.Gpart,
                self.Opart, self.out)
        else:
            self._epoch_steps(order, float(epoch))
        for key in self._STATE:
            dev[key].copy_to_host(state[key])
        self.out.copy_to_host(out)

    def _epoch_steps(self, order, epoch):
        """The per-step launches of the ``"step"`` mode (no host synchronisation)."""
        prog = self.prog
        dev = self.dev
        n = self.n_train
        start = 0
        first = True
        while start < n:
            m = min(self.batch, n - start)
            rows, nb = launch_shape(m)
            if prog.batch_norm:
                _k_bn_sum[nb, TPB](self.X, order, start, m, rows, self.mu, self.Psum,
                                   False)
                _k_bn_mean[1, TPB](self.Psum, nb, m, self.mu)
                if m > 1:
                    _k_bn_sum[nb, TPB](self.X, order, start, m, rows, self.mu,
                                       self.Psum, True)
                _k_bn_finish[1, TPB](self.Psum, nb, m, dev["bn_mean"], dev["bn_var"],
                                     prog.bn_momentum, prog.bn_eps, self.mu,
                                     self.inv_sd, dev["theta"], self.Weff, self.beff,
                                     self.d_active)
            _k_grad[nb, TPB](self.X, self.Y, self.sw, self.cw, order, start, m, rows,
                             self.d_active, prog.loss_code, prog.loss_eps,
                             prog.multinomial, self.Weff, self.beff, self.D, self.Lv,
                             self.Gpart, self.Opart)
            _k_step[1, TPB](self.Gpart, self.Opart, nb, m, self.G, dev["theta"],
                            self.d_active, prog.fit_intercept, prog.multinomial,
                            prog.alpha_l2, prog.alpha_l1, prog.clip_value,
                            prog.clip_norm, prog.opt_code, self.hp, dev["opt_state"],
                            dev["step"], prog.sched_code, self.sp, prog.sched_unit,
                            dev["updates"], epoch, self.d_eta, prog.average, dev["avg"],
                            prog.batch_norm, self.mu, self.inv_sd, first, self.Weff,
                            self.beff, self.out)
            first = False
            start += m
