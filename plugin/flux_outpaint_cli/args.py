"""The command line: every option with its description and default, and the usage checks.

A usage error (a contradiction or a malformed value on the command line) exits with
status 2 before anything is read or sent.  The rest of the tool sees ``Options``, built from
argparse's namespace in one place (``parse_args``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from flux_outpaint import __version__, geometry, payload
from flux_outpaint.journal import RESULT_CACHE_MAX_BYTES, RESULT_CACHE_MAX_FILES
from flux_outpaint.retry import DEFAULT_DEADLINE_S
from flux_outpaint.seam import DEFAULT_BLEND, MAX_BLEND
from flux_outpaint.variations import MAX_VARIATIONS

from .exits import PROG
from .imageio import DEFAULT_JPEG_QUALITY
from .outputs import STDOUT, TYPES

RECOVER_LATEST = "latest"
_CACHE_MB = RESULT_CACHE_MAX_BYTES // 2**20

DESCRIPTION = """\
Expand images beyond their borders with FLUX.2 [pro] outpainting on fal.ai.

The written image is the whole new canvas: the original's pixels are copied exactly (outside
the seam band, at their own depth and in their own colour space) and fal's pixels fill the
new area."""

EPILOG = f"""\
expansion:
  Give the new pixels per side (--left/--right/--top/--bottom), a final size (--to) or an
  aspect ratio (--aspect).  With none of them, an image with transparent margins is filled
  into them.  Sides are the sides you see: the EXIF orientation is applied first.

output:
  -o OUT writes one input to OUT; its type follows the suffix: .png, .jpg/.jpeg, .webp,
  .tif/.tiff (another suffix is a usage error).  Without -o, IN.ext becomes IN-outpaint.ext
  beside it (or in --out-dir) for PNG, TIFF and WebP inputs, IN-outpaint.png for other
  inputs (JPEG included: the original's pixels stay exact) and IN-outpaint.tif for CMYK.
  An existing output is never replaced without --force (the input is skipped); an output
  that is an input, or two inputs writing the same output, is a usage error and nothing is
  sent.  Files appear only when complete.  "-" as IN reads standard input (then -o is
  needed) and -o - writes standard output (PNG unless --output-type; progress and messages
  go to standard error).

metadata:
  The output keeps the input's ICC colour profile (fal is sent sRGB converted from it, and
  its pixels are converted back), its EXIF (orientation reset to 1, pixel size updated; a
  thumbnail is dropped) and its resolution.  16-bit inputs stay 16-bit in PNG and TIFF
  outputs, float ones float in TIFF (16-bit in PNG); JPEG and WebP hold 8 bits.  CMYK stays
  CMYK in TIFF and JPEG outputs.  Palette images become RGB(A).

recover:
  Every request is written to a journal before it is waited on, and its result is kept
  in a cache (the newest {RESULT_CACHE_MAX_FILES} results, at most {_CACHE_MB} MB).  --recover
  rebuilds an output from them, or fetches the result from fal by its id; it never
  submits.  A failure after a request was sent says how to recover it.  --raw writes fal's
  image as it came back, for a result that cannot be placed.

