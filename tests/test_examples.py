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
