"""``edgefas finetune``: adapt a bundle's classifier to one camera with its own labelled captures.

The shipped model is trained on one lab's webcam (Replay-Attack) and LFW; a kiosk's camera and
its attacks can look different enough that live faces are rejected (london: 16 % BPCER). This
starts from the bundle's PyTorch weights (``classifier.safetensors``, never a pickle) and trains
a few hundred steps at a low learning rate on the user's ``--train`` captures (live and attack),
picks the checkpoint and threshold on the ``--devel`` captures (other people than ``--train``),
and writes a new bundle that records the base bundle, both data sets and their counts.

No data set of the base training is needed: only the user's captures. The model forgets: on
NUAA (docs/finetune_nuaa) plain fine-tuning lifted the camera's test AUC from 0.537 to 0.848
and dropped Replay-Attack's from 1.000 to 0.517. ``anchor`` (L2-SP) pulls the weights toward
the base's (Replay-Attack AUC 0.689 at 0.1), ``freeze_bn`` keeps BatchNorm's statistics (other
cameras' live faces mostly accepted again); ``rehearse`` mixes the base's own training data into
each batch (Replay-Attack AUC 0.996 with the defaults), for users who have it. Measure any new
bundle with ``edgefas eval``.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from ..bundle import Bundle, load_bundle, sha256_file
from ..data.face_cache import CropSet
from ..data.folder import data_fingerprint, load_labelled
from ..data.samples import Sample
from ..data.sources import CropStore, DataRoots
from ..errors import DatasetError, DataWarning, EdgefasError
from ..runtime.preprocess import Contract
from .baseline import DevelSet, TrainSet, check_resume, train_baseline
from .recipes import BaselineRecipe
from .run import face_stage_for

#: Fine-tuning settings over the base bundle's recipe (its architecture, batch and augmentation,
#: --jitter and --light included: the camera's crops get what the base's did).
#: A low rate and a short warm-up: the weights start trained, and a base-rate step would
#: throw away what the base data taught before the new captures can replace it.
#: anchor 0.1 (L2-SP) by the devel rule of docs/finetune_nuaa/plan.md (addendum 1): on NUAA it
#: forgot less of the base devel set (worst-source D-EER 49.15 % against 63.20 % unanchored) at
#: an adapt-devel D-EER 1.3 points higher. freeze_bn by addendum 3's rule: with the anchor,
#: base devel 40.58 % (against 49.15 %) and adapt-devel 3.55 % (against 9.20 %).
FINETUNE = {"name": "finetune", "steps": 300, "lr": 2e-4, "warmup_steps": 20, "eval_every": 50,
            "anchor": 0.1, "rehearse": False, "freeze_bn": True, "train_layers": "all",
            "use_lfw": False, "lfw_devel": False, "extra_live": None, "extra_live_share": 0.0,
            "synth_attacks": 0.0, "synth_live_tone": 0.0, "synth_live_tone_any": False,
            # the weights come from the bundle, whose manifest names any pretrained start
            "backbone_init": None}
#: the fewest usable crops of each class in --train and in --devel
MIN_PER_CLASS = 10
#: file in the run folder recording the data sets (resume refuses other ones)
DATA_RECORD = "finetune_data.json"


def _check_data(out_dir: Path, record: dict, resume: bool) -> None:
    """Refuse to resume a run on other captures (its checkpoints, and the D-EERs its best was
    chosen by, belong to the first ones); a fresh run writes the record."""
    f = Path(out_dir) / DATA_RECORD
    if resume and f.is_file():
        old = json.loads(f.read_text())
        changed = [k for k in ("train", "devel") if old[k]["sha1"] != record[k]["sha1"]]
        if old.get("rehearsal_roots") != record.get("rehearsal_roots"):
            raise EdgefasError(f"{out_dir} rehearsed the base data from {old.get('rehearsal_roots')}, "
                               f"not {record.get('rehearsal_roots')}: use another --out or --no-resume")
        if changed:
            raise EdgefasError(f"{out_dir} was fine-tuned on other {' and '.join(changed)} captures "
                               f"({', '.join(old[k]['path'] for k in changed)}): use another "
                               "--out or --no-resume")


def finetune_recipe(bundle: Bundle, *, steps: int | None = None, lr: float | None = None,
                    batch_size: int | None = None, seed: int | None = None,
                    threads: int | None = None, anchor: float | None = None,
                    rehearse: bool = False, freeze_bn: bool | None = None,
                    train_layers: str | None = None) -> BaselineRecipe:
    """The base bundle's recipe with :data:`FINETUNE` over it, and where its weights came from."""
    if batch_size is not None and (batch_size < 2 or batch_size % 2):
        raise EdgefasError(f"batch size {batch_size}: an even number >= 2 (half live, half attack)")
    base = dict(bundle.manifest.get("training", {}).get("recipe") or {})
    if not base:
        raise EdgefasError(f"bundle {bundle.name!r} records no training recipe: it cannot be "
                           "fine-tuned (re-package it from its run with 'edgefas export RUN')")
    if base.get("fusion"):
        raise EdgefasError("fine-tuning a fusion bundle is not supported: its cue module's "
                           "folder is not part of the bundle")
    if rehearse and not bundle.manifest.get("training", {}).get("protocol"):
        # a fine-tuned bundle has no base protocol of its own: checked before any cropping
        raise EdgefasError(f"bundle {bundle.name!r} records no training protocol (a fine-tuned "
                           "bundle?): --rehearse needs the data set its base was trained on")
    sha = sha256_file(bundle.model_file("classifier", "pytorch"))
    over = {**FINETUNE, "init_from": f"{bundle.name}@sha256:{sha}", "rehearse": rehearse}
    if rehearse:   # the base data as the base recipe drew it (LFW and its share, devel bucket out)
        over = {k: v for k, v in over.items() if k not in ("use_lfw", "lfw_devel")}
    known = set(BaselineRecipe.__dataclass_fields__)
    recipe = BaselineRecipe(**{k: v for k, v in {**base, **over}.items() if k in known})
    recipe = recipe.with_overrides(steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                                   threads=threads, anchor=anchor, freeze_bn=freeze_bn,
                                   train_layers=train_layers)
    if recipe.steps <= recipe.warmup_steps:
        warnings.warn(f"{recipe.steps} steps end inside the {recipe.warmup_steps}-step warm-up: "
                      f"the learning rate never reaches {recipe.lr:g}", stacklevel=2)
    return recipe


