"""Idiap Replay-Attack: the official release (videos) and trees of extracted frames.

Accepted layouts under ``root`` (found automatically):

* official: ``{train,devel,test}/{real,attack/fixed,attack/hand}/<video>.mov``; frames are
  read with OpenCV, ``frames_per_video`` evenly spaced ones per video;
* one frame per video, same tree with ``<video>.jpg`` (``frames_1frame/`` in shared/DATA.md);
* many frames per video: ``{split}/{split}__{label}__{support}__{video}/frame_NNNNN.jpg``
  (``frames/replay_attack/``).

Video names follow the official release: ``client003_session01_webcam_authenticate_adverse_1``
(bona fide) and ``attack_highdef_client003_session01_highdef_photo_adverse`` (species
``highdef``, lighting ``adverse``). Licence: Idiap EULA, research use only: never commit it.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DatasetError
from .samples import BONA_FIDE, Sample

SPLITS = ("train", "devel", "test")
SPECIES = ("print", "mobile", "highdef")
_ATTACK = re.compile(r"attack_(print|mobile|highdef)_(client\d+)_.*_(controlled|adverse)")
_REAL = re.compile(r"(client\d+)_.*_(controlled|adverse)")
VIDEO_SUFFIXES = (".mov", ".avi", ".mp4")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def parse_video_name(name: str) -> dict[str, str]:
    """Species, client and lighting from an official Replay-Attack video name."""
    m = _ATTACK.search(name)
    if m:
        return {"species": m.group(1), "subject": m.group(2), "lighting": m.group(3)}
    m = _REAL.search(name)
    if m:
        return {"species": BONA_FIDE, "subject": m.group(1), "lighting": m.group(2)}
    raise DatasetError(f"not a Replay-Attack video name: {name!r}")


def _sample(path: Path, video: str, split: str, support: str, frame: int = -1) -> Sample:
    meta = parse_video_name(video)
    is_attack = meta["species"] != BONA_FIDE
    return Sample(path=str(path), is_attack=is_attack, species=meta["species"], split=split,
                  dataset="replay-attack", subject=meta["subject"], video=video,
                  support=support if is_attack else "", lighting=meta["lighting"], frame=frame)


def _video_frame_count(path: Path) -> int:
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()


def load_replay_attack(root: str | Path, splits: tuple[str, ...] = SPLITS, *,
                       frames_per_video: int = 1) -> list[Sample]:
    """List the samples of a Replay-Attack tree (any layout above), sorted by path.

    Args:
        root: the folder holding ``train/``, ``devel/``, ``test/``.
        splits: which splits to list.
        frames_per_video: for the official videos only: how many evenly spaced frames.

    Raises:
        DatasetError: when ``root`` holds none of the known layouts.
    """
    root = Path(root).expanduser()
    out: list[Sample] = []
    for split in splits:
        sdir = root / split
        if not sdir.is_dir():
            raise DatasetError(f"{root} has no {split}/ folder: is it a Replay-Attack tree? "
                               "(expected train/, devel/, test/)")
        flat = sorted(d for d in sdir.iterdir() if d.is_dir() and d.name.startswith(f"{split}__"))
        if flat:  # many frames per video
            for d in flat:
                parts = d.name.split("__", 3)
                if len(parts) != 4:
                    raise DatasetError(f"{d}: not a <split>__<label>__<support>__<video> folder "
                                       "of the Replay-Attack frame tree")
                _, _label, support, video = parts
                for f in sorted(d.iterdir()):
                    if f.suffix.lower() in IMAGE_SUFFIXES:
                        out.append(_sample(f, video, split, support))
            continue
        # The official tree has real/; some frame dumps add a support level: real/none/.
        for sub, support in (("real", ""), ("real/none", ""), ("attack/fixed", "fixed"),
                             ("attack/hand", "hand")):
            folder = sdir / sub
            if not folder.is_dir():
                continue
            for f in sorted(folder.iterdir()):
                suffix = f.suffix.lower()
                if suffix in IMAGE_SUFFIXES:
                    out.append(_sample(f, f.stem, split, support))
                elif suffix in VIDEO_SUFFIXES:
                    n = _video_frame_count(f)
                    step = max(n // frames_per_video, 1)
                    for i in range(min(frames_per_video, max(n, 1))):
                        out.append(_sample(f, f.stem, split, support, frame=i * step + step // 2))
    if not out:
        raise DatasetError(f"no Replay-Attack images or videos found under {root}")
    return out
