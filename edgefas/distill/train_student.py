"""Train the few-step student (:mod:`edgefas.distill.student`) from an AG-FAS teacher, with accelerate.

Same conventions as the teacher loops (``train_teacher``): one generator per step derived from
(seed, step) so a resumed run draws the same batches, safetensors checkpoints every
``save_every`` steps, resume from the newest, EMA weights written to ``out_dir/student`` with a
``student.json`` (config, recipe, teacher, data).

The student sees what the teacher saw: the central ``region`` of each aligned crop (the 64 px
centre of the 128 px crop by default), as random patches. Faces are live and attack alike: the
student must reproduce the teacher on every face the runtime will meet.
"""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import __version__
from ..runtime.preprocess import Contract, to_tensor
from ..train.checkpoint import (
    changed_settings,
    load_checkpoint,
    restore_rng_state,
    resume_point,
    save_checkpoint,
)
from ..train.seeding import step_rng
from .cue_features import centre_region
from .errors import TeacherConfigError
from .recipes import StudentRecipe
from .schedule import ddim_generate, predict_eps, timestep_grid
from .student import ConsistencyStudent, StudentConfig, add_noise
from .train_teacher import (
    DiffusionTeacher,
    _check_contract,
    _check_crops,
    _check_saved_run,
    _close_round,
    _data_identity,
    _optimise,
    _patches,
    _prune,
    _read_weights,
    _start,
    _write_weights,
)
from .unet import get_unet_config

STUDENT_DIR = "student"


def _teacher_ddim_step(teacher: DiffusionTeacher, alphas: torch.Tensor, x_hi: torch.Tensor,
                       t_hi: torch.Tensor, t_lo: torch.Tensor, cond: torch.Tensor | None = None
                       ) -> torch.Tensor:
    """One deterministic DDIM step of the teacher's ODE from level t_hi to t_lo (-1: clean)."""
    eps = predict_eps(teacher.unet, x_hi, t_hi, cond)
    a_hi = alphas[t_hi].view(-1, 1, 1, 1)
    a_lo = torch.where(t_lo >= 0, alphas[t_lo.clamp(min=0)], torch.ones_like(t_lo, dtype=alphas.dtype))
    a_lo = a_lo.view(-1, 1, 1, 1)
    x0 = (x_hi - (1 - a_hi).sqrt() * eps) / a_hi.sqrt()
    return a_lo.sqrt() * x0 + (1 - a_lo).sqrt() * eps


