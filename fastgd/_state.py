"""The training state: everything a fit carries from one epoch (and one call) to the next.

:class:`TrainState` holds, for ``K`` outputs of ``d`` features, the weights with the
intercept last, their running average, the optimizer's buffers and counters, the L1
ledger and scalars of scikit-learn's per-sample algorithm, the batch-norm statistics,
the ``"adaptive"`` rate, the shuffling stream and, while a fit runs, what its
convergence rules remember (:class:`fastgd._bookkeeping.Progress`).

scikit-learn's per-sample algorithm keeps its weights in a scaled form (``w = W *
wscale``, L2 shrinkage by rescaling, Bottou's lazy average): while it trains, the live
weights are the :class:`ScaledWeights` sub-state and ``theta``/``avg`` are stale;
:meth:`TrainState.unscale` folds them back. Every reader goes through the methods
below, which know which representation is live.

Per-output arrays (first axis ``K``) are marked in the field metadata, so slicing the
outputs into groups (:meth:`~TrainState.slice`), merging them back
(:meth:`~TrainState.merge`), snapshots and averaging across Dask replicas need no
list of names kept by hand.
"""

import copy
from dataclasses import dataclass, field, fields

import numpy as np

from ._kernels import cpu
from ._kernels import rules
from ._kernels.bundles import (N_PLAIN_SCALARS, S_AVG_A, S_AVG_B, S_AVG_INTERCEPT,
                               S_INTERCEPT, S_L1NORM, S_SQNORM, S_U, S_WSCALE,
                               BatchState, PlainState)

#: field metadata: ``per_output`` arrays have the outputs on their first axis;
#: ``averaged`` arrays are averaged across Dask replicas (counters take the maximum)
PER_OUTPUT = {"per_output": True}
PER_OUTPUT_AVERAGED = {"per_output": True, "averaged": True}
SHARED_AVERAGED = {"averaged": True}


@dataclass
class ScaledWeights:
    """The live weights of scikit-learn's per-sample algorithm (contiguous (K, d)).

    Output k's weights are ``W[k] * plain_scalars[k, S_WSCALE]``; ``AW`` its averaged
    weights in Bottou's lazy form (``S_AVG_A``, ``S_AVG_B``).
    """

    W: np.ndarray
    AW: np.ndarray


@dataclass
class ReplicaStreams:
    """The random streams of a Dask ``"local_sgd"`` fit's replicas after the first
    (replica 0 draws from the estimator's own stream), and the seed they came from."""

    seed: int
    states: list


