"""Turn a training run into a bundle: calibrate and set the threshold on devel, export the
classifier to ONNX (opset 17, dynamic batch) and refuse it unless it matches PyTorch on real
devel faces (max |diff| <= 1e-4, no decision flipped), then write the manifest with a sha256
for every file. Other formats (OpenVINO, TFLite, Core ML, TensorRT) are planned.

examples:
  edgefas export runs/P1 --format onnx --out runs/P1/bundle
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ExportError, unknown_name

FORMATS = ("onnx",)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS

    p.add_argument("run_dir", type=Path, help="a run folder written by 'edgefas train'")
    p.add_argument("--format", default="onnx", help="export format (default: %(default)s)")
    p.add_argument("--out", type=Path, help="bundle folder (default: RUN_DIR/bundle)")
    p.add_argument("--protocol", choices=list(PROTOCOLS),
                   help="protocol whose devel split calibrates (default: the run's own)")
    p.add_argument("--name", help="bundle name (default: baseline-PROTOCOL)")
    p.add_argument("--lfw-root", type=Path)
    p.add_argument("--replay-root", type=Path)


def run(args: argparse.Namespace) -> int:
    import json

    if args.format not in FORMATS:
        raise ExportError(unknown_name("format", args.format, FORMATS))
    from . import require_training_extra

    require_training_extra("export")
    from ..data.sources import DataRoots
    from ..train.package import package_run

    state_file = args.run_dir / "best" / "trainer_state.json"
    if not state_file.is_file():
        raise ExportError(f"{args.run_dir} has no best/ checkpoint: train it first")
    protocol = args.protocol or _run_protocol(args.run_dir) or "P1"
    out = args.out or args.run_dir / "bundle"
    bundle = package_run(args.run_dir, out, protocol=protocol,
                         name=args.name or f"baseline-{protocol}",
                         roots=DataRoots(args.replay_root, None, args.lfw_root))
    manifest = json.loads((bundle / "manifest.json").read_text())
    par = manifest["parity"]["classifier.onnx"]
    print(f"wrote {bundle}: threshold {manifest['threshold']['value']:.4f} "
          f"(devel D-EER criterion); ONNX parity max |diff| {par['max_abs_diff']:.1e} "
          f"on {par['n_inputs']} devel faces, {par['decisions_flipped']} flips")
    return 0


def _run_protocol(run_dir: Path) -> str | None:
    f = run_dir / "protocol.txt"  # written by 'edgefas train'
    return f.read_text().strip() if f.is_file() else None
