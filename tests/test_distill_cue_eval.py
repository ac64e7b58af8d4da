"""Cue evaluation (issue 4, step 5) on synthetic data: features, classifier, protocol evaluation,
tiny untrained teachers, the grid and the reference-only command end to end. Seconds."""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the teachers need the train extra")
pytest.importorskip("diffusers", reason="the teachers need the train extra")
pytest.importorskip("sklearn", reason="the cue classifier needs scikit-learn")

from edgefas.distill.cue_eval import (  # noqa: E402
    GRID_HEADER_H,
    GRID_LABEL_W,
    GRID_PAD,
    DdmPair,
    compute_cues,
    evaluate_cue_on_protocol,
    fit_cue_classifier,
    results_table_markdown,
    save_grid,
    score_live,
)
from edgefas.distill.cue_features import (  # noqa: E402
    CUE_STAT_NAMES,
    STAT_NAMES,
    colour_frequency_stats,
    cue_stats,
    mean_abs_cue,
)
from edgefas.distill.despoof_net import DespoofNet, get_despoof_net_config  # noqa: E402
from edgefas.distill.errors import TeacherConfigError  # noqa: E402
from edgefas.distill.schedule import DiffusionSchedule  # noqa: E402
from edgefas.distill.train_teacher import DiffusionTeacher  # noqa: E402
from edgefas.distill.unet import build_unet, get_unet_config  # noqa: E402
from edgefas.metrics import auc, threshold_at_eer  # noqa: E402
from edgefas.runtime.preprocess import Contract, to_tensor  # noqa: E402

SPECIES = ("print", "mobile", "highdef")


