"""The epoch driver: allocates state, runs the compiled loops, applies scikit-learn's
convergence rules, records histories and turns kernel results into errors.

A kernel call runs one epoch; everything that happens between epochs (shuffling,
convergence checks, validation scores, the ``"adaptive"`` rate, histories, printing)
happens here in Python, where it costs microseconds per epoch.
"""

import math
import warnings

import numpy as np
from sklearn.metrics import r2_score

from ._kernels import cpu
from ._kernels import rules as _r

OVERFLOW_MESSAGE = (
    "Floating-point under-/overflow occurred at epoch #{epoch}. Scaling input data "
    "with StandardScaler or MinMaxScaler might help; so may a smaller learning rate "
    "(eta0), gradient clipping (clip_norm=...) or batch_norm=True."
)


def new_state(n_features, prog, coef_init=None, intercept_init=0.0):
    """Fresh training state (all float64) for ``n_features`` weights + intercept."""
    d = n_features
    theta = np.zeros(d + 1, dtype=np.float64)
    if coef_init is not None:
        theta[:d] = coef_init
    theta[d] = intercept_init
    state = {
        "theta": theta,
        "avg": np.zeros(d + 1, dtype=np.float64),
        "q": np.zeros(d, dtype=np.float64),
        "sc": np.zeros(cpu.N_PLAIN_SCALARS, dtype=np.float64),
        "bn_mean": np.zeros(d, dtype=np.float64),
        "bn_var": np.ones(d, dtype=np.float64),
        "updates": 0.0,
        "epochs": 0,
        "eta": None,
        "rng": None,
    }
    reset_optimizer(state, prog)
    return state


def reset_optimizer(state, prog):
    """(Re)initialize the optimizer's state for ``prog``'s optimizer."""
    d1 = state["theta"].shape[0]
    opt_state = np.zeros((_r.N_STATE, d1), dtype=np.float64)
    if prog.opt_code == _r.OPT_ADAGRAD:
        opt_state[0, :] = prog.opt_hp[3]
    state["opt_state"] = opt_state
    state["step"] = np.zeros(1, dtype=np.int64)
    state["opt_code"] = int(prog.opt_code)


def visible_params(state, prog):
    """The model as reported: (coef, intercept) in the original feature space, float64.

    Averaged parameters once ``average`` updates were made, batch norm folded in.
    """
    d = state["q"].shape[0]
    theta, avg = unscaled_copies(state)
    use_avg = prog.average > 0.0 and prog.average <= state["updates"]
    src = avg if use_avg else theta
    return _fold_batch_norm(src[:d].copy(), float(src[d]), state, prog)


def _fold_batch_norm(w, b, state, prog):
    """Express a model on normalized inputs as one on the raw inputs (eval mode)."""
    if not prog.batch_norm:
        return w, b
    w = w / np.sqrt(state["bn_var"] + prog.bn_eps)
    return w, b - float(w @ state["bn_mean"])


def _finalize_into(theta, avg, sc):
    """Fold the per-sample path's scale factors into ``theta``/``avg`` (and ``sc``)."""
    d = theta.shape[0] - 1
    cpu.finalize_plain(theta[:d], avg[:d], sc, True)
    theta[d] = sc[cpu.S_INTERCEPT]
    avg[d] = sc[cpu.S_AVG_INTERCEPT]


def unscaled_copies(state):
    """``(theta, avg)`` as plain float64 arrays, whatever representation is live."""
    theta = state["theta"].copy()
    avg = state["avg"].copy()
    if state.get("scaled", False):
        _finalize_into(theta, avg, state["sc"].copy())
    return theta, avg


def unscale(state):
    """Leave the scaled (per-sample) representation in place, e.g. before a batch run."""
    if state.get("scaled", False):
        _finalize_into(state["theta"], state["avg"], state["sc"])
        state["scaled"] = False


