"""Latency of a bundle per stage (decode, detect, align, score) and end to end, p50/p90, on
640x480 frames made from the given images; writes OUT.json and OUT.md. For stable numbers,
run it with OMP_WAIT_POLICY=PASSIVE on an otherwise idle machine.

examples:
  OMP_WAIT_POLICY=PASSIVE edgefas bench ../shared/fixtures/silentface --threads 2
  edgefas bench photos/ --bundle my_bundle/ --runs 50 --out bench/my_bundle
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EdgefasError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", help="image files or folders to make frames from")
    p.add_argument("--bundle", type=Path, help="bundle folder (default: the shipped bundle)")
    p.add_argument("--backend", default="onnxruntime", help="onnxruntime or openvino")
    p.add_argument("--precision", default="fp32",
                   help="fp32, or an export the bundle holds (fp16, int8; see 'edgefas export')")
    p.add_argument("--threads", type=int, default=2, help="threads per model (default: %(default)s)")
    p.add_argument("--runs", type=int, default=20, help="timed passes over all frames")
    p.add_argument("--out", type=Path, default=Path("bench_out"),
                   help="output prefix for .json and .md (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    from ..bench import benchmark, to_markdown
    from .detect_cmd import _expand

    paths = _expand(args.images)
    if not paths:
        raise EdgefasError("no images given")
    try:
        res = benchmark(paths, bundle=args.bundle, backend=args.backend, precision=args.precision,
                        threads=args.threads, runs=args.runs)
    except ValueError as exc:
        raise EdgefasError(str(exc)) from exc
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    md = to_markdown(res)
    args.out.with_suffix(".md").write_text(md)
    print(md)
    return 0
