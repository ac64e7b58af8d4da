"""Train the RGB baseline classifier on cached aligned crops, with accelerate.

The loop: balanced batches (half bona fide, half attack; a share of the bona fide half from
LFW when enabled), flip / shift / brightness-contrast jitter (no hue or saturation jitter:
colour casts are an attack cue), AdamW with warm-up and cosine decay, an EMA of the weights,
a devel evaluation every ``eval_every`` steps that saves a safetensors checkpoint and keeps
the best by devel D-EER. ``resume=True`` continues from the newest checkpoint in ``out_dir``.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..bundle import sha256_file
from ..errors import EdgefasError
from ..metrics import eer
from ..models.mobilevit_baseline import BaselineClassifier, BaselineConfig
from ..runtime.preprocess import Contract, to_tensor
from .camera_aug import capture_batch, jitter_batch, light_batch
from .checkpoint import (
    changed_settings,
    check_run_kind,
    latest_checkpoint,
    load_checkpoint,
    restore_rng_state,
    resume_point,
    save_checkpoint,
)
from .ema import ema_update
from .recipes import BaselineRecipe
from .seeding import step_rng
from .synth_attacks import synth_attack


@dataclass
class TrainSet:
    """Crops to learn from: ``crops`` (N,S,S,3) uint8 BGR, ``is_live`` (N,), ``is_extra``
    marks bona fide faces from the extra source (LFW) drawn at ``lfw_share``, ``is_extra_live``
    those of the recipe's ``extra_live`` source drawn at ``extra_live_share``."""

    crops: np.ndarray
    is_live: np.ndarray
    is_extra: np.ndarray
    is_extra_live: np.ndarray | None = None


@dataclass
class DevelSet:
    """Labelled devel crops. ``source`` (optional) names each bona fide crop's source; given,
    checkpoints are selected on the D-EER with the worst source's BPCER (see
    :func:`edgefas.metrics.eer`)."""

    crops: np.ndarray
    is_attack: np.ndarray
    species: np.ndarray
    source: np.ndarray | None = None

    def eer(self, scores: np.ndarray):
        return eer(scores, self.is_attack, species=self.species, bona_fide_source=self.source)


def augment(batch: np.ndarray, rng: np.random.Generator, max_shift: int = 6) -> np.ndarray:
    """Flip, shift (reflect-padded) and brightness/contrast jitter; float32 0-255 out."""
    n, s = batch.shape[0], batch.shape[1]
    padded = np.pad(batch, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)),
                    mode="reflect")
    out = np.empty(batch.shape, np.float32)
    for i in range(n):
        dy, dx = rng.integers(0, 2 * max_shift + 1, size=2)
        img = padded[i, dy:dy + s, dx:dx + s].astype(np.float32)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        c, b = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        out[i] = np.clip((img - 128.0) * c + 128.0 + b, 0, 255)
    return out


def _batch_indices(data: TrainSet, recipe: BaselineRecipe, rng: np.random.Generator) -> np.ndarray:
    xl = data.is_extra_live if data.is_extra_live is not None else np.zeros(len(data.is_live), bool)
    live = np.flatnonzero(data.is_live & ~data.is_extra & ~xl)
    extra = np.flatnonzero(data.is_live & data.is_extra)
    extra_live = np.flatnonzero(data.is_live & xl)
    attack = np.flatnonzero(~data.is_live)
    half = recipe.batch_size // 2
    n_extra = int(round(half * recipe.lfw_share)) if (recipe.use_lfw and extra.size) else 0
    n_xl = int(round(half * recipe.extra_live_share)) if extra_live.size else 0
    parts = [rng.choice(live, half - n_extra - n_xl), rng.choice(attack, recipe.batch_size - half)]
    if n_extra:
        parts.append(rng.choice(extra, n_extra))
    if n_xl:   # drawn last: a recipe without the source draws exactly what it drew before
        parts.append(rng.choice(extra_live, n_xl))
    return np.concatenate(parts)


