"""Telling a diverging fit from a converging one by its training objective.

A fit whose weights blow up without overflowing (a learning rate too large for
unscaled features, decayed before the numbers overflow) ends with a finite model
that is useless, and scikit-learn says nothing. fastgd warns
(:class:`fastgd.DivergenceWarning`) when the training objective

1. **ends far above where it started**: the last epoch's mean loss (``loss_curve_``:
   sample-weighted, summed over one-vs-rest classes or targets) plus the penalty of
   the final weights is more than :data:`END_RATIO` times the objective at the start;
   or
2. **rises for several epochs in a row**: the mean loss rose at each of
   :data:`RISE_EPOCHS` consecutive epochs, by more than :data:`RISE_RATIO` times in
   all, and the training ended more than :data:`RISE_END_RATIO` times above the start.

"The objective at the start" is, per output, the larger of the objectives (mean loss
plus penalty) of the initial model and of the all-zero model, measured on up to
:data:`START_ROWS` training rows before the first epoch. An epoch's loss is averaged
over the epoch as training goes, so a fit that explodes within its first epoch starts
its history far above the start: the rules compare with the model before training,
not with epoch 1. The zero model sets the scale for warm starts from a near-perfect
model, whose loss is close to zero and may move by large factors at no cost; it also
bounds a converged model: at the minimum, loss plus penalty is at most the zero
model's loss, so a penalty far above it means weights far from any minimum (weights
blown up until they separate the training data have no loss left, only penalty). An
objective that is zero for the zero model (the perceptron's, whose size says nothing
since any multiple of a separating model separates as well) gives no scale, and no
warning. The thresholds and the fits they were calibrated on are in the
documentation's Reliability page.
"""

import numpy as np
from scipy.special import logsumexp

from ._kernels import rules as _r

#: rule 1: a last epoch this many times above the start is a divergence
END_RATIO = 1000.0
#: rule 2: this many consecutive rising epochs ...
RISE_EPOCHS = 5
#: ... that rose by more than this factor in all ...
RISE_RATIO = 10.0
#: ... ending more than this many times above the start
RISE_END_RATIO = 10.0
#: rows on which the loss at the start is measured
START_ROWS = 256

_REMEDIES = (
    " Scale the features (e.g. StandardScaler), or try batch_norm=True, a smaller "
    "eta0, or gradient clipping (clip_norm=...)."
)

def penalty(weights, prog):
    """The penalty of (K, d) weights, summed over the outputs: the kernels'
    ``alpha_l2 / 2 * ||w||^2 + alpha_l1 * ||w||_1``."""
    with np.errstate(all="ignore"):  # blown-up weights: an infinite penalty
        return float(0.5 * prog.alpha_l2 * np.einsum("kj,kj->", weights, weights)
                     + prog.alpha_l1 * np.abs(weights).sum())


def start_objective(X_rows, Y_rows, sw_rows, coef, intercept, weights, prog):
    """The training objective at the start of a fit, as ``loss_curve_`` sums losses.

    Per output, the larger of the sample-weighted mean loss of the initial model
    ``(coef, intercept)`` plus the penalty of its ``weights`` (those the penalty acts
    on: normalized-space weights with batch norm), and the mean loss of the all-zero
    model, on the rows given (``X_rows`` dense or CSR, ``Y_rows`` (m, K), ``sw_rows``
    (m,)); summed over the outputs (the multinomial model is one).
    """
    from sklearn.utils.extmath import safe_sparse_dot

    if not sw_rows.sum() > 0.0:
        sw_rows = np.ones_like(sw_rows)  # these rows weigh nothing: count them alike
    # huge targets or weights overflow here as they would in training (which then
    # raises the overflow error); an infinite start gives no warning
    with np.errstate(all="ignore"):
        P = safe_sparse_dot(X_rows, coef.T, dense_output=True) + intercept
        initial = _mean_losses(P, Y_rows, sw_rows, prog).sum() + penalty(weights, prog)
        zero = _mean_losses(np.zeros_like(P), Y_rows, sw_rows, prog).sum()
    return float(max(initial, zero))


def _mean_losses(P, Y, sw, prog):
    if prog.multinomial:
        per_row = logsumexp(P, axis=1) - np.einsum("ik,ik->i", Y, P)
        return np.array([np.average(per_row, weights=sw)])
    return np.average(loss_values(prog.loss_code, P, Y, prog.loss_eps), axis=0,
                      weights=sw)


def loss_values(code, P, Y, eps):
    """:func:`fastgd._kernels.rules.loss_value` on arrays (the kernels' scalar rule,
    vectorized: the same formulas, checked against it in the tests)."""
    if code == _r.SQUARED_ERROR:
        return 0.5 * (P - Y) ** 2
    if code == _r.HUBER:
        a = np.abs(Y - P)
        return np.where(a <= eps, 0.5 * a * a, eps * (a - 0.5 * eps))
    if code == _r.EPSILON_INSENSITIVE:
        return np.maximum(np.abs(Y - P) - eps, 0.0)
    if code == _r.SQUARED_EPSILON_INSENSITIVE:
        return np.maximum(np.abs(Y - P) - eps, 0.0) ** 2
    if code == _r.HINGE:
        return np.maximum(eps - P * Y, 0.0)
    if code == _r.SQUARED_HINGE:
        return np.maximum(eps - P * Y, 0.0) ** 2
    if code == _r.MODIFIED_HUBER:
        z = P * Y
        return np.where(z >= 1.0, 0.0, np.where(z >= -1.0, (1.0 - z) ** 2, -4.0 * z))
    return np.logaddexp(0.0, P) - Y * P  # LOG_LOSS


def divergence_message(losses, start, end_penalty=0.0):
    """The :class:`~fastgd.DivergenceWarning` message of a fit, or None.

    Parameters
    ----------
    losses : sequence of float
        The mean training loss of each epoch (``loss_curve_``).
    start : float
        The objective at the start (:func:`start_objective`).
    end_penalty : float, default=0.0
        The penalty of the final weights (:func:`penalty`).

    Returns
    -------
    str or None
    """
    f = [float(v) for v in losses]  # Python floats: overflow to inf without a warning
    if not f or not start > 0.0:
        return None
    last = len(f)
    end = f[-1] + end_penalty
    where = (f"the training objective was {end:.3g} at epoch {last} (the last: mean "
             f"loss {f[-1]:.3g}, penalty {end_penalty:.3g})")
    if end > END_RATIO * start:
        return _message(f"{where}, more than {END_RATIO:g} times its {start:.3g} at the "
                        "start")
    if not end > RISE_END_RATIO * start:
        return None
    rising = 0
    for e in range(1, last):
        rising = rising + 1 if f[e] > f[e - 1] else 0
        first = e - rising  # the epoch (0-based) the rise started from
        if rising >= RISE_EPOCHS and f[first] > 0.0 and f[e] > RISE_RATIO * f[first]:
            while e + 1 < last and f[e + 1] > f[e]:  # name the whole rise
                e += 1
            return _message(f"the mean training loss rose at every epoch from epoch "
                            f"{first + 1} ({f[first]:.3g}) to epoch {e + 1} "
                            f"({f[e]:.3g}), and {where}, more than {RISE_END_RATIO:g} "
                            f"times its {start:.3g} at the start")
    return None


def _message(what):
    return f"Training diverged: {what}." + _REMEDIES
