"""Compile every CUDA kernel of fastgd to PTX for an H100/H200 (compute capability
9.0) without a GPU: NVVM (the CUDA toolkit's) and NVRTC (pip's
``nvidia-cuda-nvrtc-cu12``) are enough. Run by ``tests/test_cuda_ptx.py`` in a process
of its own (numba-cuda's simulator off).

The simulator runs the kernels as Python, so it accepts code that the CUDA target
cannot type or lower; this compiles each kernel as a GPU would, for every layout of
``X`` the backend passes (float64/float32 in C order, float64 in Fortran order).

Exit status: 0 all compiled, 1 a kernel failed (printed), 77 no NVVM/NVRTC here.
"""

import sys
import types as pytypes

CC = (9, 0)


def _toolchain():
    """Why the toolchain is missing (None when NVVM and NVRTC load)."""
    try:
        from numba.cuda.cudadrv import nvvm

        if not nvvm.is_available():
            return "NVVM (the CUDA toolkit's libnvvm) is not found"
        import cuda.pathfinder as finder

        finder.load_nvidia_dynamic_lib("nvrtc")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _without_device():
    """Device functions compile for the current device's compute capability; here
    there is none, so name the target's."""
    import importlib

    dispatcher = importlib.import_module("numba.cuda.dispatcher")
    if not hasattr(dispatcher, "get_current_device"):
        raise RuntimeError("numba.cuda.dispatcher.get_current_device is gone: this "
                           "check needs updating for this numba-cuda")
    dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=CC)


def signatures(X):
    from numba import types

    f8 = types.float64
    i8 = types.int64
    a1, a2 = types.Array(f8, 1, "C"), types.Array(f8, 2, "C")
    a3, a4 = types.Array(f8, 3, "C"), types.Array(f8, 4, "C")
    i1 = types.Array(i8, 1, "C")
    epoch = (X, a2, i1, a3, a2, a2, a1, i1, a3, a2, a4)
    return {"order": (i1, i1, i1),
            "grad": (X, a2, i1, a3, a2, i1, a3, a4, i8),
            "step": (i1, a3, a2, a2, a1, i1, a3, i8),
            "bn": (X, i1, a3, a2, a2, a1, i1, a2, i8, i8),
            "persistent": epoch, "cooperative": epoch}


def main():
    why = _toolchain()
    if why is not None:
        print(f"no CUDA compiler toolchain: {why}")
        return 77
    _without_device()
    from numba import cuda, types

    from fastgd._kernels import cuda as kc

    failed = 0
    for X in (types.Array(types.float64, 2, "C"), types.Array(types.float32, 2, "C"),
              types.Array(types.float64, 2, "F")):
        sigs = signatures(X)
        for (name, regs), kernel in sorted(kc._KERNELS.items(), key=str):
            if name in ("order", "step", "bn") and regs:
                continue  # the same kernel under both keys
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, sigs[name], cc=CC)
                assert ".entry" in ptx
                print(f"ok   {name:12s} regs={regs!s:5s} X={X}")
            except Exception as exc:
                failed += 1
                print(f"FAIL {name:12s} regs={regs!s:5s} X={X}: {type(exc).__name__}: "
                      f"{str(exc)[:3000]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
