"""A user's own labelled data: a folder tree or a CSV file.

Folder: ``root/live/**`` (also ``real``, ``bona_fide``) holds bona fide images;
``root/attack/<species>/**`` (also ``spoof``) holds attacks, the first sub-folder naming the
species (images directly under ``attack/`` get species ``attack``). Species names are taken in
lower case, so ``Print/`` and ``print/`` (or a CSV's ``Print`` and ``print``) are one species.

CSV: columns ``path`` and ``label`` (``live``/``bona_fide``/``0`` or ``attack``/``spoof``/``1``),
optional ``species``, ``split``, ``subject``; relative paths are relative to the CSV.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import warnings
from pathlib import Path

from ..errors import DatasetError, DataWarning
from .image_files import find_images, is_image_name
from .samples import BONA_FIDE, Sample

LIVE_NAMES = {"live", "real", "bona_fide", "bonafide", "genuine", "0"}
ATTACK_NAMES = {"attack", "spoof", "fake", "1"}


def _images(folder: Path) -> list[Path]:
    return find_images(folder)


def load_folder(root: str | Path, split: str = "all") -> list[Sample]:
    """Samples from a ``live/`` + ``attack/<species>/`` tree (see module doc). What the tree
    holds outside those folders is listed in a warning, not silently left out."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"folder not found: {root}")
    out = []
    ignored = []
    for d in sorted(root.iterdir()):
        name = d.name.lower()
        if not d.is_dir():
            if is_image_name(d):
                ignored.append(d.name)
        elif name in LIVE_NAMES:
            out += [Sample(str(f), False, BONA_FIDE, split, "folder") for f in _images(d)]
        elif name in ATTACK_NAMES:
            for f in _images(d):
                rel = f.relative_to(d).parts
                # lower case: per-species APCER would otherwise split "Print" from "print"
                species = rel[0].lower() if len(rel) > 1 else "attack"
                out.append(Sample(str(f), True, species, split, "folder"))
        elif stray := _images(d):
            ignored.append(f"{d.name}/ ({len(stray)} images)")
    if not out:
        raise DatasetError(f"{root} has no live/ or attack/ sub-folder with images")
    if ignored:
        # a misspelt class folder would otherwise just be missing from every count
        warnings.warn(f"{root}: not under live/ or attack/, so not used: {', '.join(ignored)}",
                      DataWarning, stacklevel=2)
    return out


def load_csv(path: str | Path) -> list[Sample]:
    """Samples listed in a CSV (see module doc)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DatasetError(f"CSV not found: {path}")
    out = []
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise DatasetError(f"{path} needs the columns 'path' and 'label'")
        for i, row in enumerate(reader, start=2):
            if row["path"] is None or row["label"] is None:
                raise DatasetError(f"{path}:{i}: the row has fewer columns than the header")
            label = row["label"].strip().lower()
            if label in LIVE_NAMES:
                is_attack = False
            elif label in ATTACK_NAMES:
                is_attack = True
            else:
                raise DatasetError(f"{path}:{i}: label {row['label']!r} is neither live nor attack")
            img = Path(row["path"])
            img = img if img.is_absolute() else path.parent / img
            species = ((row.get("species") or "").strip().lower()
                       or ("attack" if is_attack else BONA_FIDE))
            out.append(Sample(str(img), is_attack, BONA_FIDE if not is_attack else species,
                              (row.get("split") or "all").strip(), "csv",
                              subject=(row.get("subject") or "").strip()))
    return out


def load_live_faces(path: str | Path) -> list[Sample]:
    """Bona fide faces of a user's camera, for ``edgefas train --extra-live PATH``.

    A CSV (see module doc) gives its live rows with their ``subject``. A folder gives every image
    under it (under ``live/`` when it has one): in per-person sub-folders (``ann/1.jpg``,
    ``ann/2.jpg``) the sub-folder names the person; an image directly in the folder is a person
    of its own. The person decides which faces the devel bucket holds out
    (:func:`edgefas.data.lfw.is_devel_identity`), so one person's photos never sit on both sides.
    """
    path = Path(path).expanduser()
    if path.is_file() and path.suffix.lower() == ".csv":
        out = [s for s in load_csv(path) if not s.is_attack]
    elif path.is_dir():
        root = next((d for d in sorted(path.iterdir()) if d.is_dir() and d.name.lower() in LIVE_NAMES),
                    path)
        out = []
        for f in _images(root):
            rel = f.relative_to(root).parts
            out.append(Sample(str(f), False, BONA_FIDE, "all", "extra-live",
                              subject=rel[0] if len(rel) > 1 else f.stem))
    else:
        raise DatasetError(f"--extra-live: {path} is neither a folder nor a .csv file")
    if not out:
        raise DatasetError(f"no live images in {path}")
    return out


#: split values a CSV may hold (test rows are read by 'edgefas eval' only)
SPLITS = {"train", "devel", "test"}


def load_labelled(path: str | Path, split: str) -> list[Sample]:
    """Labelled captures of a folder (``live/`` + ``attack/<species>/``) or CSV, as
    ``edgefas finetune`` (train, devel), ``export --devel`` and ``calibrate --data`` (devel) and
    ``eval --folder`` (test) read them. A CSV whose ``split`` column is filled gives its rows of
    ``split``; a CSV without one gives all its rows."""
    path = Path(path).expanduser()
    if path.suffix.lower() != ".csv":
        return load_folder(path)
    rows = load_csv(path)
    splits = {s.split.lower() for s in rows} - {"all", ""}
    if not splits:
        return rows
    if not splits <= SPLITS:
        # "dev", "val": a split name this does not know would silently put rows on no side
        raise DatasetError(f"{path}: split values {sorted(splits)}; expected {', '.join(sorted(SPLITS))}")
    rows = [s for s in rows if s.split.lower() == split]
    if not rows:
        raise DatasetError(f"{path}: no row with split '{split}'")
    return rows


def data_fingerprint(samples: list[Sample]) -> str:
    """sha1 of what a data set lists (resolved paths, labels, species, people): a resumed run
    on other captures is refused, and the bundle records which captures it learnt from."""
    keys = sorted([os.path.realpath(s.path), s.is_attack, s.species, s.subject] for s in samples)
    return hashlib.sha1(json.dumps(keys).encode()).hexdigest()
