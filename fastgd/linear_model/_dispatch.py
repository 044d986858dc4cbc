"""Dask collections given to an estimator's methods go to :mod:`fastgd.dask`.

The check is one ``hasattr`` per call, and :mod:`fastgd.dask` (with Dask itself) is
imported only when a dask collection arrives: ``import fastgd`` never loads them.
"""

import functools
import inspect


def dask_input(method):
    """Decorator of the estimators' methods: dask input goes to :mod:`fastgd.dask`.

    ``fit``/``partial_fit`` of a dask collection run :func:`fastgd.dask.fit` /
    :func:`fastgd.dask.partial_fit` with their defaults; prediction methods return
    lazy dask arrays (:func:`fastgd.dask.predict`). Anything else goes to the decorated
    method unchanged.
    """
    name = method.__name__
    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        if not hasattr(X, "__dask_graph__"):
            return method(self, X, *args, **kwargs)
        from .. import dask as fastgd_dask

        bound = signature.bind(self, X, *args, **kwargs)
        bound.apply_defaults()
        kw = dict(bound.arguments)
        kw.pop("self")
        kw.pop("X")
        if name == "fit":
            return fastgd_dask.fit(self, X, kw.pop("y"), **kw)
        if name == "partial_fit":
            return fastgd_dask.partial_fit(self, X, kw.pop("y"), **kw)
        return fastgd_dask.predict(self, X, method=name)

    return wrapper
