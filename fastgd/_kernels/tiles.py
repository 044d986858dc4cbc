"""Dot products and gradient sums of the batch loop, in a fixed order, by tiles.

The batch loop (:func:`fastgd._kernels.cpu.batch_grad`) needs, for the rows of a
chunk and every active output ``k``, the predictions ``x_i . w_k`` and then the sums
``G[k] += r_ik x_i``. One output alone does that row by row (:func:`row_dot_fixed`,
:func:`row_axpy_fixed`); several outputs (a multi-output model, one-vs-rest, a grid
search's models) do it by tiles that share loads: a tile of 4 rows x 4 outputs loads
each row's and each weight vector's 8 features once for 16 multiply-adds, and a tile
of 4 outputs x 16 features keeps its gradient sums in registers over the chunk's
rows. Per element the arithmetic is the same as row by row -- the dot products in
:mod:`fastgd._kernels.simd`'s order, each ``G[k, j]`` one fused multiply-add per row
in row order -- so an output gets the same bits in a pass of many as alone.

CSR rows keep the sparse loops of :mod:`fastgd._kernels.rows` (their order is the
row's stored order, alone or not).
"""

from numba.extending import overload

from .rows import _is_csr, row_axpy, row_dot
from .simd import LANES, v8_fma, v8_hsum, v8_load, v8_load_n, v8_splat, v8_store, \
    v8_store_n, v8_zero

#: rows and outputs of a dot-product tile, outputs of a gradient tile (the loops below
#: name that many)
TILE = 4


def row_dot_fixed(X, i, W, k):
    """``x_i . W[k]`` summed in :mod:`fastgd._kernels.simd`'s order (dense rows)."""


def row_axpy_fixed(X, i, c, G, k):
    """``G[k, :d] += c * x_i``, a fused multiply-add per element (dense rows)."""


def rows_dot(X, order, c0, c1, W, idx, n_idx, P):
    """``P[k, ii - c0] = x_order[ii] . W[k]`` for ``ii`` in ``c0:c1`` and the outputs
    ``k = idx[:n_idx]``, each as :func:`row_dot_fixed` computes it."""


def rows_axpy(X, order, c0, c1, R, G, idx, n_idx):
    """``G[k, :d] += R[k, ii - c0] * x_order[ii]`` for ``ii`` in ``c0:c1`` and the
    outputs ``k = idx[:n_idx]``, rows in order: each ``G[k, j]`` gets the fused
    multiply-adds :func:`row_axpy_fixed` would give it row by row (a zero ``R`` adds an
    exact zero)."""


def _dot_body(X, i, W, k, full):
    """The lanes of ``x_i . W[k]`` over the first ``full`` (a multiple of 8)
    features."""


@overload(_dot_body)
def _ov_dot_body(X, i, W, k, full):
    def impl(X, i, W, k, full):
        acc = v8_zero()
        for j in range(0, full, LANES):
            acc = v8_fma(v8_load(X, i, j), v8_load(W, k, j), acc)
        return acc
    return impl


@overload(row_dot_fixed, inline="always")
def _ov_row_dot_fixed(X, i, W, k):
    if _is_csr(X):
        def impl(X, i, W, k):
            return row_dot(X, i, W, k)
        return impl

    def impl(X, i, W, k):
        d = X.shape[1]
        full = d - d % LANES
        # the tail's lanes past d load 0.0: adding 0.0 to a lane that started at +0.0
        # changes nothing, so the tail needs no branch
        acc = v8_fma(v8_load_n(X, i, full, d - full),
                     v8_load_n(W, k, full, d - full), _dot_body(X, i, W, k, full))
        return v8_hsum(acc)
    return impl


