"""The preprocessing contract of a bundle, applied the same way in training and at run time.

Training code calls :func:`to_tensor` on the same uint8 crops the runtime makes, so the
network never sees pixels prepared differently from how it was trained.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Contract:
    """How a face becomes the classifier's input. Stored in ``manifest.json``."""

    size: int = 128                 # aligned crop side, pixels
    crop_scale: float = 1.5         # 1.0 = tight 112-px ArcFace crop; larger adds context
    template: str = "arcface_112_5pt"
    color_order: str = "rgb"        # channel order the network expects
    value_range: tuple[float, float] = (0.0, 1.0)   # pixels / 255 first ...
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # ... then (x - mean) / std
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    layout: str = "NCHW"
    interpolation: str = "bilinear, area pre-shrink when the face is shrunk > 2x"
    border: str = "constant 0"

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> Contract:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("value_range", "mean", "std"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


def to_tensor(crops_bgr: np.ndarray, contract: Contract) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops -> (N, 3, S, S) float32 normalised per the contract."""
    x = crops_bgr[..., ::-1] if contract.color_order == "rgb" else crops_bgr
    lo, hi = contract.value_range
    x = x.astype(np.float32) * ((hi - lo) / 255.0) + lo
    x = (x - np.asarray(contract.mean, np.float32)) / np.asarray(contract.std, np.float32)
    if contract.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32)
