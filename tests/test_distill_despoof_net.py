"""DS Net (Face De-Spoofing) forward pass and each label-free loss on hand-made cases."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="the teachers need the train extra")

from edgefas.distill.despoof_net import (  # noqa: E402
    DespoofNet,
    DespoofNetConfig,
    PatchDiscriminator,
    adversarial_loss,
    despoof_net_losses,
    discriminator_loss,
    get_despoof_net_config,
    high_frequency_peak,
    magnitude_loss,
    repetitive_loss,
    rgb_to_hsv,
    zero_one_map_loss,
)
from edgefas.distill.errors import TeacherConfigError  # noqa: E402

LIVE = torch.tensor([True, False])


def _stripes(period: float, amplitude: float = 0.5, size: int = 32) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32)
    return (amplitude * torch.sin(2 * math.pi * x / period)).expand(1, 3, size, size).clone()


def test_despoof_net_shapes_and_live_estimate():
    torch.manual_seed(0)
    net = DespoofNet(get_despoof_net_config("tiny")).eval()
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        out = net(x)
    assert out.noise.shape == x.shape and out.zero_one_map.shape == (2, 1, 4, 6)
    assert torch.allclose(out.live, x - out.noise)                      # Eq. 1: x_hat = I - N
    assert PatchDiscriminator(get_despoof_net_config("tiny"))(x).shape[:2] == (2, 1)
    with pytest.raises(TeacherConfigError, match="multiples of 8"):
        net(torch.zeros(1, 3, 30, 32))
    cfg = get_despoof_net_config("cpu")
    assert DespoofNetConfig.from_dict(cfg.to_dict()) == cfg
    assert sum(p.numel() for p in DespoofNet(cfg).parameters()) < 100_000    # edge-sized


def test_rgb_to_hsv_on_known_colours():
    rgb = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5]]).T.reshape(1, 3, 4, 1) * 2 - 1
    hsv = (rgb_to_hsv(rgb) + 1) / 2
    assert torch.allclose(hsv[0, 0, :, 0], torch.tensor([0, 1 / 3, 2 / 3, 0]), atol=1e-6)   # hue
    assert torch.allclose(hsv[0, 1, :, 0], torch.tensor([1.0, 1, 1, 0]), atol=1e-6)         # saturation
    assert torch.allclose(hsv[0, 2, :, 0], torch.tensor([1.0, 1, 1, 0.5]), atol=1e-6)       # value


def test_magnitude_loss_is_zero_for_zero_live_noise_and_ignores_spoof():
    noise = torch.zeros(2, 3, 8, 8)
    noise[1] = 5.0                                                       # spoof noise is free
    assert float(magnitude_loss(noise, LIVE)) == 0.0
    noise[0] = -0.25
    assert float(magnitude_loss(noise, LIVE)) == pytest.approx(0.25)     # Eq. 5, L1
    assert float(magnitude_loss(noise, torch.tensor([False, False]))) == 0.0


def test_zero_one_map_loss_targets_zero_for_live_and_one_for_spoof():
    perfect = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    assert float(zero_one_map_loss(perfect, LIVE)) == 0.0
    assert float(zero_one_map_loss(1 - perfect, LIVE)) == pytest.approx(1.0)   # Eq. 6, per-pixel L1


def test_high_frequency_peak_finds_a_repetitive_pattern():
    k = 8                                                                # a quarter of 32, as k=64 at 256
    fine = _stripes(period=4)                                            # bin 8 from DC: outside the mask
    coarse = _stripes(period=32)                                         # bin 1: inside the k x k mask
    g = torch.Generator().manual_seed(0)
    white = torch.randn((1, 3, 32, 32), generator=g) * fine.std()        # same energy, no repetition
    assert float(high_frequency_peak(fine, k)) == pytest.approx(0.25, rel=1e-4)   # amplitude / 2
    assert float(high_frequency_peak(coarse, k)) < 1e-6
    assert float(high_frequency_peak(white, k)) < 0.5 * float(high_frequency_peak(fine, k))
    with pytest.raises(TeacherConfigError):
        high_frequency_peak(fine, 32)


def test_repetitive_loss_rewards_a_peak_for_spoof_and_penalises_it_for_live():
    k = 8
    zero, fine = torch.zeros(1, 3, 32, 32), _stripes(period=4)
    spoof, live = torch.tensor([False]), torch.tensor([True])
    assert float(repetitive_loss(fine, spoof, k)) == pytest.approx(-0.25, rel=1e-4)
    assert float(repetitive_loss(fine, spoof, k)) < float(repetitive_loss(zero, spoof, k)) == 0.0
    assert float(repetitive_loss(fine, live, k)) == pytest.approx(0.25, rel=1e-4)
    assert float(repetitive_loss(zero, live, k)) == 0.0
    both = repetitive_loss(torch.cat([fine, fine]), torch.tensor([True, False]), k)
    assert float(both) == pytest.approx(0.0, abs=1e-6)                    # the batch mean


def test_gan_losses_follow_the_discriminator_confidence():
    sure, unsure = torch.full((2, 1, 4, 4), 10.0), torch.zeros(2, 1, 4, 4)
    # Eq. 3: a discriminator that calls real real and synthetic synthetic has ~0 loss
    assert float(discriminator_loss(sure, -sure)) < 1e-3
    assert float(discriminator_loss(unsure, unsure)) == pytest.approx(2 * math.log(2), rel=1e-5)
    # Eq. 4: the DS Net wins when its live estimates are taken for real
    assert float(adversarial_loss(sure)) < 1e-3 < float(adversarial_loss(-sure))


def test_total_loss_is_the_weighted_sum_of_eq_7():
    torch.manual_seed(0)
    net = DespoofNet(get_despoof_net_config("tiny"))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = net(x)
    logits = torch.zeros(1, 1, 4, 4)
    terms = despoof_net_losses(out, LIVE, logits, k=8, lambda_magnitude=3.0, lambda_repetitive=0.005,
                               lambda_adversarial=0.016)
    expected = (terms.zero_one_map + 3.0 * terms.magnitude + 0.005 * terms.repetitive
                + 0.016 * terms.adversarial)
    assert torch.allclose(terms.total, expected)
    terms.total.backward()
    assert all(p.grad is not None for p in net.parameters())
