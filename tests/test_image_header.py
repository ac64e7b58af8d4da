"""Encoded images' sizes read from their headers, before decoding (edgefas.runtime.image_header)."""
from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from edgefas.runtime.image_header import header_size

IMG = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext, params", [
    (".jpg", []), (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".png", []),
    (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
    (".bmp", []), (".tiff", []),
])
def test_header_size_of_what_opencv_writes(ext, params):
    ok, buf = cv2.imencode(ext, IMG, params)
    assert ok and header_size(buf.tobytes()) == (53, 37)


def test_gif_big_endian_tiff_and_top_down_bmp_headers():
    assert header_size(b"GIF89a" + struct.pack("<HH", 640, 480) + b"\x00" * 8) == (640, 480)
    ifd = struct.pack(">H", 2) + struct.pack(">HHII", 256, 4, 1, 7000) \
        + struct.pack(">HHIHH", 257, 3, 1, 90, 0)
    assert header_size(b"MM\x00*" + struct.pack(">I", 8) + ifd) == (7000, 90)
    ok, buf = cv2.imencode(".bmp", IMG)
    bmp = bytearray(buf.tobytes())
    bmp[22:26] = struct.pack("<i", -37)   # negative height: rows stored top-down
    assert header_size(bytes(bmp)) == (53, 37)


def test_other_formats_and_broken_headers_give_none_without_raising():
    ok, ppm = cv2.imencode(".ppm", IMG)
    assert header_size(ppm.tobytes()) is None
    ok, jpg = cv2.imencode(".jpg", IMG)
    data = jpg.tobytes()
    rng = np.random.default_rng(1)
    for cut in range(0, 200, 3):          # every truncation of the header region
        header_size(data[:cut])
    for _ in range(300):                  # random byte flips in the header region
        b = bytearray(data[:400])
        b[int(rng.integers(2, 400))] = int(rng.integers(256))
        header_size(bytes(b))
    assert header_size(b"") is None and header_size(b"\xff\xd8\xff") is None
