"""Gate breakages generated from the knowledge base itself, and the builds that must catch them.

Every breakage is one edit of a copy of the repository, derived from what is in it: every
hand-written need deleted, every rule deleted and (separately) unregistered, every scenario
deleted and its stated outcome flipped, every link and ``{need}`` reference pointed at a
missing ID, a duplicated ID per need type, every scenario's doctest detached from its header,
KVM behaviour models changed so they diverge without a deviation, and every section given a
number for an unknown edition. Each breakage must

1. fail an incremental build of a tree that was built (and passed) before the breakage,
2. fail a clean build of the broken tree,
3. in both, print a line that names the item and its file, and not crash (no traceback),

and the incremental build after undoing it must pass again (docs/gate.md, "Breakages").

``python tests/breakages.py`` runs the full set (``make breakages``); ``--sample`` picks a
few, evenly over the classes, with a printed seed (``tests/test_breakages.py`` does that in
``make test``). Every result of a full-set run is appended to a record named by the tree's
fingerprint (``tests/breakage_runs/<fingerprint>.jsonl``: a hash of every file the builds read
and of this script), so a set too long for one sitting can be finished with ``--resume`` on
the *same* tree: results recorded for another tree are never counted. The builds are real ``sphinx-build -W --keep-going -b html`` runs, as in
``make html``.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("conf.py", "docs", "rules", "examples")
DOC_TYPES = ("clause", "behaviour", "deviation", "patch")
LINK_OPTIONS = ("links", "sdm", "source", "touches", "affects", "breaks", "fixed_by")
MISSING = "_GONE"  # suffix that turns an ID into one no need has
UNKNOWN_EDITION = "E99"
_FENCE_RE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<type>[a-z-]+)\}[ \t]*(?P<title>.*)$")
_OPTION_RE = re.compile(r"^:(?P<name>[a-z_]+):[ \t]*(?P<value>.*)$")
#: Deletions *not* generated, by tree and kind, because nothing else records the item, so
#: code and docs still agree once it is gone: a scenario whose rule keeps another with the
#: same outcome and that no page cites (its need is rendered from the code), and a
#: hand-written need with no rule, model or exploration finding behind it that nothing
#: links to or cites (a not-executable clause, a reference deviation). See docs/gate.md.
UNRECORDED: dict[str, dict[str, list[str]]] = {}
_REF_RE = re.compile(r"\{need\}`(?:[^`<]*<)?(?P<id>[A-Z][A-Z0-9_]+)>?`")


@dataclass(frozen=True)
class Breakage:
    """One edit of the tree that the gate must catch."""

    cls: str  #: the breakage class, e.g. ``delete-need:clause``
    item: str  #: the ID the failure message must name
    files: tuple[str, ...]  #: the message must name one of these (repository-relative)
    edits: tuple[tuple[str, str], ...] = field(repr=False)  #: (path, new text)

    @property
    def name(self) -> str:
        return f"{self.cls}:{self.item}"

    @property
    def key(self) -> str:
        """Unique in the set (names are not: several scenarios of one rule give breakages of
        the same class and item): the name and a hash of the edits."""
        h = hashlib.sha256(json.dumps(self.edits).encode()).hexdigest()[:10]
        return f"{self.name}@{h}"


def _read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def _lines_without(text: str, start: int, end: int) -> str:
    """``text`` without lines ``start``..``end-1`` (0-based)."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[:start] + lines[end:])


@dataclass(frozen=True)
class _DocNeed:
    type: str
    id: str
    file: str
    start: int  #: 0-based line of the opening fence
    end: int  #: 0-based line after the closing fence
    options: dict[str, tuple[int, str]]  #: name -> (0-based line, value)


def _doc_needs(root: Path) -> Iterator[_DocNeed]:
    for page in sorted((root / "docs").rglob("*.md")):
        rel = str(page.relative_to(root))
        lines = page.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(lines):
            m = _FENCE_RE.match(lines[i])
            if not m or m["type"] not in DOC_TYPES:
                i += 1
                continue
            start, options = i, {}
            i += 1
            while i < len(lines) and (om := _OPTION_RE.match(lines[i])):
                options[om["name"]] = (i, om["value"].strip())
                i += 1
            while i < len(lines) and lines[i].strip() != m["fence"]:
                i += 1
            i += 1
            if "id" in options:
                yield _DocNeed(m["type"], options["id"][1], rel, start, i, options)


