"""The row helpers of the compiled loops (fastgd._kernels.rows, fastgd._kernels.tiles)
against references: dense dot products in their documented order (exact rational
arithmetic for each fused multiply-add), tiles of rows and outputs bit for bit as one
row at a time, so that a model in a pass of many equals its fit alone; the per-sample
loop's tracked ``||w||^2`` is the norm scikit-learn's objective reads."""

from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from numba import njit
from numpy.testing import assert_allclose, assert_array_equal

from fastgd._kernels import cpu
from fastgd._kernels.rows import row_add_sqnorm
from fastgd._kernels.tiles import row_dot_fixed, rows_axpy, rows_dot


def _fma(a, b, c):
    """``a * b + c`` rounded once (exact rational arithmetic, then one rounding)."""
    return float(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def _fixed_dot(x, w):
    """The documented order of a dense dot product: eight lanes, lane p the features
    j = p (mod 8) in increasing j by fused multiply-adds, then
    ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))."""
    s = [0.0] * 8
    for j in range(len(x)):
        s[j % 8] = _fma(x[j], w[j], s[j % 8])
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))


@njit(fastmath=cpu.FASTMATH)
def _dot_one(X, i, W, k):
    return row_dot_fixed(X, i, W, k)


@njit(fastmath=cpu.FASTMATH)
def _dots(X, order, c0, c1, W, idx, n_idx, P):
    rows_dot(X, order, c0, c1, W, idx, n_idx, P)


@njit(fastmath=cpu.FASTMATH)
def _axpys(X, order, c0, c1, R, G, idx, n_idx):
    rows_axpy(X, order, c0, c1, R, G, idx, n_idx)


def _kernel_X(X, fmt):
    if fmt == "csr":
        Xs = sp.csr_matrix(X)
        return (Xs.data, Xs.indices.astype(np.int64), Xs.indptr.astype(np.int64))
    if fmt == "fortran":
        return np.asfortranarray(X)
    if fmt == "float32":
        return X.astype(np.float32)
    return X


def _case(fmt, seed, d=13, n_out=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, d))
    X[rng.random(X.shape) < 0.3] = 0.0
    if fmt == "float32":
        X = X.astype(np.float32).astype(np.float64)  # the values a float32 X holds
    order = rng.permutation(40).astype(np.int64)
    R = rng.normal(size=(n_out, 64))
    R[rng.random(R.shape) < 0.2] = 0.0  # rows whose residual is zero
    G = rng.normal(size=(n_out, d + 1))
    # the active outputs, not in order and not a multiple of the tile's 4
    idx = np.array([4, 0, 2, 3, 5], dtype=np.int64)[:n_out - 1]
    return X, _kernel_X(X, fmt), order, R, G, idx


FORMATS = ["dense", "fortran", "float32", "csr"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("d", [1, 7, 8, 13, 16, 37])
def test_row_dot_fixed_sums_in_the_documented_order(fmt, d):
    rng = np.random.default_rng(d)
    X = rng.normal(size=(5, d)) * rng.lognormal(sigma=3, size=(5, d))
    if fmt == "float32":
        X = X.astype(np.float32).astype(np.float64)
    W = rng.normal(size=(2, d + 1))
    Xk = _kernel_X(X, fmt)
    for i in range(5):
        got = _dot_one(Xk, i, W, 1)
        if fmt == "csr":  # the sparse loop: stored features in order, one by one
            assert_allclose(got, X[i] @ W[1, :d], rtol=1e-12)
        else:
            assert got == _fixed_dot(X[i], W[1, :d])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n_rows", [0, 1, 3, 4, 11, 37])
@pytest.mark.parametrize("d", [5, 13, 40])
def test_rows_dot_equals_one_dot_product_at_a_time(fmt, n_rows, d):
    X, Xk, order, R, W, idx = _case(fmt, seed=n_rows + d, d=d)
    c0 = 2
    P = np.full((W.shape[0], 64), np.nan)
    _dots(Xk, order, c0, c0 + n_rows, W, idx, idx.shape[0], P)
    for k in range(W.shape[0]):
        for r in range(64):
            if k in idx and r < n_rows:
                assert P[k, r] == _dot_one(Xk, order[c0 + r], W, k)
            else:  # inactive outputs and rows past the chunk are not written
                assert np.isnan(P[k, r])
    if n_rows:
        assert_allclose(P[idx, :n_rows], W[idx, :d] @ X[order[c0:c0 + n_rows]].T,
                        rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("n_rows", [0, 1, 3, 4, 11, 37])
@pytest.mark.parametrize("d", [5, 13, 40])
def test_rows_axpy_adds_rows_in_order(fmt, n_rows, d):
    X, Xk, order, R, G, idx = _case(fmt, seed=n_rows + d, d=d)
    c0 = 2
    c1 = c0 + n_rows
    got = G.copy()
    _axpys(Xk, order, c0, c1, R, got, idx, idx.shape[0])
    want = G.copy()
    for k in idx:
        for ii in range(c0, c1):
            x = X[order[ii]]
            for j in range(d):
                if fmt == "csr":
                    if x[j] != 0.0 and R[k, ii - c0] != 0.0:
                        want[k, j] += R[k, ii - c0] * x[j]
                else:  # one fused multiply-add per row (a zero residual adds +0)
                    want[k, j] = _fma(R[k, ii - c0], x[j], want[k, j])
    if fmt == "csr":  # the sparse loop's multiply-adds may or may not be fused
        assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    else:
        assert_array_equal(got, want)
    # the sum itself, in NumPy (a different order of additions: to rounding)
    ref = G.copy()
    ref[idx, :d] += R[idx, :n_rows] @ X[order[c0:c1]]
    assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    inactive = np.setdiff1d(np.arange(G.shape[0]), idx)
    assert_array_equal(got[inactive], G[inactive])  # inactive outputs are not touched
    assert_array_equal(got[:, d], G[:, d])  # nor the intercepts' column
    if n_rows:
        assert not np.array_equal(got[idx], G[idx])


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
