"""The training recipe end to end on the tiny config: train, resume, package, detect."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the train extra")
pytest.importorskip("timm", reason="training needs the train extra")

from edgefas.data.face_cache import CropSet  # noqa: E402
from edgefas.data.samples import Sample  # noqa: E402
from edgefas.runtime.calibration import apply_platt, fit_platt  # noqa: E402
from edgefas.runtime.face_stage import FacePolicy  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.baseline import DevelSet, TrainSet, augment, load_trained, train_baseline  # noqa: E402
from edgefas.train.checkpoint import latest_checkpoint  # noqa: E402
from edgefas.train.package import package_model  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402

SIZE = 64


def synthetic_crops(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth 'faces' (live) vs the same with a screen-like stripe pattern and colour cast."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    crops, live = [], []
    for i in range(n):
        base = 120 + 60 * np.sin(xx / 9 + rng.uniform(0, 6)) * np.cos(yy / 11)
        img = np.stack([base * 0.8, base * 0.9, base], -1) + rng.normal(0, 4, (SIZE, SIZE, 3))
        is_live = i % 2 == 0
        if not is_live:
            img += 25 * (np.sin(xx * 1.7) > 0)[..., None] + np.array([20, -10, -15])
        crops.append(np.clip(img, 0, 255).astype(np.uint8))
        live.append(is_live)
    return np.stack(crops), np.array(live)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    contract = Contract(size=SIZE)
    crops, live = synthetic_crops(48, 0)
    train = TrainSet(crops, live, np.zeros(len(live), bool))
    dcrops, dlive = synthetic_crops(24, 1)
    devel = DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print"))
    recipe = get_recipe("tiny")
    best = train_baseline(recipe, train, devel, contract, out, progress=False)
    return out, best, recipe, train, devel, contract


def test_tiny_training_writes_safetensors_checkpoints(tiny_run):
    out, best, recipe, *_ = tiny_run
    assert (best / "model.safetensors").is_file()
    assert latest_checkpoint(out).name == "epoch_002"  # 4 steps, eval every 2
    files = {p.suffix for p in out.rglob("*") if p.is_file()}
    assert files <= {".safetensors", ".json"}, files  # no pickles
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [2, 4]


def test_resume_continues_where_it_stopped(tiny_run):
    out, _, recipe, train, devel, contract = tiny_run
    longer = recipe.with_overrides(steps=6)
    train_baseline(longer, train, devel, contract, out, progress=False)
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [2, 4, 6]  # resumed at 4, not restarted
    # the cosine schedule of the 4-step run it continues (at its end, 0), not a new 6-step one
    # that would warm the learning rate up again; recorded beside the longer recipe
    state = json.loads((latest_checkpoint(out) / "trainer_state.json").read_text())
    assert state["recipe"]["steps"] == 6 and state["lr_schedule_steps"] == 4
    assert state["optimizer"]["param_groups"][0]["lr"] == 0.0


def test_resume_refuses_another_crop_geometry(tiny_run):
    from edgefas.errors import EdgefasError

    out, _, recipe, train, devel, contract = tiny_run
    other = Contract(size=SIZE, crop_scale=1.0)
    with pytest.raises(EdgefasError, match="another --out or --no-resume"):
        train_baseline(recipe.with_overrides(steps=8), train, devel, other, out, progress=False)


@pytest.mark.parametrize("change", [{"seed": 3}, {"augment": "camera"}, {"use_lfw": False}, {"lr": 0.5},
                                    {"arch": "mobilevit_xs"}, {"jitter_scale": 0.06}])
def test_resume_refuses_another_recipe_but_not_a_longer_run(tiny_run, change):
    from edgefas.errors import EdgefasError

    out, _, recipe, train, devel, contract = tiny_run
    with pytest.raises(EdgefasError, match=f"another recipe \\({next(iter(change))}"):
        train_baseline(recipe.with_overrides(steps=8, **change), train, devel, contract, out,
                       progress=False)


def test_resume_refuses_another_protocol(tmp_path, monkeypatch):
    from edgefas.errors import EdgefasError
    from edgefas.train import run as run_mod

    (tmp_path / "protocol.txt").write_text("P1\n")
    monkeypatch.setattr(run_mod, "face_stage_for", lambda contract: (None, "sha"))
    with pytest.raises(EdgefasError, match="holds a P1 run, not P2-print"):
        run_mod.run_training("P2-print", get_recipe("tiny"), tmp_path, roots=None)
    assert (tmp_path / "protocol.txt").read_text() == "P1\n"


def test_crop_scale_flag_is_checked(capsys):
    from edgefas.cli import main

    assert main(["train", "--out", "x", "--crop-scale", "5"]) == 1
    assert "--crop-scale 5 outside 0.8-3.0" in capsys.readouterr().err


def test_package_model_makes_a_working_bundle(tiny_run, tmp_path, astronaut_bgr):
    import edgefas

    out, best, recipe, train, devel, contract = tiny_run
    model, state = load_trained(best)
    samples = [Sample(f"d{i}", bool(a), str(s), "devel", "synthetic")
               for i, (a, s) in enumerate(zip(devel.is_attack, devel.species))]
    cs = CropSet(samples, devel.crops, np.array(["ok"] * len(samples)),
                 np.ones(len(samples), np.float32))
    bundle = package_model(model, state, cs, tmp_path / "bundle", name="tiny-test",
                           training={"data": ["synthetic"], "licence": ["none"]},
                           devel_split="synthetic devel", policy=FacePolicy())
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["parity"]["classifier.onnx"]["max_abs_diff"] <= 1e-4
    assert m["threshold"]["bona_fide"] == 12 and m["threshold"]["attack"] == 12
    det = edgefas.Detector.from_bundle(bundle)
    r = det(astronaut_bgr)
    assert r.live_score is not None and r.threshold == pytest.approx(m["threshold"]["value"])


def test_a_devel_set_with_two_bona_fide_sources_sets_the_threshold_for_the_worse(tiny_run, tmp_path):
    out, best, recipe, train, devel, contract = tiny_run
    model, state = load_trained(best)
    # the same devel crops, plus the live ones again darkened as a second "camera"
    extra = devel.crops[~devel.is_attack] // 3
    samples = ([Sample(f"d{i}", bool(a), str(s), "devel", "synthetic")
                for i, (a, s) in enumerate(zip(devel.is_attack, devel.species))]
               + [Sample(f"e{i}", False, "bona_fide", "devel", "lfw") for i in range(len(extra))])
    crops = np.concatenate([devel.crops, extra])
    cs = CropSet(samples, crops, np.array(["ok"] * len(samples)), np.ones(len(samples), np.float32))
    bundle = package_model(model, state, cs, tmp_path / "bundle", name="tiny-two-sources",
                           training={"data": ["synthetic"], "licence": ["none"]},
                           devel_split="synthetic devel", policy=FacePolicy())
    m = json.loads((bundle / "manifest.json").read_text())["threshold"]
    assert "worst bona fide source" in m["criterion"]
    assert set(m["bpcer_by_source"]) == {"lfw", "synthetic"}
    assert m["bona_fide"] == 24 and m["attack"] == 12
    # the threshold is the worst-source D-EER's on the calibrated scores
    from edgefas.metrics import eer
    from edgefas.train.baseline import predict_logits

    logits = predict_logits(model, crops, contract)
    live = np.array([not x.is_attack for x in samples])
    a, b = fit_platt(logits, live)
    scores = apply_platt(logits, a, b)
    src = np.array([x.dataset for x in samples])
    species = np.array([x.species for x in samples])
    assert m["value"] == pytest.approx(eer(scores, ~live, species, bona_fide_source=src).threshold)
    worst = max(r["value"] for r in m["bpcer_by_source"].values())
    assert worst == pytest.approx(eer(scores, ~live, species, bona_fide_source=src).bpcer.value)


def test_selection_on_a_devel_set_with_sources_runs(tmp_path):
    crops, live = synthetic_crops(24, 0)
    dcrops, dlive = synthetic_crops(12, 1)
    devel = DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print"),
                     np.where(np.arange(12) % 4 == 0, "lfw", "replay-attack"))
    best = train_baseline(get_recipe("tiny").with_overrides(steps=2),
                          TrainSet(crops, live, np.zeros(24, bool)), devel, Contract(size=SIZE),
                          tmp_path, progress=False)
    hist = json.loads((tmp_path / "history.json").read_text())
    assert best.is_dir() and 0.0 <= hist[0]["devel_deer"] <= 1.0


def test_augment_keeps_shape_and_range():
    crops, _ = synthetic_crops(4, 2)
    out = augment(crops, np.random.default_rng(0))
    assert out.shape == crops.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255


def test_platt_calibration_is_monotone_and_balanced():
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(2, 1, 200), rng.normal(-2, 1, 1000)])
    live = np.r_[np.ones(200, bool), np.zeros(1000, bool)]
    a, b = fit_platt(logits, live)
    assert a > 0
    p = apply_platt(logits, a, b)
    assert np.all(np.diff(p[np.argsort(logits)]) >= 0)
    # Balanced fit: the two symmetric classes meet near p = 0.5 at logit 0.
    assert apply_platt(np.array([0.0]), a, b)[0] == pytest.approx(0.5, abs=0.1)


def test_export_gate_refuses_a_mismatching_model(tmp_path):
    import torch

    from edgefas.errors import ExportError
    from edgefas.export.onnx_export import export_onnx

    class Noisy(torch.nn.Module):  # random output: can never match its own export
        def forward(self, x):
            return x.mean((1, 2, 3)) + torch.rand(x.shape[0])

    x = np.random.default_rng(0).normal(size=(8, 3, 16, 16)).astype(np.float32)
    with pytest.raises(ExportError, match="parity gate failed"):
        export_onnx(Noisy(), x, tmp_path / "m.onnx")
    assert not list(tmp_path.glob("*.onnx"))


def _tiny_sets() -> tuple[TrainSet, DevelSet]:
    crops, live = synthetic_crops(48, 0)
    dcrops, dlive = synthetic_crops(24, 1)
    return (TrainSet(crops, live, np.zeros(len(live), bool)),
            DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print")))


def _weights(folder) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_each_process_draws_its_own_batches_and_process_0_the_one_process_batches():
    from edgefas.train.baseline import _batch_indices
    from edgefas.train.seeding import step_entropy, step_rng

    train, _ = _tiny_sets()
    recipe = get_recipe("tiny")
    before = _batch_indices(train, recipe, np.random.default_rng([recipe.seed, 5]))   # the old draw
    assert np.array_equal(_batch_indices(train, recipe, step_rng(recipe.seed, 5, 0)), before)
    assert not np.array_equal(_batch_indices(train, recipe, step_rng(recipe.seed, 5, 1)), before)
    # the teachers' device batches: stream 1, as before for process 0, and apart from the host
    # stream of any process (numpy pads entropy with zeros: [s, t, 1] must not reappear)
    assert step_entropy(0, 5, 0, stream=1) == [0, 5, 1]
    states = {tuple(np.random.SeedSequence(step_entropy(0, 5, p, s)).generate_state(4))
              for p in range(3) for s in range(2)}
    assert len(states) == 6


def test_an_interrupted_and_resumed_run_ends_as_an_uninterrupted_one(tmp_path):
    import shutil

    train, devel = _tiny_sets()
    contract = Contract(size=SIZE)
    recipe = get_recipe("tiny")
    train_baseline(recipe, train, devel, contract, tmp_path, progress=False)
    whole = _weights(tmp_path / "epoch_002")
    # stopped after the first evaluation: the same command resumes from epoch_001. Dropout
    # draws from torch's RNG, which set_seed restarts: the checkpoint brings it back.
    shutil.rmtree(tmp_path / "epoch_002")
    train_baseline(recipe, train, devel, contract, tmp_path, progress=False)
    resumed = _weights(tmp_path / "epoch_002")
    for name, w in whole.items():
        assert np.array_equal(w.numpy(), resumed[name].numpy()), name


def test_no_resume_clears_the_earlier_runs_checkpoints(tmp_path):
    from edgefas.errors import EdgefasError

    train, devel = _tiny_sets()
    contract = Contract(size=SIZE)
    recipe = get_recipe("tiny")
    train_baseline(recipe, train, devel, contract, tmp_path, progress=False)       # epoch_001, 002
    train_baseline(recipe.with_overrides(steps=2, seed=1), train, devel, contract, tmp_path,
                   resume=False, progress=False)
    # the next plain call must continue the new run, not the old one's epoch_002
    assert latest_checkpoint(tmp_path).name == "epoch_001"
    state = json.loads((latest_checkpoint(tmp_path) / "trainer_state.json").read_text())
    assert state["recipe"]["seed"] == 1 and state["step"] == 2
    # the old run's best checkpoint and history go too (export would package the old model)
    from edgefas.train.checkpoint import clear_checkpoints

    assert (tmp_path / "best").is_dir() and (tmp_path / "history.json").is_file()
    clear_checkpoints(tmp_path, "model_config", ("best", "history.json"))
    assert not (tmp_path / "best").exists() and not (tmp_path / "history.json").exists()
    assert latest_checkpoint(tmp_path) is None
    # another kind of run's folder is not emptied by --no-resume
    foreign = tmp_path / "teacher_run" / "epoch_001"
    foreign.mkdir(parents=True)
    (foreign / "trainer_state.json").write_text(json.dumps({"step": 1, "unet_config": {}}))
    with pytest.raises(EdgefasError, match="another kind of run"):
        train_baseline(recipe, train, devel, contract, tmp_path / "teacher_run", resume=False,
                       progress=False)
    assert foreign.is_dir()


def test_checkpoints_are_ordered_by_round_not_by_name(tmp_path):
    from edgefas.distill.train_teacher import _prune

    for r in (998, 999, 1000):
        (tmp_path / f"epoch_{r:03d}").mkdir()
        (tmp_path / f"epoch_{r:03d}" / "trainer_state.json").write_text("{}")
    assert latest_checkpoint(tmp_path).name == "epoch_1000"
    _prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.glob("epoch_*")) == ["epoch_1000", "epoch_999"]


def test_resume_refuses_a_foreign_folder_before_loading_or_marking_it(tmp_path, monkeypatch):
    from edgefas.errors import EdgefasError
    from edgefas.train import run as run_mod

    train, devel = _tiny_sets()
    ckpt = tmp_path / "epoch_001"      # what a teacher run leaves: no model_config, other weights
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text(json.dumps({"step": 2, "recipe": {"name": "tiny"},
                                                          "unet_config": {}}))
    with pytest.raises(EdgefasError, match="not a checkpoint of edgefas train"):
        train_baseline(get_recipe("tiny"), train, devel, Contract(size=SIZE), tmp_path, progress=False)
    monkeypatch.setattr(run_mod, "face_stage_for", lambda contract: pytest.fail("cropping started"))
    with pytest.raises(EdgefasError, match="not a checkpoint of edgefas train"):
        run_mod.run_training("P1", get_recipe("tiny"), tmp_path, roots=None)
    assert not (tmp_path / "protocol.txt").exists()


def test_the_manifest_records_a_schedule_other_than_the_recipes_steps():
    from edgefas.train.package import _schedule_record

    recipe = get_recipe("tiny").to_dict()
    assert _schedule_record({"recipe": recipe}) == {} and _schedule_record({"recipe": {}}) == {}
    assert _schedule_record({"recipe": recipe, "lr_schedule_steps": 4}) == {}
    longer = {"recipe": {**recipe, "steps": 6}, "lr_schedule_steps": 4}
    assert _schedule_record(longer) == {"lr_schedule_steps": 4}


def test_build_sets_with_lfw_devel_keeps_the_bucket_out_of_training_and_in_devel():
    from edgefas.data.lfw import identity_split, is_devel_identity
    from edgefas.train.run import build_sets

    names = [f"P_{i:03d}" for i in range(300)]
    bucket = [n for n in names if is_devel_identity(n)]
    train_ids = [n for n in names if identity_split(n) == "train" and not is_devel_identity(n)]
    held = [n for n in names if identity_split(n) == "heldout"]
    assert bucket and train_ids and held

    def cropset(samples):
        n = len(samples)
        crops = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
        return CropSet(samples, crops, np.array(["ok"] * n), np.ones(n, np.float32))

    replay = [Sample(f"r{i}", i % 2 == 1, "print" if i % 2 else "bona_fide", split, "replay-attack",
                     subject=f"c{i}", video=f"v{i}")
              for split in ("train", "devel") for i in range(6)]
    lfw = [Sample(f"{n}.jpg", False, "bona_fide", identity_split(n), "lfw", subject=n)
           for n in bucket + train_ids + held]

    class Store:
        def replay(self, frames):
            return cropset(replay)

        def lfw(self):
            return cropset(lfw)

    recipe = get_recipe("tiny")
    tr0, dv0, all0 = build_sets("P1", recipe, Store())
    tr1, dv1, all1 = build_sets("P1", recipe.with_overrides(lfw_devel=True), Store())
    assert dv0.source is None and int(tr0.is_extra.sum()) == len(bucket) + len(train_ids)
    assert int(tr1.is_extra.sum()) == len(train_ids)          # the bucket left training
    assert (dv1.source == "lfw").sum() == len(bucket)          # and joined devel, as bona fide
    assert not dv1.is_attack[dv1.source == "lfw"].any()
    assert {s.subject for s in all1.samples if s.dataset == "lfw"} == set(bucket)
    assert len(all1) == len(all0) + len(bucket)


def test_a_run_saved_before_lfw_devel_is_not_resumed_with_it(tmp_path):
    # such a run trained on the LFW devel bucket: resuming it under --lfw-devel would select on
    # faces it was trained on (and label the bundle "less the devel bucket")
    from edgefas.errors import EdgefasError
    from edgefas.train.baseline import _check_resume

    recipe = get_recipe("tiny")
    old = recipe.to_dict()
    old.pop("lfw_devel")
    contract = Contract(size=SIZE)
    saved = {"model_config": {}, "recipe": old, "contract": contract.to_dict()}
    _check_resume(tmp_path, saved, recipe, contract)   # as before: resumes
    with pytest.raises(EdgefasError, match="lfw_devel False -> True"):
        _check_resume(tmp_path, saved, recipe.with_overrides(lfw_devel=True), contract)
