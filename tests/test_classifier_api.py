"""FastSGDClassifier as a scikit-learn estimator: API contract, validation, state."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastgd import FastSGDClassifier
from fastgd._program import resolve_rate
from fastgd.optim import resolve as resolve_optimizer

# ------------------------------------------------------------------ data
_X3, Y3 = make_classification(n_samples=150, n_features=6, n_informative=4,
                              n_redundant=0, n_classes=3, n_clusters_per_class=1,
                              random_state=0)
X3 = StandardScaler().fit_transform(_X3)
_X2, Y2 = make_classification(n_samples=120, n_features=5, random_state=1)
X2 = StandardScaler().fit_transform(_X2)

MODES = {
    "plain": dict(),
    "plain_l1_avg": dict(penalty="elasticnet", average=5, loss="log_loss"),
    "adaptive": dict(learning_rate="adaptive", eta0=0.1, loss="modified_huber"),
    "adam_minibatch": dict(batch_size=16, optimizer="adam", eta0=0.01,
                           loss="log_loss"),
    "momentum_full": dict(batch_size="full", optimizer="momentum",
                          learning_rate="constant", loss="squared_hinge"),
    "multinomial": dict(loss="log_loss", multi_class="multinomial", batch_size=8),
    "batch_norm": dict(batch_size=16, batch_norm=True),
    "rmsprop_clip": dict(clip_norm=1.0, optimizer="rmsprop", eta0=0.01),
}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ sklearn checks
ESTIMATORS = [
    FastSGDClassifier(),
    # the decaying "optimal" rate (Adam's default is a constant 1e-3): on the unscaled,
    # 1000:1e-4 class-weighted blobs of check_class_weight_classifiers, the constant
    # rate is stopped by tol (which watches the unweighted objective) before the
    # weighted fit has moved far enough
    FastSGDClassifier(loss="log_loss", batch_size=16, optimizer="adam",
                      learning_rate="optimal"),
    FastSGDClassifier(loss="log_loss", multi_class="multinomial", batch_size=8),
    FastSGDClassifier(loss="modified_huber", batch_size="full", optimizer="momentum",
                      learning_rate="constant"),
    FastSGDClassifier(batch_norm=True, batch_size=16),
]


def _expected_failed_checks(estimator):
    failed = {}
    if estimator.batch_size == "full" and estimator.learning_rate == "constant":
        # make_blobs with cluster_std=20 (unscaled), class_weight {0: 1000, 1: 1e-4},
        # eta0=0.01 with momentum, full batch: scikit-learn's stopping rule watches the
        # objective *without* sample/class weights (docs/semantics.md). It is smallest
        # at epoch 1 (w = 0: 1.0, then ~1e3 as the weighted fit sacrifices class 1),
        # so tol=1e-3 stops training after n_iter_no_change + 1 = 21 epochs, at a model
        # still oscillating (predicts class 0 for 70% < 87%). With tol=None the same
        # estimator reaches 100%. Plain per-sample SGD passes this check.
        failed["check_class_weight_classifiers"] = (
            "unweighted stopping objective (scikit-learn's rule) stops full-batch GD "
            "after 21 epochs with class weights 1000/1e-4 on unscaled data."
        )
    return {
        **failed,
        # as scikit-learn's own SGDClassifier (sklearn/utils/_test_common/
        # instance_generator.py): a weight of 2 is not a repeated row for
        # stochastic/minibatch training (updates per epoch, batch composition, shuffled
        # order and the unweighted convergence objective all change); batch gradients
        # are normalized by the number of rows, not by the sum of weights.
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is not equivalent to removing/repeating samples."
        ),
        "check_sample_weight_equivalence_on_sparse_data": (
            "sample_weight is not equivalent to removing/repeating samples."
        ),
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


# ------------------------------------------------------------------ invalid parameters
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("name, value", [
    ("multi_class", "foo"),
    ("multi_class", "auto"),
    ("loss", "foo"),
    ("class_weight", "foo"),
    ("class_weight", 3),
    ("n_jobs", "two"),
    ("batch_size", 0),
    ("optimizer", "foo"),
    ("learning_rate", "foo"),
])
def test_invalid_parameters(name, value, method):
    est = FastSGDClassifier(**{name: value})
    kw = {"classes": np.unique(Y3)} if method == "partial_fit" else {}
    with pytest.raises((InvalidParameterError, ValueError), match=rf"\b{name}\b"):
        getattr(est, method)(X3, Y3, **kw)


@pytest.mark.parametrize("loss", ["hinge", "modified_huber", "squared_error", "perceptron"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_multinomial_requires_log_loss(loss, method, n_classes):
    X, y = (X3, Y3) if n_classes == 3 else (X2, Y2)
    est = FastSGDClassifier(loss=loss, multi_class="multinomial")
    kw = {"classes": np.unique(y)} if method == "partial_fit" else {}
    with pytest.raises(ValueError, match=r"multinomial.*log_loss|log_loss.*multinomial"):
        getattr(est, method)(X, y, **kw)


def test_partial_fit_balanced_class_weight_raises_as_sklearn():
    for est_cls in (FastSGDClassifier, SGDClassifier):
        with pytest.raises(ValueError, match=r"balanced.*partial_fit|partial_fit.*balanced"):
            est_cls(class_weight="balanced").partial_fit(X3, Y3, classes=np.unique(Y3))
    # fit accepts it
    FastSGDClassifier(class_weight="balanced", max_iter=5, tol=None).fit(X3, Y3)


def test_partial_fit_requires_classes_on_first_call():
    for est_cls in (FastSGDClassifier, SGDClassifier):
        with pytest.raises(ValueError, match="classes"):
            est_cls().partial_fit(X3, Y3)
    est = FastSGDClassifier().partial_fit(X3, Y3, classes=np.unique(Y3))
    est.partial_fit(X3, Y3)  # not needed afterwards
    est.partial_fit(X3, Y3, classes=np.unique(Y3))  # the same classes again is fine
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X3, Y3, classes=np.array([0, 1, 2, 3]))


def test_partial_fit_unknown_label_raises():
    est = FastSGDClassifier().partial_fit(X3[Y3 < 2], Y3[Y3 < 2], classes=[0, 1])
    with pytest.raises(ValueError):
        est.partial_fit(X3, Y3)


def test_partial_fit_with_classes_absent_from_the_first_batch():
    est = FastSGDClassifier(random_state=0)
    est.partial_fit(X3[Y3 == 0], Y3[Y3 == 0], classes=[0, 1, 2])
    assert_array_equal(est.classes_, [0, 1, 2])
    assert est.coef_.shape == (3, X3.shape[1])
    est.partial_fit(X3, Y3)
    assert est.coef_.shape == (3, X3.shape[1])


def test_one_class_raises():
    with pytest.raises(ValueError, match="class"):
        FastSGDClassifier().fit(X3, np.zeros(X3.shape[0]))


def test_regression_targets_raise():
    with pytest.raises(ValueError, match="Unknown label type"):
        FastSGDClassifier().fit(X3, X3[:, 0])


def test_constructor_does_not_validate():
    est = FastSGDClassifier(multi_class="foo", loss="hinge", class_weight="x")
    assert est.get_params()["multi_class"] == "foo"


def test_defaults_as_sklearn():
    fast = FastSGDClassifier().get_params()
    sk = SGDClassifier().get_params()
    for name, value in sk.items():
        if name in ("learning_rate", "eta0"):
            # None: "what the optimizer expects", scikit-learn's values for "sgd"
            assert fast[name] is None, name
        else:
            assert fast[name] == value, name
    assert resolve_rate(FastSGDClassifier(), resolve_optimizer("sgd")) == (
        sk["learning_rate"], sk["eta0"])
    assert fast["multi_class"] == "ovr"
    assert fast["batch_size"] == 1
    assert fast["optimizer"] == "sgd"


def test_adam_defaults_to_torch_constant_rate_on_digits():
    """optimizer="adam" trains as torch.optim.Adam does: constant lr 1e-3 (not
    SGDClassifier's "optimal" rate, which starts at 10 and stopped at ~0.88 here)."""
    torch = pytest.importorskip("torch")
    import inspect

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=42)
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    clf = FastSGDClassifier(loss="log_loss", optimizer="adam", batch_size=32,
                            multi_class="multinomial", random_state=0).fit(X_tr, y_tr)
    torch_lr = inspect.signature(torch.optim.Adam).parameters["lr"].default
    assert clf.get_params()["learning_rate"] is None and clf.get_params()["eta0"] is None
    assert clf.lr_curve_ == [torch_lr] * clf.n_iter_
    assert clf.score(X_te, y_te) > 0.96
    # the same fit with scikit-learn's rate (the old default) falls short
    old = _quiet(clone(clf).set_params(learning_rate="optimal", eta0=0.01).fit, X_tr, y_tr)
    assert old.score(X_te, y_te) < 0.92


