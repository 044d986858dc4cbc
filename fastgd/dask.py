r"""Training on a Dask cluster: the same estimators, data spread over the workers.

``FastSGDRegressor`` and ``FastSGDClassifier`` accept ``dask.array`` arrays and dask
DataFrames wherever they accept NumPy arrays. ``est.fit(X, y)`` then trains on the
cluster of the active :class:`distributed.Client`: the row blocks of ``X`` are prepared
once on the workers that compute them (one aligned, C-ordered copy: Dask's
deserialized buffers can be misaligned, which made NumPy/BLAS up to 8x slower) and
stay there; each worker runs fastgd's compiled loop on its own blocks; only models,
gradients and optimizer states (a few ``K x (d+1)`` arrays) travel.
:func:`fit` is the same with every choice explicit (strategy, ``sync_every``,
``checkpoint_path``, ``client``); ``predict``, ``decision_function`` and
``predict_proba`` of a dask array return a lazy dask array.

Strategies
----------
``"gd"`` -- exact full-batch gradient descent (the default when
``batch_size="full"``). Each epoch the current parameters :math:`\theta_t` go to every
block :math:`B_b`, which returns its unscaled gradient sum and loss sums

.. math::

    G_b = \sum_{i\in B_b} s_i\,c_i\,\ell'(\theta_t^\top x_i, y_i)\,(x_i, 1),

the :math:`G_b` are added by a tree reduction on the workers (``fan_in`` blocks per
node, in block order), and one optimizer step
:math:`\theta_{t+1} = \mathrm{step}(\theta_t, G/n + \text{penalty})` is made, exactly
as the single-machine full-batch path with one thread per row range. With at most
``fan_in`` blocks the sum is added in the order of ``FastSGDRegressor(n_jobs=n_blocks)``
(row ranges cut at the same places): the same bits; against one thread it differs by
rounding only.

``"local_sgd"`` -- local SGD with periodic model averaging (Zinkevich et al. 2010,
*Parallelized stochastic gradient descent*; Stich 2018, *Local SGD converges fast and
communicates little*), the default for every other ``batch_size``. Every row block
:math:`b` holds a replica of the model and runs the estimator's own epochs (per-sample,
minibatch, any optimizer, schedule, clipping, batch norm) over its rows for
``sync_every`` epochs, starting from the common state; then parameters *and* optimizer
state are averaged with the blocks' row counts as weights,

.. math::

    \theta \leftarrow \sum_b \frac{n_b}{n}\,\theta_b,\qquad
    S \leftarrow \sum_b \frac{n_b}{n}\,S_b

(:math:`S`: momentum, moments, running averages, batch-norm statistics), and step
counters take the largest replica's value. Replicas are blocks, not workers, so the
result does not depend on the number of workers or on which worker ran what (rechunk
``X`` to choose the number of replicas). Replica 0 draws its shuffles from the
estimator's own random stream (so with one block the fit *is* the single-machine fit);
replica :math:`b \ge 1` from ``SeedSequence(seed, spawn_key=(b,))``; each stream
advances with the rounds and is checkpointed, so a rerun is identical.

Both run scikit-learn's stopping rule (``tol``, ``n_iter_no_change``, the ``"adaptive"``
rate) once per round on the objective of the round's last epoch summed over blocks
(per epoch when ``sync_every=1``, as on one machine).

Fault tolerance
---------------
Every task is a pure function of its inputs, so when a worker is lost Dask recomputes
what it held (prepared blocks from their source graph, a round's partial sums) and the
fit ends with the same bits. With ``checkpoint_path`` the training state is written
atomically after every round; calling :func:`fit` again with the same arguments resumes
an interrupted fit from it and ends bit-identical to an uninterrupted one.

Dask is imported only when this module's functions run: ``import fastgd`` never needs
it.

Examples
--------
>>> import numpy as np, dask.array as da
>>> from distributed import Client
>>> from fastgd import FastSGDRegressor
>>> import fastgd.dask
>>> client = Client(processes=False, n_workers=1, threads_per_worker=2,
...                 dashboard_address=":0")
>>> rng = np.random.default_rng(0)
>>> X = rng.normal(size=(400, 3)); y = X @ [1.0, -2.0, 0.5]
>>> Xd, yd = da.from_array(X, chunks=100), da.from_array(y, chunks=100)
>>> est = FastSGDRegressor(batch_size="full", learning_rate="constant", eta0=0.1,
...                        tol=None, max_iter=100)
>>> est = fastgd.dask.fit(est, Xd, yd, strategy="gd")  # or simply est.fit(Xd, yd)
>>> np.allclose(est.coef_, [1.0, -2.0, 0.5], atol=1e-3)
True
>>> est.predict(Xd)  # lazy
dask.array<..., shape=(400,), dtype=float64, chunksize=(100,), chunktype=numpy.ndarray>
>>> client.close()
"""

