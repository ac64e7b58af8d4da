"""The examples in examples/ run as documented."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_runs(tmp_path, astronaut_bgr):
    img = tmp_path / "astronaut.png"
    cv2.imwrite(str(img), astronaut_bgr)
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), str(img),
                          str(tmp_path / "nope.jpg")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert "live_score" in lines[0]
    assert "bad_input" in lines[1] and "file not found" in lines[1]


def test_kiosk_loop_prompts_then_decides(tmp_path, astronaut_bgr):
    import numpy as np

    from .conftest import face_clip

    frames = tmp_path / "frames"
    frames.mkdir()
    # every 12th frame of a 25 fps camera (numbered: timed 0.48 s apart by their numbers)
    wall = np.full((480, 640, 3), (90, 140, 170), np.uint8)
    for i in range(2):
        cv2.imwrite(str(frames / f"{12 * i:03d}.png"), wall)             # nobody there yet
    cv2.imwrite(str(frames / "024.png"), (astronaut_bgr // 8).astype(np.uint8))  # too dark
    for i, f in enumerate(face_clip(astronaut_bgr, 7), start=3):
        cv2.imwrite(str(frames / f"{12 * i:03d}.png"), f)                # a person, well lit
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "kiosk_loop.py"), str(frames)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "frame 0: Please look at the camera (come closer)"  # once, not per frame
    assert lines[1] == "frame 2: More light on your face, please"
    # the 5th scored frame decides (its 4 frame pairs show the face moving)
    assert lines[-1].startswith("frame 7: VERDICT live")
