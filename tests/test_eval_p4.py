"""P4's second operating point: the threshold comes from Replay devel (APCER_max <= 1 %), never
from the unseen live faces it is applied to, and the summary table states it with counts."""
from __future__ import annotations

import numpy as np
import pytest

from edgefas.cli.eval_table import protocol_table
from edgefas.data.face_cache import CropSet
from edgefas.data.samples import Sample
from edgefas.errors import DatasetError
from edgefas.evaluation import p4_at_devel_apcer


class _FakeDet:
    """Scores a crop by its first pixel / 255 (the crops below encode their intended score)."""

    threshold = 0.5

    def live_scores(self, crops: np.ndarray) -> np.ndarray:
        return crops[:, 0, 0, 0].astype(np.float64) / 255.0


def _crops(levels: list[int]) -> np.ndarray:
    out = np.zeros((len(levels), 4, 4, 3), np.uint8)
    out[:, 0, 0, 0] = levels
    return out


class _FakeStore:
    def __init__(self, devel: CropSet | None) -> None:
        self.devel = devel

    def replay(self, *, frames: str = "20") -> CropSet:
        if self.devel is None:
            raise DatasetError("Replay-Attack tree not found")
        return self.devel


def _devel() -> CropSet:
    # 100 print attacks scored 0..99 and 100 mobile attacks 0..49 (two at 120, 121), 50 live at 200+
    # plus a test-split sample that must be ignored.
    samples, levels = [], []
    for i in range(100):
        samples.append(Sample(f"p{i}", True, "print", "devel", "replay-attack", lighting="controlled"))
        levels.append(i)
    for i in range(100):
        samples.append(Sample(f"m{i}", True, "mobile", "devel", "replay-attack", lighting="adverse"))
        levels.append(120 + i if i < 2 else i // 2)
    for i in range(50):
        samples.append(Sample(f"l{i}", False, "bona_fide", "devel", "replay-attack"))
        levels.append(200 + i)
    samples.append(Sample("t", True, "print", "test", "replay-attack"))
    levels.append(250)
    n = len(samples)
    return CropSet(samples, _crops(levels), np.array(["ok"] * n), np.ones(n, np.float32))


def test_threshold_comes_from_devel_and_is_applied_to_the_unseen_live_faces():
    bona_fide = {"lfw_heldout": {"_scores": np.array([0.3, 0.45, 0.6, 0.9])},
                 "london": {"_scores": np.array([0.4, 0.95])}}
    out = p4_at_devel_apcer(_FakeDet(), _FakeStore(_devel()), bona_fide, target=0.01)
    # APCER_max <= 1 % allows one mobile attack at or above the threshold: the lowest one that
    # keeps the other (score 120/255) out is the next score up, 121/255.
    assert out["devel_apcer_max"]["count"] == 100
    assert out["devel_apcer_max"]["errors"] <= 1
    assert 99 / 255 < out["threshold"] <= 121 / 255
    assert out["devel_bpcer"] == {"errors": 0, "count": 50}
    thr = out["threshold"]
    assert out["lfw_heldout"]["errors"] == int((bona_fide["lfw_heldout"]["_scores"] < thr).sum())
    assert out["london"]["bona_fide"] == 2
    assert "APCER_max <= 1%" in out["criterion"]
    # stricter security, higher threshold, at least as many live rejections
    strict = p4_at_devel_apcer(_FakeDet(), _FakeStore(_devel()), bona_fide, target=0.0)
    assert strict["threshold"] >= thr and strict["devel_apcer_max"]["errors"] == 0
    assert strict["lfw_heldout"]["errors"] >= out["lfw_heldout"]["errors"]


def test_missing_devel_data_is_an_error_the_caller_reports():
    with pytest.raises(DatasetError):
        p4_at_devel_apcer(_FakeDet(), _FakeStore(None), {})


def test_summary_states_the_second_threshold_after_the_table():
    res = {"P4": {
        "lfw_heldout": {"split": "LFW held-out", "bona_fide": 100, "errors": 12, "bpcer": 0.12,
                        "ci95": [0.07, 0.2], "threshold": 0.8, "fta": {"failed": 0}},
        "london": {"split": "london", "bona_fide": 244, "errors": 100, "bpcer": 100 / 244,
                   "ci95": [0.35, 0.47], "threshold": 0.8, "fta": {"failed": 0}},
        "at_devel_apcer": {"criterion": "lowest threshold with APCER_max <= 1% on devel",
                           "threshold": 0.3, "devel_apcer_max": {"errors": 23, "count": 2399},
                           "lfw_heldout": {"errors": 3, "bona_fide": 100, "bpcer": 0.03},
                           "london": {"errors": 40, "bona_fide": 244, "bpcer": 40 / 244}}}}
    md = protocol_table(res)
    table, _, after = md.partition("\n\n")
    assert table.count("| P4 ") == 2
    assert after.startswith("P4 at a second threshold, 0.3,")
    assert "lfw_heldout 3.00% (3/100); london 16.39% (40/244)" in after
    assert "(devel APCER_max 23/2399)" in after
    skipped = protocol_table({"P4": {**res["P4"], "at_devel_apcer": {"skipped": "no devel"}}})
    assert "second threshold" not in skipped


def test_a_set_with_no_scored_face_has_no_bpcer_and_failures_are_counted_per_class():
    from edgefas.evaluation import evaluate_bona_fide

    samples = [Sample("a", False, "bona_fide", "heldout", "lfw"),
               Sample("b", False, "bona_fide", "heldout", "lfw")]
    cs = CropSet(samples, _crops([0, 0]), np.array(["no_face", "bad_input"]), np.zeros(2, np.float32))
    res = evaluate_bona_fide(_FakeDet(), cs, split="lfw")
    assert res["bpcer"] is None and res["bona_fide"] == 0   # not "0.00 %" of nothing
    assert res["fta"]["by_class"] == {"bona_fide": 2}
    assert res["fta"]["files"] == [{"path": "a", "reason": "no_face"}, {"path": "b", "reason": "bad_input"}]
    res["ci95"] = [0.0, 1.0]
    md = protocol_table({"P4": {"lfw_heldout": res}})
    assert "| n/a (0/0;" in md
