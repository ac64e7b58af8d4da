"""The teachers' UNet config and noise schedule: round trips, presets, step grids."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the teachers need the train extra")
pytest.importorskip("diffusers", reason="the teachers need the train extra")

from edgefas.distill.errors import TeacherConfigError  # noqa: E402
from edgefas.distill.schedule import DiffusionSchedule, timestep_grid  # noqa: E402
from edgefas.distill.unet import (  # noqa: E402
    UNET_PRESETS,
    UNetConfig,
    build_unet,
    get_unet_config,
    load_unet,
    save_unet,
)


@pytest.mark.parametrize("name", sorted(UNET_PRESETS))
def test_unet_config_round_trip(name):
    cfg = get_unet_config(name)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    assert UNetConfig.from_dict({**cfg.to_dict(), "class": "UNetConfig"}) == cfg  # extra keys ignored


def test_cpu_preset_is_the_measured_2_5m_net():
    n = sum(p.numel() for p in build_unet(get_unet_config("cpu")).parameters())
    assert 2.4e6 < n < 2.6e6, n  # diffusion-cpu.md: 16/32/64/128, no attention, 2.49 M


def test_tiny_unet_is_fully_convolutional_and_saves_as_safetensors(tmp_path):
    torch.manual_seed(0)
    unet = build_unet(get_unet_config("tiny")).eval()
    x = torch.randn(2, 3, 48, 48)          # trained on 32 px patches, run on another size
    t = torch.tensor([3, 7])
    with torch.no_grad():
        y = unet(x, t).sample
    assert y.shape == x.shape
    save_unet(unet, tmp_path / "unet")
    assert {p.name for p in (tmp_path / "unet").iterdir()} == {"config.json",
                                                               "diffusion_pytorch_model.safetensors"}
    with torch.no_grad():
        assert torch.equal(load_unet(tmp_path / "unet")(x, t).sample, y)


def test_bad_configs_raise_with_a_reason():
    with pytest.raises(TeacherConfigError, match="norm_num_groups"):
        UNetConfig(block_out_channels=(6, 12), norm_num_groups=4)
    with pytest.raises(TeacherConfigError, match="Did you mean 'tiny'"):
        get_unet_config("tinny")


def test_timestep_grid_mirrors_the_schedulers():
    s = DiffusionSchedule()
    assert timestep_grid(s, 100, 4) == (24, 49, 74, 99)   # stride 25, top = t0 - 1
    assert timestep_grid(s, 0, 3) == ()
    assert timestep_grid(s, 1000, 50)[-1] == 999           # the paper's full 50-step DDIM
    ddim = s.ddim()
    ddim.set_timesteps(1000 // 25)
    assert ddim.config.num_train_timesteps // ddim.num_inference_steps == 25
    with pytest.raises(TeacherConfigError, match="multiple of steps"):
        timestep_grid(s, 200, 3)
    with pytest.raises(TeacherConfigError, match="outside"):
        timestep_grid(s, 1001, 1)


def test_noise_std_matches_the_notes():
    s = DiffusionSchedule()
    assert s.noise_std(0) == 0.0
    assert s.noise_std(200) == pytest.approx(0.58, abs=0.01)   # "t0 >= 200 leaves noise of std >= .58"
