"""Fit a bundle's threshold (and score calibration) to one camera; write a calibrated copy.

Point --live at a few hundred captures of real people from the target camera (any folder of
images); --attack at captures of prints/screens shown to it (sub-folders name the species,
e.g. attack/print, attack/replay). The threshold becomes the highest one with BPCER <= the
target on the live captures; with attacks, the Platt calibration is refit too. Or, with attack
captures, set the security level with --target-apcer: the threshold becomes the lowest one at
which every attack species is accepted at most that often (the fewest live rejections at that
level). The choice,
the counts and the expected APCER/BPCER (out-of-bag bootstrap, 95% intervals) go into the new
bundle's manifest under "threshold" and "camera_calibration".

examples:
  edgefas calibrate --live captures/live --target-bpcer 1% --out bundles/kiosk-cam1
  edgefas calibrate --live cam/live --attack cam/attack --target-bpcer 0.5% --out cam1 --json report.json
  edgefas calibrate --live cam/live --attack cam/attack --target-apcer 1% --out cam1-secure
  edgefas calibrate --data cam.csv --target-bpcer 1% --out cam1     # the CSV's devel rows
  edgefas detect photo.jpg --bundle bundles/kiosk-cam1
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

from ..errors import EdgefasError
from .argtypes import positive_int


def percent(text: str) -> float:
    """'1%' -> 0.01; '0.01' -> 0.01."""
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a rate: {text!r} (e.g. 1% or 0.01)") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--live", help="folder of live captures from the camera")
    src.add_argument("--data", metavar="DATA",
                     help="instead of --live/--attack: labelled captures, a live/ + "
                          "attack/<species>/ folder or a CSV (its 'devel' rows when the split "
                          "column is filled), as 'edgefas finetune' and 'export --devel' read them")
    p.add_argument("--attack", help="folder of attack captures (sub-folders = species)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--target-bpcer", type=percent, default=0.01,
                        help="allowed share of live captures rejected (default: 1%%)")
    target.add_argument("--target-apcer", type=percent,
                        help="instead: allowed share of each attack species accepted (needs "
                             "--attack); the threshold is the lowest that keeps every species "
                             "within it")
    p.add_argument("--out", required=True, help="folder for the calibrated bundle (must not exist)")
    p.add_argument("--bundle", help="bundle to calibrate (default: the shipped one)")
    p.add_argument("--no-refit", action="store_true",
                   help="keep the bundle's score calibration even when attacks are given")
    p.add_argument("--bootstrap", type=positive_int, default=1000, help="resamples (default: %(default)s)")
    p.add_argument("--min-live", type=positive_int, default=50,
                   help="refuse with fewer usable live captures (default: %(default)s)")
    p.add_argument("--json", dest="json_out", help="also write the report here")
    p.add_argument("--no-progress", action="store_true")


def _fmt(rate: dict | None) -> str:
    if not rate or rate.get("count") == 0:
        return "-"
    lo, hi = rate["ci95_wilson"]
    return (f"{100 * rate['value']:.2f}% ({rate['errors']}/{rate['count']}; "
            f"95% CI {100 * lo:.2f}-{100 * hi:.2f}%)")


def _exp(e: dict | None) -> str:
    if not e:
        return "-"
    return f"{100 * e['mean']:.2f}% (95% interval {100 * e['ci95'][0]:.2f}-{100 * e['ci95'][1]:.2f}%)"


def run(args: argparse.Namespace) -> int:
    from ..calibrate import calibrate

    if args.json_out and not Path(args.json_out).resolve().parent.is_dir():
        # checked before the captures are scored and the bundle is written
        raise EdgefasError(f"--json {args.json_out}: its folder does not exist")
    command = "edgefas " + " ".join(shlex.quote(a) for a in args._argv)
    rep = calibrate(args.bundle, args.live, args.out, attack_dir=args.attack, data=args.data,
                    target_bpcer=args.target_bpcer, target_apcer=args.target_apcer,
                    refit=not args.no_refit,
                    bootstrap=args.bootstrap, min_live=args.min_live,
                    progress=not args.no_progress, command=command)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rep, indent=2) + "\n")
    ins, exp = rep["in_sample"], rep["expected_on_new_captures"]
    print(f"calibrated bundle: {args.out}")
    print(f"captures: {rep['live']['usable']} live (no usable face: {rep['live']['failed'] or 0}), "
          f"{rep['attack']['usable']} attack (no usable face: {rep['attack']['failed'] or 0})")
    print(f"threshold: {rep['threshold']:.4f} (was {rep['previous_threshold']:.4f}): "
          f"{rep['criterion']}; score calibration "
          f"{'refit on these captures' if rep['calibration_refit'] else 'kept'}")
    print(f"BPCER at the old threshold: {_fmt(rep['bpcer_at_previous_threshold'])}")
    worst = ""
    if ins.get("apcer_per_species"):
        name, rate = max(ins["apcer_per_species"].items(), key=lambda kv: kv[1]["value"] or 0)
        worst = f"   APCER_max {_fmt(rate)} ({name})"
    print(f"in sample:   BPCER {_fmt(ins['bpcer'])}   APCER pooled {_fmt(ins.get('apcer'))}{worst}")
    print(f"expected on new captures (out-of-bag bootstrap, {args.bootstrap} resamples): "
          f"BPCER {_exp(exp['bpcer'])}   APCER pooled {_exp(exp['apcer'])}"
          + (f"   APCER_max {_exp(exp['apcer_max'])}" if exp.get("apcer_max") else ""))
    return 0
