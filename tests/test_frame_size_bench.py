"""benchmarks/frame_size.py: the HD fast paths timed against the one-step way."""
from __future__ import annotations

import json

import cv2
import numpy as np

from edgefas.runtime import face_align, face_detect

from .conftest import benchmark_module


def test_place_centres_the_photo_at_the_asked_height():
    fs = benchmark_module("frame_size")
    photo = np.full((100, 80, 3), 255, np.uint8)
    frame = fs.place(photo, 1920, 1080, 0.5)
    assert frame.shape == (1080, 1920, 3)
    ys, xs = np.nonzero(frame[..., 0] == 255)
    assert ys.max() - ys.min() + 1 == 540 and abs(xs.mean() - 960) <= 1


def test_one_step_switches_both_fast_paths_off_and_back():
    fs = benchmark_module("frame_size")
    before = face_align.HALVE_BELOW_SCALE, face_detect.HALVE_ABOVE_PX
    with fs.one_step():
        assert face_align.HALVE_BELOW_SCALE == 0.0 and face_detect.HALVE_ABOVE_PX > 10 ** 6
    assert (face_align.HALVE_BELOW_SCALE, face_detect.HALVE_ABOVE_PX) == before


def test_a_tiny_run_writes_both_reports(astronaut_bgr, tmp_path):
    fs = benchmark_module("frame_size")
    (tmp_path / "fixtures" / "london").mkdir(parents=True)
    # The astronaut cut to a portrait around her face, as the london photos are.
    cv2.imwrite(str(tmp_path / "fixtures" / "london" / "a.jpg"), astronaut_bgr[0:300, 75:375])
    out = tmp_path / "frame_size"
    assert fs.main(["--photos", "1", "--rounds", "1", "--shared", str(tmp_path),
                    "--out", str(out)]) == 0
    result = json.loads(out.with_suffix(".json").read_text())
    assert [r["frame"] for r in result["rows"]] == ["640x480", "1280x720", "1920x1080", "3840x2160"]
    small = result["rows"][0]["agreement"]["fast path"]
    # Below both thresholds the fast way is the one-step way, bit for bit.
    assert small["same_decision"] == 1 and small["crop_mean_abs_diff"] == 0.0
    md = out.with_suffix(".md").read_text()
    assert "| 3840x2160 |" in md and "one pixel" not in md and "1 detector pixel" in md
