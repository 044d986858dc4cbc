"""``fastgd demo``: training modes side by side with scikit-learn, and figures that
show what the optimizers do (:mod:`fastgd.plot`)."""

import os
import warnings

import numpy as np

from .cli import _first_line


def _pyplot():
    """``(pyplot, fastgd.plot)``, drawing to files only (no display is opened)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot

    return plt, plot


def _demo_data():
    """Two regression problems shipped with scikit-learn or generated: no download."""
    from sklearn.datasets import load_diabetes, make_regression
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    Xg, yg = make_regression(n_samples=20000, n_features=50, noise=5.0, random_state=0)
    Xg = StandardScaler().fit_transform(Xg)
    yg = (yg - yg.mean()) / yg.std()
    return [("diabetes (442 x 10)", X, y), ("make_regression (20000 x 50)", Xg, yg)]


def _modes():
    from sklearn.linear_model import SGDRegressor

    from . import FastSGDRegressor
    from .schedules import Cosine

    return [
        ("scikit-learn SGDRegressor", lambda: SGDRegressor(random_state=0)),
        ("fastgd per-sample (sklearn algorithm)", lambda: FastSGDRegressor(random_state=0)),
        ("fastgd minibatch 32, momentum",
         lambda: FastSGDRegressor(batch_size=32, optimizer="momentum", random_state=0)),
        ("fastgd minibatch 256, adam + cosine",
         lambda: FastSGDRegressor(batch_size=256, optimizer="adam", eta0=0.05,
                                  learning_rate=Cosine(T_max=50), max_iter=50,
                                  random_state=0)),
        ("fastgd full batch GD",
         lambda: FastSGDRegressor(batch_size="full", learning_rate="constant", eta0=0.2,
                                  random_state=0)),
        ("fastgd minibatch 64, clip + batch norm",
         lambda: FastSGDRegressor(batch_size=64, clip_norm=1.0, batch_norm=True,
                                  random_state=0)),
    ]


def _classification_data():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    out = []
    for name, loader in (("breast_cancer (569 x 30)", load_breast_cancer),
                         ("digits (1797 x 64, 10 classes)", load_digits)):
        X, y = loader(return_X_y=True)
        out.append((name, StandardScaler().fit_transform(X), y))
    return out


def _classifier_modes():
    from sklearn.linear_model import SGDClassifier

    from . import FastSGDClassifier

    return [
        ("scikit-learn SGDClassifier", lambda: SGDClassifier(random_state=0)),
        ("fastgd per-sample hinge (sklearn algorithm)",
         lambda: FastSGDClassifier(random_state=0)),
        ("fastgd minibatch 32 log_loss, adam",
         lambda: FastSGDClassifier(loss="log_loss", batch_size=32, optimizer="adam",
                                   learning_rate="constant", eta0=0.01, random_state=0)),
        ("fastgd multinomial, minibatch 32, adam",
         lambda: FastSGDClassifier(loss="log_loss", multi_class="multinomial",
                                   batch_size=32, optimizer="adam",
                                   learning_rate="constant", eta0=0.01, random_state=0)),
    ]


#: d2l's ravine (Dive into Deep Learning, "Momentum"): f(x) = 0.1 x1² + 2 x2² from
#: (-5, -2), 20 steps. Gradient descent at 0.4 converges slowly along x1; at 0.6 it
#: overshoots along x2 (|1 - 0.6 * 4| > 1) and diverges; momentum 0.5 at the same 0.6
#: damps x2 and converges.
RAVINE_START = (-5.0, -2.0)
RAVINE_RUNS = (("gradient descent, lr 0.4", "sgd", 0.4),
               ("gradient descent, lr 0.6 (diverges along x2)", "sgd", 0.6),
               ("momentum 0.5, lr 0.6", 0.5, 0.6))


def _ravine_results():
    """The runs of :data:`RAVINE_RUNS` on d2l's ravine: ``(f, {label: result})``."""
    from . import minimize
    from .optim import Momentum

    def grad(x):  # a plain callable: 20 interpreted steps cost less than compiling
        return np.array([0.2 * x[0], 4.0 * x[1]])

    def f(x):
        return 0.1 * x[0] ** 2 + 2.0 * x[1] ** 2

    results = {
        label: minimize(grad, list(RAVINE_START), learning_rate=lr, n_steps=20,
                        optimizer=opt if isinstance(opt, str) else Momentum(momentum=opt))
        for label, opt, lr in RAVINE_RUNS
    }
    return f, results


