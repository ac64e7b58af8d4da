"""edgefas calibrate: a camera-specific threshold and calibration in a verified bundle copy."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from edgefas import Detector, load_bundle
from edgefas.calibrate import oob_bootstrap, threshold_for_apcer, threshold_for_bpcer
from edgefas.cli import main

from .conftest import attack_like


def test_threshold_for_bpcer_rejects_at_most_the_target():
    s = np.arange(1, 101) / 100.0  # 100 distinct scores
    t = threshold_for_bpcer(s, 0.05)
    assert (s < t).sum() == 5
    assert (s < threshold_for_bpcer(s, 0.0)).sum() == 0
    assert (s < threshold_for_bpcer(s, 0.049)).sum() == 4


def test_threshold_for_apcer_accepts_at_most_the_target_of_every_species():
    a = np.arange(1, 101) / 100.0          # species "a": 100 distinct scores
    b = np.arange(1, 21) / 200.0           # species "b": 20 low scores
    s, sp = np.r_[a, b], ["a"] * 100 + ["b"] * 20
    t = threshold_for_apcer(s, sp, 0.05)
    assert (a >= t).sum() == 5 and (b >= t).sum() <= 1
    assert (a >= np.nextafter(t, 0)).sum() == 6  # the lowest such threshold: any lower lets 6 in
    assert (s >= threshold_for_apcer(s, sp, 0.0)).sum() == 0
    # the worst species decides: with "b" raised above "a", "b" sets the threshold
    t2 = threshold_for_apcer(np.r_[a, b + 2], sp, 0.05)
    assert (b + 2 >= t2).sum() == 1 and (a >= t2).sum() == 0


def test_oob_bootstrap_apcer_criterion_is_near_its_target():
    rng = np.random.default_rng(2)
    live, att = rng.beta(8, 2, 300), rng.beta(2, 8, 400)
    sp = np.array(["p", "s"] * 200)
    r = oob_bootstrap(live, att, 0.05, n=200, criterion="apcer", species=sp)
    assert r == oob_bootstrap(live, att, 0.05, n=200, criterion="apcer", species=sp)
    assert 0.01 < r["apcer"]["mean"] < 0.09
    assert r["bpcer"]["mean"] < oob_bootstrap(live, att, 0.01, n=200, criterion="apcer",
                                              species=sp)["bpcer"]["mean"]  # stricter costs more


def test_oob_bootstrap_reports_the_worst_species_beside_the_pool():
    # a large easy species hides a small hard one in the pooled rate; APCER_max does not
    rng = np.random.default_rng(0)
    live = rng.uniform(0.5, 1.0, 300)
    att = np.concatenate([rng.uniform(0, 0.3, 200), rng.uniform(0.2, 0.9, 20)])
    sp = np.array(["print"] * 200 + ["screen"] * 20)
    r = oob_bootstrap(live, att, 0.05, n=200, criterion="apcer", species=sp)
    assert r["apcer"]["mean"] < 0.02 < 0.05 < r["apcer_max"]["mean"]
    assert oob_bootstrap(live, att, 0.05, n=20)["apcer_max"] is None   # one species: no max
    # saturated attack scores: no threshold in [0, 1] meets the target
    assert threshold_for_apcer(np.array([0.1, 0.5, 1.0]), ["s"] * 3, 0.0) > 1.0


def test_oob_bootstrap_is_reproducible_and_sane():
    rng = np.random.default_rng(1)
    live, att = rng.beta(8, 2, 300), rng.beta(2, 8, 300)
    a = oob_bootstrap(live, att, 0.05, n=200)
    assert a == oob_bootstrap(live, att, 0.05, n=200)
    assert 0.02 < a["bpcer"]["mean"] < 0.09  # near the 5% target on held-out captures
    assert a["apcer"]["ci95"][0] <= a["apcer"]["mean"] <= a["apcer"]["ci95"][1]


@pytest.fixture(scope="module")
def captures(tmp_path_factory, astronaut_bgr):
    """Live: the astronaut under shifts and exposure changes; attacks: recoloured, striped
    copies in two species folders."""
    root = tmp_path_factory.mktemp("cam")
    base = cv2.resize(astronaut_bgr, (384, 384))
    for i in range(24):
        img = np.clip(np.roll(base, 5 * (i % 6) - 12, axis=1).astype(np.float32)
                      * (0.8 + 0.02 * i), 0, 255).astype(np.uint8)
        (root / "live").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "live" / f"l{i:02d}.jpg"), img)
        sp = "print" if i % 2 else "screen"
        (root / "attack" / sp).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "attack" / sp / f"a{i:02d}.jpg"), attack_like(img, i))
    cv2.imwrite(str(root / "live" / "blank.png"), np.full((200, 200, 3), (10, 80, 160), np.uint8))
    return root


def _calibrate_with_attacks(captures, out, report, *target: str) -> int:
    """``edgefas calibrate`` on the fixture captures (live + attacks) with a small bootstrap."""
    return main(["calibrate", "--live", str(captures / "live"), "--attack",
                 str(captures / "attack"), *target, "--out", str(out), "--min-live", "20",
                 "--bootstrap", "100", "--no-progress", "--json", str(report)])


def test_calibrate_writes_a_verified_bundle_with_the_choice_recorded(captures, tmp_path, capsys):
    out = tmp_path / "cam1"
    rc = _calibrate_with_attacks(captures, out, tmp_path / "rep.json", "--target-bpcer", "5%")
    assert rc == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "24 live" in text and "expected on new captures" in text
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["live"] == {"dir": str(captures / "live"), "usable": 24,
                           "failed": {"no_face": 1}}
    assert rep["calibration_refit"] and rep["attack"]["usable"] == 24
    assert set(rep["in_sample"]["apcer_per_species"]) == {"print", "screen"}
    b = load_bundle(out)  # hashes verify
    m = b.manifest
    assert m["threshold"]["value"] == rep["threshold"]
    assert m["threshold"]["previous"]["split"].startswith("replay-attack devel")
    assert m["calibration"]["a"] == rep["calibration"]["a"]
    assert m["camera_calibration"]["target_bpcer"] == 0.05
    # the calibrated bundle really applies its new threshold and mapping
    det = Detector(out)
    live_scores = [det(f).live_score for f in sorted((captures / "live").glob("*.jpg"))]
    assert np.mean(np.array(live_scores) < det.threshold) <= 0.05 + 1e-9


def test_calibrate_live_only_keeps_the_mapping_and_refuses_bad_input(captures, tmp_path, capsys):
    out = tmp_path / "cam2"
    assert main(["calibrate", "--live", str(captures / "live"), "--target-bpcer", "0",
                 "--out", str(out), "--min-live", "20", "--bootstrap", "50",
                 "--no-progress"]) == 0
    m = load_bundle(out).manifest
    assert m["calibration"] == load_bundle().manifest["calibration"]
    assert m["camera_calibration"]["in_sample"]["bpcer"]["errors"] == 0
    # the output folder exists now: refused, not overwritten
    assert main(["calibrate", "--live", str(captures / "live"), "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["calibrate", "--live", str(captures / "live"), "--out", str(tmp_path / "x")]) == 1
    assert "need >= 50" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["calibrate", "--live", "x", "--out", "y", "--target-bpcer", "lots"])
    # attacks inside the live folder would be scored as both: refused before any scoring
    assert main(["calibrate", "--live", str(captures), "--attack", str(captures / "attack"),
                 "--out", str(tmp_path / "y")]) == 1
    assert "overlap" in capsys.readouterr().err
    assert main(["calibrate", "--live", str(captures / "live"), "--attack",
                 str(tmp_path / "none"), "--out", str(tmp_path / "y")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_calibrate_to_a_target_apcer(captures, tmp_path, capsys):
    out = tmp_path / "cam3"
    rc = _calibrate_with_attacks(captures, out, tmp_path / "rep3.json", "--target-apcer", "10%")
    assert rc == 0, capsys.readouterr().err
    assert "APCER <= 0.1 for every attack species" in capsys.readouterr().out
    rep = json.loads((tmp_path / "rep3.json").read_text())
    assert rep["target_apcer"] == 0.1 and rep["target_bpcer"] is None
    for species, r in rep["in_sample"]["apcer_per_species"].items():
        assert r["errors"] <= int(0.1 * r["count"]), species  # 12 per species: at most 1 in
    m = load_bundle(out).manifest
    assert m["threshold"]["criterion"].startswith("lowest threshold with APCER <= 0.1")
    assert m["threshold"]["value"] == rep["threshold"]
    # a security target needs attacks, and one target at a time
    assert main(["calibrate", "--live", str(captures / "live"), "--target-apcer", "1%",
                 "--out", str(tmp_path / "y"), "--min-live", "20", "--no-progress"]) == 1
    assert "needs attack captures" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["calibrate", "--live", "x", "--out", "y", "--target-apcer", "1%",
              "--target-bpcer", "1%"])


def test_smoothed_platt_matches_ml_on_overlap_and_stays_finite_when_separated():
    from edgefas.runtime.calibration import apply_platt, fit_platt

    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = np.r_[rng.normal(2, 1.5, 500), rng.normal(-2, 1.5, 500)]
    y = np.r_[np.ones(500), np.zeros(500)]
    # plain maximum likelihood (no penalty to speak of) as the reference on overlapping classes
    ml = sklearn.LogisticRegression(C=1e9).fit(x[:, None], y)
    assert fit_platt(x, y) == pytest.approx((ml.coef_[0, 0], ml.intercept_[0]), rel=0.06, abs=0.02)
    sep_x, sep_y = np.r_[x[:50] + 9, x[500:550] - 9], y[450:550]
    a, b = fit_platt(sep_x, sep_y)
    assert np.isfinite([a, b]).all() and 0 < a < 5
    # separated classes: scores stay below 1 instead of all tying at exactly 1.0 (which made
    # D-EER thresholds and AUCs of packaged bundles depend on ties)
    assert apply_platt(sep_x[sep_y == 1], a, b).max() < 1 - 1e-6


def test_calibrate_reads_labelled_data_like_finetune(captures, tmp_path, capsys):
    """--data: the same captures listed in a CSV (devel rows only) give the folders' choice."""
    rows = ["path,label,species,split"]
    for f in sorted((captures / "live").iterdir()):
        rows.append(f"{f},live,,devel")
    for f in sorted((captures / "attack").rglob("*.jpg")):
        rows.append(f"{f},attack,{f.parent.name},devel")
    rows.append(f"{sorted((captures / 'live').glob('*.jpg'))[0]},live,,train")  # not read
    csv = tmp_path / "cam.csv"
    csv.write_text("\n".join(rows) + "\n")
    assert _calibrate_with_attacks(captures, tmp_path / "a", tmp_path / "a.json",
                                   "--target-bpcer", "5%") == 0
    assert main(["calibrate", "--data", str(csv), "--target-bpcer", "5%", "--out",
                 str(tmp_path / "b"), "--min-live", "20", "--bootstrap", "100", "--no-progress",
                 "--json", str(tmp_path / "b.json")]) == 0, capsys.readouterr().err
    a, b = (json.loads((tmp_path / f"{k}.json").read_text()) for k in "ab")
    assert b["live"]["usable"] == a["live"]["usable"] == 24 and b["attack"]["usable"] == 24
    assert b["threshold"] == a["threshold"] and b["calibration"] == a["calibration"]
    assert b["data"].startswith(str(csv)) and b["live"]["dir"] is None
    assert set(b["in_sample"]["apcer_per_species"]) == {"print", "screen"}
    assert "attacks from" in load_bundle(tmp_path / "b").manifest["threshold"]["split"]
    # --data is instead of --live / --attack, not beside them
    assert main(["calibrate", "--data", str(csv), "--attack", str(captures / "attack"),
                 "--out", str(tmp_path / "c"), "--no-progress"]) == 1
    assert "or --data DATA" in capsys.readouterr().err

