"""``edgefas finetune``: adapt a bundle's classifier to one camera with its own labelled captures.

The shipped model is trained on one lab's webcam (Replay-Attack) and LFW; a kiosk's camera and
its attacks can look different enough that live faces are rejected (london: 16 % BPCER). This
starts from the bundle's PyTorch weights (``classifier.safetensors``, never a pickle) and trains
a few hundred steps at a low learning rate on the user's ``--train`` captures (live and attack),
picks the checkpoint and threshold on the ``--devel`` captures (other people than ``--train``),
and writes a new bundle that records the base bundle, both data sets and their counts.

No data set of the base training is needed: only the user's captures. What the model may
forget of the base data is not measured here; measure the new bundle with ``edgefas eval``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bundle import Bundle, load_bundle, sha256_file
from ..data.face_cache import CropSet
from ..data.folder import load_csv, load_folder
from ..data.samples import Sample
from ..data.sources import CropStore
from ..errors import DatasetError, EdgefasError
from ..runtime.preprocess import Contract
from .baseline import DevelSet, TrainSet, check_resume, train_baseline
from .recipes import BaselineRecipe
from .run import face_stage_for

#: Fine-tuning settings over the base bundle's recipe (its architecture, augmentation, batch).
#: A low rate and a short warm-up: the weights start trained, and a base-rate step would
#: throw away what the base data taught before the new captures can replace it.
FINETUNE = {"name": "finetune", "steps": 300, "lr": 2e-4, "warmup_steps": 20, "eval_every": 50,
            "use_lfw": False, "lfw_devel": False, "extra_live": None, "extra_live_share": 0.0,
            "synth_attacks": 0.0, "synth_live_tone": 0.0, "synth_live_tone_any": False}
#: the fewest usable crops of each class in --train and in --devel
MIN_PER_CLASS = 10


def load_labelled(path: str | Path, split: str) -> list[Sample]:
    """Labelled captures of a folder (``live/`` + ``attack/<species>/``) or CSV. A CSV whose
    ``split`` column says ``train``/``devel`` gives the rows of ``split``; other CSVs give all."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        rows = load_csv(path)
        if any(s.split in ("train", "devel") for s in rows):
            rows = [s for s in rows if s.split == split]
            if not rows:
                raise DatasetError(f"{path}: no row with split '{split}'")
        return rows
    return load_folder(path)


def finetune_recipe(bundle: Bundle, *, steps: int | None = None, lr: float | None = None,
                    batch_size: int | None = None, seed: int | None = None,
                    threads: int | None = None) -> BaselineRecipe:
    """The base bundle's recipe with :data:`FINETUNE` over it, and where its weights came from."""
    base = dict(bundle.manifest.get("training", {}).get("recipe") or {})
    if not base:
        raise EdgefasError(f"bundle {bundle.name!r} records no training recipe: it cannot be "
                           "fine-tuned (re-package it from its run with 'edgefas export RUN')")
    if base.get("fusion"):
        raise EdgefasError("fine-tuning a fusion bundle is not supported: its cue module's "
                           "folder is not part of the bundle")
    known = set(BaselineRecipe.__dataclass_fields__)
    recipe = BaselineRecipe(**{k: v for k, v in {**base, **FINETUNE}.items() if k in known})
    sha = sha256_file(bundle.model_file("classifier", "pytorch"))
    return recipe.with_overrides(steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                                 threads=threads,
                                 init_from=f"{bundle.name}@sha256:{sha}")


def _crops(store: CropStore, path: str | Path, split: str) -> CropSet:
    import hashlib

    samples = load_labelled(path, split)
    tag = hashlib.sha1(f"{Path(path).expanduser().resolve()}:{split}".encode()).hexdigest()[:10]
    crops = store.samples_set(f"finetune_{split}_{tag}", samples)
    crops = crops.subset(crops.ok)
    is_attack = np.array([s.is_attack for s in crops.samples], bool)
    n_live, n_att = int((~is_attack).sum()), int(is_attack.sum())
    if min(n_live, n_att) < MIN_PER_CLASS:
        raise DatasetError(f"--{split} {path}: {n_live} live and {n_att} attack captures with a "
                           f"usable face; fine-tuning needs at least {MIN_PER_CLASS} of each")
    return crops


def overlapping_subjects(train: CropSet, devel: CropSet) -> set[str]:
    """People (CSV ``subject``) in both sets: a devel set of the training people rewards
    remembering them, not telling live from attack."""
    a = {s.subject for s in train.samples if s.subject}
    return a & {s.subject for s in devel.samples if s.subject}


def finetune(bundle_path: str | Path | None, train_path: str | Path, devel_path: str | Path,
             out_dir: str | Path, *, steps: int | None = None, lr: float | None = None,
             batch_size: int | None = None, seed: int | None = None,
             threads: int | None = None, resume: bool = True,
             progress: bool = True) -> tuple[Path, CropSet, dict]:
    """Fine-tune; returns (best checkpoint folder, devel crops, base bundle manifest)."""
    import torch
    from safetensors.torch import load_file

    bundle = load_bundle(bundle_path)
    recipe = finetune_recipe(bundle, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                             threads=threads)
    contract = Contract.from_dict(bundle.manifest["preprocess"])
    check_resume(out_dir, recipe, contract, resume=resume)
    stage, det_sha = face_stage_for(contract, bundle.face_policy, bundle.path)
    store = CropStore(stage, det_sha, progress=progress)
    tr, dv = _crops(store, train_path, "train"), _crops(store, devel_path, "devel")
    if both := overlapping_subjects(tr, dv):
        raise DatasetError(f"--train and --devel share {len(both)} people ({', '.join(sorted(both)[:5])}"
                           f"{', ...' if len(both) > 5 else ''}): the checkpoint and threshold "
                           "must be chosen on people the model did not train on")
    is_live = np.array([not s.is_attack for s in tr.samples], bool)
    train = TrainSet(tr.crops, is_live, np.zeros(len(tr), bool))
    devel = DevelSet(dv.crops, np.array([s.is_attack for s in dv.samples], bool),
                     np.array([s.species for s in dv.samples]))
    print(f"fine-tuning {bundle.name}: train {int(is_live.sum())} live / {int((~is_live).sum())} "
          f"attack crops; devel {int((~devel.is_attack).sum())} / {int(devel.is_attack.sum())}")
    init = load_file(bundle.model_file("classifier", "pytorch"))
    torch.set_num_threads(recipe.threads)
    best = train_baseline(recipe, train, devel, contract, out_dir, resume=resume,
                          progress=progress, init_weights=init)
    return best, dv, bundle.manifest
