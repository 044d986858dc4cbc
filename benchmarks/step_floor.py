"""The floor under a per-sample pass of many models: the bare SGD step in Numba.

    python -m benchmarks step_floor            # 32 models, 256 rows of 100 features
    python -m benchmarks step_floor --quick    # a smoke run

A grid search's per-sample pass (:class:`fastgd.FastSGDRegressorCV`) runs each model's
step over a block of rows held in cache: a dot product, a scalar update, an axpy. This
script times that step with nothing else (no loss sums, norms, rates, scaling or
averaging), written as a competent user would in Numba, on the same rows, next to
fastgd's pass of the same models, so that the share of scikit-learn's bookkeeping in a
model-row is measured rather than guessed:

* ``dot`` and ``axpy`` alone, per row;
* ``step``: dot, then axpy with the step it gives (the dependency of the next row's dot
  on the weights just written);
* ``step, 2 models per row``: two independent models interleaved row by row (if the
  step were bound by its dependency chain, this would be faster per model);
* ``step, 32 models in blocks``: the block loop of ``epoch_plain`` (each model over a
  block of 256 rows in turn);
* ``fastgd pass``: :class:`~fastgd.FastSGDRegressorCV`'s pass of 32 models on
  200,000 rows (squared error, L2, constant rate), per model and row.

Results go to ``benchmarks/results/step_floor.json``.
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from numba import njit

from .grid_search import one_pass

# the per-sample loop's flags (fastgd._kernels.cpu.FASTMATH_PLAIN): no fused
# multiply-adds, reassociation for the vectorized dot product
FLAGS = {"reassoc"}


@njit(fastmath=FLAGS)
def _dot(X, W, n):
    s = 0.0
    for r in range(n):
        i = r % X.shape[0]
        d = 0.0
        for j in range(X.shape[1]):
            d += X[i, j] * W[0, j]
        s += d
    return s


@njit(fastmath=FLAGS)
def _axpy(X, W, n, c):
    for r in range(n):
        i = r % X.shape[0]
        for j in range(X.shape[1]):
            W[0, j] = W[0, j] + X[i, j] * c
    return W[0, 0]


@njit(fastmath=FLAGS)
def _step(X, y, W, n, c, models):
    # ``models`` independent models, interleaved row by row
    for r in range(n):
        i = r % X.shape[0]
        for k in range(models):
            d = 0.0
            for j in range(X.shape[1]):
                d += X[i, j] * W[k, j]
            u = c * (d - y[i])
            for j in range(X.shape[1]):
                W[k, j] = W[k, j] + X[i, j] * u
    return W[0, 0]


@njit(fastmath=FLAGS)
def _blocks(X, y, W, n, c, block):
    # every model over a block of rows in turn (epoch_plain's loop)
    for b in range(0, n, block):
        for k in range(W.shape[0]):
            for r in range(b, b + block):
                i = r % X.shape[0]
                d = 0.0
                for j in range(X.shape[1]):
                    d += X[i, j] * W[k, j]
                u = c * (d - y[i])
                for j in range(X.shape[1]):
                    W[k, j] = W[k, j] + X[i, j] * u
    return W[0, 0]


def _best(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def fastgd_pass(n, d, k, epochs=3):
    """ns per model and row of FastSGDRegressorCV's pass of ``k`` models on n rows."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + rng.normal(size=n)
    run = one_pass(X, y, k, epochs, alpha=1e-4, batch_size=1)
    return _best(run) / epochs / (k * n) * 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps, 5,000 rows")
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2_000_000, help="rows per loop")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "step_floor.json"))
    args = parser.parse_args(argv)
    d, n = args.d, (20_000 if args.quick else args.steps)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, d))
    y = rng.normal(size=256)
    W = np.zeros((32, d))
    c = -1e-4
    m = max(256, n // 32 // 256 * 256)  # rows of the block loop: whole blocks
    ns = {
        "dot": _best(lambda: _dot(X, W, n)) / n * 1e9,
        "axpy": _best(lambda: _axpy(X, W, n, 1e-9)) / n * 1e9,
        "step": _best(lambda: _step(X, y, W, n, c, 1)) / n * 1e9,
        "step, 2 models per row": _best(lambda: _step(X, y, W, n // 2, c, 2)) / n * 1e9,
        "step, 32 models in blocks": _best(lambda: _blocks(X, y, W, m, c, 256))
        / (32 * m) * 1e9,
        "fastgd pass, 32 models": fastgd_pass(5_000 if args.quick else 200_000, d, 32),
    }
    for name, v in ns.items():
        print(f"{name:28s} {v:6.1f} ns per model and row")
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                       "python": platform.python_version()},
           "d": d, "quick": args.quick, "ns_per_model_row": ns}
    out = Path(args.out if not args.quick else str(args.out).replace(".json", "_quick.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
