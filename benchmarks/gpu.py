"""GPU training time: fastgd on the GPU vs fastgd on the CPU vs a PyTorch CUDA loop.

    python -m benchmarks.gpu            # on a machine with an NVIDIA GPU (H100/H200 class)
    NUMBA_ENABLE_CUDASIM=1 FASTGD_CUDA_TPB=8 python -m benchmarks.gpu --quick
                                        # tiny data in numba-cuda's simulator (smoke run)

For each data set (dense 10,000,000 x 100 and 1,000,000 x 1,000, float32) and each
batch mode (minibatch 256, minibatch 4096, full-batch gradient descent), every
contender trains the same model (squared error, no penalty, SGD with momentum 0.9 at a
constant learning rate, shuffled every epoch) and the table gives the median seconds
per epoch after the first (compilation and warm-up excluded):

* ``fastgd GPU step``  -- ``device="cuda"`` with ``FASTGD_CUDA_MODE=step`` (a gradient
  grid launch and a step launch per batch);
* ``fastgd GPU epoch`` -- ``device="cuda"`` with the persistent kernel (one
  single-block launch per epoch); which of the two wins at each size is what
  ``"auto"`` should pick (its current choice is in the ``auto`` column);
* ``fastgd CPU``       -- ``device="cpu"`` (full batch with ``n_jobs=-1``);
* ``PyTorch CUDA``     -- ``nn.Linear`` + ``torch.optim.SGD`` on the GPU, data resident
  on the device, ``torch.randperm`` per epoch (skipped without a CUDA build of torch);
* ``stream floor``     -- one read of X by a reduce kernel on the device (the
  bandwidth floor of an epoch): full-batch GD targets within 3x of it.

X is moved to the GPU once and passed to fastgd as a device array (no copy per fit).
Results go to ``benchmarks/results/gpu.json`` and a markdown table is printed.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from numba import cuda
from sklearn.exceptions import ConvergenceWarning

from fastgd import FastSGDRegressor
from fastgd._kernels import cuda as kc

SIZES = [(10_000_000, 100), (1_000_000, 1_000)]
BATCHES = [256, 4096, "full"]
LR = 1e-3


@cuda.jit
def _k_stream(X1, partial):
    """Each block sums a grid-strided share of X (flat), then a tree in shared memory."""
    red = cuda.shared.array(kc.TPB, np.float64)
    t = cuda.threadIdx.x
    acc = 0.0
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for k in range(start, X1.shape[0], stride):
        acc += X1[k]
    red[t] = acc
    cuda.syncthreads()
    h = 1
    while h < cuda.blockDim.x:
        h *= 2
    h //= 2
    while h > 0:
        if t < h and t + h < cuda.blockDim.x:
            red[t] += red[t + h]
        cuda.syncthreads()
        h //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = red[0]


def stream_floor(Xd, repeats):
    """Median seconds of one device pass over X (and the sum it read, as a check)."""
    flat = Xd.reshape(Xd.size)
    blocks = max(1, min(kc.MAX_BLOCKS * 4, -(-Xd.size // kc.TPB)))
    partial = cuda.device_array(blocks, dtype=np.float64)
    _k_stream[blocks, kc.TPB](flat, partial)  # compile + warm-up
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _k_stream[blocks, kc.TPB](flat, partial)
        cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), float(partial.copy_to_host().sum())


def _data(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(size=(n, d), dtype=np.float32).astype(dtype, copy=False)
    w = (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32)
    y = X @ w + np.float32(0.1) * rng.standard_normal(n, dtype=np.float32)
    return X, y.astype(np.float64)


def _per_epoch(times):
    """Median of the epoch durations after the first (from ``time_curve_``)."""
    gaps = np.diff(np.asarray(times))
    return float(np.median(gaps)) if gaps.size else float(times[0])


def time_fastgd(X, y, batch, device, epochs, mode=None):
    est = FastSGDRegressor(
        device=device, batch_size=batch, optimizer="momentum", learning_rate="constant",
        eta0=LR, penalty=None, max_iter=epochs, tol=None, shuffle=True, random_state=0,
        n_jobs=-1,
    )
    previous = kc.MODE
    if mode is not None:
        kc.MODE = mode
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
    finally:
        kc.MODE = previous
    return _per_epoch(est.time_curve_), float(est.loss_curve_[-1])


def time_torch(X, y, batch, epochs):
    """``nn.Linear`` + ``torch.optim.SGD(momentum=0.9)`` on the GPU; None without CUDA."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available() or os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return None
    dev = torch.device("cuda")
    Xt = torch.from_numpy(np.ascontiguousarray(X)).to(dev)
    yt = torch.from_numpy(y.astype(X.dtype)).to(dev)
    model = torch.nn.Linear(X.shape[1], 1).to(dev, dtype=Xt.dtype)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    n = Xt.shape[0]
    b = n if batch == "full" else int(batch)
    times = []
    loss = torch.zeros((), device=dev)
    for _ in range(epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        perm = torch.randperm(n, device=dev) if b < n else None
        for s in range(0, n, b):
            if perm is None:
                xb, yb = Xt, yt
            else:
                idx = perm[s:s + b]
                xb, yb = Xt[idx], yt[idx]
            opt.zero_grad(set_to_none=True)
            loss = 0.5 * torch.mean((model(xb).squeeze(1) - yb) ** 2)
            loss.backward()
            opt.step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    del Xt, yt
    torch.cuda.empty_cache()
    return (statistics.median(times[1:]) if len(times) > 1 else times[0]), float(loss)


def run(sizes, batches, dtype, epochs, cpu_epochs, repeats, skip_cpu=False):
    rows = []
    for n, d in sizes:
        X, y = _data(n, d, dtype)
        Xd = cuda.to_device(X)
        floor, _ = stream_floor(Xd, repeats)
        rows.append({"n": n, "d": d, "batch": "-", "contender": "stream floor",
                     "seconds_per_epoch": floor, "GB_per_s": X.nbytes / floor / 1e9})
        for batch in batches:
            b = n if batch == "full" else batch
            auto = kc.choose_mode(b, d, X.itemsize, "auto")
            entries = [(f"fastgd GPU {m}", time_fastgd, (Xd, y, batch, "cuda", epochs, m))
                       for m in ("step", "epoch")]
            if not skip_cpu:
                entries.append(("fastgd CPU", time_fastgd, (X, y, batch, "cpu", cpu_epochs)))
            entries.append(("PyTorch CUDA", time_torch, (X, y, batch, epochs)))
            for name, fn, fn_args in entries:
                res = fn(*fn_args)
                if res is None:
                    continue
                sec, loss = res
                rows.append({"n": n, "d": d, "batch": batch, "contender": name,
                             "seconds_per_epoch": sec, "x_floor": sec / floor,
                             "final_loss": loss, "auto": auto})
        del Xd  # free the device copy before the next size
    return rows


def markdown(rows):
    lines = ["| n x d | batch | contender | s / epoch | x floor | final loss | auto |",
             "|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        lines.append(
            f"| {r['n']:,} x {r['d']:,} | {r['batch']} | {r['contender']} | "
            f"{r['seconds_per_epoch']:.4g} | {r.get('x_floor', 1.0):.3g} | "
            f"{r.get('final_loss', float('nan')):.4g} | {r.get('auto', '')} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny data (600 x 8 and 200 x 24; runs in the CUDA simulator)")
    ap.add_argument("--epochs", type=int, default=3, help="GPU epochs per fit (>= 2)")
    ap.add_argument("--cpu-epochs", type=int, default=2, help="CPU epochs per fit")
    ap.add_argument("--repeats", type=int, default=10, help="stream-floor repeats")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--skip-cpu", action="store_true", help="leave out fastgd CPU")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = ap.parse_args(argv)
    if not kc.available():
        print("No CUDA device (numba.cuda.is_available() is False): run this on a GPU "
              "machine, or with NUMBA_ENABLE_CUDASIM=1 --quick for a smoke run.")
        return 1
    if args.quick:
        sizes, batches = [(600, 8), (200, 24)], [128, "full"]
        args.epochs, args.cpu_epochs, args.repeats = 2, 2, 2
    else:
        sizes, batches = SIZES, BATCHES
    rows = run(sizes, batches, np.dtype(args.dtype), max(args.epochs, 2),
               max(args.cpu_epochs, 2), args.repeats, args.skip_cpu)
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": kc.device_name(), "host": platform.node(), "cpu_count": os.cpu_count(),
        "dtype": args.dtype, "quick": args.quick, "epochs": args.epochs,
        "settings": {"TPB": kc.TPB, "MAX_BLOCKS": kc.MAX_BLOCKS,
                     "PERSISTENT_MAX_BATCH_BYTES": kc.PERSISTENT_MAX_BATCH_BYTES},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"device: {meta['device']}  date: {meta['date']}  dtype: {args.dtype}")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