def _rules(root: Path):
    """The registered rules, imported from ``root``'s own package."""
    sys.path.insert(0, str(root / "rules"))
    try:
        from vmxkb.registry import REGISTRY
        from vmxkb.sdm import load_all

        load_all()
        return dict(REGISTRY)
    finally:
        sys.path.remove(str(root / "rules"))


def _sole_killers(r) -> set[str]:
    """The scenarios of rule ``r`` that are the only one to kill some mutant of it: deleting
    one lets that mutant survive, which the gate's mutation check reports."""
    import sys as _sys

    from vmxkb import mutants
    from vmxkb.registry import run_scenario

    module = _sys.modules[r.func.__module__]
    out: set[str] = set()
    for m in mutants.mutations(r.func, dict(vars(module))):
        try:
            ns = mutants.build_mutant(r, m)
        except Exception:  # noqa: BLE001 - a mutant that does not build is killed by nothing in particular
            continue
        killers = []
        for sc in r.scenarios:
            try:
                dead = bool(run_scenario(sc, ns).problems)
            except Exception:  # noqa: BLE001
                dead = True
            if dead:
                killers.append(sc.id)
        if len(killers) == 1:
            out.add(killers[0])
    return out


def _rel(path: str, root: Path) -> str:
    p = Path(path).resolve()
    for base in (root, ROOT):
        try:
            return str(p.relative_to(base.resolve()))
        except ValueError:
            continue
    marker = "/rules/vmxkb/"
    return "rules/vmxkb/" + path.split(marker, 1)[1]


def _scenario_span(lines: list[str], header: int) -> tuple[int, int]:
    """0-based [start, end) of the scenario whose header is on line ``header`` (0-based):
    up to the next scenario header or the docstring's closing quotes."""
    end = header + 1
    while end < len(lines) and not re.match(r"^\s*Scenario\s", lines[end]) and lines[end].strip() != '"""':
        end += 1
    return header, end


def _uncovered_flips(root: Path, needs: list[_DocNeed]) -> set[tuple[str, str]]:
    """(behaviour, flag) pairs: flipping ``flag`` in the behaviour's ``_vmx_kvm`` call makes
    its exploration find a class no deviation covers (the gate's coverage rule)."""
    import dataclasses

    sys.path.insert(0, str(root / "rules"))
    try:
        from vmxkb.kvm import models as m
        from vmxkb.kvm.explore import explore
    finally:
        sys.path.remove(str(root / "rules"))
    devs = [(set(_ids(n, "affects")), n.options.get("kind", (0, ""))[1], set(_ids(n, "breaks")))
            for n in needs if n.type == "deviation"]
    out = set()
    for bid, b in m.BEHAVIOURS.items():
        call = re.search(r"_vmx_kvm\(s, stuff_on_intercept=(\w+), stuff_on_inject=(\w+)\)", inspect.getsource(b.func))
        if not call:
            continue
        flags = {"stuff_on_intercept": call[1] == "True", "stuff_on_inject": call[2] == "True"}
        for flag in flags:
            changed = {**flags, flag: not flags[flag]}
            variant = dataclasses.replace(b, func=lambda s, kw=changed: m._vmx_kvm(s, **kw))
            for f in explore(variant):
                if not any(bid in a and f.kind == k and set(f.rules) <= br for a, k, br in devs):
                    out.add((bid, flag))
                    break
    return out


def _ids(n: _DocNeed, option: str) -> list[str]:
    return [t.strip() for t in n.options.get(option, (0, ""))[1].split(",") if t.strip()]


