"""Shared test fixtures. Tests that need ../shared skip with a reason when it is absent."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def benchmark_module(name: str):
    """A script of benchmarks/ imported as a module (benchmarks/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


REPLAY_SPECIES = ("print", "mobile", "highdef")


def attack_like(img: np.ndarray, k: int) -> np.ndarray:
    out = img.astype(np.float32) * 0.8 + np.array([30, -10, -20]) * (1 + k % 2)
    out[:, ::4] += 25  # screen-like column pattern
    return np.clip(out, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def replay_tree(tmp_path_factory, astronaut_bgr):
    """A tiny Replay-Attack-style tree in the real layouts (20-frame tree for train/devel, one
    frame per video for test, official video names): 2 clients x 2 lightings per split; faces
    are the astronaut (live) and recoloured, striped copies of it (attacks)."""
    root = tmp_path_factory.mktemp("replay")
    frames, one = root / "frames", root / "one"
    for split in ("train", "devel", "test"):
        for c in (1, 2):
            for light in ("controlled", "adverse"):
                real = f"client00{c}_session01_webcam_authenticate_{light}_1"
                img = cv2.flip(astronaut_bgr, 1) if c == 2 else astronaut_bgr
                for f in range(2):
                    d = frames / split / f"{split}__real__real__{real}"
                    d.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(d / f"frame_{f:05d}.jpg"), np.roll(img, 3 * f, axis=1))
                (one / split / "real").mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(one / split / "real" / f"{real}.jpg"), img)
                for k, sp in enumerate(REPLAY_SPECIES):
                    name = f"attack_{sp}_client00{c}_session01_highdef_photo_{light}"
                    att = attack_like(img, k)
                    for f in range(2):
                        d = frames / split / f"{split}__attack__fixed__{name}"
                        d.mkdir(parents=True, exist_ok=True)
                        cv2.imwrite(str(d / f"frame_{f:05d}.jpg"), np.roll(att, 3 * f, axis=1))
                    (one / split / "attack" / "fixed").mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(one / split / "attack" / "fixed" / f"{name}.jpg"), att)
    return frames, one


@pytest.fixture(scope="session")
def bundle_for_backend(tmp_path_factory, detector, astronaut_bgr):
    """The default bundle for a backend: itself, or (LiteRT) a copy with the tflite classifier
    exported from its safetensors and gated against PyTorch on aligned astronaut crops (the
    shipped bundle leaves the .tflite out to stay under 10 MB)."""
    made: dict[str, Path] = {}

    def get(name: str) -> Path | None:
        from edgefas.bundle import default_bundle_path

        if name != "litert":
            return None   # Detector() loads the default bundle
        if name not in made:
            pytest.importorskip("litert_torch", reason="the tflite export needs litert-torch (export extra)")
            from edgefas.data.face_cache import CropSet
            from edgefas.data.samples import Sample
            from edgefas.export.bundle_export import export_bundle

            stage = detector.face_stage
            frames = [np.roll(astronaut_bgr, 7 * k, axis=1) for k in range(8)]
            frames = [f if k % 2 else np.ascontiguousarray(f[:, ::-1]) for k, f in enumerate(frames)]
            crops = np.stack([stage(f).alignment.crop for f in frames])
            cs = CropSet([Sample(f"a{k}", k % 2 == 1, "print" if k % 2 else "bona_fide", "devel", "astronaut")
                          for k in range(len(frames))], crops, np.array(["ok"] * len(frames)),
                         np.ones(len(frames), np.float32))
            out = tmp_path_factory.mktemp("litert") / "bundle"
            export_bundle(default_bundle_path(), target="tflite", precision="fp32", out=out, devel=cs)
            made[name] = out
        return made[name]

    return get


def face_clip(face_bgr: np.ndarray, n: int, *, still: bool = False, seed: int = 0
              ) -> list[np.ndarray]:
    """``n`` 480x640 frames of a face over a fixed textured background. ``still=False``: the
    face moves 4 px a frame and nods while the background stays put (a person); ``still=True``:
    nothing moves and only sensor noise changes (a photo on a stand). Both carry the same
    noise, so only motion tells them apart."""
    rng = np.random.default_rng(seed)
    bg = cv2.resize(rng.integers(40, 200, (12, 16, 3), dtype=np.uint8), (640, 480),
                    interpolation=cv2.INTER_CUBIC)
    # a face ~150 px wide: smaller ones make the detector's alignment jump enough between
    # offsets for the session's appearance check to see another face
    face = cv2.resize(face_bgr[20:260, 140:380], (360, 360))
    frames = []
    for i in range(n):
        fr = bg.copy()
        dx, dy = (0, 0) if still else (4 * i, 2 * (i % 2))
        fr[60 + dy:420 + dy, 140 + dx:500 + dx] = face
        noise = rng.normal(0, 2.0, fr.shape)
        frames.append(np.clip(fr + noise, 0, 255).astype(np.uint8))
    return frames
