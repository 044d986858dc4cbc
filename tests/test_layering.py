"""``import fastgd`` (and a fit on NumPy data) loads only what it needs: not
``fastgd.dask`` nor Dask (loaded when a dask collection arrives), not matplotlib
(``fastgd.plot``), not ``numba.cuda`` (the first GPU fit)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("fastgd.dask", "dask", "distributed", "matplotlib", "numba.cuda", "numba_cuda",
         "fastgd.plot", "fastgd._executors.dask", "fastgd._executors.cuda",
         "fastgd._kernels.cuda")


def test_import_and_a_fit_load_no_heavy_module():
    code = (
        "import sys, numpy as np\n"
        "import fastgd\n"
        "fastgd.FastSGDRegressor(max_iter=2, tol=None).fit(np.ones((4, 2)), np.ones(4))\n"
        f"heavy = {HEAVY!r}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or "
        "any(m == h or m.startswith(h + '.') for h in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
