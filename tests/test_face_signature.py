"""The appearance signature sessions compare, and benchmarks/face_signature.py's pairing."""
from __future__ import annotations

import json

import numpy as np

from edgefas.data.samples import Sample
from edgefas.runtime.face_signature import SIDE, face_signature, signature_similarity

from .conftest import benchmark_module


def test_signature_is_unit_norm_and_ignores_brightness_and_contrast(detector, astronaut_bgr):
    crop = detector.face_crop(astronaut_bgr)[0]
    s = face_signature(crop)
    assert s.shape == (SIDE * SIDE,) and s.dtype == np.float32 and not s.flags.writeable
    assert abs(np.linalg.norm(s) - 1) < 1e-5
    brighter = np.clip(crop.astype(np.int16) * 0.8 + 30, 0, 255).astype(np.uint8)
    assert signature_similarity(s, face_signature(brighter)) > 0.99
    # the crop mirrored is another arrangement of features: clearly lower
    assert signature_similarity(s, face_signature(crop[:, ::-1].copy())) < 0.9
    flat = face_signature(np.full_like(crop, 128))
    assert not flat.any() and signature_similarity(s, flat) == 0.0


def test_a_face_moving_or_shifted_by_a_detector_pixel_keeps_its_session(detector, astronaut_bgr):
    # the detector's landmarks jump between a few alignments of one face as it moves; the
    # session compares with the track, not the last frame, so none of this resets it
    rolled = [np.roll(astronaut_bgr, 4 * i, axis=1) for i in range(8)]
    moving = benchmark_module("reliability").base_frames()
    for frames in (rolled, moving, moving[::-1] + moving):
        s = detector.session(min_frames=3)
        for i, f in enumerate(frames):
            v = s(f, t=i / 25).verdict
        assert v.resets == 0 and v.frames == len(frames), v.reasons


def _s(i: int, subject: str, video: str, attack: bool = False) -> Sample:
    return Sample(f"/d/{video}/frame_{i:05d}.jpg", attack, "print" if attack else "bona_fide",
                  "devel", "replay-attack", subject=subject, video=video,
                  support="fixed" if attack else "", lighting="controlled")


def test_benchmark_compares_frames_with_their_tracks_and_other_clients(tmp_path):
    fs = benchmark_module("face_signature")
    samples = [_s(i, c, f"{c}_{k}", k == "a") for c in ("c1", "c2") for k in ("l", "a") for i in range(3)]
    same, other = fs.tracks(samples)
    assert len(same) == 8   # 4 videos x 2 frames after the first
    for track, new in same:
        assert all(samples[t].video == samples[new].video and samples[t].path < samples[new].path
                   for t in track)
    assert len(other) == 4 * fs.PAIRS_PER_VIDEO
    for track, new in other:
        sa, sb = samples[track[0]], samples[new]
        assert sa.subject != sb.subject and sa.is_attack == sb.is_attack and len(track) == 3
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (len(samples), 32, 32, 3), dtype=np.uint8)
    rep = {"command": "x", "bundle": "b", "default": 0.85, "side": SIDE,
           "devel": fs.measure(crops, samples, [0.5, 0.99]), "test": fs.measure(crops, samples, [0.5])}
    md = fs.to_markdown(rep)
    fs.write_report(tmp_path / "r", rep, md, echo=False)
    assert "| devel | 0.99 |" in md and json.loads((tmp_path / "r.json").read_text())["side"] == SIDE
