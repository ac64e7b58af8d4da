"""LiteRT, Core ML and TensorRT exports, device presets and the target table (issue 6).

A tiny bundle (timm's ``test_efficientnet`` at 64 px, random init, calibrated on synthetic
devel faces) keeps the litert-torch conversions to seconds.
"""
from __future__ import annotations

import json
import platform

import numpy as np
import pytest

pytest.importorskip("torch", reason="building a test bundle needs the train extra")

import edgefas  # noqa: E402
from edgefas.data.face_cache import CropSet  # noqa: E402
from edgefas.data.samples import Sample  # noqa: E402
from edgefas.errors import BackendUnavailable, ExportError  # noqa: E402
from edgefas.export.bundle_export import export_bundle  # noqa: E402
from edgefas.export.presets import PRESETS, get_preset  # noqa: E402
from edgefas.export.targets import TARGETS, get_target  # noqa: E402
from edgefas.models.mobilevit_baseline import BaselineClassifier, BaselineConfig  # noqa: E402
from edgefas.runtime.backends import BACKENDS, available_backends  # noqa: E402
from edgefas.runtime.backends.tensorrt_backend import find_libnvinfer  # noqa: E402
from edgefas.runtime.face_stage import FacePolicy  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.package import package_model  # noqa: E402

from .test_train import SIZE, synthetic_crops  # noqa: E402


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("dev")
    cfg = BaselineConfig(arch="test_efficientnet", img_size=SIZE, drop_rate=0.0)
    model = BaselineClassifier(cfg).eval()
    dcrops, dlive = synthetic_crops(40, 1)
    cs = CropSet([Sample(f"d{i}", not bool(live), "bona_fide" if live else "print", "devel", "syn")
                  for i, live in enumerate(dlive)],
                 dcrops, np.array(["ok"] * 40), np.ones(40, np.float32))
    state = {"model_config": cfg.to_dict(), "contract": Contract(size=SIZE).to_dict(),
             "recipe": {}, "history": []}
    bundle = package_model(model, state, cs, tmp / "bundle", name="small", training={"data": []},
                           devel_split="synthetic devel", policy=FacePolicy())
    return bundle, cs


def test_bundle_carries_pytorch_weights_and_the_tflite_face_detector(small_bundle):
    m = json.loads((small_bundle[0] / "manifest.json").read_text())
    assert m["models"]["classifier"]["pytorch"] == "classifier.safetensors"
    assert m["models"]["classifier"]["model_config"]["arch"] == "test_efficientnet"
    assert m["models"]["face_detector"]["tflite"] == "face_detector.tflite"


@pytest.fixture(scope="module")
def tflite_bundle(small_bundle, tmp_path_factory):
    pytest.importorskip("litert_torch", reason="the tflite target needs litert-torch (export extra)")
    bundle, cs = small_bundle
    out = tmp_path_factory.mktemp("tfl") / "b"
    reports = [export_bundle(bundle, target="tflite", precision="fp32", out=out, devel=cs)]
    try:
        reports.append(export_bundle(out, target="tflite", precision="int8", out=out, devel=cs))
    except ExportError as exc:  # a random-init model may fail the int8 gate; then nothing is kept
        assert "failed its parity gate" in str(exc)
        assert not (out / "classifier_int8.tflite").exists()
    return out, reports


def test_tflite_fp32_is_gated_against_pytorch_and_recorded(tflite_bundle):
    out, reports = tflite_bundle
    rep = reports[0]
    assert rep.passed and rep.reference == "pytorch" and rep.max_abs_diff_logit <= 1e-4
    m = json.loads((out / "manifest.json").read_text())
    assert m["models"]["classifier"]["tflite_fp32"] == "classifier_fp32.tflite"
    assert m["parity"]["tflite_fp32"]["n_faces"] == 40
    assert "classifier_fp32.tflite" in m["files"]


def test_litert_backend_scores_like_onnxruntime(tflite_bundle, astronaut_bgr):
    out, reports = tflite_bundle
    ref = edgefas.Detector(out)
    det = edgefas.Detector(out, backend="litert")  # MediaPipe's .tflite face detector too
    frames = [astronaut_bgr, np.ascontiguousarray(astronaut_bgr[:, ::-1])]
    for f in frames:
        a, b = ref(f), det(f)
        assert a.decision == b.decision
        assert abs(a.live_score - b.live_score) < 1e-4
        assert np.allclose(a.box, b.box, atol=0.5)
    assert [r.decision for r in det.batch(frames)] == [ref(f).decision for f in frames]
    if len(reports) == 2:  # int8 passed its gate: it runs, and int8 I/O is (de)quantized
        q = edgefas.Detector(out, backend="litert", precision="int8")
        crops = np.stack([ref.face_stage.align(f, ref.face_stage.select(
            ref.face_stage.detector.detect(f))).crop for f in frames])
        assert np.abs(q.live_scores(crops) - ref.live_scores(crops)).max() < 0.2


