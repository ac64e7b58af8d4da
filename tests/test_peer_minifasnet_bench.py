"""benchmarks/peer_minifasnet.py: the figures it reports for each model, from given scores."""
from __future__ import annotations

import numpy as np
import pytest

from edgefas.data.samples import BONA_FIDE, Sample

from .conftest import benchmark_module


def _samples(n_live: int, species: list[str]) -> list[Sample]:
    out = [Sample(f"/x/live{i}.jpg", False, BONA_FIDE, "devel", "replay-attack")
           for i in range(n_live)]
    out += [Sample(f"/x/{sp}{i}.jpg", True, sp, "devel", "replay-attack")
            for i, sp in enumerate(species)]
    return out


def test_minifasnet_live_score_and_own_rule():
    pm = benchmark_module("peer_minifasnet")
    summed = np.array([[0.2, 1.6, 0.2],    # class 1 wins
                       [1.0, 0.9, 0.1],    # class 0 wins although live has 0.45
                       [0.1, 0.9, 1.0]])   # class 2 wins
    np.testing.assert_allclose(pm.live_score(summed), [0.8, 0.45, 0.45])
    assert pm.own_rule_live(summed).tolist() == [True, False, False]


def test_pad_figures_count_per_species_and_bona_fide():
    pm = benchmark_module("peer_minifasnet")
    is_attack = np.array([False] * 4 + [True] * 5)
    species = np.array([BONA_FIDE] * 4 + ["print", "print", "mobile", "mobile", "mobile"])
    accepted = np.array([True, True, True, False, True, False, False, True, True])
    f = pm.pad_figures(is_attack, species, accepted)
    assert f["bpcer"] == {"errors": 1, "count": 4, "value": 0.25}
    assert f["apcer"]["print"]["errors"] == 1 and f["apcer"]["mobile"]["errors"] == 2
    assert f["apcer_max"]["value"] == pytest.approx(2 / 3)
    assert f["apcer_overall"]["errors"] == 3
    assert f["hter_legacy"] == pytest.approx((3 / 5 + 1 / 4) / 2)


def test_compare_chooses_thresholds_on_devel_only_and_reports_every_set():
    pm = benchmark_module("peer_minifasnet")
    devel = _samples(4, ["print", "mobile", "print", "mobile"])
    devel_scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4])   # separable at 0.5
    test = _samples(2, ["print", "mobile", "highdef"])
    test_scores = np.array([0.65, 0.3, 0.55, 0.1, 0.9])
    live = [Sample(f"/l/{i}.jpg", False, BONA_FIDE, "heldout", "lfw") for i in range(3)]
    silent = [Sample("/s/image_F1.jpg", True, "attack", "fixture", "silentface"),
              Sample("/s/image_T1.jpg", False, BONA_FIDE, "fixture", "silentface")]
    ok2 = np.array([True, False])   # the second photo had no usable face
    sets = {"devel": (devel, devel_scores, np.ones(8, bool)),
            "test": (test, test_scores, np.ones(5, bool)),
            "lfw_heldout": (live, np.array([0.7, 0.5, 0.2]), np.ones(3, bool)),
            "london": (live, np.array([0.9, 0.9, 0.9]), np.ones(3, bool)),
            "silentface": (silent, np.array([0.3]), ok2)}
    own = {"test": test_scores >= 0.5, "lfw_heldout": np.array([True, True, False]),
           "london": np.array([True, True, True]), "silentface": np.array([False])}
    rep = pm.compare("m", sets, own, {"devel": 0})
    deer = rep["devel"]["deer"]
    # the D-EER threshold lies in devel's gap: between the highest attack and lowest live
    assert 0.4 < deer["threshold"] <= 0.6 and deer["d_eer"] == 0
    t = rep["test"]["deer"]
    assert t["apcer"]["highdef"]["errors"] == 1 and t["apcer"]["print"]["errors"] == 0
    assert t["bpcer"]["count"] == 2
    assert rep["lfw_heldout"]["own_rule"]["errors"] == 1
    assert rep["lfw_heldout"]["deer"]["errors"] == (np.array([0.7, 0.5, 0.2]) < deer["threshold"]).sum()
    assert rep["london"]["deer"]["errors"] == 0
    assert rep["silentface"]["image_F1.jpg"] == {"attack": True, "live_score": 0.3,
                                                "own_rule_live": False}
    assert rep["silentface"]["image_T1.jpg"]["live_score"] is None
    counts = {"test": {"bona_fide": 3, "attack": 3}, "lfw_heldout": {"bona_fide": 4, "attack": 0},
              "london": {"bona_fide": 3, "attack": 0}}
    doc = {"command": "c", "edgefas_bundle": "b", "edgefas_threshold": 0.5, "counts": counts,
           "minifasnet_models": ["a.pth"], "note": "n", "edgefas": rep, "minifasnet": rep}
    md = pm.to_markdown(doc)
    assert "| m | devel D-EER |" in md and "no usable face" in md and "class 1 wins" in md
    # like for like: the one refused face of test (3 live, 2 scored) and of LFW (4, 3 scored)
    # counts as a rejection
    assert "test 66.67% (2/3); LFW held-out 50.00% (2/4); london 0.00% (0/3)" in md
    assert "NUAA" not in md   # P5's sets are optional


