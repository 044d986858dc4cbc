"""Render the recorded benchmark results into ``docs/benchmarks.md``.

``python -m benchmarks render`` (or ``fastgd bench render``) reads
the results in ``benchmarks/results/`` (``epoch_time_shapes.json`` from
``epoch_time --shapes``, ``time_to_accuracy.json``, ``gpu.json`` from
``benchmarks.gpu``, ``grid_search.json``, ``first_fit.json``, ``compare_trees.json``)
and rewrites the generated parts of ``docs/benchmarks.md``, ``docs/gpu.md`` and
``docs/performance-notes.md`` (the targets of the earlier performance work): the per-shape tables, the table of the performance
issue's targets (every ratio computed from the same run) and the time-to-accuracy
tables. A generated part sits between two HTML comments that Markdown does not show::

    <!-- render:NAME -->
    ...
    <!-- /render:NAME -->

Everything outside them (the reading of the numbers) is written by hand. ``--check``
rewrites nothing and fails if the page differs from what the results give, which the
test suite runs so that the page cannot drift from the JSON committed beside it.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from . import epoch_time, time_to_accuracy

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
GPU_DOCS = ROOT / "docs" / "gpu.md"
GRID_DOCS = ROOT / "docs" / "grid-search.md"
NOTES = ROOT / "docs" / "performance-notes.md"
README = ROOT / "README.md"
RESULTS = Path(__file__).parent / "results"
GPU = RESULTS / "gpu.json"
GRID = RESULTS / "grid_search.json"
FIRST = RESULTS / "first_fit.json"
COMPARE = RESULTS / "compare_trees.json"
SHAPES = Path(__file__).parent / "results" / "epoch_time_shapes.json"
TTA = Path(__file__).parent / "results" / "time_to_accuracy.json"

# names of the epoch_time contenders the targets are read from
SK = "scikit-learn SGDRegressor (per-sample, shuffled)"
PS = "fastgd per-sample (sklearn algorithm, shuffled)"
PS_NJ = PS + ", n_jobs=-1"
PS_BLOCK = "fastgd per-sample (block shuffle)"
MB = "fastgd minibatch 256, momentum"
MB_NJ = MB + ", n_jobs=-1"
MB_BLOCK = MB + ", block shuffle"
MB_F32 = MB + ", float32"
MB4096 = "fastgd minibatch 4096, momentum"
MB4096_NJ = MB4096 + ", n_jobs=-1"
FULL = "fastgd full batch GD"
FULL_NJ = FULL + ", n_jobs=-1"
FULL_F32 = FULL + ", float32"
FULL_F32_NJ = FULL + ", float32, n_jobs=-1"
NUMPY = "NumPy minibatch 256, momentum"
TORCH = "PyTorch CPU minibatch 256, momentum"

# the contenders shown for the shapes besides the reference one (the JSON keeps all)
SECONDARY = (SK, PS, PS_NJ, MB, MB_BLOCK, FULL, FULL_NJ, NUMPY, TORCH)

_SECTION = re.compile(r"(<!-- render:(?P<name>[\w.-]+) -->\n)(?P<body>.*?)"
                      r"(<!-- /render:(?P=name) -->)", re.S)


def sections(text):
    """The generated parts of ``text``: {name: body}."""
    return {m["name"]: m["body"] for m in _SECTION.finditer(text)}


def replace_sections(text, bodies):
    """``text`` with the body of every generated part named in ``bodies`` replaced.

    Raises ``KeyError`` naming the parts that ``text`` lacks markers for: a result
    that has nowhere to go is an error, not something to drop silently.
    """
    missing = sorted(set(bodies) - set(sections(text)))
    if missing:
        raise KeyError(f"no '<!-- render:NAME -->' ... '<!-- /render:NAME -->' markers "
                       f"for {missing} in the page")

    def sub(m):
        body = bodies.get(m["name"])
        if body is None:
            return m[0]
        return m[1] + body.rstrip("\n") + "\n" + m[4]

    return _SECTION.sub(sub, text)


def section_name(res):
    """``epoch-time-1000000x100`` / ``epoch-time-csr-1000000x100000``."""
    kind = "csr-" if res["kind"] == "sparse" else ""
    return f"epoch-time-{kind}{res['n_samples']}x{res['n_features']}"


def _ms(by, name):
    return by[name]["seconds_per_epoch"] * 1e3


def _verdict(met, partly=False):
    return "**yes**" if met else ("partly" if partly else "no")


def targets(shapes, tta=None):
    """Markdown table of the performance issue's targets, from one ``--shapes`` run.

    Every ratio is computed from the run's own rows and floors (dense 1M x 100 float64
    unless the row says otherwise), so the verdicts are those of that run.
    """
    dense = next(r for r in shapes if r["kind"] == "dense")
    by = {r["name"]: r for r in dense["rows"]}
    fl = dense["floors"]["float64"]
    sk = _ms(by, SK)
    rows = []

    def add(target, measured, verdict):
        rows.append(f"| {target} | {measured} | {verdict} |")

    x1, xn = sk / _ms(by, PS), sk / _ms(by, PS_NJ)
    add("per-sample SGD, full shuffle: >= 4x scikit-learn",
        f"one thread {x1:.2f}x ({_ms(by, PS):.1f} against {sk:.0f} ms); `n_jobs=-1` "
        f"{xn:.2f}x ({_ms(by, PS_NJ):.1f} ms)",
        "**yes**" if x1 >= 4 else ("with `n_jobs=-1`" if xn >= 4 else "no"))

    stream = fl["stream"] * 1e3
    ps_b, mb_b = by[PS_BLOCK]["vs_floor"], by[MB_BLOCK]["vs_floor"]
    add(f"a cheaper shuffle within 2x the streaming floor ({stream:.1f} ms, 1 thread)",
        f"`shuffle=\"block\"`: minibatch 256 {_ms(by, MB_BLOCK):.1f} ms ({mb_b:.2f}x), "
        f"per-sample {_ms(by, PS_BLOCK):.1f} ms ({ps_b:.2f}x); per-sample in storage "
        f"order {by['fastgd per-sample (no shuffle)']['vs_floor']:.2f}x",
        "**yes**" if max(ps_b, mb_b) <= 2 else
        ("minibatch 256" if mb_b <= 2 else ("per-sample" if ps_b <= 2 else "no")))

    numpy, torch = _ms(by, NUMPY), by.get(TORCH)
    parts, met = [], []
    for label, name in (("one thread", MB), ("`n_jobs=-1`", MB_NJ),
                        ("block shuffle", MB_BLOCK)):
        ms = _ms(by, name)
        vs_np = numpy / ms
        vs_t = None if torch is None else torch["seconds_per_epoch"] * 1e3 / ms
        parts.append(f"{label} {ms:.1f} ms: {vs_np:.2f}x NumPy"
                     + ("" if vs_t is None else f", {vs_t:.1f}x PyTorch"))
        if vs_np >= 4 and (vs_t is None or vs_t >= 15):
            met.append(label)
    add("minibatch 256 with momentum: >= 4x NumPy and >= 15x PyTorch",
        f"NumPy {numpy:.0f} ms"
        + ("" if torch is None else f", PyTorch {torch['seconds_per_epoch'] * 1e3:.0f} ms")
        + "; " + "; ".join(parts),
        ("**yes**: " + ", ".join(met)) if met else "no")

    full_nj = by[FULL_NJ]["vs_floor"]
    add("full-batch GD with `n_jobs=-1`: within 1.3x the 2-thread floor "
        f"({fl['stream_threads'] * 1e3:.1f} ms)",
        f"{_ms(by, FULL_NJ):.1f} ms ({full_nj:.2f}x); one thread {_ms(by, FULL):.1f} ms",
        _verdict(full_nj <= 1.3))

    add("`n_jobs` for large minibatches and full batch, deterministic per thread count",
        f"minibatch 4096 {_ms(by, MB4096):.1f} -> {_ms(by, MB4096_NJ):.1f} ms, full batch "
        f"{_ms(by, FULL):.1f} -> {_ms(by, FULL_NJ):.1f} ms with 2 threads; determinism: "
        "`tests/test_threads.py`, `tests/test_gather.py`",
        _verdict(_ms(by, MB4096_NJ) < _ms(by, MB4096) and _ms(by, FULL_NJ) < _ms(by, FULL)))

    f32 = [(label, _ms(by, a) / _ms(by, b)) for label, a, b in
           (("minibatch 256", MB_F32, MB), ("full batch", FULL_F32, FULL),
            ("full batch `n_jobs=-1`", FULL_F32_NJ, FULL_NJ))]
    add("float32 roughly halves the time of bandwidth-bound modes",
        "float32 / float64 time: " + ", ".join(f"{label} {r:.2f}" for label, r in f32),
        _verdict(all(r <= 0.6 for _, r in f32), partly=any(r <= 0.8 for _, r in f32)))

    sparse = next((r for r in shapes if r["kind"] == "sparse"), None)
    if sparse is not None:
        sb = {r["name"]: r for r in sparse["rows"]}
        ssk = _ms(sb, SK)
        xs = {label: ssk / _ms(sb, name) for label, name in
              (("one thread", PS), ("`n_jobs=-1`", PS_NJ), ("block shuffle", PS_BLOCK))}
        add(f"sparse per-sample SGD >= 2x scikit-learn (CSR {sparse['n_samples']:,} x "
            f"{sparse['n_features']:,})",
            f"scikit-learn {ssk:.0f} ms; full shuffle " + ", ".join(
                f"{label} {x:.2f}x" for label, x in xs.items()),
            _verdict(xs["one thread"] >= 2))

    ff = dense.get("first_fit")
    if ff:
        ratio = ff["fastgd_warm_cache_process_s"] / ff["sklearn_process_s"]
        add("first fit in a fresh process, warm cache: within 1.5x a scikit-learn script",
            f"{ff['fastgd_warm_cache_process_s']:.2f} s against "
            f"{ff['sklearn_process_s']:.2f} s ({ratio:.2f}x); cold cache "
            f"{ff['fastgd_cold_cache_process_s']:.2f} s",
            _verdict(ratio <= 1.5))

    if tta is not None:
        best = {}
        for key in ("synthetic", "real"):
            prob = tta.get(key)
            if prob is None:
                continue
            fast = [r for r in prob["rows"]
                    if r["name"].startswith("fastgd") and r.get("speedup_vs_sklearn")]
            top = max(fast, key=lambda r: r["speedup_vs_sklearn"], default=None)
            if top is not None:
                best[key] = top
        if best:
            add("time to 1% of the optimum: best fastgd mode >= 10x scikit-learn's "
                "default",
                "; ".join(f"{key}: {r['speedup_vs_sklearn']:.1f}x "
                          f"({r['name'].removeprefix('fastgd ')}, "
                          f"{time_to_accuracy._fmt_time(r['seconds_to_target'])})"
                          for key, r in best.items()),
                "**yes**" if all(r["speedup_vs_sklearn"] >= 10 for r in best.values())
                else ", ".join(f"{key} {'yes' if r['speedup_vs_sklearn'] >= 10 else 'no'}"
                               for key, r in best.items()))

    return "\n".join(["| target | measured | met |", "|---|---|---|", *rows])


def render(shapes, tta=None):
    """{section name: markdown} of ``docs/benchmarks.md``'s epoch-time parts and the
    time-to-accuracy table."""
    reference = next((r for r in shapes if r["kind"] == "dense"), None)
    bodies = {section_name(r): epoch_time.to_markdown(
        r, None if r is reference or r["kind"] == "sparse" else SECONDARY)
        for r in shapes}
    if tta is not None:
        bodies["time-to-accuracy"] = (
            time_to_accuracy.to_markdown(tta).rstrip("\n")
            + f"\n\nLoad average {tta['load_average_start']:.2f} at the start, "
              f"{tta['load_average_end']:.2f} at the end.")
    return bodies


def gpu_summary(gpu):
    """The GPU rows a user compares: fastgd's mode ``auto`` picks, the CPU on the same
    host and PyTorch, per batch size (1M x 100)."""
    want = ("fastgd GPU cooperative", "fastgd GPU step", "fastgd CPU n_jobs=-1",
            "PyTorch CUDA", "PyTorch CUDA graph")
    by = {(r.get("n"), str(r.get("batch")), r.get("contender")): r for r in gpu["rows"]}
    lines = ["| batch | " + " | ".join(want) + " |", "|---|" + "---:|" * len(want)]
    for batch in ("256", "4096", "full"):
        cells = []
        for name in want:
            r = by.get((1_000_000, batch, name), {})
            sec = r.get("seconds_per_epoch")
            cells.append(f"{sec * 1e3:.2f} ms" if sec is not None else "-")
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def grid_summary(grid):
    """The grid-search page's table: per mode, the seconds of one fit, of the search
    with every core, and of ``GridSearchCV`` over each estimator."""
    want = ("one fit", "FastSGDRegressorCV n_jobs=-1",
            "GridSearchCV(FastSGDRegressor) n_jobs=-1",
            "GridSearchCV(SGDRegressor) n_jobs=-1")
    by = {(r["mode"], r["contender"]): r for r in grid["compare"]}
    lines = ["| mode | " + " | ".join(want) + " |", "|---|" + "---:|" * len(want)]
    for mode in dict.fromkeys(r["mode"] for r in grid["compare"]):
        cells = [f"{by[(mode, name)]['seconds']:.1f} s" if (mode, name) in by else "-"
                 for name in want]
        lines.append(f"| {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_table(res):
    lines = ["| mode (1M x 100 float64, one fit) | before (ms / epoch) | after | "
             "after / before |", "|---|---:|---:|---:|"]
    for name, r in res["results"].items():
        old, new = sorted(r["old_ms"])[len(r["old_ms"]) // 2], \
            sorted(r["new_ms"])[len(r["new_ms"]) // 2]
        lines.append(f"| {name} | {old:.1f} | {new:.1f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def readme_headline(shapes, gpu, grid):
    """The README's headline figures, each from the rendered benchmark tables."""
    dense = next(r for r in shapes if r["kind"] == "dense")
    by = {r["name"]: r for r in dense["rows"]}
    sk, numpy_, torch_ = _ms(by, SK), _ms(by, NUMPY), _ms(by, TORCH)
    fl = dense["floors"]["float64"]
    lines = [
        f"- **{sk / _ms(by, PS_NJ):.1f}x scikit-learn** with scikit-learn's own algorithm "
        f"and results (`FastSGDRegressor(n_jobs=-1)`: {_ms(by, PS_NJ):.0f} against "
        f"{sk:.0f} ms per shuffled epoch; {sk / _ms(by, PS):.1f}x on one thread);",
        f"- **{numpy_ / _ms(by, MB_BLOCK):.1f}x a NumPy loop and "
        f"{torch_ / _ms(by, MB_BLOCK):.0f}x a PyTorch CPU loop** for minibatch SGD with "
        f"momentum (batch 256, `shuffle=\"block\"`: {_ms(by, MB_BLOCK):.0f} ms per epoch, "
        f"{_ms(by, MB_BLOCK) / fl['stream'] * 1e-3:.2f}x the time to stream `X` "
        "once);",
    ]
    if grid is not None:
        rows = {(r["mode"], r["contender"]): r["seconds"] for r in grid["compare"]}
        cv = rows[("per-sample", "FastSGDRegressorCV n_jobs=-1")]
        lines.append(
            f"- **a grid search {rows[('per-sample', 'GridSearchCV(SGDRegressor) n_jobs=-1')] / cv:.1f}x "
            f"faster than `GridSearchCV(SGDRegressor)`** with the same results "
            f"(`FastSGDRegressorCV`: 32 candidates x 3 folds in {cv:.0f} s instead of "
            f"{rows[('per-sample', 'GridSearchCV(SGDRegressor) n_jobs=-1')]:.0f} s);")
    if gpu is not None:
        g = {(str(r.get("batch")), r.get("contender")): r for r in gpu["rows"]
             if r.get("n") == 1_000_000}
        coop = g[("256", "fastgd GPU cooperative")]["seconds_per_epoch"]
        loop = g[("256", "PyTorch CUDA")]["seconds_per_epoch"]
        graph = g[("256", "PyTorch CUDA graph")]["seconds_per_epoch"]
        lines.append(
            f"- **on an NVIDIA H200, {loop / coop:.0f}x a PyTorch CUDA loop** "
            f"({graph / coop:.1f}x the same step replayed from a CUDA graph) for minibatch "
            f"256: {coop * 1e3:.0f} ms per epoch of 1,000,000 x 100.")
    lines.append("")
    lines.append(f"Measured on dense 1,000,000 x 100 float64 on a 2-core machine (the "
                 "GPU line: float32 on the H200's host), every contender in the same "
                 "run: [docs/benchmarks.md](docs/benchmarks.md).")
    return "\n".join(lines)