def generate(root: Path = ROOT) -> list[Breakage]:
    """Every breakage of ``root``, in a fixed order (class by class)."""
    out: list[Breakage] = []
    texts: dict[str, str] = {}

    def text(rel: str) -> str:
        if rel not in texts:
            texts[rel] = _read(root, rel)
        return texts[rel]

    needs = list(_doc_needs(root))
    registry = _rules(root)
    rule_files = {rid: _rel(r.source_file, root) for rid, r in registry.items()}
    doc_of = {n.id: n.file for n in needs}

    # the files a message about an item may name: its own, and every page linking to or
    # referencing it (where the dangling link is, i.e. the file to fix)
    referrers: dict[str, set[str]] = {}
    for n in needs:
        for opt in LINK_OPTIONS:
            for target in _ids(n, opt):
                referrers.setdefault(target, set()).add(n.file)
    for page in sorted((root / "docs").rglob("*.md")):
        rel = str(page.relative_to(root))
        for m in _REF_RE.finditer(text(rel)):
            referrers.setdefault(m["id"], set()).add(rel)

    def files_of(item: str, *own: str) -> tuple[str, ...]:
        return tuple(sorted({*own, *referrers.get(item, ())}))

    # 1. delete every hand-written need (clause, behaviour, deviation, patch) that has a
    #    second record (a rule, a model, an exploration finding, or a link or reference)
    unrecorded = UNRECORDED.setdefault(str(root), {}).setdefault("need", [])
    unrecorded.clear()
    for n in needs:
        own = [n.file, rule_files.get(n.id, n.file)] + (["rules/vmxkb/kvm/models.py"] if n.type == "behaviour" else [])
        counterpart = (n.id in registry or n.type == "behaviour"
                       or (n.type == "deviation" and n.options.get("kind", (0, ""))[1] != "reference"))
        if not counterpart and n.id not in referrers:
            unrecorded.append(n.id)
            continue
        out.append(Breakage(f"delete-need:{n.type}", n.id, files_of(n.id, *own),
                            ((n.file, _lines_without(text(n.file), n.start, n.end)),)))
    # ... and every section need (generated from vmxkb.citations.SECTIONS)
    cit = "rules/vmxkb/citations.py"
    cit_lines = text(cit).splitlines(keepends=True)
    section_spans: dict[str, tuple[int, int, int]] = {}
    for i, line in enumerate(cit_lines):
        m = re.match(r'^\s*"(SEC_[A-Z0-9_]+)",\s*$', line)
        if m and cit_lines[i - 1].strip() == "Section(":
            j = i
            while cit_lines[j].strip() != "),":
                j += 1
            numbers = next(k for k in range(i, j) if "_numbers(" in cit_lines[k])
            section_spans[m[1]] = (i - 1, j + 1, numbers)
    for sid, (a, b, _) in section_spans.items():
        files = files_of(sid, "docs/editions.md", cit)
        out.append(Breakage("delete-need:section", sid, files, ((cit, _lines_without(text(cit), a, b)),)))

    # 2. every rule: delete it; separately, unregister it (drop its @rule decorator)
    for rid, r in registry.items():
        rel = rule_files[rid]
        lines = text(rel).splitlines(keepends=True)
        src, first = inspect.getsourcelines(r.func)
        a, b = first - 1, first - 1 + len(src)
        assert lines[a].lstrip().startswith("@rule("), (rid, lines[a])
        files = files_of(rid, rel, doc_of.get(rid, rel))
        out.append(Breakage("delete-rule", rid, files, ((rel, _lines_without(text(rel), a, b)),)))
        d = next(k for k in range(a, b) if lines[k].startswith("def "))
        out.append(Breakage("unregister-rule", rid, files, ((rel, _lines_without(text(rel), a, d)),)))

    # 3. every scenario: delete it; flip its stated outcome; detach its doctest from it
    redundant = UNRECORDED.setdefault(str(root), {}).setdefault("scenario", [])
    redundant.clear()
    sys.path.insert(0, str(root / "rules"))
    try:
        sole = {rid: _sole_killers(r) for rid, r in registry.items()}
    finally:
        sys.path.remove(str(root / "rules"))
    for rid, r in registry.items():
        rel = rule_files[rid]
        lines = text(rel).splitlines(keepends=True)
        for s in r.scenarios:
            # (Scenario.lineno is a few lines off in some docstrings: find the header itself)
            h = next(k for k, line in enumerate(lines) if re.match(rf"\s*Scenario {s.id} ", line))
            a, b = _scenario_span(lines, h)
            files = (rel, doc_of.get(rid, rel))
            deleted = _lines_without(text(rel), a, b)
            if s.id in referrers:  # a page cites it: the message names it and that page
                out.append(Breakage("delete-scenario", s.id, files_of(s.id, rel), ((rel, deleted),)))
            elif [x.expect for x in r.scenarios].count(s.expect) == 1:  # the rule's only one that {expect}
                out.append(Breakage("delete-scenario", rid, (rel,), ((rel, deleted),)))
            elif s.id in sole[rid]:  # the only scenario that kills some mutant: the mutation check
                out.append(Breakage("delete-scenario:mutant", rid, (rel,), ((rel, deleted),)))
            else:  # code and docs still agree: see REDUNDANT below
                redundant.append(s.id)
            flipped = lines[h].replace("(passes)", "(@)").replace("(fails)", "(passes)").replace("(@)", "(fails)")
            out.append(Breakage("flip-scenario", s.id, files, ((rel, "".join(lines[:h] + [flipped] + lines[h + 1:])),)))
            first_example = next(k for k in range(a, b) if lines[k].lstrip().startswith(">>>"))
            out.append(Breakage("detach-doctest", s.id, files, ((rel, _lines_without(text(rel), first_example, b)),)))

    # 4. every link of a hand-written need, and every {need} reference, to a missing ID
    for n in needs:
        for opt in LINK_OPTIONS:
            if opt not in n.options:
                continue
            k, value = n.options[opt]
            lines = text(n.file).splitlines(keepends=True)
            for target in [t.strip() for t in value.split(",") if t.strip()]:
                new = re.sub(rf"\b{re.escape(target)}\b", target + MISSING, lines[k], count=1)
                out.append(Breakage(f"link-missing:{opt}", n.id, (n.file,),
                                    ((n.file, "".join(lines[:k] + [new] + lines[k + 1:])),)))
    for page in sorted((root / "docs").rglob("*.md")):
        rel = str(page.relative_to(root))
        t = text(rel)
        for m in _REF_RE.finditer(t):
            new = t[: m.start("id")] + m["id"] + MISSING + t[m.end("id"):]
            out.append(Breakage("reference-missing", m["id"] + MISSING, (rel,), ((rel, new),)))

    # 5. a duplicated ID: the first need of each hand-written type, and a scenario
    seen: set[str] = set()
    for n in needs:
        if n.type in seen:
            continue
        seen.add(n.type)
        lines = text(n.file).splitlines(keepends=True)
        block = lines[n.start:n.end]
        out.append(Breakage(f"duplicate-id:{n.type}", n.id, (n.file,),
                            ((n.file, "".join(lines[:n.end] + ["\n"] + block + lines[n.end:])),)))
    r = next(iter(registry.values()))
    rel = rule_files[r.id]
    lines = text(rel).splitlines(keepends=True)
    h = next(k for k in range(len(lines)) if f"Scenario {r.scenarios[0].id} " in lines[k])
    a, b = _scenario_span(lines, h)
    out.append(Breakage("duplicate-id:scenario", r.scenarios[0].id, (rel,),
                        ((rel, "".join(lines[:b] + lines[a:b] + lines[b:])),)))

    # 6. KVM behaviour models that diverge without a deviation: flip each flag of each
    #    model that calls the shared VMX model, keeping the flips whose exploration finds
    #    something no deviation covers (a flip that changes nothing observable is no breakage)
    models = "rules/vmxkb/kvm/models.py"
    lines = text(models).splitlines(keepends=True)
    uncovered = _uncovered_flips(root, needs)
    current = None
    for i, line in enumerate(lines):
        m = re.match(r'^@behaviour\("(KVM_[A-Z0-9_]+)"', line)
        if m:
            current = m[1]
        if current and line.startswith("    return _vmx_kvm("):
            for flag in ("stuff_on_intercept", "stuff_on_inject"):
                if (current, flag) not in uncovered:
                    continue
                new = re.sub(rf"{flag}=(True|False)", lambda v: f"{flag}={v[1] != 'True'}", line)
                out.append(Breakage("kvm-diverge", current, (models, "docs/kvm/behaviours.md"),
                                    ((models, "".join(lines[:i] + [new] + lines[i + 1:])),)))
            current = None

    # 7. a section number for an unknown edition (every clause citing it gets it)
    cit_lines = text(cit).splitlines(keepends=True)
    for sid, (_, _, k) in section_spans.items():
        line = cit_lines[k]
        new = re.sub(r"_numbers\((.*)\),\s*$", rf'{{**_numbers(\1), "{UNKNOWN_EDITION}": ("99.1", "c")}},', line)
        assert new != line, line
        out.append(Breakage("unknown-edition", sid, (cit,), ((cit, "".join(cit_lines[:k] + [new] + cit_lines[k + 1:])),)))
    return out


