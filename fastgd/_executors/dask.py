"""The Dask executors and the tasks they run on the workers.

* :class:`DaskAllreduce` (strategy ``"gd"``): one exact full-batch step per epoch: each
  row block's gradient sum at the current parameters, added by a tree reduction on the
  workers in block order, then the same ``batch_step`` as the single-machine full batch.
* :class:`DaskLocalSGD` (strategy ``"local_sgd"``): every row block holds a replica
  that runs ``sync_every`` of the estimator's own epochs on its rows (the in-process
  loop, :func:`fastgd._loop.fit_epochs`), then parameters and optimizer state are
  averaged with the blocks' row counts as weights.

Both return each epoch's statistics summed over the blocks, so the training loop's
bookkeeping (divergence, histories, stopping) is the in-process one.
"""

import copy
from collections import namedtuple

import numpy as np

from .._kernels import cpu
from .._kernels.bundles import N_OUT, OUT_LR, Rows
from .._loop import fit_epochs
from .._state import S_U
from .base import Executor, batch_work
from .threaded import LOSS_SUMS


#: a row block prepared on its worker: its :class:`~fastgd._kernels.bundles.Rows` and
#: its row positions (0, 1, ...)
Block = namedtuple("Block", "rows order")


# ------------------------------------------------------------------ worker tasks

def block_grad(block, theta, active, kprog):
    """Gradient and loss sums of one block at ``theta`` (the ``"gd"`` leaf)."""
    n_out, d1 = theta.shape
    work = batch_work(n_out, d1 - 1)._replace(weff=np.ascontiguousarray(theta),
                                              beff=theta[:, -1].copy())
    out = np.zeros((n_out, N_OUT))
    order = block.order
    cpu.batch_grad(block.rows, order, cpu.NO_LOOKAHEAD, 0, order.shape[0], kprog,
                   active, work, out)
    return {"sum": {"G": work.G, "loss_sums": out[:, list(LOSS_SUMS)].copy()}, "max": {},
            "cat": {}}


def local_round(block, state, rng_state, prog, n_epochs, weight, replica, whole, shuffle,
                shuffle_block):
    """``n_epochs`` epochs of one replica on its block (the ``"local_sgd"`` leaf).

    Returns the per-epoch statistics (summed by the reduction), the weighted state
    (``weight * array``, summed) and the step counters (reduced by max), the replica's
    random stream and, for replica 0, its learning rates. With one replica
    (``whole``) the state itself is returned: the fit is then exactly the
    single-machine one.
    """
    state = copy.deepcopy(state)  # tasks of an in-process cluster share arguments
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state
    _, hist = fit_epochs(state, prog, block.rows, block.order,
                         max_epochs=n_epochs, rng=rng, shuffle=shuffle,
                         shuffle_block=shuffle_block, tol=None, n_iter_no_change=1)
    stats = np.stack(hist.stats)
    sums = {"stats": stats}
    cat = {("rng", replica): rng.bit_generator.state}
    if replica == 0:
        cat["lr"] = stats[:, :, OUT_LR].copy()
    if whole:
        cat["state"] = state
        return {"sum": sums, "max": {}, "cat": cat}
    state.unscale()  # average plain arrays, not scaled representations
    for name in state.averaged_fields():
        sums[name] = weight * getattr(state, name)
    return {"sum": sums, "max": {"updates": state.updates, "step": state.step},
            "cat": cat}


def combine(*parts):
    """Add ``sum`` entries (in argument order: deterministic), take the maximum of
    ``max`` entries, merge ``cat`` entries. One node of the tree reduction."""
    acc = {"sum": {}, "max": {}, "cat": {}}
    for p in parts:
        for k, v in p["sum"].items():
            if k not in acc["sum"]:
                acc["sum"][k] = np.zeros_like(v)  # 0 + g, as the threaded full batch
            acc["sum"][k] += v
        for k, v in p["max"].items():
            acc["max"][k] = v.copy() if k not in acc["max"] else np.maximum(acc["max"][k], v)
        acc["cat"].update(p["cat"])
    return acc


