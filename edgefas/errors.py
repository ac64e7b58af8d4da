"""The typed errors edgefas raises.

Per-frame conditions (no face, several faces, an unreadable image) are *results*, never
exceptions: see :class:`edgefas.Result`. Exceptions are for programming errors and for
broken installations or bundles, and every one derives from :class:`EdgefasError` so an
application can catch them in one place.
"""
from __future__ import annotations


class EdgefasError(Exception):
    """Base class of every error edgefas raises on purpose."""


class BundleError(EdgefasError):
    """A model bundle is missing, malformed, or a file in it does not match its sha256."""


class BackendUnavailable(EdgefasError):
    """The requested inference backend is not installed or cannot run on this machine."""


class InputTypeError(EdgefasError, TypeError):
    """A call got an argument of the wrong Python type (a programming error, not a bad image).

    Bad *images* (corrupt bytes, wrong dtype, grayscale, ...) never raise: they come back as
    ``Result(decision="bad_input")``. This error is for e.g. passing an ``int`` as the image.
    """


class DatasetError(EdgefasError):
    """A data set folder is missing or does not have the expected layout."""


class ExportError(EdgefasError):
    """Exporting a model failed, or the exported model failed its parity check."""


class DataWarning(UserWarning):
    """Something in a user's data was left out (a folder outside the expected layout...)."""


def unknown_name(kind: str, name: str, known: list[str] | tuple[str, ...]) -> str:
    """``unknown <kind> 'x'; known: a, b. Did you mean 'y'?`` for any table lookup."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}; known: {', '.join(known)}.{hint}"
