"""Bad input gets a typed decision, never an exception (and never a silent wrong answer)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import edgefas
from edgefas import Decision, InputTypeError


def _jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("name, make, expected", [
    ("corrupt bytes", lambda a: b"\xff\xd8\xff\xe0 not really a jpeg" * 10, Decision.BAD_INPUT),
    ("truncated jpeg", lambda a: _jpeg(a)[:200], Decision.BAD_INPUT),
    ("empty bytes", lambda a: b"", Decision.BAD_INPUT),
    ("zero-size array", lambda a: np.zeros((0, 0, 3), np.uint8), Decision.BAD_INPUT),
    ("zero-width array", lambda a: np.zeros((480, 0, 3), np.uint8), Decision.BAD_INPUT),
    ("grayscale 2-D", lambda a: cv2.cvtColor(a, cv2.COLOR_BGR2GRAY), Decision.BAD_INPUT),
    ("grayscale HxWx1", lambda a: cv2.cvtColor(a, cv2.COLOR_BGR2GRAY)[:, :, None],
     Decision.BAD_INPUT),
    ("float image", lambda a: a.astype(np.float32) / 255.0, Decision.BAD_INPUT),
    ("uint16 image", lambda a: a.astype(np.uint16) * 257, Decision.BAD_INPUT),
    ("2 channels", lambda a: a[:, :, :2].copy(), Decision.BAD_INPUT),
    ("huge 10000x10000", lambda a: np.zeros((10000, 10000, 3), np.uint8), Decision.BAD_INPUT),
    ("missing file", lambda a: "/nonexistent/face.jpg", Decision.BAD_INPUT),
    ("no face (flat wall)", lambda a: np.full((480, 640, 3), (90, 140, 170), np.uint8),
     Decision.NO_FACE),
    ("no face (noise)", lambda a: np.random.default_rng(0).integers(0, 255, (480, 640, 3),
                                                                      dtype=np.uint8),
     Decision.NO_FACE),
    ("tiny face", lambda a: cv2.resize(a, (64, 64)), Decision.FACE_TOO_SMALL),
    ("too dark", lambda a: (a // 8).astype(np.uint8), Decision.LOW_QUALITY),
])
def test_bad_input_is_a_typed_result(detector, astronaut_bgr, name, make, expected):
    r = detector(make(astronaut_bgr))
    assert isinstance(r, edgefas.Result)
    assert r.decision is expected, (name, r.decision, r.reasons)
    assert r.live_score is None
    assert r.reasons, "every non-scored decision explains itself"
    if expected is Decision.NO_FACE:
        assert any("come closer" in x for x in r.reasons)


def test_two_faces(detector, two_faces):
    r = detector(two_faces)
    assert r.decision is Decision.MULTIPLE_FACES, r.reasons
    assert r.live_score is None and r.box is not None


def test_rgba_is_scored_with_alpha_dropped(detector, astronaut_bgr):
    rgba = np.dstack([astronaut_bgr, np.full(astronaut_bgr.shape[:2], 255, np.uint8)])
    r = detector(rgba)
    assert r.decision in (Decision.LIVE, Decision.SPOOF)
    assert "alpha channel dropped" in r.reasons
    assert r.live_score == pytest.approx(detector(astronaut_bgr).live_score, abs=1e-6)


@pytest.mark.parametrize("as_bytes", [True, False])
def test_grey_image_stored_as_colour_is_refused(detector, astronaut_bgr, as_bytes):
    # A grey JPEG decodes to 3 equal channels (OpenCV IMREAD_COLOR); scoring it with an RGB
    # model would be a silent wrong answer, so it is refused like a 1-channel array.
    grey = cv2.cvtColor(cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    r = detector(_jpeg(grey) if as_bytes else grey)
    assert r.decision is Decision.BAD_INPUT
    assert "grayscale" in r.reasons[0]


@pytest.mark.parametrize("bad", [12, None, 3.5, ["a.jpg"], {"image": 1}])
def test_wrong_argument_type_raises_documented_error(detector, bad):
    with pytest.raises(InputTypeError):
        detector(bad)
    with pytest.raises(TypeError):  # InputTypeError is also a TypeError
        detector(bad)


def test_unknown_color_order_raises():
    with pytest.raises(InputTypeError):
        edgefas.Detector(color_order="bgra")


@pytest.mark.parametrize("value", [0, 255, 128])
def test_blank_colour_frame_is_no_face_with_its_reason_not_grayscale(detector, value):
    # a covered lens or a blown-out frame from a colour camera: nothing to find, and not a
    # grey camera (which would make a kiosk ask for staff)
    r = detector(np.full((480, 640, 3), value, np.uint8))
    assert r.decision is Decision.NO_FACE, r.reasons
    assert r.reasons[0].startswith("blank frame")


def test_decompression_bomb_is_refused_from_its_header(detector):
    ok, buf = cv2.imencode(".png", np.zeros((9000, 300), np.uint8))
    assert ok and len(buf) < 1_000_000
    r = detector(buf.tobytes())
    assert r.decision is Decision.BAD_INPUT and "from its header" in r.reasons[0], r.reasons


def test_paths_that_are_not_image_files(detector, tmp_path):
    from edgefas.runtime.decode import MAX_ENCODED_BYTES

    assert "embedded null byte" in detector(str(tmp_path / "a\x00b.jpg")).reasons[0]
    assert "a directory" in detector(tmp_path).reasons[0]
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:   # sparse: refused from its size, not read
        f.truncate(MAX_ENCODED_BYTES + 1)
    assert "bytes >" in detector(big).reasons[0]
    if hasattr(__import__("os"), "mkfifo"):
        fifo = tmp_path / "pipe.jpg"
        __import__("os").mkfifo(fifo)
        r = detector(fifo)   # reading it would block for ever
        assert r.decision is Decision.BAD_INPUT and "not a regular file" in r.reasons[0]
