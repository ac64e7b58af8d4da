#!/usr/bin/env python3
"""How far the face moves against its background, per kind of video: sets the motion check.

    python benchmarks/motion_cue.py                 # train and devel; writes results/motion_cue.*

Video sessions only say ``live`` once the face has moved more than its background
(``edgefas.runtime.motion``, ``SessionConfig.min_motion_ratio``). This replays every train
and devel video of Replay-Attack's 20-frames-per-video tree through the default session (the
shipped bundle's per-frame Results, cached as ``edgefas eval-video`` caches them; frame times
from the frame index at 25 fps) and records the motion statistic the session compares at its
decision, per kind of video: bona fide, still photos (photos on a fixed support: print,
mobile photo, highdef photo), hand-held photos, replayed videos (fixed or hand-held).

The default ``min_motion_ratio`` comes from **devel** by the rule fixed in
docs/session_motion/plan.md: the 90th percentile of the devel still photos, rounded up to
0.05. Test is not read here (``edgefas eval-video`` reports it once).
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent
KINDS = ("bona fide", "still photo", "hand-held photo", "replayed video")
QUANTILES = (0, 5, 10, 50, 90, 95, 100)


def kind(sample) -> str:
    """Which of KINDS a Replay-Attack sample's video is."""
    if not sample.is_attack:
        return "bona fide"
    photo = sample.species == "print" or "_photo" in Path(sample.path).parent.name
    if not photo:
        return "replayed video"
    return "still photo" if sample.support == "fixed" else "hand-held photo"


def motion_at_decision(frames: list, config) -> float | None:
    """The motion statistic a session with ``config`` compares when it first decides (the
    classifier's verdict aside: threshold 0 and a check that always passes, so the decision
    comes as soon as the frames and pairs are there)."""
    from edgefas.session import Session

    s = Session(threshold=0.0, config=replace(config, min_motion_ratio=0.0))
    for t, r in frames:
        v = s.feed(r, t=t).verdict
        if v.decided:
            return v.motion
    return None


def rule_value(still: list[float]) -> float:
    """The plan's rule: 90th percentile of the devel still photos, rounded up to 0.05."""
    return math.ceil(float(np.percentile(still, 90)) / 0.05 - 1e-9) * 0.05


def summarise(values: dict[str, list[float | None]], candidates: list[float]) -> dict:
    out = {}
    for k in KINDS:
        v = np.array([x for x in values.get(k, []) if x is not None], float)
        out[k] = {"videos": len(values.get(k, [])), "measured": int(v.size),
                  "quantiles": {f"p{q}": float(np.percentile(v, q)) for q in QUANTILES} if v.size else {},
                  "below": {f"{c:.2f}": int((v < c).sum()) for c in candidates}}
    return out


def main(argv: list[str] | None = None) -> int:
    import edgefas
    from edgefas.data.replay_attack import load_replay_attack
    from edgefas.data.samples import video_key
    from edgefas.data.sources import DataRoots
    from edgefas.session import SessionConfig
    from edgefas.video_eval import _group, cache_dir_for, frame_results

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    p.add_argument("--replay-root", help="Replay-Attack 20-frames-per-video tree (default: "
                   "$EDGEFAS_DATA/replay-attack/frames/replay_attack)")
    p.add_argument("--candidates", default="1.1,1.2,1.3,1.4,1.5,1.6",
                   help="thresholds whose counts below are reported")
    p.add_argument("--out", type=Path, default=HERE / "results" / "motion_cue")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    candidates = [float(c) for c in args.candidates.split(",")]
    root = args.replay_root or DataRoots().resolve().replay_frames
    det = edgefas.Detector(args.bundle)
    cache = cache_dir_for(det, root)
    config = SessionConfig(timeout_s=None)
    argv_text = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rep: dict = {"command": f"python benchmarks/motion_cue.py {argv_text}".strip(),
                 "bundle": det.bundle.name,
                 "session": {"min_frames": config.min_frames, "motion_gap_s": config.motion_gap_s,
                             "motion_pairs": config.motion_pairs,
                             "statistic": "75th percentile of the pairs' face/background ratios"}}
    raw: dict[str, dict[str, list[float | None]]] = {}
    for split in ("train", "devel"):
        samples = load_replay_attack(root, (split,))
        results = frame_results(det, samples, cache / f"{split}.json", not args.no_progress)
        groups, _, _ = _group(samples, results)
        # _group orders videos by video_key: the same order gives each video's kind
        first = {}
        for s in samples:
            first.setdefault(video_key(s), s)
        values: dict[str, list[float | None]] = {k: [] for k in KINDS}
        for vk, frames in zip(sorted(first), groups):
            values[kind(first[vk])].append(motion_at_decision(frames, config))
        raw[split] = values
        rep[split] = summarise(values, candidates)
    still = [x for x in raw["devel"]["still photo"] if x is not None]
    rep["rule"] = ("90th percentile of the devel still photos, rounded up to 0.05 "
                   "(docs/session_motion/plan.md)")
    rep["devel_still_p90"] = float(np.percentile(still, 90))
    rep["min_motion_ratio"] = round(rule_value(still), 2)
    value = rep["min_motion_ratio"]
    rep["devel_at_rule"] = {k: {"below": int(sum(x is not None and x < value for x in v)),
                                "videos": len(v)} for k, v in raw["devel"].items()}
    rep["per_video"] = {split: {k: [None if x is None else round(x, 4) for x in v]
                                for k, v in vals.items()} for split, vals in raw.items()}
    write_report(args.out, rep, to_markdown(rep))
    return 0


def to_markdown(rep: dict) -> str:
    s = rep["session"]
    lines = [f"# Face/background motion per kind of video (bundle {rep['bundle']})", "",
             f"Command: `{rep['command']}`. Replay-Attack 20-frames-per-video tree, train and "
             "devel (test is not read here). The statistic is what the default session compares "
             f"when it first decides: {s['statistic']}, frame pairs >= {s['motion_gap_s']} s "
             f"apart, at least {s['motion_pairs']} pairs and {s['min_frames']} frames (frame "
             "times from the frame index, 25 fps: bona fide frames 0.79 s apart, attacks 0.5 s).",
             "", f"Rule ({rep['rule']}): devel still-photo 90th percentile "
             f"{rep['devel_still_p90']:.3f} -> **min_motion_ratio {rep['min_motion_ratio']}**.",
             "", "| split | kind | videos | p0 | p5 | p10 | p50 | p90 | p95 | p100 | "
             + " | ".join(f"< {c}" for c in rep['train']['bona fide']['below']) + " |",
             "|" + "---|" * (10 + len(rep['train']['bona fide']['below']))]
    for split in ("train", "devel"):
        for k in KINDS:
            r = rep[split][k]
            q = r["quantiles"]
            cells = [f"{q[f'p{p}']:.2f}" if q else "-" for p in QUANTILES]
            below = [f"{n}/{r['measured']}" for n in r["below"].values()]
            lines.append(f"| {split} | {k} | {r['videos']} ({r['measured']} measured) | "
                         + " | ".join(cells + below) + " |")
    at = rep["devel_at_rule"]
    lines += ["", f"At {rep['min_motion_ratio']} on devel: " + ", ".join(
        f"{k} {v['below']}/{v['videos']} below" for k, v in at.items()) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
