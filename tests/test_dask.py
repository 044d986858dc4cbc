"""Training on a Dask cluster (fastgd.dask) on a LocalCluster of two worker processes.

One module-scoped cluster (2 processes x 1 thread) serves every test; every wait has a
timeout so that no test can hang.
"""

import os
import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from fastgd import FastSGDClassifier, FastSGDRegressor  # noqa: E402
import fastgd.dask as fdask  # noqa: E402
from fastgd.schedules import Lambda  # noqa: E402
from fitting import split_small_batches  # noqa: E402,F401 (a fixture)

# the references below sum the small data's full batches over n_jobs row ranges,
# as the "gd" strategy sums them per block
pytestmark = pytest.mark.usefixtures("split_small_batches")

ROUND_TIMEOUT = 60  # seconds per round: a stuck cluster fails the test, never hangs it


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        timeout=60, silence_logs=50,
    )
    c = distributed.Client(cluster, timeout=60)
    c.wait_for_workers(2, timeout=60)
    yield c
    c.close()
    cluster.close()


def _data(n=400, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ rng.normal(size=d) + 0.3 + 0.1 * rng.normal(size=n)
    return X, y


def _dask(a, chunks):
    return da.from_array(a, chunks=(chunks,) + a.shape[1:])


GD = dict(batch_size="full", learning_rate="constant", eta0=0.1, tol=None, max_iter=30)


# --------------------------------------------------------------- exact gradient descent
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_gd_allreduce_equals_single_machine(client, optimizer):
    X, y = _data()
    Xd, yd = _dask(X, 100), _dask(y, 100)
    dist = fdask.fit(FastSGDRegressor(optimizer=optimizer, average=5, **GD), Xd, yd,
                     strategy="gd", client=client, timeout=ROUND_TIMEOUT)
    # the same sum order: one thread per block (row ranges cut where the blocks are)
    threads = FastSGDRegressor(optimizer=optimizer, average=5, n_jobs=4, **GD).fit(X, y)
    np.testing.assert_array_equal(dist.coef_, threads.coef_)
    np.testing.assert_array_equal(dist.intercept_, threads.intercept_)
    assert dist.loss_curve_ == threads.loss_curve_
    assert dist.t_ == threads.t_ and dist.n_iter_ == threads.n_iter_ == 30
    # one thread adds the rows in another order: equal to rounding (30 contracting
    # steps keep a few ulps of difference)
    serial = FastSGDRegressor(optimizer=optimizer, average=5, **GD).fit(X, y)
    np.testing.assert_allclose(dist.coef_, serial.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dist.intercept_, serial.intercept_, rtol=1e-12)


def _decay(epoch):
    return 0.8 ** epoch


def test_gd_lambda_schedule_rates_come_from_the_client(client):
    X, y = _data()
    kw = dict(GD, learning_rate=Lambda(_decay), max_iter=6)
    dist = fdask.fit(FastSGDRegressor(**kw), _dask(X, 100), _dask(y, 100), strategy="gd",
                     client=client, timeout=ROUND_TIMEOUT)
    threads = FastSGDRegressor(n_jobs=4, **kw).fit(X, y)
    np.testing.assert_array_equal(dist.coef_, threads.coef_)
    np.testing.assert_allclose(dist.lr_curve_, 0.1 * 0.8 ** np.arange(6), rtol=1e-15)


def test_gd_stopping_rule_and_classifier(client):
    X, y = _data(seed=1)
    yc = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    kw = dict(loss="log_loss", batch_size="full", learning_rate="adaptive", eta0=0.5,
              tol=1e-3, max_iter=200, class_weight="balanced")
    for multi in ("ovr", "multinomial"):
        dist = FastSGDClassifier(multi_class=multi, **kw).fit(_dask(X, 100), _dask(yc, 100))
        local = FastSGDClassifier(multi_class=multi, n_jobs=4, **kw).fit(X, yc)
        assert dist.n_iter_ == local.n_iter_ < 200
        np.testing.assert_array_equal(dist.coef_, local.coef_)
        np.testing.assert_array_equal(dist.classes_, local.classes_)


@pytest.mark.parametrize("strategy", ["gd", "local_sgd"])
def test_every_divergence_the_local_loop_detects_is_raised(client, strategy):
    """An overflowing gradient with Adam: its second moment becomes infinite and the
    steps zero, so the weights and the loss stay finite while training has stopped
    moving. The in-process loop calls that divergence; both Dask strategies share its
    bookkeeping (the "gd" strategy used to check weights and losses only and returned
    a model of zeros)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * 1e160
    y = rng.normal(size=200)
    kw = dict(batch_size="full" if strategy == "gd" else 8, optimizer="adam",
              learning_rate="constant", eta0=0.01, max_iter=5, tol=None)
    with pytest.raises(ValueError, match="overflow occurred at epoch #1"):
        FastSGDRegressor(**kw).fit(X, y)
    with pytest.raises(ValueError, match="overflow occurred at epoch #1"):
        fdask.fit(FastSGDRegressor(**kw), _dask(X, 100), _dask(y, 100), strategy=strategy,
                  client=client, timeout=ROUND_TIMEOUT)


def test_gd_tree_reduction_deeper_than_fan_in(client):
    X, y = _data()
    Xd, yd = _dask(X, 50), _dask(y, 50)  # 8 blocks, fan_in 2: three levels
    a = fdask.fit(FastSGDRegressor(**GD), Xd, yd, fan_in=2, client=client,
                  timeout=ROUND_TIMEOUT)
    b = fdask.fit(FastSGDRegressor(**GD), Xd, yd, fan_in=2, client=client,
                  timeout=ROUND_TIMEOUT)
    np.testing.assert_array_equal(a.coef_, b.coef_)  # deterministic
    serial = FastSGDRegressor(**GD).fit(X, y)
    np.testing.assert_allclose(a.coef_, serial.coef_, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------- local SGD
@pytest.mark.parametrize("params,sync_every", [
    (dict(batch_size=8, optimizer="adam", learning_rate="constant", eta0=0.01), 1),
    # a host-evaluated rate, evaluated by the workers' epochs
    (dict(batch_size=8, optimizer="adam", learning_rate=Lambda(_decay), eta0=0.01,
          tol=None), 2),
    # scikit-learn's per-sample algorithm; with sync_every > 1 the stopping rule runs
    # once per round, so tol=None there
    (dict(batch_size=1, penalty="elasticnet", average=10, tol=None), 3),
    (dict(batch_size=1, penalty="elasticnet", average=10), 1),
    (dict(batch_size=16, batch_norm=True, optimizer="momentum", shuffle="block",
          shuffle_block_size=32, tol=None), 4),
])
def test_local_sgd_one_block_equals_single_machine(client, params, sync_every):
    X, y = _data()
    kw = dict(max_iter=12, random_state=3, **params)
    local = FastSGDRegressor(**kw).fit(X, y)
    dist = fdask.fit(FastSGDRegressor(**kw), _dask(X, 400), _dask(y, 400),
                     strategy="local_sgd", sync_every=sync_every, client=client,
                     timeout=ROUND_TIMEOUT)
    np.testing.assert_array_equal(dist.coef_, local.coef_)
    np.testing.assert_array_equal(dist.intercept_, local.intercept_)
    assert dist.loss_curve_ == local.loss_curve_
    assert dist.n_iter_ == local.n_iter_ and dist.t_ == local.t_


def test_local_sgd_averages_and_is_reproducible(client):
    X, y = _data(n=600)
    Xd, yd = _dask(X, 150), _dask(y, 150)
    kw = dict(batch_size=10, optimizer="adam", learning_rate="constant", eta0=0.01,
              max_iter=8, tol=None, random_state=0)
    a = fdask.fit(FastSGDRegressor(**kw), Xd, yd, sync_every=2, client=client,
                  timeout=ROUND_TIMEOUT)
    b = fdask.fit(FastSGDRegressor(**kw), Xd, yd, sync_every=2, client=client,
                  timeout=ROUND_TIMEOUT)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.n_iter_ == 8 and len(a.loss_curve_) == 8
    assert a.score(X, y) > 0.9  # 8 epochs of Adam at 0.01: not yet converged

    # the averaging rule by hand: each block trains a replica from the common start for
    # one round of 2 epochs (replica 0 with the estimator's stream, replica b with
    # SeedSequence(seed, spawn_key=(b,))), then theta and Adam's moments are averaged
    # with the row counts as weights (here 1/4 each)
    from fastgd._kernels.bundles import Rows
    from fastgd._loop import fit_epochs
    from fastgd._program import lower
    from fastgd._state import TrainState

    one_round = fdask.fit(FastSGDRegressor(**dict(kw, max_iter=2)), Xd, yd, sync_every=2,
                          client=client, timeout=ROUND_TIMEOUT)
    seed = np.random.RandomState(0).randint(0, np.iinfo(np.int32).max)
    prog = lower(FastSGDRegressor(**kw))
    theta = np.zeros(X.shape[1] + 1)
    moments = 0.0
    for b in range(4):
        rows = slice(150 * b, 150 * (b + 1))
        state = TrainState.new(1, X.shape[1], prog)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b,) if b else ()))
        block = Rows(np.ascontiguousarray(X[rows]), y[rows, None].copy(), np.ones(150),
                     np.ones((1, 2)))
        fit_epochs(state, prog, block, np.arange(150), max_epochs=2, tol=None,
                   n_iter_no_change=1, shuffle=True, rng=rng)
        theta = theta + 0.25 * state.theta[0]
        moments = moments + 0.25 * state.opt_state[0]
    np.testing.assert_allclose(one_round.coef_, theta[:-1], rtol=1e-13)
    np.testing.assert_allclose(one_round.intercept_, theta[-1:], rtol=1e-13)
    opt = one_round.optimizer_state_
    np.testing.assert_allclose(opt["exp_avg"], moments[0], rtol=1e-13)
    np.testing.assert_allclose(opt["exp_avg_sq"], moments[1], rtol=1e-13)
    assert opt["step"] == 2 * 15  # 150 rows / batch 10, two epochs: the max over replicas


def test_local_sgd_default_strategy_classifier_and_lazy_predictions(client):
    X, y = _data()
    yc = np.where(y > 0.3, "pos", "neg")
    Xd, yd = _dask(X, 100), _dask(yc, 100)
    clf = FastSGDClassifier(loss="log_loss", batch_size=8, random_state=0, max_iter=5,
                            tol=None).fit(Xd, yd)
    assert list(clf.classes_) == ["neg", "pos"]
    for method in ("predict", "decision_function", "predict_proba", "predict_log_proba"):
        lazy = getattr(clf, method)(Xd)
        assert isinstance(lazy, da.Array)
        got = lazy.compute()
        np.testing.assert_array_equal(got, getattr(clf, method)(X))
    assert clf.score(X, yc) > 0.9
    reg = FastSGDRegressor(batch_size=4, random_state=0, max_iter=3, tol=None)
    reg.fit(Xd, _dask(np.column_stack([y, -y]), 100))
    pred = reg.predict(Xd)
    assert isinstance(pred, da.Array) and pred.shape == (400, 2)
    np.testing.assert_array_equal(pred.compute(), reg.predict(X))


def test_dask_dataframe_input(client):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X, y = _data()
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(5)])
    ddf = dd.from_pandas(frame, npartitions=4)
    dy = dd.from_pandas(pd.Series(y, name="y"), npartitions=4)
    est = FastSGDRegressor(**GD).fit(ddf, dy)
    assert list(est.feature_names_in_) == list(frame.columns)
    ref = FastSGDRegressor(**GD, n_jobs=4).fit(frame, y)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "fitted with feature names" warning
        pred = est.predict(ddf)
        np.testing.assert_allclose(pred.compute(), ref.predict(frame), rtol=1e-12)


def test_partial_fit_on_dask_continues_the_state(client):
    X, y = _data()
    kw = dict(batch_size=8, optimizer="momentum", random_state=0, learning_rate="constant")
    Xd, yd = _dask(X, 400), _dask(y, 400)
    dist = FastSGDRegressor(**kw)
    local = FastSGDRegressor(**kw)
    for _ in range(3):
        dist.partial_fit(Xd, yd)
        local.partial_fit(X, y)
    np.testing.assert_array_equal(dist.coef_, local.coef_)
    clf = FastSGDClassifier(batch_size=8, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(Xd, _dask((y > 0).astype(int), 400))


# --------------------------------------------------------------------- Incremental
def test_dask_ml_incremental_equals_sequential_partial_fit(client):
    wrappers = pytest.importorskip("dask_ml.wrappers",
                                   reason="dask-ml is not installed")
    X, y = _data()
    kw = dict(batch_size=8, optimizer="adam", random_state=0, learning_rate="constant",
              eta0=0.01)
    inc = wrappers.Incremental(FastSGDRegressor(**kw), shuffle_blocks=False)
    inc.fit(_dask(X, 100), _dask(y, 100))
    seq = FastSGDRegressor(**kw)
    for b in range(4):
        seq.partial_fit(X[100 * b:100 * (b + 1)], y[100 * b:100 * (b + 1)])
    np.testing.assert_array_equal(inc.estimator_.coef_, seq.coef_)
    np.testing.assert_array_equal(inc.estimator_.intercept_, seq.intercept_)
    yc = (y > 0.3).astype(int)
    inc = wrappers.Incremental(FastSGDClassifier(batch_size=8, random_state=0),
                               shuffle_blocks=False)
    inc.fit(_dask(X, 100), _dask(yc, 100), classes=[0, 1])
    seq = FastSGDClassifier(batch_size=8, random_state=0)
    for b in range(4):
        seq.partial_fit(X[100 * b:100 * (b + 1)], yc[100 * b:100 * (b + 1)],
                        classes=[0, 1])
    np.testing.assert_array_equal(inc.estimator_.coef_, seq.coef_)


# ------------------------------------------------------------------ fault tolerance
class _KillWorkerAfter:
    """A callback that SIGKILLs one worker process (its nanny restarts it) a few
    milliseconds after a round ended: the next round's tasks are running as it dies,
    and the prepared blocks it held are lost."""

    def __init__(self, client, at_epoch):
        self.client = client
        self.at_epoch = at_epoch
        self.killed = None

    def __call__(self, info):
        if info.epoch == self.at_epoch and self.killed is None:
            import signal
            import threading

            pids = self.client.run(os.getpid)
            self.killed = pids[sorted(pids)[0]]
            threading.Timer(0.02, os.kill, (self.killed, signal.SIGKILL)).start()
        return False


@pytest.mark.parametrize("strategy", ["gd", "local_sgd"])
def test_worker_lost_mid_fit_leaves_the_result_unchanged(client, strategy):
    X, y = _data()
    Xd, yd = _dask(X, 100), _dask(y, 100)
    if strategy == "gd":
        kw = dict(GD, max_iter=8)
    else:
        kw = dict(batch_size=8, max_iter=8, tol=None, random_state=0)
    ref = fdask.fit(FastSGDRegressor(**kw), Xd, yd, strategy=strategy, client=client,
                    timeout=ROUND_TIMEOUT)
    killer = _KillWorkerAfter(client, at_epoch=3)
    got = fdask.fit(FastSGDRegressor(callbacks=[killer], **kw), Xd, yd,
                    strategy=strategy, client=client, timeout=ROUND_TIMEOUT)
    assert killer.killed is not None
    np.testing.assert_array_equal(got.coef_, ref.coef_)
    np.testing.assert_array_equal(got.intercept_, ref.intercept_)
    client.wait_for_workers(2, timeout=60)  # the nanny brings it back for later tests


class _Interrupt(Exception):
    pass


def _interrupt_at(epoch):
    def cb(info):
        if info.epoch == epoch:
            raise _Interrupt
    return cb


@pytest.mark.parametrize("strategy,kw", [
    ("gd", dict(GD, max_iter=10, optimizer="adam", learning_rate="adaptive", tol=1e-4)),
    ("local_sgd", dict(batch_size=8, optimizer="adam", max_iter=9, random_state=0,
                       learning_rate="constant", eta0=0.01)),
])
def test_resume_from_checkpoint_equals_uninterrupted(client, tmp_path, strategy, kw):
    X, y = _data()
    Xd, yd = _dask(X, 100), _dask(y, 100)
    opts = dict(strategy=strategy, sync_every=3 if strategy == "local_sgd" else 1,
                client=client, timeout=ROUND_TIMEOUT)
    ref = fdask.fit(FastSGDRegressor(**kw), Xd, yd, **opts)
    path = tmp_path / "fit.ckpt"
    with pytest.raises(_Interrupt):
        fdask.fit(FastSGDRegressor(callbacks=[_interrupt_at(3 if strategy == "gd" else 6)],
                                   **kw), Xd, yd, checkpoint_path=path, **opts)
    with open(path, "rb") as fh:
        payload = pickle.load(fh)
    assert not payload["complete"] and payload["state"].progress.epoch in (3, 6)
    resumed = fdask.fit(FastSGDRegressor(**kw), Xd, yd, checkpoint_path=path, **opts)
    np.testing.assert_array_equal(resumed.coef_, ref.coef_)
    np.testing.assert_array_equal(resumed.intercept_, ref.intercept_)
    assert resumed.n_iter_ == ref.n_iter_ and resumed.loss_curve_ == ref.loss_curve_
    with open(path, "rb") as fh:
        assert pickle.load(fh)["complete"]
    # another fit refuses a foreign unfinished checkpoint
    with pytest.raises(_Interrupt):
        fdask.fit(FastSGDRegressor(callbacks=[_interrupt_at(3)], **kw), Xd, yd,
                  checkpoint_path=path, **opts)
    with pytest.raises(ValueError, match="belongs to another fit"):
        fdask.fit(FastSGDRegressor(**dict(kw, alpha=0.5)), Xd, yd, checkpoint_path=path,
                  **opts)


# ---------------------------------------------------------------- parameters, plumbing
def test_bad_parameters_raise_value_error(client):
    X, y = _data(n=40)
    Xd, yd = _dask(X, 20), _dask(y, 20)
    est = FastSGDRegressor(batch_size=4)
    with pytest.raises(ValueError, match="strategy must be one of"):
        fdask.fit(est, Xd, yd, strategy="sgd", client=client)
    with pytest.raises(ValueError, match="sync_every must be an int >= 1"):
        fdask.fit(est, Xd, yd, sync_every=0, client=client)
    with pytest.raises(ValueError, match="fan_in must be an int >= 2"):
        fdask.fit(est, Xd, yd, fan_in=1, client=client)
    with pytest.raises(ValueError, match="strategy='gd' is full-batch"):
        fdask.fit(est, Xd, yd, strategy="gd", client=client)
    with pytest.raises(ValueError, match="early_stopping"):
        FastSGDRegressor(early_stopping=True).fit(Xd, yd)
    with pytest.raises(ValueError, match="batch_norm"):
        FastSGDRegressor(batch_size="full", batch_norm=True).fit(Xd, yd)
    with pytest.raises(ValueError, match="device='cuda' is not supported with dask"):
        FastSGDRegressor(batch_size="full", device="cuda").fit(Xd, yd)
    with pytest.raises(ValueError, match="on_divergence must be 'raise'"):
        FastSGDRegressor(batch_size="full", on_divergence="restore").fit(Xd, yd)
    with pytest.raises(ValueError, match="method must be one of"):
        fdask.predict(FastSGDRegressor(max_iter=1).fit(X, y), Xd, method="score")
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity"):
        FastSGDRegressor(batch_size="full").fit(_dask(bad, 20), yd)
    with pytest.raises(ValueError, match="rows but X has"):
        FastSGDRegressor(batch_size="full").fit(Xd, y[:30])


def test_import_without_dask_and_clear_error_without_client():
    import subprocess

    code = (
        "import sys, numpy as np\n"
        "from fastgd import FastSGDRegressor\n"
        "FastSGDRegressor(max_iter=2, tol=None).fit(np.ones((4, 2)), np.ones(4))\n"
        "print('dask' in sys.modules)\n"
        "import dask.array as da\n"
        "try:\n"
        "    FastSGDRegressor().fit(da.ones((4, 2), chunks=2), da.ones(4, chunks=2))\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[1])
    lines = out.stdout.splitlines()
    assert lines[0] == "False", out.stderr  # import fastgd never imports dask
    assert "needs a dask.distributed Client" in lines[1], out.stderr


def test_benchmark_quick(client, capsys):
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    from benchmarks import dask_scaling

    assert dask_scaling.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "| strategy |" in out and "1 worker" in out
