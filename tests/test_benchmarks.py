"""Smoke runs of the benchmark scripts (no timing is asserted)."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

pytest.importorskip("benchmarks.epoch_time")
from benchmarks import __main__ as bench_main  # noqa: E402


def test_epoch_time_quick(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert bench_main.main(["epoch_time", "--quick", "--no-first-fit", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    names = [r["name"] for r in res["rows"]]
    assert any(n.startswith("scikit-learn") for n in names)
    assert any(n.startswith("NumPy") for n in names)
    assert any("block shuffle" in n for n in names)
    for r in res["rows"]:
        assert r["seconds_per_epoch"] > 0 and r["r2"] > 0.9  # nobody wins by doing less
    assert "| contender |" in capsys.readouterr().out


def test_sparse_scaling_quick(capsys):
    assert bench_main.main(["sparse_scaling", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "| n_features |" in out and "100,000" in out


def test_fastgd_bench_command(tmp_path, capsys):
    from fastgd.cli import main

    assert main(["bench", "sparse_scaling", "--quick"]) == 0
    assert "| n_features |" in capsys.readouterr().out
