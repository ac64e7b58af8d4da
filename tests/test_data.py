"""Data loaders on small synthetic trees laid out like the real releases."""
from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

from edgefas.data.face_cache import build_crops
from edgefas.data.folder import load_csv, load_folder
from edgefas.data.lfw import identity_split, load_lfw
from edgefas.data.protocols import PROTOCOLS, frames_per_video, get_protocol
from edgefas.data.replay_attack import load_replay_attack, parse_video_name
from edgefas.errors import DatasetError, EdgefasError

REAL = "client003_session01_webcam_authenticate_{}_1"
ATTACK = "attack_{}_client003_session01_highdef_photo_{}"


def _img(path, value=100):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 32, 3), value, np.uint8))


def test_parse_video_name():
    assert parse_video_name(ATTACK.format("print", "adverse")) == {
        "species": "print", "subject": "client003", "lighting": "adverse"}
    assert parse_video_name(REAL.format("controlled"))["species"] == "bona_fide"
    with pytest.raises(DatasetError):
        parse_video_name("holiday_photo")


def test_one_frame_tree(tmp_path):
    for split in ("train", "devel", "test"):
        _img(tmp_path / split / "real" / "none" / f"{REAL.format('adverse')}.jpg")
        _img(tmp_path / split / "attack" / "hand" / f"{ATTACK.format('mobile', 'adverse')}.jpg")
        _img(tmp_path / split / "attack" / "fixed" / f"{ATTACK.format('print', 'controlled')}.jpg")
    s = load_replay_attack(tmp_path)
    assert len(s) == 9
    by = {(x.split, x.species): x for x in s}
    assert by[("test", "mobile")].support == "hand" and by[("test", "mobile")].is_attack
    assert by[("devel", "print")].lighting == "controlled"
    assert not by[("train", "bona_fide")].is_attack and by[("train", "bona_fide")].support == ""


def test_twenty_frame_tree(tmp_path):
    for split in ("train", "devel", "test"):
        for i in range(3):
            _img(tmp_path / split / f"{split}__attack__fixed__{ATTACK.format('highdef', 'adverse')}"
                 / f"frame_{i:05d}.jpg")
            _img(tmp_path / split / f"{split}__real__real__{REAL.format('controlled')}"
                 / f"frame_{i:05d}.jpg")
    s = load_replay_attack(tmp_path, splits=("train",))
    assert Counter(x.species for x in s) == {"highdef": 3, "bona_fide": 3}
    assert len({x.video for x in s}) == 2
    keep = frames_per_video(s, 2)
    assert keep.sum() == 4


def test_fixed_and_hand_videos_of_the_same_name_are_distinct(tmp_path):
    name = ATTACK.format("print", "adverse")
    for support in ("fixed", "hand"):
        for i in range(4):
            _img(tmp_path / "train" / f"train__attack__{support}__{name}" / f"frame_{i:05d}.jpg")
    for split in ("devel", "test"):
        (tmp_path / split).mkdir()
        _img(tmp_path / split / "real" / f"{REAL.format('adverse')}.jpg")
    s = load_replay_attack(tmp_path, splits=("train",))
    assert frames_per_video(s, 2).sum() == 4  # 2 per video, 2 videos


def test_official_video_tree(tmp_path):
    """The official release holds .mov videos; frames are read with OpenCV."""
    for split in ("train", "devel", "test"):
        d = tmp_path / split / "real"
        d.mkdir(parents=True)
        path = d / f"{REAL.format('adverse')}.avi"
        vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
        for i in range(10):
            vw.write(np.full((24, 32, 3), i * 20, np.uint8))
        vw.release()
    s = load_replay_attack(tmp_path, frames_per_video=3)
    assert len(s) == 9 and all(x.frame >= 0 for x in s)
    assert len({x.key for x in s}) == 9


def test_missing_tree_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match="no train/ folder"):
        load_replay_attack(tmp_path)


