"""Train the RGB baseline (timm MobileViT on aligned face crops) for one protocol.

Data sets are read from --replay-root / --lfw-root or from $EDGEFAS_DATA (default
~/.cache/edgefas/datasets, layout in shared/DATA.md); aligned crops are cached once under
$EDGEFAS_CACHE (default ~/.cache/edgefas). Checkpoints (safetensors) go to --out every
eval_every steps; running the same command again resumes from the newest one.

examples:
  edgefas train --protocol P1 --recipe cpu --augment camera --out runs/P1 --package   # the shipped model
  edgefas train --protocol P1 --recipe cpu --out runs/P1-basic   # the v0.1 baseline recipe
  edgefas train --protocol P2-print --recipe cpu --out runs/P2-print --package
  accelerate launch -m edgefas train --protocol P1 --recipe gpu --out runs/P1-gpu
  edgefas train --protocol P1 --augment camera --lfw-devel --extra-live my_camera_live/ --out runs/P1-mycam

fusion detector (RGB + spoof cue of a frozen de-spoofer inside the network):
  edgefas train --protocol P1 --fusion xattn --cue-dir runs/students/cd/student --out runs/P1-xattn
  edgefas train --protocol P1 --fusion twostream --cue-kind despoof \\
      --cue-dir runs/teachers/P1/despoof/teacher --out runs/P1-ds-twostream
  edgefas distill --teacher-dir runs/teachers/agfas/teacher --t0 100 --protocol P2-print \\
      --out runs/students/cd-P2-print
  edgefas train --protocol P2-print --fusion xattn --cue-dir runs/students/cd-P2-print/student \\
      --out runs/P2-print-xattn
The cue module and the teacher it came from must not have seen what the protocol holds out
(a P1 student inside a P2-print model has seen print attacks): such a --cue-dir is refused.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data.protocols import PROTOCOLS
from .argtypes import NO_RESUME_HELP, fraction, positive_int


def _pair(text: str, names: str, example: str) -> tuple[float, float]:
    """Two comma-separated numbers, ``names`` (e.g. ``SCALE,DEGREES``) in the error message."""
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {names} such as {example}, got {text!r}") from None
    return a, b


def _jitter(text: str) -> tuple[float, float]:
    """``SCALE,DEGREES`` of --jitter, within the recipe's bounds."""
    from ..train.recipes import JITTER_DEGREES_MAX, JITTER_SCALE_BELOW

    scale, degrees = _pair(text, "SCALE,DEGREES", "0.06,5")
    if not (0.0 <= scale < JITTER_SCALE_BELOW and 0.0 <= degrees <= JITTER_DEGREES_MAX):
        raise argparse.ArgumentTypeError(f"SCALE must be in [0, {JITTER_SCALE_BELOW:g}) and DEGREES "
                                         f"in [0, {JITTER_DEGREES_MAX:g}], got {text!r}")
    return scale, degrees


