"""benchmarks/fusion_table.py: the ablation table only restates the eval reports it is given."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import benchmark_module


def _module():
    return benchmark_module("fusion_table")


def _reports(tmp_path: Path, name: str, print_errors: int, lfw_errors: int) -> list[Path]:
    apcer = {"print": {"errors": print_errors, "count": 80}, "mobile": {"errors": 0, "count": 160},
             "overall": {"errors": print_errors, "count": 240}}
    report = {"n_bona_fide": 79, "n_attack": 240, "apcer": apcer, "apcer_max": {"value": print_errors / 80},
              "bpcer": {"errors": 1, "count": 79}, "legacy_hter": {"value": 0.01}, "auc": {"value": 0.999}}
    p1 = {"P1": {"bundle": name, "threshold": 0.4, "threshold_source": {"split": "devel"},
                 "test": {"report": report}}}
    p4 = {"P4": {"lfw_heldout": {"errors": lfw_errors, "bona_fide": 2696},
                 "london": {"errors": 3, "bona_fide": 244}}}
    files = [tmp_path / f"P1_{name}.json", tmp_path / f"P4_{name}.json"]
    for f, d in zip(files, (p1, p4)):
        f.write_text(json.dumps(d))
    return files


def test_rows_restate_the_reports_and_the_command_is_recorded(tmp_path):
    mod = _module()
    a, b = _reports(tmp_path, "rgb", 1, 186), _reports(tmp_path, "fused", 2, 79)
    out = tmp_path / "abl"
    assert mod.main(["--row", "RGB=" + ",".join(map(str, a)), "--row", "fused=" + ",".join(map(str, b)),
                     "--out", str(out)]) == 0
    table = json.loads(out.with_suffix(".json").read_text())
    assert [r["model"] for r in table["rows"]] == ["RGB", "fused"]
    assert table["rows"][1]["p4"]["lfw_heldout"] == {"errors": 79, "count": 2696}
    assert table["rows"][1]["p1_test"]["apcer"]["print"] == {"errors": 2, "count": 80}
    assert "fusion_table.py --row" in table["command"]
    md = out.with_suffix(".md").read_text()
    assert md.startswith("# Fusion detector ablations")   # the default heading
    assert "| fused | mobile 0/160, print 2/80 | 2.50% | 1.27% (1/79) |" in md and "2.93% (79/2,696)" in md
    mod.main(["--row", "RGB=" + ",".join(map(str, a)), "--out", str(out), "--title", "Augmentation"])
    assert out.with_suffix(".md").read_text().startswith("# Augmentation\n")
    with pytest.raises(SystemExit, match="NAME=P1.json"):
        mod.main(["--row", "no-equals-sign", "--out", str(out)])


def _p2_report(path: Path, protos: dict[str, tuple[int, int]]) -> Path:
    """An eval report with P2 protocols: {protocol: (held-out APCER errors, BPCER errors)}."""
    out = {}
    for proto, (ap, bp) in protos.items():
        sp = proto.split("-", 1)[1]
        n = 80 if sp == "print" else 160
        out[proto] = {"bundle": f"b-{proto}", "threshold": 0.5,
                      "test": {"report": {"apcer": {sp: {"errors": ap, "count": n}, "overall": {}},
                                          "bpcer": {"errors": bp, "count": 79}, "auc": {"value": 0.99}}}}
    path.write_text(json.dumps(out))
    return path


def test_p2_table_compares_mean_held_out_apcer_with_the_first_row(tmp_path):
    mod = _module()
    p1 = _reports(tmp_path, "rgb", 1, 186)
    base = _p2_report(tmp_path / "base.json", {"P2-print": (9, 1), "P2-mobile": (0, 3), "P2-highdef": (1, 2)})
    parts = [_p2_report(tmp_path / f"{p}.json", {p: v}) for p, v in
             (("P2-print", (4, 1)), ("P2-mobile", (0, 2)), ("P2-highdef", (1, 2)))]
    out = tmp_path / "abl"
    assert mod.main(["--row", "RGB=" + ",".join(map(str, p1)), "--p2", f"RGB={base}",
                     "--p2", "fused=" + ",".join(map(str, parts)), "--out", str(out)]) == 0
    table = json.loads(out.with_suffix(".json").read_text())
    ref, fused = table["p2_rows"]
    assert ref["mean_apcer"] == pytest.approx((9 / 80 + 0 + 1 / 160) / 3)
    assert fused["protocols"]["P2-print"]["apcer"] == {"errors": 4, "count": 80}
    md = out.with_suffix(".md").read_text()
    # (4/80 + 1/160) / (9/80 + 1/160) - 1 = -53 %; BPCER 5/237 <= 6/237
    assert "| fused | 5.00% (4/80) / 1.27% (1/79) |" in md and "-53 % (BPCER no higher)" in md
    with pytest.raises(SystemExit, match="no P2-mobile"):
        mod.main(["--row", "RGB=" + ",".join(map(str, p1)), "--p2", f"x={parts[0]}", "--out", str(out)])


def test_second_p4_operating_point_gets_its_own_column_when_reported(tmp_path):
    mod = _module()
    a, b = _reports(tmp_path, "old", 1, 186), _reports(tmp_path, "new", 1, 120)
    p4 = json.loads(b[1].read_text())
    p4["P4"]["at_devel_apcer"] = {"criterion": "lowest threshold with APCER_max <= 1% on devel",
                                  "threshold": 0.25, "devel_apcer_max": {"errors": 20, "count": 2399},
                                  "lfw_heldout": {"errors": 90, "bona_fide": 2696, "bpcer": 90 / 2696},
                                  "london": {"errors": 100, "bona_fide": 244, "bpcer": 100 / 244}}
    b[1].write_text(json.dumps(p4))
    out = tmp_path / "abl"
    mod.main(["--row", "old=" + ",".join(map(str, a)), "--row", "new=" + ",".join(map(str, b)),
              "--out", str(out)])
    table = json.loads(out.with_suffix(".json").read_text())
    assert "p4_at_devel_apcer" not in table["rows"][0]
    assert table["rows"][1]["p4_at_devel_apcer"]["london"] == {"errors": 100, "count": 244}
    md = out.with_suffix(".md").read_text()
    assert "P4 BPCER at devel APCER_max ≤ 1 % (LFW / london) |" in md
    assert "| – |" in md  # the older report has no second point: a dash, not a made-up figure
    assert "3.34% (90/2,696) / 40.98% (100/244) (threshold 0.25) |" in md
    # without any second point the table keeps its old columns
    mod.main(["--row", "old=" + ",".join(map(str, a)), "--out", str(out)])
    assert "devel APCER_max ≤ 1 %" not in out.with_suffix(".md").read_text()
