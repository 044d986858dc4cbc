"""Copy the rows of a shuffled epoch, in epoch order, into a contiguous buffer.

A per-sample step cannot start before the previous one has updated the weights, so a
shuffled epoch over data larger than the caches alternates a short computation with a
trip to memory for the next row; prefetching a few rows ahead hides only part of it,
because the loads of a few rows are all the memory requests one core keeps in flight.
Copying a chunk of the epoch's rows with nothing else to do keeps the memory system
busy (close to the random-row floor), and training then reads the copy as consecutive
rows. With a second thread the copy of the next chunk runs while the current one
trains (:mod:`fastgd._executors.gathered`).

The training loops run unchanged on the copy (``order`` = 0, 1, 2, ...): the same
rows in the same order with the same arithmetic, so the result is bit-identical.
"""

from numba import types
from numba.extending import overload

from ._jit import kernel
from .bundles import Rows
from .cpu import epoch_batch, epoch_plain
from .rows import PREFETCH_DISTANCE, index_prefetch, sample_prefetch


def copy_row(X, i, B, r):
    """Copy row ``i`` of ``X`` to row ``r`` of ``B`` (same kind: dense or CSR)."""


@overload(copy_row, inline="always")
def _ov_copy_row(X, i, B, r):
    if isinstance(X, types.BaseTuple):
        # B's indptr[0] is 0 and rows are copied in order: row r starts where r-1 ends.
        # Indexing, not `a, b, c = X`: with inline="always", two tuple unpackings in one
        # function made Numba 0.68 read B's arrays from X (silently wrong copies).
        def impl(X, i, B, r):
            data, indices, indptr = X[0], X[1], X[2]
            bdata, bindices, bindptr = B[0], B[1], B[2]
            a = indptr[i]
            n = indptr[i + 1] - a
            p = bindptr[r]
            for jj in range(n):
                bdata[p + jj] = data[a + jj]
                bindices[p + jj] = indices[a + jj]
            bindptr[r + 1] = p + n
        return impl

    def impl(X, i, B, r):
        for j in range(X.shape[1]):
            B[r, j] = X[i, j]
    return impl


@kernel(nogil=True)
def gather_rows(X, Y, sw, order, start, stop, B, YB, swB):
    """Copy rows ``order[start:stop]`` of ``X``, ``Y`` and ``sw`` to the first
    ``stop - start`` rows of ``B``, ``YB`` and ``swB``.

    A CSR ``B`` must hold the non-zeros of those rows (see
    :func:`fastgd._executors.gathered.csr_capacity`).
    """
    n_rows = order.shape[0]
    K = Y.shape[1]
    for ii in range(start, stop):
        if ii + 2 * PREFETCH_DISTANCE < n_rows:
            index_prefetch(X, order[ii + 2 * PREFETCH_DISTANCE])
        if ii + PREFETCH_DISTANCE < n_rows:
            sample_prefetch(X, Y, sw, order[ii + PREFETCH_DISTANCE])
        i = order[ii]
        r = ii - start
        copy_row(X, i, B, r)
        for k in range(K):
            YB[r, k] = Y[i, k]
        swB[r] = sw[i]


# The copy is in storage order: no lookahead, passed as an empty slice of
# ``buffers.order`` (a kernel sees the global ``cpu.NO_LOOKAHEAD`` as a read-only
# constant: a second specialization of each epoch kernel to compile on a cold cache).
# One thread runs the whole epoch in one call, chunk after chunk: driving the chunks
# from Python cost a kernel dispatch per chunk and a copy call per part.


@kernel(nogil=True)
def _gather_chunk(rows, order, start, stop, buffers):
    """Copy rows ``order[start:stop]`` to ``buffers``; return them as
    :class:`~fastgd._kernels.bundles.Rows` (at positions 0, 1, ... there)."""
    gather_rows(rows.X, rows.Y, rows.sw, order, start, stop, buffers.B, buffers.YB,
                buffers.swB)
    return Rows(buffers.B, buffers.YB, buffers.swB, rows.cw)


@kernel(nogil=True)
def gathered_epoch_plain(rows, order, chunk_rows, buffers, prog, st, ctl, out):
    """:func:`~fastgd._kernels.cpu.epoch_plain` over ``order``, ``chunk_rows`` rows at
    a time copied to ``buffers`` (:class:`~fastgd._kernels.bundles.Buffers`)."""
    n = order.shape[0]
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        chunk = _gather_chunk(rows, order, start, stop, buffers)
        epoch_plain(chunk, buffers.order[:stop - start], buffers.order[:0], prog, st, ctl,
                    out)


@kernel(nogil=True)
def gathered_epoch_batch(rows, order, chunk_rows, buffers, prog, st, work, ctl, out):
    """:func:`gathered_epoch_plain` for :func:`~fastgd._kernels.cpu.epoch_batch`
    (``chunk_rows`` is a multiple of the batch size)."""
    n = order.shape[0]
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        chunk = _gather_chunk(rows, order, start, stop, buffers)
        epoch_batch(chunk, buffers.order[:stop - start], buffers.order[:0], prog, st, work,
                    ctl, out)