def _smooth_face(side: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    blob = 60 + 120 * np.exp(-((yy - side / 2) ** 2 + (xx - side / 2) ** 2) / (side * side / 12))
    return np.clip(blob[..., None] * np.array([0.7, 0.85, 1.0]), 0, 255).astype(np.uint8)   # BGR


def test_statistic_names_and_shapes():
    assert len(STAT_NAMES) == 20 and len(set(STAT_NAMES)) == 20
    assert len(set(CUE_STAT_NAMES)) == len(CUE_STAT_NAMES)
    crops = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    s = colour_frequency_stats(crops)
    assert s.shape == (5, 20) and s.dtype == np.float32 and np.isfinite(s).all()
    assert colour_frequency_stats(crops[:0]).shape == (0, 20)
    cue = np.random.default_rng(1).normal(0, 0.1, (4, 3, 32, 32)).astype(np.float32)
    c = cue_stats(cue)
    assert c.shape == (4, len(CUE_STAT_NAMES)) and np.isfinite(c).all()
    assert np.allclose(cue_stats(cue.transpose(0, 2, 3, 1)), c)       # NHWC gives the same
    assert np.allclose(cue_stats(torch.from_numpy(cue)), c)           # torch tensors too
    assert np.allclose(mean_abs_cue(cue), np.abs(cue).mean((1, 2, 3)))
    assert np.allclose(c[:, CUE_STAT_NAMES.index("mean_abs")], mean_abs_cue(cue))
    with pytest.raises(ValueError):
        colour_frequency_stats(crops.astype(np.float32))


def test_a_stripe_pattern_moves_the_frequency_statistics_not_the_chroma():
    face = _smooth_face()
    striped = face.astype(np.float32)
    striped[:, ::3] += 30     # a screen-like column pattern at 1/3 cycle per pixel
    striped = np.clip(striped, 0, 255).astype(np.uint8)
    a, b = colour_frequency_stats(np.stack([face, striped]))
    i = STAT_NAMES.index
    assert b[i("fft_frac_above_1/4")] > a[i("fft_frac_above_1/4")] + 0.1
    assert b[i("log10_laplacian_var")] > a[i("log10_laplacian_var")] + 1
    assert b[i("fft_log10_hf_peak")] > a[i("fft_log10_hf_peak")]
    assert abs(b[i("mean_cr")] - a[i("mean_cr")]) < 0.01     # a grey pattern adds no colour cast


def _split(rng, n_bf: int, n_att: int, shift: float, k: int = 6):
    """Synthetic features: attacks shifted by ``shift`` along every axis; species cycle."""
    x = rng.normal(0, 1, (n_bf + n_att, k))
    is_attack = np.r_[np.zeros(n_bf, bool), np.ones(n_att, bool)]
    x[is_attack] += shift
    species = np.array(["bona_fide"] * n_bf + [SPECIES[j % 3] for j in range(n_att)])
    return x, is_attack, species


def test_classifier_separates_a_held_out_separable_set():
    rng = np.random.default_rng(0)
    x_tr, y_tr, _ = _split(rng, 40, 60, 8.0)
    x_te, y_te, _ = _split(rng, 30, 30, 8.0)
    model = fit_cue_classifier(x_tr, y_tr)
    live = score_live(model, x_te)
    assert auc(live, y_te) == 1.0
    assert live[~y_te].min() > live[y_te].max()     # higher = live
    with pytest.raises(ValueError):
        fit_cue_classifier(x_tr[~y_tr], y_tr[~y_tr])     # one class only


def _protocol_data(seed: int = 0, shift: float = 1.5):
    rng = np.random.default_rng(seed)
    data = {s: _split(rng, *n, shift) for s, n in
            {"train": (30, 60), "devel": (20, 45), "test": (16, 36)}.items()}
    feats = {s: d[0] for s, d in data.items()}
    ia = {s: d[1] for s, d in data.items()}
    sp = {s: d[2] for s, d in data.items()}
    return feats, ia, sp


def test_unsupervised_sign_is_fixed_on_train():
    feats, ia, sp = _protocol_data()
    higher_for_attacks = {s: f.mean(1) for s, f in feats.items()}
    for scores, sign in ((higher_for_attacks, -1.0), ({s: -v for s, v in higher_for_attacks.items()}, 1.0)):
        r = evaluate_cue_on_protocol("P1", feats, ia, sp, unsupervised_score_by_split=scores)
        m = r["methods"]["unsupervised"]
        assert m["sign"] == sign
        assert m["auc"]["test"]["value"] > 0.75 and m["test"]["auc"]["value"] > 0.75


def test_evaluation_counts_and_a_threshold_chosen_on_devel():
    feats, ia, sp = _protocol_data(1)
    score = {s: f[:, 0] for s, f in feats.items()}
    extra = {"london": np.random.default_rng(5).normal(0, 1, (7, 6))}
    extra_u = {"london": extra["london"][:, 0]}
    r = evaluate_cue_on_protocol("P1", feats, ia, sp, unsupervised_score_by_split=score,
                                 extra_bona_fide=extra, extra_bona_fide_unsupervised=extra_u,
                                 feature_names=[f"f{j}" for j in range(6)], name="synthetic", bootstrap=20)
    assert r["counts"]["train"] == {"bona_fide": 30, "attack": 60,
                                    "species": {"highdef": 20, "mobile": 20, "print": 20}}
    assert r["counts"]["test"]["bona_fide"] == 16 and r["counts"]["test"]["attack"] == 36
    for m in r["methods"].values():
        t = m["test"]
        assert t["n_bona_fide"] == 16 and t["n_attack"] == 36
        assert t["species_counts"] == {"highdef": 12, "mobile": 12, "print": 12}
        assert t["threshold"] == m["threshold"]
        assert m["auc"]["devel"]["bona_fide"] == 20 and m["auc"]["devel"]["attack"] == 45
        assert m["p4"]["london"]["bona_fide"] == 7
        assert 0 <= m["p4"]["london"]["errors"] <= 7
    u = r["methods"]["unsupervised"]
    assert u["threshold"] == threshold_at_eer(u["sign"] * score["devel"], ia["devel"], sp["devel"])
    assert set(r["methods"]["classifier"]["coefficients"]) == {f"f{j}" for j in range(6)}
    # Changing the test features changes the test figures, never the threshold.
    moved = {**feats, "test": feats["test"] + 3.0}
    r2 = evaluate_cue_on_protocol("P1", moved, ia, sp, unsupervised_score_by_split={**score, "test": score[
        "test"] * -2}, name="synthetic")
    for name in ("unsupervised", "classifier"):
        assert r2["methods"][name]["threshold"] == r["methods"][name]["threshold"]
    md = results_table_markdown([r, r2])
    assert md.count("| P1 | synthetic |") == 4 + 2     # 2 methods x 2 results, and 2 P4 rows
    assert md.count("| london | ") == 2 and md.count("(16 × 36)") == 4
    json.dumps(r)   # JSON-ready


@pytest.fixture(scope="module")
def tiny_teachers():
    torch.set_num_threads(1)

    def unet(seed: int):
        torch.manual_seed(seed)
        return build_unet(get_unet_config("tiny")).eval()

    sched = DiffusionSchedule()
    eps_s = DiffusionTeacher(unet(0), sched, None, "ddm", {})
    eps_g = DiffusionTeacher(unet(1), sched, None, "ddm", {})
    agfas = DiffusionTeacher(unet(2), sched, None, "agfas", {})
    torch.manual_seed(3)
    ds = DespoofNet(get_despoof_net_config("tiny")).eval()
    return DdmPair(eps_s, eps_g), agfas, ds


def test_compute_cues_with_tiny_teachers(tiny_teachers):
    pair, agfas, ds = tiny_teachers
    crops = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    contract = Contract(size=32)
    x = to_tensor(crops, contract)
    for teacher, kw, nfe in ((pair, dict(t0=40, steps=4), 8), (agfas, dict(t0=40, steps=2, noise_seed=1), 2),
                             (ds, {}, 1)):
        r = compute_cues(teacher, crops, contract, batch=2, **kw)
        assert r.restored.shape == crops.shape and r.restored.dtype == np.uint8
        assert r.cue.shape == (3, 3, 32, 32) and r.cue.dtype == np.float32
        assert r.nfe == nfe and r.ms_per_face > 0
        # cue = input - restored; the uint8 restored face is that, clipped and rounded (half a
        # grey level: 1/255 in [-1, 1]); untrained nets do leave [-1, 1]
        assert np.abs(np.clip(x - r.cue, -1, 1) - to_tensor(r.restored, contract)).max() <= 1 / 255 + 1e-5
    with pytest.raises(TeacherConfigError, match="DdmPair"):
        compute_cues(pair.eps_s, crops, contract, t0=40, steps=4)
    with pytest.raises(TeacherConfigError, match="missing"):
        compute_cues(agfas, crops, contract, t0=40)
    with pytest.raises(TeacherConfigError, match="unexpected"):
        compute_cues(ds, crops, contract, t0=40)


def test_save_grid_writes_a_png_of_the_expected_size(tmp_path):
    face = _smooth_face(32)
    cue = np.random.default_rng(0).normal(0, 0.1, (3, 32, 32)).astype(np.float32)
    rows = [("bona_fide client001 a long label that wraps", face, face, cue),
            ("print", face, face, cue.transpose(1, 2, 0))]
    path = save_grid(rows, tmp_path / "sub" / "grid.png", cell=64)
    img = cv2.imread(str(path))
    assert img.shape == (GRID_HEADER_H + 2 * (64 + GRID_PAD) + GRID_PAD,
                         GRID_LABEL_W + 3 * (64 + GRID_PAD) + GRID_PAD, 3)


# ----- the command, reference only, on the synthetic Replay-style tree (conftest.replay_tree) -----

def _args(argv: list[str]) -> argparse.Namespace:
    from edgefas.cli import cue_cmd

    p = argparse.ArgumentParser()
    cue_cmd.add_arguments(p)
    return p.parse_args(argv)


def test_command_needs_a_teacher_or_reference_only():
    from edgefas.cli import cue_cmd
    from edgefas.errors import EdgefasError

    with pytest.raises(EdgefasError, match="reference-only"):
        cue_cmd.run(_args(["--protocol", "P1"]))
    with pytest.raises(EdgefasError, match="one protocol"):
        cue_cmd.run(_args(["--teacher", "agfas", "--teacher-dir", "x", "--protocol", "all"]))


@pytest.fixture(scope="module")
def crop_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")   # the tree is aligned once for the module


def test_reference_only_command_end_to_end(replay_tree, crop_cache, tmp_path, monkeypatch):
    from edgefas.cli import cue_cmd

    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(crop_cache))
    out = tmp_path / "report" / "cue"
    assert cue_cmd.run(_args(["--reference-only", "--protocol", "P1", "--replay-root", str(frames),
                              "--replay-1frame-root", str(one), "--out", str(out),
                              "--bootstrap", "20"])) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["teacher"] is None and rep["protocols"] == ["P1"]
    (res,) = rep["results"]
    assert list(res["methods"]) == ["classifier"]
    counts = res["counts"]
    assert counts["train"]["bona_fide"] == 8 and counts["train"]["attack"] == 24   # 2 frames per video
    assert counts["devel"]["bona_fide"] == 8 and counts["devel"]["attack"] == 24
    assert counts["test"] == {"bona_fide": 4, "attack": 12,
                              "species": {"highdef": 4, "mobile": 4, "print": 4}}
    assert res["methods"]["classifier"]["test"]["n_bona_fide"] == 4
    assert rep["fta"]["P1"] == {"test_images": 16, "test_failed": 0}
    assert "| P1 | colour+FFT stats (reference) | classifier |" in out.with_suffix(".md").read_text()


