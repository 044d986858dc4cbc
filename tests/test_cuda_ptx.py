"""Every CUDA kernel compiles for a real GPU (PTX for compute capability 9.0), checked
without one: ``tests/cuda_ptx/compile_kernels.py`` in a process of its own. Skips where
the CUDA compilers (NVVM, NVRTC) are missing; ``.ci/run`` installs NVRTC."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_kernels_compile_for_the_gpu():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env.pop("FASTGD_CUDA_TPB", None)  # the default block size, as on a GPU
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "cuda_ptx" /
                                               "compile_kernels.py")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode == 77:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]
    assert proc.stdout.count("ok ") == 3 * 9, proc.stdout
