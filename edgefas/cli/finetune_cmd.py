"""Fine-tune a bundle's classifier on one camera's labelled captures; write a new bundle.

--train and --devel each take a folder (live/ and attack/<species>/, as 'edgefas eval --folder')
or a CSV (path,label[,species,subject,split]; a CSV with a split column can serve both, its
'train' rows for --train and 'devel' rows for --devel). Put different people in the two: the
checkpoint and the threshold (D-EER) are chosen on --devel, and a CSV's subject column is
checked for people in both. Only your captures are needed, not the base training data
(unless --rehearse).
Checkpoints go to --out every 50 steps; running the same command again resumes.

Start with 'edgefas calibrate' (threshold only, no training); fine-tune when the model itself
does not separate your camera's live faces from its attacks. Check the new bundle on captures
of people in neither set (edgefas eval --bundle OUT/bundle --folder ...), and on the base
protocols if you have their data: fine-tuning forgets (docs/finetune_nuaa: fine-tuned on
NUAA's webcam, v0.3 lost its separation of Replay-Attack's attacks); --anchor limits how far
the weights move from the base bundle's, and --rehearse (if you have the base training data)
keeps training on it beside your captures, which kept the base model there (Replay-Attack AUC
0.996).

examples:
  edgefas finetune --train cam/train --devel cam/devel --out runs/cam1
  edgefas finetune --train cam.csv --devel cam.csv --steps 500 --out runs/cam1
  edgefas finetune --train cam.csv --devel cam.csv --rehearse --out runs/cam1-rh
  edgefas eval --bundle runs/cam1/bundle --folder cam/test
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..train.recipes import TRAIN_LAYERS
from .argtypes import NO_RESUME_HELP, _number, positive_int

#: a learning rate: above 0, below 1
learning_rate = _number(float, lambda v: 0 < v < 1, "in (0, 1)")
#: a weight >= 0
non_negative_float = _number(float, lambda v: v >= 0, ">= 0")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, help="labelled captures to train on (folder or CSV)")
    p.add_argument("--devel", required=True,
                   help="labelled captures of other people: checkpoint and threshold are chosen here")
    p.add_argument("--out", required=True, type=Path,
                   help="run folder (checkpoints; the new bundle goes to OUT/bundle)")
    p.add_argument("--bundle", help="bundle to start from (default: the shipped one)")
    p.add_argument("--steps", type=positive_int, help="training steps (default 300)")
    p.add_argument("--lr", type=learning_rate, help="peak learning rate (default 2e-4)")
    p.add_argument("--batch-size", type=positive_int,
                   help="crops per step, half live and half attack (default: the base recipe's)")
    p.add_argument("--anchor", type=non_negative_float, metavar="ALPHA",
                   help="L2-SP weight: pull the weights toward the base bundle's (loss + ALPHA/2 "
                        "||w - w_base||^2) so that it forgets less of the base data (default 0.1, "
                        "chosen on devel in docs/finetune_nuaa; 0: plain fine-tuning)")
    p.add_argument("--freeze-bn", action=argparse.BooleanOptionalAction, default=None,
                   help="keep BatchNorm's running statistics as the base bundle left them "
                        "(default: on, chosen on devel in docs/finetune_nuaa; --no-freeze-bn "
                        "re-estimates them on your captures)")
    p.add_argument("--train-layers", choices=TRAIN_LAYERS,
                   help="which weights train: all (the default), or last-stage (the backbone's "
                        "last stage, final convolution and head; the layers below keep the base's "
                        "weights and BatchNorm statistics; on NUAA it forgot more and adapted less, "
                        "docs/finetune_nuaa addendum 5)")
    p.add_argument("--rehearse", action="store_true",
                   help="also train on the base bundle's own training data (Replay-Attack train, "
                        "LFW; under $EDGEFAS_DATA or --replay-root / --lfw-root), mixed with your "
                        "captures by count, so that it forgets less")
    p.add_argument("--replay-root", type=Path, help="with --rehearse: Replay-Attack 20-frame tree")
    p.add_argument("--lfw-root", type=Path, help="with --rehearse: LFW images folder")
    p.add_argument("--seed", type=int, help="random seed (default: the base recipe's)")
    p.add_argument("--threads", type=positive_int, help="torch threads (default: the base recipe's)")
    p.add_argument("--no-resume", action="store_true", help=NO_RESUME_HELP)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    if (args.replay_root or args.lfw_root) and not args.rehearse:
        from ..errors import EdgefasError

        raise EdgefasError("--replay-root and --lfw-root are read only with --rehearse")
    require_training_extra("finetune")
    from ..data.sources import DataRoots
    from ..runtime.face_stage import FacePolicy
    from ..train.baseline import load_trained
    from ..train.finetune import finetune
    from ..train.package import package_model, training_data
    from ..train.recipes import BaselineRecipe

    best, devel, base, data = finetune(args.bundle, args.train, args.devel, args.out,
                                       steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                                       seed=args.seed, threads=args.threads, anchor=args.anchor,
                                       rehearse=args.rehearse, freeze_bn=args.freeze_bn,
                                       train_layers=args.train_layers,
                                       roots=DataRoots(args.replay_root, None, args.lfw_root),
                                       resume=not args.no_resume, progress=not args.no_progress)
    print(f"best checkpoint: {best}")
    model, state = load_trained(best)
    base_training = base.get("training", {})
    tr, dv = data["train"], data["devel"]
    training = {
        "base_bundle": {"name": base["name"], "version": base.get("version"),
                        "init_from": state["recipe"]["init_from"],
                        "data": base_training.get("data", [])},
        "data": [*base_training.get("data", []),
                 f"fine-tuned on {tr['path']}: {tr['usable_live']} live and "
                 f"{tr['usable_attack']} attack faces (the user's captures)",
                 *(f"rehearsed in each batch: {d}" for d in
                   (training_data(BaselineRecipe(**state["recipe"]))[0] if args.rehearse else []))],
        "finetune_data": data,
        "licence": [*base.get("licence", {}).get("data", []),
                    f"{tr['path']}: the terms of the user's own data"],
    }
    bundle = package_model(model, state, devel, args.out / "bundle", name=f"{base['name']}-finetuned",
                           training=training,
                           devel_split=f"{dv['path']} (the user's devel captures)",
                           policy=FacePolicy.from_dict(base["face_policy"]))
    print(f"bundle: {bundle}")
    # measured (docs/finetune_nuaa): fine-tuned on one camera's captures, v0.3 went from AUC
    # 1.000 to 0.517 on Replay-Attack and rejected 76 % of LFW's faces
    print("note: this bundle is fitted to the camera and attacks of --train; fine-tuning "
          + ("with --rehearse forgets less, but can still forget"
             if args.rehearse else "can forget")
          + " what the base model knew of other cameras and attack media. Deploy it on that "
          "camera only, and check it on captures of people in neither set (edgefas eval "
          f"--bundle {bundle} --folder ...)")
    print(f"to export it for a device: edgefas export {bundle} --device DEVICE --devel "
          f"{args.devel} --out DIR (gated on these devel captures)")
    return 0
