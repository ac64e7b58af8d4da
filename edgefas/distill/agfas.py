"""AG-FAS-style de-fake generator (Long, Zhang, Shan, "Generalized Face Liveness Detection via
De-fake Face Generator"), in pixel space.

A diffusion model trained on live faces only learns what a live face looks like. A face is noised
to a fixed step ``t0`` (forward process, Eq. 10 / 16), which drowns fine spoof texture, and
denoised with ``k`` DDIM steps (the reverse process of Eq. 7 with sigma = 0); the anomalous cue is
``x - output``. One fixed noise draw, from a seeded generator, is shared by every face: the cue
then depends on the face alone, and its variance across faces is lower (diffusion-cpu.md).

Identity conditioning. The paper conditions the U-Net on an ArcFace embedding of the input (Eq. 4)
so that a large ``t0`` (801 of 1000) can erase the fake pattern while the identity survives. No
ArcFace weights can be had offline for this project (``shared/notes/faceops.md`` section 6: every
package downloads them at run time, and the insightface ones are non-commercial). So:

- the default model is unconditional, which keeps ``t0`` small (about 50-100 in pixel space);
- an optional structure condition takes the identity branch's job: a low-pass (Gaussian-blurred)
  copy of the input, concatenated as 3 extra input channels (``UNet2DModel(in_channels=6)``).
  It tells the denoiser where the eyes, nose and face contour are, which lets a larger ``t0``
  erase high-frequency spoof texture (print dots, moire, screen pixels) without losing the face.
  The price: what survives the blur also survives into the output, so a colour cast or a very
  coarse pattern leaks through the condition and leaves the cue. ``sigma`` sets that trade-off;
  a training session has to measure it, not assume it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .errors import TeacherConfigError
from .schedule import DiffusionSchedule, ddim_generate, timestep_grid


@lru_cache(maxsize=16)
def _gaussian_taps(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1, dtype=np.float32) / np.float32(sigma)) ** 2)
    return (k / k.sum()).astype(np.float32)


def lowpass(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding (size-preserving).

    The taps are built in numpy, so a traced graph (the student's ONNX cue stage) holds them as
    constants: the ONNX exporter cannot convolve with a kernel computed inside the graph.
    """
    if sigma <= 0:
        raise TeacherConfigError(f"lowpass sigma must be > 0, got {sigma}")
    taps = _gaussian_taps(float(sigma))
    radius = len(taps) // 2
    if radius >= min(x.shape[-2:]):
        raise TeacherConfigError(f"sigma={sigma} needs a {2 * radius + 1} px kernel, larger than the "
                                 f"{tuple(x.shape[-2:])} input")
    c = int(x.shape[1])
    k = torch.as_tensor(np.ascontiguousarray(np.broadcast_to(taps, (c, len(taps)))), device=x.device,
                        dtype=x.dtype)
    y = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(c, 1, 1, -1), groups=c)
    y = F.pad(y, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(y, k.view(c, 1, -1, 1), groups=c)


@dataclass(frozen=True)
class StructureCondition:
    """The extra input the live model is trained and run with (``kind="lowpass"``)."""

    kind: str = "lowpass"
    sigma: float = 2.0

    channels = 3

    def __post_init__(self) -> None:
        if self.kind != "lowpass":
            raise TeacherConfigError(f"unknown structure condition {self.kind!r}; known: lowpass")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return lowpass(x, self.sigma)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class DefakeResult:
    """``output`` is the generated "real" face, ``cue = x - output`` the anomalous cue; ``nfe``
    counts UNet evaluations per face."""

    output: torch.Tensor
    cue: torch.Tensor
    nfe: int
    t0: int
    steps: int
    noise_seed: int


def shared_noise(shape: tuple[int, int, int], seed: int, device, dtype=torch.float32) -> torch.Tensor:
    """One (1, C, H, W) standard-normal draw from a seeded CPU generator, the same on every device."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn((1, *shape), generator=g).to(device=device, dtype=dtype)


@torch.no_grad()
def defake_agfas(x: torch.Tensor, unet, schedule: DiffusionSchedule, *, t0: int, steps: int,
                 noise_seed: int = 0, condition: StructureCondition | None = None) -> DefakeResult:
    """Noise ``x`` to ``t0`` with the shared draw, denoise with ``steps`` DDIM steps of ``unet``.

    ``x``: (N, 3, H, W) in [-1, 1]. ``t0 = 0`` returns ``x`` itself (cue 0, NFE 0). ``condition``
    must be the one the model was trained with (None for the unconditional model).
    """
    grid = timestep_grid(schedule, t0, steps)
    if not grid:
        return DefakeResult(output=x, cue=torch.zeros_like(x), nfe=0, t0=0, steps=0, noise_seed=noise_seed)
    unet.eval()
    cond = condition(x) if condition is not None else None
    eps = shared_noise(tuple(x.shape[1:]), noise_seed, x.device, x.dtype).expand_as(x)
    t = torch.full((x.shape[0],), grid[-1], dtype=torch.long, device=x.device)
    x_t = schedule.ddim().add_noise(x, eps, t)   # Eq. 10: sqrt(a) x + sqrt(1 - a) eps, a = alpha-bar(t0)
    output = ddim_generate(unet, x_t, schedule, grid, cond)   # Eq. 7, sigma = 0 (DDIM)
    return DefakeResult(output=output, cue=x - output, nfe=len(grid), t0=t0, steps=len(grid),
                        noise_seed=noise_seed)
