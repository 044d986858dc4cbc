"""FastSGDRegressorCV and FastSGDClassifierCV: a hyper-parameter grid and every fold of
a cross-validation trained together.

A grid search refits one model per candidate and fold, and each fit reads all of its
rows every epoch. Here the candidates that read the data the same way (same batch
size, shuffling, loss, optimizer family, schedule family, batch norm, averaging, ...)
form a *group*, and a group trains all its candidates in one pass per fold: each row
read updates every candidate's model, whose hyper-parameters (``alpha``,
``l1_ratio``, ``eta0``, ``power_t``, ``epsilon``, the optimizer's and the schedule's
numbers, ``clip_norm``, ``clip_value``, ``class_weight``, ``tol``,
``n_iter_no_change``) are per model in the compiled loops. One more pass per group
trains every candidate on all the rows, so the best candidate's final model needs no
refit.

Each pass visits the fold's rows in the order a :class:`FastSGDRegressor` (or
:class:`FastSGDClassifier`) fitted alone on them with the same ``random_state``
would, and each model keeps its own stopping rule: every model equals, bit for bit,
the estimator fitted alone on the same rows (so ``cv_results_`` equals
``GridSearchCV``'s with the same folds). With ``device="cuda"`` a pass is one GPU loop
over all its models (:mod:`fastgd._kernels.cuda`, per-output hyper-parameters in its
state buffer), equal to the GPU fit alone to rounding.
"""

import copy
import inspect
import time
import warnings
from numbers import Real

import numpy as np
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.exceptions import FitFailedWarning
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, check_cv
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.validation import indexable

from .. import _compile_notice as compile_notice
from .. import _device
from .._bookkeeping import OVERFLOW_MESSAGE, History, summarize
from .._kernels.bundles import OutputParams, Rows
from .._loop import fit_epochs
from .._program import lower
from .._state import TrainState
from ._base import MAX_INT, kernel_input, thread_count
from ._classifier import FastSGDClassifier
from ._regressor import FastSGDRegressor

#: estimator parameters that are numbers of each model in a pass (the others must be
#: equal within a group, or they change how the data is read)
PER_MODEL = ("alpha", "l1_ratio", "eta0", "power_t", "epsilon", "clip_norm",
             "clip_value", "class_weight", "tol", "n_iter_no_change", "n_jobs",
             "verbose", "callbacks")
#: fields of the lowered program that may differ between the models of a pass
PER_OUTPUT_FIELDS = ("alpha", "l1_ratio", "alpha_l2", "alpha_l1", "loss_eps",
                     "clip_value", "clip_norm", "opt_hp", "sched_sp", "outputs")
#: the CV estimators' own parameters
CV_PARAMS = ("param_grid", "cv", "scoring", "refit", "return_train_score",
             "error_score")


def cv_signature(base):
    """The ``__init__`` signature of the CV twin of ``base``: ``param_grid`` first,
    then the search's options, then every parameter of ``base``."""
    P = inspect.Parameter
    base_params = [p.replace(kind=P.KEYWORD_ONLY)
                   for name, p in inspect.signature(base.__init__).parameters.items()
                   if name != "self"]
    own = [
        P("self", P.POSITIONAL_OR_KEYWORD),
        P("param_grid", P.POSITIONAL_OR_KEYWORD, default=None,
          annotation="dict | list[dict] | None"),
        P("cv", P.KEYWORD_ONLY, default=5, annotation="int | object"),
        P("scoring", P.KEYWORD_ONLY, default=None, annotation="str | object | None"),
        P("refit", P.KEYWORD_ONLY, default=True, annotation="bool | object"),
        P("return_train_score", P.KEYWORD_ONLY, default=False, annotation=bool),
        P("error_score", P.KEYWORD_ONLY, default=np.nan, annotation="float | str"),
    ]
    return inspect.Signature(own + base_params, return_annotation=None)


