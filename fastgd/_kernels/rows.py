"""Row access for the compiled loops: one source for dense and CSR input.

The loops take ``X`` either as a 2-D array (C or Fortran order) or as a CSR tuple
``(data, indices, indptr)``. The functions below are resolved at compile time by
Numba's ``overload`` on the type of ``X``, so each loop is written once and compiled
once per input kind, and a sparse row costs O(nnz of the row). They are not inlined
into the loops' Numba IR (the front end types each once, not at every call site: the
first fit compiles faster); LLVM inlines them, so the loops run as fast.

Every function here only reads ``X``.
"""

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, overload


def _is_csr(X):
    return isinstance(X, types.BaseTuple)


# Weight-like arguments are 2-D arrays indexed by their row ``k`` (one row per output):
# indexing W[k, j] directly avoids creating a view, with its reference counting, at
# every step.


def row_sq(X, i):
    """``||x_i||^2``."""


def row_dot(X, i, W, k):
    """``x_i . W[k]``."""


def row_axpy(X, i, c, out, k):
    """``out[k] += c * x_i``."""


def rows_axpy(X, order, c0, c1, R, G, active):
    """``G[k, :d] += R[k, ii - c0] * x_order[ii]`` for ``ii`` in ``c0:c1``, each active
    output k, rows in order (so each ``G[k, j]`` sums as :func:`row_axpy` row by row
    would; a zero ``R`` adds an exact zero)."""


def row_add_norms(X, i, c, W, k):
    """``W[k] += c * x_i``; return (sum of w_j^2, sum of |w_j|) over the touched j."""


def row_add_sqnorm(X, i, c, W, k, sqnorm, update, wdot, xsq, wscale):
    """``W[k] += c * x_i`` (``c = update / wscale``); return the new ``||w||^2``
    (true scale) as scikit-learn's per-sample loop tracks it.

    ``sqnorm``: ``||w||^2`` before the step, ``wdot``: ``x_i . w`` before the step,
    ``xsq``: ``||x_i||^2``, all at the current scale. Dense rows: ``||w + u x||^2 =
    ||w||^2 + u (2 x.w + u ||x||^2)``, O(1) (scikit-learn sums ``w_j^2`` over the row,
    the same to rounding). CSR rows: scikit-learn's sum of ``w_j^2`` over the row's
    stored features only."""


def row_l1_truncate(X, i, W, Q, k, u, wscale):
    """scikit-learn's cumulative L1 truncation of the touched weights of output k."""


@overload(row_sq)
def _ov_row_sq(X, i):
    if _is_csr(X):
        def impl(X, i):
            data, indices, indptr = X
            sq = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                v = data[jj]
                sq += v * v
            return sq
        return impl

    def impl(X, i):
        sq = 0.0
        for j in range(X.shape[1]):
            v = X[i, j]
            sq += v * v
        return sq
    return impl


@overload(row_dot)
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


@overload(row_axpy)
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


#: rows a dense :func:`rows_axpy` adds per pass over the outputs' gradients (the loop
#: below names that many rows)
AXPY_ROWS = 4


@overload(rows_axpy, inline="always")
def _ov_rows_axpy(X, order, c0, c1, R, G, active):
    if _is_csr(X):
        def impl(X, order, c0, c1, R, G, active):
            for ii in range(c0, c1):
                i = order[ii]
                for k in range(G.shape[0]):
                    if active[k] and R[k, ii - c0] != 0.0:
                        row_axpy(X, i, R[k, ii - c0], G, k)
        return impl

    # Dense rows: each output's gradient is loaded and stored once per AXPY_ROWS rows
    # instead of once per row (half of the row-by-row loop's memory operations), while
    # those rows stay in L1 for every output; the additions to each G[k, j] stay in
    # row order.
    def impl(X, order, c0, c1, R, G, active):
        d = X.shape[1]
        ii = c0
        while ii + AXPY_ROWS <= c1:
            i0 = order[ii]
            i1 = order[ii + 1]
            i2 = order[ii + 2]
            i3 = order[ii + 3]
            for k in range(G.shape[0]):
                if not active[k]:
                    continue
                r0 = R[k, ii - c0]
                r1 = R[k, ii + 1 - c0]
                r2 = R[k, ii + 2 - c0]
                r3 = R[k, ii + 3 - c0]
                for j in range(d):
                    g = G[k, j]
                    g += r0 * X[i0, j]
                    g += r1 * X[i1, j]
                    g += r2 * X[i2, j]
                    g += r3 * X[i3, j]
                    G[k, j] = g
            ii += AXPY_ROWS
        while ii < c1:
            i = order[ii]
            for k in range(G.shape[0]):
                if active[k]:
                    r = R[k, ii - c0]
                    for j in range(d):
                        G[k, j] += r * X[i, j]
            ii += 1
    return impl


@overload(row_add_norms)
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


