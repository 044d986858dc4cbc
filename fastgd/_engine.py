"""The epoch driver: allocates state, runs the compiled loops, applies scikit-learn's
convergence rules, records histories and turns kernel results into errors.

A kernel call runs one epoch for ``K`` outputs; everything that happens between epochs
(shuffling, convergence checks per output, validation scores, the ``"adaptive"`` rate,
histories, printing) happens here in Python, where it costs microseconds per epoch.
Independent outputs (one-vs-rest classes, multi-output regression targets) converge
and stop one by one, exactly as if each were trained alone; the multinomial model's
outputs form one model and stop together.
"""

import copy
import math
import time

import numpy as np

from ._kernels import cpu
from ._kernels import gather as gather_kernels
from ._kernels import rules as _r
from ._kernels.cpu import NO_LOOKAHEAD
from ._kernels.shuffle import block_order, draw_permutation
from ._gather import Gatherer, PermutationAhead, row_bytes, worth_gathering
from ._warnings import warn

OVERFLOW_MESSAGE = (
    "Floating-point under-/overflow occurred at epoch #{epoch}. Scaling input data "
    "with StandardScaler or MinMaxScaler might help; so may a smaller learning rate "
    "(eta0), gradient clipping (clip_norm=...) or batch_norm=True."
)


def new_state(n_outputs, n_features, prog, coef_init=None, intercept_init=None):
    """Fresh training state (all float64) for ``K`` outputs of ``d`` weights + intercept."""
    k, d = n_outputs, n_features
    theta = np.zeros((k, d + 1), dtype=np.float64)
    if coef_init is not None:
        theta[:, :d] = coef_init
    if intercept_init is not None:
        theta[:, d] = intercept_init
    state = {
        "theta": theta,
        "avg": np.zeros((k, d + 1), dtype=np.float64),
        "q": np.zeros((k, d), dtype=np.float64),
        "sc": np.zeros((k, cpu.N_PLAIN_SCALARS), dtype=np.float64),
        "bn_mean": np.zeros(d, dtype=np.float64),
        "bn_var": np.ones(d, dtype=np.float64),
        "updates": np.zeros(k, dtype=np.float64),
        "epochs": 0,
        "eta": None,
        "rng": None,
        "scaled": False,
    }
    reset_optimizer(state, prog)
    return state


def reset_optimizer(state, prog):
    """(Re)initialize the optimizer's state for ``prog``'s optimizer."""
    k, d1 = state["theta"].shape
    # only the rows this optimizer uses (plain SGD keeps one unused row)
    opt_state = np.zeros((k, _r.STATE_ROWS[prog.opt_code], d1), dtype=np.float64)
    if prog.opt_code == _r.OPT_ADAGRAD:
        opt_state[:, 0, :] = prog.opt_hp[3]
    state["opt_state"] = opt_state
    state["step"] = np.zeros(k, dtype=np.int64)
    state["opt_code"] = int(prog.opt_code)


def visible_params(state, prog):
    """The model as reported: (coef (K, d), intercept (K,)) on the raw features.

    Averaged parameters once ``average`` updates were made, batch norm folded in.
    """
    theta, avg = unscaled_copies(state)
    use_avg = (prog.average > 0.0) & (prog.average <= state["updates"])
    src = np.where(use_avg[:, None], avg, theta)
    return _fold_batch_norm(src[:, :-1].copy(), src[:, -1].copy(), state, prog)


def _fold_batch_norm(w, b, state, prog):
    """Express a model on normalized inputs as one on the raw inputs (eval mode)."""
    if not prog.batch_norm:
        return w, b
    w = w / np.sqrt(state["bn_var"] + prog.bn_eps)
    return w, b - w @ state["bn_mean"]


