"""Run a video session on a video file, a camera or a folder of frames: a progress bar and the
session verdict (or, with --json, one JSON line per frame and the verdict); optionally an
annotated video or a live window.

The session smooths the live score over --window frames and decides once --min-frames frames
of the same face were scored; a different face (box IoU < --min-iou, or another appearance at
the same place) restarts it. It says live only once the face has moved more than its
background (--min-motion-ratio, over frame pairs >= --motion-gap s apart): a photo or screen
on a stand is a still image and gets spoof. Frames of a folder named with their frame number
(frame_00013.jpg) are timed by it at --fps.

examples:
  edgefas watch clip.mp4 --out clip_annotated.mp4
  edgefas watch 0 --show --stop-on-decision           # first camera, window (needs a GUI OpenCV)
  edgefas watch replay/test/test__attack__hand__attack_print_client009_session01_highdef_photo_adverse
  edgefas watch frames/ --json > steps.jsonl
"""
from __future__ import annotations

import argparse
import json

from ..errors import EdgefasError
from . import add_far_faces_argument
from .argtypes import fraction, non_negative_float, positive_float, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..session import SessionConfig

    d = SessionConfig()
    p.add_argument("source", help="video file, camera index (0, 1, ...) or folder of frames")
    p.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    p.add_argument("--threads", type=positive_int, default=1, help="threads per model (default: %(default)s)")
    p.add_argument("--out", help="write an annotated video here (.mp4 or .avi)")
    p.add_argument("--show", action="store_true", help="show an overlay window (q quits)")
    p.add_argument("--json", action="store_true", help="print one JSON line per frame")
    p.add_argument("--stop-on-decision", action="store_true",
                   help="stop at the first live/spoof verdict, as a kiosk would")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--fps", type=positive_float, help="frame rate for a folder of frames (default "
                   "25; numbered frames are timed number / fps)")
    p.add_argument("--window", type=positive_int, default=d.window,
                   help="frames averaged (default: %(default)s)")
    p.add_argument("--min-frames", type=positive_int, default=d.min_frames,
                   help="scored frames needed to decide (default: %(default)s)")
    p.add_argument("--min-iou", type=fraction, default=d.min_iou,
                   help="box IoU below which the face is a new one (default: %(default)s)")
    p.add_argument("--timeout", type=non_negative_float, default=d.timeout_s,
                   help="seconds without a decision -> timeout (default: %(default)s; 0 = never)")
    p.add_argument("--aggregate", choices=("mean", "median"), default=d.aggregate)
    p.add_argument("--min-motion-ratio", type=non_negative_float, default=d.min_motion_ratio,
                   help="face/background motion the face must beat to be live "
                        "(default: %(default)s; 0 = no motion check)")
    p.add_argument("--motion-gap", type=non_negative_float, default=d.motion_gap_s,
                   help="least seconds between the frames of a motion pair (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_far_faces_argument(p)


def run(args: argparse.Namespace) -> int:
    import cv2
    from tqdm import tqdm

    from ..detector import Detector
    from ..watch import annotate, gui_available, open_source

    if args.show and not gui_available():
        raise EdgefasError("--show needs OpenCV with GUI support; the default install is "
                           "opencv-python-headless: use --out annotated.mp4 instead")
    det = Detector(args.bundle, threads=args.threads, far_faces=args.far_faces)
    session = det.session(window=args.window, min_frames=args.min_frames, min_iou=args.min_iou,
                          timeout_s=args.timeout or None, aggregate=args.aggregate,
                          min_motion_ratio=args.min_motion_ratio or None,
                          motion_gap_s=args.motion_gap)
    src = open_source(args.source, fps=args.fps)
    writer = None
    step = None
    total = src.total if args.max_frames is None else min(src.total or args.max_frames,
                                                           args.max_frames)
    bar = tqdm(total=total, unit="frame", desc=f"watching {src.name[-40:]}",
               disable=args.no_progress or args.json)
    try:
        for i, (frame, t) in enumerate(src.frames):
            if args.max_frames is not None and i >= args.max_frames:
                break
            step = session(frame, t=t)
            bar.update(1)
            bar.set_postfix_str(f"{step.verdict.state.value} {step.result.decision.value}")
            if args.json:
                print(json.dumps({"frame": i, "t": round(t, 3), **step.to_dict()}))
            if args.out or args.show:
                view = annotate(frame, step)
                if args.out:
                    if writer is None:
                        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if args.out.endswith(".mp4")
                                                          else "MJPG"))
                        size = (view.shape[1], view.shape[0])
                        writer = cv2.VideoWriter(args.out, fourcc, src.fps, size)
                        if not writer.isOpened():
                            raise EdgefasError(f"cannot write a video to {args.out}")
                    if (view.shape[1], view.shape[0]) != size:  # a folder of mixed sizes
                        view = cv2.resize(view, size)
                    writer.write(view)
                if args.show:
                    cv2.imshow("edgefas watch", view)
                    if cv2.waitKey(1) & 0xFF == ord("q"):
                        break
            if args.stop_on_decision and step.verdict.decided:
                break
    finally:
        bar.close()
        if writer is not None:
            writer.release()
        if args.show:
            cv2.destroyAllWindows()
    if step is None:
        raise EdgefasError(f"{src.name}: no frames could be read")
    v = step.verdict
    score = f"{v.score:.3f}" if v.score is not None else "-"
    msg = (f"verdict: {v.state.value}  score {score}  threshold {v.threshold:.3f}  "
           f"frames scored {v.frames}  resets {v.resets}")
    print(json.dumps({"verdict": v.to_dict()}) if args.json else msg)
    return 0
