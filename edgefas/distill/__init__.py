"""De-spoofing teachers (torch + diffusers + accelerate; never imported by the runtime).

Three ways to split a face into a live estimate and a spoof cue, trained offline and later
distilled into a small student:

- ``ddm``: DDM (IJCB 2023), DDIM inversion with an all-faces model, generation with a live model;
- ``agfas``: AG-FAS-style de-fake generator, a live-only model that denoises a noised face;
- ``despoof_net``: the one-pass DS Net of Face De-Spoofing (ECCV 2018) and its losses.

``unet`` and ``schedule`` hold the shared diffusers UNet config and DDIM passes, ``recipes`` the
tiny / cpu / gpu training presets and ``train_teacher`` the accelerate training loops.
"""
from __future__ import annotations

from .agfas import DefakeResult, StructureCondition, defake_agfas, lowpass
from .ddm import DespoofResult, despoof_ddm
from .despoof_net import (
    DespoofNet,
    DespoofNetConfig,
    PatchDiscriminator,
    adversarial_loss,
    despoof_net_losses,
    discriminator_loss,
    magnitude_loss,
    repetitive_loss,
    zero_one_map_loss,
)
from .errors import TeacherConfigError
from .recipes import DespoofNetRecipe, DiffusionRecipe, get_recipe
from .schedule import DiffusionSchedule, ddim_generate, ddim_invert, timestep_grid
from .train_teacher import (
    DiffusionTeacher,
    load_despoof_net,
    load_diffusion_teacher,
    train_despoof_net,
    train_diffusion,
)
from .unet import UNetConfig, build_unet, get_unet_config, load_unet, save_unet

__all__ = [
    "DefakeResult", "DespoofNet", "DespoofNetConfig", "DespoofNetRecipe", "DespoofResult",
    "DiffusionRecipe", "DiffusionSchedule", "DiffusionTeacher", "PatchDiscriminator",
    "StructureCondition", "TeacherConfigError", "UNetConfig", "adversarial_loss", "build_unet",
    "ddim_generate", "ddim_invert", "defake_agfas", "despoof_ddm", "despoof_net_losses",
    "discriminator_loss", "get_recipe", "get_unet_config", "load_despoof_net", "load_diffusion_teacher",
    "load_unet", "lowpass", "magnitude_loss", "repetitive_loss", "save_unet", "timestep_grid",
    "train_despoof_net", "train_diffusion", "zero_one_map_loss",
]
