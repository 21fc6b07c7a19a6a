"""Outpaint images from the command line with FLUX.2 [pro] on fal.ai: ``flux-outpaint --help``.

Order of work: parse the command line (usage errors exit 2); inspect every input and check
every output (nothing is sent while any output would collide or overwrite an input); then
run the jobs, ``--jobs`` at a time, each in a worker thread while the main thread only
waits, so Ctrl-C is handled at once: the first cancels every request in flight on fal
(each is marked ``cancelled`` in the journal and named on stderr), writes nothing more and
exits 130; a second one exits at once.  SIGTERM and SIGHUP do the same (``signals``) and
exit 143 and 129.  A batch ends with a summary line.

Exit status: 0 every output written, 1 a failure or a skipped input, 2 usage error,
130 Ctrl-C, 143 SIGTERM, 129 SIGHUP.

``main(argv)`` leaves the process as it found it (log handlers, the SIGINT handler), so it can
run many times in one process; only the console command (``entry``) ends the process, and
only it leaves at once, threads and all, on the second Ctrl-C (``QuitNow``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from concurrent.futures import CancelledError as FutureCancelled
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flux_outpaint import payload
from flux_outpaint import recovery as core_recovery
from flux_outpaint.errors import (
    CancelledError,
    ConfigError,
    InputError,
    OutpaintError,
    user_message,
)
from flux_outpaint.journal import Journal, default_journal_path
from flux_outpaint.journal_records import State
from flux_outpaint.queue_client import FalQueueClient

from . import imageio, inputs, jobs, outputs, plan_json, recover, signals, streams
from .args import Options, parse_args
from .connection import LocalFal, local_server, server_and_key
from .console import BoardLog, Console
from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG, UsageError
from .progress import ProgressBoard

# How often the waiting main thread wakes (it is also woken by each finished job).
WAIT_SLICE_S = 0.25


@dataclass
class Tally:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    cost_usd: float = 0.0
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"done {self.done}", f"failed {self.failed}", f"skipped {self.skipped}"]
        if self.cancelled:
            parts.append(f"cancelled {self.cancelled}")
        return ", ".join(parts) + f"; estimated cost ${self.cost_usd:.3f}"

    def as_json(self) -> dict[str, Any]:
        return {
            "summary": {
                "done": self.done,
                "failed": self.failed,
                "skipped": self.skipped,
                "cancelled": self.cancelled,
                "cost_usd_estimate": round(self.cost_usd, 6),
            }
        }


class QuitNow(BaseException):
    """The second Ctrl-C: leave at once.  Raised out of ``main``; what was in flight is not
    waited for (the requests still running were named on stderr), so the process must end
    without joining its threads: ``entry`` does that."""

    code = EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """The command line, as an exit status.  Usage errors and ``--help`` leave through
    argparse's ``SystemExit`` (2 and 0) as usual; a second Ctrl-C raises ``QuitNow``."""
    try:
        args = parse_args(argv)
        with signals.handled():  # SIGTERM / SIGHUP: the Ctrl-C path, their own exit status
            if args.recover is not None:
                return recover.run(args)
            return outpaint(args)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP before any request
        print("Cancelled", file=sys.stderr)
        return signals.exit_code(exc)
    except ConfigError as exc:
        print(user_message(exc), file=sys.stderr)
        return EXIT_FAILED


# -- outpainting ------------------------------------------------------------------------------


