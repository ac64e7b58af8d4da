"""Training checkpoints as safetensors + JSON (no pickles, even for optimizer state).

A checkpoint folder holds ``model.safetensors``, ``ema.safetensors``, ``optimizer.safetensors``
(every tensor of the optimizer state, flattened to ``state.<param>.<name>``), and
``trainer_state.json`` (epoch, step, best score, RNG seed, config, optimizer hyper-parameters).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


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


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest ``epoch_NNN`` checkpoint in a run folder, or None."""
    cands = sorted(p for p in Path(run_dir).glob("epoch_*") if p.is_dir()
                   and not p.name.endswith(".tmp") and (p / "trainer_state.json").is_file())
    return cands[-1] if cands else None


def changed_settings(saved: dict[str, Any] | None, now: dict[str, Any],
                     may_change: tuple[str, ...] = ()) -> list[str]:
    """``"key old -> new"`` for each setting both record that differs now (outside
    ``may_change``): what resuming that run under ``now`` would silently mix in. Settings only
    one side knows (added or retired since the checkpoint) are not compared."""
    if not saved:
        return []
    return [f"{k} {saved[k]!r} -> {now[k]!r}" for k in sorted(saved)
            if k in now and k not in may_change and saved[k] != now[k]]
