"""benchmarks/face_size.py: shrink a photo around its face and score it at several scales."""
from __future__ import annotations

import numpy as np
import pytest

from edgefas.detector import Detector

from .conftest import benchmark_module


def _module():
    return benchmark_module("face_size")


def test_frame_at_scale_keeps_the_face_centred_and_never_enlarges():
    fs = _module()
    image = np.zeros((1000, 800, 3), np.uint8)
    image[400:600, 300:500] = 255  # a 200 px white "face"
    frame = fs.frame_at_scale(image, (300, 400, 500, 600), 0.5)
    assert frame.shape == (480, 640, 3)
    ys, xs = np.nonzero(frame[..., 0] > 127)
    assert abs((xs.max() - xs.min() + 1) - 100) <= 2 and abs(xs.mean() - 320) <= 2
    assert abs(ys.mean() - 240) <= 2
    with pytest.raises(ValueError, match="enlarged"):
        fs.frame_at_scale(image, (300, 400, 500, 600), 1.5)


def test_stability_counts_decision_changes_per_photo():
    fs = _module()
    rows = [{"path": "a/1.jpg", "is_attack": False, "by_scale": {
                "1.0": {"decision": "live", "live_score": 0.9, "face_width": 200},
                "0.5": {"decision": "spoof", "live_score": 0.2, "face_width": 100}}},
            {"path": "a/2.jpg", "is_attack": False, "by_scale": {
                "1.0": {"decision": "live", "live_score": 0.95, "face_width": 200},
                "0.5": {"decision": "no_face", "live_score": None, "face_width": None}}}]
    s = fs.summarise(rows, (1.0, 0.5))
    assert s["stability"]["all"]["decision_changes"] == 1
    assert s["stability"]["all"]["photos_scored_2plus"] == 1  # photo 2 has one scored scale
    assert s["per_scale"]["0.5"]["not_scored"] == 1 and s["per_scale"]["0.5"]["bpcer_errors"] == 1
    assert s["stability"]["all"]["score_spread_median"] == pytest.approx(0.7)


def test_sweep_on_a_real_face(astronaut_bgr, tmp_path):
    import cv2

    fs = _module()
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), astronaut_bgr)
    rows = fs.sweep(Detector(), [path], [False], (1.0, 0.9), "test")
    assert rows[0]["native_width"] and set(rows[0]["by_scale"]) == {"1.0", "0.9"}
    result = {"bundle": "b", "threshold": 0.5, "command": "c", "min_face_px": 48,
              "sets": {"astro": {"summary": fs.summarise(rows, (1.0, 0.9)), "photos": rows}}}
    md = fs.to_markdown(result)
    assert "| astro | 1.0 |" in md and "| astro | 0.9 |" in md and "| astro | 1 | 1 |" in md
