"""A run's artifacts as HTML: markdown rendered then sanitised, tables as tables, links as
links. A flow's output is untrusted: nothing it writes may run script in the page."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

from services.core.models import Artifact, ArtifactType

MAX_TABLE_ROWS_SHOWN = 500
SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_TAGS = {"p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code",
         "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th",
         "td", "img"}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"},
               "th": {"style"}, "td": {"style"}}


@cache
def _markdown() -> MarkdownIt:
    # raw HTML in the markdown stays text; tables are on (reports are mostly tables)
    return MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


def markdown_html(text: str) -> Markup:
    """Markdown as HTML that can only hold the tags above and http(s)/mailto links."""
    return sanitized_html(_markdown().render(text))


def sanitized_html(html: str) -> Markup:
    """HTML written elsewhere (an email body a template rendered) reduced to the same
    tags and links as a markdown report: shown as the message reads, never as script."""
    return Markup(nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES,
                            url_schemes=set(SAFE_SCHEMES), link_rel="noopener noreferrer"))


def safe_href(url: str) -> str | None:
    """`url` when a browser may follow it from the page (http, https, mailto), else None."""
    return url if urlsplit(url.strip()).scheme.lower() in SAFE_SCHEMES else None


def artifact_view(artifact: Artifact) -> dict[str, Any]:
    """What the page shows of one artifact (values escaped by the template)."""
    view: dict[str, Any] = {"key": artifact.key, "type": artifact.type.value,
                            "description": artifact.description}
    if artifact.type is ArtifactType.MARKDOWN:
        view["html"] = markdown_html(str(artifact.data))
    elif artifact.type is ArtifactType.TABLE:
        rows = artifact.data if isinstance(artifact.data, list) else []
        columns = list(dict.fromkeys(name for row in rows for name in row))
        view["columns"] = columns
        view["rows"] = [[row.get(name) for name in columns]
                        for row in rows[:MAX_TABLE_ROWS_SHOWN]]
        view["more_rows"] = max(0, len(rows) - MAX_TABLE_ROWS_SHOWN)
    else:
        data = artifact.data if isinstance(artifact.data, dict) else {"link": str(artifact.data)}
        view["href"] = safe_href(str(data.get("link", "")))
        view["text"] = str(data.get("link_text") or data.get("link", ""))
    return view
