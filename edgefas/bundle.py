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
from pathlib import Path, PurePosixPath
from typing import Any

from .checks import is_finite_number, is_whole_number
from .errors import BundleError
from .runtime.face_align import TEMPLATE_NAME
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
            entries = self.manifest.get("models", {}).get(role, {})
            files = self.manifest.get("files", {})
            # only the entries that name files (not "arch", "input", ...)
            have = sorted(k for k, v in entries.items() if isinstance(v, str) and (
                v in files or any(f.startswith(v.rstrip("/") + "/") for f in files)))
            target, _, precision = file_key.partition("_")
            hint = (f"; make one with 'edgefas export {self.path} --target {target} --precision "
                    f"{precision} --out NEW_BUNDLE'" if role == "classifier" and precision else "")
            raise BundleError(f"bundle {self.name!r} has no {file_key!r} file for {role!r} "
                              f"(it has: {', '.join(have) or 'none'}){hint}") from None
        files = self.manifest["files"]
        # every model file must be one the manifest hashes (load_bundle checked those): a path
        # outside that list, or outside the folder, would be loaded unchecked
        if not _inside(rel) or not (rel in files or any(f.startswith(rel.rstrip("/") + "/")
                                                        for f in files)):
            raise BundleError(f"bundle {self.name!r}: {role} file {rel!r} ({file_key}) is not one "
                              "of the bundle's hashed files")
        return self.path / rel


def default_bundle_path() -> Path:
    """The bundle shipped inside the package."""
    return Path(str(resources.files("edgefas") / "bundles" / "default"))


#: sha256 of the shipped bundle's manifest.json, kept beside the bundle (not inside it): the
#: manifest hashes every other file, and this pin covers the manifest itself (threshold,
#: calibration, contract), so an edited copy of the shipped bundle is refused.
DEFAULT_MANIFEST_PIN = "default.manifest.sha256"


