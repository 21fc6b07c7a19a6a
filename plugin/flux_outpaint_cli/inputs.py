"""One input, looked at before anything is sent: its header, its framing, its plan, its output.

``inspect`` runs for every input before anything is sent: it reads only what the plan and
the output checks need (the header, or the alpha channel for transparent margins), so a
batch of many photos never holds them all in memory.  The framing is the core's
(``flux_outpaint.framing``); the input is its own canvas.
"""

from __future__ import annotations

import dataclasses
import io
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flux_outpaint import framing, geometry, planning
from flux_outpaint.errors import InputError
from PIL import Image, UnidentifiedImageError

from . import bounded, floattiff, metadata, outputs
from . import photo as ph
from .args import Options

STDIN = "-"


@dataclass
class Item:
    """One input, inspected: what it is, its plan and its output."""

    name: str
    path: Path | None  # None: standard input
    data: bytes | None  # standard input's bytes (files are read again by the job)
    size: tuple[int, int]  # upright
    source_format: str
    colour: str
    plan: planning.Plan
    origin: tuple[int, int]  # where the input's pixel (0, 0) sits on the canvas
    target: outputs.Target
    request_id: str | None = None
    cost_usd: float = 0.0
    submitted: bool = False
    # --variations: one output per take (the first is ``target``); ids as they are submitted
    targets: list[outputs.Target] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)

    @property
    def variations(self) -> int:
        return max(1, len(self.targets))


def peek(
    data: bytes | None, path: Path | None, name: str
) -> tuple[Image.Image | FloatTiffHeader, bytes | None]:
    """The image opened for its header only."""
    try:
        if data is None:
            assert path is not None
            image = Image.open(path)
        else:
            image = Image.open(io.BytesIO(data))
        image.size  # noqa: B018 - header only
    except FileNotFoundError:
        raise InputError(f"No such file: {name}") from None
    except IsADirectoryError:
        raise InputError(f"Not a file: {name}") from None
    except PermissionError:
        raise InputError(f"Not readable (permission denied): {name}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # the caller's line starts with the name already
        raise InputError(f"too many pixels (over {ph.MAX_INPUT_PIXELS:,})") from None
    except UnidentifiedImageError:
        head = _float_tiff_header(data, path, name)
        if head is None:
            raise InputError(f"Not an image (or unreadable): {name}") from None
        return FloatTiffHeader(head), data
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InputError(f"Not an image (or unreadable): {name}") from None
    try:
        frames = int(getattr(image, "n_frames", 1)) if getattr(image, "is_animated", False) else 1
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InputError(f"Not an image (or unreadable): {name}") from None
    if frames > 1:
        # Outpainting the first frame alone would drop the others without a word.
        raise InputError(
            f"an animation or multi-page file ({frames} frames); outpaint one frame: "
            "save it as a single image first"
        )
    return image, data


class FloatTiffHeader:
    """What ``inspect`` asks of an image opened for its header, for a float RGB(A) TIFF
    (which Pillow cannot open; ``floattiff`` reads it)."""

    format = "TIFF"

    def __init__(self, head: floattiff.FloatTiff) -> None:
        self.size = head.size
        self.mode = "RGBA" if head.alpha else "RGB"
        self.info = {"icc_profile": head.icc} if head.icc else {}

    def getexif(self) -> Image.Exif:
        return Image.Exif()

    def close(self) -> None:
        pass


def _float_tiff_header(
    data: bytes | None, path: Path | None, name: str
) -> floattiff.FloatTiff | None:
    raw = data if data is not None else read_input(path, name)
    return floattiff.header(raw)  # its refusals are read after the input's name


def frame(
    args: Options,
    size: tuple[int, int],
    alpha_bounds: Callable[[], geometry.Rect | None],
    name: str,
) -> framing.Framing:
    """The output area for an upright image of ``size``: the sides given (``--left`` …,
    ``--to``, ``--aspect``), else the image's transparent margins.  The image is its own
    canvas; the core decides (``framing.automatic``, ``framing.frame``)."""
    w, h = size
    whole = geometry.Rect(0, 0, w, h)
    if args.numbers:
        exp = geometry.Expansion(
            left=args.left or 0, right=args.right or 0, top=args.top or 0, bottom=args.bottom or 0
        )
    elif args.to is not None:
        exp = geometry.from_target_size(w, h, *args.to, args.anchor).expansion
    elif args.aspect is not None:
        exp = geometry.from_aspect(w, h, *args.aspect, args.anchor).expansion
        if exp == geometry.Expansion():
            aw, ah = args.aspect
            raise InputError(
                f"Nothing to expand: {w}×{h} already has the aspect {aw}:{ah} (to within a "
                "pixel); nothing sent"
            )
    else:

        def margins(visible: geometry.Rect) -> geometry.Rect | None:
            bounds = alpha_bounds()
            if bounds is None or bounds == whole:
                raise InputError(
                    "no transparent margins; give --left/--right/--top/--bottom, --to or --aspect"
                )
            return bounds

        return framing.frame(framing.automatic(w, h, whole, margins), w, h, {})
    auto = framing.Automatic("numbers", whole, geometry.Expansion())
    return framing.frame(auto, w, h, dataclasses.asdict(exp))


def inspect(raw: str, args: Options, stdin: Callable[[str, float], bytes]) -> Item:
    """``stdin(name, seconds)``: the bytes of standard input, read within ``seconds``."""
    path = None if raw == STDIN else Path(raw)
    name = "stdin" if path is None else raw
    data = None
    if path is None:
        data = stdin(name, args.timeout)
    elif not bounded.is_regular(path):  # a FIFO, a device, <(…): read once, here, capped
        data = bounded.read_input(path, name, sys.stdin.buffer, args.timeout)
    else:
        bounded.check_file_size(path, name)
    image, _ = peek(data, path, name)
    # A float TIFF is read upright as stored (its EXIF is not read).
    orientation = (
        1 if isinstance(image, FloatTiffHeader) else metadata.orientation(image, data, path)
    )
    w, h = image.size
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    mode = image.mode
    colour = "CMYK" if mode == "CMYK" else ("L" if mode[0] in "LI1F" else "RGB")
    has_alpha = mode in ("RGBA", "LA", "PA") or "transparency" in image.info

    def bounds() -> geometry.Rect | None:
        if not has_alpha:
            return geometry.Rect(0, 0, w, h)
        loaded = ph.load(data if data is not None else read_input(path, name), name, path)
        alpha = loaded.alpha8()
        return None if alpha is None else geometry.mask_bounds(alpha.tobytes(), w, h)

    framed = frame(args, (w, h), bounds, name)
    plan = planning.make_plan(framed.source)
    origin = framed.image_origin
    target = outputs.target_for(
        name, path, image.format or "PNG", colour, args.output, args.out_dir, args.output_type
    )
    image.close()
    targets = outputs.variation_targets(target, args.variations, args.output)
    return Item(
        name,
        path,
        data,
        (w, h),
        image.format or "PNG",
        colour,
        plan,
        origin,
        targets[0],
        targets=targets,
    )


def read_input(path: Path | None, name: str) -> bytes:
    assert path is not None
    bounded.check_file_size(path, name)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"Cannot read {name}: {exc.strerror or exc}") from None