def make_init(signature):
    """An ``__init__`` that stores every parameter of ``signature`` (scikit-learn's
    rule: no validation, no other attribute)."""
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            if name != "self":
                setattr(self, name, value)

    __init__.__signature__ = signature
    __init__.__doc__ = "Store the parameters (scikit-learn's convention)."
    return __init__


class SearchCVMixin:
    """The grid search shared by :class:`FastSGDRegressorCV` and
    :class:`FastSGDClassifierCV` (see the module notes)."""

    _cv_constraints = {
        "param_grid": [dict, list, None],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "refit": ["boolean", callable],
        "return_train_score": ["boolean"],
        "error_score": [StrOptions({"raise"}), Real],
    }

    # ------------------------------------------------------------- the search
    def fit(self, X, y, sample_weight=None):
        """Train every candidate of ``param_grid`` on every training fold of ``cv``,
        score it on the fold's test rows, and (``refit``) train it on all of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        self._validate_params()
        base = self._base_estimator()
        candidates = self._candidates(base)
        if hasattr(X, "__dask_graph__"):
            raise ValueError(f"{type(self).__name__} trains on in-memory data (NumPy "
                             "arrays, SciPy CSR matrices, DataFrames); compute the "
                             "dask collection first.")
        if _device.is_device_array(X):
            raise ValueError(f"{type(self).__name__} takes X in host memory (a NumPy "
                             "array); with device='cuda' it copies X to the GPU once "
                             "for the whole search. Copy the GPU array to the host "
                             "first (e.g. cupy.asnumpy(X)).")
        X, y = self._validate_X_y(X, y, reset=True, multi_output=not is_classifier(self),
                                  y_numeric=not is_classifier(self))
        X, y = indexable(X, y)
        data = self._prepare(base, X, y, sample_weight)
        splits = list(check_cv(self.cv, y, classifier=is_classifier(self)).split(X, y))
        scorer = check_scoring(base, self.scoring)
        results = [[None] * (len(splits) + 1) for _ in candidates]
        with compile_notice.watch():
            for group in self._groups(base, candidates, data):
                passes = [(f, train) for f, (train, _) in enumerate(splits)]
                if self.refit is not False:
                    passes.append((len(splits), np.arange(X.shape[0])))
                for f, fits in self._run_passes(group, passes, data):
                    for c, fitted in fits.items():
                        results[c][f] = fitted
        self._finish_search(candidates, results, splits, scorer, X, y)
        return self

    def _base_estimator(self):
        """The estimator of every candidate before its grid values: this object's
        parameters without the search's."""
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in CV_PARAMS}
        return self._estimator_class()(**params)

    def _candidates(self, base):
        """The grid's candidates (dicts), each validated as an estimator's params."""
        grid = self.param_grid if self.param_grid is not None else {}
        candidates = list(ParameterGrid(grid))
        names = set(base.get_params(deep=False))
        for cand in candidates:
            unknown = sorted(set(cand) - names)
            if unknown:
                raise ValueError(
                    f"param_grid names {unknown}, which are not parameters of "
                    f"{type(base).__name__}; valid names: {sorted(names)}.")
        return candidates

    # ---------------------------------------------------------------- groups
    def _groups(self, base, candidates, data):
        """Candidates that train in one pass: ``[(estimators, programs, ids,
        device)]``."""
        groups = {}
        for c, cand in enumerate(candidates):
            est = clone(base).set_params(**cand)
            est._validate_params()
            if is_classifier(est):
                est.classes_ = data["classes"]
            prog = lower(est, multinomial=data["multinomial"])
            device = est._check_device(data["X"], prog)  # "auto" resolved per group
            key = self._group_key(est, prog) + (device,)
            ests, progs, ids, _ = groups.setdefault(key, ([], [], [], device))
            ests.append(est)
            progs.append(prog)
            ids.append(c)
        return list(groups.values())

    @staticmethod
    def _group_key(est, prog):
        """What must be equal for two candidates to share a pass: everything but the
        per-model numbers."""
        lowered = tuple((k, v) for k, v in vars(prog).items()
                        if k not in PER_OUTPUT_FIELDS and k != "host_lr")
        params = tuple(sorted(
            (k, repr(v)) for k, v in est.get_params(deep=False).items()
            if k not in PER_MODEL + ("optimizer", "learning_rate", "loss", "penalty")))
        return lowered + params + (id(prog.host_lr) if prog.host_lr else None,)

    # ---------------------------------------------------------------- passes
    def _run_passes(self, group, passes, data):
        """Train the group on every pass's rows (threads across passes on the CPU, one
        pass after the other on the GPU); yield ``(fold, {candidate: fitted estimator
        or error})``."""
        from concurrent.futures import ThreadPoolExecutor

        n_threads = min(thread_count(self.n_jobs), len(passes))
        if n_threads <= 1 or group[3] == "cuda":
            for f, rows in passes:
                yield f, self._one_pass(group, rows, data)
            return
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            futures = [(f, pool.submit(self._one_pass, group, rows, data))
                       for f, rows in passes]
            for f, fut in futures:
                yield f, fut.result()

    def _one_pass(self, group, rows, data):
        """Every candidate of ``group`` trained on ``rows`` at once, as each would be
        alone (its estimator's split, order, stopping rule)."""
        ests, progs, ids, device = group
        lead = ests[0]
        n_out = data["Y"].shape[1]
        y_rows = data["y"][rows]
        sw_rows = data["sw"][rows]
        local_train, local_val = lead._split_indices(
            y_rows if data["stratify"] else data["Y"][rows, 0], sw_rows,
            stratify=data["stratify"])
        train_idx = rows[local_train]
        k = len(ests) * n_out
        prog = _stacked_program(progs, n_out)
        cw = np.concatenate([est._class_weights(n_out, y_rows) for est in ests])
        state = TrainState.new(k, data["X"].shape[1], prog)
        seed = check_random_state(copy.deepcopy(lead.random_state)).randint(0, MAX_INT)
        rng = np.random.default_rng(seed)
        score = None
        if local_val is not None:
            score = _grid_scorer(ests, data, rows[local_val], n_out)
        per_model = np.repeat([[_tol(e.tol), e.n_iter_no_change] for e in ests], n_out,
                              axis=0)
        t0 = time.perf_counter()
        backend = None
        if device == "cuda":
            backend = _device_pass(data, cw, train_idx, prog)
        n_iter, hist = fit_epochs(
            state, prog, Rows(data["X_kernel"], data["Y"], data["sw"], cw), train_idx,
            max_epochs=lead.max_iter, rng=rng, shuffle=lead.shuffle,
            shuffle_block=lead.shuffle_block_size, tol=per_model[:, 0],
            n_iter_no_change=per_model[:, 1].astype(np.int64), score=score,
            restore_best=lead.restore_best_weights, on_divergence="drop",
            joint=n_out if prog.multinomial else None, backend=backend)
        seconds = (time.perf_counter() - t0) / len(ests)
        state.rng_state = rng.bit_generator.state
        out = {}
        for j, (est, p, c) in enumerate(zip(ests, progs, ids)):
            out[c] = self._extract(est, p, state, hist, (j * n_out, (j + 1) * n_out),
                                   train_idx.shape[0], data, seconds, score is not None,
                                   device)
        return out

    def _extract(self, est, prog, state, pass_hist, outputs, n_train, data, seconds,
                 validation, device):
        """Candidate ``est``'s model (outputs ``k0:k1`` of the pass) as a fitted
        estimator of its own, or the ``ValueError`` its fit alone would have raised."""
        k0, k1 = outputs
        diverged = pass_hist.diverged[k0:k1]
        if diverged.any() and est.on_divergence == "raise":
            return ValueError(OVERFLOW_MESSAGE.format(epoch=int(diverged.max())))
        hist = candidate_history(pass_hist, k0, k1, n_train, prog.multinomial)
        sub = copy.deepcopy(state.slice(k0, k1))
        sub.progress = None
        est = clone(est)  # one fitted estimator per pass
        est.n_features_in_ = data["X"].shape[1]
        if data.get("feature_names") is not None:
            est.feature_names_in_ = data["feature_names"]
        if is_classifier(est):
            est.classes_ = data["classes"]
        else:
            est._y_ndim = data["y_ndim"]
        est._fastgd_fitted(sub, prog, hist, len(hist.loss), data["X"].dtype, validation)
        est.device_ = device
        est.fit_time_ = seconds
        return est

    # ------------------------------------------------------------ the results
    def _finish_search(self, candidates, results, splits, scorer, X, y):
        """Score every fitted model, build ``cv_results_`` and choose the best."""
        n_splits = len(splits)
        res = {"params": candidates}
        test = np.full((len(candidates), n_splits), np.nan)
        train = np.full((len(candidates), n_splits), np.nan)
        fit_t = np.zeros((len(candidates), n_splits))
        score_t = np.zeros((len(candidates), n_splits))
        n_iter = np.zeros((len(candidates), n_splits), dtype=np.int64)
        curves = np.empty((len(candidates), n_splits), dtype=object)
        for f, (train_rows, test_rows) in enumerate(splits):
            # one copy of the fold's test rows (and train rows) for every candidate
            X_test, y_test = _safe_indexing(X, test_rows), _safe_indexing(y, test_rows)
            if self.return_train_score:
                X_train, y_train = (_safe_indexing(X, train_rows),
                                    _safe_indexing(y, train_rows))
            for c in range(len(candidates)):
                fitted = results[c][f]
                if isinstance(fitted, Exception):
                    self._failed(fitted, candidates[c], f)
                    test[c, f] = train[c, f] = self.error_score
                    curves[c, f] = []
                    continue
                t0 = time.perf_counter()
                test[c, f] = float(scorer(fitted, X_test, y_test))
                score_t[c, f] = time.perf_counter() - t0
                if self.return_train_score:
                    train[c, f] = float(scorer(fitted, X_train, y_train))
                fit_t[c, f] = fitted.fit_time_
                n_iter[c, f] = fitted.n_iter_
                curves[c, f] = list(fitted.loss_curve_)
            del X_test, y_test
        res.update(_stats("fit_time", fit_t), **_stats("score_time", score_t))
        for name in sorted({k for cand in candidates for k in cand}):
            res[f"param_{name}"] = np.ma.MaskedArray(
                np.array([cand.get(name) for cand in candidates], dtype=object),
                mask=[name not in cand for cand in candidates])
        for f in range(n_splits):
            res[f"split{f}_test_score"] = test[:, f]
        res.update(_stats("test_score", test))
        res["rank_test_score"] = _rank(res["mean_test_score"])
        if self.return_train_score:
            for f in range(n_splits):
                res[f"split{f}_train_score"] = train[:, f]
            res.update(_stats("train_score", train))
        for f in range(n_splits):
            res[f"split{f}_n_iter"] = n_iter[:, f]
            res[f"split{f}_loss_curve"] = curves[:, f]
        self.cv_results_ = res
        self.n_splits_ = n_splits
        self._choose_best(candidates, results, res)

    def _failed(self, error, candidate, fold):
        if self.error_score == "raise":
            raise error
        warnings.warn(f"Fitting candidate {candidate} on fold {fold} failed; its score "
                      f"is error_score={self.error_score!r}. {type(error).__name__}: "
                      f"{error}", FitFailedWarning, stacklevel=4)

    def _choose_best(self, candidates, results, res):
        """``best_index_``, ``best_params_``, ``best_score_``; with ``refit``, the best
        candidate's model trained on all rows becomes this estimator's model."""
        if callable(self.refit):
            self.best_index_ = int(self.refit(res))
        else:
            self.best_index_ = int(np.argmin(res["rank_test_score"]))
        self.best_params_ = candidates[self.best_index_]
        self.best_score_ = float(res["mean_test_score"][self.best_index_])
        if self.refit is False:
            return
        refit_models = [r[-1] for r in results]
        res["refit_n_iter"] = np.array([m.n_iter_ if not isinstance(m, Exception) else 0
                                        for m in refit_models])
        res["refit_loss_curve"] = np.array(
            [list(m.loss_curve_) if not isinstance(m, Exception) else []
             for m in refit_models] + [None], dtype=object)[:-1]
        best = refit_models[self.best_index_]
        if isinstance(best, Exception):
            raise ValueError(f"The best candidate {self.best_params_} failed on all of "
                             f"X: {best}")
        self.best_estimator_ = best
        self.refit_time_ = best.fit_time_
        for name, value in vars(best).items():
            if (name.endswith("_") and not name.startswith("__")) or name in (
                    "_state", "_y_ndim"):
                setattr(self, name, value)


