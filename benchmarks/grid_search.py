"""Grid search: FastSGDRegressorCV against one fit and against GridSearchCV, in one run.

    python -m benchmarks.grid_search            # 1,000,000 x 100 float64, 10 epochs
    python -m benchmarks.grid_search --quick    # 20,000 x 20: a smoke run

The grid is 4 ``alpha`` x 8 ``eta0`` = 32 candidates, 3 folds, every fit ``max_iter``
epochs (``tol=None``: the same work for every contender), squared error, a constant
rate, shuffled; for per-sample SGD (scikit-learn's algorithm) and minibatch 256 with
momentum. Contenders:

* ``one fit`` -- one :class:`~fastgd.FastSGDRegressor` with the same settings (the
  unit of the targets: 32 x (3 + 1) = 128 models in at most 8x its time), the best
  of three fits;
* ``FastSGDRegressorCV`` -- ``n_jobs=1`` and ``n_jobs=-1`` (the passes of a group run
  in threads);
* ``GridSearchCV(FastSGDRegressor)`` and ``GridSearchCV(SGDRegressor)`` (per-sample
  only: scikit-learn has no minibatch SGD) with ``n_jobs=-1``, ``refit=True``.

Then the scaling of one pass with the number of models K (1 to 256, all on all rows):
time per epoch, nanoseconds per model and row, and the floating-point rate it reaches
(4 d flops per model and row: a dot product and an update) against the machine's
arithmetic peak as a matrix product measures it (``numpy.dot``, every core). Results
go to ``benchmarks/results/grid_search.json``.
"""

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor
from sklearn.model_selection import GridSearchCV

from fastgd import FastSGDRegressor, FastSGDRegressorCV

MODES = {
    "per-sample": dict(batch_size=1),
    "minibatch 256, momentum": dict(batch_size=256, optimizer="momentum"),
}


def grid(quick):
    return {"alpha": list(np.logspace(-6, -3, 4)),
            "eta0": list(np.logspace(-5, -3, 8) if not quick else np.logspace(-4, -2, 8))}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def compare(X, y, epochs, quick, with_sklearn):
    """The contenders of every mode: seconds, best candidate, mean test scores."""
    rows = []
    g = grid(quick)
    for mode, params in MODES.items():
        base = dict(max_iter=epochs, tol=None, learning_rate="constant", random_state=0,
                    **params)
        FastSGDRegressor(**dict(base, max_iter=1), eta0=1e-4).fit(X[:2000], y[:2000])
        # the unit of the ratios: its best of three (a slow moment of the machine
        # would flatter every ratio)
        sec = min(timed(lambda: FastSGDRegressor(**base, eta0=1e-4).fit(X, y))[0]
                  for _ in range(3))
        rows.append({"mode": mode, "contender": "one fit", "seconds": sec, "models": 1})
        for n_jobs in (1, -1):
            sec, cv = timed(lambda: FastSGDRegressorCV(
                param_grid=g, cv=3, n_jobs=n_jobs, **base).fit(X, y))
            rows.append({"mode": mode, "contender": f"FastSGDRegressorCV n_jobs={n_jobs}",
                         "seconds": sec, "models": 32 * 4,
                         "best_params": _plain(cv.best_params_),
                         "best_score": cv.best_score_})
        contenders = [("GridSearchCV(FastSGDRegressor) n_jobs=-1", FastSGDRegressor(**base))]
        if with_sklearn and params["batch_size"] == 1:
            sk = SGDRegressor(max_iter=epochs, tol=None, learning_rate="constant",
                              random_state=0)
            contenders.append(("GridSearchCV(SGDRegressor) n_jobs=-1", sk))
        for name, est in contenders:
            sec, gs = timed(lambda: GridSearchCV(est, g, cv=3, n_jobs=-1).fit(X, y))
            rows.append({"mode": mode, "contender": name, "seconds": sec,
                         "models": 32 * 3 + 1, "best_params": _plain(gs.best_params_),
                         "best_score": gs.best_score_})
        for r in rows:
            if r["mode"] == mode:
                print(_line(r), flush=True)
    return rows


