"""Train the de-spoofing teachers on cached aligned crops, with accelerate.

The loops mirror ``edgefas/train/baseline.py``: one generator per step derived from (seed, step),
so a resumed run draws the same batches; an EMA of the weights; safetensors checkpoints through
``edgefas.train.checkpoint`` every ``save_every`` steps (``out_dir/epoch_NNN``, the newest
``keep_checkpoints`` kept); ``resume=True`` continues from the newest one. At the end the EMA
weights are written to ``out_dir/teacher`` with a ``teacher.json`` that says what they are.

Inputs are what the crop cache gives: (N, S, S, 3) uint8 BGR crops (and a boolean ``is_live``
for the DS Net), turned into (N, 3, S, S) floats in [-1, 1] by ``to_tensor`` and the contract.
Augmentation is random square patches and horizontal flips only: colour jitter would blur the
colour casts that replays leave, which are part of the cue.
"""
from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import __version__
from ..runtime.preprocess import Contract, to_tensor
from ..train.camera_aug import capture_batch
from ..train.checkpoint import (
    changed_settings,
    checkpoint_folders,
    load_checkpoint,
    restore_rng_state,
    resume_point,
    save_checkpoint,
)
from ..train.ema import ema_update
from ..train.seeding import step_rng
from .agfas import StructureCondition
from .crop_pack import cut_region
from .despoof_net import (
    DespoofNet,
    DespoofNetConfig,
    PatchDiscriminator,
    despoof_net_losses,
    discriminator_loss,
    get_despoof_net_config,
)
from .errors import TeacherConfigError
from .recipes import DespoofNetRecipe, DiffusionRecipe
from .schedule import DiffusionSchedule
from .unet import UNetConfig, build_unet, get_unet_config, load_unet, save_unet

TEACHER_DIR = "teacher"


# ----- shared pieces -----

def _check_crops(crops: np.ndarray) -> int:
    if not isinstance(crops, np.ndarray) or crops.dtype != np.uint8 or crops.ndim != 4 \
            or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2] or len(crops) == 0:
        shape = getattr(crops, "shape", None)
        raise TeacherConfigError(f"crops must be a non-empty (N, S, S, 3) uint8 BGR array, got "
                                 f"{type(crops).__name__} {shape} {getattr(crops, 'dtype', '')}")
    return crops.shape[1]


def _check_contract(contract: Contract) -> None:
    # Diffusion schedules assume data in [-1, 1]; so does the DS Net's HSV branch.
    ends = to_tensor(np.array([[[[0, 0, 0]]], [[[255, 255, 255]]]], np.uint8), contract)
    if not (np.allclose(ends[0], -1) and np.allclose(ends[1], 1)):
        raise TeacherConfigError(f"the contract must map pixels to [-1, 1]; it maps 0..255 to "
                                 f"{float(ends.min()):.3f}..{float(ends.max()):.3f}")


def _patches(crops: np.ndarray, idx: np.ndarray, size: int, hflip: bool,
             rng: np.random.Generator) -> np.ndarray:
    """Random ``size`` x ``size`` patches of ``crops[idx]``, flipped at random when ``hflip``."""
    s = crops.shape[1]
    out = np.empty((len(idx), size, size, 3), np.uint8)
    for j, i in enumerate(idx):
        y, x = rng.integers(0, s - size + 1, size=2)
        p = crops[i, y:y + size, x:x + size]
        out[j] = p[:, ::-1] if hflip and rng.random() < 0.5 else p
    return out


def _warmup_factor(step: int, warmup_steps: int) -> float:
    return min(1.0, (step + 1) / max(warmup_steps, 1))


