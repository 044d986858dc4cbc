"""Reliability: numeric faults, divergence handling, concurrency, the compile cache,
resuming interrupted training, stored pickles, memory.

Each test here backs one guarantee listed on the documentation's Reliability page.
(The property-based tests over random inputs are in ``test_properties.py``.)
"""

import glob
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import fastgd
from fastgd import DivergenceWarning, FastSGDClassifier, FastSGDRegressor
from fastgd import _memory
from fastgd._kernels import _jit
from fastgd.callbacks import Checkpoint
from fastgd.optim import OPTIMIZER_NAMES
from fastgd.schedules import (Cosine, CosineWarmRestarts, Exponential, InverseSqrt,
                              MultiStep, OneCycle, Step, Warmup)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).with_name("fixtures")
OVERFLOW = r"Floating-point under-/overflow occurred at epoch #\d+\. Scaling input data"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.3 * rng.normal(size=80)
    return X, y


def _fit_quiet(est, X, y):
    """Fit with every warning an error except the convergence notice."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


# ------------------------------------------------------------------ numeric faults
MODES = {
    "per_sample": dict(),
    "minibatch_adam": dict(batch_size=8, optimizer="adam"),
    "full_momentum": dict(batch_size="full", optimizer="momentum"),
    "minibatch_bn": dict(batch_size=8, batch_norm=True),
    "clipped": dict(batch_size=8, clip_norm=1.0),
}


def _finite_or_overflow(est, X, y):
    """The fault contract: a finite model, or the overflow error; no warning but the
    DivergenceWarning that says a finite model's training ran away ("diverged")."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("error")
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("always", DivergenceWarning)
            est.fit(X, y)
    except ValueError as exc:
        assert "Floating-point under-/overflow occurred at epoch #" in str(exc)
        assert "StandardScaler" in str(exc) and "clip_norm" in str(exc)
        return "overflow"
    assert np.isfinite(est.coef_).all() and np.isfinite(est.intercept_).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isfinite(est.predict(X)).all() or est.coef_.dtype == np.float64
    assert all(w.category is DivergenceWarning for w in caught)
    return "diverged" if caught else "finite"


