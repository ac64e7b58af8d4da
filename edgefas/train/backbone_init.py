"""Start the RGB detector's backbone from pretrained (ImageNet) weights instead of random ones.

The shipped bundles up to v0.3 train MobileViT from random weights on one lab's 15 training people.
Starting from ImageNet weights is a common remedy for a model that learns its training camera,
untested here so far (docs/ablation_imagenet_init).

The weights file is a safetensors file in timm's layout for the recipe's architecture, with
string metadata saying what it is (nothing is downloaded here: see ``edgefas backbone-weights``):

- ``arch``: the timm model name (``mobilevit_xxs``);
- ``color_order``, ``mean``, ``std``: the input convention the weights were trained with
  (channel order, then ``(x - mean) / std`` on values in [0, 1]; mean and std as JSON lists in
  that channel order). Apple's MobileViT v1 weights were trained on BGR images, mean 0, std 1;
  whether a converted copy still expects BGR is what ``edgefas backbone-weights`` checks on two
  ImageNet photos before it writes the file;
- ``source`` and ``licence``: where the weights come from and under which terms, copied into
  the bundle's manifest.

The bundle's contract (RGB, mean 0.5, std 0.5) is kept: the weights' convention is folded into
the stem. Its first convolution's input channels are put in RGB order and rescaled, and the
constant it then adds is taken from the following BatchNorm's running mean. In eval mode the
network then computes on contract inputs what the pretrained one computed on its own, except at
the image border (the zero padding stands for another colour in each convention).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..bundle import sha256_file
from ..errors import EdgefasError

#: keys of the pretrained classifier head, replaced by the detector's one-logit head
HEAD_PREFIXES = ("head.fc.", "fc.", "classifier.")
META_KEYS = ("arch", "color_order", "mean", "std", "source", "licence")
COLOR_ORDERS = ("rgb", "bgr")


@dataclass(frozen=True)
class BackboneWeights:
    """A pretrained backbone's state dict and what its file says about it."""

    path: Path
    sha256: str
    state_dict: dict[str, torch.Tensor]
    arch: str
    color_order: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str
    licence: str

    @property
    def tag(self) -> str:
        """What the recipe records (``backbone_init``): the content hash, so that a renamed copy
        resumes the run it started and another file does not."""
        return f"sha256:{self.sha256}"

    def record(self) -> dict:
        """What the run and the bundle's manifest record about the starting weights."""
        return {"file": self.path.name, "sha256": self.sha256, "arch": self.arch,
                "input_color_order": self.color_order, "input_mean": list(self.mean),
                "input_std": list(self.std), "source": self.source, "licence": self.licence}


def check_convention(color_order, mean, std, *, what: str = "backbone weights"
                     ) -> tuple[str, tuple[float, ...], tuple[float, ...]]:
    """The input convention as (order, mean, std), or an EdgefasError saying what is wrong."""
    if color_order not in COLOR_ORDERS:
        raise EdgefasError(f"{what}: colour order {color_order!r} is not one of {', '.join(COLOR_ORDERS)}")
    out = []
    for name, values in (("mean", mean), ("std", std)):
        try:
            vals = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise EdgefasError(f"{what}: {name} must be 3 numbers, got {values!r}") from None
        if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
            raise EdgefasError(f"{what}: {name} must be 3 finite numbers, got {values!r}")
        out.append(vals)
    if min(out[1]) <= 0:
        raise EdgefasError(f"{what}: std must be > 0, got {out[1]}")
    return color_order, out[0], out[1]


def check_fits(state_dict: dict[str, torch.Tensor], arch: str, *, what: str,
               own: dict[str, torch.Tensor] | None = None) -> None:
    """Refuse a state dict whose backbone (all but the classifier head) does not fit timm's
    ``arch`` (``own``: that model's state dict, when one is at hand); the head may be missing or
    of any size (the detector replaces it)."""
    if own is None:
        import timm

        own = timm.create_model(arch, pretrained=False).state_dict()
    body = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIXES)}
    unexpected = sorted(set(body) - set(own))
    missing = sorted(k for k in set(own) - set(body) if not k.startswith(HEAD_PREFIXES))
    shapes = sorted(k for k in set(body) & set(own) if body[k].shape != own[k].shape)
    if unexpected or missing or shapes:
        raise EdgefasError(
            f"{what} do not fit {arch}: "
            + "; ".join(f"{kind}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
                        for kind, keys in (("unexpected", unexpected), ("missing", missing),
                                           ("other shape", shapes)) if keys))


