"""``vmxkb review``: what a patch touches, and whether what it cites is right.

From a ``git format-patch`` file, an mbox message (quoted or not) or a plain diff: the VMCS
fields and functions its hunks change, the rules that read those fields, the KVM behaviour
models that describe those functions (and the rules they touch), every rule ID it cites
(checked to exist), and every SDM section number it cites (mapped to its section; an
older edition's number is flagged with the current one).
"""

from __future__ import annotations

import difflib
import inspect
import re
from functools import cache
from typing import Any

from vmxkb import knowledge
from vmxkb.citations import CURRENT_EDITION, SECTIONS, find_section_number
from vmxkb.registry import REGISTRY
from vmxkb.sdm import load_all
from vmxkb.state import FIELDS


class ReviewError(ValueError):
    """Input that is not a patch."""


_QUOTE_RE = re.compile(r"^(?:[ \t]*>[ \t]?)+")
_SUBJECT_RE = re.compile(r"^(?:Subject:\s*|Re:\s*)?(?P<s>(?:Re:\s*)?\[PATCH[^\]]*\].*)$", re.IGNORECASE)
_FILE_RE = re.compile(r"^\+\+\+ (?:b/)?(?P<path>\S+)")
_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@ ?(?P<context>.*)$")
_FUNC_RE = re.compile(r"\b(?P<name>[A-Za-z_]\w*)\s*\(")
_RULE_ID_RE = re.compile(r"\b(?:ENTRY|POST|BM)_[A-Z0-9]+(?:_[A-Z0-9]+)+\b")
_NUMBER_RE = re.compile(r"(?<![\w.])(?P<num>\d{1,2}(?:\.\d{1,2}){1,4})(?![\w]|\.\d)")
_CONTEXT_RE = re.compile(r"(?:\bSDM\b|\b[Ss]ections?\b|§|\bVol(?:ume)?\.?\s*\d)")
#: a bare dotted number counts as an SDM citation when "SDM", "section", "§" or "Vol." is
#: close before it, or when it is a VMX-chapter number (16 and up) of a known section
_CONTEXT_CHARS = 80
_VMX_CHAPTERS_FROM = 16


#: a C function definition's first line: starts in column 0 with a type, no ';'
_DEFINITION_RE = re.compile(r"^(?:static\s+|inline\s+|__always_inline\s+)*[A-Za-z_][\w\s\*]*?[\s\*](?P<name>[a-z_]\w*)\s*\([^;]*$")
_NOT_FUNCTIONS = frozenset({"if", "for", "while", "switch", "return", "sizeof", "typeof", "defined"})


@cache
def _rule_fields() -> dict[str, frozenset[str]]:
    """The VMCS fields each rule's code reads (by kernel name in its source)."""
    load_all()
    out = {}
    for rid, r in REGISTRY.items():
        src = inspect.getsource(r.func)
        doc = r.func.__doc__ or ""
        code = src.replace(doc, "")
        out[rid] = frozenset(f for f in FIELDS if f'"{f}"' in code)
    return out


def _unquote(text: str) -> list[str]:
    return [_QUOTE_RE.sub("", line.rstrip("\r")) for line in text.splitlines()]


