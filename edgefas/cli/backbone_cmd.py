"""Write a pretrained backbone weights file for `edgefas train --backbone-weights`.

The file is a safetensors state dict in timm's layout with its metadata: architecture, the
input convention the weights were trained with, and their source and licence (copied into the
manifest of every bundle trained from them). Nothing is downloaded by edgefas at run time, so
the weights come from one of:

  --from-timm          timm's own pretrained weights (timm fetches them from the Hugging Face
                       hub: a machine with network access, or a filled hub cache)
  --from-file FILE     a state dict in timm's layout that you have (safetensors, or a PyTorch
                       file read with weights_only=True, never unpickled code); --source and
                       --licence are then required

examples:
  edgefas backbone-weights --from-timm --out mobilevit_xxs_in1k.safetensors
  edgefas backbone-weights --from-file mobilevit_xxs.pth --source "timm mobilevit_xxs, ImageNet-1k" \\
      --licence "see the model card" --out mobilevit_xxs_in1k.safetensors
  edgefas train --protocol P1 --recipe cpu --augment camera --lfw-devel \\
      --backbone-weights mobilevit_xxs_in1k.safetensors --out runs/P1-in1k
"""
from __future__ import annotations

import argparse
from pathlib import Path

#: edgefas.train.backbone_init.COLOR_ORDERS (not imported: that module needs torch, and every
#: command's options are built even on a runtime-only install)
COLOR_ORDERS = ("rgb", "bgr")


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-timm", action="store_true",
                     help="timm's pretrained weights for --arch (needs the Hugging Face hub or its cache)")
    src.add_argument("--from-file", type=Path, metavar="FILE",
                     help="a state dict file (.safetensors, .pt, .pth)")
    p.add_argument("--arch", default="mobilevit_xxs",
                   help="timm model name the weights are for, without a pretrained tag (default: "
                        "%(default)s, the detector's)")
    p.add_argument("--source", help="where the weights come from (required with --from-file)")
    p.add_argument("--licence", help="the weights' licence (required with --from-file)")
    p.add_argument("--color-order", choices=COLOR_ORDERS,
                   help="channel order the weights were trained on (default: the order in which "
                        "they classify two ImageNet photos of scikit-image right; required when "
                        "that check cannot run: no 1000-class head, or no scikit-image)")
    p.add_argument("--mean", type=float, nargs=3, metavar=("C1", "C2", "C3"),
                   help="input mean the weights were trained with, on [0, 1] in their channel "
                        "order (default: timm's pretrained config for --arch; MobileViT: 0 0 0)")
    p.add_argument("--std", type=float, nargs=3, metavar=("C1", "C2", "C3"),
                   help="input std (default: timm's pretrained config; MobileViT: 1 1 1)")
    p.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")


def _timm_convention(arch: str) -> tuple[list[float], list[float], dict]:
    import timm

    from ..errors import EdgefasError

    if "." in arch:
        raise EdgefasError(f"--arch {arch}: give the model name without its pretrained tag "
                           f"({arch.split('.')[0]}); training recipes name architectures that way")
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        raise EdgefasError(f"timm has no pretrained config for {arch!r}")
    d = cfg.to_dict()
    return list(d.get("mean", (0.0, 0.0, 0.0))), list(d.get("std", (1.0, 1.0, 1.0))), d


def _read_state_dict(path: Path) -> dict:
    from ..errors import EdgefasError

    if not path.is_file():
        raise EdgefasError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from ..train.backbone_init import read_state_dict

        return read_state_dict(path, what="--from-file")[0]
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unpicklable or damaged file: weights_only refuses code
        raise EdgefasError(f"{path}: not a plain state dict ({e})") from e
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise EdgefasError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _color_order(state: dict, args: argparse.Namespace, mean, std) -> tuple[str, str]:
    """The weights' channel order and what the ImageNet check said (for the metadata)."""
    from ..errors import EdgefasError
    from ..train.backbone_init import CHECK_MIN_PROB, imagenet_check

    scores = imagenet_check(state, args.arch, mean=mean, std=std)
    if scores is None:
        if args.color_order is None:
            raise EdgefasError("the ImageNet check cannot run on these weights (no 1000-class "
                               "head, or scikit-image is not installed): give --color-order")
        return args.color_order, "not run"
    said = ", ".join(f"{o.upper()} {p:.2f}" for o, p in scores.items())
    print(f"ImageNet check (coffee, chelsea; mean probability of the right classes): {said}")
    best = max(scores, key=scores.get)
    if args.color_order is None:
        if scores[best] < CHECK_MIN_PROB:
            raise EdgefasError(f"these weights classify neither RGB nor BGR photos right ({said}): "
                               "not ImageNet weights for this input convention (wrong --mean/--std "
                               "or --arch?); give --color-order to write them anyway")
        return best, said
    if args.color_order != best and scores[best] >= CHECK_MIN_PROB:
        print(f"warning: --color-order {args.color_order} given, but the check favours {best}")
    return args.color_order, said


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("backbone-weights")
    import timm

    from ..errors import EdgefasError
    from ..train.backbone_init import (
        check_convention,
        check_fits,
        read_backbone_weights,
        save_backbone_weights,
    )

    mean, std, cfg = _timm_convention(args.arch)
    mean, std = args.mean or mean, args.std or std
    check_convention(args.color_order or "rgb", mean, std, what="--mean/--std")  # before any work
    if args.from_timm:
        try:
            model = timm.create_model(args.arch, pretrained=True)
        except Exception as e:  # no network and no hub cache, most often
            raise EdgefasError(f"timm could not load the pretrained {args.arch} weights ({e}); "
                               "on a machine without network use --from-file") from e
        state = model.state_dict()
        hub = cfg.get("hf_hub_id")
        source = args.source or (f"timm {args.arch} pretrained weights"
                                 + (f" (https://huggingface.co/{hub})" if hub else ""))
        licence = args.licence or (f"{cfg.get('license') or 'not stated'} (timm's pretrained "
                                   f"config; the terms are on the model card"
                                   + (f" https://huggingface.co/{hub})" if hub else ")"))
    else:
        if not args.source or not args.licence:
            raise EdgefasError("--from-file needs --source and --licence: both go into every "
                               "bundle trained from these weights")
        state = _read_state_dict(args.from_file)
        source, licence = args.source, args.licence
        # before writing: a file for another model would otherwise fail only when training starts
        check_fits(state, args.arch, what=str(args.from_file))
    order, said = _color_order(state, args, mean, std)
    out = save_backbone_weights(state, args.out, arch=args.arch, color_order=order, mean=mean,
                                std=std, source=source + f" [ImageNet check: {said}]", licence=licence)
    w = read_backbone_weights(out)
    print(f"wrote {out} ({len(w.state_dict)} tensors, {order.upper()} input, sha256 {w.sha256})")
    print(f"train from it: edgefas train ... --backbone-weights {out}")
    return 0
