"""The ``fastgd`` command: ``fastgd fit``, ``fastgd predict`` and ``fastgd demo``.

``fastgd fit DATA.csv --target COL --out model.skops`` trains a
:class:`~fastgd.FastSGDRegressor` or :class:`~fastgd.FastSGDClassifier` (behind a
``StandardScaler`` in a scikit-learn ``Pipeline``) on the numeric columns of a CSV file
and saves it with ``skops.io`` (a file of data: loading it runs no code);
``fastgd predict model.skops DATA.csv`` applies it; ``fastgd demo`` trains in several
modes on bundled data, prints a comparison table and draws figures. Input errors exit
with status 2 and a one-line message on stderr.

Pickles (``--out model.joblib``) are written on request, but ``fastgd predict`` loads
one only with ``--trust-pickle``: unpickling a file runs whatever code it names.
"""

import argparse
import math
import os
import sys
import warnings

from . import __version__
from ._program import LOSSES
from .optim import OPTIMIZER_NAMES

#: ``--task auto``: a numeric target holding only whole numbers is a class label when it
#: has at most this many distinct values.
AUTO_MAX_CLASSES = 20

REGRESSION_LOSSES = ("squared_error", "huber", "epsilon_insensitive",
                     "squared_epsilon_insensitive")
LEARNING_RATES = ("constant", "optimal", "invscaling", "adaptive", "cosine")
PENALTIES = ("l2", "l1", "elasticnet", "none")
MODEL_FORMAT = "fastgd-cli-model/1"
#: file names written and read as pickles (joblib); any other name is a skops file
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
#: column lists up to this long are shown whole in messages
MAX_NAMES_SHOWN = 50


class CLIError(Exception):
    """A user error: reported as one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (status 2, no usage block)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --------------------------------------------------------------------------- helpers
def _pandas():
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed with fastgd[dev]
        raise CLIError("reading CSV files needs pandas: pip install pandas") from None
    return pd


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_csv(path):
    pd = _pandas()
    if not os.path.exists(path):
        raise CLIError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory, not a CSV file")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise CLIError(f"{path} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise CLIError(f"cannot read {path} as CSV: {_first_line(exc)}") from None
    if df.shape[0] == 0:
        raise CLIError(f"{path} has a header but no data rows")
    return df


def _names(cols, limit=MAX_NAMES_SHOWN):
    cols = [str(c) for c in cols]
    shown = ", ".join(repr(c) for c in cols[:limit])
    return shown + (f", ... ({len(cols)} in all)" if len(cols) > limit else "")


def _no_such_column(path, name, columns):
    """'no column X' with the file's columns (and the closest names, if any)."""
    import difflib

    columns = [str(c) for c in columns]
    close = difflib.get_close_matches(str(name), columns, n=3, cutoff=0.6)
    hint = f"; did you mean {_names(close)}?" if close else ""
    return CLIError(f"{path} has no column {name!r}{hint} (its columns: {_names(columns)})")


def _feature_matrix(df, features, path):
    """The feature columns as a float64 array; one-line errors for unusable columns."""
    import numpy as np
    from pandas.api.types import is_numeric_dtype

    missing = [c for c in features if c not in df.columns]
    if missing:
        raise CLIError(f"{path} has no column(s) {_names(missing)} "
                       f"(its columns: {_names(df.columns)})")
    bad = [c for c in features if not is_numeric_dtype(df[c])]
    if bad:
        raise CLIError(f"feature column(s) {_names(bad)} in {path} are not numeric")
    X = df[features].to_numpy(dtype=np.float64)
    not_finite = [c for c, ok in zip(features, np.isfinite(X).all(axis=0)) if not ok]
    if not_finite:
        raise CLIError(f"feature column(s) {_names(not_finite)} in {path} have missing "
                       "or infinite values; fill or drop them first")
    return X


# ------------------------------------------------------------------------------- fit
def _infer_task(y):
    """``--task auto``: see the rule in ``fastgd fit --help``."""
    return _auto_task(y)[0]


