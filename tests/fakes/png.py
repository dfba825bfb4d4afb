"""Tiny valid PNG images, built with zlib and struct, and the reader tests check them with:
the 8-byte signature, then chunks of (length, type, data, CRC-32 over type and data), IHDR
first (width, height, bit depth 8, colour type 2 = RGB), the pixels in IDAT, IEND last."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A `width` by `height` picture of one colour."""
    row = b"\x00" + bytes(rgb) * width  # filter type 0, then the row's pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(row * height))
            + _chunk(b"IEND", b""))


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


@dataclass(frozen=True)
class PngFacts:
    width: int
    height: int
    first_pixel: tuple[int, int, int]


def read_png(data: bytes) -> PngFacts:
    """Checks the signature, every chunk's CRC, IHDR first and IEND last; raises
    AssertionError on any fault."""
    assert data[:8] == SIGNATURE, "not a PNG signature"
    offset, chunks = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", [k for k, _ in chunks]
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (depth, colour) == (8, 2), (depth, colour)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + 3 * width)
    return PngFacts(width, height, (pixels[1], pixels[2], pixels[3]))
