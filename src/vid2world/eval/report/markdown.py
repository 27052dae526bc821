"""Blocks -> markdown: tables, plots as relative image links, videos as relative links. Every string from
results.json is escaped, so a name or a note cannot open HTML or break a table."""

from __future__ import annotations

import re
from urllib.parse import quote

from .document import Block, Bullets, Cell, Code, Gallery, Heading, Paragraph, Table

_ESCAPED = re.compile(r"([\\`*\[\]<>|~&]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")  # `a_b` stays: no emphasis inside words
_MARKER = re.compile(r"^(\s*)([#+\-]+(?=\s|$)|\d+(?=[.)](?:\s|$)))")  # a heading or a list at a line's start
_TONES = {"": "", "warn": "> ", "good": "> "}


def text(value: str) -> str:
    """Plain text as markdown that shows it literally, on one line (inside a line: a table cell, a heading)."""
    return _ESCAPED.sub(r"\\\1", " ".join(value.splitlines()))


def line(value: str) -> str:
    """`text` for the start of a line (a paragraph, a list item): `# `, `- `, `1. ` there stay literal too."""
    escaped = text(value)
    found = _MARKER.match(escaped)
    if not found:
        return escaped
    marker = found.group(2)  # `1.` -> `1\.`; `#` -> `\#`
    escaped_marker = marker + "\\" if marker[0].isdigit() else "\\" + marker
    return found.group(1) + escaped_marker + escaped[found.end():]


def link_target(path: str) -> str:
    return quote(path, safe="/._-~")


def _heading(block: Heading) -> str:
    return f"{'#' * block.level} {text(block.text)}"


def _paragraph(block: Paragraph) -> str:
    return _TONES.get(block.tone, "") + line(block.text)


def _bullets(block: Bullets) -> str:
    return "\n".join(f"- {line(item)}" for item in block.items)


def _cell(cell: Cell) -> str:
    return f"**{text(cell.text)}**" if cell.mark == "best" else text(cell.text)


def _table(block: Table) -> str:
    numeric = [bool(block.rows) and all(row[i].numeric for row in block.rows) for i in range(len(block.header))]
    lines = ["| " + " | ".join(text(h) for h in block.header) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
    return "\n".join(lines) + (f"\n\n*{text(block.legend)}*" if block.legend else "")


def _code(block: Code) -> str:
    longest = max((len(run) for run in re.findall(r"`+", block.text)), default=0)
    fence = "`" * max(3, longest + 1)  # longer than any run of backticks inside
    return f"{fence}\n{block.text}\n{fence}"


def _gallery(block: Gallery) -> str:
    lines = []
    for item in block.items:
        if item.mime.startswith("image/"):
            lines.append(f"![{text(item.caption)}]({link_target(item.path)})")
        else:
            lines.append(f"- [{text(item.caption)}]({link_target(item.path)})")
    return "\n".join(lines) if block.role != "plots" else "\n\n".join(lines)


RENDERERS = {Heading: _heading, Paragraph: _paragraph, Bullets: _bullets, Table: _table, Code: _code,
             Gallery: _gallery}


def render_markdown(blocks: list[Block]) -> str:
    """The report as markdown, one blank line between blocks."""
    return "\n\n".join(RENDERERS[type(block)](block) for block in blocks) + "\n"
