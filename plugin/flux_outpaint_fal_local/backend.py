"""The queue behind the local fal server: job lifecycle and file store.

Each job runs in its own thread that waits on one shared Condition, so a state change reaches
status polls and SSE streams at once. Timing: ``queue_seconds`` IN_QUEUE with positions counting
down 2, 1, 0; then ``run_seconds`` IN_PROGRESS with a few log lines (the fill itself runs at the
start of that time); then COMPLETED.  The active fault scenarios (``scenarios``) bend it.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from . import attacks, fill, hostile
from .responses import (
    CANCELLED,
    CONTENT_POLICY,
    INTERNAL_ERROR,
    MODE_NOT_PERMITTED,
    RUNNER_FAILED,
    RUNNER_FAILED_TYPE,
    START_TIMEOUT,
)
from .scenarios import Faults

APP = ("fal-ai", "flux-2-pro")
QUEUE_POSITIONS = 3
RUN_LOG_LINES = 3  # log entries a normal run produces before the completion line
RESULT_TTL_S, LARGE_RESULT_TTL_S, LARGE_RESULT_BYTES = 3600.0, 360.0, 10 * 1024  # §2.5
# A finished job's answer: HTTP status, JSON body, extra headers.
Outcome = tuple[int, dict[str, Any], dict[str, str]]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def price_usd(width: int, height: int) -> float:
    """§7.4: $0.03 for the first megapixel (2**20 px), $0.015 per further one, rounded up."""
    return 0.03 + 0.015 * (max(1, math.ceil(width * height / 2**20)) - 1)


def safe_name(name: object) -> str:
    """A stored file's name: the last path part of `name`, in URL-safe characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(str(name or "")).name)[:100]
    return cleaned.strip(".") or "upload.bin"


@dataclass(eq=False)
class Job:
    id: str
    body: object
    queue_until: float
    timeout_at: float | None
    app: tuple[str, str] = APP
    state: str = "IN_QUEUE"
    position: int = 0
    logs: list[dict[str, str]] = field(default_factory=list)
    cancel_requested: bool = False
    started: float = 0.0
    completed_at: float = 0.0
    inference_time: float | None = None
    error: tuple[str, str | None] | None = None  # (error, error_type) for the COMPLETED status
    result: Outcome | None = None  # (HTTP status, JSON body, extra headers)
    size: tuple[int, int] | None = None
    key: str = ""  # the key the submit carried (echoed by the hostile scenarios)

    def log(self, message: str) -> None:
        self.logs.append(
            {"message": message, "level": "INFO", "source": "USER", "timestamp": now_iso()}
        )


