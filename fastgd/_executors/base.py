"""The executor interface, and the executor that runs an epoch in place on the CPU.

An executor runs epochs: :meth:`Executor.run` takes the training state, the epoch's
order (:class:`fastgd._orders.EpochOrder`) and its controls
(:class:`fastgd._kernels.bundles.EpochControl`), trains, and returns the statistics of
each epoch it ran, shape (n_epochs, K, N_OUT) (:mod:`fastgd._kernels.bundles`). The
training loop (:mod:`fastgd._loop`) does everything else.
"""

import numpy as np

from .._kernels import cpu
from .._kernels.bundles import GRAD_ROWS, N_OUT, BatchWork


class Executor:
    """Base class. ``epochs_per_call``: epochs one :meth:`run` call trains (Dask's local
    SGD runs a round of several between two averagings)."""

    epochs_per_call = 1

    def start(self, state):
        """Prepare for the epochs of one call (the state is final here)."""

    def run(self, state, order, ctl, n_epochs=1):
        raise NotImplementedError

    def close(self):
        """Release threads and buffers (also when training raised)."""


def batch_work(n_outputs, n_features):
    """Scratch arrays of the batch loop (:class:`~fastgd._kernels.bundles.BatchWork`)."""
    k, d1 = n_outputs, n_features + 1
    return BatchWork(np.zeros((k, d1)), np.zeros(d1), np.zeros(d1), np.zeros((k, d1)),
                     np.zeros(k), np.zeros(k), np.zeros((k, 3)), np.zeros((k, GRAD_ROWS)),
                     np.zeros(k, dtype=np.int64))


class CpuExecutor(Executor):
    """Shared set-up of the CPU executors: the representation each loop trains on.

    ``rows``: :class:`~fastgd._kernels.bundles.Rows`; ``kprog``: the
    :class:`~fastgd._kernels.bundles.KernelProgram`; ``plain``: scikit-learn's
    per-sample algorithm (scaled weights) instead of the batch loop.
    """

    def __init__(self, rows, kprog, plain):
        self.rows = rows
        self.kprog = kprog
        self.plain = plain
        self.work = None

    def start(self, state):
        if self.plain:
            state.enter_scaled()
        else:
            state.unscale()
            self.work = batch_work(state.n_outputs, state.n_features)

    def arrays(self, state):
        """The state bundle the epoch kernel updates."""
        return state.plain_arrays() if self.plain else state.batch_arrays()

    def finish_epoch(self, state):
        if self.plain:  # the per-sample loop counts updates; steps are the same
            state.step[:] = state.updates.astype(np.int64)

    @staticmethod
    def new_stats(state):
        return np.zeros((state.n_outputs, N_OUT), dtype=np.float64)


class InPlace(CpuExecutor):
    """One compiled call per epoch over the rows where they are."""

    def run(self, state, order, ctl, n_epochs=1):
        out = self.new_stats(state)
        if self.plain:
            cpu.epoch_plain(self.rows, order.rows, order.lookahead, self.kprog,
                            self.arrays(state), ctl, out)
        else:
            cpu.epoch_batch(self.rows, order.rows, order.lookahead, self.kprog,
                            self.arrays(state), self.work, ctl, out)
        self.finish_epoch(state)
        return out[None]
