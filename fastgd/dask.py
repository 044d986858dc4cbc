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

import copy
import functools
import inspect
import math
import os
import pickle
import tempfile
import time

import numpy as np

from . import _engine
from ._kernels import cpu

STRATEGIES = ("gd", "local_sgd")
MAX_INT = np.iinfo(np.int32).max
_CHECKPOINT_VERSION = 1


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


def dispatch(method):
    """Decorator of the estimators' methods: dask input goes to this module.

    ``fit``/``partial_fit`` of a dask collection run :func:`fit`/:func:`partial_fit`
    with their defaults; prediction methods return lazy dask arrays (:func:`predict`).
    Anything else goes to the decorated method unchanged (one ``hasattr`` per call).
    """
    name = method.__name__
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if not hasattr(X, "__dask_graph__"):
            return method(self, X, *args, **kwargs)
        bound = signature.bind(self, X, *args, **kwargs)
        bound.apply_defaults()
        kw = dict(bound.arguments)
        kw.pop("self")
        kw.pop("X")
        if name == "fit":
            return fit(self, X, kw.pop("y"), **kw)
        if name == "partial_fit":
            return partial_fit(self, X, kw.pop("y"), **kw)
        return predict(self, X, method=name)

    return wrapper


# ------------------------------------------------------------------ worker tasks
def _predict_block(xb, est, method, names):
    if names is not None:
        import pandas as pd

        xb = pd.DataFrame(xb, columns=names)
    return getattr(est, method)(xb)


def _prepare_block(xb, yb, swb, target):
    """One training block on its worker: an aligned C-ordered copy of X, the (n, K)
    float64 targets, the sample weights and the row order."""
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
        negative = target["negative"]
        if kind == "multinomial":
            Y = np.zeros((n, len(classes)))
            Y[np.arange(n), y_idx] = 1.0
        elif kind == "binary":
            Y = np.where(y_idx == 1, 1.0, negative)[:, None]
        else:
            Y = np.where(y_idx[:, None] == np.arange(len(classes))[None, :], 1.0, negative)
        Y = np.ascontiguousarray(Y, dtype=np.float64)
    sw = np.ones(n) if swb is None else np.array(swb, dtype=np.float64, copy=True)
    if sw.shape != (n,) or not np.isfinite(sw).all():
        raise ValueError("sample_weight must be finite, of shape (n_samples,).")
    return {"X": xb, "Y": Y, "sw": sw, "cw": target["cw"],
            "order": np.arange(n, dtype=np.int64)}


def _block_grad(block, theta, active, prog):
    """Gradient and loss sums of one block at ``theta`` (the "gd" leaf)."""
    n_out, d1 = theta.shape
    G = np.zeros((n_out, d1))
    out = np.zeros((n_out, 6))
    P = np.zeros(n_out)
    order = block["order"]
    cpu.batch_grad(block["X"], block["Y"], block["sw"], block["cw"], order,
                   cpu.NO_LOOKAHEAD, 0, order.shape[0], active, prog.loss_code,
                   prog.loss_eps, prog.multinomial, np.ascontiguousarray(theta),
                   theta[:, -1].copy(), P, G, out)
    return {"sum": {"G": G, "out": out[:, :3].copy()}, "max": {}, "cat": {}}


_AVERAGED = ("theta", "avg", "q", "sc", "opt_state", "bn_mean", "bn_var")


def _local_round(block, state, rng_state, prog, n_epochs, weight, replica, whole,
                 shuffle, shuffle_block):
    """``n_epochs`` epochs of one replica on its block (the "local_sgd" leaf).

    Returns the weighted state (``weight * array``, summed by the reduction), the step
    counters (reduced by max), the replica's random stream and its epoch histories.
    With one replica (``whole``) the state itself is returned: the fit is then exactly
    the single-machine one.
    """
    state = copy.deepcopy(state)  # tasks of an in-process cluster share arguments
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    _, hist = _engine.run(state, prog, block["X"], block["Y"], block["sw"], block["cw"],
                          block["order"], max_epochs=n_epochs, tol=None,
                          n_iter_no_change=1, shuffle=shuffle, rng=rng,
                          shuffle_block=shuffle_block, n_threads=1)
    wsum = float(block["sw"].sum())
    sums = {"loss": np.asarray(hist.loss) * wsum, "wsum": np.array(wsum),
            "norm_sum": np.asarray(hist.norm_sum), "n_updates": np.asarray(hist.n_updates),
            "objective": np.asarray(hist.objective)}
    cat = {("rng", replica): rng.bit_generator.state}
    if replica == 0:
        cat["lr"] = list(hist.lr)
    if whole:
        cat["state"] = state
        cat["hist"] = hist
        return {"sum": sums, "max": {}, "cat": cat}
    _engine.unscale(state)  # average plain arrays, not scaled representations
    for key in _AVERAGED:
        sums[key] = weight * state[key]
    return {"sum": sums, "max": {"updates": state["updates"], "step": state["step"]},
            "cat": cat}


