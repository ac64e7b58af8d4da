"""Branches of a run (train --branch-from) and their weight average (edgefas soup)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the train extra")
pytest.importorskip("timm", reason="training needs the train extra")

from safetensors.torch import load_file  # noqa: E402

from edgefas.cli import main  # noqa: E402
from edgefas.errors import EdgefasError  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.baseline import load_trained, train_baseline  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402
from edgefas.train.soup import average_weights, check_members, make_soup  # noqa: E402

from .test_train import SIZE, _tiny_sets  # noqa: E402


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A tiny trunk run (4 steps, checkpoints at 2 and 4), two branches of it at step 2, and
    an unrelated run of another seed from scratch."""
    root = tmp_path_factory.mktemp("family")
    train, devel = _tiny_sets()
    contract = Contract(size=SIZE)
    recipe = get_recipe("tiny")
    runs = {"trunk": root / "trunk"}
    train_baseline(recipe, train, devel, contract, runs["trunk"], progress=False)
    for seed in (11, 12):
        runs[f"b{seed}"] = root / f"b{seed}"
        train_baseline(recipe.with_overrides(seed=seed), train, devel, contract, runs[f"b{seed}"],
                       progress=False, branch_from=runs["trunk"] / "epoch_001")
    runs["apart"] = root / "apart"
    train_baseline(recipe.with_overrides(seed=13), train, devel, contract, runs["apart"], progress=False)
    runs["other_lr"] = root / "other_lr"
    train_baseline(recipe.with_overrides(lr=0.5), train, devel, contract, runs["other_lr"], progress=False)
    for r in runs.values():
        (r / "protocol.txt").write_text("P1\n")
    return root, runs, recipe, train, devel, contract


def test_a_branch_starts_from_the_trunk_checkpoint_and_goes_its_own_way(family):
    _, runs, *_ = family
    state = json.loads((runs["b11"] / "epoch_002" / "trainer_state.json").read_text())
    assert state["branched_from"]["step"] == 2 and state["branched_from"]["seed"] == 0
    assert state["recipe"]["seed"] == 11 and state["step"] == 4
    # the trunk's first evaluation is kept in the history, and no epoch_001 of its own is written
    assert [h["step"] for h in state["history"]] == [2, 4]
    assert not (runs["b11"] / "epoch_001").exists() and (runs["b11"] / "best").is_dir()
    trunk, b11, b12 = (load_file(runs[k] / "epoch_002" / "ema.safetensors") for k in ("trunk", "b11", "b12"))
    name = next(k for k, v in trunk.items() if v.is_floating_point() and v.ndim > 1)
    assert not np.array_equal(trunk[name].numpy(), b11[name].numpy())
    assert not np.array_equal(b11[name].numpy(), b12[name].numpy())


def test_a_branch_refuses_the_trunks_seed_another_recipe_or_a_finished_checkpoint(family, tmp_path):
    _, runs, recipe, train, devel, contract = family
    with pytest.raises(EdgefasError, match="another --seed"):
        train_baseline(recipe, train, devel, contract, tmp_path / "a", progress=False,
                       branch_from=runs["trunk"] / "epoch_001")
    with pytest.raises(EdgefasError, match="another recipe"):
        train_baseline(recipe.with_overrides(seed=5, lr=0.5), train, devel, contract, tmp_path / "b",
                       progress=False, branch_from=runs["trunk"] / "epoch_001")
    with pytest.raises(EdgefasError, match="the recipe ends at 4"):
        train_baseline(recipe.with_overrides(seed=5), train, devel, contract, tmp_path / "c",
                       progress=False, branch_from=runs["trunk"] / "epoch_002")
    with pytest.raises(EdgefasError, match="not a checkpoint folder"):
        train_baseline(recipe.with_overrides(seed=5), train, devel, contract, tmp_path / "d",
                       progress=False, branch_from=tmp_path)


