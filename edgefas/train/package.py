"""Turn a trained run into a bundle: calibrate and pick the threshold on devel, export to ONNX
through the parity gate, copy the face detector, and write the manifest with every hash."""
from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..bundle import default_bundle_path, write_manifest
from ..data.face_cache import CropSet
from ..data.protocols import get_protocol
from ..data.sources import EXTRA_LIVE_CFD, CropStore, DataRoots
from ..errors import EdgefasError
from ..export.onnx_export import FP32_ATOL, export_onnx
from ..export.source import save_torch_weights
from ..metrics import bpcer_by_source, evaluate, threshold_at_eer
from ..runtime.calibration import apply_platt, fit_platt, platt_logit
from ..runtime.face_stage import FacePolicy
from ..runtime.preprocess import Contract, to_tensor
from .baseline import load_trained, predict_logits
from .recipes import BaselineRecipe
from .run import FACE_DETECTOR, build_sets, devel_sources, face_stage_for

#: MediaPipe's face_detection_short_range.tflite, byte-identical (sha256 bbff11ce...).
FACE_DETECTOR_TFLITE = "face_detector.tflite"

REPLAY_LICENCE = ("Idiap Replay-Attack EULA: research use only. The weights are derived from it; "
                  "check the EULA before any commercial use.")
LFW_LICENCE = "Labeled Faces in the Wild: no stated licence, research use."
CFD_LICENCE = ("Chicago Face Database (Ma, Correll & Wittenbrink 2015): non-commercial research "
               "use, no redistribution of the images. The weights are derived from it.")


def training_data(recipe: BaselineRecipe, backbone: dict | None = None
                  ) -> tuple[list[str], list[str]]:
    """What a run trained on, in words, and the licences that come with it (for the manifest).
    ``backbone``: the run's record of its pretrained starting weights (trainer state
    ``backbone_init``)."""
    data = ["Idiap Replay-Attack train, 20 frames per video"]
    licence = [REPLAY_LICENCE]
    if recipe.backbone_init:
        if not backbone:
            raise EdgefasError(f"the run started from {recipe.backbone_init} but its checkpoint "
                               "does not record their source and licence")
        data.insert(0, f"starting weights: {backbone['arch']} pretrained weights {backbone['file']} "
                       f"(sha256 {backbone['sha256']}, {backbone['input_color_order'].upper()} "
                       f"input folded into RGB): {backbone['source']}")
        licence.insert(0, f"pretrained backbone weights: {backbone['licence']}")
    if recipe.use_lfw:
        data.append("LFW, identities of the 'train' hash split (edgefas.data.lfw)"
                    f"{' less the devel bucket' if recipe.lfw_devel else ''}")
    if recipe.use_lfw or recipe.lfw_devel:
        licence.append(LFW_LICENCE)
    if recipe.extra_live:
        cfd = recipe.extra_live == EXTRA_LIVE_CFD
        data.append(("Chicago Face Database portraits" if cfd else f"live faces from {recipe.extra_live}")
                    + f", {recipe.extra_live_share:g} of each batch's bona fide half, less the "
                    "people of the devel hash bucket (edgefas.data.lfw.DEVEL_BUCKET)")
        licence.append(CFD_LICENCE if cfd else f"{recipe.extra_live}: the terms of the user's own data")
    if recipe.synth_attacks:
        data.append(f"synthetic prints and screen replays made from the live training faces, "
                    f"{recipe.synth_attacks:g} of each batch's attack half (edgefas.train.synth_attacks)")
    return data, licence