def _auto_task(y):
    """``(task, why)``: the ``--task auto`` rule, and its reason in words."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if is_bool_dtype(y):
        return "classification", "the target holds booleans"
    if not is_numeric_dtype(y):
        return "classification", "the target holds text"
    values = y.to_numpy(dtype=np.float64)
    whole = bool(np.all(values == np.round(values)))
    if whole and y.nunique() <= AUTO_MAX_CLASSES:
        return "classification", (f"the target holds {y.nunique()} distinct whole "
                                  f"numbers (at most {AUTO_MAX_CLASSES} are classes); "
                                  "pass --task regression otherwise")
    if whole:
        return "regression", (f"the target holds more than {AUTO_MAX_CLASSES} distinct "
                              "values; pass --task classification otherwise")
    return "regression", ("the target holds numbers that are not all whole; pass --task "
                          "classification otherwise")


def _task_line(task, y, auto_reason):
    """What ``fastgd fit`` trains, e.g. ``classification: 3 classes ('a', 'b', 'c')``;
    with ``--task auto`` also why (and, for a numeric target, how to choose
    otherwise)."""
    import numpy as np

    line = task
    if task == "classification":
        classes = np.unique(y).tolist()
        shown = ", ".join(repr(c) for c in classes[:10])
        line += f": {len(classes)} classes ({shown}{', ...' if len(classes) > 10 else ''})"
    if auto_reason is not None:
        line += f" (--task auto: {auto_reason})"
    return line


def _target(df, target, task, path):
    """``(y, task)``: the target column as labels or floats, and the resolved task."""
    import numpy as np
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if target not in df.columns:
        raise _no_such_column(path, target, df.columns)
    col = df[target]
    n_missing = int(col.isna().sum())
    if n_missing:
        raise CLIError(f"target column {target!r} has {n_missing} missing value(s)")
    if task == "auto":
        task = _infer_task(col)
    numeric = is_numeric_dtype(col) and not is_bool_dtype(col)
    if task == "regression":
        if not numeric:
            raise CLIError(f"target column {target!r} is not numeric: it cannot be a "
                           "regression target (use --task classification)")
        y = col.to_numpy(dtype=np.float64)
        if not np.isfinite(y).all():
            raise CLIError(f"target column {target!r} has infinite values")
        return y, task
    # classification: whole numbers become integer labels, text stays text
    if numeric:
        values = col.to_numpy(dtype=np.float64)
        if not (np.isfinite(values).all() and np.all(values == np.round(values))):
            raise CLIError(f"target column {target!r} has non-integer numbers: it cannot "
                           "be a class label (use --task regression)")
        y = values.astype(np.int64)
    elif is_bool_dtype(col):
        y = col.to_numpy(dtype=bool)
    else:
        y = col.astype(str).to_numpy()
    if len(np.unique(y)) < 2:
        raise CLIError(f"target column {target!r} has a single class: nothing to classify")
    return y, task


def _batch_size(text):
    if text == "full":
        return "full"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid batch size {text!r}: a positive integer or 'full'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid batch size {text!r}: must be >= 1")
    return value


def _number(kind, low, low_open):
    """argparse type: an int or float with a lower bound."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid {'integer' if kind is int else 'number'}: {text!r}") from None
        if math.isnan(value) or (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(
                f"invalid value {text!r}: must be {'>' if low_open else '>='} {low}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _make_estimator(args, task):
    from . import FastSGDClassifier, FastSGDRegressor
    from .schedules import Cosine

    if task == "regression" and args.loss is not None and args.loss not in REGRESSION_LOSSES:
        raise CLIError(f"--loss {args.loss} is a classification loss; a regression takes "
                       f"one of {', '.join(REGRESSION_LOSSES)}")
    if task == "regression" and args.multi_class is not None:
        raise CLIError("--multi-class applies to classification only")
    cls = FastSGDRegressor if task == "regression" else FastSGDClassifier
    if args.cv is not None:
        from . import FastSGDClassifierCV, FastSGDRegressorCV

        cls = FastSGDRegressorCV if task == "regression" else FastSGDClassifierCV
    elif args.grid:
        raise CLIError("--grid needs --cv (the number of cross-validation folds)")
    options = {
        "loss": args.loss, "optimizer": args.optimizer, "batch_size": args.batch_size,
        "eta0": args.eta0, "max_iter": args.max_iter, "alpha": args.alpha,
        "clip_norm": args.clip_norm, "multi_class": args.multi_class,
    }
    params = {k: v for k, v in options.items() if v is not None}
    if args.penalty is not None:
        params["penalty"] = None if args.penalty == "none" else args.penalty
    if args.tol is not None:
        params["tol"] = None if args.tol == "none" else float(args.tol)
    if args.batch_norm:
        params["batch_norm"] = True
    if args.early_stopping:
        params["early_stopping"] = True
    params["random_state"] = args.random_state
    if args.cv is not None:
        params.update(param_grid=dict(args.grid or []), cv=args.cv)
    est = cls(**params)
    if args.learning_rate == "cosine":
        est.set_params(learning_rate=Cosine(T_max=est.max_iter))
    elif args.learning_rate is not None:
        est.set_params(learning_rate=args.learning_rate)
    return est


def _grid_spec(text):
    """``--grid NAME=VALUES``: ``a:b:n`` is n values from a to b (log-spaced when
    both are positive, else evenly spaced); ``v1,v2,...`` the values themselves
    (numbers, ``none`` or words)."""
    import numpy as np

    name, sep, values = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not values.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUES, got {text!r}")
    parts = values.split(":")
    if len(parts) == 3:
        try:
            a, b, n = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: a:b:n takes two numbers and a count") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: the count must be >= 1")
        grid = (np.logspace(np.log10(a), np.log10(b), n) if a > 0 and b > 0
                else np.linspace(a, b, n))
        return name, [float(v) for v in grid]
    return name, [_grid_value(v.strip()) for v in values.split(",")]


def _grid_value(text):
    if text.lower() == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _cv_report(est, task):
    """Lines of a grid search's outcome: the best candidate, the top of the ranking."""
    import numpy as np

    res = est.cv_results_
    metric = "R^2" if task == "regression" else "accuracy"
    order = np.argsort(res["rank_test_score"], kind="stable")[:5]
    lines = [f"grid search: {len(res['params'])} candidates x {est.n_splits_} folds; "
             f"best {est.best_params_}, mean cross-validated {metric} "
             f"{est.best_score_:.4f}"]
    for i in order:
        lines.append(f"  rank {res['rank_test_score'][i]:3d}: "
                     f"{res['mean_test_score'][i]:.4f} +/- {res['std_test_score'][i]:.4f}"
                     f"  {res['params'][i]}")
    return lines


def _tol(text):
    if text.strip().lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid tolerance {text!r}: a number >= 0 "
                                         "or 'none'") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"invalid tolerance {text!r}: must be >= 0")
    return value