class _DeviceBatches:
    """Diffusion training batches made on the training device.

    The crops are normalised once by the contract (``to_tensor``, the runtime's own code) and
    kept on the device; each step's faces, patches, flips, noise and timesteps are drawn there
    from a generator seeded by (seed, step, process), so a resumed run draws the same batches and
    each process of a multi-process launch its own. On the lent
    H100 the host-side numpy path (about 30 ms a batch of 128 faces) and a sync every step left
    the GPU 23 % busy at 9.8 steps/s.
    """

    def __init__(self, crops_uint8: np.ndarray, contract: Contract, device: torch.device, *,
                 patch: int, hflip: bool, t_max: int, seed: int, process_index: int = 0) -> None:
        self.x = torch.from_numpy(to_tensor(crops_uint8, contract)).to(device)
        self.device, self.patch, self.hflip, self.t_max, self.seed = device, patch, hflip, t_max, seed
        self.process_index = process_index
        self.gen = torch.Generator(device=device)

    def __call__(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x0, eps, t) of ``step``: x0 (B, 3, patch, patch) in the contract's range."""
        g, dev, p = self.gen, self.device, self.patch
        # stream 1: not the host path's generator of the same step
        g.manual_seed(int(step_rng(self.seed, step, self.process_index, stream=1).integers(2**62)))
        n, _, side, _ = self.x.shape
        idx = torch.randint(0, n, (batch_size,), generator=g, device=dev)
        oy, ox = torch.randint(0, side - p + 1, (2, batch_size, 1), generator=g, device=dev)
        ar = torch.arange(p, device=dev)
        rows, cols = (oy + ar)[:, :, None], (ox + ar)[:, None, :]          # (B, p, 1), (B, 1, p)
        x0 = self.x[idx[:, None, None], :, rows, cols].permute(0, 3, 1, 2)  # (B, p, p, C) -> NCHW
        if self.hflip:
            flip = torch.rand(batch_size, generator=g, device=dev) < 0.5
            x0 = torch.where(flip[:, None, None, None], x0.flip(-1), x0)
        eps = torch.randn(x0.shape, generator=g, device=dev)
        t = torch.randint(0, self.t_max, (batch_size,), generator=g, device=dev)
        return x0.contiguous(), eps, t


def _optimise(accelerator, opt, loss: torch.Tensor, model, ema, recipe, step: int,
              sync: bool = True) -> float | torch.Tensor:
    """One AdamW step on ``loss`` at the warmed-up learning rate, then the EMA; returns the loss
    (as a float, or with ``sync=False`` as a detached tensor so the GPU is not waited for)."""
    for group in opt.param_groups:
        group["lr"] = recipe.lr * _warmup_factor(step, recipe.warmup_steps)
    opt.zero_grad(set_to_none=True)
    accelerator.backward(loss)
    opt.step()
    ema_update(ema, accelerator.unwrap_model(model), recipe.ema_decay)
    return float(loss.item()) if sync else loss.detach()


#: Under several processes the budget is asked every this many steps: the broadcast syncs the
#: GPU, which the sync-free loop otherwise avoids (a few seconds late is no harm to a budget).
BUDGET_CHECK_EVERY = 25


def _out_of_time(accelerator, t_start: float, budget_s: float, step: int = 0) -> bool:
    """Whether the time budget is spent, as the main process sees it: every process must stop
    at the same step, or the ones still training wait for the others' gradients for ever."""
    spent = time.time() - t_start > budget_s
    if accelerator.num_processes == 1:
        return spent
    if step % BUDGET_CHECK_EVERY:   # the same steps on every process: they skip it together
        return False
    from accelerate.utils import broadcast

    return bool(broadcast(torch.tensor([float(spent)], device=accelerator.device), from_process=0).item())


def _close_round(state: dict, losses: list, t_start: float) -> None:
    """Count a checkpoint round and log its mean loss into ``state["history"]``."""
    state["round"] += 1
    # device tensors (the sync-free diffusion loop) are averaged where they are: one transfer
    mean = float(torch.stack(losses).mean()) if torch.is_tensor(losses[0]) else float(np.mean(losses))
    state["history"].append({"round": state["round"], "step": state["step"], "loss": mean,
                             "seconds": round(time.time() - t_start, 1)})
    losses.clear()


