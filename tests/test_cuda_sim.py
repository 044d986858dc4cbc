"""The GPU backend (``device="cuda"``) in the main test run.

The kernels themselves are tested in numba-cuda's simulator by ``tests/cuda_sim``,
in a subprocess (the simulator must be enabled before ``numba.cuda`` is imported,
see ``tests/cuda_sim/conftest.py``). Here: that subprocess passes, importing fastgd
loads no CUDA, and ``device="cuda"`` without a GPU is a clear error.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgd import FastSGDClassifier, FastSGDRegressor

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_kernels_in_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", FASTGD_CUDA_TPB="8",
               FASTGD_CUDA_MAX_BLOCKS="3", FASTGD_CUDA_MODE="auto")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/cuda_sim", "-q", "-p", "no:cacheprovider",
         "-x"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "skipped" not in proc.stdout.splitlines()[-1]


def test_import_loads_no_cuda():
    code = ("import sys, fastgd; "
            "bad = [m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda.'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=300)


def _no_gpu():
    from fastgd import _device

    return not _device.cuda_status()[0]


@pytest.mark.parametrize("Est", [FastSGDRegressor, FastSGDClassifier])
def test_cuda_without_gpu_is_a_clear_error(Est):
    if not _no_gpu():
        pytest.skip("a CUDA device is present")
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match="device='cuda' needs an NVIDIA GPU"):
        Est(device="cuda", batch_size=8).fit(X, y)


def test_auto_without_gpu_runs_on_cpu():
    if not _no_gpu():
        pytest.skip("a CUDA device is present")
    X = np.random.default_rng(0).normal(size=(20, 3))
    params = dict(batch_size=8, max_iter=3, tol=None, random_state=0)
    est = FastSGDRegressor(device="auto", **params).fit(X, X[:, 0])
    ref = FastSGDRegressor(device="cpu", **params).fit(X, X[:, 0])
    assert est.device_ == "cpu"
    np.testing.assert_array_equal(est.coef_, ref.coef_)


def test_bad_device_is_rejected():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="device"):
        FastSGDRegressor(device="gpu").fit(X, np.zeros(4))