def fit(args):
    """Train on a CSV file and save the fitted pipeline (skops, or joblib on request)."""
    import joblib
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    df = _read_csv(args.data)
    y, task = _target(df, args.target, args.task, args.data)
    auto_reason = _auto_task(df[args.target])[1] if args.task == "auto" else None
    if args.features:
        features = [c.strip() for item in args.features for c in item.split(",") if c.strip()]
        if args.target in features:
            raise CLIError(f"the target {args.target!r} cannot also be a feature")
        if len(set(features)) != len(features):
            raise CLIError("--features lists a column twice")
    else:
        from pandas.api.types import is_numeric_dtype

        others = [c for c in df.columns if c != args.target]
        text = [c for c in others if not is_numeric_dtype(df[c])]
        if text:
            raise CLIError(f"non-numeric column(s) {_names(text)} in {args.data}: encode "
                           "them as numbers or choose the feature columns with --features")
        features = others
    if not features:
        raise CLIError(f"{args.data} has no feature columns besides the target")
    X = _feature_matrix(df, features, args.data)
    est = _make_estimator(args, task)
    steps = ([("scale", StandardScaler())] if args.scale else []) + [("model", est)]
    pipe = Pipeline(steps)

    not_converged = False
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            if args.progress and args.cv is None:
                est.set_params(verbose=1)  # the estimator's own tqdm bar over epochs
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                pipe.fit(X, y)
            if args.progress and args.cv is None:
                est.set_params(verbose=0)  # the saved model is quiet
            not_converged = any(issubclass(w.category, ConvergenceWarning)
                                for w in caught)
    except ValueError as exc:  # invalid option combination, divergence, bad labels
        raise CLIError(_first_line(exc)) from None
    score = pipe.score(X, y)

    bundle = {
        "format": MODEL_FORMAT,
        "pipeline": pipe,
        "features": list(map(str, features)),
        "target": str(args.target),
        "task": task,
        "classes": est.classes_.tolist() if task == "classification" else None,
        "fastgd_version": __version__,
    }
    as_pickle = _is_pickle_name(args.out)
    try:
        if as_pickle:
            joblib.dump(bundle, args.out)
        else:
            import skops.io

            skops.io.dump(bundle, args.out)
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    metric = "R^2" if task == "regression" else "accuracy"
    score = f"{score:.4f}" if abs(score) < 1e4 else f"{score:.3g}"  # diverged: -1e+40
    note = " (not converged: raise --max-iter)" if not_converged else ""
    saved = (f"saved {args.out} (a pickle: 'fastgd predict' loads it only with "
             "--trust-pickle; a .skops name saves data only)" if as_pickle
             else f"saved {args.out}")
    print(_task_line(task, y, auto_reason))
    if args.cv is not None:
        print("\n".join(_cv_report(est, task)))
        if args.cv_plot:
            _save_cv_plot(est, args.cv_plot)
    print(f"{type(est).__name__}, {len(features)} features, {X.shape[0]} rows: "
          f"n_iter={est.n_iter_}{note}, training {metric}={score}; {saved}")
    return 0


