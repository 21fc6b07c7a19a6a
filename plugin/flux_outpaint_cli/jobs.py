"""One inspected input (``inputs``) to written output: read, send, compose, write.

``Runner.run`` is one job in a worker thread: it reads the input and waits for fal, then
hands the result to its ``Placer``, which composes it with the original and writes the file
(``Placer.write``), in a background thread when the batch has more than one input, so the
next job's network wait overlaps this one's writing.  ``--recover`` uses a ``Placer`` alone:
placing needs no network.
"""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar

import numpy as np
from flux_outpaint import colormatch, imageinfo
from flux_outpaint.errors import (
    CancelledError,
    InputError,
    OutpaintError,
    ResultError,
    about_request,
)
from flux_outpaint.framing import check_size
from flux_outpaint.grain import NONE
from flux_outpaint.journal import Journal
from flux_outpaint.journal_records import CliFile, State
from flux_outpaint.payload import RequestOptions
from flux_outpaint.pipeline import Job, run_job
from flux_outpaint.queue_client import FalQueueClient
from flux_outpaint.status import Phase, Progress
from flux_outpaint.variations import Take, failure_line, run_variations
from PIL import Image

from . import bounded, imageio, metadata, outputs
from . import photo as ph
from .compose import fill, grain_for, new_area, seam_strips, start_canvas
from .inputs import STDIN, Item, describe, read_input, reference_box
from .progress import COMPOSING, READING, WRITING, ProgressBoard

# At most this many composed canvases wait for (or are in) the background writer: each is
# the size of the output, so the bound is what keeps a long batch's memory flat.
MAX_PENDING_WRITES = 2


@dataclass
class Written:
    item: Item
    request_id: str
    seconds: float
    size: tuple[int, int]
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.item.name,
            "output": str(self.item.target),
            "request_id": self.request_id,
            "size": list(self.size),
            "seconds": round(self.seconds, 3),
            "cost_usd_estimate": self.item.plan.cost_usd,
        }


class NotWritten(OutpaintError):
    """A paid result that was not written (cancelled, or the output appeared meanwhile)."""


@dataclass
class Settings:
    options: RequestOptions
    seam_blend: int
    quality: int | None
    force: bool
    timeout: float
    color_match: bool = True
    grain_match: bool = True


class Runner:
    """Runs items: shared client, journal, board and cancel flag; thread-safe."""

    def __init__(
        self,
        client: Lazy[FalQueueClient],
        journal: Journal,
        board: ProgressBoard,
        settings: Settings,
        cancel: threading.Event,
        background_writes: bool,
        verbose: bool = False,
    ) -> None:
        self.client, self.journal, self.board = client, journal, board
        self.settings, self.cancel, self.verbose = settings, cancel, verbose
        self.placer = Placer(journal, board, settings, cancel, background_writes, verbose)

    def close(self) -> None:
        self.placer.close()

    def read(self, item: Item) -> tuple[ph.Photo, bytes]:
        """The input, read again for its job, and the reference to send (sRGB RGBA 8-bit at
        the request's size)."""
        name = item.name
        if self.cancel.is_set():
            raise CancelledError("Cancelled before it was sent")
        self.board.update(name, READING, elapsed_s=0.0)
        photo = ph.load(
            item.data if item.data is not None else read_input(item.path, name), name, item.path
        )
        if photo.size != item.size:
            raise InputError(f"{name} changed while the batch ran")
        for note in photo.notes:
            self.board.say(f"{name}: {note}")
        if self.verbose:
            self.board.say(f"{name}: {describe(photo)}")
        box = reference_box(item.plan, item.origin)
        return photo, photo.rgba8(box, item.plan.request_reference)

    def run(self, item: Item) -> Written | Future[Written] | Variations:
        """The job; returns what was written, or the background write that will be."""
        if item.variations > 1:
            return self.run_variations(item)
        t0 = time.monotonic()
        name = item.name
        photo, reference = self.read(item)

        def progress(p: Progress) -> None:
            if p.phase is Phase.DONE:
                return  # the network part is done; composing and writing follow
            if p.request_id and not item.request_id:
                item.request_id = p.request_id
                item.submitted = True
            self.board.update(
                name,
                p.phase,
                queue_position=p.queue_position,
                elapsed_s=time.monotonic() - t0,
                note=p.log_line or "",
                request_id=p.request_id,
            )

        purpose = self.placer.purpose(item, photo)
        job = Job(reference, item.plan, self.settings.options, purpose)
        del reference
        # The original goes onto the canvas while fal works: it needs no result.
        early = Lazy(start_canvas, photo, item.plan, item.origin)
        result = run_job(
            job,
            client=self.client.result(),
            journal=self.journal,
            encoder=imageio.encode,
            on_progress=progress,
            cancel=self.cancel,
            deadline_s=self.settings.timeout,
        )
        return self.placer.place(
            item, photo, result.data, result.request_id, t0, early, job.reference_rgba
        )

    def run_variations(self, item: Item) -> Variations:
        """--variations N: N requests for one reference, sent together; each take that
        arrives is placed into its own output, and the takes that failed are named."""
        t0 = time.monotonic()
        name, count = item.name, item.variations
        photo, reference = self.read(item)
        phases: dict[int, Progress] = {}
        lock = threading.Lock()

        def progress(index: int, p: Progress) -> None:
            with lock:
                phases[index] = p
                if p.request_id and p.request_id not in item.request_ids:
                    item.request_ids.append(p.request_id)
                    item.request_id = item.request_id or p.request_id
                    item.submitted = True
                least = min(phases.values(), key=lambda q: _STEP.get(q.phase, 0))
                done = sum(1 for q in phases.values() if q.phase is Phase.DONE)
            self.board.update(
                name,
                least.phase if least.phase is not Phase.DONE else Phase.DOWNLOADING,
                queue_position=least.queue_position,
                elapsed_s=time.monotonic() - t0,
                note=f"{done}/{count} takes in",
                request_id=p.request_id,
            )

        job = Job(reference, item.plan, self.settings.options, self.placer.purpose(item, photo))
        takes = run_variations(
            job,
            count,
            client=self.client.result(),
            journal=self.journal,
            encoder=imageio.encode,
            on_progress=progress,
            cancel=self.cancel,
            deadline_s=self.settings.timeout,
        )
        placed: list[Written | Future[Written]] = []
        for take in takes:
            if take.result is None:
                continue
            one = dataclasses.replace(
                item,
                target=item.targets[take.index],
                request_id=take.result.request_id,
                targets=[item.targets[take.index]],
            )
            try:
                placed.append(
                    self.placer.place(
                        one, photo, take.result.data, take.result.request_id, t0, None, reference
                    )
                )
            except OutpaintError as exc:
                takes[take.index] = Take(take.index, error=exc)
        if not placed:
            first = next(t.error for t in takes if t.error is not None)
            assert first is not None
            if all(isinstance(t.error, CancelledError) for t in takes):
                raise first
            raise OutpaintError(failure_line(takes), request_id=first.request_id)
        return Variations(placed, takes)