def _combine(*parts):
    """Add ``sum`` entries (in argument order: deterministic), take the maximum of
    ``max`` entries, merge ``cat`` entries. One node of the tree reduction."""
    acc = {"sum": {}, "max": {}, "cat": {}}
    for p in parts:
        for k, v in p["sum"].items():
            if k not in acc["sum"]:
                acc["sum"][k] = np.zeros_like(v)  # 0 + g, as the threaded full batch
            acc["sum"][k] += v
        for k, v in p["max"].items():
            acc["max"][k] = v.copy() if k not in acc["max"] else np.maximum(acc["max"][k], v)
        acc["cat"].update(p["cat"])
    return acc


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
                if (y.ndim, n_outputs) != (est._y_ndim, est._state["theta"].shape[0]):
                    raise ValueError(
                        f"y has {n_outputs} output(s) ({y.ndim}-D) but the model was "
                        f"fitted with {est._state['theta'].shape[0]} ({est._y_ndim}-D).")
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
        negative = 0.0 if est.loss == "log_loss" else -1.0
        n_classes = len(classes)
        if multinomial:
            kind, K = "multinomial", n_classes
            cw = np.column_stack([cw_per_class, np.ones(n_classes)])
        elif n_classes == 2:
            kind, K = "binary", 1
            cw = np.array([[cw_per_class[1], cw_per_class[0]]], dtype=np.float64)
        else:
            kind, K = "ovr", n_classes
            cw = np.column_stack([cw_per_class, np.ones(n_classes)])
        return ({"kind": kind, "classes": classes, "negative": negative}, K,
                np.ascontiguousarray(cw, dtype=np.float64))

    # ------------------------------------------------------------- state
    def _initial_state(self, prog):
        """The training state at the start of the call (as ``BaseFastSGD._train``)."""
        from sklearn.utils import check_random_state

        est = self.est
        prev = getattr(est, "_state", None)
        K, d = self.K, self.d
        if self.partial and prev is not None:
            state = prev
            if state["opt_code"] != prog.opt_code:
                _engine.reset_optimizer(state, prog)
            seed = state.get("dask_seed")
            if seed is None:
                seed = check_random_state(est.random_state).randint(0, MAX_INT)
            return state, seed
        coef_init, intercept_init = self.coef_init, self.intercept_init
        warm = bool(est.warm_start and prev is not None
                    and prev["theta"].shape == (K, d + 1)
                    and not self.partial)
        if warm and prog.batch_norm and coef_init is None and intercept_init is None:
            theta, _ = _engine.unscaled_copies(prev)
            state = _engine.new_state(K, d, prog, theta[:, :-1], theta[:, -1])
            state["bn_mean"][:] = prev["bn_mean"]
            state["bn_var"][:] = prev["bn_var"]
        else:
            if warm:
                coef_init = est.coef_ if coef_init is None else coef_init
                intercept_init = est.intercept_ if intercept_init is None else intercept_init
            coef, intercept = est._check_init(coef_init, intercept_init, K, d)
            state = _engine.new_state(K, d, prog, coef, intercept)
        seed = check_random_state(est.random_state).randint(0, MAX_INT)
        state["rng"] = np.random.default_rng(seed).bit_generator.state
        return state, seed

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
        if not isinstance(payload, dict) or payload.get("version") != _CHECKPOINT_VERSION:
            raise ValueError(f"{self.checkpoint_path!r} is not a fastgd.dask checkpoint.")
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
    def _wait(self, future):
        return future.result(timeout=self.timeout)

    def _reduce(self, parts):
        """Tree reduction on the workers: ``fan_in`` consecutive parts per node."""
        client = self.client
        while len(parts) > 1:
            parts = [client.submit(_combine, *parts[i:i + self.fan_in], pure=False)
                     for i in range(0, len(parts), self.fan_in)]
        result = self._wait(parts[0])
        return result if len(self.blocks) > 1 else _combine(result)

    def _gd_epoch(self, state, prog, active, eta_fixed, out):
        """One exact full-batch step: block gradients, tree sum, one optimizer step."""
        theta = state["theta"]
        parts = [self.client.submit(_block_grad, b, theta.copy(), active.copy(), prog,
                                    pure=False) for b in self.blocks]
        total = self._reduce(parts)["sum"]
        G = total["G"]
        out[...] = 0.0
        out[:, :3] += total["out"]
        unused = np.zeros(1)
        # the same call as the single-machine full batch with one thread per row range
        cpu.batch_step(G, self.n, theta, active, prog.fit_intercept, prog.multinomial,
                       prog.alpha_l2, prog.alpha_l1, prog.clip_value, prog.clip_norm,
                       prog.opt_code, prog.opt_hp, state["opt_state"], state["step"],
                       prog.sched_code, prog.sched_sp, prog.sched_unit, state["updates"],
                       float(state["epochs"]), eta_fixed, prog.average, state["avg"],
                       False, unused, unused, out)
        state["epochs"] += 1

    def _local_round(self, state, prog, rngs, n_epochs, active):
        """One round of local SGD; returns (new state, new rng states, per-epoch sums)."""
        est = self.est
        whole = len(self.blocks) == 1
        parts = [self.client.submit(
            _local_round, b, state, rngs[r], prog, n_epochs, float(self.weights[r]), r,
            whole, est.shuffle, est.shuffle_block_size, pure=False)
            for r, b in enumerate(self.blocks)]
        res = self._reduce(parts)
        sums, cat = res["sum"], res["cat"]
        new_rngs = [cat[("rng", r)] for r in range(len(self.blocks))]
        if whole:
            new = cat["state"]
        else:
            new = dict(state)
            new.pop("plain_w", None)
            new.pop("plain_aw", None)
            for key in _AVERAGED:
                new[key] = sums[key]
            new["updates"] = res["max"]["updates"]
            new["step"] = res["max"]["step"]
            new["scaled"] = False
            new["epochs"] = state["epochs"] + n_epochs
        if not active.all():
            # converged outputs keep their parameters (as on one machine, where they
            # stop training while the others go on)
            _engine.unscale(new)
            old_theta, old_avg = _engine.unscaled_copies(state)
            frozen = ~active
            new["theta"][frozen] = old_theta[frozen]
            new["avg"][frozen] = old_avg[frozen]
            for key in ("q", "opt_state", "updates", "step"):
                new[key][frozen] = state[key][frozen]
            new["sc"][frozen, cpu.S_U] = state["sc"][frozen, cpu.S_U]
        return new, new_rngs, sums, cat

    # ------------------------------------------------------------- driver
    def run(self):
        from ._program import lower
        from .callbacks import as_callbacks

        est = self.est
        self._load()
        prog = lower(est, multinomial=getattr(self, "multinomial", False))
        max_epochs = 1 if self.partial else int(est.max_iter)
        state, seed = self._initial_state(prog)
        state["dask_seed"] = seed
        n_blocks = len(self.blocks)
        K = self.K
        rngs = [state["rng"]] + [
            np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,)))
            .bit_generator.state for b in range(1, n_blocks)]
        previous = state.get("replica_rngs") or []
        if self.partial and len(previous) == n_blocks - 1:
            rngs[1:] = previous  # partial_fit continues every replica's stream
        if prog.adaptive and state["eta"] is None:
            state["eta"] = np.full(K, float(prog.sched_sp[0]))
        hist = _engine.History()
        active = np.ones(K, dtype=np.bool_)
        best_obj = np.full(K, math.inf)
        no_improve = np.zeros(K, dtype=np.int64)
        epochs_done = 0
        tol_v = -math.inf if est.tol is None else float(est.tol)
        joint = prog.multinomial

        payload = self._read_checkpoint() if self.checkpoint_path else None
        if payload is not None:
            state, rngs = payload["state"], payload["rngs"]
            active, best_obj = payload["active"], payload["best_obj"]
            no_improve, epochs_done = payload["no_improve"], payload["epochs_done"]
            for key, values in payload["hist"].items():
                setattr(hist, key, list(values))

        rng0 = np.random.default_rng()  # replica 0's stream, seen by callbacks
        rng0.bit_generator.state = rngs[0]
        callbacks = as_callbacks(est.callbacks)
        hook = est._epoch_hook(callbacks, prog, rng0, self.dtype, max_epochs, False)
        for cb in callbacks:
            if hasattr(cb, "on_train_begin"):
                cb.on_train_begin(est)
        out = np.zeros((K, 6))
        eta_fixed = np.zeros(K)
        t_start = time.perf_counter()
        t_offset = hist.time[-1] if hist.time else 0.0
        try:
            while epochs_done < max_epochs and active.any():
                rows = [0] if joint else np.flatnonzero(active)
                if self.strategy == "gd":
                    _engine.host_rates(prog, state, eta_fixed)
                    self._gd_epoch(state, prog, active, eta_fixed, out)
                    n_ep = 1
                    finite = bool(np.isfinite(state["theta"]).all())
                    objective_sum = out[:, 0].copy()
                    wsum = out[rows, 2].sum() / max(len(rows), 1)
                    losses = [float(out[rows, 1].sum() / wsum) if wsum > 0 else 0.0]
                    lrs = [float(out[rows[0], 4])]
                    norms = [float(out[rows, 3].sum())]
                    n_upd = [float(out[rows, 5].sum())]
                else:
                    n_ep = min(self.sync_every, max_epochs - epochs_done)
                    state, rngs, sums, cat = self._local_round(state, prog, rngs, n_ep,
                                                               active)
                    theta, _ = _engine.unscaled_copies(state)
                    finite = bool(np.isfinite(theta).all())
                    objective_sum = sums["objective"][-1].copy()
                    if n_blocks == 1:  # the replica's own records: single-machine bits
                        losses = cat["hist"].loss
                    else:
                        losses = list(sums["loss"] / float(sums["wsum"]))
                    lrs = cat["lr"]
                    norms = list(sums["norm_sum"])
                    n_upd = list(sums["n_updates"])
                if not finite or not np.isfinite(losses).all():
                    raise ValueError(_engine.OVERFLOW_MESSAGE.format(
                        epoch=epochs_done + n_ep))
                for e in range(n_ep):
                    epochs_done += 1
                    hist.time.append(t_offset + time.perf_counter() - t_start)
                    hist.samples.append(float(self.n * epochs_done))
                    hist.loss.append(float(losses[e]))
                    hist.lr.append(float(lrs[e]))
                    hist.norm_sum.append(float(norms[e]))
                    hist.n_updates.append(float(n_upd[e]))
                # scikit-learn's stopping rule, once per round (the run loop's code)
                objective = objective_sum / max(self.n, 1)
                if joint:
                    objective[:] = objective[0]
                worse = (objective > best_obj - tol_v) if tol_v > -math.inf else \
                    np.zeros(K, dtype=bool)
                best_obj = np.minimum(best_obj, objective)
                no_improve = np.where(worse & active, no_improve + 1, 0)
                for k in np.flatnonzero(active & (no_improve >= est.n_iter_no_change)):
                    if prog.adaptive and state["eta"][k] > 1e-6:
                        state["eta"][k] = state["eta"][k] / 5.0
                        no_improve[k] = 0
                    else:
                        active[k] = False
                state["rng"] = rngs[0]
                state["replica_rngs"] = list(rngs[1:])
                rng0.bit_generator.state = rngs[0]
                if self.checkpoint_path:
                    self._checkpoint(state, rngs, active, best_obj, no_improve,
                                     epochs_done, hist, complete=False)
                if hook is not None and hook(epochs_done - 1, hist, state):
                    break
        finally:
            if hook is not None:
                hook.close()
            self._release()
        if self.checkpoint_path:
            self._checkpoint(state, rngs, active, best_obj, no_improve, epochs_done, hist,
                             complete=True)
        est._set_fitted(state, prog, hist, epochs_done, self.dtype, False)
        for cb in callbacks:
            if hasattr(cb, "on_train_end"):
                cb.on_train_end(est)
        if not self.partial:
            _engine.warn_if_not_converged(est.n_iter_, est.max_iter, est.tol)
        return est

    def _checkpoint(self, state, rngs, active, best_obj, no_improve, epochs_done, hist,
                    complete):
        hist_lists = {k: list(getattr(hist, k)) for k in
                      ("loss", "lr", "norm_sum", "n_updates", "time", "samples")}
        self._write_checkpoint({
            "version": _CHECKPOINT_VERSION, "fingerprint": self._fingerprint(),
            "complete": complete, "state": state, "rngs": rngs, "active": active,
            "best_obj": best_obj, "no_improve": no_improve, "epochs_done": epochs_done,
            "hist": hist_lists,
        })

    def _release(self):
        """Drop the prepared blocks (the workers free them)."""
        # dropping the futures releases the blocks (another fit may share their keys)
        self.blocks = []


__all__ = ["STRATEGIES", "dispatch", "fit", "partial_fit", "predict"]
