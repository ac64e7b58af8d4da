"""What a Detector call returns: one frozen dataclass, always the same type."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from .runtime.motion import Thumbnail


class Decision(str, enum.Enum):
    """The outcome of one frame. A ``str`` subclass, so ``result.decision == "live"`` works."""

    LIVE = "live"
    SPOOF = "spoof"
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    FACE_TOO_SMALL = "face_too_small"
    LOW_QUALITY = "low_quality"
    BAD_INPUT = "bad_input"

    def __str__(self) -> str:  # print(result.decision) -> "live", not "Decision.LIVE"
        return self.value


@dataclass(frozen=True)
class Result:
    """The answer for one image.

    Attributes:
        decision: one of :class:`Decision`. Only ``live`` means "accept as bona fide".
        live_score: calibrated probability that the face is live (bona fide), in [0, 1];
            ``None`` when no face was scored (every decision except ``live``/``spoof``).
        threshold: the bundle's decision threshold on ``live_score`` (live when >= threshold).
        box: face box ``(x1, y1, x2, y2)`` in pixels of the input image, or ``None``.
        landmarks: the usual 5 points ``((x, y), ...)`` in input pixels: image-left eye,
            image-right eye, nose tip, image-left and image-right mouth corner. BlazeFace
            gives the mouth centre only, so the corners are the alignment template's corners
            mapped back through the fitted similarity transform (estimates, not detections).
        face_score: the face detector's confidence for ``box``.
        timings_ms: milliseconds per stage: ``decode``, ``detect``, ``align``, ``thumbnail``
            (the grey frame copy for video sessions), ``score``, ``total``.
        reasons: human-readable explanations, e.g. ``("face 31 px wide < min_face_px 48",)``.
        signature: the scored face's appearance signature (see
            :mod:`edgefas.runtime.face_signature`), which video sessions compare frame to
            frame to notice a different face at the same place; ``None`` when no face was
            aligned. Not part of :meth:`to_dict`.
        thumbnail: a small grey copy of the whole frame (see :mod:`edgefas.runtime.motion`),
            which video sessions compare across frames to tell a still image from a moving
            face; ``None`` when no face was aligned. Not part of :meth:`to_dict`.
    """

    decision: Decision
    live_score: float | None
    threshold: float
    box: tuple[float, float, float, float] | None = None
    landmarks: tuple[tuple[float, float], ...] | None = None
    face_score: float | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    signature: np.ndarray | None = field(default=None, repr=False, compare=False)
    thumbnail: Thumbnail | None = field(default=None, repr=False, compare=False)

    @property
    def is_live(self) -> bool:
        """True only when the decision is ``live``."""
        return self.decision is Decision.LIVE

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the form ``edgefas detect --json`` prints)."""
        return {
            "decision": self.decision.value,
            "live_score": self.live_score,
            "threshold": self.threshold,
            "box": list(self.box) if self.box is not None else None,
            "landmarks": [list(p) for p in self.landmarks] if self.landmarks is not None else None,
            "face_score": self.face_score,
            "timings_ms": dict(self.timings_ms),
            "reasons": list(self.reasons),
        }
