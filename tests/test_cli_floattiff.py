"""RGB(A) float TIFF, which Pillow cannot open: read and written as float by the CLI
(``floattiff``), the original's samples kept exactly; files it cannot read refused in one line."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from cli_support import keyed, run, text
from flux_outpaint.errors import InputError
from flux_outpaint_cli import floattiff


def ramp(h: int, w: int, c: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    planes = [x / w, y / h, 0.25 + 0.5 * np.sin(x / 3.0) ** 2, 0.5 + 0 * x][:c]
    return np.stack(planes, -1).astype(np.float32)


def tiff(values: np.ndarray, order: str = "<", **tags: int) -> bytes:
    """A plain uncompressed float TIFF in either byte order; ``tags`` add or replace."""
    h, w, c = values.shape
    data = np.ascontiguousarray(values, dtype=f"{order}f4").tobytes()
    fields = {256: w, 257: h, 259: 1, 262: 2, 277: c, 278: h, 279: len(data), 284: 1}
    fields.update({int(k[1:]): v for k, v in tags.items()})
    entries = sorted([*fields.items(), (258, None), (339, None), (273, None)])
    head = 8
    ifd = struct.pack(f"{order}H", len(entries))
    extra_at = head + 2 + 12 * len(entries) + 4
    extra = b""
    data_at = extra_at + 4 * c
    for tag, value in entries:
        if tag in (258, 339):
            vals = [32] * c if tag == 258 else [3] * c
            ifd += struct.pack(f"{order}HHII", tag, 3, c, extra_at + len(extra))
            extra += struct.pack(f"{order}{c}H", *vals)
        elif tag == 273:
            ifd += struct.pack(f"{order}HHII", tag, 4, 1, data_at)
        else:
            ifd += struct.pack(f"{order}HHII", tag, 4, 1, value)
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    extra = extra.ljust(4 * c, b"\x00")
    return magic + struct.pack(f"{order}I", head) + ifd + b"\x00" * 4 + extra + data


@pytest.mark.parametrize("channels", [3, 4])
def test_what_it_writes_it_reads_back_exactly(channels):
    values = ramp(9, 13, channels) * 3 - 1  # outside 0-1 too
    out = io.BytesIO()
    floattiff.write(values, b"profile", out)
    head = floattiff.header(out.getvalue())
    assert head.size == (13, 9) and head.samples == channels and head.icc == b"profile"
    assert head.compression == 8 and head.predictor == 3
    assert np.array_equal(floattiff.read(out.getvalue(), head, 10**6), values)


@pytest.mark.parametrize("order", ["<", ">"])
def test_an_uncompressed_file_in_either_byte_order(order):
    values = ramp(5, 7, 3)
    data = tiff(values, order)
    assert np.array_equal(floattiff.read(data, floattiff.header(data), 10**6), values)


def test_the_predictor_is_the_one_libtiff_writes():
    # fpDiff: bytes regrouped most significant first, then differences a pixel apart
    values = ramp(1, 3, 3)
    row = values.astype(">f4").tobytes()
    count = 9
    planes = bytearray(row[4 * i + b] for b in range(4) for i in range(count))
    for i in range(len(planes) - 1, 2, -1):
        planes[i] = (planes[i] - planes[i - 3]) & 255
    assert floattiff._predict(values.astype(">f4")) == bytes(planes)


@pytest.mark.parametrize(
    ("tags", "words"),
    [
        ({"t259": 5}, "compression 5"),  # LZW
        ({"t317": 2}, "predictor 2"),
        ({"t284": 2}, "Planar"),
        ({"t322": 16}, "Tiled"),
    ],
)
def test_what_it_cannot_read_is_refused_in_one_line(tags, words):
    with pytest.raises(InputError, match=words):
        floattiff.header(tiff(ramp(4, 4, 3), **tags))


def test_sizes_and_strips_are_checked_before_trusting_them():
    data = tiff(ramp(4, 4, 3))
    with pytest.raises(InputError, match="too many pixels"):
        floattiff.read(data, floattiff.header(data), 15)
    cut = data[:-10]
    with pytest.raises(InputError, match="shorter"):
        floattiff.read(cut, floattiff.header(cut), 10**6)
    assert floattiff.header(b"II*\x00" + b"\xff" * 8) is None  # not a TIFF it understands
    assert floattiff.header(b"\x89PNG\r\n\x1a\n") is None


def test_the_cli_outpaints_a_float_rgb_tiff_and_keeps_it_float(tmp_path, env, server):
    values = ramp(48, 64, 3)
    src = tmp_path / "in.tif"
    src.write_bytes(tiff(values))
    r = run([src, "--left", 16, "--base-url", server.base_url], keyed(env))
    assert r.returncode == 0, text(r)[1]
    out = (tmp_path / "in-outpaint.tif").read_bytes()
    head = floattiff.header(out)
    assert head is not None and head.size == (80, 48) and head.samples == 3
    got = floattiff.read(out, head, 10**6)
    assert got.dtype == np.float32
    blend = 16  # the default seam band on the grown side
    assert np.array_equal(got[:, 16 + blend :], values[:, blend:])  # the original, exactly
