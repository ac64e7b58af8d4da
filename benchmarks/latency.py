#!/usr/bin/env python3
"""End-to-end latency of the default bundle per stage on 640x480 frames (p50/p90, ms).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/latency.py            # writes benchmarks/results/
    python benchmarks/latency.py --threads 1 --runs 50 --images DIR

Frames are made from the silentface and london fixtures (../shared) when present, else from
scikit-image's astronaut. The goal for this machine is p50 <= 15 ms end to end with 2 threads;
it lives here, in a benchmark, never in a timed test.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from edgefas.report_files import write_report

HERE = Path(__file__).resolve().parent


def _default_images() -> list[Path]:
    for shared in (HERE.parent.parent / "shared", HERE.parent / "shared"):
        fx = shared / "fixtures"
        if fx.is_dir():
            return sorted((fx / "silentface").glob("image_*.jpg")) + \
                sorted((fx / "london" / "neutral_front").glob("*.jpg"))[:13]
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, help="bundle folder (default: the shipped bundle)")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--precision", default="fp32", help="fp32 or an export the bundle holds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--images", type=Path, help="a folder of images to make frames from")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latency")
    ap.add_argument("--goal-p50-ms", type=float, default=15.0)
    ap.add_argument("--frame-size", default="640x480", metavar="WxH",
                    help="camera frame the images are letterboxed into (default: %(default)s)")
    args = ap.parse_args(argv)
    if os.environ.get("OMP_WAIT_POLICY") != "PASSIVE":
        print("note: set OMP_WAIT_POLICY=PASSIVE for stable 2-thread numbers", file=sys.stderr)
    from edgefas.bench import benchmark, parse_frame_size, to_markdown

    try:
        frame_size = parse_frame_size(args.frame_size)
    except ValueError as exc:
        ap.error(str(exc))

    images = sorted(args.images.glob("*.jpg")) if args.images else _default_images()
    if not images:
        import cv2
        import skimage.data

        tmp = args.out.parent / "astronaut.png"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp), skimage.data.astronaut()[:, :, ::-1])
        images = [tmp]
    res = benchmark(images, bundle=args.bundle, backend=args.backend, precision=args.precision,
                    threads=args.threads, runs=args.runs, frame_size=frame_size)
    total = res["stages"]["total"]["p50_ms"]
    res["goal"] = {"end_to_end_p50_ms": args.goal_p50_ms, "met": total <= args.goal_p50_ms}
    res["command"] = "OMP_WAIT_POLICY=PASSIVE python benchmarks/latency.py " + " ".join(argv or sys.argv[1:])
    md = to_markdown(res) + (f"\nGoal: end-to-end p50 <= {args.goal_p50_ms} ms: "
                             f"{'met' if res['goal']['met'] else 'NOT met'} ({total:.2f} ms).\n")
    write_report(args.out, res, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
