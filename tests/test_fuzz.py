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
