#!/usr/bin/env python3
"""Exposure and white balance: how the decision changes when the camera sees the same face in other light.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/capture_light.py --set devel \\
        --out benchmarks/results/capture_light_devel
    OMP_WAIT_POLICY=PASSIVE python benchmarks/capture_light.py --set london \\
        --out benchmarks/results/capture_light_london

Users of today's open models report live users rejected when the light differs from where the
model was made: bright light, a dim room, another camera's colour (../shared/notes/
peers-and-users.md, complaints 2, 6, 7 and 8). This script re-renders every image of the set as
the camera would have recorded it under another exposure or white balance, and scores each
version with the whole pipeline (detection, alignment, the face-quality policy, the classifier):

* exposure: the frame's linear-light intensity times 0.25, 0.5, 0.71, 1.41 and 2 (-2, -1, -0.5,
  +0.5 and +1 EV; sRGB decoded to linear light, scaled, clipped, encoded again);
* white balance: the red and blue channels' linear-light gains moved against each other, as an
  uncorrected warm (indoor tungsten) or cool (shade, some LED panels) cast: warm R x1.12 B x0.88
  and R x1.25 B x0.75, cool the mirror image. edgefas's training augmentation varies gamma and
  brightness but no colour cast, on purpose (colour casts are an attack cue), so this is where
  a camera's colour can cost live users.

For each source and condition: the images still scored, those the pipeline refused (and why:
``low_quality`` for a face too dark or over-exposed, ``no_face``), the error rate at the bundle's
threshold (BPCER for bona fide sources, APCER for attacks), decision flips against the original
image, and the mean live-score change. Nothing is fitted.

Sets: ``devel`` = Replay-Attack P1 devel (1 frame per video, bona fide and attacks) + the LFW
devel bucket + the Chicago Face Database's devel-bucket people when
``~/.cache/edgefas/datasets/cfd`` exists; ``london`` = the london fixtures (P4 test faces:
report only, never choose on it). Writes OUT.json and OUT.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

#: name -> (R, G, B) gains in linear light; (1, 1, 1) is the original image
CONDITIONS: dict[str, tuple[float, float, float]] = {
    "original": (1.0, 1.0, 1.0),
    "-2 EV": (0.25, 0.25, 0.25),
    "-1 EV": (0.5, 0.5, 0.5),
    "-0.5 EV": (2 ** -0.5, 2 ** -0.5, 2 ** -0.5),
    "+0.5 EV": (2 ** 0.5, 2 ** 0.5, 2 ** 0.5),
    "+1 EV": (2.0, 2.0, 2.0),
    "warm": (1.12, 1.0, 0.88),
    "warm, strong": (1.25, 1.0, 0.75),
    "cool": (0.88, 1.0, 1.12),
    "cool, strong": (0.75, 1.0, 1.25),
}


def relight(frame: np.ndarray, name: str) -> np.ndarray:
    """``frame`` (BGR uint8) as recorded under condition ``name`` (a key of CONDITIONS)."""
    from edgefas.train.camera_aug import relight as gains  # numpy + OpenCV only, no torch

    r, g, b = CONDITIONS[name]
    if (r, g, b) == (1.0, 1.0, 1.0):
        return frame
    return gains(frame, r, g, b)


def images_of(which: str, limit: int, seed: int) -> list[tuple[str, str, bool]]:
    """(path, source, is_attack) of the set, at most ``limit`` per source, drawn with ``seed``."""
    from edgefas.data.lfw import is_devel_identity, load_lfw
    from edgefas.data.protocols import draw_at_most
    from edgefas.data.replay_attack import load_replay_attack
    from edgefas.data.sources import DataRoots

    roots = DataRoots().resolve()
    rng = np.random.default_rng(seed)

    def draw(items: list) -> list:
        return draw_at_most(items, limit, rng)

    if which == "london":
        if roots.london is None:
            raise SystemExit("no london fixtures (../shared/fixtures/london) found")
        return [(p, "london", False) for p in draw(sorted(map(str, Path(roots.london).rglob("*.jpg"))))]
    replay = load_replay_attack(roots.replay_1frame, splits=("devel",))
    out = [(s.path, "replay-devel live", False) for s in draw([s for s in replay if not s.is_attack])]
    out += [(s.path, "replay-devel attack", True) for s in draw([s for s in replay if s.is_attack])]
    lfw = load_lfw(roots.lfw, splits=("train",))   # the devel bucket only: never P4's held-out people
    devel = sorted(s.path for s in lfw if is_devel_identity(s.subject))
    out += [(p, "lfw-devel", False) for p in draw(devel)]
    if Path(roots.cfd).is_dir():
        from edgefas.data.other_sets import load_cfd
        cfd = [s.path for s in load_cfd(roots.cfd) if is_devel_identity(s.subject)]
        out += [(p, "cfd-devel", False) for p in draw(sorted(cfd))]
    return out


def measure(det, images: list[tuple[str, str, bool]], progress: bool = True) -> list[dict]:
    """One row per image and condition: the outcome (``scored`` or the refusal) and the score."""
    from tqdm.auto import tqdm

    rows = []
    for path, source, is_attack in tqdm(images, desc="light", disable=not progress):
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            continue
        for name in CONDITIONS:
            out, _ = det._prepare(relight(frame, name))
            if out.decision is not None:   # a typed refusal: no face, too dark, ...
                rows.append({"path": path, "source": source, "is_attack": is_attack,
                             "condition": name, "outcome": out.decision.value, "score": None})
                continue
            score = float(det.live_scores(out.alignment.crop[None])[0])
            rows.append({"path": path, "source": source, "is_attack": is_attack,
                         "condition": name, "outcome": "scored", "score": score})
    return rows


def summarise(rows: list[dict], threshold: float) -> dict:
    """Per condition: counts, refusals by reason, error rate, flips and score change vs original."""
    base = {r["path"]: r["score"] for r in rows if r["condition"] == "original"}
    out = {}
    for name in CONDITIONS:
        sel = [r for r in rows if r["condition"] == name]
        if not sel:
            continue
        scored = [r for r in sel if r["outcome"] == "scored"]
        refused: dict[str, int] = {}
        for r in sel:
            if r["outcome"] != "scored":
                refused[r["outcome"]] = refused.get(r["outcome"], 0) + 1
        # an error: an attack accepted or a bona fide face rejected, at the bundle threshold
        errors = sum((r["score"] >= threshold) == r["is_attack"] for r in scored)
        paired = [(base[r["path"]], r["score"]) for r in scored if base.get(r["path"]) is not None]
        flips = sum((a >= threshold) != (b >= threshold) for a, b in paired)
        out[name] = {"images": len(sel), "scored": len(scored), "refused": refused,
                     "errors": int(errors), "error_rate": errors / len(scored) if scored else None,
                     "paired": len(paired), "flips": int(flips),
                     "mean_abs_score_change": (float(np.mean([abs(b - a) for a, b in paired]))
                                               if paired else None)}
    return out


def overall(by_source: dict) -> dict:
    """Means over the changed conditions (every one but the original), the figures a rule reads:
    the attack sources' error rate (APCER) and, per condition, the worst bona fide source's
    error rate (BPCER) among Replay-Attack's live faces and LFW's, averaged."""
    changed = [c for c in CONDITIONS if c != "original"]
    attack = [s for s in by_source if s.endswith("attack")]
    bona = [s for s in by_source if s in ("replay-devel live", "lfw-devel", "london")]

    def rate(src: str, c: str) -> float | None:
        return by_source[src].get(c, {}).get("error_rate")

    apcer = [rate(s, c) for s in attack for c in changed if rate(s, c) is not None]
    worst = [max(r for r in (rate(s, c) for s in bona) if r is not None)
             for c in changed if any(rate(s, c) is not None for s in bona)]
    return {"conditions": changed, "attack_sources": attack, "bona_fide_sources": bona,
            "mean_apcer": float(np.mean(apcer)) if apcer else None,
            "mean_worst_bpcer": float(np.mean(worst)) if worst else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("devel", "london"), default="devel")
    ap.add_argument("--bundle", action="append", type=Path,
                    help="bundle folder (repeatable; default: the bundled default model)")
    ap.add_argument("--per-source", type=int, default=400, help="images drawn per source")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from edgefas.detector import Detector
    from edgefas.report_files import write_report

    images = images_of(args.set, args.per_source, args.seed)
    given = sys.argv[1:] if argv is None else argv
    report = {"command": "python benchmarks/capture_light.py " + " ".join(given),
              "set": args.set, "images": len(images), "per_source": args.per_source,
              "seed": args.seed, "conditions": {k: list(v) for k, v in CONDITIONS.items()},
              "machine": platform.processor() or platform.machine(), "bundles": []}
    for b in args.bundle or [None]:
        det = Detector(b, thumbnails=False)
        rows = measure(det, images)
        report["bundles"].append({
            "bundle": det.bundle.name, "version": det.bundle.manifest.get("version"),
            "path": str(b) if b else "default", "threshold": det.threshold,
            "by_source": {s: summarise([r for r in rows if r["source"] == s], det.threshold)
                          for s in sorted({r["source"] for r in rows})}})
    write_report(args.out, report, markdown(report))
    return 0


def markdown(report: dict) -> str:
    lines = [f"# Exposure and white balance on the {report['set']} set", "",
             f"Command: `{report['command']}`. {report['images']} images (at most "
             f"{report['per_source']} per source, draw seed {report['seed']}), each re-rendered "
             "under every condition (linear-light RGB gains: exposure scales all three, white "
             "balance moves red against blue) and scored by the whole pipeline at the bundle's "
             "threshold. Cells: errors / scored (BPCER for bona fide sources, APCER for attacks), "
             "then images refused and why, then decision flips against the original image among "
             "those scored in both, and the mean absolute live-score change.", ""]
    for b in report["bundles"]:
        sources = list(b["by_source"])
        lines += [f"## {b['bundle']} {b.get('version') or ''} (`{b['path']}`), threshold "
                  f"{b['threshold']:.4f}", "",
                  "| condition | " + " | ".join(sources) + " |",
                  "|---|" + "---|" * len(sources)]
        for name in report["conditions"]:
            cells = []
            for s in sources:
                c = b["by_source"][s].get(name)
                if c is None:
                    cells.append("-")
                    continue
                rate = "-" if c["error_rate"] is None else f"{100 * c['error_rate']:.1f} %"
                refused = ", ".join(f"{n} {k}" for k, n in sorted(c["refused"].items()))
                cell = f"{c['errors']}/{c['scored']} ({rate})"
                if refused:
                    cell += f"; refused {refused}"
                if name != "original" and c["paired"]:
                    cell += f"; flips {c['flips']}, mean change {c['mean_abs_score_change']:.3f}"
                cells.append(cell)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        o = overall(b["by_source"])
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        lines += ["", f"Over the {len(o['conditions'])} changed conditions: mean APCER "
                  f"({', '.join(o['attack_sources']) or 'no attacks'}) {fmt(o['mean_apcer'])}; "
                  f"mean of the worst BPCER among {', '.join(o['bona_fide_sources'])} "
                  f"{fmt(o['mean_worst_bpcer'])}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
