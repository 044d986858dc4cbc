"""The row helpers of the compiled loops (fastgd._kernels.rows) against references:
the batched gradient sum must add rows in the same order as one row at a time, bit
for bit, so that a model in a pass of many equals its fit alone; the per-sample loop's
tracked ``||w||^2`` is the norm scikit-learn's objective reads."""

import numpy as np
import pytest
import scipy.sparse as sp
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

from fastgd._kernels import cpu
from fastgd._kernels.rows import AXPY_ROWS, row_add_sqnorm, row_axpy


@njit(fastmath=cpu.FASTMATH)
def _row_by_row(X, order, c0, c1, R, G, active):
    # what batch_grad did before rows_axpy, and _one_output_grad still does
    for ii in range(c0, c1):
        for k in range(G.shape[0]):
            if active[k] and R[k, ii - c0] != 0.0:
                row_axpy(X, order[ii], R[k, ii - c0], G, k)


def _case(fmt, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 13))
    X[rng.random(X.shape) < 0.3] = 0.0
    order = rng.permutation(40).astype(np.int64)
    R = rng.normal(size=(5, 64))
    R[rng.random(R.shape) < 0.2] = 0.0  # rows whose residual is zero
    G = rng.normal(size=(5, 14))
    active = np.array([True, False, True, True, True])
    if fmt == "csr":
        Xs = sp.csr_matrix(X)
        Xk = (Xs.data, Xs.indices.astype(np.int64), Xs.indptr.astype(np.int64))
    else:
        Xk = np.asfortranarray(X) if fmt == "fortran" else X
    return X, Xk, order, R, G, active


@pytest.mark.parametrize("fmt", ["dense", "fortran", "csr"])
@pytest.mark.parametrize("n_rows", [0, 1, AXPY_ROWS - 1, AXPY_ROWS, 2 * AXPY_ROWS + 3, 37])
def test_rows_axpy_adds_rows_in_order(fmt, n_rows):
    X, Xk, order, R, G, active = _case(fmt, seed=n_rows)
    c0 = 2
    c1 = c0 + n_rows
    got = G.copy()
    cpu._rows_axpy(Xk, order, c0, c1, R, got, active)
    want = G.copy()
    _row_by_row(Xk, order, c0, c1, R, want, active)
    assert_array_equal(got, want)
    # the sum itself, in NumPy (a different order of additions: to rounding)
    ref = G.copy()
    ref[active, :13] += R[active, :n_rows] @ X[order[c0:c1]]
    assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    assert_array_equal(got[~active], G[~active])  # inactive outputs are not touched
    if n_rows:
        assert not np.array_equal(got[active], G[active])


@pytest.mark.parametrize("fmt", ["dense", "csr"])
def test_row_add_sqnorm_tracks_the_norm(fmt):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 9))
    X[rng.random(X.shape) < 0.4] = 0.0
    W = rng.normal(size=(2, 9))
    wscale, update, i, k = 0.7, -0.3, 4, 1
    w = wscale * W[k]
    x = X[i]
    sqnorm, wdot, xsq = w @ w, w @ x, x @ x
    Xk = X
    if fmt == "csr":
        Xs = sp.csr_matrix(X)
        Xk = (Xs.data, Xs.indices.astype(np.int64), Xs.indptr.astype(np.int64))
    W2 = W.copy()
    got = _sqnorm_step(Xk, i, update / wscale, W2, k, sqnorm, update, wdot, xsq, wscale)
    w_new = wscale * W2[k]
    assert_allclose(w_new, w + update * x, rtol=1e-14)
    if fmt == "dense":
        assert_allclose(got, w_new @ w_new, rtol=1e-13)  # the whole vector's norm
    else:
        touched = x != 0.0  # scikit-learn's: the row's stored features only
        assert_allclose(got, w_new[touched] @ w_new[touched], rtol=1e-13)
        assert got < w_new @ w_new


@njit(fastmath=cpu.FASTMATH_PLAIN)
def _sqnorm_step(X, i, c, W, k, sqnorm, update, wdot, xsq, wscale):
    return row_add_sqnorm(X, i, c, W, k, sqnorm, update, wdot, xsq, wscale)