@overload(row_axpy_fixed)
def _ov_row_axpy_fixed(X, i, c, G, k):
    if _is_csr(X):
        def impl(X, i, c, G, k):
            row_axpy(X, i, c, G, k)
        return impl

    def impl(X, i, c, G, k):
        d = X.shape[1]
        cv = v8_splat(c)
        j = 0
        while j + LANES <= d:
            v8_store(G, k, j, v8_fma(cv, v8_load(X, i, j), v8_load(G, k, j)))
            j += LANES
        if j < d:
            n = d - j
            v8_store_n(G, k, j, n, v8_fma(cv, v8_load_n(X, i, j, n),
                                          v8_load_n(G, k, j, n)))
    return impl


def _dot_tile(X, i0, i1, i2, i3, W, k0, k1, k2, k3, P, c):
    """The 16 dot products of rows i0..i3 with outputs k0..k3 into ``P[k, c..c+3]``."""


@overload(_dot_tile, inline="always")
def _ov_dot_tile(X, i0, i1, i2, i3, W, k0, k1, k2, k3, P, c):
    def impl(X, i0, i1, i2, i3, W, k0, k1, k2, k3, P, c):
        d = X.shape[1]
        a00 = v8_zero()
        a01 = v8_zero()
        a02 = v8_zero()
        a03 = v8_zero()
        a10 = v8_zero()
        a11 = v8_zero()
        a12 = v8_zero()
        a13 = v8_zero()
        a20 = v8_zero()
        a21 = v8_zero()
        a22 = v8_zero()
        a23 = v8_zero()
        a30 = v8_zero()
        a31 = v8_zero()
        a32 = v8_zero()
        a33 = v8_zero()
        j = 0
        while j < d:
            n = d - j
            if n >= LANES:
                x0 = v8_load(X, i0, j)
                x1 = v8_load(X, i1, j)
                x2 = v8_load(X, i2, j)
                x3 = v8_load(X, i3, j)
                w0 = v8_load(W, k0, j)
                w1 = v8_load(W, k1, j)
                w2 = v8_load(W, k2, j)
                w3 = v8_load(W, k3, j)
            else:
                x0 = v8_load_n(X, i0, j, n)
                x1 = v8_load_n(X, i1, j, n)
                x2 = v8_load_n(X, i2, j, n)
                x3 = v8_load_n(X, i3, j, n)
                w0 = v8_load_n(W, k0, j, n)
                w1 = v8_load_n(W, k1, j, n)
                w2 = v8_load_n(W, k2, j, n)
                w3 = v8_load_n(W, k3, j, n)
            a00 = v8_fma(x0, w0, a00)
            a01 = v8_fma(x0, w1, a01)
            a02 = v8_fma(x0, w2, a02)
            a03 = v8_fma(x0, w3, a03)
            a10 = v8_fma(x1, w0, a10)
            a11 = v8_fma(x1, w1, a11)
            a12 = v8_fma(x1, w2, a12)
            a13 = v8_fma(x1, w3, a13)
            a20 = v8_fma(x2, w0, a20)
            a21 = v8_fma(x2, w1, a21)
            a22 = v8_fma(x2, w2, a22)
            a23 = v8_fma(x2, w3, a23)
            a30 = v8_fma(x3, w0, a30)
            a31 = v8_fma(x3, w1, a31)
            a32 = v8_fma(x3, w2, a32)
            a33 = v8_fma(x3, w3, a33)
            j += LANES
        P[k0, c] = v8_hsum(a00)
        P[k1, c] = v8_hsum(a01)
        P[k2, c] = v8_hsum(a02)
        P[k3, c] = v8_hsum(a03)
        P[k0, c + 1] = v8_hsum(a10)
        P[k1, c + 1] = v8_hsum(a11)
        P[k2, c + 1] = v8_hsum(a12)
        P[k3, c + 1] = v8_hsum(a13)
        P[k0, c + 2] = v8_hsum(a20)
        P[k1, c + 2] = v8_hsum(a21)
        P[k2, c + 2] = v8_hsum(a22)
        P[k3, c + 2] = v8_hsum(a23)
        P[k0, c + 3] = v8_hsum(a30)
        P[k1, c + 3] = v8_hsum(a31)
        P[k2, c + 3] = v8_hsum(a32)
        P[k3, c + 3] = v8_hsum(a33)
    return impl