def _current_params_for_validation(state, prog):
    """The current (non-averaged) iterate in the original feature space.

    scikit-learn's per-sample SGD scores its validation set with the weight array
    *without* its running scale factor, so its scores (and stopping epochs) are off
    whenever L2 shrinkage is on; fastgd scores the true current weights.
    """
    d = state["q"].shape[0]
    theta = state["theta"]
    if state.get("scaled", False):
        sc = state["sc"]
        return theta[:d] * sc[cpu.S_WSCALE], float(sc[cpu.S_INTERCEPT])
    return _fold_batch_norm(theta[:d], float(theta[d]), state, prog)


class History:
    """Per-epoch records of one fit call."""

    def __init__(self):
        self.loss = []
        self.lr = []
        self.grad_norm = []
        self.val = []


def run(state, prog, X, y, sw, train_idx, *, max_epochs, tol, n_iter_no_change,
        shuffle, rng, validation=None, restore_best=False, verbose=0):
    """Train for up to ``max_epochs`` epochs; return ``(n_epochs_run, History)``.

    ``validation`` is ``None`` or ``(X_val, y_val, sw_val)`` for early stopping.
    Raises the scikit-learn overflow ``ValueError`` if parameters become non-finite.
    """
    d = X.shape[1]
    theta = state["theta"]
    avg = state["avg"]
    out = np.zeros(6, dtype=np.float64)
    hist = History()
    n_train = train_idx.shape[0]
    tol_v = -math.inf if tol is None else float(tol)
    if prog.adaptive and state["eta"] is None:
        state["eta"] = float(prog.sched_sp[0])
    sp = prog.sched_sp.copy()
    batch = prog.batch_size if prog.batch_size > 0 else max(n_train, 1)

    if prog.plain:
        sc = state["sc"]
        if not state.get("scaled", False):
            # scikit-learn's WeightVector set-up: unit scale, exact norms
            sc[cpu.S_INTERCEPT] = theta[d]
            sc[cpu.S_WSCALE] = 1.0
            sc[cpu.S_SQNORM] = float(theta[:d] @ theta[:d])
            sc[cpu.S_L1NORM] = float(np.abs(theta[:d]).sum())
            sc[cpu.S_AVG_A] = 0.0
            sc[cpu.S_AVG_B] = 1.0
            sc[cpu.S_AVG_INTERCEPT] = avg[d]
            state["scaled"] = True
        w = theta[:d]
        aw = avg[:d]
        wscale_threshold = 1e-9 if X.dtype == np.float64 else 1e-6
    else:
        unscale(state)
        g = np.zeros(d + 1, dtype=np.float64)
        mu = np.zeros(d + 1, dtype=np.float64)
        inv_sd = np.zeros(d + 1, dtype=np.float64)
        weff = np.zeros(d + 1, dtype=np.float64)

    # one batch holding every row: the order only changes rounding, and visiting rows
    # in a random order would cost random memory access for nothing
    shuffle = shuffle and batch < n_train

    best_obj = math.inf
    best_score = -math.inf
    no_improve = 0
    best_snapshot = None
    epoch_run = 0
    try:
        for epoch in range(max_epochs):
            epoch_run = epoch + 1
            order = rng.permutation(train_idx) if shuffle else train_idx
            if prog.adaptive:
                sp[0] = state["eta"]
            if prog.plain:
                cpu.epoch_plain(
                    X, y, sw, order, w, aw, state["q"], sc, state["updates"] + 1.0,
                    prog.fit_intercept,
                    prog.loss_code, prog.loss_eps, prog.penalty, prog.alpha,
                    prog.l1_ratio, prog.average, prog.sched_code, sp, prog.sched_unit,
                    float(state["epochs"]), wscale_threshold, out,
                )
                finite = math.isfinite(sc[cpu.S_INTERCEPT]) and np.isfinite(w).all()
            else:
                cpu.epoch_batch(
                    X, y, sw, order, batch, theta, prog.fit_intercept,
                    prog.loss_code, prog.loss_eps, prog.alpha_l2, prog.alpha_l1,
                    prog.clip_value, prog.clip_norm,
                    prog.opt_code, prog.opt_hp, state["opt_state"], state["step"],
                    prog.sched_code, sp, prog.sched_unit, state["updates"],
                    float(state["epochs"]), prog.average, avg,
                    prog.batch_norm, prog.bn_momentum, prog.bn_eps,
                    state["bn_mean"], state["bn_var"], g, mu, inv_sd, weff, out,
                )
                finite = bool(np.isfinite(theta).all())
            state["updates"] += out[5]
            if prog.plain:
                state["step"][0] += int(out[5])
            state["epochs"] += 1
            # an overflowing loss means overflowing predictions: divergence, even while
            # the weights themselves are still finite
            if not finite or not math.isfinite(out[0]):
                raise FloatingPointError(epoch + 1)

            n_upd = max(out[5], 1.0)
            hist.loss.append(float(out[1] / out[2]) if out[2] > 0 else 0.0)
            hist.lr.append(float(out[4]))
            hist.grad_norm.append(float(out[3] / n_upd))
            objective = out[0] / max(n_train, 1)

            if validation is not None:
                wv, bv = _current_params_for_validation(state, prog)
                with np.errstate(all="ignore"):
                    pred = validation[0] @ wv + bv
                    score = r2_score(validation[1], pred, sample_weight=validation[2])
                hist.val.append(float(score))
                improved = score > best_score
                if tol_v > -math.inf and score < best_score + tol_v:
                    no_improve += 1
                else:
                    no_improve = 0
                if score > best_score:
                    best_score = score
            else:
                improved = objective < best_obj
                if tol_v > -math.inf and objective > best_obj - tol_v:
                    no_improve += 1
                else:
                    no_improve = 0
                if objective < best_obj:
                    best_obj = objective
            if restore_best and improved:
                best_snapshot = _snapshot(state, prog)
            if verbose:
                _print_epoch(epoch, hist, state, prog, validation is not None)
            if no_improve >= n_iter_no_change:
                if prog.adaptive and state["eta"] > 1e-6:
                    state["eta"] = state["eta"] / 5.0
                    no_improve = 0
                else:
                    if verbose:
                        print(f"Convergence after {epoch + 1} epochs.")
                    break
    except FloatingPointError as exc:
        raise ValueError(OVERFLOW_MESSAGE.format(epoch=exc.args[0])) from None
    if restore_best and best_snapshot is not None:
        _restore(state, best_snapshot)
    return epoch_run, hist


