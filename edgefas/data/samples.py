"""The one record every data loader yields."""
from __future__ import annotations

from dataclasses import asdict, dataclass

BONA_FIDE = "bona_fide"


@dataclass(frozen=True)
class Sample:
    """One image (or one frame of a video) with its labels.

    Attributes:
        path: image or video file.
        is_attack: True for a presentation attack, False for bona fide (live).
        species: attack species ("print", "mobile", "highdef", ...) or ``"bona_fide"``.
        split: the data set's own split ("train", "devel", "test") or a protocol's.
        dataset: "replay-attack", "lfw", "folder", ...
        subject: client or identity id (keeps splits subject-disjoint).
        video: the video this frame comes from (frames of one video are not independent).
        support: "fixed" / "hand" for Replay-Attack attacks, "" otherwise.
        lighting: "controlled" / "adverse" for Replay-Attack, "" otherwise.
        frame: frame index for videos read directly, -1 for image files.
    """

    path: str
    is_attack: bool
    species: str
    split: str
    dataset: str
    subject: str = ""
    video: str = ""
    support: str = ""
    lighting: str = ""
    frame: int = -1

    @property
    def key(self) -> str:
        """A unique id within a data set (path plus frame for video frames)."""
        return self.path if self.frame < 0 else f"{self.path}#{self.frame}"

    def to_dict(self) -> dict:
        return asdict(self)


def video_key(s: Sample) -> str:
    """The video a frame belongs to. Fixed and hand-held attacks share names: the support is
    part of a video's identity."""
    return f"{s.split}/{s.support}/{s.video}"
