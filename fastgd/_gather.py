"""Shuffled epochs trained from chunks of rows copied in epoch order.

On data larger than the caches, a shuffled epoch of per-sample SGD (or of small
minibatches) waits on memory for nearly every row: measured on 1M x 100 float64, the
per-sample loop reading rows in a random order with prefetching took 2.7x its time on
rows in storage order. :class:`Gatherer` splits the epoch's order into chunks; each
chunk's rows are copied to a contiguous buffer by :func:`fastgd._kernels.gather.gather_rows`
(a loop with nothing to wait for but memory, which keeps many more loads in flight),
then the training loop runs over the buffer in order; on one thread the whole epoch,
chunk after chunk, is one compiled call. With two threads the next chunk is copied
while the current one trains, and the training thread copies the parts of it the
other has not reached yet, so an epoch costs about half the sum of copying
and training instead of the sum.

The training loop sees the same rows in the same order and does the same arithmetic
(the buffers have the type of the data), so the weights are bit-identical with or
without gathering, on one thread or two. Only the epoch's loss sums may differ in the
last bit between gathered and in-place epochs: under ``reassoc`` the compiler may hold
a running sum in a register for the length of a call, so where calls start changes its
rounding.
"""

import contextlib
import copy
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._kernels.gather import gather_rows
from ._kernels.shuffle import draw_permutation

#: data smaller than this mostly stays in the caches from one epoch to the next, and
#: a copy would only add work
GATHER_MIN_BYTES = 32 * 2**20
#: bytes of X per chunk: large enough that handing a chunk to the other thread (tens of
#: microseconds) is small next to training on it, small enough that the copy is still
#: in the caches when it is read (measured on 1M x 100: 3.2 MB chunks 93 ms per epoch,
#: 13 MB chunks 125 ms, 0.8 MB chunks 141 ms)
CHUNK_BYTES = 3 * 2**20
#: on one thread, dense rows narrower than this (bytes) train in place: the loops'
#: prefetches keep enough of them in flight, and the copy would add its time to the
#: epoch's. Measured on 1M rows, shuffled, one thread, ms per epoch in place /
#: gathered: per-sample d = 50 float64 74-78 / 97-107, d = 64 131-162 / 118-126,
#: d = 100 160-166 / 144-146, d = 100 float32 90-110 / 112-137; minibatch 256 d = 64
#: 91-93 / 104-110, d = 100 119-128 / 120-128, d = 200 222-243 / 218-230 (a wash)
PER_SAMPLE_MIN_ROW_BYTES = 512
MINIBATCH_MIN_ROW_BYTES = 1024
#: a dense chunk is copied in this many parts, each claimed by whichever thread is free:
#: the training thread copies what the other has not reached when it is done training
PARTS = 8


def _nbytes(X):
    if isinstance(X, np.ndarray):
        return X.nbytes
    return sum(a.nbytes for a in X)


def row_bytes(X):
    """Bytes of ``X`` (dense, or a CSR tuple) per row: values, and indices for CSR."""
    if isinstance(X, np.ndarray):
        return X.shape[1] * X.itemsize
    data, indices, indptr = X
    nnz_row = max(data.shape[0] / max(indptr.shape[0] - 1, 1), 1.0)
    return nnz_row * (data.itemsize + indices.itemsize)


def worth_gathering(X, shuffle, threads, batch):
    """Whether a shuffled epoch over ``X`` in batches of ``batch`` rows should be
    trained from gathered chunks: a full shuffle (a block shuffle already reads memory
    in runs), data too large to stay in the caches, and C-ordered dense rows, or CSR
    with a second thread; on one thread, dense rows only from
    ``PER_SAMPLE_MIN_ROW_BYTES`` (``batch == 1``) or ``MINIBATCH_MIN_ROW_BYTES`` up.

    CSR on one thread trains in place: measured on CSR 1M x 100k with 50 non-zeros
    per row (per-sample, shuffled), copying an epoch's rows takes 170 ms and training
    on them in storage order 205 ms, more than the 315-349 ms of the epoch in place;
    a second thread copying ahead brought it to 221-275 ms (alternating fits).
    """
    if isinstance(shuffle, str) or not shuffle:
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


