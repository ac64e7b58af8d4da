"""Face De-Spoofing DS Net (Jourabloo, Liu, Liu, ECCV 2018), edge-sized, with its label-free losses.

The spoof image is a live face plus an image-dependent noise, ``x = x_hat + N(x_hat)`` (Eq. 1).
The DS Net estimates ``N`` from the input in one pass (an encoder-decoder); ``x - N`` is the live
estimate. Following Table 1 and Sec. 3.2:

- input: RGB + HSV, 6 channels (HSV after [31] of the paper);
- encoder: three blocks of 3x3 conv + batch norm + ELU, each ending in 2x max pooling; the pooled
  outputs of all three blocks are brought to 1/8 resolution and concatenated (the paper's
  short-cut) and two more convolutions give the feature map ``F``;
- a 0\\1 map head on ``F`` (Eq. 6) and a decoder that resizes ``F`` to the input size (bilinear,
  no deconvolution: no grid artefacts) and reconstructs the 3-channel noise with convolutions.

Much narrower than the paper's (channel widths are a config), fully convolutional, so it trains
on patches and exports as one small graph. Inputs are (N, 3, H, W) in [-1, 1] with H, W multiples
of 8.

Losses (Sec. 3.3-3.4): magnitude (Eq. 5), zero\\one map (Eq. 6), repetitive (the unnumbered
``J_r`` of Sec. 3.4), the visual-quality GAN (Eq. 3 for the discriminator, Eq. 4 for the DS Net)
and their weighted sum (Eq. 7). The discriminative-quality term ``J_DQ`` (Eq. 2) needs a
pre-trained depth network and 3D-fitted depth labels, which this project does not have: it is
left out of Eq. 7 here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import unknown_name
from .errors import TeacherConfigError


@dataclass(frozen=True)
class DespoofNetConfig:
    """Widths of the DS Net and of its patch discriminator (VQ Net)."""

    widths: tuple[int, int, int] = (16, 24, 32)   # encoder blocks at 1, 1/2, 1/4 resolution
    feature_channels: int = 16                     # F, at 1/8 resolution
    decoder_channels: int = 16
    hsv_input: bool = True
    disc_widths: tuple[int, ...] = (16, 32, 64)    # stride-2 convs of the patch discriminator

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> DespoofNetConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("widths", "disc_widths"):
            if k in known:
                known[k] = tuple(known[k])
        return cls(**known)


DESPOOF_NET_PRESETS: dict[str, DespoofNetConfig] = {
    "tiny": DespoofNetConfig(widths=(4, 4, 8), feature_channels=4, decoder_channels=4, disc_widths=(4, 8)),
    "cpu": DespoofNetConfig(),
    "gpu": DespoofNetConfig(widths=(24, 32, 48), feature_channels=32, decoder_channels=24,
                            disc_widths=(32, 64, 128, 128)),
}


def get_despoof_net_config(name: str) -> DespoofNetConfig:
    """The preset called ``name`` (tiny, cpu, gpu)."""
    try:
        return DESPOOF_NET_PRESETS[name]
    except KeyError:
        raise TeacherConfigError(unknown_name("DS Net preset", name, list(DESPOOF_NET_PRESETS))) from None


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [-1, 1] -> HSV, each channel scaled to [-1, 1] (hue 0 where grey)."""
    rgb = ((x + 1) / 2).clamp(0, 1)
    r, g, b = rgb.unbind(1)
    maxc, minc = rgb.amax(1), rgb.amin(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    hue = torch.where(maxc == r, torch.remainder((g - b) / safe, 6),
                      torch.where(maxc == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6
    hue = torch.where(delta > 0, hue, torch.zeros_like(hue))
    sat = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)),
                      torch.zeros_like(maxc))
    return torch.stack([hue, sat, maxc], 1) * 2 - 1