FAULTS = {
    "features_x1e300": lambda X, y: (X * 1e300, y, {}),
    "features_x1e150": lambda X, y: (X * 1e150, y, {}),
    "huge_learning_rate": lambda X, y: (X, y, dict(learning_rate="constant", eta0=1e12)),
    "huge_targets": lambda X, y: (X, y * 1e300, {}),
    "alpha_1e10": lambda X, y: (X, y, dict(alpha=1e10)),
    "alpha_1e300": lambda X, y: (X, y, dict(alpha=1e300, learning_rate="constant")),
    "tiny_learning_rate": lambda X, y: (X, y, dict(learning_rate="constant", eta0=1e-300)),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", FAULTS)
def test_numeric_faults_give_a_finite_model_or_the_overflow_error(data, mode, fault):
    X, y, extra = FAULTS[fault](*data)
    est = FastSGDRegressor(max_iter=5, tol=None, random_state=0, **MODES[mode], **extra)
    outcome = _finite_or_overflow(est, X, y)
    if fault in ("features_x1e300", "huge_targets"):
        assert outcome == "overflow"  # those cannot train to anything finite
    if fault == "tiny_learning_rate":
        assert outcome == "finite"
    if fault == "huge_learning_rate":
        assert outcome != "finite"  # never a silently useless model


@pytest.mark.parametrize("mode", MODES)
def test_zero_variance_features_and_constant_targets(data, mode):
    X, y = data
    X = X.copy()
    X[:, 1] = 7.0  # zero variance: batch norm divides by sqrt(0 + eps)
    X[:, 2] = 0.0
    est = _fit_quiet(FastSGDRegressor(max_iter=20, tol=None, random_state=0,
                                      **MODES[mode]), X, y)
    assert np.isfinite(est.coef_).all()
    const = _fit_quiet(FastSGDRegressor(max_iter=500, tol=None, random_state=0,
                                        learning_rate="constant", eta0=0.01,
                                        **MODES[mode]), X, np.full(80, 3.0))
    np.testing.assert_allclose(const.predict(X), 3.0, atol=0.2)


def test_classifier_faults(data):
    X, y = data
    labels = (y > 0).astype(int)
    for loss in ("hinge", "log_loss", "modified_huber", "squared_hinge"):
        est = FastSGDClassifier(loss=loss, max_iter=5, tol=None, random_state=0)
        assert _finite_or_overflow(est, X * 1e300, labels) == "overflow"
        est = FastSGDClassifier(loss=loss, max_iter=5, tol=None, random_state=0,
                                batch_size=8, optimizer="adam")
        # Adam's steps do not scale with the features: finite, and reported
        assert _finite_or_overflow(est, X * 1e100, labels) == "diverged"


def test_float32_overflow_is_reported(data):
    X, y = data
    est = FastSGDRegressor(batch_size=8, max_iter=5, tol=None, learning_rate="constant",
                           eta0=1e30)
    assert _finite_or_overflow(est, (X * 1e15).astype(np.float32), y) == "overflow"


@pytest.mark.parametrize("mode", ["per_sample", "minibatch_adam", "full_momentum"])
def test_on_divergence_restore_keeps_the_last_finite_model(data, mode):
    X, y = data
    X = X * 1e150
    params = dict(learning_rate="constant", eta0=0.01, random_state=0, tol=None,
                  **MODES[mode])
    with pytest.raises(ValueError, match=OVERFLOW):
        FastSGDRegressor(max_iter=50, **params).fit(X, y)
    est = FastSGDRegressor(max_iter=50, on_divergence="restore", **params)
    with pytest.warns(DivergenceWarning, match="keeping the parameters from before epoch"):
        est.fit(X, y)
    assert est.n_iter_ < 50 and len(est.loss_curve_) == est.n_iter_
    assert np.isfinite(est.coef_).all() and np.isfinite(est.intercept_).all()
    if est.n_iter_ == 0:
        np.testing.assert_array_equal(est.coef_, 0.0)
    else:  # the model of the last finite epoch, bit for bit
        with warnings.catch_warnings():  # stopped short of overflowing, it diverged
            warnings.simplefilter("ignore", DivergenceWarning)
            ref = FastSGDRegressor(max_iter=est.n_iter_, **params).fit(X, y)
        np.testing.assert_array_equal(est.coef_, ref.coef_)
        np.testing.assert_array_equal(est.intercept_, ref.intercept_)
    assert np.isfinite(est.predict(X / 1e150)).all()


def test_on_divergence_is_validated(data):
    with pytest.raises(ValueError, match="on_divergence"):
        FastSGDRegressor(on_divergence="ignore").fit(*data)


# --------------------------------------------------------------------- concurrency
THREAD_CONFIGS = [
    (FastSGDRegressor, dict()),
    (FastSGDRegressor, dict(shuffle="block")),
    (FastSGDRegressor, dict(batch_size=8, optimizer="adam")),
    (FastSGDRegressor, dict(batch_size="full", n_jobs=2)),
    (FastSGDRegressor, dict(batch_size=8, batch_norm=True)),
    (FastSGDClassifier, dict()),
    (FastSGDClassifier, dict(loss="log_loss", multi_class="multinomial", batch_size=4)),
    (FastSGDClassifier, dict(n_jobs=3)),
]


def _thread_job(i, X, y, labels):
    cls, params = THREAD_CONFIGS[i % len(THREAD_CONFIGS)]
    target = labels if cls is FastSGDClassifier else y
    est = cls(max_iter=5, tol=None, random_state=i, **params).fit(X, target)
    return est.coef_.copy(), est.predict(X)


def test_many_threads_fit_and_predict_at_once(data):
    X, y = data
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    n_jobs = 4 * len(THREAD_CONFIGS)
    serial = [_thread_job(i, X, y, labels) for i in range(n_jobs)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        parallel = list(pool.map(lambda i: _thread_job(i, X, y, labels), range(n_jobs)))
    for (c1, p1), (c2, p2) in zip(serial, parallel):
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_array_equal(p1, p2)


def test_no_kernel_uses_numbas_parallel_threading_layer():
    """Two threads entering a ``parallel=True`` kernel at once abort the process under
    Numba's default (workqueue) threading layer. fastgd's threads are Python threads
    over ``nogil`` kernels instead; this guard fails if a parallel kernel appears."""
    assert len(_jit.KERNELS) >= 10
    for name, disp in _jit.KERNELS.items():
        assert not disp.targetoptions.get("parallel"), name


@pytest.mark.parametrize("cls", [FastSGDRegressor, FastSGDClassifier])
def test_gridsearch_is_identical_under_every_joblib_backend(data, cls):
    X, y = data
    target = (y > 0).astype(int) if cls is FastSGDClassifier else y
    grid = {"alpha": [1e-4, 1e-2], "optimizer": ["sgd", "adam"]}
    base = cls(batch_size=8, max_iter=5, tol=None, random_state=0)
    ref = GridSearchCV(base, grid, cv=3, n_jobs=1).fit(X, target)
    for backend in ("loky", "multiprocessing", "threading"):
        with joblib.parallel_backend(backend, n_jobs=2):
            gs = GridSearchCV(base, grid, cv=3, n_jobs=2).fit(X, target)
        np.testing.assert_array_equal(gs.cv_results_["mean_test_score"],
                                      ref.cv_results_["mean_test_score"])
        np.testing.assert_array_equal(gs.best_estimator_.coef_, ref.best_estimator_.coef_)


def _fit_in_child(seed):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    return FastSGDRegressor(batch_size=4, optimizer="adam", max_iter=3, tol=None,
                            random_state=seed).fit(X, y).coef_


def test_fork_after_use_is_safe():
    parent = [_fit_in_child(s) for s in range(4)]  # compiled and used before the fork
    with multiprocessing.get_context("fork").Pool(2) as pool:
        children = pool.map(_fit_in_child, range(4))
    for a, b in zip(parent, children):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------- compile cache
_CHILD = textwrap.dedent("""
    import json, sys
    import numpy as np
    from fastgd import FastSGDRegressor
    from fastgd._kernels import _jit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3)); y = X @ np.array([1.0, 2.0, 3.0])
    est = FastSGDRegressor(batch_size=8, optimizer="adam", max_iter=3, tol=None,
                           random_state=0).fit(X, y)
    hits = sum(r["cache_hits"] for r in _jit.cache_report())
    print(json.dumps({"coef": est.coef_.tolist(), "uncached": len(_jit.UNCACHED),
                      "kernels": len(_jit.KERNELS),
                      "errors": len(_jit.CACHE_ERRORS), "hits": hits}))
""")


def _reference_coef():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([1.0, 2.0, 3.0])
    return FastSGDRegressor(batch_size=8, optimizer="adam", max_iter=3, tol=None,
                            random_state=0).fit(X, y).coef_.tolist()


def _child_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update(extra)
    return env


def _run_child(env, cwd=None):
    import json

    out = subprocess.run([sys.executable, "-c", _CHILD], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_read_only_install_compiles_in_memory(tmp_path):
    """No writable cache location anywhere: import and fit still work (in memory)."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "fastgd", site / "fastgd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # a *file* named __pycache__: Numba cannot create its cache folder next to the
    # source (as with a read-only install; the tests run as root, so permissions
    # alone would not stop it), and the user-wide fallback points at /dev/null
    (site / "fastgd" / "_kernels" / "__pycache__").write_text("")
    env = _child_env(PYTHONPATH=str(site), HOME="/dev/null",
                     XDG_CACHE_HOME="/dev/null/cache")
    res = _run_child(env, cwd=tmp_path)
    assert res["uncached"] == res["kernels"] >= 10
    assert res["coef"] == _reference_coef()


def test_a_change_to_any_kernel_source_recompiles_every_kernel(tmp_path):
    """Kernels inline helpers from other modules of ``fastgd/_kernels``; Numba alone
    keys a cache entry on the defining file only, so an edit (or an upgrade) of
    ``rows.py`` alone would load machine code built from the old helpers."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "fastgd", site / "fastgd",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = _child_env(PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = _run_child(env, cwd=tmp_path)
    assert first["hits"] == 0 and first["errors"] == 0
    assert _run_child(env, cwd=tmp_path)["hits"] > 0  # loaded from the cache
    with open(site / "fastgd" / "_kernels" / "rows.py", "a") as f:
        f.write("\n# an edit of a module that only provides inlined helpers\n")
    third = _run_child(env, cwd=tmp_path)
    assert third["hits"] == 0  # every kernel compiled anew
    assert third["coef"] == first["coef"] == _reference_coef()


def _corrupt(cache_dir, how):
    files = glob.glob(str(cache_dir / "**" / "*.nb[ic]"), recursive=True)
    assert files
    for f in sorted(files):
        if how == "garbage":
            Path(f).write_bytes(os.urandom(64))
        elif how == "truncated":
            raw = Path(f).read_bytes()
            Path(f).write_bytes(raw[: len(raw) // 3])


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_corrupt_cache_is_recovered(tmp_path, how):
    env = _child_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    first = _run_child(env)
    assert first["errors"] == 0 and first["hits"] == 0
    _corrupt(tmp_path / "cache", how)
    second = _run_child(env)
    assert second["coef"] == first["coef"] == _reference_coef()
    assert second["errors"] > 0  # it did meet the damaged entries
    third = _run_child(env)  # ... and rewrote them: loaded, not recompiled
    assert third["errors"] == 0 and third["hits"] > 0
    assert third["coef"] == first["coef"]


def test_processes_compiling_at_once_share_a_sound_cache(tmp_path):
    env = _child_env(NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    import json

    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    ref = _reference_coef()
    assert all(r["coef"] == ref and r["errors"] == 0 for r in results)
    after = _run_child(env)
    assert after["errors"] == 0 and after["hits"] > 0 and after["coef"] == ref


def test_warmup_reports_every_kernel_and_its_cache(capsys):
    report = fastgd.warmup(dtypes=("float32",), sparse=True, fortran=False, verbose=True)
    names = {row["kernel"].rsplit(".", 1)[-1] for row in report}
    assert {"epoch_plain", "epoch_batch", "batch_grad", "batch_step",
            "block_order"} <= names
    assert all(row["signatures"] >= 1 for row in report)
    assert report[0]["seconds"] >= 0.0
    assert "epoch_batch" in capsys.readouterr().out
    with pytest.raises(ValueError, match="dtypes"):
        fastgd.warmup(dtypes=("int8",))


def test_warmup_compiles_the_loops_of_large_shuffled_data():
    """In a fresh process (where no fit ran before), warmup alone prepares the
    permutation and the loops that copy shuffled rows ahead of training, which its tiny
    fits would not use by themselves."""
    import json

    code = textwrap.dedent("""
        import json
        import fastgd
        report = fastgd.warmup(dtypes=("float64",), sparse=False, fortran=False)
        print(json.dumps(sorted(r["kernel"].rsplit(".", 1)[-1] for r in report)))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=_child_env(),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    names = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert {"permutation", "gather_rows", "gathered_epoch_plain",
            "gathered_epoch_batch"} <= names


# -------------------------------------------------------------------------- resume
SCHEDULES = {
    "constant": "constant", "optimal": "optimal", "invscaling": "invscaling",
    "adaptive": "adaptive", "step": Step(2, gamma=0.5), "multistep": MultiStep([2, 5]),
    "exponential": Exponential(0.8), "cosine": Cosine(T_max=8),
    "warm_restarts": CosineWarmRestarts(T_0=3), "onecycle": OneCycle(total_steps=200),
    "inverse_sqrt": InverseSqrt(warmup_steps=5), "warmup": Warmup(Cosine(8), 10),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_resume_from_a_checkpoint_is_bit_identical(data, tmp_path, optimizer, schedule):
    """Interrupted at epoch 3 of a fit with convergence checks, resumed from the file."""
    X, y = data
    params = dict(batch_size=16, optimizer=optimizer, learning_rate=SCHEDULES[schedule],
                  eta0=0.01, max_iter=12, tol=1e-2, n_iter_no_change=2, random_state=0)
    ck = Checkpoint(tmp_path / "ck-{epoch}.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = FastSGDRegressor(callbacks=[ck], **params).fit(X, y)
        stop = min(3, full.n_iter_)
        resumed = Checkpoint.resume(tmp_path / f"ck-{stop}.pkl", X, y)
    assert resumed.n_iter_ == full.n_iter_
    np.testing.assert_array_equal(resumed.coef_, full.coef_)
    np.testing.assert_array_equal(resumed.intercept_, full.intercept_)
    assert resumed.loss_curve_ == full.loss_curve_
    assert resumed.lr_curve_ == full.lr_curve_
    assert resumed.t_ == full.t_


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("optimizer", OPTIMIZER_NAMES)
def test_pickled_estimator_continues_bit_identically(data, optimizer, schedule):
    """k partial_fit calls, pickle, unpickle, m more == k + m calls uninterrupted."""
    X, y = data
    params = dict(batch_size=16, optimizer=optimizer, learning_rate=SCHEDULES[schedule],
                  eta0=0.01, random_state=0)
    straight = FastSGDRegressor(**params)
    broken = FastSGDRegressor(**params)
    for _ in range(3):
        straight.partial_fit(X, y)
        broken.partial_fit(X, y)
    broken = pickle.loads(pickle.dumps(broken))
    for _ in range(3):
        straight.partial_fit(X, y)
        broken.partial_fit(X, y)
    np.testing.assert_array_equal(broken.coef_, straight.coef_)
    np.testing.assert_array_equal(broken.intercept_, straight.intercept_)
    assert broken.optimizer_state_.keys() == straight.optimizer_state_.keys()
    assert broken.optimizer_state_["step"] == straight.optimizer_state_["step"] > 0
    for name, buf in straight.optimizer_state_.items():
        np.testing.assert_array_equal(broken.optimizer_state_[name], buf, err_msg=name)


@pytest.mark.parametrize("params", [
    dict(),  # scikit-learn's per-sample loop, lazy averaging
    dict(average=5, penalty="elasticnet"),
    dict(early_stopping=True, n_iter_no_change=2, restore_best_weights=True,
         batch_size=8, optimizer="adam"),
    dict(batch_size=8, batch_norm=True, learning_rate="adaptive", tol=1e-2),
    dict(batch_size="full", n_jobs=2, optimizer="nesterov"),
    dict(shuffle="block", shuffle_block_size=8),
])
def test_resume_other_modes(data, params):
    X, y = data
    snaps = []
    kw = dict(max_iter=15, random_state=0) | params
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = FastSGDRegressor(callbacks=[lambda i: snaps.append(i.snapshot())],
                                **kw).fit(X, y)
        for k in (0, len(snaps) // 2, len(snaps) - 1):
            resumed = Checkpoint.resume(pickle.loads(pickle.dumps(snaps[k])), X, y)
            assert resumed.n_iter_ == full.n_iter_
            np.testing.assert_array_equal(resumed.coef_, full.coef_)
            assert resumed.loss_curve_ == full.loss_curve_
            if "early_stopping" in params:
                assert resumed.validation_scores_ == full.validation_scores_


def test_resume_classifiers(data, tmp_path):
    X, y = data
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    for params in (dict(), dict(loss="log_loss", multi_class="multinomial", batch_size=8,
                                optimizer="adam", early_stopping=True)):
        ck = Checkpoint(tmp_path / "c-{epoch}.pkl")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            full = FastSGDClassifier(max_iter=10, random_state=0, callbacks=[ck],
                                     **params).fit(X, labels)
            resumed = Checkpoint.resume(tmp_path / "c-2.pkl", X, labels)
        np.testing.assert_array_equal(resumed.coef_, full.coef_)
        assert resumed.n_iter_ == full.n_iter_
        with pytest.raises(ValueError, match="classes"):
            Checkpoint.resume(tmp_path / "c-2.pkl", X, labels % 2)


def test_resume_needs_an_interrupted_fit(data):
    est = FastSGDRegressor(max_iter=3, tol=None).fit(*data)
    with pytest.raises(ValueError, match="holds no interrupted fit"):
        Checkpoint.resume(est, *data)


# ------------------------------------------------------------ stored pickle files
def _stored():
    return sorted(FIXTURES.glob("estimators-*.pkl"))


def test_a_pickle_fixture_of_this_version_is_stored():
    # written by tests/fixtures/make_pickle_fixture.py when the version changes
    assert FIXTURES.joinpath(f"estimators-{fastgd.__version__}.pkl").is_file()


@pytest.mark.parametrize("path", _stored(), ids=lambda p: p.name)
def test_models_saved_by_earlier_versions_load_and_predict(path):
    with warnings.catch_warnings():
        # scikit-learn warns when the file was written by another scikit-learn
        warnings.simplefilter("ignore")
        with open(path, "rb") as fh:
            stored = pickle.load(fh)
    X = stored["X"]
    assert stored["models"]
    for name, entry in stored["models"].items():
        est = entry["estimator"]
        for method, expected in entry["predictions"].items():
            np.testing.assert_allclose(getattr(est, method)(X), expected, rtol=1e-12,
                                       atol=1e-12, err_msg=f"{path.name}: {name}.{method}")
        params = est.get_params()  # parameters added since take their defaults
        assert type(est)(**params).get_params() == params
        y = entry["predictions"]["predict"]
        est.partial_fit(X, y)  # training continues from the stored state
        assert np.isfinite(est.coef_).all()


# -------------------------------------------------------------------------- memory
@pytest.fixture(scope="module")
def big():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100_000, 40))
    return X, X[:, 0] + 0.1 * rng.normal(size=100_000)


@pytest.mark.parametrize("params", [dict(), dict(shuffle="block"),
                                    dict(batch_size=256, optimizer="adam"),
                                    dict(batch_size="full", n_jobs=2),
                                    dict(batch_size=64, batch_norm=True)])
@pytest.mark.parametrize("layout", ["C", "F", "float32", "csr"])
def test_fit_does_not_copy_X(big, params, layout):
    X, y = big
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "float32":
        X = X.astype(np.float32)
    elif layout == "csr":
        if params.get("batch_norm"):
            return
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    size = X.data.nbytes + X.indices.nbytes if sp.issparse(X) else X.nbytes
    est = FastSGDRegressor(max_iter=2, tol=None, random_state=0, **params)
    # compile outside the measurement, for X's own layout (a row slice of a Fortran
    # array is neither C nor F contiguous and would be validated into a C copy)
    est.fit(np.asfortranarray(X[:100]) if layout == "F" else X[:100], y[:100])
    tracemalloc.start()
    try:
        est.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the fit's own arrays are a few numbers per row (32 bytes with d = 40 is 10% of X)
    assert peak < 0.25 * size, f"peak {peak / 1e6:.1f} MB for X of {size / 1e6:.1f} MB"


def test_a_fit_that_cannot_fit_in_memory_fails_early(big, monkeypatch):
    X, y = big
    monkeypatch.setattr(_memory, "available_bytes", lambda: X.nbytes // 2)
    Xi = X.astype(np.int64)  # would be converted: a second array the size of X
    tracemalloc.start()
    try:
        with pytest.raises(MemoryError, match="GiB of memory besides X .X is int64"):
            FastSGDRegressor(max_iter=1).fit(Xi, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 0.05 * X.nbytes  # refused before converting anything
    strided = np.ascontiguousarray(np.repeat(X, 2, axis=1))[:, ::2]
    with pytest.raises(MemoryError, match="strided view"):
        FastSGDRegressor(max_iter=1).fit(strided, y)
    with pytest.raises(MemoryError, match="converted to float CSR"):
        FastSGDRegressor(max_iter=1).fit(sp.coo_matrix(X), y)
    FastSGDRegressor(max_iter=1, tol=None).fit(X, y)  # used in place: fits


def test_available_memory_is_read():
    avail = _memory.available_bytes()
    assert avail is None or avail > 0


def test_warmup_command(capsys):
    from fastgd.cli import main

    assert main(["warmup"]) == 0
    out = capsys.readouterr().out
    assert "kernels ready in" in out and "epoch_plain" in out
