"""Argument checks shared by the whole package: each error names the argument, the value and
what is allowed, e.g. ``ValueError: beta must be in [0, 1), got 1.2``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable


def _is_number(value) -> bool:
    # numbers.Real also admits numpy scalars (np.float32, np.int64), e.g. from a tuning grid
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive(name: str, value) -> float:
    """``value > 0`` and finite (learning rates, factors)."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_beta(name: str, value) -> float:
    """An EWA coefficient β in [0, 1)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_nonnegative(name: str, value) -> float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_choice(name: str, value, allowed: Iterable[str]):
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value
