"""Capture-pipeline augmentation: each effect does what it says, draws are reproducible, and
a training run with ``augment="camera"`` trains and resumes like the basic one."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from edgefas.errors import EdgefasError
from edgefas.train.camera_aug import CameraAug, capture_batch, capture_effects

NONE = CameraAug(p_resolution=0, p_blur=0, p_sharpen=0, p_noise=0, p_gamma=0, p_jpeg=0)


def _face(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = 120 + 50 * np.sin(xx / 5) * np.cos(yy / 7)
    img = np.stack([base, base * 0.9, base * 0.8], -1) + 30 * (np.sin(xx * 2.1) > 0)[..., None]
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)


def _hf_energy(img: np.ndarray) -> float:
    """Mean absolute Laplacian: the fine texture a blur removes and sharpening adds."""
    g = img.astype(np.float32).mean(-1)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(np.abs(lap).mean())


def test_no_effect_returns_the_crop_unchanged():
    img = _face()
    assert np.array_equal(capture_effects(img, np.random.default_rng(0), NONE), img)


@pytest.mark.parametrize("effect, softer", [
    ({"p_resolution": 1.0, "resolution": (0.4, 0.4)}, True),
    ({"p_blur": 1.0, "blur_sigma": (1.2, 1.2)}, True),
    ({"p_sharpen": 1.0, "sharpen_amount": (1.0, 1.0)}, False),
])
def test_resolution_blur_and_sharpening_move_fine_texture_the_right_way(effect, softer):
    img = _face()
    cfg = replace(NONE, **effect)
    out = capture_effects(img, np.random.default_rng(0), cfg)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (_hf_energy(out) < 0.8 * _hf_energy(img)) if softer else (_hf_energy(out) > 1.2 * _hf_energy(img))


def test_noise_gamma_and_jpeg_change_pixels_but_not_the_image():
    img = _face()
    for effect in ({"p_noise": 1.0, "noise_sigma": (5.0, 5.0)}, {"p_gamma": 1.0, "gamma": (1.4, 1.4)},
                   {"p_jpeg": 1.0, "jpeg_quality": (30, 30)}):
        out = capture_effects(img, np.random.default_rng(0), replace(NONE, **effect))
        diff = np.abs(out.astype(int) - img).mean()
        assert 0.5 < diff < 40, (effect, diff)
    # gamma > 1 darkens mid-tones, < 1 brightens them
    dark = capture_effects(img, np.random.default_rng(0), replace(NONE, p_gamma=1.0, gamma=(1.4, 1.4)))
    assert dark.mean() < img.mean()


def test_batch_draws_are_reproducible_and_vary_per_crop():
    batch = np.stack([_face(i) for i in range(16)])
    a = capture_batch(batch, np.random.default_rng(3))
    b = capture_batch(batch, np.random.default_rng(3))
    assert np.array_equal(a, b)
    changed = (a != batch).any(axis=(1, 2, 3))
    assert 0 < changed.sum() < len(batch) or changed.all()  # default probabilities: most, not a rule
    assert not np.array_equal(a, capture_batch(batch, np.random.default_rng(4)))


def test_recipe_refuses_an_unknown_augmentation():
    pytest.importorskip("torch", reason="recipes live in the train extra")
    from edgefas.train.recipes import get_recipe

    assert get_recipe("tiny").augment == "basic"
    assert get_recipe("tiny").with_overrides(augment="camera").augment == "camera"
    with pytest.raises(EdgefasError, match="camra"):
        get_recipe("tiny").with_overrides(augment="camra")


@pytest.mark.parametrize("augment, calls", [("camera", 4), ("basic", 0)])
def test_training_applies_the_capture_effects_only_when_asked(tmp_path, monkeypatch, augment, calls):
    pytest.importorskip("torch", reason="training needs the train extra")
    pytest.importorskip("timm", reason="training needs the train extra")
    import edgefas.train.baseline as baseline
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.recipes import get_recipe

    seen = []

    def spy(batch, rng, cfg=None):
        seen.append(len(batch))
        return capture_batch(batch, rng, cfg)

    monkeypatch.setattr(baseline, "capture_batch", spy)
    crops = np.stack([_face(i) for i in range(24)])
    live = np.arange(24) % 2 == 0
    train = baseline.TrainSet(crops, live, np.zeros(24, bool))
    devel = baseline.DevelSet(crops[:12], ~live[:12], np.where(live[:12], "bona_fide", "print"))
    recipe = get_recipe("tiny").with_overrides(augment=augment)
    best = baseline.train_baseline(recipe, train, devel, Contract(size=64), tmp_path, progress=False)
    assert (best / "model.safetensors").is_file()
    assert seen == [recipe.batch_size] * calls  # once per step (tiny: 4 steps), whole batch
    state = json.loads((best / "trainer_state.json").read_text())
    assert state["recipe"]["augment"] == augment  # recorded with the run (and its bundle)


def test_alignment_jitter_moves_the_face_within_its_ranges():
    from edgefas.train.camera_aug import alignment_jitter, jitter_batch

    img = _face(size=64)
    same = alignment_jitter(img, np.random.default_rng(0), 0.0, 0.0, subpixel=0.0)
    assert np.array_equal(same, img)   # no jitter: the crop itself
    # a bright dot at the centre stays within the scale/rotation/shift ranges of it
    dot = np.zeros((65, 65, 3), np.uint8)
    dot[12, 32] = 255                  # 20 px above the centre (32, 32)
    rng = np.random.default_rng(1)
    radii, angles = [], []
    for _ in range(40):
        out = alignment_jitter(dot, rng, 0.06, 5.0).astype(np.float32).mean(-1)
        ys, xs = np.mgrid[0:65, 0:65]
        cy, cx = (out * ys).sum() / out.sum(), (out * xs).sum() / out.sum()
        radii.append(np.hypot(cy - 32, cx - 32))
        angles.append(np.degrees(np.arctan2(cx - 32, 32 - cy)))
    # 20 px * (1 +- 0.06) +- 1 px shift; 5 degrees at 20 px is 1.75 px, plus the shift's share
    assert 20 * 0.94 - 1.5 <= min(radii) and max(radii) <= 20 * 1.06 + 1.5
    assert max(np.abs(angles)) <= 5.0 + np.degrees(1.5 / 18)
    assert np.std(radii) > 0.3 and np.std(angles) > 1.0   # it does move the face
    wide = np.zeros((40, 64, 3), np.uint8)   # not square: the output keeps H x W
    wide[20, 32] = 255
    out = alignment_jitter(wide, np.random.default_rng(2), 0.0, 0.0, subpixel=0.0)
    assert out.shape == wide.shape and np.array_equal(out, wide)
    batch = np.stack([img, img])
    a = jitter_batch(batch, np.random.default_rng(3), 0.06, 5.0)
    b = jitter_batch(batch, np.random.default_rng(3), 0.06, 5.0)
    assert a.dtype == np.uint8 and a.shape == batch.shape and np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])   # each crop its own draw


def test_recipe_and_flag_refuse_impossible_jitter(capsys):
    from edgefas.cli import main
    from edgefas.train.recipes import get_recipe

    with pytest.raises(EdgefasError, match="jitter_scale"):
        get_recipe("tiny").with_overrides(jitter_scale=0.7)
    with pytest.raises(EdgefasError, match="jitter_scale"):
        get_recipe("tiny").with_overrides(jitter_degrees=float("nan"))
    for bad in ("0.06", "-0.1,5", "0.06,50", "a,b"):
        with pytest.raises(SystemExit):
            main(["train", "--protocol", "P1", "--out", "x", "--jitter", bad])
        assert "SCALE" in capsys.readouterr().err


@pytest.mark.parametrize("spied, fields, values, calls", [
    ("jitter_batch", ("jitter_scale", "jitter_degrees"), (0.06, 5.0), 4),
    ("jitter_batch", ("jitter_scale", "jitter_degrees"), (0.0, 0.0), 0),
    ("light_batch", ("light_ev", "light_wb"), (1.5, 0.25), 4),
    ("light_batch", ("light_ev", "light_wb"), (0.0, 0.0), 0)])
def test_training_applies_a_crop_change_only_when_asked(tmp_path, monkeypatch, spied, fields,
                                                        values, calls):
    pytest.importorskip("torch", reason="training needs the train extra")
    pytest.importorskip("timm", reason="training needs the train extra")
    import edgefas.train.baseline as baseline
    import edgefas.train.camera_aug as camera_aug
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.recipes import get_recipe

    seen = []
    real = getattr(camera_aug, spied)

    def spy(batch, rng, a, b):
        seen.append((len(batch), a, b))
        return real(batch, rng, a, b)

    monkeypatch.setattr(baseline, spied, spy)
    crops = np.stack([_face(i) for i in range(24)])
    live = np.arange(24) % 2 == 0
    train = baseline.TrainSet(crops, live, np.zeros(24, bool))
    devel = baseline.DevelSet(crops[:12], ~live[:12], np.where(live[:12], "bona_fide", "print"))
    recipe = get_recipe("tiny").with_overrides(**dict(zip(fields, values)))
    best = baseline.train_baseline(recipe, train, devel, Contract(size=64), tmp_path, progress=False)
    assert seen == [(recipe.batch_size, *values)] * calls
    state = json.loads((best / "trainer_state.json").read_text())
    assert tuple(state["recipe"][f] for f in fields) == values


def test_light_change_scales_linear_light_and_casts_red_against_blue():
    from edgefas.train.camera_aug import light_batch, light_change, linear_gain_lut, relight

    lut = linear_gain_lut(1.0)
    assert np.array_equal(lut, np.arange(256))   # gain 1: every level kept
    assert linear_gain_lut(2.0)[255] == 255 and linear_gain_lut(0.25)[255] < 140   # clipped; -2 EV
    grey = np.full((8, 8, 3), 128, np.uint8)      # BGR
    warm = relight(grey, 1.2, 1.0, 0.8)
    assert warm[0, 0, 2] > 128 > warm[0, 0, 0] and warm[0, 0, 1] == 128
    img = _face(size=32)
    assert light_change(img, np.random.default_rng(0), 1.5, 0.25, p=0.0) is img   # not drawn
    rng = np.random.default_rng(1)
    means = np.array([light_change(img, rng, 1.5, 0.25, p=1.0).reshape(-1, 3).mean(0)
                      for _ in range(60)])
    base = img.reshape(-1, 3).mean(0)
    # brightness moves both ways, and the red/blue balance both ways
    assert (means.mean(1) < base.mean() - 5).any() and (means.mean(1) > base.mean() + 5).any()
    rb = means[:, 2] / np.maximum(means[:, 0], 1) - base[2] / max(base[0], 1)
    assert (rb > 0.05).any() and (rb < -0.05).any()
    a = light_batch(np.stack([img, img]), np.random.default_rng(3), 1.5, 0.25)
    b = light_batch(np.stack([img, img]), np.random.default_rng(3), 1.5, 0.25)
    assert a.dtype == np.uint8 and np.array_equal(a, b)


def test_recipe_and_flag_refuse_impossible_light(capsys):
    from edgefas.cli import main
    from edgefas.train.recipes import get_recipe

    with pytest.raises(EdgefasError, match="light_ev"):
        get_recipe("tiny").with_overrides(light_ev=5.0)
    with pytest.raises(EdgefasError, match="light_ev"):
        get_recipe("tiny").with_overrides(light_wb=1.0)
    for bad in ("1.5", "-1,0.2", "1,1.5", "a,b"):
        with pytest.raises(SystemExit):
            main(["train", "--protocol", "P1", "--out", "x", "--light", bad])
        assert "EV" in capsys.readouterr().err
