"""The ``fastgd`` command, run as a user runs it: ``python -m fastgd.cli`` in a subprocess.

Each subprocess pays the import of fastgd and the load of the compiled loops (~2 s), so
every command is run once per module, concurrently, in two fixtures (``runs``: what
needs no fitted model, ``runs_on_models``: what does), and the tests check the results.
Every error case also runs in-process through ``main`` (milliseconds each).
"""

import io
import os
import pickle
import subprocess
import sys
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from fastgd import FastSGDClassifier, FastSGDRegressor, optim, schedules
from fastgd.cli import AUTO_MAX_CLASSES, MODEL_FORMAT, _infer_task, fastgd_types, main
from fastgd.cli import _load_model as load_model
from fastgd.schedules import Cosine, Warmup

skops_io = pytest.importorskip("skops.io")

N_ROWS = 120
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEMO_FIGURES = ["batch_modes.png", "batch_norm.png", "grad_norms_clipped.png",
                "loss_curves.png", "lr_schedules.png", "ravine_gd_vs_momentum.png"]


def run_cli(*args, cwd=None):
    """``fastgd ARGS`` in a fresh interpreter; the CompletedProcess (text, captured)."""
    env = dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore::DeprecationWarning")
    return subprocess.run([sys.executable, "-m", "fastgd.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
                          check=False)


def run_all(commands, cwd):
    """Run ``{name: argv}`` concurrently; ``{name: CompletedProcess}``."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_cli, *argv, cwd=cwd)
                   for name, argv in commands.items()}
        return {name: fut.result() for name, fut in futures.items()}


def one_line_error(returncode, stderr):
    """The stderr of a failed command: exactly one line, no traceback."""
    assert returncode == 2, (returncode, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small CSV files: a regression, a binary classification with a text column."""
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N_ROWS, 3))
    reg = pd.DataFrame(X, columns=["a", "b", "c"])
    reg["y"] = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=N_ROWS)
    reg.to_csv(d / "reg.csv", index=False)
    cls = pd.DataFrame(X, columns=["a", "b", "c"])
    cls["label"] = np.where(X[:, 0] - X[:, 1] > 0, "yes", "no")
    cls["city"] = rng.choice(["Oslo", "Lima"], size=N_ROWS)
    cls.to_csv(d / "cls.csv", index=False)
    reg[["a", "b"]].to_csv(d / "only_ab.csv", index=False)
    return d


# name: (argv with {d} for the data folder, words the message must contain,
#        whether it also runs in a subprocess)
ERROR_CASES = {
    "fit missing file": (["fit", "{d}/nope.csv", "--target", "y", "--out", "{d}/m.skops"],
                         ["no such file", "nope.csv"], True),
    "fit bad target": (["fit", "{d}/reg.csv", "--target", "nope", "--out", "{d}/m.skops"],
                       ["'nope'", "'y'"], True),
    "fit non-numeric column": (["fit", "{d}/cls.csv", "--target", "label",
                                "--out", "{d}/m.skops"], ["'city'", "--features"], False),
    "fit bad feature": (["fit", "{d}/reg.csv", "--target", "y", "--features", "a,zz",
                         "--out", "{d}/m.skops"], ["'zz'"], False),
    "fit bad task": (["fit", "{d}/reg.csv", "--target", "y", "--task", "ranking",
                      "--out", "{d}/m.skops"], ["--task", "ranking"], True),
    "fit unknown optimizer": (["fit", "{d}/reg.csv", "--target", "y", "--optimizer",
                               "adamm", "--out", "{d}/m.skops"], ["--optimizer", "adamm"],
                              True),
    "fit bad batch size": (["fit", "{d}/reg.csv", "--target", "y", "--batch-size", "0",
                            "--out", "{d}/m.skops"], ["--batch-size", "'0'"], False),
    "fit bad eta0": (["fit", "{d}/reg.csv", "--target", "y", "--eta0", "-1",
                      "--out", "{d}/m.skops"], ["--eta0", "'-1'"], False),
    "fit classification loss on regression": (
        ["fit", "{d}/reg.csv", "--target", "y", "--loss", "hinge", "--out", "{d}/m.skops"],
        ["hinge", "squared_error"], False),
    "fit multinomial hinge": (["fit", "{d}/cls.csv", "--target", "label", "--features",
                               "a,b,c", "--multi-class", "multinomial",
                               "--out", "{d}/m.skops"], ["multinomial", "log_loss"], False),
    "fit without --out": (["fit", "{d}/reg.csv", "--target", "y"], ["--out"], False),
    "predict missing model": (["predict", "{d}/nope.skops", "{d}/reg.csv"],
                              ["no such file", "nope.skops"], False),
    "predict not a model": (["predict", "{d}/reg.csv", "{d}/reg.csv"],
                            ["not a model saved by 'fastgd fit'", "a text file",
                             "'a,b,c,y'"], False),
    "predict missing data": (["predict", "{d}/reg.skops", "{d}/nope.csv"],
                             ["no such file", "nope.csv"], False),
    "predict missing features": (["predict", "{d}/reg.skops", "{d}/only_ab.csv"],
                                 ["'c'"], True),
    "predict proba of a regression": (["predict", "{d}/reg.skops", "{d}/reg.csv",
                                       "--proba"], ["--proba", "regression"], False),
    "no command": ([], ["required"], False),
    "unknown command": (["train"], ["invalid choice", "'train'"], False),
}

