"""Shared machinery of the fastgd estimators: parameters, validation, fit plumbing."""

import inspect
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import _compile_notice as compile_notice
from .. import _device, _divergence
from .._bookkeeping import DivergenceWarning
from .._kernels.bundles import Rows
from .._loop import fit_output_groups
from .._memory import check_fit_memory
from .._program import lower
from .._state import TrainState
from ..callbacks import as_callbacks
from ..optim import OPTIMIZER_NAMES, Optimizer
from ..schedules import Schedule
from .._warnings import warn
from ._epoch_hook import EpochHook

MAX_INT = np.iinfo(np.int32).max


def kernel_input(X):
    """What the compiled loops take: the dense array itself, or a CSR tuple."""
    if sp.issparse(X):
        return (X.data, X.indices, X.indptr)
    return X


def thread_count(n_jobs):
    """The threads of this process that ``n_jobs`` asks for.

    ``None``: one; ``-1``: every core of this machine (``joblib.cpu_count()``), ``-2``
    all but one, and so on (joblib's convention). An enclosing
    ``joblib.parallel_backend`` context changes nothing: fastgd's threads share the
    training state in memory, so they are always threads of this process, and a
    backend's worker count (a Dask cluster's, say) says nothing about this machine.
    """
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning: pass a positive number of threads, "
                         "-1 for every core, or None for one thread.")
    if n_jobs < 0:
        from joblib import cpu_count

        return max(cpu_count() + 1 + n_jobs, 1)
    return n_jobs



