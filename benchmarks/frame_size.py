#!/usr/bin/env python3
"""Face-stage cost on HD camera frames: the halving fast paths against one-step area resizes.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/frame_size.py      # writes benchmarks/results/

Kiosk cameras deliver 720p, 1080p or 4K frames with the face close, not the 320x240 frames the
model was trained on. Two resizes then grow with the frame: the detector's 128 px letterbox
reads every pixel, and the alignment's anti-alias pre-shrink reads the whole face region. For
frames over ``face_detect.HALVE_ABOVE_PX`` and faces below ``face_align.HALVE_BELOW_SCALE`` the
runtime first halves with OpenCV's vectorised 2x2 area path; everything smaller takes the
one-step path unchanged. This script measures both ways in interleaved rounds (the "one-step"
way is the same code with the two thresholds switched off) on the london portraits placed on a
grey frame of each size, the face filling ``--face-height`` of the frame height, and reports:

* p50 / p90 ms of detect, align and the whole frame, per way and frame size;
* how far the fast path moves the result: decision agreement, |live score| differences and the
  mean absolute difference of the aligned crops, next to what ordinary framing jitter does to
  the one-step way (the frame moved by one pixel of the detector's input, the face 2 % smaller).

Nothing is fitted; the portraits are bona fide, so no accuracy is claimed here.
"""
from __future__ import annotations

import argparse
import os
import platform
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent
SIZES = ((640, 480), (1280, 720), (1920, 1080), (3840, 2160))
STAGES = ("detect", "align", "total")


def place(image: np.ndarray, width: int, height: int, face_height: float) -> np.ndarray:
    """``image`` resized so that it is ``face_height`` of the frame tall, centred on grey."""
    s = height * face_height / image.shape[0]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.resize(image, (round(image.shape[1] * s), round(image.shape[0] * s)), interpolation=interp)
    frame = np.full((height, width, 3), 120, np.uint8)
    y0, x0 = (height - img.shape[0]) // 2, (width - img.shape[1]) // 2
    frame[y0:y0 + img.shape[0], x0:x0 + img.shape[1]] = img
    return frame


@contextmanager
def one_step():
    """The runtime with both halving fast paths switched off."""
    from edgefas.runtime import face_align, face_detect

    saved = face_align.HALVE_BELOW_SCALE, face_detect.HALVE_ABOVE_PX
    face_align.HALVE_BELOW_SCALE, face_detect.HALVE_ABOVE_PX = 0.0, 10 ** 9
    try:
        yield
    finally:
        face_align.HALVE_BELOW_SCALE, face_detect.HALVE_ABOVE_PX = saved


def _run(det, frames: list[np.ndarray]) -> list:
    return [det(f) for f in frames]