def _save_cv_plot(est, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot

    ax = plot.cv_results(est)
    try:
        ax.figure.savefig(path, dpi=100)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(ax.figure)
    print(f"grid plot written to {path}")


# --------------------------------------------------------------------------- predict
def _is_pickle_name(path):
    return os.fspath(path).lower().endswith(PICKLE_SUFFIXES)


def _file_kind(path):
    """What a file holds, from its first bytes: ``"empty"``, ``"zip"`` (skops files
    are zip archives), ``"pickle"`` (protocol 2 and later, as joblib and pickle
    write), ``"text"`` or ``"binary"``; and a description of it for messages."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return "empty", "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "zip", "a zip archive"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle", "a pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        size = os.path.getsize(path)
        return "binary", (f"a binary file of {size} bytes (neither a skops file nor a "
                          "pickle)")
    first = text.splitlines()[0] if text.strip() else ""
    return "text", f"a text file (first line: {first[:60]!r}), such as a CSV file"


def fastgd_types():
    """The fastgd types a saved model may hold, as skops names them: the estimators,
    their training state and the optimizer and schedule objects that can be their
    parameters."""
    from . import _state, optim, schedules
    from .linear_model import FastSGDClassifier, FastSGDRegressor

    from .linear_model import FastSGDClassifierCV, FastSGDRegressorCV

    classes = {FastSGDClassifier, FastSGDRegressor, FastSGDClassifierCV,
               FastSGDRegressorCV, _state.TrainState, _state.ScaledWeights,
               _state.ReplicaStreams}
    for module, base in ((optim, optim.Optimizer), (schedules, schedules.Schedule)):
        classes.update(obj for obj in vars(module).values()
                       if isinstance(obj, type) and issubclass(obj, base))
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in classes}


def _load_skops(path):
    """A skops file's object, if every type in it that skops does not trust by
    default is one of fastgd's."""
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any zip archive may arrive here
        raise CLIError(f"{path} is a zip archive but not a skops file "
                       f"({_first_line(exc)}): not a model saved by 'fastgd fit'") from None
    foreign = sorted(set(untrusted) - fastgd_types())
    if foreign:
        raise CLIError(f"{path} holds types that are not part of a fastgd model "
                       f"({', '.join(foreign)}): refusing to load it")
    try:
        return skops.io.load(path, trusted=untrusted)
    except Exception as exc:  # noqa: BLE001
        raise CLIError(f"cannot load {path}: {_first_line(exc)}") from None


def _load_pickle(path, trust_pickle):
    if not trust_pickle:
        raise CLIError(
            f"{path} is a pickle: loading a pickle runs whatever code it holds, so "
            "'fastgd predict' loads one only with --trust-pickle (for files you made "
            "or trust). 'fastgd fit --out MODEL.skops' saves a model as data only")
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # noqa: BLE001 - unpickling a foreign file fails in many ways
        raise CLIError(f"cannot load {path} as a pickle ({_first_line(exc)}): not a "
                       "model saved by 'fastgd fit'") from None


def _what(obj):
    if isinstance(obj, dict):
        return f"a dict with the keys {_names(list(obj), limit=10)}"
    return f"a {type(obj).__module__}.{type(obj).__qualname__} object"


def _load_model(path, trust_pickle=False):
    """The bundle ``fastgd fit`` saved at ``path``: a skops file, or a pickle (only
    with ``trust_pickle``). One-line errors say what the file is instead."""
    if not os.path.exists(path):
        raise CLIError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a directory, not a model file")
    kind, description = _file_kind(path)
    if kind == "pickle" or (kind == "binary" and _is_pickle_name(path)):
        bundle = _load_pickle(path, trust_pickle)
    elif kind == "zip":
        bundle = _load_skops(path)
    else:
        raise CLIError(f"{path} is not a model saved by 'fastgd fit': it is {description}")
    if not (isinstance(bundle, dict) and bundle.get("format") == MODEL_FORMAT):
        raise CLIError(f"{path} is not a model saved by 'fastgd fit': it holds "
                       f"{_what(bundle)}")
    return bundle


def predict(args):
    """Predict with a model saved by ``fastgd fit``; write a CSV."""
    pd = _pandas()

    bundle = _load_model(args.model, trust_pickle=args.trust_pickle)
    df = _read_csv(args.data)
    features = bundle["features"]
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise CLIError(f"{args.data} lacks the feature column(s) {_names(missing)} "
                       "the model was trained on")
    X = _feature_matrix(df, features, args.data)
    pipe = bundle["pipeline"]
    out = pd.DataFrame({bundle["target"]: pipe.predict(X)})
    if args.proba:
        if bundle["task"] != "classification":
            raise CLIError("--proba needs a classification model; this one is a regression")
        if not hasattr(pipe, "predict_proba"):
            loss = pipe[-1].loss
            raise CLIError(f"--proba needs a model trained with --loss log_loss or "
                           f"modified_huber; this one used {loss}")
        proba = pipe.predict_proba(X)
        for k, cls in enumerate(pipe[-1].classes_):
            out[f"proba_{cls}"] = proba[:, k]
    if args.out is None:
        try:
            out.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into head
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    try:
        out.to_csv(args.out, index=False)
    except OSError as exc:
        raise CLIError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    print(f"wrote {len(out)} predictions to {args.out}")
    return 0


# ------------------------------------------------------------------------------ demo
def demo(args):
    """Train in several modes on bundled/generated data; compare with scikit-learn."""
    from . import _demo

    rows, fits = _demo.run_fits()
    w = max(len(r[1]) for r in rows)
    print("score: R^2 for the regressions, accuracy for the classifications (training data)")
    print(f"{'data':30s} {'mode':{w}s} {'epochs':>6s} {'time (s)':>9s} {'score':>7s}")
    for data_name, mode_name, n_iter, dt, r2 in rows:
        print(f"{data_name:30s} {mode_name:{w}s} {n_iter:6d} {dt:9.4f} {r2:7.4f}")
    sys.stdout.flush()
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed, none opened
        from . import plot  # noqa: F401
    except ImportError as exc:
        print(f"figures skipped: fastgd.plot cannot be imported ({_first_line(exc)})",
              file=sys.stderr)
        return 0
    out_dir = os.path.abspath(args.out)
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create {args.out}: {exc.strerror or exc}") from None
    written, failed = _demo.draw_figures(out_dir, fits)
    for filename, error in failed:
        print(f"fastgd demo: figure {filename} failed: {error}", file=sys.stderr)
    print(f"{len(written)} figures written to {out_dir}")
    return 1 if failed else 0


_FIT_DESCRIPTION = f"""\
Train a linear model by gradient descent on the numeric columns of a CSV file and
save it (a scikit-learn Pipeline: StandardScaler, then FastSGDRegressor or
FastSGDClassifier, with the feature names, target name and task) as a skops file
(skops.io: data only, loading it runs no code). An --out name ending in .joblib,
.pkl or .pickle writes a pickle instead, which 'fastgd predict' loads only with
--trust-pickle.

Task (--task auto): the target is a class label when it is not numeric (text,
booleans) or when it holds only whole numbers with at most {AUTO_MAX_CLASSES} distinct
values; otherwise it is a regression target. The first line of the output says which
(e.g. "classification: 3 classes") and why; --task regression or --task
classification decides instead.

Training: one fit call, with scikit-learn's convergence test (tol=1e-3,
n_iter_no_change=5) and, with --early-stopping, early stopping; --progress (the
default) shows the estimator's progress bar over epochs (loss, learning rate,
validation score) on stderr. Options left out keep the estimators'
(scikit-learn's) defaults.
"""

_PREDICT_DESCRIPTION = """\
Predict with a model saved by 'fastgd fit'. The CSV file must hold the feature
columns the model was trained on (other columns are ignored). The output CSV has one
column named after the target (the prediction) and, with --proba, one column
'proba_<class>' per class.

Model files: a skops file (what 'fastgd fit' writes by default) is loaded when the
only types in it that skops does not trust by default are fastgd's own; anything
else is refused. A pickle (joblib) file can run any code when loaded, so it is
refused unless you pass --trust-pickle.
"""

_DEMO_DESCRIPTION = """\
Train in several modes on bundled and generated data, print a table side by side
with scikit-learn, and draw figures (loss curves, learning-rate schedules, gradient
descent vs momentum in a ravine, gradient norms under clipping, batch modes, batch
normalization) as PNG files into --out.
"""


def _add_fit_parser(sub, fmt):
    """``fastgd fit``'s options."""
    p_fit = sub.add_parser("fit", help="train on a CSV file and save the model",
                           description=_FIT_DESCRIPTION, formatter_class=fmt)
    p_fit.add_argument("data", metavar="DATA.csv", help="training data (CSV with a header)")
    p_fit.add_argument("--target", required=True, metavar="COL", help="the target column")
    p_fit.add_argument("--out", required=True, metavar="MODEL.skops",
                       help="where to save the fitted model (a skops file; a name "
                            "ending in .joblib, .pkl or .pickle writes a pickle)")
    p_fit.add_argument("--features", action="append", metavar="COL[,COL...]",
                       help="feature columns (default: every other column, which must "
                            "then all be numeric); may be repeated")
    p_fit.add_argument("--task", choices=("auto", "regression", "classification"),
                       default="auto", help="default: auto (rule above)")
    p_fit.add_argument("--loss", choices=tuple(LOSSES), metavar="LOSS",
                       help="regression: " + ", ".join(REGRESSION_LOSSES)
                            + " (default squared_error); classification: any of these or "
                            + ", ".join(k for k in LOSSES if k not in REGRESSION_LOSSES)
                            + " (default hinge; --proba needs log_loss or modified_huber)")
    p_fit.add_argument("--optimizer", choices=OPTIMIZER_NAMES, metavar="NAME",
                       help="one of " + ", ".join(OPTIMIZER_NAMES) + " (default sgd)")
    p_fit.add_argument("--batch-size", type=_batch_size, metavar="N|full",
                       help="1: per-sample SGD (default), N: minibatches, full: "
                            "full-batch gradient descent")
    p_fit.add_argument("--learning-rate", choices=LEARNING_RATES, metavar="NAME",
                       help="one of " + ", ".join(LEARNING_RATES) + " (default with sgd: "
                            "invscaling for regression, optimal for classification; "
                            "with the other optimizers: constant; cosine anneals over "
                            "--max-iter epochs)")
    p_fit.add_argument("--eta0", type=_number(float, 0.0, True), metavar="F",
                       help="base learning rate (default 0.01 with sgd, torch.optim's "
                            "default lr with the other optimizers, e.g. 0.001 for adam)")
    p_fit.add_argument("--max-iter", type=_number(int, 1, False), metavar="N",
                       help="epochs (default 1000)")
    p_fit.add_argument("--tol", type=_tol, metavar="F|none",
                       help="convergence tolerance; 'none' runs exactly --max-iter "
                            "epochs (default 1e-3)")
    p_fit.add_argument("--alpha", type=_number(float, 0.0, False), metavar="F",
                       help="regularization strength (default 0.0001)")
    p_fit.add_argument("--penalty", choices=PENALTIES, help="default: l2")
    p_fit.add_argument("--clip-norm", type=_number(float, 0.0, True), metavar="F",
                       help="clip the L2 norm of each batch gradient")
    p_fit.add_argument("--batch-norm", action="store_true",
                       help="normalize the inputs of each batch")
    p_fit.add_argument("--early-stopping", action="store_true",
                       help="hold out 10%% of the rows and stop when the validation score "
                            "stops improving")
    p_fit.add_argument("--multi-class", choices=("ovr", "multinomial"),
                       help="classification: one-vs-rest (default) or one softmax model "
                            "(needs --loss log_loss)")
    p_fit.add_argument("--random-state", type=int, metavar="N",
                       help="seed of the shuffling (default: none, results vary)")
    p_fit.add_argument("--scale", action=argparse.BooleanOptionalAction, default=True,
                       help="standardize the features (StandardScaler) before the model "
                            "(default: on)")
    p_fit.add_argument("--cv", type=_number(int, 2, False), metavar="K",
                       help="grid search: cross-validate every candidate of --grid over "
                            "K folds, trained together (FastSGDRegressorCV / "
                            "FastSGDClassifierCV), and keep the best on all rows")
    p_fit.add_argument("--grid", type=_grid_spec, action="append", metavar="NAME=VALUES",
                       help="a parameter of the grid: a:b:n (n values from a to b, "
                            "log-spaced when positive) or v1,v2,...; repeat for more "
                            "parameters (e.g. --grid alpha=1e-6:1e-2:5 --grid "
                            "eta0=0.001,0.01)")
    p_fit.add_argument("--cv-plot", metavar="FILE.png",
                       help="with --cv: draw the mean test score over the grid")
    p_fit.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                       help="progress bar over epochs on stderr (default: on)")
    p_fit.set_defaults(func=fit)