def one_pass(X, y, k, epochs, **params):
    """A function running one pass of ``k`` models (``eta0`` apart) on all rows of X,
    compiled and ready: what a FastSGDRegressorCV pass costs without its scoring."""
    search = FastSGDRegressorCV(
        param_grid={"eta0": list(np.logspace(-6, -4, k))}, cv=2, max_iter=epochs,
        tol=None, learning_rate="constant", random_state=0, **params)
    search._validate_params()
    base = search._base_estimator()
    candidates = search._candidates(base)
    Xv, yv = search._validate_X_y(X, y, reset=True, multi_output=True)
    data = search._prepare(base, Xv, yv, None)
    group = search._groups(base, candidates, data)[0]
    rows = np.arange(X.shape[0])
    search._one_pass(group, rows[:1000], data)  # compile
    return lambda: search._one_pass(group, rows, data)


def scaling(X, y, ks, epochs):
    """One pass of K models on all rows, per mode: seconds per epoch."""
    out = []
    for mode, params in MODES.items():
        for k in ks:
            run = one_pass(X, y, k, epochs, **params)
            sec, _ = timed(run)
            per_epoch = sec / epochs
            flops = 4.0 * X.shape[1] * X.shape[0] * k
            out.append({"mode": mode, "models": k, "seconds_per_epoch": per_epoch,
                        "ns_per_model_row": per_epoch / (k * X.shape[0]) * 1e9,
                        "gflops": flops / per_epoch / 1e9})
            print(f"{mode:26s} K={k:4d}  {per_epoch * 1e3:9.1f} ms/epoch  "
                  f"{out[-1]['ns_per_model_row']:7.1f} ns/model-row  "
                  f"{out[-1]['gflops']:6.2f} GFLOP/s", flush=True)
    return out


def peak_gflops(n=2048, repeats=5):
    """The machine's float64 arithmetic rate on a matrix product (BLAS, every core)."""
    a = np.random.default_rng(0).normal(size=(n, n))
    a @ a
    best = min(timed(lambda: a @ a)[0] for _ in range(repeats))
    return 2.0 * n ** 3 / best / 1e9


def _plain(params):
    return {k: float(v) for k, v in params.items()}


def _line(r):
    extra = f"  best {r['best_params']}" if "best_params" in r else ""
    return f"{r['mode']:26s} {r['contender']:42s} {r['seconds']:9.2f} s{extra}"


def to_markdown(res):
    """The comparison table (ratios to one fit and to the CV) and the scaling table."""
    lines = ["| mode | contender | models | seconds | x one fit | seconds per model | "
             "FastSGDRegressorCV n_jobs=-1 faster by |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for mode in MODES:
        rows = [r for r in res["compare"] if r["mode"] == mode]
        one = next(r["seconds"] for r in rows if r["contender"] == "one fit")
        cv = next(r["seconds"] for r in rows if r["contender"].endswith("n_jobs=-1")
                  and r["contender"].startswith("FastSGDRegressorCV"))
        for r in rows:
            lines.append(f"| {mode} | {r['contender']} | {r['models']} | "
                         f"{r['seconds']:.2f} | {r['seconds'] / one:.1f} | "
                         f"{r['seconds'] / r['models']:.3f} | {r['seconds'] / cv:.1f} |")
    lines += ["", "| mode | models K | ms / epoch | ns / model-row | GFLOP/s | "
                  "% of peak |", "|---|---:|---:|---:|---:|---:|"]
    for r in res["scaling"]:
        lines.append(f"| {r['mode']} | {r['models']} | "
                     f"{r['seconds_per_epoch'] * 1e3:.1f} | {r['ns_per_model_row']:.1f} | "
                     f"{r['gflops']:.2f} | {100 * r['gflops'] / res['peak_gflops']:.1f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 x 20, 3 epochs")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--no-sklearn", action="store_true",
                        help="leave out GridSearchCV(SGDRegressor) (the slowest)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "grid_search.json"))
    args = parser.parse_args(argv)
    n, d, epochs = (20_000, 20, 3) if args.quick else (args.n, args.d, args.epochs)
    ks = (1, 4, 16) if args.quick else (1, 4, 16, 64, 128, 256)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                           "python": platform.python_version()},
               "n": n, "d": d, "epochs": epochs, "quick": args.quick,
               "peak_gflops": peak_gflops(512 if args.quick else 2048)}
        print(f"peak (numpy.dot, every core): {res['peak_gflops']:.1f} GFLOP/s")
        res["compare"] = compare(X, y, epochs, args.quick, not args.no_sklearn)
        res["scaling"] = scaling(X, y, ks, max(2, epochs // 5))
    out = Path(args.out if not args.quick else str(args.out).replace(".json", "_quick.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
