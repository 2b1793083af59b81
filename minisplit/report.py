"""One self-contained HTML page: sections in order, figures embedded, nothing fetched.

A :class:`Page` is what a command writes for people to open: a title, then sections in
the order of the story, each holding paragraphs, lists, tables, preformatted text and
Matplotlib figures. Figures are embedded as PNG data (``data:`` URLs), the style sheet is
inline, and there are no scripts and no links to fetch, so the page reads the same
offline, in any browser, years later. Text is escaped; numbers are whatever the caller
computed (the page never makes any up).

Examples
--------
>>> page = Page("A run", "What happened.")
>>> section = page.section("Numbers")
>>> section.paragraph("Two plus two is 4.")
>>> section.table(["a", "b"], [[1, 2.5]])
>>> "<h2 id=\\"numbers\\">Numbers</h2>" in page.html()
True
"""

from __future__ import annotations

import base64
import html
import io
import re

from minisplit._checks import check_type
from minisplit._files import write_text_atomic

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 62rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.5; color: #1a1a1a; }
h1 { font-size: 1.7rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #444; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.8rem 0; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.55rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.85rem; }
.lead { font-size: 1.05rem; color: #333; }
"""


def _slug(text) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


class Section:
    """One section of a :class:`Page`; its methods append content in order."""

    def __init__(self, title):
        self.title, self.parts = str(title), []

    def paragraph(self, text) -> None:
        """A paragraph of plain text (escaped)."""
        self.parts.append(f"<p>{html.escape(str(text))}</p>")

    def items(self, lines) -> None:
        """A bulleted list of plain-text lines."""
        rows = "".join(f"<li>{html.escape(str(line))}</li>" for line in lines)
        self.parts.append(f"<ul>{rows}</ul>")

    def preformatted(self, text) -> None:
        """Text shown as is, in a fixed-width font (a table printed by the command line)."""
        self.parts.append(f"<pre>{html.escape(str(text))}</pre>")

    def table(self, header, rows) -> None:
        """A table: ``header`` a list of column titles, ``rows`` lists of cells (floats: 4
        significant digits)."""
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
                       for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def figure(self, fig, caption) -> None:
        """A Matplotlib figure, embedded as PNG data, with its caption."""
        from matplotlib.figure import Figure  # the page is Matplotlib's only for figures

        check_type(fig, "fig", Figure)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        alt = html.escape(str(caption), quote=True)
        self.parts.append(
            f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(str(caption))}</figcaption></figure>"
        )

    def html(self) -> str:
        slug = _slug(self.title)
        return f'<section><h2 id="{slug}">{html.escape(self.title)}</h2>' + "".join(
            self.parts) + "</section>"


class Page:
    """A self-contained HTML report: a title, a lead paragraph, sections in order.

    Parameters
    ----------
    title : str
    lead : str or None
        One paragraph under the title: what the page shows.
    """

    def __init__(self, title, lead=None):
        self.title, self.lead, self.sections = str(title), lead, []

    def section(self, title) -> Section:
        """A new section, placed after the ones before it."""
        section = Section(title)
        self.sections.append(section)
        return section

    def html(self) -> str:
        """The page as one HTML document."""
        lead = "" if self.lead is None else f'<p class="lead">{html.escape(str(self.lead))}</p>'
        body = "".join(section.html() for section in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{_STYLE}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>{lead}{body}</body></html>\n"
        )

    def save(self, path) -> None:
        """Write the page to ``path`` atomically."""
        write_text_atomic(path, self.html())