# ------------------------------------------------------------------ pickling
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("mode", [m for m in MODES])
def test_pickle_continues_partial_fit_bit_identically(mode, n_classes):
    X, y = (X3, Y3) if n_classes == 3 else (X2, Y2)
    params = dict(MODES[mode], random_state=0, shuffle=True)
    a = FastSGDClassifier(**params)
    a.partial_fit(X, y, classes=np.unique(y))
    a.partial_fit(X, y)
    b = pickle.loads(pickle.dumps(a))
    assert_array_equal(b.coef_, a.coef_)
    for est in (a, b):
        for _ in range(3):
            est.partial_fit(X, y)
    assert_array_equal(b.coef_, a.coef_)
    assert_array_equal(b.intercept_, a.intercept_)
    assert b.t_ == a.t_
    assert_array_equal(b.decision_function(X), a.decision_function(X))
    # and both equal an uninterrupted run
    c = FastSGDClassifier(**params)
    c.partial_fit(X, y, classes=np.unique(y))
    for _ in range(4):
        c.partial_fit(X, y)
    assert_array_equal(c.coef_, a.coef_)


def test_pickle_fitted_predicts_the_same():
    est = _quiet(FastSGDClassifier(loss="log_loss", random_state=0).fit, X3, Y3)
    clone_ = pickle.loads(pickle.dumps(est))
    assert_array_equal(clone_.predict_proba(X3), est.predict_proba(X3))
    assert_array_equal(clone_.predict(X3), est.predict(X3))