def _conv(cin: int, cout: int) -> nn.Sequential:
    """3x3 conv + batch norm + ELU, as every DS Net layer in Table 1."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ELU())


class DespoofOutput(NamedTuple):
    noise: torch.Tensor          # N, (N, 3, H, W)
    live: torch.Tensor           # x - N, the live estimate
    zero_one_map: torch.Tensor   # (N, 1, H/8, W/8): 0 for live, 1 for spoof (Eq. 6 target)


class DespoofNet(nn.Module):
    """The DS Net: x -> (N, x - N, 0\\1 map)."""

    def __init__(self, config: DespoofNetConfig) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3 = config.widths
        cin = 6 if config.hsv_input else 3
        self.block1 = nn.Sequential(_conv(cin, w1), _conv(w1, w1))
        self.block2 = nn.Sequential(_conv(w1, w2), _conv(w2, w2))
        self.block3 = nn.Sequential(_conv(w2, w3), _conv(w3, w3))
        fc = config.feature_channels
        self.features = nn.Sequential(_conv(w1 + w2 + w3, fc), _conv(fc, fc))
        self.map_head = nn.Conv2d(fc, 1, 3, padding=1)
        dc = config.decoder_channels
        self.decoder = nn.Sequential(_conv(fc, dc), _conv(dc, dc), nn.Conv2d(dc, 3, 3, padding=1))

    def forward(self, x: torch.Tensor) -> DespoofOutput:
        h, w = x.shape[-2:]
        if h % 8 or w % 8:
            raise TeacherConfigError(f"DS Net input sides must be multiples of 8, got {h}x{w}")
        inp = torch.cat([x, rgb_to_hsv(x)], 1) if self.config.hsv_input else x
        p1 = F.max_pool2d(self.block1(inp), 2)
        p2 = F.max_pool2d(self.block2(p1), 2)
        p3 = F.max_pool2d(self.block3(p2), 2)
        # the short-cut of Table 1: pool1 + pool2 + pool3, brought to 1/8 resolution
        feats = self.features(torch.cat([F.avg_pool2d(p1, 4), F.avg_pool2d(p2, 2), p3], 1))
        up = F.interpolate(feats, size=(h, w), mode="bilinear", align_corners=False)
        noise = self.decoder(up)
        return DespoofOutput(noise=noise, live=x - noise, zero_one_map=self.map_head(feats))


class PatchDiscriminator(nn.Module):
    """VQ Net stand-in: stride-2 convs to a map of real/synthetic logits, one per patch."""

    def __init__(self, config: DespoofNetConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for w in config.disc_widths:
            layers += [nn.Conv2d(cin, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            cin = w
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


# ----- losses (each returns a scalar tensor) -----

def magnitude_loss(noise: torch.Tensor, is_live: torch.Tensor) -> torch.Tensor:
    """Eq. 5, J_m = ||N||_1 for live faces (mean absolute noise over the live ones; 0 without any)."""
    if not bool(is_live.any()):
        return noise.sum() * 0
    return noise[is_live].abs().mean()


def zero_one_map_loss(zero_one_map: torch.Tensor, is_live: torch.Tensor) -> torch.Tensor:
    """Eq. 6, J_z = ||CNN_01map(F) - M||_1 with M = 0 for live and 1 for spoof (mean per pixel)."""
    target = (~is_live).to(zero_one_map.dtype).view(-1, 1, 1, 1).expand_as(zero_one_map)
    return (zero_one_map - target).abs().mean()


def high_frequency_peak(noise: torch.Tensor, k: int) -> torch.Tensor:
    """max(H(F(N), k)) per image: the largest magnitude of the centred 2-D spectrum of each noise
    channel after the central k x k (low-frequency) block is set to zero; shape (N,).

    The FFT is normalised by the pixel count (``norm="forward"``), so a sinusoid of amplitude A
    peaks at A / 2 at any image size.
    """
    h, w = noise.shape[-2:]
    if not 0 < k < min(h, w):
        raise TeacherConfigError(f"repetitive-loss mask k={k} must be in (0, {min(h, w)})")
    spec = torch.fft.fftshift(torch.fft.fft2(noise.float(), norm="forward"), dim=(-2, -1)).abs()
    cy, cx = h // 2, w // 2
    mask = torch.ones(h, w, device=noise.device)
    mask[cy - k // 2:cy - k // 2 + k, cx - k // 2:cx - k // 2 + k] = 0   # H(., k)
    return (spec * mask).flatten(1).amax(1)


def repetitive_loss(noise: torch.Tensor, is_live: torch.Tensor, k: int) -> torch.Tensor:
    """Sec. 3.4 J_r: -max(H(F(N), k)) for spoof (a high-frequency peak is rewarded),
    |max(H(F(N), k))| for live (pushed to zero); averaged over the batch."""
    peak = high_frequency_peak(noise, k)
    return torch.where(is_live, peak.abs(), -peak).mean()


def discriminator_loss(real_logits: torch.Tensor, synthetic_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 3, J_VQ_train = -E_R log D(I) - E_S log(1 - D(x - N)): real live faces vs
    reconstructed ones (per-patch logits, binary cross-entropy)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(synthetic_logits, torch.zeros_like(synthetic_logits)))


def adversarial_loss(synthetic_logits: torch.Tensor) -> torch.Tensor:
    """Eq. 4, J_VQ_test = -E_S log D(x - N): the DS Net tries to make its live estimates pass."""
    return F.binary_cross_entropy_with_logits(synthetic_logits, torch.ones_like(synthetic_logits))


@dataclass(frozen=True)
class DespoofLosses:
    """The terms of Eq. 7 for one batch, and their weighted sum ``total``."""

    total: torch.Tensor
    zero_one_map: torch.Tensor
    magnitude: torch.Tensor
    repetitive: torch.Tensor
    adversarial: torch.Tensor


def despoof_net_losses(out: DespoofOutput, is_live: torch.Tensor, synthetic_logits: torch.Tensor | None, *,
                       k: int, lambda_magnitude: float, lambda_repetitive: float,
                       lambda_adversarial: float) -> DespoofLosses:
    """Eq. 7 without J_DQ: J_T = J_z + l1 J_m + l2 J_r + l4 J_VQ_test.

    ``synthetic_logits``: the discriminator on ``x - N`` of the spoof faces (None: no spoof face
    in the batch, the adversarial term is 0).
    """
    j_z = zero_one_map_loss(out.zero_one_map, is_live)
    j_m = magnitude_loss(out.noise, is_live)
    j_r = repetitive_loss(out.noise, is_live, k)
    j_vq = adversarial_loss(synthetic_logits) if synthetic_logits is not None else j_z * 0
    total = j_z + lambda_magnitude * j_m + lambda_repetitive * j_r + lambda_adversarial * j_vq
    return DespoofLosses(total=total, zero_one_map=j_z, magnitude=j_m, repetitive=j_r, adversarial=j_vq)