@pytest.mark.parametrize("kind", ["agfas", "ddm", "despoof"])
def test_teacher_command_end_to_end(kind, replay_tree, crop_cache, tiny_teachers, tmp_path, monkeypatch):
    """The teacher path of the command with tiny untrained teachers (the loaders are the
    teacher-training code's own, tested there; here they hand back the tiny nets)."""
    from edgefas.cli import cue_cmd
    from edgefas.distill import train_teacher

    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(crop_cache))
    pair, agfas, ds = tiny_teachers
    nets = {"s": pair.eps_s, "g": pair.eps_g, "a": agfas}
    monkeypatch.setattr(train_teacher, "load_diffusion_teacher", lambda folder: nets[folder.name])
    monkeypatch.setattr(train_teacher, "load_despoof_net",
                        lambda folder: (ds, {"contract": Contract().to_dict()}))
    steps = ["--t0", "40", "--steps", "2"]
    teacher = {"agfas": ["--teacher-dir", str(tmp_path / "a"), *steps],
               "ddm": ["--eps-s", str(tmp_path / "s"), "--eps-g", str(tmp_path / "g"), *steps],
               "despoof": ["--teacher-dir", str(tmp_path / "d")]}[kind]
    out = tmp_path / "cue"
    assert cue_cmd.run(_args(["--teacher", kind, *teacher, "--protocol", "P2-print",
                              "--replay-root", str(frames), "--replay-1frame-root", str(one),
                              "--out", str(out), "--frames-per-video", "1", "--bootstrap", "0",
                              "--threads", "1", "--grid", "3"])) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["teacher"]["nfe"] == {"agfas": 2, "ddm": 4, "despoof": 1}[kind]
    # P2-print, one frame per video: train and devel 4 + 8 each, test 4 + 4 (print only)
    assert rep["teacher"]["faces_timed"] == 32 and rep["teacher"]["ms_per_face"] > 0
    ref, cue = rep["results"]
    assert list(cue["methods"]) == ["unsupervised", "classifier"]
    assert cue["counts"]["train"] == {"bona_fide": 4, "attack": 8, "species": {"highdef": 4, "mobile": 4}}
    assert cue["counts"]["test"] == {"bona_fide": 4, "attack": 4, "species": {"print": 4}}
    assert cue["counts"] == ref["counts"]
    assert len(cue["methods"]["classifier"]["coefficients"]) == len(CUE_STAT_NAMES)
    grid = cv2.imread(str(tmp_path / "cue_grid.png"))
    assert grid.shape[0] == GRID_HEADER_H + 3 * (128 + GRID_PAD) + GRID_PAD


