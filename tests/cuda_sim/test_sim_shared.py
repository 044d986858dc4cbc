"""The simulator's shared arrays are shared by every thread of a block (conftest.py
makes their allocation atomic; numba-cuda's own can hand two threads two arrays)."""

import os
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.environ.get("NUMBA_ENABLE_CUDASIM") != "1",
                                reason="the simulator's allocation (on a GPU: hardware)")


def test_threads_allocating_at_once_get_one_array(monkeypatch):
    from numba.cuda.simulator.kernelapi import FakeCUDAShared

    shared = FakeCUDAShared(0)
    start = threading.Barrier(8)
    got = []
    empty = np.empty

    def slow_empty(*args, **kwargs):
        # a thread switch in the middle of the allocation, every time: the other
        # threads all reach the allocation before the first one has stored its array
        time.sleep(0.02)
        return empty(*args, **kwargs)

    def thread():
        start.wait()
        got.append(shared.array(4, np.float64))

    monkeypatch.setattr(np, "empty", slow_empty)
    threads = [threading.Thread(target=thread) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and len({id(a) for a in got}) == 1
