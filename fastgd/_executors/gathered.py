"""Shuffled epochs trained from chunks of rows copied in epoch order.

On data larger than the caches, a shuffled epoch of per-sample SGD (or of small
minibatches) waits on memory for nearly every row. :class:`Gathered` splits the
epoch's order into chunks; each chunk's rows are copied to a contiguous buffer by
:func:`fastgd._kernels.row_copy.gather_rows` (a loop with nothing to wait for but
memory, which keeps many more loads in flight), then the training loop runs over the
buffer in order; on one thread the whole epoch, chunk after chunk, is one compiled
call. With two threads the next chunk is copied while the current one trains, and the
training thread copies the parts of it the other has not reached yet, so an epoch
costs about half the sum of copying and training instead of the sum.

The training loop sees the same rows in the same order and does the same arithmetic
(the buffers have the type of the data), so the weights are bit-identical with or
without gathering, on one thread or two. Only the epoch's loss sums may differ in the
last bit between gathered and in-place epochs: under ``reassoc`` the compiler may hold
a running sum in a register for the length of a call, so where calls start changes its
rounding. The thresholds below come from measurements recorded in
``docs/performance-notes.md``.
"""

import contextlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._kernels import cpu
from .._kernels.bundles import Buffers, Rows
from .._kernels.row_copy import gather_rows, gathered_epoch_batch, gathered_epoch_plain
from .._orders import row_bytes
from .base import CpuExecutor

#: data smaller than this mostly stays in the caches from one epoch to the next, and
#: a copy would only add work
GATHER_MIN_BYTES = 32 * 2**20
#: bytes of X per chunk: large enough that handing a chunk to the other thread is
#: small next to training on it, small enough that the copy is still in the caches
CHUNK_BYTES = 3 * 2**20
#: on one thread, dense rows narrower than this (bytes) train in place: the loops'
#: prefetches keep enough of them in flight, and the copy would add its time
PER_SAMPLE_MIN_ROW_BYTES = 512
MINIBATCH_MIN_ROW_BYTES = 1024
#: a dense chunk is copied in this many parts, each claimed by whichever thread is free
PARTS = 8


def _nbytes(X):
    if isinstance(X, np.ndarray):
        return X.nbytes
    return sum(a.nbytes for a in X)


def worth_gathering(X, shuffle, threads, batch):
    """Whether a shuffled epoch over ``X`` in batches of ``batch`` rows should be
    trained from gathered chunks: a full shuffle (a block shuffle already reads memory
    in runs), data too large to stay in the caches, and C-ordered dense rows, or CSR
    with a second thread; on one thread, dense rows only from
    ``PER_SAMPLE_MIN_ROW_BYTES`` (``batch == 1``) or ``MINIBATCH_MIN_ROW_BYTES`` up
    (CSR on one thread trains faster in place than copied); with a second thread,
    only minibatches of which a chunk holds two or more (a chunk of one batch hands
    work between the threads at every batch, which costs more than the copy saves).
    """
    if isinstance(shuffle, str) or not shuffle:
        return False
    if threads >= 2 and batch > 1 and 2 * batch * row_bytes(X) > CHUNK_BYTES:
        return False
    if isinstance(X, np.ndarray):
        if not X.flags.c_contiguous:
            return False
        if threads < 2:
            narrow = PER_SAMPLE_MIN_ROW_BYTES if batch == 1 else MINIBATCH_MIN_ROW_BYTES
            if row_bytes(X) < narrow:
                return False
    elif threads < 2:
        return False
    return _nbytes(X) >= GATHER_MIN_BYTES


@contextlib.contextmanager
def gather_all():
    """Within the block, every fit gathers its shuffled epochs over dense C-ordered
    rows, whatever their size and width (:func:`fastgd.warmup` uses it to compile the
    gathered loops on tiny data). It sets this module's thresholds, for every thread."""
    names = ("GATHER_MIN_BYTES", "PER_SAMPLE_MIN_ROW_BYTES", "MINIBATCH_MIN_ROW_BYTES")
    saved = {name: globals()[name] for name in names}
    globals().update(dict.fromkeys(names, 0))
    try:
        yield
    finally:
        globals().update(saved)


def csr_capacity(indptr, rows):
    """Non-zeros that any ``rows`` rows of a CSR matrix hold at most: the sum of its
    ``rows`` longest rows."""
    lengths = np.diff(indptr)
    if rows >= lengths.shape[0]:
        return int(lengths.sum())
    return int(np.partition(lengths, lengths.shape[0] - rows)[-rows:].sum())


class _Parts:
    """The parts of one chunk: each handed out once (``next()`` on a count is atomic
    under the GIL), and a count of those copied that :meth:`wait` blocks on. A copy
    task that starts after every part was claimed copies nothing. A copy that failed
    on the helper thread is raised by :meth:`wait` on the training thread."""

    def __init__(self, n_parts):
        self.n_parts = n_parts
        self.claim = itertools.count().__next__
        self.done = 0
        self.error = None
        self.cond = threading.Condition()

    def finished(self):
        with self.cond:
            self.done += 1
            if self.done >= self.n_parts:
                self.cond.notify_all()

    def wait(self):
        with self.cond:
            self.cond.wait_for(lambda: self.done >= self.n_parts)
        if self.error is not None:
            raise self.error