# --- running ---------------------------------------------------------------------------

RECORDS = ROOT / "tests" / "breakage_runs"


def fingerprint(root: Path = ROOT) -> str:
    """A hash of what the builds of a copy of ``root`` read (the files :func:`copy_tree`
    copies) and of this script: two trees with the same fingerprint build the same."""
    h = hashlib.sha256()
    files = []
    for name in SOURCES:
        s = root / name
        files += sorted(f for f in s.rglob("*") if f.is_file() and not {"__pycache__", "_build"} & set(f.parts)
                        and ".egg-info" not in str(f)) if s.is_dir() else [s]
    for f in files:
        h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    h.update(b"tests/breakages.py\0" + Path(__file__).read_bytes())
    return h.hexdigest()[:16]


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _record_objects(path: Path) -> Iterator[dict]:
    """The JSON objects of a record, a line each; a line cut short by an interrupted run is skipped."""
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict):
                yield r


def read_record(path: Path) -> dict[str, dict]:
    """key -> the last result recorded for it in ``path`` (a JSON line per result; a line
    cut short by an interrupted run is skipped)."""
    return {r["key"]: r for r in _record_objects(path) if isinstance(r.get("key"), str)}


def read_set(path: Path) -> dict[str, int] | None:
    """The breakage counts per class of the set the record's tree generates (its ``set`` line,
    written when a full-set run starts), or None when the record has none."""
    for r in _record_objects(path):
        if isinstance(r.get("set"), dict) and all(isinstance(n, int) for n in r["set"].values()):
            return {str(c): n for c, n in r["set"].items()}
    return None


