"""Per-epoch training time of fastgd and its peers, side by side in one run.

    python -m benchmarks.epoch_time            # 1,000,000 x 100 float64 (the reference size)
    python -m benchmarks.epoch_time --quick    # 20,000 x 20: a smoke run
    python -m benchmarks.epoch_time --shapes   # 1M x 100, 100k x 20 and 20k x 2,000

Every contender makes the same number of epochs over the same data (squared error, L2
alpha=1e-4, fixed learning rate); the table gives the median seconds per epoch over
``--repeats`` runs, the ratio to scikit-learn and to the memory floor (the time one
thread needs to stream X once), the final training R² so that no row wins by doing
less work, and the peak of the memory a one-epoch fit allocates besides X (traced by
``tracemalloc``, so NumPy and Python allocations: PyTorch's own allocator is not
traced). Results go to ``benchmarks/results/epoch_time.json`` and, with ``--markdown``,
to a table printed for ``docs/benchmarks.md``.
"""

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
import warnings
from pathlib import Path

import numba
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor
from sklearn.metrics import r2_score

from fastgd import FastSGDRegressor


@numba.njit(cache=True)
def _stream(X):
    """Sum of every element: one pass over X, one thread (the bandwidth floor)."""
    s = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            s += X[i, j]
    return s


# the same loop, vectorized; not cached: Numba's cache key ignores the flags, so a
# second cached dispatcher of one function would share (and clobber) its cache slot
_stream_fast = numba.njit(cache=False, fastmath={"reassoc", "contract"})(_stream.py_func)


#: the dense shapes of ``--shapes``: tall, small and wide
SHAPES = [(1_000_000, 100), (100_000, 20), (20_000, 2_000)]


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = X @ w + 0.1 * rng.normal(size=n)
    return X, y


