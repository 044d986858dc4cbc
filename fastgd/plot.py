"""Plots of training histories, fitted lines, optimization paths and schedules.

Every function draws with matplotlib into the Axes given as ``ax`` (a new figure is
created when ``ax`` is None) and returns what it drew into: an ``Axes`` for the
one-panel plots, a ``Figure`` for the two-panel ones (:func:`compare_batch_modes`,
:func:`batch_norm_effect`, whose ``ax`` is then a pair of Axes). Nothing is shown or
saved: call ``plt.show()`` or ``fig.savefig(...)`` yourself. The figures they create
use matplotlib's constrained layout, so a plain ``savefig`` keeps every label inside
the image; in a figure of your own, pass ``layout="constrained"`` to
``plt.subplots`` for the same. matplotlib's backend is left as configured (use
``matplotlib.use("Agg")`` in scripts without a display).

Lines drawn together differ in line style and marker as well as colour, so that
curves lying on top of each other, or printed in grey, stay apart.

The data come from the fitted estimators' histories (``loss_curve_``,
``validation_scores_``, ``time_curve_``, ``samples_seen_curve_``,
``grad_norm_curve_``), from :func:`fastgd.minimize` results (``trajectory``) and from
the schedules themselves (``sched(t, eta0=...)``), so each line's y data are exactly
those arrays.
"""

from __future__ import annotations

import numbers
import textwrap
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ._typing import BatchSize, MatrixLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from scipy.optimize import OptimizeResult

    from .schedules import Schedule

__all__ = [
    "batch_norm_effect", "compare_batch_modes", "cv_results", "fit_line", "grad_norms",
    "loss_curve", "lr_schedule", "trace_2d",
]

_X_AXES = {
    "epoch": (None, "epoch"),
    "samples": ("samples_seen_curve_", "training rows visited"),
    "time": ("time_curve_", "wall time (s)"),
}


# ------------------------------------------------------------------ helpers
def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _axes(ax):
    """``ax``, or the Axes of a new (constrained-layout) figure."""
    if ax is None:
        _, ax = _pyplot().subplots(layout="constrained")
    return ax


def _axes_pair(ax, figsize):
    """Two Axes side by side (new figure when ``ax`` is None) and their Figure."""
    if ax is None:
        fig, axes = _pyplot().subplots(1, 2, figsize=figsize, layout="constrained")
        return fig, list(axes)
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != 2:
        raise ValueError(f"ax must be None or a pair of Axes; got {len(axes)} Axes.")
    return axes[0].figure, axes


def _as_list(obj):
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _labels(labels, default, what):
    if labels is None:  # long generated labels (nested schedules) on several lines
        return [textwrap.fill(lab, 60, subsequent_indent="  ") for lab in default]
    labels = [labels] if isinstance(labels, str) else list(labels)
    if len(labels) != len(default):
        raise ValueError(f"Got {len(labels)} labels for {len(default)} {what}.")
    return [str(lab) for lab in labels]


def _check_fitted(est, attribute):
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, attribute)


def _batch_mode(batch_size, short=True):
    """'batch 32' / 'full batch' (short) or 'minibatch 32' / 'full-batch GD' (long)."""
    if batch_size is None or (isinstance(batch_size, str) and batch_size == "full"):
        return "full batch" if short else "full-batch GD"
    if isinstance(batch_size, numbers.Integral) and batch_size == 1 and not short:
        return "per-sample SGD"
    return f"batch {batch_size}" if short else f"minibatch {batch_size}"


def _optimizer_name(optimizer):
    if isinstance(optimizer, str):
        return optimizer
    name = type(optimizer).__name__.lower()
    if name == "momentum" and getattr(optimizer, "nesterov", False):
        return "nesterov"
    return name


def _describe(est):
    """A short description of an estimator: 'sgd, batch 1', 'adam, full batch'."""
    if hasattr(est, "optimizer") and hasattr(est, "batch_size"):
        return f"{_optimizer_name(est.optimizer)}, {_batch_mode(est.batch_size)}"
    return type(est).__name__


def _short_repr(obj):
    """``repr`` of a schedule with only its non-default parameters (as scikit-learn)."""
    import inspect

    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return obj.__name__
    if not (hasattr(obj, "get_params") and hasattr(obj, "_param_names")):
        return repr(obj)

    defaults = {name: p.default
                for name, p in inspect.signature(type(obj).__init__).parameters.items()}
    args = []
    for key, value in obj.get_params().items():
        default = defaults.get(key, inspect.Parameter.empty)
        try:
            same = default is not inspect.Parameter.empty and bool(value == default)
        except (TypeError, ValueError):
            same = False
        if not same:
            args.append(f"{key}={_short_repr(value)}")
    return f"{type(obj).__name__}({', '.join(args)})"


def _epochs(curve):
    return np.arange(1, len(curve) + 1)


def _marker(curve):
    """A marker for histories too short to draw a line (one ``partial_fit`` epoch)."""
    return "o" if len(curve) < 2 else None


#: (line style, marker) of the i-th line of a plot, cycled
_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"),
           ((0, (3, 1, 1, 1)), "P"))


