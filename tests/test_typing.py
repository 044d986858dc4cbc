"""The public API carries type annotations, and the package says so (PEP 561)."""

import inspect
import pathlib
import tomllib
from importlib import resources

import pytest

import fastgd
from fastgd import FastSGDClassifier, FastSGDRegressor, callbacks, optim, plot, schedules

ESTIMATOR_METHODS = ["__init__", "fit", "partial_fit", "predict", "to_sklearn"]
PUBLIC = (
    [getattr(FastSGDRegressor, m) for m in ESTIMATOR_METHODS]
    + [getattr(FastSGDClassifier, m) for m in ESTIMATOR_METHODS
       + ["decision_function", "predict_proba", "predict_log_proba"]]
    + [fastgd.minimize, fastgd.warmup, schedules.resolve, optim.resolve]
    + [getattr(plot, name) for name in plot.__all__]
    + [getattr(schedules, name).__init__ for name in schedules.__all__
       if name != "Schedule"]
    + [schedules.Schedule.__call__, schedules.Lambda.__call__]
    + [getattr(optim, name).__init__ for name in ("SGD", "Momentum", "Adagrad", "RMSprop",
                                                   "Adadelta", "Adam", "AdamW")]
    + [callbacks.EarlyStopping.__init__, callbacks.History.__init__,
       callbacks.Checkpoint.__init__, callbacks.Checkpoint.resume]
)


@pytest.mark.parametrize("func", PUBLIC, ids=lambda f: f.__qualname__)
def test_public_callables_are_annotated(func):
    sig = inspect.signature(func)
    missing = [name for name, p in sig.parameters.items()
               if name != "self" and p.annotation is inspect.Parameter.empty]
    assert not missing, f"{func.__qualname__}: no annotation for {missing}"
    assert sig.return_annotation is not inspect.Signature.empty, func.__qualname__


def test_package_ships_py_typed():
    assert resources.files("fastgd").joinpath("py.typed").is_file()
    pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["fastgd"]
