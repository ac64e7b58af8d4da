"""Few-step de-spoofing student: consistency distillation of the AG-FAS live-only teacher.

The teacher restores a face by noising it to ``t0`` with one fixed noise draw and running ``k``
DDIM steps of a live-only diffusion model (:func:`edgefas.distill.agfas.defake_agfas`). The
student ``f(x_t, t)`` learns to jump from any point of the teacher's probability-flow ODE on
``[0, t0)`` straight to the ODE's clean end, so 1 network evaluation replaces ``k``.

Objective: consistency distillation (CD) of Song, Dhariwal, Chen and Sutskever, "Consistency
Models", ICML 2023, Algorithm 2 / Eq. (7): for a face ``x0``, ``n ~ U{1..N}``, fresh noise ``z``,

    x_hi  = sqrt(a[t_n]) x0 + sqrt(1 - a[t_n]) z                 (forward process)
    x_lo  = one DDIM step of the teacher from t_n to t_{n-1}      (the ODE solver Phi)
    loss  = || f_theta(x_hi, t_n) - f_ema(x_lo, t_{n-1}) ||^2      (squared L2 as the metric d)

with the boundary condition built in through the parameterisation of Latent Consistency Models
(Luo et al., 2023): ``f(x, t) = c_skip(t) x + c_out(t) x0_hat(x, t)``, ``x0_hat`` from the
network's epsilon prediction, ``c_skip(t) = s^2 / ((10 t)^2 + s^2)``, ``c_out(t) = 10 t /
sqrt((10 t)^2 + s^2)``, ``s = 0.5``; ``f(x, 0) = x``. The target network is an EMA of the
student (``mu`` of Algorithm 2). Levels are 0-based diffusers indices; ``t_0`` is the clean face.

The comparison objective (``regression``) fits ``f(x_{t0}, t0)`` to the teacher's own output for
the same fixed noise draw: direct distillation of one input-output map.

A teacher trained with a structure condition (``edgefas teacher --condition lowpass``) gets a
student with the same condition: ``f(x_t, t, c)`` with ``c`` the low-pass copy of the input face,
concatenated as extra channels exactly as the teacher takes it, in training and at inference.

Inference (:func:`student_despoof`): noise the face to ``t0`` with the fixed draw, ``f`` once;
for 2 or 4 evaluations, re-noise the estimate to evenly spaced lower levels with the same draw
and apply ``f`` again (Algorithm 1 of the paper, with the fixed draw instead of fresh noise so a
face always gets the same cue).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .agfas import StructureCondition, shared_noise
from .errors import TeacherConfigError
from .schedule import DiffusionSchedule, predict_eps
from .unet import UNetConfig, build_unet

#: LCM's boundary-condition scaling: sigma_data and the timestep scale
SIGMA_DATA, TIMESTEP_SCALE = 0.5, 10.0


@dataclass(frozen=True)
class StudentConfig:
    """Everything that builds and runs a student (written next to its weights)."""

    unet: UNetConfig
    t0: int = 100                 # the teacher's noise level (noising steps)
    noise_seed: int = 0           # the teacher's fixed noise draw
    nfe: int = 1                  # evaluations at inference (1, 2 or 4)
    schedule: DiffusionSchedule = DiffusionSchedule()
    condition: StructureCondition | None = None   # the teacher's structure condition, if any

    def __post_init__(self) -> None:
        if self.nfe not in (1, 2, 4):
            raise TeacherConfigError(f"student nfe must be 1, 2 or 4, got {self.nfe}")
        if not 0 < self.t0 <= self.schedule.num_train_timesteps:
            raise TeacherConfigError(f"t0={self.t0} must be in (0, {self.schedule.num_train_timesteps}]")
        want = 3 + (self.condition.channels if self.condition else 0)
        if self.unet.in_channels != want:
            raise TeacherConfigError(f"a student {'with' if self.condition else 'without'} a structure "
                                     f"condition takes {want} input channels; its UNet has "
                                     f"{self.unet.in_channels}")

    def levels(self, nfe: int | None = None) -> tuple[int, ...]:
        """0-based levels the student is applied at, highest first: evenly spaced noise counts
        t0, ..., t0/nfe (rounded half up when t0 is not a multiple of nfe), minus one."""
        n = nfe or self.nfe
        if n not in (1, 2, 4) or n > self.t0:
            raise TeacherConfigError(f"student nfe must be 1, 2 or 4 (and <= t0={self.t0}), got {n}")
        return tuple(int(self.t0 * (n - i) / n + 0.5) - 1 for i in range(n))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unet"] = self.unet.to_dict()    # asdict already turns the condition into its dict
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudentConfig:
        return cls(unet=UNetConfig.from_dict(d["unet"]), t0=d["t0"], noise_seed=d["noise_seed"],
                   nfe=d.get("nfe", 1), schedule=DiffusionSchedule.from_dict(d["schedule"]),
                   condition=StructureCondition(**d["condition"]) if d.get("condition") else None)


class ConsistencyStudent(nn.Module):
    """``f(x_t, t[, c]) = c_skip(t) x_t + c_out(t) x0_hat(x_t, t[, c])`` around a small diffusers UNet."""

    def __init__(self, config: StudentConfig) -> None:
        super().__init__()
        self.config = config
        self.unet = build_unet(config.unet)
        a = torch.as_tensor(config.schedule.ddim().alphas_cumprod, dtype=torch.float32)
        self.register_buffer("alphas_cumprod", a, persistent=False)

    def condition(self, face: torch.Tensor) -> torch.Tensor | None:
        """The structure condition of the input face (None for an unconditional student)."""
        return self.config.condition(face) if self.config.condition else None

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The clean-face estimate; ``t``: (N,) long levels, -1 for an already clean face;
        ``cond``: the structure condition of the input face (conditioned students only)."""
        if (cond is None) != (self.config.condition is None):
            raise TeacherConfigError("this student " + ("needs" if self.config.condition else "takes no")
                                     + " structure condition")
        clean = t < 0
        tc = t.clamp(min=0)
        a = self.alphas_cumprod[tc].view(-1, 1, 1, 1)
        eps = predict_eps(self.unet, x_t, tc, cond)
        x0 = (x_t - (1 - a).sqrt() * eps) / a.sqrt()
        scaled = TIMESTEP_SCALE * (tc + 1).to(x_t.dtype).view(-1, 1, 1, 1)   # levels count from 1
        c_skip = SIGMA_DATA ** 2 / (scaled ** 2 + SIGMA_DATA ** 2)
        c_out = scaled / (scaled ** 2 + SIGMA_DATA ** 2).sqrt()
        out = c_skip * x_t + c_out * x0
        return torch.where(clean.view(-1, 1, 1, 1), x_t, out)