# ------------------------------------------------------------------ n_jobs
@pytest.mark.parametrize("n_jobs", [2, 3, -1])
@pytest.mark.parametrize("mode", [m for m in MODES if m != "multinomial"] +
                         ["early_stopping", "restore_best"])
def test_n_jobs_identical_results_ovr(mode, n_jobs):
    extra = {"early_stopping": dict(early_stopping=True, n_iter_no_change=3),
             "restore_best": dict(restore_best_weights=True, tol=None, max_iter=30,
                                  batch_size=4, optimizer="adam")}
    params = dict(MODES.get(mode, extra.get(mode)), random_state=0, max_iter=60)
    if mode in extra:
        params.update(extra[mode])
    one = _quiet(FastSGDClassifier(n_jobs=1, **params).fit, X3, Y3)
    many = _quiet(FastSGDClassifier(n_jobs=n_jobs, **params).fit, X3, Y3)
    if params.get("batch_size") == "full":
        # full batch: threads split the rows of the gradient sum, whose rounding then
        # depends on the thread count (identical for a given n_jobs: test_threads.py)
        assert_allclose(many.coef_, one.coef_, rtol=1e-10, atol=1e-13)
        assert many.n_iter_ == one.n_iter_
        return
    assert_array_equal(many.coef_, one.coef_)
    assert_array_equal(many.intercept_, one.intercept_)
    assert many.n_iter_ == one.n_iter_
    assert many.t_ == one.t_
    assert_allclose(many.loss_curve_, one.loss_curve_, rtol=1e-12)
    for name in ("lr_curve_", "grad_norm_curve_", "validation_scores_"):
        if hasattr(one, name):
            assert_allclose(getattr(many, name), getattr(one, name), rtol=1e-12,
                            err_msg=name)
    # partial_fit afterwards continues identically (state and shuffling stream)
    for est in (one, many):
        est.partial_fit(X3, Y3) if not params.get("early_stopping") else None
    assert_array_equal(many.coef_, one.coef_)


def test_n_jobs_identical_partial_fit_from_scratch():
    params = dict(random_state=3, loss="hinge", average=3)
    one = FastSGDClassifier(n_jobs=1, **params)
    many = FastSGDClassifier(n_jobs=2, **params)
    for est in (one, many):
        for k in range(4):
            est.partial_fit(X3, Y3, classes=[0, 1, 2])
    assert_array_equal(many.coef_, one.coef_)
    assert_array_equal(many.intercept_, one.intercept_)


