"""numba.cuda kernels and their host driver: the ``device="cuda"`` backend.

Imported lazily (only when a fit runs on the GPU), so that importing fastgd never needs
CUDA. The maths is :mod:`fastgd._kernels.rules` compiled with ``cuda.jit(device=True)``
(through :mod:`fastgd._kernels.cuda_device`); the semantics are those of
:func:`fastgd._kernels.cpu.epoch_batch` (minibatch / full batch, every optimizer,
schedule, clipping mode, loss, penalty, batch norm, averaging, the multinomial model),
run for ``K`` outputs at once, each with its own hyper-parameters (the CV estimators
train a group of candidates as one K-output model).

One training step is a gradient phase (the batch's slots, each summed by one block,
see :mod:`fastgd._kernels.cuda_device`) and a step phase (one block adds the slot
partials in slot order and makes the update). Three ways to run an epoch, all with
the same slots, hence the same weights bit for bit:

``"step"``
    Per step, one gradient launch of a block per slot and one single-block step
    launch (batch norm adds four). Every step uses the whole GPU and pays two launches.
``"persistent"``
    One single-block kernel runs the whole epoch: no launch per step, but one
    streaming multiprocessor does all the work.
``"cooperative"``
    One kernel per epoch on a cooperative grid (as many blocks as can be resident at
    once): the blocks take the batch's slots in a grid-stride loop, synchronise
    (``cuda.cg.this_grid().sync()``), block 0 makes the step, the grid synchronises
    again, and so on. No launch per step and the whole GPU busy. It needs a cooperative
    launch (and the CUDA device runtime library at link time); numba-cuda's simulator
    runs it with one block (where a grid sync is a block sync).

:func:`choose_mode` picks one for ``"auto"`` from thresholds measured with
``python -m benchmarks.gpu``. Per epoch the host uploads the state once and, for a
shuffled epoch, launches the kernel that computes the epoch's order on the device
(:mod:`fastgd._kernels.counter`); it never waits inside an epoch, and downloads the
state once at its end (a few KiB) for the engine's convergence checks, histories and
callbacks (:class:`fastgd._kernels.cuda_layout.Layout`).

Kernels take at most 11 arguments (numba-cuda prepares each in Python at every
launch), and are launched through the compiled kernel bound to its argument types once
per fit (:class:`Launch`), skipping the dispatcher's type matching at every launch.

Settings (module attributes, read at import from environment variables): ``TPB`` and
``MAX_BLOCKS`` (see :mod:`fastgd._kernels.cuda_device`), and

``MODE`` (``FASTGD_CUDA_MODE``, default ``"auto"``)
    ``"auto"``, ``"step"``, ``"persistent"`` or ``"cooperative"``; may be changed at
    run time.
``COOP_GRID`` (``FASTGD_CUDA_COOP_GRID``, default 0)
    Most blocks of a cooperative grid (0: as many as can be resident). Tests set it
    below the number of slots so that blocks loop over several slots.
"""

import os
import warnings

import numpy as np
from numba import cuda

from .counter import counter_keys
from .cuda_device import (GP_EXTRA, LW, MAX_BLOCKS, MAX_REGISTERS, QMAX, SIMULATOR,
                          SLOT_MIN, TPB, U, bn_phase, grad_slots, order_at, regs_path,
                          step)
from .cuda_layout import (I_BATCH, I_BN, I_HALF_BITS, I_KEYS, Layout, max_slots_upto,
                          n_slots)

MODE = os.environ.get("FASTGD_CUDA_MODE", "auto")
COOP_GRID = int(os.environ.get("FASTGD_CUDA_COOP_GRID", "0"))
MODES = ("auto", "step", "persistent", "cooperative")

# ``"auto"``: thresholds between the modes, from ``python -m benchmarks.gpu`` on an H200
# (docs/gpu.md): the cooperative kernel was 3x faster than step mode on batches of
# 1.6 MB of X and step mode 1.2x faster on full batches of 400 MB and 1.6 GB; the
# threshold lies between (not measured there). One-slot batches were not measured.
#: the persistent single-block kernel for batches of at most this many slots
PERSISTENT_MAX_SLOTS = 1
#: step mode (a launch per step) for batches of at least this many bytes of X
STEP_MIN_BATCH_BYTES = 32 << 20

__all__ = ["CudaBackend", "available", "device_name", "as_device", "take_rows",
           "choose_mode", "TPB", "MAX_BLOCKS", "LW", "QMAX", "U", "SLOT_MIN"]