class Gatherer:
    """Runs an epoch as ``train(B, YB, swB, order)`` calls over gathered chunks.

    ``multiple``: chunks hold a multiple of this many rows (the batch size, so that no
    batch is split between chunks). ``threads > 1``: the next chunk is copied by a
    second thread while the current one trains. ``one_thread``: on one thread, the
    compiled loop that copies and trains every chunk of the epoch in one call
    (:func:`fastgd._kernels.gather.gathered_epoch_plain` or ``_batch``).
    """

    def __init__(self, X, Y, sw, multiple=1, threads=1, one_thread=None):
        self.X, self.Y, self.sw = X, Y, sw
        dense = isinstance(X, np.ndarray)
        n = X.shape[0] if dense else X[2].shape[0] - 1
        rows = max(int(CHUNK_BYTES // max(row_bytes(X), 1.0)), 1)
        rows = min(max(rows // multiple, 1) * multiple, max(n, 1))
        self.rows = rows
        self.dense = dense
        # parts of a chunk are handed to whichever thread is free (dense rows only)
        self.part_rows = -(-rows // PARTS) if dense else rows
        self.order = np.arange(rows, dtype=np.int64)
        n_buffers = 2 if threads > 1 else 1
        self.buffers = []
        for _ in range(n_buffers):
            if dense:
                B = np.empty((rows, X.shape[1]), dtype=X.dtype)
            else:
                data, indices, indptr = X
                cap = csr_capacity(indptr, rows)
                B = (np.empty(cap, dtype=data.dtype), np.empty(cap, dtype=indices.dtype),
                     np.zeros(rows + 1, dtype=indptr.dtype))
            self.buffers.append((B, np.empty((rows, Y.shape[1]), dtype=Y.dtype),
                                 np.empty(rows, dtype=sw.dtype)))
        self.pool = ThreadPoolExecutor(max_workers=1) if threads > 1 else None
        self.one_thread = one_thread

    def _copy(self, order, start, b, parts):
        """Copy parts of the chunk starting at ``order[start]`` into buffer ``b`` until
        ``parts`` hands out none left."""
        stop = min(start + self.rows, order.shape[0])
        B, YB, swB = self.buffers[b]
        step = self.part_rows
        while (p := parts.claim()) < parts.n_parts:
            try:
                a = start + p * step
                r = p * step
                if self.dense:
                    # a view of the buffer from row r on has the buffer's type: no
                    # new compile
                    gather_rows(self.X, self.Y, self.sw, order, a,
                                min(a + step, stop), B[r:], YB[r:], swB[r:])
                else:  # one part: a CSR row's place depends on the rows before it
                    gather_rows(self.X, self.Y, self.sw, order, a, stop, B, YB, swB)
            except BaseException as exc:
                parts.error = exc
                raise
            finally:
                parts.finished()

    def _parts(self, order, start):
        stop = min(start + self.rows, order.shape[0])
        return _Parts(-(-(stop - start) // self.part_rows)), stop - start

    def epoch(self, order, train, cw=None, args=None):
        """Train on the rows ``order`` in that order, one gathered chunk at a time:
        ``train(B, YB, swB, chunk_order)`` per chunk with two threads; on one thread,
        ``one_thread(X, Y, sw, cw, order, rows, B, YB, swB, chunk_order, args)``, one
        call for the whole epoch (``args``: the epoch kernel's arguments after
        ``order``)."""
        n = order.shape[0]
        if self.pool is None:
            self.one_thread(self.X, self.Y, self.sw, cw, order, self.rows,
                            *self.buffers[0], self.order, args)
            return
        # Both threads copy: the helper starts on the next chunk while this thread
        # trains, then this thread takes the parts still unclaimed, and waits only for
        # parts the helper is copying, never for the helper to start: it may be busy
        # drawing the next epoch's permutation (PermutationAhead), and waiting for its
        # task to finish made this thread idle for that long (15 ms an epoch with
        # NumPy's permutation).
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
            train(*self.buffers[b], self.order[:m])
            if nxt >= n:
                break
            self._copy(order, nxt, 1 - b, parts)
            parts.wait()
            start, b, m = nxt, 1 - b, m_next

    def close(self):
        if self.pool is not None:
            self.pool.shutdown()


class PermutationAhead:
    """Draws the next epoch's order (:func:`~fastgd._kernels.shuffle.draw_permutation`)
    on the gathering thread.

    A permutation of 1M rows takes 2.5-4 ms, during which the other thread would have
    nothing to copy. It is drawn from a copy of ``rng`` while the current epoch
    trains, and :meth:`take` uses it only if ``rng`` is still in the state it was
    copied from, then moves ``rng`` to the state after the draw: the same order and
    the same generator state as drawing at that point, so a snapshot taken between
    epochs, an early stop (the draw is dropped, ``rng`` untouched) and a later
    ``partial_fit`` all see what they would without it.
    """

    def __init__(self, pool):
        self.pool = pool
        self.pending = None

    def draw(self, rng, idx):
        """Start drawing the order of ``idx`` from a copy of ``rng``."""
        start = rng.bit_generator.state
        twin = copy.deepcopy(rng)

        def permute():
            order = draw_permutation(twin, idx)  # the kernel releases the GIL
            return start, twin.bit_generator.state, order

        self.pending = self.pool.submit(permute)

    def permutation(self, rng, idx, draw_next):
        """``draw_permutation(rng, idx)``, drawn ahead if it was; with ``draw_next``
        start drawing the one after."""
        order = self.take(rng)
        if order is None:
            order = draw_permutation(rng, idx)
        if draw_next:
            self.draw(rng, idx)
        return order

    def take(self, rng):
        """The drawn order if ``rng`` has not moved since :meth:`draw` (else None)."""
        if self.pending is None:
            return None
        start, end, order = self.pending.result()
        self.pending = None
        if rng.bit_generator.state != start:
            return None
        rng.bit_generator.state = end
        return order