@torch.no_grad()
def _prune(out_dir: Path, keep: int) -> None:
    done = checkpoint_folders(out_dir)     # oldest round first, epoch_1000 after epoch_999
    for old in done[:-keep] if keep > 0 else []:
        shutil.rmtree(old)


def _patch_size(recipe: DiffusionRecipe | DespoofNetRecipe, side: int) -> int:
    size = recipe.patch_size or side
    if size > side:
        raise TeacherConfigError(f"patch_size {size} is larger than the {side} px crops")
    return size


def _start(recipe, out_dir: str | Path):
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    set_seed(recipe.seed)
    cuda = torch.cuda.is_available()
    if cuda:
        # fixed input sizes: let cuDNN pick its fastest convolution once
        torch.backends.cudnn.benchmark = True
    # bf16 autocast only where it pays (a GPU); the CPU recipes stay fp32
    precision = getattr(recipe, "mixed_precision", "no") if cuda else "no"
    return out_dir, Accelerator(cpu=not cuda, mixed_precision=precision)


def _check_saved_config(ckpt: Path, key: str, expected: dict) -> None:
    saved = json.loads((ckpt / "trainer_state.json").read_text()).get(key)
    if saved != expected:
        raise TeacherConfigError(f"{ckpt} was trained with another network ({key} {saved} != {expected}); "
                                 "use a new out_dir or resume=False")


#: recipe fields a resumed teacher run may change: its length, threads, precision, checkpointing
RESUMABLE_CHANGES = ("name", "steps", "threads", "mixed_precision", "save_every", "keep_checkpoints")
#: what the faces were; a resumed run must learn from the same ones (counts may differ a little
#: when a crop cache is rebuilt, so they are not compared)
DATA_KEYS = ("model", "protocol", "faces", "with_lfw", "max_lfw")


def _data_identity(data: dict | None) -> dict:
    """The fields of a teacher's data record that say which faces it learns from."""
    return {k: (data or {}).get(k) for k in DATA_KEYS}


def _check_saved_run(ckpt: Path, recipe, data: dict | None) -> None:
    """Refuse to resume a run under another recipe or on other faces: the result would carry the
    new settings' name (in teacher.json) with weights mostly learnt under the old ones."""
    state = json.loads((ckpt / "trainer_state.json").read_text())
    saved = state.get("recipe")
    if saved is not None and "augment" not in saved and hasattr(recipe, "augment"):
        saved = {**saved, "augment": "none"}    # runs from before the option had none
    changed = changed_settings(saved, recipe.to_dict(), RESUMABLE_CHANGES)
    if state.get("data") is not None and data is not None:
        changed += changed_settings(state["data"], _data_identity(data))
    if changed:
        raise TeacherConfigError(f"{ckpt} was trained with another recipe or data "
                                 f"({', '.join(changed)}): use a new out_dir or resume=False")


def _check_saved_init(ckpt: Path, init_from: str | Path | None) -> None:
    """A resumed run keeps the teacher it was started from (recorded in its checkpoints); asking
    for another one would be silently ignored, so it is refused. Without ``init_from`` the
    recorded one stands."""
    state = json.loads((ckpt / "trainer_state.json").read_text())
    if "init_from" not in state:      # saved before it was recorded: nothing to compare with
        return
    saved = state["init_from"]
    if init_from is not None and (saved is None or Path(saved).resolve() != Path(init_from).resolve()):
        raise TeacherConfigError(f"{ckpt} was started from {saved or 'scratch'}, not from {init_from}: "
                                 "use a new out_dir or resume=False")


def _write_weights(folder: Path, module: torch.nn.Module, filename: str) -> None:
    """A fresh ``folder`` holding ``module``'s state dict as safetensors (never a pickle)."""
    from safetensors.torch import save_file

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, folder / filename)


def _read_weights(folder: str | Path, json_name: str, weights_name: str,
                  build) -> tuple[torch.nn.Module, dict]:
    """``build(info)`` loaded with ``folder/weights_name``, in eval mode, and ``folder/json_name``."""
    from safetensors.torch import load_file

    folder = Path(folder)
    info = json.loads((folder / json_name).read_text())
    module = build(info)
    module.load_state_dict(load_file(folder / weights_name))
    return module.eval(), info


