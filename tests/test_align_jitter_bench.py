"""benchmarks/align_jitter.py: the perturbations, the crop-to-crop geometry and the summary."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from .conftest import benchmark_module


@pytest.mark.parametrize("name", ["right 1 detector px", "down 1 detector px", "2 % smaller"])
def test_the_returned_map_is_the_move_the_frame_made(name):
    aj = benchmark_module("align_jitter")
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[40, 60] = 255   # near a corner: 2 % smaller moves it ~5 px toward the centre
    moved, t = aj.perturb(frame, name)
    assert moved.shape == frame.shape
    y, x = np.unravel_index(np.argmax(moved[..., 0].astype(float)), moved.shape[:2])
    px, py, _ = t @ np.array([60.0, 40.0, 1.0])
    assert abs(x - px) <= 1 and abs(y - py) <= 1
    expected = {"right 1 detector px": (65, 40), "down 1 detector px": (60, 45),
                "2 % smaller": (60 + 0.02 * (319.5 - 60), 40 + 0.02 * (239.5 - 40))}[name]
    assert abs(px - expected[0]) < 1e-6 and abs(py - expected[1]) < 1e-6


def test_relative_geometry_is_zero_for_an_alignment_that_follows_the_move_exactly():
    aj = benchmark_module("align_jitter")
    a1 = cv2.getRotationMatrix2D((60.0, 70.0), 10.0, 0.5)
    t = np.vstack([cv2.getRotationMatrix2D((320.0, 240.0), 0.0, 0.98), [0, 0, 1]])
    a2 = (np.vstack([a1, [0, 0, 1]]) @ np.linalg.inv(t))[:2]   # the crop the moved face should get
    ds, rot, shift = aj.relative(a1, a2, t, 128)
    assert abs(ds) < 1e-9 and abs(rot) < 1e-9 and shift < 1e-9
    # an alignment 2 % larger and turned 1 degree about the crop centre is reported as such
    off = cv2.getRotationMatrix2D((64.0, 64.0), 1.0, 1.02)
    a3 = (np.vstack([off, [0, 0, 1]]) @ np.vstack([a2, [0, 0, 1]]))[:2]
    ds, rot, shift = aj.relative(a1, a3, t, 128)
    assert ds == pytest.approx(2.0, abs=1e-6) and rot == pytest.approx(-1.0, abs=1e-6)
    assert shift < 1e-6


def test_summary_counts_flips_at_the_threshold_and_skips_unscored_pairs():
    aj = benchmark_module("align_jitter")
    row = {"path": "a", "source": "x", "perturbation": "p", "scored": True, "scale_pct": 1.0,
           "rotation_deg": -1.0, "shift_px": 0.5}
    rows = [dict(row, score=0.4, score_moved=0.6), dict(row, score=0.9, score_moved=0.8),
            dict(row, score=0.2, score_moved=0.1), {"path": "b", "scored": False}]
    s = aj.summarise(rows, 0.5)
    assert (s["pairs"], s["scored"], s["flips"]) == (4, 3, 1)
    assert s["score_diff"]["mean"] == pytest.approx(0.4 / 3)
    assert s["abs_rotation_deg"]["p50"] == 1.0
    assert aj.summarise([{"scored": False}], 0.5) == {"pairs": 1, "scored": 0}


def test_a_tiny_run_on_the_london_fixtures_writes_both_reports(shared, tmp_path, monkeypatch):
    import json

    aj = benchmark_module("align_jitter")
    monkeypatch.setenv("EDGEFAS_SHARED", str(shared))
    out = tmp_path / "aj"
    assert aj.main(["--set", "london", "--per-source", "2", "--flip-average", "--out", str(out)]) == 0
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["images"] == 2 and report["flip_average"]
    b = report["bundles"][0]
    assert b["all"]["pairs"] == 6 and b["all"]["scored"] >= 3
    assert set(b["by_perturbation"]) == set(aj.PERTURBATIONS)
    assert "mirror image" in out.with_suffix(".md").read_text()


def test_the_sets_keep_training_and_devel_people_apart(monkeypatch, tmp_path):
    from edgefas.data import lfw as lfw_mod
    from edgefas.data import replay_attack, sources
    from edgefas.data.lfw import identity_split, is_devel_identity
    from edgefas.data.samples import Sample

    aj = benchmark_module("align_jitter")
    people = [f"Person_{i}" for i in range(400)]

    def fake_lfw(root, splits=("train", "heldout")):
        return [Sample(f"{p}_0001.jpg", False, "bona_fide", identity_split(p), "lfw", subject=p)
                for p in people if identity_split(p) in splits]

    def fake_replay(root, splits=("train", "devel", "test"), frames_per_video=1):
        return [Sample(f"{sp}/{i}.jpg", False, "bona_fide", sp, "replay-attack") for sp in splits
                for i in range(3)]

    monkeypatch.setattr(lfw_mod, "load_lfw", fake_lfw)
    monkeypatch.setattr(replay_attack, "load_replay_attack", fake_replay)
    monkeypatch.setattr(sources, "data_root", lambda: tmp_path)   # no CFD here
    name = lambda path: path.rsplit("_", 1)[0]  # noqa: E731
    train = aj.images_of("train", 1000, 0)
    devel = aj.images_of("devel", 1000, 0)
    lfw_train = [name(p) for p, src in train if src == "lfw-train"]
    lfw_devel = [name(p) for p, src in devel if src == "lfw-devel"]
    assert lfw_train and lfw_devel
    assert all(identity_split(p) == "train" and not is_devel_identity(p) for p in lfw_train)
    assert all(is_devel_identity(p) for p in lfw_devel)
    assert {p.split("/")[0] for p, src in train if src.startswith("replay")} == {"train"}
    assert {p.split("/")[0] for p, src in devel if src.startswith("replay")} == {"devel"}
    assert len(aj.images_of("devel", 2, 0)) == 4   # at most 2 per source