def test_a_live_only_teacher_serves_p2_but_an_all_faces_teacher_does_not(replay_tree, crop_cache,
                                                                          monkeypatch):
    from edgefas.data.sources import CropStore, DataRoots
    from edgefas.distill.teacher_data import check_teacher_fits, teacher_data_record
    from edgefas.runtime.preprocess import Contract as C
    from edgefas.train.run import face_stage_for

    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(crop_cache))
    stage, sha = face_stage_for(C())
    samples = CropStore(stage, sha, DataRoots(frames, one, None)).replay(frames="20").samples
    live = teacher_data_record("agfas", "P1", np.zeros((3, 8, 8, 3), np.uint8), np.ones(3, bool))
    assert live["faces"] == "live" and live["live"] == 3 and "replay_attack" in live["sources"]
    for p in ("P1", "P2-print", "P2-mobile", "P2-highdef"):
        check_teacher_fits(live, p, samples)
    with pytest.raises(TeacherConfigError, match="P3-controlled-to-adverse does not train on"):
        check_teacher_fits(live, "P3-controlled-to-adverse", samples)   # its live faces: one lighting
    every = teacher_data_record("ddm-all", "P1", np.zeros((2, 8, 8, 3), np.uint8), np.array([True, False]))
    check_teacher_fits(every, "P1", samples)
    with pytest.raises(TeacherConfigError, match="train a teacher for P2-print"):
        check_teacher_fits(every, "P2-print", samples)
    with pytest.raises(TeacherConfigError, match="no data record"):
        check_teacher_fits({}, "P1", samples)