def test_lfw_identity_split_is_disjoint_and_stable(tmp_path):
    names = [f"Person_{i:03d}" for i in range(60)]
    for n in names:
        for k in (1, 2):
            _img(tmp_path / n / f"{n}_{k:04d}.jpg")
    s = load_lfw(tmp_path)
    assert len(s) == 120
    train = {x.subject for x in s if x.split == "train"}
    held = {x.subject for x in s if x.split == "heldout"}
    assert train and held and not (train & held)
    assert identity_split("George_W_Bush") == identity_split("George_W_Bush")
    assert {x.subject for x in load_lfw(tmp_path, splits=("heldout",))} == held


def test_lfw_devel_bucket_comes_from_train_and_leaves_the_heldout_split_alone():
    from edgefas.data.lfw import DEVEL_BUCKET, is_devel_identity

    names = [f"Person_{i:04d}" for i in range(2000)]
    devel = {n for n in names if is_devel_identity(n)}
    assert all(identity_split(n) == "train" for n in devel)
    share = len(devel) / len(names)
    assert abs(share - (DEVEL_BUCKET[1] - DEVEL_BUCKET[0])) < 0.03
    assert 0.15 < sum(identity_split(n) == "heldout" for n in names) / len(names) < 0.25


def test_folder_and_csv(tmp_path):
    _img(tmp_path / "live" / "a.jpg")
    _img(tmp_path / "attack" / "print" / "b.jpg")
    _img(tmp_path / "attack" / "c.png")
    s = load_folder(tmp_path)
    assert Counter(x.species for x in s) == {"bona_fide": 1, "print": 1, "attack": 1}
    csv = tmp_path / "list.csv"
    csv.write_text("path,label,species\nlive/a.jpg,live,\nattack/print/b.jpg,spoof,print\n")
    c = load_csv(csv)
    assert [x.is_attack for x in c] == [False, True] and c[1].species == "print"
    assert (tmp_path / "live" / "a.jpg").samefile(c[0].path)
    # species differing only in case are one species, in folders and CSVs alike
    _img(tmp_path / "attack" / "Print" / "d.jpg")
    assert Counter(x.species for x in load_folder(tmp_path))["print"] == 2
    csv.write_text("path,label,species\nattack/print/b.jpg,spoof,Print \n")
    assert load_csv(csv)[0].species == "print"
    csv.write_text("path,label\nx.jpg,maybe\n")
    with pytest.raises(DatasetError, match="neither live nor attack"):
        load_csv(csv)
    # Excel's "CSV UTF-8" starts with a byte-order mark; a short row is named by its line
    csv.write_bytes("\ufeffpath,label\nlive/a.jpg,live\n".encode())
    assert len(load_csv(csv)) == 1
    csv.write_text("path,label\nlive/a.jpg,live\nattack/print/b.jpg\n")
    with pytest.raises(DatasetError, match=":3: the row has fewer columns"):
        load_csv(csv)


def test_folder_says_what_it_leaves_out(tmp_path):
    from edgefas.errors import DataWarning

    _img(tmp_path / "live" / "a.jpg")
    _img(tmp_path / "attack" / "print" / "b.jpg")
    _img(tmp_path / "Attack_extra" / "c.jpg")   # a misspelt class folder
    _img(tmp_path / "d.jpg")                    # an image beside the class folders
    (tmp_path / "notes").mkdir()                # a folder without images: not worth a word
    with pytest.warns(DataWarning, match=r"not used: Attack_extra/ \(1 images\), d.jpg$"):
        assert len(load_folder(tmp_path)) == 2


def test_malformed_frame_folder_names_are_named(tmp_path):
    _img(tmp_path / "test" / "test__old" / "frame_00000.jpg")
    with pytest.raises(DatasetError, match="test__old: not a <split>__<label>"):
        load_replay_attack(tmp_path, ("test",))


def test_protocol_masks():
    from edgefas.data.samples import Sample

    def s(split, species, lighting):
        return Sample("x", species != "bona_fide", species, split, "replay-attack",
                      lighting=lighting)
    samples = [s(sp, spc, li) for sp in ("train", "devel", "test")
               for spc in ("bona_fide", "print", "mobile", "highdef")
               for li in ("controlled", "adverse")]
    p2 = get_protocol("P2-print")
    tr = [x for x, k in zip(samples, p2.train_mask(samples)) if k]
    te = [x for x, k in zip(samples, p2.test_mask(samples)) if k]
    assert "print" not in {x.species for x in tr} and len(tr) == 6
    assert {x.species for x in te} == {"print", "bona_fide"}
    p3 = get_protocol("P3-controlled-to-adverse")
    assert {x.lighting for x, k in zip(samples, p3.train_mask(samples)) if k} == {"controlled"}
    assert {x.lighting for x, k in zip(samples, p3.test_mask(samples)) if k} == {"adverse"}
    assert {x.split for x, k in zip(samples, PROTOCOLS["P1"].devel_mask(samples)) if k} == {"devel"}
    with pytest.raises(EdgefasError, match="P2-print"):
        get_protocol("P2-prnt")


