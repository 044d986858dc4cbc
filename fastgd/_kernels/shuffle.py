"""Epoch orders: a full permutation (``shuffle=True``) and shuffled blocks of rows,
shuffled within (``shuffle="block"``).

Both draw from splitmix64, seeded from the estimator's NumPy generator each epoch, so
an order is reproducible from ``random_state``.

A full permutation reads rows in a random order, and on data larger than the caches
every row is then a trip to memory. The block order keeps ``block`` consecutive rows
together: the blocks come in a random order and the rows of each block in a random
order, so each block's rows are read while its memory is hot. Every row is still
visited once per epoch.
"""

import numpy as np

from ._jit import kernel


#: splitmix64's increment: its state after t draws from ``seed`` is
#: ``seed + t * _GAMMA``
_GAMMA = np.uint64(0x9E3779B97F4A7C15)


@kernel(nogil=True)
def _splitmix64(state):
    z = state + _GAMMA
    s = z
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return s, z ^ (z >> np.uint64(31))


@kernel(nogil=True)
def _below(state, n):
    """A number in [0, n) (n < 2**32) and the new state (Lemire's multiply-shift)."""
    state, r = _splitmix64(state)
    return state, np.int64((np.uint64(r >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@kernel(nogil=True)
def block_order(rows, block, seed, out, lookahead):
    """Fill ``out`` with ``rows`` in shuffled blocks of ``block`` rows, shuffled within,
    and ``lookahead`` (unless it is empty) with the row to prefetch at each position of
    ``out``.

    Position p of a block prefetches the p-th row, in storage order, of the block
    that comes next (-1: nothing, in the last block and past the next block's end).
    The next block is thus read front to back, one row per step, while the current
    one trains: the hardware prefetcher follows that stream, and the block's rows are
    in cache before their random order reaches them.

    The draws: one backward Fisher-Yates shuffle of the blocks, then one of each
    block's rows, in the order the blocks come, all from one splitmix64 stream (so an
    order is fixed by ``seed`` and ``block``); the draws come first so that their loop
    vectorizes.
    """
    n = rows.shape[0]
    n_blocks = (n + block - 1) // block
    state = np.uint64(seed)
    perm = np.arange(n_blocks)
    for i in range(n_blocks - 1, 0, -1):
        state, j = _below(state, i + 1)
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp
    js = np.empty(min(block, n), dtype=np.int64)  # a block's draws, made before its swaps
    pos = 0
    # Indices are cast to np.uintp: Numba wraps a negative signed index, and for an
    # index like pos + k, of unknown sign, that select on every access kept the loops
    # from vectorizing (a third of the time in all). Views out[pos:pos + m] do as well
    # for large blocks but cost more per block than a one-row block takes.
    for bi in range(n_blocks):
        start = perm[bi] * block
        stop = min(start + block, n)
        m = stop - start
        for k in range(m):
            out[np.uintp(pos + k)] = rows[np.uintp(start + k)]
        # The draw for row k is the stream's draw number m - 1 - k in this block, and
        # splitmix64's state after t draws is state + t * _GAMMA: the draws depend on
        # that counter only, so they are all made first, in a loop that vectorizes,
        # and only the swaps stay serial.
        for k in range(1, m):
            js[k] = _below(state + np.uint64(m - 1 - k) * _GAMMA, k + 1)[1]
        state += np.uint64(m - 1) * _GAMMA
        for k in range(m - 1, 0, -1):
            a = np.uintp(pos + k)
            b = np.uintp(pos + js[k])
            tmp = out[a]
            out[a] = out[b]
            out[b] = tmp
        if lookahead.shape[0] > 0:
            next_start = n
            next_stop = n
            if bi + 1 < n_blocks:
                next_start = perm[bi + 1] * block
                next_stop = min(next_start + block, n)
            for k in range(m):
                lookahead[np.uintp(pos + k)] = (rows[np.uintp(next_start + k)]
                                                if next_start + k < next_stop else -1)
        pos += m
    return out


@kernel(nogil=True)
def permutation(rows, seed, out):
    """Fill ``out`` with ``rows`` in a uniformly random order.

    The "inside-out" Fisher-Yates shuffle: for i = 0, 1, ..., n - 1 draw j uniform in
    [0, i], move ``out[j]`` to ``out[i]`` and put ``rows[i]`` at ``out[j]``. Every
    one of the n! orders is equally likely, up to the generator's quality and a bias
    below n / 2**32 per draw (the multiply-shift range reduction has no rejection
    step). One pass over ``rows``, several times faster than NumPy's
    ``Generator.permutation``.
    """
    n = rows.shape[0]
    state = np.uint64(seed)
    for i in range(n):
        state, j = _below(state, i + 1)
        out[i] = out[j]
        out[j] = rows[i]
    return out


def draw_permutation(rng, rows):
    """A new array holding ``rows`` in a random order, from one draw of ``rng``."""
    seed = int(rng.integers(0, 2**63))
    return permutation(rows, seed, np.empty(rows.shape[0], dtype=np.int64))
