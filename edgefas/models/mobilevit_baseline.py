"""The RGB baseline: a timm MobileViT on the aligned face crop, one live logit out."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class BaselineConfig:
    """Constructor arguments are the config; saved as JSON next to the weights."""

    arch: str = "mobilevit_xxs"   # timm name; "mobilevit_xs" for the larger variant
    img_size: int = 128
    drop_rate: float = 0.1

    def to_dict(self) -> dict:
        return {"class": "BaselineClassifier", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> BaselineConfig:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class BaselineClassifier(nn.Module):
    """MobileViT -> live logit. Random weights here (nothing is downloaded); a training run
    can start from pretrained ones instead (``edgefas train --backbone-weights``,
    :mod:`edgefas.train.backbone_init`).

    Input: (N, 3, S, S) float per the bundle's contract. Output: (N,) live logits.
    """

    def __init__(self, config: BaselineConfig) -> None:
        super().__init__()
        import timm

        self.config = config
        self.net = timm.create_model(config.arch, pretrained=False, num_classes=1,
                                     drop_rate=config.drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]
