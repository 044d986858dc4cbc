"""Smoke run of ``python -m benchmarks.gpu --quick`` in the CUDA simulator."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import gpu


def test_gpu_benchmark_quick(tmp_path, capsys):
    out = tmp_path / "gpu.json"
    assert gpu.main(["--quick", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    names = {r["contender"] for r in res["rows"]}
    expected = {"stream floor", "fastgd GPU step", "fastgd GPU epoch", "fastgd CPU"}
    if res["meta"]["device"] == "CUDA simulator":
        assert names == expected  # PyTorch's CUDA loop is left out without a real GPU
    else:
        assert expected <= names
    for r in res["rows"]:
        assert r["seconds_per_epoch"] > 0
    # the two GPU modes train the same model (same order: same seed, same kernel)
    by = {(r["n"], r["batch"], r["contender"]): r for r in res["rows"]}
    for (n, batch, name), r in by.items():
        if name == "fastgd GPU step":
            other = by[(n, batch, "fastgd GPU epoch")]
            assert abs(r["final_loss"] - other["final_loss"]) <= 1e-9 * abs(r["final_loss"])
    assert "| contender |" in capsys.readouterr().out


def test_stream_floor_reads_every_element():
    import numpy as np
    from numba import cuda

    X = np.arange(1, 61, dtype=np.float32).reshape(12, 5)
    _, total = gpu.stream_floor(cuda.to_device(X), repeats=1)
    assert total == X.sum()
