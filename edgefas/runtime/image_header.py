"""Width and height of an encoded image from its header, before anything is decoded.

A 1 MB PNG of zeros can declare 18000 x 18000 pixels: OpenCV would allocate ~1 GB and spend
seconds decoding it before the size check could refuse it (a decompression bomb, and on the
HTTP API a cheap way to exhaust memory). Reading the header first lets the decoder refuse it
at once. Only the fields that hold the size are read, for the formats cameras, browsers and
phones send (JPEG, PNG, WebP, BMP, GIF, TIFF); for any other format, or a header too broken
to read, :func:`header_size` returns None and OpenCV's own limits apply.
"""
from __future__ import annotations

import struct

__all__ = ["header_size"]

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic ...): C0-CF
# except DHT (C4), JPG (C8) and DAC (CC), which are not frames.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# markers that stand alone, without a length field
_NO_LENGTH = frozenset([0x01, *range(0xD0, 0xD9)])


def _jpeg(d: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(d):
        if d[i] != 0xFF:
            return None
        marker = d[i + 1]
        if marker == 0xFF:          # fill byte before a marker
            i += 1
            continue
        if marker in _NO_LENGTH:
            i += 2
            continue
        (length,) = struct.unpack(">H", d[i + 2:i + 4])
        if marker in _SOF:
            if i + 9 > len(d):
                return None
            h, w = struct.unpack(">HH", d[i + 5:i + 9])
            return w, h
        if marker == 0xDA:          # start of scan before any frame header: broken
            return None
        i += 2 + length
    return None


def _webp(d: bytes) -> tuple[int, int] | None:
    chunk = d[12:16]
    if chunk == b"VP8 " and len(d) >= 30:
        w, h = struct.unpack("<HH", d[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(d) >= 25:
        (bits,) = struct.unpack("<I", d[21:25])
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X" and len(d) >= 30:
        return 1 + int.from_bytes(d[24:27], "little"), 1 + int.from_bytes(d[27:30], "little")
    return None


def _bmp(d: bytes) -> tuple[int, int] | None:
    if len(d) < 26:
        return None
    (hdr,) = struct.unpack("<I", d[14:18])
    if hdr == 12:                   # OS/2 BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", d[18:22])
        return w, h
    w, h = struct.unpack("<ii", d[18:26])
    return abs(w), abs(h)           # negative height: rows stored top-down


def _tiff(d: bytes) -> tuple[int, int] | None:
    end = "<" if d[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(end + "I", d[4:8])
        (n,) = struct.unpack(end + "H", d[ifd:ifd + 2])
        size: dict[int, int] = {}
        for k in range(n):
            e = ifd + 2 + 12 * k
            tag, typ = struct.unpack(end + "HH", d[e:e + 4])
            if tag in (256, 257):   # ImageWidth, ImageLength: SHORT (3) or LONG (4)
                fmt = end + ("H" if typ == 3 else "I")
                size[tag] = struct.unpack(fmt, d[e + 8:e + 8 + struct.calcsize(fmt)])[0]
    except struct.error:
        return None
    return (size[256], size[257]) if len(size) == 2 else None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an encoded image declares, or None for another format or a broken header."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
            return struct.unpack(">II", data[16:24])
        if data[:3] == b"\xff\xd8\xff":
            return _jpeg(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
        if data[:2] == b"BM":
            return _bmp(data)
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            return struct.unpack("<HH", data[6:10])
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff(data)
    except struct.error:
        return None
    return None
