"""What a journal line says: the record types, the state enum and the format version.

This module and ``journal`` are the only places that spell a state or a record key; every
other module speaks in these types.

One line is one JSON object (a *record*).  Format version 2 (``"v": 2``) is what this version
writes; a line without ``"v"`` is version 1 (written up to 8fda900), which has the same keys:
version 2 only adds ``"v"`` and ``purpose.kind``, so version-1 readers still read it.

    {"v": 2, "time": "2026-12-07T18:00:00+0000", "event": "submitted", "request_id": "…",
     "state": "submitted",
     "handle": {"status_url": "…", "response_url": "…", "cancel_url": "…"},
     "purpose": {"kind": "cli-file", "tool": "cli", "input": "…", …,       <- Purpose
                 "run": "…", "variation": 1, "variations": 2,                <- TakeOf
                 "canvas": [w, h], "reference": [x, y, w, h], …}}            <- PlanRecord
    {"v": 2, "time": "…", "event": "state", "request_id": "…", "state": "downloaded",
     "result_path": "…"}
    {"v": 2, "time": "…", "event": "note", "request_id": "…", "color_correction": {…}}

A record whose ``v`` is above ``FORMAT_VERSION`` was written by a newer version: it is kept
(compaction copies it as it is) but never interpreted; asking for its request gives one line
naming the version (``TooNewError``).  A field added later must be optional and ignored by
older readers; anything that would be misread by them raises ``FORMAT_VERSION`` (see
CONTRIBUTING.md).

Parsing never trusts the file: every ``from_json`` checks types and falls back to "unknown"
(``UnknownPurpose``, ``plan=None``) rather than guess.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import OutpaintError
from .framing import Placement
from .status import REQUEST_ID

__all__ = [
    "FORMAT_VERSION",
    "CliFile",
    "GimpLayer",
    "PlanRecord",
    "Purpose",
    "State",
    "TakeOf",
    "TooNewError",
    "UnknownPurpose",
    "compacted",
    "parse_record",
    "purpose_from_json",
    "record_version",
]

FORMAT_VERSION = 2
VERSION_KEY = "v"


class State(str, enum.Enum):
    """How a request stands, as its latest state record says."""

    SUBMITTED = "submitted"  # journaled right after the submit; nothing known since
    COMPLETED = "completed"  # fal has the result; not downloaded (yet)
    DOWNLOADED = "downloaded"  # the result is in the cache
    UNPLACED = "unplaced"  # the result may exist, but it never reached its output
    PLACED = "placed"  # written to its output / placed in an image
    FAILED = "failed"  # fal or the network said no: nothing to recover
    CANCELLED = "cancelled"  # asked to stop; fal may still have finished it
    UNKNOWN = "unknown"  # a state this version does not know

    @classmethod
    def parse(cls, value: object) -> State:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN

    @property
    def may_have_result(self) -> bool:
        """Whether the result can still come back (from the cache or from fal)."""
        return self in _RECOVERABLE


# CANCELLED: a request cancelled after it finished on fal still has its result.
_RECOVERABLE = frozenset(
    {
        State.SUBMITTED,
        State.COMPLETED,
        State.DOWNLOADED,
        State.UNPLACED,
        State.PLACED,
        State.CANCELLED,
    }
)


class TooNewError(OutpaintError):
    """A record written by a newer version of the journal format."""


def record_version(record: Mapping[str, Any]) -> int | None:
    """The record's format version (1 when absent); None when it is not a version at all."""
    v = record.get(VERSION_KEY, 1)
    if isinstance(v, int) and not isinstance(v, bool) and v >= 1:
        return v
    return None