def check_disjoint(train: list[Sample], devel: list[Sample]) -> None:
    """Devel must hold other images, and other people where people are named: a devel set of
    the training people rewards remembering them, not telling live from attack."""
    same = {os.path.realpath(s.path) for s in train} & {os.path.realpath(s.path) for s in devel}
    if same:
        raise DatasetError(f"--train and --devel share {len(same)} images (e.g. {sorted(same)[0]}): "
                           "give them different captures, of different people")
    a, b = {s.subject for s in train if s.subject}, {s.subject for s in devel if s.subject}
    if both := a & b:
        raise DatasetError(f"--train and --devel share {len(both)} people ({', '.join(sorted(both)[:5])}"
                           f"{', ...' if len(both) > 5 else ''}): the checkpoint and threshold "
                           "must be chosen on people the model did not train on")
    if not (a and b):
        warnings.warn("--train or --devel names no people (a folder, or a CSV without 'subject'): "
                      "make sure the two hold different people, which cannot be checked here",
                      DataWarning, stacklevel=3)


def _shown(path: Path) -> str:
    """A path as the manifest shows it: relative to the working folder when inside it (a run
    folder moved with its data stays readable, and no home folder is written), else absolute."""
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _record(path: str | Path, samples: list[Sample], split: str) -> dict:
    p = Path(path).expanduser().resolve()
    csv_rows = p.suffix.lower() == ".csv" and any(s.split.lower() == split for s in samples)
    return {"path": _shown(p) + (f" (its '{split}' rows)" if csv_rows else ""),
            "live": sum(not s.is_attack for s in samples),
            "attack": sum(s.is_attack for s in samples),
            "people": len({s.subject for s in samples if s.subject}) or None,
            "sha1": data_fingerprint(samples)}


