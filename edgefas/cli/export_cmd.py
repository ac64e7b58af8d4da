"""Export models, each export checked before it is written.

From a training run (a folder written by 'edgefas train'): calibrate and set the threshold on
devel, export the classifier to ONNX (opset 17, dynamic batch) and refuse it unless it matches
PyTorch on real devel faces (|diff| <= 1e-4 on all but 1 % of them and <= 1e-3 on all, no
decision flipped), then write the bundle.

From a bundle, with --target (or --device): convert its classifier for a runtime and
precision, calibrated on devel faces, and keep it only if it passes its parity gate against
PyTorch on labelled devel faces (fp32: |diff| <= 1e-4 on 99 %, 1e-3 on all; fp16/int8: APCER
and BPCER at the bundle threshold within 0.5 points). The gate's figures go into the manifest
under "parity", with, beside them, the decision agreement and BPCER on 1,000 bona fide LFW
faces of the train identities (other cameras; devel scores are too saturated to show drift near
the threshold).
Several exports in one command are written together or not at all.
The devel faces are Replay-Attack's (--replay-root) unless --devel names your own labelled
captures (a live/ + attack/<species>/ folder, or a CSV's 'devel' rows): needed without
Replay-Attack, and for a bundle from 'edgefas finetune', which is gated on its camera's faces.
Run it with edgefas.Detector(bundle, backend=..., precision=...).

targets (edgefas/export/targets.py):
  onnx      fp32, fp16, int8 (onnxruntime static QDQ)
  openvino  fp32, fp16, int8 (NNCF)
  tflite    fp32, int8 (litert-torch, PT2E)            -> backend litert
  coreml    fp16, fp32 (mlprogram; predicts and is gated on macOS only)
  tensorrt  fp16, int8 (engine built on the NVIDIA device itself; needs libnvinfer)
devices (edgefas/export/presets.py): jetson-orin, android, ios, x86-cpu, intel

examples:
  edgefas export runs/P1 --format onnx                       # run -> bundle (runs/P1/bundle)
  edgefas export runs/P1/bundle --target openvino --precision int8 --out bundles/p1-ov-int8
  edgefas export runs/P1/bundle --target tflite --precision fp32,int8 --out bundles/p1-tflite
  edgefas export runs/P1/bundle --device android --out bundles/p1-android
  edgefas export runs/cam1/bundle --device android --devel cam.csv --out bundles/cam1-android
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DatasetError, ExportError, unknown_name

if TYPE_CHECKING:   # the CLI loads without the data stack; these only name types
    from ..data.face_cache import CropSet
    from ..data.sources import CropStore

FORMATS = ("onnx",)
#: the fewest usable faces of each class in --devel: the gate compares APCER and BPCER, and
#: with fewer a single face moves a rate by over 10 points
MIN_GATE_PER_CLASS = 10


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS

    p.add_argument("path", type=Path, help="a run folder (from 'edgefas train') or a bundle")
    p.add_argument("--format", help="run -> bundle format: onnx (the default and only one)")
    p.add_argument("--target", help="bundle -> target: onnx, openvino, tflite, coreml, tensorrt")
    p.add_argument("--precision", default="fp32",
                   help="fp32, fp16, int8, or several comma-separated (default: %(default)s)")
    p.add_argument("--device", help="bundle -> the exports of a device preset: jetson-orin, "
                                    "android, ios, x86-cpu, intel")
    p.add_argument("--out", type=Path, help="output bundle (default: RUN/bundle, or in place "
                                            "for a bundle; the shipped default bundle is never "
                                            "changed in place: give --out for it)")
    p.add_argument("--protocol", choices=list(PROTOCOLS),
                   help="whose devel split calibrates and gates (default: the run's own, or P1)")
    p.add_argument("--devel", type=Path, metavar="DATA",
                   help="bundle -> target: calibrate and gate on these labelled captures (a "
                        "live/ + attack/<species>/ folder, or a CSV: its 'devel' rows, or all "
                        "rows without a split column; "
                        f"at least {MIN_GATE_PER_CLASS} usable faces of each class) instead of "
                        "Replay-Attack devel; required for a fine-tuned bundle")
    p.add_argument("--name", help="run -> bundle: bundle name (default: baseline-PROTOCOL)")
    p.add_argument("--atol", type=float,
                   help="run -> bundle: fp32 ONNX-vs-PyTorch tolerance on the logit, exceeded "
                        "by at most 1 %% of the faces, 10x it by none (default: 1e-4, "
                        "edgefas.export.parity.FP32_ATOL); a larger value is recorded "
                        "in the manifest's parity report")
    p.add_argument("--lfw-root", type=Path)
    p.add_argument("--replay-root", type=Path)


def run(args: argparse.Namespace) -> int:
    if (args.path / "manifest.json").is_file():
        return _export_bundle(args)
    if args.target or args.device or args.devel:
        raise ExportError(f"{args.path} is not a bundle (no manifest.json); --target, --device "
                          "and --devel need one")
    return _package_run(args)


def _export_bundle(args: argparse.Namespace) -> int:
    import numpy as np

    from ..bundle import is_default_bundle
    from ..data.protocols import get_protocol
    from ..data.sources import DataRoots
    from ..detector import Detector
    from ..evaluation import crop_store_for
    from ..export.bundle_export import export_bundle_many
    from ..export.presets import get_preset
    from ..export.targets import check_target, get_target

    ignored = [f"--{k}" for k in ("format", "name", "atol") if getattr(args, k) is not None]
    if ignored:
        raise ExportError(f"{', '.join(ignored)}: only for packaging a training run, and "
                          f"{args.path} is a bundle")
    if args.device and args.target:
        raise ExportError("give --target (with --precision) or --device, not both: a device "
                          "preset chooses its own targets and precisions")
    if args.device:
        preset = get_preset(args.device)
        exports = list(preset.exports)
        print(f"{preset.name}: {', '.join(f'{t} {p}' for t, p in exports)} ({preset.why})")
    elif args.target:
        precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
        if not precisions:
            raise ExportError(f"--precision {args.precision!r} names no precision")
        exports = [(args.target, p) for p in precisions]
    else:
        raise ExportError("exporting a bundle needs --target or --device")
    for target, precision in exports:  # fail fast on names, precisions and missing tools
        check_target(get_target(target), precision)
    out = args.out or args.path
    if is_default_bundle(out):
        # its manifest is pinned beside it: an in-place export would leave an installation
        # whose Detector() refuses the default bundle
        raise ExportError(f"{out} is the bundle shipped inside edgefas and is not changed in place; "
                          "give --out DIR for a copy with the new exports")
    if out.exists() and out.resolve() != args.path.resolve():
        raise ExportError(f"--out {out} exists: give a new folder, or export from {out} itself "
                          "to add to that bundle")
    if args.devel is not None and args.protocol:
        raise ExportError("give --devel (your own captures) or --protocol (a Replay-Attack devel "
                          "split), not both")
    det = Detector(args.path)
    store: CropStore = crop_store_for(det, DataRoots(args.replay_root, None, args.lfw_root), True)
    trained = det.bundle.manifest.get("training", {})
    if args.devel is not None:
        devel, devel_name = _user_devel(args.devel, store, trained.get("finetune_data"))
    else:
        if finetuned := trained.get("finetune_data"):
            # its checkpoint and threshold were chosen on its camera's faces, and that is
            # where a changed decision matters; Replay-Attack devel may not even be here
            raise ExportError(f"{args.path} was fine-tuned ('edgefas finetune', devel "
                              f"{finetuned['devel']['path']}): give --devel DATA, its devel "
                              "captures or others of that camera, to calibrate and gate the export on")
        protocol = get_protocol(args.protocol or trained.get("protocol", "P1"))
        replay = store.replay(frames="20")
        devel = replay.subset(protocol.devel_mask(replay.samples))
        devel_name = f"Replay-Attack {protocol.name} devel"
    try:   # bona fide faces from other cameras, to show decision drift near the threshold
        lfw = store.lfw()
        other = lfw.subset(np.array([s.split == "train" for s in lfw.samples]))
    except DatasetError as exc:
        other = None
        print(f"note: no other-camera bona fide faces to report decision drift on ({exc})")
    print(f"exporting {', '.join(f'{t} {p}' for t, p in exports)}, each gated on devel faces "
          "(minutes each); the bundle is written when all have passed")
    # all of them or none: a later export failing leaves no half-made bundle behind
    for rep in export_bundle_many(args.path, exports, out=out, devel=devel, other_bona_fide=other,
                                  gate_data=devel_name):
        target, precision = rep.target, rep.precision
        if rep.passed is None:
            print(f"{target} {precision}: converted, written to {out}; {rep.reason}")
            continue
        print(f"{target} {precision}: passed on {rep.n_faces} devel faces "
              f"({rep.bona_fide} bona fide / {rep.attack} attack) against {rep.reference}: "
              f"decisions agree {100 * rep.decisions_agree:.2f}%, APCER {100 * rep.apcer:.2f}% "
              f"(reference {100 * rep.apcer_fp32:.2f}%), BPCER {100 * rep.bpcer:.2f}% "
              f"(reference {100 * rep.bpcer_fp32:.2f}%), max |diff| "
              f"{rep.max_abs_diff_logit:.2e}; written to {out}")
        if rep.other_faces:
            print(f"  {rep.other_faces} bona fide LFW faces (train identities, other cameras): "
                  f"decisions agree {100 * rep.other_decisions_agree:.2f}%, BPCER "
                  f"{100 * rep.other_bpcer:.2f}% (reference {100 * rep.other_bpcer_fp32:.2f}%)")
    return 0


def _user_devel(path: Path, store: CropStore, finetuned: dict | None) -> tuple[CropSet, str]:
    """The user's labelled devel captures as crops, and how the manifest names them."""
    from ..data.folder import data_fingerprint, load_labelled

    samples = load_labelled(path, "devel")
    sha1 = data_fingerprint(samples)
    if finetuned and finetuned.get("train", {}).get("sha1") == sha1:
        # the faces it was fitted to score far from the threshold: a quantised export that
        # moves decisions on new faces of that camera could pass there
        raise ExportError(f"--devel {path} holds the captures the bundle was fine-tuned on "
                          f"({finetuned['train']['path']}): give its devel captures")
    crops = store.labelled_set(path, samples, "devel", minimum=MIN_GATE_PER_CLASS,
                               purpose="the export gate")
    n_att = sum(s.is_attack for s in crops.samples)
    n_live = len(crops) - n_att
    print(f"gating on --devel {path}: {n_live} live / {n_att} attack faces")
    return crops, f"{path.name} (user captures): {n_live} live / {n_att} attack, sha1 {sha1}"


