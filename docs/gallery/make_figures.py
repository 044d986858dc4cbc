"""Render the gallery's figures: run every example in ``examples/`` and collect its PNG.

Usage (from the repository root; CI runs it before ``mkdocs build``)::

    python docs/gallery/make_figures.py            # every example
    python docs/gallery/make_figures.py momentum   # examples whose name contains this

Each example is a standalone script that saves ``<name>.png`` in the working directory;
it runs here in-process with matplotlib's Agg backend and ``docs/gallery/img/`` as the
working directory. That folder is generated (it is in ``.gitignore``): the gallery pages
link to ``img/<name>.png``, so ``mkdocs build --strict`` needs this script run first.
"""

import contextlib
import os
import pathlib
import runpy
import sys
import time

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE / "examples"
IMG = HERE / "img"


@contextlib.contextmanager
def _cwd(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def main(argv):
    wanted = argv[0] if argv else ""
    IMG.mkdir(exist_ok=True)
    scripts = sorted(p for p in EXAMPLES.glob("*.py") if wanted in p.stem)
    if not scripts:
        print(f"no example matches {wanted!r}", file=sys.stderr)
        return 1
    start = time.perf_counter()
    for script in scripts:
        t0 = time.perf_counter()
        png = IMG / f"{script.stem}.png"
        png.unlink(missing_ok=True)
        with _cwd(IMG):
            runpy.run_path(str(script), run_name="__main__")
        plt.close("all")
        if not png.is_file():
            print(f"{script.name} did not write {png.name}", file=sys.stderr)
            return 1
        print(f"{png.relative_to(HERE.parent.parent)}  {time.perf_counter() - t0:5.1f} s")
    print(f"{len(scripts)} figures in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
