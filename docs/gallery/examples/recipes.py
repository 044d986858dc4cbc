"""Three recipes, each on a data set bundled with scikit-learn, against plain SGD."""
import warnings

import matplotlib.pyplot as plt
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from fastgd import FastSGDClassifier, plot
from fastgd.schedules import Constant, Cosine, Sequential, Step, Warmup

EPOCHS = 40
warnings.simplefilter("ignore", ConvergenceWarning)


def split(X, y):
    return train_test_split(X, y, stratify=y, random_state=0)


def best_plain_sgd(Xtr, ytr, rates, **params):
    """Plain SGD (constant rate, no extras) at the rate of a small grid that reaches the
    lowest training loss: the baseline each recipe must beat."""
    runs = [FastSGDClassifier(optimizer="sgd", learning_rate="constant", eta0=rate,
                              on_divergence="restore", **params).fit(Xtr, ytr)
            for rate in rates]
    return min(runs, key=lambda est: est.loss_curve_[-1])


recipes = []
# 1. batch norm + momentum + cosine decay: wine's raw features (proline ~1000, hue ~1)
Xtr, Xte, ytr, yte = split(*load_wine(return_X_y=True))
common = dict(loss="log_loss", multi_class="multinomial", batch_size=16, max_iter=EPOCHS,
              tol=None, random_state=0)
cosine = Cosine(T_max=EPOCHS)
recipes.append(("wine (178 x 13, raw features)", "batch norm + momentum + cosine",
                FastSGDClassifier(batch_norm=True, optimizer="momentum", eta0=0.1,
                                  learning_rate=cosine, **common),
                best_plain_sgd(Xtr, ytr, [1e-4, 1e-5, 1e-6, 1e-7], **common),
                cosine, (Xtr, Xte, ytr, yte)))

# 2. clipping + Adam + step decay: breast cancer's raw features (areas in the
#    thousands: gradients of norm ~1000 at first)
Xtr, Xte, ytr, yte = split(*load_breast_cancer(return_X_y=True))
common = dict(loss="log_loss", batch_size=16, max_iter=EPOCHS, tol=None, random_state=0)
step = Step(step_size=15, gamma=0.3)
recipes.append(("breast_cancer (569 x 30, raw features)", "clipping + Adam + step decay",
                FastSGDClassifier(clip_norm=10.0, optimizer="adam", eta0=0.01,
                                  learning_rate=step, **common),
                best_plain_sgd(Xtr, ytr, [1e-4, 1e-5, 1e-6, 1e-7], **common),
                step, (Xtr, Xte, ytr, yte)))

# 3. warm-up + clipping + AdamW: digits (8 x 8 pixels, scaled to [0, 1])
X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = split(X / 16.0, y)
common = dict(loss="log_loss", multi_class="multinomial", batch_size=32, max_iter=EPOCHS,
              tol=None, random_state=0)
warm_cosine = Sequential([Warmup(Constant(unit="epoch"), warmup_steps=5, start_factor=0.1),
                          Cosine(T_max=EPOCHS - 5)], milestones=[5])
recipes.append(("digits (1797 x 64, pixels / 16)", "warm-up + clipping + AdamW",
                FastSGDClassifier(clip_norm=1.0, optimizer="adamw", eta0=0.03,
                                  learning_rate=warm_cosine, **common),
                best_plain_sgd(Xtr, ytr, [0.3, 0.1, 0.03, 0.01], **common),
                warm_cosine, (Xtr, Xte, ytr, yte)))

fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), height_ratios=[2, 1],
                         layout="constrained")
for (data, name, recipe, plain, sched, (Xtr, Xte, ytr, yte)), top, bottom in zip(
        recipes, axes[0], axes[1]):
    recipe.fit(Xtr, ytr)
    labels = [f"{name}: test accuracy {recipe.score(Xte, yte):.3f}",
              f"plain SGD, eta0={plain.eta0:g}: test accuracy {plain.score(Xte, yte):.3f}"]
    plot.loss_curve([recipe, plain], log=True, labels=labels, ax=top)
    top.set_title(data)
    top.legend(fontsize=8)
    plot.lr_schedule(sched, EPOCHS, eta0=recipe.eta0, labels=[f"{name}: rate"], ax=bottom)
    bottom.legend(fontsize=8)
fig.savefig("recipes.png", dpi=100)
