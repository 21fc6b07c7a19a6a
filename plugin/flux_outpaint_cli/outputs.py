"""Where each result is written, in which format, and the rules that never destroy a file.

* The output's type follows its name: ``.png``, ``.jpg``/``.jpeg``, ``.webp``, ``.tif``/
  ``.tiff``; any other suffix is a usage error.  ``-o -`` writes standard output, as PNG
  unless ``--output-type`` says otherwise.
* Without ``-o``, ``IN.ext`` becomes ``IN-outpaint.ext`` for PNG, TIFF and WebP inputs
  (formats that hold the original exactly) and ``IN-outpaint.png`` for every other input —
  a JPEG's original pixels would not survive another JPEG encoding — except CMYK inputs,
  which become ``IN-outpaint.tif`` (PNG has no CMYK).  ``--out-dir`` puts them there.
* Checked before anything is submitted: an output that exists is refused (``--force``
  replaces it); an output that is one of the inputs is a usage error, ``--force`` or not;
  two inputs that would write the same output are a usage error for the whole batch (no
  name is invented: rename one, or run them separately).
* Writes are atomic: a temporary file in the output's folder, flushed to disk, then renamed
  into place.  Without ``--force`` the rename cannot replace a file that appeared meanwhile
  (it is a hard link, which fails if the name exists); such an output is reported, and the
  result stays in the cache for ``--recover``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flux_outpaint.errors import InputError

from .exits import UsageError

# suffix → Pillow format name
FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
TYPES = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "tiff": "TIFF"}
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}
STDOUT = "-"
KEEPS_ORIGINAL = frozenset({"PNG", "TIFF", "WEBP"})  # the input's format, if it is one of these


@dataclass(frozen=True)
class Target:
    """Where one input's result goes."""

    path: Path | None  # None: standard output
    format: str  # Pillow's name: PNG, JPEG, WEBP, TIFF

    @property
    def is_stdout(self) -> bool:
        return self.path is None

    def __str__(self) -> str:
        return "stdout" if self.path is None else str(self.path)


def format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise UsageError(f"cannot tell the output type from {path.name!r}: use one of {known}")
    return fmt


def default_format(source_format: str, colour: str) -> str:
    if source_format in KEEPS_ORIGINAL:
        return source_format
    return "TIFF" if colour == "CMYK" else "PNG"


def target_for(
    input_name: str,
    input_path: Path | None,
    source_format: str,
    colour: str,
    output: str | None,
    out_dir: Path | None,
    output_type: str | None,
) -> Target:
    if output == STDOUT:
        return Target(None, TYPES[output_type] if output_type else "PNG")
    if output is not None:
        path = Path(output)
        return Target(path, format_of(path))
    fmt = TYPES[output_type] if output_type else default_format(source_format, colour)
    if input_path is None:
        raise UsageError("reading standard input needs -o OUT (or -o - for standard output)")
    keep = input_path.suffix if FORMATS.get(input_path.suffix.lower()) == fmt else SUFFIX[fmt]
    folder = out_dir if out_dir is not None else input_path.parent
    return Target(folder / f"{input_path.stem}-outpaint{keep}", fmt)


def variation_targets(base: Target, count: int, output: str | None) -> list[Target]:
    """Where each of ``count`` variations goes: ``{n}`` in -o replaced by 1…count, else the
    default name with ``-1`` … ``-count`` before its suffix."""
    if count == 1:
        return [base]
    if base.path is None:
        raise UsageError("--variations writes several files: -o - cannot hold them")
    if output is not None:
        return [
            Target(Path(output.replace("{n}", str(n))), base.format) for n in range(1, count + 1)
        ]
    path = base.path
    return [
        Target(path.with_name(f"{path.stem}-{n}{path.suffix}"), base.format)
        for n in range(1, count + 1)
    ]


def _identity(path: Path) -> tuple[object, ...]:
    """The same file under any name: its device and inode if it exists, else its full path."""
    try:
        info = path.stat()
        return (info.st_dev, info.st_ino)
    except OSError:
        return (str(path.resolve()),)


def check_batch(pairs: list[tuple[str, Path | None, Target]]) -> None:
    """Usage errors for the whole batch: an output that is an input, or shared by two."""
    inputs = {_identity(path): name for name, path, _ in pairs if path is not None}
    seen: dict[str, str] = {}
    for name, _, target in pairs:
        if target.path is None:
            continue
        other_name = inputs.get(_identity(target.path))
        if other_name is not None:
            raise UsageError(
                f"{name}: the output {target.path} is the input {other_name}; "
                "choose another -o or --out-dir"
            )
        key = str(target.path.resolve())
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {name} would both write {target.path}; rename one or run "
                "them separately (nothing was sent)"
            )
        seen[key] = name


def check_free(target: Target, force: bool) -> None:
    """Refuse an output that exists (unless ``force``) or cannot be written."""
    if target.path is None:
        return
    path = target.path
    if os.path.lexists(path) and not force:  # a dangling link too: the write would refuse it
        raise OutputExistsError(f"{path} exists; --force replaces it")
    if path.is_dir():
        raise InputError(f"{path} is a folder")
    parent = path.parent if str(path.parent) else Path(".")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and (not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK)):
        raise InputError(f"cannot write into {parent}")


class OutputExistsError(InputError):
    """The output exists and --force was not given: the input is skipped."""


@contextlib.contextmanager
def atomic(target: Target, force: bool, abandon: Callable[[], bool]) -> Iterator[BinaryIO]:
    """A file to write the output into; it appears under its name only when complete.

    ``abandon()`` is asked just before the file is put in place: True (a cancel) leaves
    nothing behind.
    """
    if target.path is None:
        stream = sys.stdout.buffer
        yield stream
        stream.flush()
        return
    path = target.path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(name)
    with _parts_lock:
        _parts.add(tmp)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if abandon():
            return
        os.chmod(tmp, 0o666 & ~_umask())
        if force:
            os.replace(tmp, path)
        else:
            _place_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        with _parts_lock:
            _parts.discard(tmp)


# Outputs being written (their .part files), for a quit that cannot wait for the writers.
_parts: set[Path] = set()
_parts_lock = threading.Lock()


def remove_parts() -> None:
    """Remove every output still being written (a quit at once: ``main._quit_now``)."""
    for tmp in list(_parts):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _place_new(tmp: Path, path: Path) -> None:
    try:
        os.link(tmp, path)  # fails if the name exists: never replaces what appeared meanwhile
    except FileExistsError:
        raise OutputExistsError(f"{path} appeared while the job ran; it was not replaced") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(path):  # a file system without hard links: the best check there is
            raise OutputExistsError(
                f"{path} appeared while the job ran; it was not replaced"
            ) from None
        os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
