"""The fusion detector: a timm MobileViT on the aligned RGB face plus the de-spoofer's spoof cue.

The cue module (a distilled student, :class:`edgefas.distill.student.StudentCue`, or the Face
De-Spoofing DS Net) sits inside the network, frozen: the model still takes the (N, 3, S, S) face
tensor of the bundle's contract and returns (N,) live logits, so training, export, parity gates
and the runtime treat it exactly like the RGB baseline. The cue covers the central ``cue_side``
pixels of the crop (the region the teachers were judged on).

Two ways in, both starting as the RGB model (their last projection is zero-initialised):

- ``xattn`` (AG-FAS, Sec. 3.3): after MobileViT's fourth stage, the 8x8 image tokens query the
  8x8 cue tokens of a small cue encoder through multi-head cross-attention; the attended values
  pass a zero-initialised output projection and are added to the image tokens.
- ``twostream`` (DDM, Sec. 3.3, halfway fusion): the cue stream's feature map is projected by a
  zero-initialised 1x1 convolution and added, at the crop's centre, to the image stream after
  the third stage (16x16 for a 128 px crop).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

FUSIONS = ("xattn", "twostream")


@dataclass(frozen=True)
class FusionConfig:
    """Constructor arguments are the config; saved as JSON next to the weights."""

    arch: str = "mobilevit_xxs"
    img_size: int = 128
    drop_rate: float = 0.1
    fusion: str = "xattn"            # "xattn" or "twostream"
    cue_kind: str = "student"        # "student" (StudentCue) or "despoof" (DS Net)
    cue_config: dict = field(default_factory=dict)   # StudentConfig.to_dict() / DespoofNetConfig
    cue_side: int = 64
    cue_nfe: int = 1                 # student evaluations
    cue_scale: float = 8.0           # cues are small (|cue| ~ 0.05): brought to unit-ish scale
    heads: int = 4

    def __post_init__(self) -> None:
        from ..errors import EdgefasError, unknown_name

        if self.fusion not in FUSIONS:
            raise EdgefasError(unknown_name("fusion", self.fusion, list(FUSIONS)))
        if self.cue_kind not in ("student", "despoof"):
            raise EdgefasError(unknown_name("cue kind", self.cue_kind, ["student", "despoof"]))

    def to_dict(self) -> dict:
        return {"class": "FusionClassifier", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> FusionConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class DespoofCue(nn.Module):
    """The DS Net's spoof noise on the crop's centre (one pass), frozen."""

    def __init__(self, net: nn.Module, side: int, crop_size: int) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.offset, self.side = (crop_size - side) // 2, side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o, s = self.offset, self.side
        return self.net(x[:, :, o:o + s, o:o + s]).noise


def build_cue_module(config: FusionConfig) -> nn.Module:
    """The frozen cue module described by ``config`` (weights loaded separately)."""
    if config.cue_kind == "student":
        from ..distill.student import ConsistencyStudent, StudentConfig, StudentCue

        student = ConsistencyStudent(StudentConfig.from_dict(config.cue_config))
        return StudentCue(student, config.cue_side, config.img_size, nfe=config.cue_nfe)
    from ..distill.despoof_net import DespoofNet, DespoofNetConfig

    return DespoofCue(DespoofNet(DespoofNetConfig.from_dict(config.cue_config)), config.cue_side,
                      config.img_size)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.SiLU())


class FusionClassifier(nn.Module):
    """RGB face (N, 3, S, S) -> (N,) live logits, reading the frozen cue module's output too."""

    def __init__(self, config: FusionConfig, cue_module: nn.Module | None = None) -> None:
        super().__init__()
        import timm

        self.config = config
        self.backbone = timm.create_model(config.arch, pretrained=False, num_classes=1,
                                          drop_rate=config.drop_rate)
        self.cue = (cue_module or build_cue_module(config)).eval().requires_grad_(False)
        chs = {f["module"]: f["num_chs"] for f in self.backbone.feature_info}
        c2, c3 = chs["stages.2"], chs["stages.3"]     # XXS: 48 at 1/8, 64 at 1/16
        # 64 px cue -> 8x8 tokens of 48 channels (three stride-2 convolutions)
        self.cue_encoder = nn.Sequential(_conv(3, 16), _conv(16, 32), _conv(32, 48))
        if config.fusion == "xattn":
            self.norm_img, self.norm_cue = nn.LayerNorm(c3), nn.LayerNorm(48)
            self.attn = nn.MultiheadAttention(c3, config.heads, kdim=48, vdim=48, batch_first=True)
            self.out = nn.Linear(c3, c3)
        else:
            self.out = nn.Conv2d(48, c2, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def train(self, mode: bool = True) -> FusionClassifier:
        super().train(mode)
        self.cue.eval()     # frozen: its batch norms keep their statistics
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            cue = self.cue(x)
        c = self.cue_encoder(cue * self.config.cue_scale)               # (N, 48, 8, 8)
        b = self.backbone
        y = b.stem(x)
        for stage in b.stages[:3]:
            y = stage(y)                                                # (N, 48, S/8, S/8)
        if self.config.fusion == "twostream":
            pad = (y.shape[-1] - c.shape[-1]) // 2
            y = y + F.pad(self.out(c), (pad, pad, pad, pad))            # centre of the crop
        y = b.stages[3](y)                                              # (N, 64, S/16, S/16)
        if self.config.fusion == "xattn":
            n, ch, h, w = y.shape
            q = self.norm_img(y.flatten(2).transpose(1, 2))
            kv = self.norm_cue(c.flatten(2).transpose(1, 2))
            a, _ = self.attn(q, kv, kv, need_weights=False)
            y = y + self.out(a).transpose(1, 2).reshape(n, ch, h, w)
        y = b.stages[4](y)
        y = b.final_conv(y)
        return b.forward_head(y)[:, 0]


def build_classifier(model_config: dict) -> nn.Module:
    """The classifier a run or bundle's ``model_config`` describes (baseline or fusion)."""
    if model_config.get("class") == "FusionClassifier":
        return FusionClassifier(FusionConfig.from_dict(model_config))
    from .mobilevit_baseline import BaselineClassifier, BaselineConfig

    return BaselineClassifier(BaselineConfig.from_dict(model_config))
