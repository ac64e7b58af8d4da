"""edgefas finetune: the shipped bundle's classifier trained on a user's labelled captures."""
from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import pytest

from edgefas import load_bundle
from edgefas.bundle import default_bundle_path
from edgefas.cli import main
from edgefas.errors import EdgefasError

from .conftest import attack_like

pytest.importorskip("torch", reason="fine-tuning needs the train extra")


@pytest.fixture(scope="module")
def capture_csv(tmp_path_factory, astronaut_bgr):
    """Two 'people' (shifted, re-exposed astronauts), live and attack captures of each, listed
    in one CSV with split and subject columns."""
    root = tmp_path_factory.mktemp("cam")
    base = cv2.resize(astronaut_bgr, (384, 384))
    rows = ["path,label,species,subject,split"]
    for i in range(24):
        img = np.clip(np.roll(base, 5 * (i % 6) - 12, axis=1).astype(np.float32)
                      * (0.8 + 0.02 * i), 0, 255).astype(np.uint8)
        person, split = ("ann", "train") if i < 12 else ("bob", "devel")
        cv2.imwrite(str(root / f"l{i:02d}.jpg"), img)
        cv2.imwrite(str(root / f"a{i:02d}.jpg"), attack_like(img, i))
        rows += [f"l{i:02d}.jpg,live,,{person},{split}",
                 f"a{i:02d}.jpg,attack,{'Print' if i % 2 else 'screen'},{person},{split}"]
    (root / "cam.csv").write_text("\n".join(rows) + "\n")
    return root / "cam.csv"


def _finetune(csv, out, *extra: str) -> int:
    # a few steps end inside the 20-step warm-up, which is said (tested below)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"\d steps end inside", UserWarning)
        return main(["finetune", "--train", str(csv), "--devel", str(csv), "--out", str(out),
                     "--steps", "2", "--batch-size", "8", "--threads", "1", "--no-progress", *extra])


