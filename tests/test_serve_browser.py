"""End to end: the demo page in headless Chromium with a fake camera fed from a .y4m clip
(made here from the scikit-image astronaut, a public-domain live face), against a real
``edgefas serve`` app on a loopback port. CI installs Debian's chromium package (.ci/run);
elsewhere the test skips when no Chromium is on PATH."""
from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

from edgefas.serve import create_app  # noqa: E402
from edgefas.serve.server import serve_in_thread  # noqa: E402
from edgefas.session import MOTION_RATIO_DEFAULT  # noqa: E402

from .browser import Chromium, find_chromium, write_y4m  # noqa: E402
from .conftest import face_clip  # noqa: E402

CHROMIUM = find_chromium()
if CHROMIUM is None and os.environ.get("EDGEFAS_REQUIRE_BROWSER"):  # CI must not skip it
    raise RuntimeError("EDGEFAS_REQUIRE_BROWSER is set but no chromium is on PATH")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium; .ci/run does)")

STATE = "JSON.stringify(document.getElementById('verdict')?.dataset ?? null)"


def _clip(tmp_path, face: np.ndarray | None, name: str):
    if face is None:
        frames = [np.full((480, 640, 3), (60, 70, 80), np.uint8)] * 20
    else:
        # a face moving over a still background, there and back so the looping clip has no
        # jump (the session's motion check wants a face that moves more than its background)
        there = face_clip(face, 10)
        frames = there + there[::-1]
    return write_y4m(tmp_path / name, frames)


def _watch_page(clip, tmp_path, url: str, until, timeout_s: float = 45.0) -> dict:
    import json

    browser = Chromium(CHROMIUM, clip, tmp_path / f"profile-{clip.stem}")
    try:
        browser.open(url + "/")
        deadline, state = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            raw = browser.evaluate(STATE)
            state = json.loads(raw) if raw else None
            if state and until(state):
                break
            time.sleep(0.3)
        browser.screenshot(tmp_path / f"{clip.stem}.png")  # kept in pytest's tmp dir to look at
        return state or {}
    finally:
        browser.close()


@pytest.fixture(scope="module")
def server(detector):
    with serve_in_thread(create_app(detector)) as url:
        yield url


def test_page_shows_a_live_verdict_with_box_and_score(server, tmp_path, astronaut_bgr):
    clip = _clip(tmp_path, astronaut_bgr, "live.y4m")
    state = _watch_page(clip, tmp_path, server, lambda s: s.get("state") == "live")
    assert state.get("state") == "live", state
    assert state["decision"] == "live" and state["box"] == "yes"
    assert float(state["score"]) > 0.9 and int(state["frames"]) >= 5  # session min_frames
    # the session's motion check saw the face move more than its background
    assert float(state["motion"]) >= MOTION_RATIO_DEFAULT
    png = cv2.imread(str(tmp_path / "live.png"))
    assert png is not None and png.shape[0] > 400


def test_page_without_a_face_stays_pending(server, tmp_path):
    clip = _clip(tmp_path, None, "empty.y4m")
    state = _watch_page(clip, tmp_path, server,
                        lambda s: int(s.get("responses", 0)) >= 3)
    assert int(state.get("responses", 0)) >= 3, state
    assert state["state"] == "pending" and state["decision"] == "no_face" and state["box"] == "no"