def _style(i, n_points):
    """Line style and about eight markers per line, staggered between lines (and hollow
    on every other line) so that the markers of overlapping lines stay visible."""
    linestyle, marker = _STYLES[i % len(_STYLES)]
    every = max(1, n_points // 8)
    style = dict(linestyle=linestyle, marker=marker, markersize=5,
                 markevery=(i % every, every))
    if i % 2:
        style.update(markerfacecolor="none", markersize=7)
    return style


def _max_n_ticks(n):
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(n)


def _integer_ticks(axis):
    """Whole numbers only on an axis of counts (epochs, steps)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


# ------------------------------------------------------------------ loss curves
def loss_curve(estimators: Any, *, x: Literal["epoch", "samples", "time"] = "epoch",
               log: bool = False, labels: Sequence[str] | None = None,
               validation: bool = True, ax: Axes | None = None) -> Axes:
    """Training loss per epoch of one or several fitted estimators.

    One line per estimator: ``loss_curve_`` (mean training loss of each epoch of the
    last ``fit`` / ``partial_fit`` call) against the epoch number, the rows visited
    (``samples_seen_curve_``) or the wall time (``time_curve_``) at the end of each
    epoch. Estimators fitted with ``early_stopping=True`` also get their
    ``validation_scores_`` (R² for regressors, accuracy for classifiers), dotted, in the
    same colour, on a twin y axis (``ax.twinx()``, which shares the x axis: it is in
    ``ax.get_shared_x_axes().get_siblings(ax)``). The legend covers both. The y axis
    names the loss; losses of different kinds (hinge and log loss, say) have different
    scales and are best drawn on Axes of their own.

    Parameters
    ----------
    estimators : estimator, array-like or list of them
        Fitted estimators with a ``loss_curve_`` (and, for ``x="samples"`` /
        ``x="time"``, ``samples_seen_curve_`` / ``time_curve_``), or per-epoch losses
        measured otherwise (a 1-D sequence, drawn against the epoch; e.g. another
        library's curve), labelled ``"curve 1"``, ... by default.
    x : {"epoch", "samples", "time"}, default="epoch"
        What the x axis shows: epochs (1, 2, ...), training rows visited since the start
        of the call, or seconds since the start of the call.
    log : bool, default=False
        Logarithmic y axis for the losses.
    labels : list of str or None, default=None
        One label per estimator; by default a short description of the optimizer and
        the batch mode, e.g. ``"sgd, batch 1"`` or ``"adam, full batch"``.
    validation : bool, default=True
        Draw the validation scores when the estimator has them.
    ax : matplotlib Axes or None, default=None
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes of the training losses.

    Raises
    ------
    ValueError
        For an unknown ``x``, a wrong number of labels, or an estimator that is not
        fitted (:class:`sklearn.exceptions.NotFittedError`).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressor, plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ np.array([1.0, -2.0, 0.5])
    >>> ests = [FastSGDRegressor(batch_size=b, max_iter=10, tol=None, random_state=0).fit(X, y)
    ...         for b in (1, 16)]
    >>> ax = plot.loss_curve(ests, x="samples", log=True)
    >>> [line.get_label() for line in ax.get_lines()]
    ['sgd, batch 1', 'sgd, batch 16']
    >>> plt.close(ax.figure)
    """
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {sorted(_X_AXES)}; got {x!r}.")
    ests = [estimators] if _is_curve(estimators) else _as_list(estimators)
    if not ests:
        raise ValueError("No estimator to plot.")
    attr, xlabel = _X_AXES[x]
    curves = [_is_curve(e) for e in ests]
    if any(curves) and attr is not None:
        raise ValueError(f"Loss sequences are drawn by epoch only; got x={x!r}.")
    for est, curve in zip(ests, curves):
        if not curve:
            _check_fitted(est, "loss_curve_" if attr is None else ["loss_curve_", attr])
    default = [f"curve {i + 1}" if curve else _describe(e)
               for i, (e, curve) in enumerate(zip(ests, curves))]
    labels = _labels(labels, default, "estimators")

    ax = _axes(ax)
    twin = None
    val_name = "validation score"
    for i, (est, curve, label) in enumerate(zip(ests, curves, labels)):
        loss = np.asarray(est if curve else est.loss_curve_, dtype=float)
        xs = _epochs(loss) if attr is None else np.asarray(getattr(est, attr), dtype=float)
        (line,) = ax.plot(xs, loss, label=label, **_style(i, len(loss)))
        scores = getattr(est, "validation_scores_", None) if validation else None
        if scores is not None and len(scores):
            if twin is None:
                twin = ax.twinx()
            from sklearn.base import is_classifier

            val_name = "validation accuracy" if is_classifier(est) else "validation R²"
            scores = np.asarray(scores, dtype=float)
            twin.plot(xs, scores, linestyle=":", marker=line.get_marker(),
                      markevery=line.get_markevery(), markerfacecolor="none",
                      color=line.get_color(), label=f"{label} (validation)")
    ax.set_xlabel(xlabel)
    if attr is None:
        _integer_ticks(ax.xaxis)
    kinds = sorted({str(e.loss) for e, curve in zip(ests, curves)
                    if not curve and hasattr(e, "loss")})
    ax.set_ylabel("mean training loss" + (f" ({', '.join(kinds)})" if kinds else ""))
    if log:
        ax.set_yscale("log")
    handles, names = ax.get_legend_handles_labels()
    if twin is not None:
        twin.set_ylabel(val_name)
        more_handles, more_names = twin.get_legend_handles_labels()
        twin.legend(handles + more_handles, names + more_names)
    else:
        ax.legend(handles, names)
    return ax


def _is_curve(obj):
    """A per-epoch loss sequence given directly (not an estimator)."""
    if isinstance(obj, (list, tuple)):
        return len(obj) > 0 and all(isinstance(v, numbers.Real) for v in obj)
    return isinstance(obj, np.ndarray) and obj.ndim == 1


# ------------------------------------------------------------------ fitted line
def fit_line(est: Any, X: ArrayLike, y: ArrayLike, ax: Axes | None = None) -> Axes:
    """Scatter of one-feature data and the fitted line.

    Parameters
    ----------
    est : fitted regressor with one feature
        Its ``predict`` is evaluated on a grid spanning ``X``; with several outputs
        (2-D ``y``) one line per output is drawn.
    X : array-like of shape (n_samples, 1) or (n_samples,)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib.axes.Axes
        The data are a scatter (``ax.collections``) labelled ``"data"`` (``"data, output
        k"`` with several outputs); the lines are labelled with their equation.

    Raises
    ------
    ValueError
        When ``X`` or the estimator has more than one feature, or the lengths differ.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressor, plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(100, 1)); y = 1.5 * X[:, 0] + 0.5
    >>> est = FastSGDRegressor(learning_rate="constant", eta0=0.05, random_state=0).fit(X, y)
    >>> ax = plot.fit_line(est, X, y)
    >>> ax.get_lines()[0].get_label()
    'y = 1.5x + 0.5'
    >>> plt.close(ax.figure)
    """
    _check_fitted(est, "n_features_in_")
    X_arr = np.asarray(X, dtype=float)
    if X_arr.ndim == 1:
        X_arr = X_arr.reshape(-1, 1)
    if X_arr.ndim != 2 or X_arr.shape[1] != 1 or est.n_features_in_ != 1:
        raise ValueError(
            "fit_line draws data with one feature; got X of shape "
            f"{np.shape(X)} and an estimator fitted on {est.n_features_in_} features."
        )
    y_arr = np.asarray(y, dtype=float)
    y_arr = y_arr.reshape(-1, 1) if y_arr.ndim == 1 else y_arr
    if y_arr.shape[0] != X_arr.shape[0]:
        raise ValueError(f"X has {X_arr.shape[0]} rows but y has {y_arr.shape[0]}.")

    grid = np.linspace(X_arr.min(), X_arr.max(), 100).reshape(-1, 1)
    grid_in = grid
    names = getattr(est, "feature_names_in_", None)
    if names is not None:  # fitted on a DataFrame: predict on one too (no warning)
        import pandas as pd

        grid_in = pd.DataFrame(grid, columns=names)
    pred = np.asarray(est.predict(grid_in), dtype=float)
    pred = pred.reshape(-1, 1) if pred.ndim == 1 else pred
    coef = est.coef_.toarray() if hasattr(est.coef_, "toarray") else est.coef_  # sparsified
    coef = np.asarray(coef, dtype=float).reshape(pred.shape[1], -1)[:, 0]
    intercept = np.broadcast_to(np.asarray(est.intercept_, dtype=float), (pred.shape[1],))

    ax = _axes(ax)
    several = pred.shape[1] > 1
    for k in range(pred.shape[1]):
        suffix = f", output {k}" if several else ""
        color = f"C{k}"
        if k < y_arr.shape[1]:
            ax.scatter(X_arr[:, 0], y_arr[:, k], s=12, alpha=0.6, color=color,
                       label="data" + suffix)
        sign = "-" if intercept[k] < 0 else "+"
        ax.plot(grid[:, 0], pred[:, k], color="k" if not several else color, linewidth=2,
                label=f"y = {coef[k]:.3g}x {sign} {abs(intercept[k]):.3g}" + suffix)
    ax.set_xlabel(str(names[0]) if names is not None else "x")
    ax.set_ylabel("y")
    ax.legend()
    return ax


# ------------------------------------------------------------------ 2-D paths
def trace_2d(f: Callable[[np.ndarray], float],
             results: OptimizeResult | ArrayLike | Sequence[OptimizeResult | ArrayLike], *,
             labels: Sequence[str] | None = None, levels: int | ArrayLike = 30,
             bounds: tuple[tuple[float, float], tuple[float, float]] | None = None,
             optimum: ArrayLike | None = None, ax: Axes | None = None) -> Axes:
    """Contours of a 2-D objective with the paths of :func:`fastgd.minimize` runs.

    Each run's start is marked by a large open circle (one per distinct start, labelled
    ``"start"``) and the minimum, when given, by a star. Runs that leave the drawn box
    (a diverging one) are cut at its edge.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` for ``x`` a float64 array of length 2 (plain Python or a
        ``numba.njit`` function). It is called once per point of a 100 × 100 grid.
    results : OptimizeResult or list of OptimizeResult
        Results of :func:`fastgd.minimize` in two dimensions (anything with a
        ``trajectory`` of shape ``(n, 2)``, or such arrays themselves).
    labels : list of str or None, default=None
        One per result; default ``"run 1 (20 steps)"``, ...
    levels : int or array-like, default=30
        Contour levels, as in :meth:`matplotlib.axes.Axes.contour`.
    bounds : ((xmin, xmax), (ymin, ymax)) or None, default=None
        Extent of the contour grid and of the axes. Default: the box of the finite
        iterates of all trajectories (and the optimum), widened by 10% on each side.
    optimum : array-like of shape (2,) or None, default=None
        The minimizer, marked with a star labelled ``"minimum"``.
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib.axes.Axes
        One line per result (markers at the iterates, the start included), in the
        order given, each with its own line style and marker; the contours, the start
        and the optimum markers are in ``ax.collections``.

    Raises
    ------
    ValueError
        When a trajectory is not of shape ``(n, 2)``, or has no finite point and no
        ``bounds`` are given, or for a wrong number of labels.

    Examples
    --------
    Gradient descent and momentum in a ravine, f(x) = 0.1 x1² + 2 x2²:

    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastgd import minimize, plot
    >>> def f(x):
    ...     return 0.1 * x[0] ** 2 + 2.0 * x[1] ** 2
    >>> def grad(x):
    ...     return np.array([0.2 * x[0], 4.0 * x[1]])
    >>> runs = [minimize(grad, [-5.0, -2.0], optimizer=opt, learning_rate=0.2, n_steps=30)
    ...         for opt in ("sgd", "momentum")]
    >>> ax = plot.trace_2d(f, runs, labels=["sgd", "momentum"], optimum=[0.0, 0.0])
    >>> [len(line.get_xdata()) for line in ax.get_lines()]
    [31, 31]
    >>> plt.close(ax.figure)
    """
    runs = _as_list(results)
    if not runs:
        raise ValueError("No result to plot.")
    trajs = []
    for run in runs:
        traj = np.asarray(getattr(run, "trajectory", run), dtype=float)
        if traj.ndim != 2 or traj.shape[1] != 2:
            raise ValueError(
                "trace_2d needs two-dimensional problems: trajectories of shape (n, 2); "
                f"got shape {traj.shape}."
            )
        trajs.append(traj)
    labels = _labels(labels, [f"run {i + 1} ({len(t) - 1} steps)" for i, t in enumerate(trajs)],
                     "results")

    if optimum is not None:
        optimum = np.asarray(optimum, dtype=float)
        if optimum.shape != (2,):
            raise ValueError(f"optimum must be a point (x1, x2); got shape {optimum.shape}.")
    if bounds is None:
        pts = np.concatenate(trajs + ([optimum[None, :]] if optimum is not None else []))
        pts = pts[np.isfinite(pts).all(axis=1)]
        if pts.size == 0:
            raise ValueError("No finite iterate to take the bounds from; pass bounds.")
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = hi - lo
        pad = np.where(span > 0, 0.1 * span, np.maximum(1.0, 0.1 * np.abs(lo)))
        (x0, y0), (x1, y1) = lo - pad, hi + pad
    else:
        (x0, x1), (y0, y1) = ((float(a), float(b)) for a, b in bounds)
        if not (x0 < x1 and y0 < y1):
            raise ValueError(f"bounds must be ((xmin, xmax), (ymin, ymax)); got {bounds!r}.")

    gx, gy = np.linspace(x0, x1, 100), np.linspace(y0, y1, 100)
    XX, YY = np.meshgrid(gx, gy)
    point = np.empty(2, dtype=np.float64)
    Z = np.empty(XX.size, dtype=np.float64)
    for i, (a, b) in enumerate(zip(XX.ravel(), YY.ravel())):
        point[0], point[1] = a, b
        Z[i] = float(f(point.copy()))
    Z = Z.reshape(XX.shape)

    ax = _axes(ax)
    ax.contour(XX, YY, np.ma.masked_invalid(Z), levels=levels, cmap="viridis",
               linewidths=0.8)
    for i, (traj, label) in enumerate(zip(trajs, labels)):
        linestyle, marker = _STYLES[i % len(_STYLES)]
        ax.plot(traj[:, 0], traj[:, 1], linestyle=linestyle, marker=marker, markersize=4,
                linewidth=1.4, label=label)
    starts = np.unique(np.array([t[0] for t in trajs if len(t)]), axis=0)
    if len(starts):
        ax.scatter(starts[:, 0], starts[:, 1], s=160, facecolors="none", edgecolors="k",
                   linewidths=1.5, zorder=3, label="start")
    if optimum is not None:
        ax.scatter([optimum[0]], [optimum[1]], s=220, marker="*", color="k", zorder=3,
                   label="minimum")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend()
    return ax


# ------------------------------------------------------------------ schedules
def lr_schedule(schedules: Schedule | str | Callable[..., float]
                | Sequence[Schedule | str | Callable[..., float]], n_steps: int, *,
                eta0: float = 1.0, labels: Sequence[str] | None = None,
                ax: Axes | None = None) -> Axes:
    """Learning rates of one or several schedules over ``t = 0 .. n_steps - 1``.

    Each line is ``sched(t, eta0=eta0)`` (the function the training loops evaluate),
    drawn as a step function: the rate at ``t`` holds until ``t + 1``. The x axis says
    what ``t`` counts: ``"update (optimizer step)"`` or ``"epoch"``; when the schedules
    count different things, each default label ends with its unit.

    Parameters
    ----------
    schedules : Schedule, str or list of them
        :mod:`fastgd.schedules` objects, scikit-learn's names (``"constant"``,
        ``"invscaling"``, ``"optimal"``, ``"adaptive"``, as the estimators map them;
        ``"adaptive"`` is drawn as its constant starting rate) or any callable
        ``sched(t, eta0=...)``.
    n_steps : int
        Number of counter values (updates or epochs, see each schedule's ``counts``).
    eta0 : float, default=1.0
        Base rate of the schedules whose ``lr`` is None.
    labels : list of str or None, default=None
        One per schedule; default the schedule's ``repr`` restricted to the parameters
        that differ from their defaults, e.g. ``"Step(step_size=10, gamma=0.5)"`` (the
        name for strings, a function's name, ``repr`` for other callables), followed by
        ``" [updates]"`` or ``" [epochs]"`` when the units are mixed.
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError
        For ``n_steps < 1`` or a wrong number of labels.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from fastgd import plot
    >>> from fastgd.schedules import Cosine, Step, Warmup
    >>> scheds = [Step(step_size=10, gamma=0.5), Warmup(Cosine(T_max=40), warmup_steps=5)]
    >>> ax = plot.lr_schedule(scheds, 50, eta0=0.1)
    >>> [line.get_label() for line in ax.get_lines()]
    ['Step(step_size=10, gamma=0.5)', 'Warmup(schedule=Cosine(T_max=40), warmup_steps=5)']
    >>> [round(float(line.get_ydata()[10]), 4) for line in ax.get_lines()]
    [0.05, 0.0962]
    >>> plt.close(ax.figure)
    """
    from . import schedules as _schedules

    if (not isinstance(n_steps, numbers.Integral) or isinstance(n_steps, bool)
            or n_steps < 1):
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
    scheds = _as_list(schedules)
    if not scheds:
        raise ValueError("No schedule to plot.")
    resolved = [_schedules.resolve(s) if isinstance(s, str) else s for s in scheds]
    units = [getattr(s, "counts", None) for s in resolved]
    mixed = len(set(units)) > 1
    default = [(s if isinstance(s, str) else _short_repr(s))
               + (f" [{u}s]" if mixed and u is not None else "")
               for s, u in zip(scheds, units)]
    labels = _labels(labels, default, "schedules")

    ax = _axes(ax)
    t = np.arange(n_steps)
    for i, (sched, label) in enumerate(zip(resolved, labels)):
        rates = np.array([float(sched(float(v), eta0=eta0)) for v in t])
        ax.plot(t, rates, drawstyle="steps-post", label=label, **_style(i, n_steps))
    unit = None if mixed else units[0]
    ax.set_xlabel({"update": "t: update (optimizer step)", "epoch": "t: epoch"}.get(
        unit, "t: update or epoch, as each schedule counts (legend)"))
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("learning rate")
    ax.legend()
    return ax


# ------------------------------------------------------------------ gradient norms
def grad_norms(est: Any, ax: Axes | None = None) -> Axes:
    """Mean pre-clip gradient norm per epoch, with the clipping threshold.

    Draws ``grad_norm_curve_`` (the mean, over the updates of each epoch, of the norm
    of the batch gradient before clipping) on a logarithmic y axis, and a dashed
    horizontal line at ``clip_norm`` when the estimator clips by norm. (``clip_value``
    bounds coordinates, not the norm, and is not drawn.)

    Parameters
    ----------
    est : fitted FastSGDRegressor or FastSGDClassifier
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib.axes.Axes
        First line the norms (label ``"mean pre-clip gradient norm"``), then, with
        ``clip_norm``, the threshold (label ``"clip_norm = ..."``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressor, plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ np.array([10.0, -20.0, 5.0])
    >>> est = FastSGDRegressor(batch_size=16, clip_norm=5.0, max_iter=20, tol=None,
    ...                        random_state=0).fit(X, y)
    >>> ax = plot.grad_norms(est)
    >>> [line.get_label() for line in ax.get_lines()]
    ['mean pre-clip gradient norm', 'clip_norm = 5']
    >>> plt.close(ax.figure)
    """
    _check_fitted(est, "grad_norm_curve_")
    norms = np.asarray(est.grad_norm_curve_, dtype=float)
    ax = _axes(ax)
    ax.plot(_epochs(norms), norms, label="mean pre-clip gradient norm",
            **_style(0, len(norms)))
    clip = getattr(est, "clip_norm", None)
    if clip is not None:
        ax.axhline(clip, color="k", linestyle="--", linewidth=1, label=f"clip_norm = {clip:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("gradient norm")
    ax.legend()
    return ax


# ------------------------------------------------------------------ batch modes
def compare_batch_modes(X: MatrixLike, y: ArrayLike, *,
                        batch_sizes: Sequence[BatchSize] = (1, 32, 256, "full"),
                        estimator: Any = None, max_iter: int = 20,
                        random_state: int | None = 0, ax: Sequence[Axes] | None = None,
                        **params: Any) -> Figure:
    """Train in several batch modes and compare the losses by wall time and by rows seen.

    For each batch size, a :class:`~fastgd.FastSGDRegressor` (or a clone of
    ``estimator``) is fitted with ``batch_size``, ``max_iter``, ``random_state``,
    ``tol=None`` and then ``params`` (which may set ``tol`` again; the
    ``ConvergenceWarning`` is then silenced). Each mode is first run for one epoch on at
    most 64 rows, so that loading or compiling its training loop is not timed.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    batch_sizes : sequence of (int, "full" or None), default=(1, 32, 256, "full")
    estimator : estimator or None, default=None
        A FastSGDRegressor or FastSGDClassifier to clone; default ``FastSGDRegressor()``.
    max_iter : int, default=20
        Epochs per run.
    random_state : int or None, default=0
    ax : pair of matplotlib Axes or None, default=None
        Where to draw; a new figure with two Axes side by side when None.
    **params
        Further estimator parameters (``optimizer="adam"``, ``eta0=0.01``, ...), the
        same for every run.

    Returns
    -------
    matplotlib.figure.Figure
        Its first Axes shows ``loss_curve_`` against ``time_curve_``, its second against
        ``samples_seen_curve_``, one line per batch size in the given order, labelled
        ``"per-sample SGD"``, ``"minibatch 32"``, ..., ``"full-batch GD"``; log y axes.
        One legend for both, outside the Axes on the right in a figure made here
        (``fig.legends``), in the second Axes otherwise. Name the data with
        ``fig.suptitle(...)``.

    Raises
    ------
    ValueError
        When ``params`` contains ``batch_size``, or ``batch_sizes`` is empty.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastgd import plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 5)); y = X @ rng.normal(size=5)
    >>> fig = plot.compare_batch_modes(X, y, batch_sizes=(1, 32, "full"), max_iter=5,
    ...                                optimizer="adam", eta0=0.05)
    >>> [line.get_label() for line in fig.axes[1].get_lines()]
    ['per-sample SGD', 'minibatch 32', 'full-batch GD']
    >>> plt.close(fig)
    """
    from sklearn.base import clone
    from sklearn.exceptions import ConvergenceWarning

    if "batch_size" in params:
        raise ValueError("Pass the batch sizes as batch_sizes, not batch_size.")
    batch_sizes = list(batch_sizes)
    if not batch_sizes:
        raise ValueError("batch_sizes is empty.")
    if estimator is None:
        from .linear_model import FastSGDRegressor

        estimator = FastSGDRegressor()
    fig, (ax_time, ax_rows) = _axes_pair(ax, figsize=(11, 4))

    n_warm = min(64, len(y))
    for i, b in enumerate(batch_sizes):
        est = clone(estimator).set_params(max_iter=max_iter, random_state=random_state,
                                          tol=None)
        est.set_params(**params, batch_size=b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:  # load / compile this mode's loop outside the timed fit
                clone(est).set_params(max_iter=1).fit(X[:n_warm], y[:n_warm])
            except Exception:  # noqa: BLE001, S110 - best effort; the real fit reports errors
                pass
            est.fit(X, y)
        label = _batch_mode(b, short=False)
        loss = np.asarray(est.loss_curve_, dtype=float)
        ax_time.plot(est.time_curve_, loss, label=label, **_style(i, len(loss)))
        ax_rows.plot(est.samples_seen_curve_, loss, label=label, **_style(i, len(loss)))
    for a, xlabel in ((ax_time, "wall time (s)"), (ax_rows, "training rows visited")):
        a.set_yscale("log")
        a.set_xlabel(xlabel)
        a.set_ylabel("mean training loss")
        a.xaxis.set_major_locator(_max_n_ticks(5))
    ax_time.set_title("loss by wall time")
    ax_rows.set_title("loss by rows visited")
    if ax is None:  # our own constrained figure: the legend beside the plots
        fig.legend(*ax_rows.get_legend_handles_labels(), loc="outside right upper")
    else:
        ax_rows.legend()
    return fig


# ------------------------------------------------------------------ batch norm
def batch_norm_effect(est: Any, X: ArrayLike, *,
                      features: Sequence[int | str] | None = None,
                      ax: Sequence[Axes] | None = None) -> Figure:
    """Per-feature mean and spread of ``X`` before and after the estimator's normalization.

    For each feature, its standard deviation (the spread, circles) and the size of its
    mean (squares), on a logarithmic axis shared by both panels. Left: the raw
    features; right: ``(X - bn_running_mean_) / sqrt(bn_running_var_ + bn_eps)``, the
    inputs that the folded model effectively sees (the running statistics are those
    folded into ``coef_`` and ``intercept_``). Well-estimated statistics put every
    spread at 1 (the dashed line) and every mean far below it, whatever the raw scales.

    Parameters
    ----------
    est : FastSGDRegressor or FastSGDClassifier fitted with ``batch_norm=True``
    X : array-like of shape (n_samples, n_features)
        Dense data with the estimator's features.
    features : list of int or str, or None, default=None
        Which features to draw (indices, or names when the estimator was fitted on a
        DataFrame); all by default.
    ax : pair of matplotlib Axes or None, default=None
        Where to draw; a new figure with two Axes side by side when None.

    Returns
    -------
    matplotlib.figure.Figure
        Axes 0 the raw features, Axes 1 the normalized ones. In each, the line labelled
        ``"spread (standard deviation)"`` holds the features' standard deviations and
        the one labelled ``"|mean|"`` the absolute values of their means, one point per
        feature at x = 0, 1, ... (tick labels: feature names or ``x0``, ``x1``, ...).

    Raises
    ------
    ValueError
        When the estimator was not fitted with ``batch_norm=True`` (or not fitted:
        :class:`sklearn.exceptions.NotFittedError`), when ``X`` has the wrong number of
        features, or for an unknown feature.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressor, plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3)) * [1.0, 10.0, 100.0] + [5.0, -3.0, 200.0]
    >>> y = X @ np.array([1.0, -0.2, 0.03])
    >>> est = FastSGDRegressor(batch_size=32, batch_norm=True, random_state=0).fit(X, y)
    >>> fig = plot.batch_norm_effect(est, X)
    >>> [t.get_text() for t in fig.axes[1].get_xticklabels()]
    ['x0', 'x1', 'x2']
    >>> spread = fig.axes[1].get_lines()[0]
    >>> spread.get_label(), bool(np.allclose(spread.get_ydata(), 1.0, atol=0.1))
    ('spread (standard deviation)', True)
    >>> plt.close(fig)
    """
    _check_fitted(est, "coef_")
    if not getattr(est, "batch_norm", False) or not hasattr(est, "bn_running_mean_"):
        raise ValueError(
            "batch_norm_effect needs an estimator fitted with batch_norm=True "
            "(it has no running statistics)."
        )
    if hasattr(X, "toarray"):
        raise ValueError("batch_norm_effect needs dense X (batch norm refuses sparse input).")
    X_arr = np.asarray(X, dtype=float)
    if X_arr.ndim != 2 or X_arr.shape[1] != est.n_features_in_:
        raise ValueError(
            f"X must have shape (n_samples, {est.n_features_in_}); got {X_arr.shape}."
        )
    names = getattr(est, "feature_names_in_", None)
    all_names = ([str(n) for n in names] if names is not None
                 else [f"x{j}" for j in range(X_arr.shape[1])])
    if features is None:
        idx = list(range(X_arr.shape[1]))
    else:
        idx = []
        for feat in _as_list(features) if not isinstance(features, np.ndarray) else list(features):
            if isinstance(feat, str):
                if feat not in all_names:
                    raise ValueError(f"Unknown feature {feat!r}; features are {all_names}.")
                idx.append(all_names.index(feat))
            elif (isinstance(feat, numbers.Integral) and not isinstance(feat, bool)
                  and -X_arr.shape[1] <= feat < X_arr.shape[1]):
                idx.append(int(feat) % X_arr.shape[1])
            else:
                raise ValueError(f"Unknown feature {feat!r}; X has {X_arr.shape[1]} features.")
        if not idx:
            raise ValueError("features is empty.")

    mean = np.asarray(est.bn_running_mean_, dtype=float)
    var = np.asarray(est.bn_running_var_, dtype=float)
    normalized = (X_arr - mean) / np.sqrt(var + est.bn_eps)

    fig, (ax_raw, ax_bn) = _axes_pair(ax, figsize=(11, 4))
    positions = np.arange(len(idx))
    tick_labels = [all_names[j] for j in idx]
    shown = []
    for a, data, title in ((ax_raw, X_arr, "raw inputs"),
                           (ax_bn, normalized, "normalized by the running statistics")):
        spread = data[:, idx].std(axis=0)
        size = np.abs(data[:, idx].mean(axis=0))
        a.plot(positions, spread, linestyle="none", marker="o", markersize=8,
               label="spread (standard deviation)")
        a.plot(positions, size, linestyle="none", marker="s", markersize=7,
               markerfacecolor="none", label="|mean|")
        a.axhline(1.0, color="k", linestyle="--", linewidth=1)
        a.set_yscale("log", nonpositive="mask")
        a.set_xticks(positions)
        a.set_xticklabels(tick_labels)
        a.set_xlim(-0.5, len(idx) - 0.5)
        a.set_title(title)
        a.set_xlabel("feature")
        shown.append(np.concatenate([spread, size]))
    values = np.concatenate(shown)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size:  # one scale for both panels, so that they compare at a glance
        lo, hi = values.min(), max(values.max(), 1.0)
        for a in (ax_raw, ax_bn):
            a.set_ylim(lo / 2.0, hi * 2.0)
    ax_raw.set_ylabel("per-feature statistic (log scale)")
    ax_bn.legend(loc="best")
    return fig


def cv_results(search: Any, *, params: Sequence[str] | None = None,
               ax: Axes | None = None) -> Axes:
    """The validation score over a grid searched by :class:`fastgd.FastSGDRegressorCV`
    or :class:`fastgd.FastSGDClassifierCV` (or scikit-learn's ``GridSearchCV``), with
    the chosen candidate marked.

    One varying parameter: the mean test score against its values, with a band of one
    standard deviation over the folds. Two: a heat map of the mean test score (values
    written in the cells). More: the candidates' mean scores from best to worst. A
    parameter whose positive values span more than two decades gets a log axis.

    Parameters
    ----------
    search : fitted search estimator
        With ``cv_results_`` and ``best_index_``.
    params : list of str or None, default=None
        The grid parameters to draw (None: those that take more than one value).
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np
    >>> from fastgd import FastSGDRegressorCV, plot
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 3)); y = X @ [1.0, -2.0, 0.5]
    >>> search = FastSGDRegressorCV(param_grid={"alpha": [1e-4, 1e-2, 1.0],
    ...                                         "eta0": [0.001, 0.01]},
    ...                             cv=3, max_iter=10, random_state=0).fit(X, y)
    >>> ax = plot.cv_results(search)
    >>> ax.get_title()
    'mean test score over 3 folds\\nbest: alpha=0.0001, eta0=0.01'
    """
    _check_fitted(search, "cv_results_")
    res = search.cv_results_
    cands = res["params"]
    if params is None:
        names = sorted({k for c in cands for k in c})
        params = [k for k in names if len({repr(c.get(k)) for c in cands}) > 1]
    mean = np.asarray(res["mean_test_score"], dtype=float)
    std = np.asarray(res["std_test_score"], dtype=float)
    best = int(search.best_index_)
    ax = _axes(ax)
    n_splits = sum(1 for k in res if k.startswith("split") and k.endswith("_test_score"))
    chosen = ", ".join(f"{k}={_short(v)}" for k, v in cands[best].items())
    # the chosen candidate on lines of its own: a long one must not run off the figure
    chosen = "\n".join(textwrap.wrap(f"best: {chosen}", 60))
    ax.set_title(f"mean test score over {n_splits} folds\n{chosen}")
    if len(params) == 1:
        _cv_curve(ax, cands, params[0], mean, std, best)
    elif len(params) == 2:
        _cv_heatmap(ax, cands, params, mean, best)
    else:
        order = np.argsort(-np.where(np.isnan(mean), -np.inf, mean))
        ax.plot(np.arange(1, len(order) + 1), mean[order], "o-", ms=4)
        ax.plot([1 + int(np.flatnonzero(order == best)[0])], [mean[best]], "*", ms=14,
                color="C3", label="chosen")
        ax.set_xlabel("candidate, by rank")
        ax.set_ylabel("mean test score")
        _integer_ticks(ax.xaxis)
        ax.legend()
    return ax


def _short(value):
    return f"{value:.3g}" if isinstance(value, numbers.Real) and not isinstance(
        value, bool) else _short_repr(value)


def _log_axis(values):
    v = np.asarray([x for x in values if isinstance(x, numbers.Real)
                    and not isinstance(x, bool)], dtype=float)
    return v.size == len(values) and (v > 0).all() and v.max() / v.min() > 100


def _cv_curve(ax, cands, name, mean, std, best):
    values = [c.get(name) for c in cands]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    x = np.asarray(values, dtype=float) if numeric else np.arange(len(values))
    order = np.argsort(x)
    ax.plot(x[order], mean[order], "o-", label="mean test score")
    ax.fill_between(x[order], (mean - std)[order], (mean + std)[order], alpha=0.25,
                    label="± 1 std over folds")
    ax.plot([x[best]], [mean[best]], "*", ms=14, color="C3", label="chosen")
    if not numeric:
        ax.set_xticks(np.arange(len(values)), [_short(v) for v in values])
    elif _log_axis(values):
        ax.set_xscale("log")
    ax.set_xlabel(name)
    ax.set_ylabel("mean test score")
    ax.legend()


def _cv_heatmap(ax, cands, names, mean, best):
    cols = sorted({repr(c.get(names[0])): c.get(names[0]) for c in cands}.items(),
                  key=lambda kv: _sort_key(kv[1]))
    rows = sorted({repr(c.get(names[1])): c.get(names[1]) for c in cands}.items(),
                  key=lambda kv: _sort_key(kv[1]))
    col_at = {k: i for i, (k, _) in enumerate(cols)}
    row_at = {k: i for i, (k, _) in enumerate(rows)}
    grid = np.full((len(rows), len(cols)), np.nan)
    for c, m in zip(cands, mean):
        grid[row_at[repr(c.get(names[1]))], col_at[repr(c.get(names[0]))]] = m
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.figure.colorbar(image, ax=ax, label="mean test score")
    for (r, c), m in np.ndenumerate(grid):
        if np.isfinite(m):
            ax.text(c, r, f"{m:.3g}", ha="center", va="center", fontsize="small",
                    color="white" if m < np.nanmean(grid) else "black")
    b = cands[best]
    ax.plot([col_at[repr(b.get(names[0]))]], [row_at[repr(b.get(names[1]))]], "*",
            ms=18, color="C3", markeredgecolor="white", label="chosen")
    ax.set_xticks(np.arange(len(cols)), [_short(v) for _, v in cols])
    ax.set_yticks(np.arange(len(rows)), [_short(v) for _, v in rows])
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize="small")


def _sort_key(value):
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, repr(value))
