"""Pretrained backbone weights: file format, the input-convention fold, training and provenance."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="training needs the train extra")
timm = pytest.importorskip("timm", reason="training needs the train extra")

from edgefas.cli import main  # noqa: E402
from edgefas.errors import EdgefasError  # noqa: E402
from edgefas.models.mobilevit_baseline import BaselineClassifier, BaselineConfig  # noqa: E402
from edgefas.runtime.preprocess import Contract  # noqa: E402
from edgefas.train.backbone_init import (  # noqa: E402
    COLOR_ORDERS,
    apply_backbone_weights,
    contract_convention,
    fold_input_convention,
    read_backbone_weights,
    save_backbone_weights,
)
from edgefas.train.baseline import DevelSet, TrainSet, check_resume, train_baseline  # noqa: E402
from edgefas.train.package import training_data  # noqa: E402
from edgefas.train.recipes import get_recipe  # noqa: E402

from .test_train import SIZE, synthetic_crops  # noqa: E402

SOURCE, LICENCE = "a random 'pretrained' MobileViT made by the test", "CC0 (test)"


def _pretrained(seed: int = 0, arch: str = "mobilevit_xxs") -> torch.nn.Module:
    """A timm model standing in for ImageNet weights: random, with non-trivial BN statistics
    (fresh ones, mean 0 / var 1, would hide a fold that forgets the running mean)."""
    torch.manual_seed(seed)
    net = timm.create_model(arch, pretrained=False, num_classes=1000).eval()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return net


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    net = _pretrained()
    path = tmp_path_factory.mktemp("w") / "mvit_in1k.safetensors"
    save_backbone_weights(net.state_dict(), path, arch="mobilevit_xxs", color_order="rgb",
                          mean=(0, 0, 0), std=(1, 1, 1), source=SOURCE, licence=LICENCE)
    return path, net


def test_the_fold_makes_the_stem_compute_the_same_on_contract_inputs():
    ref = _pretrained()
    net = copy.deepcopy(ref)
    fold_input_convention(net, from_mean=(0, 0, 0), from_std=(1, 1, 1),
                          to_mean=(0.5, 0.5, 0.5), to_std=(0.5, 0.5, 0.5))
    x01 = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a = ref.stem(x01)[..., 1:-1, 1:-1]           # the border sees zero padding in each
        b = net.stem((x01 - 0.5) / 0.5)[..., 1:-1, 1:-1]
        unfolded = ref.stem((x01 - 0.5) / 0.5)[..., 1:-1, 1:-1]
    assert torch.allclose(a, b, atol=1e-5)
    assert (a - unfolded).abs().max() > 0.1           # without the fold the stem differs


def test_bgr_weights_are_folded_into_rgb_input():
    ref = _pretrained()                               # trained (say) on BGR, per-channel mean
    net = copy.deepcopy(ref)
    bgr_mean, bgr_std = (0.40, 0.45, 0.50), (0.20, 0.25, 0.30)
    fold_input_convention(net, from_mean=bgr_mean, from_std=bgr_std, to_mean=(0.5,) * 3,
                          to_std=(0.5,) * 3, from_order="bgr")
    x01 = torch.rand(2, 3, 64, 64)                    # RGB
    m, s = torch.tensor(bgr_mean).view(1, 3, 1, 1), torch.tensor(bgr_std).view(1, 3, 1, 1)
    with torch.no_grad():
        a = ref.stem((x01.flip(1) - m) / s)[..., 1:-1, 1:-1]
        b = net.stem((x01 - 0.5) / 0.5)[..., 1:-1, 1:-1]
    assert torch.allclose(a, b, atol=1e-5)


def test_the_contract_convention_is_taken_on_0_1():
    assert contract_convention(Contract()) == ([0.5] * 3, [0.5] * 3)
    wide = Contract(value_range=(0.0, 255.0), mean=(127.5, 127.5, 127.5), std=(63.75,) * 3)
    assert contract_convention(wide) == ([0.5] * 3, [0.25] * 3)
    with pytest.raises(EdgefasError, match="colour order is bgr"):
        contract_convention(Contract(color_order="bgr"))


def test_pretrained_weights_start_the_detector_except_its_head(weights_file):
    path, ref = weights_file
    w = read_backbone_weights(path)
    assert (w.arch, w.color_order, w.mean, w.std, w.source, w.licence) == (
        "mobilevit_xxs", "rgb", (0, 0, 0), (1, 1, 1), SOURCE, LICENCE)
    assert w.tag == f"sha256:{w.sha256}" and len(w.sha256) == 64
    model = BaselineClassifier(BaselineConfig(img_size=SIZE)).eval()
    record = apply_backbone_weights(model, w, arch="mobilevit_xxs", mean=(0.5,) * 3, std=(0.5,) * 3)
    assert record["not_loaded"] == ["head.fc.bias", "head.fc.weight"]
    assert record["source"] == SOURCE and record["licence"] == LICENCE
    own, theirs = model.net.state_dict(), ref.state_dict()
    assert torch.equal(own["stages.2.0.conv1_1x1.conv.weight"], theirs["stages.2.0.conv1_1x1.conv.weight"])
    # same pooled features as the pretrained net on its own convention (border padding aside)
    x01 = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        f_ref = ref.forward_head(ref.forward_features(x01), pre_logits=True)
        f_own = model.net.forward_head(model.net.forward_features((x01 - 0.5) / 0.5), pre_logits=True)
    assert (f_ref - f_own).abs().max() < 0.05 * f_ref.abs().mean()


def test_weights_files_are_checked(tmp_path, weights_file):
    from safetensors.torch import save_file

    bare = tmp_path / "bare.safetensors"
    save_file({"x": torch.zeros(1)}, bare)
    with pytest.raises(EdgefasError, match="lack the metadata arch, color_order, mean, std, source, licence"):
        read_backbone_weights(bare)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(EdgefasError, match="not a readable safetensors file"):
        read_backbone_weights(tmp_path / "junk.safetensors")
    with pytest.raises(EdgefasError, match="no such file"):
        read_backbone_weights(tmp_path / "absent.safetensors")
    w = read_backbone_weights(weights_file[0])
    model = BaselineClassifier(BaselineConfig(arch="mobilevit_xs", img_size=SIZE))
    with pytest.raises(EdgefasError, match="are for mobilevit_xxs; the recipe trains mobilevit_xs"):
        apply_backbone_weights(model, w, arch="mobilevit_xs", mean=(0.5,) * 3, std=(0.5,) * 3)
    other = tmp_path / "xs_labelled_xxs.safetensors"
    save_backbone_weights(_pretrained(arch="mobilevit_xs").state_dict(), other, arch="mobilevit_xxs",
                          color_order="rgb", mean=(0, 0, 0), std=(1, 1, 1), source="s", licence="l")
    with pytest.raises(EdgefasError, match="do not fit mobilevit_xxs: .*other shape"):
        apply_backbone_weights(BaselineClassifier(BaselineConfig(img_size=SIZE)),
                               read_backbone_weights(other), arch="mobilevit_xxs",
                               mean=(0.5,) * 3, std=(0.5,) * 3)


def test_a_run_from_pretrained_weights_records_them_and_resumes_only_with_them(tmp_path, weights_file):
    w = read_backbone_weights(weights_file[0])
    contract = Contract(size=SIZE)
    crops, live = synthetic_crops(16, 0)
    train = TrainSet(crops, live, np.zeros(len(live), bool))
    dcrops, dlive = synthetic_crops(8, 1)
    devel = DevelSet(dcrops, ~dlive, np.where(dlive, "bona_fide", "print"))
    recipe = get_recipe("tiny").with_overrides(steps=2, backbone_init=w.tag)
    best = train_baseline(recipe, train, devel, contract, tmp_path, progress=False, backbone=w)
    state = json.loads((best / "trainer_state.json").read_text())
    from safetensors.torch import load_file

    key = "stages.2.0.conv1_1x1.conv.weight"          # deep in the backbone: loaded, then 2 small steps
    trained = load_file(str(best / "model.safetensors"))[f"net.{key}"]
    other = _pretrained(5).state_dict()[key]
    assert (trained - w.state_dict[key]).abs().max() < 0.01 < (trained - other).abs().max()
    assert state["recipe"]["backbone_init"] == w.tag
    assert state["backbone_init"]["sha256"] == w.sha256
    data, licence = training_data(recipe, state["backbone_init"])
    assert SOURCE in data[0] and w.sha256 in data[0]
    assert licence[0] == f"pretrained backbone weights: {LICENCE}"
    with pytest.raises(EdgefasError, match="does not record their source and licence"):
        training_data(recipe, None)
    # the weights and the recipe's record of them go together
    with pytest.raises(EdgefasError, match="go together"):
        train_baseline(get_recipe("tiny"), train, devel, contract, tmp_path / "b", progress=False,
                       backbone=w)
    # a run from random weights is not resumed as one from pretrained ones
    with pytest.raises(EdgefasError, match="another recipe .*backbone_init"):
        train_baseline(get_recipe("tiny").with_overrides(steps=4), train, devel, contract, tmp_path,
                       progress=False)
    # the check `edgefas train` runs before any cropping says what to give instead
    with pytest.raises(EdgefasError, match="give --backbone-weights with that file to resume it"):
        check_resume(tmp_path, get_recipe("tiny"), contract)


def test_pretrained_weights_are_only_for_a_run_from_scratch():
    with pytest.raises(EdgefasError, match="not with a bundle's weights"):
        get_recipe("tiny").with_overrides(backbone_init="w@sha256:0", init_from="b@sha256:1")


def _cmd(*args: str) -> int:
    return main(["backbone-weights", *args])


def test_backbone_weights_command_checks_the_weights_on_imagenet_photos(tmp_path, capsys, monkeypatch):
    from safetensors.torch import save_file

    from edgefas.cli import backbone_cmd

    assert backbone_cmd.COLOR_ORDERS == COLOR_ORDERS
    plain = tmp_path / "plain.safetensors"
    save_file(_pretrained(1).state_dict(), plain)
    out = tmp_path / "w.safetensors"
    assert _cmd("--from-file", str(plain), "--out", str(out)) == 1
    assert "--from-file needs --source and --licence" in capsys.readouterr().err
    # random weights classify neither order right: refused unless the order is given
    assert _cmd("--from-file", str(plain), "--source", "test", "--licence", "CC0", "--out", str(out)) == 1
    assert "classify neither RGB nor BGR photos right" in capsys.readouterr().err
    assert not out.exists()
    assert _cmd("--from-file", str(plain), "--source", "test", "--licence", "CC0", "--color-order",
                "rgb", "--out", str(out)) == 0
    w = read_backbone_weights(out)
    assert (w.color_order, w.mean, w.std) == ("rgb", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
    assert w.source.startswith("test [ImageNet check: RGB 0.0") and w.sha256 in capsys.readouterr().out
    # ImageNet weights fed their own order score far above the other one: that order is written
    monkeypatch.setattr("edgefas.train.backbone_init.imagenet_check",
                        lambda *a, **k: {"rgb": 0.02, "bgr": 0.81})
    assert _cmd("--from-file", str(plain), "--source", "t", "--licence", "l", "--out", str(out)) == 0
    assert read_backbone_weights(out).color_order == "bgr"
    assert "RGB 0.02, BGR 0.81" in capsys.readouterr().out


def test_backbone_weights_command_refuses_what_would_fail_later(tmp_path, capsys):
    from safetensors.torch import save_file

    headless = tmp_path / "headless.safetensors"        # no head: the check cannot run
    save_file({k: v for k, v in _pretrained(1).state_dict().items() if not k.startswith("head.")},
              headless)
    base = ["--source", "t", "--licence", "l", "--out"]
    assert _cmd("--from-file", str(headless), *base, str(tmp_path / "h.safetensors")) == 1
    assert "give --color-order" in capsys.readouterr().err
    assert _cmd("--from-file", str(headless), "--color-order", "bgr", *base,
                str(tmp_path / "h.safetensors")) == 0
    assert read_backbone_weights(tmp_path / "h.safetensors").source == "t [ImageNet check: not run]"
    wrong = tmp_path / "xs.safetensors"
    save_file(_pretrained(arch="mobilevit_xs").state_dict(), wrong)
    assert _cmd("--from-file", str(wrong), *base, str(tmp_path / "x.safetensors")) == 1
    assert "do not fit mobilevit_xxs" in capsys.readouterr().err
    (tmp_path / "junk.safetensors").write_bytes(b"\xff" * 64)
    assert _cmd("--from-file", str(tmp_path / "junk.safetensors"), *base, str(tmp_path / "j.st")) == 1
    assert "not a readable safetensors file" in capsys.readouterr().err
    bad = tmp_path / "std0.safetensors"
    assert _cmd("--from-file", str(headless), "--color-order", "rgb", "--std", "0", "0", "0",
                *base, str(bad)) == 1
    assert "std must be > 0" in capsys.readouterr().err and not bad.exists()
    assert _cmd("--from-timm", "--arch", "mobilevit_xxs.cvnets_in1k", "--out", str(bad)) == 1
    assert "without its pretrained tag (mobilevit_xxs)" in capsys.readouterr().err


def test_convention_metadata_is_checked(tmp_path, weights_file):
    from safetensors.torch import save_file

    meta = {"arch": "mobilevit_xxs", "color_order": "rgb", "mean": "0.5", "std": "[1, 1, 1]",
            "source": "s", "licence": "l"}
    for change, message in (({}, "mean must be 3 numbers"),
                            ({"mean": "[0, 0, 0]", "std": "[1, NaN, 1]"}, "std must be 3 finite"),
                            ({"mean": "[0, 0, 0]", "color_order": "grey"}, "colour order 'grey'")):
        path = tmp_path / "m.safetensors"
        save_file({"x": torch.zeros(1)}, path, metadata={**meta, **change})
        with pytest.raises(EdgefasError, match=message):
            read_backbone_weights(path)


def test_train_refuses_weights_of_another_architecture_before_any_data(tmp_path, weights_file, capsys):
    assert main(["train", "--recipe", "gpu", "--backbone-weights", str(weights_file[0]),
                 "--out", str(tmp_path / "run")]) == 1
    assert "holds mobilevit_xxs weights; recipe 'gpu' trains mobilevit_xs" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_backbone_weights_reads_plain_torch_files_but_no_pickled_code(tmp_path, capsys):
    pth = tmp_path / "sd.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in _pretrained(2).state_dict().items()}}, pth)
    out = tmp_path / "w.safetensors"
    assert _cmd("--from-file", str(pth), "--source", "s", "--licence", "l", "--color-order", "rgb",
                "--out", str(out)) == 0
    assert read_backbone_weights(out).state_dict.keys() == _pretrained(2).state_dict().keys()
    code = tmp_path / "code.pth"
    torch.save({"w": torch.zeros(1), "obj": Contract()}, code)   # an object, not just tensors
    assert _cmd("--from-file", str(code), "--source", "s", "--licence", "l",
                "--out", str(tmp_path / "c.safetensors")) == 1
    assert "not a plain state dict" in capsys.readouterr().err


def test_backbone_weights_from_timm_says_what_to_do_without_network(tmp_path, capsys, monkeypatch):
    def offline(*a, pretrained=False, **kw):
        if pretrained:
            raise OSError("cannot reach the Hugging Face hub")
        return create(*a, **kw)

    create = timm.create_model
    monkeypatch.setattr(timm, "create_model", offline)
    assert _cmd("--from-timm", "--out", str(tmp_path / "w.safetensors")) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Hugging Face hub" in err and "use --from-file" in err
    assert not (tmp_path / "w.safetensors").exists()