# ------------------------------------------------------------------- kernels
@cuda.jit
def _k_order(rows, I, order):
    """The epoch's shuffled order, one thread per row."""
    order_at(rows, I, order, cuda.grid(1))


@cuda.jit
def _k_step(order, M, V, F, C, I, Gp, start):
    """Step mode: the update of the batch at ``start`` (one block)."""
    red = cuda.shared.array(TPB, np.float64)
    step(order, M, V, F, C, I, Gp, start, red)


@cuda.jit
def _k_bn(X, order, M, V, F, C, I, Ps, start, phase):
    """Step mode: phase 0-3 of the batch normalization (0, 2: a block per slot)."""
    red = cuda.shared.array(TPB, np.float64)
    bn_phase(X, order, M, V, F, C, I, Ps, start, phase, red)


@cuda.jit(device=True)
def _sync_block():
    cuda.syncthreads()


@cuda.jit(device=True)
def _sync_grid():
    cuda.cg.this_grid().sync()


# Kernels that hold a gradient path come in two variants: the one-output register path
# and the general tile path (``regs``, a compile-time constant: each variant holds one
# path's code, and the registers it needs), each compiled the first time a fit uses it.
_GRAD_JIT = cuda.jit(**({} if SIMULATOR or MAX_REGISTERS <= 0
                        else {"max_registers": MAX_REGISTERS}))


def _grad_kernel(regs):
    """Step mode: block b sums slot b of the batch at ``start`` into ``Gp[b]``."""

    def grad(X, YW, order, M, V, I, Gp, Scr, start):
        grad_slots(X, YW, order, M, V, I, Gp, Scr, start, regs)

    return _GRAD_JIT(grad)


def _epoch_kernel(sync, regs):
    """A whole epoch in one launch, ``sync`` between the phases of every step: the
    same phases as step mode, every block of the grid taking a share of each."""

    def epoch(X, YW, order, M, V, F, C, I, Gp, Ps, Scr):
        red = cuda.shared.array(TPB, np.float64)
        n = order.shape[0]
        start = 0
        while start < n:  # the same iterations in every block: syncs stay uniform
            if I[I_BN] != 0:
                for phase in range(4):
                    bn_phase(X, order, M, V, F, C, I, Ps, start, phase, red)
                    sync()
            grad_slots(X, YW, order, M, V, I, Gp, Scr, start, regs)
            sync()
            if cuda.blockIdx.x == 0:
                step(order, M, V, F, C, I, Gp, start, red)
            sync()
            start += min(I[I_BATCH], n - start)

    return _GRAD_JIT(epoch)


#: kernel by (name, regs)
_KERNELS = {}
for _regs in (True, False):
    _KERNELS["grad", _regs] = _grad_kernel(_regs)
    _KERNELS["persistent", _regs] = _epoch_kernel(_sync_block, _regs)
    _KERNELS["cooperative", _regs] = _epoch_kernel(_sync_grid, _regs)
for _regs in (True, False):
    _KERNELS["order", _regs] = _k_order
    _KERNELS["step", _regs] = _k_step
    _KERNELS["bn", _regs] = _k_bn


@cuda.jit
def _k_take_rows(X, idx, out):
    """``out[r, :] = X[idx[r], :]`` (validation rows of device-resident data)."""
    r, j = cuda.grid(2)
    if r < idx.shape[0] and j < X.shape[1]:
        out[r, j] = X[idx[r], j]


# --------------------------------------------------------------- host helpers
def available():
    """Whether a CUDA device (or the simulator) can run kernels here."""
    try:
        return bool(cuda.is_available())
    except Exception:  # a broken driver install reads as "no GPU"
        return False


def device_name():
    """Name of the current device ("CUDA simulator" under ``NUMBA_ENABLE_CUDASIM=1``)."""
    if SIMULATOR:
        return "CUDA simulator"
    name = cuda.get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


def as_device(X):
    """``X`` on the device: numba device arrays as they are, ``__cuda_array_interface__``
    objects (CuPy, PyTorch) wrapped without a copy, host arrays copied once in C order
    (a warp reads a row's consecutive features)."""
    if hasattr(X, "copy_to_host"):
        return X
    if hasattr(X, "__cuda_array_interface__"):
        return cuda.as_cuda_array(X)
    return cuda.to_device(np.ascontiguousarray(X))


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


