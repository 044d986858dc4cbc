"""A fixed grid of fits gives the stored results (``tests/fixtures/results.npz``).

The grid (``tests/fixtures/make_results_fixture.py``) covers every batch mode, shuffle
mode, optimizer family, schedule family, clipping, batch norm, averaging, multi-output,
sparse input, the one-vs-rest and multinomial classifiers, ``partial_fit`` and thread
counts. A change meant to keep results (a restructuring, a faster kernel) must keep
them to rtol 1e-12; a change of results on purpose regenerates the file and says why.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent / "fixtures"
_spec = importlib.util.spec_from_file_location("make_results_fixture",
                                               HERE / "make_results_fixture.py")
fixture = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixture)
STORED = np.load(fixture.PATH)


@pytest.mark.parametrize("name", sorted(fixture.CONFIGS))
def test_fit_gives_the_stored_results(name):
    got = fixture.run(name)
    stored_keys = {k.split("/", 1)[1] for k in STORED.files if k.startswith(name + "/")}
    assert set(got) == stored_keys
    for key, value in got.items():
        np.testing.assert_allclose(value, STORED[f"{name}/{key}"], rtol=1e-12, atol=0,
                                   err_msg=f"{name}: {key}")
