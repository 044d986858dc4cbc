"""fastgd.minimize: the issue's worked example, compiled vs interpreted, schedules."""

import numba
import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from fastgd import minimize
from fastgd.optim import Adam, Momentum
from fastgd.schedules import Exponential


@numba.njit
def ravine_grad(x):
    return np.array([0.2 * x[0], 4.0 * x[1]])


def ravine_grad_py(x):
    return np.array([0.2 * x[0], 4.0 * x[1]])


def test_issue_example_gradient_descent_in_a_ravine():
    res = minimize(ravine_grad, [-5.0, -2.0], learning_rate=0.4, n_steps=20)
    np.testing.assert_allclose(res.x, [-0.943467, -0.000073], atol=5e-7)
    assert res.nit == 20
    assert res.trajectory.shape == (21, 2)
    np.testing.assert_array_equal(res.trajectory[0], [-5.0, -2.0])
    np.testing.assert_array_equal(res.trajectory[-1], res.x)
    # closed form of gradient descent on a diagonal quadratic
    k = np.arange(21)[:, None]
    expected = np.array([-5.0, -2.0]) * (1 - 0.4 * np.array([0.2, 4.0])) ** k
    np.testing.assert_allclose(res.trajectory, expected, rtol=1e-12, atol=1e-300)
    assert res.success


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop",
                                       "adadelta", "adam", "adamw", Adam(amsgrad=True)])
def test_compiled_and_python_gradients_agree(optimizer):
    kw = dict(optimizer=optimizer, learning_rate=Exponential(gamma=0.97, lr=0.1),
              n_steps=30, clip_norm=2.0)
    a = minimize(ravine_grad, [-5.0, -2.0], **kw)
    b = minimize(ravine_grad_py, [-5.0, -2.0], **kw)
    np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(a.grad_norms, b.grad_norms, rtol=1e-12)
    np.testing.assert_allclose(a.lrs, 0.1 * 0.97 ** np.arange(30), rtol=1e-12)


def test_momentum_beats_gd_in_the_ravine():
    gd = minimize(ravine_grad, [-5.0, -2.0], learning_rate=0.4, n_steps=20)
    mom = minimize(ravine_grad, [-5.0, -2.0], optimizer=Momentum(momentum=0.5),
                   learning_rate=0.4, n_steps=20)
    assert np.linalg.norm(mom.x) < np.linalg.norm(gd.x)


def test_divergence_is_reported_not_hidden():
    res = minimize(ravine_grad, [-5.0, -2.0], learning_rate=1e200, n_steps=50)
    assert not res.success
    assert "non-finite" in res.message
    assert res.nit < 50
    assert res.trajectory.shape[0] == res.nit + 1


def test_grad_pre_clip_norm_and_clipping():
    res = minimize(ravine_grad, [-5.0, -2.0], learning_rate=0.1, n_steps=1, clip_norm=1.0)
    g = np.array([0.2 * -5.0, 4.0 * -2.0])
    assert res.grad_norms[0] == pytest.approx(np.linalg.norm(g), rel=1e-14)
    step = res.trajectory[1] - res.trajectory[0]
    assert np.linalg.norm(step) == pytest.approx(0.1 * 1.0 / (1 + 1e-6 / np.linalg.norm(g)),
                                                 rel=1e-9)


def test_bad_arguments():
    with pytest.raises(InvalidParameterError, match="learning_rate"):
        minimize(ravine_grad, [1.0, 1.0], learning_rate=-1.0)
    with pytest.raises(InvalidParameterError, match="optimizer"):
        minimize(ravine_grad, [1.0, 1.0], optimizer="lbfgs")
    with pytest.raises(ValueError, match="x0"):
        minimize(ravine_grad, [np.nan, 1.0])
    with pytest.raises(TypeError, match="callable"):
        minimize(3, [1.0, 1.0])
    with pytest.raises(ValueError, match="length"):
        minimize(lambda x: np.zeros(3), [1.0, 1.0])
