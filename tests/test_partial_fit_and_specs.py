"""partial_fit carries optimizer and schedule state; spec objects behave like values."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from fastgd import FastSGDRegressor
from fastgd.optim import SGD, Adadelta, Adagrad, Adam, AdamW, Momentum, RMSprop
from fastgd.schedules import (Constant, Cosine, CosineWarmRestarts, Exponential,
                              InverseScaling, InverseSqrt, Lambda, MultiStep, OneCycle,
                              Sequential, Step, Warmup)


def _halve_every_2(epoch):
    """A module-level function: a Lambda holding it pickles."""
    return 0.5 ** (epoch // 2)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 4))
    y = X @ np.array([1.0, -0.5, 2.0, 0.0]) + 0.1 * rng.normal(size=90)
    return X, y


CONFIGS = [
    dict(),
    dict(batch_size=16, optimizer="adam", learning_rate=Cosine(T_max=7)),
    dict(batch_size=7, optimizer=Momentum(nesterov=True), learning_rate=Step(2, 0.5)),
    dict(batch_size="full", optimizer="rmsprop", learning_rate=OneCycle(total_steps=10)),
    dict(batch_size=1, optimizer="adagrad", clip_norm=0.5),
    dict(batch_size=10, batch_norm=True, average=5),
    dict(penalty="elasticnet", learning_rate="optimal"),
    dict(batch_size=16, optimizer="adam",
         learning_rate=Sequential([Cosine(T_max=2), Step(1, 0.5)], milestones=[2])),
    dict(batch_size=8, learning_rate=Lambda(_halve_every_2), eta0=0.05),
    dict(learning_rate=Lambda(_halve_every_2)),  # scikit-learn's per-sample algorithm
]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("params", CONFIGS)
def test_k_partial_fits_equal_one_fit_of_k_epochs(data, params, shuffle):
    X, y = data
    k = 4
    full = FastSGDRegressor(max_iter=k, tol=None, shuffle=shuffle, random_state=0,
                            **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        full.fit(X, y)
    part = FastSGDRegressor(shuffle=shuffle, random_state=0, **params)
    for _ in range(k):
        part.partial_fit(X, y)
    np.testing.assert_array_equal(part.coef_, full.coef_)
    np.testing.assert_array_equal(part.intercept_, full.intercept_)
    assert part.t_ == full.t_


def test_optimizer_state_is_exposed(data):
    X, y = data
    est = FastSGDRegressor(batch_size=30, optimizer="adam", max_iter=2, tol=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    st = est.optimizer_state_
    assert st["step"] == 6  # 3 batches per epoch, 2 epochs
    assert set(st) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert st["exp_avg"].shape == (X.shape[1] + 1,)


ALL_SPECS = [SGD(), Momentum(), Adagrad(), RMSprop(centered=True), Adadelta(), Adam(),
             AdamW(), Constant(lr=0.1), InverseScaling(), Step(3), MultiStep([2, 5]),
             Exponential(0.9), Cosine(10), CosineWarmRestarts(3, 2), OneCycle(100),
             InverseSqrt(10), Warmup(Cosine(10), 3),
             Sequential([Warmup(Constant(unit="epoch"), 2), Cosine(10)], milestones=[2])]


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda s: type(s).__name__)
def test_specs_are_values(spec):
    assert eval(repr(spec)) == spec  # noqa: S307 - repr round trip
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert clone(FastSGDRegressor(optimizer=spec) if hasattr(spec, "_code")
                 and not hasattr(spec, "counts") else FastSGDRegressor(
                     learning_rate=spec)).get_params() is not None


@pytest.mark.parametrize("sched, unit", [(Constant(), "update"), (InverseScaling(), "update"),
                                         (Step(2), "epoch"), (Cosine(5), "epoch"),
                                         (OneCycle(10), "update"), (InverseSqrt(4), "update"),
                                         (Warmup(Step(2), 2), "epoch"),
                                         (Cosine(5, unit="update"), "update"),
                                         (Sequential([Step(2), Cosine(5)], [3]), "epoch"),
                                         (Warmup(Sequential([Cosine(5, unit="update"),
                                                             "constant"], [4]), 2), "update"),
                                         (Lambda(_halve_every_2), "epoch")])
def test_schedules_state_their_unit(sched, unit):
    assert sched.counts == unit


@pytest.mark.parametrize("sched", [
    Sequential([Warmup(Constant(unit="epoch"), 2), Cosine(T_max=5)], milestones=[2]),
    Lambda(_halve_every_2, lr=0.03),
], ids=["Sequential", "Lambda"])
def test_estimator_with_combined_schedule_pickles_and_clones(data, sched):
    X, y = data
    est = FastSGDRegressor(batch_size=16, optimizer="adam", learning_rate=sched,
                           max_iter=3, tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    restored = pickle.loads(pickle.dumps(est))
    assert restored.get_params()["learning_rate"] == sched
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))
    # the restored model continues exactly as the original
    np.testing.assert_array_equal(restored.partial_fit(X, y).coef_,
                                  est.partial_fit(X, y).coef_)
    twin = clone(est)
    assert twin.get_params()["learning_rate"] == sched
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        np.testing.assert_array_equal(twin.fit(X, y).lr_curve_[:3],
                                      sched(np.arange(3), eta0=1e-3))


def test_lambda_with_a_lambda_clones_but_does_not_pickle(data):
    X, y = data
    est = FastSGDRegressor(learning_rate=Lambda(lambda epoch: 0.9 ** epoch), eta0=0.01,
                           max_iter=2, tol=None)
    assert clone(est).get_params()["learning_rate"].fn is est.learning_rate.fn
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(est)


def test_schedule_lr_none_uses_eta0_in_estimator(data):
    X, y = data
    est = FastSGDRegressor(learning_rate=Exponential(0.5), eta0=0.02, max_iter=3, tol=None,
                           shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    np.testing.assert_allclose(est.lr_curve_, [0.02, 0.01, 0.005], rtol=1e-15)
    own = FastSGDRegressor(learning_rate=Exponential(0.5, lr=0.1), eta0=0.02, max_iter=2,
                           tol=None, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        own.fit(X, y)
    np.testing.assert_allclose(own.lr_curve_, [0.1, 0.05], rtol=1e-15)


def test_schedule_call_matches_lr_curve_per_update(data):
    X, y = data
    sched = Warmup(InverseSqrt(warmup_steps=5, lr=0.05), warmup_steps=3)
    est = FastSGDRegressor(batch_size=30, learning_rate=sched, max_iter=4, tol=None,
                           shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    # 3 updates per epoch: the first update of epoch e is update 3e
    np.testing.assert_array_equal(est.lr_curve_, [sched(3 * e) for e in range(4)])
    # inner(0) = 0.05 * sqrt(5) * 5**-1.5 = 0.01, ramped linearly over 3 updates
    np.testing.assert_allclose(sched(np.arange(4)), [0.0, 0.01 / 3, 0.02 / 3, 0.01],
                               rtol=1e-14)


@pytest.mark.parametrize("bad, match", [
    (Momentum(momentum=1.5), "momentum"),
    (Momentum(nesterov=True, dampening=0.1), "Nesterov"),
    (Adam(beta1=1.0), "beta1"),
    (RMSprop(alpha=-0.1), "alpha"),
    (Adagrad(eps=-1), "eps"),
    (SGD(weight_decay=-1.0), "weight_decay"),
])
def test_bad_optimizer_hyper_parameters_name_the_parameter(data, bad, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        FastSGDRegressor(optimizer=bad).fit(X, y)


@pytest.mark.parametrize("bad, match", [
    (Step(0), "step_size"), (Cosine(T_max=0), "T_max"), (MultiStep("ab"), "milestones"),
    (OneCycle(10, pct_start=1.5), "pct_start"), (OneCycle(10, anneal_strategy="x"),
                                                 "anneal_strategy"),
    (Warmup("cosine", 3), "schedule"), (Warmup(Cosine(5), -1), "warmup_steps"),
    (Constant(lr=-1.0), "lr"), (Step(2, unit="batch"), "unit"),
    (Sequential([Cosine(5)], [3]), "milestone"),
    (Sequential([Cosine(5), Step(2), Step(3)], [4, 4]), "increase"),
    (Sequential([Cosine(5), Step(2)], [0]), "milestones"),
    (Sequential([Cosine(5), Step(2, unit="update")], [3]), "unit"),
    (Sequential([Cosine(5), "cosine"], [3]), "schedules"),
    (Sequential(Cosine(5), [3]), "schedules"),
    (Sequential([], []), "at least one"),
    (Sequential([Cosine(5), Sequential([Step(2)], [])], [3]), "flatten"),
    (Sequential([Lambda(_halve_every_2), Step(2)], [3]), "Lambda"),
    (Warmup(Lambda(_halve_every_2), 2), "Lambda"),
    (Lambda(3.0), "fn"),
    (Lambda(lambda epoch: -1.0), "Lambda"),
    (Lambda(lambda epoch: float("nan")), "Lambda"),
    (Lambda(lambda epoch: "fast"), "Lambda"),
])
def test_bad_schedules_name_the_parameter(data, bad, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        FastSGDRegressor(learning_rate=bad).fit(X, y)


@pytest.mark.parametrize("params, algorithm", [
    (dict(), "sklearn"),
    (dict(penalty="l1", average=3), "sklearn"),
    (dict(optimizer="adam"), "batch"),
    (dict(clip_norm=1.0), "batch"),
    (dict(batch_size=4), "batch"),
    (dict(optimizer=SGD(weight_decay=0.1)), "batch"),
])
def test_algorithm_attribute_says_which_path_ran(data, params, algorithm):
    X, y = data
    est = FastSGDRegressor(max_iter=2, tol=None, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.algorithm_ == algorithm


def test_csr_with_mixed_index_dtypes_shares_values(data):
    import scipy.sparse as sp

    X, y = data
    S = sp.csr_matrix(X)
    S.indices = S.indices.astype(np.int32)
    S.indptr = S.indptr.astype(np.int64)
    est = FastSGDRegressor(max_iter=2, tol=None, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(S, y)
        ref = FastSGDRegressor(max_iter=2, tol=None, shuffle=False).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    X2, _ = est._validate_X_y(S, y, reset=False)
    assert np.shares_memory(X2.data, S.data)
