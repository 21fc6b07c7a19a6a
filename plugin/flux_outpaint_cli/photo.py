"""An input picture as a camera or an editor wrote it: pixels, orientation, colour, depth.

What is kept, and how:

* **Orientation.**  The EXIF orientation is applied before anything else, so the sides
  people name (``--left``, ``--top``, anchors) are the sides they see.  The output carries
  the input's EXIF with the orientation reset to 1 (its pixels are already upright) and the
  pixel dimensions updated; an embedded thumbnail is not carried over.
* **Colour.**  fal is sent sRGB, converted from the input's embedded ICC profile (none:
  sRGB is assumed, as browsers do).  The returned pixels are converted back into the
  input's own colour space, so the original's pixels stay exactly as they were and the
  output carries the input's profile.
* **Depth.**  16-bit images (grey and RGB, with or without alpha) and 32-bit float grey
  images keep their depth in memory; the request gets a rounded 8-bit copy (16-bit values
  are scaled by 255/65535, not clipped).  Float values are taken as 0–1 when none exceeds
  1, else as 0–255.
* **Palette** images become RGB (RGBA when they have transparency), exactly: a palette
  cannot hold the new colours.  **CMYK** stays CMYK in memory (the request gets sRGB).

Pillow reads 16-bit RGB PNG and TIFF as 8-bit; ``_decode_16bit`` decodes such files twice,
once for the high and once for the low byte of every sample, so no precision is lost.
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flux_outpaint.errors import InputError
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from . import floattiff, metadata

# The reference and the result are converted with this intent: the profiles of cameras and
# editors (sRGB, Display P3, Adobe RGB) are matrix-shaper profiles, for which relative
# colorimetric keeps in-gamut colours exact and clips the rest.
INTENT = 1  # ImageCms.Intent.RELATIVE_COLORIMETRIC (the enum is newer than Pillow 10.0)
# LittleCMS's cmsFLAGS_NOCACHE: its one-pixel cache is not safe when threads share a transform.
_NOCACHE = 0x0040
# Pillow refuses images over twice this many pixels before decoding them (a decompression
# bomb); the largest photo sensors today are well below it.
MAX_INPUT_PIXELS = 200_000_000

Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS
# Over the limit is an error, not a warning on stderr: the header is refused before decoding.
warnings.simplefilter("error", Image.DecompressionBombWarning)

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class ColourSpace:
    """How the pixels are stored: ``colour`` L / RGB / CMYK, alpha or not, sample type."""

    colour: str  # "L" | "RGB" | "CMYK"
    alpha: bool
    dtype: str  # "uint8" | "uint16" | "float32"

    @property
    def channels(self) -> int:
        return {"L": 1, "RGB": 3, "CMYK": 4}[self.colour] + int(self.alpha)

    @property
    def pil_mode(self) -> str:
        """The 8-bit Pillow mode of these pixels."""
        return self.colour + ("A" if self.alpha else "") if self.colour != "CMYK" else "CMYK"

    @property
    def bits(self) -> int:
        return {"uint8": 8, "uint16": 16, "float32": 32}[self.dtype]

    def describe(self) -> str:
        kind = "float" if self.dtype == "float32" else f"{self.bits}-bit"
        return f"{kind} {self.colour}{' with alpha' if self.alpha else ''}"


@dataclass
class Photo:
    """An upright input image in the input's own colour space.

    8-bit images stay a Pillow image until ``array()`` is first asked for (the reference is
    made from it directly, and the conversion to numpy can then run while fal works);
    16-bit and float images are numpy arrays from the start.
    """

    name: str  # for messages: the path, or "stdin"
    path: Path | None  # None for stdin
    pixels: np.ndarray | None  # H×W×C; None until array() for an 8-bit image
    space: ColourSpace
    icc: bytes | None  # the embedded profile, carried into the output
    exif: bytes | None  # the input's EXIF, orientation reset to 1 (None: it had none)
    source_format: str  # Pillow's name of the input's format ("JPEG", "PNG", …)
    sha256: str
    orientation: int = 1
    dpi: tuple[float, float] | None = None
    notes: list[str] = field(default_factory=list)  # what was changed, for -v
    image: Image.Image | None = None  # the upright 8-bit image, while pixels is None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    @property
    def size(self) -> tuple[int, int]:
        if self.pixels is not None:
            return int(self.pixels.shape[1]), int(self.pixels.shape[0])
        assert self.image is not None
        return self.image.size

    def array(self) -> np.ndarray:
        """The samples as H×W×C numpy (made once from the Pillow image, which is then freed)."""
        with self._lock:
            if self.pixels is None:
                assert self.image is not None
                values = np.asarray(self.image)
                self.pixels = values[..., None] if values.ndim == 2 else values
                self.image = None
            return self.pixels

    @property
    def colour_profile(self) -> ImageCms.ImageCmsProfile | None:
        return _profile(self.icc, self.space.colour)

    def alpha8(self) -> np.ndarray | None:
        """The alpha channel as 8 bits (None without alpha)."""
        if not self.space.alpha:
            return None
        if self.pixels is None and self.image is not None:
            return np.asarray(self.image.getchannel("A"))
        return to_8bit(self.array()[..., -1], self.space.dtype)

    def rgba8(self, box: tuple[int, int, int, int], size: tuple[int, int]) -> bytes:
        """The part ``box`` (left, top, right, bottom) as sRGB RGBA 8-bit at ``size``: the
        reference that is sent.  Resampled before the colour conversion (fewer pixels)."""
        image = self.image
        if image is None:
            x0, y0, x1, y1 = box
            part = to_8bit(self.array()[y0:y1, x0:x1], self.space.dtype)
            image = Image.fromarray(
                part[..., 0] if part.shape[-1] == 1 else part, self.space.pil_mode
            )
        elif box != (0, 0, *image.size):
            image = image.crop(box)
        if image.size != size:
            # reducing_gap: a box filter first, then Lanczos; the same look, a third of the time
            image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        return to_srgb(image, self.space, self.colour_profile).tobytes()


def load(data: bytes, name: str, path: Path | None) -> Photo:
    """Decode an input file's bytes; InputError with one line for anything unusable."""
    try:
        image = Image.open(io.BytesIO(data))
        image.size  # noqa: B018 - the header is read; a bomb is refused before decoding
        pixels, upright, space = _pixels(image, data)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name}: too many pixels (over {MAX_INPUT_PIXELS:,})") from None
    except UnidentifiedImageError:
        head = floattiff.header(data)  # float RGB(A) TIFF: Pillow cannot open it
        if head is None:
            raise InputError(f"Not an image (or unreadable): {name}") from None
        return _float_tiff(data, head, name, path)
    except (OSError, SyntaxError, ValueError, EOFError):
        raise InputError(f"Not an image (or unreadable): {name}") from None
    exif = image.getexif()
    orientation = metadata.orientation_in(exif)
    if pixels is not None:
        pixels = orient(pixels, orientation)
    elif upright is not None and orientation != 1:
        upright = upright.transpose(_TRANSPOSE[orientation])
    if pixels is not None:
        width, height = pixels.shape[1], pixels.shape[0]
    else:
        assert upright is not None  # _pixels returns samples or an image
        width, height = upright.size
    icc = image.info.get("icc_profile") or None
    notes = []
    if icc is not None and _profile(icc, space.colour) is None:
        notes.append("its colour profile does not fit its pixels and was ignored")
        icc = None
    dpi = image.info.get("dpi")
    photo = Photo(
        name=name,
        path=path,
        pixels=pixels,
        space=space,
        icc=icc,
        exif=metadata.exif_out(exif, width, height),
        source_format=image.format or "PNG",
        sha256=hashlib.sha256(data).hexdigest(),
        orientation=orientation,
        dpi=(float(dpi[0]), float(dpi[1])) if isinstance(dpi, tuple) and len(dpi) == 2 else None,
        notes=notes,
        image=upright,
    )
    return photo


