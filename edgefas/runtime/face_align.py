"""Similarity-transform face alignment to the 5-point ArcFace template.

BlazeFace gives eyes, nose tip and mouth centre but no mouth corners, so the transform is
fitted on those 4 points against the template, whose mouth centre is the midpoint of its two
mouth corners. ``crop_scale`` > 1 widens the crop around the template centre: anti-spoofing
needs context beyond the tight recognition crop (paper edges, screen bezels, moire).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .downscale import halve

#: ArcFace / insightface 112x112 template: left eye, right eye, nose tip, left and right
#: mouth corner (image-left first).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
TEMPLATE_NAME = "arcface_112_5pt"
#: Bumped whenever the crops this module makes change, so cached crops are rebuilt.
ALIGN_VERSION = 4   # 4: detector boxes mapped back with the resize's own x/y scales


@dataclass(frozen=True)
class Alignment:
    """An aligned crop and the transform that made it."""

    crop: np.ndarray          # (size, size, 3) uint8, same colour order as the input
    matrix: np.ndarray        # 2x3 affine: input pixels -> crop pixels
    landmarks5: np.ndarray    # (5, 2) ArcFace-order points in input pixels (corners estimated)


def template_points(size: int, crop_scale: float) -> np.ndarray:
    """The 5 template points in a ``size`` x ``size`` crop ``crop_scale`` times wider than 112."""
    return (ARCFACE_112 - 56.0) * (size / 112.0) / crop_scale + size / 2.0


def umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) src -> dst, as 2x3.

    Umeyama (1991), Eq. 40-42; deterministic, unlike RANSAC-based estimators.
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / s.var(0).sum()
    t = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, t[:, None]])


#: Below this similarity scale (faces over ~5x wider than in the crop: HD cameras at kiosk
#: distance, high-resolution photos) the crop's region is first halved with OpenCV's
#: vectorised 2x2 area path. A one-step area resize at a non-integer factor costs in
#: proportion to the region's pixels: ~5.5 ms for a 490 px face in a 1080p frame here
#: (benchmarks/frame_size.py). No face of the training or evaluation sets is this large (the
#: smallest scales: Replay-Attack 0.328, LFW 0.371, london 0.247), so their crops are unchanged.
HALVE_BELOW_SCALE = 0.2


def _halvings_needed(scale: float) -> int:
    """How many exact 2x2 halvings bring ``scale`` back to at least HALVE_BELOW_SCALE."""
    k = 0
    # At most 8: frames are at most 8192 px, so real faces need 6; degenerate keypoints
    # (all on one point) give a scale of zero or NaN and must not loop on.
    while k < 8 and scale * 2 ** k < HALVE_BELOW_SCALE:
        k += 1
    return k


def align_face(image: np.ndarray, keypoints: np.ndarray, *, size: int, crop_scale: float
               ) -> Alignment:
    """Warp ``image`` so that the face's eyes, nose and mouth land on the template.

    Args:
        image: HxWx3 uint8 frame.
        keypoints: BlazeFace keypoints (at least 4 rows: image-left eye, image-right eye,
            nose tip, mouth centre) in ``image`` pixels.
        size: output side in pixels.
        crop_scale: 1.0 is the tight 112-px ArcFace crop; 1.5 shows 1.5x more around it.
    """
    tpl = template_points(size, crop_scale)
    dst = np.vstack([tpl[:3], tpl[3:5].mean(0, keepdims=True)])
    src = np.asarray(keypoints[:4], dtype=np.float64)
    full = umeyama(src, dst)
    scale = float(np.hypot(*full[:, 0]))
    img, warp = image, full
    if scale < 0.5:
        # Shrinking a large face by more than 2x in one bilinear warp aliases away exactly
        # the fine texture (print dots, moire) the classifier looks for: pre-shrink with
        # area averaging, then warp at a moderate scale. Only the region the crop reads is
        # shrunk, not the whole frame.
        halvings = _halvings_needed(scale)
        m = 2 ** halvings
        inv = cv2.invertAffineTransform(full)
        corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64)
        src_corners = corners @ inv[:, :2].T + inv[:, 2]
        h, w = image.shape[:2]
        margin = 2 * m   # the halvings trim up to m - 1 pixels at the far edges
        x0, y0 = np.clip(np.floor(src_corners.min(0)).astype(int) - margin, 0, [w, h])
        x1, y1 = np.clip(np.ceil(src_corners.max(0)).astype(int) + margin, 0, [w, h])
        if x1 - x0 >= 2 * m and y1 - y0 >= 2 * m:
            roi = halve(image[y0:y1, x0:x1], halvings)
            # x -> x / m, like the one-step way's x -> x * f below, leaves out the half-pixel
            # offset of pixel centres; keeping its convention makes the two ways' crops differ
            # in filter only (tests/test_downscale.py), not by a tenth of a pixel as well.
            pts = (src - [x0, y0]) / m   # m = 1 divides exactly: small faces are unchanged
            f = 2.0 * scale * m
            img = cv2.resize(roi, (max(1, round(roi.shape[1] * f)), max(1, round(roi.shape[0] * f))),
                             interpolation=cv2.INTER_AREA)
            fx, fy = img.shape[1] / roi.shape[1], img.shape[0] / roi.shape[0]
            warp = umeyama(pts * [fx, fy], dst)
    crop = cv2.warpAffine(img, warp, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    # Landmarks in input pixels: the detected points, with the mouth corners estimated by
    # mapping the template's corners back through the fitted transform.
    inv = cv2.invertAffineTransform(full)
    corners = tpl[3:5] @ inv[:, :2].T + inv[:, 2]
    return Alignment(crop, full, np.vstack([src[:3], corners]))
