"""Render the recorded benchmark results into ``docs/benchmarks.md``.

``python -m benchmarks render`` (or ``fastgd bench render``) reads
``benchmarks/results/epoch_time_shapes.json`` (from ``epoch_time --shapes``),
``benchmarks/results/time_to_accuracy.json`` (from ``time_to_accuracy``) and
``benchmarks/results/gpu.json`` (from ``benchmarks.gpu``) and rewrites the generated
parts of ``docs/benchmarks.md`` and ``docs/gpu.md``: the per-shape tables, the table of the performance
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
GPU = Path(__file__).parent / "results" / "gpu.json"
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
    """{section name: markdown} for every generated part the results fill."""
    bodies = {section_name(r): epoch_time.to_markdown(r) for r in shapes}
    bodies["targets"] = targets(shapes, tta)
    if tta is not None:
        bodies["time-to-accuracy"] = (
            time_to_accuracy.to_markdown(tta).rstrip("\n")
            + f"\n\nLoad average {tta['load_average_start']:.2f} at the start, "
              f"{tta['load_average_end']:.2f} at the end.")
    return bodies


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
    parser.add_argument("--docs", default=str(DOCS), help="the page to rewrite")
    parser.add_argument("--shapes", default=str(SHAPES),
                        help="result of 'epoch_time --shapes'")
    parser.add_argument("--tta", default=str(TTA),
                        help="result of 'time_to_accuracy' ('' to leave its part alone)")
    parser.add_argument("--gpu", default=str(GPU),
                        help="result of 'benchmarks.gpu' ('' to leave docs/gpu.md alone)")
    parser.add_argument("--check", action="store_true",
                        help="rewrite nothing; exit 1 if the pages are not what the "
                             "results give")
    args = parser.parse_args(argv)
    shapes = json.loads(Path(args.shapes).read_text())
    if isinstance(shapes, dict):  # a single-shape run
        shapes = [shapes]
    tta = json.loads(Path(args.tta).read_text()) if args.tta else None
    pages = [(Path(args.docs), render(shapes, tta))]
    if args.gpu:
        pages.append((GPU_DOCS, render_gpu(json.loads(Path(args.gpu).read_text()))))
    failed = False
    for page, bodies in pages:
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