import math
import os
import pickle
import tempfile

import numpy as np

from ._bookkeeping import Bookkeeper, warn_if_not_converged
from ._executors.dask import Block, DaskAllreduce, DaskLocalSGD
from ._kernels.bundles import Rows
from ._loop import train
from ._orders import StorageOrder
from ._state import ReplicaStreams
from .linear_model._targets import class_weight_pairs, label_kind, label_targets

STRATEGIES = ("gd", "local_sgd")
MAX_INT = np.iinfo(np.int32).max
_CHECKPOINT_VERSION = 2


# ------------------------------------------------------------------ entry points
def fit(estimator, X, y, *, strategy=None, sync_every=1, checkpoint_path=None,
        client=None, fan_in=8, sample_weight=None, coef_init=None, intercept_init=None,
        resume=True, timeout=None):
    """Fit ``estimator`` on dask collections, on the workers of a Dask cluster.

    Parameters
    ----------
    estimator : FastSGDRegressor or FastSGDClassifier
        Its parameters define the model and the local algorithm; ``early_stopping``
        and ``restore_best_weights`` are not available here (they need a held-out
        set / snapshots across the cluster).
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
        Dense float32/float64 (other numeric dtypes are converted to float64 on the
        workers). Its row blocks are the unit of work (and, for ``"local_sgd"``, the
        model replicas); columns are merged into one block.
    y : dask array/Series or array-like of shape (n_samples,) or (n_samples, n_outputs)
        Rechunked to ``X``'s row blocks.
    strategy : {"gd", "local_sgd"} or None, default=None
        None: ``"gd"`` when ``estimator.batch_size`` is ``"full"``/None (exact
        full-batch gradient descent), ``"local_sgd"`` otherwise.
    sync_every : int, default=1
        ``"local_sgd"``: epochs each replica runs between two averagings (one round).
    checkpoint_path : str or path-like or None, default=None
        File to which the training state is written (atomically) after each round. If
        it holds an unfinished fit of the same estimator parameters, strategy and data
        layout, training resumes from it (``resume=True``); a finished one is
        overwritten.
    client : distributed.Client or None, default=None
        None: the active client (``distributed.default_client()``).
    fan_in : int, default=8
        Partial results added per node of the tree reduction (>= 2).
    sample_weight : dask array or array-like of shape (n_samples,), default=None
    coef_init, intercept_init : array-like, default=None
        As in ``estimator.fit``.
    resume : bool, default=True
        Resume from an unfinished checkpoint at ``checkpoint_path``.
    timeout : float or None, default=None
        Seconds to wait for one round before raising ``TimeoutError``.

    Returns
    -------
    estimator
        Fitted, with the attributes of a single-machine fit; one ``loss_curve_`` entry
        per epoch.
    """
    estimator._validate_params()
    return _Fit(estimator, X, y, strategy=strategy, sync_every=sync_every,
                checkpoint_path=checkpoint_path, client=client, fan_in=fan_in,
                sample_weight=sample_weight, coef_init=coef_init,
                intercept_init=intercept_init, resume=resume, timeout=timeout,
                partial=False, classes=None).run()