def _device_pass(data, cw, train_idx, prog):
    """The GPU backend of one pass: ``X`` copied to the device once per search (the
    passes share it), the targets and the pass's class weights once per pass."""
    from .._kernels.cuda import CudaBackend, as_device  # only when a GPU trains

    if "X_device" not in data:
        data["X_device"] = as_device(data["X"])
    return CudaBackend(data["X_device"], data["Y"], data["sw"], cw, train_idx, prog)


def _tol(tol):
    return np.nan if tol is None else float(tol)


def _stacked_program(progs, n_out):
    """One program for the pass: the first candidate's, with every candidate's
    per-model numbers as per-output arrays (each repeated for its ``n_out``
    outputs)."""
    import dataclasses

    per = [p.per_output(n_out) for p in progs]
    n_sp = max(p.sched_sp.shape[1] for p in per)
    n_hp = max(p.opt_hp.shape[1] for p in per)

    def stack(name, width=None):
        parts = [getattr(p, name) for p in per]
        if width is not None:
            parts = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in parts]
        return np.ascontiguousarray(np.concatenate(parts))

    outputs = OutputParams(
        **{name: stack(name) for name in OutputParams._fields
           if name not in ("opt_hp", "sched_sp")},
        opt_hp=stack("opt_hp", n_hp), sched_sp=stack("sched_sp", n_sp))
    return dataclasses.replace(progs[0], outputs=outputs)


