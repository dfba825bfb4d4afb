"""A fetched page's body as the text a model reads: for HTML, its title and visible text
(scripts, styles and other invisible elements left out, block elements on lines of their
own); other readable types as they are."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Content whose text is never shown to a reader of the page.
_INVISIBLE = frozenset({"script", "style", "noscript", "template", "svg", "math", "head",
                        "iframe", "object", "canvas"})
_BLOCKS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header",
    "footer", "nav", "aside", "main", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote",
    "dd", "dt", "dl", "figure", "figcaption", "hr", "form", "address", "details", "summary",
})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.text: list[str] = []
        self._hidden = 0  # depth inside invisible elements
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "body":
            self._hidden = 0  # a head left unclosed ends here, as HTML5 ends it
        elif tag in _INVISIBLE:
            self._hidden += 1
        if tag in _BLOCKS:
            self.text.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _INVISIBLE and self._hidden:
            self._hidden -= 1
        if tag in _BLOCKS:
            self.text.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title.append(data)
        elif not self._hidden:
            self.text.append(data)


def html_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML document, whitespace tidied. Malformed markup is
    read as far as it goes: html.parser never raises on it."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return _tidy("".join(parser.title)).replace("\n", " "), _tidy("".join(parser.text))


def _tidy(text: str) -> str:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()
