#!/usr/bin/env python3
"""Does a video session tell "same face, next frame" from "another face at the same place"?

    python benchmarks/face_signature.py                      # the shipped bundle's crops
    python benchmarks/face_signature.py --thresholds 0.7,0.8 --out R

Sessions track a face by its box and, since the box alone cannot see a swap (two people, or a
person and a photo of someone else, at one place), by its appearance: each frame's signature
(``edgefas.runtime.face_signature``) is compared with the tracked face's (the mean direction of
its signatures so far), and a similarity below ``SessionConfig.min_similarity`` starts a new
session. This measures both errors on Replay-Attack's 20-frames-per-video tree, from the
bundle's own aligned crops (the crop cache ``edgefas eval`` uses), exactly as a session meets
them:

- same face: every frame of a video (after its first) against the track of the frames before
  it (bona fide and attack videos; frames 0.5-0.8 s apart, more change than between a 30 fps
  camera's frames), where a similarity below the limit would be a needless reset;
- another face: for every video, the track of its first 5 frames against 5 frames of videos of
  other clients with the same label, species, support and lighting (someone else at the same
  place; fixed seed), where a similarity below the limit is a swap caught.

The thumbnail size (8 px), comparing with the track rather than the last frame, and the default
limit (0.85) were set on **devel** and on the astronaut photo: a face moving across the frame
(this repository's soak frames, benchmarks/reliability.py) or shifted by one detector pixel
must not reset. The detector's landmarks jump between a few alignments of one face: a 16 px
thumbnail compared frame to frame fell to 0.83 on the one-pixel shifts and an 8 px one to 0.81
on the soak frames; against the track, 8 px stays at or above 0.87 on both. At 0.85 no devel
frame resets needlessly. Test is reported beside it, once.
Writes benchmarks/results/face_signature.{json,md}.
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent
PAIRS_PER_VIDEO = 5
TRACK_FRAMES = 5   # frames of a face a session has seen before the swap


def tracks(samples: list, seed: int = 0) -> tuple[list[tuple[list[int], int]], list[tuple[list[int], int]]]:
    """(same-face cases, other-face cases), each ``(track frame indices, new frame index)``."""
    by_video: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        by_video[(s.split, s.support, s.video)].append(i)
    same = []
    for key in sorted(by_video):
        idx = sorted(by_video[key], key=lambda i: samples[i].path)
        by_video[key] = idx
        same += [(idx[:k], idx[k]) for k in range(1, len(idx))]
    by_cond: dict[tuple, list[tuple]] = defaultdict(list)
    for key, idx in by_video.items():
        s = samples[idx[0]]
        by_cond[(s.is_attack, s.species, s.support, s.lighting)].append(key)
    rng = np.random.default_rng(seed)
    other = []
    for keys in by_cond.values():
        for k in sorted(keys):
            subject = samples[by_video[k][0]].subject
            others = [o for o in sorted(keys) if samples[by_video[o][0]].subject != subject]
            for _ in range(PAIRS_PER_VIDEO if others else 0):
                o = others[int(rng.integers(len(others)))]
                other.append((by_video[k][:TRACK_FRAMES], int(rng.choice(by_video[o]))))
    return same, other


def _track_similarity(sig: np.ndarray, track: list[int], new: int) -> float:
    # what Session does: the new signature against the mean direction of the track's
    total = sig[track].sum(axis=0)
    return float(total @ sig[new] / np.linalg.norm(total))


def measure(crops: np.ndarray, samples: list, thresholds: list[float]) -> dict:
    from edgefas.runtime.face_signature import face_signature

    sig = np.stack([face_signature(c) for c in crops])
    same, other = tracks(samples)
    s_same = np.array([_track_similarity(sig, t, n) for t, n in same])
    s_other = np.array([_track_similarity(sig, t, n) for t, n in other])
    rows = []
    for t in thresholds:
        rows.append({"threshold": t,
                     "needless_resets": int((s_same < t).sum()), "same_face_frames": len(s_same),
                     "needless_reset_rate": float(np.mean(s_same < t)),
                     "swaps_caught": int((s_other < t).sum()), "other_face_frames": len(s_other),
                     "swap_caught_rate": float(np.mean(s_other < t))})
    q = [0.001, 0.002, 0.01, 0.05, 0.5]
    return {"rows": rows,
            "same_face_quantiles": dict(zip(map(str, q), np.quantile(s_same, q).round(4).tolist())),
            "other_face_quantiles": dict(zip(["0.5", "0.9", "0.99", "1.0"],
                                             np.quantile(s_other, [.5, .9, .99, 1]).round(4).tolist()))}


def to_markdown(rep: dict) -> str:
    lines = [f"Session face tracking by appearance (`{rep['command']}`): bundle `{rep['bundle']}`, "
             "Replay-Attack 20 frames per video, the bundle's aligned crops; a frame is compared "
             "with the track of the frames before it, as in a session. Same face: each frame of "
             "a video against its earlier frames (0.5-0.8 s apart). Another face: the first "
             f"{TRACK_FRAMES} frames of a video against a frame of another client's video under "
             f"the same label, species, support and lighting ({PAIRS_PER_VIDEO} per video, seed "
             f"0). The session default min_similarity {rep['default']} (thumbnail {rep['side']} "
             "px) was set on devel and on the astronaut photo (see the script's docstring).", "",
             "| split | min_similarity | needless resets (same face) | swaps caught (another face) |",
             "|---|---:|---|---|"]
    for split in ("devel", "test"):
        for r in rep[split]["rows"]:
            same = f"{100 * r['needless_reset_rate']:.2f}% ({r['needless_resets']}/{r['same_face_frames']})"
            other = f"{100 * r['swap_caught_rate']:.1f}% ({r['swaps_caught']}/{r['other_face_frames']})"
            lines.append(f"| {split} | {r['threshold']:g} | {same} | {other} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import shlex

    import edgefas
    from edgefas.data.sources import DataRoots
    from edgefas.evaluation import crop_store_for
    from edgefas.runtime.face_signature import SIDE
    from edgefas.session import SessionConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", help="bundle folder (default: the shipped one)")
    p.add_argument("--thresholds", default="0.7,0.8,0.85,0.9")
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")
    p.add_argument("--out", type=Path, default=HERE / "results" / "face_signature")
    args = p.parse_args(argv)
    thresholds = [float(t) for t in args.thresholds.split(",")]
    det = edgefas.Detector(args.bundle)
    store = crop_store_for(det, DataRoots(args.replay_root, None, None), True)
    rep_set = store.replay(frames="20")
    argv_text = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    rep: dict = {"command": f"python benchmarks/face_signature.py {argv_text}".strip(),
                 "bundle": det.bundle.name, "default": SessionConfig().min_similarity,
                 "side": SIDE}
    for split in ("devel", "test"):
        idx = [i for i, s in enumerate(rep_set.samples) if s.split == split and rep_set.ok[i]]
        rep[split] = measure(rep_set.crops[idx], [rep_set.samples[i] for i in idx], thresholds)
    write_report(args.out, rep, to_markdown(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