# ------------------------------------------------------------------ reproducibility
@pytest.mark.parametrize("mode", list(MODES))
def test_random_state_reproducible(mode):
    params = dict(MODES[mode], max_iter=20, shuffle=True)
    a = _quiet(FastSGDClassifier(random_state=7, **params).fit, X3, Y3)
    b = _quiet(FastSGDClassifier(random_state=7, **params).fit, X3, Y3)
    assert_array_equal(a.coef_, b.coef_)
    assert_array_equal(a.intercept_, b.intercept_)
    c = _quiet(FastSGDClassifier(random_state=8, **params).fit, X3, Y3)
    if params.get("batch_size") == "full":
        assert_array_equal(a.coef_, c.coef_)  # full batch: rows always in order
    else:
        assert not np.array_equal(a.coef_, c.coef_)
    # a RandomState instance is accepted
    d = _quiet(FastSGDClassifier(random_state=np.random.RandomState(7), **params).fit,
               X3, Y3)
    assert np.isfinite(d.coef_).all()


def test_random_state_reproducible_early_stopping():
    params = dict(max_iter=50, early_stopping=True, n_iter_no_change=3, batch_size=8,
                  optimizer="adam", loss="log_loss", multi_class="multinomial")
    a = _quiet(FastSGDClassifier(random_state=1, **params).fit, X3, Y3)
    b = _quiet(FastSGDClassifier(random_state=1, **params).fit, X3, Y3)
    assert_array_equal(a.coef_, b.coef_)
    assert a.validation_scores_ == b.validation_scores_


def test_shuffle_false_ignores_random_state():
    params = dict(max_iter=5, tol=None, shuffle=False)
    a = FastSGDClassifier(random_state=1, **params).fit(X3, Y3)
    b = FastSGDClassifier(random_state=2, **params).fit(X3, Y3)
    assert_array_equal(a.coef_, b.coef_)


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize("mode", ["plain", "adam_minibatch", "multinomial"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_string_labels(mode, n_classes):
    X, y = (X3, Y3) if n_classes == 3 else (X2, Y2)
    names = np.array(["cat", "dog", "emu"])[:n_classes]
    ys = names[y]
    params = dict(MODES[mode], random_state=0, max_iter=20, tol=None)
    est = FastSGDClassifier(**params).fit(X, ys)
    ref = FastSGDClassifier(**params).fit(X, y)
    assert_array_equal(est.classes_, names)
    assert_array_equal(est.coef_, ref.coef_)
    pred = est.predict(X)
    assert pred.dtype == ys.dtype
    assert_array_equal(pred, names[ref.predict(X)])
    assert est.score(X, ys) == ref.score(X, y)
    # object arrays, and partial_fit with string classes
    est_obj = FastSGDClassifier(**params).fit(X, ys.astype(object))
    assert_array_equal(est_obj.coef_, ref.coef_)
    pf = FastSGDClassifier(**params)
    pf.partial_fit(X, ys, classes=names)
    assert set(pf.predict(X)) <= set(names)


def test_label_encoding_order_and_shapes():
    # classes_ sorted; binary coef_ (1, d), decision_function (n,) with positive =
    # classes_[1]; multiclass (K, d) and (n, K)
    y = np.where(Y2 == 1, 5, -3)
    est = FastSGDClassifier(random_state=0).fit(X2, y)
    assert_array_equal(est.classes_, [-3, 5])
    assert est.coef_.shape == (1, X2.shape[1])
    assert est.intercept_.shape == (1,)
    scores = est.decision_function(X2)
    assert scores.shape == (X2.shape[0],)
    assert_array_equal(est.predict(X2), np.where(scores > 0, 5, -3))
    est3 = _quiet(FastSGDClassifier(random_state=0).fit, X3, Y3)
    assert est3.coef_.shape == (3, X3.shape[1])
    assert est3.intercept_.shape == (3,)
    assert est3.decision_function(X3).shape == (X3.shape[0], 3)


# ------------------------------------------------------------------ predict_proba
@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "perceptron", "squared_error",
                                  "huber", "epsilon_insensitive",
                                  "squared_epsilon_insensitive"])
def test_predict_proba_unavailable(loss):
    for est_cls in (FastSGDClassifier, SGDClassifier):
        est = est_cls(loss=loss)
        assert not hasattr(est, "predict_proba")
        assert not hasattr(est, "predict_log_proba")
        _quiet(est.fit, X3, Y3)
        assert not hasattr(est, "predict_proba")
        with pytest.raises(AttributeError, match="predict_proba|probability"):
            est.predict_proba(X3)


@pytest.mark.parametrize("multi_class", ["ovr", "multinomial"])
@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_predict_proba_available(loss, multi_class):
    if multi_class == "multinomial" and loss != "log_loss":
        pytest.skip("multinomial is log_loss only")
    est = FastSGDClassifier(loss=loss, multi_class=multi_class, random_state=0)
    assert hasattr(est, "predict_proba")
    _quiet(est.fit, X3, Y3)
    proba = est.predict_proba(X3)
    assert proba.shape == (X3.shape[0], 3)
    assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    assert (proba >= 0).all()
    with np.errstate(divide="ignore"):
        assert_allclose(est.predict_log_proba(X3), np.log(proba), rtol=1e-12)
    # set_params switches availability
    est.set_params(loss="hinge")
    assert not hasattr(est, "predict_proba")


