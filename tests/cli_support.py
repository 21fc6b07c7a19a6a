"""What the CLI tests share: real image files made here, the CLI run in this process (``run``)
or as a subprocess (``run_process``), the local server in this process, and an ICC profile
builder (matrix-shaper, v2) for P3 / Adobe RGB.

``run`` calls ``flux_outpaint_cli.main.main(argv)`` as the console command would, with the
process's environment replaced by the test's for the call and stdin, stdout and stderr as
bytes: the same observable result as a subprocess, without a second of interpreter start-up
per run.  What only a process shows (signals, real pipes, the console command, the README's
shell lines, /proc) uses ``run_process`` or ``subprocess`` directly.

Each module declares its fixtures in two lines from ``make_env`` and ``serve``.
"""

from __future__ import annotations

import base64
import contextlib
import faulthandler
import io
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import traceback
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "scripts" / "outpaint.py"


def photo(w: int, h: int, seed: int = 1) -> Image.Image:
    """A photo-like image: smooth structure plus fine noise, so JPEG is not lossless on it."""
    rng = np.random.default_rng(seed)
    ys, xs = np.arange(h), np.arange(w)
    # Each channel's structure varies along x, along y or along x + y: computed once per
    # column, row or diagonal and spread over the image (the same values as per pixel).
    pixels = np.empty((h, w, 3))
    pixels[..., 0] = 128 + 90 * np.sin(xs / 17.0 + seed)
    pixels[..., 1] = (128 + 90 * np.cos(ys / 23.0))[:, None]
    pixels[..., 2] = (128 + 60 * np.sin(np.arange(w + h - 1) / 31.0))[ys[:, None] + xs]
    pixels += rng.normal(0, 12, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255, out=pixels).astype(np.uint8), "RGB")


def make_env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("FAL_KEY", "FAL_QUEUE_URL")}
    e["FLUX_OUTPAINT_DATA_DIR"] = str(tmp_path / "data")
    e["FLUX_OUTPAINT_CONFIG_DIR"] = str(tmp_path / "config")
    e["FLUX_OUTPAINT_TIME_SCALE"] = "0.02"  # retry pauses of a few milliseconds
    return e


def serve() -> Iterator:
    """The local fal server in this process; the CLI reaches it with --base-url."""
    import flux_outpaint_fal_local

    srv = flux_outpaint_fal_local.start_server()
    try:
        yield srv
    finally:
        srv.stop()


def keyed(env: dict[str, str]) -> dict[str, str]:
    return {**env, "FAL_KEY": "test-key-123456"}


def run(
    args: list, env: dict[str, str], timeout: float = 120, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    """The CLI in this process: its exit status, stdout and stderr as a subprocess gives them.

    A run that outlives ``timeout`` ends this (worker) process with every thread's stack on
    stderr, as a hung subprocess would have been killed by ``subprocess.run``.
    """
    from flux_outpaint_cli.main import QuitNow, main

    argv = [str(a) for a in args]
    log = logging.getLogger("flux_outpaint")
    handlers, level = list(log.handlers), log.level
    sigint = signal.getsignal(signal.SIGINT)
    faulthandler.dump_traceback_later(timeout, exit=True)
    try:
        with _as_a_process(env, stdin) as (out, err):
            try:
                code = main(argv)
            except SystemExit as exc:  # usage errors and --help, as the process would exit
                code = _exit_status(exc.code)
            except QuitNow as exc:
                code = exc.code
            except Exception:  # noqa: BLE001 - what the interpreter does with it
                traceback.print_exc()
                code = 1
    finally:
        faulthandler.cancel_dump_traceback_later()
    # main() must leave the process as it found it, or runs in one process would interfere.
    assert log.handlers == handlers and log.level == level, "main() left a log handler"
    assert signal.getsignal(signal.SIGINT) is sigint, "main() left a SIGINT handler"
    return subprocess.CompletedProcess(
        ["flux-outpaint", *argv], code, out.getvalue(), err.getvalue()
    )


def run_process(
    args: list, env: dict[str, str], timeout: float = 120, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    """The CLI as a subprocess (scripts/outpaint.py): for what only a real process shows."""
    return subprocess.run(
        [sys.executable, str(CLI), *map(str, args)],
        env=env,
        capture_output=True,
        input=stdin,
        timeout=timeout,
    )


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


@contextlib.contextmanager
def _as_a_process(
    env: dict[str, str], stdin: bytes | None
) -> Iterator[tuple[io.BytesIO, io.BytesIO]]:
    """os.environ and the standard streams as a subprocess would have them, restored after.

    The streams are what Python gives a process on pipes: UTF-8, stderr with backslash
    escapes for what it cannot encode, not a terminal.
    """
    saved_env = dict(os.environ)
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.BytesIO(), io.BytesIO()
    streams = (
        io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", errors="backslashreplace", write_through=True),
    )
    os.environ.clear()
    os.environ.update(env)
    sys.stdin, sys.stdout, sys.stderr = streams
    try:
        yield out, err
    finally:
        for stream in streams:
            with contextlib.suppress(ValueError):
                stream.flush()
                stream.detach()  # so that collecting the wrapper does not close our buffer
        sys.stdin, sys.stdout, sys.stderr = saved
        os.environ.clear()
        os.environ.update(saved_env)


def text(r: subprocess.CompletedProcess) -> tuple[str, str]:
    return r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sent_reference(srv, request_id: str) -> Image.Image:
    """The reference image fal (the local server) received for a request."""
    body = srv._backend.jobs[request_id].body
    url = body["image_url"]
    if url.startswith("data:"):
        data = base64.b64decode(url.split(",", 1)[1])
    else:
        data = srv._backend.fetch(url)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- 16-bit PNG, independent of the code under test --------------------------------------------


def write_png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA), unfiltered."""
    h, w, c = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def read_png(path: Path) -> tuple[np.ndarray, dict[bytes, bytes]]:
    """Samples (H×W×C, uint8 or uint16) and the other chunks of a PNG with filters 0-2."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, chunks = 8, b"", {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(
            kind + body
        )
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        pos += 12 + length
    w, h, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour_type]
    bpp = channels * depth // 8
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * bpp)
    rows = np.zeros((h, w * bpp), np.uint8)
    for y in range(h):
        kind, line = raw[y, 0], raw[y, 1:]
        prev = rows[y - 1] if y else np.zeros(w * bpp, np.uint8)
        if kind == 0:
            rows[y] = line
        elif kind == 2:
            rows[y] = line + prev
        elif kind == 1:
            out = line.copy().reshape(w, bpp)
            rows[y] = np.cumsum(out, axis=0, dtype=np.uint8).reshape(-1)
        else:
            raise AssertionError(f"filter {kind} not expected")
    if depth == 16:
        values = rows.view(">u2").reshape(h, w, channels).astype(np.uint16)
    else:
        values = rows.reshape(h, w, channels)
    return values, chunks


