"""benchmarks/lfw_devel_table.py and devel_worst_source.py: the table of the other-camera devel
experiment is read from the reports, row by row, with counts."""
from __future__ import annotations

import json

import pytest

from .conftest import benchmark_module


def _rate(e, n):
    return {"value": e / n, "errors": e, "count": n}


def _write_reports(d, model, p1_bpcer, london):
    apcer = {"print": _rate(1, 80), "mobile": _rate(0, 160), "overall": _rate(1, 240)}
    p1 = {"P1": {"test": {"report": {"threshold": 0.5, "apcer": apcer, "apcer_max": _rate(1, 80),
                                     "bpcer": _rate(p1_bpcer, 79), "legacy_hter": {"value": 0.02}}}}}
    p4 = {"P4": {"lfw_heldout": {"errors": 30, "bona_fide": 2696},
                 "london": {"errors": london, "bona_fide": 244}}}
    nuaa = {"apcer": {"print": _rate(500, 5761), "overall": _rate(500, 5761)},
            "bpcer": _rate(300, 3362), "legacy_hter": {"value": 0.09}, "auc": {"value": 0.95}}
    p5 = {"P5": {"nuaa": {"report": nuaa}, "essex": {"errors": 2, "bona_fide": 292}}}
    for name, rep in (("P1", p1), ("P4", p4), ("P5", p5)):
        (d / f"{model}_{name}.json").write_text(json.dumps(rep))


def test_table_reads_each_models_reports_in_order(tmp_path):
    t = benchmark_module("lfw_devel_table")
    devel = {"rows": [{"name": "old", "crop_scale": 1.5, "trained_on_lfw_devel": True,
                       "worst_source_deer": {"value": 0.03}},
                      {"name": "new", "crop_scale": 1.0, "trained_on_lfw_devel": False,
                       "worst_source_deer": {"value": 0.01}}]}
    (tmp_path / "devel_rule.json").write_text(json.dumps(devel))
    _write_reports(tmp_path, "a", 2, 189)
    _write_reports(tmp_path, "b", 1, 20)
    assert t.main(["--dir", str(tmp_path), "--model", "a", "--model", "b"]) == 0
    rows = json.loads((tmp_path / "table.json").read_text())["rows"]
    assert [r["p4"]["london"]["errors"] for r in rows] == [189, 20]
    assert rows[1]["p5"]["essex"]["count"] == 292 and rows[0]["trained_on_lfw_devel"]
    md = (tmp_path / "table.md").read_text()
    assert "77.46 % (189/244)" in md and "old) *" in md and "new) *" not in md
    assert "8.68 % (500/5761)" in md
    with pytest.raises(SystemExit, match="2 rows for 1"):
        t.main(["--dir", str(tmp_path), "--model", "a"])


def test_devel_rule_markdown_names_counts_and_marks_optimistic_rows():
    w = benchmark_module("devel_worst_source")
    row = {"name": "v02", "crop_scale": 1.5, "trained_on_lfw_devel": True,
           "counts": {"replay_bona_fide": 1200, "lfw_devel_bona_fide": 1152, "attack": 5999},
           "worst_source_deer": {"value": 0.02, "threshold": 0.3, "apcer": _rate(48, 2399),
                                 "bpcer": _rate(23, 1152)},
           "at_bundle_threshold": {"threshold": 0.9, "apcer": {"mobile": _rate(2, 2399),
                                                               "overall": _rate(2, 5999)},
                                   "bpcer_by_source": {"replay-attack": _rate(1, 1200),
                                                       "lfw": _rate(120, 1152)}}}
    md = w.to_markdown([row], "cmd")
    assert "| v02 * | 1.5 | 2.00 % | 0.3 |" in md
    assert "10.42 % (120/1152)" in md and "1200 Replay devel bona fide" in md


def test_devel_rule_markdown_with_a_source_without_faces():
    w = benchmark_module("devel_worst_source")
    row = {"name": "x", "crop_scale": 1.0, "trained_on_lfw_devel": False,
           "counts": {"replay_bona_fide": 10, "lfw_devel_bona_fide": 0, "attack": 20},
           "worst_source_deer": {"value": 0.1, "threshold": 0.5, "apcer": _rate(2, 20),
                                 "bpcer": _rate(1, 10)},
           "at_bundle_threshold": {"threshold": 0.5, "apcer": {"overall": _rate(2, 20)},
                                   "bpcer_by_source": {"replay-attack": _rate(1, 10)}}}
    md = w.to_markdown([row], "cmd")
    assert "10.00 % (2/20) / 10.00 % (1/10) / n/a |" in md


def test_devel_rule_markdown_lists_the_info_source_beside_the_rule():
    w = benchmark_module("devel_worst_source")
    base = {"crop_scale": 1.5, "trained_on_lfw_devel": False,
            "counts": {"replay_bona_fide": 10, "lfw_devel_bona_fide": 5, "attack": 20},
            "worst_source_deer": {"value": 0.1, "threshold": 0.5, "apcer": _rate(2, 20),
                                  "bpcer": _rate(1, 10)},
            "at_bundle_threshold": {"threshold": 0.5, "apcer": {"overall": _rate(2, 20)},
                                    "bpcer_by_source": {"replay-attack": _rate(1, 10)}}}
    def info(trained: bool, errors: int) -> dict:
        return {"source": "cfd", "bona_fide": 69, "trained_on_source": trained,
                "bpcer_at_bundle_threshold": _rate(errors, 69)}

    rows = [{**base, "name": "old", "info_live": info(False, 9)},
            {**base, "name": "new", "info_live": info(True, 1)}]
    md = w.to_markdown(rows, "cmd")
    assert "BPCER of cfd's devel-bucket people" in md
    assert "| old | 13.04 % (9/69) |" in md and "| new † | 1.45 % (1/69) |" in md
    assert "cfd" not in w.to_markdown([base | {"name": "x"}], "cmd")