def partial_fit(estimator, X, y, *, classes=None, strategy=None, client=None, fan_in=8,
                sample_weight=None, timeout=None):
    """One epoch (one round of one epoch) of :func:`fit`, continuing from the current
    state, as ``estimator.partial_fit`` does for NumPy input.

    ``classes`` is required on a classifier's first call. To stream NumPy blocks
    through the ordinary ``partial_fit`` instead, use
    ``dask_ml.wrappers.Incremental(estimator)``.
    """
    estimator._validate_params()
    return _Fit(estimator, X, y, strategy=strategy, sync_every=1, checkpoint_path=None,
                client=client, fan_in=fan_in, sample_weight=sample_weight,
                coef_init=None, intercept_init=None, resume=False, timeout=timeout,
                partial=True, classes=classes).run()


def predict(estimator, X, method="predict"):
    """``estimator.<method>`` of a dask array or DataFrame, as a lazy dask array.

    Parameters
    ----------
    estimator : fitted FastSGDRegressor or FastSGDClassifier
    X : dask.array.Array or dask.dataframe.DataFrame of shape (n_samples, n_features)
    method : {"predict", "decision_function", "predict_proba", "predict_log_proba"}

    Returns
    -------
    dask.array.Array
        One block per row block of ``X``; nothing is computed until asked.
    """
    from sklearn.utils.validation import check_is_fitted

    allowed = ("predict", "decision_function", "predict_proba", "predict_log_proba")
    if method not in allowed:
        raise ValueError(f"method must be one of {allowed}; got {method!r}.")
    check_is_fitted(estimator, "coef_")
    getattr(estimator, method)  # AttributeError when unavailable (predict_proba, hinge)
    X, _ = _as_array(X)
    if X.ndim != 2 or X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[-1] if X.ndim else 0} features, but "
            f"{type(estimator).__name__} is expecting {estimator.n_features_in_} "
            "features as input."
        )
    X = X.rechunk({1: -1})
    names = getattr(estimator, "feature_names_in_", None)
    classes = getattr(estimator, "classes_", None)
    if method in ("predict_proba", "predict_log_proba"):
        n_cols = len(classes)
    elif classes is not None:
        n_cols = 1 if method == "predict" or len(estimator.intercept_) == 1 else len(classes)
    else:
        n_cols = 1 if estimator._y_ndim == 1 else len(estimator.intercept_)
    one_d = n_cols == 1 and method in ("predict", "decision_function")
    dtype = classes.dtype if (classes is not None and method == "predict") else \
        estimator.coef_.dtype
    if one_d:
        return X.map_blocks(_predict_block, estimator, method, names, dtype=dtype,
                            drop_axis=1, meta=np.empty((0,), dtype=dtype))
    return X.map_blocks(_predict_block, estimator, method, names, dtype=dtype,
                        chunks=(X.chunks[0], (n_cols,)),
                        meta=np.empty((0, 0), dtype=dtype))


# ------------------------------------------------------------------ worker tasks
def _predict_block(xb, est, method, names):
    if names is not None:
        import pandas as pd

        xb = pd.DataFrame(xb, columns=names)
    return getattr(est, method)(xb)


