"""A teacher's training faces in one portable file, to train on a machine without the data sets.

A GPU box or a colleague's workstation often has neither Replay-Attack nor LFW, and copying the
aligned-crop cache (uncompressed, gigabytes) is slow. A pack holds exactly the crops one teacher
trains on, cut to the region it sees and encoded as lossless WebP (about 5 kB per 64 px face, half
of zlib's size), with the data record that goes into ``teacher.json``. Decoding is checked against
a sha256 of the raw pixels, so a pack either gives back the very crops that were packed or fails.

The pack is a plain ``.npz`` of numeric arrays (no pickles): ``blob`` (all encoded images end to
end), ``offsets``, ``is_live`` and ``meta`` (JSON as bytes).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from .cue_features import centre_region
from .errors import TeacherConfigError

PACK_VERSION = 1
_WEBP_LOSSLESS = [cv2.IMWRITE_WEBP_QUALITY, 101]    # quality > 100 selects lossless WebP


def cut_region(crops: np.ndarray, region: float, crops_region: float = 1.0) -> np.ndarray:
    """The central ``region`` of the aligned crop, from ``crops`` that are its central ``crops_region``
    (1.0: whole aligned crops; a pack's crops: the pack's region)."""
    if region > crops_region + 1e-9:
        raise TeacherConfigError(f"the recipe trains on the central {region:g} of the crop, but these crops "
                                 f"are only its central {crops_region:g} (pack them with the recipe's "
                                 "region)")
    rel = region / crops_region
    return crops if rel > 1 - 1e-9 else np.ascontiguousarray(centre_region(crops, rel))


def _pixels_sha256(crops: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(crops).tobytes()).hexdigest()


def save_crop_pack(path: str | Path, crops: np.ndarray, is_live: np.ndarray, *, region: float,
                   data: dict) -> Path:
    """Write ``crops`` ((N, S, S, 3) uint8 BGR, already cut to the central ``region`` of the
    aligned crop) with their labels and ``data`` record to ``path``; return the path."""
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[3] != 3 or len(crops) == 0:
        raise TeacherConfigError(f"a crop pack holds (N, S, S, 3) uint8 crops, got {crops.shape} "
                                 f"{crops.dtype}")
    if len(is_live) != len(crops):
        raise TeacherConfigError(f"{len(crops)} crops but {len(is_live)} labels")
    encoded = []
    for crop in crops:
        ok, buf = cv2.imencode(".webp", crop, _WEBP_LOSSLESS)
        if not ok:
            raise TeacherConfigError("OpenCV could not encode WebP; this OpenCV build lacks libwebp")
        encoded.append(buf.ravel())
    offsets = np.cumsum([0] + [len(b) for b in encoded]).astype(np.int64)
    meta = {"version": PACK_VERSION, "count": len(crops), "side": int(crops.shape[1]),
            "region": float(region), "pixels_sha256": _pixels_sha256(crops), "data": data}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # written beside it and renamed: an interrupted write leaves no half pack under the name a
    # GPU slot would upload, and processes of one 'accelerate launch' each writing it do not
    # interleave their bytes (the last complete file wins)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, blob=np.concatenate(encoded), offsets=offsets,
                     is_live=np.asarray(is_live, bool),
                     meta=np.frombuffer(json.dumps(meta).encode(), np.uint8))
        os.chmod(tmp, 0o644)   # mkstemp's file is owner-only; a pack is meant to be copied around
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_crop_pack(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """(crops, is_live, meta) of a pack written by :func:`save_crop_pack`, checked pixel for pixel."""
    path = Path(path)
    if not path.is_file():
        raise TeacherConfigError(f"crop pack {path} not found (write one with "
                                 "`edgefas teacher ... --save-pack`)")
    try:
        with np.load(path, allow_pickle=False) as z:
            blob, offsets, is_live = z["blob"], z["offsets"], z["is_live"]
            meta = json.loads(z["meta"].tobytes().decode())
    except (OSError, ValueError, KeyError) as e:
        raise TeacherConfigError(f"{path} is not an edgefas crop pack: {e}") from None
    if meta.get("version") != PACK_VERSION:
        raise TeacherConfigError(f"{path}: crop pack version {meta.get('version')}, this edgefas reads "
                                 f"{PACK_VERSION}")
    side = meta["side"]
    crops = np.empty((meta["count"], side, side, 3), np.uint8)
    for i in range(meta["count"]):
        img = cv2.imdecode(blob[offsets[i]:offsets[i + 1]], cv2.IMREAD_COLOR)
        if img is None or img.shape != (side, side, 3):
            raise TeacherConfigError(f"{path}: crop {i} does not decode to a {side} px colour image")
        crops[i] = img
    if _pixels_sha256(crops) != meta["pixels_sha256"]:
        raise TeacherConfigError(f"{path}: decoded pixels differ from the packed ones (corrupt pack, or "
                                 "an OpenCV whose WebP decoder is not lossless)")
    return crops, is_live.astype(bool), meta
