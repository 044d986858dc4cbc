"""Say so when a fit waits for Numba to compile.

The first fit of a configuration in a fresh process compiles its kernels (or loads
them from the on-disk cache, which takes a fraction of a second). A compile takes
seconds with nothing happening on screen, so while a fit runs, :func:`watch` listens to
Numba's compile events: the progress bar (``verbose=1``) says so as soon as a compile
starts, and without a bar a single line goes to the ``fastgd`` logger (shown on stderr
without any logging set-up) once a compile has lasted :data:`NOTICE_AFTER` seconds,
once per process.
"""

import contextlib
import logging
import threading

from numba.core import event

#: seconds a compile lasts before the notice is given without a progress bar
NOTICE_AFTER = 1.0
MESSAGE = "compiling kernels for this configuration (first use; cached afterwards)"

_logger = logging.getLogger("fastgd")
_state = {"logged": False}
_lock = threading.Lock()


class _Listener(event.Listener):
    """Counts the compiles under way and tells the fit's bar when one starts."""

    def __init__(self, bar):
        self.bar = bar
        self.running = 0
        self.timer = None
        self.desc = bar.desc if bar is not None else None

    def on_start(self, ev):
        with _lock:
            self.running += 1
            first = self.running == 1
        if not first:
            return
        if self.bar is not None:
            self.bar.set_description(f"{self.desc}: {MESSAGE}", refresh=True)
        elif not _state["logged"] and self.timer is None:
            self.timer = threading.Timer(NOTICE_AFTER, self._log)
            self.timer.daemon = True
            self.timer.start()

    def on_end(self, ev):
        with _lock:
            self.running -= 1
            done = self.running == 0
        if done and self.bar is not None:
            self.bar.set_description(self.desc, refresh=True)

    def _log(self):
        with _lock:
            if self.running <= 0 or _state["logged"]:
                return
            _state["logged"] = True
        _logger.warning("fastgd: %s", MESSAGE)

    def close(self):
        if self.timer is not None:
            self.timer.cancel()


@contextlib.contextmanager
def watch(bar=None):
    """Within the block, compiles are announced (see the module notes). ``bar``: the
    fit's tqdm progress bar, or None."""
    listener = _Listener(bar)
    event.register("numba:compile", listener)
    try:
        yield listener
    finally:
        event.unregister("numba:compile", listener)
        listener.close()
