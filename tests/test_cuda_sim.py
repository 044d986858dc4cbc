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
         "-x", "-rs"],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout.splitlines()[-1]
    # only the tests that need a GPU (many cooperating blocks, compiled kernels) skip
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("test_gpu_device.py" in line for line in skips), skips


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


# ------------------------------------------------------ layout (no CUDA needed)
def test_slots_cover_every_batch_in_order():
    from fastgd._kernels.cuda_layout import max_slots_upto, n_slots, slot_rows

    for slot_min, max_slots in ((4, 3), (32, 1024), (16, 7)):
        for batch in (1, 5, 12, 16, 31, 257, 4096, 100_003):
            cap = max_slots_upto(batch, slot_min, max_slots)
            for m in {1, 2, batch // 3 + 1, batch - 1, batch} - {0}:
                rows = slot_rows(m, slot_min, max_slots)
                assert rows % slot_min == 0
                assert n_slots(m, slot_min, max_slots) <= min(cap, max_slots)
                assert (n_slots(m, slot_min, max_slots) - 1) * rows < m


def test_layout_round_trip():
    from fastgd import FastSGDRegressor, optim
    from fastgd._kernels.bundles import BatchState
    from fastgd._state import TrainState
    from fastgd._kernels import cuda_layout as L
    from fastgd._program import lower

    prog = lower(FastSGDRegressor(optimizer=optim.Adam(amsgrad=True), batch_norm=True,
                                  clip_norm=0.5, average=3))
    rng = np.random.default_rng(0)
    state = TrainState.new(2, 5, prog).batch_arrays()
    for key in ("theta", "avg", "opt_state", "bn_mean", "bn_var", "updates"):
        getattr(state, key)[...] = rng.normal(size=getattr(state, key).shape)
    state.step[:] = [7, 9]
    layout = L.Layout(2, 5, prog)
    buf = np.zeros(layout.size)
    cw = np.array([[1.0, 2.0], [3.0, 4.0]])
    layout.pack(buf, state, cw, np.array([True, False]), np.array([0.0, 0.5]), 4.0)
    M, V, F, C = layout.views(buf)
    assert V[1, L.V_ACTIVE] == 0.0 and V[1, L.V_ETA] == 0.5 and C[L.C_EPOCH] == 4.0
    np.testing.assert_array_equal(V[:, L.V_CWPOS:L.V_CWNEG + 1], cw)
    np.testing.assert_array_equal(M[L.M_STATE + 2, 1], state.opt_state[1, 2])
    assert C[L.C_AVERAGE] == 3.0 and V.shape == (2, layout.nv)
    np.testing.assert_array_equal(V[:, L.V_CLIP_NORM], [0.5, 0.5])
    np.testing.assert_array_equal(V[:, L.V_HP:layout.v_sp], [prog.opt_hp] * 2)
    np.testing.assert_array_equal(V[:, layout.v_sp:], [prog.sched_sp] * 2)
    V[:, L.V_OUT + L.OUT_N] = [3.0, 0.0]
    assert layout.ints(8, 4, 3)[L.I_NT] == 2
    back = BatchState(*(np.zeros_like(value) for value in state))
    out = np.zeros((2, L.N_OUT))
    layout.unpack(buf, back, out)
    for key in ("theta", "avg", "opt_state", "bn_mean", "bn_var", "updates", "step"):
        np.testing.assert_array_equal(getattr(back, key), getattr(state, key))
    np.testing.assert_array_equal(out[:, L.OUT_N], [3.0, 0.0])


def test_layout_holds_each_outputs_hyper_parameters():
    # the CV estimators' pass: 3 candidates x 2 targets, each candidate its own numbers
    import dataclasses

    from fastgd import FastSGDRegressor
    from fastgd._kernels import cuda_layout as L
    from fastgd._kernels.bundles import OutputParams
    from fastgd._program import lower
    from fastgd._state import TrainState

    prog = lower(FastSGDRegressor(optimizer="adam", loss="huber", batch_size=4))
    base = prog.per_output(6)
    rng = np.random.default_rng(1)
    outputs = OutputParams(*(rng.random(np.shape(v)) for v in base))
    prog = dataclasses.replace(prog, outputs=outputs)
    layout = L.Layout(6, 3, prog, n_targets=2)
    buf = np.zeros(layout.size)
    state = TrainState.new(6, 3, prog).batch_arrays()
    layout.pack(buf, state, np.ones((6, 2)), np.ones(6, bool), np.zeros(6), 0.0)
    _, V, _, _ = layout.views(buf)
    for col, name in ((L.V_EPS, "loss_eps"), (L.V_L2, "alpha_l2"), (L.V_L1, "alpha_l1"),
                      (L.V_CLIP_VALUE, "clip_value"), (L.V_CLIP_NORM, "clip_norm")):
        np.testing.assert_array_equal(V[:, col], getattr(outputs, name))
    np.testing.assert_array_equal(V[:, L.V_HP:layout.v_sp], outputs.opt_hp)
    np.testing.assert_array_equal(V[:, layout.v_sp:], outputs.sched_sp)
    assert layout.ints(4, 4, 3)[L.I_NT] == 2


# ----------------------------------------- rules for the CUDA sources (read, no CUDA)
CUDA_SOURCES = sorted((ROOT / "fastgd" / "_kernels").glob("cuda*.py")) + [
    ROOT / "benchmarks" / "gpu.py"]


def _cuda_functions(path):
    """Functions compiled by ``cuda.jit`` (decorated, or returned as ``JIT(fn)``)."""
    import ast

    tree = ast.parse(path.read_text())
    jitted = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id.endswith("_JIT") and node.args and \
                isinstance(node.args[0], ast.Name):
            jitted.add(node.args[0].id)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            decorated = any("cuda.jit" in ast.unparse(d) for d in node.decorator_list)
            if decorated or node.name in jitted:
                yield node


def _code_lines(fn):
    """Lines of a function that hold code (no docstring, blank or comment line)."""
    import ast

    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    lines = set()
    for stmt in body:
        for node in ast.walk(stmt):
            if hasattr(node, "lineno"):
                lines.update(range(node.lineno, node.end_lineno + 1))
    return len(lines)


def test_cuda_functions_are_small():
    # the team's rule for compiled functions (issue 20): <= 16 parameters, <= 140 lines
    seen = 0
    for path in CUDA_SOURCES:
        for fn in _cuda_functions(path):
            seen += 1
            n_args = len(fn.args.args)
            assert n_args <= 16, f"{path.name}:{fn.name} takes {n_args} arguments"
            assert _code_lines(fn) <= 140, f"{path.name}:{fn.name} is too long"
    assert seen >= 25


def test_shared_and_local_array_shapes_are_compile_time_constants():
    # a shape read through an attribute (kc.TPB) or computed in the kernel is typed
    # as a run-time integer on a GPU, where the kernel then fails to compile; the
    # simulator accepts it. Shapes here are literals or module-level constants.
    import ast

    for path in CUDA_SOURCES:
        tree = ast.parse(path.read_text())
        constants = {t.id for node in tree.body if isinstance(node, ast.Assign)
                     for t in node.targets if isinstance(t, ast.Name)}
        for node in tree.body:
            if isinstance(node, ast.ImportFrom):
                constants.update(a.asname or a.name for a in node.names)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "array"
                    and ast.unparse(node.func.value) in ("cuda.shared", "cuda.local")):
                shape = node.args[0]
                parts = shape.elts if isinstance(shape, ast.Tuple) else [shape]
                for part in parts:
                    ok = (isinstance(part, ast.Constant) and isinstance(part.value, int)
                          ) or (isinstance(part, ast.Name) and part.id in constants)
                    assert ok, f"{path.name}:{node.lineno}: shape {ast.unparse(shape)}"


def test_gpu_array_dtype_is_read_from_its_interface():
    # a PyTorch CUDA tensor's dtype is torch.float32, which NumPy cannot interpret
    # (the fit failed with "Cannot interpret 'torch.float32' as a data type")
    from fastgd import _device

    if _device.cuda_status()[0]:
        pytest.skip("a CUDA device is present (tests/cuda_sim/test_gpu_device.py "
                    "fits a real PyTorch tensor)")

    class TorchLike:
        dtype = "torch.float32"
        shape = (4, 2)
        __cuda_array_interface__ = {"shape": (4, 2), "typestr": "<f4", "data": (0, False),
                                    "version": 3}

    assert _device.device_dtype_shape(TorchLike()) == (np.dtype(np.float32), (4, 2))
    est = FastSGDRegressor(device="cuda")
    X, y = _device.validate_device_X_y(est, TorchLike(), np.zeros(4), True, False, True)
    assert est.n_features_in_ == 2 and y.shape == (4,)
