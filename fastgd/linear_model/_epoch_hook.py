"""The estimators' per-epoch hook: callbacks, the progress bar and per-epoch lines."""

import copy

from sklearn.base import clone

from .._bookkeeping import epoch_line
from ..callbacks import EpochInfo


class EpochHook:
    """Runs at the end of every epoch: builds the EpochInfo, calls the callbacks,
    moves the progress bar (``verbose=1``) or prints a line (``verbose >= 2``).

    The bar's length is the number of epochs only when it is known (``tol=None``: every
    epoch up to ``max_epochs`` runs); otherwise it counts epochs with no total, so its
    rate and any estimate come from the epochs run, not from ``max_iter``. At the end
    (:meth:`finish`) it says how training ended and reads full.
    """

    def __init__(self, est, callbacks, prog, rng, dtype, max_epochs, validation, verbose,
                 fixed_length, first_epoch):
        self.est = est
        self.callbacks = callbacks
        self.prog = prog
        self.rng = rng
        self.dtype = dtype
        self.validation = validation
        self.verbose = verbose
        self.max_epochs = max_epochs
        self.stopped = False  # a callback asked to stop
        self.bar = None
        if verbose == 1:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=max_epochs if fixed_length else None,
                            initial=first_epoch, desc=type(est).__name__, unit="epoch",
                            leave=True)

    def __call__(self, epoch, hist, state):
        stop = False
        if self.callbacks:
            coef, intercept = state.visible_params(self.prog)
            coef = coef.astype(self.dtype)
            intercept = intercept.astype(self.dtype)
            if getattr(self.est, "_y_ndim", 2) == 1:
                coef = coef[0]
            coef.setflags(write=False)
            intercept.setflags(write=False)
            info = EpochInfo(
                epoch=epoch + 1, loss=hist.loss[-1],
                val_score=hist.val[-1] if hist.val else None, lr=hist.lr[-1],
                grad_norm=hist.grad_norm[-1], elapsed=hist.time[-1], coef=coef,
                intercept=intercept, estimator=self.est,
                snapshot=lambda: self._snapshot(epoch, hist, state),
            )
            for cb in self.callbacks:
                if cb(info):
                    stop = True
            self.stopped = stop
        if self.bar is not None:
            post = {"loss": f"{hist.loss[-1]:.4g}", "lr": f"{hist.lr[-1]:.3g}"}
            if hist.val:
                post["val"] = f"{hist.val[-1]:.4f}"
            self.bar.set_postfix(post, refresh=False)
            self.bar.update(1)
        elif self.verbose >= 2:
            print(epoch_line(epoch, hist, state, self.prog, self.validation))
        return stop

    def _snapshot(self, epoch, hist, state):
        # without callbacks: they may hold unpicklable code, and the copy is for
        # resuming (set them again on it if needed)
        snap = clone(self.est)
        snap.set_params(callbacks=None)
        for key, value in vars(self.est).items():
            if key.endswith("_") and not key.startswith("__"):
                setattr(snap, key, copy.deepcopy(value))
        for key in ("_y_ndim",):
            if hasattr(self.est, key):
                setattr(snap, key, getattr(self.est, key))
        # one deep copy: the history inside state.progress is the same object as
        # ``hist`` and is copied once
        live, hist = copy.deepcopy((state, hist))
        live.rng_state = self.rng.bit_generator.state
        snap._fastgd_fitted(live, self.prog, hist, epoch + 1, self.dtype, self.validation)
        return snap

    def finish(self, n_iter, hist, partial):
        """Say on the bar how training ended (epoch ``n_iter``), and fill it."""
        if self.bar is None:
            return
        if self.stopped:
            how = f"stopped early (callback) at epoch {n_iter}"
        elif hist.warnings:
            how = f"diverged at epoch {n_iter + 1}, kept epoch {n_iter}"
        elif partial:
            how = "partial_fit epoch done"
        elif n_iter < self.max_epochs:
            how = f"converged at epoch {n_iter}"
        else:
            how = f"max_iter reached ({n_iter} epochs)"
        self.bar.set_description(f"{type(self.est).__name__}: {how}", refresh=False)
        self.bar.total = self.bar.n
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
