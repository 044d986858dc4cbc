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


# Weight-like arguments are 2-D arrays indexed by their row ``k`` (one row per output):
# indexing W[k, j] directly avoids creating a view, with its reference counting, at
# every step.


def row_dot_sq(X, i, W, k):
    """``(x_i . W[k], ||x_i||^2)``."""


def row_dot(X, i, W, k):
    """``x_i . W[k]``."""


def row_axpy(X, i, c, out, k):
    """``out[k] += c * x_i``."""


def row_add_norms(X, i, c, W, k):
    """``W[k] += c * x_i``; return (sum of w_j^2, sum of |w_j|) over the touched j."""


def row_l1_truncate(X, i, W, Q, k, u, wscale):
    """scikit-learn's cumulative L1 truncation of the touched weights of output k."""


@overload(row_dot_sq, inline="always")
def _ov_row_dot_sq(X, i, W, k):
    if _is_csr(X):
        def impl(X, i, W, k):
            data, indices, indptr = X
            dot = 0.0
            sq = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                v = data[jj]
                dot += W[k, indices[jj]] * v
                sq += v * v
            return dot, sq
        return impl

    def impl(X, i, W, k):
        dot = 0.0
        sq = 0.0
        for j in range(X.shape[1]):
            v = X[i, j]
            dot += W[k, j] * v
            sq += v * v
        return dot, sq
    return impl


@overload(row_dot, inline="always")
def _ov_row_dot(X, i, W, k):
    if _is_csr(X):
        def impl(X, i, W, k):
            data, indices, indptr = X
            dot = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                dot += W[k, indices[jj]] * data[jj]
            return dot
        return impl

    def impl(X, i, W, k):
        dot = 0.0
        for j in range(X.shape[1]):
            dot += W[k, j] * X[i, j]
        return dot
    return impl


@overload(row_axpy, inline="always")
def _ov_row_axpy(X, i, c, out, k):
    if _is_csr(X):
        def impl(X, i, c, out, k):
            data, indices, indptr = X
            for jj in range(indptr[i], indptr[i + 1]):
                out[k, indices[jj]] += c * data[jj]
        return impl

    def impl(X, i, c, out, k):
        for j in range(X.shape[1]):
            out[k, j] += c * X[i, j]
    return impl


@overload(row_add_norms, inline="always")
def _ov_row_add_norms(X, i, c, W, k):
    if _is_csr(X):
        def impl(X, i, c, W, k):
            data, indices, indptr = X
            l2 = 0.0
            l1 = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                wj = W[k, j] + data[jj] * c
                W[k, j] = wj
                l2 += wj * wj
                l1 += abs(wj)
            return l2, l1
        return impl

    def impl(X, i, c, W, k):
        l2 = 0.0
        l1 = 0.0
        for j in range(X.shape[1]):
            wj = W[k, j] + X[i, j] * c
            W[k, j] = wj
            l2 += wj * wj
            l1 += abs(wj)
        return l2, l1
    return impl


@njit(inline="always")
def _truncate_one(W, Q, k, j, u, wscale):
    z = W[k, j]
    if wscale * z > 0.0:
        v = W[k, j] - ((u + Q[k, j]) / wscale)
        W[k, j] = v if v > 0.0 else 0.0
    elif wscale * z < 0.0:
        v = W[k, j] + ((u - Q[k, j]) / wscale)
        W[k, j] = v if v < 0.0 else 0.0
    Q[k, j] += wscale * (W[k, j] - z)


@overload(row_l1_truncate, inline="always")
def _ov_row_l1_truncate(X, i, W, Q, k, u, wscale):
    if _is_csr(X):
        def impl(X, i, W, Q, k, u, wscale):
            indices = X[1]
            indptr = X[2]
            for jj in range(indptr[i], indptr[i + 1]):
                _truncate_one(W, Q, k, indices[jj], u, wscale)
        return impl

    def impl(X, i, W, Q, k, u, wscale):
        for j in range(X.shape[1]):
            _truncate_one(W, Q, k, j, u, wscale)
    return impl
