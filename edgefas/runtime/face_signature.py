"""A face's appearance signature, so a video session notices a different face at the same place.

Sessions track a face by its box; two people (or a person and a photo of someone else) can stand
at the same place, one after the other, with boxes that overlap almost fully. The signature is
the centre half of the aligned crop (eyes, nose, mouth; no background, hair or border) as an
8 x 8 grey thumbnail, zero mean and unit norm; the cosine similarity of two signatures is their
dot product. Lighting offsets and contrast cancel out; who the face is, and where its features
sit, do not. A session compares each frame with the mean direction of its track's signatures,
not with the last frame: the face detector's landmarks jump between a few alignments of one
face as it moves, and a 16 px thumbnail compared frame to frame fell to 0.83 on one-pixel
shifts of the astronaut photo (an 8 px one to 0.81 on it moving across the frame); 8 px
against the track stays at or above 0.87 on both.

How well it separates, on Replay-Attack devel (20 frames per video, 0.5-0.8 s apart: more change
between frames than a 30 fps camera has; ``benchmarks/face_signature.py``): at the sessions'
default limit of 0.85, none of 6,839 frames falls below it against its own video's track, and
85.3 % of 1,800 frames of another client under the same conditions do against a 5-frame track.
It is not face recognition: look-alikes under the same light can pass.

numpy + OpenCV only.
"""
from __future__ import annotations

import cv2
import numpy as np

#: thumbnail side in pixels (the signature has SIDE * SIDE values)
SIDE = 8
#: the central fraction of the aligned crop's side the thumbnail is made from
CENTRE = 0.5


def face_signature(crop_bgr: np.ndarray) -> np.ndarray:
    """The (SIDE * SIDE,) float32 unit-norm signature of an aligned (S, S, 3) uint8 BGR crop."""
    s = crop_bgr.shape[0]
    o = int(round(s * (1 - CENTRE) / 2))
    grey = cv2.cvtColor(np.ascontiguousarray(crop_bgr[o:s - o, o:s - o]), cv2.COLOR_BGR2GRAY)
    v = cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    v -= v.mean()
    n = float(np.linalg.norm(v))
    out = v / n if n > 0 else v   # a flat crop has no signature to compare: all zeros
    out.setflags(write=False)
    return out


def signature_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two signatures, in [-1, 1] (0 when either is flat)."""
    return float(np.dot(a, b))
