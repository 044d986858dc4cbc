"""The learning-rate decay strategies of fastgd.schedules, side by side."""
import matplotlib.pyplot as plt

from fastgd import plot
from fastgd.schedules import (
    Cosine,
    CosineWarmRestarts,
    Exponential,
    InverseSqrt,
    OneCycle,
    Step,
    Warmup,
)

T = 100  # counter values: epochs or updates, depending on each schedule's unit
schedules = {
    "Step(step_size=25, gamma=0.5)": Step(step_size=25, gamma=0.5),
    "Exponential(gamma=0.96)": Exponential(gamma=0.96),
    "Cosine(T_max=100)": Cosine(T_max=T),
    "CosineWarmRestarts(T_0=10, T_mult=2)": CosineWarmRestarts(T_0=10, T_mult=2),
    "OneCycle(total_steps=100)": OneCycle(total_steps=T),
    "InverseSqrt(warmup_steps=10)": InverseSqrt(warmup_steps=10),
    "Warmup(Cosine(T_max=90), warmup_steps=10)": Warmup(Cosine(T_max=T - 10), warmup_steps=10),
    '"invscaling" (scikit-learn\'s default)': "invscaling",
}
fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), sharey=True, constrained_layout=True)
for ax, (name, sched) in zip(axes.flat, schedules.items()):
    plot.lr_schedule(sched, T + 1, eta0=0.1, ax=ax)  # lr=None: the base rate is eta0
    ax.set_title(name, fontsize=9)
    ax.get_legend().remove()
    ax.grid(alpha=0.3)
fig.savefig("schedules.png", dpi=100)