HELP_CASES = {
    "main": (["--help"], ["fit", "predict", "demo", "--version"]),
    "fit": (["fit", "--help"], ["--target", "--task", "--batch-size", "--scale",
                                "--no-scale", "--progress", "--tol", "progress bar",
                                f"at most {AUTO_MAX_CLASSES} distinct"]),
    "predict": (["predict", "--help"], ["--proba", "--out", "stdout"]),
    "demo": (["demo", "--help"], ["--out", "./fastgd-demo"]),
}


def _argv(argv, d):
    return [a.format(d=d) for a in argv]


@pytest.fixture(scope="module")
def runs(data):
    """Every command that needs no fitted model, concurrently (the fits, the demo,
    the help, the version and the subprocess error cases)."""
    d = data
    commands = {
        # a regression fitted with the progress bar (exactly 20 epochs)
        "fit reg": ["fit", d / "reg.csv", "--target", "y", "--max-iter", 20, "--tol", "none",
                    "--random-state", 0, "--out", d / "reg.skops"],
        # a log-loss classifier on chosen columns (the text column left out)
        "fit cls": ["fit", d / "cls.csv", "--target", "label", "--features", "a,b",
                    "--features", "c", "--loss", "log_loss", "--optimizer", "adam",
                    "--batch-size", 16, "--learning-rate", "constant", "--eta0", 0.05,
                    "--max-iter", 15, "--random-state", 0, "--out", d / "cls.skops"],
        # fit itself: no bar, early stopping, every other option
        "fit es": ["fit", d / "reg.csv", "--target", "y", "--no-scale", "--no-progress",
                   "--early-stopping", "--batch-size", "full", "--optimizer", "momentum",
                   "--learning-rate", "cosine", "--eta0", 0.1, "--penalty", "none",
                   "--alpha", 0, "--clip-norm", 5, "--batch-norm", "--max-iter", 500,
                   "--random-state", 0, "--out", d / "es.skops"],
        "demo": ["demo", "--out", d / "figs"],
        "version": ["--version"],
    }
    commands.update({("help", k): argv for k, (argv, _) in HELP_CASES.items()})
    commands.update({("error", k): _argv(argv, d) for k, (argv, _, sub) in ERROR_CASES.items()
                     if sub and not k.startswith("predict")})
    return run_all(commands, cwd=d)


@pytest.fixture(scope="module")
def runs_on_models(data, runs):
    """The commands that use the fitted models, concurrently."""
    d = data
    commands = {
        "predict stdout": ["predict", d / "reg.skops", d / "reg.csv"],
        # the data's own label and text columns are ignored; only a, b, c are used
        "predict proba": ["predict", d / "cls.skops", d / "cls.csv", "--proba",
                          "--out", d / "pred.csv"],
    }
    commands.update({("error", k): _argv(argv, d) for k, (argv, _, sub) in ERROR_CASES.items()
                     if sub and k.startswith("predict")})
    return run_all(commands, cwd=d)


