"""Bundles: manifest contents, sha256 checks at load, no pickles."""
from __future__ import annotations

import json
import shutil

import pytest

import edgefas
from edgefas.bundle import default_bundle_path, load_bundle, write_manifest
from edgefas.errors import BundleError


@pytest.fixture()
def bundle_copy(tmp_path):
    dst = tmp_path / "bundle"
    shutil.copytree(default_bundle_path(), dst)
    return dst


def test_default_manifest_records_the_contract():
    m = load_bundle().manifest
    pre = m["preprocess"]
    for key in ("color_order", "value_range", "mean", "std", "template", "crop_scale", "size"):
        assert key in pre
    assert m["threshold"]["split"] and m["threshold"]["criterion"]
    assert m["calibration"]["method"] == "platt"
    assert m["training"]["data"] and m["licence"]["data"]
    devel = m["metrics"]["devel"]
    assert devel["n_bona_fide"] > 0 and devel["n_attack"] > 0
    assert all(len(f["sha256"]) == 64 for f in m["files"].values())
    assert not any(name.endswith((".pt", ".pth", ".pkl", ".ckpt")) for name in m["files"])
    size = sum(f.stat().st_size for f in default_bundle_path().iterdir())
    # The project's limit: bundles <= 10 MB. ONNX classifier, its safetensors (for torch-based
    # exports and their gates) and two face-detector formats: ~8.5 MB. Other formats (tflite,
    # OpenVINO int8, ...) are made by 'edgefas export' into a copy of the bundle.
    assert size <= 10e6


def test_changed_weight_file_is_refused(bundle_copy):
    f = bundle_copy / "classifier.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="classifier.onnx does not match"):
        edgefas.Detector.from_bundle(bundle_copy)


def test_missing_file_is_refused(bundle_copy):
    (bundle_copy / "face_detector.onnx").unlink()
    with pytest.raises(BundleError, match="face_detector.onnx is missing"):
        load_bundle(bundle_copy)


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="no manifest.json"):
        load_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(tmp_path)


def test_manifest_without_threshold_is_refused(bundle_copy):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    del m["threshold"]
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="threshold"):
        load_bundle(bundle_copy)


def test_write_manifest_refuses_pickles(bundle_copy):
    (bundle_copy / "weights.pt").write_bytes(b"\x80\x04pickle")
    with pytest.raises(BundleError, match=".pt files may not go in a bundle"):
        write_manifest(bundle_copy, {"name": "x"})


def test_rewritten_manifest_loads(bundle_copy):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m.pop("files")
    m.pop("schema_version")
    write_manifest(bundle_copy, m)
    assert load_bundle(bundle_copy).name == m["name"]


def test_an_edited_manifest_is_refused_when_pinned(bundle_copy, monkeypatch):
    from edgefas import bundle as bundle_mod
    from edgefas.bundle import manifest_sha256

    pin = manifest_sha256(bundle_copy)
    assert pin == (default_bundle_path().parent / "default.manifest.sha256").read_text().split()[0]
    edgefas.Detector.from_bundle(bundle_copy, manifest_sha256=pin)   # untouched: accepted
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m["threshold"]["value"] = 0.0                                    # "everything is live"
    (bundle_copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(BundleError, match="not the pinned one"):
        edgefas.Detector.from_bundle(bundle_copy, manifest_sha256=pin)
    # the shipped bundle is pinned without being asked: an edit in place is refused too
    shutil.copy2(default_bundle_path().parent / "default.manifest.sha256", bundle_copy.parent)
    monkeypatch.setattr(bundle_mod, "default_bundle_path", lambda: bundle_copy)
    with pytest.raises(BundleError, match="not the pinned one"):
        load_bundle()


def _edit(root, fn) -> None:
    m = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps(fn(m)))


def _set(section: str, key: str, value):
    return lambda m: {**m, section: {**m[section], key: value}}


@pytest.mark.parametrize("name, fn, match", [
    ("not an object", lambda m: [m], "not an object"),
    ("schema as text", lambda m: {**m, "schema_version": "1"}, "schema_version"),
    ("file without sha256", lambda m: {**m, "files": {k: {"bytes": 1} for k in m["files"]}}, "sha256"),
    ("files null", lambda m: {**m, "files": None}, "'files'"),
    ("threshold NaN", _set("threshold", "value", float("nan")), "threshold.value"),
    ("threshold below 0", _set("threshold", "value", -5), "threshold.value"),
    ("threshold text", _set("threshold", "value", "abc"), "threshold.value"),
    ("calibration empty", lambda m: {**m, "calibration": {}}, "calibration"),
    ("contract defaults", lambda m: {**m, "preprocess": {}}, "preprocess lacks"),
    ("colour order", _set("preprocess", "color_order", "xyz"), "color_order"),
    ("template", _set("preprocess", "template", "dlib_68"), "template"),
    ("crop scale 0", _set("preprocess", "crop_scale", 0), "crop_scale"),
    ("size -1", _set("preprocess", "size", -1), "preprocess.size"),
    ("std 0", _set("preprocess", "std", [0, 0, 0]), "std"),
    ("policy text", _set("face_policy", "min_face_px", "big"), "face_policy.min_face_px"),
])
def test_manifest_values_the_detector_cannot_use_are_refused(bundle_copy, name, fn, match):
    _edit(bundle_copy, fn)
    with pytest.raises(BundleError, match=match):
        edgefas.Detector(bundle_copy)


def test_model_files_must_be_hashed_and_inside_the_bundle(bundle_copy):
    _edit(bundle_copy, lambda m: {**m, "models": {**m["models"], "classifier": {
        **m["models"]["classifier"], "onnx": "../elsewhere/classifier.onnx"}}})
    with pytest.raises(BundleError, match="not one of the bundle's hashed files"):
        edgefas.Detector(bundle_copy)


@pytest.mark.parametrize("edit, match", [
    ("garbage model", "cannot load its classifier"),
    ("contract size", "does not take the contract's 64x64"),
    ("layout", "NHWC"),
])
def test_bundles_whose_models_do_not_load_or_fit_fail_at_load_not_per_frame(bundle_copy, edit, match):
    m = json.loads((bundle_copy / "manifest.json").read_text())
    m.pop("files")
    m.pop("schema_version")
    if edit == "garbage model":  # re-hashed: the hash check alone cannot catch it
        (bundle_copy / "classifier.onnx").write_bytes(b"not an onnx model")
    elif edit == "contract size":
        m["preprocess"]["size"] = 64
    else:
        m["preprocess"]["layout"] = "NHWC"
    write_manifest(bundle_copy, m)
    with pytest.raises(BundleError, match=match):
        edgefas.Detector(bundle_copy)


def test_nothing_rewrites_the_shipped_bundles_manifest():
    # export, eval --record and calibrate all write through write_manifest
    with pytest.raises(BundleError, match="shipped inside edgefas"):
        write_manifest(default_bundle_path(), {"name": "x"})
    load_bundle()   # still the pinned one
