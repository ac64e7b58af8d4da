#!/usr/bin/env python3
"""Alignment jitter: how far one pixel of the face detector moves the crop, and the decision.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/align_jitter.py --set train \\
        --out benchmarks/results/align_jitter_train
    OMP_WAIT_POLICY=PASSIVE python benchmarks/align_jitter.py --set devel \\
        --bundle edgefas/bundles/default --bundle runs/x/bundle --out docs/x/jitter_devel

The face detector reads a 128 px letterbox of the frame, so a face that moves by one of its
pixels (5 px of a 640 px frame) gets keypoints, and therefore a crop, that differ by more than
the move itself. Users see this as a score that jumps between frames of a still face
(../shared/notes/peers-and-users.md, complaints 1 and 5). For every image of the set this script
makes three perturbed frames, moved right by one detector pixel, moved down by one (each rounded
to whole frame pixels: 2 px, 0.8 detector pixel, on Replay-Attack's 320x240 frames), and 2 %
smaller about the frame centre (a person leaning back), and compares each with the original:

* geometry: the similarity transform from the original crop to the perturbed one, with the
  known frame change taken out (identity = perfect alignment): its scale change (%), rotation
  (degrees) and the shift of the crop centre (crop pixels). Bundle-independent: all bundles
  here share the 128 px crop at scale 1.5.
* decision, per bundle: the share of (image, perturbation) pairs whose decision at the bundle's
  threshold flips, and the |live score| change, median and 90th percentile.

Sets: ``train`` = Replay-Attack P1 train (1 frame per video) + LFW training identities (neither
the devel bucket nor P4's held-out ones): where augmentation ranges may be read. ``devel`` =
Replay-Attack P1 devel (1 frame per video) + the LFW devel bucket + the Chicago Face
Database's devel-bucket people when ``~/.cache/edgefas/datasets/cfd`` exists. ``london`` = the london
fixtures (P4 test faces: report only, never choose on it). Nothing is fitted.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import cv2
import numpy as np

OTHER_CAMERAS = ("lfw-devel", "cfd-devel")
#: live scores this close to the threshold count as "near" it in the summary
NEAR = 0.2
PERTURBATIONS = ("right 1 detector px", "down 1 detector px", "2 % smaller")


def perturb(frame: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The perturbed frame and the 3x3 map of original frame pixels to perturbed ones."""
    h, w = frame.shape[:2]
    # one pixel of the detector's 128 px letterbox, rounded to whole frame pixels so that the
    # moved frame holds the same pixel values (a fractional shift would also blur it): 5 px of
    # a 640 px frame, 2 px (0.8 detector pixel) of Replay-Attack's 320 px frames and of LFW's
    # 250 px images (1.02)
    step = max(1.0, max(h, w) / 128.0)
    if name == "right 1 detector px":
        t = np.array([[1, 0, round(step)], [0, 1, 0]], np.float64)
    elif name == "down 1 detector px":
        t = np.array([[1, 0, 0], [0, 1, round(step)]], np.float64)
    elif name == "2 % smaller":
        t = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), 0.0, 0.98)
    else:
        raise ValueError(name)
    out = cv2.warpAffine(frame, t, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, np.vstack([t, [0, 0, 1]])


def relative(a1: np.ndarray, a2: np.ndarray, t: np.ndarray, size: int) -> tuple[float, float, float]:
    """Scale change (%), rotation (deg) and crop-centre shift (px) of crop1 -> crop2."""
    m = np.vstack([a2, [0, 0, 1]]) @ t @ np.linalg.inv(np.vstack([a1, [0, 0, 1]]))
    scale = float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))
    rot = float(np.degrees(np.arctan2(m[1, 0], m[0, 0])))
    c = np.array([size / 2.0, size / 2.0, 1.0])
    shift = float(np.hypot(*((m @ c)[:2] - c[:2])))
    return 100.0 * (scale - 1.0), rot, shift


def images_of(which: str, limit: int, seed: int) -> list[tuple[str, str]]:
    """(path, source) pairs of the set, at most ``limit`` per source, drawn with ``seed``."""
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
        return [(str(p), "london") for p in draw(sorted(map(str, Path(roots.london).rglob("*.jpg"))))]
    split = "train" if which == "train" else "devel"
    replay = load_replay_attack(roots.replay_1frame, splits=(split,))
    out = [(p, f"replay-{split}") for p in draw([s.path for s in replay])]
    lfw = load_lfw(roots.lfw, splits=("train",))   # never P4's held-out identities
    if which == "train":
        keep = [s.path for s in lfw if not is_devel_identity(s.subject)]
    else:
        keep = [s.path for s in lfw if is_devel_identity(s.subject)]
    out += [(p, f"lfw-{split}") for p in draw(sorted(keep))]
    if which == "devel" and Path(roots.cfd).is_dir():
        # CFD's devel-bucket people: studio portraits no bundle here trained on (a recipe with
        # extra_live cfd keeps them out too)
        from edgefas.data.other_sets import load_cfd
        cfd = [s.path for s in load_cfd(roots.cfd) if is_devel_identity(s.subject)]
        out += [(p, "cfd-devel") for p in draw(sorted(cfd))]
    return out


