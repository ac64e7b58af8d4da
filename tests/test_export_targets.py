"""Bundle exports per target: gated on labelled devel faces, nothing written on failure."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="building a test bundle needs the train extra")

import edgefas  # noqa: E402
from edgefas.data.face_cache import CropSet  # noqa: E402
from edgefas.data.samples import Sample  # noqa: E402
from edgefas.errors import ExportError  # noqa: E402
from edgefas.export import targets as targets_mod  # noqa: E402
from edgefas.export.bundle_export import export_bundle, export_bundle_many  # noqa: E402
from edgefas.runtime.face_stage import FacePolicy  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.baseline import DevelSet, TrainSet, load_trained, train_baseline  # noqa: E402
from edgefas.train.package import package_model  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402

from .test_train import SIZE, synthetic_crops  # noqa: E402


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exp")
    crops, live = synthetic_crops(48, 0)
    dcrops, dlive = synthetic_crops(40, 1)
    devel = DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print"))
    best = train_baseline(get_recipe("tiny"), TrainSet(crops, live, np.zeros(48, bool)), devel,
                          Contract(size=SIZE), tmp / "run", progress=False)
    model, state = load_trained(best)
    cs = CropSet([Sample(f"d{i}", bool(a), str(s), "devel", "syn")
                  for i, (a, s) in enumerate(zip(devel.is_attack, devel.species))],
                 dcrops, np.array(["ok"] * 40), np.ones(40, np.float32))
    bundle = package_model(model, state, cs, tmp / "bundle", name="tiny", training={"data": []},
                           devel_split="synthetic devel", policy=FacePolicy())
    return bundle, cs


def test_unknown_target_and_precision(tiny_bundle, tmp_path):
    bundle, cs = tiny_bundle
    with pytest.raises(ExportError, match="Did you mean 'openvino'"):
        export_bundle(bundle, target="openvin", precision="fp32", out=tmp_path / "b", devel=cs)
    with pytest.raises(ExportError, match="not fp16"):
        export_bundle(bundle, target="tflite", precision="fp16", out=tmp_path / "b", devel=cs)


def test_openvino_fp16_export_is_gated_recorded_and_runs(tiny_bundle, tmp_path, astronaut_bgr):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    bundle, cs = tiny_bundle
    out = tmp_path / "ov"
    rep = export_bundle(bundle, target="openvino", precision="fp16", out=out, devel=cs)
    assert rep.passed and rep.n_faces == 40 and rep.bona_fide == 20
    m = json.loads((out / "manifest.json").read_text())
    assert m["models"]["classifier"]["openvino_fp16"] == "openvino/classifier_fp16.xml"
    assert m["parity"]["openvino_fp16"]["decisions_agree"] >= 0.95
    assert "openvino/classifier_fp16.bin" in m["files"]  # hashed like every other file
    det = edgefas.Detector(out, backend="openvino", precision="fp16")
    ref = edgefas.Detector(out)
    a, b = det(astronaut_bgr), ref(astronaut_bgr)
    assert abs(a.live_score - b.live_score) < 0.05


def _failing_target(monkeypatch, name: str, filename: str) -> None:
    """Make target ``name`` convert to a model that fails its gate (the logit negated)."""
    import onnx
    from onnx import helper

    def broken(src, out_dir, precision, calib):
        m = onnx.load(str(src.onnx))
        m.graph.node.append(helper.make_node("Neg", [m.graph.output[0].name], ["neg_out"]))
        m.graph.output[0].name = "neg_out"
        dst = out_dir / filename
        onnx.save(m, str(dst))
        return dst

    tgt = targets_mod.TARGETS[name]
    monkeypatch.setitem(targets_mod.TARGETS, name,
                        targets_mod.Target(**{**tgt.__dict__, "convert": broken}))


def test_failed_gate_writes_nothing(tiny_bundle, tmp_path, monkeypatch):
    """A conversion that changes the model is refused and its files removed."""
    bundle, cs = tiny_bundle
    _failing_target(monkeypatch, "onnx", "classifier_int8.onnx")
    out = tmp_path / "bad"
    with pytest.raises(ExportError, match="failed its parity gate"):
        export_bundle(bundle, target="onnx", precision="int8", out=out, devel=cs)
    assert not out.exists()   # the new folder was this export's own: nothing is left
    # in place (a bundle adding to itself): its own files stay, the export's go
    inplace = tmp_path / "inplace"
    shutil.copytree(bundle, inplace)
    before = (inplace / "manifest.json").read_text()
    with pytest.raises(ExportError, match="failed its parity gate"):
        export_bundle(inplace, target="onnx", precision="int8", out=inplace, devel=cs)
    assert not (inplace / "classifier_int8.onnx").exists()
    assert (inplace / "manifest.json").read_text() == before


def test_a_failed_re_export_keeps_the_file_it_would_have_replaced(tiny_bundle, tmp_path,
                                                                  monkeypatch):
    bundle, cs = tiny_bundle
    out = tmp_path / "b"
    export_bundle(bundle, target="onnx", precision="fp16", out=out, devel=cs)
    good = (out / "classifier_fp16.onnx").read_bytes()
    manifest = (out / "manifest.json").read_text()
    _failing_target(monkeypatch, "onnx", "classifier_fp16.onnx")
    with pytest.raises(ExportError, match="failed its parity gate"):
        export_bundle(out, target="onnx", precision="fp16", out=out, devel=cs)
    assert (out / "classifier_fp16.onnx").read_bytes() == good
    assert (out / "manifest.json").read_text() == manifest
    edgefas.Detector(out, precision="fp16")   # still a whole bundle: every hash matches
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]   # no staging folder left


def test_several_exports_are_written_all_or_none(tiny_bundle, tmp_path, monkeypatch):
    bundle, cs = tiny_bundle
    out = tmp_path / "many"
    live = cs.subset(np.array([not s.is_attack for s in cs.samples]))
    reports = export_bundle_many(bundle, [("onnx", "fp32"), ("onnx", "fp16")], out=out, devel=cs,
                                 other_bona_fide=live)
    assert [(r.target, r.precision, r.passed) for r in reports] == [
        ("onnx", "fp32", True), ("onnx", "fp16", True)]
    parity = json.loads((out / "manifest.json").read_text())["parity"]["onnx_fp16"]
    # the other-camera bona fide faces are scored and recorded beside the gate
    assert parity["other_faces"] == 20 and 0.9 <= parity["other_decisions_agree"] <= 1
    assert parity["other_bpcer_fp32"] == reports[1].other_bpcer_fp32
    _failing_target(monkeypatch, "onnx", "classifier_int8.onnx")
    second = tmp_path / "second"
    with pytest.raises(ExportError, match="failed its parity gate"):
        export_bundle_many(bundle, [("onnx", "fp16"), ("onnx", "int8")], out=second, devel=cs)
    assert not second.exists()   # the fp16 that passed is not left as a half-made bundle


def test_a_file_no_manifest_can_list_is_refused_before_converting(tiny_bundle, tmp_path,
                                                                 monkeypatch):
    bundle, cs = tiny_bundle
    src = tmp_path / "src"
    shutil.copytree(bundle, src)
    (src / ".DS_Store").write_bytes(b"x")

    def never(*a):
        raise AssertionError("converted although the bundle cannot be written")

    tgt = targets_mod.TARGETS["onnx"]
    monkeypatch.setitem(targets_mod.TARGETS, "onnx",
                        targets_mod.Target(**{**tgt.__dict__, "convert": never}))
    with pytest.raises(edgefas.BundleError, match="files without a suffix may not go"):
        export_bundle(src, target="onnx", precision="fp16", out=src, devel=cs)


def test_an_existing_out_folder_is_refused_and_left_as_it_is(tiny_bundle, tmp_path):
    bundle, cs = tiny_bundle
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    with pytest.raises(ExportError, match="exists"):
        export_bundle(bundle, target="onnx", precision="fp16", out=out, devel=cs)
    assert (out / "notes.txt").read_text() == "keep"
    # the source's parent folder as --out: refused, nothing deleted
    with pytest.raises(ExportError, match="exists"):
        export_bundle(bundle, target="onnx", precision="fp16", out=bundle.parent, devel=cs)
    assert (bundle / "manifest.json").is_file()


def test_detector_without_that_export_says_so(tiny_bundle):
    bundle, _ = tiny_bundle
    with pytest.raises(edgefas.BundleError, match="no 'onnx_int8' file"):
        edgefas.Detector(bundle, precision="int8")


def test_an_in_place_export_failing_between_its_renames_puts_the_bundle_back(tiny_bundle, tmp_path,
                                                                            monkeypatch):
    import os

    from edgefas.export import bundle_export

    bundle, cs = tiny_bundle
    mine = tmp_path / "mine"
    shutil.copytree(bundle, mine)
    manifest = (mine / "manifest.json").read_text()
    calls = []

    def replace(a, b):
        calls.append((a, b))
        if Path(b) == mine and Path(a).name.endswith(".export"):   # the staging copy moving in
            raise OSError("disk went away")
        os.rename(a, b)

    monkeypatch.setattr(bundle_export.os, "replace", replace)
    with pytest.raises(OSError, match="disk went away"):
        export_bundle(mine, target="onnx", precision="fp16", out=mine, devel=cs)
    assert any(Path(b).name.endswith(".old") for _, b in calls)   # it had moved the bundle aside
    assert (mine / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_fp32_parity_allows_a_stray_face_but_not_a_shifted_model():
    from edgefas.export.parity import FP32_ATOL, FP32_MAX_FACTOR, fp32_parity

    ref = np.random.default_rng(0).normal(0, 7, 1000)
    got = ref + np.random.default_rng(1).normal(0, 1e-6, 1000)    # kernel-order noise
    assert fp32_parity(ref, got)[0]
    one = got.copy()
    one[3] += 3 * FP32_ATOL           # one face off by 3e-4, as seen in two real runs
    ok, q99, top = fp32_parity(ref, one)
    assert ok and q99 < FP32_ATOL and top == pytest.approx(3 * FP32_ATOL, rel=0.01)
    one[3] += FP32_MAX_FACTOR * FP32_ATOL                         # but not by 1e-3 and more
    assert not fp32_parity(ref, one)[0]
    many = got.copy()
    many[:20] += 2 * FP32_ATOL        # 2 % of the faces: a conversion error, not noise
    assert not fp32_parity(ref, many)[0]
    assert fp32_parity(ref, many, atol=5 * FP32_ATOL)[0]          # unless allowed (--atol)
    small = got[:50].copy()
    small[3] += 3 * FP32_ATOL         # under 100 faces, 1 % is no face: no stray allowed
    assert not fp32_parity(ref[:50], small)[0]
    assert not fp32_parity(ref, np.where(np.arange(1000) == 7, np.nan, got))[0]