def _package_run(args: argparse.Namespace) -> int:
    import json

    if args.format is not None and args.format not in FORMATS:
        raise ExportError(unknown_name("format", args.format, FORMATS))
    from . import require_training_extra

    require_training_extra("export")
    from ..data.sources import DataRoots
    from ..train.package import package_run

    state_file = args.path / "best" / "trainer_state.json"
    if not state_file.is_file():
        raise ExportError(f"{args.path} has no best/ checkpoint: train it first")
    if json.loads(state_file.read_text()).get("recipe", {}).get("init_from"):
        # package_run would threshold it on Replay-Attack devel and name only Replay's data
        raise ExportError(f"{args.path} is an 'edgefas finetune' run: run the same finetune "
                          "command again, which resumes and writes OUT/bundle")
    from ..train.checkpoint import run_protocol

    trained_on = run_protocol(args.path)
    if args.protocol and trained_on and args.protocol != trained_on:
        # the bundle would be labelled (and thresholded) for data its model was trained on
        raise ExportError(f"{args.path} was trained on protocol {trained_on} "
                          f"(protocol.txt), not {args.protocol}")
    protocol = args.protocol or trained_on or "P1"
    out = args.out or args.path / "bundle"
    bundle = package_run(args.path, out, protocol=protocol,
                         name=args.name or f"baseline-{protocol}",
                         roots=DataRoots(args.replay_root, None, args.lfw_root),
                         **({} if args.atol is None else {"atol": args.atol}))
    manifest = json.loads((bundle / "manifest.json").read_text())
    par = manifest["parity"]["classifier.onnx"]
    print(f"wrote {bundle}: threshold {manifest['threshold']['value']:.4f} "
          f"(devel D-EER criterion); ONNX parity |diff| 99th percentile "
          f"{par['q99_abs_diff']:.1e}, max {par['max_abs_diff']:.1e} "
          f"on {par['n_inputs']} devel faces, {par['decisions_flipped']} flips")
    return 0

