"""Which aligned crops each teacher learns from, for a protocol.

A teacher must not see what the protocol holds out: for P2 (leave one species out) the
all-faces model and the DS Net are trained without that species, and every teacher only ever
sees the protocol's train split. Live-only teachers may add LFW's train identities.
"""
from __future__ import annotations

import numpy as np

from ..data.protocols import get_protocol
from ..data.sources import CropStore
from ..errors import unknown_name
from .errors import TeacherConfigError

#: teacher model -> (recipe kind, which faces): "live", "all" or "labelled"
TEACHER_MODELS = {
    "ddm-live": ("ddm", "live"),      # DDM eps_g: live faces only
    "ddm-all": ("ddm", "all"),        # DDM eps_s: live and attack faces
    "agfas": ("agfas", "live"),       # AG-FAS de-fake generator: live faces only
    "despoof": ("despoof_net", "labelled"),  # Face De-Spoofing DS Net: both, with labels
}


def teacher_training_set(model: str, protocol: str, store: CropStore, *, with_lfw: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(crops, is_live) for teacher ``model`` under ``protocol`` (usable crops only)."""
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
        lfw = lfw.subset(lfw.ok & np.array([s.split == "train" for s in lfw.samples]))
        crops = np.concatenate([crops, lfw.crops])
        is_live = np.concatenate([is_live, np.ones(len(lfw), bool)])
    return crops, is_live
