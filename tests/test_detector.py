"""The Detector end to end on real faces, and its documented guarantees."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

import edgefas
from edgefas import Decision

from .conftest import needs_shared


def test_scores_a_live_face(detector, astronaut_bgr):
    r = detector(astronaut_bgr)
    assert r.decision in (Decision.LIVE, Decision.SPOOF)
    assert 0.0 <= r.live_score <= 1.0
    assert r.threshold == detector.threshold
    assert r.is_live == (r.live_score >= r.threshold)
    x1, y1, x2, y2 = r.box
    assert 150 < x1 < x2 < 300 and 50 < y1 < y2 < 200  # the astronaut's face
    assert len(r.landmarks) == 5
    (lx, ly), (rx, ry) = r.landmarks[0], r.landmarks[1]
    assert lx < rx and abs(ly - ry) < 20  # image-left eye first, roughly level
    assert set(r.timings_ms) >= {"decode", "detect", "align", "score", "total"}
    assert r.to_dict()["decision"] == r.decision.value


def test_path_bytes_and_array_agree(detector, astronaut_bgr, tmp_path):
    path = tmp_path / "a.png"  # PNG: lossless, so all three inputs hold the same pixels
    cv2.imwrite(str(path), astronaut_bgr)
    a = detector(astronaut_bgr).live_score
    assert detector(path).live_score == pytest.approx(a, abs=1e-6)
    assert detector(str(path)).live_score == pytest.approx(a, abs=1e-6)
    assert detector(path.read_bytes()).live_score == pytest.approx(a, abs=1e-6)


def test_rgb_option(detector, astronaut_bgr):
    rgb_det = edgefas.Detector(color_order="rgb")
    rgb = np.ascontiguousarray(astronaut_bgr[:, :, ::-1])
    assert rgb_det(rgb).live_score == pytest.approx(detector(astronaut_bgr).live_score, abs=1e-6)
    # Passing RGB to a BGR detector changes the answer: the option matters.
    assert detector(rgb).live_score != pytest.approx(detector(astronaut_bgr).live_score, abs=1e-4)


def test_batch_matches_single_calls(detector, astronaut_bgr, two_faces):
    images = [astronaut_bgr, b"garbage", two_faces, cv2.flip(astronaut_bgr, 1)]
    batch = detector.batch(images)
    single = [detector(im) for im in images]
    assert [r.decision for r in batch] == [r.decision for r in single]
    for b, s in zip(batch, single):
        if s.live_score is None:
            assert b.live_score is None
        else:
            assert b.live_score == pytest.approx(s.live_score, abs=1e-5)


@pytest.mark.parametrize("one_image", ["face.jpg", b"\xff\xd8", np.zeros((4, 4, 3), np.uint8), None, 7])
def test_batch_of_one_image_instead_of_a_list_is_a_programming_error(detector, one_image):
    # iterating it would score characters, bytes or array rows as separate images
    with pytest.raises(edgefas.InputTypeError, match="list of images"):
        detector.batch(one_image)


@pytest.mark.parametrize("kw", [{"threads": 0}, {"threads": 1.5}, {"max_side_px": 0}, {"bundle": 5}])
def test_bad_constructor_arguments_raise_input_type_error(kw):
    with pytest.raises(edgefas.InputTypeError):
        edgefas.Detector(**kw)


def test_one_detector_shared_across_threads(detector, astronaut_bgr, two_faces):
    """Documented claim: a Detector may be shared by threads; answers equal sequential ones."""
    frames = [astronaut_bgr, cv2.flip(astronaut_bgr, 1), two_faces,
              cv2.resize(astronaut_bgr, (400, 400)), astronaut_bgr[50:450, 50:450].copy()] * 8
    sequential = [(r.decision, r.live_score) for r in map(detector, frames)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = [(r.decision, r.live_score) for r in pool.map(detector, frames)]
    assert concurrent == sequential


def test_repr_and_default_bundle(detector):
    assert "onnxruntime" in repr(detector)
    assert detector.bundle.manifest["threshold"]["split"]


def test_unknown_backend_suggests_a_name():
    with pytest.raises(edgefas.BackendUnavailable, match="onnxruntime"):
        edgefas.Detector(backend="onnxruntim")


def test_runtime_works_without_torch(tmp_path):
    """`import edgefas` and a Detector call must not need torch (blocked here)."""
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith(("torch.", "torchvision", "timm")):
                    raise ImportError(f"blocked {name}")
        sys.meta_path.insert(0, Block())
        import numpy as np, edgefas
        img = np.zeros((240, 320, 3), np.uint8)
        img[60:180, 100:220] = (90, 120, 200)
        r = edgefas.Detector()(img)
        assert r.decision.value in {"no_face", "live", "spoof"}, r
        import skimage.data
        r = edgefas.Detector()(skimage.data.astronaut()[:, :, ::-1].copy())
        assert r.live_score is not None, r
        assert not any(m == "torch" or m.startswith("torch.") for m in sys.modules)
        print("ok", r.decision.value)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_runtime_package_has_no_torch_import():
    from pathlib import Path

    runtime = Path(edgefas.__file__).parent / "runtime"
    for f in runtime.rglob("*.py"):
        for line in f.read_text().splitlines():
            assert not line.strip().startswith(("import torch", "from torch")), f


@needs_shared
def test_silentface_fixtures_are_scored(detector, shared):
    """Every silentface photo (EXIF-rotated ones included) yields a scored face."""
    for f in sorted((shared / "fixtures" / "silentface").glob("*.jpg")):
        r = detector(f)
        assert r.decision in (Decision.LIVE, Decision.SPOOF), (f.name, r.reasons)


def test_an_unknown_precision_is_named_not_sent_to_export():
    with pytest.raises(edgefas.InputTypeError, match="precision must be one of fp32, fp16, int8"):
        edgefas.Detector(precision="FP32")
    # a missing export lists the bundle's files, not its metadata entries
    with pytest.raises(edgefas.BundleError, match=r"\(it has: onnx, pytorch\); make one"):
        edgefas.Detector(precision="int8")
