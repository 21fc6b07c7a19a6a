"""The shared TIFF layout: a reader other than ours (Pillow) sees what the tags say."""

from __future__ import annotations

import io
import struct

import numpy as np
from flux_outpaint_cli import tiffwriter
from PIL import Image


def _gray16(width: int, height: int, icc: bytes | None) -> tuple[bytes, np.ndarray]:
    values = np.arange(width * height, dtype="<u2").reshape(height, width) * 37
    strip = values.tobytes()
    tags = tiffwriter.Tags()
    tags.short(284, 1)  # given out of order: written sorted
    tags.long(256, width)
    tags.long(257, height)
    tags.short(258, 16)
    tags.short(259, 1)
    tags.short(262, 1)  # black is zero
    tags.long(tiffwriter.STRIP_OFFSETS, 0)
    tags.short(277, 1)
    tags.long(278, height)
    tags.long(279, len(strip))
    if icc is not None:
        tags.icc(icc)
    out = io.BytesIO()
    tags.write(out, strip)
    return out.getvalue(), values


def test_a_reader_finds_the_strip_and_the_size():
    data, values = _gray16(7, 5, None)
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (7, 5)
        assert np.array_equal(np.asarray(im, dtype=np.uint16), values)


def test_tags_are_sorted_and_an_odd_long_value_is_padded_before_the_strip():
    icc = b"x" * 33  # odd: one pad byte follows it
    data, values = _gray16(3, 2, icc)
    (count,) = struct.unpack_from("<H", data, 8)
    tags = [struct.unpack_from("<H", data, 10 + 12 * i)[0] for i in range(count)]
    assert tags == sorted(tags)
    assert data.endswith(values.tobytes())
    assert data[-len(values.tobytes()) - 1 - len(icc) : -len(values.tobytes()) - 1] == icc
    with Image.open(io.BytesIO(data)) as im:
        assert im.info.get("icc_profile") == icc