class Placer:
    """Composes fal's images with the originals and writes them; thread-safe.  Placing
    needs the journal (to mark what was written) but never the network."""

    def __init__(
        self,
        journal: Journal,
        board: ProgressBoard,
        settings: Settings,
        cancel: threading.Event,
        background_writes: bool,
        verbose: bool = False,
    ) -> None:
        self.journal, self.board = journal, board
        self.settings, self.cancel, self.verbose = settings, cancel, verbose
        self._writer = ThreadPoolExecutor(1, "writer") if background_writes else None
        self._slots = threading.Semaphore(MAX_PENDING_WRITES)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=False, cancel_futures=True)

    def place(
        self,
        item: Item,
        photo: ph.Photo,
        data: bytes,
        rid: str,
        t0: float,
        early: Lazy[np.ndarray] | None = None,
        reference: bytes | None = None,
    ) -> Written | Future[Written]:
        """Compose fal's image with the photo, then write it (in the background in a batch).

        ``reference``: the pixels that were sent (made again from the photo when not given),
        against which fal's colour drift is measured."""
        name = item.name
        with about_request(rid):
            self._check_cancel(rid)
            self.board.update(name, COMPOSING, elapsed_s=time.monotonic() - t0)
            self._slots.acquire()
            try:
                end = max(t0 + self.settings.timeout, time.monotonic() + DECODE_GRACE_S)
                returned = open_result(
                    data, item.plan.request_output, deadline=end, cancel=self.cancel
                )
                check_size(returned.size, item.plan.request_output)
                if self.settings.color_match:
                    returned = self.color_matched(item, photo, returned, reference)
                grain = NONE
                if self.settings.grain_match:
                    grain = grain_for(photo, item.origin, returned, item.plan)
                    if self.verbose:
                        self.board.say(f"{name}: {grain.describe()}")
                if early is None:
                    early = Lazy(start_canvas, photo, item.plan, item.origin)
                canvas = fill(
                    early.result(),
                    photo,
                    returned,
                    item.plan,
                    self.settings.seam_blend,
                    grain=grain,
                )
                del returned, early
                meta = imageio.Metadata(
                    photo.icc,
                    metadata.exif_for_size(photo.exif, canvas.shape[1], canvas.shape[0]),
                    photo.dpi,
                )
                space = photo.space
                del photo
            except BaseException:
                self._slots.release()
                raise
        if self._writer is None:
            return self.write(item, rid, canvas, space, meta, t0)
        return self._writer.submit(self.write, item, rid, canvas, space, meta, t0)

    def write(
        self,
        item: Item,
        rid: str,
        canvas: np.ndarray,
        space: ph.ColourSpace,
        meta: imageio.Metadata,
        t0: float,
    ) -> Written:
        try:
            with about_request(rid):
                self._check_cancel(rid)
                t_write = time.monotonic()
                self.board.update(item.name, WRITING, elapsed_s=t_write - t0)
                try:
                    with outputs.atomic(item.target, self.settings.force, self.cancel.is_set) as f:
                        notes = imageio.write(
                            canvas, space, item.target.format, f, meta, self.settings.quality
                        )
                except outputs.OutputExistsError as exc:
                    raise NotWritten(str(exc)) from None
                except OSError as exc:
                    raise NotWritten(
                        f"Could not write {item.target}: {exc.strerror or exc}"
                    ) from None
                self._check_cancel(rid)
                size = (canvas.shape[1], canvas.shape[0])
        finally:
            self._slots.release()
        where = "-" if item.target.path is None else str(item.target.path.resolve())
        self.journal.mark(rid, State.PLACED, output=where)
        if self.verbose:
            self.board.say(f"{item.name}: written in {time.monotonic() - t_write:.2f} s")
        return Written(item, rid, time.monotonic() - t0, size, notes)

    def color_matched(
        self, item: Item, photo: ph.Photo, returned: Image.Image, reference: bytes | None
    ) -> Image.Image:
        """fal's image with the colour drift it shows over the original taken out (in the
        sRGB it was sent and returned in, before the pixels go back to the photo's space)."""
        if reference is None:
            box = reference_box(item.plan, item.origin)
            reference = photo.rgba8(box, item.plan.request_reference)
        rgba = returned.convert("RGBA")
        pixels = rgba.tobytes()
        correction = colormatch.for_plan(pixels, rgba.size, reference, item.plan)
        if self.verbose:
            self.board.say(f"{item.name}: {correction.describe()}")
        if correction.is_identity:
            return returned
        plan, blend = item.plan, self.settings.seam_blend
        shown = [*new_area(plan), *seam_strips(plan, blend)]
        areas = colormatch.on_result(shown, plan.placement, rgba.size)
        fixed = Image.frombytes("RGBA", rgba.size, correction.apply(pixels, *rgba.size, areas))
        return fixed if returned.mode == "RGBA" else fixed.convert(returned.mode)

    def _check_cancel(self, rid: str) -> None:
        if self.cancel.is_set():
            raise NotWritten(
                "Cancelled after the result arrived: nothing was written, the result is kept",
                request_id=rid,
            )

    def purpose(self, item: Item, photo: ph.Photo) -> CliFile:
        """What --recover needs, recorded in the journal with the request."""

        def where(target: outputs.Target) -> str:
            return outputs.STDOUT if target.path is None else str(target.path.resolve())

        return CliFile(
            input=STDIN if item.path is None else str(item.path.resolve()),
            input_sha256=photo.sha256,
            input_size=photo.size,
            origin=item.origin,
            output=where(item.target),
            output_type=item.target.format,
            seam_blend=self.settings.seam_blend,
            quality=self.settings.quality,
            color_match=self.settings.color_match,
            outputs=tuple(where(t) for t in item.targets) if item.variations > 1 else (),
            grain_match=self.settings.grain_match,
        )