class Backend:
    """Jobs and files. `cond` guards the jobs; waiters are woken on every change."""

    def __init__(
        self,
        *,
        queue_seconds: float,
        run_seconds: float,
        scenarios: Iterable[str],
        local_hosts: Iterable[str] = (),
    ) -> None:
        self.queue_s, self.run_s = float(queue_seconds), float(run_seconds)
        self.faults = Faults(scenarios)
        self.local_hosts = LOCAL_HOSTS | set(local_hosts)
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()  # guards files and submits
        self.files: dict[str, tuple[bytes, str]] = {}  # key (path after /files/) → (data, type)
        self.submits: list[str] = []
        # Told (with the wall-clock time) when a job completes; the benchmarks log it to
        # measure how soon a client has the result in hand.
        self.on_complete: Callable[[Job, float], None] | None = None

    def stop(self) -> None:
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()

    def submit(self, body: object, timeout_s: float | None, key: str = "") -> Job:
        now = time.monotonic()
        job = Job(
            str(uuid.uuid4()),
            body,
            now + self.queue_s,
            None if timeout_s is None else now + timeout_s,
            position=QUEUE_POSITIONS - 1 if self.queue_s > 0 else 0,
            key=key,
        )
        with self.cond:
            self.jobs[job.id] = job
        with self.lock:
            self.submits.append(job.id)
        threading.Thread(
            target=self._work, args=(job,), name=f"job-{job.id[:8]}", daemon=True
        ).start()
        return job

    def cancel(self, job: Job) -> tuple[int, dict[str, Any]]:
        with self.cond:
            if job.state == "COMPLETED":
                return 400, {"status": "ALREADY_COMPLETED"}
            job.cancel_requested = True
            self.cond.notify_all()
        return 202, {"status": "CANCELLATION_REQUESTED"}

    def _work(self, job: Job) -> None:
        with self.cond:
            while not self._queued_step(job):
                pass
            if job.state == "COMPLETED":
                return
            job.state, job.started = "IN_PROGRESS", time.monotonic()
            job.log("Outpainting started (local fill, not a generative model)")
            self.cond.notify_all()
        try:
            outcome = self._run_model(job)
        except Exception:  # noqa: BLE001 - a bug in the fill must end the job, not strand it
            traceback.print_exc()
            outcome = (500, INTERNAL_ERROR, {})
        forever = self.faults.active("never-finish")
        with self.cond:
            while not self.stopping.is_set():
                if job.cancel_requested and not self.faults.active("ignore-cancel"):
                    outcome = (499, CANCELLED, {})
                    break
                left = job.started + self.run_s - time.monotonic()
                if left <= 0 and not forever:
                    break
                self.cond.wait(1.0 if forever else min(left, max(self.run_s / RUN_LOG_LINES, 0.01)))
                hostile_logs = self.faults.active("echo-key") or self.faults.active(
                    "key-in-disguise"
                )
                if forever or len(job.logs) < RUN_LOG_LINES or hostile_logs:
                    job.log("Still working…" if forever else self._filler(job))
                    self.cond.notify_all()
            self._complete(job, *outcome)

    def _filler(self, job: Job) -> str:
        """A running job's log line (echo-key: the hostile one, so it is the latest)."""
        if self.faults.active("echo-key"):
            return hostile.log_line(job.key)
        if self.faults.active("key-in-disguise"):  # each disguise in turn, as the latest line
            lines = attacks.disguised_logs(job.key)
            return lines[len(job.logs) % len(lines)]
        return "Filling the new area…"

    def _queued_step(self, job: Job) -> bool:
        """One wait in the queue (caller holds `cond`); True once the job may run or is over."""
        now = time.monotonic()
        if self.stopping.is_set() or job.cancel_requested:
            self._complete(job, 499, CANCELLED, {})
            return True
        left = job.queue_until - now
        if left <= 0:
            return True
        if job.timeout_at is not None and now >= job.timeout_at:  # X-Fal-Request-Timeout
            self._complete(job, 504, START_TIMEOUT, {"X-Fal-Request-Timeout-Type": "user"})
            return True
        position = min(QUEUE_POSITIONS - 1, int(left / self.queue_s * QUEUE_POSITIONS))
        if position != job.position:
            job.position = position
            self.cond.notify_all()
        wake = min(left, self.queue_s / QUEUE_POSITIONS)
        if job.timeout_at is not None:
            wake = min(wake, job.timeout_at - now)
        self.cond.wait(max(wake, 0.001))
        return False

    def _complete(
        self, job: Job, status: int, body: dict[str, Any], headers: dict[str, str]
    ) -> None:
        """Caller holds `cond`."""
        job.state, job.completed_at = "COMPLETED", time.monotonic()
        if job.started:
            job.inference_time = round(job.completed_at - job.started, 3)
        if status >= 400:
            kind = body.get("error_type") if isinstance(body.get("detail"), str) else None
            job.error = (body["detail"] if kind else f"Invalid status code: {status}", kind)
            if kind:
                headers = {**headers, "X-Fal-Error-Type": kind}
        job.result = (status, body, headers)
        job.log("Request completed" if status < 400 else f"Request failed ({status})")
        if self.on_complete is not None:
            self.on_complete(job, time.time())
        self.cond.notify_all()

    def _run_model(self, job: Job) -> Outcome:
        try:
            prep = fill.prepare(job.body, self.fetch)
        except fill.InputRejected as exc:
            return 422, {"detail": exc.detail}, {}
        p, (out_w, out_h) = prep.params, prep.canvas
        with self.cond:
            job.log(
                f"Expanding {prep.reference.width}x{prep.reference.height} to "
                f"{out_w}x{out_h} ({p['mode']})"
            )
            self.cond.notify_all()
        if self.faults.active("echo-key"):
            with self.cond:
                job.log(hostile.log_line(job.key))
                self.cond.notify_all()
        if self.faults.active("key-in-disguise"):
            with self.cond:
                for line in attacks.disguised_logs(job.key):
                    job.log(line)
                self.cond.notify_all()
        if self.faults.active("content-policy"):
            return 422, CONTENT_POLICY, {}
        if self.faults.active("fail-job") or self.faults.once("fail-once"):
            return 500, RUNNER_FAILED, {}
        if self.faults.active("hostile-error"):
            return 500, {"detail": hostile.error_detail(job.key), **RUNNER_FAILED_TYPE}, {}
        if (
            self.faults.active("mode-not-in-schema")
            and isinstance(job.body, dict)
            and "mode" in job.body
        ):
            return 422, {"detail": [MODE_NOT_PERMITTED]}, {}
        rendered = fill.render(
            prep.reference,
            left=p["expand_left"],
            right=p["expand_right"],
            top=p["expand_top"],
            bottom=p["expand_bottom"],
            output_format=p["output_format"],
            distort=self.faults.active("wrong-size"),
            drift=self.faults.active("drift"),
            varying=self.faults.active("drift-varying"),
            textured=self.faults.active("texture"),
            moved=self.faults.active("moved-object"),
        )
        ext = "png" if p["output_format"] == "png" else "jpg"
        data, content_type = self._forged(
            rendered.data, rendered.content_type, out_w, out_h, job.key
        )
        image = {
            "content_type": content_type,
            "file_name": f"{job.id}.{ext}",
            "file_size": len(data),
            "width": rendered.width,
            "height": rendered.height,
        }
        if self.faults.active("bad-result-url"):
            image["url"] = hostile.BAD_URL
        elif p["sync_mode"]:
            b64 = base64.b64encode(data).decode("ascii")
            image["url"] = f"data:{rendered.content_type};base64,{b64}"
        else:
            # relative: the HTTP layer prefixes the origin the client used
            image["url"] = "/files/" + self.store(f"{uuid.uuid4().hex}.{ext}", data, content_type)
        job.size = (rendered.width, rendered.height)
        return 200, {"images": [image]}, {}

    def _forged(
        self, data: bytes, content_type: str, width: int, height: int, key: str
    ) -> tuple[bytes, str]:
        """The image the hostile scenarios return in place of the real one."""
        if self.faults.active("scan-bomb"):
            return attacks.scan_bomb_jpeg(width, height), "image/jpeg"
        if self.faults.active("key-in-disguise"):
            return attacks.with_key_in_text(data, key), content_type
        if self.faults.active("size-lie"):
            return hostile.size_lie_png(width, height), "image/png"
        if self.faults.active("png-bomb"):
            return hostile.bomb_png(width, height), "image/png"
        if self.faults.active("truncated-image"):
            return hostile.truncated(data), content_type
        return data, content_type

    def store(self, key: str, data: bytes, content_type: str) -> str:
        with self.lock:
            self.files[key] = (data, content_type)
        return key

    def file(self, key: str) -> tuple[bytes, str] | None:
        with self.lock:
            return self.files.get(unquote(key))

    def fetch(self, url: str) -> bytes:
        """What the model can download: this server's own /files/ URLs, nothing else."""
        parts = urlsplit(url)
        if (
            parts.scheme in ("http", "https")
            and parts.hostname in self.local_hosts
            and parts.path.startswith("/files/")
        ):
            entry = self.file(parts.path[len("/files/") :])
            if entry is not None:
                return entry[0]
        raise ValueError(
            "Failed to download the file from image_url (only data: URIs and "
            "this server's /files/ URLs are reachable)"
        )

    def status_body(self, job: Job, base: str, with_logs: bool) -> tuple[int, dict[str, Any]]:
        """§2.3: 202 while pending, 200 once COMPLETED; `logs` present from IN_PROGRESS on."""
        with self.cond:
            root = f"{base}/{job.app[0]}/{job.app[1]}/requests/{job.id}"
            body: dict[str, Any] = {
                "status": job.state,
                "request_id": job.id,
                "response_url": root,
                "status_url": root + "/status",
                "cancel_url": root + "/cancel",
            }
            if job.state == "IN_QUEUE":
                body["queue_position"] = job.position
            else:
                body["logs"] = [dict(e) for e in job.logs] if with_logs else None
            if job.state == "COMPLETED":
                body["metrics"] = {"inference_time": job.inference_time}
                if job.error:
                    body["error"], body["error_type"] = job.error
            return (200 if job.state == "COMPLETED" else 202), body

    def result(self, job: Job) -> Outcome | None:
        """The stored (status, body, headers), None while pending, 404 once expired."""
        with self.cond:
            if job.state != "COMPLETED" or job.result is None:
                return None
            status, body, headers = job.result
            completed_at = job.completed_at
        ttl = LARGE_RESULT_TTL_S if len(json.dumps(body)) >= LARGE_RESULT_BYTES else RESULT_TTL_S
        if self.faults.active("expired-result") or time.monotonic() > completed_at + ttl:
            return 404, {"detail": "Request result not found or expired"}, {}
        return status, body, headers
