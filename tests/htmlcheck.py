"""A strict well-formedness check of generated HTML (stdlib ``html.parser``):
every non-void element closed in order, ids collected, and every reference a
browser could fetch (src, href, url(), @import) listed."""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
FETCHING = {"src", "href", "xlink:href", "srcset", "action", "poster", "data", "formaction"}
_URL = re.compile(r"url\(\s*['\"]?([^'\")]*)|@import\s+['\"]?([^'\";\s]+)", re.I)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.refs: list[str] = []
        self.tags: dict[str, int] = {}

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        for key, value in attrs:
            if key == "id" and value is not None:
                self.ids.append(value)
            if key in FETCHING and value is not None:
                self.refs.append(value)
            if key == "style" and value:
                self.refs += [a or b for a, b in _URL.findall(value)]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attrs(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag of void element <{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "style":
            self.refs += [a or b for a, b in _URL.findall(data)]


def parse_page(text: str) -> Page:
    """Parse ``text``; fail on any unclosed or misnested element."""
    page = Page()
    page.feed(text)
    page.close()
    assert page.errors == [], page.errors[:5]
    assert page.stack == [], f"unclosed: {page.stack}"
    return page


def network_refs(page: Page) -> list[str]:
    """References that would reach the network: absolute or protocol-relative."""
    return [r for r in page.refs if re.match(r"\s*([a-z][a-z0-9+.-]*:)?//", r, re.I)]
