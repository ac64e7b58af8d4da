"""Model bundles: a folder with ``manifest.json`` and the files it lists, each with a sha256.

A bundle is everything a Detector needs: the face detector, the classifier (per backend
format), the preprocessing contract, the face policy, the decision threshold with the split
and criterion that chose it, the score calibration, the training data and licences, and the
metrics with their counts. :func:`load_bundle` re-hashes every listed file and refuses the
bundle if one is missing or changed. Weights are ONNX or safetensors, never pickles.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import BundleError
from .runtime.face_stage import FacePolicy
from .runtime.preprocess import Contract

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
#: File suffixes a bundle may hold. Pickle-based formats (.pt, .pth, .pkl, .ckpt) are refused.
ALLOWED_SUFFIXES = {".onnx", ".safetensors", ".json", ".md", ".txt", ".tflite", ".xml", ".bin",
                    ".mlpackage", ".mlmodel", ".engine", ".plan"}  # .mlmodel: inside .mlpackage


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A verified bundle folder and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def contract(self) -> Contract:
        return Contract.from_dict(self.manifest["preprocess"])

    @property
    def face_policy(self) -> FacePolicy:
        return FacePolicy.from_dict(self.manifest["face_policy"])

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"]["value"])

    @property
    def calibration(self) -> dict[str, Any]:
        return self.manifest["calibration"]

    def model_file(self, role: str, file_key: str) -> Path:
        """The file of model ``role`` ("face_detector", "classifier") in format ``file_key``."""
        try:
            rel = self.manifest["models"][role][file_key]
        except KeyError:
            have = sorted(self.manifest.get("models", {}).get(role, {}))
            target, _, precision = file_key.partition("_")
            hint = (f"; make one with 'edgefas export {self.path} --target {target} --precision "
                    f"{precision} --out NEW_BUNDLE'" if role == "classifier" and precision else "")
            raise BundleError(f"bundle {self.name!r} has no {file_key!r} file for {role!r} "
                              f"(it has: {', '.join(have) or 'none'}){hint}") from None
        return self.path / rel


def default_bundle_path() -> Path:
    """The bundle shipped inside the package."""
    return Path(str(resources.files("edgefas") / "bundles" / "default"))


#: sha256 of the shipped bundle's manifest.json, kept beside the bundle (not inside it): the
#: manifest hashes every other file, and this pin covers the manifest itself (threshold,
#: calibration, contract), so an edited copy of the shipped bundle is refused.
DEFAULT_MANIFEST_PIN = "default.manifest.sha256"


def manifest_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a bundle's manifest.json: pin it in your app to refuse edited bundles."""
    return sha256_file(Path(path) / MANIFEST)


def load_bundle(path: str | os.PathLike[str] | None = None, *, verify: bool = True,
                manifest_sha256: str | None = None) -> Bundle:
    """Read a bundle's manifest and check every file it lists against its sha256.

    Args:
        path: the bundle folder; None loads the default bundle shipped with edgefas.
        verify: re-hash the files (a few ms for a few MB). Turn off only for trusted copies.
        manifest_sha256: the expected sha256 of manifest.json (see :func:`manifest_sha256`);
            the shipped bundle is always checked against its own pin.

    Raises:
        BundleError: no manifest, a malformed manifest, an edited manifest (when pinned), or
            a missing or changed file.

    Example:
        >>> from edgefas.bundle import load_bundle
        >>> b = load_bundle()
        >>> b.contract.size
        128
    """
    root = Path(path) if path is not None else default_bundle_path()
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise BundleError(f"{root} is not a bundle: no {MANIFEST} in it")
    pin = manifest_sha256
    if pin is None and root.resolve() == default_bundle_path().resolve():
        pin = (default_bundle_path().parent / DEFAULT_MANIFEST_PIN).read_text().split()[0]
    got = sha256_file(mpath) if pin is not None else None
    if got is not None and got != pin:
        raise BundleError(f"bundle {root}: {MANIFEST} is not the pinned one (sha256 "
                          f"{got[:12]}... != {pin[:12]}...); its threshold, calibration "
                          "or file list was edited. Restore the bundle or pin the new manifest.")
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath} is not valid JSON: {exc}") from exc
    for key in ("schema_version", "name", "files", "models", "preprocess", "face_policy",
                "threshold", "calibration"):
        if key not in manifest:
            raise BundleError(f"{mpath} lacks the required key {key!r}")
    if manifest["schema_version"] > SCHEMA_VERSION:
        raise BundleError(f"{mpath} has schema {manifest['schema_version']}; this edgefas "
                          f"reads up to {SCHEMA_VERSION}: upgrade edgefas")
    if verify:
        for rel, info in manifest["files"].items():
            f = root / rel
            if not f.is_file():
                raise BundleError(f"bundle {root} is incomplete: {rel} is missing")
            digest = sha256_file(f)
            if digest != info["sha256"]:
                raise BundleError(
                    f"bundle {root}: {rel} does not match its manifest (sha256 {digest[:12]}... "
                    f"!= {info['sha256'][:12]}...); the file was changed or corrupted. "
                    "Restore it or re-create the bundle.")
    return Bundle(root, manifest)


def write_manifest(root: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Hash every file in ``root`` (except the manifest) into ``manifest["files"]`` and
    write ``manifest.json`` atomically. Refuses pickle-type files."""
    root = Path(root)
    files = {}
    for f in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST):
        if f.suffix not in ALLOWED_SUFFIXES:
            raise BundleError(f"{f.name}: {f.suffix} files may not go in a bundle "
                              f"(allowed: {', '.join(sorted(ALLOWED_SUFFIXES))})")
        files[f.relative_to(root).as_posix()] = {"sha256": sha256_file(f),
                                                 "bytes": f.stat().st_size}
    manifest = {"schema_version": SCHEMA_VERSION, **manifest, "files": files}
    fd, tmp = tempfile.mkstemp(dir=root, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a bundle is meant to be shared
    os.replace(tmp, root / MANIFEST)
    return root / MANIFEST
