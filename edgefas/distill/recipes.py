"""Teacher training recipes as data: one frozen dataclass per teacher kind, tiny / cpu / gpu presets.

``ddm`` trains either DDM model (``eps_s`` on all faces, ``eps_g`` on live faces: the caller picks
the crops), ``agfas`` the live-only de-fake generator, ``despoof_net`` the DS Net. The step counts
of ``cpu`` follow the run measured in ``shared/notes/diffusion-cpu.md`` (about 1,700 steps of 32 px
patches); the diffusion ``gpu`` recipe is the one run on the lent H100 (ten-minute chunks, see
``edgefas teacher --time-budget``), ``gpu-large`` a starting point for a bigger machine.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from ..errors import unknown_name
from .agfas import StructureCondition
from .errors import TeacherConfigError
from .schedule import DiffusionSchedule

MIXED_PRECISIONS = ("no", "bf16", "fp16")   # accelerate's names
DIFFUSION_AUGMENTS = ("none", "camera")


@dataclass(frozen=True)
class DiffusionRecipe:
    """An epsilon-prediction diffusion run (DDM eps_s / eps_g, AG-FAS live model)."""

    name: str
    kind: str = "ddm"                 # "ddm" or "agfas" (written into the teacher)
    unet: str = "cpu"                 # a preset of edgefas.distill.unet
    steps: int = 1700
    batch_size: int = 32
    lr: float = 2e-4
    warmup_steps: int = 100           # linear warm-up, then constant
    ema_decay: float = 0.995
    save_every: int = 250             # steps between checkpoints
    keep_checkpoints: int = 2
    t_max: int = 650                  # training t ~ U[0, t_max): only low-noise levels are used
    patch_size: int | None = 32       # random square patches of the region (None: the whole region)
    region: float = 1.0               # central fraction of the crop side trained on (eval-cue feeds 0.5)
    hflip: bool = True
    condition: str | None = None      # "lowpass": AG-FAS structure condition (in_channels = 6)
    condition_sigma: float = 2.0
    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    seed: int = 0
    threads: int = 2
    # "bf16": accelerate's autocast on a GPU (ignored on the CPU, where it would be slower)
    mixed_precision: str = "no"
    # "camera": each training face goes through edgefas.train.camera_aug's random capture
    # pipeline (resolution, blur/sharpening, noise, gamma, JPEG) before its patch is cut, so the
    # live prior also holds live faces as other cameras would have taken them
    augment: str = "none"

    def __post_init__(self) -> None:
        if self.augment not in DIFFUSION_AUGMENTS:
            raise TeacherConfigError(unknown_name("teacher augmentation", self.augment,
                                                  list(DIFFUSION_AUGMENTS)))
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise TeacherConfigError(unknown_name("mixed precision", self.mixed_precision,
                                                  list(MIXED_PRECISIONS)))
        if self.kind not in ("ddm", "agfas"):
            raise TeacherConfigError(unknown_name("diffusion teacher kind", self.kind, ["ddm", "agfas"]))
        if not 0 < self.t_max <= self.num_train_timesteps:
            raise TeacherConfigError(f"t_max={self.t_max} must be in (0, {self.num_train_timesteps}]")
        if not 0 < self.region <= 1:
            raise TeacherConfigError(f"region={self.region} must be in (0, 1]")
        self.structure_condition()

    def schedule(self) -> DiffusionSchedule:
        return DiffusionSchedule(num_train_timesteps=self.num_train_timesteps,
                                 beta_schedule=self.beta_schedule, beta_start=self.beta_start,
                                 beta_end=self.beta_end)

    def structure_condition(self) -> StructureCondition | None:
        return None if self.condition is None else StructureCondition(self.condition, self.condition_sigma)

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **kw) -> DiffusionRecipe:
        return replace(self, **kw)


@dataclass(frozen=True)
class DespoofNetRecipe:
    """A DS Net run: Eq. 7 of Face De-Spoofing without J_DQ, alternating with Eq. 3."""

    name: str
    net: str = "cpu"                  # a preset of edgefas.distill.despoof_net
    steps: int = 3000
    batch_size: int = 32              # half live, half attack
    lr: float = 3e-4
    lr_disc: float = 3e-4
    warmup_steps: int = 100
    ema_decay: float = 0.995
    save_every: int = 500
    keep_checkpoints: int = 2
    patch_size: int | None = 64
    hflip: bool = True
    # Paper (Sec. 4.1): lambda_1..4 = 3, 0.005, 0.1, 0.016 (lambda_3 weighs J_DQ, left out), k = 64
    # at 256 px, i.e. a quarter of the side. Our FFT is normalised by the pixel count, so
    # lambda_repetitive does not carry over from the paper's code: tune it.
    lambda_magnitude: float = 3.0
    lambda_repetitive: float = 0.005
    lambda_adversarial: float = 0.016
    low_freq_fraction: float = 0.25
    seed: int = 0
    threads: int = 2

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **kw) -> DespoofNetRecipe:
        return replace(self, **kw)


@dataclass(frozen=True)
class StudentRecipe:
    """A few-step student distilled from an AG-FAS teacher (edgefas.distill.student)."""

    name: str
    objective: str = "consistency"    # "consistency" (Song et al. 2023, Alg. 2) or "regression"
    unet: str = "student"             # a preset of edgefas.distill.unet
    t0: int = 100                     # must match the teacher setting being distilled
    teacher_steps: int = 5            # regression: the teacher's DDIM steps for the target
    delta: int = 10                   # consistency: the ODE discretisation (levels t0/delta)
    nfe: int = 1                      # evaluations the student is used with by default
    noise_seed: int = 0
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    warmup_steps: int = 100
    ema_decay: float = 0.995          # the target network mu (CD) and the kept weights
    save_every: int = 250
    keep_checkpoints: int = 2
    patch_size: int | None = 32       # patches of the teacher's region (the crop's centre half)
    region: float = 0.5               # fraction of the crop side the teacher and student see
    hflip: bool = True
    seed: int = 0
    threads: int = 2

    def __post_init__(self) -> None:
        if self.objective not in ("consistency", "regression"):
            raise TeacherConfigError(unknown_name("student objective", self.objective,
                                                  ["consistency", "regression"]))
        if self.t0 % self.delta or self.t0 % self.teacher_steps:
            raise TeacherConfigError(f"t0={self.t0} must be a multiple of delta={self.delta} and "
                                     f"teacher_steps={self.teacher_steps}")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **kw) -> StudentRecipe:
        return replace(self, **kw)


_DDM = {
    # Seconds on 16 random 32 px crops: every code path, in the tests.
    "tiny": DiffusionRecipe("tiny", unet="tiny", steps=4, batch_size=4, warmup_steps=1, ema_decay=0.9,
                            save_every=2, t_max=1000, patch_size=16, threads=1),
    "cpu": DiffusionRecipe("cpu"),
    # Measured on one H100 (docs/teachers.md): the "cpu" UNet, so eval-cue and the student cost
    # what they cost for the CPU teacher, but trained on the whole 64 px face centre that eval-cue
    # feeds it (no patches), with LFW's live faces, for 15x the steps at 4x the batch. The
    # conditioned run added --mixed-precision bf16 and drew its batches on the GPU: 20.5 steps/s
    # against 9.8 with host-side batches (docs/teachers.md).
    "gpu": DiffusionRecipe("gpu", steps=25000, batch_size=128, warmup_steps=500, ema_decay=0.999,
                           save_every=1000, patch_size=None, region=0.5, threads=8),
    # Wider and deeper, for a multi-GPU machine (accelerate launch); not run by the team yet.
    "gpu-large": DiffusionRecipe("gpu-large", unet="gpu", steps=40000, batch_size=64, lr=1e-4,
                                 warmup_steps=1000, ema_decay=0.9999, save_every=2000, keep_checkpoints=3,
                                 t_max=1000, patch_size=64, threads=8),
}

RECIPES: dict[str, dict[str, DiffusionRecipe | DespoofNetRecipe]] = {
    "ddm": dict(_DDM),
    "agfas": {name: replace(r, kind="agfas") for name, r in _DDM.items()},
    "despoof_net": {
        "tiny": DespoofNetRecipe("tiny", net="tiny", steps=4, batch_size=4, warmup_steps=1, ema_decay=0.9,
                                 save_every=2, patch_size=16, threads=1),
        "cpu": DespoofNetRecipe("cpu"),
        "gpu": DespoofNetRecipe("gpu", net="gpu", steps=20000, batch_size=64, lr=1e-4, lr_disc=1e-4,
                                warmup_steps=500, ema_decay=0.999, save_every=2000, keep_checkpoints=3,
                                patch_size=None, threads=8),
    },
}


STUDENT_RECIPES: dict[str, StudentRecipe] = {
    "tiny": StudentRecipe("tiny", unet="tiny", t0=20, teacher_steps=2, delta=10, steps=4, batch_size=4,
                          warmup_steps=1, ema_decay=0.9, save_every=2, patch_size=16, threads=1),
    "cpu": StudentRecipe("cpu"),
    "gpu": StudentRecipe("gpu", unet="cpu", steps=20000, batch_size=64, lr=1e-4, warmup_steps=500,
                         ema_decay=0.999, save_every=2000, keep_checkpoints=3, patch_size=None, threads=8),
}


def get_student_recipe(name: str, **overrides) -> StudentRecipe:
    """The ``name`` preset (tiny, cpu, gpu) of the student, with ``overrides`` applied."""
    if name not in STUDENT_RECIPES:
        raise TeacherConfigError(unknown_name("student recipe", name, list(STUDENT_RECIPES)))
    return STUDENT_RECIPES[name].with_overrides(**overrides)


def get_recipe(kind: str, name: str) -> DiffusionRecipe | DespoofNetRecipe:
    """The ``name`` preset (tiny, cpu, gpu) of teacher ``kind`` (ddm, agfas, despoof_net)."""
    if kind not in RECIPES:
        raise TeacherConfigError(unknown_name("teacher kind", kind, list(RECIPES)))
    try:
        return RECIPES[kind][name]
    except KeyError:
        raise TeacherConfigError(unknown_name(f"{kind} recipe", name, list(RECIPES[kind]))) from None