def test_components_trained_on_held_out_data_are_refused(tmp_path):
    from edgefas.data.samples import Sample
    from edgefas.train.run import check_cue_data

    samples = [Sample(f"{sp}-{spc}-{li}", spc != "bona_fide", spc, sp, "replay-attack", lighting=li)
               for sp in ("train", "devel", "test") for spc in ("bona_fide", "print", "mobile", "highdef")
               for li in ("controlled", "adverse")]

    def check(record, protocol, teacher=None, lfw_devel=False):
        folder = tmp_path / f"cue{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        info = {"data": record, **({"teacher": {"info": {"data": teacher}}} if teacher else {})}
        (folder / "student.json").write_text(json.dumps(info))
        check_cue_data(folder, protocol, samples, lfw_devel=lfw_devel)

    live_p1 = {"model": "agfas", "protocol": "P1", "faces": "live", "live": 1200, "attack": 0}
    all_p1 = {"model": "student", "protocol": "P1", "faces": "labelled", "live": 1200, "attack": 5995}
    check(live_p1, "P2-print")            # P2 holds out attacks only
    check(all_p1, "P1")
    check({**all_p1, "protocol": "P2-print"}, "P1")   # a subset of P1 train
    check({**all_p1, "protocol": "P2-print"}, "P2-print")
    with pytest.raises(EdgefasError, match="P2-mobile") as refused:
        check(all_p1, "P2-mobile")
    # one piece of advice, not the teachers' "train a teacher for" before it as well
    assert "train it on P2-mobile" in str(refused.value) and "train a teacher" not in str(refused.value)
    with pytest.raises(EdgefasError, match="P2-print"):
        check({**all_p1, "protocol": "P2-mobile"}, "P2-print")
    with pytest.raises(EdgefasError, match="bona fide"):     # P3 holds out live faces too
        check(live_p1, "P3-adverse-to-controlled")
    check({**live_p1, "protocol": "P3-adverse-to-controlled"}, "P3-adverse-to-controlled")
    # the fusion run reads both the student's record and its teacher's
    with pytest.raises(EdgefasError, match="teacher of the cue module"):
        check({**all_p1, "protocol": "P2-print"}, "P2-print", teacher=all_p1)
    # a teacher that learnt LFW's train identities has seen the LFW devel bucket
    check(all_p1, "P1", teacher={**live_p1, "with_lfw": True})
    check(all_p1, "P1", teacher={**live_p1, "with_lfw": False}, lfw_devel=True)
    with pytest.raises(EdgefasError, match="devel bucket"):
        check(all_p1, "P1", teacher={**live_p1, "with_lfw": True}, lfw_devel=True)


