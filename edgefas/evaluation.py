"""``edgefas eval``: score a bundle on a protocol's test data and report ISO/IEC 30107-3 figures.

Faces are cropped once by the runtime's own face stage and cached (see
:mod:`edgefas.data.face_cache`); the bundle's classifier then scores the crops through the
same backend and calibration the :class:`~edgefas.Detector` uses. Images where no usable face
was found are counted as failures to acquire (``fta``) and reported beside the metrics,
not silently dropped.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .bundle import sha256_file
from .data.face_cache import CropSet
from .data.protocols import P4_DESCRIPTION, P5_DESCRIPTION, get_protocol
from .data.samples import video_key
from .data.sources import CropStore, DataRoots
from .detector import Detector
from .errors import DatasetError
from .metrics import evaluate
from .metrics.bootstrap import wilson_ci
from .metrics.iso30107 import bpcer_at_apcer


def crop_store_for(det: Detector, roots: DataRoots | None, progress: bool) -> CropStore:
    sha = sha256_file(det.bundle.model_file("face_detector", "onnx"))
    return CropStore(det.face_stage, sha, roots, progress=progress)


#: At most this many failed images are listed by name in a report.
FTA_FILES_LISTED = 1000


def _fta(cs: CropSet) -> dict[str, Any]:
    bad = Counter(str(s) for s in cs.status[~cs.ok])
    # which class lost the faces matters: an FTA bona fide is a rejected user, an FTA attack
    # one that did not get through either
    by_class = Counter("attack" if s.is_attack else "bona_fide"
                       for s, ok in zip(cs.samples, cs.ok) if not ok)
    # which images: a user with their own data needs to find them (capped for huge sets)
    files = [{"path": s.path, "reason": str(st)} for s, st, ok in zip(cs.samples, cs.status, cs.ok)
             if not ok][:FTA_FILES_LISTED]
    return {"images": len(cs), "failed": int((~cs.ok).sum()), "by_reason": dict(bad),
            "by_class": dict(by_class), "files": files}


def _share(errors: int, count: int) -> float | None:
    """errors / count, or None (no rate at all, not 0 %) when nothing was scored."""
    return errors / count if count else None


def score_crops(det: Detector, cs: CropSet) -> np.ndarray:
    """Calibrated live scores of the usable crops of ``cs`` (in order)."""
    ok = cs.crops[cs.ok]
    return np.concatenate([det.live_scores(ok[i:i + 256]) for i in range(0, len(ok), 256)]) \
        if len(ok) else np.zeros(0)


def evaluate_pad(det: Detector, cs: CropSet, *, split: str, bootstrap: int = 1000
                 ) -> dict[str, Any]:
    """Full ISO report of a labelled crop set at the bundle threshold."""
    scores = score_crops(det, cs)
    usable = cs.subset(cs.ok)
    is_attack = np.array([s.is_attack for s in usable.samples])
    species = np.array([s.species for s in usable.samples])
    groups = np.array([s.subject or s.key for s in usable.samples])
    # a folder of images names no subjects: every image is its own group, which is the plain
    # bootstrap, and is reported as that rather than as "resampling groups"
    report = evaluate(scores, is_attack, det.threshold, species=species, bootstrap=bootstrap,
                      groups=groups if len(np.unique(groups)) < len(groups) else None)
    return {"split": split, "fta": _fta(cs), "report": report.to_dict(),
            "markdown": report.to_markdown(), "_scores": scores, "_is_attack": is_attack,
            "_species": species}


def evaluate_bona_fide(det: Detector, cs: CropSet, *, split: str) -> dict[str, Any]:
    """BPCER at the bundle threshold on a bona-fide-only set, with a Wilson interval."""
    scores = score_crops(det, cs)
    errors = int((scores < det.threshold).sum())
    return {"split": split, "fta": _fta(cs), "bpcer": _share(errors, len(scores)),
            "errors": errors, "bona_fide": int(len(scores)),
            "ci95": list(wilson_ci(errors, len(scores))), "threshold": det.threshold,
            "_scores": scores}


#: Second P4 operating point: how many unseen live faces a model rejects when its threshold is
#: set for the same attack security on devel. The bundle's D-EER threshold falls anywhere in
#: the gap of a (nearly) separable devel set, so P4 BPCER at it mixes a model's generalisation
#: with where that threshold happened to land; at a fixed devel APCER_max, models compare.
P4_DEVEL_APCER = 0.01


def p4_at_devel_apcer(det: Detector, store: CropStore, bona_fide: dict[str, dict[str, Any]],
                      target: float = P4_DEVEL_APCER) -> dict[str, Any]:
    """P4 BPCER at the lowest threshold whose APCER_max on P1 devel (all 20 frames per video)
    is <= ``target``; chosen on devel only, like the bundle threshold."""
    replay = store.replay(frames="20")
    devel = replay.subset(get_protocol("P1").devel_mask(replay.samples) & replay.ok)
    scores = score_crops(det, devel)
    is_attack = np.array([s.is_attack for s in devel.samples])
    species = np.array([s.species for s in devel.samples])
    # one operating point gives the threshold and the devel rates it reaches
    op = bpcer_at_apcer(scores, is_attack, target, species)
    thr = op.threshold
    out: dict[str, Any] = {
        "criterion": f"lowest threshold with APCER_max <= {100 * target:g}% on replay-attack "
                     "devel (P1), all 20 frames per video",
        "threshold": thr, "devel_apcer_max": {"errors": op.achieved.errors, "count": op.achieved.count},
        "devel_bpcer": {"errors": op.value.errors, "count": op.value.count}}
    for key, res in bona_fide.items():
        s = res["_scores"]
        errors = int((s < thr).sum())
        out[key] = {"errors": errors, "bona_fide": int(len(s)), "bpcer": _share(errors, len(s)),
                    "ci95": list(wilson_ci(errors, len(s)))}
    return out


def run_protocol(bundle: str | Path, protocol: str, *, roots: DataRoots | None = None,
                 bootstrap: int = 1000, progress: bool = True) -> dict[str, Any]:
    """Evaluate a bundle trained for ``protocol`` on that protocol's test data.

    ``P4`` evaluates a P1 bundle on unseen bona fide faces (LFW held-out identities, london);
    ``P5`` on other labs' data sets (NUAA's test part, bona fide and print attacks; Essex faces94).
    """
    det = Detector(bundle)
    store = crop_store_for(det, roots, progress)
    out: dict[str, Any] = {"protocol": protocol, "bundle": det.bundle.name,
                           "threshold": det.threshold,
                           "threshold_source": det.bundle.manifest["threshold"]}
    if protocol == "P4":
        out["description"] = P4_DESCRIPTION
        lfw = store.lfw()
        out["lfw_heldout"] = evaluate_bona_fide(
            det, lfw.subset(np.array([s.split == "heldout" for s in lfw.samples])),
            split="LFW identities held out of training (edgefas.data.lfw hash split)")
        out["london"] = evaluate_bona_fide(det, store.london(), split="london fixtures (244)")
        try:
            out["at_devel_apcer"] = p4_at_devel_apcer(
                det, store, {k: out[k] for k in ("lfw_heldout", "london")})
        except DatasetError as exc:  # the Replay-Attack devel tree is not here: report why
            out["at_devel_apcer"] = {"skipped": str(exc)}
        return out
    if protocol == "P5":
        out["description"] = P5_DESCRIPTION
        out["nuaa"] = evaluate_pad(det, store.nuaa(), split="NUAA test part (session 03)",
                                   bootstrap=bootstrap)
        try:
            out["essex"] = evaluate_bona_fide(det, store.essex(), split="Essex faces94 subset")
        except DatasetError as exc:   # NUAA alone is still a cross-data-set test
            out["essex"] = {"skipped": str(exc)}
        return out
    proto = get_protocol(protocol)
    out["description"] = proto.description
    replay = store.replay(frames="1")
    per_video = Counter(video_key(s) for s in replay.samples)
    if max(per_video.values()) > 1:
        # the report is labelled (and its counts read) as one frame per video
        raise DatasetError(f"the test tree {store.roots.replay_1frame} holds up to "
                           f"{max(per_video.values())} frames per video; eval's protocols test "
                           "on the one-frame-per-video tree (frames_1frame, shared/DATA.md)")
    test = replay.subset(proto.test_mask(replay.samples))
    out["test"] = evaluate_pad(det, test, split=f"replay-attack test, 1 frame per video "
                                                f"({protocol})", bootstrap=bootstrap)
    return out
