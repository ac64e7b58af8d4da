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


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-timm", action="store_true",
                     help="timm's pretrained weights for --arch (needs the Hugging Face hub or its cache)")
    src.add_argument("--from-file", type=Path, metavar="FILE",
                     help="a state dict file (.safetensors, .pt, .pth)")
    p.add_argument("--arch", default="mobilevit_xxs",
                   help="timm model name the weights are for (default: %(default)s, the detector's)")
    p.add_argument("--source", help="where the weights come from (required with --from-file)")
    p.add_argument("--licence", help="the weights' licence (required with --from-file)")
    p.add_argument("--mean", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="input mean the weights were trained with, on RGB in [0, 1] (default: "
                        "timm's pretrained config for --arch; MobileViT: 0 0 0)")
    p.add_argument("--std", type=float, nargs=3, metavar=("R", "G", "B"),
                   help="input std (default: timm's pretrained config; MobileViT: 1 1 1)")
    p.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")


def _timm_convention(arch: str) -> tuple[list[float], list[float], dict]:
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        from ..errors import EdgefasError

        raise EdgefasError(f"timm has no pretrained config for {arch!r}")
    d = cfg.to_dict()
    return list(d.get("mean", (0.0, 0.0, 0.0))), list(d.get("std", (1.0, 1.0, 1.0))), d


def _read_state_dict(path: Path) -> dict:
    from ..errors import EdgefasError

    if not path.is_file():
        raise EdgefasError(f"{path}: no such file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
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


def run(args: argparse.Namespace) -> int:
    from . import require_training_extra

    require_training_extra("backbone-weights")
    import timm

    from ..errors import EdgefasError
    from ..train.backbone_init import read_backbone_weights, save_backbone_weights

    mean, std, cfg = _timm_convention(args.arch)
    if args.from_timm:
        try:
            model = timm.create_model(args.arch, pretrained=True)
        except Exception as e:  # no network and no hub cache, most often
            raise EdgefasError(f"timm could not load the pretrained {args.arch} weights ({e}); "
                               "on a machine without network use --from-file") from e
        state = model.state_dict()
        source = args.source or (f"timm {args.arch} pretrained weights "
                                 f"({cfg.get('hf_hub_id') or cfg.get('url') or 'timm'})")
        licence = args.licence or cfg.get("license") or "see the model card of the source"
    else:
        if not args.source or not args.licence:
            raise EdgefasError("--from-file needs --source and --licence: both go into every "
                               "bundle trained from these weights")
        state = _read_state_dict(args.from_file)
        source, licence = args.source, args.licence
        # check the keys against the architecture before writing (a file for another model
        # would otherwise fail only when a training run starts)
        own = timm.create_model(args.arch, pretrained=False).state_dict()
        extra, missing = sorted(set(state) - set(own)), sorted(set(own) - set(state))
        shapes = sorted(k for k in set(state) & set(own) if state[k].shape != own[k].shape)
        if extra or missing or shapes:
            raise EdgefasError(f"{args.from_file} does not fit timm's {args.arch}: "
                               f"{len(extra)} unexpected, {len(missing)} missing, {len(shapes)} "
                               f"other-shape keys (first: {(extra + missing + shapes)[0]})")
    out = save_backbone_weights(state, args.out, arch=args.arch, mean=args.mean or mean,
                                std=args.std or std, source=source, licence=licence)
    w = read_backbone_weights(out)
    print(f"wrote {out} ({len(w.state_dict)} tensors, sha256 {w.sha256})")
    print(f"train from it: edgefas train ... --backbone-weights {out}")
    return 0