def _time_fit(est, X, y, epochs):
    """Seconds per epoch of ``est.fit`` (``max_iter=epochs, tol=None``) and its R²."""
    est.set_params(max_iter=epochs, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        est.fit(X, y)
        dt = time.perf_counter() - t0
    return dt / epochs, r2_score(y, est.predict(X))


def _time_fastgd(params, X, y, epochs):
    return _time_fit(FastSGDRegressor(**params), X, y, epochs)


def _time_sklearn(X, y, epochs, shuffle=True):
    return _time_fit(SGDRegressor(learning_rate="constant", eta0=0.001, shuffle=shuffle),
                     X, y, epochs)


def _time_numpy(X, y, epochs, batch=256, lr=0.01, mu=0.9, alpha=1e-4):
    """The vectorized NumPy minibatch loop a user would write (gather + two GEMVs)."""
    n, d = X.shape
    w = np.zeros(d)
    b = 0.0
    vw = np.zeros(d)
    vb = 0.0
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            Xb = X[idx]
            r = Xb @ w + b - y[idx]
            gw = Xb.T @ r / len(idx) + alpha * w
            gb = r.mean()
            vw = mu * vw + gw
            vb = mu * vb + gb
            w -= lr * vw
            b -= lr * vb
    dt = time.perf_counter() - t0
    return dt / epochs, r2_score(y, X @ w + b)


def _time_torch(X, y, epochs, batch=256, lr=0.01, mu=0.9, alpha=1e-4):
    try:
        import torch
    except ImportError:
        return None
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    model = torch.nn.Linear(X.shape[1], 1, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=mu, weight_decay=alpha)
    gen = torch.Generator().manual_seed(0)
    n = X.shape[0]
    t0 = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            pred = model(Xt[idx]).squeeze(1)
            loss = 0.5 * torch.mean((pred - yt[idx]) ** 2)
            loss.backward()
            opt.step()
    dt = time.perf_counter() - t0
    with torch.no_grad():
        pred = model(Xt).squeeze(1).numpy()
    return dt / epochs, r2_score(y, pred)


def _peak_mb(fn):
    """Peak traced allocation (MB) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _median(fn, repeats):
    times, score = [], None
    for _ in range(repeats):
        t, score = fn()
        times.append(t)
    return statistics.median(times), score


def run(n, d, epochs, repeats, first_fit=True):
    X, y = _data(n, d)
    _stream(X[:10])
    _stream_fast(X[:10])
    floor = statistics.median(_bench_stream(_stream, X) for _ in range(5))
    floor_fast = statistics.median(_bench_stream(_stream_fast, X) for _ in range(5))
    common = dict(eta0=0.001, learning_rate="constant")
    X32 = X.astype(np.float32)
    mb = dict(optimizer="momentum", eta0=0.01, learning_rate="constant")
    contenders = [
        ("scikit-learn SGDRegressor (per-sample, shuffled)",
         lambda e: _time_sklearn(X, y, e)),
        ("scikit-learn SGDRegressor (per-sample, no shuffle)",
         lambda e: _time_sklearn(X, y, e, shuffle=False)),
        ("fastgd per-sample (sklearn algorithm, shuffled)",
         lambda e: _time_fastgd(dict(common), X, y, e)),
        ("fastgd per-sample (no shuffle)",
         lambda e: _time_fastgd(dict(common, shuffle=False), X, y, e)),
        ("fastgd per-sample (block shuffle)",
         lambda e: _time_fastgd(dict(common, shuffle="block"), X, y, e)),
        ("fastgd minibatch 32, momentum",
         lambda e: _time_fastgd(dict(mb, batch_size=32), X, y, e)),
        ("fastgd minibatch 256, momentum",
         lambda e: _time_fastgd(dict(mb, batch_size=256), X, y, e)),
        ("fastgd minibatch 256, momentum, block shuffle",
         lambda e: _time_fastgd(dict(mb, batch_size=256, shuffle="block"), X, y, e)),
        ("fastgd minibatch 4096, momentum",
         # 16x fewer steps than batch 256: a larger rate (linear scaling rule)
         lambda e: _time_fastgd(dict(mb, batch_size=4096, eta0=0.1), X, y, e)),
        ("fastgd minibatch 4096, momentum, n_jobs=-1",
         lambda e: _time_fastgd(dict(mb, batch_size=4096, eta0=0.1, n_jobs=-1), X, y, e)),
        ("fastgd minibatch 256, adam",
         lambda e: _time_fastgd(dict(batch_size=256, optimizer="adam", eta0=0.01,
                                     learning_rate="constant"), X, y, e)),
        ("fastgd full batch GD",
         lambda e: _time_fastgd(dict(batch_size="full", eta0=0.5,
                                     learning_rate="constant"), X, y, e)),
        ("fastgd full batch GD, n_jobs=-1",
         lambda e: _time_fastgd(dict(batch_size="full", eta0=0.5, learning_rate="constant",
                                     n_jobs=-1), X, y, e)),
        ("fastgd minibatch 256, momentum, float32",
         lambda e: _time_fastgd(dict(mb, batch_size=256), X32, y, e)),
        ("fastgd full batch GD, float32",
         lambda e: _time_fastgd(dict(batch_size="full", eta0=0.5,
                                     learning_rate="constant"), X32, y, e)),
        ("NumPy minibatch 256, momentum", lambda e: _time_numpy(X, y, e)),
        ("PyTorch CPU minibatch 256, momentum", lambda e: _time_torch(X, y, e)),
    ]
    # warm the compile cache so that compile time is not in any row
    _time_fastgd(dict(common), X[:100], y[:100], 1)
    for params in (dict(batch_size=256, optimizer="momentum"), dict(batch_size="full"),
                   dict(batch_size=256, optimizer="adam"), dict(shuffle="block")):
        _time_fastgd(params, X[:300], y[:300], 1)
        _time_fastgd(params, X[:300].astype(np.float32), y[:300], 1)
    rows = []
    sk_time = None
    for name, fn in contenders:
        if fn(1) is None:
            continue
        t, score = _median(lambda: fn(epochs), repeats)
        if name.startswith("scikit-learn") and "shuffled" in name:
            sk_time = t
        peak = None if name.startswith("PyTorch") else _peak_mb(lambda: fn(1))
        rows.append({"name": name, "seconds_per_epoch": t, "r2": score,
                     "peak_mb_besides_X": peak})
    for row in rows:
        row["vs_sklearn"] = sk_time / row["seconds_per_epoch"]
        row["vs_floor"] = row["seconds_per_epoch"] / floor
    return {
        "first_fit": first_fit_times() if first_fit else None,
        "n_samples": n, "n_features": d, "epochs": epochs, "repeats": repeats,
        "floor_seconds_stream_X_1thread": floor,
        "floor_seconds_stream_X_1thread_vectorized": floor_fast,
        "rows": rows,
        "machine": {
            "platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "numba": numba.__version__,
        },
    }


_FIRST_FIT = """
import time
t0 = time.perf_counter()
import numpy as np
from {module} import {cls}
X = np.random.default_rng(0).normal(size=(1000, 10)); y = X.sum(axis=1)
{cls}(max_iter=5, tol=None).fit(X, y)
print(time.perf_counter() - t0)
"""


def first_fit_times():
    """Whole-process time of import + first fit, fresh interpreter: cold/warm cache."""
    import subprocess
    import sys
    import tempfile

    def once(module, cls, env):
        code = _FIRST_FIT.format(module=module, cls=cls)
        t0 = time.perf_counter()
        inner = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env,
                               capture_output=True, text=True, check=True)
        return time.perf_counter() - t0, float(inner.stdout.strip())

    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = once("fastgd", "FastSGDRegressor", env)
        warm = statistics.median(once("fastgd", "FastSGDRegressor", env)[0]
                                 for _ in range(3))
    sk = statistics.median(once("sklearn.linear_model", "SGDRegressor", dict(os.environ))[0]
                           for _ in range(3))
    return {"fastgd_cold_cache_process_s": cold[0], "fastgd_warm_cache_process_s": warm,
            "sklearn_process_s": sk}


def _bench_stream(fn, X):
    t0 = time.perf_counter()
    fn(X)
    return time.perf_counter() - t0


def to_markdown(res):
    lines = [
        f"Data: dense {res['n_samples']:,} x {res['n_features']} float64, "
        f"{res['epochs']} epochs, median of {res['repeats']} runs. Floor (stream X once, "
        f"1 thread): {res['floor_seconds_stream_X_1thread'] * 1e3:.1f} ms "
        f"(vectorized sum: {res['floor_seconds_stream_X_1thread_vectorized'] * 1e3:.1f} ms).",
        "",
        "| contender | ms / epoch | speed-up vs scikit-learn | x floor | train R² "
        "| peak MB besides X |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:
        peak = r.get("peak_mb_besides_X")
        peak = "n/a" if peak is None else f"{peak:.1f}"
        lines.append(f"| {r['name']} | {r['seconds_per_epoch'] * 1e3:.1f} | "
                     f"{r['vs_sklearn']:.2f} | {r['vs_floor']:.1f} | {r['r2']:.4f} "
                     f"| {peak} |")
    ff = res["first_fit"] or {}
    if ff:
        lines += ["", "First fit in a fresh process (import + fit of 1,000 x 10, 5 epochs, "
                  "whole process wall time): fastgd with a cold compile cache "
                  f"{ff['fastgd_cold_cache_process_s']:.2f} s, with a warm cache "
                  f"{ff['fastgd_warm_cache_process_s']:.2f} s; scikit-learn SGDRegressor "
                  f"{ff['sklearn_process_s']:.2f} s."]
    m = res["machine"]
    lines += ["", f"Machine: {m['platform']}, {m['cpus']} CPUs, Python {m['python']}, "
                  f"NumPy {m['numpy']}, Numba {m['numba']}."]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 x 20, 2 epochs")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", action="store_true",
                        help="run 1,000,000 x 100, 100,000 x 20 and 20,000 x 2,000 "
                             "(writes epoch_time_shapes.json)")
    parser.add_argument("--no-first-fit", action="store_true",
                        help="skip the fresh-process first-fit timings")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "epoch_time.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.d, args.epochs, args.repeats = 20_000, 20, 2, 1
        if args.out == parser.get_default("out"):
            # a smoke run must not overwrite the recorded full-size result
            args.out = str(Path(args.out).with_name("epoch_time_quick.json"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.shapes:
        results = []
        for i, (n, d) in enumerate(SHAPES):
            res = run(n, d, args.epochs, args.repeats,
                      first_fit=not args.no_first_fit and i == 0)
            results.append(res)
            print(to_markdown(res) + "\n", flush=True)
        if args.out == parser.get_default("out"):
            out = out.with_name("epoch_time_shapes.json")
        out.write_text(json.dumps(results, indent=2))
        return 0
    res = run(args.n, args.d, args.epochs, args.repeats, first_fit=not args.no_first_fit)
    out.write_text(json.dumps(res, indent=2))
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
