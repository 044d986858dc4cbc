"""Type aliases of the public API's annotations (for readers and type checkers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Union

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:
    import scipy.sparse

    from .callbacks import EpochInfo

#: a dense array-like or a SciPy sparse matrix/array (CSR is used as is)
MatrixLike = Union[ArrayLike, "scipy.sparse.spmatrix", "scipy.sparse.sparray"]
#: what scikit-learn's ``random_state`` takes
RandomStateLike = Union[int, np.random.RandomState, None]
OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta",
                        "adam", "adamw"]
#: scikit-learn's names of the learning rate
RateName = Literal["constant", "optimal", "invscaling", "adaptive"]
BatchSize = Union[int, Literal["full"], None]
Unit = Literal["update", "epoch"]
#: a callback: called with each epoch's record; True stops training
CallbackLike = Callable[["EpochInfo"], "bool | None"]

__all__ = ["ArrayLike", "BatchSize", "CallbackLike", "MatrixLike", "OptimizerName",
           "RandomStateLike", "RateName", "Unit"]