@overload(row_add_sqnorm)
def _ov_row_add_sqnorm(X, i, c, W, k, sqnorm, update, wdot, xsq, wscale):
    if _is_csr(X):
        def impl(X, i, c, W, k, sqnorm, update, wdot, xsq, wscale):
            data, indices, indptr = X
            l2 = 0.0
            for jj in range(indptr[i], indptr[i + 1]):
                j = indices[jj]
                wj = W[k, j] + data[jj] * c
                W[k, j] = wj
                l2 += wj * wj
            return l2 * (wscale * wscale)
        return impl

    def impl(X, i, c, W, k, sqnorm, update, wdot, xsq, wscale):
        row_axpy(X, i, c, W, k)
        sq = sqnorm + update * (2.0 * wdot + update * xsq)
        return sq if sq > 0.0 else 0.0
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


@overload(row_l1_truncate)
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


# ------------------------------------------------------------------ prefetching
# Shuffled epochs read rows in a random order the hardware prefetcher cannot guess: a
# software prefetch of the row (and its target and sample weight, on the critical path
# of per-sample SGD) a few steps ahead hides part of the memory latency. Lines go to
# L2 ("low locality"): a row is read once or twice and should not evict the weights
# from L1. A CSR row is found through ``indptr``, itself a random read, so the loops
# prefetch ``indptr`` twice as far ahead (:func:`index_prefetch`). A block-shuffled
# epoch instead streams the next block front to back, one row per step (its
# ``lookahead``, :func:`fastgd._kernels.shuffle.block_order`), so that the hardware
# prefetcher runs along. docs/performance-notes.md has the measurements.
PREFETCH_DISTANCE = 8


@intrinsic
def _prefetch_bytes(typingctx, base_ptr_arr, start, nbytes):
    """Prefetch (for reading, into L2: low locality) the cache lines of a byte range.

    One prefetch every 64 bytes from the range's start, and one of its last byte: a
    range that starts mid-line (NumPy's large arrays start 16 bytes past a page, so
    most rows do) ends in one more line than a loop from its start reaches, and that
    line was then a demand miss on every row."""
    sig = types.void(base_ptr_arr, start, nbytes)

    def codegen(context, builder, signature, args):
        arrty = signature.args[0]
        arrval, startval, nval = args
        ary = context.make_array(arrty)(context, builder, arrval)
        i8p = ir.IntType(8).as_pointer()
        base = builder.bitcast(ary.data, i8p)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32),
                                               ir.IntType(32)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        i32 = ir.IntType(32)
        hint = [ir.Constant(i32, 0), ir.Constant(i32, 1), ir.Constant(i32, 1)]
        line = context.get_constant(types.intp, 64)
        end = builder.add(startval, nval)
        with cgutils.for_range_slice(builder, startval, end, line) as (off, _):
            builder.call(fn, [builder.gep(base, [off])] + hint)
        # a duplicate when the loop reached that line: the request is merged with the
        # one in flight, no second memory access
        with builder.if_then(builder.icmp_signed(">", nval, nval.type(0))):
            last = builder.sub(end, context.get_constant(types.intp, 1))
            builder.call(fn, [builder.gep(base, [last])] + hint)
        return context.get_dummy_value()

    return sig, codegen


def row_prefetch(X, i):
    """Ask the CPU to start loading row ``i`` of ``X`` (no effect on results)."""


@njit(inline="always")
def sample_prefetch(X, Y, sw, i):
    """Prefetch row ``i`` of ``X``, its targets ``Y[i]`` and its weight ``sw[i]``."""
    row_prefetch(X, i)
    _prefetch_bytes(Y, i * Y.strides[0], Y.shape[1] * Y.itemsize)
    _prefetch_bytes(sw, i * sw.strides[0], sw.itemsize)


def index_prefetch(X, i):
    """Ask the CPU to start loading where row ``i`` of a CSR ``X`` starts and ends
    (``indptr[i:i + 2]``), so that a later :func:`row_prefetch` of that row does not
    wait for it; nothing for dense ``X``."""


# The loops write out their two prefetches (index_prefetch twice as far ahead, then
# sample_prefetch) rather than call one helper taking ``order``: such a helper, inlined,
# brought reference counting of ``order`` into the loop and slowed it.


@overload(index_prefetch, inline="always")
def _ov_index_prefetch(X, i):
    if _is_csr(X):
        def impl(X, i):
            indptr = X[2]
            _prefetch_bytes(indptr, i * indptr.itemsize, 2 * indptr.itemsize)
        return impl

    def impl(X, i):
        return None
    return impl


@overload(row_prefetch, inline="always")
def _ov_row_prefetch(X, i):
    if _is_csr(X):
        def impl(X, i):
            data, indices, indptr = X
            a = indptr[i]
            n = indptr[i + 1] - a
            _prefetch_bytes(data, a * data.itemsize, n * data.itemsize)
            _prefetch_bytes(indices, a * indices.itemsize, n * indices.itemsize)
        return impl
    if X.layout == "C":
        def impl(X, i):
            d = X.shape[1]
            _prefetch_bytes(X, i * d * X.itemsize, d * X.itemsize)
        return impl

    def impl(X, i):  # Fortran / strided rows: one line per element, not worth it
        return None
    return impl
