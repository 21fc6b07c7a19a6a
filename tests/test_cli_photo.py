"""Photos as cameras make them: orientation, colour profiles, depth, palette and CMYK, through
the CLI against the local server, plus the reading rules in flux_outpaint_cli.photo."""

from __future__ import annotations

import numpy as np
import pytest
from cli_support import (
    adobe_rgb_profile,
    keyed,
    p3_profile,
    photo,
    read_png,
    run,
    sent_reference,
    text,
    to_srgb,
    write_png16,
)
from flux_outpaint_cli import metadata
from flux_outpaint_cli import photo as ph
from PIL import Image, ImageOps

pytestmark = pytest.mark.server


def cli(srv, env_, *args):
    r = run([*args, "--base-url", srv.base_url, "--json", "--seam-blend", 0], keyed(env_))
    out, err = text(r)
    assert r.returncode == 0, err
    import json

    records = [json.loads(line) for line in out.splitlines() if line.startswith('{"input"')]
    return records


# -- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillows_exif_transpose(tmp_path, orientation):
    stored = photo(30, 20, seed=orientation)
    exif = Image.Exif()
    exif[metadata.ORIENTATION] = orientation
    path = tmp_path / "o.png"
    stored.save(path, exif=exif.tobytes())
    loaded = ph.read(path)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    assert np.array_equal(loaded.array(), expected)
    assert loaded.orientation == orientation
    out = Image.Exif()
    out.load(loaded.exif)
    assert out[metadata.ORIENTATION] == 1


