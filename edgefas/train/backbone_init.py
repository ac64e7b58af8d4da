"""Start the RGB detector's backbone from pretrained (ImageNet) weights instead of random ones.

The shipped bundles up to v0.3 train MobileViT from random weights on 50 people of one lab.
A backbone that has seen ImageNet starts from generic image features; in face anti-spoofing
that is the usual remedy for a model that learns its training camera (docs/ablation_imagenet_init).

The weights file is a safetensors file in timm's layout for the recipe's architecture, with
string metadata saying what it is (nothing is downloaded here: see ``edgefas backbone-weights``):

- ``arch``: the timm model name (``mobilevit_xxs``);
- ``mean`` / ``std``: the input convention the weights were trained with, as JSON lists
  (MobileViT's: RGB in [0, 1], mean 0, std 1);
- ``source`` and ``licence``: where the weights come from and under which terms, copied into
  the bundle's manifest.

The input convention of the bundle's contract (mean 0.5, std 0.5) differs from the weights',
so it is folded into the stem: the first convolution's weights are rescaled and the constant
it then adds is taken from the following BatchNorm's running mean. The network then computes
on contract inputs what the pretrained one computed on its own (except at the zero padding of
the image border), so the pretrained features are where training starts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..bundle import sha256_file
from ..errors import EdgefasError

#: keys of the pretrained classifier head, replaced by the detector's one-logit head
HEAD_PREFIXES = ("head.fc.", "fc.", "classifier.")
META_KEYS = ("arch", "mean", "std", "source", "licence")


@dataclass(frozen=True)
class BackboneWeights:
    """A pretrained backbone's state dict and what its file says about it."""

    path: Path
    sha256: str
    state_dict: dict[str, torch.Tensor]
    arch: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    licence: str

    @property
    def tag(self) -> str:
        """What the recipe records (``backbone_init``): file name and content hash."""
        return f"{self.path.name}@sha256:{self.sha256}"

    def record(self) -> dict:
        """What the run and the bundle's manifest record about the starting weights."""
        return {"file": self.path.name, "sha256": self.sha256, "arch": self.arch,
                "input_mean": list(self.mean), "input_std": list(self.std),
                "source": self.source, "licence": self.licence}


def save_backbone_weights(state_dict: dict[str, torch.Tensor], path: str | Path, *, arch: str,
                          mean, std, source: str, licence: str) -> Path:
    """Write a backbone weights file (fp32 safetensors with its metadata)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"arch": arch, "mean": json.dumps([float(v) for v in mean]),
            "std": json.dumps([float(v) for v in std]), "source": source, "licence": licence}
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().float().cpu().contiguous() for k, v in state_dict.items()}, tmp,
              metadata=meta)
    tmp.replace(path)
    return path


def read_backbone_weights(path: str | Path) -> BackboneWeights:
    """Read a backbone weights file; a file without the metadata above is refused."""
    from safetensors import safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise EdgefasError(f"backbone weights {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise EdgefasError(f"backbone weights {path}: not a readable safetensors file ({e})") from e
    missing = [k for k in META_KEYS if not meta.get(k)]
    if missing:
        raise EdgefasError(f"backbone weights {path} lack the metadata {', '.join(missing)}: write "
                           "them with `edgefas backbone-weights` (its source and licence go into "
                           "every bundle trained from them)")
    try:
        mean, std = tuple(json.loads(meta["mean"])), tuple(json.loads(meta["std"]))
    except ValueError as e:
        raise EdgefasError(f"backbone weights {path}: mean/std metadata are not JSON lists") from e
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise EdgefasError(f"backbone weights {path}: mean and std need 3 values, std > 0")
    return BackboneWeights(path, sha256_file(path), state, meta["arch"], mean, std,
                           meta["source"], meta["licence"])


def _stem_conv_and_norm(net: nn.Module) -> tuple[nn.Conv2d, nn.BatchNorm2d]:
    """The first convolution of a timm backbone and the BatchNorm right after it."""
    convs = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    if len(convs) < 2 or not isinstance(convs[0], nn.Conv2d) or not isinstance(convs[1], nn.BatchNorm2d):
        raise EdgefasError(f"{type(net).__name__}: no convolution + BatchNorm stem to fold the "
                           "input convention into")
    conv, bn = convs[0], convs[1]
    if conv.bias is not None or conv.groups != 1 or bn.running_mean is None:
        raise EdgefasError(f"{type(net).__name__}: the stem convolution has a bias or groups, or "
                           "its BatchNorm no running mean; folding is not implemented for it")
    return conv, bn


@torch.no_grad()
def fold_input_convention(net: nn.Module, *, from_mean, from_std, to_mean, to_std) -> None:
    """Make ``net`` (weights trained on inputs ``(x01 - from_mean) / from_std``) compute the same
    features on inputs ``(x01 - to_mean) / to_std``, by rescaling its stem.

    x_from = x_to * a + b per channel with a = to_std / from_std, b = (to_mean - from_mean) /
    from_std; the stem convolution W then sees W(a x_to) + sum(W b), and that constant moves into
    the BatchNorm's running mean (training mode normalises it away on its own).
    """
    conv, bn = _stem_conv_and_norm(net)
    a = torch.tensor(to_std, dtype=conv.weight.dtype) / torch.tensor(from_std, dtype=conv.weight.dtype)
    b = ((torch.tensor(to_mean, dtype=conv.weight.dtype) - torch.tensor(from_mean, dtype=conv.weight.dtype))
         / torch.tensor(from_std, dtype=conv.weight.dtype))
    if conv.in_channels != a.numel():
        raise EdgefasError(f"the stem takes {conv.in_channels} channels; the convention has {a.numel()}")
    const = (conv.weight * b.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    conv.weight.mul_(a.view(1, -1, 1, 1))
    # the new convolution's output is the old one's less const: BN(y - const) with running mean
    # m - const equals BN(y) with m
    bn.running_mean.sub_(const)


def apply_backbone_weights(model: nn.Module, weights: BackboneWeights, *, arch: str,
                           mean, std) -> dict:
    """Load ``weights`` into a :class:`~edgefas.models.mobilevit_baseline.BaselineClassifier`
    (all but its head), folding the contract's input convention (``mean``, ``std``) into the
    stem. Returns what to record (:meth:`BackboneWeights.record` plus the keys left out)."""
    if weights.arch != arch:
        raise EdgefasError(f"backbone weights {weights.path.name} are for {weights.arch}; the recipe "
                           f"trains {arch}")
    net = getattr(model, "net", None)
    if net is None:
        raise EdgefasError(f"backbone weights are for the RGB detector; {type(model).__name__} "
                           "has no timm backbone 'net'")
    own = net.state_dict()
    body = {k: v for k, v in weights.state_dict.items() if not k.startswith(HEAD_PREFIXES)}
    unexpected = sorted(set(body) - set(own))
    missing = sorted(k for k in set(own) - set(body) if not k.startswith(HEAD_PREFIXES))
    shapes = sorted(k for k in set(body) & set(own) if body[k].shape != own[k].shape)
    if unexpected or missing or shapes:
        raise EdgefasError(
            f"backbone weights {weights.path.name} do not fit {arch}: "
            + "; ".join(f"{what}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                        for what, keys in (("unexpected", unexpected), ("missing", missing),
                                           ("other shape", shapes)) if keys))
    net.load_state_dict(body, strict=False)
    fold_input_convention(net, from_mean=weights.mean, from_std=weights.std, to_mean=mean, to_std=std)
    left_out = sorted(set(weights.state_dict) - set(body))
    return {**weights.record(), "not_loaded": left_out}
