"""Finding the image files under a folder, the same way for every command.

``detect``, ``eval --folder``, ``calibrate`` and ``watch`` all take folders of captures. They
used to list them each on their own, with different suffix sets and with ``Path.rglob``, which
does not enter symlinked sub-folders: a capture tree assembled with symlinks lost whole attack
species without a word. Here symlinked folders are followed (each real folder once, so a link
loop ends) and one suffix set applies everywhere.
"""
from __future__ import annotations

import os
from pathlib import Path

#: what OpenCV decodes and cameras or phones save
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


def is_image_name(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def find_images(root: str | os.PathLike[str], *, recursive: bool = True) -> list[Path]:
    """Image files under ``root`` (sorted), following symlinked folders; [] for a non-folder."""
    root = Path(root)
    if not root.is_dir():
        return []
    if not recursive:
        return sorted(f for f in root.iterdir() if f.is_file() and is_image_name(f))
    out: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:      # a symlink loop, or two links to one folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        out += [Path(folder) / f for f in files if is_image_name(f)]
    return sorted(out)


def suffix_list() -> str:
    return ", ".join(sorted(IMAGE_SUFFIXES))
