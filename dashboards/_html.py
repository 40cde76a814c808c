"""The report as one self-contained HTML page."""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from archsearch.dashboards._report import Report


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: 0.5rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
.summary { background: #f6f8fa; border: 1px solid #e1e4e8; border-radius: 6px; padding: 0.3rem 1.2rem 0.6rem; }
.caption { color: #333; max-width: 60rem; }
.reason { color: #8a6d3b; background: #fcf8e3; border: 1px solid #faebcc; padding: 0.6rem; border-radius: 4px; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: right; }
th { background: #f6f8fa; }
table.sortable th { cursor: pointer; }
table.sortable th[data-order="up"]::after { content: " ▲"; }
table.sortable th[data-order="down"]::after { content: " ▼"; }
nav ol { columns: 2; }
"""


def render_html(report: Report) -> str:
    """Render ``report`` as a full HTML document with plotly.js inlined (no network request)."""
    from plotly.offline import get_plotlyjs

    sections, toc = [], []
    for number, entry in enumerate(report.figures, start=1):
        toc.append(f'<li><a href="#{entry.key}">{html.escape(entry.title)}</a></li>')
        if entry.figure is None:
            body = f'<p class="reason">Not drawn: {html.escape(entry.reason or "")}</p>'
        else:
            body = entry.figure.to_html(
                full_html=False,
                include_plotlyjs=False,
                div_id=f"fig-{entry.key}",
                config={"displaylogo": False, "responsive": True},
            )
            body += f'\n<p class="caption">{html.escape(entry.caption)}</p>'
        sections.append(f'<section id="{entry.key}"><h2>{number}. {html.escape(entry.title)}</h2>\n{body}</section>')
    for table in report.tables:
        toc.append(f'<li><a href="#{table.key}">{html.escape(table.title)}</a></li>')
        body = _table_html(table.frame) if not table.frame.empty else ""
        sections.append(
            f'<section id="{table.key}"><h2>{html.escape(table.title)}</h2>\n{body}'
            f'<p class="caption">{html.escape(table.caption)}</p></section>'
        )
    title = html.escape(f"archsearch report: {report.study_name}")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{title}</title>",
            f"<style>{_CSS}</style>",
            f'<script type="text/javascript">{get_plotlyjs()}</script>',
            "</head><body>",
            f'<div class="summary">{summary_html(report.summary)}</div>',
            f"<nav><ol>{''.join(toc)}</ol></nav>",
            *sections,
            f"<script>{_SORT_JS}</script>",
            "</body></html>",
        ]
    )


def _table_html(frame: pd.DataFrame) -> str:
    """The table in the report's number style; a click on a column's header sorts by it."""
    from archsearch.dashboards._base import format_cell

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(v))}</td>" for v in row) + "</tr>"
        for row in frame.astype(object).itertuples(index=False)
    )
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>\n{rows}\n</tbody></table>'


# Click a header to sort by its column, again to reverse; numbers sort as numbers ("9,371" > "899"), n/a last.
_SORT_JS = """
document.querySelectorAll("table.sortable th").forEach((th, column) => th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0];
  const up = th.dataset.order !== "up";
  th.closest("tr").querySelectorAll("th").forEach(h => delete h.dataset.order);
  th.dataset.order = up ? "up" : "down";
  const key = row => {
    const text = row.cells[column].textContent, number = Number(text.replace(/,/g, ""));
    return text === "n/a" ? null : isNaN(number) ? text : number;
  };
  const rows = Array.from(body.rows).sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === null || y === null) return (x === null) - (y === null);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return up ? order : -order;
  });
  rows.forEach(row => body.appendChild(row));
}));
"""


def summary_html(markdown: str) -> str:
    """Render the summary's small Markdown subset (``##`` headings, ``-`` bullets, ``**bold**``, ``code``) as HTML."""
    out, in_list = [], False
    for line in markdown.splitlines():
        text = _inline(html.escape(line[2:] if line.startswith("- ") else line.lstrip("# ")))
        if line.startswith("- ") and not in_list:
            out.append("<ul>")
            in_list = True
        elif not line.startswith("- ") and in_list:
            out.append("</ul>")
            in_list = False
        if line.startswith("#"):
            out.append(f"<h1>{text}</h1>")
        elif line.startswith("- "):
            out.append(f"<li>{text}</li>")
        elif line.strip():
            out.append(f"<p>{text}</p>")
    return "\n".join(out + (["</ul>"] if in_list else []))


def _inline(text: str) -> str:
    """``**bold**`` and ```code``` of an escaped line as HTML (what the dashboard note's Markdown shows too)."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