# -------------------------------------------------------------------------- fit
def test_fit_regression_with_progress_bar(data, runs):
    proc, out = runs["fit reg"], data / "reg.skops"
    assert proc.returncode == 0, proc.stderr
    task, summary = proc.stdout.strip().splitlines()
    assert task == ("regression (--task auto: the target holds numbers that are not all "
                    "whole; pass --task classification otherwise)")
    assert summary.startswith("FastSGDRegressor, 3 features, 120 rows:")
    assert "n_iter=20" in summary and "training R^2=" in summary
    assert summary.endswith(f"saved {out}")
    assert "20/20" in proc.stderr and "loss=" in proc.stderr  # the tqdm bar

    bundle = load_model(out)
    assert bundle["features"] == ["a", "b", "c"]
    assert bundle["target"] == "y" and bundle["task"] == "regression"
    assert bundle["classes"] is None
    pipe = bundle["pipeline"]
    assert [name for name, _ in pipe.steps] == ["scale", "model"]
    est = pipe[-1]
    # the same as fit(max_iter=20, tol=None) on the scaled data, histories included
    df = pd.read_csv(data / "reg.csv")
    X, y = df[["a", "b", "c"]].to_numpy(), df["y"].to_numpy()
    ref = FastSGDRegressor(max_iter=20, tol=None, random_state=0).fit(pipe[0].transform(X), y)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    np.testing.assert_array_equal(est.intercept_, ref.intercept_)
    assert est.n_iter_ == 20 and est.t_ == ref.t_
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(est.lr_curve_, ref.lr_curve_, rtol=1e-12)
    np.testing.assert_allclose(est.samples_seen_curve_, ref.samples_seen_curve_)
    assert len(est.time_curve_) == 20 and np.all(np.diff(est.time_curve_) >= 0)
    score = float(summary.split("training R^2=")[1].split(";")[0])
    assert score == pytest.approx(pipe.score(X, y), abs=1e-4)
    assert score > 0.95


def test_fit_classification_auto_task_and_features(data, runs):
    proc = runs["fit cls"]
    assert proc.returncode == 0, proc.stderr
    task, summary = proc.stdout.strip().splitlines()
    # a text target: a classifier, and the output says so
    assert task == "classification: 2 classes ('no', 'yes') (--task auto: the target holds text)"
    assert summary.startswith("FastSGDClassifier, 3 features, 120 rows:")
    assert "n_iter=15" in proc.stdout and "training accuracy=" in proc.stdout
    bundle = load_model(data / "cls.skops")
    assert bundle["task"] == "classification"
    assert bundle["features"] == ["a", "b", "c"]
    assert bundle["classes"] == ["no", "yes"]
    est = bundle["pipeline"][-1]
    assert isinstance(est, FastSGDClassifier)
    p = est.get_params()
    assert (p["loss"], p["optimizer"], p["batch_size"]) == ("log_loss", "adam", 16)
    assert p["learning_rate"] == "constant" and p["eta0"] == 0.05
    accuracy = float(proc.stdout.split("training accuracy=")[1].split(";")[0])
    assert accuracy > 0.9


def test_fit_without_bar_uses_fit_and_its_stopping_rules(data, runs):
    proc = runs["fit es"]
    assert proc.returncode == 0, proc.stderr
    assert "epoch/s" not in proc.stderr  # no bar
    pipe = load_model(data / "es.skops")["pipeline"]
    assert [name for name, _ in pipe.steps] == ["model"]  # --no-scale
    est = pipe[-1]
    p = est.get_params()
    assert p["batch_size"] == "full" and p["optimizer"] == "momentum"
    assert p["penalty"] is None and p["alpha"] == 0 and p["clip_norm"] == 5
    assert p["batch_norm"] and p["early_stopping"] and p["learning_rate"].T_max == 500
    assert 0 < est.n_iter_ < 500 and len(est.validation_scores_) == est.n_iter_
    assert f"n_iter={est.n_iter_}," in proc.stdout


