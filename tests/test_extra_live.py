"""A third source of bona fide training faces (``edgefas train --extra-live``): the CFD loader,
a user's live folder or CSV, the devel bucket kept out, the batch share, and the records."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("torch")

from edgefas.data.face_cache import CropSet  # noqa: E402
from edgefas.data.folder import load_live_faces  # noqa: E402
from edgefas.data.lfw import is_devel_identity  # noqa: E402
from edgefas.data.other_sets import load_cfd  # noqa: E402
from edgefas.data.samples import Sample  # noqa: E402
from edgefas.errors import DatasetError, DataWarning, EdgefasError  # noqa: E402
from edgefas.train.baseline import TrainSet, _batch_indices  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402


def _img(path, face):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), face)


def test_cfd_reads_people_from_the_names_and_warns_about_other_names(tmp_path, astronaut_bgr):
    _img(tmp_path / "images" / "female" / "CFD-AF-200-228-N.jpg", astronaut_bgr)
    _img(tmp_path / "images" / "female" / "CFD-AF-200-229-HC.jpg", astronaut_bgr)
    _img(tmp_path / "images" / "male" / "CFD-BM-001-011-HO.jpg", astronaut_bgr)
    _img(tmp_path / "images" / "female" / "CFD-AF-215-70-N.jpg", astronaut_bgr)  # a stray name
    with pytest.warns(DataWarning, match="1 images not named"):
        s = load_cfd(tmp_path)
    assert [x.subject for x in s] == ["AF-200", "AF-200", "BM-001"]
    assert not any(x.is_attack for x in s) and {x.dataset for x in s} == {"cfd"}
    with pytest.raises(DatasetError, match="not found"):
        load_cfd(tmp_path / "nothing")
    with pytest.raises(DatasetError, match="no CFD"):
        load_cfd(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_live_faces_from_person_folders_flat_files_live_subfolder_and_csv(tmp_path, astronaut_bgr):
    a = tmp_path / "a"
    _img(a / "ann" / "1.jpg", astronaut_bgr)
    _img(a / "ann" / "2.jpg", astronaut_bgr)
    _img(a / "bob.png", astronaut_bgr)
    assert sorted((s.subject, s.is_attack) for s in load_live_faces(a)) == [
        ("ann", False), ("ann", False), ("bob", False)]
    b = tmp_path / "b"
    _img(b / "live" / "cam1" / "x.jpg", astronaut_bgr)
    _img(b / "attack" / "print" / "y.jpg", astronaut_bgr)          # never taken as live
    assert [s.subject for s in load_live_faces(b)] == ["cam1"]
    csv = tmp_path / "l.csv"
    csv.write_text("path,label,subject\na/bob.png,live,bob\nb/attack/print/y.jpg,attack,eve\n")
    assert [(s.subject, s.is_attack) for s in load_live_faces(csv)] == [("bob", False)]
    with pytest.raises(DatasetError, match="neither a folder nor a .csv"):
        load_live_faces(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no live images"):
        load_live_faces(_empty(tmp_path))


def test_the_recipe_checks_source_and_share_together():
    r = get_recipe("tiny")
    with pytest.raises(EdgefasError, match="go together"):
        r.with_overrides(extra_live="cfd")
    with pytest.raises(EdgefasError, match="go together"):
        r.with_overrides(extra_live_share=0.2)
    with pytest.raises(EdgefasError, match="must leave"):
        r.with_overrides(extra_live="cfd", extra_live_share=0.75)     # + LFW's 0.25
    assert r.with_overrides(extra_live="cfd", extra_live_share=0.75, use_lfw=False).extra_live == "cfd"


def _old_batch_indices(data, recipe, rng):
    # the draw before extra_live existed: a recipe without it must draw exactly this
    live = np.flatnonzero(data.is_live & ~data.is_extra)
    extra = np.flatnonzero(data.is_live & data.is_extra)
    attack = np.flatnonzero(~data.is_live)
    half = recipe.batch_size // 2
    n_extra = int(round(half * recipe.lfw_share)) if (recipe.use_lfw and extra.size) else 0
    parts = [rng.choice(live, half - n_extra), rng.choice(attack, recipe.batch_size - half)]
    if n_extra:
        parts.append(rng.choice(extra, n_extra))
    return np.concatenate(parts)


def test_the_batch_takes_the_share_from_the_extra_source_and_nothing_else_changes():
    n = 400
    is_live = np.arange(n) < 300
    is_extra = (np.arange(n) >= 100) & (np.arange(n) < 200)            # LFW
    xl = (np.arange(n) >= 200) & is_live                               # the extra source
    recipe = get_recipe("cpu")
    plain = TrainSet(np.zeros((n, 1, 1, 3), np.uint8), is_live, is_extra)
    for seed in range(3):
        assert np.array_equal(_batch_indices(plain, recipe, np.random.default_rng(seed)),
                              _old_batch_indices(plain, recipe, np.random.default_rng(seed)))
    with_xl = TrainSet(plain.crops, is_live, is_extra, xl)
    r = recipe.with_overrides(extra_live="cfd", extra_live_share=0.125)
    idx = _batch_indices(with_xl, r, np.random.default_rng(0))
    assert len(idx) == recipe.batch_size
    assert int(xl[idx].sum()) == 3 and int(is_extra[idx].sum()) == 6     # of 24 live slots
    assert int((is_live & ~is_extra & ~xl)[idx].sum()) == 15
    assert int((~is_live)[idx].sum()) == 24


def _cropset(samples):
    n = len(samples)
    crops = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    return CropSet(samples, crops, np.array(["ok"] * n), np.ones(n, np.float32))


def test_build_sets_keeps_the_extra_source_s_devel_people_out_of_training():
    from edgefas.train.run import build_sets

    people = [f"XX-{i:03d}" for i in range(200)]
    bucket = {p for p in people if is_devel_identity(p)}
    assert bucket and len(bucket) < len(people)
    replay = [Sample(f"r{i}", i % 2 == 1, "print" if i % 2 else "bona_fide", split, "replay-attack",
                     subject=f"c{i}", video=f"v{i}") for split in ("train", "devel") for i in range(6)]
    extra = [Sample(f"{p}.jpg", False, "bona_fide", "all", "cfd", subject=p) for p in people]
    asked = []

    class Store:
        def replay(self, frames):
            return _cropset(replay)

        def lfw(self):
            raise AssertionError("not asked for")

        def extra_live(self, spec):
            asked.append(spec)
            return _cropset(extra)

    recipe = get_recipe("tiny").with_overrides(use_lfw=False, extra_live="cfd", extra_live_share=0.25)
    train, devel, _ = build_sets("P1", recipe, Store())
    assert asked == ["cfd"]
    assert int(train.is_extra_live.sum()) == len(people) - len(bucket)
    assert not train.is_extra[train.is_extra_live].any() and train.is_live[train.is_extra_live].all()
    assert len(train.is_extra_live) == len(train.crops)
    # the bucket's crops (values = their index) are not among the training crops
    kept = set(train.crops[train.is_extra_live][:, 0, 0, 0].tolist())
    assert not kept & {i for i, p in enumerate(people) if p in bucket}


def test_training_records_the_extra_source_and_its_licence():
    from edgefas.train.package import CFD_LICENCE, training_data

    data, licence = training_data(get_recipe("cpu").with_overrides(extra_live="cfd", extra_live_share=0.125))
    assert any("Chicago Face Database" in d and "0.125" in d for d in data) and CFD_LICENCE in licence
    data, licence = training_data(get_recipe("cpu").with_overrides(synth_attacks=0.25))
    assert any("synthetic prints" in d for d in data) and not any("Chicago" in d for d in data)
    user = get_recipe("cpu").with_overrides(extra_live="/data/cam", extra_live_share=0.1)
    data, licence = training_data(user)
    assert any("/data/cam" in d for d in data) and any("user's own" in x for x in licence)


def test_a_run_saved_before_extra_live_is_not_resumed_with_it(tmp_path):
    from edgefas.runtime.preprocess import Contract
    from edgefas.train.baseline import _check_resume

    recipe = get_recipe("tiny")
    old = recipe.to_dict()
    old.pop("extra_live")
    old.pop("extra_live_share")
    contract = Contract(size=32)
    saved = {"model_config": {}, "recipe": old, "contract": contract.to_dict()}
    _check_resume(tmp_path, saved, recipe, contract)   # as before: resumes
    with pytest.raises(EdgefasError, match="extra_live"):
        _check_resume(tmp_path, saved, recipe.with_overrides(extra_live="cfd", extra_live_share=0.125),
                      contract)


def test_the_share_flag_needs_a_source(capsys):
    from edgefas.cli import main

    assert main(["train", "--out", "x", "--extra-live-share", "0.2"]) != 0
    assert "--extra-live-share needs --extra-live" in capsys.readouterr().err
