"""Train a de-spoofing teacher (edgefas.distill) on a protocol's training faces.

models:
  ddm-live   DDM eps_g: diffusion model of live faces (generation step of DDM)
  ddm-all    DDM eps_s: diffusion model of all faces (inversion step of DDM);
             --init-from a ddm-live run fine-tunes it from that model
  agfas      AG-FAS de-fake generator: live faces only (noise to t0, denoise)
  despoof    Face De-Spoofing DS Net: one-pass spoof-noise network, live and attack faces

Crops are the runtime's own aligned faces (cached once); only the protocol's train split is
used, so a P2 teacher never sees the held-out species. Checkpoints (safetensors) go to --out;
the same command resumes. The finished teacher is written to OUT/teacher/.

examples:
  edgefas teacher --model ddm-live --recipe cpu --out runs/teachers/ddm-live
  edgefas teacher --model ddm-all --recipe cpu --out runs/teachers/ddm-all \
      --init-from runs/teachers/ddm-live/teacher
  edgefas teacher --model despoof --recipe cpu --protocol P2-print --out runs/teachers/P2-print/despoof
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS
    from ..distill.teacher_data import TEACHER_MODELS

    p.add_argument("--model", required=True, choices=list(TEACHER_MODELS), help="which teacher")
    p.add_argument("--recipe", default="cpu", choices=["tiny", "cpu", "gpu"],
                   help="tiny (seconds, tests), cpu (this machine), gpu")
    p.add_argument("--protocol", default="P1", choices=list(PROTOCOLS),
                   help="whose train split to learn from (default: %(default)s)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument("--steps", type=int, help="override the recipe's number of steps")
    p.add_argument("--threads", type=int, help="torch threads (default: the recipe's; 1 is faster when "
                   "other jobs share the CPU)")
    p.add_argument("--with-lfw", action="store_true", help="add LFW train identities (live-only teachers)")
    p.add_argument("--init-from", type=Path, help="a teacher folder to start from (ddm-all)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")
    p.add_argument("--lfw-root", type=Path)


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("teacher")
    from ..data.sources import CropStore, DataRoots
    from ..distill.recipes import get_recipe
    from ..distill.teacher_data import TEACHER_MODELS, teacher_data_record, teacher_training_set
    from ..distill.train_teacher import train_despoof_net, train_diffusion
    from ..runtime.preprocess import Contract
    from ..train.run import face_stage_for

    kind, _ = TEACHER_MODELS[args.model]
    recipe = get_recipe(kind, args.recipe)
    if args.steps:
        recipe = recipe.with_overrides(steps=args.steps)
    if args.threads:
        recipe = recipe.with_overrides(threads=args.threads)
    contract = Contract()
    stage, sha = face_stage_for(contract)
    store = CropStore(stage, sha, DataRoots(args.replay_root, None, args.lfw_root))
    crops, is_live = teacher_training_set(args.model, args.protocol, store, with_lfw=args.with_lfw)
    print(f"teacher {args.model} ({args.protocol}): {int(is_live.sum())} live / "
          f"{int((~is_live).sum())} attack crops")
    data = teacher_data_record(args.model, args.protocol, crops, is_live, with_lfw=args.with_lfw)
    if kind == "despoof_net":
        out = train_despoof_net(recipe, crops, is_live, args.out, resume=not args.no_resume,
                                contract=contract, data=data)
    else:
        out = train_diffusion(recipe, crops, args.out, resume=not args.no_resume,
                              contract=contract, init_from=args.init_from, data=data)
    print(f"teacher written to {out}")
    return 0