def _finalize_into(theta, avg, sc):
    """Fold the per-sample path's scale factors into ``theta``/``avg`` (and ``sc``)."""
    d = theta.shape[1] - 1
    w = np.ascontiguousarray(theta[:, :d])
    aw = np.ascontiguousarray(avg[:, :d])
    cpu.finalize_plain(w, aw, sc)
    theta[:, :d] = w
    avg[:, :d] = aw
    theta[:, d] = sc[:, cpu.S_INTERCEPT]
    avg[:, d] = sc[:, cpu.S_AVG_INTERCEPT]


def unscaled_copies(state):
    """``(theta, avg)`` as plain float64 arrays, whatever representation is live."""
    theta = state["theta"].copy()
    avg = state["avg"].copy()
    if state["scaled"]:
        _finalize_into(theta, avg, state["sc"].copy())
    return theta, avg


def unscale(state):
    """Leave the scaled (per-sample) representation in place, e.g. before a batch run."""
    if state["scaled"]:
        _finalize_into(state["theta"], state["avg"], state["sc"])
        state["scaled"] = False


def current_params(state, prog):
    """The current (non-averaged) iterate (coef (K, d), intercept (K,)) on raw features.

    scikit-learn's per-sample SGD scores its validation set with the weight array
    *without* its running scale factor, so its scores (and stopping epochs) are off
    whenever L2 shrinkage is on; fastgd scores the true current weights.
    """
    theta = state["theta"]
    if state["scaled"]:
        sc = state["sc"]
        w = theta[:, :-1] * sc[:, cpu.S_WSCALE][:, None]
        return w, sc[:, cpu.S_INTERCEPT].copy()
    return _fold_batch_norm(theta[:, :-1], theta[:, -1].copy(), state, prog)


class History:
    """Per-epoch records of one fit call."""

    def __init__(self):
        self.loss = []
        self.lr = []
        self.norm_sum = []  # sum of pre-clip norms over the epoch's updates
        self.n_updates = []
        self.val = []
        self.time = []  # seconds since the start of the fit call, at each epoch's end
        self.samples = []  # training rows visited since the start of the call
        self.objective = []  # (K,) objective sums of each epoch (fastgd.dask sums them)
        # (message, category) of the warnings of the run: the caller warns, from the
        # user's thread (an output group runs on a worker thread)
        self.warnings = []

    def __setstate__(self, saved):
        # a history pickled (in a checkpoint) before ``warnings`` existed
        self.__dict__.update(saved)
        self.__dict__.setdefault("warnings", [])

    @property
    def grad_norm(self):
        return [float(s / max(n, 1.0)) for s, n in zip(self.norm_sum, self.n_updates)]