# How far along a take is, for showing the least advanced of several.
_STEP = {phase: n for n, phase in enumerate(Phase)}


@dataclass
class Variations:
    """What --variations gave for one input: the outputs placed (or being written) and every
    take, the failed ones included."""

    placed: list[Written | Future[Written]]
    takes: list[Take]

    def failures(self, secrets: tuple[str, ...] = ()) -> str:
        return failure_line(self.takes, secrets)


_P = ParamSpec("_P")
_T = TypeVar("_T")


class Lazy(Generic[_T]):
    """A value made in its own thread; ``result()`` waits for it (or re-raises its error)."""

    def __init__(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> None:
        self._made: list[_T] = []  # the value, once made
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(lambda: fn(*args, **kwargs),), daemon=True
        )
        self._thread.start()

    def _run(self, make: Callable[[], _T]) -> None:
        try:
            self._made.append(make())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self._error = exc

    def result(self) -> _T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._made[0]


# Decoding a result may take at least this long whatever is left of --timeout: a true 4 MP
# result decodes in a fraction of a second, a file built to be slow is left behind.
DECODE_GRACE_S = 5.0


def open_result(
    data: bytes,
    want: tuple[int, int] | None = None,
    *,
    deadline: float | None = None,
    cancel: threading.Event | None = None,
) -> Image.Image:
    """fal's image, decoded once its header has shown a size worth decoding (the planned
    ``want`` or a uniformly smaller one, else no more than any outpaint result) and a
    structure that costs no more than its pixels (``imageinfo.check_header``).  The decoding
    runs where a ``deadline`` (``time.monotonic()``) or ``cancel`` can leave it behind
    (``bounded.abandonable``)."""
    imageinfo.check_header(data, want)  # the size decides what decoding allocates

    def decode() -> Image.Image:
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ResultError(f"fal's image could not be decoded ({type(exc).__name__})") from None
        return image

    return bounded.abandonable(
        decode, deadline=deadline, cancel=cancel, what="Decoding fal's image"
    )