def _ints(data: Mapping[str, Any], name: str, count: int) -> tuple[int, ...] | None:
    value = data.get(name)
    if (
        isinstance(value, list)
        and len(value) == count
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return tuple(value)
    return None


def _str(data: Mapping[str, Any], name: str, default: str = "") -> str:
    value = data.get(name)
    return value if isinstance(value, str) else default


def _int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class TakeOf:
    """One take of a run of several (``--variations``): ``number`` of ``count``."""

    run: str
    number: int
    count: int

    def to_json(self) -> dict[str, Any]:
        return {"run": self.run, "variation": self.number, "variations": self.count}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TakeOf | None:
        run, number, count = data.get("run"), _int(data, "variation"), _int(data, "variations")
        if isinstance(run, str) and number is not None and count is not None and count > 1:
            return cls(run, number, count)
        return None


@dataclass(frozen=True)
class PlanRecord:
    """What the pipeline records about the request it sent (the plan's side of a submit)."""

    canvas: tuple[int, int]
    reference: tuple[int, int, int, int]  # x, y, width, height
    request_output: tuple[int, int]
    scale: float | None = None
    encoding: str | None = None
    payload_bytes: int | None = None
    mode: str | None = None
    output_format: str | None = None
    cost_usd_estimate: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "canvas": list(self.canvas),
            "reference": list(self.reference),
            "request_output": list(self.request_output),
            "scale": self.scale,
            "encoding": self.encoding,
            "payload_bytes": self.payload_bytes,
            "options": {"mode": self.mode, "output_format": self.output_format},
            "cost_usd_estimate": self.cost_usd_estimate,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanRecord | None:
        canvas, reference = _ints(data, "canvas", 2), _ints(data, "reference", 4)
        output = _ints(data, "request_output", 2)
        if canvas is None or reference is None or output is None or min(output) <= 0:
            return None
        options = data.get("options")
        options = options if isinstance(options, Mapping) else {}
        scale, cost = data.get("scale"), data.get("cost_usd_estimate")
        return cls(
            (canvas[0], canvas[1]),
            (reference[0], reference[1], reference[2], reference[3]),
            (output[0], output[1]),
            float(scale)
            if isinstance(scale, (int, float)) and not isinstance(scale, bool)
            else None,
            data.get("encoding") if isinstance(data.get("encoding"), str) else None,
            _int(data, "payload_bytes"),
            _str(options, "mode") or None,
            _str(options, "output_format") or None,
            float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
        )


@dataclass(frozen=True)
class GimpLayer:
    """A run of the GIMP plug-in: a layer (or, with ``take``, a group of takes)."""

    gimp: str = ""
    image: str = ""
    layer: str = ""
    placement: Placement | None = None
    take: TakeOf | None = None

    TOOL = "gimp"

    @property
    def kind(self) -> str:
        return "gimp-takes" if self.take else "gimp-layer"

    def with_take(self, take: TakeOf) -> GimpLayer:
        return GimpLayer(self.gimp, self.image, self.layer, self.placement, take)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "tool": self.TOOL,
            "gimp": self.gimp,
            "image": self.image,
            "layer": self.layer,
        }
        if self.placement is not None:
            out["placement"] = self.placement.to_json()
        if self.take is not None:
            out.update(self.take.to_json())
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GimpLayer:
        placement = None
        recorded = data.get("placement")
        if isinstance(recorded, Mapping):
            try:
                placement = Placement.from_json(recorded)
            except ValueError:  # damaged: placed like an unknown one
                placement = None
        return cls(
            _str(data, "gimp"),
            _str(data, "image"),
            _str(data, "layer"),
            placement,
            TakeOf.from_json(data),
        )


@dataclass(frozen=True)
class CliFile:
    """A run of the CLI on one input file (or, with ``take``, one take of several)."""

    input: str  # a path, or "-" for standard input
    input_sha256: str
    input_size: tuple[int, int]
    origin: tuple[int, int]
    output: str  # a path, or "-" for standard output
    output_type: str
    seam_blend: int
    quality: int | None = None
    color_match: bool = True
    take: TakeOf | None = None
    outputs: tuple[str, ...] = ()  # every take's output, in take order (version 2 on)
    grain_match: bool = True  # read as False from records older than grain matching

    TOOL = "cli"

    def output_of_take(self) -> str | None:
        """Where this request's image was to be written: its take's own output when the
        record lists them; else ``output`` for a single run and for take 1 (version 1 wrote
        take 1's output for every take); None when unknown."""
        if self.take is None:
            return self.output
        if len(self.outputs) >= self.take.number >= 1:
            return self.outputs[self.take.number - 1]
        return self.output if self.take.number == 1 else None

    @property
    def kind(self) -> str:
        return "cli-takes" if self.take else "cli-file"

    def with_take(self, take: TakeOf) -> CliFile:
        return CliFile(
            self.input,
            self.input_sha256,
            self.input_size,
            self.origin,
            self.output,
            self.output_type,
            self.seam_blend,
            self.quality,
            self.color_match,
            take,
            self.outputs,
            self.grain_match,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "tool": self.TOOL,
            "input": self.input,
            "input_sha256": self.input_sha256,
            "input_size": list(self.input_size),
            "origin": list(self.origin),
            "output": self.output,
            "output_type": self.output_type,
            "quality": self.quality,
            "seam_blend": self.seam_blend,
            "color_match": self.color_match,
            "grain_match": self.grain_match,
        }
        if self.outputs:
            out["outputs"] = list(self.outputs)
        if self.take is not None:
            out.update(self.take.to_json())
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CliFile | None:
        """None when a field recover needs is missing or of the wrong type."""
        size, origin = _ints(data, "input_size", 2), _ints(data, "origin", 2)
        blend, quality = _int(data, "seam_blend"), data.get("quality")
        fields = (data.get(k) for k in ("input", "input_sha256", "output", "output_type"))
        text = [f for f in fields if isinstance(f, str)]
        if len(text) != 4 or size is None or origin is None or blend is None:
            return None
        if quality is not None and (not isinstance(quality, int) or isinstance(quality, bool)):
            return None
        listed = data.get("outputs")
        outputs = (
            tuple(listed)
            if isinstance(listed, list) and all(isinstance(o, str) for o in listed)
            else ()
        )
        return cls(
            text[0],
            text[1],
            (size[0], size[1]),
            (origin[0], origin[1]),
            text[2],
            text[3],
            blend,
            quality,
            data.get("color_match", True) is not False,
            TakeOf.from_json(data),
            outputs,
            data.get("grain_match", False) is True,  # absent: made before grain matching
        )


