"""Frame sources for sessions (a video file, a camera index, a folder of frames) and the overlay
that ``edgefas watch`` draws."""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data.image_files import find_images, suffix_list
from .errors import EdgefasError
from .runtime.decode import decode_image
from .session import SessionState, Step

_COLOURS = {SessionState.LIVE: (60, 200, 60), SessionState.SPOOF: (40, 40, 230),
            SessionState.PENDING: (0, 200, 230), SessionState.TIMEOUT: (160, 160, 160)}


@dataclass
class FrameSource:
    """Frames with timestamps in seconds. ``total`` is None for a live camera."""

    name: str
    frames: Iterator[tuple[np.ndarray, float]]
    total: int | None
    fps: float
    size: tuple[int, int] | None  # (width, height) when known up front


def _capture_frames(cap: cv2.VideoCapture, fps: float, live: bool
                    ) -> Iterator[tuple[np.ndarray, float]]:
    import time

    t0, i = time.monotonic(), 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            # a file's time is its frame index; a camera's is the wall clock
            yield frame, (time.monotonic() - t0) if live else i / fps
            i += 1
    finally:
        cap.release()


def _folder_frames(files: list[Path], fps: float) -> Iterator[tuple[np.ndarray, float]]:
    times = frame_times(files, fps)
    for f, t in zip(files, times):
        # the Detector's own decoder: its size checks, and a truncated file is bad_input (an
        # unreadable file is passed on as an empty array, which the Detector reports)
        img = decode_image(str(f)).image
        yield (img if img is not None else np.zeros((0, 0, 3), np.uint8)), t


def frame_times(files: list[Path], fps: float) -> list[float]:
    """Seconds of each frame of a folder. Names that each end in a frame number, rising
    (``frame_00013.jpg``, ``13.png``), are frame indices of the video: a folder sampled every
    12th frame is 12 / fps s apart, as it was filmed (a session's motion check compares
    frames by time). Otherwise frames are 1 / fps apart."""
    numbers = []
    for f in files:
        m = re.search(r"(\d+)$", f.stem)
        numbers.append(int(m.group(1)) if m else None)
    if all(n is not None for n in numbers) and \
            all(b > a for a, b in zip(numbers, numbers[1:])):  # type: ignore[operator]
        return [(n - numbers[0]) / fps for n in numbers]  # type: ignore[operator]
    return [i / fps for i in range(len(files))]


def _frame_order(path: Path) -> tuple:
    """Numbers in names compare as numbers: ffmpeg's 1.jpg ... 10.jpg play in that order."""
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                 for t in re.split(r"(\d+)", path.name) if t)


def open_source(source: str | os.PathLike[str], *, fps: float | None = None) -> FrameSource:
    """Open a video file, a camera (``"0"``, ``"1"``...) or a folder of frames (in name order,
    numbers compared as numbers).

    Args:
        fps: the frame rate of a folder's frames (default 25; numbered frames are stamped
            with their number / fps, see :func:`frame_times`) or to assume for a video file
            that does not declare one.

    Raises:
        EdgefasError: the source does not exist or cannot be opened.
    """
    src = str(source)
    if src.isdigit():
        cap = cv2.VideoCapture(int(src))
        if not cap.isOpened():
            raise EdgefasError(f"cannot open camera {src} (is one connected and free?)")
        rate = cap.get(cv2.CAP_PROP_FPS) or fps or 30.0
        return FrameSource(f"camera {src}", _capture_frames(cap, rate, live=True), None, rate,
                           None)
    path = Path(src)
    if path.is_dir():
        files = sorted(find_images(path, recursive=False), key=_frame_order)
        if not files:
            raise EdgefasError(f"{path} holds no images ({suffix_list()})")
        rate = fps or 25.0
        return FrameSource(str(path), _folder_frames(files, rate), len(files), rate, None)
    if not path.is_file():
        raise EdgefasError(f"{path}: no such video file, folder or camera index")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise EdgefasError(f"cannot read {path} as a video (unsupported codec or not a video)")
    rate = cap.get(cv2.CAP_PROP_FPS) or fps or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    return FrameSource(str(path), _capture_frames(cap, rate, live=False), total, rate, size)


def annotate(frame: np.ndarray, step: Step) -> np.ndarray:
    """A copy of ``frame`` with the face box, the frame score and the session verdict (with
    its motion ratio once the motion check has one)."""
    out = frame.copy() if frame.ndim == 3 and frame.size else np.zeros((240, 320, 3), np.uint8)
    r, v = step.result, step.verdict
    colour = _COLOURS[v.state]
    if r.box is not None:
        x1, y1, x2, y2 = (int(round(c)) for c in r.box)
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, 2)
        if r.live_score is not None:
            cv2.putText(out, f"{r.live_score:.2f}", (x1, max(12, y1 - 4)),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    score = f" {v.score:.2f}" if v.score is not None else ""
    motion = f"  motion {v.motion:.2f}" if v.motion is not None else ""
    text = f"{v.state.value.upper()}{score}  frames {v.frames}{motion}  ({r.decision.value})"
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out


def gui_available() -> bool:
    """False with opencv-python-headless (the default install): no window can be opened."""
    try:
        cv2.namedWindow("edgefas-probe", cv2.WINDOW_AUTOSIZE)
        cv2.destroyWindow("edgefas-probe")
        return True
    except cv2.error:
        return False
