"""The few-step student on tiny nets: boundary condition, 1/2/4 evaluations, both objectives
train and resume, the exportable cue graph matches PyTorch in ONNX, and cue_eval runs it; the same
for a student of a structure-conditioned teacher."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the student needs the train extra")
pytest.importorskip("diffusers", reason="the student needs the train extra")
pytest.importorskip("accelerate", reason="the student needs the train extra")

from edgefas.distill.agfas import StructureCondition  # noqa: E402
from edgefas.distill.errors import TeacherConfigError  # noqa: E402
from edgefas.distill.recipes import get_student_recipe  # noqa: E402
from edgefas.distill.schedule import DiffusionSchedule  # noqa: E402
from edgefas.distill.student import (  # noqa: E402
    ConsistencyStudent,
    StudentConfig,
    StudentCue,
    count_flops,
    student_despoof,
)
from edgefas.distill.train_student import load_student, student_loss, train_student  # noqa: E402
from edgefas.distill.train_teacher import DiffusionTeacher  # noqa: E402
from edgefas.distill.unet import build_unet, get_unet_config  # noqa: E402
from edgefas.train.checkpoint import latest_checkpoint  # noqa: E402

LOWPASS = StructureCondition("lowpass", sigma=1.0)


def _student(t0: int = 20, nfe: int = 1, seed: int = 0, condition: StructureCondition | None = None
             ) -> ConsistencyStudent:
    torch.manual_seed(seed)
    unet = get_unet_config("tiny").with_overrides(in_channels=6 if condition else 3)
    return ConsistencyStudent(StudentConfig(unet=unet, t0=t0, nfe=nfe, condition=condition)).eval()


def _teacher(condition: StructureCondition | None = None) -> DiffusionTeacher:
    torch.manual_seed(5)
    unet = build_unet(get_unet_config("tiny").with_overrides(in_channels=6 if condition else 3)).eval()
    return DiffusionTeacher(unet, DiffusionSchedule(), condition, "agfas", {"kind": "agfas"})


def test_boundary_condition_levels_and_evaluations():
    s = _student(t0=40)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    clean = torch.full((2,), -1, dtype=torch.long)
    assert torch.equal(s(x, clean), x)                       # f(x, clean) = x exactly
    assert s.config.levels(1) == (39,) and s.config.levels(2) == (39, 19)
    assert s.config.levels(4) == (39, 29, 19, 9)
    for nfe in (1, 2, 4):
        restored, cue = student_despoof(s, x, nfe=nfe)
        assert restored.shape == cue.shape == x.shape and torch.allclose(x - restored, cue)
    a, _ = student_despoof(s, x)
    b, _ = student_despoof(s, x)
    assert torch.equal(a, b)                                  # the fixed noise draw: deterministic
    with pytest.raises(TeacherConfigError, match="nfe"):
        StudentConfig(unet=get_unet_config("tiny"), nfe=3)
    odd = StudentConfig(unet=get_unet_config("tiny"), t0=30, nfe=4)     # 30 / 4: rounded half up
    assert odd.levels() == (29, 22, 14, 7) and odd.levels(2) == (29, 14)
    with pytest.raises(TeacherConfigError, match="nfe must be 1, 2 or 4"):
        odd.levels(3)
    assert count_flops(s.unet, x, torch.zeros(2, dtype=torch.long)) > 0


@pytest.mark.parametrize("objective", ["consistency", "regression"])
def test_losses_are_finite_and_the_consistency_target_is_the_teacher_step_at_the_boundary(objective):
    recipe = get_student_recipe("tiny", objective=objective)
    s, teacher = _student(), _teacher()
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    loss = student_loss(recipe, s, s, teacher, x0, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in s.parameters())


def test_train_student_writes_safetensors_resumes_and_serves_cue_eval(tmp_path):
    from edgefas.distill.cue_eval import compute_cues
    from edgefas.runtime.preprocess import Contract

    crops = np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    recipe = get_student_recipe("tiny", steps=2)
    folder = train_student(recipe, _teacher(), crops, tmp_path, progress=False, data={"protocol": "P1"})
    assert latest_checkpoint(tmp_path) is not None
    more = train_student(recipe.with_overrides(steps=4), _teacher(), crops, tmp_path, progress=False)
    assert more == folder
    files = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert files <= {".safetensors", ".json"}
    student, info = load_student(folder)
    assert info["step"] == 4 and info["parameters"] > 0 and info["data"] == {}
    r = compute_cues(student, crops[:3, 16:48, 16:48].copy(), Contract(size=32), batch=2, nfe=2)
    assert r.nfe == 2 and r.cue.shape == (3, 3, 32, 32)
    with pytest.raises(TeacherConfigError, match="another student"):
        train_student(get_student_recipe("tiny", steps=6, t0=40, delta=10, teacher_steps=2), _teacher(),
                      crops, tmp_path, progress=False)


def test_conditioned_student_takes_the_teachers_condition_and_trains_from_it(tmp_path):
    with pytest.raises(TeacherConfigError, match="takes 6 input channels"):
        StudentConfig(unet=get_unet_config("tiny"), condition=LOWPASS)     # 3-channel UNet
    s = _student(t0=20, nfe=2, condition=LOWPASS)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    t = torch.full((2,), 10, dtype=torch.long)
    with pytest.raises(TeacherConfigError, match="needs"):
        s(x, t)
    with pytest.raises(TeacherConfigError, match="takes no"):
        _student()(x, t, LOWPASS(x))
    # the condition comes from the input face: a different low-pass copy changes the output
    assert not torch.allclose(s(x, t, LOWPASS(x)), s(x, t, torch.zeros_like(x)))
    restored, cue = student_despoof(s, x)
    assert torch.allclose(x - restored, cue)
    crops = np.random.default_rng(1).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    for objective in ("consistency", "regression"):
        recipe = get_student_recipe("tiny", steps=2, objective=objective)
        folder = train_student(recipe, _teacher(LOWPASS), crops, tmp_path / objective, progress=False)
        student, info = load_student(folder)
        assert student.config.condition == LOWPASS and info["config"]["condition"]["sigma"] == 1.0
        assert student.unet.config.in_channels == 6
    # an unconditional teacher still gets an unconditional student
    student, _ = load_student(train_student(get_student_recipe("tiny", steps=1), _teacher(), crops,
                                            tmp_path / "plain", progress=False))
    assert student.config.condition is None and student.unet.config.in_channels == 3


@pytest.mark.parametrize("condition", [None, LOWPASS])
def test_student_cue_graph_matches_pytorch_in_onnx(tmp_path, condition):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    s = _student(t0=20, nfe=2, condition=condition)
    graph = StudentCue(s, side=16, crop_size=32).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        want = graph(x).numpy()
        _, cue = student_despoof(s, x[:, :, 8:24, 8:24])
    assert np.allclose(want, cue.numpy(), atol=1e-6)           # the graph is student_despoof
    path = tmp_path / "cue.onnx"
    with warnings.catch_warnings():   # the legacy exporter on purpose (edgefas.export.onnx_export)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(graph, (x,), str(path), opset_version=17, dynamo=False, input_names=["x"],
                          output_names=["cue"], dynamic_axes={"x": {0: "n"}, "cue": {0: "n"}})
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert np.abs(got - want).max() < 1e-4


class _Wrapper(torch.nn.Module):
    """What accelerate's prepare gives under a multi-process launch (DDP): the student inside,
    called through the wrapper (that call is what averages gradients), none of its attributes."""

    def __init__(self, student: ConsistencyStudent) -> None:
        super().__init__()
        self.module, self.calls = student, 0

    def forward(self, *args):
        self.calls += 1
        return self.module(*args)


@pytest.mark.parametrize("objective", ["consistency", "regression"])
def test_the_loss_runs_the_student_through_its_training_wrapper(objective):
    recipe = get_student_recipe("tiny", objective=objective)
    s, target, teacher = _student(), _student(seed=1), _teacher()
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    wrapped = _Wrapper(s)
    loss = student_loss(recipe, wrapped, target, teacher, x0, torch.Generator().manual_seed(0))
    assert wrapped.calls == 1
    bare = student_loss(recipe, s, target, teacher, x0, torch.Generator().manual_seed(0))
    assert torch.equal(loss, bare)


def test_train_student_passes_the_prepared_model_to_the_loss(tmp_path, monkeypatch):
    from edgefas.distill import train_student as ts

    seen = []

    def spy(recipe, student, *rest):
        seen.append(student)
        return student_loss(recipe, student, *rest)

    monkeypatch.setattr(ts, "student_loss", spy)
    monkeypatch.setattr("accelerate.Accelerator.prepare", lambda self, *objs: (_Wrapper(objs[0]), objs[1]))
    monkeypatch.setattr("accelerate.Accelerator.unwrap_model", lambda self, m, **kw: getattr(m, "module", m))
    crops = np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    train_student(get_student_recipe("tiny", steps=1), _teacher(), crops, tmp_path, progress=False)
    assert seen and all(isinstance(s, _Wrapper) for s in seen)


def test_resuming_a_student_with_another_objective_protocol_or_teacher_is_refused(tmp_path):
    crops = np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8)
    data = {"model": "student", "protocol": "P1", "faces": "labelled", "with_lfw": False, "max_lfw": None}
    recipe = get_student_recipe("tiny", steps=2)
    train_student(recipe, _teacher(), crops, tmp_path, progress=False, data=data)
    with pytest.raises(TeacherConfigError, match="objective 'consistency' -> 'regression'"):
        train_student(get_student_recipe("tiny", steps=4, objective="regression"), _teacher(), crops,
                      tmp_path, progress=False, data=data)
    with pytest.raises(TeacherConfigError, match="protocol 'P1' -> 'P2-print'"):
        train_student(recipe.with_overrides(steps=4), _teacher(), crops, tmp_path, progress=False,
                      data={**data, "protocol": "P2-print"})
    other = _teacher()
    other.info = {**other.info, "step": 99}
    with pytest.raises(TeacherConfigError, match="another teacher \\(step None -> 99"):
        train_student(recipe.with_overrides(steps=4), other, crops, tmp_path, progress=False, data=data)
    # the same student, faces and teacher resume
    _, info = load_student(train_student(recipe.with_overrides(steps=4), _teacher(), crops, tmp_path,
                                         progress=False, data=data))
    assert info["step"] == 4
