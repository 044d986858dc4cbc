"""Plots of training histories, fitted lines, optimization paths and schedules.

Every function draws with matplotlib into the Axes given as ``ax`` (a new figure is
created when ``ax`` is None) and returns what it drew into: an ``Axes`` for the
one-panel plots, a ``Figure`` for the two-panel ones (:func:`compare_batch_modes`,
:func:`batch_norm_effect`, whose ``ax`` is then a pair of Axes). Nothing is shown or
saved: call ``plt.show()`` or ``fig.savefig(...)`` yourself. matplotlib's backend is
left as configured (use ``matplotlib.use("Agg")`` in scripts without a display).

The data come from the fitted estimators' histories (``loss_curve_``,
``validation_scores_``, ``time_curve_``, ``samples_seen_curve_``,
``grad_norm_curve_``), from :func:`fastgd.minimize` results (``trajectory``) and from
the schedules themselves (``sched(t, eta0=...)``), so each line's y data are exactly
those arrays.
"""

import numbers
import warnings

import numpy as np

__all__ = [
    "batch_norm_effect", "compare_batch_modes", "fit_line", "grad_norms", "loss_curve",
    "lr_schedule", "trace_2d",
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
    """``ax``, or the Axes of a new figure."""
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _axes_pair(ax, figsize):
    """Two Axes side by side (new figure when ``ax`` is None) and their Figure."""
    if ax is None:
        fig, axes = _pyplot().subplots(1, 2, figsize=figsize)
        return fig, list(axes)
    axes = list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) != 2:
        raise ValueError(f"ax must be None or a pair of Axes; got {len(axes)} Axes.")
    return axes[0].figure, axes


def _as_list(obj):
    return list(obj) if isinstance(obj, (list, tuple)) else [obj]


def _labels(labels, default, what):
    if labels is None:
        return default
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


# ------------------------------------------------------------------ loss curves
def loss_curve(estimators, *, x="epoch", log=False, labels=None, validation=True, ax=None):
    """Training loss per epoch of one or several fitted estimators.

    One line per estimator: ``loss_curve_`` (mean training loss of each epoch of the
    last ``fit`` / ``partial_fit`` call) against the epoch number, the rows visited
    (``samples_seen_curve_``) or the wall time (``time_curve_``) at the end of each
    epoch. Estimators fitted with ``early_stopping=True`` also get their
    ``validation_scores_`` (R² for regressors, accuracy for classifiers), dashed, in the
    same colour, on a twin y axis (``ax.twinx()``, which shares the x axis: it is in
    ``ax.get_shared_x_axes().get_siblings(ax)``). The legend covers both.

    Parameters
    ----------
    estimators : estimator or list of estimators
        Fitted estimators with a ``loss_curve_`` (and, for ``x="samples"`` /
        ``x="time"``, ``samples_seen_curve_`` / ``time_curve_``).
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
    ests = _as_list(estimators)
    if not ests:
        raise ValueError("No estimator to plot.")
    attr, xlabel = _X_AXES[x]
    for est in ests:
        _check_fitted(est, "loss_curve_" if attr is None else ["loss_curve_", attr])
    labels = _labels(labels, [_describe(e) for e in ests], "estimators")

    ax = _axes(ax)
    twin = None
    val_name = "validation score"
    for est, label in zip(ests, labels):
        loss = np.asarray(est.loss_curve_, dtype=float)
        xs = _epochs(loss) if attr is None else np.asarray(getattr(est, attr), dtype=float)
        (line,) = ax.plot(xs, loss, marker=_marker(loss), label=label)
        scores = getattr(est, "validation_scores_", None) if validation else None
        if scores is not None and len(scores):
            if twin is None:
                twin = ax.twinx()
            from sklearn.base import is_classifier

            val_name = "validation accuracy" if is_classifier(est) else "validation R²"
            scores = np.asarray(scores, dtype=float)
            twin.plot(xs, scores, linestyle="--", marker=_marker(scores),
                      color=line.get_color(), label=f"{label} (validation)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss")
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


# ------------------------------------------------------------------ fitted line
def fit_line(est, X, y, ax=None):
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
def trace_2d(f, results, *, labels=None, levels=30, bounds=None, ax=None):
    """Contours of a 2-D objective with the paths of :func:`fastgd.minimize` runs.

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
        iterates of all trajectories, widened by 10% on each side.
    ax : matplotlib Axes or None, default=None

    Returns
    -------
    matplotlib.axes.Axes
        One line per result (markers at the iterates, the start included), in the
        order given; the contours are in ``ax.collections`` (the contour set).

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
    >>> ax = plot.trace_2d(f, runs, labels=["sgd", "momentum"])
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

    if bounds is None:
        pts = np.concatenate(trajs)
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
    for traj, label in zip(trajs, labels):
        ax.plot(traj[:, 0], traj[:, 1], marker="o", markersize=3, linewidth=1.2, label=label)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.legend()
    return ax


