"""Callbacks: code of yours that runs at the end of every epoch.

Pass ``callbacks=[...]`` to an estimator. Each item is either a :class:`Callback` or a
plain callable ``f(info) -> bool | None``; it receives an :class:`EpochInfo` at the end
of every epoch (between two calls of the compiled loop, so it never slows an epoch
down) and stops training by returning ``True``.

Examples
--------
>>> import numpy as np
>>> from fastgd import FastSGDRegressor
>>> from fastgd.callbacks import EarlyStopping, History
>>> X = np.random.default_rng(0).normal(size=(200, 3)); y = X @ [1.0, 2.0, 3.0]
>>> hist = History()
>>> est = FastSGDRegressor(max_iter=50, tol=None, callbacks=[
...     hist, EarlyStopping(monitor="loss", patience=2, min_delta=1e-4)]).fit(X, y)
>>> est.n_iter_ == len(hist.loss) < 50
True
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from numpy.typing import ArrayLike

import numpy as np


@dataclass(frozen=True)
class EpochInfo:
    """What a callback sees at the end of an epoch.

    Attributes
    ----------
    epoch : int
        Number of the epoch in this ``fit``/``partial_fit`` call, from 1.
    loss : float
        Training loss of the epoch (the new ``loss_curve_`` entry).
    val_score : float or None
        Validation score of the epoch (with ``early_stopping=True``).
    lr : float
        Learning rate of the epoch's first update.
    grad_norm : float
        Mean pre-clip gradient norm of the epoch.
    elapsed : float
        Seconds since the start of the call.
    coef, intercept : ndarray (read-only)
        The model as it would be reported if training stopped now (averaged with
        ``average``, batch norm folded), on the original features.
    estimator : estimator
        The estimator being trained (its fitted attributes are those of the previous
        call until training ends).
    snapshot : callable
        ``snapshot()`` returns a fitted copy of the estimator as it is now (with
        ``callbacks=None``); continuing it with ``partial_fit`` continues training
        exactly.
    """

    epoch: int
    loss: float
    val_score: Any
    lr: float
    grad_norm: float
    elapsed: float
    coef: np.ndarray
    intercept: np.ndarray
    estimator: Any
    snapshot: Callable[[], Any]


class Callback:
    """Base class: override the hooks you need."""

    def on_train_begin(self, estimator: Any) -> None:
        """Called once before the first epoch of a ``fit``/``partial_fit`` call."""

    def on_epoch_end(self, info: EpochInfo) -> bool | None:
        """Called after every epoch; return ``True`` to stop training."""
        return False

    def on_train_end(self, estimator: Any) -> None:
        """Called once when training of the call ends (the estimator is fitted)."""

    def __call__(self, info: EpochInfo) -> bool | None:
        return self.on_epoch_end(info)


def _monitor_value(monitor, info):
    if callable(monitor):
        return float(monitor(info))
    value = getattr(info, monitor)
    return float("nan") if value is None else float(value)


class EarlyStopping(Callback):
    """Stop when a monitored quantity has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : {"loss", "val_score", "grad_norm", "lr"} or callable, default="loss"
        An :class:`EpochInfo` field or a function ``f(info) -> float``.
    patience : int, default=5
        Epochs without improvement tolerated.
    min_delta : float, default=0.0
        An improvement must beat the best value by more than this.
    mode : {"auto", "min", "max"}, default="auto"
        "auto" maximizes ``val_score`` and minimizes everything else.
    """

    def __init__(self, monitor: str | Callable[[EpochInfo], float] = "loss",
                 patience: int = 5, min_delta: float = 0.0,
                 mode: Literal["auto", "min", "max"] = "auto") -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}.")
        if not callable(monitor) and monitor not in ("loss", "val_score", "grad_norm", "lr"):
            raise ValueError(
                "monitor must be 'loss', 'val_score', 'grad_norm', 'lr' or a callable; "
                f"got {monitor!r}."
            )
        if int(patience) < 1:
            raise ValueError(f"patience must be >= 1; got {patience!r}.")
        self.monitor = monitor
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.mode = mode

    def on_train_begin(self, estimator):
        self.best_ = math.inf if self._sign() > 0 else -math.inf
        self.wait_ = 0
        self.stopped_epoch_ = None

    def _sign(self):
        if self.mode == "auto":
            return -1 if self.monitor == "val_score" else 1
        return 1 if self.mode == "min" else -1

    def on_epoch_end(self, info):
        value = _monitor_value(self.monitor, info)
        if not hasattr(self, "best_"):
            self.on_train_begin(info.estimator)
        s = self._sign()
        if s * value < s * self.best_ - self.min_delta:
            self.best_ = value
            self.wait_ = 0
            return False
        self.wait_ += 1
        if self.wait_ >= self.patience:
            self.stopped_epoch_ = info.epoch
            return True
        return False


class History(Callback):
    """Record every :class:`EpochInfo` field, epoch by epoch.

    Parameters
    ----------
    keep_weights : bool, default=False
        Also keep a copy of ``coef`` and ``intercept`` of every epoch.
    """

    def __init__(self, keep_weights: bool = False) -> None:
        self.keep_weights = keep_weights
        self.epoch, self.loss, self.val_score, self.lr = [], [], [], []
        self.grad_norm, self.elapsed, self.coef, self.intercept = [], [], [], []

    def on_epoch_end(self, info):
        self.epoch.append(info.epoch)
        self.loss.append(info.loss)
        self.val_score.append(info.val_score)
        self.lr.append(info.lr)
        self.grad_norm.append(info.grad_norm)
        self.elapsed.append(info.elapsed)
        if self.keep_weights:
            self.coef.append(np.array(info.coef))
            self.intercept.append(np.array(info.intercept))
        return False


class Checkpoint(Callback):
    """Write a resumable copy of the estimator every ``every`` epochs.

    The file holds the pickled :meth:`EpochInfo.snapshot`: load it with
    :meth:`Checkpoint.load` (or ``pickle``) and call ``partial_fit`` to continue
    training exactly where the checkpoint was taken. Files are written atomically
    (a temporary file renamed over the target), so an interruption never leaves a
    truncated checkpoint.

    Checkpoint files are **pickles**: loading one runs whatever code the file names,
    so load only checkpoints you wrote yourself, never one from someone else.
    fastgd loads a checkpoint only from a path you pass to :meth:`load` or
    :meth:`resume`. (The models ``fastgd fit`` saves are skops files, which hold data
    only.)

    Parameters
    ----------
    path : str or path-like
        File to write; ``{epoch}`` in it is replaced by the epoch number.
    every : int, default=1
    """

    def __init__(self, path: str | os.PathLike, every: int = 1) -> None:
        if int(every) < 1:
            raise ValueError(f"every must be >= 1; got {every!r}.")
        self.path = os.fspath(path)
        self.every = int(every)
        self.written_ = []

    def on_epoch_end(self, info):
        if info.epoch % self.every:
            return False
        target = self.path.format(epoch=info.epoch)
        directory = os.path.dirname(os.path.abspath(target))
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(info.snapshot(), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.written_.append(target)
        return False

    @staticmethod
    def load(path: str | os.PathLike) -> Any:
        """Load an estimator written by a :class:`Checkpoint`.

        The file is unpickled: load only checkpoints you wrote (a pickle can run
        code when loaded).
        """
        with open(path, "rb") as fh:
            return pickle.load(fh)

    @staticmethod
    def resume(checkpoint: str | os.PathLike | Any, X: Any, y: ArrayLike,
               sample_weight: ArrayLike | None = None) -> Any:
        """Finish the ``fit`` call that a checkpoint interrupted.

        The checkpoint holds, besides the parameters, optimizer state, schedule
        position and shuffling stream, what the convergence rules remember between
        epochs (epochs without improvement, best objective or validation score, the
        best weights for ``restore_best_weights``, the ``"adaptive"`` rate, the
        history). Resuming on the same data runs the remaining epochs of that call,
        so the result (``coef_``, ``n_iter_``, ``loss_curve_``, ...) is bit-identical
        to the uninterrupted fit's; only ``time_curve_`` differs.

        Parameters
        ----------
        checkpoint : str, path-like or estimator
            A file written by :class:`Checkpoint` (a pickle: only one you wrote), or
            an estimator from :meth:`EpochInfo.snapshot` (set ``callbacks`` on it
            first to keep checkpointing).
        X, y, sample_weight
            The data of the interrupted fit.

        Returns
        -------
        estimator
            The fitted estimator.
        """
        est = checkpoint if hasattr(checkpoint, "_resume_fit") else Checkpoint.load(checkpoint)
        return est._resume_fit(X, y, sample_weight=sample_weight)


def as_callbacks(callbacks):
    """Validate the ``callbacks`` parameter; return a list."""
    if callbacks is None:
        return []
    if callable(callbacks) and not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    out = list(callbacks)
    for cb in out:
        if not callable(cb):
            raise TypeError(
                f"callbacks must be Callback instances or callables f(info); got {cb!r}."
            )
    return out


__all__ = ["Callback", "Checkpoint", "EarlyStopping", "EpochInfo", "History"]
