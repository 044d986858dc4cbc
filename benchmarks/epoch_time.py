"""Per-epoch training time of fastgd and its peers, side by side in one run.

    python -m benchmarks.epoch_time            # 1,000,000 x 100 float64 (the reference size)
    python -m benchmarks.epoch_time --quick    # 20,000 x 20: a smoke run
    python -m benchmarks.epoch_time --shapes   # 1M x 100, 100k x 20, 20k x 2,000, sparse
    python -m benchmarks.epoch_time --sparse   # CSR 1,000,000 x 100,000 at 0.05% only
    python -m benchmarks.epoch_time --shapes --plot docs/img/epoch_time.png

Every contender makes the same number of epochs over the same data (squared error, L2
alpha=1e-4, fixed learning rate). The time per epoch is the *marginal* one: the median
over ``--repeats`` of ``(t(fit with 1 + epochs) - t(fit with 1 epoch)) / epochs``, so
the per-``fit`` setup (input validation, the finiteness check of X, allocation) is
reported in its own column instead of being spread over the epochs; the NumPy and
PyTorch loops have no setup and are timed directly. Next to it: the ratio to
scikit-learn and to the hardware floor that applies to the contender (streaming X once
for sequential and full-batch passes, with as many threads as the contender uses and in
its dtype; visiting the rows in a random order for shuffled ones), the final training
R² so that no row wins by doing less work, and the peak of the memory a one-epoch fit
allocates besides X (traced by ``tracemalloc``, so NumPy and Python allocations:
PyTorch's own allocator is not traced). Results go to
``benchmarks/results/epoch_time.json`` and a markdown table for ``docs/benchmarks.md``.
"""

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor
from sklearn.metrics import r2_score

from fastgd import FastSGDRegressor
from fastgd._kernels.rows import PREFETCH_DISTANCE, index_prefetch, row_prefetch


_FM = {"reassoc", "contract"}


@numba.njit(cache=True)
def _stream_scalar(X):
    """Plain sum of every element, one thread: bound by the latency of the adds, not by
    memory (kept for comparison with earlier runs)."""
    s = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            s += X[i, j]
    return s


@numba.njit(cache=True, nogil=True, fastmath=_FM)
def _stream_rows(X, a, b):
    """Vectorized sum of rows ``a:b``: one pass over them, the bandwidth floor."""
    s = 0.0
    for i in range(a, b):
        for j in range(X.shape[1]):
            s += X[i, j]
    return s


@numba.njit(cache=True, nogil=True, fastmath=_FM)
def _stream_csr(data, indices, indptr, a, b):
    """One pass over the values and column indices of CSR rows ``a:b``."""
    s = 0.0
    for jj in range(indptr[a], indptr[b]):
        s += data[jj] + indices[jj]
    return s


@numba.njit(cache=True, nogil=True, fastmath=_FM)
def _visit_rows(X, order):
    """Read every row once in the order ``order``, with the software prefetch fastgd's
    loops use: the floor of a shuffled epoch (no arithmetic, no dependency)."""
    n = order.shape[0]
    s = 0.0
    for ii in range(n):
        if ii + PREFETCH_DISTANCE < n:
            row_prefetch(X, order[ii + PREFETCH_DISTANCE])
        i = order[ii]
        for j in range(X.shape[1]):
            s += X[i, j]
    return s


@numba.njit(cache=True, nogil=True, fastmath=_FM)
def _visit_csr(data, indices, indptr, order):
    """:func:`_visit_rows` for a CSR matrix."""
    X = (data, indices, indptr)
    n = order.shape[0]
    s = 0.0
    for ii in range(n):
        if ii + 2 * PREFETCH_DISTANCE < n:
            index_prefetch(X, order[ii + 2 * PREFETCH_DISTANCE])
        if ii + PREFETCH_DISTANCE < n:
            row_prefetch(X, order[ii + PREFETCH_DISTANCE])
        i = order[ii]
        for jj in range(indptr[i], indptr[i + 1]):
            s += data[jj] + indices[jj]
    return s


#: the dense shapes of ``--shapes``: tall, small and wide
SHAPES = [(1_000_000, 100), (100_000, 20), (20_000, 2_000)]
#: the sparse shape of ``--shapes`` / ``--sparse``: rows, features, density
SPARSE_SHAPE = (1_000_000, 100_000, 0.0005)


