"""Synthetic print and screen attacks: what each adds, reproducible draws, and training with a
share of them (labels stay attack, live crops are never touched)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgefas.errors import EdgefasError
from edgefas.train.synth_attacks import synth_attack, synth_print, synth_screen

from .test_camera_aug import _face, _hf_energy


def _spectrum_peak(img: np.ndarray) -> float:
    """Share of the grey image's (mean-removed) energy in its strongest non-DC frequency: a
    periodic pattern (dots, moire, rows) puts energy in a few peaks."""
    g = img.astype(np.float32).mean(-1)
    p = np.abs(np.fft.fft2(g - g.mean())) ** 2
    p[0, 0] = 0
    return float(p.max() / p.sum())


def _plain(size: int = 128) -> np.ndarray:
    return np.full((size, size, 3), 140, np.uint8)


def test_a_print_compresses_the_range_and_adds_a_dot_screen():
    img = _face(size=128)
    img[:16] = 0   # a black band: ink on paper is never that dark
    out = synth_print(img, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.uint8
    before, after = img.astype(np.float32).mean(-1).ravel(), out.astype(np.float32).mean(-1).ravel()
    assert np.polyfit(before, after, 1)[0] < 0.95                  # contrast compressed
    assert out[:16].mean() > 5                                      # blacks lifted: paper reflects
    flat = synth_print(_plain(), np.random.default_rng(1))
    assert flat.std() > 1.0 and _spectrum_peak(flat) > 0.05   # a flat grey gets dots and texture


def test_a_screen_adds_a_periodic_pattern_and_a_cool_cast():
    rng = np.random.default_rng(2)
    outs = [synth_screen(_plain(), rng) for _ in range(8)]
    assert all(o.shape == (128, 128, 3) and o.dtype == np.uint8 for o in outs)
    assert np.mean([_spectrum_peak(o) for o in outs]) > 0.05
    b, _, r = np.mean([o.reshape(-1, 3).mean(0) for o in outs], axis=0)
    assert b > r   # BGR: bluer than red on a grey input


def test_draws_are_reproducible_and_vary():
    img = _face(size=64)
    a = synth_attack(img, np.random.default_rng(5))
    assert np.array_equal(a, synth_attack(img, np.random.default_rng(5)))
    assert not np.array_equal(a, synth_attack(img, np.random.default_rng(6)))
    assert not np.array_equal(a, img)


def test_the_recipe_checks_the_share():
    pytest.importorskip("torch", reason="recipes live in the train extra")
    from edgefas.train.recipes import get_recipe

    assert get_recipe("cpu").synth_attacks == 0.0   # the shipped recipes are unchanged
    with pytest.raises(EdgefasError, match="synth_attacks"):
        get_recipe("tiny").with_overrides(synth_attacks=1.5)
    with pytest.raises(EdgefasError, match="synth_live_tone"):
        get_recipe("tiny").with_overrides(synth_live_tone=-0.1)


def test_only_the_asked_share_of_attack_slots_is_replaced_by_synthetic_ones():
    pytest.importorskip("torch", reason="training needs the train extra")
    from edgefas.train.baseline import TrainSet, _with_synth_attacks

    crops = np.stack([_face(i) for i in range(20)])
    live = np.arange(20) < 8
    train = TrainSet(crops, live, np.zeros(20, bool))
    idx = np.array([0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15])    # 4 live, 8 attack
    out = _with_synth_attacks(crops[idx], idx, train, 0.25, np.random.default_rng(0))
    changed = (out != crops[idx]).any(axis=(1, 2, 3))
    assert changed.sum() == 2 and not changed[:4].any()        # 25 % of 8 attacks, no live
    assert _with_synth_attacks(crops[idx], idx, train, 0.0, np.random.default_rng(0)) is not None


def test_training_with_synthetic_attacks_runs_and_records_the_share(tmp_path):
    pytest.importorskip("torch", reason="training needs the train extra")
    pytest.importorskip("timm", reason="training needs the train extra")
    import edgefas.train.baseline as baseline
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.recipes import get_recipe

    crops = np.stack([_face(i) for i in range(24)])
    live = np.arange(24) % 2 == 0
    train = baseline.TrainSet(crops, live, np.zeros(24, bool))
    devel = baseline.DevelSet(crops[:12], ~live[:12], np.where(live[:12], "bona_fide", "print"))
    recipe = get_recipe("tiny").with_overrides(synth_attacks=0.5)
    best = baseline.train_baseline(recipe, train, devel, Contract(size=64), tmp_path, progress=False)
    state = json.loads((best / "trainer_state.json").read_text())
    assert state["recipe"]["synth_attacks"] == 0.5
    # a run saved before the field existed resumes as a run without synthetic attacks
    plain = get_recipe("tiny")
    saved = {**state, "recipe": {k: v for k, v in state["recipe"].items() if k != "synth_attacks"}}
    baseline._check_resume(best, saved, plain, Contract(size=64))
    with pytest.raises(EdgefasError, match="synth_attacks"):   # it trained without them
        baseline._check_resume(best, saved, recipe, Contract(size=64))
    with pytest.raises(EdgefasError, match="synth_attacks"):
        baseline._check_resume(best, state, plain, Contract(size=64))


def test_live_tone_keeps_the_medium_s_tone_but_not_its_texture():
    pytest.importorskip("torch", reason="training needs the train extra")
    from edgefas.train.baseline import TrainSet, _with_live_tone

    flat = _plain()
    for seed in range(6):   # prints and screens
        toned = synth_attack(flat, np.random.default_rng(seed), texture=False)
        textured = synth_attack(flat, np.random.default_rng(seed), texture=True)
        assert not np.array_equal(toned, flat)                          # tone changed
        assert _hf_energy(textured) > 2 * _hf_energy(toned) + 0.05      # dots/rows/paper gone
    crops = np.stack([_face(i) for i in range(12)])
    live = np.arange(12) < 8
    train = TrainSet(crops, live, np.zeros(12, bool))
    idx = np.arange(12)
    out = _with_live_tone(crops, idx, train, 0.5, np.random.default_rng(0))
    changed = (out != crops).any(axis=(1, 2, 3))
    assert changed.sum() == 4 and not changed[8:].any()      # half of the 8 live, no attack


def test_without_texture_the_draws_are_those_of_a_textured_attack():
    """texture=False must consume exactly the random numbers texture=True does: the live-tone
    and synthetic-attack draws share one generator per step, so a different count would shift
    every later draw of the batch (camera augmentation, flips, shifts) with the option."""
    img = _face(size=64)
    for seed in range(40):   # prints and screens, with and without glare
        with_tex, without = np.random.default_rng(seed), np.random.default_rng(seed)
        synth_attack(img, with_tex, texture=True)
        synth_attack(img, without, texture=False)
        assert with_tex.bit_generator.state == without.bit_generator.state, seed


def test_a_run_saved_before_the_synthetic_fields_resumes_only_without_them():
    """PREDATED_FIELDS: a checkpoint whose recipe lacks synth_attacks / synth_live_tone trained
    without them; resuming it with either must be refused (changed_settings alone skips fields
    only one side has)."""
    pytest.importorskip("torch", reason="training needs the train extra")
    import edgefas.train.baseline as baseline
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.recipes import get_recipe

    plain = get_recipe("tiny")
    old = {k: v for k, v in plain.to_dict().items() if k not in ("synth_attacks", "synth_live_tone")}
    saved = {"model_config": {}, "recipe": old, "contract": Contract(size=64).to_dict()}
    baseline._check_resume("run/epoch_001", saved, plain, Contract(size=64))   # same recipe: fine
    for field in ("synth_attacks", "synth_live_tone"):
        with pytest.raises(EdgefasError, match=field):
            baseline._check_resume("run/epoch_001", saved, plain.with_overrides(**{field: 0.25}),
                                   Contract(size=64))


def test_live_tone_goes_to_the_first_live_slots_so_replay_live_before_lfw():
    """_with_live_tone tones the batch's first k live slots; _batch_indices puts Replay-Attack's
    live faces before LFW's, so at the cpu recipe's batch (18 Replay + 6 LFW live slots) a share
    of 0.25 (6 slots) never tones an LFW face. Pinned: the S2 run (docs/ablation_synth_attacks)
    trained this way, and its recipe field must keep meaning what it did."""
    pytest.importorskip("torch", reason="training needs the train extra")
    from edgefas.train.baseline import TrainSet, _batch_indices, _with_live_tone
    from edgefas.train.recipes import get_recipe

    n_replay_live, n_attack, n_lfw = 20, 20, 60
    n = n_replay_live + n_attack + n_lfw
    crops = np.stack([_face(i % 7, size=32) for i in range(n)])
    live = np.r_[np.ones(n_replay_live, bool), np.zeros(n_attack, bool), np.ones(n_lfw, bool)]
    extra = np.r_[np.zeros(n_replay_live + n_attack, bool), np.ones(n_lfw, bool)]
    train = TrainSet(crops, live, extra)
    recipe = get_recipe("cpu").with_overrides(synth_live_tone=0.25)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        idx = _batch_indices(train, recipe, rng)
        out = _with_live_tone(crops[idx], idx, train, recipe.synth_live_tone, rng)
        toned = (out != crops[idx]).any(axis=(1, 2, 3))
        assert toned.sum() == 6
        assert not (toned & extra[idx]).any() and not (toned & ~live[idx]).any()


def test_live_tone_on_any_slot_reaches_every_source():
    pytest.importorskip("torch", reason="training needs the train extra")
    from edgefas.train.baseline import TrainSet, _with_live_tone

    crops = np.stack([_face(i) for i in range(16)])
    live = np.arange(16) < 12           # slots 0-8 "Replay" live, 9-11 "LFW" live, 12-15 attacks
    train = TrainSet(crops, live, np.arange(16) >= 9)
    idx = np.arange(16)
    seen = np.zeros(16, bool)
    for seed in range(20):
        out = _with_live_tone(crops, idx, train, 0.25, np.random.default_rng(seed), any_slot=True)
        changed = (out != crops).any(axis=(1, 2, 3))
        assert changed.sum() == 3 and not changed[12:].any()   # 25 % of 12 live, no attack
        seen |= changed
    assert seen[9:12].any() and seen[:9].any()                  # LFW's and Replay's both toned


def test_the_any_slot_flag_needs_a_share(capsys):
    from edgefas.cli import main

    code = main(["train", "--protocol", "P1", "--recipe", "tiny", "--out", "/tmp/never",
                 "--synth-live-tone-any"])
    assert code != 0 and "--synth-live-tone P" in capsys.readouterr().err
