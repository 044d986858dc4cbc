"""Estimator-level parity: ``FastSGDRegressor(shuffle=False, max_iter=k, tol=None)``
against the plain NumPy reference ``tests/naive.py`` after k = 1, 2 and 5 epochs.

* the general path (minibatch / full batch / per sample with a stateful optimizer,
  clipping, batch norm, penalties, averaging, sample weights) vs ``naive.naive_fit``;
* scikit-learn's per-sample algorithm (``batch_size=1, optimizer="sgd"``, no clipping,
  no batch norm) vs ``naive.naive_sklearn_fit``, itself checked against
  ``sklearn.linear_model.SGDRegressor``;
* the stopping rule (``tol``), the ``"adaptive"`` rate and the early-stopping split,
  replayed on the naive per-epoch objective / parameters.

Coefficients, intercept and the per-epoch histories are compared in float64 to
rtol 1e-12 (1e-10 for scikit-learn's algorithm, whose lazily scaled weights round
differently). With float32 ``X`` the parameters are float64 inside and rounded once at
the end, so ``coef_`` agrees to float32 rounding (rtol 1e-6) and the histories to
float64 round-off.
"""

import warnings
from functools import partial

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor

import naive
from fastgd import FastSGDRegressor, optim, schedules

EPOCHS = (1, 2, 5)
RTOL = 1e-12
ATOL = 1e-14
RTOL_PLAIN = 1e-10

OPT_CLASSES = {
    "sgd": optim.SGD, "momentum": optim.Momentum, "adagrad": optim.Adagrad,
    "rmsprop": optim.RMSprop, "adadelta": optim.Adadelta, "adam": optim.Adam,
    "adamw": optim.AdamW,
}


