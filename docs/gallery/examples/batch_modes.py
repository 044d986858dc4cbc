"""GD vs SGD vs minibatch: training loss by wall time and by rows seen."""
import numpy as np

from fastgd import plot

rng = np.random.default_rng(0)
n, d = 50_000, 20
X = rng.normal(size=(n, d)) * np.linspace(0.2, 2.0, d)
y = X @ rng.normal(size=d) + 0.5 * rng.normal(size=n)

# One FastSGDRegressor per batch size, 30 epochs each (tol=None), the same rate;
# time_curve_ and samples_seen_curve_ give the x axes.
fig = plot.compare_batch_modes(X, y, batch_sizes=(1, 32, 256, "full"), max_iter=30,
                               learning_rate="constant", eta0=0.02)
for ax in fig.axes:
    ax.set_xscale("log")
fig.savefig("batch_modes.png", dpi=100, bbox_inches="tight")
