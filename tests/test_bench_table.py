"""``edgefas bench``: one table over the backends/precisions a bundle holds."""
from __future__ import annotations

import json
import sys

import cv2
import numpy as np
import pytest

from edgefas.bench_table import plan_variants, run_bench, table_markdown
from edgefas.bundle import default_bundle_path, load_bundle
from edgefas.cli import main
from edgefas.runtime.backends import available_backends


@pytest.fixture(scope="module")
def face_jpg(tmp_path_factory, astronaut_bgr):
    p = tmp_path_factory.mktemp("bench") / "astronaut.jpg"
    cv2.imwrite(str(p), astronaut_bgr)
    return p


def test_variants_follow_the_bundle_files_and_what_is_installed():
    rows = {(v.backend, v.precision): v for v in plan_variants(load_bundle(), threads=1)}
    assert ("onnxruntime", "fp32") in rows and rows["onnxruntime", "fp32"].status == "ok"
    assert ("onnxruntime", "int8") not in rows  # the default bundle holds no int8 file
    for (backend, _), v in rows.items():
        assert (v.status == "ok") == (backend in available_backends()), v.status
        assert v.size_mb and v.size_mb > 0.1


def test_bench_times_every_stage_scores_devel_and_compares(face_jpg, astronaut_bgr):
    crops = np.stack([cv2.resize(astronaut_bgr[50:250, 150:350], (128, 128))] * 4)
    is_attack = np.array([False, False, True, True])
    species = np.array(["bona_fide", "bona_fide", "print", "print"])
    cmd = f"{sys.executable} -c pass"
    res = run_bench([face_jpg], backends=["onnxruntime"], precisions=["fp32"], threads=1,
                    runs=2, warmup=1, devel=(crops, is_attack, species, "four test crops"),
                    compare=cmd)
    (row,) = res["rows"]
    assert set(row["stages"]) >= {"detect", "align", "score", "total"}
    assert row["stages"]["total"]["n"] == 2 and row["fps"] > 0
    # Same crop for both classes: whichever side of the threshold it is on, one class errs.
    assert {row["devel"]["apcer_max"], row["devel"]["bpcer"]} == {0.0, 1.0}
    assert res["compare"]["n"] == 2 and res["compare"]["p50_ms"] > 0
    md = table_markdown(res)
    assert "| onnxruntime fp32 | ok |" in md and "Compared command" in md


def test_bench_cli_writes_json_and_markdown(face_jpg, tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bench", str(face_jpg), "--backend", "onnxruntime", "--precision", "fp32",
                 "--runs", "1", "--warmup", "0", "--threads", "1", "--no-devel",
                 "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["rows"][0]["backend"] == "onnxruntime"
    assert "| Format | Status | Size MB | APCER max | BPCER |" in out.with_suffix(".md").read_text()
    assert main(["bench", str(face_jpg), "--backend", "onnxrt", "--no-devel"]) == 1
    assert "Did you mean 'onnxruntime'" in capsys.readouterr().err


def test_bench_frame_size_sets_the_camera_frame(face_jpg, tmp_path, capsys):
    out = tmp_path / "hd"
    assert main(["bench", str(face_jpg), "--backend", "onnxruntime", "--precision", "fp32",
                 "--runs", "1", "--warmup", "0", "--threads", "1", "--no-devel",
                 "--frame-size", "1280x720", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["frame"].startswith("1280x720") and "1280x720" in out.with_suffix(".md").read_text()
    assert res["rows"][0]["stages"]["total"]["n"] == 1
    with pytest.raises(SystemExit):
        main(["bench", str(face_jpg), "--frame-size", "1280", "--no-devel"])
    assert "must look like 1920x1080" in capsys.readouterr().err


@pytest.mark.parametrize("text,size", [("1920x1080", (1920, 1080)), ("640X480", (640, 480))])
def test_parse_frame_size_and_frames_of_that_size(text, size, face_jpg):
    from edgefas.bench import load_frames, parse_frame_size

    assert parse_frame_size(text) == size
    with pytest.raises(ValueError, match="8192"):
        parse_frame_size("9000x100")
    (frame,) = load_frames([face_jpg], parse_frame_size(text))
    assert frame.shape == (size[1], size[0], 3)


def test_export_device_and_target_errors_are_one_line(capsys):
    assert main(["export", str(default_bundle_path()), "--device", "androd"]) == 1
    assert "Did you mean 'android'" in capsys.readouterr().err
    assert main(["export", str(default_bundle_path()), "--target", "tflite",
                 "--precision", "fp16"]) == 1
    assert "not fp16" in capsys.readouterr().err


def test_several_bundles_are_timed_in_the_same_rounds(face_jpg, tmp_path):
    import shutil

    other = tmp_path / "copy"     # same manifest name: told apart by folder
    shutil.copytree(default_bundle_path(), other)
    out = tmp_path / "two"
    assert main(["bench", str(face_jpg), "--bundle", str(default_bundle_path()), "--bundle", str(other),
                 "--backend", "onnxruntime", "--precision", "fp32", "--runs", "2", "--warmup", "0",
                 "--threads", "1", "--no-devel", "--out", str(out)]) == 0
    res = json.loads(out.with_suffix(".json").read_text())
    assert res["bundles"] == ["bundles/default", "copy"]     # a generic folder name gets its parent
    assert [r["bundle"] for r in res["rows"]] == ["bundles/default", "copy"]
    assert all(r["stages"]["total"]["n"] == 2 for r in res["rows"])
    md = out.with_suffix(".md").read_text()
    assert md.startswith("Bundles `bundles/default, copy`") and "| copy onnxruntime fp32 | ok |" in md
    with pytest.raises(Exception, match="2 devel sets for 1 bundles|1 devel sets for 2"):
        run_bench([face_jpg], bundle=[default_bundle_path(), other], backends=["onnxruntime"],
                  precisions=["fp32"], runs=1, warmup=0, devel=[None])
