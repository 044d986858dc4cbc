"""GPU training time: every fastgd GPU mode vs fastgd on the CPU vs PyTorch on the GPU.

    python -m benchmarks.gpu                    # on a machine with an NVIDIA GPU
    python -m benchmarks.gpu --check            # GPU vs CPU agreement, determinism
    NUMBA_ENABLE_CUDASIM=1 FASTGD_CUDA_TPB=8 python -m benchmarks.gpu --quick
                                                # tiny data in numba-cuda's simulator

For each data set (dense float32, 1,000,000 x 100 and 4,000,000 x 100 by default) and
each batch size (256, 4096, full batch), every contender trains the same model
(squared error, no penalty, SGD with momentum 0.9 at a constant learning rate,
shuffled every epoch):

* ``fastgd GPU step`` / ``persistent`` / ``cooperative`` -- ``device="cuda"`` in each
  execution mode (see docs/gpu.md); seconds per epoch are the median of the epochs
  after the first (``time_curve_``: compilation and warm-up excluded). The
  persistent mode (one multiprocessor) is left out where a batch holds more than
  ``PERSISTENT_BENCH_MAX_BYTES`` of X (it would take seconds an epoch);
* ``fastgd GPU auto`` -- the mode ``"auto"`` picks (``choose_mode``), with its measured
  time and its ratio to the fastest mode measured (``auto_vs_best``: the target is at
  most 1.10);
* ``fastgd CPU n_jobs=1`` / ``n_jobs=-1`` -- ``device="cpu"`` on the same host;
* ``PyTorch CUDA`` -- ``nn.Linear`` + ``torch.optim.SGD(momentum=0.9)`` on the device,
  data resident, ``torch.randperm`` per epoch; timed over ``--torch-steps`` steps and
  reported per epoch (``steps`` x seconds per step; full batch: whole epochs);
* ``PyTorch CUDA graph`` -- the same step captured once in a CUDA graph and replayed
  (the batch's row indices copied into the graph's input before each replay);
* ``floor`` -- one read of X on the device (``torch.sum(X)``, and a numba reduction):
  the bandwidth floor of an epoch.

X goes to the GPU once and is passed to fastgd as a device array. Every contender runs
in its own ``try``: a failure is recorded (``error``) and the rest goes on. The JSON
(``--out``) is rewritten after every row, so an interrupted run keeps what it measured.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
from numba import cuda
from sklearn.exceptions import ConvergenceWarning

from fastgd import FastSGDClassifier, FastSGDRegressor
from fastgd._kernels import cuda as kc

SIZES = [(1_000_000, 100), (4_000_000, 100)]
BATCHES = [256, 4096, "full"]
GPU_MODES = ("step", "persistent", "cooperative")
LR = 1e-3
#: the persistent mode is timed only where a batch holds at most this many bytes of X
PERSISTENT_BENCH_MAX_BYTES = 64 << 20
#: threads per block of the floor's reduction (a module constant: a shared array's
#: shape must be known when the kernel compiles)
_FLOOR_TPB = min(256, kc.TPB)


@cuda.jit
def _k_stream(X1, partial):
    """Each block sums a grid-strided share of X (flat), then a tree in shared memory."""
    red = cuda.shared.array(_FLOOR_TPB, np.float64)
    t = cuda.threadIdx.x
    acc = 0.0
    for k in range(cuda.grid(1), X1.shape[0], cuda.gridsize(1)):
        acc += X1[k]
    red[t] = acc
    cuda.syncthreads()
    h = _FLOOR_TPB // 2
    while h > 0:
        if t < h:
            red[t] += red[t + h]
        cuda.syncthreads()
        h //= 2
    if t == 0:
        partial[cuda.blockIdx.x] = red[0]


def stream_floor(Xd, repeats):
    """Median seconds of one device pass over X (numba reduction), and the sum it read."""
    flat = Xd.reshape(Xd.size)
    # the simulator runs blocks one after the other: a few, grid-strided
    blocks = max(1, min(4 if kc.SIMULATOR else 4096, -(-Xd.size // _FLOOR_TPB)))
    partial = cuda.device_array(blocks, dtype=np.float64)
    _k_stream[blocks, _FLOOR_TPB](flat, partial)  # compile + warm-up
    cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        _k_stream[blocks, _FLOOR_TPB](flat, partial)
        cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), float(partial.copy_to_host().sum())


def _torch_cuda():
    """The torch module when it can run on the GPU here (not in the simulator)."""
    if kc.SIMULATOR:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def torch_floor(Xd, repeats):
    torch = _torch_cuda()
    if torch is None:
        return None
    Xt = torch.as_tensor(Xd, device="cuda")
    torch.sum(Xt)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.sum(Xt)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(size=(n, d), dtype=np.float32)
    w = (rng.standard_normal(d) / np.sqrt(d)).astype(np.float32)
    y = X @ w + np.float32(0.1) * rng.standard_normal(n, dtype=np.float32)
    return X, y.astype(np.float64)


def _per_epoch(times):
    """Median of the epoch durations after the first (from ``time_curve_``)."""
    gaps = np.diff(np.asarray(times))
    return float(np.median(gaps)) if gaps.size else float(times[0])


def time_fastgd(X, y, batch, device, epochs, mode=None, n_jobs=1):
    """``(seconds per epoch, final loss, mode that ran)`` of one fastgd fit."""
    est = FastSGDRegressor(
        device=device, batch_size=batch, optimizer="momentum", learning_rate="constant",
        eta0=LR, penalty=None, max_iter=epochs, tol=None, shuffle=True, random_state=0,
        n_jobs=n_jobs,
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


def _torch_step(torch, model, opt, xb, yb):
    opt.zero_grad(set_to_none=True)
    loss = 0.5 * torch.mean((model(xb).squeeze(1) - yb) ** 2)
    loss.backward()
    opt.step()
    return loss


def time_torch(Xd, y, batch, steps, graph=False):
    """PyTorch on the device: ``(seconds per epoch, loss)``, per-step time times the
    epoch's steps (full batch: whole epochs). ``graph``: replay a captured step."""
    torch = _torch_cuda()
    if torch is None:
        return None
    Xt = torch.as_tensor(Xd, device="cuda")
    yt = torch.as_tensor(y.astype(np.float32), device="cuda")
    n = Xt.shape[0]
    b = n if batch == "full" else int(batch)
    if graph and b >= n:
        return None  # one step an epoch: nothing for a graph to save
    model = torch.nn.Linear(Xt.shape[1], 1).to("cuda")
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    perm = torch.randperm(n, device="cuda")
    n_steps = 5 if b >= n else steps
    idx = perm[:b].clone()
    run = _torch_graph_step(torch, model, opt, Xt, yt, idx) if graph else None
    loss = torch.zeros((), device="cuda")
    for rep in range(2):  # warm-up, then timed
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for s in range(n_steps if rep else 3):
            lo = (s * b) % max(n - b + 1, 1)
            if run is not None:
                idx.copy_(perm[lo:lo + b])
                loss = run()
            elif b >= n:
                loss = _torch_step(torch, model, opt, Xt, yt)
            else:
                sel = perm[lo:lo + b]
                loss = _torch_step(torch, model, opt, Xt[sel], yt[sel])
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - t0
    per_step = elapsed / n_steps
    return per_step * (-(-n // b)), float(loss)


def _torch_graph_step(torch, model, opt, Xt, yt, idx):
    """Capture one step reading rows ``idx`` in a CUDA graph; return its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up on a side stream, as torch's docs do
        for _ in range(3):
            _torch_step(torch, model, opt, Xt[idx], yt[idx])
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        loss = 0.5 * torch.mean((model(Xt[idx]).squeeze(1) - yt[idx]) ** 2)
        loss.backward()
        opt.step()

    def replay():
        graph.replay()
        return loss

    return replay


class Results:
    """Rows of the run, written to ``path`` after every row."""

    def __init__(self, path, meta):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.meta = meta
        self.rows = []
        self._write()

    def _write(self):
        self.path.write_text(json.dumps({"meta": self.meta, "rows": self.rows}, indent=2))

    def add(self, **row):
        self.rows.append(row)
        self._write()
        sec = row.get("seconds_per_epoch")
        msg = f"{sec:.4g} s/epoch" if sec is not None else row.get("error", "")
        print(f"  {row.get('n')}x{row.get('d')} batch={row.get('batch')} "
              f"{row['contender']}: {msg}", flush=True)
        return row


def attempt(results, base, name, fn, *args, **kwargs):
    """Run one contender; record its result or its error (and go on)."""
    try:
        out = fn(*args, **kwargs)
    except Exception as exc:
        traceback.print_exc(limit=3)
        return results.add(**base, contender=name, error=f"{type(exc).__name__}: {exc}")
    if out is None:
        return None
    sec, loss = out
    return results.add(**base, contender=name, seconds_per_epoch=sec, final_loss=loss)


def run_size(results, n, d, batches, args):
    t0 = time.perf_counter()
    X, y = _data(n, d)
    Xd = cuda.to_device(X)
    print(f"{n} x {d}: data ready in {time.perf_counter() - t0:.1f} s", flush=True)
    base = {"n": n, "d": d, "batch": "-"}
    floors = {}
    try:
        floors["numba"] = stream_floor(Xd, args.repeats)[0]
        results.add(**base, contender="floor (numba reduction)",
                    seconds_per_epoch=floors["numba"], GB_per_s=X.nbytes / floors["numba"] / 1e9)
    except Exception as exc:
        results.add(**base, contender="floor (numba reduction)", error=repr(exc))
    try:
        sec = torch_floor(Xd, args.repeats)
        if sec is not None:
            floors["torch"] = sec
            results.add(**base, contender="floor (torch.sum)", seconds_per_epoch=sec,
                        GB_per_s=X.nbytes / sec / 1e9)
    except Exception as exc:
        results.add(**base, contender="floor (torch.sum)", error=repr(exc))
    for batch in batches:
        b = n if batch == "full" else int(batch)
        base = {"n": n, "d": d, "batch": batch, "steps": -(-n // b)}
        gpu = {}
        for mode in args.modes.split(","):
            if mode == "persistent" and b * d * X.itemsize > PERSISTENT_BENCH_MAX_BYTES:
                results.add(**base, contender=f"fastgd GPU {mode}",
                            skipped="one multiprocessor would stream the whole batch")
                continue
            row = attempt(results, base, f"fastgd GPU {mode}", time_fastgd, Xd, y, batch,
                          "cuda", args.epochs, mode)
            if row and "seconds_per_epoch" in row:
                gpu[mode] = row["seconds_per_epoch"]
        pick = kc.choose_mode(b, d, X.itemsize, "auto")
        auto = {"contender": "fastgd GPU auto", "picked": pick}
        if pick in gpu:
            best = min(gpu, key=gpu.get)
            auto.update(seconds_per_epoch=gpu[pick], best_mode=best,
                        auto_vs_best=gpu[pick] / gpu[best])
        results.add(**base, **auto)
        if not args.skip_cpu:
            for jobs in (1, -1):
                attempt(results, base, f"fastgd CPU n_jobs={jobs}", time_fastgd, X, y,
                        batch, "cpu", args.cpu_epochs, None, jobs)
        if not args.skip_torch:
            attempt(results, base, "PyTorch CUDA", time_torch, Xd, y, batch,
                    args.torch_steps)
            attempt(results, base, "PyTorch CUDA graph", time_torch, Xd, y, batch,
                    args.torch_steps, graph=True)
    del Xd
    return floors


# --------------------------------------------------------------- --check
CHECKS = {
    "adam": (FastSGDRegressor, 1, dict(optimizer="adam", eta0=0.01)),
    "momentum+clip+batchnorm": (FastSGDRegressor, 2, dict(
        optimizer="momentum", eta0=0.01, clip_norm=1.0, batch_norm=True)),
    "rmsprop+elasticnet+average": (FastSGDRegressor, 1, dict(
        optimizer="rmsprop", eta0=0.001, penalty="elasticnet", alpha=1e-4, average=10)),
    "adamw+clip_value (wide: tile path)": (FastSGDRegressor, 1, dict(
        optimizer="adamw", eta0=0.01, clip_value=0.5)),
    "multinomial": (FastSGDClassifier, 4, dict(
        loss="log_loss", multi_class="multinomial", eta0=0.05)),
}


def _check_data(kind, k, n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, k)) / np.sqrt(d) + 0.1 * rng.standard_normal((n, k))
    if kind is FastSGDClassifier:
        return X, np.argmax(Y, axis=1)
    return X, Y[:, 0] if k == 1 else Y


def check(results, n, d, batch, wide=300):
    """GPU vs CPU (float64, same order) per mode, run-to-run bit equality (shuffled),
    and bit equality of the modes. ``wide``: features of the tile-path case."""
    ok = True
    for name, (Est, k, params) in CHECKS.items():
        dd = wide if "wide" in name else d
        X, y = _check_data(Est, k, n, dd)
        common = dict(batch_size=batch, max_iter=3, tol=None, random_state=0, **params)
        base = {"n": n, "d": dd, "batch": batch, "check": name}
        try:
            cpu = Est(device="cpu", shuffle=False, **common).fit(X, y)
            coefs = {}
            for mode in GPU_MODES:
                kc.MODE = mode
                gpu = Est(device="cuda", shuffle=False, **common).fit(X, y)
                scale = float(np.abs(cpu.coef_).max())
                rel = float(np.abs(gpu.coef_ - cpu.coef_).max()) / scale
                coefs[mode] = gpu.coef_
                a = Est(device="cuda", shuffle=True, **common).fit(X, y).coef_
                b = Est(device="cuda", shuffle=True, **common).fit(X, y).coef_
                same = bool(np.array_equal(a, b))
                equal_step = bool(np.array_equal(coefs[mode], coefs["step"]))
                good = rel <= 1e-10 and same and equal_step
                ok &= good
                results.add(**base, contender=f"check {mode}", max_rel_diff_vs_cpu=rel,
                            repeat_bit_identical=same, bit_identical_to_step=equal_step,
                            ok=good)
        except Exception as exc:
            traceback.print_exc(limit=3)
            ok = False
            results.add(**base, contender="check", error=f"{type(exc).__name__}: {exc}")
        finally:
            kc.MODE = "auto"
    return ok


# ----------------------------------------------------------------- report
def kernel_report():
    """Registers, local memory (spills) and shared memory of every compiled kernel."""
    out = []
    for (name, regs), disp in sorted(kc._KERNELS.items(), key=str):
        for types, kern in getattr(disp, "overloads", {}).items():
            try:
                out.append({"kernel": name, "regs_path": regs, "X": str(types[0]),
                            "registers": kern.regs_per_thread,
                            "local_bytes": kern.local_mem_per_thread,
                            "shared_bytes": kern.shared_mem_per_block})
            except Exception as exc:
                out.append({"kernel": name, "error": repr(exc)})
    return out


def markdown(rows):
    lines = ["| n x d | batch | contender | s / epoch | us / step | x floor | note |",
             "|---|---|---|---:|---:|---:|---|"]
    floors = {}
    for r in rows:
        if r.get("contender", "").startswith("floor") and "seconds_per_epoch" in r:
            floors.setdefault((r["n"], r["d"]), r["seconds_per_epoch"])
    for r in rows:
        if "check" in r or not isinstance(r.get("n"), int):
            continue
        sec = r.get("seconds_per_epoch")
        floor = floors.get((r["n"], r["d"]))
        steps = r.get("steps")
        note = r.get("error") or r.get("skipped") or ""
        if "picked" in r:
            note = f"picked {r['picked']}"
            if "best_mode" in r:
                note += f"; best {r['best_mode']}, x{r['auto_vs_best']:.2f}"
        if "run" in r:  # results merged from several runs
            note = f"run {r['run']}" + (f"; {note}" if note else "")
        lines.append(
            f"| {r['n']:,} x {r['d']} | {r['batch']} | {r['contender']} | "
            + (f"{sec:.4g}" if sec is not None else "-") + " | "
            + (f"{sec / steps * 1e6:.1f}" if sec is not None and steps else "-") + " | "
            + (f"{sec / floor:.3g}" if sec is not None and floor else "-") + f" | {note} |")
    return "\n".join(lines)


def _parse_sizes(text):
    return [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]


def _parse_batches(text):
    return [b if b == "full" else int(b) for b in text.split(",")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny data (64 x 8 and 40 x 40; runs in the CUDA simulator)")
    ap.add_argument("--check", action="store_true",
                    help="GPU vs CPU agreement and determinism (float64) instead of timing")
    ap.add_argument("--sizes", type=_parse_sizes, default=None,
                    help="comma-separated NxD (default 1000000x100,4000000x100)")
    ap.add_argument("--batches", type=_parse_batches, default=None,
                    help="comma-separated batch sizes or 'full' (default 256,4096,full)")
    ap.add_argument("--epochs", type=int, default=3, help="GPU epochs per fit (>= 2)")
    ap.add_argument("--cpu-epochs", type=int, default=2, help="CPU epochs per fit")
    ap.add_argument("--repeats", type=int, default=10, help="floor repeats")
    ap.add_argument("--torch-steps", type=int, default=300,
                    help="PyTorch steps timed per minibatch size")
    ap.add_argument("--skip-cpu", action="store_true", help="leave out fastgd CPU")
    ap.add_argument("--skip-torch", action="store_true", help="leave out PyTorch")
    ap.add_argument("--modes", default=",".join(GPU_MODES),
                    help="comma-separated fastgd GPU modes to time (default: all)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    ap.add_argument("--render", metavar="JSON",
                    help="print the table of an earlier run's JSON and exit")
    args = ap.parse_args(argv)
    if args.render:
        if not Path(args.render).is_file():
            print(f"{args.render}: no results")
            return 1
        res = json.loads(Path(args.render).read_text())
        print(f"device: {res['meta'].get('device')}  date: {res['meta'].get('date')}")
        print(markdown(res["rows"]))
        return 0
    if not kc.available():
        print("No CUDA device (numba.cuda.is_available() is False): run this on a GPU "
              "machine, or with NUMBA_ENABLE_CUDASIM=1 --quick for a smoke run.")
        return 1
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": kc.device_name(), "host": platform.node(), "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0], "numpy": np.__version__,
        "numba_cuda": _version("numba-cuda"), "dtype": "float64" if args.check else "float32",
        "quick": args.quick, "epochs": args.epochs,
        "settings": {"TPB": kc.TPB, "MAX_BLOCKS": kc.MAX_BLOCKS, "QMAX": kc.QMAX,
                     "U": kc.U, "MAX_REGISTERS": kc.MAX_REGISTERS,
                     "PERSISTENT_MAX_SLOTS": kc.PERSISTENT_MAX_SLOTS,
                     "STEP_MIN_BATCH_BYTES": kc.STEP_MIN_BATCH_BYTES},
    }
    results = Results(args.out, meta)
    print(f"device: {meta['device']}  date: {meta['date']}", flush=True)
    if args.check:
        n, d = (200, 6) if args.quick else (100_000, 50)
        ok = check(results, n, d, 64 if args.quick else 1000, 40 if args.quick else 300)
        meta["kernels"] = kernel_report()
        results.add(contender="check summary", ok=ok)
        for r in results.rows:
            print({k: v for k, v in r.items() if k not in ("n",)})
        return 0 if ok else 2
    if args.quick:
        sizes, batches = [(64, 8), (40, 40)], [32, "full"]
        args.epochs, args.cpu_epochs, args.repeats, args.torch_steps = 2, 2, 2, 5
    else:
        sizes, batches = args.sizes or SIZES, args.batches or BATCHES
    for n, d in sizes:
        try:
            run_size(results, n, d, batches, args)
        except Exception as exc:
            traceback.print_exc(limit=3)
            results.add(n=n, d=d, batch="-", contender="size", error=repr(exc))
    meta["kernels"] = kernel_report()
    meta["fast_launch"] = _fast_launch_probe()
    results.add(contender="done", n="-", d="-", batch="-")
    print(f"device: {meta['device']}  date: {meta['date']}  dtype: float32")
    print(markdown(results.rows))
    return 0


def _fast_launch_probe():
    """Whether kernels launch through their compiled kernel (not the dispatcher)."""
    try:
        from fastgd._program import lower

        be = kc.CudaBackend(np.zeros((64, 4), np.float32), np.zeros((64, 1)), np.ones(64),
                            np.ones((1, 2)), np.arange(64),
                            lower(FastSGDRegressor(batch_size=16)), mode="step")
        state_probe = be.launch["grad"]
        state_probe.bind((be.X, be.YW, be.rows, be.M, be.V, be.I, be.Gp, be.Scr, 0))
        return bool(state_probe.fast)
    except Exception as exc:
        return repr(exc)


def _version(dist):
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return None


if __name__ == "__main__":
    raise SystemExit(main())
