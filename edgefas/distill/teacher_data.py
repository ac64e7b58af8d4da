"""Which aligned crops each teacher learns from, for a protocol.

A teacher must not see what the protocol holds out: for P2 (leave one species out) the
all-faces model and the DS Net are trained without that species, and every teacher only ever
sees the protocol's train split. Live-only teachers may add LFW's train identities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.protocols import get_protocol
from ..data.sources import CropStore, DataRoots
from ..errors import unknown_name
from .errors import TeacherConfigError

#: teacher model -> (recipe kind, which faces): "live", "all" or "labelled"
TEACHER_MODELS = {
    "ddm-live": ("ddm", "live"),      # DDM eps_g: live faces only
    "ddm-all": ("ddm", "all"),        # DDM eps_s: live and attack faces
    "agfas": ("agfas", "live"),       # AG-FAS de-fake generator: live faces only
    "despoof": ("despoof_net", "labelled"),  # Face De-Spoofing DS Net: both, with labels
}


def teacher_training_set(model: str, protocol: str, store: CropStore, *, with_lfw: bool = False,
                         max_lfw: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(crops, is_live) for teacher ``model`` under ``protocol`` (usable crops only); ``max_lfw``
    caps the LFW faces added with ``with_lfw`` (a random subset, seed 0, in their original order)."""
    if model not in TEACHER_MODELS:
        raise TeacherConfigError(unknown_name("teacher model", model, list(TEACHER_MODELS)))
    _, faces = TEACHER_MODELS[model]
    proto = get_protocol(protocol)
    replay = store.replay(frames="20")
    train = replay.subset(proto.train_mask(replay.samples) & replay.ok)
    is_live = np.array([not s.is_attack for s in train.samples])
    crops = train.crops if faces != "live" else train.crops[is_live]
    is_live = is_live if faces != "live" else is_live[is_live]
    if with_lfw:
        if faces != "live":
            raise TeacherConfigError("LFW holds live faces only; add it to live-only teachers "
                                     "(ddm-live, agfas), not to the all-faces or labelled ones")
        lfw = store.lfw()
        keep = lfw.ok & np.array([s.split == "train" for s in lfw.samples])
        if max_lfw is not None and keep.sum() > max_lfw:
            chosen = np.random.default_rng(0).choice(np.flatnonzero(keep), max_lfw, replace=False)
            keep = np.isin(np.arange(len(keep)), chosen)
        lfw = lfw.subset(keep)
        crops = np.concatenate([crops, lfw.crops])
        is_live = np.concatenate([is_live, np.ones(len(lfw), bool)])
    return crops, is_live


#: where teacher training faces come from, and on what terms (written into teacher.json)
DATA_SOURCES = {
    "replay_attack": "Idiap Replay-Attack (EULA: research use only, no redistribution of its images)",
    "lfw": "Labeled Faces in the Wild, train identities only (research use; the authors grant no licence)",
}


def teacher_data_record(model: str, protocol: str, crops: np.ndarray, is_live: np.ndarray, *,
                        with_lfw: bool = False, max_lfw: int | None = None) -> dict:
    """What a teacher learnt from, for its ``teacher.json`` and for :func:`check_teacher_fits`."""
    sources = ["replay_attack", *(["lfw"] if with_lfw else [])]
    return {"model": model, "protocol": protocol, "faces": TEACHER_MODELS[model][1], "with_lfw": with_lfw,
            "max_lfw": max_lfw if with_lfw else None,
            "live": int(is_live.sum()), "attack": int((~is_live).sum()), "split": "train",
            "sources": {s: DATA_SOURCES[s] for s in sources},
            "weights_licence": "derived from research-only data: research use only"}


def check_teacher_fits(data: dict, protocol: str, samples, advice: str | None = None) -> None:
    """Raise unless every face the teacher was trained on is in ``protocol``'s train split.
    ``advice`` ends the message (default: train a teacher for ``protocol``).

    A live-only teacher trained on P1 saw P1's train bona fide faces, which are also in every
    P2 train split: it may be evaluated on P2 without seeing the held-out species. An all-faces
    or labelled teacher trained on P1 saw every species, so it may not. ``samples``: the
    Replay-Attack samples (any tree) the two protocols' masks are compared on.
    """
    if not data or "protocol" not in data or "model" not in data:
        raise TeacherConfigError("teacher.json has no data record (trained by an older edgefas): "
                                 "evaluate it only on the one protocol it was trained for")
    faces = data.get("faces") or TEACHER_MODELS[data["model"]][1]
    seen = get_protocol(data["protocol"]).train_mask(samples)
    if faces == "live":
        seen &= np.array([not s.is_attack for s in samples])
    outside = seen & ~get_protocol(protocol).train_mask(samples)
    advice = advice or f"train a teacher for {protocol}"
    if outside.any():
        raise TeacherConfigError(f"the {data['model']} teacher was trained on {data['protocol']} train "
                                 f"{faces} faces, {int(outside.sum())} of which {protocol} does not train "
                                 f"on (held out or devel/test): {advice}")


def check_init_fits(init_dir: str | Path, protocol: str, replay_root: str | Path | None,
                    purpose: str | None = None) -> None:
    """Refuse an ``--init-from`` teacher that saw what ``protocol`` holds out: the weights it
    hands on carry what it learnt (a P1 all-faces teacher has seen print attacks, so a P2-print
    teacher fine-tuned from it is no P2-print teacher). Compared as :func:`check_teacher_fits`
    does on the Replay-Attack samples under ``replay_root``; where that tree is not here (training
    from a crop pack), only a teacher of the same protocol is accepted. ``purpose`` starts the
    message (``edgefas distill`` checks its teacher the same way)."""
    import json

    from ..data.replay_attack import load_replay_attack

    data = json.loads((Path(init_dir) / "teacher.json").read_text()).get("data")
    try:
        if replay_root is not None and Path(replay_root).is_dir():
            check_teacher_fits(data, protocol, load_replay_attack(replay_root))
        elif (data or {}).get("protocol") != protocol:
            raise TeacherConfigError(f"it was trained on {(data or {}).get('protocol')}, and without the "
                                     "Replay-Attack tree only a teacher of the same protocol can be checked")
    except TeacherConfigError as exc:
        purpose = purpose or f"--init-from {init_dir} cannot start a {protocol} teacher"
        raise TeacherConfigError(f"{purpose}: {exc}") from None


def training_faces(model: str, protocol: str, roots: DataRoots, contract, *, with_lfw: bool = False,
                   max_lfw: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(crops, is_live, data record) of ``protocol``'s train split for ``model``, cut by the
    runtime face stage of ``contract`` and read through the crop cache."""
    from ..train.run import face_stage_for

    stage, sha = face_stage_for(contract)
    store = CropStore(stage, sha, roots)
    crops, is_live = teacher_training_set(model, protocol, store, with_lfw=with_lfw, max_lfw=max_lfw)
    data = teacher_data_record(model, protocol, crops, is_live, with_lfw=with_lfw, max_lfw=max_lfw)
    return crops, is_live, data
