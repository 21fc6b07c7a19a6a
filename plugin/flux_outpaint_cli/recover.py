"""``--recover [REQUEST_ID]``: a paid result back into the output it was meant for.

The journal entry of a CLI request records the input (path and SHA-256), where it sat on
the canvas, the plan and the output (path, type, quality, seam blend).  Recovering reads
the same input again (or the one given on the command line, which must have the same
hash), rebuilds the same plan, takes the result from the cache — or from fal by its id
when the cache no longer has it — and writes the output exactly as the first run would
have.  It never submits.  Which request, the cache and the fetch are the core's recovery
service (``flux_outpaint.recovery``, shared with the plug-in): without an id it takes the
newest CLI request whose result was never written.  ``--raw`` writes fal's image as it came
back, without the original: the way to keep a result that cannot be placed (a wrong size) or
one made in GIMP.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from flux_outpaint import geometry, payload, planning, recovery
from flux_outpaint.errors import (
    InputError,
    OutpaintError,
    ResultError,
    about_request,
    user_message,
)
from flux_outpaint.journal import Journal, JournalEntry, default_journal_path
from flux_outpaint.journal_records import CliFile, State
from flux_outpaint.queue_client import FalQueueClient

from . import imageio, jobs, outputs
from . import photo as ph
from .args import RECOVER_LATEST, Options
from .connection import LocalFal, local_server, make_client
from .console import Console
from .exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE, PROG, UsageError
from .inputs import STDIN, Item
from .progress import ProgressBoard


class RecoverError(OutpaintError):
    pass


def hint(request_id: str) -> str:
    return f"recover with: flux-outpaint --recover {request_id}"


def choose(journal: Journal, wanted: str | None) -> JournalEntry:
    """The entry for ``wanted``, or the latest CLI request (the core's rule)."""
    return recovery.choose(journal, wanted, CliFile.TOOL)


def rebuild(
    entry: JournalEntry, input_override: str | None, output: str | None, out_type: str | None
) -> tuple[Item, ph.Photo, dict[str, Any]]:
    """The item (plan, origin, target) and the photo as the first run had them."""
    rid = entry.request_id
    p = entry.purpose
    with about_request(rid):
        if p.kind.startswith("gimp"):
            raise RecoverError(
                f"Request {rid} was made by the GIMP plug-in: recover it there "
                "(Filters ▸ Generative ▸ Recover last outpaint result), or write fal's image "
                "with --raw -o OUT"
            )
        plan_record = entry.plan
        if not isinstance(p, CliFile) or plan_record is None:
            raise RecoverError(
                f"The journal entry of {rid} lacks what recover needs (made by an older version?)"
            )
        canvas = plan_record.canvas
        ref = geometry.Rect(*plan_record.reference)
        origin = p.origin
        recorded_output = entry.output or p.output_of_take()
        out_format = p.output_type
        seam_blend = p.seam_blend
        quality = p.quality
        color_match = p.color_match
        grain_match = p.grain_match
        source_path = p.input
        digest = p.input_sha256
        raw = input_override or source_path
        if raw == STDIN:
            raise RecoverError(
                f"The input of {rid} came from standard input: give the same image again, "
                f"e.g. flux-outpaint --recover {rid} photo.jpg"
            )
        path = Path(raw)
        photo = ph.read(path)
        if photo.sha256 != digest:
            raise InputError(
                f"{path} is not the image request {rid} was made from (it changed or is another "
                "file); give the original: flux-outpaint --recover ID ORIGINAL"
            )
        plan = planning.make_plan(geometry.Source(ref, canvas[0], canvas[1]))
        if plan.request_output != plan_record.request_output:
            raise RecoverError(f"The plan of {rid} cannot be rebuilt by this version")
        if output is not None:
            target = outputs.target_for(
                photo.name, path, photo.source_format, photo.space.colour, output, None, out_type
            )
        elif recorded_output == outputs.STDOUT:
            raise RecoverError(
                f"Request {rid} was written to standard output: give -o OUT (or -o -)"
            )
        elif recorded_output is None:
            raise RecoverError(f"The journal does not say where take {rid} goes: give -o OUT")
        else:
            target = outputs.Target(Path(recorded_output), out_format)
        item = Item(
            name=str(path),
            path=path,
            data=None,
            size=photo.size,
            source_format=photo.source_format,
            colour=photo.space.colour,
            plan=plan,
            origin=origin,
            target=target,
            request_id=rid,
        )
        return (
            item,
            photo,
            {
                "seam_blend": seam_blend,
                "quality": quality,
                "color_match": color_match,
                "grain_match": grain_match,
            },
        )


def result_bytes(
    entry: JournalEntry, journal: Journal, client_factory: Callable[[], FalQueueClient]
) -> tuple[bytes, str]:
    """The cached result (checked), else fetched from the server that took the request (a
    client is made only then)."""
    return recovery.result(journal, entry, client_factory)


def run(args: Options) -> int:
    """``flux-outpaint --recover [REQUEST_ID] [IN] [-o OUT]``: exit status as for a run."""
    journal = Journal(default_journal_path())
    wanted = None if args.recover == RECOVER_LATEST else args.recover
    inputs = list(args.inputs)
    if wanted is not None and journal.find(wanted) is None and Path(wanted).is_file():
        inputs, wanted = [wanted, *inputs], None  # `--recover photo.jpg`: the input, not an id
    if len(inputs) > 1:
        print(f"{PROG}: --recover takes at most one input", file=sys.stderr)
        return EXIT_USAGE
    board = ProgressBoard(["recover"], quiet=args.quiet)
    console = Console(args, board)
    server: LocalFal | None = None

    def client() -> FalQueueClient:
        nonlocal server
        if args.local:
            server = local_server()
        return make_client(args, server)

    try:
        entry = choose(journal, wanted)
        rid = entry.request_id
        if args.raw:
            return _raw(args, entry, journal, client, board, console)
        item, photo, recorded = rebuild(
            entry, inputs[0] if inputs else None, args.output, args.output_type
        )
        board = ProgressBoard([item.name], quiet=args.quiet)
        console = Console(args, board)
        outputs.check_free(item.target, args.force)
        board.update(item.name, "fetching", request_id=rid)
        data, _ = result_bytes(entry, journal, client)
        placer = jobs.Placer(
            journal,
            board,
            jobs.Settings(
                payload.RequestOptions(),
                recorded["seam_blend"],
                args.quality if args.quality is not None else recorded["quality"],
                args.force,
                args.timeout,
                recorded["color_match"] and args.color_match,
                recorded["grain_match"] and args.grain_match,
            ),
            threading.Event(),
            background_writes=False,
        )
        written = placer.place(item, photo, data, rid, time.monotonic())
        assert not isinstance(written, Future)
    except UsageError as exc:
        console.error(f"{PROG}: {exc}")
        return EXIT_USAGE
    except outputs.OutputExistsError as exc:
        console.error(f"{exc}")
        return EXIT_FAILED
    except ResultError as exc:
        console.error(f"{user_message(exc)}; --raw writes fal's image as it came back")
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - one line, the request named
        console.error(user_message(exc))
        return EXIT_FAILED
    finally:
        if server is not None:
            server.stop()
    board.finish(item.name, True, f"-> {item.target}")
    console.result(f"recovered {rid}: {item.name} -> {item.target}", written.as_json())
    return EXIT_OK


def _raw(
    args: Options,
    entry: JournalEntry,
    journal: Journal,
    client: Callable[[], FalQueueClient],
    board: ProgressBoard,
    console: Console,
) -> int:
    """``--recover --raw``: fal's image as it came back, to -o or the recorded output."""
    rid = entry.request_id
    purpose = entry.purpose
    recorded = entry.output or (purpose.output_of_take() if isinstance(purpose, CliFile) else None)
    if args.output is not None:
        target = outputs.target_for(rid, None, "PNG", "RGB", args.output, None, args.output_type)
    elif isinstance(recorded, str) and recorded != outputs.STDOUT:
        path = Path(recorded)
        target = outputs.Target(path, outputs.format_of(path))
    else:
        raise RecoverError(f"Give -o OUT: request {rid} has no output file in the journal")
    outputs.check_free(target, args.force)
    data, _ = result_bytes(entry, journal, client)
    with about_request(rid):
        image = jobs.open_result(data).convert("RGB")
        values = np.asarray(image)
        with outputs.atomic(target, args.force, lambda: False) as stream:
            imageio.write(
                values,
                ph.ColourSpace("RGB", False, "uint8"),
                target.format,
                stream,
                imageio.Metadata(),
                args.quality,
            )
    where = outputs.STDOUT if target.path is None else str(target.path.resolve())
    journal.mark(rid, State.PLACED, output=where, raw=True)
    w, h = image.size
    console.result(
        f"recovered {rid} as fal returned it ({w}×{h}, not composited) -> {target}",
        {"request_id": rid, "output": str(target), "size": [w, h], "raw": True},
    )
    board.finish("recover", True, "")
    return EXIT_OK
