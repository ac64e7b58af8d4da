"""Tests for edgefas.metrics against small hand-computed cases.

Convention: scores are LIVE scores, accepted as bona fide when score >= threshold.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from edgefas.metrics import (
    acer,
    apcer,
    apcer_at_bpcer,
    apcer_max,
    auc,
    bpcer,
    bpcer_at_apcer,
    bpcer_by_source,
    eer,
    error_curves,
    evaluate,
    hter,
    percentile_ci,
    plot_det,
    resample_weights,
    threshold_at_apcer,
    threshold_at_bpcer,
    threshold_at_eer,
)


def _data(bona_fide, attacks, species=None):
    """Concatenate bona fide then attack scores; species (if any) are for attacks."""
    scores = np.array(list(bona_fide) + list(attacks), dtype=float)
    is_attack = np.array([False] * len(bona_fide) + [True] * len(attacks))
    if species is None:
        return scores, is_attack
    return scores, is_attack, np.array([""] * len(bona_fide) + list(species))


# Case A: 4 bona fide, 6 attacks (3 print, 3 mobile), threshold 0.6.
A_BF = [0.9, 0.8, 0.6, 0.4]
A_ATT = [0.7, 0.3, 0.1, 0.6, 0.65, 0.2]
A_SP = ["print", "print", "print", "mobile", "mobile", "mobile"]


def test_apcer_per_species_overall_and_max():
    s, a, sp = _data(A_BF, A_ATT, A_SP)
    rates = apcer(s, a, 0.6, sp)
    # print: only 0.7 >= 0.6 -> 1/3. mobile: 0.6 (tie, accepted) and 0.65 -> 2/3.
    # overall: 0.7, 0.6, 0.65 -> 3/6.
    assert (rates["print"].errors, rates["print"].count) == (1, 3)
    assert (rates["mobile"].errors, rates["mobile"].count) == (2, 3)
    assert (rates["overall"].errors, rates["overall"].count) == (3, 6)
    assert rates["overall"].value == 0.5
    assert set(rates) == {"print", "mobile", "overall"}
    worst = apcer_max(s, a, 0.6, sp)
    assert (worst.errors, worst.count) == (2, 3)
    # Without species, only the overall rate exists and APCER_max falls back to it.
    assert set(apcer(s, a, 0.6)) == {"overall"}
    assert apcer_max(s, a, 0.6).value == 0.5


def test_ties_at_threshold_are_accepted():
    s, a = _data([0.5, 0.5, 0.4], [0.5, 0.2])
    # Bona fide 0.5 == threshold is accepted: only 0.4 rejected -> BPCER 1/3.
    assert (bpcer(s, a, 0.5).errors, bpcer(s, a, 0.5).count) == (1, 3)
    # Attack 0.5 == threshold is accepted -> APCER 1/2.
    assert apcer(s, a, 0.5)["overall"].value == 0.5
    # Just above, both are rejected.
    assert bpcer(s, a, 0.5000001).value == 1.0
    assert apcer(s, a, 0.5000001)["overall"].value == 0.0


def test_bpcer_case_a_and_legacy_averages():
    s, a, sp = _data(A_BF, A_ATT, A_SP)
    b = bpcer(s, a, 0.6)
    # Only 0.4 < 0.6 -> 1/4.
    assert (b.errors, b.count, b.value) == (1, 4, 0.25)
    # HTER (legacy) = (APCER_overall 1/2 + BPCER 1/4) / 2 = 3/8.
    assert hter(s, a, 0.6) == pytest.approx(3 / 8)
    # ACER (legacy) = (APCER_max 2/3 + BPCER 1/4) / 2 = 11/24.
    assert acer(s, a, 0.6, sp) == pytest.approx(11 / 24)


def test_metrics_that_need_one_class_only():
    # APCER needs no bona fide, BPCER needs no attacks.
    assert apcer([0.3, 0.7], [True, True], 0.5)["overall"].value == 0.5
    assert bpcer([0.3, 0.7], [False, False], 0.5).value == 0.5


def test_auc_with_ties():
    s, a = _data([0.5, 0.8], [0.5, 0.2, 0.9])
    # Pairs (bf, att): (.5,.5) tie = 1/2, (.5,.2) = 1, (.5,.9) = 0,
    # (.8,.5) = 1, (.8,.2) = 1, (.8,.9) = 0 -> 3.5 / 6 = 7/12.
    assert auc(s, a) == pytest.approx(7 / 12)
    assert auc(*_data([0.9, 0.8], [0.1, 0.2])) == 1.0
    assert auc(*_data([0.1, 0.2], [0.8, 0.9])) == 0.0
    assert auc(*_data([0.5, 0.5], [0.5])) == 0.5  # all tied -> chance


def test_eer_perfectly_separable_is_zero():
    s, a = _data([0.7, 0.8, 0.9], [0.1, 0.2, 0.3])
    e = eer(s, a)
    # At threshold 0.7 no attack is accepted and no bona fide rejected; it is the
    # lowest threshold with |APCER - BPCER| = 0 and mean 0.
    assert e.value == 0.0
    assert e.threshold == 0.7
    assert threshold_at_eer(s, a) == 0.7


def test_eer_exact_crossing():
    s, a = _data([0.2, 0.6, 0.8, 0.9], [0.1, 0.3, 0.4, 0.7])
    # At 0.6: attacks >= 0.6 -> {0.7} = 1/4; bona fide < 0.6 -> {0.2} = 1/4.
    # Every other candidate has APCER != BPCER, so D-EER = 1/4 at 0.6.
    e = eer(s, a)
    assert e.value == 0.25
    assert e.threshold == 0.6
    assert (e.apcer.errors, e.apcer.count, e.bpcer.errors, e.bpcer.count) == (1, 4, 1, 4)


def test_eer_no_exact_crossing_uses_tie_rule():
    s, a = _data([0.3, 0.6, 0.9], [0.2, 0.5, 0.7, 0.8])
    # (APCER, BPCER) per threshold: 0.5 -> (3/4, 1/3), 0.6 -> (2/4, 1/3),
    # 0.7 -> (2/4, 2/3), 0.8 -> (1/4, 2/3). The smallest gap, 1/6, is reached at
    # both 0.6 (mean 5/12) and 0.7 (mean 7/12); the tie goes to the lower mean.
    e = eer(s, a)
    assert e.threshold == 0.6
    assert e.value == pytest.approx(5 / 12)


def test_eer_with_species_uses_apcer_max():
    s, a, sp = _data(A_BF, A_ATT, A_SP)
    # APCER_max / BPCER: 0.6 -> (2/3, 1/4), 0.65 -> (1/3, 2/4), 0.7 -> (1/3, 2/4) ...
    # gap 1/6 at 0.65 and 0.7 with equal mean 5/12 -> lowest threshold 0.65.
    e = eer(s, a, sp)
    assert e.threshold == 0.65
    assert e.value == pytest.approx(5 / 12)
    assert (e.apcer.errors, e.apcer.count) == (1, 3)


def test_eer_with_bona_fide_sources_uses_the_worst_source():
    # webcam live faces all high, other-camera ones spread: pooled they hide the second source
    webcam = [0.9, 0.92, 0.94, 0.96, 0.98, 0.99]
    other = [0.3, 0.5, 0.7]
    attacks = [0.1, 0.2, 0.4, 0.6]
    s = np.array(webcam + other + attacks)
    a = np.array([False] * 9 + [True] * 4)
    src = np.array(["webcam"] * 6 + ["other"] * 3 + [""] * 4)
    # worst-source BPCER at 0.5 is 1/3 (other: 0.3), APCER 1/4 (0.6 accepted): gap 1/12, the
    # smallest. Pooled, the one rejected "other" face weighs 1/9 and the threshold moves up.
    e = eer(s, a, bona_fide_source=src)
    assert e.threshold == 0.5
    assert (e.bpcer.errors, e.bpcer.count) == (1, 3)
    assert (e.apcer.errors, e.apcer.count) == (1, 4)
    pooled = eer(s, a)
    assert pooled.threshold > e.threshold and pooled.bpcer.count == 9
    # one source is the pooled D-EER exactly, species or not
    one = np.full(s.size, "x")
    sp = np.array([""] * 9 + ["print", "print", "mobile", "mobile"])
    assert eer(s, a, sp, bona_fide_source=one) == eer(s, a, sp)
    with pytest.raises(ValueError, match="length mismatch"):
        eer(s, a, bona_fide_source=src[:-1])
    by = bpcer_by_source(s, a, src, e.threshold)
    assert list(by) == ["other", "webcam"]          # sorted; the attacks' "" is no source
    assert (by["other"].errors, by["other"].count) == (1, 3)
    assert (by["webcam"].errors, by["webcam"].count) == (0, 6)


# Case B: 5 bona fide, 10 attacks; only one attack (0.75) scores above 0.45.
B_BF = [0.3, 0.5, 0.6, 0.8, 0.9]
B_ATT = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.75]


def test_bpcer_at_apcer_unambiguous():
    s, a = _data(B_BF, B_ATT)
    # APCER <= 10% allows one accepted attack: the threshold must exceed 0.45, and
    # the lowest candidate above it is 0.5 -> APCER 1/10 (0.75), BPCER 1/5 (0.3).
    op = bpcer_at_apcer(s, a, 0.10)
    assert op.threshold == 0.5
    assert (op.value.errors, op.value.count) == (1, 5)
    assert (op.achieved.errors, op.achieved.count) == (1, 10)
    assert threshold_at_apcer(s, a, 0.10) == 0.5
    # APCER = 0 needs a threshold above 0.75 -> 0.8; bona fide 0.3, 0.5, 0.6 rejected.
    op0 = bpcer_at_apcer(s, a, 0.0)
    assert (op0.threshold, op0.value.value, op0.achieved.value) == (0.8, 0.6, 0.0)


def test_bpcer_at_apcer_can_reject_all():
    s, a = _data([0.2, 0.4], [0.9])
    # The top score is an attack: APCER = 0 only above every score, so BPCER = 1.
    op = bpcer_at_apcer(s, a, 0.0)
    assert op.threshold > 0.9
    assert op.value.value == 1.0 and op.achieved.value == 0.0


def test_apcer_at_bpcer_unambiguous():
    s, a = _data(B_BF, B_ATT)
    # BPCER <= 20% allows one rejected bona fide: highest threshold is 0.5
    # (0.3 rejected); attacks >= 0.5: {0.75} -> APCER 1/10.
    op = apcer_at_bpcer(s, a, 0.20)
    assert op.threshold == 0.5
    assert (op.value.errors, op.value.count) == (1, 10)
    assert (op.achieved.errors, op.achieved.count) == (1, 5)
    assert threshold_at_bpcer(s, a, 0.20) == 0.5
    # BPCER = 0 -> threshold 0.3: attacks 0.3, 0.35, 0.4, 0.45, 0.75 -> 5/10.
    op0 = apcer_at_bpcer(s, a, 0.0)
    assert (op0.threshold, op0.value.value) == (0.3, 0.5)


def test_operating_point_with_species_uses_worst_species():
    s, a, sp = _data([0.3, 0.5, 0.8, 0.9], [0.2, 0.7] + [0.1] * 8, ["print"] * 2 + ["mobile"] * 8)
    # Overall: 1 accepted attack of 10 is allowed -> threshold 0.3 (0.7 accepted), BPCER 0.
    overall = bpcer_at_apcer(s, a, 0.10)
    assert (overall.threshold, overall.value.value) == (0.3, 0.0)
    # Worst species: print has 2 attacks, so 0 may pass -> threshold 0.8, BPCER 2/4.
    worst = bpcer_at_apcer(s, a, 0.10, sp)
    assert (worst.threshold, worst.value.value) == (0.8, 0.5)
    # At 0.8 both species have APCER 0; the tie goes to the first name, mobile (0/8).
    assert (worst.achieved.errors, worst.achieved.count) == (0, 8)


def test_error_curves_are_monotone():
    s, a = _data(B_BF, B_ATT)
    thr, ap, bp = error_curves(s, a)
    assert np.all(np.diff(thr) > 0)
    assert np.all(np.diff(ap) <= 0) and np.all(np.diff(bp) >= 0)
    assert (ap[0], bp[0], ap[-1], bp[-1]) == (1.0, 0.0, 0.0, 1.0)


def test_evaluate_matches_functions_and_serialises():
    s, a, sp = _data(A_BF, A_ATT, A_SP)
    r = evaluate(s, a, 0.6, sp, bootstrap=200, seed=0)
    assert (r.n_bona_fide, r.n_attack, r.species_counts) == (4, 6, {"mobile": 3, "print": 3})
    assert r.apcer["mobile"].value == pytest.approx(2 / 3)
    assert r.apcer_max_species == "mobile" and r.apcer_max.errors == 2
    assert r.bpcer.errors == 1
    assert r.eer.value == pytest.approx(eer(s, a, sp).value)
    assert r.auc.value == pytest.approx(auc(s, a))
    assert r.legacy_hter.value == pytest.approx(3 / 8)
    assert r.legacy_acer.value == pytest.approx(11 / 24)
    assert set(r.bpcer_at_apcer) == {0.05, 0.01}
    assert r.bpcer_at_apcer[0.05].threshold == bpcer_at_apcer(s, a, 0.05, sp).threshold
    assert r.apcer_at_bpcer[0.01].value.value == apcer_at_bpcer(s, a, 0.01, sp).value.value
    d = r.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN/inf, only plain types
    assert json.loads(text)["apcer"]["mobile"] == {
        "value": pytest.approx(2 / 3), "errors": 2, "count": 3,
        "ci95": d["apcer"]["mobile"]["ci95"]}
    md = r.to_markdown()
    assert "2 / 3" in md and "1 / 4" in md and "3 / 6" in md  # counts beside figures
    assert "HTER (legacy)" in md and "ACER (legacy)" in md
    assert "4 bona fide, 6 attack" in md


def test_evaluate_without_bootstrap_has_no_ci():
    r = evaluate(*_data(B_BF, B_ATT), threshold=0.5, bootstrap=0)
    assert r.bpcer.ci95 is None and r.eer.ci95 is None and r.auc.ci95 is None
    assert "n/a" in r.to_markdown()
    json.dumps(r.to_dict(), allow_nan=False)


def _gaussian(n_bf=300, n_att=300, seed=1):
    rng = np.random.default_rng(seed)
    return _data(rng.normal(1.0, 1.0, n_bf), rng.normal(-1.0, 1.0, n_att))


def test_bootstrap_ci_contains_point_and_is_deterministic():
    s, a = _gaussian()
    r1 = evaluate(s, a, 0.0, bootstrap=500, seed=7)
    r2 = evaluate(s, a, 0.0, bootstrap=500, seed=7)
    r3 = evaluate(s, a, 0.0, bootstrap=500, seed=8)
    assert r1.to_dict() == r2.to_dict()
    assert r1.bpcer.ci95 != r3.bpcer.ci95
    for value, ci in [(r1.bpcer.value, r1.bpcer.ci95),
                      (r1.apcer["overall"].value, r1.apcer["overall"].ci95),
                      (r1.eer.value, r1.eer.ci95), (r1.auc.value, r1.auc.ci95),
                      (r1.legacy_hter.value, r1.legacy_hter.ci95),
                      (r1.bpcer_at_apcer[0.05].value.value, r1.bpcer_at_apcer[0.05].value.ci95)]:
        assert ci[0] <= value <= ci[1]
        assert ci[0] < ci[1]


def test_vectorised_bootstrap_equals_explicit_resampling():
    # The batched computation must give exactly what re-running the scalar
    # metrics on each explicitly materialised resample gives.
    s, a = _gaussian(40, 30, seed=3)
    n_boot = 60
    r = evaluate(s, a, 0.2, bootstrap=n_boot, seed=5)
    w = resample_weights(a, n_boot, seed=5)  # strata False (bona fide) then True
    reps = {"bpcer": [], "eer": [], "auc": [], "op": []}
    for row in w:
        rs, ra = np.repeat(s, row), np.repeat(a, row)
        reps["bpcer"].append(bpcer(rs, ra, 0.2).value)
        reps["eer"].append(eer(rs, ra).value)
        reps["auc"].append(auc(rs, ra))
        reps["op"].append(bpcer_at_apcer(rs, ra, 0.05).value.value)
    assert r.bpcer.ci95 == pytest.approx(percentile_ci(reps["bpcer"]))
    assert r.eer.ci95 == pytest.approx(percentile_ci(reps["eer"]))
    assert r.auc.ci95 == pytest.approx(percentile_ci(reps["auc"]))
    assert r.bpcer_at_apcer[0.05].value.ci95 == pytest.approx(percentile_ci(reps["op"]))


def test_resample_weights_stratified_and_grouped():
    strata = np.array([0] * 5 + [1] * 3)
    w = resample_weights(strata, 100, seed=0)
    assert w.shape == (100, 8)
    assert np.all(w[:, :5].sum(1) == 5) and np.all(w[:, 5:].sum(1) == 3)
    assert np.array_equal(w, resample_weights(strata, 100, seed=0))
    groups = np.array(["c1", "c1", "c2", "c2", "c3", "c1", "c1", "c2"])
    g = resample_weights(strata, 100, seed=0, groups=groups)
    # Rows of one client within one stratum are always drawn together.
    assert np.array_equal(g[:, 0], g[:, 1]) and np.array_equal(g[:, 2], g[:, 3])
    assert np.array_equal(g[:, 5], g[:, 6])
    # Bona fide has 3 clients drawn 3 times in total.
    assert np.all(g[:, [0, 2, 4]].sum(1) == 3)


def test_evaluate_with_groups_runs():
    s, a = _gaussian(60, 60)
    groups = np.arange(120) // 4  # 30 clients of 4 presentations
    r = evaluate(s, a, 0.0, bootstrap=200, groups=groups)
    assert r.grouped_bootstrap and r.bpcer.ci95[0] <= r.bpcer.value <= r.bpcer.ci95[1]
    with pytest.raises(ValueError, match="groups"):
        evaluate(s, a, 0.0, bootstrap=10, groups=groups[:-1])


def test_bootstrap_is_fast():
    rng = np.random.default_rng(0)
    n = 500
    s, a = _data(rng.normal(1, 1, n), rng.normal(-1, 1, n))
    sp = np.where(a, rng.choice(["print", "mobile", "highdef"], 2 * n), "")
    start = time.perf_counter()
    evaluate(s, a, 0.0, sp, bootstrap=1000)
    # Generous bound (typ. ~0.3 s) so it only fails if the resampling loses vectorisation.
    assert time.perf_counter() - start < 3.0


def test_percentile_ci_ignores_nan():
    assert percentile_ci([np.nan, 1.0, 1.0]) == (1.0, 1.0)
    with pytest.raises(ValueError):
        percentile_ci([1.0], confidence=1.5)


def test_det_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    s, a = _gaussian(100, 100)
    s2, a2, sp2 = _data(A_BF, A_ATT, A_SP)
    out = plot_det({"model": (s, a), "tiny": (s2, a2, sp2)}, tmp_path / "sub" / "det.png",
                   markers={"deployed": (0.1, 0.2)})
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    with pytest.raises(ValueError):
        plot_det({}, tmp_path / "empty.png")


def test_import_does_not_need_matplotlib():
    code = "import sys, edgefas.metrics; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bpcer([], [], 0.5), "empty"),
        (lambda: apcer([0.1, 0.2], [True], 0.5), "length mismatch"),
        (lambda: eer([0.1, np.nan], [False, True]), "NaN"),
        (lambda: bpcer([0.1, 0.2], [True, True], 0.5), "no bona fide"),
        (lambda: apcer([0.1, 0.2], [False, False], 0.5), "no attack"),
        (lambda: eer([0.1, 0.2], [True, True]), "no bona fide"),
        (lambda: auc([0.1, 0.2], [False, False]), "no attack"),
        (lambda: bpcer_at_apcer([0.1, 0.2], [False, True], 1.5), "target"),
        (lambda: apcer([0.1, 0.2], [False, True], 0.5, species=["x"]), "species"),
        (lambda: apcer([0.1, 0.2], [False, True], 0.5, species=["x", ""]), "species"),
        (lambda: apcer([0.1, 0.2], [False, True], 0.5, species=["", "overall"]), "reserved"),
        (lambda: apcer([0.1, 0.2], [0, 2], 0.5), "boolean"),
        (lambda: apcer([0.1, 0.2], [False, True], float("nan")), "threshold"),
        (lambda: evaluate([0.1, 0.2], [False, True], 0.5, bootstrap=0, targets=(-0.1,)), "target"),
    ],
)
def test_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_a_rate_without_errors_gets_the_wilson_bound_not_a_zero_width_interval():
    from edgefas.metrics import evaluate

    scores = np.r_[np.linspace(0.6, 1, 79), np.linspace(0, 0.4, 160)]
    is_attack = np.r_[np.zeros(79, bool), np.ones(160, bool)]
    r = evaluate(scores, is_attack, 0.5, species=np.r_[["bona_fide"] * 79, ["mobile"] * 160],
                 bootstrap=50)
    assert r.bpcer.errors == 0 and r.bpcer.ci95[0] == 0
    assert r.bpcer.ci95[1] == pytest.approx(0.0463, abs=1e-3)     # 0/79: up to 4.6 %
    assert r.apcer["mobile"].ci95[1] == pytest.approx(0.0234, abs=1e-3)   # 0/160: 2.3 %