def _grid_scorer(ests, data, val_idx, n_out):
    """Early stopping of every candidate at once: each candidate's own scorer on
    the pass's held-out rows, on its outputs."""
    X_val = ests[0]._take_rows(data["X"], val_idx)
    Y_val = data["Y"][val_idx]
    sw_val = data["sw"][val_idx]
    y_val = data["y_idx"][val_idx] if data["y_idx"] is not None else None
    scorers = [est._validation_scorer(X_val, Y_val, sw_val, y_val) for est in ests]

    def score(coef, intercept):
        return np.concatenate([
            s(coef[j * n_out:(j + 1) * n_out], intercept[j * n_out:(j + 1) * n_out])
            for j, s in enumerate(scorers)])

    return score


def candidate_history(history, k0, k1, n_train, joint):
    """The :class:`~fastgd._bookkeeping.History` a fit of outputs ``k0:k1`` alone would
    have recorded, from the pass's per-epoch statistics and active outputs."""
    out = History()
    for e, (stats, active) in enumerate(zip(history.stats, history.active)):
        if not active[k0:k1].any() and not stats[k0:k1].any():
            break
        rows = np.flatnonzero(active[k0:k1])
        if joint:
            rows = rows[:1] if rows.size else np.zeros(1, dtype=np.int64)
        loss, lr, norm_sum, n_updates = summarize(stats[k0:k1], rows)
        out.loss.append(loss)
        out.lr.append(lr)
        out.norm_sum.append(norm_sum)
        out.n_updates.append(n_updates)
        out.time.append(history.time[e])
        out.samples.append(float(n_train * (e + 1)))
        out.stats.append(stats[k0:k1].copy())
        out.active.append(active[k0:k1].copy())
        if history.val_scores:
            scores = history.val_scores[e][k0:k1]
            out.val_scores.append(scores.copy())
            out.val.append(float(scores.mean()))
    return out


