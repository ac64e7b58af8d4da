"""``edgefas train``: from data-set folders to a trained run folder for one protocol."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import default_bundle_path, sha256_file
from ..data.face_cache import CropSet, concat_crops
from ..data.lfw import is_devel_identity
from ..data.protocols import frames_per_video, get_protocol
from ..data.replay_attack import load_replay_attack
from ..data.sources import CropStore, DataRoots
from ..errors import EdgefasError
from ..runtime.face_detect import FaceDetector
from ..runtime.face_stage import FacePolicy, FaceStage
from ..runtime.preprocess import Contract
from .baseline import DevelSet, TrainSet, check_branch, check_resume, train_baseline
from .checkpoint import PROTOCOL_FILE, run_protocol
from .recipes import BaselineRecipe

FACE_DETECTOR = "face_detector.onnx"


def face_stage_for(contract: Contract, policy: FacePolicy | None = None,
                   detector_dir: Path | None = None) -> tuple[FaceStage, str]:
    """The runtime face stage a training run crops with, and the detector's sha256."""
    path = (detector_dir or default_bundle_path()) / FACE_DETECTOR
    stage = FaceStage(FaceDetector.from_file(path), policy or FacePolicy(), size=contract.size,
                      crop_scale=contract.crop_scale)
    return stage, sha256_file(path)


def check_cue_data(cue_dir: Path, protocol: str, samples, *, lfw_devel: bool = False) -> None:
    """Refuse a fusion cue module (and the teacher it was distilled from) trained on faces that
    ``protocol`` holds out: a P1 student inside a P2 model has seen the held-out species. Reads
    the data records written beside the module and compares train masks on ``samples`` (the
    Replay-Attack samples) with :func:`~edgefas.distill.teacher_data.check_teacher_fits`, as
    ``eval-cue`` does for teachers; a folder without a JSON is left to the loader's own error.
    With ``lfw_devel`` (the recipe's), a module or teacher trained on LFW's train identities
    (``with_lfw``) is refused too: those include the devel bucket the run selects on."""
    import json

    from ..distill.errors import TeacherConfigError
    from ..distill.teacher_data import check_teacher_fits
    from ..errors import EdgefasError

    for name in ("student.json", "teacher.json"):
        path = cue_dir / name
        if not path.is_file():
            continue
        info = json.loads(path.read_text())
        teacher = (info.get("teacher") or {}).get("info") or {}
        for what, data in ((f"the cue module in {cue_dir}", info.get("data")),
                           (f"the teacher of the cue module in {cue_dir}", teacher.get("data"))):
            if not data or "protocol" not in data:   # written before data records: nothing to compare
                continue
            try:
                # one piece of advice, this command's, not also the teachers' own
                check_teacher_fits(data, protocol, samples, advice=f"train it on {protocol} (e.g. edgefas "
                                   f"distill --protocol {protocol}) before using it here")
            except TeacherConfigError as exc:
                faces = "bona fide faces only" if data.get("faces") == "live" else "live and attack faces"
                raise EdgefasError(f"{what} ({faces}) saw what {protocol} holds out: {exc}") from None
            if lfw_devel and data.get("with_lfw"):
                raise EdgefasError(f"{what} was trained on LFW's train identities, the devel bucket "
                                   "among them: --lfw-devel would select on faces it has seen")
        return