exit status: 0 all written, 1 a failure or a skipped input, 2 usage error, 130 Ctrl-C.
Environment: FAL_KEY (the API key), FAL_QUEUE_URL (the server), FLUX_OUTPAINT_DATA_DIR
(journal and result cache)."""


def _aspect(text: str) -> tuple[int, int]:
    """``W:H`` with whole or decimal numbers as a ratio of whole numbers (2.39:1 → 239:100)."""
    match = re.fullmatch(r"(\d{1,6}(?:\.\d{1,4})?):(\d{1,6}(?:\.\d{1,4})?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"wants W:H, e.g. 16:9 or 2.39:1, not {text!r}")
    ratio_w, ratio_h = Fraction(match.group(1)), Fraction(match.group(2))
    if ratio_w <= 0 or ratio_h <= 0:
        raise argparse.ArgumentTypeError(f"sides of {text!r} must be greater than 0")
    ratio = ratio_w / ratio_h
    return ratio.numerator, ratio.denominator


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,6})[xX×](\d{1,6})", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"wants WxH, e.g. 3000x2000, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def _count(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants a whole number, not {text!r}") from None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {span}, not {value}")
        return value

    return parse


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants seconds, not {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="IN",
        help='image files (PNG, JPEG, WebP, TIFF, …); "-" reads standard input. '
        "With --recover: the input to use instead of the one in the journal "
        "(default: none; at least one is needed, except with --recover)",
    )
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")

    sides = p.add_argument_group("expansion (pick one way; default: into transparent margins)")
    for side in ("left", "right", "top", "bottom"):
        sides.add_argument(
            f"--{side}",
            type=_count(0),
            metavar="N",
            help=f"new pixels on the {side} (default: 0)",
        )
    sides.add_argument("--to", type=_size, metavar="WxH", help="final canvas size (default: none)")
    sides.add_argument(
        "--aspect",
        type=_aspect,
        metavar="W:H",
        help="grow to the smallest canvas of this aspect ratio, e.g. 16:9 or 2.39:1 "
        "(default: none)",
    )
    sides.add_argument(
        "--anchor",
        choices=tuple(geometry.ANCHORS),
        default="center",
        help="where the original sits on a --to or --aspect canvas (default: center)",
    )

    out = p.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help='the output file for one input; its suffix sets its type; "-" = standard '
        "output (default: IN-outpaint.EXT beside the input)",
    )
    out.add_argument(
        "--out-dir",
        type=Path,
        metavar="DIR",
        help="write IN-outpaint.EXT files into DIR (default: beside each input)",
    )
    out.add_argument(
        "--force", action="store_true", help="replace outputs that exist (default: skip them)"
    )
    out.add_argument(
        "--quality",
        type=_count(1, 100),
        metavar="Q",
        help=f"JPEG or WebP quality 1-100 (default: JPEG {DEFAULT_JPEG_QUALITY} with full "
        "chroma, visually lossless; WebP lossless)",
    )
    out.add_argument(
        "--output-type",
        choices=tuple(TYPES),
        help="the output type where no suffix says it: -o - and default names "
        "(default: PNG for -o -, see below for default names)",
    )
    out.add_argument(
        "--seam-blend",
        type=_count(0, MAX_BLEND),
        default=DEFAULT_BLEND,
        metavar="PX",
        help=f"pixels inside each grown edge where fal's pixels fade in; 0 = a hard edge, "
        f"the original exact everywhere (default: {DEFAULT_BLEND})",
    )
    out.add_argument(
        "--no-color-match",
        dest="color_match",
        action="store_false",
        help="keep fal's colours as they come: by default the colour drift fal's image shows "
        "over the original is measured and taken out of the new pixels (the original's "
        "pixels stay exact either way)",
    )
    out.add_argument(
        "--no-grain-match",
        dest="grain_match",
        action="store_false",
        help="leave an enlarged new band as smooth as it comes: by default, when fal's image "
        "had to be enlarged (canvases over 4 MP), grain matching the original's is added to "
        "the new band (seeded: the same input gets the same grain)",
    )

    req = p.add_argument_group("request")
    req.add_argument(
        "--variations",
        type=_count(1, MAX_VARIATIONS),
        default=1,
        metavar="N",
        help=f"takes to choose from, 1-{MAX_VARIATIONS}: N requests sent together, N outputs "
        "named IN-outpaint-1 … IN-outpaint-N (with -o, put {n} in the name); each is billed "
        "(default: 1)",
    )
    req.add_argument(
        "--mode",
        choices=payload.MODES,
        default=payload.DEFAULT_MODE,
        help=f"fal's quality mode (default: {payload.DEFAULT_MODE})",
    )
    req.add_argument(
        "--format",
        choices=payload.OUTPUT_FORMATS,
        default=payload.DEFAULT_OUTPUT_FORMAT,
        dest="output_format",
        help="the image type fal returns, not the written file's type (that follows -o); "
        "jpeg downloads faster (default: png)",
    )
    req.add_argument(
        "--no-safety-checker",
        action="store_true",
        help="ask fal not to run its safety checker (default: it runs)",
    )
    req.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_DEADLINE_S,
        metavar="S",
        help=f"give up on a job after S seconds and cancel it on fal "
        f"(default: {DEFAULT_DEADLINE_S:.0f})",
    )
    req.add_argument(
        "--local",
        action="store_true",
        help="use a local stand-in for fal in this process, to try things offline "
        "(not FLUX.2: a plain edge fill) (default: fal)",
    )
    req.add_argument(
        "--base-url",
        metavar="URL",
        help="the queue server (default: FAL_QUEUE_URL, else https://queue.fal.run)",
    )

    run = p.add_argument_group("run")
    run.add_argument(
        "--jobs", type=_count(1, 64), default=1, metavar="N", help="jobs at once (default: 1)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="show each plan and the total estimated cost; send nothing (default: off)",
    )
    run.add_argument(
        "--recover",
        nargs="?",
        const=RECOVER_LATEST,
        metavar="REQUEST_ID",
        help="rebuild the output of a paid request from the journal and result cache (or "
        "fetch it from fal); never submits (default request: the latest one not written)",
    )
    run.add_argument(
        "--raw",
        action="store_true",
        help="with --recover: write fal's image as it came back, not composited with the "
        "original (for a result that cannot be placed) (default: off)",
    )
    run.add_argument(
        "--json", action="store_true", help="one JSON line per input on stdout (default: text)"
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="only errors and the summary (default: off)"
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also retries and their reasons, conversions and timings (default: off)",
    )
    return p


@dataclass(frozen=True)
class Options:
    """The command line, checked: one field per option (``parser`` describes each)."""

    inputs: tuple[str, ...]
    # expansion: at most one way is given
    left: int | None
    right: int | None
    top: int | None
    bottom: int | None
    to: tuple[int, int] | None
    aspect: tuple[int, int] | None
    anchor: str
    # output
    output: str | None
    out_dir: Path | None
    force: bool
    quality: int | None
    output_type: str | None
    seam_blend: int
    color_match: bool
    grain_match: bool
    # request
    variations: int
    mode: str
    output_format: str
    no_safety_checker: bool
    timeout: float
    local: bool
    base_url: str | None
    # run
    jobs: int
    dry_run: bool
    recover: str | None
    raw: bool
    json: bool
    quiet: bool
    verbose: bool
    # derived
    numbers: bool  # the expansion is given per side
    stdout_is_data: bool  # the image goes to standard output: messages go to standard error

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> Options:
        return cls(
            inputs=tuple(ns.inputs),
            left=ns.left,
            right=ns.right,
            top=ns.top,
            bottom=ns.bottom,
            to=ns.to,
            aspect=ns.aspect,
            anchor=ns.anchor,
            output=ns.output,
            out_dir=ns.out_dir,
            force=ns.force,
            quality=ns.quality,
            output_type=ns.output_type,
            seam_blend=ns.seam_blend,
            color_match=ns.color_match,
            grain_match=ns.grain_match,
            variations=ns.variations,
            mode=ns.mode,
            output_format=ns.output_format,
            no_safety_checker=ns.no_safety_checker,
            timeout=ns.timeout,
            local=ns.local,
            base_url=ns.base_url,
            jobs=ns.jobs,
            dry_run=ns.dry_run,
            recover=ns.recover,
            raw=ns.raw,
            json=ns.json,
            quiet=ns.quiet,
            verbose=ns.verbose,
            numbers=any(getattr(ns, s) is not None for s in ("left", "right", "top", "bottom")),
            stdout_is_data=ns.output == STDOUT,
        )


def parse_args(argv: list[str] | None = None) -> Options:
    p = parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    numbers = any(getattr(args, s) is not None for s in ("left", "right", "top", "bottom"))
    ways = sum([numbers, args.to is not None, args.aspect is not None])
    if ways > 1:
        p.error("use only one of --left/--right/--top/--bottom, --to and --aspect")
    if args.quiet and args.verbose:
        p.error("-q and -v exclude each other")
    if args.output is not None and args.out_dir is not None:
        p.error("-o and --out-dir exclude each other")
    if args.local and args.base_url:
        p.error("--local and --base-url exclude each other")
    if args.recover is not None:
        if ways or args.dry_run:
            p.error("--recover takes no expansion and no --dry-run: the journal has the plan")
        if len(args.inputs) > 1:
            p.error("--recover takes at most one input (the original, if it moved)")
    else:
        if args.raw:
            p.error("--raw goes with --recover")
        if not args.inputs:
            p.error("give at least one input image")
        if args.output is not None and len(args.inputs) > 1:
            p.error("-o takes one input; use --out-dir for several")
        if args.inputs.count(STDOUT) > 1:
            p.error('"-" (standard input) can be given once')
        if STDOUT in args.inputs and args.output is None:
            p.error("reading standard input needs -o OUT (or -o - for standard output)")
    if args.variations > 1 and args.recover is None:
        if args.output == STDOUT:
            p.error("--variations writes several files: -o - cannot hold them")
        if args.output is not None and "{n}" not in args.output:
            p.error("with --variations, -o names every take: put {n} in it, e.g. -o wide-{n}.png")
    if args.output == STDOUT and sys.stdout.isatty():
        p.error("-o - would write an image to the terminal; redirect it or name a file")
    return Options.from_namespace(args)