def package_run(run_dir: Path, bundle_dir: Path, *, protocol: str, name: str,
                roots: DataRoots | None = None, progress: bool = True,
                atol: float = FP32_ATOL) -> Path:
    """Write ``bundle_dir`` from the best checkpoint of ``run_dir`` (see module doc)."""
    model, state = load_trained(run_dir / "best")
    recipe = BaselineRecipe(**state["recipe"])
    contract = Contract.from_dict(state["contract"])
    data, licence = training_data(recipe, state.get("backbone_init"))   # before any cropping
    stage, det_sha = face_stage_for(contract)
    store = CropStore(stage, det_sha, roots, progress=progress)
    _, _, devel = build_sets(protocol, recipe, store)
    proto = get_protocol(protocol)
    training = {"protocol": protocol, "protocol_description": proto.description,
                "data": data, "licence": licence}
    split = f"replay-attack devel ({protocol}), all 20 frames per video"
    if recipe.lfw_devel:
        split += (", and LFW's devel bucket of identities (edgefas.data.lfw.DEVEL_BUCKET, "
                  "bona fide faces of other cameras, out of training)")
    return package_model(model, state, devel, bundle_dir, name=name, training=training,
                         devel_split=split, policy=stage.policy, atol=atol)


def _schedule_record(state: dict) -> dict:
    """``lr_schedule_steps`` when a run was resumed with other --steps than it began with: its
    learning rate followed the first schedule (edgefas.train.baseline), not the recorded steps."""
    steps = state.get("recipe", {}).get("steps")
    schedule = state.get("lr_schedule_steps", steps)
    return {"lr_schedule_steps": schedule} if schedule != steps else {}