def _set_line(every: list["Breakage"], fp: str) -> str:
    counts = Counter(b.cls for b in every)
    return json.dumps({"set": dict(sorted(counts.items())), "total": len(every), "fingerprint": fp}, sort_keys=True)


REPORT = ROOT / "docs" / "_generated" / "breakage-records.md"


def report(records: Path | None = None) -> str:
    """Markdown: for every record in ``records``, the counts per class of the set its tree
    generates, of the breakages run and of those each build kind caught, and whether the
    set ran in full with every breakage caught. docs/gate.md includes it; make test checks
    that the committed copy is current."""
    records = records or RECORDS
    out = ["<!-- written by tests/breakages.py from tests/breakage_runs/*.jsonl; do not edit -->", ""]
    files = sorted(records.glob("*.jsonl")) if records.is_dir() else []
    if not files:
        return "\n".join(out + ["No full-set run is recorded.", ""])
    read = {f: read_record(f) for f in files}
    for f in sorted(files, key=lambda f: (min((str(r.get("at", "")) for r in read[f].values()), default=""), f.name)):
        have, gen = read[f], read_set(f)
        table: dict[str, Counter[str]] = {}
        for r in have.values():
            c = table.setdefault(str(r.get("cls")), Counter())
            c["run"] += 1
            for k in ("incremental", "clean", "undone"):
                c[k] += bool(r.get(k))
            c["caught"] += all(bool(r.get(k)) for k in ("incremental", "clean", "undone"))
        classes = sorted(set(table) | set(gen or {}))
        t = sum(table.values(), Counter())
        total = sum(gen.values()) if gen is not None else None
        whole = gen is not None and all(table.get(c, Counter())["caught"] >= n for c, n in gen.items())
        when = sorted(str(r.get("at", "")) for r in have.values())
        state = ("**complete**: every breakage of the set ran and was caught by both builds and passed once undone"
                 if whole else
                 (f"**not complete**: {t['caught']} of {total} caught so far" if total is not None else
                  f"**not complete**: {t['caught']} caught so far, of a set whose size the record does not give"))
        out += [f"### Record `{f.stem}`", "",
                f"{state}; {t['run'] - t['caught']} not caught; results from {when[0] if when else '-'} to {when[-1] if when else '-'}.", "",
                "| class | generated | run | caught, incremental | caught, clean | passes once undone |",
                "|---|---:|---:|---:|---:|---:|"]
        for c in classes:
            n = table.get(c, Counter())
            g = gen.get(c, 0) if gen is not None else "?"
            out.append(f"| {c} | {g} | {n['run']} | {n['incremental']} | {n['clean']} | {n['undone']} |")
        out.append(f"| **all** | {total if total is not None else '?'} | {t['run']} | {t['incremental']} | {t['clean']} | {t['undone']} |")
        out.append("")
    return "\n".join(out)


