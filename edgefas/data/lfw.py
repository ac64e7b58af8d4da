"""Labeled Faces in the Wild as a source of bona fide faces, with an identity-disjoint split.

Accepts the official tree ``<Name>/<Name>_NNNN.jpg`` and a flat folder of
``<First_Last>_NNNN.jpg``. Which identities are held out is decided by a hash of the name, so
the split is the same on every machine and never depends on file order.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import DatasetError
from .image_files import find_images
from .samples import BONA_FIDE, Sample

_NAME = re.compile(r"^(.+)_(\d{4})$")
#: Share of identities held out of any training, for the P4 unseen-bona-fide protocol.
HELDOUT_FRACTION = 0.2
#: Hash range of the identities a recipe with ``lfw_devel`` keeps out of training and uses as a
#: devel set of bona fide faces from other cameras. It is carved from the "train" split (hash
#: >= HELDOUT_FRACTION), so the P4 held-out identities stay exactly what they always were.
DEVEL_BUCKET = (0.2, 0.3)
# P4's held-out people must never become devel (or training) faces, whatever the constants say
assert HELDOUT_FRACTION <= DEVEL_BUCKET[0] < DEVEL_BUCKET[1] <= 1.0


def _identity_hash(identity: str) -> float:
    return int(hashlib.sha1(identity.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def identity_split(identity: str, heldout_fraction: float = HELDOUT_FRACTION) -> str:
    """``"heldout"`` or ``"train"`` for an identity, from a stable hash of its name."""
    return "heldout" if _identity_hash(identity) < heldout_fraction else "train"


def is_devel_identity(identity: str) -> bool:
    """Whether an identity (of the "train" split) is in the devel bucket (:data:`DEVEL_BUCKET`)."""
    lo, hi = DEVEL_BUCKET
    return lo <= _identity_hash(identity) < hi


def load_lfw(root: str | Path, splits: tuple[str, ...] = ("train", "heldout")) -> list[Sample]:
    """All LFW images in ``root`` whose identity falls in one of ``splits``, sorted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"LFW folder not found: {root}")
    out = []
    for f in (p for p in find_images(root) if p.suffix.lower() in (".jpg", ".jpeg")):
        m = _NAME.match(f.stem)
        if not m:
            continue
        ident = m.group(1)
        split = identity_split(ident)
        if split in splits:
            out.append(Sample(path=str(f), is_attack=False, species=BONA_FIDE, split=split,
                              dataset="lfw", subject=ident))
    if not out:
        raise DatasetError(f"no LFW-style <Name>_NNNN.jpg images under {root}")
    return out