def _prepare_block(xb, yb, swb, target):
    """One training block on its worker (a :class:`~fastgd._executors.dask.Block`): an
    aligned C-ordered copy of X, the (n, K) float64 targets, the sample weights and the
    row order."""
    xb = np.asarray(xb)
    if xb.dtype not in (np.float32, np.float64):
        xb = xb.astype(np.float64)
    # one owned, aligned, C-ordered copy per block: deserialized buffers can be
    # misaligned (up to 8x slower kernels) and a view would pin its parent in memory
    xb = np.array(xb, order="C", copy=True)
    if not np.isfinite(xb).all():
        raise ValueError("Input X contains NaN or infinity.")
    n = xb.shape[0]
    yb = np.asarray(yb)
    kind = target["kind"]
    if kind == "regression":
        if not np.issubdtype(yb.dtype, np.number):
            raise ValueError(f"y must be numeric for a regressor; got dtype {yb.dtype}.")
        Y = np.ascontiguousarray(yb.reshape(n, -1), dtype=np.float64)
        if not np.isfinite(Y).all():
            raise ValueError("Input y contains NaN or infinity.")
    else:
        classes = target["classes"]
        y_idx = np.searchsorted(classes, yb)
        bad = (y_idx >= len(classes)) | (classes[np.minimum(y_idx, len(classes) - 1)] != yb)
        if bad.any():
            raise ValueError(f"y contains labels not in classes: {np.unique(yb[bad])!r}")
        Y = label_targets(y_idx, len(classes), kind, target["negative"])
    sw = np.ones(n) if swb is None else np.array(swb, dtype=np.float64, copy=True)
    if sw.shape != (n,) or not np.isfinite(sw).all():
        raise ValueError("sample_weight must be finite, of shape (n_samples,).")
    return Block(Rows(xb, Y, sw, target["cw"]), np.arange(n, dtype=np.int64))


# ------------------------------------------------------------------ client side
def _is_dataframe(obj):
    return hasattr(obj, "__dask_graph__") and hasattr(obj, "to_dask_array")


def _as_array(obj, lengths=False):
    """A dask array (and column names of a DataFrame, else None)."""
    import dask.array as da

    names = None
    if _is_dataframe(obj):
        if getattr(obj, "ndim", 1) == 2:
            cols = list(obj.columns)
            if cols and all(isinstance(c, str) for c in cols):
                names = np.asarray(cols, dtype=object)
        obj = obj.to_dask_array(lengths=True) if lengths else obj.to_dask_array()
    elif not isinstance(obj, da.Array):
        if hasattr(obj, "__dask_graph__"):
            raise ValueError(f"unsupported dask collection {type(obj).__name__}; pass a "
                             "dask array or DataFrame.")
        obj = np.asarray(obj)
    return obj, names


def _aligned(obj, chunks, name):
    """``obj`` as a dask array cut into the row blocks ``chunks``."""
    import dask.array as da

    arr, _ = _as_array(obj, lengths=True)
    n = sum(chunks)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but X has {n}.")
    if isinstance(arr, np.ndarray):
        return da.from_array(arr, chunks=(chunks,) + arr.shape[1:])
    if any(math.isnan(c) for c in arr.chunks[0]):
        arr = arr.compute_chunk_sizes()
    spec = {0: chunks}
    if arr.ndim == 2:
        spec[1] = -1
    return arr.rechunk(spec)