@overload(rows_dot)
def _ov_rows_dot(X, order, c0, c1, W, idx, n_idx, P):
    if _is_csr(X):
        def impl(X, order, c0, c1, W, idx, n_idx, P):
            for ii in range(c0, c1):
                i = order[ii]
                for q in range(n_idx):
                    k = idx[q]
                    P[k, ii - c0] = row_dot(X, i, W, k)
        return impl

    # outputs outer: a tile's 4 weight vectors stay in L1 while the chunk's rows
    # (64 x d) pass
    def impl(X, order, c0, c1, W, idx, n_idx, P):
        q = 0
        while q + TILE <= n_idx:
            k0 = idx[q]
            k1 = idx[q + 1]
            k2 = idx[q + 2]
            k3 = idx[q + 3]
            ii = c0
            while ii + TILE <= c1:
                _dot_tile(X, order[ii], order[ii + 1], order[ii + 2], order[ii + 3],
                          W, k0, k1, k2, k3, P, ii - c0)
                ii += TILE
            while ii < c1:
                i = order[ii]
                P[k0, ii - c0] = row_dot_fixed(X, i, W, k0)
                P[k1, ii - c0] = row_dot_fixed(X, i, W, k1)
                P[k2, ii - c0] = row_dot_fixed(X, i, W, k2)
                P[k3, ii - c0] = row_dot_fixed(X, i, W, k3)
                ii += 1
            q += TILE
        while q < n_idx:
            k = idx[q]
            for ii in range(c0, c1):
                P[k, ii - c0] = row_dot_fixed(X, order[ii], W, k)
            q += 1
    return impl


def _axpy_tile(X, order, c0, c1, R, G, k0, k1, k2, k3, j, n):
    """``rows_axpy`` for outputs k0..k3 on features ``j .. j + min(n, 16) - 1``."""


@overload(_axpy_tile, inline="always")
def _ov_axpy_tile(X, order, c0, c1, R, G, k0, k1, k2, k3, j, n):
    def impl(X, order, c0, c1, R, G, k0, k1, k2, k3, j, n):
        if n >= 2 * LANES:
            # 4 outputs x 16 features: 8 sums in registers, 2 row loads per row
            j1 = j + LANES
            g00 = v8_load(G, k0, j)
            g01 = v8_load(G, k0, j1)
            g10 = v8_load(G, k1, j)
            g11 = v8_load(G, k1, j1)
            g20 = v8_load(G, k2, j)
            g21 = v8_load(G, k2, j1)
            g30 = v8_load(G, k3, j)
            g31 = v8_load(G, k3, j1)
            for ii in range(c0, c1):
                i = order[ii]
                x0 = v8_load(X, i, j)
                x1 = v8_load(X, i, j1)
                r = v8_splat(R[k0, ii - c0])
                g00 = v8_fma(r, x0, g00)
                g01 = v8_fma(r, x1, g01)
                r = v8_splat(R[k1, ii - c0])
                g10 = v8_fma(r, x0, g10)
                g11 = v8_fma(r, x1, g11)
                r = v8_splat(R[k2, ii - c0])
                g20 = v8_fma(r, x0, g20)
                g21 = v8_fma(r, x1, g21)
                r = v8_splat(R[k3, ii - c0])
                g30 = v8_fma(r, x0, g30)
                g31 = v8_fma(r, x1, g31)
            v8_store(G, k0, j, g00)
            v8_store(G, k0, j1, g01)
            v8_store(G, k1, j, g10)
            v8_store(G, k1, j1, g11)
            v8_store(G, k2, j, g20)
            v8_store(G, k2, j1, g21)
            v8_store(G, k3, j, g30)
            v8_store(G, k3, j1, g31)
            return
        m = n if n < LANES else LANES
        g0 = v8_load_n(G, k0, j, m)
        g1 = v8_load_n(G, k1, j, m)
        g2 = v8_load_n(G, k2, j, m)
        g3 = v8_load_n(G, k3, j, m)
        for ii in range(c0, c1):
            x = v8_load_n(X, order[ii], j, m)
            g0 = v8_fma(v8_splat(R[k0, ii - c0]), x, g0)
            g1 = v8_fma(v8_splat(R[k1, ii - c0]), x, g1)
            g2 = v8_fma(v8_splat(R[k2, ii - c0]), x, g2)
            g3 = v8_fma(v8_splat(R[k3, ii - c0]), x, g3)
        v8_store_n(G, k0, j, m, g0)
        v8_store_n(G, k1, j, m, g1)
        v8_store_n(G, k2, j, m, g2)
        v8_store_n(G, k3, j, m, g3)
    return impl