def run(state, prog, X, Y, sw, cw, train_idx, *, max_epochs, tol, n_iter_no_change,
        shuffle, rng, score=None, restore_best=False, epoch_hook=None,
        shuffle_block=None, n_threads=1, progress=None, on_divergence="raise",
        backend=None):
    """Train for up to ``max_epochs`` epochs; return ``(n_epochs_run, History)``.

    ``X`` is a dense array or a CSR tuple, ``Y`` the (n, K) targets, ``cw`` the (K, 2)
    positive/negative class weights. ``score`` is ``None`` or a callable
    ``score(coef, intercept) -> (K,) scores`` on held-out data (early stopping).
    ``epoch_hook(epoch, hist, state)`` runs after every epoch (callbacks, progress
    display); training stops when it returns True. With ``n_threads > 1`` the gradient
    of every full batch, and of every minibatch of at least ``THREAD_MIN_BATCH`` rows,
    is summed over that many contiguous row ranges in parallel threads, then added in
    range order: deterministic for a given thread count (the sum's rounding depends on
    it). Batch norm always runs on one thread. Shuffled epochs of smaller batches (and
    per-sample epochs) over data larger than the caches train from chunks of rows
    copied in epoch order (:mod:`fastgd._gather`); with ``n_threads > 1`` a second
    thread copies the next chunk meanwhile. Either way the weights are bit-identical
    (the loss sums to rounding).

    While it runs, ``state["progress"]`` holds what the convergence rules remember
    between epochs (epochs done, active outputs, best objective/score, epochs without
    improvement, the best weights, the history), so a snapshot taken by a callback can
    resume the interrupted call: passing that dict back as ``progress`` continues at
    the next epoch exactly as the uninterrupted run would. It is removed at the end.

    ``backend`` (batch modes only) runs the epochs instead of the CPU loop, e.g. a
    :class:`fastgd._kernels.cuda.CudaBackend` holding device copies of the data; it
    gets a seed per epoch (None: rows in order) instead of an order, and copies the
    state back into ``state`` at every epoch's end.

    Raises the scikit-learn overflow ``ValueError`` if parameters become non-finite;
    with ``on_divergence="restore"`` it instead puts back the parameters (and optimizer
    state) from before the diverging epoch, warns, and stops.
    """
    n_out, d1 = state["theta"].shape
    d = d1 - 1
    theta = state["theta"]
    avg = state["avg"]
    out = np.zeros((n_out, 6), dtype=np.float64)
    hist = History()
    n_train = train_idx.shape[0]
    tol_v = -math.inf if tol is None else float(tol)
    if prog.adaptive and state["eta"] is None:
        state["eta"] = np.full(n_out, float(prog.sched_sp[0]))
    eta_fixed = np.zeros(n_out, dtype=np.float64)
    sp = prog.sched_sp
    batch = prog.batch_size if prog.batch_size > 0 else max(n_train, 1)
    is_dense = isinstance(X, np.ndarray)

    if prog.plain:
        sc = state["sc"]
        if not state["scaled"]:
            # scikit-learn's WeightVector set-up: unit scale, exact norms
            w0 = theta[:, :d]
            sc[:, cpu.S_INTERCEPT] = theta[:, d]
            sc[:, cpu.S_WSCALE] = 1.0
            sc[:, cpu.S_SQNORM] = np.einsum("kj,kj->k", w0, w0)
            sc[:, cpu.S_L1NORM] = np.abs(w0).sum(axis=1)
            sc[:, cpu.S_AVG_A] = 0.0
            sc[:, cpu.S_AVG_B] = 1.0
            sc[:, cpu.S_AVG_INTERCEPT] = avg[:, d]
            state["plain_w"] = np.ascontiguousarray(theta[:, :d])
            state["plain_aw"] = np.ascontiguousarray(avg[:, :d])
            state["scaled"] = True
        W = state["plain_w"]
        AW = state["plain_aw"]
        dtype = X.dtype if is_dense else X[0].dtype
        wscale_threshold = 1e-9 if dtype == np.float64 else 1e-6
        intercept_decay = 1.0 if is_dense else 0.01  # scikit-learn's sparse decay
        T = state["updates"] + 1.0
    else:
        unscale(state)
        G = np.zeros((n_out, d1), dtype=np.float64)
        mu = np.zeros(d1, dtype=np.float64)
        inv_sd = np.zeros(d1, dtype=np.float64)
        weff = np.zeros((n_out, d1), dtype=np.float64)
        beff = np.zeros(n_out, dtype=np.float64)
        P = np.zeros(n_out, dtype=np.float64)
        T = state["updates"]

    if backend is not None:
        backend.start(state)  # the state is final (unscaled) here: uploaded once

    # one batch holding every row: the order only changes rounding, and visiting rows
    # in a random order would cost random memory access for nothing
    shuffle = shuffle if batch < n_train else False
    if shuffle == "block":
        block_rows = int(shuffle_block) if shuffle_block else _auto_block_rows(X)
        order_buf = np.empty(n_train, dtype=np.int64)
        # a larger block would be evicted from the caches between its prefetch and
        # its rows' turn: such blocks prefetch a few rows ahead in their order, and so
        # does CSR (its per-sample epochs wait on the scattered weights more than on
        # the rows: 231-264 against 242-357 ms per 1M x 100k epoch streamed)
        streamed = (isinstance(X, np.ndarray) and X.flags.c_contiguous
                    and block_rows * row_bytes(X) <= STREAM_MAX_BLOCK_BYTES)
        lookahead_buf = np.empty(n_train if streamed else 0, dtype=np.int64)
    pool = None
    full = batch >= n_train
    if (n_threads > 1 and not prog.plain and not prog.batch_norm and backend is None
            and (n_train >= 2 * n_threads if full else batch >= THREAD_MIN_BATCH)):
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=n_threads)
        parts = [(np.zeros((n_out, d1)), np.zeros((n_out, 6)), np.zeros(n_out))
                 for _ in range(n_threads)]
    joint = prog.multinomial

    def train_args():
        """The epoch kernel's arguments after ``X, Y, sw, cw, order``."""
        if prog.plain:
            return (W, AW, state["q"], sc, T, active,
                    prog.fit_intercept, intercept_decay, prog.loss_code, prog.loss_eps,
                    prog.penalty, prog.alpha, prog.l1_ratio, prog.average,
                    prog.sched_code, sp, prog.sched_unit, float(state["epochs"]),
                    eta_fixed, wscale_threshold, out)
        return (batch, theta, active, prog.fit_intercept,
                prog.loss_code, prog.loss_eps, joint, prog.alpha_l2, prog.alpha_l1,
                prog.clip_value, prog.clip_norm,
                prog.opt_code, prog.opt_hp, state["opt_state"], state["step"],
                prog.sched_code, sp, prog.sched_unit, T, float(state["epochs"]),
                eta_fixed, prog.average, avg,
                prog.batch_norm, prog.bn_momentum, prog.bn_eps,
                state["bn_mean"], state["bn_var"], G, mu, inv_sd, weff, beff, P, out)

    epoch_kernel = cpu.epoch_plain if prog.plain else cpu.epoch_batch

    def train_rows(X, Y, sw, order, lookahead=NO_LOOKAHEAD):
        """Run the epoch's loop over ``order`` (all of it, or one gathered chunk)."""
        epoch_kernel(X, Y, sw, cw, order, lookahead, *train_args())

    gatherer = ahead = None
    step_rows = 1 if prog.plain else batch
    if (pool is None and backend is None
            and worth_gathering(X, shuffle, n_threads, step_rows)):
        gatherer = Gatherer(X, Y, sw, multiple=step_rows, threads=n_threads,
                            one_thread=(gather_kernels.gathered_epoch_plain if prog.plain
                                        else gather_kernels.gathered_epoch_batch))
        if gatherer.pool is not None:
            ahead = PermutationAhead(gatherer.pool)
    active = np.ones(n_out, dtype=np.bool_)
    best_obj = np.full(n_out, math.inf)
    best_score = np.full(n_out, -math.inf)
    no_improve = np.zeros(n_out, dtype=np.int64)
    best_snapshot = None
    epoch0 = 0
    t_start = time.perf_counter()
    if progress is not None:
        epoch0 = int(progress["epoch"])
        hist = copy.deepcopy(progress["hist"])
        active[:] = progress["active"]
        best_obj[:] = progress["best_obj"]
        best_score[:] = progress["best_score"]
        no_improve[:] = progress["no_improve"]
        best_snapshot = copy.deepcopy(progress["best_snapshot"])
        t_start -= hist.time[-1] if hist.time else 0.0
    epoch_run = epoch0
    # a snapshot of the converged last epoch resumes to nothing left to run
    last = max_epochs if active.any() else epoch0
    # worker threads end with the run, also when a divergence or a callback raises
    try:
        for epoch in range(epoch0, last):
            if on_divergence == "restore":
                before = _live_copy(state)
            epoch_run = epoch + 1
            lookahead = NO_LOOKAHEAD
            if backend is not None:
                # the device computes its order from one integer (a counter-based
                # shuffle)
                order = int(rng.integers(0, 2**63)) if shuffle else None
            elif shuffle == "block":
                seed = int(rng.integers(0, 2**63))
                order = block_order(train_idx, block_rows, seed, order_buf,
                                    lookahead_buf)
                lookahead = lookahead_buf  # empty when not streamed
            elif ahead is not None:
                order = ahead.permutation(rng, train_idx, draw_next=epoch + 1 < last)
            elif shuffle:
                order = draw_permutation(rng, train_idx)
            else:
                order = train_idx
            if prog.adaptive:
                eta_fixed[:] = state["eta"]
            out[...] = 0.0
            if backend is not None:
                backend.epoch(state, order, active, eta_fixed, float(state["epochs"]),
                              out)
            elif pool is not None:
                _batch_threads(pool, parts, X, Y, sw, cw, order, lookahead, batch,
                               state, prog, active, T, float(state["epochs"]),
                               eta_fixed, G, out)
            elif gatherer is not None:
                gatherer.epoch(order, train_rows, cw, train_args())
            else:
                train_rows(X, Y, sw, order, lookahead)
            if prog.plain:
                state["updates"][:] = T - 1.0
                state["step"][:] = (T - 1.0).astype(np.int64)
                # the loop works on contiguous copies; theta/avg hold them (still
                # scaled) between epochs, for scores, snapshots, callbacks and the
                # caller (AW only moves with averaging: without it the copy would be
                # O(d) per epoch for nothing, which shows on wide sparse data)
                theta[:, :d] = W
                if prog.average > 0.0:
                    avg[:, :d] = AW
                finite = bool(np.isfinite(sc[:, cpu.S_INTERCEPT]).all()
                              and np.isfinite(W).all())
            else:
                finite = bool(np.isfinite(theta).all())
            state["epochs"] += 1
            rows = [0] if joint else np.flatnonzero(active)
            # an overflowing loss means overflowing predictions, an infinite gradient
            # norm an overflowing gradient (clipping would hide it), an infinite
            # optimizer buffer (Adam's second moment, AdaGrad's sum) an optimizer that
            # stopped moving, and an infinite batch variance a feature normalized to
            # nothing: divergence, even while the weights themselves are still finite
            if (not finite or not np.isfinite(out[rows, 0]).all()
                    or not np.isfinite(out[rows, 3]).all()
                    or (not prog.plain and not np.isfinite(state["opt_state"]).all())
                    or (prog.batch_norm and not np.isfinite(state["bn_var"]).all())):
                if on_divergence != "restore":
                    raise ValueError(OVERFLOW_MESSAGE.format(epoch=epoch + 1))
                _live_restore(state, before)
                hist.warnings.append((
                    OVERFLOW_MESSAGE.format(epoch=epoch + 1)
                    + " on_divergence='restore': keeping the parameters from before "
                    f"epoch #{epoch + 1} and stopping.",
                    DivergenceWarning,
                ))
                epoch_run = epoch
                break

            wsum = out[rows, 2].sum() / max(len(rows), 1)
            hist.time.append(time.perf_counter() - t_start)
            hist.samples.append(float(n_train * (epoch + 1)))
            hist.loss.append(float(out[rows, 1].sum() / wsum) if wsum > 0 else 0.0)
            hist.lr.append(float(out[rows[0], 4]) if len(rows) else 0.0)
            hist.norm_sum.append(float(out[rows, 3].sum()))
            hist.n_updates.append(float(out[rows, 5].sum()))
            hist.objective.append(out[:, 0].copy())
            objective = out[:, 0] / max(n_train, 1)
            if joint:
                objective[:] = objective[0]

            if score is not None:
                wv, bv = current_params(state, prog)
                with np.errstate(all="ignore"):
                    scores = np.asarray(score(wv, bv), dtype=np.float64)
                hist.val.append(float(scores.mean()))
                improved = scores > best_score
                worse = (scores < best_score + tol_v) if tol_v > -math.inf else \
                    np.zeros(n_out, dtype=bool)
                best_score = np.maximum(best_score, scores)
            else:
                improved = objective < best_obj
                worse = (objective > best_obj - tol_v) if tol_v > -math.inf else \
                    np.zeros(n_out, dtype=bool)
                best_obj = np.minimum(best_obj, objective)
            no_improve = np.where(worse & active, no_improve + 1, 0)
            if restore_best and improved[active].any():
                best_snapshot = _snapshot(state, best_snapshot, improved & active)
            for k in np.flatnonzero(active & (no_improve >= n_iter_no_change)):
                if prog.adaptive and state["eta"][k] > 1e-6:
                    state["eta"][k] = state["eta"][k] / 5.0
                    no_improve[k] = 0
                else:
                    active[k] = False
            state["progress"] = {
                "epoch": epoch + 1, "active": active.copy(),
                "best_obj": best_obj.copy(), "best_score": best_score.copy(),
                "no_improve": no_improve.copy(), "best_snapshot": best_snapshot,
                "hist": hist,
            }
            stop = epoch_hook is not None and bool(epoch_hook(epoch, hist, state))
            if stop or not active.any():
                break
    finally:
        if pool is not None:
            pool.shutdown()
        if gatherer is not None:
            gatherer.close()
    state.pop("progress", None)
    if restore_best and best_snapshot is not None:
        _restore(state, best_snapshot)
    return epoch_run, hist