def is_default_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is the bundle shipped inside edgefas (whose manifest is pinned, so
    nothing may rewrite it in place)."""
    return Path(path).resolve() == default_bundle_path().resolve()


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
    if pin is None and is_default_bundle(root):
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
    if not isinstance(manifest, dict):
        raise BundleError(f"{mpath} holds a JSON {type(manifest).__name__}, not an object")
    for key in ("schema_version", "name", "files", "models", "preprocess", "face_policy",
                "threshold", "calibration"):
        if key not in manifest:
            raise BundleError(f"{mpath} lacks the required key {key!r}")
    version = manifest["schema_version"]
    if not is_whole_number(version, 1):
        raise BundleError(f"{mpath}: schema_version must be a whole number >= 1, got {version!r}")
    if version > SCHEMA_VERSION:
        raise BundleError(f"{mpath} has schema {version}; this edgefas "
                          f"reads up to {SCHEMA_VERSION}: upgrade edgefas")
    check_manifest_values(manifest, mpath)
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


def _inside(rel: object) -> bool:
    """A relative path that stays inside the bundle folder."""
    if not isinstance(rel, str) or not rel:
        return False
    p = PurePosixPath(rel)
    return not p.is_absolute() and ".." not in p.parts and "\\" not in rel


def check_manifest_values(manifest: dict[str, Any], mpath: Path | str = MANIFEST) -> None:
    """Refuse a manifest whose values the Detector cannot use, with the field that is wrong.

    A hand-edited or generated manifest can have every key and still hold a NaN threshold, a
    zero std or a model file outside the hashed list: each would load and then raise on
    every frame, or silently give wrong answers. Raises BundleError.
    """
    def bad(what: str) -> BundleError:
        return BundleError(f"{mpath}: {what}")

    files = manifest["files"]
    if not isinstance(files, dict):
        raise bad("'files' must map file names to their sha256")
    for rel, info in files.items():
        if not _inside(rel):
            raise bad(f"file {rel!r} is not a path inside the bundle")
        digest = info.get("sha256") if isinstance(info, dict) else None
        if not (isinstance(digest, str) and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)):
            raise bad(f"file {rel!r} has no sha256 (64 hex digits)")
    models = manifest["models"]
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise bad("'models' must map each role to its files per format")
    thr = manifest["threshold"]
    if not isinstance(thr, dict) or not is_finite_number(thr.get("value")) or not 0 <= thr["value"] <= 1:
        raise bad(f"threshold.value must be a number in [0, 1], got "
                  f"{thr.get('value') if isinstance(thr, dict) else thr!r}")
    cal = manifest["calibration"]
    if not isinstance(cal, dict) or not (is_finite_number(cal.get("a")) and is_finite_number(cal.get("b"))):
        raise bad("calibration needs finite numbers 'a' and 'b' (live = sigmoid(a * logit + b))")
    pre, pol = manifest["preprocess"], manifest["face_policy"]
    if not isinstance(pre, dict) or not isinstance(pol, dict):
        raise bad("'preprocess' and 'face_policy' must be objects")
    missing = [k for k in ("size", "crop_scale", "template", "color_order", "value_range", "mean",
                           "std", "layout") if k not in pre]
    if missing:  # the contract is what the model was trained on: no field may fall to a default
        raise bad(f"preprocess lacks {', '.join(missing)}")
    try:
        c = Contract.from_dict(pre)
        policy = FacePolicy.from_dict(pol)
    except (TypeError, ValueError) as exc:
        raise bad(f"preprocess or face_policy: {exc}") from None
    if not (is_whole_number(c.size, 16) and c.size <= 1024):
        raise bad(f"preprocess.size must be a whole number of pixels in [16, 1024], got {c.size!r}")
    if not (is_finite_number(c.crop_scale) and 0.5 <= c.crop_scale <= 8):
        raise bad(f"preprocess.crop_scale must be in [0.5, 8], got {c.crop_scale!r}")
    if c.template != TEMPLATE_NAME:
        raise bad(f"preprocess.template {c.template!r} is not one this edgefas aligns to "
                  f"({TEMPLATE_NAME})")
    if c.color_order not in ("rgb", "bgr"):
        raise bad(f"preprocess.color_order must be 'rgb' or 'bgr', got {c.color_order!r}")
    if c.layout not in ("NCHW", "NHWC"):
        raise bad(f"preprocess.layout must be 'NCHW' or 'NHWC', got {c.layout!r}")
    triples = (c.value_range, c.mean, c.std)
    if not (len(c.value_range) == 2 and len(c.mean) == 3 and len(c.std) == 3
            and all(is_finite_number(v) for t in triples for v in t) and all(v != 0 for v in c.std)
            and c.value_range[0] != c.value_range[1]):
        raise bad("preprocess needs value_range (2 numbers, not equal), mean and std (3 finite "
                  "numbers each, std non-zero)")
    for name, value in policy.to_dict().items():
        if not is_finite_number(value) or value < 0:
            raise bad(f"face_policy.{name} must be a non-negative number, got {value!r}")


def check_bundle_files(root: str | os.PathLike[str]) -> list[Path]:
    """The files of bundle folder ``root`` the manifest lists (all but itself), sorted;
    refuses pickle-type and other unlisted kinds of file."""
    files = sorted(p for p in Path(root).rglob("*") if p.is_file() and p.name != MANIFEST)
    for f in files:
        if f.suffix not in ALLOWED_SUFFIXES:
            kind = f"{f.suffix} files" if f.suffix else "files without a suffix"
            raise BundleError(f"{f.relative_to(root)}: {kind} may not go in a bundle "
                              f"(allowed: {', '.join(sorted(ALLOWED_SUFFIXES))})")
    return files


def write_manifest(root: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    """Hash every file in ``root`` (except the manifest) into ``manifest["files"]`` and
    write ``manifest.json`` atomically. Refuses pickle-type files."""
    root = Path(root)
    if is_default_bundle(root):
        # every writer of a bundle comes through here: the shipped bundle's manifest is pinned,
        # and rewriting it would leave every Detector() refusing the installation's bundle
        raise BundleError(f"{root} is the bundle shipped inside edgefas: write a copy elsewhere")
    files = {f.relative_to(root).as_posix(): {"sha256": sha256_file(f), "bytes": f.stat().st_size}
             for f in check_bundle_files(root)}
    manifest = {"schema_version": SCHEMA_VERSION, **manifest, "files": files}
    fd, tmp = tempfile.mkstemp(dir=root, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(manifest, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a bundle is meant to be shared
    os.replace(tmp, root / MANIFEST)
    return root / MANIFEST