class Gathered(CpuExecutor):
    """Runs an epoch over gathered chunks (see the module notes).

    Chunks hold a multiple of the batch size (no batch is split between chunks).
    ``threads > 1``: the next chunk is copied by a second thread (``pool``, which the
    order provider may share to draw the next permutation) while the current one
    trains.
    """

    def __init__(self, rows, kprog, plain, threads=1):
        super().__init__(rows, kprog, plain)
        X = rows.X
        dense = isinstance(X, np.ndarray)
        n = X.shape[0] if dense else X[2].shape[0] - 1
        multiple = 1 if plain else kprog.batch_size
        chunk = max(int(CHUNK_BYTES // max(row_bytes(X), 1.0)), 1)
        self.chunk_rows = min(max(chunk // multiple, 1) * multiple, max(n, 1))
        self.dense = dense
        # parts of a chunk are handed to whichever thread is free (dense rows only)
        self.part_rows = -(-self.chunk_rows // PARTS) if dense else self.chunk_rows
        self.buffers = [self._buffers(rows) for _ in range(2 if threads > 1 else 1)]
        self.pool = ThreadPoolExecutor(max_workers=1) if threads > 1 else None

    def _buffers(self, rows):
        X, n_rows = rows.X, self.chunk_rows
        if self.dense:
            B = np.empty((n_rows, X.shape[1]), dtype=X.dtype)
        else:
            data, indices, indptr = X
            cap = csr_capacity(indptr, n_rows)
            B = (np.empty(cap, dtype=data.dtype), np.empty(cap, dtype=indices.dtype),
                 np.zeros(n_rows + 1, dtype=indptr.dtype))
        return Buffers(B, np.empty((n_rows, rows.Y.shape[1]), dtype=rows.Y.dtype),
                       np.empty(n_rows, dtype=rows.sw.dtype),
                       np.arange(n_rows, dtype=np.int64))

    def run(self, state, order, ctl, n_epochs=1):
        out = self.new_stats(state)
        st = self.arrays(state)
        if self.pool is None:
            if self.plain:
                gathered_epoch_plain(self.rows, order.rows, self.chunk_rows,
                                     self.buffers[0], self.kprog, st, ctl, out)
            else:
                gathered_epoch_batch(self.rows, order.rows, self.chunk_rows,
                                     self.buffers[0], self.kprog, st, self.work, ctl, out)
        else:
            self._two_threads(order.rows, st, ctl, out)
        self.finish_epoch(state)
        return out[None]

    def _train_chunk(self, buffers, m, st, ctl, out):
        chunk = Rows(buffers.B, buffers.YB, buffers.swB, self.rows.cw)
        rows_at = buffers.order[:m]
        if self.plain:
            cpu.epoch_plain(chunk, rows_at, cpu.NO_LOOKAHEAD, self.kprog, st, ctl, out)
        else:
            cpu.epoch_batch(chunk, rows_at, cpu.NO_LOOKAHEAD, self.kprog, st, self.work,
                            ctl, out)

    def _two_threads(self, order, st, ctl, out):
        """Both threads copy: the helper starts on the next chunk while this thread
        trains, then this thread takes the parts still unclaimed, and waits only for
        parts the helper is copying, never for the helper to start (it may be busy
        drawing the next epoch's permutation)."""
        n = order.shape[0]
        parts, m = self._parts(order, 0)
        self.pool.submit(self._copy, order, 0, 0, parts)
        self._copy(order, 0, 0, parts)
        parts.wait()
        start, b = 0, 0
        while start < n:
            nxt = start + m
            if nxt < n:
                parts, m_next = self._parts(order, nxt)
                self.pool.submit(self._copy, order, nxt, 1 - b, parts)
            self._train_chunk(self.buffers[b], m, st, ctl, out)
            if nxt >= n:
                break
            self._copy(order, nxt, 1 - b, parts)
            parts.wait()
            start, b, m = nxt, 1 - b, m_next

    def _parts(self, order, start):
        stop = min(start + self.chunk_rows, order.shape[0])
        return _Parts(-(-(stop - start) // self.part_rows)), stop - start

    def _copy(self, order, start, b, parts):
        """Copy parts of the chunk starting at ``order[start]`` into buffer ``b`` until
        ``parts`` hands out none left."""
        stop = min(start + self.chunk_rows, order.shape[0])
        B, YB, swB, _ = self.buffers[b]
        X, Y, sw = self.rows.X, self.rows.Y, self.rows.sw
        step = self.part_rows
        while (p := parts.claim()) < parts.n_parts:
            try:
                a = start + p * step
                r = p * step
                if self.dense:
                    # a view of the buffer from row r on has the buffer's type: no
                    # new compile
                    gather_rows(X, Y, sw, order, a, min(a + step, stop), B[r:], YB[r:],
                                swB[r:])
                else:  # one part: a CSR row's place depends on the rows before it
                    gather_rows(X, Y, sw, order, a, stop, B, YB, swB)
            except BaseException as exc:
                parts.error = exc
                raise
            finally:
                parts.finished()

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()
