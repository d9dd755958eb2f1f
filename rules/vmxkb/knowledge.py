"""The docs' needs, read without Sphinx: what ``vmxkb explain`` and ``vmxkb review`` show
about clauses, KVM behaviours, deviations and patches.

The pages in ``docs/`` are the source of the clause paraphrases and of the KVM behaviour
and deviation write-ups; this module reads their need directives (a fenced block
```` ```{type} title ```` with ``:option: value`` lines and a body) with a small parser,
so the command line never imports Sphinx. ``tests/test_knowledge.py`` checks that it reads
the same IDs, types and links as the Sphinx build's ``needs.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cache

from vmxkb.record import Record

#: Need types written by hand in the pages (scenarios and sections are generated from code).
DOC_TYPES = ("clause", "behaviour", "deviation", "patch")
LIST_OPTIONS = frozenset({"sdm", "source", "touches", "affects", "breaks", "fixed_by", "links"})

_FENCE_RE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<type>[a-z-]+)\}[ \t]*(?P<title>.*)$")
_OPTION_RE = re.compile(r"^:(?P<name>[a-z_]+):[ \t]*(?P<value>.*)$")


class DocNeed(Record):
    """One need as written in a page."""

    type: str
    id: str
    title: str
    options: Mapping[str, str]
    body: str
    file: str  #: path relative to the repository root
    line: int

    def links(self, name: str) -> tuple[str, ...]:
        """A link option as a tuple of IDs."""
        return tuple(x.strip() for x in self.options.get(name, "").split(",") if x.strip())


def docs_root() -> str | None:
    """The ``docs/`` directory of the checkout this package runs from, if there is one
    (paths are strings: ``pathlib`` costs the command line more than a check does)."""
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))), "docs")
    return root if os.path.isfile(os.path.join(root, "index.md")) else None


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def parse_page(text: str, file: str) -> list[DocNeed]:
    """The need directives of one MyST page."""
    out: list[DocNeed] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE_RE.match(lines[i])
        if not m or m["type"] not in DOC_TYPES:
            i += 1
            continue
        fence, start = m["fence"], i
        options: dict[str, str] = {}
        i += 1
        while i < len(lines) and (om := _OPTION_RE.match(lines[i])):
            options[om["name"]] = om["value"].strip()
            i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        i += 1
        if "id" in options:
            out.append(DocNeed(m["type"], options["id"], m["title"].strip(), options,
                               "\n".join(body).strip(), file, start + 1))
    return out


@cache
def load() -> Mapping[str, DocNeed]:
    """Every hand-written need in the docs, by ID (empty when there is no docs tree)."""
    root = docs_root()
    if root is None:
        return {}
    needs: dict[str, DocNeed] = {}
    top = os.path.dirname(root)
    pages = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".md"))
    for path in pages:
        rel = os.path.relpath(path, top).replace(os.sep, "/")
        for need in parse_page(_read(path), rel):
            needs.setdefault(need.id, need)
    return needs


@cache
def page(rel: str) -> Mapping[str, DocNeed]:
    """The hand-written needs of one page (``docs/...md``) by ID: what a command needs for a
    few rules, without reading every page."""
    root = docs_root()
    path = os.path.join(os.path.dirname(root), rel) if root is not None else None
    if path is None or not os.path.isfile(path):
        return {}
    return {n.id: n for n in parse_page(_read(path), rel)}


def incoming(target: str, link: str) -> list[DocNeed]:
    """The needs whose ``link`` option names ``target``."""
    return [n for n in load().values() if target in n.links(link)]