def outpaint(args: Options) -> int:
    names = ["stdin" if raw == inputs.STDIN else raw for raw in args.inputs]
    board = ProgressBoard(names, quiet=args.quiet)
    console = Console(args, board)
    tally = Tally()
    items: list[inputs.Item] = []
    for raw, name in zip(args.inputs, names, strict=True):
        try:
            items.append(inputs.inspect(raw, args, inputs.read_stdin))
        except UsageError as exc:
            console.error(f"{name}: {exc}")
            return EXIT_USAGE
        except Exception as exc:  # noqa: BLE001 - one line per bad input, the others run
            tally.failed += 1
            board.finish(name, False, "")
            console.error(f"{name}: {user_message(exc)}")
            console.not_done(name, "failed", user_message(exc))
    try:
        outputs.check_batch([(i.name, i.path, t) for i in items for t in i.targets])
    except UsageError as exc:
        console.error(f"{PROG}: {exc}")
        return EXIT_USAGE
    ready = []
    for item in items:
        try:
            for target in item.targets:
                outputs.check_free(target, args.force)
        except outputs.OutputExistsError as exc:
            if args.dry_run:  # the plan still matters; say what a run would do
                board.say(f"{item.name}: {exc} (a run would skip it)", always=True)
                ready.append(item)
                continue
            tally.skipped += 1
            board.finish(item.name, None, "skipped")
            console.error(f"{item.name}: skipped: {exc}")
            continue
        except InputError as exc:
            tally.failed += 1
            board.finish(item.name, False, "")
            console.error(f"{item.name}: {user_message(exc)}")
            continue
        ready.append(item)
    if args.dry_run:
        return dry_run(args, ready, tally, console, board)
    if not ready:
        _summary(args, tally, console, board, len(names))
        return EXIT_FAILED
    server: LocalFal | None = None
    try:
        if args.local:
            server = local_server()
        base_url, key = server_and_key(args, server)
        if not key.strip() or any(ch.isspace() or ord(ch) < 32 for ch in key.strip()):
            raise ConfigError("The fal API key is empty or contains spaces")
    except (OutpaintError, OSError) as exc:
        console.error(user_message(exc))
        if server is not None:
            server.stop()
        return EXIT_FAILED
    # The client's TLS setup takes a moment: it happens while the first input is read.
    client = jobs.Lazy(FalQueueClient, base_url, key)
    secrets = (key,)
    cancel = threading.Event()
    runner = jobs.Runner(
        client,
        Journal(default_journal_path()),
        board,
        jobs.Settings(
            payload.RequestOptions(
                mode=args.mode,
                output_format=args.output_format,
                enable_safety_checker=not args.no_safety_checker,
            ),
            args.seam_blend,
            args.quality,
            args.force,
            args.timeout,
            args.color_match,
            args.grain_match,
        ),
        cancel,
        background_writes=len(ready) > 1,
        verbose=args.verbose,
    )
    with _verbose_log(board, args.verbose), _sigint_restored():
        try:
            code = _run_all(args, ready, runner, tally, console, board, secrets, cancel)
        except QuitNow:
            raise  # leaving at once: nothing in flight is waited for
        except BaseException:
            _close(runner, client, server)
            raise
        _close(runner, client, server)
    _summary(args, tally, console, board, len(names))
    if code != EXIT_OK:  # interrupted: 130, or 128 + the signal's number
        return code
    return EXIT_OK if tally.failed == 0 and tally.skipped == 0 else EXIT_FAILED


def _close(runner: jobs.Runner, client: jobs.Lazy[FalQueueClient], server: LocalFal | None) -> None:
    runner.close()
    with contextlib.suppress(Exception):  # a client that failed to start failed its jobs
        client.result().close()
    if server is not None:
        server.stop()


@contextlib.contextmanager
def _verbose_log(board: ProgressBoard, verbose: bool) -> Iterator[None]:
    """-v: the core's log lines through the board while the jobs run, and only then."""
    if not verbose:
        yield
        return
    log = logging.getLogger("flux_outpaint")
    handler, level = BoardLog(board), log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@contextlib.contextmanager
def _sigint_restored() -> Iterator[None]:
    """The SIGINT handler as it was before the run, whatever the run installed (after the
    first Ctrl-C, ``_run_all`` installs one that quits at once; ``signals.handled`` puts
    SIGTERM and SIGHUP back)."""
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        yield
    finally:
        if main_thread and previous is not None:
            signal.signal(signal.SIGINT, previous)


