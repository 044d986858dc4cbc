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
``V`` (K, ``NV``)
    per-output numbers: active flag, fixed rate, optimizer step, update counter, the
    two class weights, then the engine's (K, 6) statistics (columns ``OUT_*``).
``F`` (``NF``, d+1)
    per-feature vectors: running mean and variance, the batch's mean and 1/sd.
``C`` (``C_HP`` + len(hp) + len(sp))
    float options, then the optimizer's hyper-parameters and the schedule's.

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
NV = V_OUT + N_OUT

# ---------------------------------------------------------------- rows of F
F_BN_MEAN = 0
F_BN_VAR = 1
F_MU = 2
F_INV_SD = 3
NF = 4

# ------------------------------------------------------------ entries of C
C_EPS = 0
C_L2 = 1
C_L1 = 2
C_CLIP_VALUE = 3
C_CLIP_NORM = 4
C_AVERAGE = 5
C_BN_MOMENTUM = 6
C_BN_EPS = 7
C_EPOCH = 8
#: first optimizer hyper-parameter; the schedule's parameters follow at ``I[I_C_SP]``
C_HP = 9

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
I_C_SP = 10
I_HALF_BITS = 11
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

    def __init__(self, n_outputs, n_features, prog):
        self.k = int(n_outputs)
        self.d = int(n_features)
        d1 = self.d + 1
        self.state_rows = rules.STATE_ROWS[prog.opt_code]
        self.nm = M_STATE + self.state_rows
        self.hp = np.ascontiguousarray(prog.opt_hp, dtype=np.float64)
        self.sp = np.ascontiguousarray(prog.sched_sp, dtype=np.float64)
        self.c_sp = C_HP + self.hp.shape[0]
        self.nc = self.c_sp + self.sp.shape[0]
        sizes = [self.nm * self.k * d1, self.k * NV, NF * d1, self.nc]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.size = self.offsets[-1]
        self.prog = prog

    def views(self, buf):
        """``(M, V, F, C)``: views of ``buf`` (a NumPy or a numba device array)."""
        o = self.offsets
        d1 = self.d + 1
        return (buf[o[0]:o[1]].reshape((self.nm, self.k, d1)),
                buf[o[1]:o[2]].reshape((self.k, NV)),
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
        out[I_C_SP] = self.c_sp
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
        V[:, V_OUT:] = 0.0
        F[:] = 0.0
        F[F_BN_MEAN, :d] = state.bn_mean
        F[F_BN_VAR, :d] = state.bn_var
        C[:C_HP] = (p.loss_eps, p.alpha_l2, p.alpha_l1, p.clip_value, p.clip_norm,
                    p.average, p.bn_momentum, p.bn_eps, epoch)
        C[C_HP:self.c_sp] = self.hp
        C[self.c_sp:] = self.sp

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
        out[...] = V[:, V_OUT:]
