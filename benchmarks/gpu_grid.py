"""Grid search on a GPU: FastSGDRegressorCV(device="cuda") against one GPU fit, the
same search on the CPU, and PyTorch training the grid as one layer, in one run.

    python -m benchmarks.gpu_grid             # a GPU machine: 1,000,000 x 100 float64
    NUMBA_ENABLE_CUDASIM=1 FASTGD_CUDA_TPB=8 python -m benchmarks.gpu_grid --quick
                                # 64 x 4, a 1 x 2 grid, one epoch: numba-cuda's simulator

The grid of ``benchmarks.grid_search`` (4 ``alpha`` x 8 ``eta0`` = 32 candidates, 3
folds, plus each candidate on all rows: 128 models), minibatch 256 with momentum 0.9,
a constant rate, shuffled, ``max_iter`` epochs with ``tol=None`` (the same work for
every contender), float64. Contenders:

* ``one fit GPU`` -- one ``FastSGDRegressor(device="cuda")`` with the same settings,
  the best of three (the unit of the ratios);
* ``FastSGDRegressorCV GPU`` -- the whole search, X copied to the device once, each of
  the 4 passes training the 32 candidates as one 32-output model;
* ``FastSGDRegressorCV CPU n_jobs=-1`` -- the same search on the host's cores
  (``--skip-cpu`` leaves it out);
* ``PyTorch CUDA graph, 128 models`` -- what a competent PyTorch user writes for the
  grid: the 128 models as one (d, 128) weight matrix, every batch read once for all of
  them, each model's residual masked by its fold (its training rows), per-model rate
  and L2 strength as vectors, momentum as ``torch.optim.SGD``'s, one step captured in
  a CUDA graph and replayed; timed over ``--torch-steps`` steps and scaled to
  ``max_iter`` epochs. It shares one row order between the folds (fastgd gives every
  fold the order of its fit alone) and has no stopping rules or histories: a lower
  bound of a PyTorch search's time.

Results go to ``benchmarks/results/gpu_grid.json`` with the device and the date.
"""

import argparse
import datetime
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from fastgd import FastSGDRegressor, FastSGDRegressorCV
from fastgd._kernels import cuda as kc

from . import grid_search

BATCH = 256
#: the simulator's smoke run: 1 alpha x 2 eta0
QUICK_GRID = {"alpha": [1e-4], "eta0": [1e-3, 1e-2]}
MOMENTUM = 0.9


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ (rng.normal(size=d) / np.sqrt(d)) + 0.1 * rng.normal(size=n)


def _base(epochs):
    return dict(batch_size=BATCH, optimizer="momentum", learning_rate="constant",
                max_iter=epochs, tol=None, random_state=0)


def time_one_fit(X, y, epochs, device, repeats=3):
    """Best of ``repeats`` fits (after one that compiles)."""
    est = FastSGDRegressor(device=device, eta0=1e-4, **_base(epochs))
    est.set_params(max_iter=1).fit(X[:2048], y[:2048])
    est.set_params(max_iter=epochs)
    return min(grid_search.timed(lambda: est.fit(X, y))[0] for _ in range(repeats)), None


def time_search(X, y, epochs, device, g, warm=True, n_jobs=-1):
    """The whole search over the grid ``g`` (``warm``: after one on a few rows that
    compiles its kernels)."""
    def search(rows):
        return FastSGDRegressorCV(param_grid=g, cv=3, device=device,
                                  n_jobs=n_jobs, **_base(epochs)).fit(X[rows], y[rows])

    if warm:
        search(slice(0, 3 * 2048))
    sec, cv = grid_search.timed(lambda: search(slice(None)))
    return sec, {"best_params": grid_search._plain(cv.best_params_),
                 "best_score": float(cv.best_score_)}


