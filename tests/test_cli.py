"""The edgefas command, called in-process."""
from __future__ import annotations

import json

import cv2
import pytest

from edgefas.cli import COMMANDS, main


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and len(out) > 300
    # an example continued with a backslash keeps its line break (an unescaped "\" + newline
    # in the module docstring would glue the two lines into one)
    assert not any("edgefas" in line and "      --" in line for line in out.splitlines())


def test_top_level_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(c in out for c in COMMANDS)


def test_detect_table_and_json(tmp_path, astronaut_bgr, capsys):
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut_bgr)
    (tmp_path / "broken.jpg").write_bytes(b"nope")
    assert main(["detect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "a.jpg" in out and "bad_input" in out
    assert main(["detect", str(tmp_path / "a.jpg"), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["decision"] in ("live", "spoof") and 0 <= rec["live_score"] <= 1
    # another precision runs that export, and a bundle without it says how to make one
    assert main(["detect", str(tmp_path / "a.jpg"), "--precision", "int8"]) == 1
    assert "no 'onnx_int8' file" in capsys.readouterr().err


def test_detect_far_faces_flag(tmp_path, astronaut_bgr, capsys):
    import numpy as np

    frame = np.zeros((480, 640, 3), np.uint8)
    small = cv2.resize(astronaut_bgr, None, fx=0.55, fy=0.55, interpolation=cv2.INTER_AREA)
    frame[100:100 + small.shape[0], 200:200 + small.shape[1]] = small  # a ~52 px face
    cv2.imwrite(str(tmp_path / "far.png"), frame)
    assert main(["detect", str(tmp_path / "far.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] == "no_face"
    assert main(["detect", str(tmp_path / "far.png"), "--json", "--far-faces"]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] in ("live", "spoof")


def test_errors_are_one_line_with_exit_1(tmp_path, capsys):
    assert main(["detect", "x.jpg", "--bundle", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
    assert main(["export", str(tmp_path), "--format", "onx"]) == 1
    assert "Did you mean 'onnx'" in capsys.readouterr().err


def test_user_errors_exit_cleanly(tmp_path, capsys, astronaut_bgr):
    from edgefas.bundle import default_bundle_path

    (tmp_path / "empty").mkdir()
    assert main(["detect", str(tmp_path / "empty")]) == 1
    assert "no images under" in capsys.readouterr().err
    assert main(["detect", str(tmp_path / "missing.jpg")]) == 1   # listed, then exit 1
    assert "none of the 1 image(s) could be read" in capsys.readouterr().err
    # the shipped bundle's manifest is pinned: an in-place export would break every install
    assert main(["export", str(default_bundle_path()), "--target", "onnx", "--precision", "fp16"]) == 1
    assert "not changed in place" in capsys.readouterr().err
    live = tmp_path / "captures" / "live"
    live.mkdir(parents=True)
    cv2.imwrite(str(live / "a.jpg"), astronaut_bgr)
    assert main(["eval", "--folder", str(tmp_path / "captures"), "--out", str(tmp_path / "e")]) == 1
    assert "both live/ and attack/" in capsys.readouterr().err
    assert main(["calibrate", "--live", str(live), "--out", str(tmp_path / "cal"),
                 "--json", str(tmp_path / "nowhere" / "r.json")]) == 1
    assert "folder does not exist" in capsys.readouterr().err and not (tmp_path / "cal").exists()
    assert main(["eval", "--protocol", "P1", "--record", "--out", str(tmp_path / "r")]) == 1
    assert "pinned" in capsys.readouterr().err
    assert main(["detet", "x.jpg"]) == 2
    assert "Did you mean 'detect'" in capsys.readouterr().err
    for argv in (["bench", "x.jpg", "--runs", "0"], ["serve", "--port", "99999"],
                 ["detect", "x.jpg", "--threads", "-1"], ["serve", "--max-upload-mb", "nan"],
                 ["serve", "--max-upload-mb", "-1"], ["watch", "x", "--fps", "-5"],
                 ["watch", "x", "--min-iou", "2"], ["watch", "x", "--timeout", "-1"]):
        with pytest.raises(SystemExit) as exc:   # argparse: usage error, exit 2
            main(argv)
        assert exc.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_bench_writes_json_and_markdown(tmp_path, astronaut_bgr, capsys):
    cv2.imwrite(str(tmp_path / "a.jpg"), astronaut_bgr)
    out = tmp_path / "bench"
    assert main(["bench", str(tmp_path / "a.jpg"), "--runs", "2", "--no-devel",
                 "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["backend"], r["precision"]): r for r in res["rows"]}
    assert {"detect", "align", "score", "total"} <= set(rows["onnxruntime", "fp32"]["stages"])
    assert "| onnxruntime fp32 | ok |" in out.with_suffix(".md").read_text()


def test_train_without_torch_says_which_extra(monkeypatch, tmp_path, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "torch" else real(name, *a))
    assert main(["train", "--out", str(tmp_path / "r")]) == 1
    assert "edgefas[train]" in capsys.readouterr().err


def test_export_refuses_options_that_would_be_ignored_or_mislabel(tmp_path, capsys):
    from edgefas.bundle import default_bundle_path

    bundle, out = str(default_bundle_path()), str(tmp_path / "out")
    for extra, message in ((["--target", "onnx", "--device", "android"], "not both"),
                           (["--target", "onnx", "--atol", "1e-3"], "--atol: only for packaging"),
                           (["--target", "onnx", "--name", "x"], "--name: only for packaging"),
                           (["--target", "onnx", "--precision", " , "], "names no precision")):
        assert main(["export", bundle, "--out", out, *extra]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    # a run trained on P1 is not packaged as a P2-print bundle
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "trainer_state.json").write_text("{}")
    (run / "protocol.txt").write_text("P1\n")
    pytest.importorskip("torch")
    assert main(["export", str(run), "--protocol", "P2-print"]) == 1
    assert "trained on protocol P1" in capsys.readouterr().err


def test_eval_folder_whose_attacks_all_lose_their_face_says_so(tmp_path, astronaut_bgr, capsys):
    live, att = tmp_path / "d" / "live", tmp_path / "d" / "attack" / "print"
    live.mkdir(parents=True)
    att.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(live / f"{i}.jpg"), astronaut_bgr)
    (att / "broken.jpg").write_bytes(b"not a jpeg")
    assert main(["eval", "--folder", str(tmp_path / "d"), "--out", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err
    assert "3 live and 0 attack images have a usable face (1 failed to acquire" in err
    assert "Traceback" not in err
