"""Weight averaging of branches of one training run (a "model soup").

Networks that share the first part of their training and then go on from one checkpoint on
different batches (``edgefas train --branch-from``) usually stay in one loss basin, where the
average of their weights is itself a good network (Frankle et al., ICML 2020; Wortsman et al.,
"Model soups", ICML 2022). The average tends to vary less across cameras it never saw than any
one member does (Rame et al., "Diverse Weight Averaging", NeurIPS 2022), at the cost of one
network at inference. Networks trained apart from random starts do not average: the members
must therefore share a trunk, which :func:`check_members` checks before anything is written.

:func:`make_soup` averages the members' final EMA weights uniformly and writes a run folder
whose ``best`` checkpoint ``edgefas export`` / ``edgefas soup --package`` turn into a bundle
(threshold and calibration on devel, as for any run).
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..bundle import sha256_file
from ..errors import EdgefasError
from .baseline import PREDATED_FIELDS
from .checkpoint import PROTOCOL_FILE, changed_settings, latest_checkpoint, run_protocol

#: recipe fields members may differ in: the seed is what makes a branch; threads and the
#: recipe's name change nothing the weights learn
MEMBER_DIFFERENCES = ("seed", "threads", "name")


@dataclass(frozen=True)
class Member:
    run: Path          # the member's run folder
    checkpoint: Path   # its final checkpoint (epoch_NNN)
    state: dict        # that checkpoint's trainer state

    @property
    def trunk(self) -> Path:
        """The run the member branched from, or its own folder for the trunk run itself."""
        branched = self.state.get("branched_from")
        return Path(branched["checkpoint"]).parent.resolve() if branched else self.run.resolve()

    @property
    def branch_step(self) -> int | None:
        branched = self.state.get("branched_from")
        return branched["step"] if branched else None


def _member(run: Path) -> Member:
    run = Path(run)
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise EdgefasError(f"{run}: no checkpoint (epoch_NNN) of edgefas train in it")
    state = json.loads((ckpt / "trainer_state.json").read_text())
    if "recipe" not in state or "model_config" not in state:
        raise EdgefasError(f"{run}: not a run of edgefas train (a teacher or distill run?)")
    if state["step"] < state["recipe"]["steps"]:
        raise EdgefasError(f"{run} has not finished (step {state['step']} of "
                           f"{state['recipe']['steps']}): resume it first")
    if not (ckpt / "ema.safetensors").is_file():
        raise EdgefasError(f"{ckpt}: no ema.safetensors")
    return Member(run, ckpt, state)


def check_members(runs: list[Path]) -> list[Member]:
    """The members' final checkpoints, refused unless they can be averaged: at least two,
    each finished, one architecture, contract and recipe (but the seed), one trunk, no run
    twice and no two members that drew the same batches."""
    if len(runs) < 2:
        raise EdgefasError("a soup needs at least two runs")
    members = [_member(r) for r in runs]
    if len({m.run.resolve() for m in members}) < len(members):
        raise EdgefasError("a run is given twice")
    first = members[0]
    for m in members[1:]:
        if m.state["model_config"] != first.state["model_config"]:
            raise EdgefasError(f"{m.run} holds another model than {first.run}")
        if m.state.get("contract") != first.state.get("contract"):
            raise EdgefasError(f"{m.run} was trained on another crop contract than {first.run}")
        # the comparison resuming makes, fields added since a run was saved filled in
        diff = changed_settings({**PREDATED_FIELDS, **first.state["recipe"]},
                                {**PREDATED_FIELDS, **m.state["recipe"]}, MEMBER_DIFFERENCES)
        if diff:
            raise EdgefasError(f"{m.run} was trained with another recipe than {first.run} "
                               f"({', '.join(diff)}): only the seed may differ")
    trunks = {m.trunk for m in members}
    if len(trunks) > 1:
        raise EdgefasError(
            "the runs do not share a trunk (" + ", ".join(sorted(str(t) for t in trunks)) + "): "
            "networks trained apart from random starts do not average into a working one. "
            "Branch them from one run with 'edgefas train --branch-from RUN/epoch_NNN --seed S'")
    draws = [(m.branch_step, m.state["recipe"]["seed"]) for m in members]
    if len(set(draws)) < len(draws):
        raise EdgefasError("two members branched at the same step with the same seed: the same "
                           "network twice")
    member_protocol(members)
    return members


def average_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The uniform average of safetensors state dicts (floating tensors, in float64 and cast
    back; integer buffers such as BatchNorm's batch counter are taken from the first)."""
    dicts = [load_file(p) for p in paths]
    keys = list(dicts[0])
    for p, d in zip(paths[1:], dicts[1:]):
        if list(d) != keys or any(d[k].shape != dicts[0][k].shape for k in keys):
            raise EdgefasError(f"{p} holds other tensors than {paths[0]}")
    out = {}
    for k in keys:
        t = dicts[0][k]
        if t.is_floating_point():
            out[k] = (sum(d[k].double() for d in dicts) / len(dicts)).to(t.dtype).contiguous()
        else:
            out[k] = t.clone()
    return out


def make_soup(runs: list[Path], out_dir: Path) -> Path:
    """Average the members' final EMA weights into ``out_dir/best`` (a checkpoint that
    :func:`edgefas.train.baseline.load_trained` reads); returns that folder. The trainer state
    keeps the first member's recipe and names every member, its step, seed and sha256."""
    members = check_members([Path(r) for r in runs])
    out_dir = Path(out_dir)
    if out_dir.resolve() in {m.run.resolve() for m in members}:
        raise EdgefasError(f"--out {out_dir} is one of the members")
    weights = average_weights([m.checkpoint / "ema.safetensors" for m in members])
    best = out_dir / "best"
    tmp = best.with_name("best.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, tmp / "model.safetensors")
    first = members[0].state
    state = {
        "step": first["step"], "round": None, "best_eer": None, "best_round": None, "history": [],
        "recipe": first["recipe"], "model_config": first["model_config"],
        "contract": first.get("contract"),
        "soup": {
            "average": "uniform, of each member's final EMA weights",
            "trunk": str(members[0].trunk),
            "members": [{"run": str(m.run.resolve()), "checkpoint": m.checkpoint.name,
                         "step": m.state["step"], "seed": m.state["recipe"]["seed"],
                         "branched_at_step": m.branch_step,
                         "ema_sha256": sha256_file(m.checkpoint / "ema.safetensors")}
                        for m in members],
        },
    }
    (tmp / "trainer_state.json").write_text(json.dumps(state, indent=2, default=str))
    shutil.rmtree(best, ignore_errors=True)
    tmp.replace(best)
    protocol = member_protocol(members)
    if protocol:
        (out_dir / PROTOCOL_FILE).write_text(protocol + "\n")
    return best


def member_protocol(members: list[Member]) -> str | None:
    """The protocol the members were trained for (``protocol.txt``), or None if unrecorded."""
    protocols = {run_protocol(m.run) for m in members} - {None}
    if len(protocols) > 1:
        raise EdgefasError(f"the runs were trained for different protocols: {sorted(protocols)}")
    return protocols.pop() if protocols else None
