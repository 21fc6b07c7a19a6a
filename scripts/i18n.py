#!/usr/bin/env python3
"""The plug-in's translations: template, catalogs and compiled catalogs, standard library only.

    python3 scripts/i18n.py pot        write plugin/po/flux-outpaint.pot from the sources
    python3 scripts/i18n.py update     bring every plugin/po/<lang>.po in line with the template
    python3 scripts/i18n.py mo         compile every plugin/po/<lang>.po into the plug-in's
                                       locale/<lang>/LC_MESSAGES/flux-outpaint.mo
    python3 scripts/i18n.py check      exit 1 when the template or a compiled catalog is stale,
                                       a placeholder differs, or a catalog covers < 95 %
    python3 scripts/i18n.py stats      how much of the template each catalog covers

A translatable string is a literal passed to ``_``, ``N_`` or ``ngettext`` (see
``flux_outpaint.i18n``) anywhere in the plug-in folder; the template is made from exactly those,
so a string marked in the code and missing from a catalog is found by ``check`` (and its
test).  Placeholders are ``str.format`` names: a translation must use the same set.

Adding a language: ``cp plugin/po/flux-outpaint.pot plugin/po/<lang>.po``, set ``Language`` and
``Plural-Forms`` in its header, translate, then ``python3 scripts/i18n.py mo``.
"""

from __future__ import annotations

import argparse
import ast
import re
import string
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugin" / "flux-outpaint"
PO_DIR = ROOT / "plugin" / "po"
DOMAIN = "flux-outpaint"
TEMPLATE = PO_DIR / f"{DOMAIN}.pot"
MIN_COVERAGE = 0.95
MARKERS = {"_": 1, "N_": 1, "ngettext": 2}
HEADER = (
    "Project-Id-Version: flux-outpaint\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=UTF-8\n"
    "Content-Transfer-Encoding: 8bit\n"
)


@dataclass
class Message:
    msgid: str
    plural: str | None = None
    where: list[str] = field(default_factory=list)
    translations: list[str] = field(default_factory=list)  # [] = untranslated
    fuzzy: bool = False

    @property
    def translated(self) -> bool:
        return bool(self.translations) and all(self.translations) and not self.fuzzy


# -- the sources -------------------------------------------------------------------------


def sources(root: Path = PLUGIN) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "vendor" not in p.relative_to(root).parts)


def extract(paths: list[Path], base: Path = ROOT) -> list[Message]:
    """Every marked literal, in order of first appearance, with where it appears."""
    found: dict[tuple[str, str | None], Message] = {}
    order: dict[tuple[str, str | None], tuple[str, int]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            wanted = MARKERS.get(node.func.id)
            if wanted is None or len(node.args) < wanted:
                continue
            texts = node.args[:wanted]
            if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in texts):
                continue  # _(variable): translated where the literal was marked
            values = [a.value for a in texts]  # type: ignore[attr-defined]
            key = (values[0], values[1] if wanted == 2 else None)
            message = found.get(key)
            if message is None:
                message = found[key] = Message(key[0], key[1])
                order[key] = (str(path), node.lineno)
            # the file only: a template that moved with every line number would be stale
            # after any edit near a marked string
            where = path.relative_to(base).as_posix()
            if where not in message.where:
                message.where.append(where)
    return [found[k] for k in sorted(found, key=lambda k: order[k])]


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


# -- .po files ---------------------------------------------------------------------------


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    lines = escaped.split("\n")
    parts = [line + "\\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    if len(parts) <= 1 and len(escaped) < 70:
        return f'"{parts[0] if parts else ""}"'
    return '""\n' + "\n".join(f'"{p}"' for p in parts)


def _unquote(text: str) -> str:
    body = text.strip()[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), body)


def write_po(path: Path, messages: list[Message], header: str, *, template: bool) -> None:
    out = [f"msgid {_quote('')}", f"msgstr {_quote(header)}", ""]
    for m in messages:
        out.extend(f"#: {w}" for w in m.where)
        if m.fuzzy and not template:
            out.append("#, fuzzy")
        if placeholders(m.msgid):
            out.append("#, python-brace-format")
        out.append(f"msgid {_quote(m.msgid)}")
        if m.plural is None:
            value = "" if template or not m.translations else m.translations[0]
            out.append(f"msgstr {_quote(value)}")
        else:
            out.append(f"msgid_plural {_quote(m.plural)}")
            forms = [""] * 2 if template or not m.translations else m.translations
            out.extend(f"msgstr[{n}] {_quote(v)}" for n, v in enumerate(forms))
        out.append("")
    path.write_text("\n".join(out), encoding="utf-8")


def read_po(path: Path) -> tuple[str, list[Message]]:
    """(header, messages) of a .po file written by hand or by this script."""
    header = ""
    messages: list[Message] = []
    entry: dict = {}
    key = None

    def flush() -> None:
        nonlocal header
        if "msgid" not in entry:
            return
        forms = [entry[k] for k in sorted(k for k in entry if k.startswith("msgstr"))]
        if entry["msgid"] == "":
            header = forms[0] if forms else ""
        else:
            m = Message(entry["msgid"], entry.get("msgid_plural"), entry.get("where", []))
            m.translations = forms if any(forms) else []
            m.fuzzy = entry.get("fuzzy", False)
            messages.append(m)

    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.strip()
        if not line:
            flush()
            entry, key = {}, None
        elif line.startswith("#:"):
            entry.setdefault("where", []).extend(line[2:].split())
        elif line.startswith("#,"):
            entry["fuzzy"] = "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[key] += _unquote(line)
        else:
            word, _, rest = line.partition(" ")
            key = word
            entry[key] = _unquote(rest)
    return header, messages


