"""Face detection and alignment on real faces."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefas.bundle import default_bundle_path
from edgefas.runtime.decode import decode_image
from edgefas.runtime.face_align import align_face, template_points, umeyama
from edgefas.runtime.face_detect import FaceDetector, ssd_anchors

from .conftest import needs_shared


@pytest.fixture(scope="module")
def face_detector():
    return FaceDetector.from_file(default_bundle_path() / "face_detector.onnx")


def test_anchor_layout():
    a = ssd_anchors()
    assert a.shape == (896, 2)  # 16x16x2 + 8x8x6
    assert a.min() > 0 and a.max() < 1


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    ang, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = s * src @ rot.T + t
    m = umeyama(src, dst)
    np.testing.assert_allclose(src @ m[:, :2].T + m[:, 2], dst, atol=1e-9)


def test_astronaut_detected_and_aligned(face_detector, astronaut_bgr):
    faces = face_detector.detect(astronaut_bgr)
    assert len(faces) >= 1 and faces[0].score > 0.75
    al = align_face(astronaut_bgr, faces[0].keypoints, size=128, crop_scale=1.5)
    assert al.crop.shape == (128, 128, 3)
    # The fitted transform puts the detected eyes and nose on the template points.
    tpl = template_points(128, 1.5)
    mapped = al.landmarks5[:3] @ al.matrix[:, :2].T + al.matrix[:, 2]
    assert np.abs(mapped - tpl[:3]).max() < 6.0


def test_rotated_face_is_aligned_upright(face_detector, astronaut_bgr):
    h, w = astronaut_bgr.shape[:2]
    rot = cv2.warpAffine(astronaut_bgr, cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0), (w, h))
    f = face_detector.detect(rot)[0]
    al = align_face(rot, f.keypoints, size=128, crop_scale=1.5)
    (lx, ly), (rx, ry) = al.landmarks5[0] @ al.matrix[:, :2].T + al.matrix[:, 2], \
        al.landmarks5[1] @ al.matrix[:, :2].T + al.matrix[:, 2]
    assert abs(ly - ry) < 4 and lx < rx


def test_large_face_pre_shrinks_without_aliasing(face_detector, astronaut_bgr):
    big = cv2.resize(astronaut_bgr, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    f = face_detector.detect(big)[0]
    crop_big = align_face(big, f.keypoints, size=128, crop_scale=1.5).crop
    f0 = face_detector.detect(astronaut_bgr)[0]
    crop = align_face(astronaut_bgr, f0.keypoints, size=128, crop_scale=1.5).crop
    assert np.abs(crop_big.astype(int) - crop.astype(int)).mean() < 12


@needs_shared
def test_every_fixture_face_is_found(face_detector, shared):
    """silentface (EXIF-rotated included) and all 244 london portraits: exactly one face."""
    files = sorted((shared / "fixtures" / "silentface").glob("*.jpg"))
    files += sorted((shared / "fixtures" / "london").rglob("*.jpg"))
    assert len(files) == 7 + 244
    missed = []
    for f in files:
        img = decode_image(f).image
        faces = [x for x in face_detector.detect(img) if x.score >= 0.75]
        if len(faces) != 1:
            missed.append((f.name, len(faces)))
    assert not missed


def test_weighted_nms_survives_a_degenerate_top_box():
    # A zero-size box has IoU 0 with itself; its cluster used to come out empty and raise.
    from edgefas.runtime.face_detect import _weighted_nms
    boxes = np.array([[0.5, 0.5, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3], [0.11, 0.1, 0.31, 0.3]])
    out = _weighted_nms(boxes, np.zeros((3, 6, 2)), np.array([0.9, 0.8, 0.7]))
    assert [round(s, 2) for _, _, s in out] == [0.9, 0.8]  # the two overlapping boxes merge
    np.testing.assert_allclose(out[1][0], (0.8 * boxes[1] + 0.7 * boxes[2]) / 1.5)


def _far_face_frame(astronaut_bgr, centre: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """A 640x480 frame with the astronaut shrunk so her face is ~52 px wide (below the
    whole-frame detector's reach), pasted with its face centred near ``centre``."""
    small = cv2.resize(astronaut_bgr, None, fx=0.55, fy=0.55, interpolation=cv2.INTER_AREA)
    frame = np.zeros((480, 640, 3), np.uint8)
    # her face centre sits near (125, 60) of the shrunk 282 px image
    x0, y0 = centre[0] - 125, centre[1] - 60
    sx0, sy0 = max(0, -x0), max(0, -y0)
    x0, y0 = max(0, x0), max(0, y0)
    h, w = min(small.shape[0] - sy0, 480 - y0), min(small.shape[1] - sx0, 640 - x0)
    frame[y0:y0 + h, x0:x0 + w] = small[sy0:sy0 + h, sx0:sx0 + w]
    return frame, (x0, y0)


@pytest.mark.parametrize("centre", [(320, 240), (120, 90), (560, 420)])
def test_far_faces_finds_a_small_face_once_in_frame_coordinates(astronaut_bgr, centre):
    from edgefas import Decision, Detector

    frame, _ = _far_face_frame(astronaut_bgr, centre)
    assert Detector()(frame).decision is Decision.NO_FACE  # the whole-frame look misses it
    r = Detector(far_faces=True)(frame)
    # centre (320, 240) lies in all four tiles: found once, not as multiple faces
    assert r.decision in (Decision.LIVE, Decision.SPOOF), r.reasons
    assert "found by the tiled second look (far_faces)" in r.reasons
    cx, cy = (r.box[0] + r.box[2]) / 2, (r.box[1] + r.box[3]) / 2
    assert abs(cx - centre[0]) < 30 and abs(cy - centre[1]) < 30
    assert 40 < r.box[2] - r.box[0] < 70


def test_far_faces_keeps_empty_frames_empty_and_leaves_found_faces_alone(astronaut_bgr):
    from edgefas import Decision, Detector

    wall = np.full((480, 640, 3), (90, 140, 170), np.uint8)
    assert Detector(far_faces=True)(wall).decision is Decision.NO_FACE
    near, far = Detector()(astronaut_bgr), Detector(far_faces=True)(astronaut_bgr)
    assert near.box == far.box and near.live_score == far.live_score
    assert not any("tiled" in x for x in far.reasons)