def _data(n, d, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d) / np.sqrt(d)
    y = X @ w + 0.1 * rng.normal(size=n)
    return X, y


def _sparse_data(n, d, density, seed=0):
    """CSR with the same number of non-zeros (uniform in [0, 1)) in every row."""
    rng = np.random.default_rng(seed)
    nnz = max(1, round(d * density))
    indices = np.sort(rng.integers(0, d, size=(n, nnz), dtype=np.int32), axis=1)
    X = sp.csr_matrix((rng.random(n * nnz), indices.ravel(),
                       np.arange(0, n * nnz + 1, nnz, dtype=np.int32)), shape=(n, d))
    X.sum_duplicates()
    w = rng.normal(size=d) / np.sqrt(nnz / 3.0)
    y = X @ w + 0.1 * rng.normal(size=n)
    return X, y


def _curvature(X, iters=20, seed=0):
    """Largest eigenvalue of ``[X, 1]^T [X, 1] / n`` (power iteration): the Lipschitz
    constant of the mean squared-error gradient, which sets a stable full-batch rate."""
    n, d = X.shape
    v = np.random.default_rng(seed).normal(size=d + 1)
    lam = 0.0
    for _ in range(iters):
        v /= np.linalg.norm(v)
        r = X @ v[:d] + v[d]
        u = np.append(X.T @ r, r.sum()) / n
        lam = float(v @ u)
        v = u
    return lam


def _timed(fn, threads=1):
    """Median seconds of ``fn(k)`` run on ``threads`` threads (k = 0..threads-1)."""
    def once(ex):
        t0 = time.perf_counter()
        list(ex.map(fn, range(threads)))
        return time.perf_counter() - t0
    with ThreadPoolExecutor(threads) as ex:
        return statistics.median(once(ex) for _ in range(5))


def floors(X, threads):
    """Hardware floors of one epoch over ``X`` (seconds), measured now on this machine.

    ``stream``: one pass over X in storage order (vectorized sum, the memory-bandwidth
    floor); ``random_rows``: every row once in a random order, with the software
    prefetch fastgd uses (the floor of a shuffled epoch); each on one thread and split
    over ``threads`` threads; ``stream_scalar``: the non-vectorized sum (dense only).
    """
    n = X.shape[0]
    bounds = np.linspace(0, n, threads + 1).astype(np.int64)
    order = np.random.default_rng(0).permutation(n)
    if sp.issparse(X):
        parts = (X.data, X.indices, X.indptr)

        def stream(a, b):
            return _stream_csr(*parts, a, b)

        def visit(o):
            return _visit_csr(*parts, o)
        scalar = None
    else:
        def stream(a, b):
            return _stream_rows(X, a, b)

        def visit(o):
            return _visit_rows(X, o)
        _stream_scalar(X[:1])
        scalar = _timed(lambda k: _stream_scalar(X))
    stream(0, 1)
    visit(order[:1])
    return {
        "stream": _timed(lambda k: stream(0, n)),
        "stream_threads": _timed(lambda k: stream(bounds[k], bounds[k + 1]), threads),
        "random_rows": _timed(lambda k: visit(order)),
        "random_rows_threads": _timed(lambda k: visit(order[bounds[k]:bounds[k + 1]]),
                                      threads),
        "stream_scalar": scalar,
    }


