"""The halving fast paths for HD frames: exact where they apply, unchanged where they do not."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefas.runtime import face_align, face_detect
from edgefas.runtime.downscale import halve
from edgefas.runtime.face_align import _halvings_needed, align_face


def test_halve_is_the_rounded_mean_of_2x2_blocks_and_drops_an_odd_edge():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    out = halve(img)
    assert out.shape == (3, 4, 3)
    blocks = img[:6, :8].astype(np.int32).reshape(3, 2, 4, 2, 3).sum(axis=(1, 3))
    np.testing.assert_array_equal(out, (blocks + 2) // 4)
    assert halve(img, 0) is img
    assert halve(img, 5).shape == (1, 2, 3)   # stops at one row instead of failing


@pytest.mark.parametrize("scale,k", [(0.5, 0), (0.2, 0), (0.19, 1), (0.09, 2), (0.05, 2),
                                     (0.0, 8), (float("nan"), 0)])
def test_halvings_needed(scale, k):
    assert _halvings_needed(scale) == k


def _hd_frame(astronaut_bgr: np.ndarray, width: int, height: int, zoom: float) -> np.ndarray:
    """A ``width`` x ``height`` window of the astronaut enlarged ``zoom`` times, around her face
    (centre at about (225, 128) in the 512 px original): a close face on an HD camera."""
    img = cv2.resize(astronaut_bgr, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
    cx, cy = round(225 * zoom), round(128 * zoom)
    frame = np.full((height, width, 3), 90, np.uint8)
    x0, y0 = cx - width // 2, cy - height // 2
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(img.shape[1], x0 + width), min(img.shape[0], y0 + height)
    frame[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return frame


@pytest.fixture()
def one_step(monkeypatch):
    def switch_off():
        monkeypatch.setattr(face_align, "HALVE_BELOW_SCALE", 0.0)
        monkeypatch.setattr(face_detect, "HALVE_ABOVE_PX", 10 ** 9)
    return switch_off


def test_small_frames_take_the_one_step_path_unchanged(detector, astronaut_bgr, one_step):
    # The 512 px astronaut (scale above 0.2, frame under the letterbox limit): the crops and
    # scores every published figure was made with must not move by a single bit.
    fast = detector.face_crop(astronaut_bgr)[0]
    fast_r = detector(astronaut_bgr)
    one_step()
    ref = detector.face_crop(astronaut_bgr)[0]
    np.testing.assert_array_equal(fast, ref)
    assert detector(astronaut_bgr).live_score == fast_r.live_score


@pytest.mark.parametrize("size,zoom", [((1920, 1080), 3.6), ((3841, 2161), 6.0)])  # odd: edges dropped
def test_hd_frames_give_the_one_step_geometry(detector, astronaut_bgr, one_step, size, zoom):
    frame = _hd_frame(astronaut_bgr, *size, zoom)
    faces = detector.face_stage.detector.detect(frame)
    fast_crop = detector.face_crop(frame)[0]
    al = align_face(frame, faces[0].keypoints, size=128, crop_scale=1.5)
    assert np.hypot(*al.matrix[:, 0]) < face_align.HALVE_BELOW_SCALE   # the fast path ran
    one_step()
    ref_faces = detector.face_stage.detector.detect(frame)
    width = ref_faces[0].width
    # The same face in the same place. The crops are not compared: at 4K one pixel of the
    # detector's 128 px input is 30 frame pixels, so keypoints a few pixels apart already
    # give visibly different crops (benchmarks/frame_size.py measures that jitter).
    assert np.abs(np.subtract(faces[0].box, ref_faces[0].box)).max() < 0.01 * width
    assert np.abs(faces[0].keypoints - ref_faces[0].keypoints).max() < 0.01 * width
    assert fast_crop is not None


def test_the_pre_shrink_maps_pixel_centres_exactly(detector, astronaut_bgr, monkeypatch):
    # Same keypoints, both ways: only the pre-shrink's filter differs (2x2 means, then the
    # rest, vs one area resize). Measured: mean difference 0.6 here; mapping the halvings'
    # pixel centres differently from the one-step way (a 0.1 px shift) gives 1.4-2.0.
    frame = _hd_frame(astronaut_bgr, 2400, 2400, 7.0)
    kps = detector.face_stage.detector.detect(frame)[0].keypoints
    fast = align_face(frame, kps, size=128, crop_scale=1.5)
    assert face_align._halvings_needed(np.hypot(*fast.matrix[:, 0])) == 2
    monkeypatch.setattr(face_align, "HALVE_BELOW_SCALE", 0.0)
    ref = align_face(frame, kps, size=128, crop_scale=1.5)
    np.testing.assert_array_equal(fast.matrix, ref.matrix)
    diff = np.abs(fast.crop.astype(np.int16) - ref.crop.astype(np.int16))
    assert diff.mean() < 1.0, diff.mean()


def test_a_thin_wide_frame_is_answered_not_hung(detector):
    # 1 x 3000: too wide for the one-step letterbox, too thin to halve. It once looped forever.
    strip = np.random.default_rng(0).integers(0, 256, (1, 3000, 3), dtype=np.uint8)
    assert detector(strip).decision.value == "no_face"


@pytest.mark.parametrize("w, h", [(1617, 2160), (1280, 195), (640, 480), (250, 250), (1920, 1080)])
def test_letterbox_scales_map_the_resized_frame_back_onto_the_whole_frame(w, h):
    # boxes are mapped back with the resize's own x/y scales: its far edges land on the frame's
    from edgefas.runtime.face_detect import INPUT_SIZE, _letterbox

    _, (sx, sy), pad_x, pad_y = _letterbox(np.zeros((h, w, 3), np.uint8))
    nominal = INPUT_SIZE / max(h, w)
    nw, nh = max(1, round(w * nominal)), max(1, round(h * nominal))
    assert (pad_x + nw - pad_x) / sx == pytest.approx(w) and (pad_y + nh - pad_y) / sy == pytest.approx(h)
    if w * nominal == round(w * nominal) and h * nominal == round(h * nominal):
        assert sx == sy == nominal   # 4:3, 16:9, square: the old mapping, bit for bit