def _record_line(r: "Result") -> str:
    return json.dumps({"key": r.breakage.key, "name": r.breakage.name, "cls": r.breakage.cls, "incremental": r.incremental,
                       "clean": r.clean, "undone": r.undone, "detail": r.detail,
                       "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, sort_keys=True)

def copy_tree(dst: Path, src: Path = ROOT) -> Path:
    for name in SOURCES:
        s = src / name
        if s.is_dir():
            shutil.copytree(s, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "_build"))
        else:
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(s, dst / name)
    return dst


def build(tree: Path, clean: bool = False) -> subprocess.CompletedProcess[str]:
    """`make html`'s build of ``tree`` (importing ``tree``'s rules). Incremental into
    ``_build/html``, or clean (-E, fresh output and doctree directories) into ``_build/clean``."""
    out = tree / "_build" / ("clean" if clean else "html")
    if clean and out.exists():
        shutil.rmtree(out)
    env = {"PYTHONPATH": str(tree / "rules"), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-c", str(tree), "-W", "--keep-going", "-q", "-b", "html",
         *(["-E"] if clean else []), str(tree / "docs"), str(out)],
        capture_output=True, text=True, env=env, check=False,
    )


def names_item(stderr: str, b: Breakage) -> bool:
    """A line of the build's output names the item and one of its files."""
    return any(b.item in line and any(f in line for f in b.files) for line in stderr.splitlines())


@dataclass
class Result:
    breakage: Breakage
    incremental: bool  #: the incremental build failed, naming the item and its file
    clean: bool  #: the clean build failed, naming the item and its file
    undone: bool  #: the incremental build after undoing it passed
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.incremental and self.clean and self.undone


def _check(r: subprocess.CompletedProcess[str], b: Breakage) -> tuple[bool, str]:
    if r.returncode == 0:
        return False, "build passed"
    if "Traceback" in r.stderr:  # a crash is not a finding: the gate must report, not break
        return False, "the build crashed: " + next((x.strip() for x in reversed(r.stderr.splitlines())
                                                    if "Error" in x), r.stderr.strip()[-200:])
    if not names_item(r.stderr, b):
        return False, "no line names the item and its file: " + " | ".join(r.stderr.splitlines()[:4])
    return True, ""


def run_one(tree: Path, b: Breakage) -> Result:
    """Apply ``b`` to a built, passing ``tree``; build incrementally and clean; undo; build."""
    originals = {rel: (tree / rel).read_text(encoding="utf-8") for rel, _ in b.edits}
    try:
        for rel, new in b.edits:
            (tree / rel).write_text(new, encoding="utf-8")
        inc, why_inc = _check(build(tree), b)
        cln, why_cln = _check(build(tree, clean=True), b)
    finally:
        for rel, old in originals.items():
            (tree / rel).write_text(old, encoding="utf-8")
    after = build(tree)
    detail = "; ".join(x for x in (
        why_inc and f"incremental: {why_inc}", why_cln and f"clean: {why_cln}",
        after.returncode and f"after undo: {after.stderr.strip()[:300]}") if x)
    return Result(b, inc, cln, after.returncode == 0, detail)


