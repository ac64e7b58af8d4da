"""Latency of a bundle per stage (decode, detect, align, thumbnail, score) and end to end.

Frames are 640x480 BGR arrays (what a camera hands over; ``frame_size`` for another camera),
made from the given images by letterboxing; each is scored ``warmup`` times untimed, then
``runs`` timed passes over all frames. Set ``OMP_WAIT_POLICY=PASSIVE`` before starting
Python (``benchmarks/latency.py`` does): spinning OpenMP threads make 2-thread runs slower
than 1 on a busy 2-core machine.
"""
from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .detector import Detector
from .runtime.decode import decode_image

STAGES = ("decode", "detect", "align", "thumbnail", "score", "total")
#: A VGA webcam: the frame size every published latency figure uses unless it says otherwise.
DEFAULT_FRAME = (640, 480)


def parse_frame_size(text: str) -> tuple[int, int]:
    """``"1920x1080"`` -> ``(1920, 1080)``; ValueError on anything else (argparse ``type=``)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"frame size must look like 1920x1080, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise ValueError(f"frame size {w}x{h} outside 16-8192 px (8192 is the Detector's limit)")
    return w, h


def frame_label(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]} BGR uint8 array"


def to_frame(image: np.ndarray, width: int = 640, height: int = 480) -> np.ndarray:
    """Letterbox an image into a ``width`` x ``height`` BGR frame."""
    h, w = image.shape[:2]
    s = min(width / w, height / h)
    resized = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    y0, x0 = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    frame[y0:y0 + resized.shape[0], x0:x0 + resized.shape[1]] = resized
    return frame


def load_frames(images: Sequence[str | Path], size: tuple[int, int] = DEFAULT_FRAME
                ) -> list[np.ndarray]:
    """``size`` (width, height) frames from the readable ``images``; ValueError when none."""
    frames = []
    for p in images:
        d = decode_image(p)
        if d.image is not None:
            frames.append(to_frame(d.image, *size))
    if not frames:
        raise ValueError("no readable images to benchmark with")
    return frames


def benchmark(images: Sequence[str | Path], *, bundle: str | Path | None = None,
              backend: str = "onnxruntime", precision: str = "fp32", threads: int = 2,
              runs: int = 20, warmup: int = 3, frame_size: tuple[int, int] = DEFAULT_FRAME
              ) -> dict[str, Any]:
    """Time the Detector on ``frame_size`` frames made from ``images``; p50/p90 per stage in ms."""
    frames = load_frames(images, frame_size)
    det = Detector(bundle, backend=backend, precision=precision, threads=threads)
    for _ in range(warmup):
        for f in frames:
            det(f)
    samples: dict[str, list[float]] = {s: [] for s in STAGES}
    decisions: dict[str, int] = {}
    t0 = time.perf_counter()
    for _ in range(runs):
        for f in frames:
            r = det(f)
            decisions[r.decision.value] = decisions.get(r.decision.value, 0) + 1
            for s in STAGES:
                if s in r.timings_ms:
                    samples[s].append(r.timings_ms[s])
    wall = time.perf_counter() - t0
    stats = {s: {"p50_ms": float(np.percentile(v, 50)), "p90_ms": float(np.percentile(v, 90)),
                 "n": len(v)} for s, v in samples.items() if v}
    bundle_dir = det.bundle.path
    size = sum(f.stat().st_size for f in bundle_dir.rglob("*") if f.is_file())
    return {
        "bundle": det.bundle.name, "backend": backend, "precision": precision, "threads": threads,
        "frame": frame_label(frame_size), "frames": len(frames), "runs": runs,
        "warmup_passes": warmup, "decisions": decisions, "stages": stats,
        "fps": len(frames) * runs / wall, "bundle_mb": round(size / 1e6, 3),
        "machine": {"cpu": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "python": platform.python_version(),
                    "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(unset)")},
    }


def to_markdown(result: dict[str, Any]) -> str:
    rows = [f"Bundle `{result['bundle']}` ({result['bundle_mb']} MB), backend "
            f"{result['backend']} {result.get('precision', 'fp32')}, {result['threads']} threads, "
            f"{result['frames']} frames "
            f"({result['frame']}) x {result['runs']} runs; OMP_WAIT_POLICY="
            f"{result['machine']['omp_wait_policy']}; {result['fps']:.1f} frames/s.",
            "", "| Stage | p50 ms | p90 ms | n |", "|---|---:|---:|---:|"]
    for s, v in result["stages"].items():
        rows.append(f"| {s} | {v['p50_ms']:.2f} | {v['p90_ms']:.2f} | {v['n']} |")
    return "\n".join(rows) + "\n"

