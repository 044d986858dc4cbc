"""GPU-kernel tests in numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``).

The simulator must be switched on before ``numba.cuda`` is first imported, which a
shared pytest process cannot promise (doctest collection of ``fastgd._kernels.cuda``
imports it), so these tests run in a process of their own: ``tests/test_cuda_sim.py``
starts ``pytest tests/cuda_sim`` with the variables below. Run them by hand with::

    NUMBA_ENABLE_CUDASIM=1 pytest tests/cuda_sim -q

On a machine with an NVIDIA GPU, the same tests run on the device with::

    FASTGD_TEST_REAL_GPU=1 FASTGD_CUDA_TPB=8 FASTGD_CUDA_MAX_BLOCKS=3 pytest tests/cuda_sim -q

Without either variable (the main test run) nothing here is collected. With 8 threads
per block and at most 3 blocks, tiny data runs the multi-block, multi-chunk and
partial-chunk paths of every kernel.
"""

import os
import sys

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
if not SIMULATOR and os.environ.get("FASTGD_TEST_REAL_GPU") != "1":
    collect_ignore_glob = ["test_*.py"]
elif SIMULATOR:
    os.environ.setdefault("FASTGD_CUDA_TPB", "8")
    os.environ.setdefault("FASTGD_CUDA_MAX_BLOCKS", "3")
    # the simulator runs each GPU thread as a Python thread and polls them at
    # every syncthreads(): a short GIL switch interval makes it ~6x faster
    sys.setswitchinterval(1e-4)


def _atomic_shared_arrays():
    """Make the simulator's ``cuda.shared.array`` allocation atomic.

    numba-cuda's simulator (0.30) gives a block one array per source line: the first
    thread to ask finds none and stores a new one. Between that check and the store
    a GIL switch can let a second thread find none too and store its own, so the
    block's threads no longer share the array (about 1 launch in 10,000 here: a
    flaky wrong reduction, seen as a loss or gradient norm off while the weights
    agree). Same rule, same key (the caller's file and line), one atomic
    ``dict.setdefault``. Shared memory on a GPU has no such problem.
    """
    import numpy as np
    from numba import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    original = kernelapi.FakeCUDAShared.array

    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:  # (these paths read no call site)
            return original(self, shape, dtype, alignment)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        return self._allocations.setdefault(key, np.empty(shape, dtype))

    kernelapi.FakeCUDAShared.array = array


if SIMULATOR:
    _atomic_shared_arrays()
