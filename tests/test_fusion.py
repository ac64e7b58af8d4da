"""The fusion detector on tiny configs: it starts as the RGB model (zero-initialised fusion),
trains with a frozen student inside, reloads from safetensors and exports to ONNX with parity."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the fusion detector needs the train extra")
pytest.importorskip("timm", reason="the fusion detector needs the train extra")
pytest.importorskip("diffusers", reason="the student needs the train extra")

from edgefas.distill.student import ConsistencyStudent, StudentConfig, StudentCue  # noqa: E402
from edgefas.distill.unet import get_unet_config  # noqa: E402
from edgefas.errors import EdgefasError  # noqa: E402
from edgefas.models.fusion import FusionClassifier, FusionConfig, build_classifier  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.baseline import DevelSet, TrainSet, load_trained, train_baseline  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402

from .test_train import SIZE, synthetic_crops  # noqa: E402


def _student() -> ConsistencyStudent:
    torch.manual_seed(0)
    return ConsistencyStudent(StudentConfig(unet=get_unet_config("tiny"), t0=20)).eval()


def _model(fusion: str) -> FusionClassifier:
    s = _student()
    cfg = FusionConfig(img_size=SIZE, drop_rate=0.0, fusion=fusion, cue_config=s.config.to_dict(),
                       cue_side=SIZE // 2)
    torch.manual_seed(1)
    return FusionClassifier(cfg, cue_module=StudentCue(s, SIZE // 2, SIZE)).eval()


@pytest.mark.parametrize("fusion", ["xattn", "twostream"])
def test_fusion_starts_as_the_rgb_model_and_learns_to_use_the_cue(fusion):
    m = _model(fusion)
    x = torch.rand(3, 3, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(m(x), m.backbone(x)[:, 0], atol=1e-6)    # zero-initialised fusion
    assert all(not p.requires_grad for p in m.cue.parameters())          # the de-spoofer is frozen
    m.train()
    assert not m.cue.training and m.backbone.training
    loss = m(x).square().mean()
    loss.backward()
    assert m.out.weight.grad is not None and m.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.cue.parameters())
    with pytest.raises(EdgefasError, match="Did you mean 'xattn'"):
        FusionConfig(fusion="xatn")


def test_fusion_trains_packages_and_runs_in_the_runtime(tmp_path, astronaut_bgr):
    from safetensors.torch import save_file

    s = _student()
    folder = tmp_path / "student"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in s.state_dict().items()}, folder / "student.safetensors")
    (folder / "student.json").write_text(json.dumps({"config": s.config.to_dict(), "region": 0.5}))
    contract = Contract(size=SIZE)
    crops, live = synthetic_crops(24, 0)
    dcrops, dlive = synthetic_crops(12, 1)
    recipe = get_recipe("tiny").with_overrides(fusion="twostream", cue_dir=str(folder), use_lfw=False)
    best = train_baseline(recipe, TrainSet(crops, live, np.zeros(len(live), bool)),
                          DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print")), contract,
                          tmp_path / "run", progress=False)
    model, state = load_trained(best)
    assert state["model_config"]["class"] == "FusionClassifier"
    assert isinstance(build_classifier(state["model_config"]), FusionClassifier)
    for k, v in s.state_dict().items():   # the frozen student came through training unchanged
        assert torch.equal(model.cue.student.state_dict()[k], v)
    # packaged like the baseline: ONNX parity-gated, manifest says what the cue is, the
    # runtime scores a real photo with it
    import edgefas
    from edgefas.data.face_cache import CropSet
    from edgefas.data.samples import Sample
    from edgefas.runtime.face_stage import FacePolicy
    from edgefas.train.package import package_model

    samples = [Sample(f"d{i}", not bool(v), "bona_fide" if v else "print", "devel", "synthetic")
               for i, v in enumerate(dlive)]
    cs = CropSet(samples, dcrops, np.array(["ok"] * len(samples)), np.ones(len(samples), np.float32))
    bundle = package_model(model, state, cs, tmp_path / "bundle", name="tiny-fusion",
                           training={"data": ["synthetic"], "licence": ["none"]},
                           devel_split="synthetic devel", policy=FacePolicy())
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["parity"]["classifier.onnx"]["max_abs_diff"] <= 1e-4
    assert m["models"]["classifier"]["cue"]["fusion"] == "twostream" and "two-stream" in m["description"]
    r = edgefas.Detector.from_bundle(bundle)(astronaut_bgr)
    assert r.live_score is not None and r.threshold == pytest.approx(m["threshold"]["value"])
    with pytest.raises(EdgefasError, match="cue-dir"):
        train_baseline(replace(recipe, cue_dir=None), TrainSet(crops, live, np.zeros(len(live), bool)),
                       DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print")), contract,
                       tmp_path / "run2", progress=False)
