"""The ``fastgd`` command."""

import argparse
import sys
import time
import warnings


def _demo_data():
    """Two regression problems shipped with scikit-learn or generated: no download."""
    from sklearn.datasets import load_diabetes, make_regression
    from sklearn.preprocessing import StandardScaler

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    Xg, yg = make_regression(n_samples=20000, n_features=50, noise=5.0, random_state=0)
    Xg = StandardScaler().fit_transform(Xg)
    yg = (yg - yg.mean()) / yg.std()
    return [("diabetes (442 x 10)", X, y), ("make_regression (20000 x 50)", Xg, yg)]


def _modes():
    from sklearn.linear_model import SGDRegressor

    from . import FastSGDRegressor
    from .schedules import Cosine

    return [
        ("scikit-learn SGDRegressor", lambda: SGDRegressor(random_state=0)),
        ("fastgd per-sample (sklearn algorithm)", lambda: FastSGDRegressor(random_state=0)),
        ("fastgd minibatch 32, momentum",
         lambda: FastSGDRegressor(batch_size=32, optimizer="momentum", random_state=0)),
        ("fastgd minibatch 256, adam + cosine",
         lambda: FastSGDRegressor(batch_size=256, optimizer="adam", eta0=0.05,
                                  learning_rate=Cosine(T_max=50), max_iter=50,
                                  random_state=0)),
        ("fastgd full batch GD",
         lambda: FastSGDRegressor(batch_size="full", learning_rate="constant", eta0=0.2,
                                  random_state=0)),
        ("fastgd minibatch 64, clip + batch norm",
         lambda: FastSGDRegressor(batch_size=64, clip_norm=1.0, batch_norm=True,
                                  random_state=0)),
    ]


def _classification_data():
    from sklearn.datasets import load_breast_cancer, load_digits
    from sklearn.preprocessing import StandardScaler

    out = []
    for name, loader in (("breast_cancer (569 x 30)", load_breast_cancer),
                         ("digits (1797 x 64, 10 classes)", load_digits)):
        X, y = loader(return_X_y=True)
        out.append((name, StandardScaler().fit_transform(X), y))
    return out


def _classifier_modes():
    from sklearn.linear_model import SGDClassifier

    from . import FastSGDClassifier

    return [
        ("scikit-learn SGDClassifier", lambda: SGDClassifier(random_state=0)),
        ("fastgd per-sample hinge (sklearn algorithm)",
         lambda: FastSGDClassifier(random_state=0)),
        ("fastgd minibatch 32 log_loss, adam",
         lambda: FastSGDClassifier(loss="log_loss", batch_size=32, optimizer="adam",
                                   learning_rate="constant", eta0=0.01, random_state=0)),
        ("fastgd multinomial, minibatch 32, adam",
         lambda: FastSGDClassifier(loss="log_loss", multi_class="multinomial",
                                   batch_size=32, optimizer="adam",
                                   learning_rate="constant", eta0=0.01, random_state=0)),
    ]


def demo(args):
    """Train in several modes on bundled/generated data; compare with scikit-learn."""
    from sklearn.exceptions import ConvergenceWarning

    rows = []
    tasks = [(d, _modes()) for d in _demo_data()]
    tasks += [(d, _classifier_modes()) for d in _classification_data()]
    for (data_name, X, y), modes in tasks:
        for mode_name, make in modes:
            est = make()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                est.fit(X, y)  # first fit compiles (or loads the cache); time the second
                t0 = time.perf_counter()
                est.fit(X, y)
                dt = time.perf_counter() - t0
            rows.append((data_name, mode_name, est.n_iter_, dt, est.score(X, y)))
    w = max(len(r[1]) for r in rows)
    print("score: R^2 for the regressions, accuracy for the classifications (training data)")
    print(f"{'data':30s} {'mode':{w}s} {'epochs':>6s} {'time (s)':>9s} {'score':>7s}")
    for data_name, mode_name, n_iter, dt, r2 in rows:
        print(f"{data_name:30s} {mode_name:{w}s} {n_iter:6d} {dt:9.4f} {r2:7.4f}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fastgd",
        description="Gradient-descent training of linear models in compiled loops.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser(
        "demo", help="train in several modes on bundled data and compare with scikit-learn"
    )
    p_demo.set_defaults(func=demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
