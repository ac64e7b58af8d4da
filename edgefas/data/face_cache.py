"""A cache of aligned face crops, built once per data set and preprocessing contract.

Crops are made by the runtime's own :class:`FaceStage`, so training sees exactly what the
Detector will. The cache is a folder of ``chunk_NNNNN.npz`` files (uint8 crops, status and face
score per sample, and the sample keys they belong to); a chunk is written atomically and
skipped on the next run when its keys match, so an interrupted build resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..runtime.decode import decode_image
from ..runtime.face_align import ALIGN_VERSION
from ..runtime.face_stage import FaceStage
from .samples import Sample

#: Status stored per sample: "ok", or the Decision value that stopped it.
OK = "ok"


def cache_root() -> Path:
    """Where edgefas keeps what it can rebuild: ``$EDGEFAS_CACHE``, else ~/.cache/edgefas."""
    return Path(os.environ.get("EDGEFAS_CACHE", Path.home() / ".cache" / "edgefas"))


def default_cache_dir() -> Path:
    return cache_root() / "crops"


def file_stat(path: str) -> list[int] | None:
    """[size, mtime_ns] of a file, or None when it cannot be read: what a cache compares to
    notice a file changed since it was cached."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def read_sample(sample: Sample) -> np.ndarray | None:
    """The sample's frame as BGR uint8 (a video frame when ``sample.frame >= 0``)."""
    if sample.frame < 0:
        return decode_image(sample.path).image
    cap = cv2.VideoCapture(sample.path)
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, sample.frame)
        ok, frame = cap.read()
    finally:
        cap.release()
    return frame if ok else None


@dataclass
class CropSet:
    """Aligned crops of a list of samples; ``status[i] == "ok"`` where a face was scored."""

    samples: list[Sample]
    crops: np.ndarray        # (N, S, S, 3) uint8 BGR; zeros where no face was found
    status: np.ndarray       # (N,) str
    face_score: np.ndarray   # (N,) float32, 0 where no face

    @property
    def ok(self) -> np.ndarray:
        return self.status == OK

    def subset(self, mask: np.ndarray | Sequence[bool]) -> CropSet:
        mask = np.asarray(mask, bool)
        return CropSet([s for s, m in zip(self.samples, mask) if m], self.crops[mask],
                       self.status[mask], self.face_score[mask])

    def __len__(self) -> int:
        return len(self.samples)


def concat_crops(*sets: CropSet) -> CropSet:
    """One CropSet of several (same crop size), in order."""
    return CropSet([s for cs in sets for s in cs.samples], np.concatenate([cs.crops for cs in sets]),
                   np.concatenate([cs.status for cs in sets]),
                   np.concatenate([cs.face_score for cs in sets]))


def _crop_one(stage: FaceStage, sample: Sample) -> tuple[np.ndarray | None, str, float]:
    img = read_sample(sample)
    if img is None:
        return None, "bad_input", 0.0
    outcome = stage.find(img)  # the cache's stage never has far_faces on
    if outcome.face is None or outcome.decision is not None:
        return None, outcome.decision.value if outcome.decision else "no_face", 0.0
    outcome = stage.align(img, outcome)
    status = outcome.decision.value if outcome.decision is not None else OK
    return outcome.alignment.crop, status, outcome.face.score


def cache_key(stage: FaceStage, detector_sha: str) -> str:
    """Crops depend on the detector, the crop geometry, the alignment code and the policy
    (which decides each sample's status), so all of them name the cache folder."""
    policy = hashlib.sha1(json.dumps(stage.policy.to_dict(), sort_keys=True).encode())
    return (f"{stage.size}px_x{stage.crop_scale:g}_a{ALIGN_VERSION}_{detector_sha[:10]}"
            f"_{policy.hexdigest()[:8]}")


def build_crops(samples: Sequence[Sample], stage: FaceStage, folder: str | Path, *,
                chunk_size: int = 512, progress: bool = True, desc: str = "aligning faces"
                ) -> CropSet:
    """Crop every sample (or load the chunks already built) and return them all.

    Args:
        samples: what to crop, in a fixed order (chunks are keyed by it).
        stage: the face stage (detector, policy, crop size and scale).
        folder: this data set's cache folder, e.g. ``default_cache_dir() / key / "replay"``.
        chunk_size: samples per chunk file; the unit of resume.
        progress: show a tqdm progress bar.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = stage.size
    crops = np.zeros((len(samples), s, s, 3), np.uint8)
    status = np.empty(len(samples), dtype=object)
    score = np.zeros(len(samples), np.float32)
    bar = tqdm(total=len(samples), desc=desc, unit="img", disable=not progress)
    for start in range(0, len(samples), chunk_size):
        part = samples[start:start + chunk_size]
        # the files' sizes and times join their names: an image replaced under the same name
        # (re-captured, fixed, corrupted) is cropped again, not served from the old crop
        keys = [[p.key, file_stat(p.path)] for p in part]
        digest = hashlib.sha1(json.dumps(keys).encode()).hexdigest()[:16]
        f = folder / f"chunk_{start // chunk_size:05d}_{digest}.npz"
        if f.is_file():
            with np.load(f, allow_pickle=False) as z:
                c, st, sc = z["crops"], z["status"].astype(object), z["face_score"]
        else:
            c = np.zeros((len(part), s, s, 3), np.uint8)
            st = np.empty(len(part), dtype=object)
            sc = np.zeros(len(part), np.float32)
            for i, smp in enumerate(part):
                crop, st[i], sc[i] = _crop_one(stage, smp)
                if crop is not None:
                    c[i] = crop
                bar.update(1)
            # one temporary file per process: under a multi-process launch every process crops
            # and writes the same chunk, and a shared name let one rename the other's half-written file
            tmp = f.with_suffix(f".{os.getpid()}.tmp.npz")
            try:
                np.savez(tmp, crops=c, status=st.astype(str), face_score=sc)
                os.replace(tmp, f)
            except BaseException:
                # Ctrl-C or a full disk mid-write: no half-written chunk left behind
                tmp.unlink(missing_ok=True)
                raise
        crops[start:start + len(part)] = c
        status[start:start + len(part)] = st
        score[start:start + len(part)] = sc
        if f.is_file() and bar.n < start + len(part):
            bar.update(start + len(part) - bar.n)
    bar.close()
    return CropSet(list(samples), crops, status.astype(str), score)
