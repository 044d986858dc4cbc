"""Epoch orders for ``shuffle="block"``: shuffled blocks of rows, shuffled within.

A full permutation reads rows in a random order, and on data larger than the caches
every row is then a trip to memory. The block order keeps ``block`` consecutive rows
together: the blocks come in a random order and the rows of each block in a random
order, so each block's rows are read while its memory is hot. Every row is still
visited once per epoch. The generator is splitmix64, seeded from the estimator's
NumPy generator each epoch, so the order is reproducible from ``random_state``.
"""

import numpy as np

from ._jit import kernel


@kernel(nogil=True)
def _splitmix64(state):
    z = state + np.uint64(0x9E3779B97F4A7C15)
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
def block_order(rows, block, seed, out):
    """Fill ``out`` with ``rows`` in shuffled blocks of ``block`` rows, shuffled within."""
    n = rows.shape[0]
    n_blocks = (n + block - 1) // block
    state = np.uint64(seed)
    perm = np.arange(n_blocks)
    for i in range(n_blocks - 1, 0, -1):
        state, j = _below(state, i + 1)
        tmp = perm[i]
        perm[i] = perm[j]
        perm[j] = tmp
    pos = 0
    for bi in range(n_blocks):
        b = perm[bi]
        start = b * block
        stop = min(start + block, n)
        m = stop - start
        for k in range(m):
            out[pos + k] = rows[start + k]
        for k in range(m - 1, 0, -1):
            state, j = _below(state, k + 1)
            tmp = out[pos + k]
            out[pos + k] = out[pos + j]
            out[pos + j] = tmp
        pos += m
    return out
