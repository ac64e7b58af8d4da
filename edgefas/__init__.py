"""edgefas: face anti-spoofing (presentation attack detection) for edge devices.

    >>> import edgefas
    >>> det = edgefas.Detector()          # the default bundle shipped with the package
    >>> result = det("photo.jpg")
    >>> result.decision                    # "live", "spoof", "no_face", ...

The runtime (this import, ``Detector``) needs numpy, OpenCV and onnxruntime, never torch.
"""
from __future__ import annotations

__version__ = "0.7.0"

from .bundle import Bundle, load_bundle
from .detector import Detector
from .errors import BackendUnavailable, BundleError, DatasetError, EdgefasError, ExportError, InputTypeError
from .result import Decision, Result
from .session import Session, SessionConfig, SessionState, Verdict

__all__ = ["BackendUnavailable", "Bundle", "BundleError", "DatasetError", "Decision", "Detector",
           "EdgefasError", "ExportError", "InputTypeError", "Result", "Session", "SessionConfig",
           "SessionState", "Verdict", "__version__", "load_bundle"]
