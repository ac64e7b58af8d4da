"""Find the one face to score in a frame, check it is usable, and align it.

Shared by :class:`edgefas.Detector` and the training crop cache, so a model is trained on
exactly the crops it will see at run time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..result import Decision
from .face_align import Alignment, align_face
from .face_detect import Face, FaceDetector
from .motion import Thumbnail


@dataclass(frozen=True)
class FacePolicy:
    """When a frame holds a usable face. Stored in ``manifest.json`` under ``face_policy``."""

    # BlazeFace's lowest true-face score on Replay-Attack, silentface and london was 0.766
    # and every false box scored <= 0.70 (shared/notes/facedet.md).
    min_face_score: float = 0.75
    min_face_px: int = 48            # narrower faces carry too little texture to judge
    # A second face at least this fraction of the largest one's width makes the frame
    # ambiguous (who is presenting?); smaller ones (people far behind) are ignored.
    multiple_face_ratio: float = 0.5
    # Quality bounds: the training crops (Replay-Attack train + LFW train, every 4th crop,
    # 4,286 faces) span mean grey level 43.9-199.3 and Laplacian variance >= 44.5. A face
    # darker or flatter than half of that minimum is outside anything the model has seen.
    min_brightness: float = 22.0     # mean grey level of the centre of the aligned crop
    max_brightness: float = 230.0
    min_sharpness: float = 20.0      # variance of the Laplacian of that grey centre

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FacePolicy:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class FaceOutcome:
    """``decision`` is None when ``face``/``alignment`` are ready to score."""

    decision: Decision | None
    face: Face | None = None
    alignment: Alignment | None = None
    reasons: tuple[str, ...] = ()
    # the frame's grey copy for video sessions' motion check (set by the Detector)
    thumbnail: Thumbnail | None = None


def crop_quality(crop_bgr: np.ndarray) -> tuple[float, float]:
    """(mean brightness, Laplacian variance) of the centre half of an aligned crop."""
    s = crop_bgr.shape[0]
    centre = cv2.cvtColor(crop_bgr[s // 4: 3 * s // 4, s // 4: 3 * s // 4], cv2.COLOR_BGR2GRAY)
    return float(centre.mean()), float(cv2.Laplacian(centre, cv2.CV_64F).var())


class FaceStage:
    """Detect -> select -> check -> align. Thread-safe.

    ``far_faces``: when the whole frame holds no face, look again in 4 overlapping tiles
    (:meth:`FaceDetector.detect_tiled`), which finds faces down to ~8 % of the frame width
    (~50 px at 640x480) at 4 more detector runs per empty frame. Off by default, and off for
    the training crop cache, so the shipped evaluations are made exactly as before.
    """

    def __init__(self, detector: FaceDetector, policy: FacePolicy, *, size: int,
                 crop_scale: float, far_faces: bool = False) -> None:
        self.detector, self.policy, self.size, self.crop_scale = detector, policy, size, crop_scale
        self.far_faces = far_faces

    def find(self, image_bgr: np.ndarray) -> FaceOutcome:
        """Detect and select, with the tiled second look when ``far_faces`` is on."""
        outcome = self.select(self.detector.detect(image_bgr))
        if self.far_faces and outcome.decision is Decision.NO_FACE:
            again = self.select(self.detector.detect_tiled(image_bgr, self.policy.min_face_score))
            if again.decision is not Decision.NO_FACE:
                return FaceOutcome(again.decision, again.face, again.alignment,
                                   again.reasons + ("found by the tiled second look (far_faces)",))
        return outcome

    def select(self, faces: list[Face]) -> FaceOutcome:
        p = self.policy
        faces = sorted((f for f in faces if f.score >= p.min_face_score),
                       key=lambda f: f.width, reverse=True)
        if not faces:
            # benchmarks/face_size.py: the short-range detector starts missing faces narrower
            # than ~12 % of the frame width, well above min_face_px on a 640x480 camera, so
            # "no face" is also what a person standing too far away gets.
            return FaceOutcome(Decision.NO_FACE, reasons=(
                f"no face with detector score >= {p.min_face_score}",
                "faces narrower than about 12 % of the image width are often missed: "
                "if someone is there, ask them to come closer"))
        main = faces[0]
        if len(faces) > 1 and faces[1].width >= p.multiple_face_ratio * main.width:
            return FaceOutcome(Decision.MULTIPLE_FACES, main, reasons=(
                f"{len(faces)} faces; the second is {faces[1].width:.0f} px wide, "
                f">= {p.multiple_face_ratio:g} x the largest ({main.width:.0f} px)",))
        if main.width < p.min_face_px:
            return FaceOutcome(Decision.FACE_TOO_SMALL, main, reasons=(
                f"face {main.width:.0f} px wide < min_face_px {p.min_face_px}",))
        extra = (f"ignored {len(faces) - 1} smaller face(s)",) if len(faces) > 1 else ()
        return FaceOutcome(None, main, reasons=extra)

    def align(self, image_bgr: np.ndarray, outcome: FaceOutcome) -> FaceOutcome:
        assert outcome.face is not None
        al = align_face(image_bgr, outcome.face.keypoints, size=self.size,
                        crop_scale=self.crop_scale)
        brightness, sharpness = crop_quality(al.crop)
        p = self.policy
        problem = None
        if brightness < p.min_brightness:
            problem = f"face too dark: mean level {brightness:.0f} < {p.min_brightness:g}"
        elif brightness > p.max_brightness:
            problem = f"face over-exposed: mean level {brightness:.0f} > {p.max_brightness:g}"
        elif sharpness < p.min_sharpness:
            problem = f"face blurred or flat: Laplacian variance {sharpness:.1f} < {p.min_sharpness:g}"
        if problem:
            return FaceOutcome(Decision.LOW_QUALITY, outcome.face, al, outcome.reasons + (problem,))
        return FaceOutcome(None, outcome.face, al, outcome.reasons)

    def __call__(self, image_bgr: np.ndarray) -> FaceOutcome:
        outcome = self.find(image_bgr)
        if outcome.decision is not None:
            return outcome
        return self.align(image_bgr, outcome)