class DivergenceWarning(RuntimeWarning):
    """Training diverged.

    Either the parameters stopped being finite and ``on_divergence="restore"`` kept
    the last finite ones, or the fit ran away without overflowing: its training
    objective ended far above where it started, or rose for several epochs in a row
    (the rule is in :mod:`fastgd._divergence` and on the documentation's Reliability
    page). The message names the epochs and suggests remedies.
    """


def _live_copy(state):
    """Copies of the arrays an epoch changes (cheap: O(outputs x features))."""
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()
            if k not in ("rng", "progress")}


def _live_restore(state, saved):
    # in place: the epoch loop holds references to these arrays
    for k, v in saved.items():
        if isinstance(v, np.ndarray) and isinstance(state.get(k), np.ndarray):
            state[k][...] = v
        else:
            state[k] = v


#: the smallest batch (rows) whose gradient is split over threads: below it, handing
#: a batch to the threads (tens of microseconds) costs more than the second thread saves
THREAD_MIN_BATCH = 4096


def _batch_threads(pool, parts, X, Y, sw, cw, order, lookahead, batch, state, prog,
                   active, T, epoch, eta_fixed, G, out):
    """One epoch whose batch gradients are each split over threads (no batch norm).

    Each batch's rows are cut into ``len(parts)`` contiguous ranges whose gradient sums
    run in parallel (``batch_grad`` releases the GIL), then are added in range order
    and one ``batch_step`` is made: deterministic for a given thread count, equal to
    the one-thread loop up to the rounding of the sum.
    """
    theta = state["theta"]
    n_threads = len(parts)
    n_rows = order.shape[0]
    unused = np.zeros(1)
    for start in range(0, n_rows, batch):
        stop = min(start + batch, n_rows)
        bounds = np.linspace(start, stop, n_threads + 1).astype(np.int64).tolist()
        # the weights are only read until every thread is done
        beff = theta[:, -1].copy()

        def work(c, bounds=bounds, beff=beff):
            g, o, p = parts[c]
            g[...] = 0.0
            o[...] = 0.0
            cpu.batch_grad(X, Y, sw, cw, order, lookahead, bounds[c], bounds[c + 1],
                           active, prog.loss_code, prog.loss_eps, prog.multinomial,
                           theta, beff, p, g, o)

        # the calling thread takes the first range itself: one hand-off fewer
        futures = [pool.submit(work, c) for c in range(1, n_threads)]
        work(0)
        for f in futures:
            f.result()
        G[...] = 0.0
        for g, o, _ in parts:  # fixed order: the same result for the same thread count
            G += g
            out[:, :3] += o[:, :3]
        cpu.batch_step(G, stop - start, theta, active, prog.fit_intercept,
                       prog.multinomial, prog.alpha_l2, prog.alpha_l1, prog.clip_value,
                       prog.clip_norm, prog.opt_code, prog.opt_hp, state["opt_state"],
                       state["step"], prog.sched_code, prog.sched_sp, prog.sched_unit, T,
                       epoch, eta_fixed, prog.average, state["avg"], False, unused,
                       unused, out)