def compare(det, frames: list[np.ndarray], *, width: int, height: int, images: list[np.ndarray],
            face_height: float) -> dict:
    """How far the fast path moves results, next to how far ordinary framing jitter moves the
    one-step way: the frame moved by one pixel of the detector's 128 px input, and the face
    2 % smaller (the person leaning back a little)."""
    def crops(fs: list[np.ndarray]) -> list:
        return [det.face_crop(f)[0] for f in fs]

    fast, fast_crops = _run(det, frames), crops(frames)
    with one_step():
        ref, ref_crops = _run(det, frames), crops(frames)
        step = max(1, max(width, height) // 128)
        shifted = [np.roll(f, step, axis=1) for f in frames]
        smaller = [place(im, width, height, face_height * 0.98) for im in images]
        jitter = {f"moved {step} px (1 detector pixel)": (_run(det, shifted), crops(shifted)),
                  "face 2 % smaller": (_run(det, smaller), crops(smaller))}

    def diffs(a: list, ca: list) -> dict:
        both = [(x, y) for x, y in zip(a, ref) if x.live_score is not None and y.live_score is not None]
        ds = [abs(x.live_score - y.live_score) for x, y in both]
        cd = [float(np.abs(p.astype(np.int16) - q.astype(np.int16)).mean())
              for p, q in zip(ca, ref_crops) if p is not None and q is not None]
        return {"same_decision": sum(x.decision == y.decision for x, y in zip(a, ref)),
                "frames": len(a), "scored_by_both": len(both),
                "score_diff_median": float(np.median(ds)) if ds else None,
                "score_diff_max": float(np.max(ds)) if ds else None,
                "crop_mean_abs_diff": float(np.mean(cd)) if cd else None}

    return {"fast path": diffs(fast, fast_crops),
            **{f"{k} (one-step)": diffs(*v) for k, v in jitter.items()}}


def time_ways(det, frames: list[np.ndarray], rounds: int) -> dict:
    times: dict[str, dict[str, list[float]]] = {w: {s: [] for s in STAGES} for w in ("fast", "one-step")}
    for r in range(rounds):
        # Alternate which way goes first: this machine drifts within minutes.
        for way in (("fast", "one-step") if r % 2 else ("one-step", "fast")):
            if way == "one-step":
                with one_step():
                    results = _run(det, frames)
            else:
                results = _run(det, frames)
            for res in results:
                for s in STAGES:
                    times[way][s].append(res.timings_ms.get(s, 0.0))
    return {w: {s: {"p50": float(np.percentile(v, 50)), "p90": float(np.percentile(v, 90))}
                for s, v in st.items()} for w, st in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=12, help="london portraits used (first N, sorted)")
    ap.add_argument("--face-height", type=float, default=0.9,
                    help="portrait height as a share of the frame height (0.9: a kiosk user "
                         "leaning in; the portraits' faces are about half their height)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per model")
    ap.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "frame_size")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import edgefas
    from edgefas.runtime import face_align, face_detect

    photos = sorted((args.shared / "fixtures" / "london").rglob("*.jpg"))[:args.photos]
    if not photos:
        ap.error(f"no london portraits under {args.shared / 'fixtures'}")
    det = edgefas.Detector(threads=args.threads)
    images = [cv2.imread(str(p)) for p in photos]
    rows = []
    for w, h in SIZES:
        frames = [place(im, w, h, args.face_height) for im in images]
        for f in frames[:2]:   # warm-up
            det(f)
        widths = [r.box[2] - r.box[0] for r in _run(det, frames) if r.box is not None]
        rows.append({"frame": f"{w}x{h}", "frames": len(frames),
                     "median_face_width_px": float(np.median(widths)) if widths else None,
                     "timings_ms": time_ways(det, frames, args.rounds),
                     "agreement": compare(det, frames, width=w, height=h, images=images,
                                          face_height=args.face_height)})
    result = {"command": "python benchmarks/frame_size.py" + (" " + " ".join(argv) if argv else ""),
              "bundle": det.bundle.manifest.get("name"), "photos": len(photos),
              "face_height": args.face_height, "rounds": args.rounds, "threads": args.threads,
              "halve_above_px": face_detect.HALVE_ABOVE_PX,
              "halve_below_scale": face_align.HALVE_BELOW_SCALE, "rows": rows,
              "machine": {"cpu": platform.processor() or platform.machine(),
                          "cores": os.cpu_count(), "opencv": cv2.__version__,
                          "load_1min_end": os.getloadavg()[0]}}
    write_report(args.out, result, to_markdown(result))
    return 0


def _f(v: float | None, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def to_markdown(result: dict) -> str:
    md = [f"# Face-stage cost by camera frame size, `{result['bundle']}`", "",
          f"Command: `{result['command']}`. {result['photos']} london portraits (bona fide), each "
          f"{result['face_height']:g} of the frame height on a grey frame; {result['rounds']} "
          f"interleaved rounds per way, {result['threads']} intra-op thread(s), batch 1; 1-min load "
          f"average at the end {result['machine']['load_1min_end']:.2f} on "
          f"{result['machine']['cores']} cores. Fast = halve frames over "
          f"{result['halve_above_px']} px before the letterbox and face regions below scale "
          f"{result['halve_below_scale']:g} before the pre-shrink (the runtime's default); "
          "one-step = the same code with both switched off.", "",
          "| frame | median face px | way | detect p50/p90 ms | align p50/p90 ms | total p50/p90 ms |",
          "|---|---:|---|---|---|---|"]
    for r in result["rows"]:
        for way in ("one-step", "fast"):
            t = r["timings_ms"][way]
            md.append(f"| {r['frame']} | {_f(r['median_face_width_px'], 0)} | {way} | "
                      + " | ".join(f"{t[s]['p50']:.2f} / {t[s]['p90']:.2f}" for s in STAGES) + " |")
    md += ["", "How far the fast path moves the result from the one-step way, next to how far "
           "ordinary framing jitter moves the one-step way itself (crop diffs are crop-to-crop, "
           "so they also hold the jitter's geometry change):", "",
           "| frame | change | same decision | max abs live-score diff | crop mean abs diff (0-255) |",
           "|---|---|---:|---:|---:|"]
    for r in result["rows"]:
        for label, a in r["agreement"].items():
            md.append(f"| {r['frame']} | {label} | {a['same_decision']}/{a['frames']} | "
                      f"{_f(a['score_diff_max'], 4)} | {_f(a['crop_mean_abs_diff'])} |")
    return "\n".join(md) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
