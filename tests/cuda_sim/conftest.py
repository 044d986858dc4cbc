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
