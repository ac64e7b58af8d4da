"""benchmarks/capture_light.py: the re-rendering under other light, and the summary."""
from __future__ import annotations

import numpy as np
import pytest

from .conftest import benchmark_module


def _srgb_to_linear(v: float) -> float:
    v /= 255.0
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def test_original_is_the_frame_itself_and_exposure_scales_linear_light():
    cl = benchmark_module("capture_light")
    frame = np.full((8, 8, 3), 118, np.uint8)   # about 18 % grey in linear light
    assert cl.relight(frame, "original") is frame
    levels = {name: int(cl.relight(frame, name)[0, 0, 1]) for name in ("-2 EV", "-1 EV", "+1 EV")}
    assert levels["-2 EV"] < levels["-1 EV"] < 118 < levels["+1 EV"]
    for name, gain in (("-1 EV", 0.5), ("+1 EV", 2.0)):
        # within one level of the exact sRGB value of gain x linear light
        got = _srgb_to_linear(levels[name])
        assert got == pytest.approx(gain * _srgb_to_linear(118), rel=0.03)
    bright = cl.relight(np.full((2, 2, 3), 250, np.uint8), "+1 EV")
    assert (bright == 255).all()   # clipped, not wrapped


@pytest.mark.parametrize("name,red_up", [("warm", True), ("warm, strong", True),
                                         ("cool", False), ("cool, strong", False)])
def test_white_balance_moves_red_against_blue_and_keeps_green(name, red_up):
    cl = benchmark_module("capture_light")
    frame = np.full((4, 4, 3), 128, np.uint8)     # BGR
    out = cl.relight(frame, name).astype(int)
    b, g, r = out[0, 0]
    assert g == 128
    assert (r > 128 and b < 128) if red_up else (r < 128 and b > 128)


def test_summary_counts_errors_refusals_and_flips_against_the_original():
    cl = benchmark_module("capture_light")
    thr = 0.5
    rows = [
        # a bona fide face: accepted, then rejected at -1 EV (an error and a flip), refused at -2 EV
        {"path": "a", "is_attack": False, "condition": "original", "outcome": "scored", "score": 0.9},
        {"path": "a", "is_attack": False, "condition": "-1 EV", "outcome": "scored", "score": 0.2},
        {"path": "a", "is_attack": False, "condition": "-2 EV", "outcome": "low_quality", "score": None},
        # an attack: rejected, then accepted at -1 EV (an error and a flip), still rejected at -2 EV
        {"path": "b", "is_attack": True, "condition": "original", "outcome": "scored", "score": 0.1},
        {"path": "b", "is_attack": True, "condition": "-1 EV", "outcome": "scored", "score": 0.7},
        {"path": "b", "is_attack": True, "condition": "-2 EV", "outcome": "scored", "score": 0.3},
    ]
    s = cl.summarise(rows, thr)
    assert s["original"]["errors"] == 0 and s["original"]["scored"] == 2
    assert s["-1 EV"]["errors"] == 2 and s["-1 EV"]["flips"] == 2
    assert s["-1 EV"]["mean_abs_score_change"] == pytest.approx((0.7 + 0.6) / 2)
    assert s["-2 EV"]["refused"] == {"low_quality": 1}
    assert s["-2 EV"]["scored"] == 1 and s["-2 EV"]["errors"] == 0 and s["-2 EV"]["flips"] == 0
    assert "+1 EV" not in s   # conditions without rows are left out, not reported as zeros


def test_markdown_renders_every_condition_and_source():
    cl = benchmark_module("capture_light")
    rows = [{"path": "a", "is_attack": False, "condition": c, "outcome": "scored", "score": 0.9}
            for c in cl.CONDITIONS]
    report = {"command": "python benchmarks/capture_light.py --set london", "set": "london",
              "images": 1, "per_source": 400, "seed": 0,
              "conditions": {k: list(v) for k, v in cl.CONDITIONS.items()},
              "bundles": [{"bundle": "b", "version": "0.6.0", "path": "default", "threshold": 0.5,
                           "by_source": {"london": cl.summarise(rows, 0.5)}}]}
    md = cl.markdown(report)
    for c in cl.CONDITIONS:
        assert f"| {c} | 0/1 (0.0 %)" in md


def test_overall_averages_the_changed_conditions_and_takes_the_worse_bona_fide_source():
    cl = benchmark_module("capture_light")
    by_source = {
        "replay-devel attack": {"original": {"error_rate": 0.9}, "-1 EV": {"error_rate": 0.2},
                                "warm": {"error_rate": 0.4}},
        "replay-devel live": {"original": {"error_rate": 0.9}, "-1 EV": {"error_rate": 0.1},
                              "warm": {"error_rate": 0.0}},
        "lfw-devel": {"-1 EV": {"error_rate": 0.05}, "warm": {"error_rate": 0.3}},
        "cfd-devel": {"-1 EV": {"error_rate": 1.0}},   # reported, not in the figure
    }
    o = cl.overall(by_source)
    assert o["mean_apcer"] == pytest.approx((0.2 + 0.4) / 2)      # the original is left out
    assert o["mean_worst_bpcer"] == pytest.approx((0.1 + 0.3) / 2)