def choose_mode(batch, n_features, itemsize, mode=None):
    """``"step"``, ``"persistent"`` or ``"cooperative"`` for batches of ``batch`` rows
    (``mode`` None: the setting ``MODE``; ``"auto"``: by the thresholds above)."""
    mode = MODE if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"FASTGD_CUDA_MODE must be one of {MODES}; got {mode!r}.")
    if mode != "auto":
        return mode
    if n_slots(batch, SLOT_MIN, MAX_BLOCKS) <= PERSISTENT_MAX_SLOTS:
        return "persistent"
    if batch * n_features * itemsize >= STEP_MIN_BATCH_BYTES:
        return "step"
    return "cooperative"


def _default_stream():
    """The default stream as this numba-cuda's direct launch takes it (its launch
    configuration converts ``0`` the same way); ``0`` where there is no converter."""
    try:
        from numba.cuda.cudadrv.driver import _to_core_stream

        return _to_core_stream(0)
    except Exception:  # an older numba-cuda takes 0 itself
        return 0


class Launch:
    """One kernel launched many times with arguments of the same types.

    numba-cuda matches the argument types against the compiled versions at every
    launch; here the compiled kernel is looked up (compiled if need be) once, at the
    first launch, and launched directly afterwards. Where that is not possible (the
    simulator, or an API this numba-cuda does not have) it falls back to the ordinary
    ``kernel[grid, block](*args)``; ``fast`` says which.
    """

    def __init__(self, kernel):
        self.kernel = kernel
        self.compiled = None
        self.fast = False
        self.stream = 0
        self.launched = False

    def bind(self, args):
        """The compiled kernel for these argument types (None in the simulator)."""
        if self.compiled is None and not SIMULATOR:
            types = tuple(self.kernel.typeof_pyval(a) for a in args)
            self.compiled = self.kernel.compile(types)
            self.fast = hasattr(self.compiled, "launch")
            self.stream = _default_stream()
        return self.compiled

    def __call__(self, grid, block, *args):
        if self.compiled is None and not SIMULATOR:
            try:
                self.bind(args)
            except Exception:  # an older/newer API: the ordinary launch still works
                self.compiled = False
                self.fast = False
        if self.fast:
            try:
                self.compiled.launch(args, (grid, 1, 1), (block, 1, 1), self.stream, 0)
                self.launched = True
                return
            except TypeError:
                # arguments this numba-cuda's direct launch does not take: they are
                # refused before anything runs, so the ordinary launch is safe
                if self.launched:
                    raise
                self.fast = False
        self.kernel[grid, block](*args)


_WARNED = set()