def package_model(model: torch.nn.Module, state: dict, devel: CropSet, bundle_dir: Path, *,
                  name: str, training: dict, devel_split: str, policy: FacePolicy,
                  atol: float = FP32_ATOL) -> Path:
    """Calibrate and set the threshold on ``devel`` crops, export, and write the bundle.

    Args:
        model: the trained classifier (EMA weights).
        state: its trainer state (recipe, model config, contract, history).
        devel: labelled aligned crops of the development split (only ``ok`` ones are used).
        training: data, protocol and licences to record in the manifest.
        devel_split: a human-readable name of the devel split, recorded with the threshold.
    """
    contract = Contract.from_dict(state["contract"])
    devel = devel.subset(devel.ok)
    is_attack = np.array([s.is_attack for s in devel.samples])
    species = np.array([s.species for s in devel.samples])
    logits = predict_logits(model, devel.crops, contract)
    # Bona fide faces of more than one source (Replay's webcam, LFW's devel identities): the
    # threshold balances the worst attack species against the worst bona fide source.
    sources = devel_sources(devel.samples)
    several = len(set(sources[~is_attack])) > 1
    a, b = fit_platt(logits, ~is_attack)
    scores = apply_platt(logits, a, b)
    threshold = threshold_at_eer(scores, is_attack, species=species,
                                 bona_fide_source=sources if several else None)
    report = evaluate(scores, is_attack, threshold, species=species, bootstrap=200)
    by_source = ({g: r.to_dict() for g, r in
                  bpcer_by_source(scores, is_attack, sources, threshold).items()}
                 if several else None)

    bundle_dir = Path(bundle_dir)
    shutil.rmtree(bundle_dir, ignore_errors=True)
    bundle_dir.mkdir(parents=True)
    face_files = {"onnx": FACE_DETECTOR}
    if (default_bundle_path() / FACE_DETECTOR_TFLITE).is_file():
        face_files["tflite"] = FACE_DETECTOR_TFLITE  # MediaPipe's original, for LiteRT
    for f in (*face_files.values(), "LICENSE-mediapipe.txt"):
        shutil.copy2(default_bundle_path() / f, bundle_dir / f)
    # PyTorch weights (safetensors) travel with the bundle: LiteRT, Core ML and torch-tensorrt
    # convert from them, and export parity gates compare with them.
    torch_entry = save_torch_weights(model, bundle_dir, state["model_config"])
    # Gate on a spread of real devel faces, both classes.
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(len(devel), size=min(256, len(devel)), replace=False))
    thr_logit = platt_logit(threshold, a, b) if 0 < threshold < 1 else 0.0
    parity = export_onnx(model, to_tensor(devel.crops[pick], contract),
                         bundle_dir / "classifier.onnx", decision_logit=thr_logit, atol=atol)
    n_live, n_att = int((~is_attack).sum()), int(is_attack.sum())
    licence = training.get("licence", [])
    manifest = {
        "name": name,
        "version": __version__,
        "created": _dt.date.today().isoformat(),
        "description": "Face anti-spoofing: BlazeFace short-range face detection, 4-point "
                       "similarity alignment, " + _classifier_description(state),
        "preprocess": contract.to_dict(),
        "face_policy": policy.to_dict(),
        "models": {
            "face_detector": {**face_files, "source": "MediaPipe 0.10.21 wheel, "
                              "face_detection_short_range.tflite converted with tflite2onnx "
                              "0.4.1 (tools/build_face_detector.py); modified: format only",
                              "licence": "Apache-2.0 (LICENSE-mediapipe.txt)"},
            "classifier": {"onnx": "classifier.onnx", "input": "face", "output": "live_logit",
                           "arch": state["model_config"]["arch"],
                           "params": int(sum(p.numel() for p in model.parameters())),
                           **torch_entry, **_cue_entry(state)},
        },
        "threshold": {"value": float(threshold), "on": "live_score (live when >=)",
                      "split": devel_split,
                      "criterion": ("D-EER on devel (APCER_max = BPCER_max, the worst bona fide "
                                    "source's)" if several else "D-EER on devel (APCER_max = BPCER)"),
                      "bona_fide": n_live, "attack": n_att,
                      **({"bpcer_by_source": by_source} if several else {})},
        "calibration": {"method": "platt", "a": a, "b": b,
                        "formula": "live_score = 1 / (1 + exp(-(a * live_logit + b)))",
                        "fit_on": f"{devel_split}, classes weighted equally, Platt's smoothed "
                                  "targets",
                        "bona_fide": n_live, "attack": n_att},
        "training": {**{k: v for k, v in training.items() if k != "licence"},
                     "recipe": state["recipe"], "best_step": _best_step(state),
                     # a run resumed with more --steps kept the learning-rate schedule it began with
                     **_schedule_record(state),
                     # a branch of another run, or a weight average of branches (edgefas soup)
                     **{k: state[k] for k in ("branched_from", "soup") if state.get(k)},
                     "selection": "checkpoint with the lowest devel D-EER (EMA weights)"
                                  + (", BPCER of the worst bona fide source" if several else "")},
        "licence": {"classifier": "weights derived from the training data; see data",
                    "face_detector": "Apache-2.0", "data": licence},
        "parity": {"classifier.onnx": parity.to_dict()},
        "metrics": {"devel": {"split": devel_split, **report.to_dict()}},
    }
    write_manifest(bundle_dir, manifest)
    return bundle_dir


def _classifier_description(state: dict) -> str:
    cfg = state["model_config"]
    if cfg.get("class") != "FusionClassifier":
        return "timm MobileViT RGB classifier (baseline)."
    how = {"xattn": "AG-FAS cross-attention", "twostream": "DDM halfway two-stream"}[cfg["fusion"]]
    return (f"timm MobileViT fusion classifier reading the RGB face and the spoof cue of a frozen "
            f"{cfg['cue_kind']} de-spoofer inside the graph ({how}).")


def _cue_entry(state: dict) -> dict:
    """Where the fusion classifier's built-in cue module came from (nothing for the baseline)."""
    cfg, recipe = state["model_config"], state["recipe"]
    if cfg.get("class") != "FusionClassifier":
        return {}
    return {"cue": {"kind": cfg["cue_kind"], "fusion": cfg["fusion"], "nfe": cfg["cue_nfe"],
                    "side": cfg["cue_side"], "source_dir": recipe.get("cue_dir")}}


def _best_step(state: dict) -> int | None:
    for h in state.get("history", []):
        if h["round"] == state.get("best_round"):
            return h["step"]
    return None