def _sklearn_loss_curve(est, X, y):
    """scikit-learn's own per-epoch loss: the "Avg. loss" its SGD prints with
    ``verbose=1``, the mean loss over each epoch's updates measured as the epoch went,
    which is what fastgd's ``loss_curve_`` records. One-vs-rest problems are summed per
    epoch over the classes still training, as fastgd's classifier sums them."""
    import contextlib
    import io
    import re

    from sklearn.base import clone

    buf = io.StringIO()
    # joblib reports the one-vs-rest jobs on stderr: not ours to show
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clone(est).set_params(verbose=1).fit(X, y)
    problems = []
    for line in buf.getvalue().splitlines():
        if line.startswith("-- Epoch 1") and (not line[len("-- Epoch 1"):].strip()):
            problems.append([])
        found = re.search(r"Avg\. loss: (\S+?),", line)
        if found and problems:
            problems[-1].append(float(found.group(1)))
    n = max((len(p) for p in problems), default=0)
    return [sum(p[e] for p in problems if e < len(p)) for e in range(n)]


_LOSS_NAMES = {"squared_error": "squared error", "hinge": "hinge loss",
               "log_loss": "log loss"}


def figure_loss_curves(fits):
    """The demo figure loss curves."""
    plt, plot = _pyplot()
    # one Axes per data set and loss kind: losses of different kinds (hinge, log
    # loss) have different scales; scikit-learn's curve is drawn first, beside ours
    panels = {}
    for data_name, X, y, mode_name, est in fits:
        loss = getattr(est, "loss", "squared_error")
        curve = _sklearn_loss_curve(est, X, y) if not hasattr(
            est, "loss_curve_") else est
        label = mode_name.removeprefix("fastgd ")
        n_classes = len(getattr(est, "classes_", ()))
        if n_classes == 2 and getattr(est, "multi_class", "ovr") == "multinomial":
            label += " (2 classes: the same model)"
        elif n_classes > 2 and getattr(est, "multi_class", "ovr") == "ovr":
            label += f" (sum of {n_classes} one-vs-rest losses)"
        panels.setdefault((data_name, loss), []).append((label, curve))
    fig, axes = plt.subplots(3, 2, figsize=(13, 13), layout="constrained")
    for ax, ((data_name, loss), runs) in zip(axes.flat, panels.items()):
        plot.loss_curve([c for _, c in runs], labels=[m for m, _ in runs], log=True,
                        ax=ax)
        ax.set_title(f"{data_name}: {_LOSS_NAMES.get(loss, loss)}")
        ax.set_ylabel(f"mean training loss ({loss})")
        ax.legend(fontsize="small")
    fig.suptitle("training loss per epoch; scikit-learn's from its own per-epoch "
                 "report (verbose=1, 'Avg. loss')")
    return fig