def run_parallel(state, prog, X, Y, sw, cw, train_idx, *, n_jobs, rng, **kwargs):
    """:func:`run` with the independent outputs split into ``n_jobs`` thread groups.

    Each group trains its outputs with its own copy of the shuffling stream, so the
    result is identical to one group (the kernels release the GIL). The multinomial
    model (one model) and batch norm (statistics shared by all outputs) run as one.
    Returns ``(n_epochs_run, History, rng)``.
    """
    n_out = state["theta"].shape[0]
    n_jobs = max(int(n_jobs), 1)
    if kwargs.get("backend") is not None:
        # the device runs every output and row at once: no thread groups
        n_iter, hist = run(state, prog, X, Y, sw, cw, train_idx, rng=rng, **kwargs)
        return n_iter, hist, rng
    if not prog.plain and (prog.batch_size == 0 or prog.batch_size >= THREAD_MIN_BATCH):
        # full batch and large minibatches: threads share the rows of every batch
        # instead of the outputs
        n_iter, hist = run(state, prog, X, Y, sw, cw, train_idx, rng=rng,
                           n_threads=n_jobs, **kwargs)
        return n_iter, hist, rng
    n_groups = min(n_jobs, n_out)
    if (n_groups == 1 or prog.multinomial or prog.batch_norm or kwargs.get("score")
            or kwargs.get("epoch_hook") or kwargs.get("progress")):
        # one group: the second thread copies the rows of shuffled epochs ahead
        n_iter, hist = run(state, prog, X, Y, sw, cw, train_idx, rng=rng,
                           n_threads=n_jobs, **kwargs)
        return n_iter, hist, rng
    if prog.adaptive and state["eta"] is None:
        state["eta"] = np.full(n_out, float(prog.sched_sp[0]))
    bounds = np.linspace(0, n_out, n_groups + 1).astype(int)
    per_output = ("theta", "avg", "q", "sc", "updates", "opt_state", "step", "eta")
    subs = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sub = dict(state)
        for key in per_output:
            if sub.get(key) is not None:
                sub[key] = state[key][a:b]
        if state["scaled"]:
            sub["plain_w"] = state["plain_w"][a:b]
            sub["plain_aw"] = state["plain_aw"][a:b]
        g_rng = np.random.default_rng()
        g_rng.bit_generator.state = rng.bit_generator.state
        subs.append((sub, np.ascontiguousarray(Y[:, a:b]), np.ascontiguousarray(cw[a:b]),
                     g_rng))
    results = _run_groups(subs, prog, X, sw, train_idx, kwargs)
    longest = int(np.argmax([r[0] for r in results]))
    n_iter, hist = results[longest]
    state["epochs"] = subs[longest][0]["epochs"]
    state["scaled"] = subs[0][0]["scaled"]
    if state["scaled"]:
        d = state["q"].shape[1]
        state["plain_w"] = np.ascontiguousarray(state["theta"][:, :d])
        state["plain_aw"] = np.ascontiguousarray(state["avg"][:, :d])
    # histories of independent outputs add up across groups (the losses are sums over
    # outputs; norms are averaged over all updates of the epoch)
    for r_iter, r_hist in results:
        if r_hist is hist:
            continue
        for e in range(r_iter):
            hist.loss[e] += r_hist.loss[e]
            hist.norm_sum[e] += r_hist.norm_sum[e]
            hist.n_updates[e] += r_hist.n_updates[e]
        hist.warnings.extend(w for w in r_hist.warnings if w not in hist.warnings)
    return n_iter, hist, subs[longest][3]


