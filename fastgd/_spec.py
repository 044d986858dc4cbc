"""Common base of the optimizer and schedule specifications."""

from __future__ import annotations

import inspect
from typing import Any, Self


class Spec:
    """A small value object: keyword parameters, repr, equality, ``get_params``.

    Specifications hold hyper-parameters only. They are validated and lowered to
    an integer code and a float array when a fit starts (``_lower``), so building
    one never fails on a value that a later ``set_params`` could fix.
    """

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        names = self._param_names()
        for key, value in params.items():
            if key not in names:
                raise ValueError(
                    f"Invalid parameter {key!r} for {type(self).__name__}; "
                    f"valid parameters are {names}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_params() == other.get_params()

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))
