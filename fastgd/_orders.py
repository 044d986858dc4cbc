"""Order providers: the order in which an epoch visits the training rows.

Each provider's :meth:`next` returns an :class:`EpochOrder` drawn from the estimator's
random generator (one or no draw per epoch, so an order is reproducible from
``random_state``):

* :class:`StorageOrder` -- the rows as stored (``shuffle=False``, or one batch holding
  every row, where the order would only change rounding);
* :class:`FullShuffle` -- a permutation (``shuffle=True``);
* :class:`ShuffleAhead` -- the same permutation, drawn on a helper thread while the
  previous epoch trains;
* :class:`BlockShuffle` -- blocks of consecutive rows in a random order, shuffled
  within (``shuffle="block"``), with the rows to prefetch;
* :class:`SeedOrder` -- only a seed, for executors that draw the order themselves (the
  GPU computes its permutation on the device).
"""

import copy
from collections import namedtuple

import numpy as np

from ._kernels.cpu import NO_LOOKAHEAD
from ._kernels.shuffle import block_order, draw_permutation

#: ``rows``: positions to visit, in order; ``lookahead``: rows to prefetch (empty:
#: the loops look ``PREFETCH_DISTANCE`` positions ahead); ``seed``: for executors
#: that draw the order themselves (None: rows in order)
EpochOrder = namedtuple("EpochOrder", "rows lookahead seed")

#: the largest block (bytes of X) whose rows are prefetched as the block before it
#: trains; larger blocks are evicted from the caches between their prefetch and their
#: turn, and prefetch a few rows ahead in their order instead
STREAM_MAX_BLOCK_BYTES = 2**19
#: bytes of X per block when ``shuffle_block_size`` is None (a block fits in L2)
AUTO_BLOCK_BYTES = 2**18


def row_bytes(X):
    """Bytes of ``X`` (dense, or a CSR tuple) per row: values, and indices for CSR."""
    if isinstance(X, np.ndarray):
        return X.shape[1] * X.itemsize
    data, indices, indptr = X
    nnz_row = max(data.shape[0] / max(indptr.shape[0] - 1, 1), 1.0)
    return nnz_row * (data.itemsize + indices.itemsize)


class OrderProvider:
    """Base: :meth:`next` gives an epoch's order (``more``: another epoch may follow)."""

    def next(self, rng, more=True):
        raise NotImplementedError

    def close(self):
        """Release helper resources (none by default)."""


class StorageOrder(OrderProvider):
    def __init__(self, train_idx):
        self.order = EpochOrder(train_idx, NO_LOOKAHEAD, None)

    def next(self, rng, more=True):
        return self.order


class FullShuffle(OrderProvider):
    def __init__(self, train_idx):
        self.train_idx = train_idx

    def next(self, rng, more=True):
        return EpochOrder(draw_permutation(rng, self.train_idx), NO_LOOKAHEAD, None)


class BlockShuffle(OrderProvider):
    """Shuffled blocks of ``block_rows`` rows (None: about 256 KiB of ``X``)."""

    def __init__(self, train_idx, X, block_rows=None):
        self.train_idx = train_idx
        self.block_rows = int(block_rows) if block_rows else \
            max(16, int(AUTO_BLOCK_BYTES // max(row_bytes(X), 1)))
        self.buffer = np.empty(train_idx.shape[0], dtype=np.int64)
        # the next block is streamed in while one trains only for dense C-ordered rows
        # of small blocks; CSR epochs wait on the scattered weights more than the rows
        streamed = (isinstance(X, np.ndarray) and X.flags.c_contiguous
                    and self.block_rows * row_bytes(X) <= STREAM_MAX_BLOCK_BYTES)
        self.lookahead = np.empty(train_idx.shape[0] if streamed else 0, dtype=np.int64)

    def next(self, rng, more=True):
        seed = int(rng.integers(0, 2**63))
        rows = block_order(self.train_idx, self.block_rows, seed, self.buffer,
                           self.lookahead)
        return EpochOrder(rows, self.lookahead, None)


class SeedOrder(OrderProvider):
    """One seed per epoch when shuffling (the executor permutes from it)."""

    def __init__(self, shuffle):
        self.shuffle = bool(shuffle)

    def next(self, rng, more=True):
        seed = int(rng.integers(0, 2**63)) if self.shuffle else None
        return EpochOrder(None, NO_LOOKAHEAD, seed)


class ShuffleAhead(OrderProvider):
    """:class:`FullShuffle`, the next epoch's permutation drawn on ``pool``'s thread.

    It is drawn from a copy of ``rng`` while the current epoch trains, and used only if
    ``rng`` is still in the state it was copied from, then ``rng`` moves to the state
    after the draw: the same order and the same generator state as drawing at that
    point, so a snapshot taken between epochs, an early stop (the draw is dropped,
    ``rng`` untouched) and a later ``partial_fit`` all see what they would without it.
    """

    def __init__(self, train_idx, pool):
        self.train_idx = train_idx
        self.pool = pool
        self.pending = None

    def next(self, rng, more=True):
        rows = self._take(rng)
        if rows is None:
            rows = draw_permutation(rng, self.train_idx)
        if more:
            self._draw(rng)
        return EpochOrder(rows, NO_LOOKAHEAD, None)

    def _draw(self, rng):
        start = rng.bit_generator.state
        twin = copy.deepcopy(rng)

        def permute():
            rows = draw_permutation(twin, self.train_idx)  # releases the GIL
            return start, twin.bit_generator.state, rows

        self.pending = self.pool.submit(permute)

    def _take(self, rng):
        if self.pending is None:
            return None
        start, end, rows = self.pending.result()
        self.pending = None
        if rng.bit_generator.state != start:
            return None
        rng.bit_generator.state = end
        return rows
