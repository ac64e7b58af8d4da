"""Video-level vs frame-level metrics on Replay-Attack's 20-frames-per-video tree.

Every devel and test frame is scored once by the Detector (cached under
$EDGEFAS_CACHE/video_eval/, default ~/.cache/edgefas, per bundle and data tree), the session
rule (window, min_frames, aggregate) is chosen on devel, and test is reported once: APCER per
species, BPCER and HTER at the bundle's devel threshold, per frame and per video, with counts.

examples:
  edgefas eval-video
  edgefas eval-video --replay-root ~/.cache/edgefas/datasets/replay-attack/frames/replay_attack \\
      --json video_level.json --markdown video_level.md
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    p.add_argument("--replay-root", help="the 20-frames-per-video tree (default: "
                   "$EDGEFAS_DATA/replay-attack/frames/replay_attack)")
    p.add_argument("--json", dest="json_out", help="write the full report here")
    p.add_argument("--markdown", help="write the table here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from ..data.sources import DataRoots
    from ..video_eval import run_video_eval, to_markdown

    root = args.replay_root or DataRoots().resolve().replay_frames
    rep = run_video_eval(root, bundle=args.bundle, progress=not args.no_progress)
    command = "edgefas eval-video " + " ".join(shlex.quote(a) for a in args._argv[1:])
    rep["command"] = command.strip()
    md = to_markdown(rep, rep["command"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rep, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(md)
    print(md)
    return 0
