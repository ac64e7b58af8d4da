"""Score images with a bundle and print one line per image.

examples:
  edgefas detect photo.jpg
  edgefas detect captures/ --json > results.jsonl
  edgefas detect a.jpg b.png --bundle my_bundle/ --threads 2
  edgefas detect hall_camera/ --far-faces       # people far from a wide-angle camera

Folders are searched for .jpg, .jpeg, .png, .bmp, .webp, .tif and .tiff files, symlinked
sub-folders included. Exit status: 0
when at least one image was read (whatever its decision), 1 when no image was found or none
could be read (each unreadable one is still listed with its reason).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..data.image_files import find_images, suffix_list
from ..errors import EdgefasError
from ..runtime.backends import PRECISIONS
from . import add_far_faces_argument
from .argtypes import positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="image files or folders (searched recursively)")
    p.add_argument("--bundle", help="bundle folder (default: the bundle shipped with edgefas)")
    p.add_argument("--backend", default="onnxruntime", help="inference backend (default: %(default)s)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="which export of the bundle to run (default: %(default)s; fp16 and int8 "
                        "need 'edgefas export' first)")
    p.add_argument("--threads", type=positive_int, default=1, help="threads per model (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    add_far_faces_argument(p)


def _expand(inputs: list[str]) -> list[Path]:
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out += find_images(p)
        else:
            out.append(p)  # a missing file comes back as bad_input with its reason
    return out


def run(args: argparse.Namespace) -> int:
    from ..detector import Detector

    det = Detector(args.bundle, backend=args.backend, precision=args.precision, threads=args.threads,
                   far_faces=args.far_faces)
    paths = _expand(args.inputs)
    if not paths:
        raise EdgefasError(f"no images under {', '.join(args.inputs)} (looked for "
                           f"{suffix_list()})")
    read = 0
    if not args.json:
        print(f"{'decision':<15} {'live_score':>10} {'ms':>7}  image  (threshold {det.threshold:.3f})")
    for path in paths:
        r = det(path)
        read += r.decision.value != "bad_input"
        if args.json:
            print(json.dumps({"image": str(path), **r.to_dict()}))
        else:
            score = f"{r.live_score:.3f}" if r.live_score is not None else "-"
            why = "" if r.live_score is not None else f"  ({'; '.join(r.reasons)})"
            print(f"{r.decision.value:<15} {score:>10} {r.timings_ms.get('total', 0):7.1f}  {path}{why}")
    if not read:
        raise EdgefasError(f"none of the {len(paths)} image(s) could be read")
    return 0
