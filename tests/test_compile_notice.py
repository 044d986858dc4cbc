"""A fit that waits for Numba to compile says so: on the progress bar at once, as one
log line on stderr (once per process) when the compile lasts over a second."""

import os
import subprocess
import sys
from pathlib import Path

from fastgd import _compile_notice

ROOT = Path(__file__).resolve().parents[1]
FIT = ("import numpy as np, sys\n"
       "from fastgd import FastSGDRegressor\n"
       "X = np.random.default_rng(0).normal(size=(50, 3)); y = X.sum(axis=1)\n"
       "for _ in range(2):\n"
       "    FastSGDRegressor(max_iter=2, tol=None, verbose=int(sys.argv[1])).fit(X, y)\n")


def _fit(cache, verbose):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    proc = subprocess.run([sys.executable, "-c", FIT, str(verbose)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_cold_cache_compile_is_announced_once_then_not(tmp_path):
    cold = _fit(tmp_path / "cache", 0)
    assert cold.count(_compile_notice.MESSAGE) == 1  # two fits, one line
    assert _compile_notice.MESSAGE not in _fit(tmp_path / "cache", 0)  # loads, silent


def test_the_progress_bar_says_it_compiles(tmp_path):
    assert _compile_notice.MESSAGE in _fit(tmp_path / "cache", 1)


def test_no_line_for_a_short_compile(monkeypatch, caplog):
    """Compiles shorter than NOTICE_AFTER give no log line (even when no line has been
    given yet in this process: other tests in the same worker may have given it)."""
    monkeypatch.setitem(_compile_notice._state, "logged", False)
    monkeypatch.setattr(_compile_notice, "NOTICE_AFTER", 0.5)
    listener = _compile_notice._Listener(None)
    listener.on_start(None)
    listener.on_end(None)
    listener.timer.join()
    assert not caplog.records
    listener.close()


def test_a_long_compile_logs_once(monkeypatch, caplog):
    monkeypatch.setitem(_compile_notice._state, "logged", False)
    listener = _compile_notice._Listener(None)
    listener.running = 1
    listener._log()
    listener._log()
    assert [r.getMessage() for r in caplog.records] == [
        f"fastgd: {_compile_notice.MESSAGE}"]
