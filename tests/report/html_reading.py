"""Read a rendered report back as a reader sees it: tables (headers, cell texts, CSV link) and sections.

Python's own ``html.parser``, so the tests need no HTML library: every ``<table>`` with the id of
the block around it (``table-<key>`` for statistics tables, ``card`` for the report card's), its
header and cell texts (whitespace collapsed), and each block's CSV link.
"""

from __future__ import annotations

import base64
import io
import re
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pandas as pd


@dataclass
class ReadTable:
    """One table as read from the page."""

    block: str  # id of the nearest enclosing element with an id
    classes: str
    headers: list[list[str]] = field(default_factory=list)  # header rows
    rows: list[list[str]] = field(default_factory=list)
    csv_href: str | None = None
    in_details: bool = False


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[ReadTable] = []
        self.ids: list[tuple[str, str]] = []  # (tag, id) stack of elements with ids
        self.stack: list[tuple[str, bool]] = []  # open elements: (tag, has an id)
        self.csv_by_block: dict[str, str] = {}
        self.details = 0
        self.table: ReadTable | None = None
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.in_head = False
        self.svg = 0

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in ("br", "img", "meta", "link", "line", "input"):
            return
        self.stack.append((tag, "id" in attributes))
        if "id" in attributes:
            self.ids.append((tag, attributes["id"]))
        if tag == "details":
            self.details += 1
        if tag == "svg":
            self.svg += 1
        if tag == "a" and "download" in attributes and self.ids:
            self.csv_by_block[self.ids[-1][1]] = attributes["href"]
        if tag == "table":
            self.table = ReadTable(
                block=self.ids[-1][1] if self.ids else "",
                classes=attributes.get("class", ""),
                in_details=self.details > 0,
            )
        elif tag == "thead":
            self.in_head = True
        elif tag == "tr" and self.table is not None:
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("br", "img", "meta", "link", "line", "input"):
            return
        while self.stack:
            top, has_id = self.stack.pop()
            if has_id:
                self.ids.pop()
            if top == tag:
                break
        if tag == "details":
            self.details -= 1
        if tag == "svg":
            self.svg -= 1
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None and self.table is not None:
            (self.table.headers if self.in_head else self.table.rows).append(self.row)
            self.row = None
        elif tag == "thead":
            self.in_head = False
        elif tag == "table" and self.table is not None:
            self.tables.append(self.table)
            self.table = None

    def handle_data(self, data):
        if self.cell is not None and not self.svg:
            self.cell.append(data)


def read_tables(page: str) -> list[ReadTable]:
    """Every table of ``page``, each with its block's CSV link where it has one."""
    reader = _Reader()
    reader.feed(page)
    for table in reader.tables:
        table.csv_href = reader.csv_by_block.get(table.block)
    return reader.tables


def table(page: str, key: str) -> ReadTable:
    """The statistics table whose block is ``table-<key>``."""
    found = [t for t in read_tables(page) if t.block == f"table-{key}"]
    assert len(found) == 1, f"{len(found)} tables for {key}"
    return found[0]


def card_tables(page: str) -> list[ReadTable]:
    """The tables of the report card, group table first."""
    return [t for t in read_tables(page) if t.block == "card"]


def decode_csv(href: str) -> pd.DataFrame:
    """The table a ``data:text/csv;base64`` link holds."""
    header, _, payload = href.partition(",")
    assert header == "data:text/csv;charset=utf-8;base64", header
    return pd.read_csv(io.StringIO(base64.b64decode(payload).decode("utf-8")))


def section_text(page: str, section_id: str) -> str:
    """The visible text of ``<section id=section_id>`` (tags dropped, whitespace collapsed)."""
    match = re.search(rf'<section id="{re.escape(section_id)}".*?</section>', page, flags=re.S)
    assert match, f"no section {section_id}"
    text = re.sub(r"<svg.*?</svg>", " ", match.group(0), flags=re.S)
    return re.sub(r"\s+", " ", urllib.parse.unquote(re.sub(r"<[^>]+>", " ", text))).strip()


def list_items(page: str, container_class: str) -> list[str]:
    """The texts of the ``<li>`` of the first element with class ``container_class``."""
    match = re.search(rf'<div class="{container_class}">(.*?)</div>', page, flags=re.S)
    assert match, container_class
    import html as html_module

    return [
        re.sub(r"\s+", " ", html_module.unescape(re.sub(r"<[^>]+>", "", item))).strip()
        for item in re.findall(r"<li>(.*?)</li>", match.group(1), flags=re.S)
    ]
