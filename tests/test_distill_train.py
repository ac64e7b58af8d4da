"""Teacher training on tiny recipes: safetensors only, resume, teacher folders, and the import rule."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the teachers need the train extra")
pytest.importorskip("diffusers", reason="the teachers need the train extra")
pytest.importorskip("accelerate", reason="the teachers need the train extra")

from edgefas.distill.agfas import defake_agfas  # noqa: E402
from edgefas.distill.ddm import despoof_ddm  # noqa: E402
from edgefas.distill.errors import TeacherConfigError  # noqa: E402
from edgefas.distill.recipes import RECIPES, DiffusionRecipe, get_recipe  # noqa: E402
from edgefas.distill.train_teacher import (  # noqa: E402
    load_despoof_net,
    load_diffusion_teacher,
    train_despoof_net,
    train_diffusion,
)
from edgefas.runtime.preprocess import Contract, to_tensor  # noqa: E402
from edgefas.train.checkpoint import latest_checkpoint  # noqa: E402

PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin"}


def _crops(n: int = 16, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8), np.arange(n) % 2 == 0


def _no_pickles(run_dir) -> None:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert files and not [p for p in files if p.suffix in PICKLE_SUFFIXES], files
    assert {p.suffix for p in files} <= {".safetensors", ".json"}


def _state(run_dir) -> dict:
    return json.loads((latest_checkpoint(run_dir) / "trainer_state.json").read_text())


def test_every_kind_has_tiny_cpu_gpu_presets():
    for kind, table in RECIPES.items():
        extra = {"gpu-large"} if kind in ("ddm", "agfas") else set()
        assert set(table) == {"tiny", "cpu", "gpu"} | extra, kind
    assert get_recipe("agfas", "cpu").kind == "agfas" and get_recipe("ddm", "cpu").t_max == 650
    with pytest.raises(TeacherConfigError, match="Did you mean 'ddm'"):
        get_recipe("dm", "tiny")
    with pytest.raises(TeacherConfigError, match="t_max"):
        DiffusionRecipe("bad", t_max=0)
    with pytest.raises(TeacherConfigError, match="Did you mean 'bf16'"):
        DiffusionRecipe("bad", mixed_precision="bf61")


def test_train_diffusion_writes_safetensors_resumes_and_runs_as_a_teacher(tmp_path):
    crops, _ = _crops()
    recipe = get_recipe("ddm", "tiny").with_overrides(steps=2)
    teacher = train_diffusion(recipe, crops, tmp_path, progress=False)
    assert _state(tmp_path)["step"] == 2
    more = train_diffusion(recipe.with_overrides(steps=4), crops, tmp_path, progress=False)
    state = _state(tmp_path)
    assert state["step"] == 4 and [h["step"] for h in state["history"]] == [2, 4]
    assert latest_checkpoint(tmp_path).name == "epoch_002"
    with pytest.raises(TeacherConfigError, match="another network"):
        train_diffusion(recipe.with_overrides(unet="cpu"), crops, tmp_path, progress=False)
    _no_pickles(tmp_path)
    assert more == teacher and (teacher / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_diffusion_teacher(teacher)
    assert loaded.kind == "ddm" and loaded.info["step"] == 4 and loaded.condition is None
    x = torch.from_numpy(to_tensor(crops[:2], Contract(size=32)))
    r = despoof_ddm(x, loaded.unet, loaded.unet, loaded.schedule, t0=20, steps=2)
    assert r.noise.shape == x.shape and torch.isfinite(r.noise).all()


def test_time_budget_stops_with_a_resumable_partial_teacher(tmp_path):
    crops, _ = _crops()
    recipe = get_recipe("agfas", "tiny")
    partial = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "a", progress=False,
                                                     time_budget_s=0))
    assert partial.info["step"] == 1 and partial.info["complete"] is False
    assert _state(tmp_path / "a")["step"] == 1
    done = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "a", progress=False))
    assert done.info["step"] == recipe.steps and done.info["complete"] is True
    # Batches are drawn from (seed, step): a run cut by its budget ends where an uncut one does.
    whole = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "b", progress=False))
    for (name, pa), pb in zip(done.unet.state_dict().items(), whole.unet.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name


def test_region_is_cut_from_whole_crops_or_taken_from_a_pack_as_is(tmp_path):
    crops, _ = _crops(size=64)
    recipe = get_recipe("agfas", "tiny").with_overrides(steps=1, patch_size=None, region=0.5)
    whole = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "a", progress=False))
    packed = load_diffusion_teacher(train_diffusion(recipe, np.ascontiguousarray(crops[:, 16:48, 16:48]),
                                                    tmp_path / "b", progress=False, crops_region=0.5))
    assert whole.info["trained_on"]["side"] == packed.info["trained_on"]["side"] == 32
    for (name, pa), pb in zip(whole.unet.state_dict().items(), packed.unet.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    with pytest.raises(TeacherConfigError, match="only its central 0.25"):
        train_diffusion(recipe, crops, tmp_path / "c", progress=False, crops_region=0.25)
    with pytest.raises(TeacherConfigError, match="region"):
        DiffusionRecipe("bad", region=0)


def test_train_diffusion_resume_is_the_same_as_an_uninterrupted_run(tmp_path):
    crops, _ = _crops()
    recipe = get_recipe("ddm", "tiny")
    train_diffusion(recipe.with_overrides(steps=2), crops, tmp_path / "a", progress=False)
    a = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "a", progress=False))
    b = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "b", progress=False))
    for (name, pa), pb in zip(a.unet.state_dict().items(), b.unet.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name


@pytest.mark.parametrize("patch", [16, None])
def test_batches_drawn_on_the_device_are_the_contracts_patches_and_resume_alike(tmp_path, patch):
    # the GPU path (batches_on_device), run here on the CPU: windows of the normalised crops,
    # the same batch for the same step, and a resumed run equal to an uninterrupted one
    from edgefas.distill.train_teacher import _DeviceBatches

    crops, _ = _crops()
    contract = Contract(size=32)
    side = patch or 32
    draw = _DeviceBatches(crops, contract, torch.device("cpu"), patch=side, hflip=True, t_max=650, seed=0)
    x0, eps, t = draw(5, 6)
    assert x0.shape == eps.shape == (6, 3, side, side) and t.shape == (6,) and int(t.max()) < 650
    assert torch.equal(x0, draw(5, 6)[0]) and not torch.equal(x0, draw(6, 6)[0])
    full = torch.from_numpy(to_tensor(crops, contract))
    windows = full.unfold(2, side, 1).unfold(3, side, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 3, side, side)
    for face in x0:
        assert any(torch.equal(face, w) or torch.equal(face.flip(-1), w) for w in windows)
    recipe = get_recipe("agfas", "tiny").with_overrides(condition="lowpass", patch_size=patch)
    kw = {"progress": False, "batches_on_device": True}
    train_diffusion(recipe.with_overrides(steps=2), crops, tmp_path / "a", **kw)
    a = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "a", **kw))
    b = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path / "b", **kw))
    for (name, pa), pb in zip(a.unet.state_dict().items(), b.unet.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name


def test_eps_s_as_a_fine_tune_of_eps_g_and_checkpoint_pruning(tmp_path):
    crops, live = _crops()
    recipe = get_recipe("ddm", "tiny").with_overrides(steps=2)
    eps_g = train_diffusion(recipe, crops[live], tmp_path / "eps_g", progress=False)
    fresh = load_diffusion_teacher(train_diffusion(recipe.with_overrides(steps=6), crops, tmp_path / "fresh",
                                                   progress=False))
    tuned = load_diffusion_teacher(train_diffusion(recipe.with_overrides(steps=6), crops, tmp_path / "eps_s",
                                                   init_from=eps_g, progress=False))
    assert tuned.info["init_from"] == str(eps_g) and fresh.info["init_from"] is None
    assert not torch.allclose(tuned.unet.conv_out.weight, fresh.unet.conv_out.weight)
    assert sorted(p.name for p in (tmp_path / "eps_s").glob("epoch_*")) == ["epoch_002", "epoch_003"]
    with pytest.raises(TeacherConfigError, match="different UNet"):
        train_diffusion(recipe.with_overrides(unet="cpu"), crops, tmp_path / "x", init_from=eps_g,
                        progress=False)


def test_train_agfas_with_the_structure_condition(tmp_path):
    crops, live = _crops()
    recipe = get_recipe("agfas", "tiny").with_overrides(steps=2, condition="lowpass", condition_sigma=1.0)
    teacher = load_diffusion_teacher(train_diffusion(recipe, crops[live], tmp_path, progress=False))
    assert teacher.unet.config.in_channels == 6 and teacher.condition.sigma == 1.0
    x = torch.from_numpy(to_tensor(crops[:2], Contract(size=32)))
    r = defake_agfas(x, teacher.unet, teacher.schedule, t0=20, steps=2, condition=teacher.condition)
    assert r.cue.shape == x.shape and r.nfe == 2
    _no_pickles(tmp_path)


def test_camera_augmentation_of_the_live_prior_changes_training_resumes_alike_and_is_recorded(tmp_path):
    crops, live = _crops()
    recipe = get_recipe("agfas", "tiny").with_overrides(condition="lowpass", augment="camera")
    train_diffusion(recipe.with_overrides(steps=2), crops[live], tmp_path / "a", progress=False)
    a = load_diffusion_teacher(train_diffusion(recipe, crops[live], tmp_path / "a", progress=False))
    b = load_diffusion_teacher(train_diffusion(recipe, crops[live], tmp_path / "b", progress=False))
    plain = load_diffusion_teacher(train_diffusion(recipe.with_overrides(augment="none"), crops[live],
                                                   tmp_path / "plain", progress=False))
    assert a.info["recipe"]["augment"] == "camera" and plain.info["recipe"]["augment"] == "none"
    for (name, pa), pb in zip(a.unet.state_dict().items(), b.unet.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    # the same seed without the capture pipeline trains on other pixels, so other weights
    assert any(not torch.allclose(pa, pp) for pa, pp in zip(a.unet.parameters(), plain.unet.parameters()))
    with pytest.raises(TeacherConfigError, match="augment 'camera' -> 'none'"):
        train_diffusion(recipe.with_overrides(augment="none", steps=6), crops[live], tmp_path / "a",
                        progress=False)
    with pytest.raises(TeacherConfigError, match="host"):
        train_diffusion(recipe, crops[live], tmp_path / "c", progress=False, batches_on_device=True)
    with pytest.raises(TeacherConfigError, match="camera"):
        get_recipe("agfas", "tiny").with_overrides(augment="cameras")


def test_resuming_a_teacher_on_other_faces_or_another_recipe_is_refused(tmp_path):
    crops, live = _crops()
    recipe = get_recipe("agfas", "tiny")
    data = {"model": "agfas", "protocol": "P1", "faces": "live", "with_lfw": False, "max_lfw": None}
    train_diffusion(recipe.with_overrides(steps=2), crops[live], tmp_path, progress=False, data=data)
    with pytest.raises(TeacherConfigError, match="protocol 'P1' -> 'P2-print'"):
        train_diffusion(recipe, crops[live], tmp_path, progress=False,
                        data={**data, "protocol": "P2-print"})
    with pytest.raises(TeacherConfigError, match="lr"):
        train_diffusion(recipe.with_overrides(lr=0.5), crops[live], tmp_path, progress=False, data=data)
    # a longer run of the same recipe on the same faces resumes
    t = load_diffusion_teacher(train_diffusion(recipe, crops[live], tmp_path, progress=False, data=data))
    assert t.info["step"] == recipe.steps


def test_train_diffusion_refuses_bad_crops(tmp_path):
    crops, _ = _crops()
    with pytest.raises(TeacherConfigError, match="uint8"):
        train_diffusion(get_recipe("ddm", "tiny"), crops.astype(np.float32), tmp_path)
    with pytest.raises(TeacherConfigError, match="patch_size"):
        train_diffusion(get_recipe("ddm", "tiny").with_overrides(patch_size=64), crops, tmp_path)
    with pytest.raises(TeacherConfigError, match=r"\[-1, 1\]"):
        train_diffusion(get_recipe("ddm", "tiny"), crops, tmp_path, contract=Contract(size=32, std=(1, 1, 1)))


def test_train_despoof_net_writes_safetensors_and_resumes(tmp_path):
    crops, live = _crops()
    recipe = get_recipe("despoof_net", "tiny").with_overrides(steps=2)
    train_despoof_net(recipe, crops, live, tmp_path, progress=False)
    teacher = train_despoof_net(recipe.with_overrides(steps=4), crops, live, tmp_path, progress=False)
    state = _state(tmp_path)
    assert state["step"] == 4 and [h["step"] for h in state["history"]] == [2, 4]
    terms = {"zero_one_map", "magnitude", "repetitive", "adversarial", "discriminator"}
    assert terms <= set(state["history"][0])
    _no_pickles(tmp_path)
    net, info = load_despoof_net(teacher)
    assert info["step"] == 4 and info["repetitive_k"] == 4                # a quarter of the 16 px patch
    with torch.no_grad():
        out = net(torch.from_numpy(to_tensor(crops[:2], Contract(size=32))))
    assert out.noise.shape == (2, 3, 32, 32)
    with pytest.raises(TeacherConfigError, match="both live and attack"):
        train_despoof_net(recipe, crops, np.ones(len(crops), bool), tmp_path / "x", progress=False)


def test_import_edgefas_does_not_import_torch():
    code = "import sys, edgefas; print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_command_line_parser_does_not_import_torch_and_its_teacher_choices_are_current():
    # every edgefas command builds the whole parser: importing torch there cost each command
    # about 1.5 s here, `edgefas detect` included
    code = ("import sys; from edgefas.cli import build_parser; build_parser(); "
            "print(any(m == 'torch' or m.startswith('torch.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    from edgefas.cli.teacher_cmd import AUGMENT_CHOICES, MIXED_PRECISION_CHOICES, MODEL_CHOICES
    from edgefas.distill.recipes import DIFFUSION_AUGMENTS, MIXED_PRECISIONS
    from edgefas.distill.teacher_data import TEACHER_MODELS

    assert MODEL_CHOICES == tuple(TEACHER_MODELS) and MIXED_PRECISION_CHOICES == MIXED_PRECISIONS
    assert AUGMENT_CHOICES == DIFFUSION_AUGMENTS


def test_device_batches_of_another_process_differ_and_process_0_draws_as_before():
    from edgefas.distill.train_teacher import _DeviceBatches

    crops, _ = _crops()
    kw = {"patch": 16, "hflip": True, "t_max": 650, "seed": 0}
    # process 0's entropy is the old [seed, step, 1] (test_train checks step_entropy)
    one = _DeviceBatches(crops, Contract(size=32), torch.device("cpu"), **kw)
    rank0 = _DeviceBatches(crops, Contract(size=32), torch.device("cpu"), process_index=0, **kw)
    rank1 = _DeviceBatches(crops, Contract(size=32), torch.device("cpu"), process_index=1, **kw)
    assert all(torch.equal(a, b) for a, b in zip(one(3, 6), rank0(3, 6)))
    assert not torch.equal(rank0(3, 6)[1], rank1(3, 6)[1])


def test_a_teacher_started_over_does_not_leave_the_old_runs_checkpoints(tmp_path):
    crops, _ = _crops()
    recipe = get_recipe("ddm", "tiny")
    train_diffusion(recipe.with_overrides(steps=4), crops, tmp_path, progress=False)   # epoch_001, 002
    train_diffusion(recipe.with_overrides(steps=2, seed=1), crops, tmp_path, resume=False, progress=False)
    assert latest_checkpoint(tmp_path).name == "epoch_001" and _state(tmp_path)["recipe"]["seed"] == 1
    # starting over also removes the finished teacher/ of the earlier run: until the new run
    # wrote its own, distillation would have read the old one
    from edgefas.distill.train_teacher import TEACHER_DIR
    from edgefas.train.checkpoint import clear_checkpoints

    assert (tmp_path / TEACHER_DIR).is_dir()
    clear_checkpoints(tmp_path, "unet_config", (TEACHER_DIR,))
    assert not (tmp_path / TEACHER_DIR).exists() and latest_checkpoint(tmp_path) is None


def test_init_from_is_kept_on_resume_and_another_one_refused(tmp_path):
    crops, live = _crops()
    recipe = get_recipe("ddm", "tiny").with_overrides(steps=2)
    eps_g = train_diffusion(recipe, crops[live], tmp_path / "eps_g", progress=False)
    other = train_diffusion(recipe.with_overrides(seed=1), crops[live], tmp_path / "other", progress=False)
    train_diffusion(recipe, crops, tmp_path / "eps_s", init_from=eps_g, progress=False)
    # the same command without --init-from resumes, and the teacher still says where it began
    tuned = load_diffusion_teacher(train_diffusion(recipe.with_overrides(steps=4), crops, tmp_path / "eps_s",
                                                   progress=False))
    assert tuned.info["step"] == 4 and tuned.info["init_from"] == str(eps_g)
    with pytest.raises(TeacherConfigError, match="was started from"):
        train_diffusion(recipe.with_overrides(steps=6), crops, tmp_path / "eps_s", init_from=other,
                        progress=False)
    with pytest.raises(TeacherConfigError, match="started from scratch"):
        train_diffusion(recipe.with_overrides(steps=6, seed=1), crops[live], tmp_path / "other",
                        init_from=eps_g, progress=False)


def test_init_from_a_teacher_that_saw_the_held_out_species_is_refused(tmp_path, replay_tree):
    from edgefas.distill.teacher_data import check_init_fits

    frames, _ = replay_tree

    def teacher(name, model, faces, protocol):
        folder = tmp_path / name
        folder.mkdir()
        data = {"model": model, "protocol": protocol, "faces": faces, "with_lfw": False, "max_lfw": None}
        (folder / "teacher.json").write_text(json.dumps({"data": data}))
        return folder

    all_p1 = teacher("all_p1", "ddm-all", "all", "P1")
    live_p1 = teacher("live_p1", "ddm-live", "live", "P1")
    with pytest.raises(TeacherConfigError, match="cannot start a P2-print teacher: the ddm-all teacher"):
        check_init_fits(all_p1, "P2-print", frames)
    check_init_fits(live_p1, "P2-print", frames)          # P1's bona fide faces are P2-print's too
    check_init_fits(all_p1, "P1", frames)
    # without the tree (a crop pack elsewhere): only the same protocol
    check_init_fits(all_p1, "P1", None)
    with pytest.raises(TeacherConfigError, match="same protocol"):
        check_init_fits(live_p1, "P2-print", tmp_path / "absent")


def test_teacher_json_records_the_precision_it_ran_at(tmp_path):
    crops, _ = _crops()
    recipe = get_recipe("ddm", "tiny").with_overrides(steps=1, mixed_precision="bf16")
    teacher = load_diffusion_teacher(train_diffusion(recipe, crops, tmp_path, progress=False))
    # bf16 autocast is for a GPU; on the CPU the run is fp32 and its teacher.json says so
    assert teacher.info["recipe"]["mixed_precision"] == "bf16"
    assert teacher.info["mixed_precision"] == ("bf16" if torch.cuda.is_available() else "no")