def _time_fit(make, X, y, epochs, score=None):
    """Marginal seconds per epoch, setup seconds and training score of ``make(max_iter)``.

    ``(t(1 + epochs) - t(1)) / epochs`` takes the per-``fit`` setup out of the epochs;
    on problems so small that timer noise exceeds that difference the whole-fit
    average is used instead. ``score(est)`` defaults to the training R².
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        make(1).fit(X, y)
        t_one = time.perf_counter() - t0
        est = make(1 + epochs)
        t0 = time.perf_counter()
        est.fit(X, y)
        t_all = time.perf_counter() - t0
    per_epoch = (t_all - t_one) / epochs
    if per_epoch <= 0.0:
        per_epoch = t_all / (1 + epochs)
    quality = score(est) if score is not None else r2_score(y, est.predict(X))
    return per_epoch, max(t_one - per_epoch, 0.0), quality


def _time_fastgd(params, X, y, epochs):
    return _time_fit(lambda it: FastSGDRegressor(**params, max_iter=it, tol=None,
                                                 random_state=0), X, y, epochs)


def _time_sklearn(X, y, epochs, shuffle=True, eta0=0.001):
    return _time_fit(lambda it: SGDRegressor(learning_rate="constant", eta0=eta0,
                                             shuffle=shuffle, max_iter=it, tol=None,
                                             random_state=0), X, y, epochs)


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
    return dt / epochs, None, r2_score(y, X @ w + b)


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
    return dt / epochs, None, r2_score(y, pred)


def _peak_mb(fn):
    """Peak traced allocation (MB) while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _median(fn, repeats):
    """Median seconds per epoch and setup over ``repeats`` runs, and the last R²."""
    runs = [fn() for _ in range(repeats)]
    setups = [r[1] for r in runs if r[1] is not None]
    return (statistics.median(r[0] for r in runs),
            statistics.median(setups) if setups else None, runs[-1][2])


#: what each floor key means in the tables
FLOOR_NAMES = {
    "stream": "stream X once, 1 thread",
    "stream_threads": "stream X once, all threads",
    "random_rows": "rows in a random order, 1 thread",
    "random_rows_threads": "rows in a random order, all threads",
}


def _measure(contenders, floor_sets, epochs, repeats):
    """Time every contender; ``floor_sets[dtype][kind]`` gives its floor."""
    rows = []
    sk_time = None
    for name, fn, (kind, dtype) in contenders:
        if fn(1) is None:  # a peer that is not installed; otherwise a warm-up run
            continue
        t, setup, score = _median(lambda: fn(epochs), repeats)
        if name.startswith("scikit-learn") and "shuffled" in name:
            sk_time = t
        peak = None if name.startswith("PyTorch") else _peak_mb(lambda: fn(1))
        floor = floor_sets[dtype][kind]
        rows.append({"name": name, "seconds_per_epoch": t, "setup_seconds": setup,
                     "r2": score, "peak_mb_besides_X": peak, "floor": kind,
                     "floor_dtype": dtype, "floor_seconds": floor, "vs_floor": t / floor})
    for row in rows:
        row["vs_sklearn"] = sk_time / row["seconds_per_epoch"]
    return rows


def _machine(threads):
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    huge = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("AnonHugePages:"):
                huge = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {
        "platform": platform.platform(), "processor": platform.processor(),
        "cpus": os.cpu_count(), "threads_all": threads, "python": platform.python_version(),
        "numpy": np.__version__, "numba": numba.__version__,
        # NumPy asks for transparent huge pages on large arrays (madvise): with THP
        # in "madvise" or "always" mode, X is mapped with 2 MiB pages and a random row
        # costs no TLB walk
        "transparent_hugepages": thp.read_text().strip() if thp.exists() else None,
        "anon_huge_pages_mb": huge,
    }


def _per_sample_contenders(X, y, params):
    """scikit-learn's shuffled per-sample SGD and fastgd's in its three row orders."""
    F64 = "float64"
    return [
        ("scikit-learn SGDRegressor (per-sample, shuffled)",
         lambda e: _time_sklearn(X, y, e, eta0=params["eta0"]), ("random_rows", F64)),
        ("fastgd per-sample (sklearn algorithm, shuffled)",
         lambda e: _time_fastgd(dict(params), X, y, e), ("random_rows", F64)),
        # the second thread copies the next rows of the epoch while the first trains
        ("fastgd per-sample (sklearn algorithm, shuffled), n_jobs=-1",
         lambda e: _time_fastgd(dict(params, n_jobs=-1), X, y, e),
         ("random_rows_threads", F64)),
        ("fastgd per-sample (no shuffle)",
         lambda e: _time_fastgd(dict(params, shuffle=False), X, y, e), ("stream", F64)),
        ("fastgd per-sample (block shuffle)",
         lambda e: _time_fastgd(dict(params, shuffle="block"), X, y, e), ("stream", F64)),
    ]


