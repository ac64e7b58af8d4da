#!/usr/bin/env python3
"""A kiosk loop: frames in, one verdict out, and a prompt for the person in front meanwhile.

    python examples/kiosk_loop.py clip.mp4            # a video file
    python examples/kiosk_loop.py 0                   # camera index 0
    python examples/kiosk_loop.py frames/ --far-faces # a folder of frames, camera far away

Every frame goes through a session (smoothing over frames, face tracking, a motion check that
tells a person from a photo on a stand, timeout); until the session decides, each frame's
typed decision becomes a short instruction to show on screen.
Needs only the runtime install (numpy, OpenCV, onnxruntime): no torch.
"""
from __future__ import annotations

import argparse
import sys

import edgefas
from edgefas.errors import EdgefasError
from edgefas.watch import open_source  # camera index, video file or folder, as `edgefas watch`


def prompt(r: edgefas.Result) -> str | None:
    """What to show the person for a frame that could not be scored (None when it was)."""
    d = r.decision
    if d is edgefas.Decision.NO_FACE:
        return "Please look at the camera (come closer)"
    if d is edgefas.Decision.FACE_TOO_SMALL:
        return "Please come closer"
    if d is edgefas.Decision.MULTIPLE_FACES:
        return "One person at a time, please"
    if d is edgefas.Decision.LOW_QUALITY:
        why = " ".join(r.reasons)
        if "too dark" in why:
            return "More light on your face, please"
        if "over-exposed" in why:
            return "Too bright: please step out of direct light"
        return "Please hold still"
    if d is edgefas.Decision.BAD_INPUT:
        return "Camera problem: please call staff"
    return None  # live or spoof: the session aggregates it


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="camera index, video file or folder of frames")
    ap.add_argument("--far-faces", action="store_true", help="look for small (far) faces too")
    args = ap.parse_args(argv)
    try:
        source = open_source(args.source)
    except EdgefasError as exc:
        raise SystemExit(f"kiosk_loop: {exc}") from exc
    det = edgefas.Detector(far_faces=args.far_faces)  # build once; thread-safe
    # defaults: mean of 10 frames, decide after 5, live only once the face moved more than
    # the background over 3 frame pairs >= 0.4 s apart, 10 s timeout
    session = det.session()
    last = None
    for i, (frame, t) in enumerate(source.frames):
        step = session(frame, t=t)  # the source's clock, so timeouts also work on files
        v = step.verdict
        if v.decided:
            print(f"frame {i}: VERDICT {v.state} (score {v.score:.3f}, {v.frames} frames)")
            return 0
        if v.state is edgefas.SessionState.TIMEOUT:  # no decision in time: start over
            print(f"frame {i}: no decision within the timeout; starting a new session")
            session = det.session()
            last = None
            continue
        text = prompt(step.result)
        if text and text != last:  # show a prompt when it changes, not on every frame
            print(f"frame {i}: {text}")
        last = text
    print("no verdict: the video ended first")
    return 0


if __name__ == "__main__":
    sys.exit(main())
