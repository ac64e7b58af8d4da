"""Protocol P5's data sets (NUAA, Essex faces94): layouts read as they come, splits by session,
and ``edgefas eval --protocol P5`` end to end on small trees of the astronaut."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgefas.data.other_sets import load_essex, load_nuaa
from edgefas.errors import DatasetError, DataWarning


def _nuaa_tree(root, face: np.ndarray):
    for part, subject in (("ClientRaw", "0001"), ("ImposterRaw", "0001"), ("ClientRaw", "0002")):
        for session in ("01", "03"):
            for k in (1, 2):
                d = root / "db" / part / subject
                d.mkdir(parents=True, exist_ok=True)
                img = face if part == "ClientRaw" else (face // 2 + 60)
                cv2.imwrite(str(d / f"{subject}_00_00_{session}_{k}.jpg"), img)
    (root / "db" / "ClientRaw" / "0001" / "Thumbs.db").write_bytes(b"x")   # as in the release
    return root


def test_nuaa_reads_the_test_session_by_default_with_labels_and_subjects(tmp_path, astronaut_bgr):
    root = _nuaa_tree(tmp_path, astronaut_bgr)
    test = load_nuaa(root)
    assert len(test) == 6 and {s.split for s in test} == {"session03"}
    assert sum(s.is_attack for s in test) == 2
    assert {s.species for s in test if s.is_attack} == {"print"}
    assert {s.subject for s in test} == {"0001", "0002"} and {s.dataset for s in test} == {"nuaa"}
    assert len(load_nuaa(root / "db", sessions=("01",))) == 6
    with pytest.raises(DatasetError, match="ClientRaw"):
        load_nuaa(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="sessions 07"):
        load_nuaa(root, sessions=("07",))
    # an image under another name is named in a warning, not silently dropped
    cv2.imwrite(str(root / "db" / "ClientRaw" / "0001" / "extra photo.jpg"), astronaut_bgr)
    with pytest.warns(DataWarning, match="1 images not named"):
        assert len(load_nuaa(root)) == 6


def test_essex_reads_training_with_identities_and_refuses_other_layouts(tmp_path, astronaut_bgr):
    for n, person in enumerate(("anna", "bob")):
        d = tmp_path / "Training" / str(n)
        d.mkdir(parents=True)
        for k in (1, 2, 3):
            cv2.imwrite(str(d / f"{person}.{k}.jpg"), astronaut_bgr)
    (tmp_path / "Test").mkdir()
    cv2.imwrite(str(tmp_path / "Test" / "0 (1).jpg"), astronaut_bgr)   # repeats: not read
    s = load_essex(tmp_path)
    assert len(s) == 6 and not any(x.is_attack for x in s)
    assert {x.subject for x in s} == {"anna", "bob"}
    with pytest.raises(DatasetError, match="Training"):
        load_essex(tmp_path / "Test")


def test_eval_protocol_p5_end_to_end(tmp_path, astronaut_bgr, monkeypatch):
    from edgefas.cli.eval_table import protocol_table
    from edgefas.data.sources import DataRoots
    from edgefas.evaluation import run_protocol

    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    nuaa = _nuaa_tree(tmp_path / "nuaa", astronaut_bgr)
    essex = tmp_path / "essex" / "Training" / "0"
    essex.mkdir(parents=True)
    cv2.imwrite(str(essex / "anna.1.jpg"), astronaut_bgr)
    res = run_protocol(None, "P5", roots=DataRoots(nuaa=nuaa, essex=tmp_path / "essex"),
                       bootstrap=0, progress=False)
    r = res["nuaa"]["report"]
    assert (r["n_bona_fide"], r["n_attack"]) == (4, 2)
    assert set(r["apcer"]) == {"print", "overall"}
    assert res["essex"]["bona_fide"] == 1 and res["essex"]["threshold"] == res["threshold"]
    md = protocol_table({"P5": res})
    assert "NUAA test part" in md and "P5 essex" in md
    # without Essex, NUAA is still reported and the reason Essex is missing is kept
    res = run_protocol(None, "P5", roots=DataRoots(nuaa=nuaa, essex=tmp_path / "none"),
                       bootstrap=0, progress=False)
    assert "skipped" in res["essex"] and "P5 essex" not in protocol_table({"P5": res})
