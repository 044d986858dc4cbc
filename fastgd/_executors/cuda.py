"""The GPU executor: epochs run by the ``numba.cuda`` backend
(:class:`fastgd._kernels.cuda.CudaBackend`, which holds device copies of the data).

The device draws each epoch's permutation itself from one seed
(:class:`fastgd._orders.SeedOrder`) and copies the state back into the host arrays at
every epoch's end, so the estimator never holds a device array and the bookkeeping
sees the same state as on the CPU. The backend packs the state into one device buffer
(:mod:`fastgd._kernels.cuda_layout`): one upload and one download per epoch.
"""

import numpy as np

from .._kernels.bundles import N_OUT
from .base import Executor


class CudaEpochs(Executor):
    def __init__(self, backend):
        self.backend = backend
        self.arrays = None

    def start(self, state):
        state.unscale()  # the device trains the batch representation
        # the backend writes into these same host arrays at every epoch's end
        self.arrays = state.batch_arrays()
        self.backend.start(self.arrays)

    def run(self, state, order, ctl, n_epochs=1):
        out = np.zeros((state.n_outputs, N_OUT), dtype=np.float64)
        self.backend.epoch(self.arrays, order.seed, ctl.active, ctl.eta_fixed, ctl.epoch,
                           out)
        return out[None]