def _with_synth_attacks(crops: np.ndarray, idx: np.ndarray, train: TrainSet, share: float,
                        rng: np.random.Generator) -> np.ndarray:
    """Replace ``share`` of the batch's attack crops by synthetic attacks made from live training
    crops (:mod:`edgefas.train.synth_attacks`); labels stay those of ``idx`` (attack)."""
    slots = np.flatnonzero(~train.is_live[idx])
    k = int(round(slots.size * share))
    if k == 0:
        return crops
    live = np.flatnonzero(train.is_live)
    out = crops.copy()
    for slot, src in zip(slots[:k], rng.choice(live, k)):
        out[slot] = synth_attack(train.crops[src], rng)
    return out


def _with_live_tone(crops: np.ndarray, idx: np.ndarray, train: TrainSet, share: float,
                    rng: np.random.Generator, any_slot: bool = False) -> np.ndarray:
    """Give ``share`` of the batch's live crops a print's or a screen's tone without its
    texture (labels stay live): the synthetic attacks' gamut, cast, glare and blur then tell
    nothing, only their dots, moire and pixel rows do.

    The toned crops are the batch's *first* k live slots, and :func:`_batch_indices` puts
    Replay-Attack's live faces before LFW's: at the cpu recipe's batch (18 Replay + 6 LFW live
    slots) a share up to 0.75 tones Replay-Attack webcam faces only, while
    :func:`_with_synth_attacks` makes its attacks from all live training crops (mostly LFW's).
    Kept as is: the S2 run (docs/ablation_synth_attacks) trained so, and this field must keep
    meaning what it did for that run's resume and reproduction. ``any_slot`` (the recipe's
    ``synth_live_tone_any``) draws the k slots at random among all live slots instead, so LFW's
    faces, the synthetic attacks' main source, are toned as live too."""
    slots = np.flatnonzero(train.is_live[idx])
    k = int(round(slots.size * share))
    if k == 0:
        return crops
    if any_slot:
        slots = np.sort(rng.choice(slots, k, replace=False))
    out = crops.copy()
    for slot in slots[:k]:
        out[slot] = synth_attack(crops[slot], rng, texture=False)
    return out


