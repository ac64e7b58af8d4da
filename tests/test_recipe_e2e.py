"""`edgefas train --package` then `edgefas eval`, end to end on a synthetic Replay-style tree.

The tree follows the real layouts (20-frames-per-video for train/devel, one frame per video
for test) with official video names; its faces are the astronaut (live) and recoloured,
striped copies of it (attacks), so the whole real code path runs in seconds.
"""
from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

pytest.importorskip("timm", reason="training needs the train extra")

from edgefas.cli import main  # noqa: E402

from .conftest import attack_like  # noqa: E402


def test_train_package_eval(replay_tree, tmp_path, monkeypatch, capsys):
    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "--protocol", "P1", "--recipe", "tiny", "--out", str(run),
                 "--replay-root", str(frames), "--no-lfw", "--package"]) == 0
    manifest = json.loads((run / "bundle" / "manifest.json").read_text())
    assert manifest["threshold"]["bona_fide"] == 8 and manifest["threshold"]["attack"] == 24
    assert manifest["training"]["protocol"] == "P1"
    out = tmp_path / "report"
    assert main(["eval", "--bundle", str(run / "bundle"), "--protocol", "P1",
                 "--replay-1frame-root", str(one), "--out", str(out), "--bootstrap", "50"]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    rep = res["P1"]["test"]["report"]
    assert rep["n_bona_fide"] == 4 and rep["n_attack"] == 12
    assert set(rep["apcer"]) == {"print", "mobile", "highdef", "overall"}
    assert (tmp_path / "report_det.png").is_file()
    assert "| P1 |" in out.with_suffix(".md").read_text()
    # Re-running the export of the same run gives the same threshold (deterministic).
    assert main(["export", str(run), "--replay-root", str(frames), "--out",
                 str(tmp_path / "b2")]) == 0
    again = json.loads((tmp_path / "b2" / "manifest.json").read_text())
    assert again["threshold"]["value"] == pytest.approx(manifest["threshold"]["value"])


def test_eval_on_a_labelled_folder(tmp_path, astronaut_bgr, monkeypatch):
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "data" / "live").mkdir(parents=True)
    (tmp_path / "data" / "attack" / "screen").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(tmp_path / "data" / "live" / f"{i}.png"), np.roll(astronaut_bgr, 5 * i, 1))
        cv2.imwrite(str(tmp_path / "data" / "attack" / "screen" / f"{i}.png"),
                    attack_like(np.roll(astronaut_bgr, 5 * i, 1), i))
    out = tmp_path / "folder_report.v2"
    assert main(["eval", "--folder", str(tmp_path / "data"), "--out", str(out),
                 "--bootstrap", "20"]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())["folder"]["report"]
    assert rep["n_bona_fide"] == 3 and rep["species_counts"] == {"screen": 3}
    assert (tmp_path / "folder_report_det.png").is_file()   # named like its .md and .json


@pytest.mark.parametrize("model", ["ddm-live", "ddm-all", "agfas", "despoof"])
def test_teacher_command_trains_each_teacher(model, replay_tree, tmp_path, monkeypatch):
    frames, _ = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / model
    assert main(["teacher", "--model", model, "--recipe", "tiny", "--out", str(out),
                 "--replay-root", str(frames)]) == 0
    teacher = out / "teacher"
    data = json.loads((teacher / "teacher.json").read_text())["data"]
    assert data["model"] == model and data["protocol"] == "P1" and data["split"] == "train"
    assert data["live"] == 8 and data["attack"] == (0 if model in ("ddm-live", "agfas") else 24)
    assert "research" in data["weights_licence"]
    assert {p.suffix for p in out.rglob("*") if p.is_file()} <= {".safetensors", ".json"}


def test_teacher_trains_from_a_crop_pack_in_time_slots(replay_tree, tmp_path, monkeypatch):
    frames, _ = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    pack = tmp_path / "agfas.npz"
    assert main(["teacher", "--model", "agfas", "--recipe", "tiny", "--save-pack", str(pack),
                 "--replay-root", str(frames)]) == 0
    # Nothing below reads the data sets: the pack is all a GPU box needs.
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "elsewhere"))
    out = tmp_path / "run"
    args = ["teacher", "--model", "agfas", "--recipe", "tiny", "--pack", str(pack), "--out", str(out)]
    assert main([*args, "--time-budget", "0"]) == 0
    partial = json.loads((out / "teacher" / "teacher.json").read_text())
    assert partial["complete"] is False and partial["step"] == 1
    assert partial["data"]["live"] == 8 and partial["data"]["model"] == "agfas"
    # the GPU slots run under bf16 autocast; on this CPU the flag is recorded and training stays fp32
    assert main([*args, "--mixed-precision", "bf16"]) == 0
    done = json.loads((out / "teacher" / "teacher.json").read_text())
    assert done["complete"] is True and done["recipe"]["mixed_precision"] == "bf16"
    with pytest.raises(SystemExit, match="holds agfas faces"):
        main(["teacher", "--model", "ddm-live", "--recipe", "tiny", "--pack", str(pack), "--out",
              str(tmp_path / "x")])


@pytest.mark.parametrize("option, check, refusal", [
    (["--condition", "lowpass", "--condition-sigma", "1.5"],
     lambda info: info["condition"] == {"kind": "lowpass", "sigma": 1.5}
     and info["unet_config"]["in_channels"] == 6, "AG-FAS generator"),
    (["--condition", "lowpass", "--augment", "camera"],
     lambda info: info["recipe"]["augment"] == "camera" and info["condition"]["kind"] == "lowpass",
     "diffusion teachers"),
])
def test_teacher_options_are_recorded_and_refused_for_the_ds_net(replay_tree, tmp_path, monkeypatch,
                                                                 option, check, refusal):
    frames, _ = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "teacher_run"
    assert main(["teacher", "--model", "agfas", "--recipe", "tiny", *option, "--out", str(out),
                 "--replay-root", str(frames)]) == 0
    assert check(json.loads((out / "teacher" / "teacher.json").read_text()))
    with pytest.raises(SystemExit, match=refusal):
        main(["teacher", "--model", "despoof", "--recipe", "tiny", *option[-2:], "--out",
              str(tmp_path / "x"), "--replay-root", str(frames)])