class BaseFastSGD(BaseEstimator):
    """Parameters and training plumbing shared by the fastgd linear estimators."""

    #: the rate ``learning_rate=None`` means with plain SGD (the scikit-learn twin's)
    _sklearn_learning_rate = "invscaling"

    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "shuffle": ["boolean", StrOptions({"block"})],
        "shuffle_block_size": [Interval(Integral, 1, None, closed="left"), None],
        "verbose": ["verbose"],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "learning_rate": [
            StrOptions({"constant", "optimal", "invscaling", "adaptive"}),
            Schedule,
            None,
        ],
        "eta0": [Interval(Real, 0, None, closed="neither"), None],
        "power_t": [Interval(Real, None, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "average": [Interval(Integral, 0, None, closed="neither"), "boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"full"}), None],
        "optimizer": [StrOptions(set(OPTIMIZER_NAMES)), Optimizer],
        "clip_norm": [Interval(Real, 0, None, closed="neither"), None],
        "clip_value": [Interval(Real, 0, None, closed="neither"), None],
        "batch_norm": ["boolean"],
        "bn_momentum": [Interval(Real, 0, 1, closed="right")],
        "bn_eps": [Interval(Real, 0, None, closed="neither")],
        "restore_best_weights": ["boolean"],
        "on_divergence": [StrOptions({"raise", "restore"})],
        "device": [StrOptions({"cpu", "cuda", "auto"})],
        "callbacks": [list, tuple, callable, None],
    }

    # ------------------------------------------------------------- pickling
    def __getstate__(self):
        state = super().__getstate__()
        from .. import __version__

        state["_fastgd_version"] = __version__
        return state

    def __setstate__(self, state):
        # a model saved by an earlier fastgd: parameters added since take their
        # defaults (which reproduce the earlier behaviour), so get_params, clone and
        # predict work on it
        for name, param in inspect.signature(type(self).__init__).parameters.items():
            if name != "self" and name not in state and param.default is not param.empty:
                state[name] = param.default
        if isinstance(state.get("_state"), dict):  # a model pickled by fastgd <= 0.2
            state["_state"] = TrainState.from_legacy(state["_state"])
        super().__setstate__(state)

    # ------------------------------------------------------------ validation
    def _check_device(self, X=None, prog=None):
        """``"cpu"`` or ``"cuda"``: where this fit runs (see :mod:`fastgd._device`).

        Raises ``ValueError`` for ``device="cuda"`` without a usable GPU, or with
        input or a mode the GPU backend does not run (sparse ``X``, per-sample SGD).
        """
        return _device.resolve(self.device, X, prog)

    def _validate_X_y(self, X, y, reset, multi_output=False, y_numeric=True):
        """Validate ``X`` (dense float32/64 in C or F order, or CSR) and ``y``.

        Other sparse formats are converted to CSR (one copy of the matrix); a fit whose
        copies would not fit in the available memory is refused first.
        """
        if _device.is_device_array(X):
            # GPU-resident X: checked and kept where it is (no copy)
            return _device.validate_device_X_y(self, X, y, reset, multi_output, y_numeric)
        check_fit_memory(X, self.validation_fraction if self.early_stopping else None)
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], order=None,
            accept_sparse="csr", y_numeric=y_numeric, reset=reset, copy=False,
            multi_output=multi_output, accept_large_sparse=True,
        )
        if sp.issparse(X):
            if self.batch_norm:
                raise ValueError(
                    "batch_norm=True is not supported for sparse input: centering the "
                    "features would make X dense. Scale the features instead (e.g. "
                    "MaxAbsScaler) or pass a dense array."
                )
            if X.indices.dtype != X.indptr.dtype:
                # one index dtype for the kernels; the values are shared, not copied
                X = sp.csr_matrix((X.data, X.indices.astype(np.int64),
                                   X.indptr.astype(np.int64)), shape=X.shape, copy=False)
        elif not (X.flags.c_contiguous or X.flags.f_contiguous):
            # a strided view: one copy, the kernels need unit stride in one direction
            X = np.ascontiguousarray(X)
        return X, y

    def _check_init(self, coef_init, intercept_init, n_outputs, n_features):
        """Validate initial values; return them as float64 (K, d) and (K,) or None.

        With one output, ``coef_init`` may be of shape (d,) or (1, d) and
        ``intercept_init`` a scalar or of shape (1,), as in scikit-learn.
        """
        coef = None
        if coef_init is not None:
            if sp.issparse(coef_init):  # a sparsified coef_ (warm start)
                coef_init = coef_init.toarray()
            coef = np.asarray(coef_init, dtype=np.float64)
            if n_outputs == 1:
                ok = coef.reshape(-1).shape == (n_features,)
                expected = f"({n_features},)"
            else:
                ok = coef.shape == (n_outputs, n_features)
                expected = f"({n_outputs}, {n_features})"
            if not ok:
                raise ValueError(
                    f"Provided coef_init does not match dataset: expected shape "
                    f"{expected}, got {np.shape(coef_init)}."
                )
            coef = coef.reshape(n_outputs, n_features)
            if not np.isfinite(coef).all():
                raise ValueError("coef_init contains NaN or infinity.")
        intercept = None
        if intercept_init is not None:
            arr = np.asarray(intercept_init, dtype=np.float64)
            ok = arr.shape == (n_outputs,) or (n_outputs == 1 and arr.shape == ())
            if not ok:
                raise ValueError(
                    "Provided intercept_init does not match dataset: expected "
                    f"{'a scalar or ' if n_outputs == 1 else ''}shape ({n_outputs},), "
                    f"got {arr.shape}."
                )
            intercept = arr.reshape(n_outputs)
            if not np.isfinite(intercept).all():
                raise ValueError("intercept_init contains NaN or infinity.")
        return coef, intercept

    # --------------------------------------------------------------- fitting
    def _split_indices(self, y_for_split, sample_weight, stratify):
        """Training rows (sorted) and validation rows, as scikit-learn's split."""
        n = y_for_split.shape[0]
        if not self.early_stopping:
            return np.arange(n, dtype=np.int64), None
        from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

        splitter = StratifiedShuffleSplit if stratify else ShuffleSplit
        cv = splitter(test_size=self.validation_fraction, random_state=self.random_state)
        idx_train, idx_val = next(cv.split(np.zeros((n, 1)), y_for_split))
        if idx_train.shape[0] == 0 or idx_val.shape[0] == 0:
            raise ValueError(
                f"Splitting {n} samples into a train set and a validation set with "
                f"validation_fraction={self.validation_fraction!r} led to an empty set "
                f"({idx_train.shape[0]} and {idx_val.shape[0]} samples). Please either "
                "change validation_fraction, increase number of samples, or disable "
                "early_stopping."
            )
        if not np.any(sample_weight[idx_val] > 0):
            raise ValueError(
                "The sample weights for validation set are all zero, consider using a "
                "different random state."
            )
        return np.sort(idx_train).astype(np.int64), np.sort(idx_val)

    @staticmethod
    def _take_rows(X, idx):
        """Rows ``idx`` of ``X`` (validation rows; gathered to the host from a GPU array)."""
        return _device.take_rows(X, idx)

    def _sample_weight(self, sample_weight, X):
        if sample_weight is None:
            # ones need no checking: skips two passes over 8 bytes per row per fit
            return np.ones(X.shape[0], dtype=np.float64)
        sample_weight = _device.to_host(sample_weight)
        sw = np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=np.float64))
        if not np.isfinite(sw).all():
            raise ValueError("sample_weight contains NaN or infinity.")
        return sw

    def _train(self, X, Y, sw, cw, *, max_epochs, fresh, train_idx, make_score=None,
               coef_init=None, intercept_init=None, warm=False, multinomial=False,
               n_jobs=None, progress=None):
        """Train on validated data; set the fitted attributes.

        ``Y`` is (n, K) float64, ``cw`` (K, 2) positive/negative class weights;
        ``make_score(coef, intercept)`` scores the early-stopping set; ``progress``
        (from a snapshot taken during a fit) continues that interrupted fit.
        """
        prog = self._fastgd_program(multinomial)
        device = self._check_device(X, prog)
        state = self._fastgd_initial_state(prog, Y.shape[1], X.shape[1], fresh=fresh,
                                           warm=warm, coef_init=coef_init,
                                           intercept_init=intercept_init)
        rng = self._fastgd_rng(state, fresh)
        backend = None
        if device == "cuda":
            # imported here: importing fastgd never loads numba.cuda
            from .._kernels.cuda import CudaBackend

            backend = CudaBackend(X, Y, sw, cw, train_idx, prog)  # data to the device once
        start = self._start_objective(X, Y, sw, train_idx, state, prog)
        validation = make_score is not None
        hook = self._fastgd_begin(prog, rng, X.dtype, max_epochs, validation, progress)
        try:
            with compile_notice.watch(hook.bar if hook is not None else None):
                n_iter, hist, rng = fit_output_groups(
                    state, prog, Rows(kernel_input(X), Y, sw, cw), train_idx,
                    n_jobs=thread_count(n_jobs), rng=rng, max_epochs=max_epochs,
                    tol=self.tol, n_iter_no_change=self.n_iter_no_change,
                    shuffle=self.shuffle, shuffle_block=self.shuffle_block_size,
                    score=make_score, restore_best=self.restore_best_weights,
                    on_divergence=self.on_divergence, progress=progress, hook=hook,
                    backend=backend,
                )
            if hook is not None:
                hook.finish(n_iter, hist, partial=max_epochs < self.max_iter)
        finally:
            if hook is not None:
                hook.close()
        state.rng_state = rng.bit_generator.state
        self.device_ = device
        self._fastgd_fitted(state, prog, hist, n_iter, X.dtype, validation)
        for message, category in hist.warnings:
            warn(message, category)
        message = self._divergence_message(hist, start, state, prog)
        if message is not None and not hist.warnings:  # a restore has been reported
            warn(message, DivergenceWarning)
        self._fastgd_end()
        return self

    def _start_objective(self, X, Y, sw, train_idx, state, prog):
        """The training objective at the start, on a few training rows (see
        :mod:`fastgd._divergence`)."""
        n_rows = min(train_idx.shape[0], _divergence.START_ROWS)
        rows = train_idx[np.linspace(0, train_idx.shape[0] - 1, n_rows).astype(np.int64)]
        coef, intercept = state.current_params(prog)
        weights = state.unscaled_copies()[0][:, :-1]
        return _divergence.start_objective(self._take_rows(X, rows), Y[rows], sw[rows],
                                           coef, intercept, weights, prog)

    @staticmethod
    def _divergence_message(hist, start, state, prog):
        """The DivergenceWarning message of a finished run, or None."""
        weights = state.unscaled_copies()[0][:, :-1]
        return _divergence.divergence_message(hist.loss, start,
                                              _divergence.penalty(weights, prog))

    def _interrupted_progress(self):
        """The convergence bookkeeping of the fit a snapshot interrupted (for resume)."""
        state = getattr(self, "_state", None)
        progress = None if state is None else state.progress
        if progress is None:
            raise ValueError(
                "This estimator holds no interrupted fit: resume takes an estimator "
                "written during fit (by fastgd.callbacks.Checkpoint or "
                "EpochInfo.snapshot()). Continue a finished model with partial_fit or "
                "warm_start=True."
            )
        return progress

    # --------------------------------------------------- training interface
    # The training loop's view of an estimator; fastgd.dask trains through these
    # methods too, never through the estimators' other internals.
    def _fastgd_program(self, multinomial=False):
        """The lowered options (:class:`fastgd._program.Program`) of this fit."""
        return lower(self, multinomial=multinomial)

    def _fastgd_warm(self, n_outputs, n_features):
        """Whether ``fit`` continues from the previous solution (``warm_start``)."""
        prev = getattr(self, "_state", None)
        return bool(self.warm_start and prev is not None
                    and prev.theta.shape == (n_outputs, n_features + 1))

    def _fastgd_initial_state(self, prog, n_outputs, n_features, *, fresh, warm,
                              coef_init=None, intercept_init=None):
        """The :class:`~fastgd._state.TrainState` a call starts from: a new one, the
        previous one (``partial_fit``, resuming) or one warm-started from it."""
        state = getattr(self, "_state", None)
        if warm and prog.batch_norm and coef_init is None and intercept_init is None:
            # warm start with batch norm: continue from the normalized-space weights
            # and the running statistics (the folded coef_ is not a normalized start)
            theta, _ = state.unscaled_copies()
            new = TrainState.new(n_outputs, n_features, prog, theta[:, :-1], theta[:, -1])
            new.bn_mean[:] = state.bn_mean
            new.bn_var[:] = state.bn_var
            return new
        if fresh or state is None:
            if warm:
                coef_init = self.coef_ if coef_init is None else coef_init
                intercept_init = self.intercept_ if intercept_init is None else intercept_init
            coef, intercept = self._check_init(coef_init, intercept_init, n_outputs,
                                               n_features)
            return TrainState.new(n_outputs, n_features, prog, coef, intercept)
        if state.opt_code != prog.opt_code:
            state.reset_optimizer(prog)
        return state

    def _fastgd_rng(self, state, fresh):
        """The shuffling stream: the state's own when continuing, else a new one seeded
        from ``random_state`` (one draw, as scikit-learn)."""
        rng = np.random.default_rng()
        if state.rng_state is not None and not fresh:
            rng.bit_generator.state = state.rng_state
        else:
            seed = check_random_state(self.random_state).randint(0, MAX_INT)
            rng = np.random.default_rng(seed)
        return rng

    def _fastgd_begin(self, prog, rng, dtype, max_epochs, validation, progress=None):
        """Start of training: the callbacks' ``on_train_begin``; returns the
        per-epoch hook (None without callbacks and ``verbose``); ``progress``: the
        interrupted fit this call resumes."""
        callbacks = as_callbacks(self.callbacks)
        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(self)
        verbose = int(self.verbose)
        if not callbacks and verbose <= 0:
            return None
        first_epoch = 0 if progress is None else int(progress.epoch)
        return EpochHook(self, callbacks, prog, rng, dtype, max_epochs, validation,
                         verbose, fixed_length=self.tol is None, first_epoch=first_epoch)

    def _fastgd_fitted(self, state, prog, hist, n_iter, dtype, validation):
        """Set the fitted attributes from a training state and its history."""
        self._state = state
        coef, intercept = state.visible_params(prog)
        self.coef_ = coef.astype(dtype)
        self.intercept_ = intercept.astype(dtype)
        self.n_iter_ = n_iter
        self.t_ = float(state.updates.max()) + 1.0
        self.loss_curve_ = list(hist.loss)
        self.lr_curve_ = list(hist.lr)
        self.grad_norm_curve_ = hist.grad_norm
        self.time_curve_ = list(hist.time)
        self.samples_seen_curve_ = list(hist.samples)
        if validation:
            self.validation_scores_ = list(hist.val)
        elif hasattr(self, "validation_scores_"):
            del self.validation_scores_
        self.optimizer_state_ = self._export_optimizer_state(state)
        self.algorithm_ = "sklearn" if prog.plain else "batch"
        if prog.batch_norm:
            self.bn_running_mean_ = state.bn_mean.copy()
            self.bn_running_var_ = state.bn_var.copy()
        else:
            for name in ("bn_running_mean_", "bn_running_var_"):
                if hasattr(self, name):
                    delattr(self, name)
        self._finish_fitted()

    def _fastgd_end(self):
        """End of training: the callbacks' ``on_train_end``."""
        for cb in as_callbacks(self.callbacks):
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(self)

    def _finish_fitted(self):
        """Estimator-specific shaping of the fitted attributes (see subclasses)."""

    @staticmethod
    def _export_optimizer_state(state):
        """A copy of the optimizer's state, named as in ``torch.optim``.

        Each buffer has shape (n_outputs, n_features + 1) (intercept last); ``step``
        is the number of optimizer steps (per output).
        """
        code = state.opt_code
        s = state.opt_state
        names = {
            0: [],
            1: ["momentum_buffer"],
            2: ["sum"],
            3: ["square_avg", "grad_avg", "momentum_buffer"],
            4: ["square_avg", "acc_delta"],
            5: ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            6: ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
        }[code]
        names = names[: s.shape[1]]
        squeeze = s.shape[0] == 1
        step = state.step
        out = {"step": int(step[0]) if squeeze else step.copy()}
        for i, name in enumerate(names):
            out[name] = s[0, i].copy() if squeeze else s[:, i].copy()
        return out

    # ------------------------------------------------------ scikit-learn twins
    def _sklearn_params(self, twin_class):
        """Parameters of a scikit-learn ``twin_class`` estimator: those it shares with
        this one, with ``learning_rate``/``eta0`` resolved (a fastgd schedule, which
        scikit-learn cannot run, becomes ``"constant"`` at its base rate)."""
        from .. import schedules
        from .._program import resolve_rate
        from ..optim import resolve

        names = twin_class().get_params()
        params = {k: v for k, v in self.get_params(deep=False).items() if k in names}
        sched, eta0 = resolve_rate(self, resolve(self.optimizer))
        if isinstance(sched, schedules.Schedule):
            if sched.lr is not None:
                eta0 = float(sched.lr)
            if isinstance(sched, schedules.Optimal):
                sched = "optimal"
            elif isinstance(sched, schedules.InverseScaling) and sched.counts == "update":
                sched, params["power_t"] = "invscaling", sched.power_t
            else:
                sched = "constant"
        params.update(learning_rate=sched, eta0=eta0)
        return params

    def _copy_fitted(self, twin, coef, intercept, *, sgd=True):
        """Give ``twin`` this model's parameters and input description."""
        twin.coef_ = np.array(coef, copy=True)
        twin.intercept_ = np.array(intercept, copy=True)
        twin.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            twin.feature_names_in_ = self.feature_names_in_.copy()
        if sgd:
            twin.t_ = self.t_
            twin.n_iter_ = self.n_iter_
        return twin

    # ------------------------------------------------- sparse coefficients
    def sparsify(self):
        """Store ``coef_`` as a ``scipy.sparse.csr_matrix`` of shape (n_outputs,
        n_features), as scikit-learn's ``SparseCoefMixin``.

        Worth it when most coefficients are zero (an L1 or elastic-net penalty): the
        matrix holds only the non-zeros, and predicting with it costs O(non-zeros).
        Predictions are unchanged. ``fit`` and ``partial_fit`` still work (they train
        from the estimator's own state, or from ``coef_`` with ``warm_start``) and
        leave a dense ``coef_``; :meth:`densify` converts back.

        Returns
        -------
        self
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before sparsifying.")
        self.coef_ = sp.csr_matrix(self.coef_.reshape(-1, self.n_features_in_))
        return self

    def densify(self):
        """Store ``coef_`` as a NumPy array again (the default, after fitting).

        The inverse of :meth:`sparsify`: ``coef_`` gets back its fitted shape and
        dtype. A dense ``coef_`` is left as it is.

        Returns
        -------
        self
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before densifying.")
        if sp.issparse(self.coef_):
            self.coef_ = self.coef_.toarray()
            self._finish_fitted()  # the fitted shape (1-D for one regression target)
        return self

    # ------------------------------------------------------------- predicting
    def _linear_scores(self, X):
        """``X @ coef_.T + intercept_`` of shape (n, K); ``coef_`` dense or sparse."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32],
                          accept_sparse="csr")
        coef = self.coef_.reshape(-1, self.n_features_in_)
        return safe_sparse_dot(X, coef.T, dense_output=True) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # batch normalization would densify: sparse input is refused with it
        tags.input_tags.sparse = not self.batch_norm
        return tags
