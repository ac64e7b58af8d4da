"""The noise schedule and the two deterministic DDIM passes every diffusion teacher shares.

Notation (diffusers' 0-based timestep index ``t``; ``a[t]`` = ``alphas_cumprod[t]`` = alpha-bar):

- forward noising (DDPM; AG-FAS Eq. 10 / 16): ``x_t = sqrt(a[t]) x_0 + sqrt(1 - a[t]) eps``;
- ``t0`` counts noising steps, so a face noised to ``t0`` sits at index ``t0 - 1`` and ``t0 = 0``
  is the clean face;
- ``steps`` DDIM steps of stride ``d = t0 / steps`` run on the grid ``d-1, 2d-1, ..., t0-1``.
  Generation (``DDIMScheduler``, eta = 0; DDM Eq. 3, AG-FAS Eq. 7 with sigma = 0) calls the model at
  each grid point ``g`` and moves the sample from level ``g`` to ``g - d``; below 0 it lands on the
  clean face (``set_alpha_to_one``). Inversion (``DDIMInverseScheduler``; DDM Eq. 2) visits the
  same points upwards and moves from ``g - d`` to ``g`` with the model called at ``g``, so each
  inverse step is the algebraic mirror of the generation step on the same point.

The schedulers derive the stride from ``num_train_timesteps // num_inference_steps``; we set
``num_inference_steps = T // d`` and check that this gives back ``d`` exactly.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .errors import TeacherConfigError


@dataclass(frozen=True)
class DiffusionSchedule:
    """The training noise schedule (DDM and the notes: linear betas, T = 1000)."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DiffusionSchedule:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def _scheduler_kwargs(self) -> dict:
        # No x0 clipping: it would break the inversion/generation mirror (and faces are in [-1, 1]
        # only up to the model's error). steps_offset 0 keeps our grid as given.
        return dict(num_train_timesteps=self.num_train_timesteps, beta_schedule=self.beta_schedule,
                    beta_start=self.beta_start, beta_end=self.beta_end, clip_sample=False,
                    set_alpha_to_one=True, steps_offset=0, prediction_type="epsilon")

    def ddim(self):
        """A ``diffusers.DDIMScheduler`` with this schedule."""
        from diffusers import DDIMScheduler

        return DDIMScheduler(**self._scheduler_kwargs())

    def ddim_inverse(self):
        """A ``diffusers.DDIMInverseScheduler`` with this schedule."""
        from diffusers import DDIMInverseScheduler

        return DDIMInverseScheduler(**self._scheduler_kwargs())

    def noise_std(self, t0: int) -> float:
        """Standard deviation of the noise in a face noised to ``t0``, sqrt(1 - alpha-bar)."""
        if t0 == 0:
            return 0.0
        return float((1 - self.ddim().alphas_cumprod[t0 - 1]) ** 0.5)


def timestep_grid(schedule: DiffusionSchedule, t0: int, steps: int) -> tuple[int, ...]:
    """The ascending grid ``d-1, 2d-1, ..., t0-1`` with ``d = t0 / steps``; empty when t0 = 0."""
    T = schedule.num_train_timesteps
    if not 0 <= t0 <= T:
        raise TeacherConfigError(f"t0={t0} is outside [0, {T}]")
    if t0 == 0:
        return ()
    if steps < 1 or t0 % steps:
        ok = [s for s in range(1, min(t0, 50) + 1) if t0 % s == 0 and T // (T // (t0 // s)) == t0 // s]
        raise TeacherConfigError(f"t0={t0} is not a multiple of steps={steps}; step counts that "
                                 f"work for t0={t0}: {ok}")
    d = t0 // steps
    if T // (T // d) != d:
        raise TeacherConfigError(f"a DDIM stride of {d} (t0={t0} / steps={steps}) cannot be expressed "
                                 f"by diffusers' schedulers with T={T}; pick another step count")
    return tuple(k * d - 1 for k in range(1, steps + 1))


def _configured(scheduler, schedule: DiffusionSchedule, grid: tuple[int, ...], device):
    d = grid[0] + 1
    scheduler.set_timesteps(schedule.num_train_timesteps // d, device=device)
    return scheduler


def predict_eps(unet, x_t: torch.Tensor, t: int | torch.Tensor, cond: torch.Tensor | None = None
                ) -> torch.Tensor:
    """eps_theta(x_t, t), with the structure condition concatenated as extra channels when given;
    ``t``: one level for the batch, or (N,) levels, one per sample."""
    x_in = x_t if cond is None else torch.cat([x_t, cond], dim=1)
    if x_in.shape[1] != unet.config.in_channels:
        raise TeacherConfigError(f"the UNet takes {unet.config.in_channels} input channels but got "
                                 f"{x_in.shape[1]} (condition {'given' if cond is not None else 'absent'})")
    timesteps = (t if torch.is_tensor(t)
                 else torch.full((x_t.shape[0],), t, device=x_t.device, dtype=torch.long))
    return unet(x_in, timesteps).sample


@torch.no_grad()
def ddim_invert(unet, x0: torch.Tensor, schedule: DiffusionSchedule, grid: tuple[int, ...],
                cond: torch.Tensor | None = None) -> torch.Tensor:
    """Deterministic DDIM inversion of clean ``x0`` up to level ``grid[-1]`` (len(grid) model calls)."""
    if not grid:
        return x0
    inverse = _configured(schedule.ddim_inverse(), schedule, grid, x0.device)
    x = x0
    for t in grid:
        x = inverse.step(predict_eps(unet, x, t, cond), t, x).prev_sample
    return x


@torch.no_grad()
def ddim_generate(unet, x_t: torch.Tensor, schedule: DiffusionSchedule, grid: tuple[int, ...],
                  cond: torch.Tensor | None = None) -> torch.Tensor:
    """Deterministic DDIM generation (eta = 0) from level ``grid[-1]`` down to the clean image."""
    if not grid:
        return x_t
    scheduler = _configured(schedule.ddim(), schedule, grid, x_t.device)
    x = x_t
    for t in reversed(grid):
        x = scheduler.step(predict_eps(unet, x, t, cond), t, x, eta=0.0).prev_sample
    return x