def _write_teacher_json(folder: Path, info: dict) -> None:
    (folder / "teacher.json").write_text(json.dumps({**info, "edgefas_version": __version__}, indent=2))


# ----- diffusion teachers (DDM eps_s / eps_g, AG-FAS live model) -----

@dataclass
class DiffusionTeacher:
    """A trained denoiser with everything needed to run it: schedule, condition, provenance."""

    unet: torch.nn.Module
    schedule: DiffusionSchedule
    condition: StructureCondition | None
    kind: str
    info: dict


def train_diffusion(recipe: DiffusionRecipe, crops_uint8: np.ndarray, out_dir: str | Path, *,
                    resume: bool = True, contract: Contract | None = None,
                    init_from: str | Path | None = None, progress: bool = True,
                    data: dict | None = None, crops_region: float = 1.0,
                    time_budget_s: float | None = None, batches_on_device: bool | None = None) -> Path:
    """Train (or resume) an epsilon-prediction UNet on ``crops_uint8``; return the teacher folder.

    Pass all faces for DDM's eps_s, live faces only for eps_g and the AG-FAS model. ``init_from``
    (a teacher folder) starts a fresh run from its weights, e.g. eps_s as a fine-tune of eps_g.
    ``data`` (what the crops are: protocol, faces, sources, licences) goes into ``teacher.json``.
    ``crops_region``: the crops are already the central fraction of the aligned crop (a crop pack);
    the rest of ``recipe.region`` is cut here. ``time_budget_s``: stop after this many seconds with
    a checkpoint and the teacher so far (``"complete": false`` in teacher.json); a later call
    resumes. That is how a run fits ten-minute slots on a lent GPU. ``batches_on_device``: draw
    the batches on the training device (default: on a GPU; the CPU keeps the numpy path and its
    batches).
    """
    crops_uint8 = cut_region(crops_uint8, recipe.region, crops_region)
    side = _check_crops(crops_uint8)
    contract = contract or Contract(size=side)
    _check_contract(contract)
    patch = _patch_size(recipe, side)
    cond = recipe.structure_condition()
    unet_cfg = replace(get_unet_config(recipe.unet), in_channels=3 + (cond.channels if cond else 0),
                       sample_size=patch)
    schedule = recipe.schedule()
    out_dir, accelerator = _start(recipe, out_dir)
    unet = build_unet(unet_cfg)
    opt = torch.optim.AdamW(unet.parameters(), lr=recipe.lr, weight_decay=0.0)
    state: dict = {"step": 0, "round": 0, "history": [], "init_from": str(init_from) if init_from else None}
    ckpt = resume_point(out_dir, resume, "unet_config", accelerator, (TEACHER_DIR,))
    if ckpt is None and init_from is not None:
        start = load_diffusion_teacher(init_from)
        if replace(UNetConfig.from_dict(start.info["unet_config"]), sample_size=patch) != unet_cfg:
            raise TeacherConfigError(f"{init_from} holds a different UNet than recipe {recipe.name!r}")
        unet.load_state_dict(start.unet.state_dict())
    ema = copy.deepcopy(unet).requires_grad_(False)
    if ckpt is not None:
        _check_saved_config(ckpt, "unet_config", unet_cfg.to_dict())
        _check_saved_run(ckpt, recipe, data)
        _check_saved_init(ckpt, init_from)
        state = load_checkpoint(ckpt, model=unet, ema=ema, optimizer=opt)
        state.setdefault("init_from", str(init_from) if init_from else None)
        restore_rng_state(ckpt)
        accelerator.print(f"resuming from {ckpt} (step {state['step']})")
    unet, opt = accelerator.prepare(unet, opt)
    ema.to(accelerator.device)
    forward = schedule.ddim()
    device, n = accelerator.device, len(crops_uint8)
    if batches_on_device is None:
        batches_on_device = device.type == "cuda" and recipe.augment == "none"
    rank = accelerator.process_index
    if batches_on_device and recipe.augment != "none":
        # the capture pipeline is OpenCV on uint8 crops: it runs on the host only
        raise TeacherConfigError(f"augment={recipe.augment!r} draws its batches on the host; "
                                 "use batches_on_device=False")
    batches = (_DeviceBatches(crops_uint8, contract, device, patch=patch, hflip=recipe.hflip,
                              t_max=recipe.t_max, seed=recipe.seed, process_index=rank)
               if batches_on_device else None)
    bar = tqdm(total=recipe.steps, initial=state["step"], desc=f"{recipe.kind} {recipe.name}",
               disable=not (progress and accelerator.is_local_main_process))
    t_start, losses = time.time(), []
    out_of_time = False
    while state["step"] < recipe.steps and not out_of_time:
        step = state["step"]
        if batches is not None:
            x0, eps, t = batches(step, recipe.batch_size)
        else:
            rng = step_rng(recipe.seed, step, rank)    # each process its own batches
            idx = rng.integers(0, n, recipe.batch_size)
            if recipe.augment == "camera":
                # whole faces through the capture pipeline, then patches: resolution and JPEG act
                # on the face as a camera would, not on a 32 px patch
                faces = capture_batch(crops_uint8[idx], rng)
                x0 = _patches(faces, np.arange(len(idx)), patch, recipe.hflip, rng)
            else:
                x0 = _patches(crops_uint8, idx, patch, recipe.hflip, rng)
            x0 = torch.from_numpy(to_tensor(x0, contract))
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            eps = torch.randn(x0.shape, generator=g)
            t = torch.randint(0, recipe.t_max, (len(idx),), generator=g)
            x0, eps, t = x0.to(device), eps.to(device), t.to(device)
        x_t = forward.add_noise(x0, eps, t)      # AG-FAS Eq. 10: sqrt(a_t) x0 + sqrt(1 - a_t) eps
        x_in = torch.cat([x_t, cond(x0)], 1) if cond is not None else x_t
        unet.train()
        # DDM Sec. 3.2 / AG-FAS Eq. 1 (Eq. 4 with the condition): || eps_theta(x_t, t) - eps ||^2
        loss = F.mse_loss(unet(x_in, t).sample.float(), eps)
        # no host sync per step: the loss is read when the bar shows it (every 50 steps)
        losses.append(_optimise(accelerator, opt, loss, unet, ema, recipe, step, sync=False))
        state["step"] = step + 1
        bar.update(1)
        if state["step"] % 50 == 0 or state["step"] == recipe.steps:
            bar.set_postfix(loss=f"{float(losses[-1]):.4f}")
        out_of_time = time_budget_s is not None and _out_of_time(accelerator, t_start, time_budget_s,
                                                                 state["step"])
        if state["step"] % recipe.save_every == 0 or state["step"] == recipe.steps or out_of_time:
            _close_round(state, losses, t_start)
            if accelerator.is_main_process:
                save_checkpoint(out_dir / f"epoch_{state['round']:03d}", model=accelerator.unwrap_model(unet),
                                ema=ema, optimizer=opt,
                                trainer_state={**state, "recipe": recipe.to_dict(),
                                               "unet_config": unet_cfg.to_dict(),
                                               "contract": contract.to_dict(),
                                               "data": _data_identity(data)})
                _prune(out_dir, recipe.keep_checkpoints)
    bar.close()
    if out_of_time:
        accelerator.print(f"time budget of {time_budget_s:.0f} s spent at step {state['step']} of "
                          f"{recipe.steps}: run the same command again to resume")
    folder = out_dir / TEACHER_DIR
    if accelerator.is_main_process:
        shutil.rmtree(folder, ignore_errors=True)
        save_unet(ema, folder / "unet")
        _write_teacher_json(folder, {
            "class": "DiffusionTeacher", "kind": recipe.kind, "step": state["step"],
            "complete": state["step"] >= recipe.steps, "history": state["history"],
            "recipe": recipe.to_dict(),
            # the precision it ran at, beside the recipe's request: the CPU runs fp32 whatever that says
            "mixed_precision": accelerator.mixed_precision,
            "unet_config": unet_cfg.to_dict(), "schedule": schedule.to_dict(),
            "condition": cond.to_dict() if cond else None, "contract": contract.to_dict(),
            "trained_on": {"crops": n, "side": side}, "init_from": state.get("init_from"),
            "data": data or {}})
    accelerator.wait_for_everyone()
    return folder


