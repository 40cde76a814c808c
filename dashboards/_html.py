"""The report as one self-contained HTML page."""

from __future__ import annotations

import html
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
                full_html=False, include_plotlyjs=False, div_id=f"fig-{entry.key}",
                config={"displaylogo": False, "responsive": True},
            )  # fmt: skip
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
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{title}</title>",
        f"<style>{_CSS}</style>", f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head><body>",
        f'<div class="summary">{summary_html(report.summary)}</div>',
        f"<nav><ol>{''.join(toc)}</ol></nav>", *sections, "</body></html>",
    ])  # fmt: skip


def _table_html(frame: pd.DataFrame) -> str:
    # float_format keeps metrics readable; escape=True because widths lists are rendered as text.
    return frame.to_html(index=False, escape=True, na_rep="n/a", float_format=lambda v: f"{v:.4g}")


def summary_html(markdown: str) -> str:
    """Render the summary's small Markdown subset (``##`` headings and ``-`` bullets) as HTML."""
    out, in_list = [], False
    for line in markdown.splitlines():
        text = html.escape(line[2:] if line.startswith("- ") else line.lstrip("# "))
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
