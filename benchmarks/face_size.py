#!/usr/bin/env python3
"""Does the decision hold as the face gets smaller (the person steps back)?

    python benchmarks/face_size.py                         # the shipped bundle
    python benchmarks/face_size.py --bundle B --scales 1,0.5
    python benchmarks/face_size.py --far-faces --scales 1,0.5,0.4,0.3,0.25 --out R  # tiled look

The most-used open model's users report its live score collapsing when the face box grows from
~121 to ~145 px (../shared/notes/peers-and-users.md, section 1.9, item 1). Here every fixture
photo is shrunk by each of ``--scales`` (area interpolation: what a camera sees of a face
further away; never enlarged), placed on a 640x480 frame around the face, and scored by the
full Detector at the bundle threshold. Every photo appears at every scale, so rows compare the
same faces. Reported per scale: decisions, BPCER (bona fide) or APCER (attacks) over the
scored frames, median face width and live score; per photo: whether its decision changes
across the scales where a face was scored, and the spread (max - min) of its live score, also
per source folder. Nothing is fitted. Sets: the london portraits (bona fide, 512x512, faces
157-269 px wide) and silentface's high-resolution photos (2 live, 2 attack).
Writes benchmarks/results/face_size.{json,md}.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent
SCALES = (1.0, 0.8, 0.65, 0.5, 0.4)


def frame_at_scale(image: np.ndarray, box: tuple[float, ...], s: float,
                   size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """``image`` shrunk by ``s`` (<= 1) on a ``size`` frame centred on the face ``box``."""
    import cv2

    if not 0 < s <= 1:
        raise ValueError(f"scale {s} is not in (0, 1]: an enlarged face is not a closer face")
    h, w = image.shape[:2]
    small = image if s == 1 else cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                                            interpolation=cv2.INTER_AREA)
    fw, fh = size
    cx, cy = (box[0] + box[2]) / 2 * s, (box[1] + box[3]) / 2 * s
    # The frame window centred on the face, kept inside the image when the image is larger.
    x0 = int(round(min(max(cx - fw / 2, 0), max(small.shape[1] - fw, 0))))
    y0 = int(round(min(max(cy - fh / 2, 0), max(small.shape[0] - fh, 0))))
    crop = small[y0:y0 + fh, x0:x0 + fw]
    frame = np.zeros((fh, fw, 3), np.uint8)
    ox, oy = (fw - crop.shape[1]) // 2, (fh - crop.shape[0]) // 2
    frame[oy:oy + crop.shape[0], ox:ox + crop.shape[1]] = crop
    return frame


def sweep(det, paths: list[Path], labels: list[bool], scales: tuple[float, ...], desc: str
          ) -> list[dict]:
    from edgefas.runtime.decode import decode_image

    rows = []
    for path, is_attack in tqdm(list(zip(paths, labels)), desc=desc, unit="photo"):
        image = decode_image(path).image
        ref = det(image) if image is not None else None
        row = {"path": str(path), "is_attack": is_attack,
               "native_width": None, "native_decision": ref.decision.value if ref else "bad_input",
               "by_scale": {}}
        if ref is not None and ref.box is not None and ref.live_score is not None:
            row["native_width"] = round(ref.box[2] - ref.box[0], 1)
            for s in scales:
                r = det(frame_at_scale(image, ref.box, s))
                row["by_scale"][str(s)] = {
                    "decision": r.decision.value, "live_score": r.live_score,
                    "face_width": round(r.box[2] - r.box[0], 1) if r.box else None}
        rows.append(row)
    return rows


def summarise(rows: list[dict], scales: tuple[float, ...]) -> dict:
    per_scale = {}
    for sc in scales:
        got = [(r["is_attack"], r["by_scale"][str(sc)]) for r in rows if str(sc) in r["by_scale"]]
        scored = [(a, g) for a, g in got if g["live_score"] is not None]
        bona = [g for a, g in scored if not a]
        att = [g for a, g in scored if a]
        widths = [g["face_width"] for _, g in got if g["face_width"] is not None]
        per_scale[str(sc)] = {
            "frames": len(got), "not_scored": len(got) - len(scored),
            "not_scored_why": sorted({g["decision"] for _, g in got if g["live_score"] is None}),
            "bona_fide": len(bona), "bpcer_errors": sum(g["decision"] != "live" for g in bona),
            "attack": len(att), "apcer_errors": sum(g["decision"] == "live" for g in att),
            "median_face_width": float(np.median(widths)) if widths else None,
            "median_live_score": float(np.median([g["live_score"] for _, g in scored])) if scored else None,
        }
    return {"per_scale": per_scale, "stability": {"all": _stability(rows), **{
        f"{folder}/": _stability([r for r in rows if Path(r["path"]).parent.name == folder])
        for folder in sorted({Path(r["path"]).parent.name for r in rows})}}}


def _stability(rows: list[dict]) -> dict:
    """Per photo: does the decision change across the scales where its face was scored?"""
    flips, spreads = [], []
    for r in rows:
        scored = [g for g in r["by_scale"].values() if g["live_score"] is not None]
        if len(scored) >= 2:
            flips.append(len({g["decision"] for g in scored}) > 1)
            spreads.append(max(g["live_score"] for g in scored) - min(g["live_score"] for g in scored))
    return {"photos": len(rows), "photos_scored_2plus": len(flips),
            "decision_changes": int(sum(flips)),
            "score_spread_median": float(np.median(spreads)) if spreads else None,
            "score_spread_p90": float(np.percentile(spreads, 90)) if spreads else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="bundle folder (default: the shipped bundle)")
    ap.add_argument("--scales", default=",".join(map(str, SCALES)),
                    help="shrink factors of each photo, each in (0, 1]")
    ap.add_argument("--far-faces", action="store_true",
                    help="Detector(far_faces=True): a tiled second look on frames without a face")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "face_size")
    args = ap.parse_args(argv)
    from edgefas.data.sources import find_shared_fixture
    from edgefas.detector import Detector

    scales = tuple(sorted((float(x) for x in args.scales.split(",")), reverse=True))
    london = find_shared_fixture("london")
    if london is None:
        raise SystemExit("face_size: needs ../shared/fixtures (london, silentface); not found")
    det = Detector(args.bundle, threads=2, far_faces=args.far_faces)
    sets = {
        "london (bona fide)": (sorted(london.rglob("*.jpg")), None),
        "silentface high-res": (sorted((london.parent / "silentface").glob("hires_*.jpg")), "F"),
    }
    cmd = "python benchmarks/face_size.py" + (f" --bundle {args.bundle}" if args.bundle else "") + \
        (f" --scales {args.scales}" if args.scales != ",".join(map(str, SCALES)) else "") + \
        (" --far-faces" if args.far_faces else "") + \
        (f" --out {args.out}" if args.out != HERE / "results" / "face_size" else "")
    result = {"command": cmd, "bundle": det.bundle.name, "threshold": det.threshold,
              "min_face_px": det.bundle.face_policy.min_face_px, "scales": list(scales), "sets": {}}
    for name, (paths, attack_tag) in sets.items():
        # silentface names say F(ake) or T(rue) after the underscore
        labels = [attack_tag is not None and p.stem.split("_")[1].startswith(attack_tag) for p in paths]
        rows = sweep(det, paths, labels, scales, name)
        for r in rows:  # paths as the fixtures name them, not where this machine keeps them
            r["path"] = Path(r["path"]).relative_to(london.parent).as_posix()
        result["sets"][name] = {"summary": summarise(rows, scales), "photos": rows}
    md = to_markdown(result)
    write_report(args.out, result, md)
    return 0


def to_markdown(result: dict) -> str:
    lines = [f"# Decision vs face size, `{result['bundle']}` at its threshold {result['threshold']:.4f}",
             "", f"Command: `{result['command']}`. Each photo shrunk by each scale (never enlarged), "
             "on a 640x480 frame; the same photos at every scale. The bundle refuses faces narrower "
             f"than {result['min_face_px']} px (`face_too_small`). Nothing is fitted.", "",
             "| Set | scale | median face width px | frames | not scored (why) | BPCER | APCER | "
             "median live score |", "|---|---:|---:|---:|---|---:|---:|---:|"]
    for name, s in result["sets"].items():
        for sc, v in s["summary"]["per_scale"].items():
            why = f"{v['not_scored']} ({', '.join(v['not_scored_why'])})" if v["not_scored"] else "0"
            bp = f"{v['bpcer_errors']}/{v['bona_fide']}" if v["bona_fide"] else "-"
            ap = f"{v['apcer_errors']}/{v['attack']}" if v["attack"] else "-"
            fw = f"{v['median_face_width']:.0f}" if v["median_face_width"] is not None else "-"
            med = f"{v['median_live_score']:.3f}" if v["median_live_score"] is not None else "-"
            lines.append(f"| {name} | {sc} | {fw} | {v['frames']} | {why} | {bp} | {ap} | {med} |")
    lines += ["", "| Set | photos | scored at 2+ scales | decision changes with scale | "
              "live-score spread, median / 90th pct |", "|---|---:|---:|---:|---|"]
    for name, s in result["sets"].items():
        for part, u in s["summary"]["stability"].items():
            label = name if part == "all" else f"{name}, {part}"
            spread = (f"{u['score_spread_median']:.3f} / {u['score_spread_p90']:.3f}"
                      if u["score_spread_median"] is not None else "-")
            lines.append(f"| {label} | {u['photos']} | {u['photos_scored_2plus']} | "
                         f"{u['decision_changes']} | {spread} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
