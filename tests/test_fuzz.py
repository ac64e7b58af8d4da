"""Property tests: no byte string or array, however broken, makes the Detector raise."""
from __future__ import annotations

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import edgefas

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(detector, data):
    assert isinstance(detector(data), edgefas.Result)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=30),
       cut=st.integers(0, 10**6))
def test_mutated_jpeg(detector, astronaut_bgr, flips, cut):
    data = bytearray(cv2.imencode(".jpg", astronaut_bgr[::2, ::2])[1].tobytes())
    for pos, val in flips:
        data[pos % len(data)] = val
    r = detector(bytes(data[: max(1, cut % (len(data) + 1))]))
    assert isinstance(r, edgefas.Result)
    if r.live_score is not None:
        assert 0.0 <= r.live_score <= 1.0


@FUZZ
@given(arr=hnp.arrays(dtype=st.sampled_from([np.uint8, np.uint16, np.float32, np.float64,
                                             np.int32, np.bool_]),
                      shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40)))
def test_random_arrays(detector, arr):
    r = detector(arr)
    assert isinstance(r, edgefas.Result)
    if arr.dtype != np.uint8 or arr.ndim != 3:
        assert r.decision is edgefas.Decision.BAD_INPUT


# -- issue 7: the decoder alone, sessions fed anything, the HTTP API on arbitrary bodies -------

@FUZZ
@given(data=st.binary(max_size=2048), head=st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n",
                                                           b"BM", b"GIF89a", b"RIFF", b""]))
def test_decoder_on_headed_garbage(data, head):
    from edgefas.runtime.decode import decode_image

    d = decode_image(head + data)
    if d.image is None:
        assert d.reasons and all(isinstance(x, str) and x for x in d.reasons)
    else:
        assert d.image.dtype == np.uint8 and d.image.ndim == 3 and d.image.shape[2] == 3


@FUZZ
@given(steps=st.lists(st.tuples(st.sampled_from(list(edgefas.Decision)),
                                st.floats(0, 1), st.floats(-50, 600), st.floats(1, 300)),
                      max_size=60),
       window=st.integers(1, 12), min_frames=st.integers(1, 12))
def test_session_on_any_result_sequence(steps, window, min_frames):
    s = edgefas.Session(threshold=0.5, window=window, min_frames=min_frames, timeout_s=2.0)
    for i, (dec, score, x, w) in enumerate(steps):
        scored = dec in (edgefas.Decision.LIVE, edgefas.Decision.SPOOF)
        r = edgefas.Result(dec, score if scored else None, 0.5,
                           (x, x, x + w, x + w) if scored else None)
        v = s.feed(r, t=i * 0.1).verdict
        assert v.frames <= i + 1 and (v.score is None or 0.0 <= v.score <= 1.0)
        assert v.decided == (v.frames >= min_frames)


@FUZZ
@given(body=st.binary(max_size=3000),
       ctype=st.sampled_from(["image/jpeg", "application/octet-stream", "multipart/form-data",
                              "multipart/form-data; boundary=x", "text/plain", ""]))
def test_http_api_never_answers_5xx(detector, body, ctype):
    import pytest

    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from fastapi.testclient import TestClient

    from edgefas.serve import create_app

    global _CLIENT
    if _CLIENT is None:
        _CLIENT = TestClient(create_app(detector, max_upload_bytes=2048))
    r = _CLIENT.post("/v1/detect", content=body, headers={"content-type": ctype} if ctype else {})
    assert r.status_code in (200, 400, 413, 422), (r.status_code, r.text)
    assert "detail" in r.json() or "decision" in r.json()


_CLIENT = None
