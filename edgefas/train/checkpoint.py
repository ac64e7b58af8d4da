"""Training checkpoints as safetensors + JSON (no pickles, even for optimizer state).

A checkpoint folder holds ``model.safetensors``, ``ema.safetensors``, ``optimizer.safetensors``
(every tensor of the optimizer state, flattened to ``state.<param>.<name>``), and
``trainer_state.json`` (epoch, step, best score, RNG seed, config, optimizer hyper-parameters)
and ``rng.safetensors`` (torch's generator states: dropout and other draws of the global RNG).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..errors import EdgefasError


class CheckpointError(EdgefasError):
    """A run folder that cannot be resumed or started over as asked."""


def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for name, val in state.items():
            key = f"state.{pid}.{name}"
            if torch.is_tensor(val):
                tensors[key] = val.detach().cpu().contiguous()
            else:
                scalars[key] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, val in list(tensors.items()) + list(meta["scalars"].items()):
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = val
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(folder: Path, *, model: torch.nn.Module, ema: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer, trainer_state: dict) -> Path:
    """Write a checkpoint atomically (to ``folder.tmp``, then renamed)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              tmp / "model.safetensors")
    if ema is not None:
        save_file({k: v.detach().cpu().contiguous() for k, v in ema.state_dict().items()},
                  tmp / "ema.safetensors")
    tensors, meta = _flatten_optimizer(optimizer)
    save_file(tensors, tmp / "optimizer.safetensors")
    save_file(_rng_state(), tmp / RNG_FILE)
    (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "optimizer": meta},
                                                       indent=2, default=str))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def load_checkpoint(folder: Path, *, model: torch.nn.Module, ema: torch.nn.Module | None,
                    optimizer: torch.optim.Optimizer | None) -> dict:
    """Restore weights (and optimizer) from ``folder``; return the trainer state."""
    folder = Path(folder)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    if ema is not None and (folder / "ema.safetensors").is_file():
        ema.load_state_dict(load_file(folder / "ema.safetensors"))
    state = json.loads((folder / "trainer_state.json").read_text())
    if optimizer is not None:
        optimizer.load_state_dict(_unflatten_optimizer(
            load_file(folder / "optimizer.safetensors"), state["optimizer"]))
    return state


RNG_FILE = "rng.safetensors"


def _rng_state() -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(folder: Path) -> None:
    """Put torch's generators back where they were when ``folder`` was saved, so that a resumed
    run draws the dropout masks an uninterrupted one would (``set_seed`` at the start of a run
    restarts them from the seed). Checkpoints written before the state was saved leave them be."""
    path = Path(folder) / RNG_FILE
    if not path.is_file():
        return
    state = load_file(path)
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _round(folder: Path) -> int:
    try:
        return int(folder.name.removeprefix("epoch_"))
    except ValueError:
        return -1


def checkpoint_folders(run_dir: Path) -> list[Path]:
    """The ``epoch_NNN`` folders of a run (finished writes only), oldest round first: by the
    round number, as names sort ``epoch_1000`` before ``epoch_999``."""
    return sorted((p for p in Path(run_dir).glob("epoch_*") if p.is_dir() and not p.name.endswith(".tmp")
                   and _round(p) >= 0), key=_round)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``epoch_NNN`` checkpoint in a run folder, or None."""
    cands = [p for p in checkpoint_folders(run_dir) if (p / "trainer_state.json").is_file()]
    return cands[-1] if cands else None


def check_run_kind(run_dir: Path, key: str) -> None:
    """Refuse ``run_dir`` when a checkpoint in it lacks ``key`` (another kind of run's folder)."""
    for folder in sorted(Path(run_dir).glob("epoch_*")):
        path = folder / "trainer_state.json"
        if path.is_file() and key not in json.loads(path.read_text()):
            raise CheckpointError(f"{run_dir} holds checkpoints of another kind of run ({folder.name} "
                                  f"has no {key}): use another output folder")


def clear_checkpoints(run_dir: Path, key: str, outputs: tuple[str, ...] = ()) -> None:
    """Delete the ``epoch_NNN`` checkpoints of an earlier run in ``run_dir`` (a run started
    over), and that run's ``outputs`` (``best/`` and ``history.json`` of a baseline run, the
    finished ``teacher/`` or ``student/``): left there, a later resuming call would continue the
    old run, and until the new run replaced them, export or distillation would use the old
    model. ``key`` is the trainer-state entry every checkpoint of this kind of run has
    (``model_config`` for the baseline...): a folder holding another kind of run is refused,
    not emptied."""
    run_dir = Path(run_dir)
    check_run_kind(run_dir, key)
    old = sorted(run_dir.glob("epoch_*"))
    for folder in old:
        if folder.is_dir():
            shutil.rmtree(folder)
    for name in outputs:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


PROTOCOL_FILE = "protocol.txt"


def run_protocol(run_dir: str | Path) -> str | None:
    """The protocol ``edgefas train`` recorded in a run folder (``protocol.txt``), or None."""
    path = Path(run_dir) / PROTOCOL_FILE
    return path.read_text().strip() if path.is_file() else None


def changed_settings(saved: dict[str, Any] | None, now: dict[str, Any],
                     may_change: tuple[str, ...] = ()) -> list[str]:
    """``"key old -> new"`` for each setting both record that differs now (outside
    ``may_change``): what resuming that run under ``now`` would silently mix in. Settings only
    one side knows (added or retired since the checkpoint) are not compared."""
    if not saved:
        return []
    return [f"{k} {saved[k]!r} -> {now[k]!r}" for k in sorted(saved)
            if k in now and k not in may_change and saved[k] != now[k]]


def resume_point(run_dir: Path, resume: bool, key: str, accelerator,
                 outputs: tuple[str, ...] = ()) -> Path | None:
    """The checkpoint a training call continues from: the newest in ``run_dir`` with ``resume``;
    without it none, and the earlier run's checkpoints and ``outputs`` are cleared
    (:func:`clear_checkpoints`, by the main process, the others waiting for it)."""
    if resume:
        return latest_checkpoint(run_dir)
    if accelerator.is_main_process:
        clear_checkpoints(run_dir, key, outputs)
    accelerator.wait_for_everyone()
    return None