def read_stdin(name: str, seconds: float) -> bytes:
    """Standard input, capped like a file and read within ``seconds`` (``bounded``).

    Read through a duplicate of its descriptor, unbuffered: a reader left behind at the
    deadline or on a signal must not hold the lock of ``sys.stdin``'s buffer, which the
    interpreter takes when it exits."""
    try:
        raw = os.fdopen(os.dup(sys.stdin.fileno()), "rb", buffering=0)
    except (OSError, ValueError, AttributeError):  # no descriptor (an embedding, a test)
        return bounded.read_input(None, name, sys.stdin.buffer, seconds)
    # Not closed here: a reader left behind still reads it (the descriptor must not be
    # reused under it); it closes when the last reference goes.
    return bounded.read_input(None, name, raw, seconds)


def reference_box(item_plan: planning.Plan, origin: tuple[int, int]) -> tuple[int, int, int, int]:
    ref = item_plan.source.reference
    x0, y0 = ref.x - origin[0], ref.y - origin[1]
    return x0, y0, x0 + ref.width, y0 + ref.height


def describe(photo: ph.Photo) -> str:
    """What -v says about an input: its pixels, its profile, its orientation."""
    profile = photo.colour_profile
    if profile is None:
        colour = "no colour profile (sRGB assumed)"
    elif ph.is_srgb(profile):
        colour = "sRGB profile"
    else:
        name = (profile.profile.profile_description or "an embedded profile").strip()
        colour = f"profile {name!r}, sent to fal converted to sRGB"
    turned = f"; EXIF orientation {photo.orientation} applied" if photo.orientation != 1 else ""
    w, h = photo.size
    return f"{w}×{h} {photo.space.describe()}, {colour}{turned}"
