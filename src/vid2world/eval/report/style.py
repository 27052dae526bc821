"""The report page's inline stylesheet: system fonts only, nothing fetched."""

CSS = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6474; --line: #d9dee7; --head: #f2f4f8;
  --warn: #b42318; --warn-bg: #fef0ee; --good: #05603a; --good-bg: #ecfdf3; --accent: #0072b2; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.25em; margin: 2em 0 0.6em; padding-bottom: 0.25em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 1.4em 0 0.5em; }
nav.toc { display: flex; flex-wrap: wrap; gap: 2px 16px; font-size: 0.9em; margin-bottom: 1em; }
nav.toc a { color: var(--accent); text-decoration: none; }
p.warn, ul.warn { background: var(--warn-bg); border-left: 4px solid var(--warn); padding: 8px 14px;
  color: var(--warn); }
ul.warn { padding-left: 34px; }
p.warn + ul.warn { margin-top: -1em; padding-top: 0; }  /* the verdict and its list read as one box */
p.good { background: var(--good-bg); border-left: 4px solid var(--good); padding: 8px 14px; color: var(--good); }
p.legend { font-size: 0.85em; color: var(--muted); margin-top: 0.4em; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.4em 0; font-size: 0.93em; }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; }
td.loses { color: var(--warn); background: var(--warn-bg) !important; font-weight: 600; }
table.model-card td, table.protocol td, table.metrics td { word-break: break-word; max-width: 760px; }
pre { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px;
  overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.gallery { display: grid; gap: 16px; align-items: start; }
.gallery.plots { grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); }
.gallery.videos { grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 8px; background: #fff; }
figure img, figure video { display: block; width: 100%; height: auto; }
.gallery.videos video, .gallery.videos img { image-rendering: pixelated; background: #000; }
figcaption { font-size: 0.85em; color: var(--muted); margin-top: 6px; word-break: break-all; }
a { color: var(--accent); }
"""
