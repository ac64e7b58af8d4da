"""Turn whatever the caller passed into a BGR uint8 frame, or say precisely why not.

Never raises for a bad *image*; raises :class:`InputTypeError` only for a wrong argument
type (a programming error). EXIF orientation is applied for encoded inputs (OpenCV's
``IMREAD_COLOR`` does it), so phone photos stored sideways arrive upright.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputTypeError

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


def _from_encoded(data: bytes) -> Decoded:
    if len(data) == 0:
        return _bad("empty input: 0 bytes")
    if len(data) > MAX_ENCODED_BYTES:
        return _bad(f"encoded image is {len(data)} bytes > {MAX_ENCODED_BYTES}")
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
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return _bad(f"file not found: {path}")
        except OSError as exc:  # a directory, a permission problem, ...
            return _bad(f"cannot read {path}: {exc.strerror or exc}")
        decoded = _from_encoded(data)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        decoded = _from_encoded(bytes(image))
    elif isinstance(image, np.ndarray):
        decoded = _from_array(image, color_order)
    else:
        raise InputTypeError(
            f"image must be a path, encoded bytes or a numpy array, got {type(image).__name__}")
    if decoded.image is not None:
        h, w = decoded.image.shape[:2]
        if max(h, w) > max_side_px:
            return _bad(f"image is {w}x{h}; the longest side allowed is {max_side_px} px")
        if _is_colourless(decoded.image):
            return _bad(GRAYSCALE_REASON)
    return decoded


GRAYSCALE_REASON = ("grayscale image: the model needs a colour frame (colour cues separate "
                    "screens and prints from faces); IR/mono cameras are not supported")


def _is_colourless(img: np.ndarray) -> bool:
    """True when all three channels are equal (a grey image stored as colour, e.g. a grey
    JPEG that OpenCV expands). Checked on a strided sample: cheap on any frame size."""
    sample = img[::4, ::4]
    return bool(np.array_equal(sample[..., 0], sample[..., 1])
                and np.array_equal(sample[..., 1], sample[..., 2]))
