"""Smoke runs of ``python -m benchmarks.gpu`` (``--quick``, and the agreement check on
one model) in the CUDA simulator; on a GPU the same code runs on the device."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import gpu  # noqa: E402


def test_gpu_benchmark_quick(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert gpu.main(["--quick", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = [r for r in res["rows"] if r["contender"] != "done"]
    assert not [r for r in rows if "error" in r], rows
    names = {r["contender"] for r in rows}
    expected = {"floor (numba reduction)", "fastgd GPU step", "fastgd GPU persistent",
                "fastgd GPU cooperative", "fastgd GPU auto", "fastgd CPU n_jobs=1",
                "fastgd CPU n_jobs=-1"}
    if res["meta"]["device"] == "CUDA simulator":
        assert names == expected  # PyTorch's CUDA rows are left out without a GPU
    else:
        assert expected <= names
    timed = [r for r in rows if "seconds_per_epoch" in r]
    assert all(r["seconds_per_epoch"] > 0 for r in timed)
    # the GPU modes train the same model: same seed, same slots, same sums
    by = {(r["n"], r["batch"], r["contender"]): r for r in timed}
    for (n, batch, name), r in by.items():
        if name.startswith("fastgd GPU") and name != "fastgd GPU auto":
            assert r["final_loss"] == by[(n, batch, "fastgd GPU step")]["final_loss"]
    autos = [r for r in rows if r["contender"] == "fastgd GPU auto"]
    assert len(autos) == 4 and all(r["auto_vs_best"] >= 1.0 for r in autos)
    assert "| contender |" in capsys.readouterr().out


def test_agreement_check_on_one_model(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu, "CHECKS", {"adam": gpu.CHECKS["adam"]})
    results = gpu.Results(tmp_path / "check.json", {})
    assert gpu.check(results, 40, 4, 16)
    rows = results.rows
    assert {r["contender"] for r in rows} == {f"check {m}" for m in gpu.GPU_MODES}
    assert all(r["ok"] and r["max_rel_diff_vs_cpu"] < 1e-12 for r in rows)


def test_stream_floor_reads_every_element():
    import numpy as np
    from numba import cuda

    X = np.arange(1, 61, dtype=np.float32).reshape(12, 5)
    _, total = gpu.stream_floor(cuda.to_device(X), repeats=1)
    assert total == X.sum()


def test_gpu_grid_benchmark_quick(tmp_path, capsys):
    from benchmarks import gpu_grid

    out = tmp_path / "gpu_grid.json"
    assert gpu_grid.main(["--quick", "--out", str(out)]) == 0
    res = json.loads(out.with_name("gpu_grid_quick.json").read_text())
    rows = {r["contender"]: r for r in res["rows"]}
    assert not [r for r in rows.values() if "error" in r], rows
    gpu, cpu = rows["FastSGDRegressorCV GPU"], rows["FastSGDRegressorCV CPU n_jobs=-1"]
    assert gpu["models"] == 8 and gpu["seconds"] > 0
    assert gpu["best_params"] == cpu["best_params"]
    assert "| FastSGDRegressorCV GPU | 8 |" in capsys.readouterr().out
