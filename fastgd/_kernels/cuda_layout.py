"""Buffer layouts of the CUDA backend, in plain NumPy (importing this loads no CUDA).

The kernels of :mod:`fastgd._kernels.cuda` take few arguments: numba-cuda prepares
every argument in Python at every launch, and with 20-44 arguments that preparation,
not the launch itself, cost most of a step on the device (see docs/gpu.md). So one
fit's training state, per-output counters, batch-norm statistics and scalar options
live in one float64 buffer, cut into four views, and the integer options in one int64
array:

``M`` (``NM``, K, d+1)
    planes of per-output vectors: the parameters, their average, the batch gradient,
    the effective weights under batch norm, then the optimizer's state rows.
``V`` (K, ``V_HP`` + len(hp) + len(sp))
    per-output numbers: active flag, fixed rate, optimizer step, update counter, the
    two class weights, the engine's (K, 6) statistics (columns ``OUT_*``), then the
    output's hyper-parameters: loss epsilon, L2 and L1 strengths, the two clipping
    thresholds, the optimizer's numbers and the schedule's (from ``I[I_V_SP]``). Every
    output has its own, so one launch trains models of different hyper-parameters
    (the CV estimators' candidates).
``F`` (``NF``, d+1)
    per-feature vectors: running mean and variance, the batch's mean and 1/sd.
``C`` (``NC``)
    the float options every output shares: averaging start, batch-norm momentum and
    epsilon, the epoch.

Output ``k`` predicts target column ``k % I[I_NT]`` (``I_NT`` columns of targets, then
the sample weight, in ``YW``); a multinomial model is ``I_NT`` consecutive outputs.

The host packs the engine's state into a copy of that buffer, uploads it once per
epoch, and downloads it once at the epoch's end (:class:`Layout`): two copies of a few
KiB per epoch, whatever the number of state arrays.

Rows of a batch are cut into *slots* (:func:`slot_rows`): contiguous runs of rows,
each summed by one thread block in a fixed order into its own partial gradient. The
slots depend on the batch size and the settings only, never on the number of blocks
that run them, so every execution mode (one block per slot, one block for all, a
grid-stride loop of a cooperative grid) sums in the same order: the same weights, bit
for bit, in every mode and run.
"""

import numpy as np

from . import rules

# ------------------------------------------------------------------ out columns
#: the engine's (K, 6) epoch statistics ``out``: objective sum (loss + m * penalty)
OUT_OBJ = 0
#: sample-weighted loss sum
OUT_WLOSS = 1
#: sample-weight sum
OUT_W = 2
#: sum of the pre-clip gradient norms of the epoch's updates
OUT_NORM = 3
#: learning rate of the output's first update in the epoch
OUT_LR = 4
#: updates made
OUT_N = 5
N_OUT = 6

# ---------------------------------------------------------------- planes of M
M_THETA = 0
M_AVG = 1
M_G = 2
M_WEFF = 3
#: first of the optimizer's state rows (``rules.STATE_ROWS[code]`` of them)
M_STATE = 4

# ------------------------------------------------------------- columns of V
V_ACTIVE = 0
V_ETA = 1
V_KSTEP = 2
V_TUPD = 3
V_CWPOS = 4
V_CWNEG = 5
#: first of the ``N_OUT`` statistics columns
V_OUT = 6
#: the output's hyper-parameters: loss epsilon, L2 and L1 strengths, clipping
V_EPS = V_OUT + N_OUT
V_L2 = V_EPS + 1
V_L1 = V_EPS + 2
V_CLIP_VALUE = V_EPS + 3
V_CLIP_NORM = V_EPS + 4
#: first optimizer hyper-parameter; the schedule's parameters follow at ``I[I_V_SP]``
V_HP = V_EPS + 5

# ---------------------------------------------------------------- rows of F
F_BN_MEAN = 0
F_BN_VAR = 1
F_MU = 2
F_INV_SD = 3
NF = 4

# ------------------------------------------------------------ entries of C
C_AVERAGE = 0
C_BN_MOMENTUM = 1
C_BN_EPS = 2
C_EPOCH = 3
NC = 4

# ------------------------------------------------------------ entries of I
I_LOSS = 0
I_MULTI = 1
I_FIT_INTERCEPT = 2
I_OPT = 3
I_SCHED = 4
I_UNIT = 5
I_BN = 6
I_BATCH = 7
I_SLOT_MIN = 8
I_MAX_SLOTS = 9
I_V_SP = 10
I_HALF_BITS = 11
#: target columns: output k predicts column ``k % I[I_NT]``
I_NT = 12
#: four round keys of the epoch's counter-based shuffle
I_KEYS = 13
NI = I_KEYS + 4

#: partial sums per slot and output: the gradient (d+1), then three loss sums
GP_EXTRA = 3


def slot_rows(m, slot_min, max_slots):
    """Rows per slot of a batch of ``m`` rows: a multiple of ``slot_min``, with at
    most ``max_slots`` slots (compiled for the device too: plain integer maths).

    Examples
    --------
    >>> slot_rows(256, 16, 1024), slot_rows(4_000_000, 16, 1024)
    (16, 3920)
    """
    per = (m + max_slots * slot_min - 1) // (max_slots * slot_min)
    if per < 1:
        per = 1
    return slot_min * per


