"""A small pixel-space denoiser: diffusers' ``UNet2DModel`` described by a frozen config.

Attention-free by default, so the network is fully convolutional: it trains on random patches
and runs on whole crops of any size divisible by ``2 ** (levels - 1)`` (see
``shared/notes/diffusion-cpu.md``: the 4-level 16/32/64/128 net has 2.49 M parameters and
trains on 32 px patches on 2 CPU cores).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import unknown_name
from .errors import TeacherConfigError


@dataclass(frozen=True)
class UNetConfig:
    """Everything that builds the UNet; written next to its weights."""

    block_out_channels: tuple[int, ...] = (16, 32, 64, 128)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    in_channels: int = 3       # 3 + the channels of a structure condition (AG-FAS hook: 6)
    out_channels: int = 3      # epsilon, one value per image channel
    sample_size: int = 32      # the training patch side; the net itself is size-agnostic
    attention: bool = False    # self-attention at the lowest resolution (ties the net to one size)
    dropout: float = 0.0

    def __post_init__(self) -> None:
        bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
        if bad:
            raise TeacherConfigError(f"block_out_channels {bad} are not divisible by "
                                     f"norm_num_groups={self.norm_num_groups}")
        if self.sample_size % self.downsampling_factor:
            raise TeacherConfigError(f"sample_size {self.sample_size} is not divisible by "
                                     f"{self.downsampling_factor} (2 ** (levels - 1))")

    @property
    def downsampling_factor(self) -> int:
        """Input sides must be multiples of this."""
        return 2 ** (len(self.block_out_channels) - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["block_out_channels"] = list(self.block_out_channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        if "block_out_channels" in known:
            known["block_out_channels"] = tuple(known["block_out_channels"])
        return cls(**known)

    def with_overrides(self, **kw) -> UNetConfig:
        return replace(self, **kw)


UNET_PRESETS: dict[str, UNetConfig] = {
    # 42 k parameters; a 32 px batch runs in milliseconds: the tests.
    "tiny": UNetConfig(block_out_channels=(8, 16), norm_num_groups=4, sample_size=32),
    # 2.49 M parameters, the net measured in diffusion-cpu.md.
    "cpu": UNetConfig(),
    # The few-step student (edgefas.distill.student): 161 k parameters, 185 MFLOP per 64 px face,
    # 1/26 of the "cpu" teacher's 5 evaluations (976 MFLOP each); (16, 32, 64) would be 734.
    "student": UNetConfig(block_out_channels=(8, 16, 32), norm_num_groups=4, sample_size=32),
    # For the GPU machine: wider and deeper, still attention-free so patches and crops both work.
    "gpu": UNetConfig(block_out_channels=(64, 128, 256, 256), layers_per_block=2, norm_num_groups=32,
                      sample_size=64),
}


def get_unet_config(name: str) -> UNetConfig:
    """The preset called ``name`` (tiny, cpu, gpu)."""
    try:
        return UNET_PRESETS[name]
    except KeyError:
        raise TeacherConfigError(unknown_name("UNet preset", name, list(UNET_PRESETS))) from None


def build_unet(config: UNetConfig):
    """A freshly initialised ``diffusers.UNet2DModel`` for ``config``."""
    from diffusers import UNet2DModel

    n = len(config.block_out_channels)
    down = ["DownBlock2D"] * n
    up = ["UpBlock2D"] * n
    if config.attention:
        down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
    return UNet2DModel(sample_size=config.sample_size, in_channels=config.in_channels,
                       out_channels=config.out_channels, block_out_channels=config.block_out_channels,
                       layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
                       down_block_types=tuple(down), up_block_types=tuple(up), dropout=config.dropout)


def save_unet(unet, folder: str | Path) -> Path:
    """Write ``config.json`` and ``diffusion_pytorch_model.safetensors`` (never a pickle)."""
    folder = Path(folder)
    unet.save_pretrained(folder, safe_serialization=True)
    return folder


def load_unet(folder: str | Path):
    """The UNet written by :func:`save_unet`, in eval mode."""
    from diffusers import UNet2DModel

    return UNet2DModel.from_pretrained(Path(folder), use_safetensors=True).eval()
