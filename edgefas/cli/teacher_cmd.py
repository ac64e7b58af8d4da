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
  edgefas teacher --model ddm-all --recipe cpu --out runs/teachers/ddm-all \\
      --init-from runs/teachers/ddm-live/teacher
  edgefas teacher --model despoof --recipe cpu --protocol P2-print --out runs/teachers/P2-print/despoof

training where the data sets are not (a lent GPU, a cloud box): write the faces once to a pack
(lossless WebP, ~5 kB a face), copy it over, train there in resumable time slots:
  edgefas teacher --model agfas --recipe gpu --with-lfw --max-lfw 5000 --save-pack agfas_P1.npz
  edgefas teacher --model agfas --recipe gpu --pack agfas_P1.npz --out runs/teachers/agfas-gpu \\
      --time-budget 9
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .argtypes import NO_RESUME_HELP, positive_int

#: the choices of --model and --mixed-precision, spelled here because importing edgefas.distill
#: imports torch, and every edgefas command builds this parser (a test keeps them in step)
MODEL_CHOICES = ("ddm-live", "ddm-all", "agfas", "despoof")
MIXED_PRECISION_CHOICES = ("no", "bf16", "fp16")
AUGMENT_CHOICES = ("none", "camera")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.protocols import PROTOCOLS

    p.add_argument("--model", required=True, choices=list(MODEL_CHOICES), help="which teacher")
    p.add_argument("--recipe", default="cpu", choices=["tiny", "cpu", "gpu", "gpu-large"],
                   help="tiny (seconds, tests), cpu (this machine), gpu (one GPU, measured on an H100), "
                        "gpu-large (a wider UNet, not run yet)")
    p.add_argument("--protocol", default="P1", choices=list(PROTOCOLS),
                   help="whose train split to learn from (default: %(default)s)")
    p.add_argument("--out", type=Path, help="run folder (required unless --save-pack)")
    p.add_argument("--steps", type=positive_int, help="override the recipe's number of steps")
    p.add_argument("--threads", type=positive_int,
                   help="torch threads (default: the recipe's; 1 is faster when other jobs share the CPU)")
    p.add_argument("--with-lfw", action="store_true", help="add LFW train identities (live-only teachers)")
    p.add_argument("--max-lfw", type=int,
                   help="with --with-lfw: at most this many LFW faces (random, seed 0)")
    p.add_argument("--save-pack", type=Path, metavar="NPZ",
                   help="write the training faces (cut to the recipe's region) to a crop pack and stop")
    p.add_argument("--pack", type=Path, metavar="NPZ", help="train from a crop pack instead of the data sets")
    p.add_argument("--time-budget", type=float, metavar="MIN",
                   help="stop after MIN minutes with a checkpoint and the teacher so far; rerun to resume")
    p.add_argument("--mixed-precision", choices=list(MIXED_PRECISION_CHOICES),
                   help="diffusion teachers on a GPU: autocast precision (default: the recipe's; "
                        "ignored on the CPU)")
    p.add_argument("--condition", choices=["lowpass"],
                   help="agfas: condition the generator on a low-pass copy of the face (the offline "
                        "stand-in for the paper's identity embedding: it keeps who the face is at large t0)")
    p.add_argument("--condition-sigma", type=float, help="blur sigma of --condition lowpass, in pixels "
                   "(default: the recipe's, 2.0)")
    p.add_argument("--augment", choices=list(AUGMENT_CHOICES),
                   help="diffusion teachers: 'camera' sends each training face through a random capture "
                        "pipeline (resolution, blur/sharpening, noise, gamma, JPEG; as `edgefas train "
                        "--augment camera`) so the live prior also knows other cameras' live faces "
                        "(default: the recipe's, none)")
    p.add_argument("--init-from", type=Path, help="a teacher folder to start from (ddm-all)")
    p.add_argument("--no-resume", action="store_true", help=NO_RESUME_HELP)
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")
    p.add_argument("--lfw-root", type=Path)


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("teacher")
    from ..distill.recipes import get_recipe
    from ..distill.teacher_data import TEACHER_MODELS
    from ..distill.train_teacher import train_despoof_net, train_diffusion
    from ..runtime.preprocess import Contract

    if args.save_pack is None and args.out is None:
        raise SystemExit("edgefas teacher: --out is required (or --save-pack to only write a crop pack)")
    kind, _ = TEACHER_MODELS[args.model]
    recipe = get_recipe(kind, args.recipe)
    if args.steps:
        recipe = recipe.with_overrides(steps=args.steps)
    if args.threads:
        recipe = recipe.with_overrides(threads=args.threads)
    if args.mixed_precision:
        if kind == "despoof_net":
            raise SystemExit("edgefas teacher: --mixed-precision is for the diffusion teachers")
        recipe = recipe.with_overrides(mixed_precision=args.mixed_precision)
    if args.condition or args.condition_sigma:
        if kind != "agfas":
            raise SystemExit("edgefas teacher: --condition is for the AG-FAS generator (--model agfas)")
        sigma = {"condition_sigma": args.condition_sigma} if args.condition_sigma else {}
        recipe = recipe.with_overrides(condition=args.condition or "lowpass", **sigma)
    if args.augment and args.augment != "none":
        if kind == "despoof_net":
            raise SystemExit("edgefas teacher: --augment is for the diffusion teachers")
        recipe = recipe.with_overrides(augment=args.augment)
    contract = Contract()
    region = getattr(recipe, "region", 1.0)
    if args.init_from is not None and not args.pack:
        _check_init(args, args.protocol)   # before minutes of cropping, not after
    if args.pack:
        from ..distill.crop_pack import load_crop_pack

        crops, is_live, meta = load_crop_pack(args.pack)
        data, crops_region = meta["data"], meta["region"]
        if data.get("model") != args.model:
            raise SystemExit(f"edgefas teacher: {args.pack} holds {data.get('model')} faces, "
                             f"not {args.model}")
    else:
        crops, is_live, data = _training_faces(args, contract)
        crops_region = 1.0
    print(f"teacher {args.model} ({data['protocol']}): {int(is_live.sum())} live / "
          f"{int((~is_live).sum())} attack crops")
    if args.save_pack:
        from ..distill.crop_pack import cut_region, save_crop_pack

        cut = cut_region(crops, region)
        path = save_crop_pack(args.save_pack, cut, is_live, region=region, data=data)
        print(f"crop pack written to {path} ({path.stat().st_size / 2**20:.1f} MiB, {len(cut)} faces of "
              f"{cut.shape[1]} px, the central {region:g} of the crop)")
        return 0
    if args.init_from is not None and args.pack:
        _check_init(args, data["protocol"])   # a pack says its protocol only once read
    budget = None if args.time_budget is None else max(0.0, args.time_budget) * 60
    if kind == "despoof_net":
        if crops_region != 1.0 or budget is not None:
            raise SystemExit("edgefas teacher: the DS Net trains from whole crops without a time budget")
        out = train_despoof_net(recipe, crops, is_live, args.out, resume=not args.no_resume,
                                contract=contract, data=data)
    else:
        out = train_diffusion(recipe, crops, args.out, resume=not args.no_resume, contract=contract,
                              init_from=args.init_from, data=data, crops_region=crops_region,
                              time_budget_s=budget)
    print(f"teacher written to {out}")
    return 0


def _training_faces(args: argparse.Namespace, contract):
    """(crops, is_live, data record) of the protocol's train split, from the crop cache."""
    from ..data.sources import DataRoots
    from ..distill.teacher_data import training_faces

    return training_faces(args.model, args.protocol, DataRoots(args.replay_root, None, args.lfw_root),
                          contract, with_lfw=args.with_lfw, max_lfw=args.max_lfw)


def _check_init(args: argparse.Namespace, protocol: str) -> None:
    from ..data.sources import DataRoots
    from ..distill.teacher_data import check_init_fits

    check_init_fits(args.init_from, protocol, DataRoots(args.replay_root).resolve().replay_frames)