# ------------------------------------------------------------------ early stopping
@pytest.mark.parametrize("problem", ["binary", "multinomial"])
def test_early_stopping_scores_validation_accuracy(problem):
    X, y = (X2, Y2) if problem == "binary" else (X3, Y3)
    extra = dict(loss="log_loss", multi_class="multinomial", batch_size=8) \
        if problem == "multinomial" else {}
    est = FastSGDClassifier(early_stopping=True, validation_fraction=0.2, tol=None,
                            max_iter=10, random_state=0, **extra).fit(X, y)
    _, idx_val = next(StratifiedShuffleSplit(test_size=0.2, random_state=0).split(X, y))
    assert len(est.validation_scores_) == est.n_iter_ == 10
    assert_allclose(est.validation_scores_[-1], est.score(X[idx_val], y[idx_val]),
                    rtol=1e-12)


@pytest.mark.parametrize("class_weight", [None, {0: 5.0}])
@pytest.mark.parametrize("problem", ["binary", "multinomial"])
def test_early_stopping_sample_weight_validation_accuracy(problem, class_weight):
    # validation accuracy weighted by sample_weight only, as scikit-learn's
    # (est.score(X_val, y_val, sample_weight_val)): class weights shape training only
    X, y = (X2, Y2) if problem == "binary" else (X3, Y3)
    extra = dict(multi_class="multinomial", batch_size=8) \
        if problem == "multinomial" else {}
    sw = np.random.RandomState(0).uniform(0.1, 2.0, size=X.shape[0])
    est = FastSGDClassifier(early_stopping=True, validation_fraction=0.2, tol=None,
                            max_iter=6, random_state=0, loss="log_loss",
                            class_weight=class_weight, **extra).fit(
        X, y, sample_weight=sw)
    _, idx_val = next(StratifiedShuffleSplit(test_size=0.2, random_state=0).split(X, y))
    assert_allclose(est.validation_scores_[-1],
                    est.score(X[idx_val], y[idx_val], sample_weight=sw[idx_val]),
                    rtol=1e-12)


def test_partial_fit_with_early_stopping_raises():
    with pytest.raises(ValueError, match="early_stopping"):
        FastSGDClassifier(early_stopping=True).partial_fit(X3, Y3, classes=[0, 1, 2])


# ------------------------------------------------------------------ misc contract
@pytest.mark.parametrize("mode", list(MODES))
def test_histories_and_attributes(mode):
    est = _quiet(FastSGDClassifier(max_iter=30, random_state=0, **MODES[mode]).fit, X3, Y3)
    for name in ("loss_curve_", "lr_curve_", "grad_norm_curve_"):
        assert len(getattr(est, name)) == est.n_iter_, name
        assert np.isfinite(getattr(est, name)).all(), name
    assert est.n_features_in_ == X3.shape[1]
    assert est.t_ >= 1.0
    assert est.score(X3, Y3) > 0.7


@pytest.mark.parametrize("mode", list(MODES))
def test_float32_stays_float32(mode):
    X32 = X3.astype(np.float32)
    est = _quiet(FastSGDClassifier(max_iter=5, random_state=0, **MODES[mode]).fit, X32, Y3)
    assert est.coef_.dtype == np.float32
    assert est.intercept_.dtype == np.float32


@pytest.mark.parametrize("mode", list(MODES))
def test_never_mutates_inputs(mode):
    Xc, yc = X3.copy(), Y3.copy()
    sw = np.random.RandomState(0).uniform(0.5, 2.0, size=X3.shape[0])
    swc = sw.copy()
    _quiet(FastSGDClassifier(max_iter=5, random_state=0, **MODES[mode]).fit, Xc, yc,
           sample_weight=swc)
    assert_array_equal(Xc, X3)
    assert_array_equal(yc, Y3)
    assert_array_equal(swc, sw)