def test_teacher_respects_the_held_out_species(replay_tree, tmp_path, monkeypatch):
    from edgefas.data.sources import CropStore, DataRoots
    from edgefas.distill.teacher_data import teacher_training_set
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.run import face_stage_for

    frames, _ = replay_tree
    stage, sha = face_stage_for(Contract())
    store = CropStore(stage, sha, DataRoots(frames), cache_dir=tmp_path / "cache", progress=False)
    all_crops, live = teacher_training_set("despoof", "P1", store)
    p2_crops, p2_live = teacher_training_set("despoof", "P2-print", store)
    assert live.sum() == p2_live.sum() == 8  # 2 clients x 2 lightings x 2 frames
    assert (~live).sum() == 24 and (~p2_live).sum() == 16  # print attacks left out
    live_crops, only_live = teacher_training_set("agfas", "P1", store)
    assert only_live.all() and len(live_crops) == 8


def test_eval_record_writes_metrics_into_the_manifest(replay_tree, tmp_path, monkeypatch):
    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    assert main(["train", "--recipe", "tiny", "--out", str(run), "--replay-root", str(frames),
                 "--no-lfw", "--package"]) == 0
    assert main(["eval", "--bundle", str(run / "bundle"), "--protocol", "P1", "--record",
                 "--replay-1frame-root", str(one), "--out", str(tmp_path / "r"),
                 "--bootstrap", "0"]) == 0
    import edgefas

    m = edgefas.load_bundle(run / "bundle").manifest  # still verifies: hashes untouched
    rec = m["metrics"]["P1"]["test"]
    assert rec["report"]["n_bona_fide"] == 4 and "markdown" not in rec
    assert m["metrics"]["P1"]["command"].startswith("edgefas eval --bundle")


def test_distill_command_trains_a_student_from_an_agfas_teacher(replay_tree, tmp_path, monkeypatch):
    frames, _ = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    assert main(["teacher", "--model", "agfas", "--recipe", "tiny", "--out", str(tmp_path / "agfas"),
                 "--replay-root", str(frames)]) == 0
    for objective in ("consistency", "regression"):
        out = tmp_path / objective
        assert main(["distill", "--teacher-dir", str(tmp_path / "agfas" / "teacher"), "--recipe", "tiny",
                     "--objective", objective, "--out", str(out), "--replay-root", str(frames)]) == 0
        info = json.loads((out / "student" / "student.json").read_text())
        assert info["recipe"]["objective"] == objective and info["config"]["t0"] == 20
        assert info["data"]["protocol"] == "P1" and info["data"]["live"] == 8 and info["data"]["attack"] == 24
        assert {p.suffix for p in out.rglob("*") if p.is_file()} <= {".safetensors", ".json"}
    # a teacher that saw every species (here its record says so) cannot teach a P2-print student
    seen_all = tmp_path / "seen_all"
    shutil.copytree(tmp_path / "agfas" / "teacher", seen_all)
    info = json.loads((seen_all / "teacher.json").read_text())
    info["data"]["faces"] = "all"
    (seen_all / "teacher.json").write_text(json.dumps(info))
    assert main(["distill", "--teacher-dir", str(seen_all), "--recipe", "tiny", "--protocol",
                 "P2-print", "--out", str(tmp_path / "p2"), "--replay-root", str(frames)]) == 1
    assert not (tmp_path / "p2").exists()


def test_teacher_init_from_is_checked_before_cropping(replay_tree, tmp_path, monkeypatch):
    from edgefas.cli import teacher_cmd

    frames, _ = replay_tree
    seen_all = tmp_path / "seen_all"
    seen_all.mkdir()
    (seen_all / "teacher.json").write_text(json.dumps(
        {"data": {"model": "ddm-all", "protocol": "P1", "faces": "all"}}))

    def no_cropping(*a, **k):
        raise AssertionError("cropped before refusing the --init-from teacher")

    monkeypatch.setattr(teacher_cmd, "_training_faces", no_cropping)
    assert main(["teacher", "--model", "ddm-all", "--recipe", "tiny", "--protocol", "P2-print",
                 "--init-from", str(seen_all), "--out", str(tmp_path / "t"),
                 "--replay-root", str(frames)]) == 1


def test_train_with_a_users_live_folder_records_it(replay_tree, tmp_path, monkeypatch, astronaut_bgr):
    # `--extra-live FOLDER`: a kiosk team adds its own camera's live faces (one folder a person)
    frames, _ = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    live = tmp_path / "my camera"
    for p in range(12):
        (live / f"person{p}").mkdir(parents=True)
        cv2.imwrite(str(live / f"person{p}" / "a.png"), np.roll(astronaut_bgr, 3 * p, 1))
    run = tmp_path / "run"
    assert main(["train", "--protocol", "P1", "--recipe", "tiny", "--out", str(run), "--replay-root",
                 str(frames), "--no-lfw", "--extra-live", str(live), "--package"]) == 0
    state = json.loads((run / "best" / "trainer_state.json").read_text())
    assert state["recipe"]["extra_live"] == str(live.resolve())
    assert state["recipe"]["extra_live_share"] == 0.125
    manifest = json.loads((run / "bundle" / "manifest.json").read_text())
    assert any("my camera" in d for d in manifest["training"]["data"])
