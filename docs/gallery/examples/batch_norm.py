"""Batch normalization on badly scaled data: one feature 1000 times larger."""
import numpy as np

from fastgd import FastSGDRegressor, plot

rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 5))
X[:, 0] *= 1000.0
y = X @ np.array([0.002, 1.0, -2.0, 0.5, 1.5]) + 0.5 + 0.1 * rng.normal(size=2000)

params = {"batch_size": 32, "learning_rate": "constant", "max_iter": 30, "tol": None,
          "random_state": 0}
runs = {
    "plain, eta0=0.01": FastSGDRegressor(eta0=0.01, **params),
    "plain, eta0=1e-6 (about the largest stable rate)": FastSGDRegressor(eta0=1e-6, **params),
    "batch_norm=True, eta0=0.01": FastSGDRegressor(eta0=0.01, batch_norm=True, **params),
}
labels = [f"{name}: R² = {est.fit(X, y).score(X, y):.3g}" for name, est in runs.items()]
ax = plot.loss_curve(list(runs.values()), log=True, labels=labels)
ax.set_title("minibatch SGD (32 rows), one feature scaled by 1000")
ax.legend(loc="center right", fontsize=8)
ax.figure.set_size_inches(7.5, 4.2)
ax.figure.savefig("batch_norm.png", dpi=100, bbox_inches="tight")

# What the batch-norm model sees: each feature's mean and spread before and after its
# running statistics normalize it.
fig = plot.batch_norm_effect(runs["batch_norm=True, eta0=0.01"], X)
fig.suptitle("one feature scaled by 1000 (synthetic), minibatch 32, batch_norm=True")
fig.savefig("batch_norm_effect.png", dpi=100)