def add_noise(alphas_cumprod: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor,
              t: torch.Tensor) -> torch.Tensor:
    """The forward process at 0-based levels ``t`` (N,)."""
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def _restore(student: ConsistencyStudent, x: torch.Tensor, eps: torch.Tensor,
             levels: tuple[int, ...]) -> torch.Tensor:
    """Multistep sampling: noise the estimate to each level with the fixed draw, apply ``f``.
    The condition always comes from the input face ``x``, as the teacher's does."""
    cond = student.condition(x)
    est = x
    for level in levels:
        t = torch.full((x.shape[0],), level, dtype=torch.long, device=x.device)
        est = student(add_noise(student.alphas_cumprod, est, eps, t), t, cond)
    return est


@torch.no_grad()
def student_despoof(student: ConsistencyStudent, x: torch.Tensor, *, nfe: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(restored, cue = x - restored) for (N, 3, H, W) faces in [-1, 1], in ``nfe`` evaluations."""
    cfg = student.config
    eps = shared_noise(tuple(x.shape[1:]), cfg.noise_seed, x.device, x.dtype)
    est = _restore(student, x, eps, cfg.levels(nfe))
    return est, x - est


class StudentCue(nn.Module):
    """Face tensor in, spoof cue out: the exportable de-spoof stage (fixed noise baked in).

    The cue is computed on the central ``side`` pixels of the (N, 3, S, S) crop (the region the
    teacher was evaluated on); the noise draw is a constant of the graph, so ONNX/TFLite exports
    need no random op and give the same cue as PyTorch.
    """

    def __init__(self, student: ConsistencyStudent, side: int, crop_size: int,
                 nfe: int | None = None) -> None:
        super().__init__()
        if side > crop_size or (crop_size - side) % 2:
            raise TeacherConfigError(f"cue side {side} does not centre in a {crop_size} px crop")
        self.student = student.eval().requires_grad_(False)
        self.offset, self.side = (crop_size - side) // 2, side
        self.levels = student.config.levels(nfe)
        eps = shared_noise((3, side, side), student.config.noise_seed, "cpu")
        self.register_buffer("eps", eps, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o, s = self.offset, self.side
        face = x[:, :, o:o + s, o:o + s]
        return face - _restore(self.student, face, self.eps, self.levels)


def count_flops(module: nn.Module, *inputs: torch.Tensor) -> int:
    """Floating-point operations of one forward pass (torch's FlopCounterMode: 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())
