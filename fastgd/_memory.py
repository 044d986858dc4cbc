"""Memory accounting of a fit: refuse early what would not fit, rather than thrash.

A fit uses ``X`` as it is when it is float64/float32 in C or Fortran order (or CSR
with one index dtype): the compiled loops read it in place. Anything else is
converted first, which takes a second array of ``X``'s size. On top of ``X`` a fit
holds a few arrays of one number per row (row order, targets, sample weights; about
32 bytes a row) and, with early stopping, the validation rows copied out of ``X``.
"""

import os

import numpy as np
import scipy.sparse as sp

_FLOAT = (np.dtype(np.float64), np.dtype(np.float32))
_ROW_BYTES = 32  # order + targets + weights + one scratch index array, per row


def available_bytes():
    """Memory the system can give without swapping (``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def conversion_bytes(X):
    """Bytes of the copy validation makes of ``X``, and why (``(0, "")`` for none)."""
    if sp.issparse(X):
        out_item = X.dtype.itemsize if X.dtype in _FLOAT else 8
        if X.format != "csr" or X.dtype not in _FLOAT:
            return (X.nnz * (out_item + 8) + (X.shape[0] + 1) * 8,
                    f"a {X.format.upper()} {X.dtype} matrix is converted to float CSR")
        if X.indices.dtype != X.indptr.dtype:
            return (X.nnz * 8 + (X.shape[0] + 1) * 8,
                    "the CSR index arrays are converted to one integer dtype")
        return 0, ""
    if isinstance(X, np.ndarray):
        if X.dtype not in _FLOAT:
            return X.size * 8, f"X is {X.dtype} and is converted to float64"
        if not (X.flags.c_contiguous or X.flags.f_contiguous):
            return X.size * X.itemsize, "X is a strided view and is copied"
    return 0, ""


def check_fit_memory(X, validation_fraction=None):
    """Raise ``MemoryError`` before a fit that needs more memory than is available."""
    extra, why = conversion_bytes(X)
    n_rows = X.shape[0] if hasattr(X, "shape") and len(X.shape) else 0
    need = extra + n_rows * _ROW_BYTES
    if validation_fraction:
        size = X.data.nbytes if sp.issparse(X) else getattr(X, "nbytes", 0)
        need += int(size * validation_fraction)
    avail = available_bytes()
    if avail is None or need <= avail:
        return
    gib = 2.0**30
    reason = f" ({why})" if why else ""
    raise MemoryError(
        f"Fitting needs about {need / gib:.2f} GiB of memory besides X{reason}, but "
        f"only {avail / gib:.2f} GiB are available. Pass X as a float64 or float32 "
        "array in C or Fortran order (or a CSR matrix) so that it is used without a "
        "copy, train on chunks with partial_fit, or train on Dask (fastgd.dask)."
    )