def _add_predict_parser(sub, fmt):
    """``fastgd predict``'s options."""
    p_pred = sub.add_parser("predict", help="predict with a saved model",
                            description=_PREDICT_DESCRIPTION, formatter_class=fmt)
    p_pred.add_argument("model", metavar="MODEL.skops", help="a model saved by 'fastgd fit'")
    p_pred.add_argument("data", metavar="DATA.csv", help="rows to predict (CSV with a header)")
    p_pred.add_argument("--out", metavar="PREDICTIONS.csv",
                        help="where to write the predictions (default: stdout)")
    p_pred.add_argument("--proba", action="store_true",
                        help="add the class probabilities (classifiers trained with "
                             "log_loss or modified_huber)")
    p_pred.add_argument("--trust-pickle", action="store_true",
                        help="load a pickle (.joblib/.pkl) model: unpickling runs any "
                             "code the file holds, so only for files you made or trust")
    p_pred.set_defaults(func=predict)


def build_parser():
    """The argument parser of the ``fastgd`` command."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="fastgd",
        description="Gradient-descent training of linear models in compiled loops.",
    )
    parser.add_argument("--version", action="version", version=f"fastgd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _add_fit_parser(sub, fmt)
    _add_predict_parser(sub, fmt)
    p_demo = sub.add_parser(
        "demo", help="train in several modes on bundled data and compare with scikit-learn",
        description=_DEMO_DESCRIPTION, formatter_class=fmt,
    )
    p_demo.add_argument("--out", metavar="DIR", default="fastgd-demo",
                        help="folder for the figures, created if needed "
                             "(default: ./fastgd-demo)")
    p_demo.set_defaults(func=demo)

    p_warm = sub.add_parser(
        "warmup", help="compile every kernel once into Numba's on-disk cache",
        description="Compile (or load) every kernel specialization the estimators use, "
                    "so that first fits in later processes load them from the cache "
                    "instead of compiling; prints where each kernel is cached.",
        formatter_class=fmt,
    )
    p_warm.set_defaults(func=warmup_cmd)

    p_bench = sub.add_parser(
        "bench", help="run the benchmark suite of a source checkout (benchmarks/)",
        description="Run the benchmarks of a source checkout side by side with "
                    "scikit-learn, NumPy and PyTorch: 'fastgd bench [epoch_time|"
                    "sparse_scaling|time_to_accuracy|dask_scaling] [--quick] ...' "
                    "(options after the suite name go to "
                    "it; see 'python -m benchmarks.epoch_time --help'); 'fastgd bench "
                    "render' writes the recorded results into docs/benchmarks.md.",
        formatter_class=fmt,
    )
    p_bench.add_argument("suite_args", nargs=argparse.REMAINDER, metavar="...",
                         help="suite name and its options")
    p_bench.set_defaults(func=bench)
    return parser


def warmup_cmd(args):
    """Compile the kernels into the cache (``fastgd warmup``)."""
    from ._warmup import warmup

    report = warmup(verbose=True)
    seconds = report[0]["seconds"] if report else 0.0
    print(f"{len(report)} kernels ready in {seconds:.1f} s")
    return 0


def bench(args):
    """Run ``benchmarks/`` of the checkout this package was installed from."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "__main__.py").is_file():
        raise CLIError(
            f"no benchmarks/ folder next to {root / 'fastgd'}: 'fastgd bench' runs the "
            "suite of a source checkout (pip install -e . from the repository)"
        )
    sys.path.insert(0, str(root))
    from benchmarks.__main__ import main as bench_main

    return bench_main(args.suite_args)


def main(argv=None):
    """Entry point of the ``fastgd`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"fastgd {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print(f"fastgd {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