def test_coreml_converts_here_and_records_why_it_is_not_gated(small_bundle, tmp_path):
    pytest.importorskip("coremltools", reason="the coreml target needs coremltools")
    if platform.system() == "Darwin":
        pytest.skip("on macOS the coreml export is gated like the others")
    bundle, cs = small_bundle
    rep = export_bundle(bundle, target="coreml", precision="fp16", out=tmp_path / "c", devel=cs)
    assert rep.passed is None and "macOS" in rep.reason
    m = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert m["models"]["classifier"]["coreml_fp16"] == "classifier_fp16.mlpackage"
    assert m["parity"]["coreml_fp16"]["passed"] is None
    assert any(k.startswith("classifier_fp16.mlpackage/") for k in m["files"])
    edgefas.load_bundle(tmp_path / "c")  # hashes of the package's files verify
    with pytest.raises(BackendUnavailable, match="only on macOS"):
        edgefas.Detector(tmp_path / "c", backend="coreml", precision="fp16")


def test_tensorrt_stops_cleanly_without_libnvinfer(small_bundle, tmp_path):
    if find_libnvinfer() is not None:
        pytest.skip("libnvinfer is present: TensorRT would build here")
    bundle, cs = small_bundle
    with pytest.raises(BackendUnavailable, match="no libnvinfer"):
        export_bundle(bundle, target="tensorrt", precision="fp16", out=tmp_path / "t", devel=cs)
    assert not (tmp_path / "t").exists()


def test_target_table_and_presets_are_consistent():
    for t in TARGETS.values():
        assert t.backend in BACKENDS and t.precisions
        assert BACKENDS[t.backend].export_target == t.name
    for p in PRESETS.values():
        assert p.backend in BACKENDS
        for target, precision in p.exports:
            assert precision in get_target(target).precisions
    with pytest.raises(ExportError, match="Did you mean 'tflite'"):
        get_target("tflit")
    with pytest.raises(ExportError, match="Did you mean 'android'"):
        get_preset("androd")


def test_each_backend_runs_the_file_its_export_wrote():
    """Every export's manifest key is the one its backend loads: an OpenVINO fp32 IR, once
    exported and gated, is what the openvino backend runs (not the ONNX graph beside it)."""
    for t in TARGETS.values():
        for p in t.precisions:
            key = t.model_key(p)
            assert BACKENDS[t.backend].model_key(p, {"onnx", key}) == key
    assert BACKENDS["openvino"].model_key("fp32", {"onnx"}) == "onnx"   # reads ONNX directly
    assert BACKENDS["onnxruntime"].model_key("fp32", {"onnx", "openvino_fp32"}) == "onnx"


def test_auto_backend_picks_an_installed_one_with_files(detector):
    det = edgefas.Detector(backend="auto")
    assert det.backend in available_backends()
    assert det.backend == "onnxruntime" or det.backend in ("tensorrt", "coreml")


def test_auto_prefers_litert_when_the_bundle_holds_its_classifier():
    from edgefas.runtime.backends import BACKENDS, auto_backend

    assert auto_backend(lambda key: key == "onnx") == "onnxruntime"   # the shipped bundle
    if not BACKENDS["litert"].installed():
        pytest.skip("ai_edge_litert is not installed here")
    assert auto_backend(lambda key: key in ("onnx", "tflite_fp32")) == "litert"
    assert auto_backend(lambda key: key in ("onnx_int8", "tflite_fp32"), "int8") == "onnxruntime"


def test_tensorrt_batches_larger_than_the_engine_profile_run_in_chunks():
    # no TensorRT here: the chunking is checked with a stand-in for one engine call
    from edgefas.runtime.backends.tensorrt_backend import TensorRtModel

    model = object.__new__(TensorRtModel)
    model.max_batch = 16
    calls = []

    def one_call(x):
        assert len(x) <= 16
        calls.append(len(x))
        return [x.sum(axis=(1, 2, 3))[:, None]]

    model._run = one_call
    x = np.random.default_rng(0).normal(size=(37, 3, 4, 4)).astype(np.float32)
    out = model.run(x)
    assert calls == [16, 16, 5] and out[0].shape == (37, 1)
    np.testing.assert_allclose(out[0][:, 0], x.sum(axis=(1, 2, 3)), rtol=1e-6)


def test_tensorrt_networks_are_explicit_batch_on_tensorrt_8_and_10():
    from types import SimpleNamespace

    from edgefas.export.tensorrt_export import network_flags

    flag = SimpleNamespace(EXPLICIT_BATCH=0)   # TensorRT 8's enum value for it
    assert network_flags(SimpleNamespace(__version__="8.6.2",
                                         NetworkDefinitionCreationFlag=flag)) == 1
    assert network_flags(SimpleNamespace(__version__="10.3.0")) == 0   # the flag is gone there