def test_the_soup_is_the_mean_of_the_members_final_ema_weights(family, tmp_path):
    _, runs, *_ = family
    members = [runs["trunk"], runs["b11"], runs["b12"]]
    best = make_soup(members, tmp_path / "soup")
    soup = load_file(best / "model.safetensors")
    parts = [load_file(r / "epoch_002" / "ema.safetensors") for r in members]
    for k, v in soup.items():
        if v.is_floating_point():
            want = sum(p[k].double() for p in parts) / 3
            assert np.allclose(v.double().numpy(), want.numpy(), atol=1e-6), k
        else:
            assert np.array_equal(v.numpy(), parts[0][k].numpy()), k
    state = json.loads((best / "trainer_state.json").read_text())
    assert [m["seed"] for m in state["soup"]["members"]] == [0, 11, 12]
    assert [m["branched_at_step"] for m in state["soup"]["members"]] == [None, 2, 2]
    assert (tmp_path / "soup" / "protocol.txt").read_text().strip() == "P1"
    model, _ = load_trained(best)   # loads as any run's best
    assert sum(p.numel() for p in model.parameters()) > 0


def test_the_soup_refuses_runs_that_do_not_share_a_trunk_or_differ(family, tmp_path):
    _, runs, *_ = family
    with pytest.raises(EdgefasError, match="do not share a trunk"):
        check_members([runs["trunk"], runs["apart"]])
    with pytest.raises(EdgefasError, match=r"another recipe .*\(lr 0\.001 -> 0\.5\): only the seed"):
        check_members([runs["trunk"], runs["other_lr"]])
    with pytest.raises(EdgefasError, match="at least two"):
        check_members([runs["trunk"]])
    with pytest.raises(EdgefasError, match="given twice"):
        check_members([runs["b11"], runs["b11"]])
    with pytest.raises(EdgefasError, match="no checkpoint"):
        check_members([runs["trunk"], tmp_path])
    with pytest.raises(EdgefasError, match="other tensors"):
        import torch
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(2)}, tmp_path / "a.safetensors")
        save_file({"w": torch.zeros(3)}, tmp_path / "b.safetensors")
        average_weights([tmp_path / "a.safetensors", tmp_path / "b.safetensors"])


def test_soup_command_writes_the_soup_or_says_why_not(family, tmp_path, capsys, monkeypatch):
    _, runs, *_ = family
    assert main(["soup", str(runs["trunk"]), str(runs["apart"]), "--out", str(tmp_path / "s")]) == 1
    assert "do not share a trunk" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert main(["soup", str(runs["trunk"]), str(runs["b11"]), "--out", str(tmp_path / "s")]) == 0
    assert "the average of 2 members (seeds 0, 11)" in capsys.readouterr().out
    assert (tmp_path / "s" / "best" / "model.safetensors").is_file()


def test_the_manifest_names_the_soup_and_the_branch_point(family, tmp_path):
    from edgefas.data.face_cache import CropSet
    from edgefas.data.samples import Sample
    from edgefas.runtime.face_stage import FacePolicy
    from edgefas.train.package import package_model

    _, runs, _, _, devel, _ = family
    best = make_soup([runs["trunk"], runs["b11"], runs["b12"]], tmp_path / "soup")
    model, state = load_trained(best)
    samples = [Sample(f"d{i}", bool(a), str(s), "devel", "synthetic")
               for i, (a, s) in enumerate(zip(devel.is_attack, devel.species))]
    cs = CropSet(samples, devel.crops, np.array(["ok"] * len(samples)), np.ones(len(samples), np.float32))
    bundle = package_model(model, state, cs, tmp_path / "bundle", name="soup-test",
                           training={"data": ["synthetic"], "licence": ["none"]},
                           devel_split="synthetic devel", policy=FacePolicy())
    m = json.loads((bundle / "manifest.json").read_text())
    assert len(m["training"]["soup"]["members"]) == 3
    _, bstate = load_trained(runs["b11"] / "best")
    bundle2 = package_model(*load_trained(runs["b11"] / "best"), cs, tmp_path / "bundle2",
                            name="branch-test", training={"data": ["synthetic"], "licence": ["none"]},
                            devel_split="synthetic devel", policy=FacePolicy())
    m2 = json.loads((bundle2 / "manifest.json").read_text())
    assert m2["training"]["branched_from"]["step"] == 2 == bstate["branched_from"]["step"]
