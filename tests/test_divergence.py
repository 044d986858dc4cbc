"""Divergence detection (issue 21, item 5): ``fastgd.DivergenceWarning`` when the
training objective ends far above where it started or keeps rising, and no warning
for fits that converge (the rule's calibration is in docs/reliability.md)."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from fastgd import DivergenceWarning, FastSGDClassifier, FastSGDRegressor
from fastgd import _divergence as div
from fastgd._program import lower

from naive import loss_value as naive_loss


def _divergence_warnings(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = fit()
    found = [w for w in caught if issubclass(w.category, DivergenceWarning)]
    for w in found:
        assert w.filename == __file__  # the user's call
    return est, [str(w.message) for w in found]


# ------------------------------------------------------------------ the rule itself
def test_rule_ends_far_above_the_start():
    limit = div.END_RATIO
    message = div.divergence_message([5.0, 3.0, 1.01 * limit * 2.0], start=2.0)
    assert message.startswith("Training diverged: the training objective was ")
    assert "at epoch 3 (the last" in message and "at the start" in message
    for remedy in ("StandardScaler", "batch_norm=True", "eta0", "clip_norm"):
        assert remedy in message
    # just below the threshold (with no rise), or a penalty that brings it over
    assert div.divergence_message([5.0, 3.0, 0.99 * limit], start=1.0) is None
    assert "penalty 20" in div.divergence_message([5.0, 3.0, 0.99 * limit], start=1.0,
                                                  end_penalty=20.0)


def test_rule_rises_for_several_epochs():
    start = 1.0
    rise = [0.5 * 2.0**k for k in range(div.RISE_EPOCHS + 2)]  # 0.5 ... 32: x64
    message = div.divergence_message([2.0, 1.0] + rise, start)
    assert message is not None and "rose at every epoch from epoch 3 (0.5) to epoch 9 (32)" \
        in message
    # a rise one epoch too short, one too small, or one ending near the start: quiet
    assert div.divergence_message([2.0, 1.0] + rise[:div.RISE_EPOCHS], start) is None
    small = [20.0 * 1.5**k for k in range(div.RISE_EPOCHS + 1)]  # x7.6
    assert div.divergence_message(small, start) is None
    assert div.divergence_message(rise + [0.1], start) is None  # came back down
    end_near = [0.05 * 2.0**k for k in range(div.RISE_EPOCHS + 2)]  # ends at 3.2
    assert div.divergence_message(end_near, start) is None


def test_rule_needs_a_scale():
    assert div.divergence_message([], 1.0) is None
    # the perceptron's loss is 0 for the zero model: no scale to compare with
    assert div.divergence_message([0.0, 1e6, 1e9], 0.0) is None


@pytest.mark.parametrize("loss", ["squared_error", "huber", "epsilon_insensitive",
                                  "squared_epsilon_insensitive", "hinge", "perceptron",
                                  "squared_hinge", "modified_huber", "log_loss"])
def test_loss_values_are_the_kernels_rule(loss):
    """The vectorized losses equal the kernels' scalar rule, on both sides of every
    branch (the hinge's threshold, Huber's epsilon, the log-loss's cut points)."""
    from fastgd._kernels.rules import loss_value
    from fastgd._program import LOSSES

    code, uses_epsilon, fixed = LOSSES[loss]
    eps = 0.1 if uses_epsilon else fixed
    p = np.concatenate([np.linspace(-50, 50, 201), [-37.5, -36.9, -2.0, 18.0, 33.3, 40.0]])
    P, Y = np.meshgrid(p, [-1.0, 0.0, 1.0, 0.35, -2.5])
    expected = np.vectorize(lambda a, b: loss_value(code, a, b, eps))(P, Y)
    # to rounding: log(1 + e^p) - y p cancels for large p, where the two forms round
    # differently (log1p(e^p) against logaddexp)
    np.testing.assert_allclose(div.loss_values(code, P, Y, eps), expected, rtol=1e-13,
                               atol=1e-13)


@pytest.mark.parametrize("loss, multinomial", [
    ("squared_error", False), ("huber", False), ("hinge", False), ("log_loss", False),
    ("log_loss", True),
])
def test_start_objective_is_the_larger_of_initial_and_zero(loss, multinomial):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    sw = rng.uniform(0.5, 2.0, size=30)
    K = 3
    if loss in ("squared_error", "huber"):
        Y = rng.normal(size=(30, K))
        est = FastSGDRegressor(loss=loss, alpha=0.01)
    else:
        labels = rng.integers(0, K, size=30)
        Y = np.eye(K)[labels] if multinomial else \
            np.where(np.eye(K)[labels] > 0, 1.0, 0.0 if loss == "log_loss" else -1.0)
        est = FastSGDClassifier(loss=loss, alpha=0.01,
                                multi_class="multinomial" if multinomial else "ovr")
    prog = lower(est, multinomial=multinomial)
    coef = rng.normal(size=(K, 4))
    intercept = rng.normal(size=K)
    P = X @ coef.T + intercept

    def mean_loss(P):
        if multinomial:
            lse = np.log(np.exp(P).sum(axis=1))
            return np.average(lse - (Y * P).sum(axis=1), weights=sw)
        if loss in ("squared_error", "huber"):
            values = np.vectorize(lambda p, y: naive_loss(loss, p, y))(P, Y)
        elif loss == "hinge":
            values = np.maximum(0.0, 1.0 - P * Y)
        else:
            values = np.log1p(np.exp(P)) - Y * P
        return np.average(values, axis=0, weights=sw).sum()

    penalty = 0.5 * 0.01 * (1 - 0.0) * (coef**2).sum()
    initial = mean_loss(P) + penalty
    zero = mean_loss(np.zeros_like(P))
    got = div.start_objective(X, Y, sw, coef, intercept, coef, prog)
    assert got == pytest.approx(max(initial, zero), rel=1e-12)
    got_zero = div.start_objective(sp.csr_matrix(X), Y, sw, 0 * coef, 0 * intercept,
                                   0 * coef, prog)
    assert got_zero == pytest.approx(zero, rel=1e-12)
    if multinomial:
        assert zero == pytest.approx(math.log(K))


# ----------------------------------------------------------------- on estimators
@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


@pytest.mark.parametrize("loss", ["squared_hinge", "squared_error"])
def test_unscaled_digits_warns(digits, loss):
    """The issue's example: coefficients of 1e12 to 1e14 and no word from
    scikit-learn. (The issue names the default hinge loss; at its commit, hinge on
    unscaled digits converges, coefficients ~85 and 96% training accuracy, see
    ``test_unscaled_digits_with_the_hinge_loss_converges``.)"""
    X, y = digits
    est, messages = _divergence_warnings(
        lambda: FastSGDClassifier(loss=loss, max_iter=60, random_state=0).fit(X, y))
    assert np.abs(est.coef_).max() > 1e9
    assert len(messages) == 1 and "Training diverged" in messages[0]
    assert f"at epoch {est.n_iter_} (the last" in messages[0]
    # scaled, the same estimator converges without a word
    Xs = StandardScaler().fit_transform(X)
    est, messages = _divergence_warnings(
        lambda: FastSGDClassifier(loss=loss, learning_rate="constant", eta0=0.001,
                                  max_iter=60, random_state=0).fit(Xs, y))
    assert messages == [] and est.score(Xs, y) > 0.9


def test_unscaled_digits_with_the_hinge_loss_converges(digits):
    X, y = digits
    est, messages = _divergence_warnings(
        lambda: FastSGDClassifier(random_state=0).fit(X, y))
    assert messages == [] and est.score(X, y) > 0.9 and np.abs(est.coef_).max() < 1e3


def test_a_steady_rise_warns():
    """Full-batch gradient descent at 1.05 times the stable step: the loss grows by a
    few percent an epoch, never overflowing."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    eta = 1.05 * 2.0 / np.linalg.eigvalsh(X.T @ X / 100).max()
    est, messages = _divergence_warnings(lambda: FastSGDRegressor(
        batch_size="full", learning_rate="constant", eta0=eta, penalty=None,
        fit_intercept=False, max_iter=40, tol=None).fit(X, y))
    assert len(messages) == 1 and "rose at every epoch from epoch 5" in messages[0]
    assert est.loss_curve_[-1] < div.END_RATIO * est.loss_curve_[0]  # not rule 1


def test_partial_fit_warns_on_a_diverging_call(digits):
    X, y = digits
    est = FastSGDClassifier(loss="squared_error")
    _, messages = _divergence_warnings(lambda: est.partial_fit(X, y, classes=np.unique(y)))
    assert len(messages) == 1 and "at epoch 1 (the last" in messages[0]


def test_restore_warns_once(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3)) * 1e150
    y = X @ np.array([1.0, 2.0, 3.0]) / 1e150
    _, messages = _divergence_warnings(lambda: FastSGDRegressor(
        batch_size="full", learning_rate="constant", eta0=0.01, max_iter=50, tol=None,
        on_divergence="restore").fit(X, y))
    assert len(messages) == 1 and "on_divergence='restore'" in messages[0]


def test_warm_start_from_a_near_perfect_model_is_quiet():
    """The loss of an exact model is ~0 and moves by large factors at no cost: the zero
    model's loss sets the scale."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    est = FastSGDRegressor(penalty=None, learning_rate="constant", eta0=0.05,
                           random_state=0)
    for _ in range(30):
        _, messages = _divergence_warnings(lambda: est.partial_fit(X, y))
        assert messages == []
    assert est.loss_curve_[-1] < 1e-12