@pytest.mark.parametrize("values, task", [
    ([0.5, 1.25, 3.0, 2.0], "regression"),
    ([0, 1, 2, 1, 0], "classification"),
    ([0.0, 1.0, 1.0, 0.0], "classification"),  # whole numbers read as floats
    (list(range(AUTO_MAX_CLASSES)), "classification"),
    (list(range(AUTO_MAX_CLASSES + 1)), "regression"),
    (["cat", "dog", "cat"], "classification"),
    ([True, False, True], "classification"),
])
def test_auto_task_rule(values, task):
    assert _infer_task(pd.Series(values)) == task


# ---------------------------------------------------------------------- predict
def test_predict_to_stdout(data, runs_on_models):
    proc = runs_on_models["predict stdout"]
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(io.StringIO(proc.stdout))
    assert list(pred.columns) == ["y"] and len(pred) == N_ROWS
    bundle = load_model(data / "reg.skops")
    X = pd.read_csv(data / "reg.csv")[["a", "b", "c"]].to_numpy()
    np.testing.assert_allclose(pred["y"], bundle["pipeline"].predict(X), rtol=1e-12)


def test_predict_proba_to_file(data, runs_on_models):
    proc, target = runs_on_models["predict proba"], data / "pred.csv"
    assert proc.returncode == 0, proc.stderr
    assert str(target) in proc.stdout and proc.stderr == ""
    pred = pd.read_csv(target)
    assert list(pred.columns) == ["label", "proba_no", "proba_yes"] and len(pred) == N_ROWS
    np.testing.assert_allclose(pred["proba_no"] + pred["proba_yes"], 1.0)
    assert set(pred["label"]) <= {"no", "yes"}
    np.testing.assert_array_equal(pred["label"] == "yes", pred["proba_yes"] > 0.5)
    truth = pd.read_csv(data / "cls.csv")["label"]
    assert (pred["label"] == truth).mean() > 0.9


# ------------------------------------------------------------------------- demo
def test_demo_writes_figures(data, runs):
    proc, out = runs["demo"], data / "figs"
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("score: R^2 for the regressions")
    assert lines[1].split() == ["data", "mode", "epochs", "time", "(s)", "score"]
    rows = [line.split() for line in lines[2:22]]
    assert all(len(r) >= 6 and r[-3].isdigit() for r in rows)  # epochs, time, score
    try:
        import fastgd.plot  # noqa: F401
    except ImportError:
        assert len(lines) == 22 and "figures skipped" in proc.stderr
        return
    assert lines[22:] == [f"6 figures written to {out}"]
    assert sorted(p.name for p in out.glob("*.png")) == DEMO_FIGURES
    for name in DEMO_FIGURES:
        content = (out / name).read_bytes()
        assert len(content) > 1000 and content.startswith(PNG_MAGIC)
    assert not (data / "fastgd-demo").exists()


# ----------------------------------------------------------- errors, help, version
def _subprocess_result(runs, runs_on_models, case):
    key = ("error", case)
    return runs[key] if key in runs else runs_on_models[key]


@pytest.mark.parametrize("case", [k for k, v in ERROR_CASES.items() if v[2]])
def test_error_in_subprocess_exits_2_with_one_line(runs, runs_on_models, case):
    proc = _subprocess_result(runs, runs_on_models, case)
    line = one_line_error(proc.returncode, proc.stderr)
    assert line.startswith("fastgd") and proc.stdout == ""
    for word in ERROR_CASES[case][1]:
        assert word in line


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_in_process_exits_2_with_one_line(data, runs, capsys, case):
    argv, words, _ = ERROR_CASES[case]
    capsys.readouterr()
    try:
        rc = main(_argv(argv, data))
    except SystemExit as exc:  # argparse's errors
        rc = exc.code
    captured = capsys.readouterr()
    line = one_line_error(rc, captured.err)
    for word in words:
        assert word in line
    assert captured.out == ""


@pytest.mark.parametrize("case", list(HELP_CASES))
def test_help(runs, case):
    proc = runs[("help", case)]
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("usage: fastgd")
    for word in HELP_CASES[case][1]:
        assert word in proc.stdout