def test_sweep_chooses_per_protocol_on_devel_and_checks_what_the_teacher_saw(
        replay_tree, crop_cache, tiny_teachers, tmp_path, monkeypatch):
    from edgefas.cli import cue_cmd
    from edgefas.data.sources import find_shared_fixture
    from edgefas.distill import train_teacher
    from edgefas.errors import EdgefasError

    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(crop_cache))
    _, agfas, _ = tiny_teachers
    shared_dir = find_shared_fixture("silentface")
    data = {"model": "agfas", "protocol": "P1"}
    live_only = DiffusionTeacher(agfas.unet, agfas.schedule, None, "agfas", {"data": data})
    monkeypatch.setattr(train_teacher, "load_diffusion_teacher", lambda folder: live_only)
    base = ["--teacher", "agfas", "--teacher-dir", str(tmp_path / "a"), "--replay-root", str(frames),
            "--replay-1frame-root", str(one), "--frames-per-video", "1", "--bootstrap", "0", "--threads", "1"]
    out = tmp_path / "sweep"
    grid = ["--fixture-grid", str(tmp_path / "fx.png")] if shared_dir is not None else []
    assert cue_cmd.run(_args([*base, "--protocol", "P1,P2-print", "--sweep", "20:1,40:2",
                              "--out", str(out), *grid])) == 0
    if grid:   # 7 silentface photos and 3 london portraits, one row each
        assert cv2.imread(grid[1]).shape[0] == GRID_HEADER_H + 10 * (128 + GRID_PAD) + GRID_PAD
    rep = json.loads(out.with_suffix(".json").read_text())
    assert [r["protocol"] for r in rep["results"]] == ["P1", "P1", "P2-print", "P2-print"]
    sweeps = rep["teacher"]["sweeps"]
    for name in ("P1", "P2-print"):
        cands = sweeps[name]["candidates"]
        assert [(c["t0"], c["steps"], c["nfe"]) for c in cands] == [(20, 1, 1), (40, 2, 2)]
        best = max(cands, key=lambda c: (c["devel_auc_classifier"], -c["nfe"]))
        assert sweeps[name]["chosen"] == {"t0": best["t0"], "steps": best["steps"], "noise_seed": 0}
    assert rep["results"][1]["teacher_setting"] == sweeps["P1"]["chosen"]
    assert set(rep["results"][3]["methods"]["classifier"]["auc_per_species"]["test"]) == {"print"}
    # the issue-4 table over this report: comparisons computed from the report's own numbers
    from edgefas.distill.cue_table import REFERENCE, load_reports, summarize, to_markdown

    summary = summarize(load_reports([out.with_suffix(".json")]))
    assert summary["p2_protocols"] == ["P2-print"] and len(summary["rows"]) == 2 + 4   # ref 1 method, cue 2
    comp = {(c["features"], c["method"]): c for c in summary["comparison"] if c["train"] == "Replay train"}
    ref_auc = rep["results"][2]["methods"]["classifier"]["test"]["auc"]["value"]
    cue_auc = rep["results"][3]["methods"]["classifier"]["test"]["auc"]["value"]
    c = comp[("agfas cue", "classifier")]
    assert c["p2_mean_test_auc"] == cue_auc and c["reference_p2_mean_test_auc"] == ref_auc
    assert c["p2_beats_reference"] == (cue_auc > ref_auc)
    assert comp[(REFERENCE, "classifier")]["p2_beats_reference"] is False   # never beats itself
    p1_row = next(r for r in summary["rows"] if r["protocol"] == "P1" and r["features"] == "agfas cue")
    assert p1_row["nfe"] == next(c["nfe"] for c in sweeps["P1"]["candidates"]
                                 if c["t0"] == sweeps["P1"]["chosen"]["t0"])
    assert "| P2-print | Replay train | agfas cue | classifier |" in to_markdown(summary)
    # a teacher of another recipe (the GPU one) gets rows of its own, named by its recipe
    from edgefas.distill.cue_table import _features_name

    gpu = {"teacher": {"kind": "agfas", "teacher_json": {"agfas": {"recipe": {"name": "gpu"}}}}}
    assert _features_name(gpu, {"name": "agfas cue"}) == "agfas cue (gpu recipe)"
    assert _features_name(gpu, {"name": REFERENCE}) == REFERENCE
    lowpass = {"teacher": {"kind": "agfas", "teacher_json": {"agfas": {
        "recipe": {"name": "cpu"}, "condition": {"kind": "lowpass", "sigma": 2.0}}}}}
    assert _features_name(lowpass, {"name": "agfas cue"}) == "agfas cue (lowpass condition)"
    lowpass["teacher"]["teacher_json"]["agfas"]["data"] = {"with_lfw": True}
    assert _features_name(lowpass, {"name": "agfas cue"}) == "agfas cue (+ LFW live faces, lowpass condition)"
    lowpass["teacher"]["region"] = "full"
    want = "agfas cue (+ LFW live faces, lowpass condition, full crop)"
    assert _features_name(lowpass, {"name": "agfas cue"}) == want
    del lowpass["teacher"]["region"]
    camaug = {"teacher": {"kind": "agfas", "teacher_json": {"agfas": {
        "recipe": {"name": "cpu", "augment": "camera"}}}}}
    assert _features_name(camaug, {"name": "agfas cue"}) == "agfas cue (camera augmentation)"
    # a student is named by its objective, NFE and its teacher's tags
    student = {"teacher": {"kind": "student", "nfe": 2, "teacher_json": {"student": {
        "recipe": {"objective": "consistency"}, "teacher": {"info": {"recipe": {"name": "cpu"}}}}}}}
    assert _features_name(student, {"name": "student cue"}) == "student (consistency, 2 NFE) cue"
    lowpass_info = lowpass["teacher"]["teacher_json"]["agfas"]
    student["teacher"]["teacher_json"]["student"]["teacher"]["info"] = lowpass_info
    assert (_features_name(student, {"name": "student cue"})
            == "student (consistency, 2 NFE, + LFW live faces, lowpass condition) cue")
    # every setting saw the train/devel faces (P1 and P2-print share them here: 32 faces); test
    # cues only for the chosen ones
    assert [s["faces_timed"] >= 32 for s in rep["teacher"]["settings"]] == [True, True]
    with pytest.raises(EdgefasError, match="does not train on"):
        cue_cmd.run(_args([*base, "--protocol", "P3-controlled-to-adverse", "--out", str(out)]))
    with pytest.raises(EdgefasError, match="T0:STEPS"):
        cue_cmd.run(_args([*base, "--protocol", "P1", "--sweep", "20-1", "--out", str(out)]))
    # An impossible setting is refused up front, before the earlier settings spend their minutes.
    with pytest.raises(EdgefasError, match="setting 400:5: a DDIM stride of 80"):
        cue_cmd.run(_args([*base, "--protocol", "P1", "--sweep", "20:1,400:5", "--out", str(tmp_path / "x")]))
    assert not (tmp_path / "x.json").exists()


