"""Value checks shared by the places that validate settings (bundle manifests, the Detector's
and sessions' arguments): one meaning of "a finite number" and "a whole number" everywhere."""
from __future__ import annotations

import math
import numbers


def is_finite_number(x: object) -> bool:
    """A real number (numpy scalars included), not a bool, not NaN or infinite."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def is_whole_number(x: object, low: int | None = None) -> bool:
    """An integer (numpy integers included), not a bool, and >= ``low`` when given."""
    return (isinstance(x, numbers.Integral) and not isinstance(x, bool)
            and (low is None or x >= low))
