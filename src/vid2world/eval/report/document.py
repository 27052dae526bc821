"""The report as a list of plain blocks, written once and rendered twice (markdown and HTML).

Every string in a block is plain text, exactly as results.json gave it: escaping is the renderer's job, so no text
can be escaped twice or forgotten."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Heading:
    """A section title; level 1 is the page's title, level 2 a section (listed in the page's contents)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """One line of prose."""

    text: str
    tone: str = ""  # "": plain; "warn": the model loses somewhere; "good": it beats everything compared


@dataclass(frozen=True)
class Bullets:
    """A list of one-line items."""

    items: list[str]
    tone: str = ""


@dataclass(frozen=True)
class Cell:
    """One table cell and how it is marked."""

    text: str
    mark: str = ""  # "": plain; "best": the best value of its column; "loses": the model does not beat a baseline
    numeric: bool = False  # right-aligned in tabular figures


@dataclass(frozen=True)
class Table:
    """A table with a header row and an optional legend below it."""

    header: list[str]
    rows: list[list[Cell]]
    role: str = ""  # a name for the table ("scores", ...), an HTML class the tests and styles can find
    legend: str = ""


@dataclass(frozen=True)
class Code:
    """Text shown verbatim (the command line)."""

    text: str


@dataclass(frozen=True)
class Media:
    """A file beside the report (a plot PNG or an mp4), linked by its path relative to the output directory.

    `data` holds the file's bytes when the HTML page embeds it; otherwise `why_linked` says why it does not."""

    path: str
    caption: str
    mime: str
    data: bytes | None = None
    why_linked: str = ""


@dataclass(frozen=True)
class Gallery:
    """Media shown side by side (plots in a grid, videos in a row)."""

    items: list[Media] = field(default_factory=list)
    role: str = ""  # "plots" or "videos"


Block = Heading | Paragraph | Bullets | Table | Code | Gallery