# ================================================================================= data
def _make_data(n=40, d=5, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[:, 1] += 2.0  # a feature with a non-zero mean (matters for batch norm)
    X *= scale
    w = rng.normal(size=d)
    y = X @ w + 0.5 + 0.3 * rng.normal(size=n)
    sw = rng.uniform(0.5, 2.0, size=n)
    return X, y, sw


X, Y, SW = _make_data()
# for the "optimal" rate (eta ~ 1/(alpha t), large at first): small inputs, larger alpha
X_SMALL, Y_SMALL, _ = _make_data(seed=1, scale=0.3)


# ============================================================================ schedules
def _sched(name, eta0=0.05):
    """(estimator kwargs, naive schedule) for a named schedule."""
    N = naive
    S = schedules
    table = {
        "constant": (dict(learning_rate="constant"), (partial(N.lr_constant, eta0=eta0), "update")),
        "adaptive": (dict(learning_rate="adaptive"), (partial(N.lr_constant, eta0=eta0), "update")),
        "invscaling": (dict(learning_rate="invscaling", power_t=0.3),
                       (partial(N.lr_invscaling, eta0=eta0, power_t=0.3), "update")),
        "step": (dict(learning_rate=S.Step(2, gamma=0.5)),
                 (partial(N.lr_step, eta0=eta0, step_size=2, gamma=0.5), "epoch")),
        "multistep": (dict(learning_rate=S.MultiStep([1, 3], gamma=0.5)),
                      (partial(N.lr_multistep, eta0=eta0, milestones=[1, 3], gamma=0.5),
                       "epoch")),
        "exp-update": (dict(learning_rate=S.Exponential(0.99, unit="update")),
                       (partial(N.lr_exponential, eta0=eta0, gamma=0.99), "update")),
        "cosine": (dict(learning_rate=S.Cosine(T_max=4, eta_min=0.001)),
                   (partial(N.lr_cosine, eta0=eta0, T_max=4, eta_min=0.001), "epoch")),
        "sgdr": (dict(learning_rate=S.CosineWarmRestarts(T_0=1, T_mult=2)),
                 (partial(N.lr_cosine_warm_restarts, eta0=eta0, T_0=1, T_mult=2), "epoch")),
        "onecycle": (dict(learning_rate=S.OneCycle(total_steps=25)),
                     (partial(N.lr_onecycle, eta0=eta0, total_steps=25), "update")),
        "invsqrt": (dict(learning_rate=S.InverseSqrt(warmup_steps=4)),
                    (partial(N.lr_inverse_sqrt, eta0=eta0, warmup_steps=4), "update")),
        "warmup": (dict(learning_rate=S.Warmup(S.InverseScaling(power_t=0.5), 3,
                                               start_factor=0.2)),
                   (partial(N.lr_warmup, inner=partial(N.lr_invscaling, eta0=eta0,
                                                       power_t=0.5),
                            warmup_steps=3, start_factor=0.2), "update")),
        "constant-lr": (dict(learning_rate=S.Constant(lr=0.02)),
                        (partial(N.lr_constant, eta0=0.02), "update")),
        # warm-up for 2 epochs, then a cosine restarted at the milestone
        "sequential": (dict(learning_rate=S.Sequential(
            [S.Warmup(S.Constant(unit="epoch"), 2, start_factor=0.2), S.Cosine(T_max=3)],
            milestones=[2])),
            (partial(N.lr_sequential, milestones=[2], parts=[
                partial(N.lr_warmup, inner=partial(N.lr_constant, eta0=eta0),
                        warmup_steps=2, start_factor=0.2),
                partial(N.lr_cosine, eta0=eta0, T_max=3)]), "epoch")),
        # three segments counted in updates, the last with its own rate, behind a warm-up
        "sequential-update": (dict(learning_rate=S.Warmup(S.Sequential(
            [S.InverseScaling(power_t=0.5), S.Exponential(0.9, unit="update"),
             S.Constant(lr=0.01)], milestones=[6, 20]), 3, start_factor=0.1)),
            (partial(N.lr_warmup, warmup_steps=3, start_factor=0.1, inner=partial(
                N.lr_sequential, milestones=[6, 20], parts=[
                    partial(N.lr_invscaling, eta0=eta0, power_t=0.5),
                    partial(N.lr_exponential, eta0=eta0, gamma=0.9),
                    partial(N.lr_constant, eta0=0.01)])), "update")),
        "lambda": (dict(learning_rate=S.Lambda(_lambda_factor)),
                   (partial(N.lr_lambda, eta0=eta0, fn=_lambda_factor), "epoch")),
    }
    if name == "default":  # learning_rate and eta0 left at None: the optimizer's defaults
        return {}, None
    est, nv = table[name]
    return dict(est, eta0=eta0), nv


def _lambda_factor(epoch):
    """A LambdaLR-style multiplier: 0 in the first epoch (the rate 0 must hold too)."""
    return 0.0 if epoch == 0 else 0.8 ** epoch


# ================================================================================ cases
# keyword arguments that have the same name and meaning in both
SHARED = ("batch_size", "loss", "epsilon", "penalty", "alpha", "l1_ratio", "fit_intercept",
          "clip_norm", "clip_value", "batch_norm", "bn_momentum", "bn_eps", "average")


class Case:
    def __init__(self, id, *, opt="sgd", sched="constant", eta0=0.05, data="default",
                 sample_weight=False, coef_init=None, intercept_init=None, **kw):
        self.id = id
        self.opt = opt
        self.sched = sched
        self.eta0 = eta0
        self.data = data
        self.sample_weight = sample_weight
        self.coef_init = coef_init
        self.intercept_init = intercept_init
        kw.setdefault("alpha", 1e-3)
        self.kw = kw

    def xy(self):
        if self.data == "small":
            return X_SMALL, Y_SMALL
        return X, Y

    def estimator(self, k):
        if self.sched == "optimal":
            est_sched = dict(learning_rate="optimal", eta0=self.eta0)
        else:
            est_sched, _ = _sched(self.sched, self.eta0)
        if isinstance(self.opt, str):
            optimizer = self.opt  # the string form ("nesterov" included)
        else:
            name, given = self.opt
            optimizer = OPT_CLASSES[name](**given)
        return FastSGDRegressor(shuffle=False, max_iter=k, tol=None, optimizer=optimizer,
                                **est_sched, **self.kw)

    def naive_schedule(self):
        if self.sched == "optimal":
            return (partial(naive.lr_optimal, alpha=self.kw["alpha"],
                            loss=self.kw.get("loss", "squared_error"),
                            epsilon=self.kw.get("epsilon", 0.1)), "update")
        return _sched(self.sched, self.eta0)[1]

    def fit_kw(self):
        kw = {}
        if self.sample_weight:
            kw["sample_weight"] = SW
        if self.coef_init is not None:
            kw["coef_init"] = self.coef_init
        if self.intercept_init is not None:
            kw["intercept_init"] = self.intercept_init
        return kw


def _fit_fast(case, k, Xf, y):
    est = case.estimator(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xf, y, **case.fit_kw())
    return est


def _fit_naive(case, k, Xf, y):
    kw = {key: case.kw[key] for key in SHARED if key in case.kw}
    return naive.naive_fit(np.asarray(Xf, dtype=np.float64), y, n_epochs=k,
                           optimizer=case.opt, schedule=case.naive_schedule(),
                           **kw, **case.fit_kw())


def _check(est, ref, k, rtol, atol):
    assert_allclose(est.coef_, ref["coef"], rtol=rtol, atol=atol, err_msg="coef_")
    assert_allclose(est.intercept_, [ref["intercept"]], rtol=rtol, atol=atol,
                    err_msg="intercept_")
    assert est.n_iter_ == k
    assert est.t_ == ref["t"]
    assert_allclose(est.loss_curve_, ref["loss_curve"], rtol=max(rtol, 1e-12), atol=atol,
                    err_msg="loss_curve_")
    assert_allclose(est.lr_curve_, ref["lr_curve"], rtol=1e-12, atol=0, err_msg="lr_curve_")


# --- the general path: every batch mode x every optimizer, schedules rotating ----------
BATCH_MODES = [1, 7, 32, "full"]
OPTS = [
    ("sgd", {"weight_decay": 0.01}),  # batch_size=1 with weight decay: general path
    "momentum",
    "nesterov",
    ("momentum", {"momentum": 0.5, "dampening": 0.2}),
    "adagrad",
    ("adagrad", {"lr_decay": 0.05, "initial_accumulator_value": 0.1}),
    "rmsprop",
    ("rmsprop", {"centered": True, "momentum": 0.5}),
    ("adadelta", {}),
    "adam",
    ("adam", {"amsgrad": True, "weight_decay": 0.01}),
    "adamw",
    ("adamw", {"weight_decay": 0.1, "amsgrad": True}),
]
SCHEDS = ["constant", "invscaling", "step", "cosine", "onecycle", "warmup", "exp-update",
          "multistep", "sgdr", "invsqrt", "constant-lr", "adaptive"]


def _opt_id(opt):
    if isinstance(opt, str):
        return opt
    return opt[0] + "".join(f"-{k}={v}" for k, v in opt[1].items())


def _grid_cases():
    cases = []
    i = 0
    for bs in BATCH_MODES:
        for opt in OPTS:
            if bs != 1 or not isinstance(opt, str) or opt != "sgd":
                sched = SCHEDS[i % len(SCHEDS)]
                eta0 = 1.0 if _opt_id(opt).startswith("adadelta") else 0.05
                cases.append(Case(f"bs{bs}-{_opt_id(opt)}-{sched}", opt=opt, sched=sched,
                                  eta0=eta0, batch_size=bs))
                i += 1
    return cases


FEATURE_CASES = [
    # plain SGD outside scikit-learn's algorithm: minibatches
    Case("bs7-sgd-l2", batch_size=7, penalty="l2", alpha=0.01),
    Case("bs32-sgd-l1", batch_size=32, penalty="l1", alpha=0.01, sched="invscaling"),
    Case("full-sgd-elasticnet", batch_size="full", penalty="elasticnet", alpha=0.02,
         l1_ratio=0.4, eta0=0.1),
    Case("none-batch-sgd", batch_size=None, penalty=None, eta0=0.1),
    Case("bs7-adam-l1", batch_size=7, opt="adam", penalty="l1", alpha=0.01),
    Case("bs1-momentum-elasticnet", batch_size=1, opt="momentum", penalty="elasticnet",
         alpha=0.01, l1_ratio=0.7, eta0=0.01),
    # clipping (batch_size=1 + sgd + clipping: general path)
    Case("bs1-sgd-clipnorm", batch_size=1, clip_norm=0.5),
    Case("bs1-sgd-clipvalue", batch_size=1, clip_value=0.2, sched="invscaling"),
    Case("bs7-adam-clipnorm", batch_size=7, opt="adam", clip_norm=0.3),
    Case("bs32-momentum-clipboth", batch_size=32, opt="momentum", clip_value=0.5,
         clip_norm=0.7),
    Case("full-sgd-clipvalue", batch_size="full", clip_value=0.05, eta0=0.3),
    # batch norm: per sample (EW stats), minibatches incl. a last batch of one row (13),
    # a partial last batch (32), full batch
    Case("bs1-sgd-bn", batch_size=1, batch_norm=True, eta0=0.02),
    Case("bs7-adam-bn", batch_size=7, opt="adam", batch_norm=True),
    Case("bs13-momentum-bn", batch_size=13, opt="momentum", batch_norm=True, eta0=0.02),
    Case("bs13-sgd-bn-mom", batch_size=13, batch_norm=True, bn_momentum=0.5, bn_eps=1e-3),
    Case("bs32-rmsprop-bn-l2", batch_size=32, opt="rmsprop", batch_norm=True,
         penalty="l2", alpha=0.05),
    Case("full-sgd-bn", batch_size="full", batch_norm=True, eta0=0.3, sched="cosine"),
    Case("bs7-sgd-bn-clip-avg", batch_size=7, batch_norm=True, clip_norm=0.5, average=True),
    Case("bs1-adam-bn-sw", batch_size=1, opt="adam", batch_norm=True, sample_weight=True,
         eta0=0.01),
    # averaging
    Case("bs7-sgd-avg", batch_size=7, average=True),
    Case("bs7-adam-avg10", batch_size=7, opt="adam", average=10),
    Case("bs1-adam-avg50", batch_size=1, opt="adam", average=50, eta0=0.01),
    Case("full-momentum-avg3", batch_size="full", opt="momentum", average=3, eta0=0.05),
    Case("bs32-sgd-avg-late", batch_size=32, average=1000),  # never reached
    # sample weights
    Case("bs7-sgd-sw", batch_size=7, sample_weight=True),
    Case("bs1-rmsprop-sw", batch_size=1, opt="rmsprop", sample_weight=True, eta0=0.01),
    Case("full-adam-sw-huber", batch_size="full", opt="adam", sample_weight=True,
         loss="huber", epsilon=0.5),
    # no intercept, initial values
    Case("bs7-adam-nointercept", batch_size=7, opt="adam", fit_intercept=False),
    Case("bs1-adagrad-nointercept-init", batch_size=1, opt="adagrad", fit_intercept=False,
         intercept_init=0.7, coef_init=np.linspace(-1, 1, 5)),
    Case("bs32-sgd-nointercept-clip", batch_size=32, fit_intercept=False, clip_norm=0.2),
    Case("bs7-momentum-init", batch_size=7, opt="momentum", coef_init=np.ones(5),
         intercept_init=-0.3),
    # losses
    Case("bs7-sgd-huber", batch_size=7, loss="huber", epsilon=0.3),
    Case("bs7-adam-epsins", batch_size=7, opt="adam", loss="epsilon_insensitive",
         epsilon=0.2),
    Case("bs32-sgd-sqepsins", batch_size=32, loss="squared_epsilon_insensitive",
         epsilon=0.2),
    Case("bs1-nesterov-huber-sw", batch_size=1, opt="nesterov", loss="huber",
         sample_weight=True, eta0=0.01),
    # combined and host-evaluated schedules
    Case("bs7-adam-sequential", batch_size=7, opt="adam", sched="sequential"),
    Case("bs7-momentum-sequential-update", batch_size=7, opt="momentum",
         sched="sequential-update"),
    Case("bs32-rmsprop-lambda", batch_size=32, opt="rmsprop", sched="lambda", eta0=0.01),
    Case("full-sgd-lambda", batch_size="full", sched="lambda", eta0=0.2),
    # the rate each optimizer gets by default (torch's lr, constant; invscaling for sgd)
    Case("bs7-adam-default", batch_size=7, opt="adam", sched="default"),
    Case("bs7-adadelta-default", batch_size=7, opt=("adadelta", {}), sched="default"),
    Case("full-nesterov-default", batch_size="full", opt="nesterov", sched="default"),
    Case("bs13-adagrad-default", batch_size=13, opt="adagrad", sched="default"),
    Case("bs7-sgd-default", batch_size=7, sched="default"),
    # scikit-learn's "optimal" rate in the general path
    Case("bs7-sgd-optimal", batch_size=7, sched="optimal", alpha=0.5, data="small"),
    Case("bs1-adam-optimal-huber", batch_size=1, opt="adam", sched="optimal", alpha=0.5,
         loss="huber", data="small"),
]

ALL_CASES = _grid_cases() + FEATURE_CASES


@pytest.mark.parametrize("k", EPOCHS)
@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_general_path_vs_naive(case, k):
    Xf, y = case.xy()
    est = _fit_fast(case, k, Xf, y)
    ref = _fit_naive(case, k, Xf, y)
    _check(est, ref, k, RTOL, ATOL)
    assert_allclose(est.grad_norm_curve_, ref["grad_norm_curve"], rtol=1e-12,
                    err_msg="grad_norm_curve_")
    assert est.optimizer_state_["step"] == ref["optimizer_steps"]
    if case.kw.get("batch_norm"):
        assert_allclose(est.bn_running_mean_, ref["bn_mean"], rtol=1e-12, atol=ATOL)
        assert_allclose(est.bn_running_var_, ref["bn_var"], rtol=1e-12, atol=ATOL)


FLOAT32_CASES = [c for c in ALL_CASES
                 if c.id in ("bs7-adam-bn", "bs1-momentum-elasticnet", "full-sgd-clipvalue",
                             "bs32-momentum-clipboth", "bs7-sgd-avg", "bs1-rmsprop-sw",
                             "bs13-momentum-bn", "bs7-momentum-init")]


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("case", FLOAT32_CASES, ids=[c.id for c in FLOAT32_CASES])
def test_general_path_float32_vs_naive(case, k):
    Xf, y = case.xy()
    X32 = Xf.astype(np.float32)
    y32 = y.astype(np.float32)
    est = _fit_fast(case, k, X32, y32)
    # parameters and state are float64 inside; only X (and y) are float32
    ref = _fit_naive(case, k, X32.astype(np.float64), y32.astype(np.float64))
    assert est.coef_.dtype == np.float32 and est.intercept_.dtype == np.float32
    # float64 inside, one rounding to float32 at the end: far below the 1e-5 asked for
    assert_allclose(est.coef_, ref["coef"], rtol=1e-6, atol=1e-7)
    assert_allclose(est.intercept_, [ref["intercept"]], rtol=1e-6, atol=1e-7)
    # the histories are float64 sums over float32 inputs: float64 round-off only
    assert_allclose(est.loss_curve_, ref["loss_curve"], rtol=1e-12)


def test_fortran_ordered_X_same_result():
    case = Case("f-order", batch_size=7, opt="adam", batch_norm=True)
    est_c = _fit_fast(case, 2, X, Y)
    est_f = _fit_fast(case, 2, np.asfortranarray(X), Y)
    ref = _fit_naive(case, 2, X, Y)
    assert_allclose(est_f.coef_, ref["coef"], rtol=RTOL, atol=ATOL)
    assert_allclose(est_f.coef_, est_c.coef_, rtol=RTOL, atol=ATOL)


# ======================================================= scikit-learn's per-sample path
PLAIN_CASES = []
for _loss in naive.LOSSES:
    for _pen in (None, "l2", "l1", "elasticnet"):
        PLAIN_CASES.append(Case(f"plain-{_loss}-{_pen}", loss=_loss, penalty=_pen,
                                alpha=0.01, l1_ratio=0.3, sched="invscaling"))
PLAIN_CASES += [
    Case("plain-avg", average=True, penalty="l2", alpha=0.01),
    Case("plain-avg7-l1", average=7, penalty="l1", alpha=0.01, sched="invscaling"),
    Case("plain-avg-elasticnet-sw", average=True, penalty="elasticnet", alpha=0.02,
         l1_ratio=0.5, sample_weight=True),
    Case("plain-avg60-huber", average=60, loss="huber", epsilon=0.3),
    Case("plain-sw-l2", sample_weight=True, penalty="l2", alpha=0.05),
    Case("plain-nointercept", fit_intercept=False, penalty="elasticnet", alpha=0.01),
    Case("plain-nointercept-init", fit_intercept=False, intercept_init=0.4,
         coef_init=np.linspace(-1, 1, 5), penalty="l1", alpha=0.01),
    Case("plain-init", coef_init=np.ones(5), intercept_init=2.0, penalty="l2"),
    Case("plain-optimal", sched="optimal", alpha=0.5, data="small"),
    Case("plain-optimal-l1-avg", sched="optimal", alpha=0.5, penalty="l1", average=True,
         data="small"),
    Case("plain-adaptive", sched="adaptive"),
    Case("plain-cosine", sched="cosine", penalty="elasticnet", alpha=0.01),
    Case("plain-onecycle", sched="onecycle", eta0=0.05),
    Case("plain-warmup", sched="warmup", penalty="l1", alpha=0.01),
    Case("plain-sgd-object", opt=("sgd", {}), penalty="l2"),  # SGD() object, no decay
    Case("plain-default", sched="default", penalty="l2"),
    Case("plain-lambda", sched="lambda", penalty="l1", alpha=0.01),
    Case("plain-sequential-update", sched="sequential-update", penalty="l2"),
]


def _fit_naive_plain(case, k, Xf, y):
    kw = {key: case.kw[key] for key in ("loss", "epsilon", "penalty", "alpha", "l1_ratio",
                                        "fit_intercept", "average") if key in case.kw}
    return naive.naive_sklearn_fit(np.asarray(Xf, dtype=np.float64), y, n_epochs=k,
                                   schedule=case.naive_schedule(), **kw, **case.fit_kw())


@pytest.mark.parametrize("k", EPOCHS)
@pytest.mark.parametrize("case", PLAIN_CASES, ids=[c.id for c in PLAIN_CASES])
def test_sklearn_algorithm_vs_naive(case, k):
    Xf, y = case.xy()
    est = _fit_fast(case, k, Xf, y)
    ref = _fit_naive_plain(case, k, Xf, y)
    _check(est, ref, k, RTOL_PLAIN, 1e-12)
    if case.kw.get("penalty", "l2") in (None, "l2"):
        assert_allclose(est.grad_norm_curve_, ref["grad_norm_curve"], rtol=RTOL_PLAIN,
                        err_msg="grad_norm_curve_")


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("case", PLAIN_CASES[1::3], ids=[c.id for c in PLAIN_CASES[1::3]])
def test_sklearn_algorithm_float32_vs_naive(case, k):
    Xf, y = case.xy()
    X32 = Xf.astype(np.float32)
    y32 = y.astype(np.float32)
    est = _fit_fast(case, k, X32, y32)
    ref = _fit_naive_plain(case, k, X32.astype(np.float64), y32.astype(np.float64))
    assert est.coef_.dtype == np.float32 and est.intercept_.dtype == np.float32
    assert_allclose(est.coef_, ref["coef"], rtol=1e-6, atol=1e-7)
    assert_allclose(est.intercept_, [ref["intercept"]], rtol=1e-6, atol=1e-7)
    assert_allclose(est.loss_curve_, ref["loss_curve"], rtol=1e-10)


SK_SELF_CHECK = [c for c in PLAIN_CASES if c.sched in ("invscaling", "constant", "optimal")
                 and c.coef_init is None]


@pytest.mark.parametrize("case", SK_SELF_CHECK, ids=[c.id for c in SK_SELF_CHECK])
def test_naive_sklearn_algorithm_vs_sklearn(case):
    """Self-check of the reference against scikit-learn itself (3 epochs)."""
    Xf, y = case.xy()
    est_kw = case.estimator(3).get_params()
    sk_kw = {key: est_kw[key] for key in
             ("loss", "penalty", "alpha", "l1_ratio", "fit_intercept", "epsilon",
              "learning_rate", "eta0", "power_t", "average")}
    sk = SGDRegressor(shuffle=False, max_iter=3, tol=None, **sk_kw)
    sk.fit(Xf, y, **case.fit_kw())
    ref = _fit_naive_plain(case, 3, Xf, y)
    assert_allclose(ref["coef"], sk.coef_, rtol=1e-10, atol=1e-13)
    assert_allclose(ref["intercept"], sk.intercept_[0], rtol=1e-10, atol=1e-13)
    assert ref["t"] == sk.t_


# ================================================ stopping rule (tol) on the naive objective
STOP_CASES = [
    Case("stop-bs7-adam", batch_size=7, opt="adam", penalty="l1", alpha=0.01),
    Case("stop-full-sgd", batch_size="full", eta0=0.3, penalty="elasticnet", alpha=0.01),
    Case("stop-bs1-momentum-bn", batch_size=1, opt="momentum", batch_norm=True, eta0=0.01),
    Case("stop-bs13-rmsprop-sw", batch_size=13, opt="rmsprop", sample_weight=True),
    Case("stop-plain-l2", penalty="l2", alpha=0.01, sched="invscaling"),
    Case("stop-plain-none-huber", penalty=None, loss="huber", epsilon=0.3),
]


@pytest.mark.parametrize("tol,n_iter_no_change", [(1e-3, 2), (1e-2, 1), (0.0, 3)])
@pytest.mark.parametrize("case", STOP_CASES, ids=[c.id for c in STOP_CASES])
def test_stopping_epoch_vs_naive_objective(case, tol, n_iter_no_change):
    """n_iter_ is where scikit-learn's rule stops on the naive per-epoch objective."""
    Xf, y = case.xy()
    max_iter = 30
    plain = case.id.startswith("stop-plain")
    fit_naive = _fit_naive_plain if plain else _fit_naive
    ref = fit_naive(case, max_iter, Xf, y)
    obj = ref["objective_curve"]
    stop = naive.stopping_epoch(obj, tol, n_iter_no_change)
    # no objective within round-off of a threshold (the outcome would be ill-defined)
    best = np.minimum.accumulate(np.concatenate([[np.inf], obj[:-1]]))
    margin = np.abs(obj[1:stop] - (best[1:stop] - tol))
    assert np.all(margin > 1e-9 * np.abs(obj[1:stop]))
    est = case.estimator(max_iter).set_params(tol=tol, n_iter_no_change=n_iter_no_change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xf, y, **case.fit_kw())
    assert est.n_iter_ == stop
    ref_stop = fit_naive(case, stop, Xf, y)
    rtol = RTOL_PLAIN if plain else RTOL
    assert_allclose(est.coef_, ref_stop["coef"], rtol=rtol, atol=1e-13)
    assert_allclose(est.intercept_, [ref_stop["intercept"]], rtol=rtol, atol=1e-13)


# ==================================================== "adaptive": eta / 5 on no improvement
ADAPTIVE_CASES = [
    Case("adaptive-bs7-sgd", batch_size=7, sched="adaptive", eta0=0.1),
    Case("adaptive-full-momentum", batch_size="full", opt="momentum", sched="adaptive",
         eta0=0.1, penalty="l1", alpha=0.01),
    Case("adaptive-plain", sched="adaptive", eta0=0.02, penalty="l2", alpha=0.01),
]


@pytest.mark.parametrize("case", ADAPTIVE_CASES, ids=[c.id for c in ADAPTIVE_CASES])
def test_adaptive_rate_vs_naive(case):
    """Epoch e runs at eta_e; eta is divided by 5 after n_iter_no_change epochs without
    improvement of the objective (naive), training stops once eta <= 1e-6 and again no
    improvement."""
    Xf, y = case.xy()
    tol, n_no_change, max_iter = 0.02, 1, 25
    plain = case.id.endswith("plain")
    fit_naive = _fit_naive_plain if plain else _fit_naive
    lrs = [case.eta0]

    def run(n):
        c = Case(case.id, opt=case.opt, sched="constant", eta0=case.eta0, **case.kw)
        c.naive_schedule = lambda: ((lambda t: lrs[t]), "epoch")
        return fit_naive(c, n, Xf, y)

    best, count, n_epochs = np.inf, 0, max_iter
    for e in range(max_iter):
        obj = run(e + 1)["objective_curve"][e]
        count = count + 1 if obj > best - tol else 0
        best = min(best, obj)
        if count >= n_no_change:
            if lrs[e] > 1e-6:
                lrs.append(lrs[e] / 5.0)
                count = 0
                continue
            n_epochs = e + 1
            break
        lrs.append(lrs[e])
    assert len(set(lrs[:n_epochs])) > 2  # the rate was divided several times
    est = case.estimator(max_iter).set_params(tol=tol, n_iter_no_change=n_no_change)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xf, y)
    assert est.n_iter_ == n_epochs
    assert_allclose(est.lr_curve_, lrs[:n_epochs], rtol=1e-14)
    ref = run(n_epochs)
    rtol = RTOL_PLAIN if plain else RTOL
    assert_allclose(est.coef_, ref["coef"], rtol=rtol, atol=1e-13)
    assert_allclose(est.intercept_, [ref["intercept"]], rtol=rtol, atol=1e-13)