def header_field(header: str, name: str) -> str | None:
    for line in header.splitlines():
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


def catalogs() -> dict[str, Path]:
    return {p.stem: p for p in sorted(PO_DIR.glob("*.po"))}


def mo_path(lang: str) -> Path:
    return PLUGIN / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.mo"


# -- .mo files ---------------------------------------------------------------------------


def mo_bytes(header: str, messages: list[Message]) -> bytes:
    """GNU .mo (what Python's gettext and GIMP's read): only translated, non-fuzzy entries."""
    pairs = {"": header}
    for m in messages:
        if not m.translated:
            continue
        source = m.msgid if m.plural is None else m.msgid + "\0" + m.plural
        pairs[source] = "\0".join(m.translations)
    keys = sorted(pairs)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(pairs[k].encode() + b"\0" for k in keys)
    start = 7 * 4 + 16 * len(keys)
    id_table, str_table = [], []
    offset = 0
    for k in keys:
        size = len(k.encode())
        id_table += [size, start + offset]
        offset += size + 1
    offset = 0
    base = start + len(ids)
    for k in keys:
        size = len(pairs[k].encode())
        str_table += [size, base + offset]
        offset += size + 1
    head = struct.pack("Iiiiiii", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, 0)
    tables = struct.pack(f"{len(id_table)}i", *id_table) + struct.pack(
        f"{len(str_table)}i", *str_table
    )
    return head + tables + ids + strs


def template_text() -> str:
    path = TEMPLATE.with_suffix(".tmp")
    write_po(path, extract(sources()), HEADER, template=True)
    try:
        return path.read_text(encoding="utf-8")
    finally:
        path.unlink()


def merged(template: list[Message], existing: list[Message]) -> list[Message]:
    """The template's messages with what a catalog already translates (msgmerge, exact)."""
    known = {(m.msgid, m.plural): m for m in existing}
    out = []
    for t in template:
        old = known.get((t.msgid, t.plural))
        out.append(
            Message(
                t.msgid, t.plural, t.where, old.translations if old else [], bool(old and old.fuzzy)
            )
        )
    return out


# -- checks ------------------------------------------------------------------------------


def problems() -> list[str]:
    """Everything ``check`` fails on, one line each."""
    found = []
    if not TEMPLATE.is_file() or TEMPLATE.read_text(encoding="utf-8") != template_text():
        found.append(f"{TEMPLATE.relative_to(ROOT)} is stale: run scripts/i18n.py pot")
    template = extract(sources())
    for lang, path in catalogs().items():
        header, messages = read_po(path)
        by_key = {(m.msgid, m.plural): m for m in messages}
        covered = sum(by_key.get((t.msgid, t.plural), Message("")).translated for t in template)
        share = covered / len(template) if template else 1.0
        if share < MIN_COVERAGE:
            found.append(f"{lang}: covers {share:.0%} of the template (< {MIN_COVERAGE:.0%})")
        for m in messages:
            for text in m.translations:
                if text and placeholders(text) != placeholders(m.plural or m.msgid):
                    found.append(f"{lang}: placeholders differ in {m.msgid!r}: {text!r}")
        mo = mo_path(lang)
        if not mo.is_file() or mo.read_bytes() != mo_bytes(header, messages):
            found.append(f"{mo.relative_to(ROOT)} is stale: run scripts/i18n.py mo")
    return found


def coverage() -> dict[str, float]:
    template = extract(sources())
    out = {}
    for lang, path in catalogs().items():
        by_key = {(m.msgid, m.plural): m for m in read_po(path)[1]}
        done = sum(by_key.get((t.msgid, t.plural), Message("")).translated for t in template)
        out[lang] = done / len(template) if template else 1.0
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("pot", "update", "mo", "check", "stats"))
    args = parser.parse_args(argv)
    if args.command == "pot":
        PO_DIR.mkdir(exist_ok=True)
        TEMPLATE.write_text(template_text(), encoding="utf-8")
        print(f"{TEMPLATE.relative_to(ROOT)}: {len(extract(sources()))} messages")
    elif args.command == "update":
        template = extract(sources())
        for path in catalogs().values():
            header, messages = read_po(path)
            write_po(path, merged(template, messages), header, template=False)
            print(f"{path.relative_to(ROOT)} updated")
    elif args.command == "mo":
        for lang, path in catalogs().items():
            header, messages = read_po(path)
            out = mo_path(lang)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(mo_bytes(header, messages))
            print(f"{out.relative_to(ROOT)}")
    elif args.command == "stats":
        for lang, share in coverage().items():
            print(f"{lang}: {share:.1%}")
    else:
        found = problems()
        for line in found:
            print(line)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
