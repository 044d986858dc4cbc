"""Shared machinery of the fastgd estimators: parameters, validation, fit plumbing."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import ShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from .. import _engine
from .._program import lower
from ..optim import OPTIMIZER_NAMES, Optimizer
from ..schedules import Schedule

MAX_INT = np.iinfo(np.int32).max


class BaseFastSGD(BaseEstimator):
    """Parameters and training plumbing shared by the fastgd linear estimators."""

    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), None],
        "shuffle": ["boolean"],
        "verbose": ["verbose"],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "learning_rate": [
            StrOptions({"constant", "optimal", "invscaling", "adaptive"}),
            Schedule,
        ],
        "eta0": [Interval(Real, 0, None, closed="neither")],
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
        "device": [StrOptions({"cpu", "cuda"})],
    }

    # ------------------------------------------------------------ validation
    def _check_device(self):
        if self.device == "cuda":
            raise ValueError(
                "device='cuda' is not available in this version of fastgd: the GPU "
                "backend (numba.cuda) is not implemented yet. Use device='cpu'."
            )

    def _validate_X_y(self, X, y, reset):
        X, y = validate_data(
            self, X, y, dtype=[np.float64, np.float32], order=None,
            accept_sparse=False, y_numeric=True, reset=reset, copy=False,
        )
        if not (X.flags.c_contiguous or X.flags.f_contiguous):
            # a strided view: one copy, the kernels need unit stride in one direction
            X = np.ascontiguousarray(X)
        y = np.ascontiguousarray(y, dtype=np.float64)
        return X, y

    def _check_init(self, coef_init, intercept_init, n_features):
        coef = None
        if coef_init is not None:
            coef = np.asarray(coef_init, dtype=np.float64).ravel()
            if coef.shape != (n_features,):
                raise ValueError(
                    f"Provided coef_init does not match dataset: expected shape "
                    f"({n_features},), got {np.shape(coef_init)}."
                )
            if not np.isfinite(coef).all():
                raise ValueError("coef_init contains NaN or infinity.")
        intercept = 0.0
        if intercept_init is not None:
            arr = np.asarray(intercept_init, dtype=np.float64)
            if arr.shape not in ((), (1,)):
                raise ValueError(
                    "Provided intercept_init does not match dataset: expected a scalar "
                    f"or shape (1,), got {arr.shape}."
                )
            intercept = float(arr.reshape(-1)[0])
            if not np.isfinite(intercept):
                raise ValueError("intercept_init is NaN or infinity.")
        return coef, intercept

    # --------------------------------------------------------------- fitting
    def _validation_split(self, y, sample_weight):
        n = y.shape[0]
        if not self.early_stopping:
            return np.arange(n, dtype=np.int64), None
        cv = ShuffleSplit(test_size=self.validation_fraction, random_state=self.random_state)
        idx_train, idx_val = next(cv.split(np.zeros((n, 1)), y))
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

    def _train(self, X, y, sample_weight, *, max_epochs, fresh, coef_init=None,
               intercept_init=None, warm=False):
        self._check_device()
        prog = lower(self)
        n_features = X.shape[1]
        state = getattr(self, "_state", None)
        if warm and prog.batch_norm and coef_init is None and intercept_init is None:
            # warm start with batch norm: continue from the normalized-space weights and
            # the running statistics (the folded coef_ is not a normalized-space start)
            theta, avg = _engine.unscaled_copies(state)
            bn_mean, bn_var = state["bn_mean"].copy(), state["bn_var"].copy()
            state = _engine.new_state(n_features, prog, theta[:-1], theta[-1])
            state["bn_mean"][:] = bn_mean
            state["bn_var"][:] = bn_var
        elif fresh or state is None:
            if warm:
                coef_init = self.coef_ if coef_init is None else coef_init
                intercept_init = self.intercept_ if intercept_init is None else intercept_init
            coef, intercept = self._check_init(coef_init, intercept_init, n_features)
            state = _engine.new_state(n_features, prog, coef, intercept)
        elif state["opt_code"] != prog.opt_code:
            _engine.reset_optimizer(state, prog)
        sw = np.ascontiguousarray(_check_sample_weight(sample_weight, X, dtype=np.float64))
        if not np.isfinite(sw).all():
            raise ValueError("sample_weight contains NaN or infinity.")
        train_idx, val_idx = self._validation_split(y, sw)
        validation = None
        if val_idx is not None:
            validation = (X[val_idx], y[val_idx], sw[val_idx])

        if state["rng"] is not None and not fresh:
            rng = np.random.default_rng()
            rng.bit_generator.state = state["rng"]
        else:
            seed = check_random_state(self.random_state).randint(0, MAX_INT)
            rng = np.random.default_rng(seed)
        n_iter, hist = _engine.run(
            state, prog, X, y, sw, train_idx,
            max_epochs=max_epochs, tol=self.tol, n_iter_no_change=self.n_iter_no_change,
            shuffle=self.shuffle, rng=rng, validation=validation,
            restore_best=self.restore_best_weights, verbose=self.verbose,
        )
        state["rng"] = rng.bit_generator.state
        self._state = state
        coef, intercept = _engine.visible_params(state, prog)
        self.coef_ = coef.astype(X.dtype)
        self.intercept_ = np.array([intercept], dtype=X.dtype)
        self.n_iter_ = n_iter
        self.t_ = state["updates"] + 1.0
        self.loss_curve_ = hist.loss
        self.lr_curve_ = hist.lr
        self.grad_norm_curve_ = hist.grad_norm
        if validation is not None:
            self.validation_scores_ = hist.val
        elif hasattr(self, "validation_scores_"):
            del self.validation_scores_
        self.optimizer_state_ = self._export_optimizer_state(state)
        if prog.batch_norm:
            self.bn_running_mean_ = state["bn_mean"].copy()
            self.bn_running_var_ = state["bn_var"].copy()
        return self

    @staticmethod
    def _export_optimizer_state(state):
        """A read-only copy of the optimizer's state, named as in ``torch.optim``."""
        code = state["opt_code"]
        s = state["opt_state"]
        names = {
            0: [],
            1: ["momentum_buffer"],
            2: ["sum"],
            3: ["square_avg", "grad_avg", "momentum_buffer"],
            4: ["square_avg", "acc_delta"],
            5: ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            6: ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
        }[code]
        out = {"step": int(state["step"][0])}
        for i, name in enumerate(names):
            out[name] = s[i].copy()
        return out

    # ------------------------------------------------------------- predicting
    def _decision_function(self, X):
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return X @ self.coef_ + self.intercept_[0]