def test_rows_of_zero_weight_do_not_count():
    """Samples of weight 0 are not trained on; their loss may grow without bound while
    the weighted loss falls (scikit-learn's check_classifiers_one_label_sample_weights)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = (np.arange(60) % 2).astype(int)
    sw = np.where(y == 1, 1.0, 0.0)  # one class only counts
    _, messages = _divergence_warnings(lambda: FastSGDClassifier(
        loss="log_loss", batch_size=16, optimizer="adam", max_iter=30,
        random_state=0).fit(X, y, sample_weight=sw))
    assert messages == []


SCALED_MODES = [
    dict(), dict(batch_size=32, optimizer="adam", learning_rate="constant", eta0=0.01),
    dict(batch_size="full", optimizer="momentum", learning_rate="constant", eta0=0.1),
    dict(penalty="elasticnet", average=True),
]


@pytest.mark.parametrize("params", SCALED_MODES)
def test_scaled_datasets_are_quiet(params):
    """A slice of the calibration: scikit-learn's datasets, scaled, converge silently."""
    problems = [(FastSGDRegressor, load_diabetes), (FastSGDClassifier, load_iris),
                (FastSGDClassifier, load_breast_cancer)]
    for cls, loader in problems:
        X, y = loader(return_X_y=True)
        X = StandardScaler().fit_transform(X)
        if cls is FastSGDRegressor:
            y = (y - y.mean()) / y.std()
        _, messages = _divergence_warnings(
            lambda: cls(max_iter=50, random_state=0, **params).fit(X, y))
        assert messages == [], (loader.__name__, messages)
