"""The typed bundles the compiled loops take, and the names of their slots.

A kernel call passes a few named tuples instead of dozens of positional arguments:

* :class:`Rows` -- the data: ``X`` (a 2-D array or a CSR tuple), the (n, K) targets
  ``Y``, the sample weights ``sw`` and the (K, 2) positive/negative class weights ``cw``;
* :class:`KernelProgram` -- the fit's options as numbers (built once per call by
  :meth:`fastgd._program.Program.kernel_program`);
* :class:`EpochControl` -- what changes between epochs: the outputs still training,
  the host-given rates (``"adaptive"``, :class:`~fastgd.schedules.Lambda`) and the
  epoch counter;
* :class:`BatchState` / :class:`PlainState` -- the arrays a loop updates in place;
* :class:`BatchWork` -- scratch arrays of the batch loop.

Numba compiles one specialization per combination of field types, so every bundle is
built by a function that fixes its field types (floats as ``float``, flags as
``bool``): a hyper-parameter's value never causes a compile.

Per output ``k``, a loop adds its epoch statistics to ``out[k, OUT_*]``.
"""

from collections import namedtuple

#: columns of the (K, N_OUT) statistics array ``out`` (zeroed by the caller per epoch)
OUT_OBJECTIVE = 0  # objective sum: loss + penalty, unweighted (scikit-learn's)
OUT_LOSS = 1  # sample-weighted loss sum
OUT_WEIGHT = 2  # sum of sample weights
OUT_NORM = 3  # sum of pre-clip gradient norms
OUT_LR = 4  # learning rate of the output's first update of the epoch
OUT_UPDATES = 5  # number of updates made
N_OUT = 6
assert (OUT_OBJECTIVE, OUT_LOSS, OUT_WEIGHT) == (0, 1, 2)  # the loss sums come first

#: slots of the per-output scalar state of scikit-learn's per-sample algorithm
#: (one row of ``PlainState.SC`` per output)
S_INTERCEPT, S_WSCALE, S_SQNORM, S_L1NORM, S_AVG_A, S_AVG_B, S_AVG_INTERCEPT, S_U = range(8)
N_PLAIN_SCALARS = 8

Rows = namedtuple("Rows", "X Y sw cw")

#: the codes and flags are the fit's; the hyper-parameters are per output: ``alpha``,
#: ``l1_ratio``, ``alpha_l2``, ``alpha_l1``, ``loss_eps``, ``clip_value``, ``clip_norm``
#: of shape (K,), ``opt_hp`` (K, n_hp) and ``sched_sp`` (K, n_sp), so that one pass can
#: train models of different hyper-parameters (fastgd's CV estimators); output ``k``
#: predicts target column ``k % n_targets`` (a multinomial model: ``n_targets``
#: logits, outputs ``k0 .. k0 + n_targets - 1``)
KernelProgram = namedtuple("KernelProgram", [
    "batch_size", "fit_intercept", "multinomial", "n_targets",
    "loss_code", "loss_eps",
    "penalty", "alpha", "l1_ratio", "alpha_l2", "alpha_l1",
    "clip_value", "clip_norm",
    "opt_code", "opt_hp",
    "sched_code", "sched_sp", "sched_unit",
    "average",
    "batch_norm", "bn_momentum", "bn_eps",
    "intercept_decay", "wscale_threshold",
])

#: the per-output hyper-parameters of a :class:`KernelProgram`
OutputParams = namedtuple("OutputParams", [
    "alpha", "l1_ratio", "alpha_l2", "alpha_l1", "loss_eps", "clip_value", "clip_norm",
    "opt_hp", "sched_sp",
])

EpochControl = namedtuple("EpochControl", "active eta_fixed epoch")

#: ``theta`` (K, d+1) weights with the intercept last, ``avg`` their average,
#: ``opt_state`` (K, rows, d+1) optimizer buffers, ``step`` (K,) optimizer steps,
#: ``updates`` (K,) updates made, ``bn_mean``/``bn_var`` (d,) running statistics
BatchState = namedtuple("BatchState", "theta avg opt_state step updates bn_mean bn_var")

#: scikit-learn's representation: the weights are ``W[k] * SC[k, S_WSCALE]``; ``AW``
#: the averaged weights in Bottou's lazy form, ``Q`` the L1 ledger, ``updates`` (K,)
PlainState = namedtuple("PlainState", "W AW Q SC updates")

#: rows of a batch whose residuals several outputs keep before adding their gradient
GRAD_ROWS = 64

#: ``G`` (K, d+1) gradient sums, ``mu``/``inv_sd`` (d+1) batch normalization of the
#: current batch, ``weff``/``beff`` the weights as seen by the raw features,
#: ``pred`` (K) the predictions of one row, ``acc`` (K, 3) the loss sums of one call
#: (the ``OUT_OBJECTIVE``, ``OUT_LOSS``, ``OUT_WEIGHT`` columns), ``R`` (K, GRAD_ROWS)
#: the predictions, then the residuals, of the rows whose gradient has not been summed
#: yet, ``idx`` (K) the indices of the active outputs (int64)
BatchWork = namedtuple("BatchWork", "G mu inv_sd weff beff pred acc R idx")

#: gathered rows of one chunk: ``B`` (rows of X, or a CSR tuple), ``YB``, ``swB``, and
#: ``order`` = 0, 1, 2, ... (the chunk in storage order)
Buffers = namedtuple("Buffers", "B YB swB order")


def epoch_control(active, eta_fixed, epoch):
    """An :class:`EpochControl` with fixed field types."""
    return EpochControl(active, eta_fixed, float(epoch))