def run(breakages: list[Breakage], jobs: int = 1, workdir: Path | None = None, log=print,
        deadline: float | None = None, record: Path | None = None) -> list[Result]:
    """Run ``breakages`` over ``jobs`` trees (each built once first), in parallel threads;
    start no new breakage after ``deadline`` (a time.monotonic() value); append each result
    to ``record`` as it comes."""
    if not breakages:
        return []
    work = Path(workdir or tempfile.mkdtemp(prefix="vmxkb-breakages-"))
    results: list[Result | None] = [None] * len(breakages)
    lock = threading.Lock()
    done = [0]

    def worker(k: int) -> None:
        tree = copy_tree(work / f"tree{k}")
        base = build(tree)
        if base.returncode != 0:
            raise RuntimeError(f"the unbroken tree does not build: {base.stderr[:500]}")
        for i in range(k, len(breakages), jobs):
            if deadline is not None and time.monotonic() > deadline:
                return
            res = run_one(tree, breakages[i])
            results[i] = res
            with lock:
                if record is not None:
                    with record.open("a", encoding="utf-8") as fh:
                        fh.write(_record_line(res) + "\n")
                done[0] += 1
                log(f"[{done[0]}/{len(breakages)}] {'ok  ' if res.ok else 'MISS'} {res.breakage.name}"
                    + (f"  ({res.detail})" if res.detail else ""))

    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            worker(k)
        except BaseException as exc:  # reported below, never swallowed
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    shutil.rmtree(work, ignore_errors=True)
    return [r for r in results if r is not None]


