"""Every backend installable here scores the same faces with the same decisions."""
from __future__ import annotations

import numpy as np
import pytest

import edgefas
from edgefas.runtime.backends import BACKENDS, available_backends, why_unavailable

from .conftest import needs_shared


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backend_matches_onnxruntime(name, detector, astronaut_bgr, two_faces, bundle_for_backend):
    if name not in available_backends():
        pytest.skip(why_unavailable(name))
    det = edgefas.Detector(bundle_for_backend(name), backend=name)
    frames = [astronaut_bgr, np.ascontiguousarray(astronaut_bgr[:, ::-1]), two_faces]
    for f in frames:
        a, b = detector(f), det(f)
        assert a.decision == b.decision
        if a.live_score is not None:
            assert abs(a.live_score - b.live_score) < 1e-4
    batch = det.batch(frames)  # dynamic batch axis works on every backend
    assert [r.decision for r in batch] == [detector(f).decision for f in frames]


@needs_shared
@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_backends_agree_on_fixture_faces(name, detector, shared, bundle_for_backend):
    if name not in available_backends():
        pytest.skip(why_unavailable(name))
    det = edgefas.Detector(bundle_for_backend(name), backend=name)
    files = sorted((shared / "fixtures" / "silentface").glob("*.jpg"))
    files += sorted((shared / "fixtures" / "london" / "neutral_front").glob("*.jpg"))[:10]
    for f in files:
        assert det(f).decision == detector(f).decision, f.name