def _float_tiff(data: bytes, head: floattiff.FloatTiff, name: str, path: Path | None) -> Photo:
    """A float RGB(A) TIFF (``floattiff``): float samples from the start, upright as stored."""
    try:
        pixels = floattiff.read(data, head, MAX_INPUT_PIXELS)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    icc = head.icc
    notes = []
    if icc is not None and _profile(icc, "RGB") is None:
        notes.append("its colour profile does not fit its pixels and was ignored")
        icc = None
    return Photo(
        name=name,
        path=path,
        pixels=pixels,
        space=ColourSpace("RGB", head.alpha, "float32"),
        icc=icc,
        exif=None,
        source_format="TIFF",
        sha256=hashlib.sha256(data).hexdigest(),
        orientation=1,
        dpi=None,
        notes=notes,
        image=None,
    )


def read(path: Path) -> Photo:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"No such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"Not a file: {path}") from None
    except PermissionError:
        raise InputError(f"Not readable (permission denied): {path}") from None
    return load(data, str(path), path)


# -- pixels ---------------------------------------------------------------------------------


def _pixels(
    image: Image.Image, data: bytes
) -> tuple[np.ndarray | None, Image.Image | None, ColourSpace]:
    """Numpy samples (16-bit, float) or an 8-bit Pillow image, and how they are stored."""
    mode = image.mode
    if mode in ("RGB", "RGBA", "LA") and _is_16bit(image):
        pixels = _decode_16bit(data)
        grey = pixels.shape[-1] == 2  # Pillow calls 16-bit grey+alpha "RGBA"
        space = ColourSpace("L" if grey else "RGB", grey or mode == "RGBA", "uint16")
        return pixels, None, space
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        values: np.ndarray = np.asarray(image).astype(np.uint16)[..., None]
        return values, None, ColourSpace("L", False, "uint16")
    if mode == "I":
        values = np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None]
        return values, None, ColourSpace("L", False, "uint16")
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)[..., None]
        return values, None, ColourSpace("L", False, "float32")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode == "1":
        image = image.convert("L")
    elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK"):
        image = image.convert("RGBA" if "A" in mode else "RGB")
    image.load()
    mode = image.mode
    colour = "CMYK" if mode == "CMYK" else mode.rstrip("A") or "L"
    return None, image, ColourSpace(colour, mode in ("LA", "RGBA"), "uint8")