def load_diffusion_teacher(folder: str | Path) -> DiffusionTeacher:
    """The EMA UNet written by :func:`train_diffusion` (eval mode) with its schedule and condition."""
    folder = Path(folder)
    info = json.loads((folder / "teacher.json").read_text())
    cond = info.get("condition")
    return DiffusionTeacher(unet=load_unet(folder / "unet"),
                            schedule=DiffusionSchedule.from_dict(info["schedule"]),
                            condition=StructureCondition(**cond) if cond else None,
                            kind=info["kind"], info=info)


# ----- DS Net (Face De-Spoofing) -----

class DespoofTrainPair(torch.nn.Module):
    """The DS Net and its VQ discriminator, trained together (one checkpoint, one optimizer with
    a parameter group each)."""

    def __init__(self, config: DespoofNetConfig) -> None:
        super().__init__()
        self.ds = DespoofNet(config)
        self.vq = PatchDiscriminator(config)


def train_despoof_net(recipe: DespoofNetRecipe, crops: np.ndarray, is_live: np.ndarray,
                      out_dir: str | Path, *, resume: bool = True, contract: Contract | None = None,
                      progress: bool = True, data: dict | None = None) -> Path:
    """Train (or resume) the DS Net on live and attack crops; return the teacher folder.

    Each step draws a half-live, half-attack batch, updates the VQ discriminator on real live
    faces vs ``x - N`` of the attacks (Eq. 3, DS Net fixed), then the DS Net on Eq. 7 without
    J_DQ (discriminator fixed). Single process only (CPU or one GPU).
    """
    side = _check_crops(crops)
    is_live = np.asarray(is_live)
    if is_live.dtype != bool or is_live.shape != (len(crops),):
        raise TeacherConfigError(f"is_live must be a bool array of shape ({len(crops)},), got "
                                 f"{is_live.dtype} {is_live.shape}")
    if is_live.all() or not is_live.any():
        raise TeacherConfigError("the DS Net needs both live and attack crops")
    if recipe.batch_size < 2:
        raise TeacherConfigError("batch_size must be >= 2 (half live, half attack)")
    contract = contract or Contract(size=side)
    _check_contract(contract)
    patch = _patch_size(recipe, side)
    net_cfg = get_despoof_net_config(recipe.net)
    k = max(1, round(recipe.low_freq_fraction * patch))
    out_dir, accelerator = _start(recipe, out_dir)
    if accelerator.num_processes > 1:
        raise TeacherConfigError("train_despoof_net runs in one process; launch it without accelerate launch")
    pair = DespoofTrainPair(net_cfg)
    opt = torch.optim.AdamW([{"params": pair.ds.parameters(), "lr": recipe.lr},
                             {"params": pair.vq.parameters(), "lr": recipe.lr_disc}], weight_decay=0.0)
    base_lrs = (recipe.lr, recipe.lr_disc)
    ema = copy.deepcopy(pair).requires_grad_(False)
    state: dict = {"step": 0, "round": 0, "history": []}
    ckpt = resume_point(out_dir, resume, "net_config", accelerator, (TEACHER_DIR,))
    if ckpt is not None:
        _check_saved_config(ckpt, "net_config", net_cfg.to_dict())
        _check_saved_run(ckpt, recipe, data)
        state = load_checkpoint(ckpt, model=pair, ema=ema, optimizer=opt)
        restore_rng_state(ckpt)
        accelerator.print(f"resuming from {ckpt} (step {state['step']})")
    pair, opt = accelerator.prepare(pair, opt)
    ema.to(accelerator.device)
    model = accelerator.unwrap_model(pair)
    device = accelerator.device
    live_idx, attack_idx = np.flatnonzero(is_live), np.flatnonzero(~is_live)
    bar = tqdm(total=recipe.steps, initial=state["step"], desc=f"despoof_net {recipe.name}",
               disable=not (progress and accelerator.is_local_main_process))
    t_start, logs = time.time(), []
    while state["step"] < recipe.steps:
        step = state["step"]
        rng = step_rng(recipe.seed, step)      # one process (checked above)
        half = recipe.batch_size // 2
        idx = np.concatenate([rng.choice(live_idx, half), rng.choice(attack_idx, recipe.batch_size - half)])
        x = torch.from_numpy(to_tensor(_patches(crops, idx, patch, recipe.hflip, rng), contract)).to(device)
        live = torch.from_numpy(is_live[idx]).to(device)
        for group, base in zip(opt.param_groups, base_lrs):
            group["lr"] = base * _warmup_factor(step, recipe.warmup_steps)
        pair.train()
        out = model.ds(x)
        # 1. VQ Net (Eq. 3): real live faces vs the DS Net's live estimates of attacks; DS Net fixed.
        d_loss = discriminator_loss(model.vq(x[live]), model.vq(out.live[~live].detach()))
        opt.zero_grad(set_to_none=True)
        accelerator.backward(d_loss)
        opt.step()
        # 2. DS Net (Eq. 7 without J_DQ); the discriminator's gradients are dropped, so it stays fixed.
        terms = despoof_net_losses(out, live, model.vq(out.live[~live]), k=k,
                                   lambda_magnitude=recipe.lambda_magnitude,
                                   lambda_repetitive=recipe.lambda_repetitive,
                                   lambda_adversarial=recipe.lambda_adversarial)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(terms.total)
        for p in model.vq.parameters():
            p.grad = None        # AdamW skips parameters without a gradient
        opt.step()
        ema_update(ema, model, recipe.ema_decay)
        logs.append([v.item() for v in (terms.total, terms.zero_one_map, terms.magnitude, terms.repetitive,
                                        terms.adversarial, d_loss)])
        state["step"] = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{logs[-1][0]:.3f}", d=f"{logs[-1][-1]:.3f}")
        if state["step"] % recipe.save_every == 0 or state["step"] == recipe.steps:
            state["round"] += 1
            mean = np.mean(logs, axis=0)
            state["history"].append({"round": state["round"], "step": state["step"],
                                     **dict(zip(("total", "zero_one_map", "magnitude", "repetitive",
                                                 "adversarial", "discriminator"), map(float, mean))),
                                     "seconds": round(time.time() - t_start, 1)})
            logs = []
            save_checkpoint(out_dir / f"epoch_{state['round']:03d}", model=model, ema=ema, optimizer=opt,
                            trainer_state={**state, "recipe": recipe.to_dict(),
                                           "net_config": net_cfg.to_dict(), "contract": contract.to_dict(),
                                           "data": _data_identity(data)})
            _prune(out_dir, recipe.keep_checkpoints)
    bar.close()
    folder = out_dir / TEACHER_DIR
    _write_weights(folder, ema.ds, "despoof_net.safetensors")
    _write_teacher_json(folder, {
        "class": "DespoofNet", "kind": "despoof_net", "step": state["step"], "recipe": recipe.to_dict(),
        "net_config": net_cfg.to_dict(), "repetitive_k": k, "contract": contract.to_dict(),
        "trained_on": {"crops": len(crops), "live": int(is_live.sum()), "side": side}, "data": data or {}})
    return folder


def load_despoof_net(folder: str | Path) -> tuple[DespoofNet, dict]:
    """The EMA DS Net written by :func:`train_despoof_net` (eval mode) and its teacher.json."""
    return _read_weights(folder, "teacher.json", "despoof_net.safetensors",
                         lambda info: DespoofNet(DespoofNetConfig.from_dict(info["net_config"])))