@dataclass
class TrainState:
    """Training state of ``K`` outputs (see the module notes).

    Attributes
    ----------
    theta, avg : ndarray of shape (K, d + 1)
        Weights (intercept last) and their running average.
    l1_ledger : ndarray of shape (K, d)
        scikit-learn's cumulative L1 penalty applied to each weight (``q``).
    plain_scalars : ndarray of shape (K, 8)
        The per-sample algorithm's scalars (``S_*`` slots of
        :mod:`fastgd._kernels.bundles`); ``S_U``, the cumulative L1 penalty, persists
        across calls.
    opt_state : ndarray of shape (K, rows, d + 1)
        Optimizer buffers (the rows ``opt_code`` uses).
    step : ndarray of shape (K,), int64
        Optimizer steps made.
    updates : ndarray of shape (K,)
        Updates made (scikit-learn's ``t_ - 1``).
    bn_mean, bn_var : ndarray of shape (d,)
        Running statistics of batch normalization.
    """

    theta: np.ndarray = field(metadata=PER_OUTPUT_AVERAGED)
    avg: np.ndarray = field(metadata=PER_OUTPUT_AVERAGED)
    l1_ledger: np.ndarray = field(metadata=PER_OUTPUT_AVERAGED)
    plain_scalars: np.ndarray = field(metadata=PER_OUTPUT_AVERAGED)
    opt_state: np.ndarray = field(metadata=PER_OUTPUT_AVERAGED)
    step: np.ndarray = field(metadata=PER_OUTPUT)
    updates: np.ndarray = field(metadata=PER_OUTPUT)
    bn_mean: np.ndarray = field(metadata=SHARED_AVERAGED)
    bn_var: np.ndarray = field(metadata=SHARED_AVERAGED)
    opt_code: int = 0
    epochs: int = 0
    adaptive_eta: np.ndarray = field(default=None, metadata=PER_OUTPUT)
    rng_state: dict = None
    scaled: ScaledWeights = None
    progress: object = None
    replicas: ReplicaStreams = None

    # ------------------------------------------------------------ creation
    @classmethod
    def new(cls, n_outputs, n_features, prog, coef_init=None, intercept_init=None):
        """Fresh state (all float64) for ``K`` outputs of ``d`` weights + intercept."""
        k, d = n_outputs, n_features
        theta = np.zeros((k, d + 1), dtype=np.float64)
        if coef_init is not None:
            theta[:, :d] = coef_init
        if intercept_init is not None:
            theta[:, d] = intercept_init
        state = cls(
            theta=theta, avg=np.zeros((k, d + 1)), l1_ledger=np.zeros((k, d)),
            plain_scalars=np.zeros((k, N_PLAIN_SCALARS)), opt_state=np.zeros((k, 1, d + 1)),
            step=np.zeros(k, dtype=np.int64), updates=np.zeros(k),
            bn_mean=np.zeros(d), bn_var=np.ones(d),
        )
        state.reset_optimizer(prog)
        return state

    @classmethod
    def from_legacy(cls, saved):
        """The state of a model pickled by fastgd 0.2 or earlier (a dict of arrays)."""
        state = cls(
            theta=saved["theta"], avg=saved["avg"], l1_ledger=saved["q"],
            plain_scalars=saved["sc"], opt_state=saved["opt_state"], step=saved["step"],
            updates=saved["updates"], bn_mean=saved["bn_mean"], bn_var=saved["bn_var"],
            opt_code=int(saved["opt_code"]), epochs=int(saved["epochs"]),
            adaptive_eta=saved.get("eta"), rng_state=saved.get("rng"),
        )
        if saved.get("scaled"):
            state.scaled = ScaledWeights(np.ascontiguousarray(saved["plain_w"]),
                                         np.ascontiguousarray(saved["plain_aw"]))
        if saved.get("dask_seed") is not None:
            state.replicas = ReplicaStreams(int(saved["dask_seed"]),
                                            list(saved.get("replica_rngs") or []))
        return state

    def reset_optimizer(self, prog):
        """(Re)initialize the optimizer's state for ``prog``'s optimizer."""
        k, d1 = self.theta.shape
        # only the rows this optimizer uses (plain SGD keeps one unused row)
        opt_state = np.zeros((k, rules.STATE_ROWS[prog.opt_code], d1), dtype=np.float64)
        if prog.opt_code == rules.OPT_ADAGRAD:  # its initial accumulator, per output
            opt_state[:, 0, :] = prog.per_output(k).opt_hp[:, 3][:, None]
        self.opt_state = opt_state
        self.step = np.zeros(k, dtype=np.int64)
        self.opt_code = int(prog.opt_code)

    @property
    def n_outputs(self):
        return self.theta.shape[0]

    @property
    def n_features(self):
        return self.theta.shape[1] - 1

    # ------------------------------------------------------ the kernels' views
    def batch_arrays(self):
        """The :class:`~fastgd._kernels.bundles.BatchState` of the batch loop."""
        return BatchState(self.theta, self.avg, self.opt_state, self.step, self.updates,
                          self.bn_mean, self.bn_var)

    def plain_arrays(self):
        """The :class:`~fastgd._kernels.bundles.PlainState` of the per-sample loop
        (entering the scaled representation first)."""
        self.enter_scaled()
        return PlainState(self.scaled.W, self.scaled.AW, self.l1_ledger,
                          self.plain_scalars, self.updates)

    # --------------------------------------------------- the two representations
    def enter_scaled(self):
        """Switch to the per-sample representation (scikit-learn's WeightVector set-up:
        unit scale, exact norms)."""
        if self.scaled is not None:
            return
        d = self.n_features
        w0 = self.theta[:, :d]
        sc = self.plain_scalars
        sc[:, S_INTERCEPT] = self.theta[:, d]
        sc[:, S_WSCALE] = 1.0
        sc[:, S_SQNORM] = np.einsum("kj,kj->k", w0, w0)
        sc[:, S_L1NORM] = np.abs(w0).sum(axis=1)
        sc[:, S_AVG_A] = 0.0
        sc[:, S_AVG_B] = 1.0
        sc[:, S_AVG_INTERCEPT] = self.avg[:, d]
        self.scaled = ScaledWeights(np.ascontiguousarray(w0),
                                    np.ascontiguousarray(self.avg[:, :d]))

    def unscale(self):
        """Leave the scaled representation in place (e.g. before a batch run)."""
        if self.scaled is not None:
            _fold_scaled(self.theta, self.avg, self.scaled, self.plain_scalars)
            self.scaled = None

    def unscaled_copies(self):
        """``(theta, avg)`` as plain float64 copies, whatever representation is live."""
        theta = self.theta.copy()
        avg = self.avg.copy()
        if self.scaled is not None:
            scaled = ScaledWeights(self.scaled.W.copy(), self.scaled.AW.copy())
            _fold_scaled(theta, avg, scaled, self.plain_scalars.copy())
        return theta, avg

    def weights_finite(self):
        """Whether the live weights (and intercepts) are all finite."""
        if self.scaled is not None:
            return bool(np.isfinite(self.plain_scalars[:, S_INTERCEPT]).all()
                        and np.isfinite(self.scaled.W).all())
        return bool(np.isfinite(self.theta).all())

    # ------------------------------------------------------------ the model
    def visible_params(self, prog):
        """The model as reported: (coef (K, d), intercept (K,)) on the raw features.

        Averaged parameters once ``average`` updates were made, batch norm folded in.
        """
        theta, avg = self.unscaled_copies()
        use_avg = (prog.average > 0.0) & (prog.average <= self.updates)
        src = np.where(use_avg[:, None], avg, theta)
        return self._fold_batch_norm(src[:, :-1].copy(), src[:, -1].copy(), prog)

    def current_params(self, prog):
        """The current (non-averaged) iterate (coef (K, d), intercept (K,)) on raw
        features.

        scikit-learn's per-sample SGD scores its validation set with the weight array
        *without* its running scale factor, so its scores (and stopping epochs) are off
        whenever L2 shrinkage is on; fastgd scores the true current weights.
        """
        if self.scaled is not None:
            sc = self.plain_scalars
            return self.scaled.W * sc[:, S_WSCALE][:, None], sc[:, S_INTERCEPT].copy()
        return self._fold_batch_norm(self.theta[:, :-1], self.theta[:, -1].copy(), prog)

    def _fold_batch_norm(self, w, b, prog):
        """Express a model on normalized inputs as one on the raw inputs (eval mode)."""
        if not prog.batch_norm:
            return w, b
        w = w / np.sqrt(self.bn_var + prog.bn_eps)
        return w, b - w @ self.bn_mean

    # ----------------------------------------------- snapshots, groups, replicas
    def snapshot(self):
        """A copy of everything an epoch changes (O(outputs x features))."""
        return copy.deepcopy(self._arrays_and_counters())

    def restore(self, snap):
        """Put back a :meth:`snapshot`, in place (the loop holds these arrays)."""
        for name, value in snap.items():
            current = getattr(self, name)
            if isinstance(value, np.ndarray) and isinstance(current, np.ndarray) \
                    and current.shape == value.shape:
                current[...] = value
            elif isinstance(value, ScaledWeights) and isinstance(current, ScaledWeights):
                current.W[...] = value.W
                current.AW[...] = value.AW
            else:
                setattr(self, name, copy.deepcopy(value))

    def restore_outputs(self, snap, which):
        """Put back the outputs ``which`` (a (K,) mask) from a :meth:`snapshot`; shared
        arrays (batch-norm statistics) only when every output is put back."""
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("per_output") and isinstance(value, np.ndarray):
                value[which] = snap[f.name][which]
        if self.scaled is not None and snap["scaled"] is not None:
            self.scaled.W[which] = snap["scaled"].W[which]
            self.scaled.AW[which] = snap["scaled"].AW[which]
        if which.all():
            self.bn_mean[...] = snap["bn_mean"]
            self.bn_var[...] = snap["bn_var"]

    def _arrays_and_counters(self):
        skip = ("progress", "rng_state", "replicas")
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def slice(self, start, stop):
        """The state of outputs ``start:stop``: per-output arrays are views (training
        the slice trains this state's outputs), shared arrays are the same objects."""
        sub = copy.copy(self)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("per_output") and value is not None:
                setattr(sub, f.name, value[start:stop])
        if self.scaled is not None:
            sub.scaled = ScaledWeights(self.scaled.W[start:stop], self.scaled.AW[start:stop])
        sub.progress = None
        return sub

    def merge(self, groups):
        """Take back the counters and live representation of :meth:`slice` groups
        trained apart (their per-output arrays are views of this state's)."""
        self.epochs = max(g.epochs for g in groups)
        live = [g.scaled for g in groups]
        if all(s is None for s in live):
            self.scaled = None
        elif all(s is not None for s in live):
            self.scaled = ScaledWeights(np.concatenate([s.W for s in live]),
                                        np.concatenate([s.AW for s in live]))
        else:  # groups never differ in mode; keep one representation if they did
            for g in groups:
                g.unscale()
            self.scaled = None

    def averaged_fields(self):
        """Names of the arrays averaged across replicas (plain representation)."""
        return [f.name for f in fields(self) if f.metadata.get("averaged")]

    def assign(self, other):
        """Make this state hold ``other``'s values (the same objects)."""
        for f in fields(self):
            setattr(self, f.name, getattr(other, f.name))


def _fold_scaled(theta, avg, scaled, sc):
    """Fold the per-sample path's scale factors into ``theta``/``avg`` (and ``sc``)."""
    d = theta.shape[1] - 1
    cpu.finalize_plain(scaled.W, scaled.AW, sc)
    theta[:, :d] = scaled.W
    avg[:, :d] = scaled.AW
    theta[:, d] = sc[:, S_INTERCEPT]
    avg[:, d] = sc[:, S_AVG_INTERCEPT]


__all__ = ["ReplicaStreams", "ScaledWeights", "TrainState", "S_U"]
