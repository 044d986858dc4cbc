"""FastSGDRegressor: scikit-learn's SGDRegressor, compiled, with minibatches and
modern optimizers."""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from sklearn.base import RegressorMixin, _fit_context
from sklearn.metrics import r2_score
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import check_is_fitted

from .._bookkeeping import warn_if_not_converged
from .._typing import (ArrayLike, BatchSize, CallbackLike, MatrixLike, OptimizerName,
                       RandomStateLike, RateName)
from ._dispatch import dask_input as _dask_input
from ._base import BaseFastSGD

if TYPE_CHECKING:
    from sklearn.linear_model import SGDRegressor
    from sklearn.multioutput import MultiOutputRegressor

    from ..optim import Optimizer
    from ..schedules import Schedule


class FastSGDRegressor(RegressorMixin, BaseFastSGD):
    r"""Linear regression trained by (stochastic, minibatch or full-batch) gradient descent.

    A drop-in for :class:`sklearn.linear_model.SGDRegressor` -- same parameters, defaults,
    attributes and, with ``batch_size=1, optimizer="sgd"``, the same algorithm (results
    agree to rounding with ``shuffle=False``) -- that runs in Numba-compiled loops and
    adds minibatches, the ``torch.optim`` update rules, learning-rate schedules,
    gradient clipping and batch normalization of the inputs.

    It minimizes

    .. math::

        \frac{1}{n}\sum_i s_i\,\ell(w^\top x_i + b, y_i)
        + \alpha\Big(\frac{1-\rho}{2}\lVert w\rVert_2^2 + \rho\lVert w\rVert_1\Big)

    by repeating, for each batch :math:`B` of the epoch, :math:`g \leftarrow`
    batch-mean gradient + penalty gradient, clipping, and one optimizer step with the
    scheduled rate :math:`\eta_t`. The exact maths is in the *Semantics* page.

    Parameters
    ----------
    loss : {"squared_error", "huber", "epsilon_insensitive", \
            "squared_epsilon_insensitive"}, default="squared_error"
        ``squared_error`` is :math:`\frac12 (p-y)^2` as in scikit-learn.
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
    alpha : float, default=0.0001
    l1_ratio : float, default=0.15
        Elastic-net mixing :math:`\rho` (only with ``penalty="elasticnet"``).
    fit_intercept : bool, default=True
    max_iter : int, default=1000
        Maximum number of epochs.
    tol : float or None, default=1e-3
        Stopping criterion (scikit-learn's): stop after ``n_iter_no_change`` epochs
        whose objective is not below ``best - tol`` (or validation score not above
        ``best + tol`` with early stopping). ``None`` disables it.
    shuffle : bool or "block", default=True
        Shuffle the training rows each epoch. ``"block"``: a cheaper shuffle that
        visits blocks of ``shuffle_block_size`` consecutive rows in a random order and
        the rows of each block in a random order (every row once per epoch); much
        less random memory access on data larger than the caches.
    n_jobs : int or None, default=None
        Threads for batches (full or minibatch) of at least 1 MiB of rows per thread
        (as many threads as get 1 MiB, at most ``n_jobs``): each batch's gradient sum
        is split over row ranges, then added in a fixed order, so results are
        identical for a given ``n_jobs`` and data size (and differ by rounding between
        values). -1: all cores. With 2-D ``y`` and smaller
        batches, the outputs are split over the threads instead. With one output,
        per-sample SGD and smaller minibatches with ``shuffle=True`` on data larger
        than the caches use a second thread to copy the next rows of the epoch (and
        draw the next epoch's order) while the first trains: the weights are the same
        bits as with one thread. Batch norm's statistics are always computed on one
        thread. ``None``: one thread. These are always threads of this process: an
        enclosing ``joblib.parallel_backend`` (loky, multiprocessing, Dask) changes
        neither where they run nor how many there are.
    shuffle_block_size : int or None, default=None
        Rows per block for ``shuffle="block"``; None picks about 256 KiB of ``X``.
    verbose : int, default=0
        1: a progress bar over epochs (tqdm) showing the loss, learning rate and
        validation score, which ends saying how training ended ("converged at epoch
        17", "stopped early (callback)", "max_iter reached"); its length is
        ``max_iter`` only with ``tol=None``, otherwise it counts the epochs run (no
        estimate from ``max_iter``); 2 or more: one line per epoch, as scikit-learn.
        Updated between epochs, never inside the compiled loop.
    epsilon : float, default=0.1
        For the ``huber`` and epsilon-insensitive losses.
    random_state : int, RandomState instance or None, default=None
        Seeds shuffling and the early-stopping split. Same seed, same ``coef_``
        (bit-identical on one machine).
    learning_rate : str, fastgd.schedules.Schedule or None, default=None
        ``"constant"``, ``"optimal"``, ``"invscaling"``, ``"adaptive"`` (scikit-learn's)
        or any schedule from :mod:`fastgd.schedules` (e.g. ``Cosine(T_max=50)``).
        None: what the optimizer expects, ``"invscaling"`` with ``optimizer="sgd"``
        (scikit-learn's default) and ``"constant"`` with every other optimizer (as
        ``torch.optim`` without a scheduler).
    eta0 : float or None, default=None
        Base learning rate (used by schedules whose ``lr`` is None). None: 0.01 with
        ``optimizer="sgd"`` (scikit-learn's default), else ``torch.optim``'s default
        ``lr`` for the optimizer (``Optimizer.default_lr``): 1e-3 for ``"momentum"``,
        ``"nesterov"``, ``"adam"`` and ``"adamw"``, 1e-2 for ``"adagrad"`` and
        ``"rmsprop"``, 1.0 for ``"adadelta"``. ``lr_curve_`` shows the rate used.
    power_t : float, default=0.25
        Exponent of ``"invscaling"``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data and stop when the validation R²
        stops improving (scikit-learn's split and rule).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=5
    warm_start : bool, default=False
        Start ``fit`` from the previous solution (optimizer state and schedule restart,
        as scikit-learn). With ``batch_norm=True`` training continues from the
        normalized-space weights and the running statistics.
    average : bool or int, default=False
        Averaged SGD: report the average of the iterates once ``average`` updates were
        made (``True`` means 1).
    batch_size : int, "full" or None, default=1
        1: per-sample SGD (scikit-learn's algorithm with ``optimizer="sgd"``);
        b > 1: minibatches of b rows (the last partial batch is used);
        ``"full"``/None: full-batch gradient descent.
    optimizer : str or fastgd.optim.Optimizer, default="sgd"
        ``"sgd"``, ``"momentum"``, ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``,
        ``"adadelta"``, ``"adam"``, ``"adamw"`` or an instance from :mod:`fastgd.optim`.
        With sparse ``X``, scikit-learn's per-sample algorithm (``batch_size=1``,
        ``"sgd"``, no clipping) costs O(nnz of the row) per step; every other mode makes
        **dense updates**: each step updates every coefficient and decays every
        optimizer buffer, exactly as with the same data dense (unlike the lazy updates
        of ``torch.optim.SparseAdam``), at O(n_features) per step. ``algorithm_`` says
        which one ran.
    clip_norm : float or None, default=None
        Clip the global L2 norm of each batch gradient (``clip_grad_norm_``).
    clip_value : float or None, default=None
        Clip each gradient coordinate to ``[-clip_value, clip_value]``.
    batch_norm : bool, default=False
        Normalize the inputs of each batch (``BatchNorm1d`` without affine); the
        normalization is folded into ``coef_``/``intercept_`` at the end of training.
    bn_momentum : float, default=0.1
    bn_eps : float, default=1e-5
    restore_best_weights : bool, default=False
        At the end, go back to the parameters of the best epoch (best validation score
        with early stopping, otherwise best training objective).
    on_divergence : {"raise", "restore"}, default="raise"
        What to do when the parameters or the loss stop being finite: ``"raise"``
        scikit-learn's overflow ``ValueError`` (naming the epoch and remedies);
        ``"restore"`` keep the parameters (and optimizer state) from before the
        diverging epoch, warn (:class:`fastgd.DivergenceWarning`) and stop, so the
        model is the last finite one and ``n_iter_`` counts the epochs completed.
    callbacks : list of callables or None, default=None
        Called at the end of every epoch with a :class:`fastgd.callbacks.EpochInfo`
        (epoch, losses, learning rate, read-only weights); one returning ``True`` stops
        training. See :mod:`fastgd.callbacks` (``EarlyStopping``, ``History``,
        ``Checkpoint``).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        ``"cuda"``: train with ``numba.cuda`` kernels on an NVIDIA GPU (``pip install
        'fastgd[cuda]'``); minibatch and full-batch modes on dense data, NumPy arrays
        (copied to the GPU once per call) or GPU arrays (numba, CuPy, anything with
        ``__cuda_array_interface__``; not copied). Same results as the CPU to rounding;
        raises ``ValueError`` without a GPU, for sparse ``X`` and for per-sample SGD.
        ``"auto"``: the GPU when there is one and ``X`` is large (see
        the "GPU training" page of the docs), else the CPU. The fitted model holds NumPy
        arrays either way (``device_`` says where it trained).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        After :meth:`sparsify`, a ``scipy.sparse.csr_matrix`` of shape (n_outputs,
        n_features) holding only the non-zeros (worth it for L1 models; predictions
        are unchanged); :meth:`densify` makes it an array again.
    intercept_ : ndarray of shape (1,) or (n_outputs,)
    n_iter_ : int
        Epochs run by the last ``fit``/``partial_fit`` call.
    t_ : float
        Number of updates made, plus one (scikit-learn's convention).
    loss_curve_ : list of float
        Mean (sample-weighted) training loss of each epoch, measured as the epoch went.
    validation_scores_ : list of float
        Validation R² per epoch (with ``early_stopping=True``).
    lr_curve_ : list of float
        Learning rate of the first update of each epoch.
    grad_norm_curve_ : list of float
        Mean pre-clip gradient norm of each epoch.
    time_curve_ : list of float
        Wall time (s) from the start of the call to the end of each epoch.
    samples_seen_curve_ : list of float
        Training rows visited from the start of the call to the end of each epoch.
    optimizer_state_ : dict
        Copy of the optimizer's state (``step`` and the ``torch.optim``-named buffers).
    algorithm_ : {"sklearn", "batch"}
        ``"sklearn"``: scikit-learn's per-sample algorithm ran (lazy, O(nnz) per step on
        sparse input); ``"batch"``: gradient steps with the optimizer (dense updates).
    bn_running_mean_, bn_running_var_ : ndarray of shape (n_features,)
        Running statistics (``batch_norm=True``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str

    Warns
    -----
    DivergenceWarning
        When training ran away without overflowing: the training objective ended far
        above where it started, or rose for several epochs in a row (see the
        Reliability page of the documentation for the rule). The model is finite but
        useless; scaling the features, ``batch_norm=True``, a smaller ``eta0`` or
        clipping usually help. scikit-learn's SGD says nothing in this case.
    ConvergenceWarning
        ``max_iter`` epochs ran without meeting ``tol`` (as scikit-learn).

    See Also
    --------
    sparsify, densify : ``coef_`` as a ``scipy.sparse`` matrix and back
        (scikit-learn's ``SparseCoefMixin``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, -2.0, 0.5] + 0.3
    >>> est = FastSGDRegressor(batch_size=16, optimizer="adam", eta0=0.05,
    ...                        random_state=0).fit(X, y)
    >>> bool(est.score(X, y) > 0.99)
    True
    """

    _parameter_constraints: dict = {
        **BaseFastSGD._parameter_constraints,
        "loss": [StrOptions({"squared_error", "huber", "epsilon_insensitive",
                             "squared_epsilon_insensitive"})],
        "n_jobs": [Integral, None],
    }

    def __init__(
        self,
        loss: Literal["squared_error", "huber", "epsilon_insensitive",
                      "squared_epsilon_insensitive"] = "squared_error",
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
        random_state: RandomStateLike = None,
        learning_rate: RateName | Schedule | None = None,
        eta0: float | None = None,
        power_t: float = 0.25,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 5,
        warm_start: bool = False,
        average: bool | int = False,
        batch_size: BatchSize = 1,
        n_jobs: int | None = None,
        shuffle_block_size: int | None = None,
        optimizer: OptimizerName | Optimizer = "sgd",
        clip_norm: float | None = None,
        clip_value: float | None = None,
        batch_norm: bool = False,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        restore_best_weights: bool = False,
        on_divergence: Literal["raise", "restore"] = "raise",
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
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.shuffle_block_size = shuffle_block_size
        self.optimizer = optimizer
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.batch_norm = batch_norm
        self.bn_momentum = bn_momentum
        self.bn_eps = bn_eps
        self.restore_best_weights = restore_best_weights
        self.on_divergence = on_divergence
        self.callbacks = callbacks
        self.device = device

    @_fit_context(prefer_skip_nested_validation=True)
    @_dask_input
    def fit(self, X: MatrixLike, y: ArrayLike, coef_init: ArrayLike | None = None,
            intercept_init: ArrayLike | float | None = None,
            sample_weight: ArrayLike | None = None) -> Self:
        """Fit the model from scratch (or from the previous solution with ``warm_start``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            float64 or float32 (kept: ``coef_`` has the same dtype), C or Fortran order,
            or a CSR matrix/array (other sparse formats are converted to CSR, one copy);
            never copied when already in one of these, never written.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            With 2-D ``y`` every output is trained in the same pass over the data,
            each exactly as if it were fitted alone.
        coef_init : array-like of shape (n_features,) or (n_outputs, n_features)
        intercept_init : float or array-like of shape (1,) or (n_outputs,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        X, y = self._validate_X_y(X, y, reset=True, multi_output=True)
        Y = self._targets(y, first=True)
        warm = self._fastgd_warm(Y.shape[1], X.shape[1])
        self._fit_targets(X, Y, sample_weight, max_epochs=self.max_iter, fresh=True,
                          coef_init=coef_init, intercept_init=intercept_init, warm=warm)
        warn_if_not_converged(self.n_iter_, self.max_iter, self.tol)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    @_dask_input
    def partial_fit(self, X: MatrixLike, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> Self:
        """One epoch over ``(X, y)``, continuing from the current state.

        Unlike scikit-learn, the optimizer's state (velocity, moments, step count),
        the schedule's position, the batch-norm statistics and the shuffling stream
        all carry over between calls, so ``k`` calls on the same data equal a
        ``fit`` with ``max_iter=k, tol=None``.
        """
        first = not hasattr(self, "coef_")
        if self.early_stopping:
            raise ValueError("early_stopping should be False with partial_fit")
        X, y = self._validate_X_y(X, y, reset=first, multi_output=True)
        Y = self._targets(y, first=first)
        self._fit_targets(X, Y, sample_weight, max_epochs=1, fresh=first)
        return self

    def _resume_fit(self, X, y, sample_weight=None):
        """Finish an interrupted ``fit`` (see :meth:`fastgd.callbacks.Checkpoint.resume`)."""
        progress = self._interrupted_progress()
        X, y = self._validate_X_y(X, y, reset=False, multi_output=True)
        Y = self._targets(y, first=False)
        self._fit_targets(X, Y, sample_weight, max_epochs=self.max_iter, fresh=False,
                          progress=progress)
        warn_if_not_converged(self.n_iter_, self.max_iter, self.tol)
        return self

    def _targets(self, y, first):
        """``y`` as a C-contiguous float64 (n, K) array; remembers the output shape."""
        y = np.asarray(y)
        n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if first:
            self._y_ndim = y.ndim
        elif (y.ndim, n_outputs) != (self._y_ndim, self._state.n_outputs):
            raise ValueError(
                f"y has {n_outputs} output(s) ({y.ndim}-D) but the model was fitted with "
                f"{self._state.n_outputs} ({self._y_ndim}-D)."
            )
        return np.ascontiguousarray(y.reshape(y.shape[0], n_outputs), dtype=np.float64)

    def _fit_targets(self, X, Y, sample_weight, **kwargs):
        sw = self._sample_weight(sample_weight, X)
        train_idx, val_idx = self._split_indices(Y[:, 0], sw, stratify=False)
        make_score = None
        if val_idx is not None:
            make_score = self._validation_scorer(self._take_rows(X, val_idx), Y[val_idx],
                                                 sw[val_idx])
        self._train(X, Y, sw, self._class_weights(Y.shape[1]), train_idx=train_idx,
                    make_score=make_score, n_jobs=self.n_jobs, **kwargs)
        return self

    # pieces the CV estimator shares: the targets' class weights and the scorer
    @staticmethod
    def _class_weights(n_outputs, y=None):
        """(K, 2) weights of every output's positive and negative rows: ones."""
        return np.ones((n_outputs, 2), dtype=np.float64)

    @staticmethod
    def _validation_scorer(X_val, Y_val, sw_val, y_val=None):
        """``score(coef, intercept) -> (K,)``: each output's R² on the held-out rows
        (early stopping)."""
        def make_score(coef, intercept):
            pred = safe_sparse_dot(X_val, coef.T, dense_output=True) + intercept
            return r2_score(Y_val, pred, sample_weight=sw_val, multioutput="raw_values")

        return make_score

    def _finish_fitted(self):
        if self._y_ndim == 1:
            self.coef_ = self.coef_[0]

    @_dask_input
    def predict(self, X: MatrixLike) -> np.ndarray:
        """Predict ``X @ coef_.T + intercept_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
        """
        scores = self._linear_scores(X)
        return scores[:, 0] if self._y_ndim == 1 else scores

    def to_sklearn(self) -> SGDRegressor | MultiOutputRegressor:
        """The fitted model as a scikit-learn estimator that predicts the same values.

        For tools built for scikit-learn (ONNX converters, skops, model registries).
        One output: a fitted :class:`sklearn.linear_model.SGDRegressor` with the same
        ``coef_``, ``intercept_``, ``n_features_in_``, ``feature_names_in_``, ``t_``
        and ``n_iter_``. Several outputs (2-D ``y``, each output trained as if alone):
        a fitted :class:`sklearn.multioutput.MultiOutputRegressor` of one such
        ``SGDRegressor`` per output. Batch normalization and averaging are already
        folded into ``coef_``/``intercept_``, so the copy needs neither.

        The copy's hyper-parameters are this estimator's where scikit-learn has them,
        with the rate resolved (a :mod:`fastgd.schedules` object becomes ``"constant"``
        at its base rate): refitting it runs scikit-learn's own per-sample SGD, not
        this estimator's optimizer, batches or schedule.

        Returns
        -------
        SGDRegressor or MultiOutputRegressor
        """
        from sklearn.linear_model import SGDRegressor
        from sklearn.multioutput import MultiOutputRegressor

        check_is_fitted(self, "coef_")
        params = self._sklearn_params(SGDRegressor)
        if self._y_ndim == 1:
            return self._copy_fitted(SGDRegressor(**params), self.coef_, self.intercept_)
        twin = MultiOutputRegressor(SGDRegressor(**params), n_jobs=self.n_jobs)
        twin.estimators_ = [
            self._copy_fitted(SGDRegressor(**params), self.coef_[k], self.intercept_[k:k + 1])
            for k in range(self.coef_.shape[0])
        ]
        twin.n_features_in_ = self.n_features_in_
        if hasattr(self, "feature_names_in_"):
            twin.feature_names_in_ = self.feature_names_in_.copy()
        return twin

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