def _with_base_data(user: TrainSet, bundle: Bundle, recipe: BaselineRecipe, store: CropStore
                    ) -> tuple[TrainSet, dict]:
    """The base bundle's training crops (its protocol's train part, LFW as its recipe drew it)
    before the user's: batches then draw live and attack faces from both in proportion to
    their counts, and LFW at the recipe's share, as the base run did."""
    from .run import build_sets

    protocol = bundle.manifest.get("training", {}).get("protocol")
    if not protocol:
        raise EdgefasError(f"bundle {bundle.name!r} records no training protocol: nothing to rehearse")
    base, _, _ = build_sets(protocol, recipe, store)
    train = TrainSet(np.concatenate([base.crops, user.crops]),
                     np.concatenate([base.is_live, user.is_live]),
                     np.concatenate([base.is_extra, user.is_extra]))
    info = {"protocol": protocol, "live": int(base.is_live.sum()), "attack": int((~base.is_live).sum()),
            "of_them_lfw": int(base.is_extra.sum())}
    return train, info


def finetune(bundle_path: str | Path | None, train_path: str | Path, devel_path: str | Path,
             out_dir: str | Path, *, steps: int | None = None, lr: float | None = None,
             batch_size: int | None = None, seed: int | None = None,
             threads: int | None = None, anchor: float | None = None, rehearse: bool = False,
             freeze_bn: bool | None = None, train_layers: str | None = None,
             roots: DataRoots | None = None, resume: bool = True,
             progress: bool = True) -> tuple[Path, CropSet, dict, dict]:
    """Fine-tune; returns (best checkpoint folder, devel crops, base bundle manifest, the
    record of both data sets: paths, counts, fingerprints)."""
    from safetensors.torch import load_file

    bundle = load_bundle(bundle_path)
    recipe = finetune_recipe(bundle, steps=steps, lr=lr, batch_size=batch_size, seed=seed,
                             threads=threads, anchor=anchor, rehearse=rehearse,
                             freeze_bn=freeze_bn, train_layers=train_layers)
    contract = Contract.from_dict(bundle.manifest["preprocess"])
    check_resume(out_dir, recipe, contract, resume=resume)
    tr_s, dv_s = load_labelled(train_path, "train"), load_labelled(devel_path, "devel")
    check_disjoint(tr_s, dv_s)
    record = {"train": _record(train_path, tr_s, "train"), "devel": _record(devel_path, dv_s, "devel")}
    stage, det_sha = face_stage_for(contract, bundle.face_policy, bundle.path)
    store = CropStore(stage, det_sha, roots, progress=progress)
    if recipe.rehearse:   # where the base data comes from: a resume must read the same
        record["rehearsal_roots"] = {"replay": _shown(Path(store.roots.replay_frames).resolve()),
                                     **({"lfw": _shown(Path(store.roots.lfw).resolve())}
                                        if recipe.use_lfw else {})}
    _check_data(Path(out_dir), record, resume)   # before minutes of cropping
    tr, dv = (store.labelled_set(path, samples, split, minimum=MIN_PER_CLASS, purpose="fine-tuning")
              for path, samples, split in ((train_path, tr_s, "train"), (devel_path, dv_s, "devel")))
    for part, crops in (("train", tr), ("devel", dv)):   # the faces used, beside the images listed
        record[part]["usable_live"] = sum(not s.is_attack for s in crops.samples)
        record[part]["usable_attack"] = sum(s.is_attack for s in crops.samples)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    train = TrainSet(tr.crops, np.array([not s.is_attack for s in tr.samples], bool),
                     np.zeros(len(tr), bool))
    if recipe.rehearse:
        train, record["rehearsal"] = _with_base_data(train, bundle, recipe, store)
    (Path(out_dir) / DATA_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    devel = DevelSet(dv.crops, np.array([s.is_attack for s in dv.samples], bool),
                     np.array([s.species for s in dv.samples]))
    is_live = train.is_live
    rh = record.get("rehearsal")
    base_part = f" (of them the base data: {rh['live']} / {rh['attack']})" if rh else ""
    print(f"fine-tuning {bundle.name}: train {int(is_live.sum())} live / {int((~is_live).sum())} "
          f"attack crops{base_part}; devel {int((~devel.is_attack).sum())} / "
          f"{int(devel.is_attack.sum())}")
    init = load_file(bundle.model_file("classifier", "pytorch"))
    best = train_baseline(recipe, train, devel, contract, out_dir, resume=resume,
                          progress=progress, init_weights=init)
    return best, dv, bundle.manifest, record