def test_finetune_writes_a_bundle_that_records_its_base(capture_csv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    assert _finetune(capture_csv, out) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "train 12 live / 12 attack crops; devel 12 / 12" in text
    assert f"--devel {capture_csv} --out DIR" in text          # how to export it, gated on devel
    b = load_bundle(out / "bundle")          # verified: every file's sha256
    base = load_bundle(default_bundle_path())
    m = b.manifest
    assert m["name"] == f"{base.name}-finetuned"
    assert m["training"]["base_bundle"]["name"] == base.name
    recipe = m["training"]["recipe"]
    assert recipe["init_from"].startswith(f"{base.name}@sha256:") and recipe["steps"] == 2
    assert recipe["use_lfw"] is False and recipe["lr"] == 2e-4 and recipe["anchor"] == 0.1
    assert recipe["freeze_bn"] is True
    assert m["threshold"]["bona_fide"] == 12 and m["threshold"]["attack"] == 12
    # the species were taken in lower case ("Print" rows are "print")
    assert set(m["metrics"]["devel"]["species_counts"]) == {"print", "screen"}
    assert any("user's own data" in t for t in m["licence"]["data"])
    assert b.contract == base.contract
    data = m["training"]["finetune_data"]
    assert (data["train"]["live"], data["train"]["attack"], data["train"]["people"]) == (12, 12, 1)
    assert data["devel"]["path"].endswith("cam.csv (its 'devel' rows)")
    # it started from the base's weights and moved a little (2 steps at a low rate, EMA):
    # weights built afresh would be far from them, an unchanged copy equal
    from safetensors.numpy import load_file

    new = load_file(b.model_file("classifier", "pytorch"))
    old = load_file(base.model_file("classifier", "pytorch"))
    assert new.keys() == old.keys()
    floats = [k for k in new if new[k].dtype.kind == "f" and "running" not in k]
    assert max(float(np.abs(new[k] - old[k]).max()) for k in floats) < 1e-3
    assert any(not np.array_equal(new[k], old[k]) for k in floats)
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [2]
    # the same command resumes (nothing left to train) instead of starting over
    assert _finetune(capture_csv, out) == 0
    assert "resuming from" in capsys.readouterr().out
    # ... but not on other captures: its checkpoints belong to the first ones
    other = capture_csv.parent / "other.csv"
    header, *rows = capture_csv.read_text().splitlines()
    other.write_text("\n".join([header] + rows[2:]) + "\n")     # ann's first two dropped
    assert _finetune(other, out, "--steps", "3") == 1
    assert "fine-tuned on other train captures" in capsys.readouterr().err
    # nor packaged by 'edgefas export RUN', which would threshold it on Replay-Attack devel
    assert main(["export", str(out)]) == 1
    assert "is an 'edgefas finetune' run" in capsys.readouterr().err
    # its exports are gated on its camera's devel captures, not Replay-Attack devel
    exported = tmp_path / "exported"
    assert main(["export", str(out / "bundle"), "--target", "onnx", "--precision", "fp16",
                 "--out", str(exported)]) == 1
    assert "give --devel DATA" in capsys.readouterr().err and not exported.exists()
    assert main(["export", str(out / "bundle"), "--target", "onnx", "--precision", "fp16",
                 "--devel", str(capture_csv), "--protocol", "P1", "--out", str(exported)]) == 1
    assert "not both" in capsys.readouterr().err
    train_only = capture_csv.parent / "train_rows.csv"     # its training captures, no split column
    train_only.write_text("\n".join(r.rsplit(",", 1)[0] for r in capture_csv.read_text().splitlines()
                                    if r.endswith((",train", ",split"))) + "\n")
    assert main(["export", str(out / "bundle"), "--target", "onnx", "--precision", "fp16",
                 "--devel", str(train_only), "--out", str(exported)]) == 1
    assert "the captures the bundle was fine-tuned on" in capsys.readouterr().err
    assert main(["export", str(out / "bundle"), "--target", "onnx", "--precision", "fp16",
                 "--devel", str(capture_csv), "--out", str(exported)]) == 0, capsys.readouterr().err
    assert "gating on --devel" in capsys.readouterr().out
    gate = load_bundle(exported).manifest["parity"]["onnx_fp16"]
    assert gate["passed"] is True and (gate["bona_fide"], gate["attack"]) == (12, 12)
    assert gate["gate_data"].startswith("cam.csv (user captures): 12 live / 12 attack, sha1 ")


def test_finetune_refuses_shared_people_and_too_few_captures(capture_csv, tmp_path, monkeypatch,
                                                             capsys):
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    header, *rows = capture_csv.read_text().splitlines()
    bob = [r for r in rows if ",bob," in r]
    # bob on both sides (other images): a devel set of training people is refused
    shared = capture_csv.parent / "shared.csv"   # beside the images its paths name
    shared.write_text("\n".join([header] + [r.replace(",devel", ",train") for r in bob[:12]]
                                + bob[12:]) + "\n")   # other images of one person
    assert _finetune(shared, tmp_path / "r1") == 1
    assert "share 1 people (bob)" in capsys.readouterr().err
    few = capture_csv.parent / "few.csv"        # 2 live, 2 attack train captures
    few.write_text("\n".join([header] + rows[:4] + bob) + "\n")
    assert _finetune(few, tmp_path / "r2") == 1
    assert "needs at least 10 of each" in capsys.readouterr().err
    with pytest.raises(SystemExit):              # argparse: a learning rate of 3
        main(["finetune", "--train", "x", "--devel", "y", "--out", "z", "--lr", "3"])


def test_finetune_data_checks(capture_csv, tmp_path):
    from edgefas.errors import DatasetError
    from edgefas.train.finetune import check_disjoint, load_labelled

    header, *rows = capture_csv.read_text().splitlines()
    tr, dv = load_labelled(capture_csv, "train"), load_labelled(capture_csv, "devel")
    assert len(tr) == len(dv) == 24 and {s.subject for s in tr} == {"ann"}
    check_disjoint(tr, dv)
    with pytest.raises(DatasetError, match="share 24 images"):
        check_disjoint(tr, tr)
    # a split name it does not know would put rows on no side: refused, named
    odd = capture_csv.parent / "odd.csv"
    odd.write_text("\n".join([header] + [r.replace(",devel", ",val") for r in rows]) + "\n")
    with pytest.raises(DatasetError, match=r"split values \['train', 'val'\]"):
        load_labelled(odd, "devel")
    # capitalised split names are the same splits; a CSV without one gives every row
    caps = capture_csv.parent / "caps.csv"
    caps.write_text("\n".join([header] + [r.replace(",train", ",Train") for r in rows]) + "\n")
    assert len(load_labelled(caps, "train")) == 24
    flat = capture_csv.parent / "flat.csv"
    flat.write_text("path,label\n" + "\n".join(",".join(r.split(",")[:2]) for r in rows) + "\n")
    assert len(load_labelled(flat, "devel")) == 48
    # without people named, the split cannot be checked: said, not silent
    nobody = [type(s)(s.path, s.is_attack, s.species, s.split, s.dataset) for s in dv]
    with pytest.warns(UserWarning, match="names no people"):
        check_disjoint(tr, nobody)
    with pytest.raises(DatasetError, match="CSV not found"):
        load_labelled(tmp_path / "typo.csv", "train")


def test_finetune_recipe_needs_a_recorded_recipe(tmp_path):
    from edgefas.train.finetune import finetune_recipe

    base = load_bundle(default_bundle_path())
    with pytest.warns(UserWarning, match="7 steps end inside the 20-step warm-up"):
        r = finetune_recipe(base, steps=7)
    assert r.steps == 7 and r.arch == base.manifest["training"]["recipe"]["arch"]
    assert r.augment == base.manifest["training"]["recipe"]["augment"]
    bare = type(base)(base.path, {**base.manifest, "training": {}})
    with pytest.raises(EdgefasError, match="records no training recipe"):
        finetune_recipe(bare)
    with pytest.raises(EdgefasError, match="an even number"):
        finetune_recipe(base, batch_size=7)


def test_anchor_keeps_the_weights_nearer_the_base(capture_csv, tmp_path, monkeypatch, capsys):
    """L2-SP: with a heavy anchor the trained (non-EMA) weights end nearer the base's than
    without one, on the same seed and batches."""
    from safetensors.numpy import load_file

    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    old = load_file(load_bundle(default_bundle_path()).model_file("classifier", "pytorch"))
    drift = {}
    for alpha in ("0", "10000"):
        out = tmp_path / f"a{alpha}"
        assert _finetune(capture_csv, out, "--steps", "6", "--anchor", alpha) == 0
        new = load_file(str(out / "epoch_001" / "model.safetensors"))
        drift[alpha] = sum(float(((new[k] - old[k]) ** 2).sum()) for k in new
                           if new[k].dtype.kind == "f" and "running" not in k)
        assert load_bundle(out / "bundle").manifest["training"]["recipe"]["anchor"] == float(alpha)
    assert 0 < drift["10000"] < 0.5 * drift["0"], drift
    with pytest.raises(EdgefasError, match="only for a run that starts from a bundle"):
        from edgefas.train.recipes import get_recipe

        get_recipe("tiny").with_overrides(anchor=0.1)


def test_rehearse_mixes_the_base_training_data(capture_csv, replay_tree, tmp_path, monkeypatch,
                                               capsys):
    """--rehearse: the base bundle's train part (here a tiny P1 run on the fixture tree, without
    LFW) joins the user's captures, and the bundle records it."""
    frames, _ = replay_tree
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    assert main(["train", "--protocol", "P1", "--recipe", "tiny", "--out", str(base),
                 "--replay-root", str(frames), "--no-lfw", "--package"]) == 0
    out = tmp_path / "ft"
    assert _finetune(capture_csv, out, "--bundle", str(base / "bundle"), "--rehearse",
                     "--replay-root", str(frames)) == 0
    text = capsys.readouterr().out
    # fixture P1 train: 2 clients x 2 lightings x 2 frames live (8), x 3 species attacks (24)
    assert "train 20 live / 36 attack crops (of them the base data: 8 / 24)" in text
    m = load_bundle(out / "bundle").manifest
    assert m["training"]["recipe"]["rehearse"] is True
    assert m["training"]["finetune_data"]["rehearsal"] == {"protocol": "P1", "live": 8, "attack": 24,
                                                           "of_them_lfw": 0}
    assert m["training"]["data"][-1].startswith("rehearsed in each batch: Idiap Replay-Attack train")
    # a fine-tuned bundle has no base protocol: --rehearse on it is refused before any cropping,
    # and fine-tuning it again without the flag does not inherit its rehearsal
    from edgefas.train.finetune import finetune_recipe

    tuned = load_bundle(out / "bundle")
    with pytest.raises(EdgefasError, match="records no training protocol"):
        finetune_recipe(tuned, rehearse=True)
    assert finetune_recipe(tuned, steps=50).rehearse is False
    assert main(["finetune", "--train", "x.csv", "--devel", "y.csv", "--out", str(tmp_path / "z"),
                 "--replay-root", str(frames)]) == 1
    assert "read only with --rehearse" in capsys.readouterr().err
    # resuming without --rehearse is another recipe: refused
    assert _finetune(capture_csv, out, "--bundle", str(base / "bundle")) == 1
    assert "another recipe (rehearse True -> False)" in capsys.readouterr().err


def test_freeze_bn_keeps_the_base_running_statistics(capture_csv, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    old = load_file(load_bundle(default_bundle_path()).model_file("classifier", "pytorch"))
    stats = [k for k in old if k.endswith(("running_mean", "running_var"))]
    assert stats
    for flag, same in (("--freeze-bn", True), ("--no-freeze-bn", False)):
        out = tmp_path / flag
        assert _finetune(capture_csv, out, flag) == 0
        b = load_bundle(out / "bundle")
        new = load_file(b.model_file("classifier", "pytorch"))
        assert all(np.array_equal(new[k], old[k]) for k in stats) is same
        assert b.manifest["training"]["recipe"]["freeze_bn"] is same


def test_last_stage_trains_only_the_top_of_the_network(capture_csv, tmp_path, monkeypatch):
    from safetensors.numpy import load_file

    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    old = load_file(load_bundle(default_bundle_path()).model_file("classifier", "pytorch"))
    out = tmp_path / "last"
    # --no-freeze-bn: the lower layers' statistics must stay put all the same (their weights do)
    assert _finetune(capture_csv, out, "--train-layers", "last-stage", "--no-freeze-bn") == 0
    b = load_bundle(out / "bundle")
    new = load_file(b.model_file("classifier", "pytorch"))
    top = ("net.stages.4.", "net.final_conv.", "net.head.")
    lower = [k for k in old if not k.startswith(top) and new[k].dtype.kind == "f"]
    upper = [k for k in old if k.startswith(top) and "running" not in k and new[k].dtype.kind == "f"]
    assert lower and upper
    assert all(np.array_equal(new[k], old[k]) for k in lower)        # weights and statistics
    assert any(not np.array_equal(new[k], old[k]) for k in upper)    # the top did train
    upper_stats = [k for k in old if k.startswith(top) and k.endswith("running_mean")]
    assert any(not np.array_equal(new[k], old[k]) for k in upper_stats)
    assert b.manifest["training"]["recipe"]["train_layers"] == "last-stage"


def test_eval_reads_only_the_test_rows_of_a_csv(capture_csv, tmp_path, monkeypatch):
    """The CSV finetune learns from also names its test people: 'edgefas eval --folder CSV'
    scores those rows only (train and devel rows chose the model and its threshold)."""
    monkeypatch.setenv("EDGEFAS_CACHE", str(tmp_path / "cache"))
    header, *rows = capture_csv.read_text().splitlines()
    # bob's last four pairs become test rows of a third person
    test_rows = [r.replace(",bob,devel", ",cid,test") for r in rows[-8:]]
    csv = capture_csv.parent / "with_test.csv"
    csv.write_text("\n".join([header, *rows[:-8], *test_rows]) + "\n")
    out = tmp_path / "rep"
    assert main(["eval", "--folder", str(csv), "--out", str(out), "--bootstrap", "0"]) == 0
    rep = json.loads(out.with_suffix(".json").read_text())["folder"]["report"]
    assert rep["n_bona_fide"] == 4 and sum(rep["species_counts"].values()) == 4
