"""Row access for the compiled loops: one source for dense and CSR input.

The loops take ``X`` either as a 2-D array (C or Fortran order) or as a CSR tuple
``(data, indices, indptr)``. The functions below are resolved at compile time by
Numba's ``overload`` on the type of ``X``, so each loop is written once and compiled
once per input kind, and a sparse row costs O(nnz of the row).

Every function here only reads ``X``.
"""

from numba import njit, types
from numba.extending import overload


def _is_csr(X):
    return isinstance(X, types.BaseTuple)


def row_dot_sq(X, i, w):
    """``(x_i . w, ||x_i||^2)``."""


def row_dot(X, i, w):
    """``x_i . w``."""


def row_axpy(X, i, c, out):
    """``out += c * x_i``."""


def row_add_norms(X, i, c, w):
    """``w += c * x_i``; return (sum of w_j^2, sum of |w_j|) over the touched j."""


def row_l1_truncate(X, i, w, q, u, wscale):
    """scikit-learn's cumulative L1 truncation of the touched weights."""


@overload(row_dot_sq, inline="always")
def _ov_row_dot_sq(X, i, w):
    if _is_csr(X):
        def impl(X, i, w):
            data, indices, indptr = X
            dot = 0.0
            sq = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                v = data[jj]
                dot += w[indices[jj]] * v
                sq += v * v
            return dot, sq
        return impl

    def impl(X, i, w):
        dot = 0.0
        sq = 0.0
        for j in range(X.shape[1]):
            v = X[i, j]
            dot += w[j] * v
            sq += v * v
        return dot, sq
    return impl


@overload(row_dot, inline="always")
def _ov_row_dot(X, i, w):
    if _is_csr(X):
        def impl(X, i, w):
            data, indices, indptr = X
            dot = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                dot += w[indices[jj]] * data[jj]
            return dot
        return impl

    def impl(X, i, w):
        dot = 0.0
        for j in range(X.shape[1]):
            dot += w[j] * X[i, j]
        return dot
    return impl


@overload(row_axpy, inline="always")
def _ov_row_axpy(X, i, c, out):
    if _is_csr(X):
        def impl(X, i, c, out):
            data, indices, indptr = X
            for jj in range(indptr[i], indptr[i + 1]):
                out[indices[jj]] += c * data[jj]
        return impl

    def impl(X, i, c, out):
        for j in range(X.shape[1]):
            out[j] += c * X[i, j]
    return impl


@overload(row_add_norms, inline="always")
def _ov_row_add_norms(X, i, c, w):
    if _is_csr(X):
        def impl(X, i, c, w):
            data, indices, indptr = X
            l2 = 0.0
            l1 = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                wj = w[j] + data[jj] * c
                w[j] = wj
                l2 += wj * wj
                l1 += abs(wj)
            return l2, l1
        return impl

    def impl(X, i, c, w):
        l2 = 0.0
        l1 = 0.0
        for j in range(X.shape[1]):
            wj = w[j] + X[i, j] * c
            w[j] = wj
            l2 += wj * wj
            l1 += abs(wj)
        return l2, l1
    return impl


@njit(inline="always")
def _truncate_one(w, q, j, u, wscale):
    z = w[j]
    if wscale * z > 0.0:
        v = w[j] - ((u + q[j]) / wscale)
        w[j] = v if v > 0.0 else 0.0
    elif wscale * z < 0.0:
        v = w[j] + ((u - q[j]) / wscale)
        w[j] = v if v < 0.0 else 0.0
    q[j] += wscale * (w[j] - z)


@overload(row_l1_truncate, inline="always")
def _ov_row_l1_truncate(X, i, w, q, u, wscale):
    if _is_csr(X):
        def impl(X, i, w, q, u, wscale):
            indices = X[1]
            indptr = X[2]
            for jj in range(indptr[i], indptr[i + 1]):
                _truncate_one(w, q, indices[jj], u, wscale)
        return impl

    def impl(X, i, w, q, u, wscale):
        for j in range(X.shape[1]):
            _truncate_one(w, q, j, u, wscale)
    return impl
