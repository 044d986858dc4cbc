"""What happens between two epochs, for every way of running them.

:class:`Bookkeeper` is the one place that, after an epoch (or a round of epochs run
together, as Dask's local SGD does), tests for divergence, records the histories,
applies scikit-learn's stopping rule with ``tol`` and ``n_iter_no_change`` (or
early stopping on a validation score), lowers the ``"adaptive"`` rate, keeps the best
weights for ``restore_best_weights``, stores the resumable :class:`Progress` and calls
the estimator's hook (callbacks, progress bar, per-epoch lines). The in-process loop,
the GPU backend and both Dask strategies all use it, so they cannot drift apart.

Independent outputs (one-vs-rest classes, multi-output regression targets) converge
and stop one by one, exactly as if each were trained alone; the multinomial model's
outputs form one model and stop together.
"""

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ._warnings import warn
from ._kernels.bundles import (N_OUT, OUT_LOSS, OUT_LR, OUT_NORM, OUT_OBJECTIVE,
                               OUT_UPDATES, OUT_WEIGHT, S_INTERCEPT, S_U,
                               epoch_control)

OVERFLOW_MESSAGE = (
    "Floating-point under-/overflow occurred at epoch #{epoch}. Scaling input data "
    "with StandardScaler or MinMaxScaler might help; so may a smaller learning rate "
    "(eta0), gradient clipping (clip_norm=...) or batch_norm=True."
)


class DivergenceWarning(RuntimeWarning):
    """Training diverged.

    Either the parameters stopped being finite and ``on_divergence="restore"`` kept
    the last finite ones, or the fit ran away without overflowing: its training
    objective ended far above where it started, or rose for several epochs in a row
    (the rule is in :mod:`fastgd._divergence` and on the documentation's Reliability
    page). The message names the epochs and suggests remedies.
    """


@dataclass
class History:
    """Per-epoch records of one fit call (the estimator's ``*_curve_`` attributes).

    ``stats`` keeps each epoch's raw (K, N_OUT) statistics, which Dask adds up across
    replicas.
    """

    loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    norm_sum: list = field(default_factory=list)  # sum of pre-clip norms of the updates
    n_updates: list = field(default_factory=list)
    val: list = field(default_factory=list)
    time: list = field(default_factory=list)  # seconds since the call started
    samples: list = field(default_factory=list)  # training rows visited since then
    stats: list = field(default_factory=list)
    active: list = field(default_factory=list)  # (K,) outputs that trained each epoch
    val_scores: list = field(default_factory=list)  # (K,) validation scores per epoch
    # (K,) epoch at which each output diverged and stopped (0: never), with
    # on_divergence="drop"
    diverged: np.ndarray = None
    # (message, category) of the run's warnings: the estimator issues them from the
    # user's thread (an output group runs on a worker thread)
    warnings: list = field(default_factory=list)

    @property
    def grad_norm(self):
        return [float(s / max(n, 1.0)) for s, n in zip(self.norm_sum, self.n_updates)]


@dataclass
class BestWeights:
    """The parameters of the best epoch so far, per output (``restore_best_weights``)."""

    theta: np.ndarray
    avg: np.ndarray
    l1_ledger: np.ndarray
    l1_u: np.ndarray
    bn_mean: np.ndarray
    bn_var: np.ndarray

    @classmethod
    def take(cls, state, previous, which):
        """Remember the current parameters of the outputs in ``which``."""
        theta, avg = state.unscaled_copies()
        best = previous or cls(theta.copy(), avg.copy(), state.l1_ledger.copy(),
                               state.plain_scalars[:, S_U].copy(), state.bn_mean.copy(),
                               state.bn_var.copy())
        best.theta[which] = theta[which]
        best.avg[which] = avg[which]
        best.l1_ledger[which] = state.l1_ledger[which]
        best.l1_u[which] = state.plain_scalars[which, S_U]
        best.bn_mean[:] = state.bn_mean
        best.bn_var[:] = state.bn_var
        return best

    def restore_into(self, state):
        state.scaled = None
        state.theta[...] = self.theta
        state.avg[...] = self.avg
        state.bn_mean[...] = self.bn_mean
        state.bn_var[...] = self.bn_var
        state.l1_ledger[...] = self.l1_ledger
        state.plain_scalars[:, S_U] = self.l1_u