# EXIF orientation → the Pillow transpose that makes the image upright (exif_transpose's).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _is_16bit(image: Image.Image) -> bool:
    tile = image.tile if isinstance(image, ImageFile.ImageFile) else []
    if len(tile) != 1:
        return False
    args = _tile_args(tile[0])
    raw = args[0] if isinstance(args, tuple) else args
    return isinstance(raw, str) and raw.endswith((";16B", ";16L", ";16N"))


# A Pillow tile is an ImageFile._Tile namedtuple (Pillow 11+) or a plain 4-tuple (Pillow 10):
# both are read by position.
def _tile_args(tile: ImageFile._Tile) -> object:
    return tile[3]


def _with_args(tile: ImageFile._Tile, args: tuple[object, ...] | str) -> ImageFile._Tile:
    """The same kind of tile back, with other decoder arguments."""
    if hasattr(tile, "_replace"):
        return tile._replace(args=args)
    return (tile[0], tile[1], tile[2], args)  # type: ignore[return-value]  # Pillow 10's tuple


def _decode_16bit(data: bytes) -> np.ndarray:
    """Both bytes of every 16-bit sample: Pillow's decoder run once per byte."""
    probe = Image.open(io.BytesIO(data))
    (tile,) = probe.tile
    if _tile_args(tile) == "LA;16B" and probe.mode == "RGBA":
        # 16-bit grey+alpha has 4 bytes a pixel, as 8-bit RGBA has: the same unfiltering,
        # so decoding it as RGBA hands over every byte (grey high, low, alpha high, low).
        probe.tile = [_with_args(tile, "RGBA")]
        probe.load()
        packed = np.asarray(probe).astype(np.uint16)
        return np.stack(
            [packed[..., 0] << 8 | packed[..., 1], packed[..., 2] << 8 | packed[..., 3]], -1
        )
    halves: list[np.ndarray] = []
    for pick in ("B", "L"):  # ";16B" keeps a big-endian sample's first byte, ";16L" its second
        image = Image.open(io.BytesIO(data))
        (tile,) = image.tile
        args = _tile_args(tile)
        raw = args[0] if isinstance(args, tuple) else args
        assert isinstance(raw, str)
        big_endian = raw.endswith(";16B") or (raw.endswith(";16N") and sys.byteorder == "big")
        first = raw[:-1] + ("B" if big_endian else "L")  # the sample's high byte
        second = raw[:-1] + ("L" if big_endian else "B")  # its low byte
        chosen = first if pick == "B" else second
        image.tile = [_with_args(tile, (chosen, *args[1:]) if isinstance(args, tuple) else chosen)]
        image.load()
        halves.append(np.asarray(image))
    high, low = halves
    pixels: np.ndarray = (high.astype(np.uint16) << 8) | low
    return pixels if pixels.ndim == 3 else pixels[..., None]


