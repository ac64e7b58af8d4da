"""Where the data sets live on this machine, and their aligned crops for a given bundle.

Roots come from arguments, or from ``EDGEFAS_DATA`` (default ``~/.cache/edgefas/datasets``)
with the sub-folders named in shared/DATA.md. Nothing here downloads anything.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError
from ..runtime.face_stage import FaceStage
from .face_cache import CropSet, build_crops, cache_key, default_cache_dir
from .folder import load_live_faces
from .image_files import find_images
from .lfw import load_lfw
from .other_sets import load_cfd, load_essex, load_nuaa
from .replay_attack import load_replay_attack
from .samples import BONA_FIDE, Sample

#: ``--extra-live`` value naming the Chicago Face Database (any other value is a path)
EXTRA_LIVE_CFD = "cfd"


def data_root() -> Path:
    return Path(os.environ.get("EDGEFAS_DATA", Path.home() / ".cache" / "edgefas" / "datasets"))


@dataclass(frozen=True)
class DataRoots:
    """Folders of the data sets; a None entry is looked up under :func:`data_root`."""

    replay_frames: Path | None = None   # 20 frames per video tree
    replay_1frame: Path | None = None   # 1 frame per video tree
    lfw: Path | None = None
    london: Path | None = None          # shared/fixtures/london
    nuaa: Path | None = None            # NUAA Photograph Imposter Database (P5)
    essex: Path | None = None           # Essex faces94 subset (P5)
    cfd: Path | None = None             # Chicago Face Database (extra bona fide training faces)

    def resolve(self) -> DataRoots:
        base = data_root()
        return DataRoots(
            self.replay_frames or base / "replay-attack" / "frames" / "replay_attack",
            self.replay_1frame or base / "replay-attack" / "frames_1frame",
            self.lfw or base / "lfw-src" / "Assignment3" / "lfw",
            self.london or find_shared_fixture("london"),
            self.nuaa or base / "nuaa",
            self.essex or base / "essex-faces94",
            self.cfd or base / "cfd",
        )


def find_shared_fixture(name: str) -> Path | None:
    """A folder of ../shared/fixtures (or $EDGEFAS_SHARED/fixtures), or None."""
    env = os.environ.get("EDGEFAS_SHARED")
    candidates = [Path(env)] if env else []
    here = Path.cwd()
    candidates += [p / "shared" for p in (here, *here.parents)][:4]
    candidates += [p.parent / "shared" for p in (here, *here.parents)][:4]
    for c in candidates:
        if (c / "fixtures" / name).is_dir():
            return c / "fixtures" / name
    return None


def load_london(root: Path) -> list[Sample]:
    """The london fixture portraits: all bona fide, identity before the ``_``."""
    out = []
    for f in (p for p in find_images(root) if p.suffix.lower() in (".jpg", ".jpeg")):
        out.append(Sample(str(f), False, BONA_FIDE, "unseen", "london",
                          subject=f"{f.parent.name}/{f.stem.split('_')[0]}"))
    if not out:
        raise DatasetError(f"no images under {root}")
    return out


class CropStore:
    """Builds (once) and returns aligned crops of each data set for one face stage."""

    def __init__(self, stage: FaceStage, detector_sha: str, roots: DataRoots | None = None,
                 cache_dir: Path | None = None, progress: bool = True) -> None:
        self.stage = stage
        self.roots = (roots or DataRoots()).resolve()
        self.folder = (cache_dir or default_cache_dir()) / cache_key(stage, detector_sha)
        self.progress = progress

    def _build(self, name: str, samples: list[Sample]) -> CropSet:
        return build_crops(samples, self.stage, self.folder / name, progress=self.progress,
                           desc=f"aligning {name}")

    def replay(self, *, frames: str = "20") -> CropSet:
        """Replay-Attack crops, all splits; ``frames`` is "20" (per video) or "1"."""
        root = self.roots.replay_frames if frames == "20" else self.roots.replay_1frame
        if root is None or not Path(root).is_dir():
            option = "--replay-root" if frames == "20" else "--replay-1frame-root"
            raise DatasetError(f"Replay-Attack tree not found at {root}; see shared/DATA.md "
                               f"or pass {option}")
        return self._build(f"replay_{frames}f", load_replay_attack(root))

    def lfw(self) -> CropSet:
        if self.roots.lfw is None or not Path(self.roots.lfw).is_dir():
            raise DatasetError(f"LFW not found at {self.roots.lfw}; pass --lfw-root")
        return self._build("lfw", load_lfw(self.roots.lfw))

    def london(self) -> CropSet:
        if self.roots.london is None:
            raise DatasetError("london fixtures not found (set EDGEFAS_SHARED to shared/)")
        return self._build("london", load_london(Path(self.roots.london)))

    def nuaa(self) -> CropSet:
        """NUAA's test part (session 03)."""
        return self._build("nuaa_test", load_nuaa(self.roots.nuaa))

    def essex(self) -> CropSet:
        return self._build("essex", load_essex(self.roots.essex))

    def extra_live(self, spec: str) -> CropSet:
        """Bona fide faces of another source for training (the recipe's ``extra_live``):
        ``"cfd"`` for the Chicago Face Database under its root, or a user's folder or CSV
        (:func:`~edgefas.data.folder.load_live_faces`)."""
        if spec == EXTRA_LIVE_CFD:
            return self._build("cfd", load_cfd(self.roots.cfd))
        return self.path_set("live", spec, load_live_faces(spec))

    def samples_set(self, name: str, samples: list[Sample]) -> CropSet:
        """Crops of any list of samples, cached under ``name`` (e.g. the silentface fixtures)."""
        return self._build(name, samples)

    def labelled_set(self, path: str | Path, samples: list[Sample], split: str, *, minimum: int,
                     purpose: str) -> CropSet:
        """Usable crops of a user's labelled captures (``edgefas finetune --train/--devel``,
        ``edgefas export --devel``), refused with fewer than ``minimum`` faces of a class.
        Cached as ``finetune_<split>``, so an export gated on a fine-tune's devel captures
        finds them cropped."""
        crops = self.path_set(f"finetune_{split}", path, samples, suffix=f":{split}")
        crops = crops.subset(crops.ok)
        n_att = sum(s.is_attack for s in crops.samples)
        n_live = len(crops) - n_att
        if min(n_live, n_att) < minimum:
            raise DatasetError(f"--{split} {path}: {n_live} live and {n_att} attack captures with "
                               f"a usable face; {purpose} needs at least {minimum} of each")
        return crops

    def path_set(self, kind: str, path: str | Path, samples: list[Sample], suffix: str = "") -> CropSet:
        """Crops of a user's data at ``path``, cached under ``<kind>_<tag>``: the tag is a hash
        of the resolved path (and ``suffix``, e.g. the CSV split read), so the same folder given
        from another working folder finds its crops."""
        import hashlib

        key = f"{Path(path).expanduser().resolve()}{suffix}"
        return self._build(f"{kind}_{hashlib.sha1(key.encode()).hexdigest()[:10]}", samples)
