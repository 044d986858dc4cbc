"""Gradient-norm monitoring with clipping: grad_norm_curve_ against the threshold."""
import matplotlib.pyplot as plt
import numpy as np

from fastgd import FastSGDRegressor, plot

rng = np.random.default_rng(0)
X = rng.normal(size=(2000, 5)) * [1.0, 1.0, 1.0, 10.0, 30.0]  # badly scaled features
y = X @ np.array([3.0, -2.0, 1.0, 0.5, 0.2]) + 20.0 + 0.5 * rng.normal(size=2000)

params = {"batch_size": 32, "optimizer": "momentum", "learning_rate": "constant",
          "eta0": 0.003, "max_iter": 40, "tol": None, "random_state": 0}
free = FastSGDRegressor(**params).fit(X, y)
clipped = FastSGDRegressor(clip_norm=5.0, **params).fit(X, y)

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
plot.grad_norms(free, ax=ax1)
ax1.set_title(f"no clipping: R² = {free.score(X, y):.3g}")
plot.grad_norms(clipped, ax=ax2)
ax2.set_title(f"clip_norm=5: R² = {clipped.score(X, y):.3g}")
plot.loss_curve([free, clipped], log=True, labels=["no clipping", "clip_norm=5"], ax=ax3)
ax3.set_title("training loss")
fig.savefig("clipping.png", dpi=100)
