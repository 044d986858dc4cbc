"""FastSGDClassifier: scikit-learn's SGDClassifier, compiled, with minibatches, modern
optimizers and a true multinomial (softmax) model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from scipy.special import expit, softmax
from sklearn.base import ClassifierMixin, _fit_context
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._bookkeeping import warn_if_not_converged
from ._dispatch import dask_input as _dask_input
from ._targets import class_weight_pairs, label_kind, label_targets
from .._program import LOSSES
from .._typing import (ArrayLike, BatchSize, CallbackLike, MatrixLike, OptimizerName,
                       RandomStateLike, RateName)
from ._base import BaseFastSGD

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    from ..optim import Optimizer
    from ..schedules import Schedule


class FastSGDClassifier(ClassifierMixin, BaseFastSGD):
    r"""Linear classifiers (SVM, logistic regression, ...) trained by gradient descent.

    A drop-in for :class:`sklearn.linear_model.SGDClassifier` -- same parameters,
    defaults and attributes, and with ``batch_size=1, optimizer="sgd",
    shuffle=False`` the same coefficients (to rounding) -- running in compiled loops,
    with every batch mode, optimizer, schedule, clipping and batch normalization of
    :class:`FastSGDRegressor`.

    Multiclass problems are solved one-vs-rest as scikit-learn does
    (``multi_class="ovr"``: one binary model per class, target +1 for the class and -1
    (0 for ``log_loss``) for the rest, each trained and stopped as if alone; all of them
    in one pass over the data, split over ``n_jobs`` threads), or by one **multinomial**
    (softmax) model trained jointly (``multi_class="multinomial"``, ``log_loss`` only):

    .. math::

        \min_{W, b}\ \frac1n \sum_i s_i\,c_{y_i}
        \Big(\log\sum_k e^{w_k^\top x_i + b_k} - (w_{y_i}^\top x_i + b_{y_i})\Big)
        + \alpha\,R(W)

    whose ``predict_proba`` is the softmax of ``decision_function``.

    The parameters not listed below (``penalty``, ``alpha``, ``l1_ratio``,
    ``fit_intercept``, ``max_iter``, ``tol``, ``shuffle``, ``verbose``, ``epsilon``,
    ``random_state``, ``eta0``, ``power_t``, ``early_stopping``,
    ``validation_fraction``, ``n_iter_no_change``, ``warm_start``, ``average``,
    ``batch_size``, ``shuffle_block_size``, ``optimizer``, ``clip_norm``,
    ``clip_value``, ``batch_norm``, ``bn_momentum``, ``bn_eps``,
    ``restore_best_weights``, ``on_divergence``, ``callbacks``, ``device``) are those of
    :class:`FastSGDRegressor`; early stopping splits with ``StratifiedShuffleSplit``
    and scores accuracy, as scikit-learn.

    Parameters
    ----------
    loss : str, default="hinge"
        ``"hinge"``, ``"log_loss"``, ``"modified_huber"``, ``"squared_hinge"``,
        ``"perceptron"`` or a regression loss (``"squared_error"``, ``"huber"``,
        ``"epsilon_insensitive"``, ``"squared_epsilon_insensitive"``), with
        scikit-learn's formulas.
    n_jobs : int or None, default=None
        Threads over which one-vs-rest classes are split (results do not depend on
        it); for batches of at least 1 MiB of rows per thread, threads over row
        ranges as in :class:`FastSGDRegressor` (deterministic for a given
        ``n_jobs``); for a binary or multinomial model trained per sample or by small
        minibatches, a second thread that copies the next rows of shuffled epochs
        (results do not depend on it). ``None``: one thread; -1: every core. Always
        threads of this process, whatever ``joblib.parallel_backend`` is active.
    learning_rate : str, Schedule or None, default=None
        None: ``"optimal"`` with ``optimizer="sgd"`` (scikit-learn's default), else
        ``"constant"``; ``eta0=None`` is resolved as in :class:`FastSGDRegressor`.
    class_weight : dict, "balanced" or None, default=None
        Weights multiplying ``sample_weight`` per class (scikit-learn's rules: in
        one-vs-rest, class k's weight applies to its positive samples).
    multi_class : {"ovr", "multinomial"}, default="ovr"

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        A ``scipy.sparse.csr_matrix`` after :meth:`sparsify` (see
        :meth:`densify`), as in scikit-learn.
    intercept_ : ndarray of shape (1,) or (n_classes,)
    n_iter_ : int
        Epochs run (the maximum over the one-vs-rest problems).
    t_ : float
        Updates made (per output, the largest), plus one.
    loss_curve_ : list of float
        As in :class:`FastSGDRegressor`, summed over the one-vs-rest problems.

    Notes
    -----
    ``validation_scores_``, ``lr_curve_``, ``grad_norm_curve_``, ``time_curve_``,
    ``samples_seen_curve_``, ``optimizer_state_`` and ``algorithm_`` are as in
    :class:`FastSGDRegressor`. With sparse input every mode but
    ``algorithm_ == "sklearn"`` makes dense updates.

    Warns
    -----
    DivergenceWarning
        When training ran away without overflowing, e.g. ``loss="squared_hinge"`` on
        unscaled ``load_digits`` (coefficients of 1e14); the ``ConvergenceWarning``
        as scikit-learn's. See :class:`FastSGDRegressor`.

    See Also
    --------
    sparsify : keep only the non-zero coefficients (L1 models); ``densify`` undoes it.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastgd import FastSGDClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = FastSGDClassifier(loss="log_loss", multi_class="multinomial", batch_size=16,
    ...                         optimizer="adam", learning_rate="constant", eta0=0.05,
    ...                         random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9), clf.predict_proba(X[:1]).shape
    (True, (1, 3))
    """

    _sklearn_learning_rate = "optimal"

    _parameter_constraints: dict = {
        **BaseFastSGD._parameter_constraints,
        "loss": [StrOptions(set(LOSSES))],
        "n_jobs": [Integral, None],
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "multi_class": [StrOptions({"ovr", "multinomial"})],
    }

    def __init__(
        self,
        loss: Literal["hinge", "log_loss", "modified_huber", "squared_hinge",
                      "perceptron", "squared_error", "huber",
                      "epsilon_insensitive", "squared_epsilon_insensitive"] = "hinge",
        *,
        penalty: Literal["l2", "l1", "elasticnet"] | None = "l2",
        alpha: float = 0.0001,
        l1_ratio: float = 0.15,
        fit_intercept: bool = True,
        max_iter: int = 1000,
        tol: float | None = 1e-3,
        shuffle: bool | Literal["block"] = True,
        verbose: int = 0,
        epsilon: float = 0.1,
        n_jobs: int | None = None,
        random_state: RandomStateLike = None,
        learning_rate: RateName | Schedule | None = None,
        eta0: float | None = None,
        power_t: float = 0.5,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        class_weight: Mapping[Any, float] | Literal["balanced"] | None = None,
        warm_start: bool = False,
        average: bool | int = False,
        batch_size: BatchSize = 1,
        shuffle_block_size: int | None = None,
        optimizer: OptimizerName | Optimizer = "sgd",
        clip_norm: float | None = None,
        clip_value: float | None = None,
        batch_norm: bool = False,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        restore_best_weights: bool = False,
        on_divergence: Literal["raise", "restore"] = "raise",
        multi_class: Literal["ovr", "multinomial"] = "ovr",
        callbacks: Sequence[CallbackLike] | CallbackLike | None = None,
        device: Literal["cpu", "cuda", "auto"] = "cpu",
    ) -> None:
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.average = average
        self.batch_size = batch_size
        self.shuffle_block_size = shuffle_block_size
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.batch_norm = batch_norm
        self.bn_momentum = bn_momentum
        self.bn_eps = bn_eps
        self.restore_best_weights = restore_best_weights
        self.on_divergence = on_divergence
        self.multi_class = multi_class
        self.callbacks = callbacks
        self.device = device

    # ----------------------------------------------------------------- fitting
    def _multinomial(self):
        if self.multi_class == "multinomial" and self.loss != "log_loss":
            raise ValueError(
                "multi_class='multinomial' requires loss='log_loss' (the softmax "
                f"cross-entropy); got loss={self.loss!r}."
            )
        return self.multi_class == "multinomial" and len(self.classes_) > 2

    def _negative_label(self):
        """The target of a one-vs-rest output's negative rows."""
        return 0.0 if self.loss == "log_loss" else -1.0

    @_fit_context(prefer_skip_nested_validation=True)
    @_dask_input
    def fit(self, X: MatrixLike, y: ArrayLike, coef_init: ArrayLike | None = None,
            intercept_init: ArrayLike | float | None = None,
            sample_weight: ArrayLike | None = None) -> Self:
        """Fit the classifier from scratch (or from the previous solution with
        ``warm_start``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        coef_init : array-like of shape (n_classes, n_features) or (n_features,) when binary
        intercept_init : array-like of shape (n_classes,) or scalar when binary
        sample_weight : array-like of shape (n_samples,), default=None
            Multiplied by ``class_weight``.

        Returns
        -------
        self
        """
        X, y = self._validate_X_y(X, y, reset=True, y_numeric=False)
        check_classification_targets(y)
        prev_classes = getattr(self, "classes_", None)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError(
                "The number of classes has to be greater than one; got "
                f"{len(self.classes_)} class"
            )
        prev = getattr(self, "_state", None)
        warm = bool(self.warm_start and prev is not None and prev_classes is not None
                    and np.array_equal(prev_classes, self.classes_)
                    and prev.theta.shape[1] == X.shape[1] + 1)
        self._fit_labels(X, y, sample_weight, max_epochs=self.max_iter, fresh=True,
                         coef_init=coef_init, intercept_init=intercept_init, warm=warm)
        warn_if_not_converged(self.n_iter_, self.max_iter, self.tol)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @_dask_input
    def partial_fit(self, X: MatrixLike, y: ArrayLike, classes: ArrayLike | None = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """One epoch over ``(X, y)``, continuing from the current state.

        ``classes`` (all the labels that will ever be seen) is required on the first
        call. Optimizer state, schedule position and shuffling stream carry over.
        """
        first = not hasattr(self, "classes_")
        if self.early_stopping:
            raise ValueError("early_stopping should be False with partial_fit")
        if first:
            if self.class_weight == "balanced":
                # scikit-learn's message: one batch's class frequencies are not the data's
                raise ValueError(
                    "class_weight 'balanced' is not supported for partial_fit. In order "
                    "to use 'balanced' weights, use compute_class_weight('balanced', "
                    "classes=classes, y=y). In place of y you can use a large enough "
                    "sample of the full training set target to properly estimate the "
                    "class frequency distributions. Pass the resulting weights as the "
                    "class_weight parameter."
                )
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, "
                f"was: {self.classes_!r}"
            )
        X, y = self._validate_X_y(X, y, reset=first, y_numeric=False)
        check_classification_targets(y)
        if first:
            self.classes_ = np.unique(classes)
            if len(self.classes_) < 2:
                raise ValueError("The number of classes has to be greater than one.")
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels not in classes: {unknown!r}")
        self._fit_labels(X, y, sample_weight, max_epochs=1, fresh=first)
        return self

    def _resume_fit(self, X, y, sample_weight=None):
        """Finish an interrupted ``fit`` (see :meth:`fastgd.callbacks.Checkpoint.resume`)."""
        progress = self._interrupted_progress()
        X, y = self._validate_X_y(X, y, reset=False, y_numeric=False)
        if not np.array_equal(np.unique(y), self.classes_):
            raise ValueError(
                f"y holds the classes {np.unique(y)!r}; the interrupted fit was on "
                f"{self.classes_!r}. Resume with the data of the interrupted fit."
            )
        self._fit_labels(X, y, sample_weight, max_epochs=self.max_iter, fresh=False,
                         progress=progress)
        warn_if_not_converged(self.n_iter_, self.max_iter, self.tol)
        return self

    def _fit_labels(self, X, y, sample_weight, **kwargs):
        multinomial = self._multinomial()
        y_idx = np.searchsorted(self.classes_, y)
        sw = self._sample_weight(sample_weight, X)
        Y = self._label_targets(y_idx)
        cw = self._class_weights(Y.shape[1], y)
        train_idx, val_idx = self._split_indices(y, sw, stratify=True)
        make_score = None
        if val_idx is not None:
            make_score = self._validation_scorer(self._take_rows(X, val_idx), Y[val_idx],
                                                 sw[val_idx], y_idx[val_idx])
        self._train(X, Y, sw, cw, train_idx=train_idx, make_score=make_score,
                    multinomial=multinomial, n_jobs=self.n_jobs, **kwargs)
        return self

    # pieces the CV estimator shares: targets, class weights and the scorer
    def _label_kind(self):
        return label_kind(self._multinomial(), len(self.classes_))

    def _label_targets(self, y_idx):
        """The (n, K) training targets of class indices ``y_idx``."""
        return label_targets(y_idx, len(self.classes_), self._label_kind(),
                             self._negative_label())

    def _class_weights(self, n_outputs, y):
        """(K, 2) weights of every output's positive and negative rows, from
        ``class_weight`` and the labels ``y`` of the rows trained on ("balanced")."""
        per_class = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
        return class_weight_pairs(per_class, self._label_kind())

    def _validation_scorer(self, X_val, Y_val, sw_val, y_val):
        """``score(coef, intercept) -> (K,)``: accuracy on the held-out rows, of the
        multinomial model (the same for its outputs) or of each binary sub-problem on
        its own +/-1 labels (early stopping)."""
        multinomial = self._multinomial()

        def make_score(coef, intercept):
            scores = safe_sparse_dot(X_val, coef.T, dense_output=True) + intercept
            if multinomial:
                acc = np.average(scores.argmax(axis=1) == y_val, weights=sw_val)
                return np.full(coef.shape[0], acc)
            pred_pos = scores > 0
            return np.array([
                np.average(pred_pos[:, k] == (Y_val[:, k] > 0), weights=sw_val)
                for k in range(coef.shape[0])
            ])

        return make_score

    # -------------------------------------------------------------- predicting
    @_dask_input
    def decision_function(self, X: MatrixLike) -> np.ndarray:
        """Confidence scores: ``X @ coef_.T + intercept_``, (n,) when binary.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
        """
        scores = self._linear_scores(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    @_dask_input
    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predicted class labels.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]

    def _check_proba(self):
        if self.loss not in ("log_loss", "modified_huber"):
            raise AttributeError(
                f"probability estimates are not available for loss={self.loss!r}"
            )
        return True

    @available_if(_check_proba)
    @_dask_input
    def predict_proba(self, X: MatrixLike) -> np.ndarray:
        """Probability estimates (``log_loss`` and ``modified_huber`` only).

        ``log_loss``: the softmax of the scores for the multinomial model; for
        one-vs-rest, scikit-learn's normalized per-class logistic outputs.
        ``modified_huber``: scikit-learn's ``(clip(score, -1, 1) + 1) / 2``, normalized.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        scores = self.decision_function(X)
        binary = scores.ndim == 1
        if self.loss == "log_loss":
            if binary:
                p = expit(scores)
                return np.column_stack([1.0 - p, p])
            if self.multi_class == "multinomial":
                return softmax(scores, axis=1)
            return _normalize_rows(expit(scores))
        prob = (np.clip(scores, -1.0, 1.0) + 1.0) / 2.0
        if binary:
            return np.column_stack([1.0 - prob, prob])
        return _normalize_rows(prob)

    @available_if(_check_proba)
    @_dask_input
    def predict_log_proba(self, X: MatrixLike) -> np.ndarray:
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


    def to_sklearn(self) -> SGDClassifier | LogisticRegression:
        """The fitted model as a scikit-learn estimator that predicts the same values.

        For tools built for scikit-learn (ONNX converters, skops, model registries).
        A binary or one-vs-rest model: a fitted
        :class:`sklearn.linear_model.SGDClassifier` with the same ``coef_``,
        ``intercept_``, ``classes_``, ``n_features_in_``, ``feature_names_in_``, ``t_``
        and ``n_iter_`` (its ``decision_function``, ``predict`` and ``predict_proba``
        are scikit-learn's formulas, which this estimator shares). The multinomial
        model (``multi_class="multinomial"``, 3 or more classes) has no
        ``SGDClassifier`` twin: it becomes a fitted
        :class:`sklearn.linear_model.LogisticRegression`, whose ``predict_proba`` is
        the softmax of the same scores, with the penalty of the same objective
        (``C = 1 / (alpha * n)``, ``n`` the training rows of the last fit call;
        ``l1_ratio`` from ``penalty``). Batch normalization and averaging are already
        folded into ``coef_``/``intercept_``.

        The copy's hyper-parameters are this estimator's where scikit-learn has them,
        with the rate resolved (a :mod:`fastgd.schedules` object becomes ``"constant"``
        at its base rate): refitting it runs scikit-learn's own algorithm.

        Returns
        -------
        SGDClassifier or LogisticRegression
        """
        from sklearn.linear_model import LogisticRegression, SGDClassifier

        check_is_fitted(self, "coef_")
        if self.multi_class == "multinomial" and len(self.classes_) > 2:
            n_train = self.samples_seen_curve_[0] if self.samples_seen_curve_ else 1.0
            l1_ratio = {"l2": 0.0, "l1": 1.0, None: 0.0}.get(self.penalty, self.l1_ratio)
            no_penalty = self.penalty is None or self.alpha == 0.0
            twin = LogisticRegression(
                C=np.inf if no_penalty else 1.0 / (self.alpha * n_train),
                l1_ratio=l1_ratio, solver="lbfgs" if l1_ratio == 0.0 else "saga",
                fit_intercept=self.fit_intercept, class_weight=self.class_weight,
                tol=1e-4 if self.tol is None else self.tol, max_iter=self.max_iter,
                random_state=self.random_state, warm_start=self.warm_start,
                n_jobs=self.n_jobs,
            )
            self._copy_fitted(twin, self.coef_, self.intercept_, sgd=False)
            twin.n_iter_ = np.array([self.n_iter_], dtype=np.int32)
        else:
            twin = self._copy_fitted(SGDClassifier(**self._sklearn_params(SGDClassifier)),
                                     self.coef_, self.intercept_)
        twin.classes_ = self.classes_.copy()
        return twin


def _normalize_rows(prob):
    """One-vs-rest scores in [0, 1] to probabilities; all-zero rows become uniform
    (scikit-learn's rule)."""
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if np.any(all_zero):
        prob[all_zero, :] = 1.0
        prob_sum[all_zero] = prob.shape[1]
    return prob / prob_sum[:, None]
