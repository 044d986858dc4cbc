"""Time per epoch of fastgd on a Dask LocalCluster, 1 and 2 worker processes, on data
larger than one worker's memory limit.

    python -m benchmarks.dask_scaling           # 4,000,000 x 20 float64 (640 MB), 600 MB per worker
    python -m benchmarks.dask_scaling --quick   # 20,000 x 10, a smoke run (a few seconds)

The data are generated on the workers (``dask.array.random``: nothing is sent from the
client), prepared once (one aligned copy per block) and kept there; with one worker
they do not fit under its memory limit and Dask spills blocks to disk, with two they
fit. For each strategy ("gd": exact full-batch gradient descent, one tree reduction per
epoch; "local_sgd": minibatch SGD (batch 256) on every block, parameters averaged after
every epoch) the table gives the median time per epoch (first round excluded: it
includes generating and preparing the data), the time of that first round, the speed-up
from 1 to 2 workers and the final training R² (computed lazily on the cluster).
Machine notes: every worker runs one thread; figures on a shared machine are noisy.
"""

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np


def _run(n_workers, args):
    import dask.array as da
    from distributed import Client, LocalCluster

    from fastgd import FastSGDRegressor
    import fastgd.dask as fdask

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           memory_limit=args.memory_limit, dashboard_address=":0",
                           silence_logs=50)
    client = Client(cluster)
    rows = []
    try:
        rs = da.random.RandomState(0)
        X = rs.normal(size=(args.n, args.d), chunks=(args.chunk_rows, args.d))
        w = np.linspace(-1.0, 1.0, args.d) / np.sqrt(args.d)
        y = X @ w + 0.1 * rs.normal(size=args.n, chunks=args.chunk_rows)
        var_y = float(y.var().compute())
        for strategy, params in (
            ("gd", dict(batch_size="full", learning_rate="constant", eta0=0.5)),
            ("local_sgd", dict(batch_size=256, learning_rate="constant", eta0=0.01)),
        ):
            est = FastSGDRegressor(max_iter=args.epochs, tol=None, random_state=0,
                                   **params)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fdask.fit(est, X, y, strategy=strategy, client=client, timeout=600)
            wall = time.perf_counter() - t0
            epochs = np.diff(est.time_curve_)
            resid = float(((y - est.predict(X)) ** 2).mean().compute())
            rows.append({
                "workers": n_workers, "strategy": strategy,
                "seconds_per_epoch": statistics.median(epochs) if len(epochs) else wall,
                "first_round_s": est.time_curve_[0], "wall_s": wall,
                "r2": 1.0 - resid / var_y,
            })
    finally:
        client.close()
        cluster.close()
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run")
    ap.add_argument("--n", type=int, default=4_000_000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--chunk-rows", type=int, default=250_000)
    ap.add_argument("--memory-limit", default="600MB", help="per worker")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--out", default=None, help="JSON file for the results")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.d, args.chunk_rows, args.epochs = 20_000, 10, 5_000, 3
        args.memory_limit = "1GB"
    data_mb = args.n * args.d * 8 / 1e6
    rows = []
    for k in (int(w) for w in args.workers.split(",")):
        rows += _run(k, args)
    print(f"Data: {args.n:,} x {args.d} float64 = {data_mb:,.0f} MB in "
          f"{-(-args.n // args.chunk_rows)} blocks; memory limit per worker "
          f"{args.memory_limit}; {args.epochs} epochs; {platform.processor() or 'cpu'}\n")
    print("| strategy | workers | s / epoch | first round (s) | speed-up | R² |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        base = next(b for b in rows if b["strategy"] == r["strategy"])
        label = f"{r['workers']} worker" + ("s" if r["workers"] > 1 else "")
        print(f"| {r['strategy']} | {label} | {r['seconds_per_epoch']:.3f} | "
              f"{r['first_round_s']:.2f} | "
              f"{base['seconds_per_epoch'] / r['seconds_per_epoch']:.2f}x | "
              f"{r['r2']:.4f} |")
    if args.out:
        Path(args.out).write_text(json.dumps(
            {"n": args.n, "d": args.d, "chunk_rows": args.chunk_rows,
             "memory_limit": args.memory_limit, "epochs": args.epochs, "rows": rows},
            indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