def test_compare_adds_the_other_labs_sets_when_scored():
    pm = benchmark_module("peer_minifasnet")
    devel = _samples(4, ["print", "mobile", "print", "mobile"])
    devel_scores = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4])
    nuaa = _samples(3, ["print", "print"])
    live = [Sample(f"/l/{i}.jpg", False, BONA_FIDE, "heldout", "lfw") for i in range(2)]
    test = _samples(1, ["print", "mobile", "highdef"])
    sets = {"devel": (devel, devel_scores, np.ones(8, bool)),
            "test": (test, np.array([0.9, 0.1, 0.2, 0.3]), np.ones(4, bool)),
            "lfw_heldout": (live, np.array([0.7, 0.2]), np.ones(2, bool)),
            "london": (live, np.array([0.9, 0.9]), np.ones(2, bool)),
            "nuaa": (nuaa, np.array([0.9, 0.3, 0.8, 0.7, 0.1]), np.ones(5, bool)),
            "essex": (live, np.array([0.45, 0.9]), np.ones(2, bool)),
            "silentface": ([], np.zeros(0), np.zeros(0, bool))}
    own = {"test": np.array([True, False, False, False]), "lfw_heldout": np.array([True, False]),
           "london": np.array([True, True]), "nuaa": np.array([True, False, True, True, False]),
           "essex": np.array([False, True]), "silentface": np.zeros(0, bool)}
    rep = pm.compare("m", sets, own, {"devel": 0})
    thr = rep["devel"]["deer"]["threshold"]
    assert rep["nuaa"]["deer"]["apcer"]["print"]["errors"] == 1        # the 0.7 print attack
    assert rep["nuaa"]["deer"]["bpcer"]["errors"] == int((np.array([0.9, 0.3, 0.8]) < thr).sum())
    assert rep["nuaa"]["own_rule"]["bpcer"]["errors"] == 1
    assert rep["essex"]["own_rule"]["errors"] == 1
    counts = {k: {"bona_fide": 3, "attack": 0} for k in ("test", "lfw_heldout", "london")}
    counts.update(nuaa={"bona_fide": 3, "attack": 2}, essex={"bona_fide": 2, "attack": 0})
    doc = {"command": "c", "edgefas_bundle": "b", "edgefas_threshold": 0.5, "counts": counts,
           "minifasnet_models": ["a.pth"], "note": "n", "edgefas": rep, "minifasnet": rep}
    md = pm.to_markdown(doc)
    assert "NUAA test part (session 03; 3 bona fide / 2 printed-photo attacks" in md
    assert "NUAA 33.33% (1/3); essex 50.00% (1/2)" in md


def test_a_folder_that_is_not_the_minifasnet_repository_is_refused(tmp_path):
    pytest.importorskip("torch")
    pm = benchmark_module("peer_minifasnet")
    with pytest.raises(SystemExit, match="not a copy of minivision"):
        pm.MiniFASNet(tmp_path)


def test_render_rewrites_the_markdown_from_the_json_without_scoring(tmp_path, capsys):
    pm = benchmark_module("peer_minifasnet")
    out = tmp_path / "peer"
    with pytest.raises(SystemExit):
        pm.main(["--out", str(out)])                 # scoring needs --repo
    assert "--repo is required" in capsys.readouterr().err
    rep = {"command": "c", "edgefas_bundle": "b", "edgefas_threshold": 0.5, "note": "old",
           "minifasnet_models": ["a.pth"], "counts": {}, "edgefas": None, "minifasnet": None}
    pm.to_markdown = lambda r: f"rendered {r['note'][:5]}"   # the module is this test's own copy
    out.with_suffix(".json").write_text(__import__("json").dumps(rep))
    assert pm.main(["--render", "--out", str(out)]) == 0
    assert out.with_suffix(".md").read_text() == "rendered Bias:"