@dataclass(frozen=True)
class UnknownPurpose:
    """A purpose this version cannot read (damaged, or from a tool it does not know)."""

    tool: str = ""
    take: TakeOf | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return "unknown"

    def with_take(self, take: TakeOf) -> UnknownPurpose:
        return UnknownPurpose(self.tool, take, {**self.raw, **take.to_json()})

    def to_json(self) -> dict[str, Any]:
        return dict(self.raw)


Purpose = GimpLayer | CliFile | UnknownPurpose


def purpose_from_json(data: object) -> Purpose:
    """The typed purpose of a submit record, version 1 or 2."""
    if not isinstance(data, Mapping):
        return UnknownPurpose()
    tool = _str(data, "tool")
    if tool == GimpLayer.TOOL:
        return GimpLayer.from_json(data)
    if tool == CliFile.TOOL:
        parsed = CliFile.from_json(data)
        if parsed is not None:
            return parsed
    return UnknownPurpose(tool, TakeOf.from_json(data), dict(data))


# States whose result may still be waiting for its output: compaction never drops these.
_UNSETTLED = frozenset({State.SUBMITTED, State.COMPLETED, State.DOWNLOADED, State.UNPLACED})

# States only a request fal finished can reach.
_FINISHED = frozenset({State.COMPLETED, State.DOWNLOADED, State.PLACED})

# The keys of a record (journal_records describes the format).
_TIME, _EVENT, _ID = "time", "event", "request_id"
_STATE, _HANDLE, _PURPOSE = "state", "handle", "purpose"
_SUBMITTED_EVENT, _STATE_EVENT, _NOTE_EVENT = "submitted", "state", "note"
_RESULT_PATH, _ERROR, _OUTPUT = "result_path", "error", "output"
_RAW, _RECOVERED, _CORRECTION = "raw", "recovered", "color_correction"
_GRAIN = "grain"
_HANDLE_KEYS = ("status_url", "response_url", "cancel_url")


# Fields every reader relies on, and the types they must have when present.
_FIELD_TYPES = ((_TIME, str), (_EVENT, str), (_STATE, str), (_HANDLE, dict), (_PURPOSE, dict))


def parse_record(line: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return record if _well_formed(record) else None


def _well_formed(record: object) -> bool:
    if not isinstance(record, dict):
        return False
    rid = record.get(_ID)
    if not isinstance(rid, str) or not REQUEST_ID.fullmatch(rid):
        return False
    for name, kind in _FIELD_TYPES:
        value = record.get(name)
        if value is not None and not isinstance(value, kind):
            return False
    return True


def compacted(raw: bytes, keep_settled: int) -> bytes:
    """The journal ``raw`` with the records of settled requests beyond the newest
    ``keep_settled`` left out (see ``journal``); damaged lines go too, every other line is
    kept byte for byte, in order."""
    lines = raw.splitlines(keepends=True)
    last_state: dict[str, State] = {}
    last_seen: dict[str, int] = {}
    pinned: set[str] = set()  # a newer format wrote part of it: never judged, kept
    parsed: list[str | None] = []
    for n, line in enumerate(lines):
        record = parse_record(line)
        if record is None:
            parsed.append(None)
            continue
        rid = record[_ID]
        parsed.append(rid)
        last_seen[rid] = n
        version = record_version(record)
        if version is None or version > FORMAT_VERSION:
            pinned.add(rid)
        if _STATE in record:
            last_state[rid] = State.parse(record[_STATE])
    settled = [r for r in last_seen if r not in pinned and last_state.get(r) not in _UNSETTLED]
    settled.sort(key=lambda r: last_seen[r])
    dropped = set(settled[: max(0, len(settled) - keep_settled)])
    kept = b"".join(
        line if line.endswith(b"\n") else line + b"\n"
        for line, rid in zip(lines, parsed, strict=False)
        if rid is not None and rid not in dropped
    )
    return kept