def test_student_cues_and_fidelity_to_its_teacher(replay_tree, crop_cache, tiny_teachers, tmp_path,
                                                  monkeypatch):
    from edgefas.cli import cue_cmd
    from edgefas.distill import train_student, train_teacher
    from edgefas.distill.student import ConsistencyStudent, StudentConfig
    from edgefas.distill.unet import get_unet_config

    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(crop_cache))
    _, agfas, _ = tiny_teachers
    torch.manual_seed(0)
    student = ConsistencyStudent(StudentConfig(unet=get_unet_config("tiny"), t0=40, nfe=2)).eval()
    info = {"data": {"model": "student", "protocol": "P1", "faces": "labelled"},
            "teacher": {"dir": str(tmp_path / "a")}, "contract": Contract().to_dict(),
            "recipe": {"t0": 40, "teacher_steps": 2, "noise_seed": 0}}
    monkeypatch.setattr(train_student, "load_student", lambda folder: (student, info))
    monkeypatch.setattr(train_teacher, "load_diffusion_teacher", lambda folder: agfas)
    out = tmp_path / "student"
    assert cue_cmd.run(_args(["--teacher", "student", "--teacher-dir", str(tmp_path / "s"), "--nfe", "1",
                              "--fidelity", "--protocol", "P1", "--replay-root", str(frames),
                              "--replay-1frame-root", str(one), "--frames-per-video", "1",
                              "--bootstrap", "0", "--threads", "1", "--out", str(out)])) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["teacher"]["nfe"] == 1
    fid = rep["teacher"]["fidelity"]
    assert fid["faces"] == 16 and fid["teacher"]["nfe"] == 2 and fid["student"]["nfe"] == 1
    assert np.isfinite(fid["psnr_restored_db"]) and fid["speed_ratio"] > 0
    assert "Student fidelity to its teacher on 16 devel faces" in out.with_suffix(".md").read_text()