def build_sets(protocol: str, recipe: BaselineRecipe, store: CropStore
               ) -> tuple[TrainSet, DevelSet, CropSet]:
    """Train and devel crops of a protocol (20-frame tree), and the full devel CropSet (with
    the LFW devel bucket's faces when the recipe has ``lfw_devel``)."""
    proto = get_protocol(protocol)
    replay = store.replay(frames="20")
    ok = replay.ok
    tr = replay.subset(proto.train_mask(replay.samples) & ok)
    dv_all = replay.subset(proto.devel_mask(replay.samples) & ok)
    crops = [tr.crops]
    is_live = [np.array([not s.is_attack for s in tr.samples])]
    is_extra = [np.zeros(len(tr), bool)]
    lfw_dv = None
    if recipe.use_lfw or recipe.lfw_devel:
        lfw = store.lfw()
        in_devel = np.array([recipe.lfw_devel and is_devel_identity(s.subject) for s in lfw.samples])
        is_train = np.array([s.split == "train" for s in lfw.samples])
        if recipe.lfw_devel:
            lfw_dv = lfw.subset(lfw.ok & in_devel)
        if recipe.use_lfw:
            lfw = lfw.subset(lfw.ok & is_train & ~in_devel)
            crops.append(lfw.crops)
            is_live.append(np.ones(len(lfw), bool))
            is_extra.append(np.ones(len(lfw), bool))
    is_extra_live = None
    if recipe.extra_live:
        xl = store.extra_live(recipe.extra_live)
        # its people in LFW's devel hash bucket stay out, as LFW's do: faces to check it on
        xl = xl.subset(xl.ok & ~np.array([is_devel_identity(s.subject) for s in xl.samples], bool))
        if not len(xl):
            raise EdgefasError(f"--extra-live {recipe.extra_live}: no face found in its images")
        crops.append(xl.crops)
        is_live.append(np.ones(len(xl), bool))
        is_extra.append(np.zeros(len(xl), bool))
        is_extra_live = np.concatenate([np.zeros(sum(len(c) for c in crops[:-1]), bool),
                                        np.ones(len(xl), bool)])
    train = TrainSet(np.concatenate(crops), np.concatenate(is_live), np.concatenate(is_extra),
                     is_extra_live)
    dv = dv_all.subset(frames_per_video(dv_all.samples, recipe.devel_frames_per_video))
    if lfw_dv is not None:
        dv, dv_all = concat_crops(dv, lfw_dv), concat_crops(dv_all, lfw_dv)
    devel = DevelSet(dv.crops, np.array([s.is_attack for s in dv.samples]),
                     np.array([s.species for s in dv.samples]),
                     devel_sources(dv.samples) if lfw_dv is not None else None)
    return train, devel, dv_all


def devel_sources(samples) -> np.ndarray:
    """The bona fide source of each devel sample: its data set (Replay-Attack's webcam, LFW)."""
    return np.array([s.dataset for s in samples])


def run_training(protocol: str, recipe: BaselineRecipe, out_dir: Path, *,
                 roots: DataRoots | None = None, contract: Contract | None = None,
                 resume: bool = True, progress: bool = True, backbone=None,
                 branch_from: Path | None = None) -> Path:
    """Train the baseline for ``protocol``; returns the best checkpoint folder.

    ``backbone``: pretrained backbone weights (edgefas.train.backbone_init) for the recipe's
    ``backbone_init``. ``branch_from``: a checkpoint of another run of this recipe (but the
    seed) to continue from, on this run's own batches (:func:`train_baseline`)."""
    marker = Path(out_dir) / PROTOCOL_FILE
    recorded = run_protocol(out_dir)
    if resume and recorded is not None and recorded != protocol:
        # a resumed P1 run relabelled P2-print would have seen the "held-out" species
        raise EdgefasError(f"{out_dir} holds a {recorded} run, not {protocol}: "
                           "use another --out or --no-resume")
    contract = contract or Contract()
    # before minutes of cropping, and before protocol.txt marks the folder as this run's
    check_resume(out_dir, recipe, contract, resume=resume)
    if branch_from is not None:
        check_branch(branch_from, recipe, contract)
        trunk_protocol = run_protocol(Path(branch_from).parent)
        if trunk_protocol is not None and trunk_protocol != protocol:
            raise EdgefasError(f"--branch-from {branch_from}: a {trunk_protocol} run, not {protocol}")
    stage, det_sha = face_stage_for(contract)
    store = CropStore(stage, det_sha, roots, progress=progress)
    replay_root = store.roots.replay_frames
    if recipe.fusion and recipe.cue_dir and replay_root is not None and Path(replay_root).is_dir():
        # before any crops are built; a missing tree is reported by build_sets
        check_cue_data(Path(recipe.cue_dir), protocol, load_replay_attack(replay_root),
                       lfw_devel=recipe.lfw_devel)
    train, devel, _ = build_sets(protocol, recipe, store)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    marker.write_text(protocol + "\n")
    lfw_devel = ("" if devel.source is None
                 else f", {int((devel.source == 'lfw').sum())} of them LFW devel identities")
    xl = "" if train.is_extra_live is None else f", {int(train.is_extra_live.sum())} {recipe.extra_live}"
    print(f"{protocol}: train {int(train.is_live.sum())} bona fide "
          f"({int(train.is_extra.sum())} LFW{xl}) / {int((~train.is_live).sum())} attack crops; "
          f"devel {int((~devel.is_attack).sum())} / {int(devel.is_attack.sum())}{lfw_devel}")
    return train_baseline(recipe, train, devel, contract, out_dir, resume=resume,
                          progress=progress, backbone=backbone, branch_from=branch_from)