# ------------------------------------------------------------------ schedules
def lr_schedule(schedules, n_steps, *, eta0=1.0, labels=None, ax=None):
    """Learning rates of one or several schedules over ``t = 0 .. n_steps - 1``.

    Each line is ``sched(t, eta0=eta0)`` (the function the training loops evaluate),
    drawn as a step function: the rate at ``t`` holds until ``t + 1``.

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
        name for strings, a function's name, ``repr`` for other callables).
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
    default = [s if isinstance(s, str) else _short_repr(s) for s in scheds]
    labels = _labels(labels, default, "schedules")
    resolved = [_schedules.resolve(s) if isinstance(s, str) else s for s in scheds]

    ax = _axes(ax)
    t = np.arange(n_steps)
    for sched, label in zip(resolved, labels):
        rates = np.array([float(sched(float(v), eta0=eta0)) for v in t])
        ax.plot(t, rates, drawstyle="steps-post", label=label)
    units = {getattr(s, "counts", None) for s in resolved}
    unit = units.pop() if len(units) == 1 else None
    ax.set_xlabel({"update": "t (updates)", "epoch": "t (epochs)"}.get(unit, "t"))
    ax.set_ylabel("learning rate")
    ax.legend()
    return ax


# ------------------------------------------------------------------ gradient norms
def grad_norms(est, ax=None):
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
    ax.plot(_epochs(norms), norms, marker=_marker(norms), label="mean pre-clip gradient norm")
    clip = getattr(est, "clip_norm", None)
    if clip is not None:
        ax.axhline(clip, color="k", linestyle="--", linewidth=1, label=f"clip_norm = {clip:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("gradient norm")
    ax.legend()
    return ax


# ------------------------------------------------------------------ batch modes
def compare_batch_modes(X, y, *, batch_sizes=(1, 32, 256, "full"), estimator=None,
                        max_iter=20, random_state=0, ax=None, **params):
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
    for b in batch_sizes:
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
        ax_time.plot(est.time_curve_, loss, marker=_marker(loss), label=label)
        ax_rows.plot(est.samples_seen_curve_, loss, marker=_marker(loss), label=label)
    for a, xlabel in ((ax_time, "wall time (s)"), (ax_rows, "training rows visited")):
        a.set_yscale("log")
        a.set_xlabel(xlabel)
        a.set_ylabel("training loss")
    ax_time.set_title("loss by wall time")
    ax_rows.set_title("loss by rows visited")
    ax_rows.legend()
    return fig


# ------------------------------------------------------------------ batch norm
def batch_norm_effect(est, X, *, features=None, ax=None):
    """Per-feature distributions of ``X`` before and after the estimator's normalization.

    Left: boxplots of the raw features; right: boxplots of
    ``(X - bn_running_mean_) / sqrt(bn_running_var_ + bn_eps)``, the inputs that the
    folded model effectively sees (the running statistics are those folded into
    ``coef_`` and ``intercept_``). Well-estimated statistics give boxes centred near 0
    with a spread near 1.

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
        Axes 0 the raw features, Axes 1 the normalized ones, one box per feature (tick
        labels: feature names or ``x0``, ``x1``, ...; each box's median line has the
        gid ``"median <label>"``). Features with very different
        scales crowd the left panel: ``fig.axes[0].set_yscale("symlog")`` may help.

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
    positions = np.arange(1, len(idx) + 1)
    tick_labels = [all_names[j] for j in idx]
    for a, data, title in ((ax_raw, X_arr, "raw inputs"),
                           (ax_bn, normalized, "normalized with the running statistics")):
        parts = a.boxplot([data[:, j] for j in idx], positions=positions)
        for median, name in zip(parts["medians"], tick_labels):
            median.set_gid(f"median {name}")
        a.set_xticks(positions)
        a.set_xticklabels(tick_labels)
        a.set_title(title)
        a.set_xlabel("feature")
    ax_raw.set_ylabel("value")
    ax_bn.set_ylabel("(x - running mean) / sqrt(running var + eps)")
    return fig