def test_train_lfw_adds_bona_fide_to_every_train_split(replay_tree, crop_cache, tiny_teachers, tmp_path,
                                                      monkeypatch, astronaut_bgr):
    from edgefas.cli import cue_cmd
    from edgefas.data.lfw import identity_split
    from edgefas.distill import train_teacher

    frames, one = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(crop_cache))
    lfw = tmp_path / "lfw"
    names = [f"Person_{i:03d}" for i in range(16)]
    for i, n in enumerate(names):
        (lfw / n).mkdir(parents=True)
        cv2.imwrite(str(lfw / n / f"{n}_0001.jpg"), np.roll(astronaut_bgr, 4 * i, axis=1))
    n_train = sum(identity_split(n) == "train" for n in names)
    assert n_train >= 3
    _, agfas, _ = tiny_teachers
    live_only = DiffusionTeacher(agfas.unet, agfas.schedule, None, "agfas",
                                 {"data": {"model": "agfas", "protocol": "P1"}})
    monkeypatch.setattr(train_teacher, "load_diffusion_teacher", lambda folder: live_only)
    out = tmp_path / "with_lfw"
    assert cue_cmd.run(_args(["--teacher", "agfas", "--teacher-dir", str(tmp_path / "a"), "--t0", "20",
                              "--steps", "1", "--protocol", "P1,P2-print", "--train-lfw", "3",
                              "--lfw-root", str(lfw), "--replay-root", str(frames), "--replay-1frame-root",
                              str(one), "--frames-per-video", "1", "--bootstrap", "0", "--threads", "1",
                              "--out", str(out)])) == 0
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["train_lfw_faces"] == 3
    for res in rep["results"]:   # reference and cue alike: 4 Replay bona fide + 3 LFW
        assert res["counts"]["train"]["bona_fide"] == 7, res["name"]
        assert res["counts"]["devel"]["bona_fide"] == 4