def time_torch_grid(X, y, epochs, g, steps):
    """PyTorch, the search's K models as one (d, K) layer (module notes): seconds
    for ``epochs`` epochs, from the median step of a replayed CUDA graph."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    from sklearn.model_selection import KFold

    cands = [(a, e) for a in g["alpha"] for e in g["eta0"]]
    n, d = X.shape
    k = 4 * len(cands)
    mask = np.zeros((n, k), dtype=np.float64)
    for f, (train, _) in enumerate(KFold(3).split(X)):
        mask[train, f * len(cands):(f + 1) * len(cands)] = 1.0
    mask[:, 3 * len(cands):] = 1.0
    dev = "cuda"
    Xt = torch.as_tensor(X, device=dev)
    yt = torch.as_tensor(y, device=dev)
    Mt = torch.as_tensor(mask, device=dev)
    lr = torch.tensor([e for _ in range(4) for _, e in cands], device=dev,
                      dtype=torch.float64)
    alpha = torch.tensor([a for _ in range(4) for a, _ in cands], device=dev,
                         dtype=torch.float64)
    W = torch.zeros((d, k), device=dev, dtype=torch.float64)
    b = torch.zeros(k, device=dev, dtype=torch.float64)
    bufW, bufb = torch.zeros_like(W), torch.zeros_like(b)
    idx = torch.randperm(n, device=dev)[:BATCH].clone()

    def step():
        xb, yb, mb = Xt[idx], yt[idx], Mt[idx]
        r = (xb @ W + b - yb[:, None]) * mb
        cnt = mb.sum(0).clamp(min=1.0)
        gW = xb.T @ r / cnt + alpha * W
        gb = r.sum(0) / cnt
        bufW.mul_(MOMENTUM).add_(gW)
        bufb.mul_(MOMENTUM).add_(gb)
        W.sub_(lr * bufW)
        b.sub_(lr * bufb)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    perm = torch.randperm(n, device=dev)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(steps):
        lo = (s * BATCH) % max(n - BATCH + 1, 1)
        idx.copy_(perm[lo:lo + BATCH])
        graph.replay()
    torch.cuda.synchronize()
    per_step = (time.perf_counter() - t0) / steps
    return per_step * -(-n // BATCH) * epochs, None


def to_markdown(res):
    rows = res["rows"]
    one = next((r["seconds"] for r in rows if r["contender"] == "one fit GPU"), None)
    cv = next((r["seconds"] for r in rows if r["contender"] == "FastSGDRegressorCV GPU"),
              None)
    lines = ["| contender | models | seconds | x one GPU fit | seconds per model | "
             "FastSGDRegressorCV GPU faster by |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "seconds" not in r:
            lines.append(f"| {r['contender']} | {r['models']} | - | - | - | "
                         f"{r.get('error', r.get('skipped', ''))} |")
            continue
        sec = r["seconds"]
        lines.append(f"| {r['contender']} | {r['models']} | {sec:.2f} | "
                     + (f"{sec / one:.1f}" if one else "-") + f" | {sec / r['models']:.3f} | "
                     + (f"{sec / cv:.1f}" if cv else "-") + " |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="64 x 4, 1 x 2 grid, 1 epoch")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--skip-cpu", action="store_true", help="leave out the CPU search")
    ap.add_argument("--torch-steps", type=int, default=500)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_grid.json"))
    args = ap.parse_args(argv)
    if not kc.available():
        print("No CUDA device: run this on a GPU machine, or with NUMBA_ENABLE_CUDASIM=1 "
              "--quick for a smoke run.")
        return 1
    n, d, epochs = (64, 4, 1) if args.quick else (args.n, args.d, args.epochs)
    g = QUICK_GRID if args.quick else grid_search.grid(False)
    k = len(g["alpha"]) * len(g["eta0"]) * 4
    X, y = _data(n, d)
    res = {"device": kc.device_name(), "host": platform.node(),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
               timespec="seconds"),
           "n": n, "d": d, "epochs": epochs, "batch": BATCH, "grid": g, "rows": []}
    out = Path(args.out if not args.quick else args.out.replace(".json", "_quick.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    contenders = [("one fit GPU", 1, time_one_fit,
                   (X, y, epochs, "cuda", 1 if args.quick else 3)),
                  ("FastSGDRegressorCV GPU", k, time_search,
                   (X, y, epochs, "cuda", g, not args.quick))]
    if not args.skip_cpu:
        contenders.append(("FastSGDRegressorCV CPU n_jobs=-1", k, time_search,
                           (X, y, epochs, "cpu", g, not args.quick)))
    contenders.append((f"PyTorch CUDA graph, {k} models", k, time_torch_grid,
                       (X, y, epochs, g, args.torch_steps)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, models, fn, fargs in contenders:
            row = {"contender": name, "models": models}
            try:
                got = fn(*fargs)
                if got is None:
                    row["skipped"] = "no PyTorch with CUDA"
                else:
                    row["seconds"] = got[0]
                    row.update(got[1] or {})
            except Exception as exc:  # one failure does not stop the others
                row["error"] = f"{type(exc).__name__}: {exc}"
            res["rows"].append(row)
            out.write_text(json.dumps(res, indent=1))
            print(row, flush=True)
    print(f"device: {res['device']}  date: {res['date']}  {n} x {d} float64, "
          f"{epochs} epochs")
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