def run(n, d, epochs, repeats, first_fit=True):
    from joblib import effective_n_jobs

    threads = effective_n_jobs(-1)
    X, y = _data(n, d)
    X32 = X.astype(np.float32)
    floor_sets = {"float64": floors(X, threads), "float32": floors(X32, threads)}
    common = dict(eta0=0.001, learning_rate="constant")
    mb = dict(optimizer="momentum", eta0=0.01, learning_rate="constant")
    full = dict(batch_size="full", eta0=0.5, learning_rate="constant")
    F64, F32 = "float64", "float32"
    sk, *per_sample = _per_sample_contenders(X, y, common)
    contenders = [
        sk,
        ("scikit-learn SGDRegressor (per-sample, no shuffle)",
         lambda e: _time_sklearn(X, y, e, shuffle=False), ("stream", F64)),
        *per_sample,
        ("fastgd minibatch 32, momentum",
         lambda e: _time_fastgd(dict(mb, batch_size=32), X, y, e), ("random_rows", F64)),
        ("fastgd minibatch 256, momentum",
         lambda e: _time_fastgd(dict(mb, batch_size=256), X, y, e), ("random_rows", F64)),
        ("fastgd minibatch 256, momentum, n_jobs=-1",
         lambda e: _time_fastgd(dict(mb, batch_size=256, n_jobs=-1), X, y, e),
         ("random_rows_threads", F64)),
        ("fastgd minibatch 256, momentum, block shuffle",
         lambda e: _time_fastgd(dict(mb, batch_size=256, shuffle="block"), X, y, e),
         ("stream", F64)),
        ("fastgd minibatch 4096, momentum",
         # 16x fewer steps than batch 256: a larger rate (linear scaling rule)
         lambda e: _time_fastgd(dict(mb, batch_size=4096, eta0=0.1), X, y, e),
         ("random_rows", F64)),
        ("fastgd minibatch 4096, momentum, n_jobs=-1",
         lambda e: _time_fastgd(dict(mb, batch_size=4096, eta0=0.1, n_jobs=-1), X, y, e),
         ("random_rows_threads", F64)),
        ("fastgd minibatch 256, adam",
         lambda e: _time_fastgd(dict(batch_size=256, optimizer="adam", eta0=0.01,
                                     learning_rate="constant"), X, y, e),
         ("random_rows", F64)),
        ("fastgd full batch GD",
         lambda e: _time_fastgd(dict(full), X, y, e), ("stream", F64)),
        ("fastgd full batch GD, n_jobs=-1",
         lambda e: _time_fastgd(dict(full, n_jobs=-1), X, y, e), ("stream_threads", F64)),
        ("fastgd minibatch 256, momentum, float32",
         lambda e: _time_fastgd(dict(mb, batch_size=256), X32, y, e), ("random_rows", F32)),
        ("fastgd full batch GD, float32",
         lambda e: _time_fastgd(dict(full), X32, y, e), ("stream", F32)),
        ("fastgd full batch GD, float32, n_jobs=-1",
         lambda e: _time_fastgd(dict(full, n_jobs=-1), X32, y, e), ("stream_threads", F32)),
        ("NumPy minibatch 256, momentum", lambda e: _time_numpy(X, y, e),
         ("random_rows", F64)),
        ("PyTorch CPU minibatch 256, momentum", lambda e: _time_torch(X, y, e),
         ("random_rows", F64)),
    ]
    # warm the compile cache so that compile time is not in any row
    _time_fastgd(dict(common), X[:100], y[:100], 1)
    for params in (dict(batch_size=256, optimizer="momentum"), dict(batch_size="full"),
                   dict(batch_size=256, optimizer="adam"), dict(shuffle="block")):
        _time_fastgd(params, X[:300], y[:300], 1)
        _time_fastgd(params, X32[:300], y[:300], 1)
    return {
        "kind": "dense",
        "first_fit": first_fit_times() if first_fit else None,
        "n_samples": n, "n_features": d, "epochs": epochs, "repeats": repeats,
        "x_megabytes": X.nbytes / 1e6, "floors": floor_sets,
        "rows": _measure(contenders, floor_sets, epochs, repeats),
        "machine": _machine(threads),
    }


