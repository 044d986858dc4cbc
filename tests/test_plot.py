"""fastgd.plot: every function renders, and draws exactly the fitted histories."""

import matplotlib

matplotlib.use("Agg")

import io
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from fastgd import FastSGDClassifier, FastSGDRegressor, FastSGDRegressorCV, minimize, plot
from fastgd.schedules import Constant, Cosine, InverseScaling, Lambda, Sequential, Step, Warmup


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * rng.normal(size=300)
    return X, y


@pytest.fixture(scope="module")
def fitted(data):
    X, y = data
    plain = FastSGDRegressor(max_iter=8, tol=None, random_state=0).fit(X, y)
    early = FastSGDRegressor(batch_size=16, optimizer="adam", eta0=0.05, early_stopping=True,
                             max_iter=30, random_state=0).fit(X, y)
    return plain, early


def _save(fig_or_ax, tmp_path, name="plot.png"):
    fig = fig_or_ax if isinstance(fig_or_ax, Figure) else fig_or_ax.figure
    path = tmp_path / name
    fig.savefig(path)
    assert path.stat().st_size > 0


def _twin(ax):
    others = [a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax]
    assert len(others) <= 1
    return others[0] if others else None


def _ydata(line):
    return np.asarray(line.get_ydata(), dtype=float)


def _xdata(line):
    return np.asarray(line.get_xdata(), dtype=float)


# ------------------------------------------------------------------ loss_curve
def test_loss_curve_by_epoch_with_validation(fitted, tmp_path):
    plain, early = fitted
    ax = plot.loss_curve([plain, early])
    _save(ax, tmp_path)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["sgd, batch 1", "adam, batch 16"]
    for line, est in zip(lines, fitted):
        np.testing.assert_array_equal(_ydata(line), est.loss_curve_)
        np.testing.assert_array_equal(_xdata(line), np.arange(1, est.n_iter_ + 1))
    assert ax.get_xlabel() == "epoch" and ax.get_yscale() == "linear"

    twin = _twin(ax)
    assert twin is not None
    (val,) = twin.get_lines()  # only the early-stopping estimator has scores
    assert val.get_label() == "adam, batch 16 (validation)"
    assert val.get_color() == lines[1].get_color()
    np.testing.assert_array_equal(_ydata(val), early.validation_scores_)
    np.testing.assert_array_equal(_xdata(val), np.arange(1, early.n_iter_ + 1))
    assert twin.get_ylabel() == "validation R²"
    legend = twin.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "sgd, batch 1", "adam, batch 16", "adam, batch 16 (validation)"]


@pytest.mark.parametrize("x, attr", [("samples", "samples_seen_curve_"),
                                     ("time", "time_curve_")])
def test_loss_curve_x_axes_log_labels(fitted, x, attr, tmp_path):
    plain, early = fitted
    _, given = plt.subplots()
    ax = plot.loss_curve([plain, early], x=x, log=True, labels=["a", "b"],
                         validation=False, ax=given)
    _save(ax, tmp_path)
    assert ax is given
    assert _twin(ax) is None
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    for line, est in zip(ax.get_lines(), fitted):
        np.testing.assert_array_equal(_xdata(line), getattr(est, attr))
        np.testing.assert_array_equal(_ydata(line), est.loss_curve_)


def test_loss_curve_single_estimator_and_partial_fit(data, tmp_path):
    X, y = data
    est = FastSGDRegressor(batch_size="full", random_state=0).partial_fit(X, y)
    ax = plot.loss_curve(est)
    _save(ax, tmp_path)
    (line,) = ax.get_lines()
    assert line.get_label() == "sgd, full batch"
    assert line.get_marker() == "o"  # one epoch: a point, not a line
    np.testing.assert_array_equal(_ydata(line), est.loss_curve_)