# ------------------------------------------------------------------ executors
class DaskExecutor(Executor):
    """Shared plumbing: the prepared blocks (futures) and the tree reduction."""

    def __init__(self, client, blocks, fan_in, timeout):
        self.client = client
        self.blocks = blocks
        self.fan_in = fan_in
        self.timeout = timeout

    def reduce(self, parts):
        """Tree reduction on the workers: ``fan_in`` consecutive parts per node."""
        while len(parts) > 1:
            parts = [self.client.submit(combine, *parts[i:i + self.fan_in], pure=False)
                     for i in range(0, len(parts), self.fan_in)]
        result = parts[0].result(timeout=self.timeout)
        return result if len(self.blocks) > 1 else combine(result)

    def close(self):
        # dropping the futures releases the blocks (another fit may share their keys)
        self.blocks = []


class DaskAllreduce(DaskExecutor):
    """Exact full-batch gradient descent over the blocks (``kprog``: the program of
    the whole data, ``n``: its rows)."""

    def __init__(self, client, blocks, fan_in, timeout, kprog, n):
        super().__init__(client, blocks, fan_in, timeout)
        self.kprog = kprog
        self.n = n
        self.work = None

    def start(self, state):
        state.unscale()
        self.work = batch_work(state.n_outputs, state.n_features)

    def run(self, state, order, ctl, n_epochs=1):
        parts = [self.client.submit(block_grad, b, state.theta.copy(), ctl.active.copy(),
                                    self.kprog, pure=False) for b in self.blocks]
        total = self.reduce(parts)["sum"]
        out = np.zeros((state.n_outputs, N_OUT))
        out[:, list(LOSS_SUMS)] += total["loss_sums"]
        self.work.G[...] = total["G"]
        # the same call as the single-machine full batch with one thread per row range
        cpu.batch_step(self.n, self.kprog, state.batch_arrays(), self.work, ctl, out)
        return out[None]


class DaskLocalSGD(DaskExecutor):
    """Rounds of ``sync_every`` local epochs per replica, then averaging. ``rngs``: the
    replicas' random streams (replica 0's is the estimator's, mirrored into ``rng0``
    for callbacks' snapshots)."""

    def __init__(self, client, blocks, fan_in, timeout, prog, weights, sync_every, rngs,
                 rng0, shuffle, shuffle_block):
        super().__init__(client, blocks, fan_in, timeout)
        self.prog = prog
        self.weights = weights
        self.epochs_per_call = sync_every
        self.rngs = rngs
        self.rng0 = rng0
        self.shuffle = shuffle
        self.shuffle_block = shuffle_block

    def run(self, state, order, ctl, n_epochs=1):
        whole = len(self.blocks) == 1
        sent = copy.copy(state)
        sent.progress = None  # the bookkeeping stays here
        parts = [self.client.submit(
            local_round, b, sent, self.rngs[r], self.prog, n_epochs,
            float(self.weights[r]), r, whole, self.shuffle, self.shuffle_block,
            pure=False) for r, b in enumerate(self.blocks)]
        res = self.reduce(parts)
        self.rngs = [res["cat"][("rng", r)] for r in range(len(self.blocks))]
        new = res["cat"]["state"] if whole else self._averaged(state, res)
        new.epochs = state.epochs  # the bookkeeping counts the round's epochs
        if not ctl.active.all():
            _keep_frozen(new, state, ~ctl.active)
        new.rng_state = self.rngs[0]
        if new.replicas is not None:
            new.replicas.states = list(self.rngs[1:])
        self.rng0.bit_generator.state = self.rngs[0]
        state.assign(new)
        stats = res["sum"]["stats"]
        stats[:, :, OUT_LR] = res["cat"]["lr"]  # replica 0's rates, not their sum
        return stats

    @staticmethod
    def _averaged(state, res):
        new = copy.copy(state)
        new.scaled = None
        for name in state.averaged_fields():
            setattr(new, name, res["sum"][name])
        new.updates = res["max"]["updates"]
        new.step = res["max"]["step"]
        new.replicas = copy.copy(state.replicas)
        return new


def _keep_frozen(new, old, frozen):
    """Converged outputs keep their parameters (as on one machine, where they stop
    training while the others go on)."""
    new.unscale()
    old_theta, old_avg = old.unscaled_copies()
    new.theta[frozen] = old_theta[frozen]
    new.avg[frozen] = old_avg[frozen]
    for name in ("l1_ledger", "opt_state", "updates", "step"):
        getattr(new, name)[frozen] = getattr(old, name)[frozen]
    new.plain_scalars[frozen, S_U] = old.plain_scalars[frozen, S_U]