def save_backbone_weights(state_dict: dict[str, torch.Tensor], path: str | Path, *, arch: str,
                          color_order: str, mean, std, source: str, licence: str) -> Path:
    """Write a backbone weights file (fp32 safetensors with its metadata)."""
    from safetensors.torch import save_file

    color_order, mean, std = check_convention(color_order, mean, std)   # before anything is written
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"arch": arch, "color_order": color_order, "mean": json.dumps(list(mean)),
            "std": json.dumps(list(std)), "source": source, "licence": licence}
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().float().cpu().contiguous() for k, v in state_dict.items()}, tmp,
              metadata=meta)
    tmp.replace(path)
    return path


def read_state_dict(path: Path, *, what: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and string metadata of a safetensors file, or an EdgefasError."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types for a damaged header
        raise EdgefasError(f"{what} {path}: not a readable safetensors file ({e})") from e


def read_backbone_weights(path: str | Path) -> BackboneWeights:
    """Read a backbone weights file; a file without the metadata above is refused."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise EdgefasError(f"backbone weights {path}: no such file")
    state, meta = read_state_dict(path, what="backbone weights")
    missing = [k for k in META_KEYS if not meta.get(k)]
    if missing:
        raise EdgefasError(f"backbone weights {path} lack the metadata {', '.join(missing)}: write "
                           "them with `edgefas backbone-weights` (its source and licence go into "
                           "every bundle trained from them)")
    try:
        mean, std = json.loads(meta["mean"]), json.loads(meta["std"])
    except ValueError:
        raise EdgefasError(f"backbone weights {path}: mean/std metadata are not JSON") from None
    order, mean, std = check_convention(meta["color_order"], mean, std,
                                        what=f"backbone weights {path}")
    return BackboneWeights(path, sha256_file(path), state, meta["arch"], order, mean, std,
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
def fold_input_convention(net: nn.Module, *, from_mean, from_std, to_mean, to_std,
                          from_order: str = "rgb") -> None:
    """Make ``net`` (weights trained on inputs ``(x01 - from_mean) / from_std`` in channel order
    ``from_order``) compute the same features on RGB inputs ``(x01 - to_mean) / to_std``, by
    rewriting its stem.

    BGR weights first get their input channels reversed (with their mean and std). Then
    x_from = x_to * a + b per channel with a = to_std / from_std, b = (to_mean - from_mean) /
    from_std; the stem convolution W sees W(a x_to) + sum(W b), and that constant moves into the
    BatchNorm's running mean (in training mode the batch statistics take it out, apart from the
    border pixels).
    """
    conv, bn = _stem_conv_and_norm(net)
    if conv.in_channels != 3:
        raise EdgefasError(f"the stem takes {conv.in_channels} channels, not RGB's 3")
    dtype = conv.weight.dtype
    from_mean, from_std = torch.tensor(from_mean, dtype=dtype), torch.tensor(from_std, dtype=dtype)
    if from_order == "bgr":
        conv.weight.copy_(conv.weight.flip(1))
        from_mean, from_std = from_mean.flip(0), from_std.flip(0)
    elif from_order != "rgb":
        raise EdgefasError(f"colour order {from_order!r} is not one of {', '.join(COLOR_ORDERS)}")
    a = torch.tensor(to_std, dtype=dtype) / from_std
    b = (torch.tensor(to_mean, dtype=dtype) - from_mean) / from_std
    const = (conv.weight * b.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    conv.weight.mul_(a.view(1, -1, 1, 1))
    # the new convolution's output is the old one's less const: BN(y - const) with running mean
    # m - const equals BN(y) with m
    bn.running_mean.sub_(const)


def contract_convention(contract) -> tuple[list[float], list[float]]:
    """A contract's input normalisation as mean and std on [0, 1] (its own act on
    ``value_range``): the convention :func:`apply_backbone_weights` folds the weights into."""
    if contract.color_order != "rgb":
        raise EdgefasError("pretrained backbone weights are folded into RGB input; the contract's "
                           f"colour order is {contract.color_order}")
    lo, hi = contract.value_range
    return ([(m - lo) / (hi - lo) for m in contract.mean], [s / (hi - lo) for s in contract.std])


def apply_backbone_weights(model: nn.Module, weights: BackboneWeights, *, arch: str,
                           mean, std) -> dict:
    """Load ``weights`` into a :class:`~edgefas.models.mobilevit_baseline.BaselineClassifier`
    (all but its head), folding the weights' input convention into the stem so that the model
    takes RGB inputs normalised with the contract's ``mean`` and ``std`` (on [0, 1]). Returns
    what to record (:meth:`BackboneWeights.record` plus the keys left out)."""
    if weights.arch != arch:
        raise EdgefasError(f"backbone weights {weights.path.name} are for {weights.arch}; the recipe "
                           f"trains {arch}")
    net = getattr(model, "net", None)
    if net is None:
        raise EdgefasError(f"backbone weights are for the RGB detector; {type(model).__name__} "
                           "has no timm backbone 'net'")
    check_fits(weights.state_dict, arch, what=f"backbone weights {weights.path.name}",
               own=net.state_dict())
    body = {k: v for k, v in weights.state_dict.items() if not k.startswith(HEAD_PREFIXES)}
    net.load_state_dict(body, strict=False)
    fold_input_convention(net, from_mean=weights.mean, from_std=weights.std, to_mean=mean,
                          to_std=std, from_order=weights.color_order)
    left_out = sorted(set(weights.state_dict) - set(body))
    return {**weights.record(), "not_loaded": left_out}


#: two ImageNet-like photos that ship inside scikit-image, and the ImageNet-1k classes that
#: count as right for each (coffee: espresso, cup, coffee mug; chelsea: tabby, tiger cat,
#: Egyptian cat)
CHECK_PHOTOS = {"coffee": (967, 968, 504), "chelsea": (281, 282, 285)}
#: mean probability of the right classes below which a colour order is not confirmed
CHECK_MIN_PROB = 0.3


@torch.no_grad()
def imagenet_check(state_dict: dict[str, torch.Tensor], arch: str, *, mean, std,
                   size: int = 256) -> dict[str, float] | None:
    """Mean probability a 1000-class checkpoint gives the right classes of :data:`CHECK_PHOTOS`
    when they are fed in RGB and in BGR order (``mean``/``std`` in that feeding's channel
    order), or None when it cannot be run (no 1000-class head, or no scikit-image). ImageNet
    weights fed their own channel order score far above the other order and above
    :data:`CHECK_MIN_PROB`; random or wrongly converted weights score near 0 for both."""
    import timm

    try:
        import skimage.data
    except ImportError:
        return None
    head = [v for k, v in state_dict.items() if k.startswith(HEAD_PREFIXES) and k.endswith("weight")]
    if not head or head[0].shape[0] != 1000:
        return None
    import cv2
    import numpy as np

    net = timm.create_model(arch, pretrained=False).eval()
    net.load_state_dict(state_dict)
    batch = []
    for name in CHECK_PHOTOS:
        img = getattr(skimage.data, name)()                       # RGB uint8
        h, w = img.shape[:2]
        s = round(size / 0.9) / min(h, w)                         # timm's crop_pct 0.9
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        batch.append(img[y:y + size, x:x + size].astype(np.float32) / 255.0)
    rgb = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
    m, sd = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    out = {}
    for order, x in (("rgb", rgb), ("bgr", rgb.flip(1))):
        p = net((x - m) / sd).softmax(-1)
        out[order] = float(np.mean([p[i, list(classes)].sum().item()
                                    for i, classes in enumerate(CHECK_PHOTOS.values())]))
    return out