@torch.no_grad()
def predict_logits(model: torch.nn.Module, crops: np.ndarray, contract: Contract,
                   batch: int = 128) -> np.ndarray:
    """Live logits of uint8 crops, in eval mode, on the device the model's weights are on."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(torch.from_numpy(to_tensor(crops[i:i + batch], contract)).to(device)).float().cpu().numpy()
           for i in range(0, len(crops), batch)]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _lr_at(step: int, recipe: BaselineRecipe, schedule_steps: int | None = None) -> float:
    """Warm-up, then cosine decay to 0 at ``schedule_steps`` (default ``recipe.steps``); 0 after."""
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    total = recipe.steps if schedule_steps is None else schedule_steps
    t = (step - recipe.warmup_steps) / max(total - recipe.warmup_steps, 1)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))


def build_model(recipe: BaselineRecipe, contract: Contract):
    """(model, config) for a recipe: the RGB baseline, or the fusion detector with its frozen cue."""
    if recipe.fusion is None:
        config = BaselineConfig(arch=recipe.arch, img_size=contract.size)
        return BaselineClassifier(config), config
    from ..models.fusion import DespoofCue, FusionClassifier, FusionConfig

    if not recipe.cue_dir:
        raise EdgefasError(f"fusion {recipe.fusion!r} needs a cue module folder (--cue-dir)")
    if recipe.cue_kind == "student":
        from ..distill.student import StudentCue
        from ..distill.train_student import load_student

        student, info = load_student(recipe.cue_dir)
        side = round(contract.size * info.get("region", 0.5))
        cue, cue_config = StudentCue(student, side, contract.size, nfe=recipe.cue_nfe), info["config"]
    else:
        from ..distill.train_teacher import load_despoof_net

        net, info = load_despoof_net(recipe.cue_dir)
        side = contract.size // 2
        cue, cue_config = DespoofCue(net, side, contract.size), info["net_config"]
    if info.get("contract") and info["contract"] != contract.to_dict():
        raise EdgefasError(f"the cue module in {recipe.cue_dir} was trained on another contract")
    config = FusionConfig(arch=recipe.arch, img_size=contract.size, fusion=recipe.fusion,
                          cue_kind=recipe.cue_kind, cue_config=cue_config, cue_side=side,
                          cue_nfe=recipe.cue_nfe)
    return FusionClassifier(config, cue_module=cue), config


#: recipe fields a resumed run may change: how long it runs and on how many threads. The
#: learning-rate schedule stays the one the run started with (``lr_schedule_steps`` in the
#: trainer state): steps added to a run go on at its final rate instead of warming it up again.
RESUMABLE_CHANGES = ("steps", "threads", "name")
#: recipe fields added since some runs were saved, with the value those runs trained under: a
#: checkpoint without the field is compared as if it had it (a run saved before ``lfw_devel``
#: trained on LFW's devel bucket, so resuming it with ``--lfw-devel`` must be refused).
PREDATED_FIELDS = {"lfw_devel": False, "synth_attacks": 0.0, "synth_live_tone": 0.0,
                   "synth_live_tone_any": False, "extra_live": None, "extra_live_share": 0.0,
                   "init_from": None, "anchor": 0.0, "rehearse": False, "freeze_bn": False,
                   "train_layers": "all", "backbone_init": None, "jitter_scale": 0.0,
                   "jitter_degrees": 0.0, "light_ev": 0.0, "light_wb": 0.0}


def _saved_state(ckpt: Path) -> dict:
    return json.loads((Path(ckpt) / "trainer_state.json").read_text())


def _check_resume(ckpt: Path, saved: dict, recipe: BaselineRecipe, contract: Contract,
                  config=None) -> None:
    """Refuse to resume ``ckpt`` under another recipe, crop geometry or model, before any weights
    are loaded (a state dict of another network only gives a key-mismatch traceback)."""
    if "model_config" not in saved or "recipe" not in saved:
        # a teacher or student folder (or anything else with epoch_* folders) given as --out
        raise EdgefasError(f"{ckpt} is not a checkpoint of edgefas train (a teacher or distill run?): "
                           "use another --out")
    if saved.get("contract") and Contract.from_dict(saved["contract"]) != contract:
        # Crops of another geometry would be mixed into one model without a word.
        raise EdgefasError(f"{ckpt} was trained with the contract {saved['contract']}, not "
                           f"{contract.to_dict()}: use another --out or --no-resume")
    changed = changed_settings({**PREDATED_FIELDS, **saved["recipe"]}, recipe.to_dict(),
                               RESUMABLE_CHANGES)
    started = saved["recipe"].get("backbone_init")
    if changed and started and recipe.backbone_init is None and not changed_settings(
            {**PREDATED_FIELDS, **saved["recipe"], "backbone_init": None}, recipe.to_dict(),
            RESUMABLE_CHANGES):
        # the one difference is that the starting weights were not given again: say which
        raise EdgefasError(f"{ckpt} was trained with another recipe (backbone_init): it started "
                           f"from pretrained weights {(saved.get('backbone_init') or {}).get('file', '')} "
                           f"({started}); give --backbone-weights with that file to resume it, or "
                           "--no-resume to start over")
    if changed:
        # another seed, augmentation, data or model would continue the old run under the
        # new recipe's name; only the length of the run (and threads) may change on resume
        raise EdgefasError(f"{ckpt} was trained with another recipe ({', '.join(changed)}): "
                           "use another --out or --no-resume")
    if config is not None and saved["model_config"] != config.to_dict():
        changed = changed_settings(saved["model_config"], config.to_dict()) or ["model_config"]
        raise EdgefasError(f"{ckpt} holds another model ({', '.join(changed)}): "
                           "use another --out or --no-resume")


def check_branch(branch_from: str | Path, recipe: BaselineRecipe, contract: Contract,
                 config=None) -> dict:
    """Refuse a branch point that this run could not continue: not a checkpoint of ``edgefas
    train``, or trained under another recipe than ``recipe`` but for the seed (a branch is the
    same training continued on other batches), another contract or model, or at or past the
    recipe's last step. Returns the trunk's trainer state."""
    folder = Path(branch_from)
    if not (folder / "trainer_state.json").is_file() or not (folder / "ema.safetensors").is_file():
        raise EdgefasError(f"--branch-from {folder}: not a checkpoint folder of edgefas train "
                           "(RUN/epoch_NNN, with trainer_state.json and ema.safetensors)")
    saved = _saved_state(folder)
    # the seed is what a branch changes; everything else must be the trunk's (a folder of
    # another kind of run has no recipe, and _check_resume says what it is)
    _check_resume(folder, saved, recipe.with_overrides(seed=saved.get("recipe", {}).get("seed")),
                  contract, config)
    if saved["step"] >= recipe.steps:
        raise EdgefasError(f"--branch-from {folder}: it is at step {saved['step']}, the recipe ends "
                           f"at {recipe.steps}; branch from an earlier checkpoint")
    if saved["recipe"].get("seed") == recipe.seed:
        raise EdgefasError(f"--branch-from {folder}: give another --seed than the trunk's "
                           f"({recipe.seed}): with the same one the branch repeats the trunk")
    return saved


def check_resume(out_dir: str | Path, recipe: BaselineRecipe, contract: Contract, *,
                 resume: bool = True) -> None:
    """What :func:`train_baseline` will check of the newest checkpoint in ``out_dir`` (less the
    model config, which needs the model built), for callers with minutes of work before it:
    with ``resume`` that the run may be resumed, without it that the folder is a baseline run
    (whose checkpoints starting over deletes)."""
    if not resume:   # the check starting over makes before it deletes checkpoints
        check_run_kind(Path(out_dir), "model_config")
        return
    ckpt = latest_checkpoint(Path(out_dir))
    if ckpt is not None:
        _check_resume(ckpt, _saved_state(ckpt), recipe, contract)


def freeze_lower_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """Freeze every weight below the backbone's last stage (``train_layers="last-stage"``) and
    return the frozen modules. The stage and what follows it (final convolution, head) train."""
    net = getattr(model, "net", None)
    stages = getattr(net, "stages", None)
    if not isinstance(stages, torch.nn.Sequential) or len(stages) < 2:
        raise EdgefasError(f"train_layers 'last-stage' needs a timm backbone with stages; "
                           f"{type(model).__name__} has none")
    frozen = [m for name, m in net.named_children() if name in ("stem", "patch_embed")]
    frozen += list(stages[:-1])
    for m in frozen:
        m.requires_grad_(False)
    return frozen


def train_baseline(recipe: BaselineRecipe, train: TrainSet, devel: DevelSet, contract: Contract,
                   out_dir: str | Path, *, resume: bool = True, progress: bool = True,
                   init_weights: dict | None = None, backbone=None,
                   branch_from: str | Path | None = None) -> Path:
    """Run (or resume) a training; return the folder of the best checkpoint.

    ``init_weights``: a state dict to start from (fine-tuning; the recipe's ``init_from`` names
    it), instead of random weights. ``backbone``: pretrained backbone weights
    (:class:`~edgefas.train.backbone_init.BackboneWeights`, the recipe's ``backbone_init`` names
    them) for a run from scratch. A resumed run loads its checkpoint instead of either.
    ``branch_from``: another run's ``epoch_NNN`` checkpoint of the same recipe but the seed; a
    new run starts there (weights, EMA, optimizer, step, schedule) and draws its own batches
    (``edgefas soup`` averages such branches). The branch point is kept in the trainer state.

    Writes ``out_dir/epoch_NNN/`` checkpoints (``epoch`` = evaluation round), ``best`` (a copy
    of the best by devel D-EER) and ``history.json`` (every evaluation).
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(recipe.threads)
    set_seed(recipe.seed)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    model, config = build_model(recipe, contract)
    if (init_weights is None) != (recipe.init_from is None):
        raise EdgefasError("init_weights and the recipe's init_from go together")
    if init_weights is not None:
        model.load_state_dict(init_weights)   # strict: another architecture fails here, named
    if (backbone is None) != (recipe.backbone_init is None) or (
            backbone is not None and backbone.tag != recipe.backbone_init):
        raise EdgefasError("backbone weights and the recipe's backbone_init go together")
    backbone_record = None
    if backbone is not None:
        from .backbone_init import apply_backbone_weights, contract_convention

        mean01, std01 = contract_convention(contract)
        backbone_record = apply_backbone_weights(model, backbone, arch=recipe.arch, mean=mean01,
                                                 std=std01)
    frozen_parts = freeze_lower_layers(model) if recipe.train_layers == "last-stage" else []
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.lr,
                            weight_decay=recipe.weight_decay)
    state = {"step": 0, "round": 0, "best_eer": None, "best_round": None, "history": [],
             "lr_schedule_steps": recipe.steps}
    if backbone_record is not None:
        state["backbone_init"] = backbone_record   # source and licence, for the manifest
    ckpt = resume_point(out_dir, resume, "model_config", accelerator, ("best", "history.json"))
    if ckpt is not None:
        _check_resume(ckpt, _saved_state(ckpt), recipe, contract, config)
        state = load_checkpoint(ckpt, model=model, ema=ema, optimizer=opt)
        restore_rng_state(ckpt)
        # runs saved before the schedule was recorded ran on their recipe's steps
        state.setdefault("lr_schedule_steps", state["recipe"]["steps"])
        accelerator.print(f"resuming from {ckpt} (step {state['step']})")
        if branch_from is not None and (state.get("branched_from") or {}).get("checkpoint") != str(
                Path(branch_from).resolve()):
            raise EdgefasError(f"{out_dir} holds a run that did not branch from {branch_from}: "
                               "use another --out or --no-resume")
    elif branch_from is not None:
        trunk = check_branch(branch_from, recipe, contract, config)
        state = load_checkpoint(Path(branch_from), model=model, ema=ema, optimizer=opt)
        state.setdefault("lr_schedule_steps", trunk["recipe"]["steps"])
        # the best checkpoint is chosen among this branch's own evaluations: the trunk's best
        # is not in this folder, and a soup takes the branches' final weights anyway
        state.update(best_eer=None, best_round=None, branched_from={
            "checkpoint": str(Path(branch_from).resolve()), "step": trunk["step"],
            "seed": trunk["recipe"].get("seed"),
            "ema_sha256": sha256_file(Path(branch_from) / "ema.safetensors")})
        accelerator.print(f"branching from {branch_from} (step {state['step']}, seed "
                          f"{trunk['recipe'].get('seed')} -> {recipe.seed})")
    model, opt = accelerator.prepare(model, opt)
    ema.to(accelerator.device)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    # BatchNorm layers whose running statistics stay the base's (put back in eval mode each
    # step): all of them, or those of the frozen lower layers, whose weights they belong to
    frozen_bn = [m for part in ([model] if recipe.freeze_bn else frozen_parts)
                 for m in part.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    # L2-SP anchor: the starting weights themselves (not a resumed checkpoint's), by name
    anchored = ([(p, init_weights[n].to(accelerator.device))
                 for n, p in accelerator.unwrap_model(model).named_parameters() if p.requires_grad]
                if recipe.anchor > 0 else [])
    # One generator per step, derived from (seed, step): a resumed run draws the same batches.
    bar = tqdm(total=recipe.steps, initial=state["step"], desc=f"train {recipe.name}",
               disable=not (progress and accelerator.is_local_main_process))
    t0 = time.time()
    while state["step"] < recipe.steps:
        step = state["step"]
        # each process its own batches; process 0 draws what a one-process run draws
        rng = step_rng(recipe.seed, step, accelerator.process_index)
        idx = _batch_indices(train, recipe, rng)
        crops = train.crops[idx]
        if recipe.synth_attacks > 0:
            crops = _with_synth_attacks(crops, idx, train, recipe.synth_attacks, rng)
        if recipe.synth_live_tone > 0:
            crops = _with_live_tone(crops, idx, train, recipe.synth_live_tone, rng,
                                    recipe.synth_live_tone_any)
        if recipe.light_ev or recipe.light_wb:
            # the light of the scene, before the camera records it
            crops = light_batch(crops, rng, recipe.light_ev, recipe.light_wb)
        if recipe.augment == "camera":
            crops = capture_batch(crops, rng)
        if recipe.jitter_scale or recipe.jitter_degrees:
            # after the camera effects, as the runtime aligns a frame the camera already made
            crops = jitter_batch(crops, rng, recipe.jitter_scale, recipe.jitter_degrees)
        x = torch.from_numpy(to_tensor(augment(crops, rng), contract)).to(accelerator.device)
        y = torch.from_numpy(train.is_live[idx].astype(np.float32)).to(accelerator.device)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, recipe, state["lr_schedule_steps"])
        model.train()
        for m in frozen_bn:   # the base's running statistics stay, and normalise as they did
            m.eval()
        loss = loss_fn(model(x), y)
        if anchored:
            loss = loss + recipe.anchor / 2 * sum(((p - p0) ** 2).sum() for p, p0 in anchored)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        opt.step()
        ema_update(ema, accelerator.unwrap_model(model), recipe.ema_decay)
        state["step"] = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if state["step"] % recipe.eval_every == 0 or state["step"] == recipe.steps:
            logits = predict_logits(ema, devel.crops, contract)
            d = devel.eer(logits)
            state["round"] += 1
            entry = {"round": state["round"], "step": state["step"], "devel_deer": d.value,
                     "loss": float(loss.item()), "seconds": round(time.time() - t0, 1)}
            state["history"].append(entry)
            best = state["best_eer"] is None or d.value <= state["best_eer"]
            if best:
                state["best_eer"], state["best_round"] = d.value, state["round"]
            if accelerator.is_local_main_process:   # above the progress bar, not inside it
                bar.write(f"step {state['step']}: devel D-EER {d.value:.4f}" + (" (best)" if best else ""))
            if accelerator.is_main_process:
                trainer_state = {**state, "recipe": recipe.to_dict(), "model_config": config.to_dict(),
                                 "contract": contract.to_dict()}
                folder = save_checkpoint(out_dir / f"epoch_{state['round']:03d}",
                                         model=accelerator.unwrap_model(model), ema=ema,
                                         optimizer=opt, trainer_state=trainer_state)
                if best:
                    save_checkpoint(out_dir / "best", model=ema, ema=None, optimizer=opt,
                                    trainer_state=trainer_state)
                (out_dir / "history.json").write_text(json.dumps(state["history"], indent=2))
                del folder
    bar.close()
    # the other processes return only once the main one has written its checkpoints and best
    accelerator.wait_for_everyone()
    return out_dir / "best"


def load_trained(best_dir: str | Path) -> tuple[torch.nn.Module, dict]:
    """The EMA classifier saved in ``best`` (baseline or fusion) and its trainer state."""
    from ..models.fusion import build_classifier

    state = json.loads((Path(best_dir) / "trainer_state.json").read_text())
    model = build_classifier(state["model_config"])
    load_checkpoint(best_dir, model=model, ema=None, optimizer=None)
    return model.eval(), state
