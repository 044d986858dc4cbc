"""Counter-based epoch order: the GPU backend's shuffle, with a host twin.

The GPU backend cannot draw a permutation with NumPy's generator without a host
round trip and an upload of n indices per epoch. Instead each position ``i`` of the
epoch order is computed on its own from a per-epoch seed: a 4-round Feistel network
on the smallest even-bit domain 2**(2h) >= n, with cycle walking to stay below n.
A Feistel network is a bijection whatever its round function, so the result is a
permutation of [0, n); cycle walking keeps it one (the walk from i stays in i's
cycle, which contains i < n), at fewer than 4 rounds of walking per index on average
(the domain is smaller than 4n). The round function is a 32-bit integer hash whose
products stay below 2**63, so the same source gives identical results in Python,
under ``numba.njit`` (int64) and under ``numba.cuda.jit``: the host can compute the
exact order a GPU epoch used (tests, CPU/GPU parity).
"""

import numpy as np

from ._jit import kernel


def permuted_index(i, n, half_bits, keys):
    """Position ``i`` of the counter-based permutation of ``range(n)`` (see above)."""
    mask = (1 << half_bits) - 1
    x = i
    while True:
        left = x >> half_bits
        right = x & mask
        for r in range(4):
            h = (right ^ keys[r]) & 0xFFFFFFFF
            h ^= h >> 16
            h = (h * 0x7FEB352D) & 0xFFFFFFFF
            h ^= h >> 15
            h = (h * 0x31848BAB) & 0xFFFFFFFF
            h ^= h >> 14
            nxt = left ^ (h & mask)
            left = right
            right = nxt
        x = (left << half_bits) | right
        if x < n:
            return x


_permuted_index = kernel(nogil=True)(permuted_index)


def counter_keys(n, seed):
    """``(half_bits, keys)`` of the counter permutation of ``n`` rows for ``seed``.

    ``keys`` are four 32-bit round keys (int64) derived from ``seed`` by NumPy's
    ``SeedSequence`` (fixed across platforms and versions).
    """
    bits = max(int(n - 1).bit_length(), 1)
    half_bits = (bits + 1) // 2
    keys = np.random.SeedSequence(int(seed)).generate_state(4, dtype=np.uint32)
    return half_bits, keys.astype(np.int64)


@kernel(nogil=True)
def _counter_order(rows, half_bits, keys, out):
    n = rows.shape[0]
    for i in range(n):
        out[i] = rows[_permuted_index(i, n, half_bits, keys)]
    return out


def counter_order(rows, seed, out=None):
    """``rows`` in the counter-based order of ``seed``: the host twin of the GPU shuffle.

    Examples
    --------
    >>> import numpy as np
    >>> o = counter_order(np.arange(10), 42)
    >>> sorted(o.tolist()) == list(range(10))
    True
    """
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if out is None:
        out = np.empty_like(rows)
    half_bits, keys = counter_keys(rows.shape[0], seed)
    return _counter_order(rows, half_bits, keys, out)