class CudaBackend:
    """Device copies of one fit's data and state; runs epochs for the engine.

    ``X`` (host or device), ``Y`` (n, T) targets, ``sw``, ``cw`` (K, 2) and
    ``train_idx`` go to the device once, here; output ``k`` of the K predicts target
    column ``k % T`` (K > T: models of different hyper-parameters on the same targets,
    ``prog.outputs``). :meth:`epoch` uploads the engine's state (host NumPy), runs one
    epoch and copies the state back into the same host arrays, so the estimator never
    holds a device array and a CPU fit can continue where a GPU fit stopped (and the
    reverse). ``mode`` (None: :data:`MODE`) is resolved by :func:`choose_mode`;
    ``self.mode`` is the one that runs.
    """

    def __init__(self, X, Y, sw, cw, train_idx, prog, batch=None, mode=None):
        self.X = as_device(X)
        d = int(self.X.shape[1])
        k = int(cw.shape[0])
        nt = int(Y.shape[1])
        yw = np.empty((Y.shape[0], nt + 1), dtype=np.float64)
        yw[:, :nt] = Y
        yw[:, nt] = sw
        self.YW = cuda.to_device(yw)
        self.rows = cuda.to_device(np.ascontiguousarray(train_idx, dtype=np.int64))
        self.n_train = int(train_idx.shape[0])
        self.order = cuda.device_array(max(self.n_train, 1), dtype=np.int64)
        if batch is None:
            batch = prog.batch_size if prog.batch_size > 0 else max(self.n_train, 1)
        self.batch = int(batch)
        self.prog = prog
        self.cw = np.ascontiguousarray(cw, dtype=np.float64)
        self.layout = Layout(k, d, prog, nt)
        self.regs = regs_path(k, d, prog.multinomial)
        self.host = np.zeros(self.layout.size, dtype=np.float64)
        self.buf = cuda.to_device(self.host)
        self.M, self.V, self.F, self.C = self.layout.views(self.buf)
        self.ints = self.layout.ints(self.batch, SLOT_MIN, MAX_BLOCKS)
        self.I = cuda.to_device(self.ints)
        self.n_slots = max_slots_upto(self.batch, SLOT_MIN, MAX_BLOCKS)
        self.Gp = cuda.device_array((self.n_slots, k, d + 1 + GP_EXTRA), dtype=np.float64)
        self.Ps = cuda.device_array((self.n_slots if prog.batch_norm else 1, d),
                                    dtype=np.float64)
        self.launch = {name: Launch(kern) for (name, regs), kern in _KERNELS.items()
                       if regs == self.regs}
        self.mode = choose_mode(self.batch, d, self.X.dtype.itemsize, mode)
        self.grid = {"step": self.n_slots, "persistent": 1}.get(self.mode)
        self.Scr = cuda.device_array((1, 1, 1, 2), dtype=np.float64)
        if self.mode == "cooperative":
            self.grid = self._cooperative_grid(mode)
        if not self.regs:
            self.Scr = cuda.device_array((self.grid, TPB, k, 2), dtype=np.float64)

    def _epoch_args(self, order):
        return (self.X, self.YW, order, self.M, self.V, self.F, self.C, self.I, self.Gp,
                self.Ps, self.Scr)

    def _cooperative_grid(self, mode):
        """Blocks of the cooperative grid: at most as many as are resident at once
        (a larger cooperative launch fails), as slots, and as ``COOP_GRID``. Where the
        cooperative kernel cannot be built, ``"auto"`` falls back to step mode (with a
        warning) and an explicit ``"cooperative"`` raises."""
        if SIMULATOR:
            limit = 1  # the simulator's grid sync is a block sync
        else:
            try:
                compiled = self.launch["cooperative"].bind(self._epoch_args(self.rows))
                limit = int(compiled.max_cooperative_grid_blocks(TPB))
                if limit < 1:
                    raise RuntimeError("no block of the kernel fits on a multiprocessor")
            except Exception as exc:
                why = f"{type(exc).__name__}: {exc}"
                if (MODE if mode is None else mode) == "cooperative":
                    raise RuntimeError(f"the cooperative kernel cannot run here ({why})"
                                       ) from exc
                if why not in _WARNED:
                    _WARNED.add(why)
                    warnings.warn(f"fastgd: cooperative GPU mode unavailable ({why}); "
                                  "using step mode", RuntimeWarning, stacklevel=3)
                self.mode = "step"
                return self.n_slots
        if COOP_GRID > 0:
            limit = min(limit, COOP_GRID)
        return max(1, min(limit, self.n_slots))

    def start(self, state):
        """Nothing to do: :meth:`epoch` uploads the state (the engine's interface)."""

    def epoch(self, state, seed, active, eta_fixed, epoch, out):
        """One epoch; ``seed`` None keeps the training rows in order.

        Copies the state and the (K, 6) statistics ``out`` back to the host.
        """
        self.layout.pack(self.host, state, self.cw, active, eta_fixed, epoch)
        self.buf.copy_to_device(self.host)
        order = self.rows
        if seed is not None:
            half_bits, keys = counter_keys(self.n_train, seed)
            self.ints[I_HALF_BITS] = half_bits
            self.ints[I_KEYS:I_KEYS + 4] = keys
            self.I.copy_to_device(self.ints)
            self.launch["order"](-(-self.n_train // TPB), TPB, self.rows, self.I,
                                 self.order)
            order = self.order
        if self.mode == "step":
            self._steps(order)
        else:
            self.launch[self.mode](self.grid, TPB, *self._epoch_args(order))
        self.buf.copy_to_host(self.host)
        self.layout.unpack(self.host, state, out)

    def _steps(self, order):
        """The launches of a step-mode epoch (no host synchronisation)."""
        X, M, V, F, C, I, Gp = self.X, self.M, self.V, self.F, self.C, self.I, self.Gp
        grad, stp, bn = self.launch["grad"], self.launch["step"], self.launch["bn"]
        start = 0
        while start < self.n_train:
            m = min(self.batch, self.n_train - start)
            n_sl = n_slots(m, SLOT_MIN, MAX_BLOCKS)
            if self.ints[I_BN]:
                for phase in (0, 1, 2, 3):
                    if phase != 2 or m > 1:
                        bn(n_sl if phase % 2 == 0 else 1, TPB, X, order, M, V, F, C, I,
                           self.Ps, start, phase)
            grad(n_sl, TPB, X, self.YW, order, M, V, I, Gp, self.Scr, start)
            stp(1, TPB, order, M, V, F, C, I, Gp, start)
            start += m
