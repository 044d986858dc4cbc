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
        # nobody wins by doing less (batch 4096 makes only 10 updates on the quick
        # size's 20,000 rows x 2 epochs: it is still learning there)
        floor = 0.5 if "4096" in r["name"] else 0.9
        assert r["seconds_per_epoch"] > 0 and r["r2"] > floor, r
        assert r["peak_mb_besides_X"] is None or r["peak_mb_besides_X"] > 0
        # peers without a fit have no setup; estimators report theirs
        assert (r["setup_seconds"] is None) == r["name"].startswith(("NumPy", "PyTorch"))
        assert r["floor_seconds"] == res["floors"][r["floor_dtype"]][r["floor"]] > 0
    assert set(res["floors"]) == {"float64", "float32"}
    assert "| contender |" in capsys.readouterr().out


def test_epoch_time_sparse_quick(tmp_path, capsys):
    out = tmp_path / "s.json"
    png = tmp_path / "s.png"
    assert bench_main.main(["epoch_time", "--quick", "--sparse", "--out", str(out),
                            "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads(out.read_text())
    assert res["kind"] == "sparse" and res["nnz"] > 0
    names = [r["name"] for r in res["rows"]]
    assert names[0].startswith("scikit-learn") and "fastgd full batch GD" in names
    by = {r["name"]: r for r in res["rows"]}
    # the per-sample contenders run one algorithm: the same quality as scikit-learn's
    sk = by["scikit-learn SGDRegressor (per-sample, shuffled)"]["r2"]
    assert abs(by["fastgd per-sample (sklearn algorithm, shuffled)"]["r2"] - sk) < 0.02
    for r in res["rows"]:
        assert r["seconds_per_epoch"] > 0 and r["vs_floor"] > 0
    assert "Data: CSR 20,000 x 10,000" in capsys.readouterr().out


def test_curvature_is_the_largest_eigenvalue():
    import numpy as np
    import scipy.sparse as sp

    from benchmarks.epoch_time import _curvature

    X = sp.random(300, 20, density=0.3, format="csr", random_state=0)
    A = np.hstack([X.toarray(), np.ones((300, 1))])
    lam = np.linalg.eigvalsh(A.T @ A / 300)[-1]
    assert abs(_curvature(X, iters=200) - lam) < 1e-8 * lam


def test_sparse_scaling_quick(capsys):
    assert bench_main.main(["sparse_scaling", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "| n_features |" in out and "100,000" in out


def test_fastgd_bench_command(tmp_path, capsys):
    from fastgd.cli import main

    assert main(["bench", "sparse_scaling", "--quick"]) == 0
    assert "| n_features |" in capsys.readouterr().out


def test_time_to_accuracy_quick(tmp_path, capsys):
    import numpy as np
    from sklearn.linear_model import Ridge

    from benchmarks import time_to_accuracy as tta

    out = tmp_path / "tta.json"
    png = tmp_path / "tta.png"
    assert bench_main.main(["time_to_accuracy", "--quick", "--out", str(out),
                            "--plot", str(png)]) == 0
    res = json.loads(out.read_text())
    assert png.stat().st_size > 0
    assert "| contender | time to 1% |" in capsys.readouterr().out
    for key in ("synthetic", "real"):
        prob = res[key]
        names = [r["name"] for r in prob["rows"]]
        assert names[0] == tta.SKLEARN and set(tta.FASTGD) <= set(names)
        assert abs(prob["closed_form_rel_excess_direct"]) < 1e-12
        for r in prob["rows"]:
            assert len(r["times"]) == len(r["rel_excess"]) == r["epochs_run"] > 0
            assert all(t > 0 for t in r["times"])
            assert min(r["rel_excess"]) >= 0  # nobody beats the closed-form optimum
            if r["epochs_to_target"]:
                i = r["epochs_to_target"] - 1
                assert r["rel_excess"][i] <= tta.TARGET < min(r["rel_excess"][:i], default=1)
                assert r["seconds_to_target"] == r["times"][i]
            # the exact quadratic-form excess is the directly evaluated one
            check = r["final_check"]
            assert abs(check["rel_excess_direct"] - check["rel_excess_quadratic"]) < 1e-6

    # the closed form is the ridge solution with the estimators' objective
    # (1/(2n)||Xw + b - y||^2 + alpha/2 ||w||^2 is Ridge's objective with alpha * n)
    X, y = tta._data(5_000, 8)
    opt = tta.Optimum(X, y)
    ridge = Ridge(alpha=tta.ALPHA * len(y)).fit(X, y)
    np.testing.assert_allclose(opt.coef, ridge.coef_, rtol=1e-8, atol=1e-10)
    assert opt.rel_excess(ridge.coef_, ridge.intercept_) < 1e-12
    w = opt.coef + 0.01
    direct = tta.objective(X, y, w, opt.intercept) - opt.loss
    assert direct > 0 and abs(direct - opt.excess(w, opt.intercept)) < 1e-12


def test_docs_benchmark_tables_are_the_recorded_results():
    # docs/benchmarks.md's tables are rendered from the JSON committed beside the
    # scripts; a hand edit of a figure, or a re-run not rendered, fails here
    assert bench_main.main(["render", "--check"]) == 0


def _recorded():
    from benchmarks import render

    return json.loads(render.SHAPES.read_text()), json.loads(render.TTA.read_text())


def test_render_check_fails_on_a_changed_figure(tmp_path, capsys):
    from benchmarks import render

    shapes, _ = _recorded()
    shapes[0]["rows"][0]["seconds_per_epoch"] *= 2
    changed = tmp_path / "shapes.json"
    changed.write_text(json.dumps(shapes))
    page = tmp_path / "page.md"
    page.write_text(render.DOCS.read_text())
    args = ["render", "--docs", str(page), "--shapes", str(changed)]
    assert bench_main.main([*args, "--check"]) == 1
    assert "epoch-time-1000000x100" in capsys.readouterr().err
    assert bench_main.main(args) == 0
    assert bench_main.main([*args, "--check"]) == 0
    # only the generated parts moved: the hand-written text is untouched
    old, new = render.DOCS.read_text(), page.read_text()
    strip = render._SECTION.sub("", old), render._SECTION.sub("", new)
    assert strip[0] == strip[1] and old != new


def test_render_needs_a_place_for_every_result():
    from benchmarks import render

    text = "intro\n<!-- render:a -->\nold\n<!-- /render:a -->\noutro\n"
    assert render.replace_sections(text, {"a": "new\n"}) == (
        "intro\n<!-- render:a -->\nnew\n<!-- /render:a -->\noutro\n")
    with pytest.raises(KeyError, match="'b'"):
        render.replace_sections(text, {"a": "x", "b": "y"})


def test_target_verdicts_follow_the_figures():
    from benchmarks import render

    shapes, tta = _recorded()
    rows = {r["name"]: r for r in shapes[0]["rows"]}
    sk = rows[render.SK]["seconds_per_epoch"]

    def verdict(prefix):
        table = render.targets(shapes, tta)
        line = next(ln for ln in table.splitlines() if ln.startswith("| " + prefix))
        return line.rsplit("|", 2)[1].strip()

    rows[render.PS]["seconds_per_epoch"] = sk / 4.5
    assert verdict("per-sample SGD, full shuffle") == "**yes**"
    rows[render.PS]["seconds_per_epoch"] = sk / 3
    rows[render.PS_NJ]["seconds_per_epoch"] = sk / 4.1
    assert verdict("per-sample SGD, full shuffle") == "with `n_jobs=-1`"
    rows[render.PS_NJ]["seconds_per_epoch"] = sk / 3.9
    assert verdict("per-sample SGD, full shuffle") == "no"
    rows[render.FULL_NJ]["vs_floor"] = 1.31
    assert verdict("full-batch GD") == "no"
    rows[render.FULL_NJ]["vs_floor"] = 1.29
    assert verdict("full-batch GD") == "**yes**"
    for name in (render.MB, render.MB_NJ, render.MB_BLOCK):
        rows[name]["seconds_per_epoch"] = rows[render.NUMPY]["seconds_per_epoch"] / 3
    assert verdict("minibatch 256 with momentum") == "no"
    rows[render.MB_NJ]["seconds_per_epoch"] = rows[render.NUMPY]["seconds_per_epoch"] / 5
    expect = ("**yes**: `n_jobs=-1`" if rows[render.TORCH]["seconds_per_epoch"]
              >= 15 * rows[render.MB_NJ]["seconds_per_epoch"] else "no")
    assert verdict("minibatch 256 with momentum") == expect


def test_grid_search_quick(tmp_path, capsys):
    out = tmp_path / "g.json"
    assert bench_main.main(["grid_search", "--quick", "--out", str(out)]) == 0
    res = json.loads(Path(str(out).replace(".json", "_quick.json")).read_text())
    by = {(r["mode"], r["contender"]): r for r in res["compare"]}
    # the search and GridSearchCV agree on the best candidate
    for mode in ("per-sample", "minibatch 256, momentum"):
        assert (by[(mode, "FastSGDRegressorCV n_jobs=-1")]["best_params"]
                == by[(mode, "GridSearchCV(FastSGDRegressor) n_jobs=-1")]["best_params"])
    assert [r["models"] for r in res["scaling"][:3]] == [1, 4, 16]
    assert "| mode | models K |" in capsys.readouterr().out


def test_step_floor_quick(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert bench_main.main(["step_floor", "--quick", "--out", str(out)]) == 0
    res = json.loads(Path(str(out).replace(".json", "_quick.json")).read_text())
    ns = res["ns_per_model_row"]
    assert set(ns) == {"dot", "axpy", "step", "step, 2 models per row",
                       "step, 32 models in blocks", "fastgd pass, 32 models"}
    assert all(v > 0 for v in ns.values())
    assert "ns per model and row" in capsys.readouterr().out


def test_first_fit_table():
    from benchmarks import first_fit

    row = {"cold": {"total_s": 5.0, "fit_s": 3.5}, "warm": {"total_s": 1.5, "fit_s": 0.1}}
    res = {"trees": {"before": dict.fromkeys(first_fit.CONFIGS, row),
                     "this version": dict.fromkeys(first_fit.CONFIGS, row)}}
    table = first_fit.to_markdown(res)
    assert "| before: cold cache (s) | before: warm cache (s) |" in table.splitlines()[0]
    assert "| full batch | 5.00 (fit 3.50) | 1.50 | 5.00 (fit 3.50) | 1.50 |" in table