def _snapshot(state, prog):
    theta, avg = unscaled_copies(state)
    return {"theta": theta, "avg": avg, "bn_mean": state["bn_mean"].copy(),
            "bn_var": state["bn_var"].copy(), "q": state["q"].copy(),
            "l1_u": float(state["sc"][cpu.S_U])}


def _restore(state, snap):
    for key, value in snap.items():
        if key == "l1_u":
            state["sc"][cpu.S_U] = value
        else:
            state[key][...] = value
    state["scaled"] = False


def _print_epoch(epoch, hist, state, prog, early):
    w, b = visible_params(state, prog)
    msg = (f"-- Epoch {epoch + 1}\nNorm: {np.linalg.norm(w):.2f}, NNZs: "
           f"{int(np.count_nonzero(w))}, Bias: {b:.6f}, T: {int(state['updates'])}, "
           f"Avg. loss: {hist.loss[-1]:.6f}, lr: {hist.lr[-1]:.3g}")
    if early:
        msg += f", Validation score: {hist.val[-1]:.6f}"
    print(msg)


def warn_if_not_converged(n_iter, max_iter, tol):
    from sklearn.exceptions import ConvergenceWarning

    if tol is not None and n_iter == max_iter:
        warnings.warn(
            "Maximum number of iteration reached before convergence. Consider "
            "increasing max_iter to improve the fit.",
            ConvergenceWarning,
        )