def run_sparse(n, d, density, epochs, repeats):
    """The CSR contenders: per-sample SGD against scikit-learn, minibatch, full batch."""
    from joblib import effective_n_jobs

    threads = effective_n_jobs(-1)
    X, y = _sparse_data(n, d, density)
    floor_sets = {"float64": floors(X, threads)}
    # rows hold ~d * density values in [0, 1): ||x||^2 ~ nnz / 3, so per-sample steps
    # of 0.01 are stable; averaged gradients (minibatch, full batch) see the curvature
    # of the mean loss, far smaller on rows that share few features: they take the
    # rate 1 / L that a practitioner would compute
    ps = dict(eta0=0.01, learning_rate="constant")
    eta_avg = 1.0 / _curvature(X)
    F64 = "float64"
    contenders = [
        *_per_sample_contenders(X, y, ps),
        ("fastgd minibatch 256, momentum",
         lambda e: _time_fastgd(dict(batch_size=256, optimizer="momentum", eta0=eta_avg
                                     / 10, learning_rate="constant"), X, y, e),
         ("random_rows", F64)),
        ("fastgd full batch GD",
         lambda e: _time_fastgd(dict(batch_size="full", eta0=eta_avg,
                                     learning_rate="constant"), X, y, e), ("stream", F64)),
        ("fastgd full batch GD, n_jobs=-1",
         lambda e: _time_fastgd(dict(batch_size="full", eta0=eta_avg,
                                     learning_rate="constant", n_jobs=-1), X, y, e),
         ("stream_threads", F64)),
    ]
    small = X[:300]
    for params in (dict(ps), dict(ps, batch_size=256, optimizer="momentum"),
                   dict(batch_size="full"), dict(ps, shuffle="block")):
        _time_fastgd(params, small, y[:300], 1)
    return {
        "kind": "sparse",
        "first_fit": None,
        "n_samples": n, "n_features": d, "density": density, "nnz": int(X.nnz),
        "epochs": epochs, "repeats": repeats, "averaged_gradient_rate": eta_avg,
        "x_megabytes": (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 1e6,
        "floors": floor_sets,
        "rows": _measure(contenders, floor_sets, epochs, repeats),
        "machine": _machine(threads),
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


def to_markdown(res, names=None):
    """The run's table (``names``: only these contenders, in the run's order)."""
    if res["kind"] == "sparse":
        head = (f"Data: CSR {res['n_samples']:,} x {res['n_features']:,} float64, "
                f"density {res['density'] * 100:g}% ({res['nnz']:,} non-zeros, "
                f"{res['x_megabytes']:.0f} MB)")
    else:
        head = (f"Data: dense {res['n_samples']:,} x {res['n_features']:,} float64 "
                f"({res['x_megabytes']:.0f} MB; float32 rows use a float32 copy)")
    fl = res["floors"]["float64"]
    lines = [
        f"{head}, {res['epochs']} epochs, median of {res['repeats']} runs. Floors "
        f"measured in the same run (float64, ms): stream X once {fl['stream'] * 1e3:.1f} "
        f"(1 thread) / {fl['stream_threads'] * 1e3:.1f} (all threads); rows in a random "
        f"order {fl['random_rows'] * 1e3:.1f} / {fl['random_rows_threads'] * 1e3:.1f}.",
        "",
        "| contender | ms / epoch | setup ms / fit | speed-up vs scikit-learn "
        "| x floor (floor) | train R² | peak MB besides X |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in res["rows"]:
        if names is not None and r["name"] not in names:
            continue
        peak = r.get("peak_mb_besides_X")
        peak = "n/a" if peak is None else f"{peak:.1f}"
        setup = "–" if r["setup_seconds"] is None else f"{r['setup_seconds'] * 1e3:.0f}"
        floor = FLOOR_NAMES[r["floor"]] + (", float32" if r["floor_dtype"] == "float32"
                                           else "")
        lines.append(f"| {r['name']} | {r['seconds_per_epoch'] * 1e3:.1f} | {setup} | "
                     f"{r['vs_sklearn']:.2f} | {r['vs_floor']:.2f} ({floor}) | "
                     f"{r['r2']:.4f} | {peak} |")
    ff = res["first_fit"] or {}
    if ff:
        lines += ["", "First fit in a fresh process (import + fit of 1,000 x 10, 5 epochs, "
                  "whole process wall time): fastgd with a cold compile cache "
                  f"{ff['fastgd_cold_cache_process_s']:.2f} s, with a warm cache "
                  f"{ff['fastgd_warm_cache_process_s']:.2f} s; scikit-learn SGDRegressor "
                  f"{ff['sklearn_process_s']:.2f} s."]
    m = res["machine"]
    lines += ["", f"Machine: {m['platform']}, {m['cpus']} CPUs ({m['threads_all']} threads "
                  f"for n_jobs=-1), Python {m['python']}, NumPy {m['numpy']}, Numba "
                  f"{m['numba']}; transparent huge pages: {m['transparent_hugepages']}, "
                  f"{m['anon_huge_pages_mb']:.0f} MB mapped with them after the run."]
    return "\n".join(lines)


def plot(res, path):
    """Horizontal bars of ms per epoch, one per contender, with the floors as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = res["rows"]
    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.9), layout="constrained")
    ms = [r["seconds_per_epoch"] * 1e3 for r in rows]
    colors = ["tab:blue" if r["name"].startswith("fastgd") else "tab:gray" for r in rows]
    ax.barh(range(len(rows)), ms, color=colors)
    ax.set_yticks(range(len(rows)), [r["name"] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    fl = res["floors"]["float64"]
    for key, style in (("stream", "--"), ("random_rows", ":")):
        ax.axvline(fl[key] * 1e3, color="k", linestyle=style, linewidth=1,
                   label=f"floor: {FLOOR_NAMES[key]} ({fl[key] * 1e3:.0f} ms)")
    for i, v in enumerate(ms):
        ax.text(v * 1.03, i, f"{v:.0f}", va="center", fontsize=7)
    kind = "CSR" if res["kind"] == "sparse" else "dense"
    ax.set_xlabel("ms per epoch (log scale; lower is better)")
    ax.set_title(f"One epoch, {kind} {res['n_samples']:,} x {res['n_features']:,} float64")
    ax.set_xlim(right=max(ms) * 1.5)  # room for the last bar's label
    fig.legend(fontsize=8, loc="outside lower center", ncol=2)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="20,000 x 20 dense (or 20,000 x 10,000 CSR), 2 epochs")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", action="store_true",
                        help="run 1,000,000 x 100, 100,000 x 20, 20,000 x 2,000 and the "
                             "CSR 1,000,000 x 100,000 (writes epoch_time_shapes.json)")
    parser.add_argument("--sparse", action="store_true",
                        help="only the CSR 1,000,000 x 100,000 at 0.05%% density")
    parser.add_argument("--plot", metavar="PNG",
                        help="also draw the (first) table as a bar chart into PNG")
    parser.add_argument("--no-first-fit", action="store_true",
                        help="skip the fresh-process first-fit timings")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "epoch_time.json"))
    args = parser.parse_args(argv)
    default_out = args.out == parser.get_default("out")
    out = Path(args.out)
    if args.quick:
        args.n, args.d, args.epochs, args.repeats = 20_000, 20, 2, 1
        if default_out:
            # a smoke run must not overwrite the recorded full-size result
            out = out.with_name("epoch_time_sparse_quick.json" if args.sparse
                                else "epoch_time_quick.json")
    elif args.sparse and default_out:
        out = out.with_name("epoch_time_sparse.json")
    elif args.shapes and default_out:
        out = out.with_name("epoch_time_shapes.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    sparse_shape = (20_000, 10_000, 0.005) if args.quick else SPARSE_SHAPE
    if args.sparse:
        res = run_sparse(*sparse_shape, args.epochs, args.repeats)
        out.write_text(json.dumps(res, indent=2))
        print(to_markdown(res))
        if args.plot:
            plot(res, args.plot)
        return 0
    if args.shapes:
        results = []
        for i, (n, d) in enumerate(SHAPES):
            res = run(n, d, args.epochs, args.repeats,
                      first_fit=not args.no_first_fit and i == 0)
            results.append(res)
            print(to_markdown(res) + "\n", flush=True)
        res = run_sparse(*sparse_shape, args.epochs, args.repeats)
        results.append(res)
        print(to_markdown(res) + "\n", flush=True)
        out.write_text(json.dumps(results, indent=2))
        if args.plot:
            plot(results[0], args.plot)
        return 0
    res = run(args.n, args.d, args.epochs, args.repeats, first_fit=not args.no_first_fit)
    out.write_text(json.dumps(res, indent=2))
    print(to_markdown(res))
    if args.plot:
        plot(res, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
