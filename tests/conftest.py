"""Shared test fixtures. Tests that need ../shared skip with a reason when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _find_shared() -> Path | None:
    env = os.environ.get("EDGEFAS_SHARED")
    for c in ([Path(env)] if env else []) + [ROOT.parent / "shared", ROOT / "shared"]:
        if (c / "fixtures").is_dir():
            return c
    return None


SHARED = _find_shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared (fixtures) is not beside the checkout; set EDGEFAS_SHARED")


@pytest.fixture(scope="session")
def shared() -> Path:
    if SHARED is None:
        pytest.skip("../shared (fixtures) is not beside the checkout; set EDGEFAS_SHARED")
    return SHARED


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """A real live face that ships with scikit-image (public domain), as BGR."""
    data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) is needed")
    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


@pytest.fixture(scope="session")
def detector():
    import edgefas

    return edgefas.Detector()


@pytest.fixture(scope="session")
def two_faces(astronaut_bgr) -> np.ndarray:
    """Two equal faces side by side: an ambiguous frame."""
    face = astronaut_bgr[0:300, 100:400]
    return np.ascontiguousarray(np.hstack([face, face]))