def student_loss(recipe: StudentRecipe, student: ConsistencyStudent, target_net: ConsistencyStudent,
                 teacher: DiffusionTeacher, x0: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The recipe's objective on a batch of clean faces ``x0`` (see the module docstrings).

    ``student`` may be the training wrapper (DDP under a multi-process launch): it is called as
    it is, so its gradients are averaged across processes. The schedule is read from
    ``target_net``, a bare student of the same config."""
    alphas = target_net.alphas_cumprod
    n = x0.shape[0]
    # the structure condition of the clean face: what both networks see at inference
    cond = teacher.condition(x0) if teacher.condition is not None else None
    z = torch.randn(x0.shape, generator=g).to(x0.device)
    if recipe.objective == "consistency":
        # Song et al. 2023, Algorithm 2: adjacent levels t_n > t_{n-1} of the delta grid on [0, t0)
        k = torch.randint(1, recipe.t0 // recipe.delta + 1, (n,), generator=g).to(x0.device)
        t_hi, t_lo = k * recipe.delta - 1, (k - 1) * recipe.delta - 1
        x_hi = add_noise(alphas, x0, z, t_hi)
        with torch.no_grad():
            x_lo = _teacher_ddim_step(teacher, alphas, x_hi, t_hi, t_lo, cond)
            target = target_net(x_lo, t_lo, cond)  # f(x, -1) = x: the boundary at the clean face
        return F.mse_loss(student(x_hi, t_hi, cond), target)
    # regression: the teacher's whole k-step DDIM pass from x_{t0}, matched in one evaluation
    t = torch.full((n,), recipe.t0 - 1, dtype=torch.long, device=x0.device)
    x_t = add_noise(alphas, x0, z, t)
    with torch.no_grad():
        target = ddim_generate(teacher.unet, x_t, teacher.schedule,
                               timestep_grid(teacher.schedule, recipe.t0, recipe.teacher_steps), cond)
    return F.mse_loss(student(x_t, t, cond), target)


#: what identifies the teacher a student is distilled from (not its folder, which may move)
TEACHER_KEYS = ("kind", "step", "recipe", "unet_config", "schedule", "condition", "data", "init_from")


def _teacher_identity(teacher: DiffusionTeacher) -> dict:
    return {k: teacher.info.get(k) for k in TEACHER_KEYS}


def train_student(recipe: StudentRecipe, teacher: DiffusionTeacher, crops_uint8: np.ndarray,
                  out_dir: str | Path, *, resume: bool = True, contract: Contract | None = None,
                  teacher_dir: str | Path | None = None, data: dict | None = None,
                  progress: bool = True) -> Path:
    """Distil (or resume distilling) ``teacher`` into a student; return the student folder."""
    side = _check_crops(crops_uint8)
    contract = contract or Contract(size=side)
    _check_contract(contract)
    if teacher.kind != "agfas":
        raise TeacherConfigError("the student distils an AG-FAS teacher (edgefas teacher --model agfas); "
                                 f"got kind {teacher.kind!r}")
    region = centre_region(crops_uint8, recipe.region)
    rside = region.shape[1]
    patch = recipe.patch_size or rside
    ucfg = get_unet_config(recipe.unet)
    if patch > rside or patch % ucfg.downsampling_factor or rside % ucfg.downsampling_factor:
        raise TeacherConfigError(f"patch {patch} / region {rside} px do not suit the {recipe.unet} UNet "
                                 f"(multiples of {ucfg.downsampling_factor}, patch <= region)")
    cond = teacher.condition
    in_channels = 3 + (cond.channels if cond else 0)
    config = StudentConfig(unet=ucfg.with_overrides(sample_size=patch, in_channels=in_channels),
                           t0=recipe.t0, noise_seed=recipe.noise_seed, nfe=recipe.nfe,
                           schedule=teacher.schedule, condition=cond)
    out_dir, accelerator = _start(recipe, out_dir)
    student = ConsistencyStudent(config)
    opt = torch.optim.AdamW(student.parameters(), lr=recipe.lr, weight_decay=0.0)
    ema = copy.deepcopy(student).requires_grad_(False)
    state: dict = {"step": 0, "round": 0, "history": []}
    teacher_id = _teacher_identity(teacher)
    ckpt = resume_point(out_dir, resume, "student_config", accelerator, (STUDENT_DIR,))
    if ckpt is not None:
        saved = json.loads((ckpt / "trainer_state.json").read_text())
        if saved.get("student_config") != config.to_dict():
            raise TeacherConfigError(f"{ckpt} holds another student ({saved.get('student_config')}); "
                                     "use a new out_dir")
        # the objective, the faces (protocol) and the teacher, as for the teachers' own runs: a
        # P1 student resumed as a P2-print one would carry a label its weights do not have
        _check_saved_run(ckpt, recipe, data)
        changed = changed_settings(saved.get("teacher"), teacher_id)
        if changed:
            raise TeacherConfigError(f"{ckpt} was distilled from another teacher ({', '.join(changed)}): "
                                     "use a new out_dir or resume=False")
        state = load_checkpoint(ckpt, model=student, ema=ema, optimizer=opt)
        restore_rng_state(ckpt)
        accelerator.print(f"resuming from {ckpt} (step {state['step']})")
    student, opt = accelerator.prepare(student, opt)
    device = accelerator.device
    ema.to(device)
    teacher.unet.to(device).eval().requires_grad_(False)
    bar = tqdm(total=recipe.steps, initial=state["step"], desc=f"student {recipe.objective} {recipe.name}",
               disable=not (progress and accelerator.is_local_main_process))
    t_start, losses = time.time(), []
    while state["step"] < recipe.steps:
        step = state["step"]
        rng = step_rng(recipe.seed, step, accelerator.process_index)   # each process its own batches
        idx = rng.integers(0, len(region), recipe.batch_size)
        x0 = torch.from_numpy(to_tensor(_patches(region, idx, patch, recipe.hflip, rng), contract)).to(device)
        g = torch.Generator().manual_seed(int(rng.integers(2**62)))
        student.train()
        # the wrapped model: unwrapped, DDP would not average the gradients across processes
        loss = student_loss(recipe, student, ema, teacher, x0, g)
        losses.append(_optimise(accelerator, opt, loss, student, ema, recipe, step))
        state["step"] = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.5f}")
        if state["step"] % recipe.save_every == 0 or state["step"] == recipe.steps:
            _close_round(state, losses, t_start)
            if accelerator.is_main_process:
                saved = {**state, "recipe": recipe.to_dict(), "student_config": config.to_dict(),
                         "contract": contract.to_dict(), "data": _data_identity(data), "teacher": teacher_id}
                save_checkpoint(out_dir / f"epoch_{state['round']:03d}", ema=ema, optimizer=opt,
                                model=accelerator.unwrap_model(student), trainer_state=saved)
                _prune(out_dir, recipe.keep_checkpoints)
    bar.close()
    folder = out_dir / STUDENT_DIR
    if accelerator.is_main_process:
        _write_weights(folder, ema, "student.safetensors")
        n_params = sum(p.numel() for p in ema.unet.parameters())
        (folder / "student.json").write_text(json.dumps({
            "class": "ConsistencyStudent", "config": config.to_dict(), "recipe": recipe.to_dict(),
            "step": state["step"], "parameters": n_params, "contract": contract.to_dict(),
            "region": recipe.region, "teacher": {"dir": str(teacher_dir) if teacher_dir else None,
                                                 "info": teacher.info},
            "data": data or {}, "edgefas_version": __version__}, indent=2))
    accelerator.wait_for_everyone()
    return folder


def load_student(folder: str | Path) -> tuple[ConsistencyStudent, dict]:
    """The EMA student written by :func:`train_student` (eval mode) and its student.json."""
    return _read_weights(folder, "student.json", "student.safetensors",
                         lambda info: ConsistencyStudent(StudentConfig.from_dict(info["config"])))