def _run_all(
    args: Options,
    items: list[inputs.Item],
    runner: jobs.Runner,
    tally: Tally,
    console: Console,
    board: ProgressBoard,
    secrets: tuple[str, ...],
    cancel: threading.Event,
) -> int:
    pool = ThreadPoolExecutor(max_workers=args.jobs, thread_name_prefix="job")
    pending: dict[Future[Any], inputs.Item] = {
        pool.submit(runner.run, item): item for item in items
    }
    interrupted: int | None = None  # the exit status once interrupted
    try:
        while pending:
            try:
                _collect(pending, tally, console, board, secrets, runner.journal)
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM / SIGHUP (signals.Stopped)
                if interrupted is not None:  # the second one, before the handler took over
                    _quit_now(pending, console, signals.exit_code(exc))
                interrupted = signals.exit_code(exc)
                cancel.set()
                signals.on_every_stop(lambda code: _quit_now(pending, console, code))
                why = "Cancelling" if interrupted == EXIT_INTERRUPTED else "Stopped by a signal"
                console.error(
                    f"{why}: every request in flight is cancelled on fal "
                    "(Ctrl-C again quits at once)"
                )
                pool.shutdown(wait=False, cancel_futures=True)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return EXIT_OK if interrupted is None else interrupted


def _collect(
    pending: dict[Future[Any], inputs.Item],
    tally: Tally,
    console: Console,
    board: ProgressBoard,
    secrets: tuple[str, ...],
    journal: Journal,
) -> None:
    """Wait a little; account for every job or write that finished."""
    # A job cancelled by the pool's shutdown is never "done" for wait(): take it out first.
    dropped = [fut for fut in pending if fut.cancelled()]
    done = set(dropped) if dropped else set()
    if not done:
        done, _ = wait(list(pending), timeout=WAIT_SLICE_S, return_when=FIRST_COMPLETED)
    for fut in done:
        item = pending.pop(fut)
        try:
            value = fut.result()
        except FutureCancelled:
            tally.skipped += 1
            board.finish(item.name, None, "not sent (cancelled)")
            console.not_done(item.name, "skipped", "not sent (cancelled)")
            continue
        except CancelledError as exc:
            tally.cancelled += 1
            _count_cost(item, tally)
            # every take of a --variations input was a request of its own: name them all
            rids = item.request_ids or [r for r in (exc.request_id or item.request_id,) if r]
            board.finish(item.name, None, "cancelled")
            if rids:
                what = "request" if len(rids) == 1 else "requests"
                console.error(f"{item.name}: cancelled {what} {', '.join(rids)} on fal ({exc})")
            else:
                console.error(f"{item.name}: cancelled before it was sent")
            console.not_done(item.name, "cancelled", user_message(exc, secrets), rids)
            continue
        except Exception as exc:  # noqa: BLE001 - one line per failed input, the others run
            tally.failed += 1
            _count_cost(item, tally)
            rid = getattr(exc, "request_id", None) or item.request_id
            msg = user_message(exc, secrets)
            board.finish(item.name, False, "failed")
            if rid is not None and _unplaced(journal, rid, exc):
                msg = f"{msg}; {recover.hint(rid)}"
            console.error(f"{item.name}: {msg}")
            console.not_done(item.name, "failed", msg, [rid] if rid else None)
            continue
        if isinstance(value, jobs.Variations):
            _count_cost(item, tally)
            for part in value.placed:
                if isinstance(part, Future):
                    pending[part] = item  # a take's write, in the background
                else:
                    _written(part, tally, console, board)
            failed = [t for t in value.takes if t.error is not None]
            if failed:
                tally.failed += len(failed)
                hints = [
                    recover.hint(t.error.request_id)
                    for t in failed
                    if t.error is not None
                    and t.error.request_id
                    and _unplaced(journal, t.error.request_id, t.error)
                ]
                line = "; ".join([value.failures(secrets), *hints])
                console.error(f"{item.name}: {line}")
                rids = [t.error.request_id for t in failed if t.error and t.error.request_id]
                console.not_done(item.name, "failed", line, rids)
            continue
        if isinstance(value, Future):
            pending[value] = item  # the write, in the background
            continue
        if item.variations == 1:
            _count_cost(item, tally)
        _written(value, tally, console, board)


