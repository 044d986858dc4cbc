"""The training loop: per epoch, an order from the order provider, an epoch from the
executor, then one bookkeeping step.

:func:`plan` chooses how this fit runs its epochs (:mod:`fastgd._executors`) and in
which order it visits the rows (:mod:`fastgd._orders`); :func:`train` is the loop;
:func:`fit_epochs` puts the three together for one fit call, and
:func:`fit_output_groups` trains independent outputs in thread groups.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._bookkeeping import Bookkeeper, History
from ._executors.base import InPlace
from ._kernels.bundles import N_OUT
from ._executors.gathered import Gathered, worth_gathering
from ._executors.threaded import ThreadedBatches
from ._orders import (BlockShuffle, FullShuffle, SeedOrder, ShuffleAhead, StorageOrder,
                      row_bytes)

#: bytes of rows a thread sums per batch at least: handing a batch's rows to the threads
#: and collecting their sums costs a few hundred microseconds (thread wake-ups), which
#: smaller shares do not pay back (docs/performance-notes.md)
BYTES_PER_THREAD = 2**20


def row_threads(prog, X, n_train, n_threads):
    """Threads that share the rows of each batch of ``prog`` over ``n_train`` rows of
    ``X``: as many as get ``BYTES_PER_THREAD`` of them each, at most ``n_threads``; 1
    (no split) for per-sample SGD and batch norm (its statistics need one pass)."""
    if prog.plain or prog.batch_norm:
        return 1
    batch = n_train if prog.batch_size <= 0 else min(prog.batch_size, n_train)
    share = int(batch * row_bytes(X) // BYTES_PER_THREAD)
    return max(1, min(int(n_threads), share))


def train(state, executor, orders, book, rng, max_epochs):
    """Run epochs until ``max_epochs`` (counted in this call) or convergence; return
    the number of epochs run. Threads and buffers are released also when an epoch or
    a callback raises."""
    executor.start(state)
    try:
        while book.training(max_epochs):
            n = min(executor.epochs_per_call, max_epochs - book.epoch)
            ctl = book.control(state)
            order = orders.next(rng, more=book.epoch + n < max_epochs)
            if book.end(state, executor.run(state, order, ctl, n)):
                break
    finally:
        executor.close()
        orders.close()
    book.finish(state)
    return book.n_iter


def plan(prog, rows, train_idx, *, shuffle, shuffle_block=None, n_threads=1,
         backend=None):
    """``(executor, order provider)`` for a fit of ``prog`` on ``rows``
    (:class:`~fastgd._kernels.bundles.Rows`) over the rows ``train_idx``."""
    n_train = train_idx.shape[0]
    kprog = prog.kernel_program(rows.X, n_train, rows.cw.shape[0], rows.Y.shape[1])
    batch = kprog.batch_size
    # one batch holding every row: the order only changes rounding, and visiting rows
    # in a random order would cost random memory access for nothing
    shuffle = shuffle if batch < n_train else False
    if backend is not None:
        from ._executors.cuda import CudaEpochs

        return CudaEpochs(backend), SeedOrder(shuffle)
    # a batch is split over as many threads as get BYTES_PER_THREAD of it each, so that
    # many cores never make small batches slower than one
    split = row_threads(prog, rows.X, n_train, n_threads)
    if split > 1:
        executor = ThreadedBatches(rows, kprog, split)
    elif worth_gathering(rows.X, shuffle, n_threads, 1 if prog.plain else batch):
        executor = Gathered(rows, kprog, prog.plain, threads=n_threads)
    else:
        executor = InPlace(rows, kprog, prog.plain)
    if shuffle == "block":
        orders = BlockShuffle(train_idx, rows.X, shuffle_block)
    elif getattr(executor, "pool", None) is not None and isinstance(executor, Gathered):
        orders = ShuffleAhead(train_idx, executor.pool)
    elif shuffle:
        orders = FullShuffle(train_idx)
    else:
        orders = StorageOrder(train_idx)
    return executor, orders


def fit_epochs(state, prog, rows, train_idx, *, max_epochs, rng, shuffle,
               shuffle_block=None, n_threads=1, backend=None, **bookkeeping):
    """Train ``state`` for up to ``max_epochs`` epochs; return ``(n_iter, History)``.

    ``bookkeeping``: the :class:`~fastgd._bookkeeping.Bookkeeper`'s options (``tol``,
    ``n_iter_no_change``, ``score``, ``restore_best``, ``on_divergence``, ``hook``,
    ``progress``).
    """
    executor, orders = plan(prog, rows, train_idx, shuffle=shuffle,
                            shuffle_block=shuffle_block, n_threads=n_threads,
                            backend=backend)
    book = Bookkeeper(state, prog, train_idx.shape[0], **bookkeeping)
    n_iter = train(state, executor, orders, book, rng, max_epochs)
    return n_iter, book.history


def fit_output_groups(state, prog, rows, train_idx, *, n_jobs, rng, **kwargs):
    """:func:`fit_epochs` with the independent outputs split into ``n_jobs`` thread
    groups. Returns ``(n_iter, History, rng)``.

    Each group trains its outputs with its own copy of the shuffling stream, so the
    result is identical to one group (the kernels release the GIL). The multinomial
    model (one model) and batch norm (statistics shared by all outputs) run as one;
    batches of at least two ``BYTES_PER_THREAD`` share their rows between threads
    instead; the GPU runs every output at once. The groups are threads of this
    process whatever joblib backend is active around the fit: they write into this
    state's arrays.
    """
    n_out = state.n_outputs
    n_jobs = max(int(n_jobs), 1)
    on_device = kwargs.get("backend") is not None
    rows_split = (not on_device
                  and row_threads(prog, rows.X, train_idx.shape[0], n_jobs) > 1)
    n_groups = min(n_jobs, n_out)
    if (on_device or rows_split or n_groups == 1
            or prog.multinomial or prog.batch_norm or kwargs.get("score")
            or kwargs.get("hook") or kwargs.get("progress")):
        n_iter, history = fit_epochs(state, prog, rows, train_idx, rng=rng,
                                     n_threads=n_jobs, **kwargs)
        return n_iter, history, rng
    if prog.adaptive and state.adaptive_eta is None:
        state.adaptive_eta = prog.per_output(n_out).sched_sp[:, 0].copy()
    bounds = np.linspace(0, n_out, n_groups + 1).astype(int)
    groups = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        g_rng = np.random.default_rng()
        g_rng.bit_generator.state = rng.bit_generator.state
        g_rows = rows._replace(Y=np.ascontiguousarray(rows.Y[:, a:b]),
                               cw=np.ascontiguousarray(rows.cw[a:b]))
        groups.append((state.slice(a, b), g_rows, g_rng))
    with ThreadPoolExecutor(max_workers=n_groups) as pool:
        results = list(pool.map(
            lambda g: fit_epochs(g[0], prog, g[1], train_idx, rng=g[2], **kwargs),
            groups))
    state.merge([g[0] for g in groups])
    longest = int(np.argmax([r[0] for r in results]))
    sizes = [g[0].n_outputs for g in groups]
    return (results[longest][0], _merged_history(results, sizes, longest),
            groups[longest][2])


def _merged_history(results, sizes, longest):
    """The longest group's history with the other groups' loss and norm sums added
    (losses are sums over outputs; norms are averaged over all updates of the epoch)."""
    n_iter, history = results[longest]
    merged = History(**{k: list(v) for k, v in vars(history).items()})
    for e in range(n_iter):
        parts = []
        for (r_iter, r_hist), size in zip(results, sizes):
            if e < r_iter:
                parts.append(r_hist.stats[e])
                if r_hist is not history:
                    merged.loss[e] += r_hist.loss[e]
                    merged.norm_sum[e] += r_hist.norm_sum[e]
                    merged.n_updates[e] += r_hist.n_updates[e]
            else:
                parts.append(np.zeros((size, N_OUT)))
        merged.stats[e] = np.concatenate(parts)
    for _, r_hist in results:
        merged.warnings.extend(w for w in r_hist.warnings if w not in merged.warnings)
    return merged