class _Fit:
    """One call of :func:`fit` / :func:`partial_fit` (client side)."""

    def __init__(self, est, X, y, *, strategy, sync_every, checkpoint_path, client,
                 fan_in, sample_weight, coef_init, intercept_init, resume, timeout,
                 partial, classes):
        self.est = est
        if strategy is None:
            strategy = "gd" if est.batch_size in ("full", None) else "local_sgd"
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES} or None; got "
                             f"{strategy!r}.")
        if isinstance(sync_every, bool) or not isinstance(sync_every, (int, np.integer)) \
                or sync_every < 1:
            raise ValueError(f"sync_every must be an int >= 1; got {sync_every!r}.")
        if isinstance(fan_in, bool) or not isinstance(fan_in, (int, np.integer)) \
                or fan_in < 2:
            raise ValueError(f"fan_in must be an int >= 2; got {fan_in!r}.")
        if est.early_stopping:
            raise ValueError("early_stopping=True is not supported with dask input (it "
                             "needs a held-out set); use a separate validation set.")
        if est.restore_best_weights:
            raise ValueError("restore_best_weights=True is not supported with dask "
                             "input.")
        if strategy == "gd" and est.batch_size not in ("full", None):
            raise ValueError("strategy='gd' is full-batch gradient descent: it needs "
                             f"batch_size='full' (got batch_size={est.batch_size!r}); "
                             "minibatch and per-sample training use "
                             "strategy='local_sgd'.")
        if strategy == "gd" and est.batch_norm:
            raise ValueError("strategy='gd' does not support batch_norm=True (the "
                             "statistics of the full batch would need another "
                             "reduction per step); use strategy='local_sgd'.")
        if getattr(est, "on_divergence", "raise") != "raise":
            raise ValueError("on_divergence must be 'raise' with dask input (a "
                             "divergent replica is not rolled back); got "
                             f"{est.on_divergence!r}.")
        if est.device == "cuda":
            # the workers run fastgd's CPU kernels; "auto" means the CPU here
            raise ValueError("device='cuda' is not supported with dask input: the "
                             "workers run fastgd's CPU kernels. Use device='cpu' or "
                             "'auto'.")
        self.strategy = strategy
        self.sync_every = int(sync_every)
        self.fan_in = int(fan_in)
        self.checkpoint_path = (os.fspath(checkpoint_path)
                                if checkpoint_path is not None else None)
        self.resume = bool(resume)
        self.timeout = timeout
        self.partial = partial
        self.classes = classes
        self.coef_init, self.intercept_init = coef_init, intercept_init
        self.client = self._client(client)
        self.X, self.y, self.sample_weight = X, y, sample_weight

    @staticmethod
    def _client(client):
        if client is not None:
            return client
        from distributed import default_client

        try:
            return default_client()
        except ValueError:
            raise RuntimeError(
                "Training on dask collections needs a dask.distributed Client: start "
                "one (`from distributed import Client; client = Client()`) or pass "
                "client= to fastgd.dask.fit."
            ) from None

    # ------------------------------------------------------------- data
    def _load(self):
        """Validate the collections, fix the estimator's targets, prepare the blocks
        on the workers (futures: the data never comes to the client)."""
        import dask

        est = self.est
        X, names = _as_array(self.X, lengths=True)
        if isinstance(X, np.ndarray):
            raise ValueError("X must be a dask array or DataFrame here.")
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got {X.ndim}D array instead.")
        if not isinstance(getattr(X, "_meta", np.empty(0)), np.ndarray):
            raise ValueError("dask arrays of sparse blocks are not supported; use dense "
                             "blocks (or train on CSR matrices on one machine).")
        if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
            raise ValueError(f"X must be numeric; got dtype {X.dtype}.")
        if any(math.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()
        X = X.rechunk({1: -1})
        chunks = tuple(int(c) for c in X.chunks[0] if c > 0)
        if X.chunks[0] != chunks:
            X = X.rechunk({0: chunks})
        n, d = int(X.shape[0]), int(X.shape[1])
        if n < 1 or d < 1:
            raise ValueError(f"Found array with {n} sample(s) and {d} feature(s); a "
                             "minimum of 1 is required.")
        self.dtype = np.dtype(X.dtype) if X.dtype in (np.float32, np.float64) else \
            np.dtype(np.float64)
        y = _aligned(self.y, chunks, "y")
        sw = (None if self.sample_weight is None
              else _aligned(self.sample_weight, chunks, "sample_weight"))
        first = self.partial and not hasattr(est, "coef_")
        if not self.partial or first:
            est.n_features_in_ = d
            if names is not None:
                est.feature_names_in_ = names
            elif hasattr(est, "feature_names_in_"):
                del est.feature_names_in_
        elif d != est.n_features_in_:
            raise ValueError(f"X has {d} features, but {type(est).__name__} is "
                             f"expecting {est.n_features_in_} features as input.")
        target, n_outputs, cw = self._targets(y, first)
        self.n, self.d, self.K, self.chunks = n, d, n_outputs, chunks
        xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
        sws = sw.to_delayed().ravel() if sw is not None else [None] * len(xs)
        prep = dask.delayed(_prepare_block, pure=True)
        target["cw"] = cw
        self.blocks = self.client.compute([prep(a, b, c, target)
                                           for a, b, c in zip(xs, ys, sws)])
        self.weights = np.asarray(chunks, dtype=np.float64) / n

    def _targets(self, y, first):
        """Target encoding (as the estimator's own fit), output count, class weights."""
        est = self.est
        classifier = hasattr(est, "multi_class")
        if not classifier:
            if y.ndim not in (1, 2):
                raise ValueError(f"y must be 1-D or 2-D; got {y.ndim}-D.")
            n_outputs = 1 if y.ndim == 1 else int(y.shape[1])
            if self.partial and not first:
                if (y.ndim, n_outputs) != (est._y_ndim, est._state.n_outputs):
                    raise ValueError(
                        f"y has {n_outputs} output(s) ({y.ndim}-D) but the model was "
                        f"fitted with {est._state.n_outputs} ({est._y_ndim}-D).")
            else:
                est._y_ndim = y.ndim
            return {"kind": "regression"}, n_outputs, np.ones((n_outputs, 2))
        import dask.array as da
        from sklearn.utils.class_weight import compute_class_weight

        if y.ndim != 1:
            raise ValueError("y must be 1-D for a classifier.")
        if self.partial:
            if first:
                if self.classes is None:
                    raise ValueError("classes must be passed on the first call to "
                                     "partial_fit.")
                if est.class_weight == "balanced":
                    raise ValueError("class_weight 'balanced' is not supported for "
                                     "partial_fit.")
                est.classes_ = np.unique(self.classes)
            elif self.classes is not None and not np.array_equal(
                    np.unique(self.classes), est.classes_):
                raise ValueError(f"`classes={self.classes!r}` is not the same as on "
                                 f"last call to partial_fit, was: {est.classes_!r}")
            classes = est.classes_
            counts = None
        else:
            # class labels and counts: one small reduction (the labels, not the rows)
            futures = self.client.compute(list(da.unique(y, return_counts=True)))
            classes, counts = (f.result(timeout=self.timeout) for f in futures)
            est.classes_ = classes
        if len(classes) < 2:
            raise ValueError("The number of classes has to be greater than one; got "
                             f"{len(classes)} class")
        if est.class_weight == "balanced":
            # scikit-learn's n / (n_classes * bincount)
            cw_per_class = counts.sum() / (len(classes) * counts.astype(np.float64))
        else:
            cw_per_class = compute_class_weight(est.class_weight, classes=classes,
                                                y=classes)
        multinomial = est._multinomial()
        self.multinomial = multinomial
        kind = label_kind(multinomial, len(classes))
        K = len(classes) if kind != "binary" else 1
        return ({"kind": kind, "classes": classes, "negative": est._negative_label()}, K,
                class_weight_pairs(cw_per_class, kind))

    # ------------------------------------------------------------- state
    def _initial_state(self, prog):
        """The training state at the start of the call (as the estimator's own fit),
        with the seed of the replicas' streams."""
        from sklearn.utils import check_random_state

        est = self.est
        K, d = self.K, self.d
        if self.partial and getattr(est, "_state", None) is not None:
            state = est._fastgd_initial_state(prog, K, d, fresh=False, warm=False)
            seed = state.replicas.seed if state.replicas is not None else \
                check_random_state(est.random_state).randint(0, MAX_INT)
        else:
            warm = est._fastgd_warm(K, d) and not self.partial
            state = est._fastgd_initial_state(prog, K, d, fresh=True, warm=warm,
                                              coef_init=self.coef_init,
                                              intercept_init=self.intercept_init)
            seed = check_random_state(est.random_state).randint(0, MAX_INT)
            state.rng_state = np.random.default_rng(seed).bit_generator.state
        n_blocks = len(self.blocks)
        fresh = [np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))
                 .bit_generator.state for b in range(1, n_blocks)]
        previous = state.replicas.states if state.replicas is not None else []
        if self.partial and len(previous) == n_blocks - 1:
            fresh = list(previous)  # partial_fit continues every replica's stream
        state.replicas = ReplicaStreams(int(seed), fresh)
        return state

    def _fingerprint(self):
        params = {k: v for k, v in self.est.get_params(deep=False).items()
                  if k not in ("callbacks", "verbose", "warm_start", "n_jobs")}
        return repr((type(self.est).__name__, sorted(params.items()), self.strategy,
                     self.sync_every, self.fan_in, self.n, self.d, self.chunks,
                     str(self.dtype), self.K,
                     getattr(self.est, "classes_", np.empty(0)).tolist()))

    def _write_checkpoint(self, payload):
        target = self.checkpoint_path
        directory = os.path.dirname(os.path.abspath(target))
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, target)  # atomic: never a truncated checkpoint
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _read_checkpoint(self):
        if not (self.checkpoint_path and self.resume
                and os.path.exists(self.checkpoint_path)):
            return None
        with open(self.checkpoint_path, "rb") as fh:
            payload = pickle.load(fh)
        if not isinstance(payload, dict) or "version" not in payload:
            raise ValueError(f"{self.checkpoint_path!r} is not a fastgd.dask checkpoint.")
        if payload["version"] != _CHECKPOINT_VERSION:
            raise ValueError(
                f"{self.checkpoint_path!r} was written by another version of fastgd "
                f"(checkpoint format {payload['version']}); remove it or pass "
                "resume=False to start afresh.")
        if payload["complete"]:
            return None  # a finished fit: start afresh (and overwrite it)
        if payload["fingerprint"] != self._fingerprint():
            raise ValueError(
                f"The checkpoint at {self.checkpoint_path!r} belongs to another fit "
                "(estimator parameters, strategy, sync_every, fan_in or data layout "
                "differ); remove it or pass resume=False to start afresh."
            )
        return payload

    # ------------------------------------------------------------- rounds
    # ------------------------------------------------------------- driver
    def _executor(self, prog, state, rng0):
        est = self.est
        if self.strategy == "gd":
            kprog = prog.kernel_program(np.empty((0, self.d), dtype=self.dtype), self.n,
                                        self.K)
            return DaskAllreduce(self.client, self.blocks, self.fan_in, self.timeout,
                                 kprog, self.n)
        rngs = [state.rng_state] + list(state.replicas.states)
        return DaskLocalSGD(self.client, self.blocks, self.fan_in, self.timeout, prog,
                            self.weights, self.sync_every, rngs, rng0, est.shuffle,
                            est.shuffle_block_size)

    def run(self):
        est = self.est
        self._load()
        prog = est._fastgd_program(getattr(self, "multinomial", False))
        max_epochs = 1 if self.partial else int(est.max_iter)
        state = self._initial_state(prog)
        payload = self._read_checkpoint() if self.checkpoint_path else None
        if payload is not None:
            state = payload["state"]
        rng0 = np.random.default_rng()  # replica 0's stream, seen by callbacks
        rng0.bit_generator.state = state.rng_state
        executor = self._executor(prog, state, rng0)
        hook = est._fastgd_begin(prog, rng0, self.dtype, max_epochs, False)
        book = Bookkeeper(state, prog, self.n, tol=est.tol,
                          n_iter_no_change=est.n_iter_no_change,
                          hook=self._with_checkpoint(hook), progress=state.progress)
        try:
            n_iter = train(state, executor, StorageOrder(None), book, rng0, max_epochs)
        finally:
            if hook is not None:
                hook.close()
        if self.checkpoint_path:
            self._checkpoint(state, complete=True)
        est._fastgd_fitted(state, prog, book.history, n_iter, self.dtype, False)
        est._fastgd_end()
        if not self.partial:
            warn_if_not_converged(est.n_iter_, est.max_iter, est.tol)
        return est

    def _with_checkpoint(self, hook):
        """The estimator's hook, after writing the checkpoint of the round."""
        if not self.checkpoint_path:
            return hook

        def after_round(epoch, history, state):
            self._checkpoint(state, complete=False)
            return hook is not None and hook(epoch, history, state)

        return after_round

    def _checkpoint(self, state, complete):
        self._write_checkpoint({"version": _CHECKPOINT_VERSION,
                                "fingerprint": self._fingerprint(),
                                "complete": complete, "state": state})


__all__ = ["STRATEGIES", "fit", "partial_fit", "predict"]