def n_slots(m, slot_min, max_slots):
    """Number of slots of a batch of ``m`` rows (see :func:`slot_rows`)."""
    rows = slot_rows(m, slot_min, max_slots)
    return (m + rows - 1) // rows


def max_slots_upto(batch, slot_min, max_slots):
    """The most slots of any batch of at most ``batch`` rows (the count is not
    monotonic in the batch size: 16 rows in slots of 8 are 2 slots, 12 rows in slots
    of 4 are 3), hence the partial-sum buffers' length."""
    return min(max_slots, (batch + slot_min - 1) // slot_min)


class Layout:
    """Offsets of one fit's state buffer, and its packing to and from the training
    state's arrays (a :class:`~fastgd._kernels.bundles.BatchState` of host NumPy
    arrays, see :meth:`fastgd._state.TrainState.batch_arrays`)."""

    def __init__(self, n_outputs, n_features, prog, n_targets=None):
        self.k = int(n_outputs)
        self.d = int(n_features)
        self.n_targets = self.k if n_targets is None else int(n_targets)
        d1 = self.d + 1
        self.state_rows = rules.STATE_ROWS[prog.opt_code]
        self.nm = M_STATE + self.state_rows
        self.params = prog.per_output(self.k)
        self.v_sp = V_HP + self.params.opt_hp.shape[1]
        self.nv = self.v_sp + self.params.sched_sp.shape[1]
        sizes = [self.nm * self.k * d1, self.k * self.nv, NF * d1, NC]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.size = self.offsets[-1]
        self.prog = prog

    def views(self, buf):
        """``(M, V, F, C)``: views of ``buf`` (a NumPy or a numba device array)."""
        o = self.offsets
        d1 = self.d + 1
        return (buf[o[0]:o[1]].reshape((self.nm, self.k, d1)),
                buf[o[1]:o[2]].reshape((self.k, self.nv)),
                buf[o[2]:o[3]].reshape((NF, d1)),
                buf[o[3]:o[4]])

    def ints(self, batch, slot_min, max_slots):
        """The int64 options array ``I`` (shuffle keys zero)."""
        p = self.prog
        out = np.zeros(NI, dtype=np.int64)
        out[I_LOSS] = p.loss_code
        out[I_MULTI] = p.multinomial
        out[I_FIT_INTERCEPT] = p.fit_intercept
        out[I_OPT] = p.opt_code
        out[I_SCHED] = p.sched_code
        out[I_UNIT] = p.sched_unit
        out[I_BN] = p.batch_norm
        out[I_BATCH] = batch
        out[I_SLOT_MIN] = slot_min
        out[I_MAX_SLOTS] = max_slots
        out[I_V_SP] = self.v_sp
        out[I_NT] = self.n_targets
        return out

    def pack(self, buf, state, cw, active, eta_fixed, epoch):
        """Fill the host buffer ``buf`` from the training state (statistics zeroed)."""
        M, V, F, C = self.views(buf)
        d = self.d
        p = self.prog
        M[M_THETA] = state.theta
        M[M_AVG] = state.avg
        M[M_G] = 0.0
        M[M_WEFF] = state.theta
        M[M_STATE:] = np.transpose(state.opt_state, (1, 0, 2))
        V[:, V_ACTIVE] = active
        V[:, V_ETA] = eta_fixed
        V[:, V_KSTEP] = state.step
        V[:, V_TUPD] = state.updates
        V[:, V_CWPOS:V_CWNEG + 1] = cw
        V[:, V_OUT:V_OUT + N_OUT] = 0.0
        q = self.params
        for col, values in ((V_EPS, q.loss_eps), (V_L2, q.alpha_l2), (V_L1, q.alpha_l1),
                            (V_CLIP_VALUE, q.clip_value), (V_CLIP_NORM, q.clip_norm)):
            V[:, col] = values
        V[:, V_HP:self.v_sp] = q.opt_hp
        V[:, self.v_sp:] = q.sched_sp
        F[:] = 0.0
        F[F_BN_MEAN, :d] = state.bn_mean
        F[F_BN_VAR, :d] = state.bn_var
        C[:] = (p.average, p.bn_momentum, p.bn_eps, epoch)

    def unpack(self, buf, state, out):
        """Copy a downloaded buffer back into the training state and ``out`` (K, 6)."""
        M, V, F, _ = self.views(buf)
        d = self.d
        state.theta[...] = M[M_THETA]
        state.avg[...] = M[M_AVG]
        state.opt_state[...] = np.transpose(M[M_STATE:], (1, 0, 2))
        state.step[:] = V[:, V_KSTEP].astype(np.int64)
        state.updates[:] = V[:, V_TUPD]
        state.bn_mean[:] = F[F_BN_MEAN, :d]
        state.bn_var[:] = F[F_BN_VAR, :d]
        out[...] = V[:, V_OUT:V_OUT + N_OUT]