# ================================================== early stopping: the training rows
ES_CASES = [
    Case("es-bs7-adam", batch_size=7, opt="adam", sample_weight=True),
    Case("es-bs1-sgd-bn", batch_size=1, batch_norm=True, eta0=0.02),
    Case("es-full-momentum", batch_size="full", opt="momentum", eta0=0.1),
]


@pytest.mark.parametrize("case", ES_CASES, ids=[c.id for c in ES_CASES])
def test_early_stopping_split_and_scores_vs_naive(case):
    """With early_stopping=True (tol=None: no stop) training sees the ShuffleSplit
    training rows in increasing order; validation_scores_[e] is the weighted R² of the
    parameters after epoch e."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import ShuffleSplit

    Xf, y = case.xy()
    k = 3
    n = Xf.shape[0]
    idx_train, idx_val = next(ShuffleSplit(test_size=0.2, random_state=7).split(
        np.zeros((n, 1)), y))
    tr, va = np.sort(idx_train), np.sort(idx_val)
    est = case.estimator(k).set_params(early_stopping=True, validation_fraction=0.2,
                                       random_state=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(Xf, y, **case.fit_kw())
    sw = SW if case.sample_weight else np.ones(n)
    scores = []
    for e in range(1, k + 1):
        kw = {key: case.kw[key] for key in SHARED if key in case.kw}
        ref = naive.naive_fit(Xf[tr], y[tr], n_epochs=e, optimizer=case.opt,
                              schedule=case.naive_schedule(), sample_weight=sw[tr], **kw)
        scores.append(r2_score(y[va], Xf[va] @ ref["coef"] + ref["intercept"],
                               sample_weight=sw[va]))
    assert_allclose(est.coef_, ref["coef"], rtol=RTOL, atol=ATOL)
    assert_allclose(est.intercept_, [ref["intercept"]], rtol=RTOL, atol=ATOL)
    assert_allclose(est.validation_scores_, scores, rtol=1e-10)