def interleave(breakages: list[Breakage]) -> list[Breakage]:
    """Round-robin over the classes, so any prefix of the run covers every class evenly."""
    by: dict[str, list[Breakage]] = {}
    for b in breakages:
        by.setdefault(b.cls, []).append(b)
    out: list[Breakage] = []
    queues = list(by.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


def sample(breakages: list[Breakage], n: int, seed: int) -> list[Breakage]:
    """``n`` breakages from different classes (rotating with ``seed``), one random each."""
    rng = random.Random(seed)
    classes = sorted({b.cls for b in breakages})
    rng.shuffle(classes)
    return [rng.choice([b for b in breakages if b.cls == c]) for c in classes[:n]]


def summary(results: list[Result], earlier: list[dict] = ()) -> str:
    """Counts per class and build kind, of ``results`` and of ``earlier`` recorded ones."""
    table: dict[str, Counter[str]] = {}
    rows_in = [(r.breakage.cls, r.incremental, r.clean, r.undone) for r in results]
    rows_in += [(e["cls"], e["incremental"], e["clean"], e["undone"]) for e in earlier]
    for cls, inc, cln, und in rows_in:
        c = table.setdefault(cls, Counter())
        c["run"] += 1
        c["incremental"] += inc
        c["clean"] += cln
        c["undone"] += und
    rows = [f"{'class':28} {'run':>5} {'caught-incr':>11} {'caught-clean':>12} {'undo-passes':>11}"]
    for cls in sorted(table):
        c = table[cls]
        rows.append(f"{cls:28} {c['run']:5} {c['incremental']:11} {c['clean']:12} {c['undone']:11}")
    t = sum(table.values(), Counter())
    rows.append(f"{'all':28} {t['run']:5} {t['incremental']:11} {t['clean']:12} {t['undone']:11}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Break the knowledge base in every generated way; every build must catch it.")
    p.add_argument("-j", "--jobs", type=int, default=2, help="trees built in parallel (default 2)")
    p.add_argument("--sample", type=int, metavar="N", help="only N breakages, one per class, chosen with --seed")
    p.add_argument("--seed", type=int, default=None, help="seed for --sample (default: time-based, printed)")
    p.add_argument("--class", dest="classes", action="append", metavar="CLASS", help="only this class (repeatable)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N of the (class-interleaved) full set")
    p.add_argument("--list", action="store_true", help="print the counts per class and stop")
    p.add_argument("--minutes", type=float, metavar="M", help="start no new breakage after M minutes (the summary says how many ran)")
    p.add_argument("--resume", action="store_true",
                   help="skip the breakages this tree's record (same fingerprint) already has as caught, and count them")
    p.add_argument("--report", action="store_true",
                   help=f"only rewrite {_shown(REPORT)} from the records (also done after every full-set run)")
    a = p.parse_args(argv)
    if a.jobs < 1 or any(v is not None and v <= 0 for v in (a.sample, a.limit, a.minutes)):
        print("breakages: --jobs, --sample, --limit and --minutes must be positive", file=sys.stderr)
        return 2
    if a.report:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(report(), encoding="utf-8")
        print(f"wrote {_shown(REPORT)}")
        return 0
    every = generated = generate()
    if a.classes:
        unknown = set(a.classes) - {b.cls for b in every}
        if unknown:
            print(f"breakages: unknown class {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        every = [b for b in every if b.cls in a.classes]
    counts = Counter(b.cls for b in every)
    print(f"{len(every)} breakages generated: " + ", ".join(f"{c} {n}" for c, n in sorted(counts.items())))
    un = UNRECORDED.get(str(ROOT), {})
    print(f"not generated (nothing else records them, code and docs still agree): deleting "
          f"{len(un.get('scenario', []))} scenario(s) whose rule keeps another of the same outcome and that "
          f"are not the only one to kill a mutant, "
          f"{len(un.get('need', []))} need(s) with no rule/model/finding and no link or reference to them")
    if a.list:
        return 0
    if a.sample:
        seed = a.seed if a.seed is not None else int(time.time()) % 100000
        print(f"sample of {a.sample}, seed {seed} (rerun with --sample {a.sample} --seed {seed})")
        chosen = sample(every, a.sample, seed)
    else:
        chosen = interleave(every)[: a.limit]
    record, earlier = None, []
    if not a.sample:  # full-set runs (whole or --limit/--class parts) are recorded
        fp = fingerprint()
        record = RECORDS / f"{fp}.jsonl"
        RECORDS.mkdir(parents=True, exist_ok=True)
        print(f"tree fingerprint {fp}; results appended to {_shown(record)}")
        if read_set(record) is None:
            with record.open("a", encoding="utf-8") as fh:
                fh.write(_set_line(generated, fp) + "\n")
        if a.resume:
            have = read_record(record)
            caught = {k for k, r in have.items() if r.get("incremental") and r.get("clean") and r.get("undone")}
            earlier = [have[b.key] for b in chosen if b.key in caught]
            chosen = [b for b in chosen if b.key not in caught]
            print(f"--resume: {len(earlier)} already caught on this tree (recorded), {len(chosen)} to run")
    start = time.monotonic()
    deadline = start + a.minutes * 60 if a.minutes else None
    results = run(chosen, a.jobs, log=lambda s: print(s, flush=True), deadline=deadline, record=record)
    print(summary(results, earlier))
    if len(results) < len(chosen):
        print(f"STOPPED after --minutes {a.minutes:g}: {len(results)} of {len(chosen)} breakages run "
              f"(the first {len(results)} of the class-interleaved order); `--resume` goes on from here")
    if record is not None:
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(report(), encoding="utf-8")
        print(f"wrote {_shown(REPORT)}")
    missed = [r for r in results if not r.ok]
    print(f"{len(results)} breakage(s) run in {time.monotonic() - start:.0f} s with {a.jobs} job(s)"
          + (f", {len(earlier)} recorded earlier on this tree" if earlier else "") + f"; {len(missed)} not caught")
    for r in missed:
        print(f"NOT CAUGHT: {r.breakage.name}: {r.detail}")
    if missed:
        return 1
    return 3 if len(results) < len(chosen) else 0  # 3: stopped early, the set was not run in full


if __name__ == "__main__":
    sys.exit(main())
