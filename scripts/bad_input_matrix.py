#!/usr/bin/env python3
"""The bad-input matrix: what the plug-in does with each awkward image state, as markdown.

``tests/gimp/test_plugin_bad_inputs.py`` runs every state in real GIMP 3.0 and 3.2 and, when
``FLUX_OUTPAINT_BADINPUT_OUT`` names a file, appends one ``Row`` per state and version as a
JSON line.  This script turns those lines into the table in ``docs/bad-input-matrix.md``:

    FLUX_OUTPAINT_GIMP_TESTS=1 FLUX_OUTPAINT_BADINPUT_OUT=/tmp/bad-inputs.jsonl \\
        python -m pytest tests/gimp/test_plugin_bad_inputs.py
    python scripts/bad_input_matrix.py /tmp/bad-inputs.jsonl --write docs/bad-input-matrix.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PATHS = ("GIMP 3.0", "GIMP 3.2")


@dataclass(frozen=True)
class Row:
    state: str  # the test's name for the state
    title: str  # what the state is, for people
    path: str  # "GIMP 3.0" | "GIMP 3.2"
    expected: str  # "works" | "refused"
    ok: bool  # the run placed a result
    message: str  # the one-line error ("" on success)
    unchanged: bool  # see HEAD
    defect: str = ""  # a known plug-in defect this state shows ("" = none)

    @property
    def as_expected(self) -> bool:
        return self.ok is (self.expected == "works") and self.unchanged

    def outcome(self) -> str:
        if self.ok:
            text = "result placed" if self.unchanged else "result placed, other layers changed"
        else:
            text = "refused" if self.unchanged else "failed, image changed"
        return text if self.as_expected else f"**{text}**"


HEAD = """# Bad-input matrix

Each awkward state an image can be in when the plug-in runs, in real GIMP 3.0.4 and 3.2.6
against the local fal server. Generated from `tests/gimp/test_plugin_bad_inputs.py` by
`python scripts/bad_input_matrix.py ROWS --write docs/bad-input-matrix.md` (see that script).

*Image unchanged*: for a refusal, the canvas, layers, offsets, pixels, masks, selected layers
and the undo history (the image stays clean) are exactly as before; for a result, every layer
that was there is untouched (only the result layer is added, the canvas grows only when
pixels were asked beyond it).

| state | expected | GIMP 3.0 | GIMP 3.2 | message | image unchanged |
|---|---|---|---|---|---|
"""


_REQUEST_ID = re.compile(r"\(request [0-9a-f-]{36}\)")
_LOCAL_PORT = re.compile(r"\b(127\.0\.0\.1|localhost):\d+")


def stable(message: str) -> str:
    """A message without what differs from run to run: request ids, the local server's port."""
    return _LOCAL_PORT.sub(r"\1:PORT", _REQUEST_ID.sub("(request …)", message)).strip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _joined(values: dict[str, str]) -> str:
    """One value when the versions agree, else each version's own."""
    distinct = set(values.values())
    if len(distinct) <= 1:
        return next(iter(distinct), "")
    return " / ".join(f"{path[5:]}: {value}" for path, value in values.items())


def table(rows: list[Row]) -> str:
    latest: dict[tuple[str, str], Row] = {}
    order: list[str] = []
    for row in rows:  # a state recorded twice (a re-run appended): the last one counts
        latest[(row.state, row.path)] = row
        if row.state not in order:
            order.append(row.state)
    lines: list[str] = []
    defects: list[tuple[str, str]] = []
    for state in order:
        by_path = {p: latest[(state, p)] for p in PATHS if (state, p) in latest}
        first = next(iter(by_path.values()))
        outcomes = [by_path[p].outcome() if p in by_path else "not run" for p in PATHS]
        message = _joined({p: r.message for p, r in by_path.items()})
        unchanged = _joined({p: "yes" if r.unchanged else "NO" for p, r in by_path.items()})
        title = f"{first.title} (`{state}`)"
        if first.defect:
            defects.append((state, first.defect))
            title += f" — defect {len(defects)}"
        lines.append(
            f"| {_cell(title)} | {first.expected} | {outcomes[0]} | {outcomes[1]} | "
            f"{_cell(message)} | {unchanged} |"
        )
    text = HEAD + "\n".join(lines) + "\n"
    if defects:
        text += "\n## Known defects\n\n" + "".join(
            f"{n}. `{state}`: {defect}\n" for n, (state, defect) in enumerate(defects, 1)
        )
    return text


def load(path: Path) -> list[Row]:
    return [
        Row(**json.loads(line))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", type=Path, help="JSON lines recorded by the real-GIMP test")
    p.add_argument("--write", type=Path, help="write the markdown table here")
    args = p.parse_args(argv)
    rows = load(args.rows)
    text = table(rows)
    print(text)
    if args.write:
        args.write.write_text(text, encoding="utf-8")
    return 0 if rows and all(r.as_expected or r.defect for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