def test_16bit_rgb_png_is_read_with_every_bit(tmp_path):
    rng = np.random.default_rng(3)
    values = rng.integers(0, 65536, (9, 13, 3), dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    write_png16(path, values)
    loaded = ph.read(path)
    assert loaded.space == ph.ColourSpace("RGB", False, "uint16")
    assert np.array_equal(loaded.pixels, values)


def test_16bit_rgba_png_is_read_with_every_bit(tmp_path):
    values = np.random.default_rng(4).integers(0, 65536, (5, 6, 4), dtype=np.uint16)
    path = tmp_path / "rgba16.png"
    write_png16(path, values)
    loaded = ph.read(path)
    assert loaded.space == ph.ColourSpace("RGB", True, "uint16")
    assert np.array_equal(loaded.pixels, values)


def test_16bit_grey_is_scaled_not_clipped_for_the_request():
    values = np.array([[0, 257, 30000, 60000, 65535]], np.uint16)
    assert ph.to_8bit(values, "uint16").tolist() == [[0, 1, 117, 233, 255]]


def test_float_values_are_read_by_their_range():
    assert ph.to_8bit(np.array([0.0, 0.5, 1.0], np.float32), "float32").tolist() == [0, 128, 255]
    assert ph.to_8bit(np.array([0.0, 100.0, 300.0], np.float32), "float32").tolist() == [
        0,
        100,
        255,
    ]


def test_a_profile_for_other_pixels_is_ignored_with_a_note(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (8, 8), 100).save(path, icc_profile=p3_profile())  # an RGB profile on grey
    loaded = ph.read(path)
    assert loaded.icc is None
    assert loaded.notes


# -- through the CLI ------------------------------------------------------------------------------


def test_exif_rotated_jpeg_grows_on_the_displayed_side(tmp_path, env, server):
    stored = photo(120, 80, seed=5)  # stored landscape; orientation 6 shows it as portrait
    exif = Image.Exif()
    exif[metadata.ORIENTATION] = 6
    exif[0x010F] = "TestCam"  # Make: must survive
    src = tmp_path / "portrait.jpg"
    stored.save(src, quality=95, exif=exif.tobytes())
    out = tmp_path / "out.png"
    (record,) = cli(server, env, src, "--left", 40, "-o", out)
    sent = sent_reference(server, record["request_id"])
    assert sent.size == (80, 120)  # the reference went upright
    written = Image.open(out)
    assert written.size == (120, 120)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB"))
    assert np.array_equal(np.asarray(written.convert("RGB"))[:, 40:], upright)
    kept = written.getexif()
    assert kept[metadata.ORIENTATION] == 1
    assert kept[0x010F] == "TestCam"


@pytest.mark.parametrize(
    "profile", [p3_profile, adobe_rgb_profile], ids=["display-p3", "adobe-rgb"]
)
def test_tagged_photo_is_sent_as_srgb_and_kept_in_its_own_space(tmp_path, env, server, profile):
    icc = profile()
    colour = (120, 160, 110)  # inside sRGB's gamut from both spaces
    values = np.empty((64, 96, 3), np.uint8)
    values[...] = colour
    values[:, ::2] += 1  # a little texture; still in gamut
    src = tmp_path / "tagged.png"
    Image.fromarray(values, "RGB").save(src, icc_profile=icc)
    out = tmp_path / "out.png"
    (record,) = cli(server, env, src, "--right", 32, "--top", 16, "-o", out)
    sent = np.asarray(sent_reference(server, record["request_id"]).convert("RGB")).astype(int)
    expected = to_srgb(values, icc).astype(int)
    assert np.abs(sent - expected).max() <= 1  # converted, not the raw values
    assert np.abs(sent - values.astype(int)).max() > 8  # which differ visibly
    written = Image.open(out)
    assert written.info.get("icc_profile") == icc
    pixels = np.asarray(written.convert("RGB")).astype(int)
    assert np.array_equal(pixels[16:, :96], values)  # the original, exact
    # The new band continues the edge colour in the photo's own space (after a round trip
    # through sRGB): within a few levels, where unconverted pixels would be far off.
    band = pixels[16:, 96 + 2 : 96 + 6]
    assert np.abs(band - values[:, -4:].astype(int)).max() <= 4


def test_16bit_grey_png_keeps_its_depth_and_is_sent_scaled(tmp_path, env, server):
    y, x = np.mgrid[0:64, 0:96]
    values = (x * 600 + y * 60).astype(np.uint16)  # 0 … 60780
    src = tmp_path / "grey16.png"
    Image.fromarray(values).save(src)  # mode I;16
    out = tmp_path / "out.png"
    (record,) = cli(server, env, src, "--left", 16, "-o", out)
    sent = np.asarray(sent_reference(server, record["request_id"]).convert("L")).astype(int)
    assert np.abs(sent - np.round(values / 257)).max() <= 1
    assert (sent == 255).mean() < 0.05  # not clipped
    written, _ = read_png(out)
    assert written.dtype == np.uint16 and written.shape == (64, 112, 1)
    assert np.array_equal(written[:, 16:, 0], values)


def test_16bit_rgb_png_keeps_its_depth(tmp_path, env, server):
    rng = np.random.default_rng(7)
    values = rng.integers(1000, 64000, (40, 50, 3), dtype=np.uint16)
    src = tmp_path / "rgb16.png"
    write_png16(src, values)
    out = tmp_path / "out.png"
    cli(server, env, src, "--bottom", 20, "-o", out)
    written, _ = read_png(out)
    assert written.dtype == np.uint16 and written.shape == (60, 50, 3)
    assert np.array_equal(written[:40], values)
    assert written[40:].std() > 0  # filled


def test_16bit_rgb_tiff_output_keeps_its_depth(tmp_path, env, server):
    values = np.random.default_rng(8).integers(0, 65536, (30, 40, 3), dtype=np.uint16)
    src = tmp_path / "rgb16.png"
    write_png16(src, values)
    out = tmp_path / "out.tif"
    cli(server, env, src, "--right", 24, "-o", out)
    back = ph.read(out)
    assert back.space == ph.ColourSpace("RGB", False, "uint16")
    assert np.array_equal(back.pixels[:, :40], values)


@pytest.mark.parametrize("transparent", [False, True], ids=["palette", "palette-transparency"])
def test_palette_input_becomes_rgb_exactly(tmp_path, env, server, transparent):
    base = photo(60, 40, seed=9).quantize(32)
    src = tmp_path / "pal.png"
    if transparent:
        base.save(src, transparency=0)
    else:
        base.save(src)
    out = tmp_path / "out.png"
    cli(server, env, src, "--left", 20, "-o", out)
    written = Image.open(out)
    want = Image.open(src).convert("RGBA" if transparent else "RGB")
    assert written.mode == want.mode
    assert np.array_equal(np.asarray(written)[:, 20:], np.asarray(want))


def test_cmyk_jpeg_stays_cmyk_in_tiff(tmp_path, env, server):
    src = tmp_path / "print.jpg"
    photo(64, 48, seed=10).convert("CMYK").save(src, quality=95)
    (record,) = cli(server, env, src, "--top", 16)
    out = tmp_path / "print-outpaint.tif"  # CMYK's default output type
    assert record["output"] == str(out)
    written = Image.open(out)
    assert written.mode == "CMYK"
    original = np.asarray(Image.open(src))
    assert np.array_equal(np.asarray(written)[16:], original)
    sent = sent_reference(server, record["request_id"])
    assert sent.mode in ("RGB", "RGBA") and sent.size == (64, 48)


def test_cmyk_to_png_is_converted_with_a_note(tmp_path, env, server):
    src = tmp_path / "print.jpg"
    photo(64, 48, seed=11).convert("CMYK").save(src, quality=95)
    out = tmp_path / "out.png"
    r = run([src, "--top", 16, "--base-url", server.base_url, "-o", out], keyed(env))
    _, err = text(r)
    assert r.returncode == 0, err
    assert Image.open(out).mode == "RGB"
    assert "cmyk" in err.lower()


def test_float_tiff_keeps_float(tmp_path, env, server):
    y, x = np.mgrid[0:32, 0:40]
    values = ((x + y) / 80.0).astype(np.float32)
    src = tmp_path / "depth.tif"
    Image.fromarray(values, "F").save(src)
    out = tmp_path / "out.tif"
    cli(server, env, src, "--right", 16, "-o", out)
    written = Image.open(out)
    assert written.mode == "F"
    assert np.array_equal(np.asarray(written)[:, :40], values)


def test_jpeg_output_carries_profile_and_exif(tmp_path, env, server):
    icc = adobe_rgb_profile()
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif.get_ifd(metadata.EXIF_IFD).update(
        {metadata.PIXEL_X_DIMENSION: 80, metadata.PIXEL_Y_DIMENSION: 60}
    )
    src = tmp_path / "in.jpg"
    photo(80, 60, seed=12).save(src, quality=95, icc_profile=icc, exif=exif.tobytes())
    out = tmp_path / "out.jpg"
    cli(server, env, src, "--left", 16, "-o", out)
    written = Image.open(out)
    assert written.format == "JPEG"
    assert written.info.get("icc_profile") == icc
    assert written.getexif()[0x010F] == "TestCam"
    assert written.size == (96, 60)
    sizes = written.getexif().get_ifd(metadata.EXIF_IFD)
    assert (sizes[metadata.PIXEL_X_DIMENSION], sizes[metadata.PIXEL_Y_DIMENSION]) == (96, 60)


def test_webp_output_is_lossless_by_default(tmp_path, env, server):
    src = tmp_path / "in.png"
    photo(64, 48, seed=13).save(src)
    out = tmp_path / "out.webp"
    cli(server, env, src, "--left", 16, "-o", out)
    written = np.asarray(Image.open(out).convert("RGB"))
    assert np.array_equal(written[:, 16:], np.asarray(Image.open(src)))
    lossy = tmp_path / "lossy.webp"
    cli(server, env, src, "--left", 16, "-o", lossy, "--quality", 60)
    assert not np.array_equal(
        np.asarray(Image.open(lossy).convert("RGB"))[:, 16:], np.asarray(Image.open(src))
    )


def test_small_images_are_sent_upscaled_and_written_at_their_size(tmp_path, env, server):
    src = tmp_path / "in.png"
    photo(40, 30).save(src)
    out = tmp_path / "o.png"
    (record,) = cli(server, env, src, "--left", 10, "-o", out)
    assert sent_reference(server, record["request_id"]).size[1] == 64  # fal's minimum side
    written = Image.open(out)
    assert written.size == (50, 30)
    assert np.array_equal(np.asarray(written)[:, 10:], np.asarray(Image.open(src)))


def test_orientation_in_an_exif_chunk_after_the_pixels_is_found(tmp_path, env, server):
    stored = photo(120, 80, seed=14)
    exif = Image.Exif()
    exif[metadata.ORIENTATION] = 8
    early = tmp_path / "early.png"
    stored.save(early, exif=exif.tobytes())
    data = early.read_bytes()
    # Move the eXIf chunk behind the pixels, where PNG allows it too.
    at = data.index(b"eXIf") - 4
    length = int.from_bytes(data[at : at + 4], "big")
    chunk = data[at : at + 12 + length]
    rest = data[:at] + data[at + 12 + length :]
    end = rest.index(b"IEND") - 4
    src = tmp_path / "late.png"
    src.write_bytes(rest[:end] + chunk + rest[end:])
    assert "exif" not in Image.open(src).info  # Pillow has not seen it before decoding
    out = tmp_path / "out.png"
    cli(server, env, src, "--top", 20, "-o", out)
    assert Image.open(out).size == (80, 140)  # upright: 80 wide, 120 + 20 high


def test_16bit_grey_with_transparent_margins_keeps_depth_and_alpha(tmp_path, env, server):
    values = np.zeros((64, 96, 2), np.uint16)
    y, x = np.mgrid[0:40, 0:60]
    values[12:52, 18:78, 0] = (x * 1000 + y * 30).astype(np.uint16)
    values[12:52, 18:78, 1] = 65535
    src = tmp_path / "la16.png"
    write_png16(src, values)
    out = tmp_path / "out.png"
    cli(server, env, src, "-o", out)  # no numbers: the transparent margins are filled
    written, _ = read_png(out)
    assert written.dtype == np.uint16 and written.shape == (64, 96, 2)
    assert np.array_equal(written[12:52, 18:78], values[12:52, 18:78])
    assert (written[..., 1] == 65535).all()  # the margins are filled, opaque


def test_a_huge_image_is_refused_from_its_header(tmp_path, env):
    import struct
    import zlib

    # A PNG header claiming 30000×30000 pixels, with a tiny body: never decoded.
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    src = tmp_path / "huge.png"
    src.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + chunk(b"IEND", b"")
    )
    r = run([src, "--left", 10, "--local"], env)
    _, err = text(r)
    assert r.returncode == 1
    assert "too many pixels" in err and "Traceback" not in err and "Warning" not in err
