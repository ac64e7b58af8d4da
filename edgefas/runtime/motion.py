"""Face-versus-background motion, so a video session can tell a still image from a person.

A photo on a stand (printed, or shown on a phone or tablet screen) does not move: between two
frames half a second apart its face changes no more than the scene around it, which only
differs by sensor noise. A person's face does move (breathing, blinking, small head motion)
while the room behind it stays put. The cue is the ratio of the mean absolute grey-level change
inside the face box to the change in the background, for two frames at least ``gap_s`` apart
(Anjos & Marcel, "Counter-measures to photo attacks in face recognition", IJCB 2011, compare
face and background motion the same way on the Print-Attack videos). A ratio near 1 is a still
scene. On Replay-Attack the sessions' statistic (75th percentile over pairs) of bona fide
videos is at least 1.80 on train but not on devel, where 4 of 60 fall below 1.5 (the lowest
1.06), against a median of 1.05 for photos on a stand (``benchmarks/results/motion_cue.md``).

What it does not catch: a photo or screen held in the hand (the hand moves face and background
together, often by different amounts) and replayed videos (the replayed face moves); the frame
classifier is there for those. What can fool it into rejecting a person: a background that
moves more than the face (people walking behind, a flickering screen); see
:class:`~edgefas.session.SessionConfig` for the switch.

Every frame keeps a small grey copy of the whole image (a :class:`Thumbnail`, longest side
``THUMB_SIDE`` px) so a session can compare frames without keeping the camera frames.

numpy + OpenCV only.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: longest side of the grey copy of a frame kept for motion, in pixels
THUMB_SIDE = 160
#: the face box is widened by this fraction of its size on each side before the rest of the
#: image counts as background; everything below the widened box (neck, shoulders, which move
#: with a person) is left out too
MARGIN = 0.25
#: a face box narrower than this in the thumbnail (a far face) or a background smaller than
#: this fraction of the thumbnail (a face filling the frame) gives no ratio
MIN_FACE_PX = 12
MIN_BACKGROUND = 0.10
#: grey levels; background change below this counts as this (a noiseless synthetic image
#: would otherwise divide by zero)
NOISE_FLOOR = 0.05


@dataclass(frozen=True)
class Thumbnail:
    """A frame's grey copy for motion: ``pixels`` (h, w) uint8, ``scale`` = thumbnail px per
    image px (face boxes in image coordinates are multiplied by it)."""

    pixels: np.ndarray
    scale: float


def thumbnail(image_bgr: np.ndarray) -> Thumbnail:
    """The grey, downscaled copy of an (H, W, 3) uint8 BGR frame."""
    h, w = image_bgr.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if scale < 1.0 else grey.copy()
    small.setflags(write=False)
    return Thumbnail(small, size[0] / w)


def motion_ratio(a: Thumbnail, box_a: tuple[float, ...], b: Thumbnail, box_b: tuple[float, ...]
                 ) -> float | None:
    """Face change over background change between two frames of one camera (boxes are
    ``(x1, y1, x2, y2)`` in image pixels). None when the frames differ in size or the face is
    too small or fills too much of the frame for a background to compare with."""
    if a.pixels.shape != b.pixels.shape or abs(a.scale - b.scale) > 1e-6:
        return None
    h, w = a.pixels.shape
    # the union of both boxes: a face that moved is compared over where it was and is
    x1 = max(0, int(min(box_a[0], box_b[0]) * a.scale))
    y1 = max(0, int(min(box_a[1], box_b[1]) * a.scale))
    x2 = min(w, int(np.ceil(max(box_a[2], box_b[2]) * a.scale)))
    y2 = min(h, int(np.ceil(max(box_a[3], box_b[3]) * a.scale)))
    fw, fh = x2 - x1, y2 - y1
    if fw < MIN_FACE_PX or fh < MIN_FACE_PX:
        return None
    # a light blur so JPEG blocks and sensor noise weigh less than real motion
    diff = np.abs(cv2.GaussianBlur(a.pixels.astype(np.float32), (3, 3), 1.0)
                  - cv2.GaussianBlur(b.pixels.astype(np.float32), (3, 3), 1.0))
    background = np.ones((h, w), bool)
    background[max(0, int(y1 - MARGIN * fh)):, max(0, int(x1 - MARGIN * fw)):int(x2 + MARGIN * fw)] = False
    if background.mean() < MIN_BACKGROUND:
        return None
    face = float(diff[y1:y2, x1:x2].mean())
    return face / max(float(diff[background].mean()), NOISE_FLOOR)
