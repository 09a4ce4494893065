"""Read the scorers' sections back out of a report page (``<section class="scorer-section">``):
title -> (header, rows of cell texts, notes), with the standard library's HTML parser."""

from __future__ import annotations

from html.parser import HTMLParser


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, tuple[list[str], list[list[str]], list[str]]] = {}
        self.depth = 0  # >0 inside a scorer section
        self.title: str | None = None
        self.text: list[str] | None = None
        self.header: list[str] = []
        self.rows: list[list[str]] = []
        self.notes: list[str] = []
        self.where = ""

    def handle_starttag(self, tag, attrs):
        if tag == "section" and ("class", "scorer-section") in attrs:
            self.depth, self.title, self.header, self.rows, self.notes = 1, None, [], [], []
        elif self.depth and tag in ("h2", "th", "td", "li"):
            self.text, self.where = [], tag
        elif self.depth and tag == "tr" and self.header:
            self.rows.append([])

    def handle_data(self, data):
        if self.text is not None:
            self.text.append(data)

    def handle_endtag(self, tag):
        if not self.depth:
            return
        if tag == self.where and self.text is not None:
            text = "".join(self.text)
            if tag == "h2":
                self.title = text
            elif tag == "th":
                self.header.append(text)
            elif tag == "td":
                self.rows[-1].append(text)
            else:
                self.notes.append(text)
            self.text, self.where = None, ""
        elif tag == "section":
            self.found[self.title or ""] = (self.header, self.rows, self.notes)
            self.depth = 0


def html_sections(page: str) -> dict[str, tuple[list[str], list[list[str]], list[str]]]:
    parser = _Sections()
    parser.feed(page)
    return parser.found
