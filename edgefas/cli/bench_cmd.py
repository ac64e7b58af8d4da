"""Benchmark a bundle: every backend/precision it holds that runs here, side by side.

Per variant: status, size of the files it loads, APCER max / BPCER at the bundle threshold on
the devel split (--protocol; needs the Replay-Attack crop cache, skipped with --no-devel), and
per-stage latency (detect, align, score = de-spoof network + calibration, total) p50/p90 at
batch 1 on 640x480 frames made from the images (--frame-size for your camera's), and
frames/s. Variants are timed in interleaved rounds so background load hits all alike.
Writes OUT.json and OUT.md. Start Python with OMP_WAIT_POLICY=PASSIVE (spinning OpenMP
threads distort 2-thread runs on a busy 2-core machine); this command sets it for itself
when unset, before any engine loads.

examples:
  edgefas bench ../shared/fixtures/silentface --bundle build/exp_all --threads 2
  edgefas bench photos/ --backend litert,onnxruntime --precision int8,fp32 --no-devel
  edgefas bench photos/ --frame-size 1920x1080 --no-devel   # a 1080p camera: detect and align cost more
  edgefas bench photos/ --compare "python other_sdk.py photos/" --compare-faces 16
  edgefas bench photos/ --bundle build/exp_all --bundle build/xattn_tflite --backend litert,onnxruntime \\
      --precision fp32 --no-devel        # two models, same rounds: comparable on a drifting machine
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from ..errors import EdgefasError
from .argtypes import non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files or folders to make frames from")
    p.add_argument("--bundle", type=Path, action="append",
                   help="bundle folder (default: the shipped bundle); repeat it to time several "
                        "bundles in the same interleaved rounds")
    p.add_argument("--backend", default="all",
                   help="comma-separated backends, or all (default: %(default)s)")
    p.add_argument("--precision", default="fp32,fp16,int8",
                   help="comma-separated precisions (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=2, help="threads per model (default: %(default)s)")
    p.add_argument("--frame-size", type=_frame_size, default=(640, 480), metavar="WxH",
                   help="camera frame the images are letterboxed into (default: 640x480); "
                        "detect and align grow with it")
    p.add_argument("--runs", type=positive_int, default=20, help="timed rounds over all frames")
    p.add_argument("--warmup", type=non_negative_int, default=3, help="untimed passes first")
    p.add_argument("--protocol", default="P1", help="whose devel split gives APCER/BPCER")
    p.add_argument("--devel-faces", type=non_negative_int, default=0,
                   help="score at most this many devel faces (0 = all)")
    p.add_argument("--no-devel", action="store_true", help="skip APCER/BPCER")
    p.add_argument("--replay-root", type=Path)
    p.add_argument("--compare", metavar="CMD",
                   help="another command to time once per round beside the variants")
    p.add_argument("--compare-faces", type=positive_int, default=1,
                   help="faces CMD scores per invocation (for its ms/face)")
    p.add_argument("--out", type=Path, default=Path("bench_out"),
                   help="output prefix for .json and .md (default: %(default)s)")


def _frame_size(text: str) -> tuple[int, int]:
    from ..bench import parse_frame_size

    try:
        return parse_frame_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _devel(args: argparse.Namespace, bundle: Path | None):
    import numpy as np

    from ..data.protocols import get_protocol
    from ..data.sources import DataRoots
    from ..detector import Detector
    from ..evaluation import crop_store_for

    det = Detector(bundle)
    store = crop_store_for(det, DataRoots(args.replay_root, None, None), True)
    replay = store.replay(frames="20")
    devel = replay.subset(get_protocol(args.protocol).devel_mask(replay.samples))
    devel = devel.subset(devel.ok)
    idx = np.arange(len(devel))
    if 0 < args.devel_faces < len(devel):
        idx = np.sort(np.random.default_rng(0).choice(len(devel), args.devel_faces, replace=False))
    samples = [devel.samples[i] for i in idx]
    return (devel.crops[idx], np.array([s.is_attack for s in samples]),
            np.array([s.species for s in samples]),
            f"replay-attack devel ({args.protocol}), {len(idx)} faces of 20 frames per video")


def run(args: argparse.Namespace) -> int:
    from ..bench_table import PRECISIONS, run_bench, table_markdown
    from ..bundle import load_bundle
    from ..errors import unknown_name
    from ..runtime.backends import BACKENDS, get_backend
    from .detect_cmd import _expand

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before the engines load their OpenMP
    paths = _expand(args.images)
    if not paths:
        raise EdgefasError("no images given")
    backends = list(BACKENDS) if args.backend == "all" else \
        [get_backend(b.strip()).name for b in args.backend.split(",")]
    precisions = [p.strip() for p in args.precision.split(",")]
    for prec in precisions:
        if prec not in PRECISIONS:
            raise EdgefasError(unknown_name("precision", prec, list(PRECISIONS)))
    bundles = args.bundle or [None]
    for b in bundles:  # before any timing (and without loading models): anything to time?
        have = load_bundle(b).manifest["models"]["classifier"]
        if not any(get_backend(n).model_key(p, have) in have for n in backends for p in precisions):
            raise EdgefasError(f"bundle {b or 'default'} has no classifier for "
                               f"{', '.join(backends)} in {', '.join(precisions)}; "
                               "`edgefas export BUNDLE --target T --precision P --out B2` adds one")
    devel = []
    for b in bundles:   # each bundle's own crops: contracts may differ
        d = None
        if not args.no_devel:
            try:
                d = _devel(args, b)
            except EdgefasError as exc:  # no data set here: latency still means something
                print(f"note: no devel APCER/BPCER ({exc})", file=sys.stderr)
        devel.append(d)
    several = len(bundles) > 1
    res = run_bench(paths, bundle=bundles if several else bundles[0], backends=backends,
                    precisions=precisions,
                    threads=args.threads, runs=args.runs, warmup=args.warmup,
                    devel=devel if several else devel[0],
                    compare=args.compare, compare_faces=args.compare_faces,
                    frame_size=args.frame_size)
    argv = sys.argv[sys.argv.index("bench") + 1:] if "bench" in sys.argv else []
    res["command"] = "edgefas bench " + " ".join(shlex.quote(a) for a in argv)
    md = table_markdown(res) + f"\nCommand: `{res['command']}`\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # OUT names both files: "res.v2" gives res.v2.json and res.v2.md, "res.json" res.json/res.md
    base = args.out.with_suffix("") if args.out.suffix in (".json", ".md") else args.out
    Path(f"{base}.json").write_text(json.dumps(res, indent=2) + "\n")
    Path(f"{base}.md").write_text(md)
    print(md)
    return 0