def _json(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else None


def pages(shapes, tta, gpu, grid, first, compare, docs=DOCS):
    """[(page, {section: markdown})] for every page the results fill (``docs``: the
    benchmarks page)."""
    from . import first_fit, grid_search

    bench = render(shapes, tta)
    if grid is not None:
        bench["grid-search"] = grid_search.to_markdown(grid)
    if first is not None:
        bench["first-fit"] = first_fit.to_markdown(first)
    notes = {"targets": targets(shapes, tta)}
    if compare is not None:
        notes["compare-trees"] = compare_table(compare)
    out = [(Path(docs), bench), (NOTES, notes),
           (README, {"readme-headline": readme_headline(shapes, gpu, grid)})]
    if gpu is not None:
        bench["gpu-summary"] = gpu_summary(gpu)
        out.append((GPU_DOCS, render_gpu(gpu)))
    if grid is not None:
        out.append((GRID_DOCS, {"grid-search-summary": grid_summary(grid)}))
    return out


def render_gpu(gpu):
    """{section name: markdown} of the GPU page (``benchmarks/results/gpu.json``)."""
    from .gpu import markdown

    return {"gpu-h200": markdown(gpu["rows"])}


def update(page, bodies, check):
    """Rewrite the generated parts of ``page`` (``check``: only compare); returns
    the names of the parts that were out of date."""
    text = page.read_text()
    new = replace_sections(text, bodies)
    current = sections(text)
    stale = sorted(name for name, body in sections(new).items() if current[name] != body)
    if not check and new != text:
        page.write_text(new)
    return stale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", default=None,
                        help="render only this copy of the benchmarks page (default: "
                             "every page the results fill)")
    parser.add_argument("--shapes", default=str(SHAPES),
                        help="result of 'epoch_time --shapes'")
    parser.add_argument("--check", action="store_true",
                        help="rewrite nothing; exit 1 if the pages are not what the "
                             "results give")
    args = parser.parse_args(argv)
    shapes = json.loads(Path(args.shapes).read_text())
    if isinstance(shapes, dict):  # a single-shape run
        shapes = [shapes]
    failed = False
    todo = pages(shapes, _json(TTA), _json(GPU), _json(GRID), _json(FIRST),
                 _json(COMPARE), docs=args.docs or DOCS)
    if args.docs is not None:
        todo = todo[:1]
    for page, bodies in todo:
        stale = update(page, bodies, args.check)
        if args.check and stale:
            print(f"{page}: generated parts out of date: {', '.join(stale)} "
                  "(run 'python -m benchmarks render')", file=sys.stderr)
            failed = True
        elif not args.check:
            print(f"{page}: {', '.join(sorted(sections(page.read_text())))}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