def _written(value: jobs.Written, tally: Tally, console: Console, board: ProgressBoard) -> None:
    item = value.item
    tally.done += 1
    board.finish(item.name, True, f"-> {item.target}")
    console.result(f"{item.name} -> {item.target}", value.as_json())
    for note in value.notes:
        board.say(f"{item.name}: {note}")


def _unplaced(journal: Journal, rid: str, exc: BaseException) -> bool:
    """A failure after the submit whose result can still come back: marked ``unplaced`` for
    --recover, and True (worth the hint).  False for a request fal made nothing for, one
    cancelled before it finished, or one that is not in the journal at all."""
    try:
        entry = journal.find(rid)
    except OSError:
        return False
    if not core_recovery.worth_a_hint(exc, entry):
        return False
    # The message printed names the request; the journal has its submit even if this fails.
    with contextlib.suppress(OSError):
        journal.mark(rid, State.UNPLACED, error=user_message(exc))
    return True


def _count_cost(item: inputs.Item, tally: Tally) -> None:
    """Every request sent is billed: one per take that was submitted."""
    sent = len(item.request_ids) or int(bool(item.submitted or item.request_id))
    tally.cost_usd += item.plan.cost_usd * sent


def _quit_now(
    pending: dict[Future[Any], inputs.Item], console: Console, code: int = EXIT_INTERRUPTED
) -> NoReturn:
    """The second Ctrl-C (or signal): name the requests still in flight, remove the outputs
    being written, and leave at once (``QuitNow`` with ``code``).

    Writes to stderr directly: the board's lock may be held by the code this interrupted.
    """
    outputs.remove_parts()
    lines = [
        f"{item.name}: request {rid} may still run on fal; {recover.hint(rid)}\n"
        for item in list(pending.values())
        for rid in (item.request_ids or ([item.request_id] if item.request_id else []))
        if rid
    ]
    with contextlib.suppress(OSError):
        sys.stderr.write("".join(lines) + "Quit\n")
        sys.stderr.flush()
    quit_ = QuitNow()
    quit_.code = code
    raise quit_


def _summary(args: Options, tally: Tally, console: Console, board: ProgressBoard, n: int) -> None:
    if args.json:
        console._print(json.dumps(tally.as_json()))
    elif n > 1 or tally.cancelled:
        board.say(tally.summary(), always=True)


def dry_run(
    args: Options, items: list[inputs.Item], tally: Tally, console: Console, board: ProgressBoard
) -> int:
    for item in items:
        try:
            info = plan_json.describe(item)
        except Exception as exc:  # noqa: BLE001 - one line per input that cannot be read
            tally.failed += 1
            console.error(f"{item.name}: {user_message(exc)}")
            continue
        tally.cost_usd += item.plan.cost_usd * item.variations
        tally.done += 1
        what, cost = item.plan.describe(variations=item.variations)
        where = ", ".join(str(t) for t in item.targets) if item.variations > 1 else item.target
        console.result(
            f"{item.name} -> {where}: {what}; {cost.lower()}; payload {info['encoding']} "
            f"{info['payload_bytes']} bytes, {info['transport']}",
            info,
        )
    total = f"total estimated cost: ${tally.cost_usd:.3f} for {len(items)} image(s)"
    if args.json:
        console._print(
            json.dumps(
                {
                    "total_cost_usd_estimate": round(tally.cost_usd, 6),
                    "images": len(items),
                    "failed": tally.failed,
                    "skipped": tally.skipped,
                }
            )
        )
    else:
        board.say(total, always=True)
    return EXIT_OK if tally.failed == 0 and tally.skipped == 0 else EXIT_FAILED


def entry() -> None:
    """The console command ``flux-outpaint``."""
    streams.guard()  # a closed terminal must not cost a paid result
    try:
        code = main()
    except QuitNow as quit_:
        # Threads still wait on the network: ending the process is the only way out now.
        os._exit(quit_.code)
    if sys.stdout is not None:  # None: started with descriptor 1 closed
        sys.stdout.flush()
    sys.exit(code)


__all__ = ["QuitNow", "entry", "imageio", "main"]