def test_warm_start_continues():
    params = dict(max_iter=3, tol=None, shuffle=False, warm_start=True, loss="log_loss",
                  learning_rate="constant", eta0=0.01)
    warm = FastSGDClassifier(**params).fit(X3, Y3)
    first = warm.coef_.copy(), warm.intercept_.copy()
    warm.fit(X3, Y3)
    explicit = FastSGDClassifier(**dict(params, warm_start=False)).fit(
        X3, Y3, coef_init=first[0], intercept_init=first[1])
    assert_allclose(warm.coef_, explicit.coef_, rtol=1e-12, atol=1e-15)


def test_coef_init_wrong_shape_raises():
    with pytest.raises(ValueError, match="coef_init"):
        FastSGDClassifier().fit(X3, Y3, coef_init=np.zeros(X3.shape[1]))
    with pytest.raises(ValueError, match="intercept_init"):
        FastSGDClassifier().fit(X3, Y3, intercept_init=np.zeros(2))


def test_clone_pipeline_grid_search():
    est = FastSGDClassifier(multi_class="multinomial", loss="log_loss", batch_size=16)
    c = clone(est)
    assert c.get_params() == est.get_params()
    pipe = make_pipeline(StandardScaler(), FastSGDClassifier(random_state=0))
    _quiet(pipe.fit, _X3 * 30 + 2, Y3)
    assert pipe.score(_X3 * 30 + 2, Y3) > 0.8
    grid = GridSearchCV(
        FastSGDClassifier(loss="log_loss", random_state=0, max_iter=30, batch_size=16,
                          optimizer="adam", eta0=0.01),
        {"multi_class": ["ovr", "multinomial"], "alpha": [1e-4, 1e-2]}, cv=3)
    _quiet(grid.fit, X3, Y3)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_score_ > 0.8


# ------------------------------------------------------------------ scikit-learn twin
@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("mode", list(MODES))
def test_to_sklearn_predicts_the_same(mode, n_classes):
    from sklearn.linear_model import LogisticRegression

    X, y = (X3, Y3) if n_classes == 3 else (X2, Y2)
    labels = np.array(["ant", "bee", "cat"])[y]  # string classes travel too
    est = _quiet(FastSGDClassifier(random_state=0, max_iter=20, **MODES[mode]).fit,
                 X, labels)
    twin = est.to_sklearn()
    multinomial = MODES[mode].get("multi_class") == "multinomial" and n_classes == 3
    assert type(twin) is (LogisticRegression if multinomial else SGDClassifier)
    assert_array_equal(twin.classes_, est.classes_)
    assert twin.n_features_in_ == est.n_features_in_
    assert_array_equal(twin.predict(X), est.predict(X))
    assert_allclose(twin.decision_function(X), est.decision_function(X), rtol=1e-12,
                    atol=1e-14)
    if hasattr(est, "predict_proba"):
        assert_allclose(twin.predict_proba(X), est.predict_proba(X), rtol=1e-12,
                        atol=1e-15)
    if not multinomial:
        assert (twin.t_, twin.n_iter_) == (est.t_, est.n_iter_)
        assert twin.get_params()["loss"] == est.loss
    assert twin.score(X, labels) == est.score(X, labels)


def test_to_sklearn_multinomial_twin_has_the_same_objective():
    """The LogisticRegression twin's C and l1_ratio define fastgd's objective: refitting
    it reaches the minimum fastgd converged to (softmax logits up to a shared shift)."""
    est = FastSGDClassifier(loss="log_loss", multi_class="multinomial", alpha=0.01,
                            batch_size="full", learning_rate="constant", eta0=0.5,
                            max_iter=3000, tol=None).fit(X3, Y3)
    twin = est.to_sklearn()
    assert twin.C == 1.0 / (0.01 * X3.shape[0]) and twin.l1_ratio == 0.0
    refit = clone(twin).set_params(tol=1e-10, max_iter=10_000).fit(X3, Y3)
    centered = lambda a: a - a.mean(axis=0)  # noqa: E731
    assert_allclose(centered(refit.coef_), centered(est.coef_), atol=1e-4)
    assert_allclose(centered(refit.intercept_), centered(est.intercept_), atol=1e-4)


def test_to_sklearn_keeps_feature_names_and_needs_a_fit():
    import pandas as pd
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        FastSGDClassifier().to_sklearn()
    frame = pd.DataFrame(X2, columns=[f"f{j}" for j in range(X2.shape[1])])
    twin = _quiet(FastSGDClassifier(random_state=0).fit, frame, Y2).to_sklearn()
    assert_array_equal(twin.feature_names_in_, frame.columns)
    with pytest.warns(UserWarning, match="feature names"):
        twin.predict(X2)  # scikit-learn's own check, as for any fitted twin
