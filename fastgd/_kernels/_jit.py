"""``kernel``: ``numba.njit`` with an on-disk cache that never breaks a fit.

Numba's own ``cache=True`` has three failure modes that a library installed on other
people's machines meets sooner or later:

* no writable cache location at all (a read-only install, ``__pycache__`` not
  writable, no writable home directory): ``njit(cache=True)`` raises ``RuntimeError``
  when the module is *imported*;
* a corrupt or truncated cache file (a full disk, a killed process on a file system
  without atomic rename, a copied-around ``__pycache__``): loading raises
  ``UnpicklingError``/``EOFError`` at the first call, every time;
* the cache directory becoming unwritable after it was found: saving raises.

:func:`kernel` compiles exactly like ``njit(cache=True, **options)`` but treats the
cache as an optimization only: without a cache location the kernel is compiled in
memory (each process pays the compile time once); an unreadable entry is recompiled
and overwritten; a failed save is skipped. Numba writes index and data files through a
temporary file renamed over the target, so processes compiling at once do not corrupt
each other's entries (the worst case is one recompiling what the other just saved).

Numba keys an entry on the file that defines the kernel (its hash), but the kernels
inline helpers from the other modules of this package (``rows``, ``rules``): an edit or
an upgrade that changed only those would load the old machine code, silently. Every
entry here is also keyed on a hash of all of the package's sources, so any change to
them recompiles every kernel.

Where the cache lives (Numba's rules, first that is writable): ``$NUMBA_CACHE_DIR``,
the ``__pycache__`` folder next to ``fastgd/_kernels/*.py``, then the user's cache
folder (``~/.cache/numba`` or ``$XDG_CACHE_HOME/numba``). :func:`cache_report` lists
what each kernel uses; :func:`fastgd.warmup` fills it.
"""

import functools
import hashlib
import os

from numba import njit
from numba.core.caching import FunctionCache

#: every dispatcher made by :func:`kernel`, by qualified name
KERNELS = {}
#: the reason a kernel compiles in memory only, by qualified name
UNCACHED = {}
#: cache entries that could not be read or written (kernel name, exception text)
CACHE_ERRORS = []


@functools.lru_cache(maxsize=None)
def package_digest():
    """SHA-256 of the sources of the CPU kernels (``fastgd/_kernels/*.py`` but the
    GPU modules)."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in sorted(os.listdir(here)):
        # the GPU modules are never inlined into a CPU kernel
        if name.endswith(".py") and not name.startswith(("cuda", "_cudasim")):
            h.update(name.encode())
            with open(os.path.join(here, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()


class ResilientCache(FunctionCache):
    """Numba's per-function cache, with load and save failures turned into misses,
    and entries valid only for the package's sources they were compiled from.

    An entry that cannot be read empties the function's index (an atomic rewrite), so
    the fresh compile is saved over it and the next process loads it again.
    """

    def __init__(self, py_func):
        super().__init__(py_func)
        # the index holds this stamp and is dropped when it differs on loading
        cache_file = self._cache_file
        cache_file._source_stamp = (cache_file._source_stamp, package_digest())

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception as exc:  # corrupt, truncated or foreign file: a cache miss
            CACHE_ERRORS.append((self._name, f"load: {type(exc).__name__}: {exc}"))
            self._reset_index()
            return None

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as exc:  # unwritable or full: keep the in-memory compile
            CACHE_ERRORS.append((self._name, f"save: {type(exc).__name__}: {exc}"))

    def _reset_index(self):
        try:
            self._cache_file.flush()
        except Exception as exc:
            CACHE_ERRORS.append((self._name, f"reset: {type(exc).__name__}: {exc}"))


def _qualname(fn):
    return f"{fn.__module__}.{fn.__qualname__}"


def kernel(fn=None, **options):
    """``numba.njit(cache=True, **options)`` whose cache can never fail a call.

    Use as ``@kernel(fastmath=..., nogil=True)`` or ``kernel(**options)(fn)``.
    """
    if fn is None:
        return lambda f: kernel(f, **options)
    disp = njit(**options)(fn)
    name = _qualname(fn)
    try:
        disp._cache = ResilientCache(fn)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available"
        UNCACHED[name] = str(exc)
    KERNELS[name] = disp
    return disp


def cache_report():
    """One dict per kernel: name, cache folder (None: in memory), compiled signatures,
    and the number of cache hits and misses in this process."""
    rows = []
    for name, disp in sorted(KERNELS.items()):
        cache = disp._cache
        path = cache.cache_path if isinstance(cache, FunctionCache) else None
        stats = disp.stats
        rows.append({
            "kernel": name,
            "cache_dir": path,
            "signatures": len(disp.signatures),
            "cache_hits": sum(stats.cache_hits.values()),
            "cache_misses": sum(stats.cache_misses.values()),
        })
    return rows

