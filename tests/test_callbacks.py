"""Callbacks, progress display and checkpoints."""

import pickle

import numpy as np
import pytest

from fastgd import FastSGDClassifier, FastSGDRegressor
from fastgd.callbacks import Callback, Checkpoint, EarlyStopping, History
from fitting import fit_quietly as _fit


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.2 + 0.1 * rng.normal(size=120)
    return X, y


MODES = [dict(), dict(batch_size=16, optimizer="adam"), dict(batch_size="full",
         learning_rate="constant", eta0=0.1), dict(batch_size=8, batch_norm=True,
         average=5), dict(penalty="elasticnet", average=10)]


@pytest.mark.parametrize("params", MODES)
def test_history_matches_the_fitted_curves(data, params):
    X, y = data
    hist = History(keep_weights=True)
    est = _fit(FastSGDRegressor(max_iter=7, tol=None, random_state=0, callbacks=[hist],
                                **params), X, y)
    assert hist.epoch == list(range(1, 8))
    assert hist.loss == est.loss_curve_
    assert hist.lr == est.lr_curve_
    assert hist.grad_norm == est.grad_norm_curve_
    assert hist.elapsed == est.time_curve_
    # the last epoch's weights are the fitted model
    np.testing.assert_array_equal(hist.coef[-1], est.coef_)
    np.testing.assert_array_equal(hist.intercept[-1], est.intercept_)
    assert hist.coef[0].shape == est.coef_.shape


def test_info_weights_are_read_only_and_callbacks_see_validation(data):
    X, y = data
    seen = []

    def cb(info):
        with pytest.raises(ValueError):
            info.coef[0] = 1.0
        seen.append(info.val_score)

    est = _fit(FastSGDRegressor(max_iter=4, tol=None, early_stopping=True, random_state=0,
                                callbacks=[cb]), X, y)
    assert seen == est.validation_scores_


def test_a_callback_can_stop_training(data):
    X, y = data
    est = _fit(FastSGDRegressor(max_iter=50, tol=None,
                                callbacks=[lambda info: info.epoch == 4]), X, y)
    assert est.n_iter_ == 4
    assert len(est.loss_curve_) == 4


@pytest.mark.parametrize("monitor, mode", [("loss", "auto"), ("grad_norm", "min"),
                                           (lambda info: -info.loss, "max")])
def test_early_stopping_callback(data, monitor, mode):
    X, y = data
    es = EarlyStopping(monitor=monitor, patience=3, min_delta=1e-3, mode=mode)
    est = _fit(FastSGDRegressor(max_iter=200, tol=None, random_state=0, callbacks=[es]),
               X, y)
    assert est.n_iter_ < 200
    assert es.stopped_epoch_ == est.n_iter_
    # reproduce the rule on the recorded curve
    values = {"loss": est.loss_curve_, "grad_norm": est.grad_norm_curve_}.get(
        monitor if isinstance(monitor, str) else "loss")
    sign = 1.0 if isinstance(monitor, str) else 1.0
    best, wait, stop = np.inf, 0, None
    for e, v in enumerate(values, start=1):
        if sign * v < best - 1e-3:
            best, wait = sign * v, 0
        else:
            wait += 1
            if wait >= 3:
                stop = e
                break
    assert stop == est.n_iter_


def test_early_stopping_on_validation_score(data):
    X, y = data
    es = EarlyStopping(monitor="val_score", patience=2, min_delta=1e-3)
    est = _fit(FastSGDRegressor(max_iter=300, tol=None, early_stopping=True, eta0=0.01,
                                learning_rate="constant", random_state=0, callbacks=[es]),
               X, y)
    assert es.stopped_epoch_ == est.n_iter_ < 300
    scores = est.validation_scores_
    best = max(scores[:-2])
    assert max(scores[-2:]) <= best + 1e-3


def test_callback_hooks_order(data):
    X, y = data
    events = []

    class Recorder(Callback):
        def on_train_begin(self, estimator):
            events.append("begin")

        def on_epoch_end(self, info):
            events.append(info.epoch)

        def on_train_end(self, estimator):
            events.append(("end", estimator.n_iter_))

    _fit(FastSGDRegressor(max_iter=3, tol=None, callbacks=[Recorder()]), X, y)
    assert events == ["begin", 1, 2, 3, ("end", 3)]


@pytest.mark.parametrize("params", MODES)
def test_checkpoint_resumes_bit_identically(data, params, tmp_path):
    X, y = data
    ck = Checkpoint(tmp_path / "ck-{epoch}.pkl", every=2)
    full = _fit(FastSGDRegressor(max_iter=8, tol=None, random_state=0, callbacks=[ck],
                                 **params), X, y)
    assert len(ck.written_) == 4
    resumed = Checkpoint.load(tmp_path / "ck-4.pkl")
    assert resumed.n_iter_ == 4
    for _ in range(4):
        resumed.partial_fit(X, y)
    np.testing.assert_array_equal(resumed.coef_, full.coef_)
    np.testing.assert_array_equal(resumed.intercept_, full.intercept_)
    assert resumed.t_ == full.t_


def test_checkpoint_classifier_multinomial(data, tmp_path):
    X, y = data
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    ck = Checkpoint(tmp_path / "c.pkl")
    params = dict(loss="log_loss", multi_class="multinomial", batch_size=16,
                  optimizer="adam", max_iter=5, tol=None, random_state=0)
    full = _fit(FastSGDClassifier(callbacks=[ck], **params), X, labels)
    # the file holds the last epoch; an earlier one via snapshot in a callback
    snaps = []
    _fit(FastSGDClassifier(callbacks=[lambda i: snaps.append(i.snapshot())
                                      if i.epoch == 2 else None], **params), X, labels)
    resumed = pickle.loads(pickle.dumps(snaps[0]))
    for _ in range(3):
        resumed.partial_fit(X, labels)
    np.testing.assert_array_equal(resumed.coef_, full.coef_)
    np.testing.assert_array_equal(Checkpoint.load(tmp_path / "c.pkl").coef_, full.coef_)


def test_verbose_progress_bar_and_lines(data, capsys):
    X, y = data
    _fit(FastSGDRegressor(max_iter=3, tol=None, verbose=1), X, y)
    err = capsys.readouterr().err
    assert "3/3" in err and "loss=" in err and "lr=" in err
    _fit(FastSGDRegressor(max_iter=2, tol=None, verbose=2, early_stopping=True,
                          random_state=0), X, y)
    out = capsys.readouterr().out
    assert out.count("-- Epoch") == 2 and "Validation score" in out


def test_bad_callbacks(data):
    X, y = data
    with pytest.raises(TypeError, match="callbacks"):
        FastSGDRegressor(callbacks=[3]).fit(X, y)
    with pytest.raises(ValueError, match="monitor"):
        EarlyStopping(monitor="accuracy")
    with pytest.raises(ValueError, match="every"):
        Checkpoint("x.pkl", every=0)


def test_callbacks_do_not_change_the_model(data):
    X, y = data
    a = _fit(FastSGDRegressor(max_iter=5, tol=None, random_state=0, batch_size=4,
                              optimizer="momentum"), X, y)
    b = _fit(FastSGDRegressor(max_iter=5, tol=None, random_state=0, batch_size=4,
                              optimizer="momentum", callbacks=[History()], verbose=2), X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