def measure(det, images: list[tuple[str, str]], progress: bool = True) -> list[dict]:
    """Per image and perturbation: geometry and the (score, score') pair of ``det``."""
    from tqdm.auto import tqdm

    rows = []
    size = det.contract.size
    for path, source in tqdm(images, desc="jitter", disable=not progress):
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            continue
        base, _ = det._prepare(frame)
        if base.decision is not None:   # a typed Result or a face that cannot be scored
            continue
        s0 = float(det.live_scores(base.alignment.crop[None])[0])
        for name in PERTURBATIONS:
            moved, t = perturb(frame, name)
            out, _ = det._prepare(moved)
            if out.decision is not None:
                rows.append({"path": path, "source": source, "perturbation": name, "scored": False})
                continue
            ds, rot, shift = relative(base.alignment.matrix, out.alignment.matrix, t, size)
            s1 = float(det.live_scores(out.alignment.crop[None])[0])
            rows.append({"path": path, "source": source, "perturbation": name, "scored": True,
                         "scale_pct": ds, "rotation_deg": rot, "shift_px": shift,
                         "score": s0, "score_moved": s1})
    return rows


def flip_averaged(det):
    """``det.live_scores`` with the logits of each crop and its mirror image averaged."""
    from edgefas.runtime.calibration import apply_platt

    def scores(crops: np.ndarray) -> np.ndarray:
        logits = det.live_logits(np.concatenate([crops, crops[:, :, ::-1]]))
        n = len(crops)
        return apply_platt((logits[:n] + logits[n:]) / 2, det._cal_a, det._cal_b)
    return scores


def summarise(rows: list[dict], threshold: float) -> dict:
    ok = [r for r in rows if r["scored"]]
    if not ok:
        return {"pairs": len(rows), "scored": 0}
    a = lambda k: np.array([r[k] for r in ok], np.float64)  # noqa: E731
    ds, rot, sh = np.abs(a("scale_pct")), np.abs(a("rotation_deg")), a("shift_px")
    s0, s1 = a("score"), a("score_moved")
    flipped = (s0 >= threshold) != (s1 >= threshold)
    flips = int(flipped.sum())
    d = np.abs(s1 - s0)
    q = lambda v, p: float(np.percentile(v, p))  # noqa: E731
    # are the flips nudges across the line or jumps? scores within NEAR of the threshold
    near = np.abs(s0 - threshold) < NEAR
    return {"pairs": len(rows), "scored": len(ok),
            "abs_scale_pct": {"p50": q(ds, 50), "p90": q(ds, 90), "p95": q(ds, 95)},
            "abs_rotation_deg": {"p50": q(rot, 50), "p90": q(rot, 90), "p95": q(rot, 95)},
            "shift_px": {"p50": q(sh, 50), "p90": q(sh, 90), "p95": q(sh, 95)},
            "flips": flips, "flip_rate": flips / len(ok),
            "score_diff": {"mean": float(d.mean()), "p50": q(d, 50), "p90": q(d, 90)},
            "flipped": {"score_diff_p50": q(d[flipped], 50) if flips else None,
                        "max_distance_from_threshold":
                            float(np.abs(s0[flipped] - threshold).max()) if flips else None},
            "near_threshold": {"within": NEAR, "pairs": int(near.sum()),
                               "flips": int(flipped[near].sum()),
                               "mean_score_diff": float(d[near].mean()) if near.any() else None,
                               "mean_score_diff_elsewhere":
                                   float(d[~near].mean()) if (~near).any() else None}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=("train", "devel", "london"), default="devel")
    ap.add_argument("--bundle", action="append", type=Path,
                    help="bundle folder (repeatable; default: the bundled default model)")
    ap.add_argument("--per-source", type=int, default=400, help="images drawn per source")
    ap.add_argument("--seed", type=int, default=0, help="seed of the draw")
    ap.add_argument("--flip-average", action="store_true",
                    help="score each crop as the mean logit of the crop and its mirror image "
                         "(a test-time averaging the Detector does not do; for comparison)")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from edgefas.detector import Detector
    from edgefas.report_files import write_report

    images = images_of(args.set, args.per_source, args.seed)
    bundles = args.bundle or [None]
    given = sys.argv[1:] if argv is None else argv
    report = {"command": "python benchmarks/align_jitter.py " + " ".join(given),
              "set": args.set, "images": len(images), "per_source": args.per_source,
              "seed": args.seed, "flip_average": args.flip_average, "perturbations": list(PERTURBATIONS),
              "machine": platform.processor() or platform.machine(), "bundles": []}
    for b in bundles:
        det = Detector(b, thumbnails=False)
        if args.flip_average:
            det.live_scores = flip_averaged(det)
        rows = measure(det, images)
        entry = {"bundle": det.bundle.name, "path": str(b) if b else "default",
                 "threshold": det.threshold, "all": summarise(rows, det.threshold),
                 "by_source": {s: summarise([r for r in rows if r["source"] == s], det.threshold)
                               for s in sorted({r["source"] for r in rows})},
                 # the pooled bona fide faces of cameras no bundle trained on: the stability
                 # figure of docs/ablation_geometry_jitter/plan.md
                 "other_cameras": summarise([r for r in rows if r["source"] in OTHER_CAMERAS],
                                            det.threshold),
                 "by_perturbation": {p: summarise([r for r in rows if r["perturbation"] == p], det.threshold)
                                     for p in PERTURBATIONS}}
        report["bundles"].append(entry)
    write_report(args.out, report, markdown(report))
    return 0


