"""Crop packs: lossless, checked at load, and what `edgefas teacher --save-pack/--pack` reads."""
from __future__ import annotations

import numpy as np
import pytest

from edgefas.distill.crop_pack import load_crop_pack, save_crop_pack
from edgefas.distill.errors import TeacherConfigError


def _faces(n: int = 6, side: int = 32) -> np.ndarray:
    # Smooth gradients plus noise: like faces, they compress, and any lossy step would show.
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 200, side, dtype=np.float32)
    base = (ramp[None, :, None, None] + ramp[None, None, :, None]) / 2
    return np.clip(base + rng.normal(0, 12, (n, side, side, 3)), 0, 255).astype(np.uint8)


def test_pack_round_trip_is_pixel_exact_and_keeps_labels_and_record(tmp_path):
    crops, live = _faces(), np.array([True, False] * 3)
    path = save_crop_pack(tmp_path / "p.npz", crops, live, region=0.5,
                          data={"model": "agfas", "protocol": "P1"})
    got, got_live, meta = load_crop_pack(path)
    assert np.array_equal(got, crops) and np.array_equal(got_live, live)
    assert meta["region"] == 0.5 and meta["data"]["model"] == "agfas" and meta["side"] == 32
    assert path.stat().st_size < crops.nbytes     # smaller than the raw pixels


def test_a_damaged_or_foreign_pack_is_refused(tmp_path):
    path = save_crop_pack(tmp_path / "p.npz", _faces(), np.ones(6, bool), region=1.0, data={})
    with np.load(path) as z:
        arrays = dict(z)
    blob = arrays["blob"].copy()
    blob[len(blob) // 2] ^= 0xFF
    np.savez(tmp_path / "bad.npz", **{**arrays, "blob": blob})
    with pytest.raises(TeacherConfigError, match="decode|differ"):
        load_crop_pack(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(TeacherConfigError, match="not an edgefas crop pack"):
        load_crop_pack(tmp_path / "other.npz")
    with pytest.raises(TeacherConfigError, match="not found"):
        load_crop_pack(tmp_path / "missing.npz")
    with pytest.raises(TeacherConfigError, match="labels"):
        save_crop_pack(tmp_path / "x.npz", _faces(), np.ones(2, bool), region=1.0, data={})


def test_an_interrupted_write_leaves_the_old_pack_and_no_partial_file(tmp_path, monkeypatch):
    path = save_crop_pack(tmp_path / "p.npz", _faces(), np.ones(6, bool), region=1.0, data={"n": 1})
    before = path.read_bytes()

    def interrupted(f, **arrays):
        f.write(b"PK\x03\x04 half a pack")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_crop_pack(path, _faces(4), np.ones(4, bool), region=1.0, data={"n": 2})
    assert path.read_bytes() == before                       # the complete old pack, as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]   # no temporary file left
