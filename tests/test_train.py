"""The training recipe end to end on the tiny config: train, resume, package, detect."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="training needs the train extra")
pytest.importorskip("timm", reason="training needs the train extra")

from edgefas.data.face_cache import CropSet  # noqa: E402
from edgefas.data.samples import Sample  # noqa: E402
from edgefas.runtime.calibration import apply_platt  # noqa: E402
from edgefas.runtime.face_stage import FacePolicy  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.baseline import DevelSet, TrainSet, augment, load_trained, train_baseline  # noqa: E402
from edgefas.train.calibration import fit_platt  # noqa: E402
from edgefas.train.checkpoint import latest_checkpoint  # noqa: E402
from edgefas.train.package import package_model  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402

SIZE = 64


def synthetic_crops(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Smooth 'faces' (live) vs the same with a screen-like stripe pattern and colour cast."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    crops, live = [], []
    for i in range(n):
        base = 120 + 60 * np.sin(xx / 9 + rng.uniform(0, 6)) * np.cos(yy / 11)
        img = np.stack([base * 0.8, base * 0.9, base], -1) + rng.normal(0, 4, (SIZE, SIZE, 3))
        is_live = i % 2 == 0
        if not is_live:
            img += 25 * (np.sin(xx * 1.7) > 0)[..., None] + np.array([20, -10, -15])
        crops.append(np.clip(img, 0, 255).astype(np.uint8))
        live.append(is_live)
    return np.stack(crops), np.array(live)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    contract = Contract(size=SIZE)
    crops, live = synthetic_crops(48, 0)
    train = TrainSet(crops, live, np.zeros(len(live), bool))
    dcrops, dlive = synthetic_crops(24, 1)
    devel = DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print"))
    recipe = get_recipe("tiny")
    best = train_baseline(recipe, train, devel, contract, out, progress=False)
    return out, best, recipe, train, devel, contract


def test_tiny_training_writes_safetensors_checkpoints(tiny_run):
    out, best, recipe, *_ = tiny_run
    assert (best / "model.safetensors").is_file()
    assert latest_checkpoint(out).name == "epoch_002"  # 4 steps, eval every 2
    files = {p.suffix for p in out.rglob("*") if p.is_file()}
    assert files <= {".safetensors", ".json"}, files  # no pickles
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [2, 4]


def test_resume_continues_where_it_stopped(tiny_run):
    out, _, recipe, train, devel, contract = tiny_run
    longer = recipe.with_overrides(steps=6)
    train_baseline(longer, train, devel, contract, out, progress=False)
    hist = json.loads((out / "history.json").read_text())
    assert [h["step"] for h in hist] == [2, 4, 6]  # resumed at 4, not restarted


def test_resume_refuses_another_crop_geometry(tiny_run):
    from edgefas.errors import EdgefasError

    out, _, recipe, train, devel, contract = tiny_run
    other = Contract(size=SIZE, crop_scale=1.0)
    with pytest.raises(EdgefasError, match="another --out or --no-resume"):
        train_baseline(recipe.with_overrides(steps=8), train, devel, other, out, progress=False)


@pytest.mark.parametrize("change", [{"seed": 3}, {"augment": "camera"}, {"use_lfw": False}, {"lr": 0.5}])
def test_resume_refuses_another_recipe_but_not_a_longer_run(tiny_run, change):
    from edgefas.errors import EdgefasError

    out, _, recipe, train, devel, contract = tiny_run
    with pytest.raises(EdgefasError, match=f"another recipe \\({next(iter(change))}"):
        train_baseline(recipe.with_overrides(steps=8, **change), train, devel, contract, out,
                       progress=False)


def test_resume_refuses_another_protocol(tmp_path, monkeypatch):
    from edgefas.errors import EdgefasError
    from edgefas.train import run as run_mod

    (tmp_path / "protocol.txt").write_text("P1\n")
    monkeypatch.setattr(run_mod, "face_stage_for", lambda contract: (None, "sha"))
    with pytest.raises(EdgefasError, match="holds a P1 run, not P2-print"):
        run_mod.run_training("P2-print", get_recipe("tiny"), tmp_path, roots=None)
    assert (tmp_path / "protocol.txt").read_text() == "P1\n"


def test_crop_scale_flag_is_checked(capsys):
    from edgefas.cli import main

    assert main(["train", "--out", "x", "--crop-scale", "5"]) == 1
    assert "--crop-scale 5 outside 0.8-3.0" in capsys.readouterr().err


def test_package_model_makes_a_working_bundle(tiny_run, tmp_path, astronaut_bgr):
    import edgefas

    out, best, recipe, train, devel, contract = tiny_run
    model, state = load_trained(best)
    samples = [Sample(f"d{i}", bool(a), str(s), "devel", "synthetic")
               for i, (a, s) in enumerate(zip(devel.is_attack, devel.species))]
    cs = CropSet(samples, devel.crops, np.array(["ok"] * len(samples)),
                 np.ones(len(samples), np.float32))
    bundle = package_model(model, state, cs, tmp_path / "bundle", name="tiny-test",
                           training={"data": ["synthetic"], "licence": ["none"]},
                           devel_split="synthetic devel", policy=FacePolicy())
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["parity"]["classifier.onnx"]["max_abs_diff"] <= 1e-4
    assert m["threshold"]["bona_fide"] == 12 and m["threshold"]["attack"] == 12
    det = edgefas.Detector.from_bundle(bundle)
    r = det(astronaut_bgr)
    assert r.live_score is not None and r.threshold == pytest.approx(m["threshold"]["value"])


def test_augment_keeps_shape_and_range():
    crops, _ = synthetic_crops(4, 2)
    out = augment(crops, np.random.default_rng(0))
    assert out.shape == crops.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255


def test_platt_calibration_is_monotone_and_balanced():
    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(2, 1, 200), rng.normal(-2, 1, 1000)])
    live = np.r_[np.ones(200, bool), np.zeros(1000, bool)]
    a, b = fit_platt(logits, live)
    assert a > 0
    p = apply_platt(logits, a, b)
    assert np.all(np.diff(p[np.argsort(logits)]) >= 0)
    # Balanced fit: the two symmetric classes meet near p = 0.5 at logit 0.
    assert apply_platt(np.array([0.0]), a, b)[0] == pytest.approx(0.5, abs=0.1)


def test_export_gate_refuses_a_mismatching_model(tmp_path):
    import torch

    from edgefas.errors import ExportError
    from edgefas.export.onnx_export import export_onnx

    class Noisy(torch.nn.Module):  # random output: can never match its own export
        def forward(self, x):
            return x.mean((1, 2, 3)) + torch.rand(x.shape[0])

    x = np.random.default_rng(0).normal(size=(8, 3, 16, 16)).astype(np.float32)
    with pytest.raises(ExportError, match="parity gate failed"):
        export_onnx(Noisy(), x, tmp_path / "m.onnx")
    assert not list(tmp_path.glob("*.onnx"))
