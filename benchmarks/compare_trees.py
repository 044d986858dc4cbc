"""Per-epoch time of fastgd's training modes in two source trees, alternating in one run.

    python -m benchmarks.compare_trees OLD_TREE NEW_TREE [--n 1000000 --d 100]

A change that should keep speed (a restructuring) is measured against the tree before
it: each mode is timed in a fresh process per tree (``PYTHONPATH=<tree>``), old and
new alternating for ``--rounds`` rounds so that the machine's drift hits both alike.
The time per epoch is the marginal one, as in :mod:`benchmarks.epoch_time`: ``(t(fit
with 1 + epochs) - t(fit with 1 epoch)) / epochs``, the median of ``--repeats``. Prints
the medians over rounds and the ratio new / old per mode; ``--json`` writes them.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

#: mode name -> FastSGDRegressor parameters (fixed learning rate, squared error)
MODES = {
    "per-sample, in order": dict(shuffle=False),
    "per-sample, shuffled": dict(),
    "per-sample, shuffled, n_jobs=-1": dict(n_jobs=-1),
    "minibatch 256 momentum, shuffled": dict(batch_size=256, optimizer="momentum"),
    "minibatch 256 momentum, n_jobs=-1": dict(batch_size=256, optimizer="momentum",
                                              n_jobs=-1),
    "minibatch 256 momentum, block": dict(batch_size=256, optimizer="momentum",
                                          shuffle="block"),
    "full batch momentum": dict(batch_size="full", optimizer="momentum"),
    "full batch momentum, n_jobs=-1": dict(batch_size="full", optimizer="momentum",
                                           n_jobs=-1),
}

CHILD = r"""
import json, statistics, sys, time, warnings
import numpy as np
from fastgd import FastSGDRegressor
warnings.simplefilter("ignore")
n, d, epochs, repeats, params = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.normal(size=(n, d))
y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
base = dict(learning_rate="constant", eta0=1e-4, tol=None, random_state=0, **params)
def fit(k):
    t = time.perf_counter()
    FastSGDRegressor(max_iter=k, **base).fit(X, y)
    return time.perf_counter() - t
fit(1)  # compile or load the kernels
times = [(fit(1 + epochs) - fit(1)) / epochs for _ in range(repeats)]
print(statistics.median(times))
"""


def time_mode(tree, n, d, epochs, repeats, params):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run([sys.executable, "-c", CHILD,
                          json.dumps([n, d, epochs, repeats, params])],
                         env=env, capture_output=True, text=True,
                         cwd=os.path.abspath(tree))
    if out.returncode:
        raise RuntimeError(f"timing in {tree} failed:\n{out.stderr}")
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", nargs="*", default=list(MODES))
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    results = {}
    for name in args.modes:
        runs = {"old": [], "new": []}
        for _ in range(args.rounds):
            for which in ("old", "new"):
                tree = getattr(args, which)
                runs[which].append(time_mode(tree, args.n, args.d, args.epochs,
                                             args.repeats, MODES[name]))
        old, new = statistics.median(runs["old"]), statistics.median(runs["new"])
        results[name] = {"old_ms": [1e3 * t for t in runs["old"]],
                         "new_ms": [1e3 * t for t in runs["new"]], "ratio": new / old}
        print(f"{name:40s} old {1e3 * old:8.1f} ms  new {1e3 * new:8.1f} ms  "
              f"new/old {new / old:5.2f}   (old {_span(runs['old'])}, new "
              f"{_span(runs['new'])})", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"n": args.n, "d": args.d, "results": results}, fh, indent=1)


def _span(times):
    return f"{1e3 * min(times):.1f}-{1e3 * max(times):.1f}"


if __name__ == "__main__":
    main()
