"""Bundle exports per target: gated on labelled devel faces, nothing written on failure."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("torch", reason="building a test bundle needs the train extra")

import edgefas  # noqa: E402
from edgefas.data.face_cache import CropSet  # noqa: E402
from edgefas.data.samples import Sample  # noqa: E402
from edgefas.errors import ExportError  # noqa: E402
from edgefas.export import targets as targets_mod  # noqa: E402
from edgefas.export.bundle_export import export_bundle  # noqa: E402
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


def test_failed_gate_writes_nothing(tiny_bundle, tmp_path, monkeypatch):
    """A conversion that changes the model is refused and its files removed."""
    bundle, cs = tiny_bundle

    def broken(src, out_dir, precision, calib):  # a 'conversion' that returns another model
        import onnx
        from onnx import helper

        m = onnx.load(str(src.onnx))
        neg = helper.make_node("Neg", [m.graph.output[0].name], ["neg_out"])
        m.graph.node.append(neg)
        m.graph.output[0].name = "neg_out"
        dst = out_dir / "classifier_int8.onnx"
        onnx.save(m, str(dst))
        return dst

    tgt = targets_mod.TARGETS["onnx"]
    monkeypatch.setitem(targets_mod.TARGETS, "onnx",
                        targets_mod.Target(**{**tgt.__dict__, "convert": broken}))
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