def _stats(name, values):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {f"mean_{name}": np.mean(values, axis=1),
                f"std_{name}": np.std(values, axis=1)}


def _rank(mean):
    """scikit-learn's ranks: 1 is best; failed candidates (NaN) rank last."""
    filled = np.where(np.isnan(mean), -np.inf, mean)
    return rankdata(-filled, method="min").astype(np.int32)


_SEARCH_DOC = """
    A grid of hyper-parameters, cross-validated in {n} passes per group of candidates
    (see below) instead of one fit per candidate and fold: ``param_grid`` and
    ``cv``/``scoring``/``refit``/``return_train_score``/``error_score`` as in
    :class:`sklearn.model_selection.GridSearchCV`; every other parameter is the
    :class:`{base}` parameter every candidate starts from.

    Candidates whose parameters only differ in numbers of the model (``alpha``,
    ``l1_ratio``, ``eta0``, ``power_t``, ``epsilon``, ``clip_norm``, ``clip_value``,
    ``class_weight``, ``tol``, ``n_iter_no_change``, the numbers of the optimizer and
    of the schedule) train together: per group, one pass per fold trains every
    candidate on the fold's training rows (each row read once updates every model),
    and one more pass trains every candidate on all rows (``refit``; ``refit=False``
    leaves it out). Parameters that change how the data is read (``batch_size``,
    ``shuffle``, ``loss``, the optimizer's and the schedule's kind, ``batch_norm``,
    ``average``, ``penalty``, ``early_stopping``, ``max_iter``, ...) make groups of
    their own. ``n_jobs`` runs the passes of a group in threads.

    Every model equals the :class:`{base}` fitted alone on the same rows with the same
    ``random_state``: the same row order, split for early stopping and stopping rule,
    bit for bit. So ``cv_results_`` (keys, shapes and values) is ``GridSearchCV``'s
    with the same ``cv``, and ``best_estimator_`` is ``{base}(**params,
    **best_params_).fit(X, y)``. A candidate whose fit would raise (divergence) scores
    ``error_score`` with a ``FitFailedWarning`` (the others go on), or raises with
    ``error_score="raise"``.

    ``device="cuda"`` (or ``"auto"``, resolved per group) trains each minibatch or
    full-batch group's passes on the GPU, one after the other, every model of a pass
    in the same launches; each model then equals the GPU fit alone to rounding (the
    sums run in another order), see docs/grid-search.md.

    Parameters
    ----------
    param_grid : dict or list of dicts
        Parameter names (any :class:`{base}` parameter) to lists of values, as
        ``GridSearchCV``'s.
    cv : int, cross-validation generator or iterable, default=5
    scoring : str, callable or None, default=None
        None: the estimator's ``score``.
    refit : bool or callable, default=True
        Train every candidate on all rows in the same passes, and make the best one
        this estimator's model (``best_estimator_``, ``coef_``, ``predict``, ...). A
        callable ``refit(cv_results_) -> index`` chooses the best.
    return_train_score : bool, default=False
    error_score : "raise" or float, default=np.nan
    **params
        Every other parameter of :class:`{base}`.

    Attributes
    ----------
    cv_results_ : dict of arrays
        ``GridSearchCV``'s keys (``params``, ``param_*``, ``split{{i}}_test_score``,
        ``mean_test_score``, ``std_test_score``, ``rank_test_score``, fit and score
        times: a pass's time shared equally by its candidates) and fastgd's
        ``split{{i}}_n_iter``, ``split{{i}}_loss_curve`` (each model's epochs and
        training-loss history) and, with ``refit``, ``refit_n_iter`` and
        ``refit_loss_curve``.
    best_index_, best_params_, best_score_ : as ``GridSearchCV``'s
    best_estimator_ : {base}
        The best candidate trained on all rows (with ``refit``).
    coef_, intercept_, n_iter_, loss_curve_, ... :
        The best estimator's fitted attributes (with ``refit``).
    n_splits_ : int
"""