def _run_groups(subs, prog, X, sw, train_idx, kwargs):
    """:func:`run` of every output group, each on a thread of this process.

    Threads, never a joblib backend: the groups write into ``state``'s arrays in place,
    and an enclosing ``joblib.parallel_backend("loky")`` (or a Dask one) would run them
    in other processes, where those writes are lost.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(group):
        sub, y_g, cw_g, g_rng = group
        return run(sub, prog, X, y_g, sw, cw_g, train_idx, rng=g_rng, **kwargs)

    with ThreadPoolExecutor(max_workers=len(subs)) as pool:
        return list(pool.map(one, subs))


#: the largest block (bytes of X) whose rows are prefetched as the block before it
#: trains (``block_order``'s ``lookahead``). Measured on 1M x 100 float64, one thread
#: (ms per epoch, per-sample / minibatch 256, streamed against a prefetch 8 rows ahead
#: in the order): 256 KiB blocks 74-92 / 54-60 against 81-96 / 70-74; 1 MiB blocks
#: 93-98 / 65-68 against 83-88 / 71-72; 8 MiB blocks 204-211 / 133-135 against
#: 88-92 / 77.
STREAM_MAX_BLOCK_BYTES = 2**19


def _auto_block_rows(X):
    """Rows per block so that a block holds about 256 KiB of X (fits in L2)."""
    return max(16, int(2**18 // max(row_bytes(X), 1)))


def _snapshot(state, prev, which):
    """Remember the current parameters of the outputs in ``which``."""
    theta, avg = unscaled_copies(state)
    if prev is None:
        prev = {"theta": theta.copy(), "avg": avg.copy(),
                "bn_mean": state["bn_mean"].copy(), "bn_var": state["bn_var"].copy(),
                "q": state["q"].copy(), "l1_u": state["sc"][:, cpu.S_U].copy()}
    prev["theta"][which] = theta[which]
    prev["avg"][which] = avg[which]
    prev["q"][which] = state["q"][which]
    prev["l1_u"][which] = state["sc"][which, cpu.S_U]
    prev["bn_mean"][:] = state["bn_mean"]
    prev["bn_var"][:] = state["bn_var"]
    return prev


def _restore(state, snap):
    state["theta"][...] = snap["theta"]
    state["avg"][...] = snap["avg"]
    state["bn_mean"][...] = snap["bn_mean"]
    state["bn_var"][...] = snap["bn_var"]
    state["q"][...] = snap["q"]
    state["sc"][:, cpu.S_U] = snap["l1_u"]
    state["scaled"] = False


def epoch_line(epoch, hist, state, prog, early):
    """scikit-learn-style report of one epoch (``verbose >= 2``)."""
    w, b = visible_params(state, prog)
    msg = (f"-- Epoch {epoch + 1}\nNorm: {np.linalg.norm(w):.2f}, NNZs: "
           f"{int(np.count_nonzero(w))}, Bias: {float(np.mean(b)):.6f}, "
           f"T: {int(state['updates'].max())}, Avg. loss: {hist.loss[-1]:.6f}, "
           f"lr: {hist.lr[-1]:.3g}")
    if early:
        msg += f", Validation score: {hist.val[-1]:.6f}"
    return msg


def warn_if_not_converged(n_iter, max_iter, tol):
    """scikit-learn's ``ConvergenceWarning``, pointing at the user's call."""
    from sklearn.exceptions import ConvergenceWarning

    if tol is not None and n_iter == max_iter:
        warn(
            "Maximum number of iteration reached before convergence. Consider "
            "increasing max_iter to improve the fit.",
            ConvergenceWarning,
        )