def test_crop_cache_builds_once_and_resumes(tmp_path, astronaut_bgr):
    from edgefas.bundle import default_bundle_path
    from edgefas.data.samples import Sample
    from edgefas.runtime.face_detect import FaceDetector
    from edgefas.runtime.face_stage import FacePolicy, FaceStage

    img = tmp_path / "imgs"
    img.mkdir()
    samples = []
    for i in range(5):
        p = img / f"{i}.png"
        grey = np.repeat(np.tile(np.arange(0, 250, 5, dtype=np.uint8), (50, 1))[:, :, None], 3, 2)
        cv2.imwrite(str(p), astronaut_bgr if i != 3 else grey)  # grey: refused as bad input
        samples.append(Sample(str(p), False, "bona_fide", "train", "t"))
    stage = FaceStage(FaceDetector.from_file(default_bundle_path() / "face_detector.onnx"),
                      FacePolicy(), size=64, crop_scale=1.5)
    cache = tmp_path / "cache"
    cs = build_crops(samples, stage, cache, chunk_size=2, progress=False)
    assert list(cs.status) == ["ok", "ok", "ok", "bad_input", "ok"]
    assert cs.crops.shape == (5, 64, 64, 3) and cs.crops[3].max() == 0
    chunks = sorted(cache.glob("chunk_*.npz"))
    assert len(chunks) == 3
    # Resume: a removed chunk is rebuilt, the others are loaded untouched.
    mtimes = {c: c.stat().st_mtime_ns for c in chunks}
    chunks[1].unlink()
    cs2 = build_crops(samples, stage, cache, chunk_size=2, progress=False)
    np.testing.assert_array_equal(cs2.crops, cs.crops)
    assert chunks[0].stat().st_mtime_ns == mtimes[chunks[0]]
    assert chunks[1].is_file()
    # An image replaced under the same name is cropped again, not served from the cache.
    cv2.imwrite(str(img / "4.png"), np.full((80, 80, 3), 120, np.uint8))
    cs3 = build_crops(samples, stage, cache, chunk_size=2, progress=False)
    assert list(cs3.status) == ["ok", "ok", "ok", "bad_input", "no_face"]   # a blank frame now


def test_image_folders_follow_symlinked_subfolders_once(tmp_path, astronaut_bgr):
    from edgefas.data.folder import load_folder
    from edgefas.data.image_files import find_images

    real = tmp_path / "real_attacks"
    (real / "print").mkdir(parents=True)
    cv2.imwrite(str(real / "print" / "a.png"), astronaut_bgr[:64, :64])
    cv2.imwrite(str(real / "print" / "b.tif"), astronaut_bgr[:64, :64])
    caps = tmp_path / "caps"
    (caps / "live").mkdir(parents=True)
    cv2.imwrite(str(caps / "live" / "l.jpg"), astronaut_bgr[:64, :64])
    (caps / "attack").symlink_to(real, target_is_directory=True)   # assembled with a link
    (real / "print" / "loop").symlink_to(real, target_is_directory=True)  # and a loop
    samples = load_folder(caps)
    assert sorted((s.is_attack, s.species) for s in samples) == [
        (False, "bona_fide"), (True, "print"), (True, "print")]
    assert [p.name for p in find_images(caps)] == ["a.png", "b.tif", "l.jpg"]
    assert find_images(caps / "missing") == []


def test_an_interrupted_chunk_write_leaves_no_temporary_file(tmp_path, astronaut_bgr, monkeypatch):
    from edgefas.bundle import default_bundle_path
    from edgefas.data import face_cache
    from edgefas.data.samples import Sample
    from edgefas.runtime.face_detect import FaceDetector
    from edgefas.runtime.face_stage import FacePolicy, FaceStage

    p = tmp_path / "a.png"
    cv2.imwrite(str(p), astronaut_bgr)
    stage = FaceStage(FaceDetector.from_file(default_bundle_path() / "face_detector.onnx"),
                      FacePolicy(), size=32, crop_scale=1.5)
    real_savez = np.savez

    def interrupted(path, **arrays):
        real_savez(path, **arrays)
        raise KeyboardInterrupt   # after the bytes are out, before the rename

    monkeypatch.setattr(face_cache.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_crops([Sample(str(p), False, "bona_fide", "train", "t")], stage, tmp_path / "c",
                    progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_draw_at_most_keeps_order_and_is_reproducible():
    from edgefas.data.protocols import draw_at_most

    items = [f"img_{i:03d}" for i in range(50)]
    a = draw_at_most(items, 10, np.random.default_rng(3))
    assert len(a) == 10 and len(set(a)) == 10 and a == sorted(a)   # drawn, not repeated, in order
    assert a == draw_at_most(items, 10, np.random.default_rng(3))
    assert a != draw_at_most(items, 10, np.random.default_rng(4))
    assert draw_at_most(items[:7], 10, np.random.default_rng(3)) == items[:7]
    # one generator over several sources: the second draw depends on the first, as in a report
    rng = np.random.default_rng(3)
    first, second = draw_at_most(items, 10, rng), draw_at_most(items, 10, rng)
    assert first == a and second != a
