"""``python -m benchmarks [epoch_time|sparse_scaling|dask_scaling|time_to_accuracy|
grid_search|step_floor|first_fit|render] [options]`` (default: epoch_time)."""

import sys

from . import (dask_scaling, epoch_time, first_fit, grid_search, render, sparse_scaling,
               step_floor, time_to_accuracy)

SUITES = {"epoch_time": epoch_time.main, "sparse_scaling": sparse_scaling.main,
          "dask_scaling": dask_scaling.main, "time_to_accuracy": time_to_accuracy.main,
          "grid_search": grid_search.main, "step_floor": step_floor.main,
          "first_fit": first_fit.main,
          "render": render.main}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    name = argv.pop(0) if argv and argv[0] in SUITES else "epoch_time"
    return SUITES[name](argv)


if __name__ == "__main__":
    raise SystemExit(main())
