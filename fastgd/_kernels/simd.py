"""Eight-lane vectors for the dense dot products and gradient sums of the batch loop.

A dot product ``x . w`` of a dense row is summed in one fixed order, written out here
in LLVM IR rather than left to the vectorizer: eight partial sums, lane ``p`` holding
the features ``j = p (mod 8)`` in increasing ``j``, each step a fused multiply-add,
then the lanes combined as ``((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7))``
(:func:`v8_hsum`). The same order on every machine (LLVM splits an eight-lane vector
into halves where registers are narrower; each lane's arithmetic does not change),
and the same order whether a row's dot product is computed alone or in a tile with
other rows and other weight vectors (:func:`fastgd._kernels.tiles.rows_dot`): that is
what lets a grid search's models share each load of a row and still equal, bit for
bit, the estimator fitted alone.

``Vec8`` is a Numba type whose value is an LLVM ``<8 x double>``; the functions below
are the few operations the tiles need. Loads convert float32 rows to float64 lanes.
Rows that are not C-contiguous (Fortran order) are gathered element by element: the
same arithmetic, slower.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.datamodel import models, register_default
from numba.extending import intrinsic

LANES = 8

_f64 = ir.DoubleType()
_vec = ir.VectorType(_f64, LANES)
_i1 = ir.IntType(1)
_i32 = ir.IntType(32)
_i64 = ir.IntType(64)


class Vec8(types.Type):
    """Eight float64 lanes held in registers (an LLVM vector)."""

    def __init__(self):
        super().__init__(name="Vec8")


vec8 = Vec8()


@register_default(Vec8)
class _Vec8Model(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _vec)


def _intrinsic_fn(builder, name, fnty):
    return cgutils.get_or_insert_function(builder.module, fnty, name)


def _lane_mask(builder, n):
    """``<8 x i1>``: lane p is on when p < n."""
    n32 = builder.trunc(n, _i32) if n.type.width > 32 else n
    splat = builder.insert_element(ir.Constant(ir.VectorType(_i32, LANES), None), n32,
                                   ir.Constant(_i32, 0))
    splat = builder.shuffle_vector(splat, splat,
                                   ir.Constant(ir.VectorType(_i32, LANES), [0] * LANES))
    lanes = ir.Constant(ir.VectorType(_i32, LANES), list(range(LANES)))
    return builder.icmp_signed("<", lanes, splat)


def _row_pointer(context, builder, arrty, arr, i, j):
    ary = context.make_array(arrty)(context, builder, arr)
    shape = cgutils.unpack_tuple(builder, ary.shape, 2)
    strides = cgutils.unpack_tuple(builder, ary.strides, 2)
    return ary, cgutils.get_item_pointer2(context, builder, ary.data, shape, strides,
                                          arrty.layout, [i, j], wraparound=False)


def _elt_type(arrty):
    return ir.FloatType() if arrty.dtype == types.float32 else _f64


def _emit_load(context, builder, arrty, arr, i, j, n):
    """Lanes ``arr[i, j + p]`` for p < n (all 8 when ``n`` is None), 0.0 elsewhere."""
    elt = _elt_type(arrty)
    ary, ptr = _row_pointer(context, builder, arrty, arr, i, j)
    vt = ir.VectorType(elt, LANES)
    if arrty.layout == "C":
        vptr = builder.bitcast(ptr, vt.as_pointer())
        if n is None:
            v = builder.load(vptr, align=arrty.dtype.bitwidth // 8)
        else:
            name = "llvm.masked.load.v8f32.p0" if elt != _f64 else \
                "llvm.masked.load.v8f64.p0"
            fnty = ir.FunctionType(vt, [vt.as_pointer(), _i32,
                                        ir.VectorType(_i1, LANES), vt])
            fn = _intrinsic_fn(builder, name, fnty)
            v = builder.call(fn, [vptr, ir.Constant(_i32, arrty.dtype.bitwidth // 8),
                                  _lane_mask(builder, n), ir.Constant(vt, None)])
    else:
        # strided rows: one element at a time, through a stack slot (a lane past n
        # reads nothing); LLVM keeps the slot in registers
        step = cgutils.unpack_tuple(builder, ary.strides, 2)[1]
        base = builder.ptrtoint(ptr, _i64)
        slot = cgutils.alloca_once_value(builder, ir.Constant(vt, None))
        for p in range(LANES):
            addr = builder.add(base, builder.mul(step, ir.Constant(_i64, p)))
            eptr = builder.inttoptr(addr, elt.as_pointer())
            on = _i1(1) if n is None else builder.icmp_signed(">", n, n.type(p))
            with builder.if_then(on):
                cur = builder.load(slot)
                builder.store(builder.insert_element(cur, builder.load(eptr),
                                                     ir.Constant(_i32, p)), slot)
        v = builder.load(slot)
    if elt != _f64:
        v = builder.fpext(v, _vec)
    return v


@intrinsic
def v8_load(typingctx, arr, i, j):
    """``arr[i, j:j + 8]`` (2-D float array) as float64 lanes."""
    sig = vec8(arr, i, j)

    def codegen(context, builder, signature, args):
        return _emit_load(context, builder, signature.args[0], args[0], args[1],
                          args[2], None)
    return sig, codegen


@intrinsic
def v8_load_n(typingctx, arr, i, j, n):
    """``arr[i, j:j + n]`` in the first ``n`` lanes (``n`` < 8), 0.0 in the others;
    nothing past ``j + n`` is read."""
    sig = vec8(arr, i, j, n)

    def codegen(context, builder, signature, args):
        return _emit_load(context, builder, signature.args[0], args[0], args[1],
                          args[2], args[3])
    return sig, codegen


def _emit_store(context, builder, arrty, arr, i, j, n, v):
    ary, ptr = _row_pointer(context, builder, arrty, arr, i, j)
    vptr = builder.bitcast(ptr, _vec.as_pointer())
    if n is None:
        builder.store(v, vptr, align=8)
    else:
        fnty = ir.FunctionType(ir.VoidType(), [_vec, _vec.as_pointer(), _i32,
                                               ir.VectorType(_i1, LANES)])
        fn = _intrinsic_fn(builder, "llvm.masked.store.v8f64.p0", fnty)
        builder.call(fn, [v, vptr, ir.Constant(_i32, 8), _lane_mask(builder, n)])


def _check_store_target(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C"
            and arr.dtype == types.float64):
        raise TypeError("v8_store writes C-contiguous 2-D float64 arrays only")


@intrinsic
def v8_store(typingctx, arr, i, j, v):
    """``arr[i, j:j + 8] = v`` (C-contiguous 2-D float64 array)."""
    _check_store_target(arr)
    sig = types.void(arr, i, j, v)

    def codegen(context, builder, signature, args):
        _emit_store(context, builder, signature.args[0], args[0], args[1], args[2],
                    None, args[3])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def v8_store_n(typingctx, arr, i, j, n, v):
    """``arr[i, j:j + n] = v[:n]``; nothing past ``j + n`` is written."""
    _check_store_target(arr)
    sig = types.void(arr, i, j, n, v)

    def codegen(context, builder, signature, args):
        _emit_store(context, builder, signature.args[0], args[0], args[1], args[2],
                    args[3], args[4])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def v8_zero(typingctx):
    """Eight lanes of +0.0."""
    sig = vec8()

    def codegen(context, builder, signature, args):
        return ir.Constant(_vec, None)
    return sig, codegen


@intrinsic
def v8_splat(typingctx, x):
    """``x`` (a float) in every lane."""
    sig = vec8(types.float64)

    def codegen(context, builder, signature, args):
        x = context.cast(builder, args[0], signature.args[0], types.float64)
        v = builder.insert_element(ir.Constant(_vec, None), x, ir.Constant(_i32, 0))
        return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_i32, LANES),
                                                        [0] * LANES))
    return sig, codegen


@intrinsic
def v8_fma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once (``llvm.fma``)."""
    sig = vec8(vec8, vec8, vec8)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(_vec, [_vec, _vec, _vec])
        fn = _intrinsic_fn(builder, "llvm.fma.v8f64", fnty)
        return builder.call(fn, list(args))
    return sig, codegen


@intrinsic
def v8_hsum(typingctx, v):
    """``((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7))``: plain additions (no
    fast-math flags), so that no optimization reorders them."""
    sig = types.float64(vec8)

    def codegen(context, builder, signature, args):
        v = args[0]
        lo = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_i32, 4),
                                                      [0, 1, 2, 3]))
        hi = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(_i32, 4),
                                                      [4, 5, 6, 7]))
        h = builder.fadd(lo, hi)  # (s0+s4, s1+s5, s2+s6, s3+s7)
        h_lo = builder.shuffle_vector(h, h, ir.Constant(ir.VectorType(_i32, 2), [0, 1]))
        h_hi = builder.shuffle_vector(h, h, ir.Constant(ir.VectorType(_i32, 2), [2, 3]))
        g = builder.fadd(h_lo, h_hi)  # ((s0+s4)+(s2+s6), (s1+s5)+(s3+s7))
        return builder.fadd(builder.extract_element(g, ir.Constant(_i32, 0)),
                            builder.extract_element(g, ir.Constant(_i32, 1)))
    return sig, codegen