def _light(text: str) -> tuple[float, float]:
    """``EV,WB`` of --light, within the recipe's bounds."""
    from ..train.recipes import LIGHT_EV_MAX, LIGHT_WB_BELOW

    ev, wb = _pair(text, "EV,WB", "1.5,0.25")
    if not (0.0 <= ev <= LIGHT_EV_MAX and 0.0 <= wb < LIGHT_WB_BELOW):
        raise argparse.ArgumentTypeError(f"EV must be in [0, {LIGHT_EV_MAX:g}] and WB in "
                                         f"[0, {LIGHT_WB_BELOW:g}), got {text!r}")
    return ev, wb


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..train.recipes import AUGMENTS, RECIPES

    p.add_argument("--protocol", default="P1", choices=list(PROTOCOLS),
                   help="which split to train and choose on (default: %(default)s)")
    p.add_argument("--recipe", default="cpu", choices=list(RECIPES),
                   help="tiny (seconds, for tests), cpu (12-15 min on 2 cores), gpu")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, history)")
    p.add_argument("--steps", type=positive_int, help="override the recipe's number of steps (a resumed "
                   "run keeps the learning-rate schedule it began with: added steps run at its end rate)")
    p.add_argument("--seed", type=int, help="override the recipe's seed")
    p.add_argument("--no-lfw", action="store_true", help="do not add LFW bona fide faces")
    p.add_argument("--lfw-devel", action="store_true",
                   help="keep LFW's devel bucket (10 %% of its identities, none of P4's held-out ones) "
                        "out of training and choose the checkpoint and threshold against the worse "
                        "of Replay-Attack's webcam and these other-camera live faces (D-EER with "
                        "BPCER of the worst bona fide source); recorded in the bundle")
    p.add_argument("--augment", choices=AUGMENTS,
                   help="basic: flip, shift, brightness/contrast (the recipes' default, kept so that "
                        "earlier runs reproduce); camera: also resolution, blur/sharpening, noise, "
                        "gamma and JPEG on both classes (the shipped v0.2 model's training)")
    p.add_argument("--synth-attacks", type=fraction, metavar="P",
                   help="replace this share (0-1) of each batch's attacks by synthetic prints and "
                        "screen replays made from live training faces (edgefas.train.synth_attacks; "
                        "default 0)")
    p.add_argument("--jitter", metavar="SCALE,DEGREES", type=_jitter,
                   help="re-warp every training crop as a slightly different alignment would have "
                        "made it: scale change uniform in +-SCALE (a fraction), rotation in "
                        "+-DEGREES, plus a shift of up to 1 px (e.g. 0.06,5; default none: "
                        "benchmarks/align_jitter.py measures how far one face-detector pixel "
                        "moves the crop)")
    p.add_argument("--light", metavar="EV,WB", type=_light,
                   help="change the light of half of the training crops, live and attack alike: "
                        "exposure uniform in +-EV stops and a white-balance cast moving red "
                        "against blue by up to +-WB in linear light (e.g. 1.5,0.25; default none: "
                        "benchmarks/capture_light.py measures how light moves the decision)")
    p.add_argument("--synth-live-tone", type=fraction, metavar="P",
                   help="give this share (0-1) of each batch's live faces a print's or screen's "
                        "tone without its texture, labels kept; Replay-Attack's live faces "
                        "are toned before LFW's (default 0)")
    p.add_argument("--synth-live-tone-any", action="store_true",
                   help="with --synth-live-tone: tone live faces of every source (drawn at "
                        "random among the batch's live faces), not Replay-Attack's first")
    p.add_argument("--extra-live", metavar="SOURCE",
                   help="a third source of bona fide training faces: 'cfd' (the Chicago Face "
                        "Database under $EDGEFAS_DATA/cfd or --cfd-root) or a folder (one "
                        "sub-folder per person, or live/ inside) or CSV of your camera's live "
                        "faces; its people in the devel hash bucket stay out of training")
    p.add_argument("--extra-live-share", type=fraction, metavar="P",
                   help="share (0-1) of each batch's bona fide half drawn from --extra-live "
                        "(default 0.125 with --extra-live)")
    p.add_argument("--crop-scale", type=float, metavar="S",
                   help="face crop width as a multiple of the tight 112-px ArcFace crop "
                        "(default 1.5: hair, ears and some background; 1.0: the face interior "
                        "at a higher resolution). Recorded in the bundle's contract")
    p.add_argument("--fusion", choices=["xattn", "twostream"],
                   help="train the fusion detector: AG-FAS cross-attention or DDM two-stream")
    p.add_argument("--cue-dir", type=Path, help="fusion: the cue module (edgefas distill OUT/student, "
                   "or a DS Net teacher folder with --cue-kind despoof)")
    p.add_argument("--cue-kind", default="student", choices=["student", "despoof"])
    p.add_argument("--cue-nfe", type=int, default=1, choices=[1, 2, 4], help="student evaluations")
    p.add_argument("--backbone-weights", type=Path, metavar="FILE",
                   help="start MobileViT from these pretrained (ImageNet) weights instead of random "
                        "ones: a safetensors file written by 'edgefas backbone-weights' (its source "
                        "and licence go into the bundle's manifest)")
    p.add_argument("--branch-from", type=Path, metavar="RUN/epoch_NNN",
                   help="start from another run's checkpoint of the same recipe (weights, "
                        "optimizer, step, schedule) and go on with this run's --seed, which must "
                        "differ: a branch of that run. 'edgefas soup' averages branches into one "
                        "network; recorded in the bundle")
    p.add_argument("--no-resume", action="store_true", help=NO_RESUME_HELP)
    p.add_argument("--replay-root", type=Path, help="Replay-Attack 20-frames-per-video tree")
    p.add_argument("--replay-1frame-root", type=Path, help="Replay-Attack 1-frame-per-video tree")
    p.add_argument("--lfw-root", type=Path, help="LFW images folder")
    p.add_argument("--cfd-root", type=Path, help="Chicago Face Database folder (for --extra-live cfd)")
    p.add_argument("--package", action="store_true",
                   help="after training, write a bundle to OUT/bundle (same as 'edgefas export')")


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("train")
    from ..data.sources import DataRoots
    from ..train.recipes import get_recipe
    from ..train.run import run_training

    recipe = get_recipe(args.recipe).with_overrides(steps=args.steps, seed=args.seed,
                                                    augment=args.augment,
                                                    synth_attacks=args.synth_attacks,
                                                    synth_live_tone=args.synth_live_tone)
    if args.jitter is not None:
        recipe = recipe.with_overrides(jitter_scale=args.jitter[0], jitter_degrees=args.jitter[1])
    if args.light is not None:
        recipe = recipe.with_overrides(light_ev=args.light[0], light_wb=args.light[1])
    if args.no_lfw:
        recipe = recipe.with_overrides(use_lfw=False)
    if args.lfw_devel:
        recipe = recipe.with_overrides(lfw_devel=True)
    if args.synth_live_tone_any:
        if not recipe.synth_live_tone:
            from ..errors import EdgefasError

            raise EdgefasError("--synth-live-tone-any needs --synth-live-tone P (the share)")
        recipe = recipe.with_overrides(synth_live_tone_any=True)
    if args.extra_live_share is not None and not args.extra_live:
        from ..errors import EdgefasError

        raise EdgefasError("--extra-live-share needs --extra-live SOURCE")
    if args.extra_live:
        recipe = recipe.with_overrides(
            # a path is recorded absolute: a resume or --package from another folder finds it
            extra_live=(args.extra_live if args.extra_live == "cfd"
                        else str(Path(args.extra_live).expanduser().resolve())),
            extra_live_share=args.extra_live_share if args.extra_live_share is not None else 0.125)
    if args.fusion:
        if not args.cue_dir:
            from ..errors import EdgefasError

            raise EdgefasError("--fusion needs --cue-dir")
        recipe = recipe.with_overrides(fusion=args.fusion, cue_dir=str(args.cue_dir), cue_kind=args.cue_kind,
                                       cue_nfe=args.cue_nfe)
    backbone = None
    if args.backbone_weights is not None:
        from ..train.backbone_init import read_backbone_weights

        backbone = read_backbone_weights(args.backbone_weights)
        if backbone.arch != recipe.arch:   # before minutes of cropping
            from ..errors import EdgefasError

            raise EdgefasError(f"{args.backbone_weights} holds {backbone.arch} weights; recipe "
                               f"{recipe.name!r} trains {recipe.arch}")
        recipe = recipe.with_overrides(backbone_init=backbone.tag)
    roots = DataRoots(args.replay_root, args.replay_1frame_root, args.lfw_root, cfd=args.cfd_root)
    contract = None
    if args.crop_scale is not None:
        from ..errors import EdgefasError
        from ..runtime.preprocess import Contract

        if not 0.8 <= args.crop_scale <= 3.0:
            raise EdgefasError(f"--crop-scale {args.crop_scale:g} outside 0.8-3.0")
        contract = Contract(crop_scale=args.crop_scale)
    best = run_training(args.protocol, recipe, args.out, roots=roots, contract=contract,
                        resume=not args.no_resume, backbone=backbone,
                        branch_from=args.branch_from)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        # under accelerate launch every process trains; train_baseline returns once the main one
        # has written the run, which only it reports on and packages (N writers of one bundle
        # folder race for its files)
        return 0
    print(f"best checkpoint: {best}")
    if args.package:
        from ..train.package import package_run

        bundle = package_run(args.out, args.out / "bundle", protocol=args.protocol,
                             name=(f"fusion-{args.fusion}-{args.protocol}" if args.fusion
                                   else f"baseline-{args.protocol}"), roots=roots)
        print(f"bundle: {bundle}")
    return 0