def test_loss_curve_classifier_validation_accuracy(data, tmp_path):
    X, y = data
    clf = FastSGDClassifier(early_stopping=True, max_iter=20, random_state=0)
    clf.fit(X, y > 0)
    ax = plot.loss_curve(clf)
    _save(ax, tmp_path)
    twin = _twin(ax)
    assert twin.get_ylabel() == "validation accuracy"
    np.testing.assert_array_equal(_ydata(twin.get_lines()[0]), clf.validation_scores_)


def test_loss_curve_lines_differ_in_style_and_epochs_are_whole(fitted, tmp_path):
    plain, early = fitted
    ax = plot.loss_curve([plain, plain, early])  # two identical curves stay apart
    _save(ax, tmp_path)
    lines = ax.get_lines()
    styles = {(line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(styles) == 3
    assert ax.get_ylabel() == "mean training loss (squared_error)"
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_loss_curve_takes_loss_sequences(fitted, tmp_path):
    plain, _ = fitted
    other = [0.9, 0.5, 0.3, 0.25]  # e.g. another library's per-epoch losses
    ax = plot.loss_curve([np.array(other), plain], labels=["theirs", "ours"])
    _save(ax, tmp_path)
    theirs, ours = ax.get_lines()
    np.testing.assert_array_equal(_ydata(theirs), other)
    np.testing.assert_array_equal(_xdata(theirs), [1, 2, 3, 4])
    np.testing.assert_array_equal(_ydata(ours), plain.loss_curve_)
    assert plot.loss_curve(other).get_lines()[0].get_label() == "curve 1"
    with pytest.raises(ValueError, match="by epoch only"):
        plot.loss_curve([other, plain], x="time")


def test_loss_curve_errors(fitted):
    with pytest.raises(ValueError, match="x must be one of"):
        plot.loss_curve(fitted[0], x="updates")
    with pytest.raises(ValueError, match="labels"):
        plot.loss_curve(list(fitted), labels=["only one"])
    with pytest.raises(NotFittedError):
        plot.loss_curve(FastSGDRegressor())
    with pytest.raises(ValueError):
        plot.loss_curve([])


# ------------------------------------------------------------------ fit_line
def test_fit_line(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-2, 2, size=(80, 1))
    y = 1.5 * X[:, 0] + 0.5 + 0.05 * rng.normal(size=80)
    est = FastSGDRegressor(learning_rate="constant", eta0=0.05, random_state=0).fit(X, y)
    ax = plot.fit_line(est, X, y)
    _save(ax, tmp_path)
    (line,) = ax.get_lines()
    xs = _xdata(line)
    assert xs.min() == X.min() and xs.max() == X.max()
    np.testing.assert_allclose(_ydata(line), est.coef_[0] * xs + est.intercept_[0],
                               rtol=1e-12, atol=1e-12)
    assert line.get_label().startswith("y = 1.5")
    (scatter,) = ax.collections
    assert scatter.get_label() == "data"
    np.testing.assert_array_equal(scatter.get_offsets(), np.column_stack([X[:, 0], y]))

    # 1-D X is one feature; a given ax is used
    _, given = plt.subplots()
    assert plot.fit_line(est, X[:, 0], y, ax=given) is given


def test_fit_line_multi_output(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, size=(60, 1))
    Y = np.column_stack([2.0 * X[:, 0], -X[:, 0] + 1.0])
    est = FastSGDRegressor(learning_rate="constant", eta0=0.05, random_state=0).fit(X, Y)
    ax = plot.fit_line(est, X, Y)
    _save(ax, tmp_path)
    lines = ax.get_lines()
    assert len(lines) == 2 and len(ax.collections) == 2
    for k, line in enumerate(lines):
        np.testing.assert_allclose(_ydata(line), est.coef_[k, 0] * _xdata(line)
                                   + est.intercept_[k], rtol=1e-12, atol=1e-12)
        assert line.get_label().endswith(f"output {k}")


def test_fit_line_needs_one_feature(fitted, data):
    X, y = data
    with pytest.raises(ValueError, match="one feature"):
        plot.fit_line(fitted[0], X, y)
    one = FastSGDRegressor(max_iter=5, tol=None, random_state=0).fit(X[:, :1], y)
    with pytest.raises(ValueError, match="one feature"):
        plot.fit_line(one, X, y)
    with pytest.raises(ValueError, match="rows"):
        plot.fit_line(one, X[:, :1], y[:10])


# ------------------------------------------------------------------ trace_2d
def _f(x):
    assert x.shape == (2,)
    return 0.1 * x[0] ** 2 + 2.0 * x[1] ** 2


def _grad(x):
    return np.array([0.2 * x[0], 4.0 * x[1]])


def test_trace_2d(tmp_path):
    runs = [minimize(_grad, [-5.0, -2.0], optimizer=opt, learning_rate=0.2, n_steps=n)
            for opt, n in (("sgd", 25), ("momentum", 40))]
    ax = plot.trace_2d(_f, runs, levels=12)
    _save(ax, tmp_path)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["run 1 (25 steps)", "run 2 (40 steps)"]
    for line, res in zip(lines, runs):
        np.testing.assert_array_equal(_xdata(line), res.trajectory[:, 0])
        np.testing.assert_array_equal(_ydata(line), res.trajectory[:, 1])
    assert [line.get_marker() for line in lines] == ["o", "s"]  # a marker at every iterate
    assert len(ax.collections) >= 1  # the contour set
    pts = np.concatenate([r.trajectory for r in runs])
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < pts[:, 0].min() and pts[:, 0].max() < x1
    assert y0 < pts[:, 1].min() and pts[:, 1].max() < y1


def test_trace_2d_marks_start_and_optimum(tmp_path):
    runs = [minimize(_grad, [-5.0, -2.0], learning_rate=lr, n_steps=20) for lr in (0.4, 0.6)]
    ax = plot.trace_2d(_f, runs, bounds=((-5.5, 1.5), (-3, 3)), optimum=[0.0, 0.0])
    _save(ax, tmp_path)
    start, optimum = [c for c in ax.collections if c.get_label() in ("start", "minimum")]
    np.testing.assert_array_equal(start.get_offsets(), [[-5.0, -2.0]])  # one shared start
    np.testing.assert_array_equal(optimum.get_offsets(), [[0.0, 0.0]])
    gd4, gd6 = ax.get_lines()
    assert (gd4.get_linestyle(), gd4.get_marker()) != (gd6.get_linestyle(), gd6.get_marker())
    assert np.abs(runs[1].trajectory[-1, 1]) > 100  # diverged: drawn, cut at the box
    assert ax.get_ylim() == (-3, 3)
    with pytest.raises(ValueError, match="optimum"):
        plot.trace_2d(_f, runs, optimum=[0.0])


def test_trace_2d_single_result_bounds_labels(tmp_path):
    res = minimize(_grad, [3.0, 1.0], learning_rate=0.1, n_steps=10)
    ax = plot.trace_2d(_f, res, labels=["gd"], bounds=((-4, 4), (-2, 2)))
    _save(ax, tmp_path)
    assert ax.get_xlim() == (-4, 4) and ax.get_ylim() == (-2, 2)
    (line,) = ax.get_lines()
    assert line.get_label() == "gd"
    np.testing.assert_array_equal(_ydata(line), res.trajectory[:, 1])


def test_trace_2d_errors():
    res3 = minimize(lambda x: 2 * x, [1.0, 1.0, 1.0], n_steps=3)
    with pytest.raises(ValueError, match="two-dimensional"):
        plot.trace_2d(lambda x: float(x @ x), res3)
    res = minimize(_grad, [1.0, 1.0], n_steps=3)
    with pytest.raises(ValueError, match="labels"):
        plot.trace_2d(_f, [res, res], labels=["one"])
    with pytest.raises(ValueError, match="bounds"):
        plot.trace_2d(_f, res, bounds=((1, -1), (0, 1)))


# ------------------------------------------------------------------ lr_schedule
def test_lr_schedule(tmp_path):
    scheds = [Step(step_size=5, gamma=0.5), Warmup(Cosine(T_max=20), warmup_steps=3),
              InverseScaling(power_t=0.5, unit="epoch")]
    ax = plot.lr_schedule(scheds, 30, eta0=0.1)
    _save(ax, tmp_path)
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == [
        "Step(step_size=5, gamma=0.5)", "Warmup(schedule=Cosine(T_max=20), warmup_steps=3)",
        "InverseScaling(power_t=0.5, unit='epoch')"]
    t = np.arange(30)
    for line, sched in zip(lines, scheds):
        np.testing.assert_array_equal(_xdata(line), t)
        np.testing.assert_allclose(_ydata(line), sched(t, eta0=0.1), rtol=1e-15)
    assert ax.get_xlabel() == "t: epoch"


def test_lr_schedule_strings_and_mixed_units(tmp_path):
    ax = plot.lr_schedule(["invscaling", Step(step_size=3)], 10, labels=["inv", "step"])
    _save(ax, tmp_path)
    inv, step = ax.get_lines()
    assert (inv.get_label(), step.get_label()) == ("inv", "step")
    np.testing.assert_allclose(_ydata(inv), 1.0 / (np.arange(10) + 1.0) ** 0.25)
    # an update schedule and an epoch schedule: each default label says its unit
    assert ax.get_xlabel() == "t: update or epoch, as each schedule counts (legend)"
    ax = plot.lr_schedule(["invscaling", Step(step_size=3)], 10)
    assert [line.get_label() for line in ax.get_lines()] == [
        "invscaling [updates]", "Step(step_size=3) [epochs]"]
    assert plot.lr_schedule(Constant(), 5).get_xlabel() == "t: update (optimizer step)"


def test_lr_schedule_sequential_and_lambda(tmp_path):
    def halve(epoch):
        return 0.5 ** epoch

    scheds = [Sequential([Warmup(Constant(unit="epoch"), 3), Cosine(T_max=7)], [3]),
              Lambda(halve)]
    ax = plot.lr_schedule(scheds, 10, eta0=0.2)
    _save(ax, tmp_path)
    for line, sched in zip(ax.get_lines(), scheds):
        np.testing.assert_allclose(_ydata(line), sched(np.arange(10), eta0=0.2), rtol=1e-15)
    assert ax.get_lines()[1].get_label() == "Lambda(fn=halve)"


def test_lr_schedule_errors():
    with pytest.raises(ValueError, match="n_steps"):
        plot.lr_schedule(Step(step_size=2), 0)
    with pytest.raises(ValueError, match="labels"):
        plot.lr_schedule([Step(step_size=2)], 5, labels=["a", "b"])


def test_lr_schedule_plain_callable(tmp_path):
    def halving(t, eta0=1.0):
        return eta0 * 0.5 ** (t // 4)

    ax = plot.lr_schedule(halving, 12, eta0=0.2)
    _save(ax, tmp_path)
    (line,) = ax.get_lines()
    assert line.get_label() == "halving"
    np.testing.assert_allclose(_ydata(line), 0.2 * 0.5 ** (np.arange(12) // 4))


# ------------------------------------------------------------------ grad_norms
def test_grad_norms_with_clip_norm(data, tmp_path):
    X, y = data
    est = FastSGDRegressor(batch_size=16, clip_norm=0.5, max_iter=10, tol=None,
                           random_state=0).fit(10 * X, 10 * y)
    ax = plot.grad_norms(est)
    _save(ax, tmp_path)
    norms, clip = ax.get_lines()
    np.testing.assert_array_equal(_ydata(norms), est.grad_norm_curve_)
    np.testing.assert_array_equal(_xdata(norms), np.arange(1, 11))
    assert norms.get_label() == "mean pre-clip gradient norm"
    assert clip.get_label() == "clip_norm = 0.5"
    np.testing.assert_array_equal(_ydata(clip), [0.5, 0.5])
    assert ax.get_yscale() == "log"


def test_grad_norms_without_clipping(fitted, tmp_path):
    ax = plot.grad_norms(fitted[0])
    _save(ax, tmp_path)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(_ydata(line), fitted[0].grad_norm_curve_)
    with pytest.raises(NotFittedError):
        plot.grad_norms(FastSGDRegressor())


# ------------------------------------------------------------------ compare_batch_modes
def test_compare_batch_modes(data, tmp_path):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # tol=None: none to silence
        fig = plot.compare_batch_modes(X, y, max_iter=6, eta0=0.02)
    _save(fig, tmp_path)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    labels = ["per-sample SGD", "minibatch 32", "minibatch 256", "full-batch GD"]
    for b, t_line, r_line in zip((1, 32, 256, "full"), *(a.get_lines() for a in fig.axes)):
        ref = FastSGDRegressor(batch_size=b, max_iter=6, tol=None, eta0=0.02,
                               random_state=0).fit(X, y)
        for line in (t_line, r_line):
            np.testing.assert_array_equal(_ydata(line), ref.loss_curve_)
        np.testing.assert_array_equal(_xdata(r_line), ref.samples_seen_curve_)
        times = _xdata(t_line)
        assert len(times) == 6 and np.all(np.diff(times) >= 0) and times[0] >= 0
    for a in fig.axes:
        assert [line.get_label() for line in a.get_lines()] == labels
        assert a.get_yscale() == "log"


def test_compare_batch_modes_clones_estimator(data, tmp_path):
    X, y = data
    base = FastSGDClassifier(loss="log_loss", optimizer="adam", eta0=0.01)
    _, axes = plt.subplots(2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # silenced although tol is set
        fig = plot.compare_batch_modes(X, y > 0, batch_sizes=(8, None), estimator=base,
                                       max_iter=3, random_state=1, tol=1e-9, ax=axes)
    _save(fig, tmp_path)
    assert fig is axes[0].figure
    assert [line.get_label() for line in axes[1].get_lines()] == ["minibatch 8",
                                                                  "full-batch GD"]
    ref = FastSGDClassifier(loss="log_loss", optimizer="adam", eta0=0.01, batch_size=8,
                            max_iter=3, random_state=1, tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X, y > 0)
    np.testing.assert_array_equal(_ydata(axes[1].get_lines()[0]), ref.loss_curve_)
    assert base.get_params()["batch_size"] == 1  # the given estimator is not touched
    assert not hasattr(base, "coef_")


def test_compare_batch_modes_errors(data):
    X, y = data
    with pytest.raises(ValueError, match="batch_sizes"):
        plot.compare_batch_modes(X, y, batch_size=4)
    with pytest.raises(ValueError, match="empty"):
        plot.compare_batch_modes(X, y, batch_sizes=())


# ------------------------------------------------------------------ batch_norm_effect
@pytest.fixture(scope="module")
def scaled():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3)) * [1.0, 10.0, 100.0] + [5.0, -3.0, 200.0]
    y = X @ np.array([1.0, -0.2, 0.03]) + 0.1 * rng.normal(size=400)
    est = FastSGDRegressor(batch_size=32, batch_norm=True, max_iter=10, tol=None,
                           random_state=0).fit(X, y)
    return X, y, est


def _stats(ax):
    """{label: y data} of the two statistics lines of a batch_norm_effect panel."""
    return {line.get_label(): _ydata(line) for line in ax.get_lines()
            if line.get_label() in ("spread (standard deviation)", "|mean|")}


def test_batch_norm_effect(scaled, tmp_path):
    X, _, est = scaled
    fig = plot.batch_norm_effect(est, X)
    _save(fig, tmp_path)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    raw, bn = fig.axes
    normalized = (X - est.bn_running_mean_) / np.sqrt(est.bn_running_var_ + est.bn_eps)
    for ax, data in ((raw, X), (bn, normalized)):
        assert [t.get_text() for t in ax.get_xticklabels()] == ["x0", "x1", "x2"]
        stats = _stats(ax)
        np.testing.assert_allclose(stats["spread (standard deviation)"], data.std(axis=0),
                                   rtol=1e-12)
        np.testing.assert_allclose(stats["|mean|"], np.abs(data.mean(axis=0)), rtol=1e-12)
        assert ax.get_yscale() == "log"
    assert raw.get_ylim() == bn.get_ylim()  # one scale: the panels compare at a glance
    # the running statistics roughly standardize every feature
    stats = _stats(bn)
    assert np.all(np.abs(stats["spread (standard deviation)"] - 1.0) < 0.2)
    assert np.all(stats["|mean|"] < 0.5)


def test_batch_norm_effect_features_and_axes(scaled, tmp_path):
    X, _, est = scaled
    _, axes = plt.subplots(1, 2)
    fig = plot.batch_norm_effect(est, X, features=[2, 0], ax=axes)
    _save(fig, tmp_path)
    assert fig is axes[0].figure
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["x2", "x0"]
    z = (X[:, 2] - est.bn_running_mean_[2]) / np.sqrt(est.bn_running_var_[2] + est.bn_eps)
    np.testing.assert_allclose(_stats(axes[1])["spread (standard deviation)"][0], z.std(),
                               rtol=1e-12)


def test_batch_norm_effect_feature_names(scaled, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y, _ = scaled
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    est = FastSGDRegressor(batch_size=32, batch_norm=True, max_iter=5, tol=None,
                           random_state=0).fit(df, y)
    fig = plot.batch_norm_effect(est, df, features=["c"])
    _save(fig, tmp_path)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["c"]
    with pytest.raises(ValueError, match="Unknown feature"):
        plot.batch_norm_effect(est, df, features=["z"])


def test_batch_norm_effect_errors(scaled, fitted):
    X, _, est = scaled
    with pytest.raises(ValueError, match="batch_norm=True"):
        plot.batch_norm_effect(fitted[0], X)
    with pytest.raises(ValueError):  # NotFittedError is a ValueError
        plot.batch_norm_effect(FastSGDRegressor(batch_norm=True), X)
    with pytest.raises(ValueError, match="shape"):
        plot.batch_norm_effect(est, X[:, :2])
    with pytest.raises(ValueError, match="Unknown feature"):
        plot.batch_norm_effect(est, X, features=[3])


# ------------------------------------------------------------------ layout
def _draw_each_plot(data, fitted, scaled):
    """(name, Figure) of every fastgd.plot function, each in a figure it made itself."""
    X, y = data
    plain, early = fitted
    Xs, _, bn_est = scaled
    clf = FastSGDClassifier(early_stopping=True, max_iter=10, random_state=0).fit(X, y > 0)
    # validation R² ticks of five characters ("0.825"): without the constrained layout,
    # the twin axis's label ends 6 pixels right of a 640-pixel-wide figure
    rng = np.random.default_rng(0)
    Xv = rng.normal(size=(300, 3))
    yv = Xv @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        validated = FastSGDRegressor(early_stopping=True, max_iter=30,
                                     random_state=0).fit(Xv, yv)
    X1 = X[:, :1]
    one = FastSGDRegressor(max_iter=5, tol=None, random_state=0).fit(X1, y)
    runs = [minimize(_grad, [-5.0, -2.0], learning_rate=0.4, n_steps=20)]
    clipped = FastSGDRegressor(batch_size=16, clip_norm=0.5, max_iter=10, tol=None,
                               random_state=0).fit(10 * X, 10 * y)
    cv = dict(cv=3, max_iter=5, tol=None, random_state=0)
    search1 = FastSGDRegressorCV(param_grid={"alpha": [1e-5, 1e-3, 1e-1]}, **cv).fit(X, y)
    search2 = FastSGDRegressorCV(param_grid={"alpha": [1e-5, 1e-3, 1e-1],
                                             "eta0": [0.001, 0.01]}, **cv).fit(X, y)
    search3 = FastSGDRegressorCV(param_grid={"alpha": [1e-5, 1e-3], "eta0": [0.001, 0.01],
                                             "batch_size": [1, 8]}, **cv).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return [
            ("loss_curve", plot.loss_curve([plain, early]).figure),
            ("loss_curve validation", plot.loss_curve(validated).figure),
            ("loss_curve classifier", plot.loss_curve(clf, log=True).figure),
            ("fit_line", plot.fit_line(one, X1, y).figure),
            ("trace_2d", plot.trace_2d(_f, runs, optimum=[0, 0]).figure),
            ("lr_schedule", plot.lr_schedule(["invscaling", Step(step_size=3)], 20).figure),
            ("grad_norms", plot.grad_norms(clipped).figure),
            ("compare_batch_modes", plot.compare_batch_modes(X, y, max_iter=3)),
            ("batch_norm_effect", plot.batch_norm_effect(bn_est, Xs)),
            ("cv_results heat map", plot.cv_results(search2).figure),
            ("cv_results curve", plot.cv_results(search1).figure),
            ("cv_results many", plot.cv_results(search3).figure),
        ]


def _drawn_texts(fig):
    """The visible, non-empty Text artists that a draw of ``fig`` renders: tick labels
    only of the ticks inside their axis's view (matplotlib keeps others unrendered)."""
    from matplotlib.text import Text

    tick_texts, texts = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_texts.update((id(tick.label1), id(tick.label2)))
                if lo <= tick.get_loc() <= hi:
                    texts += [tick.label1, tick.label2]
    texts += [t for t in fig.findobj(Text) if id(t) not in tick_texts]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def test_every_plot_keeps_its_labels_inside_a_plain_savefig(data, fitted, scaled):
    """A plain ``savefig`` (no ``bbox_inches="tight"``) cuts nothing off: every piece
    of text (titles, axis labels, the twin axis's label, tick labels, legends) lies
    inside the figure."""
    for name, fig in _draw_each_plot(data, fitted, scaled):
        fig.savefig(io.BytesIO(), format="png")
        renderer = fig.canvas.get_renderer()
        W, H = fig.bbox.width, fig.bbox.height
        texts = _drawn_texts(fig)
        assert len(texts) > 5
        for t in texts:
            box = t.get_window_extent(renderer)
            inside = box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= W + 0.5 \
                and box.y1 <= H + 0.5
            assert inside, f"{name}: {t.get_text()!r} at {box.bounds} outside {W} x {H}"


def test_cv_results_plots_the_grid_and_marks_the_choice(data):
    X, y = data
    search = FastSGDRegressorCV(param_grid={"alpha": [1e-5, 1e-3, 1e-1],
                                            "eta0": [0.001, 0.01]},
                                cv=3, max_iter=5, tol=None, random_state=0).fit(X, y)
    ax = plot.cv_results(search)
    image = ax.get_images()[0].get_array()
    assert image.shape == (2, 3)  # eta0 down, alpha across
    res = search.cv_results_
    for c, params in enumerate(res["params"]):
        r = [0.001, 0.01].index(params["eta0"])
        col = [1e-5, 1e-3, 1e-1].index(params["alpha"])
        assert image[r, col] == res["mean_test_score"][c]
    star = [line for line in ax.get_lines() if line.get_label() == "chosen"][0]
    best = search.best_params_
    assert star.get_xdata()[0] == [1e-5, 1e-3, 1e-1].index(best["alpha"])
    assert star.get_ydata()[0] == [0.001, 0.01].index(best["eta0"])
    assert ax.get_xlabel() == "alpha" and ax.get_ylabel() == "eta0"
    one = FastSGDRegressorCV(param_grid={"alpha": [1e-5, 1e-3, 1e-1]}, cv=3, max_iter=5,
                             tol=None, random_state=0).fit(X, y)
    ax1 = plot.cv_results(one)
    assert ax1.get_xscale() == "log"  # four decades of alpha
    curve = ax1.get_lines()[0]
    np.testing.assert_array_equal(curve.get_ydata(), one.cv_results_["mean_test_score"])
