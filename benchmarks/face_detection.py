#!/usr/bin/env python3
"""How often the bundle's face detector finds the face: Replay-Attack per split and label
(live and attack alike: an attack shows a face on paper or a screen and must be found too),
plus the silentface and london fixtures (EXIF orientation applied by the decoder).

    python benchmarks/face_detection.py                    # 1 frame per video (1,200 images)
    python benchmarks/face_detection.py --all-frames       # also the 24,000-frame tree

A face counts as found when the detector returns a box with score >= the bundle's
``min_face_score``. Writes benchmarks/results/face_detection.{json,md}.
"""
from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from tqdm.auto import tqdm

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent


def coverage(samples, det, min_score: float, desc: str, root: Path) -> dict:
    """Found / images per split and label; missed images as paths relative to ``root`` (the
    data set's folder), so the report names no machine's own paths."""
    from edgefas.data.face_cache import read_sample

    found: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    missed = []
    for s in tqdm(samples, desc=desc, unit="img"):
        img = read_sample(s)
        ok = img is not None and any(f.score >= min_score for f in det.detect(img))
        key = (s.split, "attack" if s.is_attack else "live")
        found[key][0] += int(ok)
        found[key][1] += 1
        if not ok:
            p = Path(s.key).resolve()
            missed.append(str(p.relative_to(root)) if p.is_relative_to(root) else p.name)
    rows = {f"{k[0]}/{k[1]}": {"found": v[0], "images": v[1], "rate": v[0] / v[1]}
            for k, v in sorted(found.items())}
    return {"rows": rows, "missed": missed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--all-frames", action="store_true", help="also the 20-frames-per-video tree")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "face_detection")
    args = ap.parse_args(argv)
    from edgefas.bundle import load_bundle
    from edgefas.data.replay_attack import load_replay_attack
    from edgefas.data.samples import Sample
    from edgefas.data.sources import DataRoots, find_shared_fixture, load_london
    from edgefas.runtime.face_detect import FaceDetector

    bundle = load_bundle()
    det = FaceDetector.from_file(bundle.model_file("face_detector", "onnx"))
    min_score = bundle.face_policy.min_face_score
    roots = DataRoots().resolve()
    command = f"python benchmarks/face_detection.py{' --all-frames' if args.all_frames else ''}"
    results = {"command": command, "min_face_score": min_score, "sets": {}}
    if roots.replay_1frame and Path(roots.replay_1frame).is_dir():
        root = Path(roots.replay_1frame).resolve()
        results["sets"]["replay-attack 1 frame per video"] = coverage(
            load_replay_attack(root), det, min_score, "replay 1-frame", root)
    if args.all_frames and roots.replay_frames and Path(roots.replay_frames).is_dir():
        root = Path(roots.replay_frames).resolve()
        results["sets"]["replay-attack 20 frames per video"] = coverage(
            load_replay_attack(root), det, min_score, "replay 20-frame", root)
    london = find_shared_fixture("london")
    if london:
        fixtures = london.resolve().parent
        results["sets"]["london fixtures"] = coverage(load_london(london), det, min_score, "london",
                                                      fixtures)
        sf = sorted((fixtures / "silentface").glob("*.jpg"))
        results["sets"]["silentface fixtures"] = coverage(
            [Sample(str(f), f.stem.split("_")[1].startswith("F"), "", "fixture", "silentface")
             for f in sf], det, min_score, "silentface", fixtures)
    lines = [f"Face found = a box with score >= {min_score}. Command: `{command}`.",
             "", "| Set | Split / label | Found / images | Rate |", "|---|---|---:|---:|"]
    for name, res in results["sets"].items():
        for k, v in res["rows"].items():
            lines.append(f"| {name} | {k} | {v['found']} / {v['images']} | {100 * v['rate']:.2f}% |")
    md = "\n".join(lines) + "\n"
    write_report(args.out, results, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
