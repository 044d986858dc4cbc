"""``fastgd.warmup``: compile every kernel specialization once, into the disk cache."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from ._executors.gathered import gather_all
from ._kernels import _jit

_DTYPES: tuple[Literal["float64", "float32"], ...] = ("float64", "float32")


def warmup(dtypes: Sequence[Literal["float64", "float32"]] = _DTYPES, sparse: bool = True,
           fortran: bool = True, verbose: bool = False) -> list[dict[str, Any]]:
    """Compile (or load from the cache) the kernels the estimators use.

    A fresh process compiles each kernel specialization (one per input dtype and
    layout) the first time a fit needs it, or loads it from Numba's on-disk cache when
    an earlier process saved it there. Call ``warmup`` once after installing fastgd
    (or ``fastgd warmup`` from the shell; e.g. in a container build step) so that
    first fits everywhere load instead of compile. It runs tiny fits of every training
    mode: scikit-learn's per-sample loop, minibatch with a stateful optimizer, batch
    normalization, the full-batch gradient split over threads, the multinomial model,
    block shuffling, and the loops that copy shuffled rows ahead of training (used on
    large data; forced on the tiny data here, and meanwhile for fits in other threads
    too, which give the same results that way). The Reliability page of the
    documentation says where the cache lives.

    Parameters
    ----------
    dtypes : sequence of {"float64", "float32"}, default=("float64", "float32")
        Input dtypes to compile for.
    sparse : bool, default=True
        Also compile the CSR specializations.
    fortran : bool, default=True
        Also compile the Fortran-ordered dense specializations.
    verbose : bool, default=False
        Print one line per kernel.

    Returns
    -------
    report : list of dict
        Per kernel: ``kernel`` (name), ``cache_dir`` (``None`` when no writable cache
        location exists: the kernel is compiled in memory in every process),
        ``signatures`` (specializations in this process), ``cache_hits`` and
        ``cache_misses`` (specializations loaded from / compiled into the cache), plus
        ``seconds`` for the whole warm-up in the first row.

    Examples
    --------
    >>> import fastgd
    >>> report = fastgd.warmup(dtypes=("float64",), sparse=False, fortran=False)
    >>> any(row["kernel"].endswith("epoch_batch") for row in report)
    True
    """
    from .linear_model import FastSGDClassifier, FastSGDRegressor

    for dt in dtypes:
        if dt not in _DTYPES:
            raise ValueError(f"dtypes must hold 'float64' or 'float32'; got {dt!r}.")
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    base = rng.normal(size=(24, 3))
    y = base @ np.array([1.0, -1.0, 0.5])
    labels = np.arange(24) % 3
    modes = [
        dict(),  # scikit-learn's per-sample loop
        dict(shuffle="block"),
        dict(batch_size=4, optimizer="adam", average=True),
        dict(batch_size=4, batch_norm=True),
        dict(batch_size="full", n_jobs=2),
    ]
    for dt in dtypes:
        layouts = [np.ascontiguousarray(base, dtype=dt)]
        if fortran:
            layouts.append(np.asfortranarray(base, dtype=dt))
        if sparse:
            layouts.append(sp.csr_matrix(base.astype(dt)))
        for X in layouts:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for params in modes:
                    if sp.issparse(X) and params.get("batch_norm"):
                        continue
                    FastSGDRegressor(max_iter=2, tol=None, random_state=0,
                                     **params).fit(X, y)
                FastSGDClassifier(loss="log_loss", multi_class="multinomial",
                                  batch_size=4, max_iter=2, tol=None,
                                  random_state=0).fit(X, labels)
                if isinstance(X, np.ndarray) and X.flags.c_contiguous:
                    # shuffled epochs over large data: rows copied ahead, on one
                    # thread (one compiled loop) and on two
                    with gather_all():
                        for params in (dict(), dict(batch_size=4, optimizer="adam"),
                                       dict(n_jobs=2)):
                            FastSGDRegressor(max_iter=2, tol=None, random_state=0,
                                             **params).fit(X, y)
    report = [row for row in _jit.cache_report() if row["signatures"]]
    if report:
        report[0]["seconds"] = time.perf_counter() - t0
    if verbose:
        for row in report:
            where = row["cache_dir"] or "(in memory: no writable cache location)"
            print(f"{row['kernel']:45s} {row['signatures']:3d} signature(s)  "
                  f"{row['cache_hits']:3d} loaded  {row['cache_misses']:3d} compiled  "
                  f"{where}")
    return report
