"""Batches whose gradient sums are split over threads (full batch, large minibatches).

Each batch's rows are cut into ``n_threads`` contiguous ranges whose gradient sums run
in parallel (``batch_grad`` releases the GIL), then are added in range order and one
``batch_step`` is made: deterministic for a given thread count, equal to the
one-thread loop up to the rounding of the sum. Batch norm runs on one thread (its
statistics would need another pass), so this executor never sees it.
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .._kernels import cpu
from .._kernels.bundles import OUT_LOSS, OUT_OBJECTIVE, OUT_WEIGHT
from .base import CpuExecutor, batch_work

#: the statistics the gradient pass adds (the step adds the others)
LOSS_SUMS = (OUT_OBJECTIVE, OUT_LOSS, OUT_WEIGHT)


class ThreadedBatches(CpuExecutor):
    def __init__(self, rows, kprog, n_threads):
        super().__init__(rows, kprog, plain=False)
        self.n_threads = n_threads
        self.pool = ThreadPoolExecutor(max_workers=n_threads)
        self.parts = None

    def start(self, state):
        super().start(state)
        # each thread's own gradient, predictions, loss sums and residuals
        self.parts = [(batch_work(state.n_outputs, state.n_features), self.new_stats(state))
                      for _ in range(self.n_threads)]

    def run(self, state, order, ctl, n_epochs=1):
        out = self.new_stats(state)
        rows_at, batch = order.rows, self.kprog.batch_size
        theta = state.theta
        G = self.work.G
        for start in range(0, rows_at.shape[0], batch):
            stop = min(start + batch, rows_at.shape[0])
            bounds = np.linspace(start, stop, self.n_threads + 1).astype(np.int64).tolist()
            # the weights are only read until every thread is done
            beff = theta[:, -1].copy()

            def part(c, bounds=bounds, beff=beff):
                own, o = self.parts[c]
                own.G[...] = 0.0
                o[...] = 0.0
                work = own._replace(mu=self.work.mu, inv_sd=self.work.inv_sd, weff=theta,
                                    beff=beff)
                cpu.batch_grad(self.rows, rows_at, order.lookahead, bounds[c],
                               bounds[c + 1], self.kprog, ctl.active, work, o)

            # the calling thread takes the first range itself: one hand-off fewer
            futures = [self.pool.submit(part, c) for c in range(1, self.n_threads)]
            part(0)
            for f in futures:
                f.result()
            G[...] = 0.0
            for own, o in self.parts:  # fixed order: the same sum for a thread count
                G += own.G
                for col in LOSS_SUMS:
                    out[:, col] += o[:, col]
            cpu.batch_step(stop - start, self.kprog, state.batch_arrays(), self.work, ctl,
                           out)
        return out[None]

    def close(self):
        self.pool.shutdown()
