"""Average branches of one training run into one network (a "model soup"), and package it.

Branch a finished or running run at one of its checkpoints with other seeds, then average
the final EMA weights of the run and its branches. example:

  edgefas train --protocol P1 --recipe cpu --augment camera --lfw-devel --seed 101 \\
      --branch-from runs/P1/epoch_002 --out runs/P1-b101 --package
  (the same with --seed 102, 103)
  edgefas soup runs/P1 runs/P1-b101 runs/P1-b102 runs/P1-b103 --out runs/P1-soup --package

The soup costs one network at inference, like each member; weight averaging is meant to
make a model that depends less on one seed's luck with cameras it never saw. Only branches
of one run can be averaged (networks trained from different random starts do not average
into a working one): other runs are refused. The bundle's threshold and calibration are set
on devel as for any run, and its manifest names every member (run, seed, branch step, sha256
of its weights). Measured on this project's data in docs/soup/.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                   help="run folders of 'edgefas train': one run and its branches (--branch-from)")
    p.add_argument("--out", required=True, type=Path, help="soup folder (writes OUT/best)")
    p.add_argument("--package", action="store_true",
                   help="also write the bundle OUT/bundle (same as 'edgefas export OUT')")
    p.add_argument("--name", help="bundle name (default: soup-PROTOCOL)")
    p.add_argument("--atol", type=float, help="ONNX parity tolerance on logits (default: export's)")
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")
    p.add_argument("--lfw-root", type=Path, help="LFW images folder")
    p.add_argument("--cfd-root", type=Path, help="Chicago Face Database folder (recipes with "
                   "--extra-live cfd)")


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("soup")
    import json

    from ..train.soup import make_soup

    best = make_soup(args.runs, args.out)   # checks the members before it writes anything
    members = json.loads((best / "trainer_state.json").read_text())["soup"]["members"]
    seeds = ", ".join(str(m["seed"]) for m in members)
    print(f"wrote {best}: the average of {len(members)} members (seeds {seeds})")
    if args.package:
        from ..data.sources import DataRoots
        from ..train.checkpoint import run_protocol
        from ..train.package import package_run

        protocol = run_protocol(args.out) or "P1"   # the members', written by make_soup
        bundle = package_run(args.out, args.out / "bundle", protocol=protocol,
                             name=args.name or f"soup-{protocol}",
                             roots=DataRoots(args.replay_root, None, args.lfw_root, cfd=args.cfd_root),
                             **({} if args.atol is None else {"atol": args.atol}))
        print(f"bundle: {bundle}")
    return 0
