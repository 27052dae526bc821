"""Blocks -> one self-contained HTML5 page: inline style, plots and small videos as base64 data URIs, no script and
no external URL. Every string from results.json goes through `html.escape`."""

from __future__ import annotations

import base64
from html import escape

from .document import Block, Bullets, Cell, Code, Gallery, Heading, Media, Paragraph, Table
from .markdown import link_target
from .style import CSS


def _class(*names: str) -> str:
    names = tuple(n for n in names if n)
    return f' class="{escape(" ".join(names))}"' if names else ""


def _heading(block: Heading, anchor: str = "") -> str:
    attribute = f' id="{anchor}"' if anchor else ""
    return f"<h{block.level}{attribute}>{escape(block.text)}</h{block.level}>"


def _paragraph(block: Paragraph) -> str:
    return f"<p{_class(block.tone)}>{escape(block.text)}</p>"


def _bullets(block: Bullets) -> str:
    return f"<ul{_class(block.tone)}>" + "".join(f"<li>{escape(item)}</li>" for item in block.items) + "</ul>"


def _cell(cell: Cell) -> str:
    return f"<td{_class('num' if cell.numeric else '', cell.mark)}>{escape(cell.text)}</td>"


def _table(block: Table) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in block.header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in block.rows)
    legend = f'<p class="legend">{escape(block.legend)}</p>' if block.legend else ""
    return (f'<div class="table-wrap"><table{_class(block.role)}><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>{legend}")


def _code(block: Code) -> str:
    return f"<pre><code>{escape(block.text)}</code></pre>"


def _media(item: Media) -> str:
    href = escape(link_target(item.path))
    caption = escape(item.caption)
    if item.data is None:  # too large to embed: a link to the file beside the page, and why
        return (f'<figure><figcaption><a href="{href}">{caption}</a> ({escape(item.why_linked)})</figcaption>'
                "</figure>")
    src = f"data:{item.mime};base64,{base64.b64encode(item.data).decode('ascii')}"
    if item.mime.startswith("video/"):
        shown = (f'<video controls loop muted autoplay playsinline preload="auto" src="{src}">'
                 f'<a href="{href}">{caption}</a></video>')
    else:
        shown = f'<img src="{src}" alt="{caption}">'
    return f'<figure>{shown}<figcaption><a href="{href}">{caption}</a></figcaption></figure>'


def _gallery(block: Gallery) -> str:
    return f'<div{_class("gallery", block.role)}>' + "".join(_media(item) for item in block.items) + "</div>"


RENDERERS = {Paragraph: _paragraph, Bullets: _bullets, Table: _table, Code: _code, Gallery: _gallery}


def render_html(blocks: list[Block], title: str) -> str:
    """The report as one HTML5 document; second-level headings get anchors and a table of contents."""
    body, toc = [], []
    for block in blocks:
        if isinstance(block, Heading):
            anchor = f"s{len(toc) + 1}" if block.level == 2 else ""
            if anchor:
                toc.append(f'<a href="#{anchor}">{escape(block.text)}</a>')
            body.append(_heading(block, anchor))
        else:
            body.append(RENDERERS[type(block)](block))
    if isinstance(blocks[0], Heading) and blocks[0].level == 1:
        body.insert(1, f'<nav class="toc">{"".join(toc)}</nav>')  # under the title
    return ("<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
