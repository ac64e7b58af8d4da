"""DDM de-spoofing (Zhang et al., "Modeling Spoof Noise by De-spoofing Diffusion", IJCB 2023).

Two epsilon-prediction diffusion models: ``eps_s`` trained on all faces (live and attack) and
``eps_g`` trained on live faces only. A face is carried to the latent by the probability-flow ODE
of ``eps_s`` (DDIM inversion, Eq. 2), brought back to the genuine domain by the ODE of ``eps_g``
(DDIM generation, Eq. 3), and the spoof noise is the difference (Eq. 4).

Departures from the paper, on purpose:

- The paper integrates over the whole diffusion (t in [0, 1], 50 DDIM steps each way). Here the
  ODEs run to an intermediate ``t0``: in pixel space at 64 px, ``t0 >= 200`` leaves noise of std
  >= .58 and wipes out the texture the cue lives in (``shared/notes/diffusion-cpu.md``). ``t0 = T``
  gives the paper's version.
- Eq. 4 writes the noise as a norm ``||x^s - x^g||``; we return the signed residual
  ``x - restored`` (its absolute value is the paper's map) so colour casts keep their sign.

Both passes are deterministic (eta = 0, no random draw), so the same face always gets the same
noise. Inputs are batches of aligned crops as the preprocessing contract makes them, (N, 3, H, W)
in [-1, 1]; the UNets work on any H, W divisible by their downsampling factor.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .schedule import DiffusionSchedule, ddim_generate, ddim_invert, timestep_grid


@dataclass(frozen=True)
class DespoofResult:
    """The output of a diffusion de-spoofing pass.

    ``restored`` is the face brought to the genuine domain, ``noise = x - restored`` the spoof
    noise (signed), ``latent`` the inverted face at ``t0``. ``nfe`` counts UNet evaluations per
    face (each one is a single batched call).
    """

    restored: torch.Tensor
    noise: torch.Tensor
    latent: torch.Tensor
    nfe: int
    t0: int
    steps: int


def despoof_ddm(x: torch.Tensor, eps_s, eps_g, schedule: DiffusionSchedule, *, t0: int,
                steps: int) -> DespoofResult:
    """DDIM-invert ``x`` with ``eps_s`` to ``t0``, generate back with ``eps_g`` on the same grid.

    ``x``: (N, 3, H, W) float in [-1, 1]. ``steps`` DDIM steps each way (``t0`` must be a
    multiple of ``steps``); NFE = 2 * steps. ``t0 = 0`` returns ``x`` with zero noise.
    """
    grid = timestep_grid(schedule, t0, steps)
    for net in (eps_s, eps_g):
        net.eval()
    latent = ddim_invert(eps_s, x, schedule, grid)        # Eq. 2: x^l = ODE(x^s; eps_s, 0 -> t0)
    restored = ddim_generate(eps_g, latent, schedule, grid)  # Eq. 3: x^g = ODE(x^l; eps_g, t0 -> 0)
    noise = x - restored                                  # Eq. 4, signed: N = x^s - x^g
    return DespoofResult(restored=restored, noise=noise, latent=latent, nfe=2 * len(grid), t0=t0,
                         steps=len(grid))
