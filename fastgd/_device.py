"""Where a fit runs: ``device="cpu"``, ``"cuda"`` or ``"auto"``; GPU-resident input.

Nothing here imports ``numba.cuda`` at import time: the CUDA backend
(:mod:`fastgd._kernels.cuda`) is imported the first time a fit asks for a GPU, so
importing fastgd never needs CUDA (nor pays for loading it).

``device="auto"`` runs on the GPU when one is usable, the fit is a batch mode the
GPU backend runs (minibatch or full batch on dense data), and ``X`` holds at least
:data:`AUTO_MIN_ELEMENTS` values (``n_samples * n_features``), or when ``X`` already
lives on the GPU. Below that size the data fits in the CPU's caches or takes a few
milliseconds an epoch on the CPU, and the copy to the device plus kernel launches are
not paid back. The threshold (1e7 values: 40 MB of float32) is a design estimate, to
be calibrated with ``python -m benchmarks.gpu`` on a GPU machine.
"""

import numpy as np

#: ``device="auto"`` uses the GPU from this many values of X (n_samples * n_features)
AUTO_MIN_ELEMENTS = 10_000_000

_STATUS = None


def is_device_array(X):
    """Whether ``X`` is a GPU array: a numba device array or any object exporting
    ``__cuda_array_interface__`` (CuPy, PyTorch CUDA tensors, ...)."""
    return hasattr(X, "__cuda_array_interface__") or (
        hasattr(X, "copy_to_host") and hasattr(X, "shape") and hasattr(X, "dtype"))


def cuda_status():
    """``(usable, reason)``: whether the CUDA backend can run here, and why not.

    Computed once per process (the answer does not change while it runs).
    """
    global _STATUS
    if _STATUS is None:
        try:
            from ._kernels import cuda as _kc
        except Exception as exc:  # numba-cuda missing or failing to load
            _STATUS = (False, f"numba.cuda cannot be imported ({type(exc).__name__}: "
                              f"{exc}); install it with pip install 'fastgd[cuda]'")
        else:
            _STATUS = (True, "") if _kc.available() else (
                False, "no CUDA GPU or driver was found (numba.cuda.is_available() "
                       "is False)")
    return _STATUS


def _unsupported(X, prog):
    """Why the GPU backend cannot run this fit (None when it can)."""
    import scipy.sparse as sp

    if sp.issparse(X) or isinstance(X, tuple):
        return ("device='cuda' takes dense X (a float32/float64 NumPy array or a GPU "
                "array); got a sparse matrix. Use device='cpu' for sparse input, or "
                "pass X.toarray().")
    if prog is not None and prog.plain:
        return ("device='cuda' runs minibatch and full-batch training; batch_size=1 "
                "with optimizer='sgd' (no clipping, no batch_norm) is scikit-learn's "
                "per-sample algorithm, which runs on the CPU only (one row per step "
                "leaves a GPU idle). Pass batch_size=256 (any batch size > 1, or "
                "'full'), or device='cpu'.")
    return None


def resolve(device, X=None, prog=None):
    """``"cpu"`` or ``"cuda"`` for the estimator parameter ``device``; raises a
    ``ValueError`` when ``device="cuda"`` cannot run (no GPU, sparse ``X``,
    per-sample SGD) or a GPU array is given with ``device="cpu"``."""
    on_gpu = X is not None and is_device_array(X)
    if device == "cpu":
        if on_gpu:
            raise ValueError(
                "X is a GPU array: fit it with device='cuda' (or 'auto'), or copy it "
                "to host memory first (e.g. cupy.asnumpy(X)) for device='cpu'."
            )
        return "cpu"
    if device == "auto" and not on_gpu:
        if X is None or _unsupported(X, prog) is not None:
            return "cpu"
        if X.shape[0] * X.shape[1] < AUTO_MIN_ELEMENTS or not cuda_status()[0]:
            return "cpu"
        return "cuda"
    ok, why = cuda_status()
    if not ok:
        raise ValueError(
            f"device='cuda' needs an NVIDIA GPU and the numba-cuda package, but {why}. "
            "Use device='cpu', or device='auto' to use a GPU only where there is one."
        )
    reason = None if X is None else _unsupported(X, prog)
    if reason is not None:
        raise ValueError(reason)
    return "cuda"


def to_host(a):
    """A host NumPy copy of a GPU array (``a`` itself when it is not one)."""
    if not is_device_array(a):
        return a
    if hasattr(a, "copy_to_host"):
        return a.copy_to_host()
    from numba import cuda

    return cuda.as_cuda_array(a).copy_to_host()


def take_rows(X, idx):
    """Rows ``idx`` of ``X`` on the host (a gather on the device for GPU arrays)."""
    if not is_device_array(X):
        return X[idx]
    from ._kernels import cuda as _kc

    return _kc.take_rows(X, idx)


def device_dtype_shape(X):
    """``(dtype, shape)`` of a GPU array, from its ``__cuda_array_interface__`` where
    it has one: a PyTorch tensor's ``dtype`` is ``torch.float32``, which NumPy cannot
    interpret, while the interface's ``typestr`` (``"<f4"``) is NumPy's own."""
    cai = getattr(X, "__cuda_array_interface__", None)
    if cai is not None:
        return np.dtype(cai["typestr"]), tuple(int(s) for s in cai["shape"])
    return np.dtype(X.dtype), tuple(int(s) for s in X.shape)


def validate_device_X_y(est, X, y, reset, multi_output, y_numeric):
    """Check a GPU array ``X`` (2-D float32/float64) without copying it; ``y`` (and
    only ``y``) is brought to the host. Returns ``(X, y)``, ``X`` as a numba device
    array (a view of the same memory) when the CUDA backend is usable, so that its
    ``dtype`` is a NumPy dtype whatever library made it.

    Values are not checked for NaN/inf (that would be a pass over X): non-finite
    values make the training diverge, which raises the usual overflow error.
    """
    from sklearn.utils.validation import _check_y, check_consistent_length

    dtype, shape = device_dtype_shape(X)
    if len(shape) != 2:
        raise ValueError(f"Expected a 2-D GPU array X, got shape {shape}.")
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(
            f"A GPU array X must be float32 or float64; got {dtype}. Convert it on the "
            "device first (e.g. X.astype('float32'))."
        )
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"Found array with shape {shape}: at least one sample and one "
                         "feature are required.")
    if reset:
        est.n_features_in_ = shape[1]
        if hasattr(est, "feature_names_in_"):
            del est.feature_names_in_
    elif shape[1] != est.n_features_in_:
        raise ValueError(
            f"X has {shape[1]} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    y = _check_y(to_host(y), multi_output=multi_output, y_numeric=y_numeric,
                 estimator=est)
    check_consistent_length(np.empty((shape[0], 0)), y)
    if cuda_status()[0]:  # else the fit stops at resolve() with the reason
        from ._kernels import cuda as _kc

        X = _kc.as_device(X)
    return X, y
