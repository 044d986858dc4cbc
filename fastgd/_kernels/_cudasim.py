"""Warp shuffles for numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``).

The simulator (numba-cuda 0.30) runs every GPU thread of a block as a Python thread
but has no ``cuda.shfl_*_sync`` nor ``cuda.syncwarp``, which the backend's kernels
use to sum a row's products across a warp. :func:`install` adds them to the
simulator's kernel-side ``cuda`` module, with the device's semantics and the checks
that the device does not make:

* the lanes of a warp meet at a barrier, swap values, and meet again (each warp has
  its own barrier: warps of a block never wait for each other, as on the device);
* ``mask`` must name exactly the lanes the warp has (a block smaller than 32 threads
  is one partial warp): a lane outside the mask, or a missing lane inside it, is
  undefined behaviour on the device and an error here;
* reading a lane the warp does not have is an error (the device returns garbage).

A warp whose lanes do not all reach the shuffle (divergent code) would hang on the
device; here the barrier times out and the kernel raises.
"""

import threading

#: seconds a lane waits for the rest of its warp before the shuffle fails
TIMEOUT = 120.0
_LOCK = threading.Lock()


class _Warp:
    """One warp's meeting point. Shuffles alternate between two value buffers, so one
    barrier per shuffle suffices: a lane that runs ahead writes the other buffer, and
    can only come back to this one after every lane has passed the next barrier, that
    is, has read this one."""

    def __init__(self, lanes):
        self.lanes = lanes
        self.values = ([None] * lanes, [None] * lanes)
        self.turn = [0] * lanes
        self.barrier = threading.Barrier(lanes, timeout=TIMEOUT)


def _warp_of(thread):
    """``(warp state, lane)`` of a simulator thread (``BlockThread``)."""
    manager = thread._manager
    n_threads = 1
    for extent in manager._block_dim:
        n_threads *= extent
    w, lane = divmod(thread.thread_id, 32)
    with _LOCK:
        warps = manager.__dict__.setdefault("_fastgd_warps", {})
        if w not in warps:
            warps[w] = _Warp(min(32, n_threads - 32 * w))
        return warps[w], lane


def _check_mask(mask, warp):
    full = (1 << warp.lanes) - 1
    if (int(mask) & 0xFFFFFFFF) != full:
        raise RuntimeError(
            f"warp shuffle mask {int(mask):#x} must name the warp's {warp.lanes} lanes "
            f"({full:#x}): other lanes are undefined behaviour on a GPU")


def _exchange(mask, value, source):
    warp, lane = _warp_of(threading.current_thread())
    _check_mask(mask, warp)
    values = warp.values[warp.turn[lane]]
    warp.turn[lane] ^= 1
    values[lane] = value
    warp.barrier.wait()
    src = source(lane)
    if src >= 32:  # past the warp: the device returns the lane's own value
        return value
    if src >= warp.lanes or src < 0:
        raise RuntimeError(f"lane {lane} reads lane {src} of a {warp.lanes}-lane warp")
    return values[src]


def shfl_sync(self, mask, value, src_lane):
    return _exchange(mask, value, lambda lane: int(src_lane) % 32)


def shfl_xor_sync(self, mask, value, lane_mask):
    return _exchange(mask, value, lambda lane: lane ^ int(lane_mask))


def shfl_down_sync(self, mask, value, delta):
    return _exchange(mask, value, lambda lane: lane + int(delta))


def syncwarp(self, mask=0xFFFFFFFF):
    warp, _ = _warp_of(threading.current_thread())
    _check_mask(mask, warp)
    warp.barrier.wait()


def install():
    """Add the functions above to the simulator's ``cuda`` (once; not where the
    installed numba-cuda has its own)."""
    from numba.cuda.simulator import kernelapi

    fake = kernelapi.FakeCUDAModule
    for name, fn in (("shfl_sync", shfl_sync), ("shfl_xor_sync", shfl_xor_sync),
                     ("shfl_down_sync", shfl_down_sync), ("syncwarp", syncwarp)):
        if not hasattr(fake, name):
            setattr(fake, name, fn)