def to_8bit(values: np.ndarray, dtype: str) -> np.ndarray:
    """Samples as uint8: 16-bit scaled (rounded), float by its range (see module doc)."""
    if dtype == "uint8":
        return values
    if dtype == "uint16":
        return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    scale = 255.0 if float(np.nanmax(values, initial=0.0)) <= 1.0 else 1.0
    clipped: np.ndarray = np.clip(np.nan_to_num(values) * scale + 0.5, 0, 255)
    return clipped.astype(np.uint8)


def from_8bit(values: np.ndarray, dtype: str, like: np.ndarray | None = None) -> np.ndarray:
    """8-bit samples in ``dtype`` (float: the same range as ``like``)."""
    if dtype == "uint8":
        return values
    if dtype == "uint16":
        return values.astype(np.uint16) * 257
    scale = 255.0 if like is None or float(np.nanmax(like, initial=0.0)) <= 1.0 else 1.0
    return values.astype(np.float32) / scale


def orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1–8 applied (the same as Pillow's ``ImageOps.exif_transpose``)."""
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    out = ops[orientation](pixels)
    return out if orientation == 1 else np.ascontiguousarray(out)


# -- colour -----------------------------------------------------------------------------------


def _profile(icc: bytes | None, colour: str) -> ImageCms.ImageCmsProfile | None:
    """The embedded profile if it is usable for pixels of this colour model."""
    if not icc:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ImageCms.PyCMSError, TypeError, ValueError):
        return None
    space = profile.profile.xcolor_space.strip()
    if {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}[colour] != space:
        return None
    return profile


def is_srgb(profile: ImageCms.ImageCmsProfile | None) -> bool:
    """No profile, or one that says it is sRGB: no conversion is needed."""
    if profile is None:
        return True
    description = (profile.profile.profile_description or "").lower()
    return "srgb" in description and profile.profile.xcolor_space.strip() == "RGB"


def to_srgb(
    image: Image.Image, space: ColourSpace, profile: ImageCms.ImageCmsProfile | None
) -> Image.Image:
    """An 8-bit image in the input's colour space as sRGB RGBA."""
    alpha = image.getchannel("A") if space.alpha else None
    colour = image.convert(space.colour) if space.alpha else image
    if profile is not None and not is_srgb(profile):
        rgb = cms_apply(colour, _transform(profile, space.colour, True))
    else:
        rgb = colour.convert("RGB")  # grey replicated; CMYK by Pillow's plain formula
    rgba = rgb.convert("RGBA")
    if alpha is not None:
        rgba.putalpha(alpha)
    return rgba


def from_srgb(
    image: Image.Image, space: ColourSpace, profile: ImageCms.ImageCmsProfile | None
) -> Image.Image:
    """An sRGB RGB image (fal's pixels) in the input's colour model, 8-bit, no alpha."""
    if profile is not None and not is_srgb(profile):
        return cms_apply(image, _transform(profile, space.colour, False))
    return image if image.mode == space.colour else image.convert(space.colour)


_TRANSFORMS: dict[tuple[bytes, str, bool], ImageCms.ImageCmsTransform] = {}


def cms_apply(image: Image.Image, transform: ImageCms.ImageCmsTransform) -> Image.Image:
    """``image`` through ``transform``, as a new image."""
    out = ImageCms.applyTransform(image, transform)
    assert out is not None  # None only when transforming in place
    return out


def _transform(
    profile: ImageCms.ImageCmsProfile, colour: str, to_srgb: bool
) -> ImageCms.ImageCmsTransform:
    key = (profile.tobytes(), colour, to_srgb)
    cached = _TRANSFORMS.get(key)
    if cached is None:
        source, target = (profile, _SRGB) if to_srgb else (_SRGB, profile)
        modes = (colour, "RGB") if to_srgb else ("RGB", colour)
        # Pillow 10.0 has no Intent and Flags enums; every version takes their int values.
        cached = ImageCms.buildTransform(source, target, *modes, INTENT, _NOCACHE)  # type: ignore[arg-type]
        _TRANSFORMS[key] = cached
    return cached
