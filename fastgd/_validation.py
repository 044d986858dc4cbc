"""Small validators that raise scikit-learn's ``InvalidParameterError``."""

import numbers

from sklearn.utils._param_validation import InvalidParameterError


def check_real(owner, name, value, low=None, high=None, low_open=False, high_open=False):
    """Return ``float(value)`` or raise naming ``owner``'s parameter and its range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be a real number; got {value!r}."
        )
    v = float(value)
    ok = v == v  # not NaN
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "-inf" if low is None else repr(low)
        hi = "inf" if high is None else repr(high)
        rng = ("(" if low_open or low is None else "[") + f"{lo}, {hi}" + (
            ")" if high_open or high is None else "]"
        )
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be a float in the range {rng}; "
            f"got {value!r}."
        )
    return v


def check_int(owner, name, value, low=None):
    """Return ``int(value)`` (an integral, >= ``low``) or raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be an int; got {value!r}."
        )
    if low is not None and value < low:
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be an int >= {low}; got {value!r}."
        )
    return int(value)


def check_bool(owner, name, value):
    """Return ``bool(value)`` for a bool (or NumPy bool) or raise."""
    if not isinstance(value, (bool,)) and type(value).__name__ != "bool_":
        raise InvalidParameterError(
            f"The '{name}' parameter of {owner} must be a bool; got {value!r}."
        )
    return bool(value)