def figure_lr_schedules():
    """The demo figure lr schedules."""
    plt, plot = _pyplot()
    from .schedules import (Constant, Cosine, CosineWarmRestarts, InverseScaling,
                            InverseSqrt, OneCycle, Sequential, Step, Warmup)

    # each panel counts one unit: updates (optimizer steps) or epochs
    by_update = {
        "invscaling (sklearn): 0.1 / (t+1)^0.25": InverseScaling(),
        "one-cycle, 100 steps": OneCycle(total_steps=100),
        "inverse sqrt, warm-up 10 (Transformer)": InverseSqrt(warmup_steps=10),
    }
    by_epoch = {
        "step: x0.5 every 25": Step(step_size=25, gamma=0.5),
        "cosine, T_max 100": Cosine(T_max=100),
        "warm-up 10, then cosine": Sequential(
            [Warmup(Constant(unit="epoch"), warmup_steps=10), Cosine(T_max=90)],
            milestones=[10]),
        "warm restarts, T_0 20, x2": CosineWarmRestarts(T_0=20, T_mult=2),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    for ax, scheds, what in ((left, by_update, "per update"),
                             (right, by_epoch, "per epoch")):
        plot.lr_schedule(list(scheds.values()), 100, eta0=0.1, labels=list(scheds),
                         ax=ax)
        ax.set_title(f"schedules counted {what} (eta0 = 0.1)")
    return fig


def figure_ravine():
    """The demo figure ravine."""
    plt, plot = _pyplot()
    f, results = _ravine_results()
    _, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    plot.trace_2d(f, list(results.values()), labels=list(results),
                  bounds=((-5.5, 1.5), (-3.0, 3.0)), optimum=[0.0, 0.0], ax=ax)
    ax.set_title("f(x) = 0.1 x1² + 2 x2², 20 steps from (-5, -2) (d2l's ravine)")
    ax.get_legend().remove()  # beside the plot, not on the paths
    ax.figure.legend(*ax.get_legend_handles_labels(), loc="outside lower center",
                     ncol=3, fontsize="small")
    return ax.figure


def figure_clipped_grad_norms():
    """The demo figure clipped grad norms."""
    _, plot = _pyplot()
    from . import FastSGDRegressor
    # the diabetes data with its raw target (25 to 346): the first gradients are
    # far above the threshold and clipped, until the fit comes close
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    est = FastSGDRegressor(batch_size=32, learning_rate="constant", eta0=0.02,
                           clip_norm=50.0, max_iter=40, tol=None,
                           random_state=0).fit(X, y)
    ax = plot.grad_norms(est)
    ax.set_title("diabetes (442 x 10), raw target: minibatch 32, clip_norm=50")
    return ax.figure


def figure_batch_modes():
    """The demo figure batch modes."""
    _, plot = _pyplot()
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=4000, n_features=20, noise=5.0, random_state=0)
    y = (y - y.mean()) / y.std()
    fig = plot.compare_batch_modes(X, y, learning_rate="constant", eta0=0.01)
    fig.suptitle("make_regression (4000 x 20), plain SGD at a constant 0.01, "
                 "20 epochs per batch size")
    return fig


def figure_batch_norm():
    """The demo figure batch norm."""
    _, plot = _pyplot()
    from . import FastSGDRegressor

    rng = np.random.default_rng(0)
    scales = np.logspace(-2, 3, 6)  # features from 0.01 to 1000 in size
    Z = rng.normal(size=(2000, 6))
    X = (Z + rng.normal(size=6)) * scales
    y = Z @ rng.normal(size=6) + 0.1 * rng.normal(size=2000)
    est = FastSGDRegressor(batch_size=64, batch_norm=True, optimizer="adam",
                           eta0=0.01, max_iter=20, tol=None, random_state=0).fit(X, y)
    fig = plot.batch_norm_effect(est, X)
    fig.suptitle("six features of scales 0.01 to 1000 (synthetic), batch_norm=True, "
                 "minibatch 64, adam")
    return fig


def draw_figures(out_dir, fits):
    """Draw the demo's figures with :mod:`fastgd.plot` into ``out_dir``.

    Returns the list of files written and the list of ``(name, error)`` failures.
    """
    plt, _ = _pyplot()
    figures = [("loss_curves.png", lambda: figure_loss_curves(fits)),
               ("lr_schedules.png", figure_lr_schedules),
               ("ravine_gd_vs_momentum.png", figure_ravine),
               ("grad_norms_clipped.png", figure_clipped_grad_norms),
               ("batch_modes.png", figure_batch_modes), ("batch_norm.png", figure_batch_norm)]
    written, failed = [], []
    for filename, draw in figures:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = draw()
            if fig.get_layout_engine() is None:
                fig.set_layout_engine("constrained")
            path = os.path.join(out_dir, filename)
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not hide the others
            failed.append((filename, f"{type(exc).__name__}: {_first_line(exc)}"))
        finally:
            plt.close("all")
    return written, failed


def run_fits():
    """Fit every mode on every demo data set (the second fit of each is timed: the
    first compiles or loads the kernels). Returns the table rows
    ``(data, mode, epochs, seconds, score)`` and the fits ``(data, X, y, mode, est)``."""
    import time

    from sklearn.exceptions import ConvergenceWarning

    rows, fits = [], []
    tasks = [(d, _modes()) for d in _demo_data()]
    tasks += [(d, _classifier_modes()) for d in _classification_data()]
    for (data_name, X, y), modes in tasks:
        for mode_name, make in modes:
            est = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y)
                t0 = time.perf_counter()
                est.fit(X, y)
                dt = time.perf_counter() - t0
            rows.append((data_name, mode_name, est.n_iter_, dt, est.score(X, y)))
            fits.append((data_name, X, y, mode_name, est))
    return rows, fits

