"""A classifier's labels as the training loops see them, one place for every caller
(the estimator and :mod:`fastgd.dask`).

One-vs-rest and binary models train each output on ``+1`` (its class) against ``-1``
(``0`` for ``log_loss``); the multinomial model on one-hot rows. Class weights become a
(K, 2) array: output k weighs its positive rows by ``cw[k, 0]`` and its negative rows by
``cw[k, 1]`` (the multinomial model weighs each row by its class's ``cw[k, 0]``).
"""

import numpy as np


def label_kind(multinomial, n_classes):
    """``"multinomial"``, ``"binary"`` (one output) or ``"ovr"`` (one per class)."""
    if multinomial:
        return "multinomial"
    return "binary" if n_classes == 2 else "ovr"


def label_targets(y_idx, n_classes, kind, negative):
    """The (n, K) float64 targets of class indices ``y_idx``."""
    n = y_idx.shape[0]
    if kind == "multinomial":
        Y = np.zeros((n, n_classes), dtype=np.float64)
        Y[np.arange(n), y_idx] = 1.0
    elif kind == "binary":
        Y = np.where(y_idx == 1, 1.0, negative)[:, None]
    else:
        Y = np.where(y_idx[:, None] == np.arange(n_classes)[None, :], 1.0, negative)
    return np.ascontiguousarray(Y, dtype=np.float64)


def class_weight_pairs(cw_per_class, kind):
    """The (K, 2) positive/negative weights of each output from per-class weights."""
    cw_per_class = np.asarray(cw_per_class, dtype=np.float64)
    if kind == "binary":
        return np.array([[cw_per_class[1], cw_per_class[0]]], dtype=np.float64)
    return np.ascontiguousarray(
        np.column_stack([cw_per_class, np.ones(cw_per_class.shape[0])]))