class FastSGDRegressorCV(SearchCVMixin, FastSGDRegressor):
    __doc__ = ("Linear regression by gradient descent with every candidate of a "
               "hyper-parameter grid and every fold trained together.\n"
               + _SEARCH_DOC.format(n="folds + 1", base="FastSGDRegressor") + """
    Examples
    --------
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressorCV
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 4)); y = X @ [1.0, -2.0, 0.5, 0.0] + 0.1
    >>> search = FastSGDRegressorCV(param_grid={"alpha": [1e-4, 1e-1],
    ...                                         "eta0": [0.001, 0.01]},
    ...                             cv=3, max_iter=20, random_state=0).fit(X, y)
    >>> search.best_params_
    {'alpha': 0.0001, 'eta0': 0.01}
    >>> search.cv_results_["mean_test_score"].shape
    (4,)
    """)

    __init__ = make_init(cv_signature(FastSGDRegressor))
    _parameter_constraints = {**FastSGDRegressor._parameter_constraints,
                              **SearchCVMixin._cv_constraints}

    @staticmethod
    def _estimator_class():
        return FastSGDRegressor

    def _prepare(self, base, X, y, sample_weight):
        """What every pass shares: the kernels' view of ``X``, the (n, K) targets, the
        sample weights."""
        Y = base._targets(y, first=True)
        return _data(self, base, X, Y, y_split=Y[:, 0], y_idx=None,
                     sample_weight=sample_weight, stratify=False, multinomial=False,
                     y_ndim=base._y_ndim)

    @property
    def partial_fit(self):
        raise AttributeError("FastSGDRegressorCV has no partial_fit: continue the best "
                             "model with best_estimator_.partial_fit.")


