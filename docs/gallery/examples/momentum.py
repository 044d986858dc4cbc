"""Gradient descent vs momentum in a ravine: f(x) = 0.1 x1² + 2 x2² from (-5, -2)."""
import matplotlib.pyplot as plt
import numba
import numpy as np

from fastgd import minimize, plot
from fastgd.optim import Momentum


def f(x):
    return 0.1 * x[0] ** 2 + 2.0 * x[1] ** 2  # 20 times steeper along x2 than along x1


@numba.njit
def grad(x):
    return np.array([0.2 * x[0], 4.0 * x[1]])


fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, constrained_layout=True)
for ax, lr in zip(axes, [0.4, 0.6]):
    runs, labels = [], []
    for name, opt in [("gradient descent", "sgd"), ("momentum 0.5", Momentum(momentum=0.5))]:
        res = minimize(grad, [-5.0, -2.0], optimizer=opt, learning_rate=lr, n_steps=20)
        runs.append(res)
        labels.append(f"{name}: f = {f(res.x):.2g} after {res.nit} steps")
    plot.trace_2d(f, runs, labels=labels, levels=np.logspace(-2, 1.5, 12),
                  bounds=((-6, 2), (-3, 3)), optimum=[0.0, 0.0], ax=ax)
    ax.set_title(f"learning rate {lr}")
    ax.legend(loc="lower right", fontsize=8)
fig.savefig("momentum.png", dpi=100)