def review(text: str, edition: str | None = None) -> dict[str, Any]:
    """The review report as data (see ``docs/cli.md``); raises :class:`ReviewError`."""
    edition = edition or CURRENT_EDITION
    lines = _unquote(text)
    subject = next((m["s"].strip() for line in lines if (m := _SUBJECT_RE.match(line.strip()))), "")
    files: list[str] = []
    functions: dict[str, None] = {}
    changed: list[str] = []
    in_hunk = False
    for line in lines:
        if m := _FILE_RE.match(line):
            files.append(m["path"])
            in_hunk = False
            continue
        if m := _HUNK_RE.match(line):
            in_hunk = True
            if f := _FUNC_RE.search(m["context"]):
                functions.setdefault(f["name"])
            continue
        if not in_hunk or line.startswith(("--- ", "diff --git")):
            in_hunk = in_hunk and not line.startswith("diff --git")
            continue
        if line[:1] in "+-" and not line.startswith(("+++", "---")):
            changed.append(line[1:])
    if not files or not any(_HUNK_RE.match(line) for line in lines):
        raise ReviewError("no diff in it (no '+++ file' and '@@' hunk lines)")
    body = "\n".join(changed)
    fields = [f for f in FIELDS if re.search(rf"\b{f}\b", body)]
    for line in changed:  # functions whose definitions change
        m = _DEFINITION_RE.match(line)
        if m and m["name"] not in _NOT_FUNCTIONS:
            functions.setdefault(m["name"])

    rules: dict[str, dict[str, Any]] = {}
    for rid, read in _rule_fields().items():
        hit = sorted(read & set(fields))
        if hit:
            rules[rid] = {"id": rid, "title": _title(rid), "why": "reads " + ", ".join(hit)}
    behaviours = []
    needs = knowledge.load()
    for need in needs.values():
        if need.type != "behaviour":
            continue
        named = [f for f in functions if re.search(rf"\b{re.escape(f)}\b", need.body)]
        if not named:
            continue
        behaviours.append({"id": need.id, "title": need.title, "why": "describes " + ", ".join(f"{f}()" for f in named)})
        for rid in need.links("touches"):
            if rid in REGISTRY:
                rules.setdefault(rid, {"id": rid, "title": _title(rid), "why": f"touched by {need.id}"})

    problems: list[str] = []
    cited_ids = []
    for rid in dict.fromkeys(_RULE_ID_RE.findall("\n".join(lines))):
        exists = rid in REGISTRY
        nearest = [] if exists else difflib.get_close_matches(rid, list(REGISTRY), n=3, cutoff=0.6)
        cited_ids.append({"id": rid, "exists": exists, "nearest": nearest})
        if not exists:
            problems.append(f"cites unknown rule ID {rid}" + (f" (nearest: {', '.join(nearest)})" if nearest else ""))
    cited_sections = []
    for num in _cited_numbers("\n".join(lines)):
        hits = find_section_number(num)
        sections = []
        current = False
        for section in {s.key: s for s, _ in hits}.values():
            editions = [e for s, e in hits if s.key == section.key]
            now = section.number(edition)
            current = current or edition in editions
            sections.append({"key": section.key, "title": section.title, "editions": editions,
                             "now": f"{now[0]} ({edition}, {now[1]})" if now else f"? ({edition})",
                             "rules": [r.id for r in REGISTRY.values() if r.section == section.key]})
        cited_sections.append({"number": num, "current": current or not sections, "sections": sections})
        if sections and not current:
            problems.append(
                f"cites SDM {num}, numbering of {'/'.join(sections[0]['editions'])}: "
                f"\"{sections[0]['title']}\" is {sections[0]['now']} now"
            )
    return {
        "subject": subject,
        "files": files,
        "functions": list(functions),
        "fields": fields,
        "rules": sorted(rules.values(), key=lambda x: list(REGISTRY).index(x["id"])),
        "behaviours": behaviours,
        "cited_ids": cited_ids,
        "cited_sections": cited_sections,
        "problems": problems,
    }


def _cited_numbers(text: str) -> list[str]:
    out: dict[str, None] = {}
    for m in _NUMBER_RE.finditer(text):
        num = m["num"]
        if num.count(".") < 1:
            continue
        before = text[max(0, m.start() - _CONTEXT_CHARS) : m.start()]
        known = bool(find_section_number(num))
        vmx = int(num.split(".")[0]) >= _VMX_CHAPTERS_FROM and num.count(".") >= 2
        if _CONTEXT_RE.search(before) or (known and vmx):
            out.setdefault(num)
    return list(out)


def _title(rid: str) -> str:
    need = knowledge.load().get(rid)
    return need.title if need else REGISTRY[rid].summary


__all__ = ["ReviewError", "review", "SECTIONS"]