def markdown(report: dict) -> str:
    how = " (scores: mean logit of crop and mirror image)" if report.get("flip_average") else ""
    lines = [f"# Alignment jitter on the {report['set']} set{how}",
             "",
             f"Command: `{report['command']}`. {report['images']} images (at most "
             f"{report['per_source']} per source, draw seed {report['seed']}), each perturbed three ways "
             "(moved right / down by one pixel of the detector's 128 px input, 2 % smaller); "
             "pairs = image x perturbation where both frames gave a scorable face.",
             "",
             "| bundle | source | pairs scored | abs scale change % p50/p95 | abs rotation deg p50/p95 "
             "| centre shift px p50/p95 | decision flips | abs score change mean / p50 / p90 |",
             "|---|---|---:|---|---|---|---:|---|"]
    names = [b["bundle"] for b in report["bundles"]]

    def label(b: dict) -> str:   # bundles of one recipe share a name: the path tells them apart
        return b["bundle"] if names.count(b["bundle"]) == 1 else f"{b['bundle']} (`{b['path']}`)"

    for b in report["bundles"]:
        pooled = [("other cameras (" + " + ".join(OTHER_CAMERAS) + ")", b["other_cameras"])] \
            if b["other_cameras"].get("scored") else []
        for src, s in [("all", b["all"]), *b["by_source"].items(), *pooled]:
            if not s.get("scored"):
                lines.append(f"| {label(b)} | {src} | 0 | - | - | - | - | - |")
                continue
            lines.append(
                f"| {label(b)} | {src} | {s['scored']} | {s['abs_scale_pct']['p50']:.2f} / "
                f"{s['abs_scale_pct']['p95']:.2f} | {s['abs_rotation_deg']['p50']:.2f} / "
                f"{s['abs_rotation_deg']['p95']:.2f} | {s['shift_px']['p50']:.2f} / "
                f"{s['shift_px']['p95']:.2f} | {s['flips']} ({100 * s['flip_rate']:.2f} %) | "
                f"{s['score_diff']['mean']:.4f} / {s['score_diff']['p50']:.4f} / "
                f"{s['score_diff']['p90']:.4f} |")
    if not any("flipped" in s for b in report["bundles"] for s in b["by_source"].values()):
        return "\n".join(lines) + "\n"   # a report written before the per-flip figures
    lines += ["", f"Flips: nudges across the threshold or jumps? (near = live score within {NEAR} of "
              "the bundle threshold before the move)", "",
              "| bundle | source | flips | flipped: median abs score change | flipped: farthest "
              "score from threshold | near pairs | flips among them | mean abs change near / elsewhere |",
              "|---|---|---:|---:|---:|---:|---:|---|"]
    for b in report["bundles"]:
        for src, s in b["by_source"].items():
            if not s.get("scored") or "flipped" not in s:
                continue
            f, n = s["flipped"], s["near_threshold"]
            fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
            lines.append(f"| {label(b)} | {src} | {s['flips']} | {fmt(f['score_diff_p50'])} | "
                         f"{fmt(f['max_distance_from_threshold'])} | {n['pairs']} | {n['flips']} | "
                         f"{fmt(n['mean_score_diff'])} / {fmt(n['mean_score_diff_elsewhere'])} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