class FastSGDClassifierCV(SearchCVMixin, FastSGDClassifier):
    __doc__ = ("Linear classification by gradient descent with every candidate of a "
               "hyper-parameter grid and every fold trained together.\n"
               + _SEARCH_DOC.format(n="folds + 1", base="FastSGDClassifier") + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from fastgd import FastSGDClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> search = FastSGDClassifierCV(param_grid={"alpha": [1e-4, 1e-2]}, cv=3,
    ...                              random_state=0).fit(X, y)
    >>> sorted(search.best_params_)
    ['alpha']
    >>> bool(search.score(X, y) > 0.8)
    True
    """)

    __init__ = make_init(cv_signature(FastSGDClassifier))
    _parameter_constraints = {**FastSGDClassifier._parameter_constraints,
                              **SearchCVMixin._cv_constraints}

    @staticmethod
    def _estimator_class():
        return FastSGDClassifier

    def _prepare(self, base, X, y, sample_weight):
        from sklearn.utils.multiclass import check_classification_targets

        check_classification_targets(y)
        base.classes_ = np.unique(y)
        if len(base.classes_) < 2:
            raise ValueError("The number of classes has to be greater than one; got "
                             f"{len(base.classes_)} class")
        self.classes_ = base.classes_
        y_idx = np.searchsorted(base.classes_, y)
        return _data(self, base, X, base._label_targets(y_idx), y_split=y, y_idx=y_idx,
                     sample_weight=sample_weight, stratify=True,
                     multinomial=base._multinomial(), classes=base.classes_)

    @property
    def partial_fit(self):
        raise AttributeError("FastSGDClassifierCV has no partial_fit: continue the best "
                             "model with best_estimator_.partial_fit.")


def _data(search, base, X, Y, *, y_split, y_idx, sample_weight, stratify, multinomial,
          y_ndim=None, classes=None):
    return {"X": X, "X_kernel": kernel_input(X), "Y": Y, "y": np.asarray(y_split),
            "y_idx": y_idx, "sw": base._sample_weight(sample_weight, X),
            "stratify": stratify, "multinomial": multinomial, "y_ndim": y_ndim,
            "classes": classes,
            "feature_names": getattr(search, "feature_names_in_", None)}
