"""Data sets of other labs, for cross-data-set tests (protocol P5 of ``edgefas eval``).

- NUAA Photograph Imposter Database (Tan et al., ECCV 2010): ``ClientRaw/<ID>/*.jpg`` bona fide,
  ``ImposterRaw/<ID>/*.jpg`` printed-photo attacks re-captured by a 640x480 webcam; file names
  ``<ID>_<glasses>_<position>_<session>_<picture>.jpg``. Sessions 01-02 are its train part,
  session 03 its test part (3,362 bona fide / 5,761 attacks in the full release). Research use.
- Essex faces94 (Libor Spacek): ``Training/<n>/<person>.<k>.jpg`` bona fide faces from a lab
  camcorder (the subset of shared/DATA.md's fetch source; its ``Test/`` folder repeats some
  files, so it is not read). Research use.
- Chicago Face Database (Ma, Correll & Wittenbrink 2015): studio portraits
  ``CFD-<GG>-<NNN>-<SSS>-<EXPR>.jpg`` anywhere under the root, person ``<GG>-<NNN>``. Not a test
  set here: an extra source of bona fide training faces (``edgefas train --extra-live cfd``).
  Its terms: non-commercial research use, no redistribution.

Both are read as they come; the layout is checked and a wrong folder is a DatasetError.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

from ..errors import DatasetError, DataWarning
from .image_files import find_images
from .samples import BONA_FIDE, Sample

_NUAA_NAME = re.compile(r"^(\d{4})_\d{2}_\d{2}_(\d{2})_\d+$")
_CFD_NAME = re.compile(r"^CFD-([A-Z]{2}-\d{3})-\d{3}-[A-Z]+$")
NUAA_TEST_SESSIONS = ("03",)


def load_nuaa(root: str | Path, sessions: tuple[str, ...] = NUAA_TEST_SESSIONS) -> list[Sample]:
    """NUAA images of the given sessions (default: the test part), sorted by path."""
    root = Path(root).expanduser()
    if (root / "db").is_dir():            # the fetched repository's layout
        root = root / "db"
    parts = {"ClientRaw": False, "ImposterRaw": True}
    if not all((root / p).is_dir() for p in parts):
        raise DatasetError(f"NUAA not found at {root}: expected ClientRaw/ and ImposterRaw/")
    out, unnamed = [], []
    for folder, is_attack in parts.items():
        for f in find_images(root / folder):
            m = _NUAA_NAME.match(f.stem)
            if not m:
                unnamed.append(f.name)   # not NUAA's naming: its session (split) is unknown
                continue
            if m.group(2) in sessions:
                out.append(Sample(str(f), is_attack, "print" if is_attack else BONA_FIDE,
                                  f"session{m.group(2)}", "nuaa", subject=m.group(1)))
    if unnamed:
        # added images would otherwise vanish from every count without a word
        warnings.warn(f"{root}: {len(unnamed)} images not named <ID>_<glasses>_<position>_<session>_"
                      f"<n>.jpg, so not used (e.g. {', '.join(unnamed[:3])})", DataWarning, stacklevel=2)
    if not out:
        raise DatasetError(f"no NUAA images of sessions {', '.join(sessions)} under {root}"
                           + (f" ({len(unnamed)} images with other names)" if unnamed else ""))
    return out


def load_essex(root: str | Path) -> list[Sample]:
    """Essex faces94 ``Training/<n>/<person>.<k>.jpg`` images, all bona fide."""
    root = Path(root).expanduser()
    train = root / "Training"
    if not train.is_dir():
        raise DatasetError(f"Essex faces94 not found at {root}: expected Training/<n>/<person>.<k>.jpg")
    out = [Sample(str(f), False, BONA_FIDE, "unseen", "essex", subject=f.stem.split(".")[0])
           for f in find_images(train) if f.suffix.lower() in (".jpg", ".jpeg")]
    if not out:
        raise DatasetError(f"no images under {train}")
    return out


def load_cfd(root: str | Path) -> list[Sample]:
    """Chicago Face Database portraits under ``root`` (any depth), all bona fide, sorted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"Chicago Face Database not found at {root}")
    out, unnamed = [], []
    for f in find_images(root):
        m = _CFD_NAME.match(f.stem)
        if m:
            out.append(Sample(str(f), False, BONA_FIDE, "all", "cfd", subject=m.group(1)))
        else:
            unnamed.append(f.name)   # its person is unknown: it could sit on both sides of a split
    if not out:
        raise DatasetError(f"no CFD-<GG>-<NNN>-<SSS>-<EXPR>.jpg images under {root}")
    if unnamed:
        warnings.warn(f"{root}: {len(unnamed)} images not named CFD-<GG>-<NNN>-<SSS>-<EXPR>.jpg, so "
                      f"not used (e.g. {', '.join(unnamed[:3])})", DataWarning, stacklevel=2)
    return out
