"""The first fit in a fresh process: with an empty compile cache, and with a warm one.

    python -m benchmarks.first_fit [--before OLD_TREE]

Each configuration (scikit-learn's per-sample default, minibatch 256 with Adam, full
batch, the default classifier) is fitted on 1,000 x 10 for 5 epochs in a fresh
process whose Numba cache is an empty folder (``NUMBA_CACHE_DIR``): the time from
before ``import fastgd`` to the end of the fit, and the fit alone, is what a new user
waits. A second process with the same folder loads what the first compiled (the warm
cache). ``--before`` times the same in another source tree (e.g. a checkout of an
earlier commit) in the same run. Results go to ``benchmarks/results/first_fit.json``.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONFIGS = {
    "default regressor (per-sample)": "FastSGDRegressor()",
    "minibatch 256, adam": "FastSGDRegressor(batch_size=256, optimizer='adam')",
    "full batch": "FastSGDRegressor(batch_size='full')",
    "default classifier": "FastSGDClassifier()",
}

CHILD = """
import time
t0 = time.perf_counter()
import warnings
import numpy as np
from fastgd import FastSGDClassifier, FastSGDRegressor
warnings.simplefilter("ignore")
t1 = time.perf_counter()
X = np.random.default_rng(0).normal(size=(1000, 10)); y = X.sum(axis=1)
est = {est}.set_params(max_iter=5, tol=None)
est.fit(X, (y > 0).astype(int) if "Classifier" in type(est).__name__ else y)
t2 = time.perf_counter()
print(t2 - t0, t2 - t1)
"""


def first_fit(tree, config, cache):
    env = dict(os.environ, PYTHONPATH=str(tree), NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", CHILD.format(est=CONFIGS[config])],
                         env=env, cwd=str(tree), capture_output=True, text=True,
                         timeout=900)
    if out.returncode:
        raise RuntimeError(out.stderr)
    total, fit = map(float, out.stdout.split())
    return {"total_s": total, "fit_s": fit}


def measure(tree):
    rows = {}
    for config in CONFIGS:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_fit(tree, config, cache)
            warm = first_fit(tree, config, cache)
        rows[config] = {"cold": cold, "warm": warm}
        print(f"{str(tree)[-20:]:>20s}  {config:32s} cold {cold['total_s']:5.2f} s "
              f"(fit {cold['fit_s']:5.2f})  warm {warm['total_s']:5.2f} s", flush=True)
    return rows


def to_markdown(res):
    trees = list(res["trees"])
    head = "| configuration | " + " | ".join(
        f"{name}: cold cache (s) | {name}: warm cache (s)" for name in trees) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(trees))]
    for config in CONFIGS:
        cells = []
        for name in trees:
            r = res["trees"][name][config]
            cells += [f"{r['cold']['total_s']:.2f} (fit {r['cold']['fit_s']:.2f})",
                      f"{r['warm']['total_s']:.2f}"]
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="TREE",
                        help="another source tree to time in the same run")
    parser.add_argument("--before-name", default="before")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"
                                             / "first_fit.json"))
    args = parser.parse_args(argv)
    res = {"trees": {}}
    if args.before:
        res["trees"][args.before_name] = measure(Path(args.before).resolve())
    res["trees"]["this version"] = measure(ROOT)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(to_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
