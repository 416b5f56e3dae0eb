"""Markdown for untrusted text (item fields, instructions), rendered on the server.

The output is safe to insert into a page unescaped:

* raw HTML is never passed through: CommonMark with ``html`` off escapes ``<script>`` and friends;
* links and images keep only ``http``, ``https`` and ``mailto`` URLs or relative ones; anything else
  (``javascript:``, ``data:``, ``vbscript:``, ``file:``...) is refused and the markup stays as text;
* links get ``rel="nofollow noopener noreferrer"``.

    >>> str(render_markdown("**hi** <b>x</b> [go](javascript:alert(1))"))
    '<p><strong>hi</strong> &lt;b&gt;x&lt;/b&gt; [go](javascript:alert(1))</p>\\n'
"""

from __future__ import annotations

import re
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markupsafe import Markup

SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f]+")


def is_safe_url(url: str) -> bool:
    """True for http(s)/mailto URLs and relative ones; False for every other scheme."""
    cleaned = _INVISIBLE.sub("", url)
    match = _SCHEME.match(cleaned)
    if match is None:
        return True  # relative: no scheme before the first ':' of a path segment
    return match.group(1).lower() in SAFE_SCHEMES


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.validateLink = is_safe_url  # type: ignore[method-assign]

    renderer = md.renderer
    assert isinstance(renderer, RendererHTML)  # commonmark's
    default_link_open = renderer.rules.get("link_open")

    def link_open(tokens, idx, options, env):
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        if default_link_open is not None:
            return default_link_open(tokens, idx, options, env)
        return renderer.renderToken(tokens, idx, options, env)

    renderer.rules["link_open"] = link_open  # type: ignore[assignment]  # a plain function is a valid rule
    return md


def render_markdown(source: str | None) -> Markup:
    """Render Markdown to HTML that may be inserted into a page as is."""
    if not source:
        return Markup("")
    return Markup(_parser().render(str(source)))