@dataclass
class Progress:
    """What the convergence rules remember between epochs; held in
    ``TrainState.progress`` while a fit runs, so that a snapshot resumes exactly."""

    epoch: int
    active: np.ndarray
    best_objective: np.ndarray
    best_score: np.ndarray
    no_improve: np.ndarray
    best: BestWeights
    history: History


class Bookkeeper:
    """Everything between epochs of one fit call (see the module notes).

    Parameters
    ----------
    state : TrainState
    prog : Program
    n_train : int
        Training rows (objectives are means over them).
    n_train : int or ndarray of shape (K,)
        Training rows (objectives are means over them).
    tol, n_iter_no_change : scikit-learn's stopping rule (``tol=None``: off); scalars,
        or arrays of one value per output (several models in one pass; NaN: off)
    score : callable or None
        ``score(coef, intercept) -> (K,)`` validation scores (early stopping).
    restore_best : bool
    on_divergence : {"raise", "restore", "drop"}
        ``"drop"``: an output (a joint model's outputs together) that diverges gets
        the parameters it had before the epoch and stops; the others go on
        (:attr:`diverged` records the epoch).
    hook : callable or None
        ``hook(epoch, history, state) -> stop`` after every epoch (or round).
    progress : Progress or None
        Continue an interrupted call.
    joint : int or None
        Outputs per joint (multinomial) model, which converge and stop together; None:
        every output when ``prog.multinomial``, else independent outputs.
    """

    def __init__(self, state, prog, n_train, *, tol=None, n_iter_no_change=5,
                 score=None, restore_best=False, on_divergence="raise", hook=None,
                 progress=None, joint=None):
        k = state.n_outputs
        self.prog = prog
        self.n_train = n_train
        tol = np.full(k, -math.inf) if tol is None else np.asarray(tol, dtype=np.float64)
        self.tol = np.broadcast_to(np.where(np.isnan(tol), -math.inf, tol), (k,))
        self.n_iter_no_change = n_iter_no_change
        self.joint = (k if joint is None else int(joint)) if prog.multinomial else 1
        self.diverged = np.zeros(k, dtype=np.int64)  # epoch of an output's divergence
        self.score = score
        self.restore_best = restore_best
        self.on_divergence = on_divergence
        self.hook = hook
        if prog.adaptive and state.adaptive_eta is None:
            state.adaptive_eta = prog.per_output(k).sched_sp[:, 0].copy()
        self.eta_fixed = np.zeros(k, dtype=np.float64)
        self.before = None
        self.diverged_at = None
        self.t_start = time.perf_counter()
        if progress is None:
            progress = Progress(0, np.ones(k, dtype=np.bool_), np.full(k, math.inf),
                                np.full(k, -math.inf), np.zeros(k, dtype=np.int64), None,
                                History())
        else:
            progress = copy.deepcopy(progress)
            history = progress.history
            self.t_start -= history.time[-1] if history.time else 0.0
        self.p = progress

    # --------------------------------------------------------------- queries
    @property
    def epoch(self):
        """Epochs done in this call."""
        return self.p.epoch

    @property
    def history(self):
        return self.p.history

    @property
    def active(self):
        return self.p.active

    def training(self, max_epochs):
        """Whether another epoch should run."""
        return self.diverged_at is None and self.p.epoch < max_epochs \
            and bool(self.p.active.any())

    # ----------------------------------------------------------- the epoch
    def control(self, state):
        """The :class:`~fastgd._kernels.bundles.EpochControl` of the next epoch."""
        if self.on_divergence in ("restore", "drop"):
            self.before = state.snapshot()
        # rates computed on the host override the kernels' schedule when > 0: the
        # "adaptive" rate, or a schedules.Lambda's value for this epoch
        if self.prog.adaptive:
            self.eta_fixed[:] = state.adaptive_eta
        elif self.prog.host_lr is not None:
            self.eta_fixed[:] = self.prog.host_lr(state.epochs)
        return epoch_control(self.p.active, self.eta_fixed, state.epochs)

    def end(self, state, stats):
        """After an epoch, or a round of epochs (``stats``: (n, K, N_OUT) or
        (K, N_OUT)): divergence, histories, stopping rule, progress, hook.
        Returns whether training stops."""
        stats = np.asarray(stats).reshape(-1, state.n_outputs, N_OUT)
        for out in stats:
            state.epochs += 1
            if self.on_divergence == "drop":
                self._drop_diverged(state, out)
            elif self._diverged(state, out):
                return True
            self._record(out)
        self._converge(state, stats[-1][:, OUT_OBJECTIVE])
        state.progress = Progress(self.p.epoch, self.p.active.copy(),
                                  self.p.best_objective.copy(), self.p.best_score.copy(),
                                  self.p.no_improve.copy(), self.p.best, self.p.history)
        stop = self.hook is not None and bool(self.hook(self.p.epoch - 1, self.history,
                                                        state))
        return stop or not self.p.active.any()

    def finish(self, state):
        """End of the call: forget the progress, go back to the best weights."""
        state.progress = None
        self.history.diverged = self.diverged.copy()
        if self.restore_best and self.p.best is not None:
            self.p.best.restore_into(state)

    # ------------------------------------------------------------- details
    def _rows(self):
        """The outputs whose statistics count: the active ones, a joint model's first
        output only."""
        rows = np.flatnonzero(self.p.active)
        if self.joint > 1:
            rows = rows[rows % self.joint == 0]
            if self.joint == self.p.active.shape[0] and not rows.size:
                rows = np.zeros(1, dtype=np.int64)  # one model: its statistics count
        return rows

    def _output_diverged(self, state, out):
        """(K,) outputs whose parameters, loss, gradient norm or optimizer state are
        not finite (a joint model's outputs together; batch norm's statistics are
        shared: all of them)."""
        k = state.n_outputs
        live = state.scaled.W if state.scaled is not None else state.theta
        bad = ~np.isfinite(live).all(axis=1)
        if state.scaled is not None:
            bad |= ~np.isfinite(state.plain_scalars[:, S_INTERCEPT])
        bad |= ~np.isfinite(out[:, OUT_OBJECTIVE]) | ~np.isfinite(out[:, OUT_NORM])
        if not self.prog.plain:
            bad |= ~np.isfinite(state.opt_state.reshape(k, -1)).all(axis=1)
        if self.prog.batch_norm and not np.isfinite(state.bn_var).all():
            bad[:] = True
        if self.joint > 1:
            bad = np.repeat(bad.reshape(-1, self.joint).any(axis=1), self.joint)
        return bad & self.p.active

    def _drop_diverged(self, state, out):
        """``on_divergence="drop"``: diverged outputs go back to their parameters from
        before the epoch and stop; their statistics of the epoch are zeroed."""
        bad = self._output_diverged(state, out)
        if bad.any():
            state.restore_outputs(self.before, bad)
            self.diverged[bad] = self.p.epoch + 1
            self.p.active[bad] = False
            out[bad] = 0.0

    def _diverged(self, state, out):
        """The overflow test; raises, or restores the state from before the epoch.

        An overflowing loss means overflowing predictions, an infinite gradient norm an
        overflowing gradient (clipping would hide it), an infinite optimizer buffer an
        optimizer that stopped moving, and an infinite batch variance a feature
        normalized to nothing: divergence, even while the weights are still finite.
        """
        rows = self._rows()
        prog = self.prog
        if (state.weights_finite() and np.isfinite(out[rows, OUT_OBJECTIVE]).all()
                and np.isfinite(out[rows, OUT_NORM]).all()
                and (prog.plain or np.isfinite(state.opt_state).all())
                and (not prog.batch_norm or np.isfinite(state.bn_var).all())):
            return False
        epoch = self.p.epoch + 1
        message = OVERFLOW_MESSAGE.format(epoch=epoch)
        if self.on_divergence != "restore":
            raise ValueError(message)
        state.restore(self.before)
        self.history.warnings.append((
            message + " on_divergence='restore': keeping the parameters from before "
            f"epoch #{epoch} and stopping.", DivergenceWarning))
        self.diverged_at = epoch
        return True

    def _record(self, out):
        h = self.p.history
        self.p.epoch += 1
        loss, lr, norm_sum, n_updates = summarize(out, self._rows())
        h.time.append(time.perf_counter() - self.t_start)
        h.samples.append(float(np.max(self.n_train) * self.p.epoch))
        h.loss.append(loss)
        h.lr.append(lr)
        h.norm_sum.append(norm_sum)
        h.n_updates.append(n_updates)
        h.stats.append(out.copy())
        h.active.append(self.p.active.copy())

    def _converge(self, state, objective_sum):
        """scikit-learn's rule: an output stops after ``n_iter_no_change`` epochs whose
        objective is not below ``best - tol`` (validation score not above
        ``best + tol``); the ``"adaptive"`` rate is divided by 5 instead while it is
        above 1e-6."""
        p = self.p
        k = state.n_outputs
        if self.score is not None:
            wv, bv = state.current_params(self.prog)
            with np.errstate(all="ignore"):
                scores = np.asarray(self.score(wv, bv), dtype=np.float64)
            p.history.val.append(float(scores.mean()))
            p.history.val_scores.append(scores.copy())
            improved = scores > p.best_score
            worse = (scores < p.best_score + self.tol) & (self.tol > -math.inf)
            p.best_score = np.maximum(p.best_score, scores)
        else:
            objective = objective_sum / np.maximum(self.n_train, 1)
            if self.joint > 1:  # a joint model's objective is its first output's
                objective = np.repeat(objective[::self.joint], self.joint)
            improved = objective < p.best_objective
            worse = (objective > p.best_objective - self.tol) & (self.tol > -math.inf)
            p.best_objective = np.minimum(p.best_objective, objective)
        p.no_improve = np.where(worse & p.active, p.no_improve + 1, 0)
        if self.restore_best and improved[p.active].any():
            p.best = BestWeights.take(state, p.best, improved & p.active)
        for j in np.flatnonzero(p.active & (p.no_improve >= self.n_iter_no_change)):
            if self.prog.adaptive and state.adaptive_eta[j] > 1e-6:
                state.adaptive_eta[j] = state.adaptive_eta[j] / 5.0
                p.no_improve[j] = 0
            else:
                p.active[j] = False

    @property
    def n_iter(self):
        """Epochs run in this call (the last finite one with ``"restore"``)."""
        return self.p.epoch


def summarize(out, rows):
    """An epoch's history entries from its (K, N_OUT) statistics over the outputs
    ``rows``: ``(mean loss, learning rate, sum of gradient norms, updates)``. The loss
    is the sum over the outputs of their sample-weighted mean loss."""
    wsum = out[rows, OUT_WEIGHT].sum() / max(len(rows), 1)
    return (float(out[rows, OUT_LOSS].sum() / wsum) if wsum > 0 else 0.0,
            float(out[rows[0], OUT_LR]) if len(rows) else 0.0,
            float(out[rows, OUT_NORM].sum()), float(out[rows, OUT_UPDATES].sum()))


def epoch_line(epoch, history, state, prog, early):
    """scikit-learn-style report of one epoch (``verbose >= 2``)."""
    w, b = state.visible_params(prog)
    msg = (f"-- Epoch {epoch + 1}\nNorm: {np.linalg.norm(w):.2f}, NNZs: "
           f"{int(np.count_nonzero(w))}, Bias: {float(np.mean(b)):.6f}, "
           f"T: {int(state.updates.max())}, Avg. loss: {history.loss[-1]:.6f}, "
           f"lr: {history.lr[-1]:.3g}")
    if early:
        msg += f", Validation score: {history.val[-1]:.6f}"
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