# -- ICC profiles -----------------------------------------------------------------------------

_D50 = np.array([0.9642, 1.0, 0.8249])
_BRADFORD = np.array(
    [[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]]
)


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def icc_profile(name: str, primaries, white=(0.3127, 0.3290), gamma: float = 2.2) -> bytes:
    """A v2 RGB matrix-shaper ICC profile (display class), colorants adapted to D50."""
    prim = np.stack([_xyz(*p) for p in primaries], axis=1)
    w = _xyz(*white)
    scale = np.linalg.solve(prim, w)
    m = prim * scale  # RGB -> XYZ (white)
    src, dst = _BRADFORD @ w, _BRADFORD @ _D50
    adapt = np.linalg.inv(_BRADFORD) @ np.diag(dst / src) @ _BRADFORD
    m50 = adapt @ m

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz_tag(v) -> bytes:
        return b"XYZ " + b"\x00" * 4 + b"".join(s15(c) for c in v)

    def desc(text_: str) -> bytes:
        ascii_ = text_.encode("ascii") + b"\x00"
        return (
            b"desc"
            + b"\x00" * 4
            + struct.pack(">I", len(ascii_))
            + ascii_
            + b"\x00" * 4
            + b"\x00" * 4
            + b"\x00" * 2
            + b"\x00"
            + b"\x00" * 67
        )

    curve = b"curv" + b"\x00" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\x00\x00"
    tags = [
        (b"desc", desc(name)),
        (b"cprt", b"text" + b"\x00" * 4 + b"No copyright, test profile\x00"),
        (b"wtpt", xyz_tag(_D50)),
        (b"rXYZ", xyz_tag(m50[:, 0])),
        (b"gXYZ", xyz_tag(m50[:, 1])),
        (b"bXYZ", xyz_tag(m50[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, blobs = [], b""
    for sig, blob in tags:
        while (offset + len(blobs)) % 4:
            blobs += b"\x00"
        table.append(sig + struct.pack(">II", offset + len(blobs), len(blob)))
        blobs += blob
    body = struct.pack(">I", len(tags)) + b"".join(table) + blobs
    size = 128 + len(body)
    header = (
        struct.pack(">I", size)
        + b"none"
        + struct.pack(">I", 0x02100000)
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + b"\x00" * 12
        + b"acsp"
        + b"\x00" * 4
        + b"\x00" * 4
        + b"\x00" * 4
        + b"\x00" * 4
        + b"\x00" * 8
        + struct.pack(">i", 0)
        + b"".join(s15(c) for c in _D50)
        + b"\x00" * 4
        + b"\x00" * 16
        + b"\x00" * 28
    )
    assert len(header) == 128, len(header)
    data = header + body
    ImageCms.ImageCmsProfile(io.BytesIO(data))  # LittleCMS must accept it
    return data


DISPLAY_P3 = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
ADOBE_RGB = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))


def p3_profile() -> bytes:
    return icc_profile("Display P3 (test)", DISPLAY_P3)


def adobe_rgb_profile() -> bytes:
    return icc_profile("Adobe RGB (1998) (test)", ADOBE_RGB, gamma=563 / 256)


def to_srgb(values: np.ndarray, icc: bytes) -> np.ndarray:
    """What LittleCMS makes of RGB values in the profile's space, in sRGB."""
    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    image = Image.fromarray(values.astype(np.uint8), "RGB")
    out = ImageCms.profileToProfile(
        image,
        src,
        srgb,
        renderingIntent=1,  # relative colorimetric, outputMode="RGB"
    )
    return np.asarray(out)
