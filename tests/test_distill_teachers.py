"""DDM and AG-FAS teachers on tiny untrained UNets: properties of the DDIM passes, shapes, NFE."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the teachers need the train extra")
pytest.importorskip("diffusers", reason="the teachers need the train extra")

from edgefas.distill.agfas import StructureCondition, defake_agfas, lowpass  # noqa: E402
from edgefas.distill.ddm import despoof_ddm  # noqa: E402
from edgefas.distill.errors import TeacherConfigError  # noqa: E402
from edgefas.distill.schedule import DiffusionSchedule  # noqa: E402
from edgefas.distill.unet import build_unet, get_unet_config  # noqa: E402

SCHEDULE = DiffusionSchedule()


def _unet(seed: int, in_channels: int = 3):
    torch.manual_seed(seed)
    return build_unet(get_unet_config("tiny").with_overrides(in_channels=in_channels)).eval()


@pytest.fixture(scope="module")
def nets():
    torch.set_num_threads(1)
    return _unet(0), _unet(1)


@pytest.fixture(scope="module")
def faces():
    g = torch.Generator().manual_seed(0)
    return torch.rand((4, 3, 32, 32), generator=g) * 2 - 1


def _mae(a, b) -> float:
    return float((a - b).abs().mean())


def test_ddim_round_trip_with_one_model_reconstructs_the_input(nets, faces):
    """Inversion then generation with the same model undoes itself up to the first-order
    discretisation error: each inverse step evaluates eps at (x_{t-d}, t) where generation uses
    (x_t, t), so the error scales with the stride d. Measured on this tiny net: 2.3e-3 at
    t0 = 100 / 10 steps (pixel range 2). Two different models instead land ~0.13 away: the
    restored face is another model's face, which is what DDM's spoof noise measures."""
    a, b = nets
    fine = despoof_ddm(faces, a, a, SCHEDULE, t0=100, steps=10)
    coarse = despoof_ddm(faces, a, a, SCHEDULE, t0=100, steps=5)
    other = despoof_ddm(faces, a, b, SCHEDULE, t0=100, steps=10)
    err_fine, err_coarse, err_other = (_mae(faces, r.restored) for r in (fine, coarse, other))
    assert err_fine < 0.01
    assert 1.5 < err_coarse / err_fine < 2.5       # first order in the stride
    assert err_other > 10 * 0.01
    assert torch.allclose(fine.noise, faces - fine.restored)


def test_ddm_shapes_nfe_and_determinism(nets, faces):
    a, b = nets
    r1 = despoof_ddm(faces, a, b, SCHEDULE, t0=40, steps=4)
    r2 = despoof_ddm(faces.clone(), a, b, SCHEDULE, t0=40, steps=4)
    assert r1.restored.shape == r1.noise.shape == r1.latent.shape == faces.shape
    assert r1.nfe == 8 and r1.steps == 4 and r1.t0 == 40
    assert torch.equal(r1.noise, r2.noise)
    single = despoof_ddm(faces[2:3], a, b, SCHEDULE, t0=40, steps=4)   # batch-independent
    assert torch.allclose(single.noise, r1.noise[2:3], atol=1e-5)
    still = despoof_ddm(faces, a, b, SCHEDULE, t0=0, steps=1)
    assert still.nfe == 0 and torch.equal(still.noise, torch.zeros_like(faces))


def test_agfas_shapes_nfe_determinism_and_shared_noise(nets, faces):
    a, _ = nets
    r1 = defake_agfas(faces, a, SCHEDULE, t0=60, steps=3, noise_seed=7)
    r2 = defake_agfas(faces.clone(), a, SCHEDULE, t0=60, steps=3, noise_seed=7)
    assert r1.output.shape == r1.cue.shape == faces.shape and r1.nfe == 3
    assert torch.equal(r1.cue, r2.cue)
    assert torch.allclose(r1.cue, faces - r1.output)
    # one noise draw shared by all faces: a face's cue does not depend on its batch
    alone = defake_agfas(faces[1:2], a, SCHEDULE, t0=60, steps=3, noise_seed=7)
    assert torch.allclose(alone.cue, r1.cue[1:2], atol=1e-5)
    other_seed = defake_agfas(faces, a, SCHEDULE, t0=60, steps=3, noise_seed=8)
    assert not torch.allclose(other_seed.cue, r1.cue)


def test_agfas_at_t0_zero_returns_the_input(nets, faces):
    r = defake_agfas(faces, nets[0], SCHEDULE, t0=0, steps=5)
    assert torch.equal(r.output, faces) and float(r.cue.abs().max()) == 0.0 and r.nfe == 0


def test_agfas_structure_condition_hook(faces):
    cond = StructureCondition(sigma=1.5)
    unet6 = _unet(2, in_channels=3 + cond.channels)
    r = defake_agfas(faces, unet6, SCHEDULE, t0=20, steps=2, condition=cond)
    assert r.cue.shape == faces.shape and r.nfe == 2
    with pytest.raises(TeacherConfigError, match="6 input channels"):
        defake_agfas(faces, unet6, SCHEDULE, t0=20, steps=2)       # condition forgotten


def test_lowpass_keeps_the_mean_and_removes_a_fine_pattern():
    xx = torch.arange(32.0).expand(32, 32)
    stripes = torch.cos(torch.pi * xx).expand(1, 3, 32, 32)        # period 2 px
    flat = torch.full((1, 3, 32, 32), 0.3)
    assert torch.allclose(lowpass(flat, 2.0), flat, atol=1e-6)
    assert float(lowpass(stripes, 2.0).abs().max()) < 1e-3
    assert lowpass(flat + stripes, 1.0).shape == (1, 3, 32, 32)
