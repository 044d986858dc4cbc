"""Per-step cost of sparse per-sample SGD does not grow with the number of features.

    python -m benchmarks.sparse_scaling            # 20,000 rows x 1e3..1e6 features
    python -m benchmarks.sparse_scaling --quick

Each matrix has the same number of non-zeros per row (``--nnz``), so only the width
changes. fastgd's per-sample algorithm (scikit-learn's: L2 by rescaling, O(nnz) per
step) is timed next to scikit-learn's SGDClassifier on the same CSR data, and next to
fastgd with Adam, whose coordinate-wise state makes every step touch every weight
(O(n_features) per step, documented).
"""

import argparse

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier

from fastgd import FastSGDClassifier

from .epoch_time import _time_fit


def _data(n, d, nnz, seed=0):
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, d, size=(n, nnz))
    rows = np.repeat(np.arange(n), nnz)
    X = sp.csr_matrix((rng.random(n * nnz), (rows, cols.ravel())), shape=(n, d))
    X.sum_duplicates()
    w = rng.normal(size=d)
    y = (X @ w > 0).astype(int)
    return X, y


def _time(est, X, y, epochs):
    """Marginal seconds per epoch (``epoch_time``'s method) and training accuracy.

    Taking the per-``fit`` setup out (validation and O(n_features) allocation and copies
    of the weights) matters here: on 20,000 rows and a million features it would
    otherwise outweigh the epochs.
    """
    per_epoch, _, accuracy = _time_fit(
        lambda it: clone(est).set_params(max_iter=it, tol=None), X, y, epochs,
        score=lambda fitted: fitted.score(X, y))
    return per_epoch, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    widths = [1_000, 10_000, 100_000, 1_000_000]
    if args.quick:
        args.n, widths, args.epochs = 2_000, [1_000, 100_000], 1
    Xw, yw = _data(200, 1000, args.nnz)
    _time(FastSGDClassifier(random_state=0), Xw, yw, 1)  # compile outside the timings
    _time(FastSGDClassifier(batch_size=1, optimizer="adam", random_state=0), Xw, yw, 1)
    print(f"{args.n:,} rows, {args.nnz} non-zeros per row, {args.epochs} epochs; "
          "microseconds per step (one row; marginal epochs, fit setup excluded)")
    print("| n_features | fastgd per-sample | scikit-learn | speed-up | fastgd adam (dense "
          "updates) | accuracy fastgd / sklearn |")
    print("|---:|---:|---:|---:|---:|---:|")
    for d in widths:
        X, y = _data(args.n, d, args.nnz)
        tf, af = _time(FastSGDClassifier(random_state=0), X, y, args.epochs)
        ts, as_ = _time(SGDClassifier(random_state=0), X, y, args.epochs)
        if d <= 100_000:
            ta, _ = _time(FastSGDClassifier(batch_size=1, optimizer="adam",
                                            learning_rate="constant", eta0=0.001,
                                            random_state=0), X, y, 1)
            adam = f"{ta / args.n * 1e6:.2f}"
        else:
            adam = "(skipped: O(n_features) per step)"
        print(f"| {d:,} | {tf / args.n * 1e6:.2f} | {ts / args.n * 1e6:.2f} | "
              f"{ts / tf:.2f} | {adam} | {af:.3f} / {as_:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
