"""The error the teacher code raises for a setting that cannot work (a bad step grid, a UNet whose
input channels do not match its condition, a crop array of the wrong shape)."""
from __future__ import annotations

from ..errors import EdgefasError


class TeacherConfigError(EdgefasError, ValueError):
    """A teacher setting or input that cannot work; the message says what would."""
