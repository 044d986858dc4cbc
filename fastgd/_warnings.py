"""Warnings attributed to the user's code, whatever depth inside fastgd they come from.

``warnings.warn(..., stacklevel=n)`` needs the number of frames between the warning and
the user's call, which differs between ``fit``, ``partial_fit``, ``fastgd.dask.fit``
and the helpers they share. :func:`warn` counts them: it skips every frame of a fastgd
module and scikit-learn's ``fit`` decorator (``_fit_context``), so the warning names
the file and line that called fastgd, as scikit-learn's warnings do, and
``warnings.filterwarnings(..., module=...)`` matches the caller's module.
"""

import sys
import warnings


def _inside_fastgd(frame):
    name = frame.f_globals.get("__name__", "")
    if name == "fastgd" or name.startswith("fastgd."):
        return True
    # scikit-learn's _fit_context decorates fastgd's fit methods: part of the call
    return name == "sklearn.base" and frame.f_code.co_name == "wrapper"


def warn(message, category):
    """``warnings.warn(message, category)`` pointing at the first frame outside fastgd."""
    frame = sys._getframe(1)
    level = 2  # the caller of this function
    while frame.f_back is not None and _inside_fastgd(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
