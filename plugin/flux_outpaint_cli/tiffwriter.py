"""A little-endian baseline TIFF with one strip: the IFD both of our TIFF writers share.

The 16-bit writer (``imageio``) and the float writer (``floattiff``) differ only in their
tags and their strip; the layout (IFD at offset 8, values over four bytes after it, each
padded to an even length, then the strip, whose offset tag 273 is patched in) is this.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

STRIP_OFFSETS = 273
ICC_PROFILE = 34675
_SHORT, _LONG, _UNDEFINED = 3, 4, 7
_IFD_OFFSET = 8


class Tags:
    """The IFD entries of one image, in any order (written sorted, as TIFF requires)."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, int, int, bytes]] = []  # tag, type, count, value

    def short(self, tag: int, *vals: int) -> None:
        self._entries.append((tag, _SHORT, len(vals), struct.pack(f"<{len(vals)}H", *vals)))

    def long(self, tag: int, *vals: int) -> None:
        self._entries.append((tag, _LONG, len(vals), struct.pack(f"<{len(vals)}I", *vals)))

    def icc(self, profile: bytes) -> None:
        self._entries.append((ICC_PROFILE, _UNDEFINED, len(profile), profile))

    def write(self, out: BinaryIO, strip: bytes) -> None:
        """The header, the IFD, the long values, then ``strip`` (tag 273 points at it)."""
        entries = sorted(self._entries, key=lambda e: e[0])
        extra_base = _IFD_OFFSET + 2 + 12 * len(entries) + 4
        data_offset = extra_base + sum(len(v) + (len(v) & 1) for *_, v in entries if len(v) > 4)
        extra = bytearray()
        packed = []
        for tag, kind, count, value in entries:
            if tag == STRIP_OFFSETS:
                value = struct.pack("<I", data_offset)
            if len(value) <= 4:
                packed.append(struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\x00"))
            else:
                packed.append(struct.pack("<HHII", tag, kind, count, extra_base + len(extra)))
                extra += value + (b"\x00" if len(value) & 1 else b"")
        out.write(b"II*\x00" + struct.pack("<I", _IFD_OFFSET))
        out.write(struct.pack("<H", len(entries)) + b"".join(packed) + struct.pack("<I", 0))
        out.write(bytes(extra))
        out.write(strip)
