"""Turn whatever the caller passed into a BGR uint8 frame, or say precisely why not.

Never raises for a bad *image*; raises :class:`InputTypeError` only for a wrong argument
type (a programming error). EXIF orientation is applied for encoded inputs (OpenCV's
``IMREAD_COLOR`` does it), so phone photos stored sideways arrive upright.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputTypeError
from .image_header import header_size

#: Larger frames are refused rather than silently downscaled: a 10000x10000 frame is
#: almost certainly a mistake on a kiosk, and decoding it costs 300 MB.
DEFAULT_MAX_SIDE_PX = 8192
#: Encoded files above this size are not even decoded.
MAX_ENCODED_BYTES = 64 * 1024 * 1024

ImageInput = "str | os.PathLike[str] | bytes | bytearray | memoryview | np.ndarray"


@dataclass(frozen=True)
class Decoded:
    """A decoded frame (``image`` is HxWx3 uint8 BGR) or the reason it could not be used."""

    image: np.ndarray | None
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.image is not None


def _bad(reason: str) -> Decoded:
    return Decoded(None, (reason,))


def _from_encoded(data: bytes, max_side_px: int) -> Decoded:
    if len(data) == 0:
        return _bad("empty input: 0 bytes")
    if len(data) > MAX_ENCODED_BYTES:
        return _bad(f"encoded image is {len(data)} bytes > {MAX_ENCODED_BYTES}")
    size = header_size(data)
    if size is not None and max(size) > max_side_px:
        # refused before decoding: a small file can declare a huge frame (decompression bomb)
        return _bad(f"image is {size[0]}x{size[1]} (from its header); the longest side allowed "
                    f"is {max_side_px} px")
    buf = np.frombuffer(data, dtype=np.uint8)
    # IMREAD_UNCHANGED would keep alpha and 16-bit depth but skips EXIF rotation; the
    # detector needs upright 8-bit colour, which IMREAD_COLOR gives (grey is expanded).
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if img is None:
        return _bad("could not decode the bytes as an image (corrupt or unsupported format)")
    return Decoded(img)


def _from_array(arr: np.ndarray, color_order: str) -> Decoded:
    if arr.size == 0 or 0 in arr.shape:
        return _bad(f"empty array of shape {arr.shape}")
    if arr.dtype != np.uint8:
        return _bad(f"array dtype is {arr.dtype}; expected uint8 0-255 (convert with "
                    "np.clip(x * 255, 0, 255).astype(np.uint8) if it is a 0-1 float image)")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        return _bad(f"array of shape {arr.shape}: {GRAYSCALE_REASON}")
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        return _bad(f"array shape {arr.shape}; expected HxWx3 (or HxWx4 with alpha)")
    reasons: tuple[str, ...] = ()
    if arr.shape[2] == 4:
        arr = arr[:, :, :3]
        reasons = ("alpha channel dropped",)
    if color_order == "rgb":
        arr = arr[:, :, ::-1]
    return Decoded(np.ascontiguousarray(arr), reasons)


def decode_image(image: object, *, color_order: str = "bgr",
                 max_side_px: int = DEFAULT_MAX_SIDE_PX) -> Decoded:
    """Decode a path, encoded bytes or an array into an HxWx3 uint8 BGR frame.

    Args:
        image: a file path (``str`` or ``os.PathLike``), encoded image bytes (JPEG, PNG, ...),
            or an HxWx3 / HxWx4 uint8 array.
        color_order: channel order of an array input, ``"bgr"`` (OpenCV) or ``"rgb"``
            (PIL, imageio, browsers). Ignored for paths and bytes.
        max_side_px: frames with a longer side are refused.

    Returns:
        :class:`Decoded`; ``image`` is None and ``reasons`` says why for unusable input.

    Raises:
        InputTypeError: for an argument that is not a path, bytes or numpy array, or an
            unknown ``color_order``.
    """
    if color_order not in ("bgr", "rgb"):
        raise InputTypeError(f"color_order must be 'bgr' or 'rgb', got {color_order!r}")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        data_or_bad = _read_file(path)
        if isinstance(data_or_bad, Decoded):
            return data_or_bad
        decoded = _from_encoded(data_or_bad, max_side_px)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        decoded = _from_encoded(bytes(image), max_side_px)
    elif isinstance(image, np.ndarray):
        decoded = _from_array(image, color_order)
    else:
        raise InputTypeError(
            f"image must be a path, encoded bytes or a numpy array, got {type(image).__name__}")
    if decoded.image is not None:
        h, w = decoded.image.shape[:2]
        if max(h, w) > max_side_px:
            return _bad(f"image is {w}x{h}; the longest side allowed is {max_side_px} px")
        sample = decoded.image[::4, ::4]   # a strided sample: cheap on any frame size
        if _is_colourless(sample):
            if _is_blank(sample):
                # a colour camera's covered lens, start-up or blown-out frame: no face to find,
                # not a grey camera; scored on (it comes back no_face) with the reason said
                return Decoded(decoded.image, decoded.reasons + (BLANK_REASON,))
            return _bad(GRAYSCALE_REASON)
    return decoded


def _read_file(path: Path) -> bytes | Decoded:
    """The bytes of ``path``, or a bad Decoded: checked with stat first, so a huge file, a pipe
    or a device is refused without reading it (reading a FIFO would block for ever)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return _bad(f"file not found: {path}")
    except (OSError, ValueError) as exc:  # permission, a name too long, an embedded NUL byte
        return _bad(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return _bad(f"cannot read {path}: {kind}")
    if st.st_size > MAX_ENCODED_BYTES:
        return _bad(f"encoded image is {st.st_size} bytes > {MAX_ENCODED_BYTES}")
    try:
        with open(path, "rb") as f:
            return f.read(MAX_ENCODED_BYTES + 1)  # a file that grew since stat is still capped
    except OSError as exc:
        return _bad(f"cannot read {path}: {exc.strerror or exc}")


GRAYSCALE_REASON = ("grayscale image: the model needs a colour frame (colour cues separate "
                    "screens and prints from faces); IR/mono cameras are not supported")


BLANK_REASON = ("blank frame: every pixel has about the same grey level (lens covered, camera "
                "starting up, or over-exposed)")
#: a frame whose sampled grey levels span at most this many levels counts as blank
BLANK_SPAN = 4


def _is_blank(sample: np.ndarray) -> bool:
    """True when a colourless frame's sampled grey levels span at most BLANK_SPAN."""
    grey = sample[..., 0]
    return int(grey.max()) - int(grey.min()) <= BLANK_SPAN


def _is_colourless(sample: np.ndarray) -> bool:
    """True when all three channels of the sampled frame are equal (a grey image stored as
    colour, e.g. a grey JPEG that OpenCV expands)."""
    return bool(np.array_equal(sample[..., 0], sample[..., 1])
                and np.array_equal(sample[..., 1], sample[..., 2]))