def test_version(runs):
    import fastgd

    proc = runs["version"]
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"fastgd {fastgd.__version__}"


def test_demo_draws_sklearns_own_per_epoch_loss():
    """The demo's scikit-learn curve is its own "Avg. loss" report, the quantity of
    fastgd's loss_curve_: equal (to the 6 printed decimals) where the algorithms are."""
    import warnings

    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    from sklearn.preprocessing import StandardScaler

    from fastgd._demo import _sklearn_loss_curve

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    kw = dict(shuffle=False, max_iter=5, tol=None)
    curve = _sklearn_loss_curve(SGDRegressor(**kw), X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = FastSGDRegressor(**kw).fit(X, y).loss_curve_
    np.testing.assert_allclose(curve, ours, rtol=0, atol=1e-6)
    # one-vs-rest: summed per epoch over the classes, as fastgd's classifier sums them
    Xc, yc = load_iris(return_X_y=True)
    Xc = StandardScaler().fit_transform(Xc)
    curve = _sklearn_loss_curve(SGDClassifier(**kw), Xc, yc)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = FastSGDClassifier(**kw).fit(Xc, yc).loss_curve_
    assert len(curve) == 5
    np.testing.assert_allclose(curve, ours, rtol=0, atol=3e-6)


# ------------------------------------------- model files: skops, pickles (item 8)
def _in_process(capsys, *argv):
    """``main(argv)``: (status, stdout, stderr)."""
    capsys.readouterr()
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


class _WritesAFile:
    """Unpickling this object calls ``open(path, "w")``: a file appears."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["evil.joblib", "evil.pkl", "evil.skops", "evil.bin"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(data, tmp_path, capsys, name):
    target = tmp_path / "written_by_the_pickle"
    model = tmp_path / name
    model.write_bytes(pickle.dumps(_WritesAFile(target)))
    rc, out, err = _in_process(capsys, "predict", model, data / "reg.csv")
    line = one_line_error(rc, err)
    assert "is a pickle" in line and "--trust-pickle" in line and "runs" in line
    assert out == "" and not target.exists()
    # the payload is real: unpickling the file creates the target
    with open(model, "rb") as fh:
        pickle.load(fh).close()
    assert target.exists()


def test_a_malicious_pickle_in_a_subprocess(data, tmp_path):
    target = tmp_path / "written_by_the_pickle"
    model = tmp_path / "model.joblib"
    model.write_bytes(pickle.dumps(_WritesAFile(target)))
    proc = run_cli("predict", model, data / "reg.csv")
    assert "--trust-pickle" in one_line_error(proc.returncode, proc.stderr)
    assert not target.exists()


def test_pickles_load_only_with_trust_pickle(data, tmp_path, capsys):
    out = tmp_path / "m.joblib"
    rc, text, _ = _in_process(capsys, "fit", data / "reg.csv", "--target", "y",
                              "--max-iter", 5, "--random-state", 0, "--no-progress",
                              "--out", out)
    assert rc == 0 and "a pickle" in text and "--trust-pickle" in text
    bundle = joblib.load(out)
    assert bundle["format"] == MODEL_FORMAT
    rc, _, err = _in_process(capsys, "predict", out, data / "reg.csv")
    assert "--trust-pickle" in one_line_error(rc, err)
    rc, text, _ = _in_process(capsys, "predict", out, data / "reg.csv", "--trust-pickle")
    assert rc == 0
    X = pd.read_csv(data / "reg.csv")[["a", "b", "c"]].to_numpy()
    np.testing.assert_allclose(pd.read_csv(io.StringIO(text))["y"],
                               bundle["pipeline"].predict(X), rtol=1e-12)


def test_a_skops_file_with_foreign_types_is_refused(data, tmp_path, capsys):
    model = tmp_path / "m.skops"
    skops_io.dump({"format": MODEL_FORMAT, "pipeline": FunctionTransformer(os.system)},
                  model)
    foreign = skops_io.get_untrusted_types(file=model)
    assert foreign and not set(foreign) <= fastgd_types()
    rc, _, err = _in_process(capsys, "predict", model, data / "reg.csv")
    line = one_line_error(rc, err)
    assert "not part of a fastgd model" in line and "refusing" in line
    for name in foreign:
        assert name in line


def test_fastgd_types_are_the_estimators_state_optimizers_and_schedules():
    types = fastgd_types()
    expected = {"fastgd.linear_model._regressor.FastSGDRegressor",
                "fastgd.linear_model._classifier.FastSGDClassifier",
                "fastgd.linear_model._cv.FastSGDRegressorCV",
                "fastgd.linear_model._cv.FastSGDClassifierCV",
                "fastgd._state.TrainState", "fastgd._state.ScaledWeights",
                "fastgd._state.ReplicaStreams"}
    for module, base in ((optim, optim.Optimizer), (schedules, schedules.Schedule)):
        expected |= {f"{module.__name__}.{name}" for name, obj in vars(module).items()
                     if isinstance(obj, type) and issubclass(obj, base)}
    assert types == expected
    assert "fastgd.schedules.Cosine" in types and "fastgd.optim.AdamW" in types


@pytest.mark.parametrize("make, target", [
    (lambda: FastSGDRegressor(learning_rate=Warmup(Cosine(T_max=8), warmup_steps=2),
                              optimizer=optim.Adam(amsgrad=True), batch_size=8, max_iter=10,
                              random_state=0), "y"),
    (lambda: FastSGDRegressor(random_state=0, average=True, max_iter=10), "y"),
    (lambda: FastSGDClassifier(loss="log_loss", batch_size=16, optimizer="adam",
                               random_state=0, max_iter=10), "text"),
    (lambda: FastSGDClassifier(random_state=0, max_iter=10), "three"),
])
def test_skops_round_trip_of_a_fitted_pipeline(data, tmp_path, make, target):
    """A fitted estimator in a Pipeline, through skops with fastgd's types trusted:
    the same predictions and state, and partial_fit continues bit-identically."""
    df = pd.read_csv(data / "reg.csv")
    X = df[["a", "b", "c"]].to_numpy()
    y = {"y": df["y"].to_numpy(), "text": np.where(df["y"] > 0, "yes", "no"),
         "three": np.digitize(df["y"], [-1.0, 1.0])}[target]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = Pipeline([("scale", StandardScaler()), ("model", make())]).fit(X, y)
    path = tmp_path / "m.skops"
    skops_io.dump(pipe, path)
    untrusted = skops_io.get_untrusted_types(file=path)
    assert set(untrusted) <= fastgd_types()
    loaded = skops_io.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict(X), pipe.predict(X))
    a, b = pipe[-1], loaded[-1]
    assert a.get_params().keys() == b.get_params().keys()
    for key, value in vars(a._state).items():
        other = getattr(b._state, key)
        if isinstance(value, np.ndarray):
            assert value.dtype == other.dtype
            np.testing.assert_array_equal(value, other)
        elif hasattr(value, "W"):  # the scaled per-sample weights
            np.testing.assert_array_equal(value.W, other.W)
            np.testing.assert_array_equal(value.AW, other.AW)
        else:
            assert value == other, key
    Xs = pipe[0].transform(X)
    a.partial_fit(Xs, y)
    b.partial_fit(Xs, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)


# ------------------------------------------ what a wrong file or column is (item 7)
def test_predict_says_what_a_file_is(data, tmp_path, capsys):
    cases = {}
    (tmp_path / "empty.skops").write_bytes(b"")
    cases["empty.skops"] = "it is an empty file"
    (tmp_path / "noise.skops").write_bytes(bytes(range(256)) * 4)
    cases["noise.skops"] = "a binary file of 1024 bytes"
    with zipfile.ZipFile(tmp_path / "other.skops", "w") as zf:
        zf.writestr("a.txt", "hello")
    cases["other.skops"] = "is a zip archive but not a skops file"
    skops_io.dump({"coef": np.ones(3)}, tmp_path / "dict.skops")
    cases["dict.skops"] = "it holds a dict with the keys 'coef'"
    joblib.dump(FastSGDRegressor(), tmp_path / "bare.joblib")
    cases["bare.joblib"] = ("it holds a fastgd.linear_model._regressor.FastSGDRegressor "
                            "object")
    for name, words in cases.items():
        rc, _, err = _in_process(capsys, "predict", tmp_path / name, data / "reg.csv",
                                 "--trust-pickle")
        line = one_line_error(rc, err)
        assert words in line, (name, line)
        assert "pop from empty list" not in line


def test_a_numeric_target_says_how_to_choose_the_other_task(data, tmp_path, capsys):
    df = pd.read_csv(data / "reg.csv")
    df["grade"] = np.digitize(df["y"], [-1.0, 1.0])
    df.to_csv(tmp_path / "grades.csv", index=False)
    common = ["fit", tmp_path / "grades.csv", "--target", "grade", "--features", "a,b,c",
              "--max-iter", 5, "--no-progress", "--out", tmp_path / "m.skops"]
    rc, out, _ = _in_process(capsys, *common)
    assert rc == 0
    assert out.splitlines()[0] == (
        "classification: 3 classes (0, 1, 2) (--task auto: the target holds 3 distinct "
        f"whole numbers (at most {AUTO_MAX_CLASSES} are classes); pass --task "
        "regression otherwise)")
    rc, out, _ = _in_process(capsys, *common, "--task", "regression")
    assert rc == 0 and out.splitlines()[0] == "regression"
    assert out.splitlines()[1].startswith("FastSGDRegressor, 3 features")


@pytest.mark.parametrize("n_columns", [30, 60])
def test_a_wrong_target_lists_the_columns(tmp_path, capsys, n_columns):
    names = [f"feature_{i}" for i in range(n_columns - 1)] + ["price"]
    pd.DataFrame(np.zeros((3, n_columns)), columns=names).to_csv(tmp_path / "d.csv",
                                                                  index=False)
    rc, _, err = _in_process(capsys, "fit", tmp_path / "d.csv", "--target", "Price",
                             "--out", tmp_path / "m.skops")
    line = one_line_error(rc, err)
    assert "did you mean 'price'?" in line
    if n_columns <= 50:
        assert all(repr(name) in line for name in names)
        assert "in all" not in line
    else:
        assert f"({n_columns} in all)" in line and repr(names[49]) in line


def test_fit_with_a_grid_search(data, tmp_path, capsys):
    """``--cv K --grid ...``: every candidate cross-validated in one run; the best on
    all rows is the saved model, its report and plot name the grid."""
    out, png = tmp_path / "cv.skops", tmp_path / "cv.png"
    rc, stdout, err = _in_process(
        capsys, "fit", data / "reg.csv", "--target", "y", "--out", out, "--cv", 3,
        "--grid", "alpha=1e-6:1e-2:3", "--grid", "eta0=0.001,0.01", "--max-iter", 8,
        "--tol", "none", "--random-state", 0, "--cv-plot", png)
    assert rc == 0, err
    lines = stdout.splitlines()
    assert lines[1].startswith("grid search: 6 candidates x 3 folds; best {")
    assert sum(line.lstrip().startswith("rank") for line in lines) == 5
    assert png.exists()
    search = load_model(out)["pipeline"][-1]
    assert type(search).__name__ == "FastSGDRegressorCV"
    assert search.param_grid == {"alpha": [1e-6, 1e-4, 1e-2], "eta0": [0.001, 0.01]}
    df = pd.read_csv(data / "reg.csv")
    pipe = load_model(out)["pipeline"]
    Xs = pipe[0].transform(df[["a", "b", "c"]].to_numpy())
    ref = FastSGDRegressor(max_iter=8, tol=None, random_state=0,
                           **search.best_params_).fit(Xs, df["y"].to_numpy())
    np.testing.assert_array_equal(search.coef_, ref.coef_)
    rc, _, err = _in_process(capsys, "fit", data / "reg.csv", "--target", "y", "--out",
                             out, "--grid", "alpha=0.1,1")
    assert rc == 2 and "--grid needs --cv" in err
    rc, _, err = _in_process(capsys, "fit", data / "reg.csv", "--target", "y", "--out",
                             out, "--cv", 3, "--grid", "alpha")
    assert rc == 2 and "NAME=VALUES" in err