def _axpy_tile1(X, order, c0, c1, R, G, k, j, n):
    """``rows_axpy`` for output k on features ``j .. j + min(n, 32) - 1``."""


@overload(_axpy_tile1, inline="always")
def _ov_axpy_tile1(X, order, c0, c1, R, G, k, j, n):
    def impl(X, order, c0, c1, R, G, k, j, n):
        if n >= 4 * LANES:
            # 32 features: 4 sums in registers over the rows
            g0 = v8_load(G, k, j)
            g1 = v8_load(G, k, j + LANES)
            g2 = v8_load(G, k, j + 2 * LANES)
            g3 = v8_load(G, k, j + 3 * LANES)
            for ii in range(c0, c1):
                i = order[ii]
                r = v8_splat(R[k, ii - c0])
                g0 = v8_fma(r, v8_load(X, i, j), g0)
                g1 = v8_fma(r, v8_load(X, i, j + LANES), g1)
                g2 = v8_fma(r, v8_load(X, i, j + 2 * LANES), g2)
                g3 = v8_fma(r, v8_load(X, i, j + 3 * LANES), g3)
            v8_store(G, k, j, g0)
            v8_store(G, k, j + LANES, g1)
            v8_store(G, k, j + 2 * LANES, g2)
            v8_store(G, k, j + 3 * LANES, g3)
            return
        m = n if n < LANES else LANES
        g = v8_load_n(G, k, j, m)
        for ii in range(c0, c1):
            g = v8_fma(v8_splat(R[k, ii - c0]), v8_load_n(X, order[ii], j, m), g)
        v8_store_n(G, k, j, m, g)
    return impl


@overload(rows_axpy)
def _ov_rows_axpy(X, order, c0, c1, R, G, idx, n_idx):
    if _is_csr(X):
        def impl(X, order, c0, c1, R, G, idx, n_idx):
            for ii in range(c0, c1):
                i = order[ii]
                for q in range(n_idx):
                    k = idx[q]
                    if R[k, ii - c0] != 0.0:
                        row_axpy(X, i, R[k, ii - c0], G, k)
        return impl

    def impl(X, order, c0, c1, R, G, idx, n_idx):
        d = X.shape[1]
        q = 0
        while q + TILE <= n_idx:
            k0 = idx[q]
            k1 = idx[q + 1]
            k2 = idx[q + 2]
            k3 = idx[q + 3]
            j = 0
            while j < d:
                n = d - j
                _axpy_tile(X, order, c0, c1, R, G, k0, k1, k2, k3, j, n)
                j += 2 * LANES if n >= 2 * LANES else LANES
            q += TILE
        while q < n_idx:
            k = idx[q]
            j = 0
            while j < d:
                n = d - j
                _axpy_tile1(X, order, c0, c1, R, G, k, j, n)
                j += 4 * LANES if n >= 4 * LANES else LANES
            q += 1
    return impl
