"""Sphinx extension: renders rules, scenarios and model witnesses from the code, and
runs the gate at the end of every build.

Only ``conf.py`` imports this module; the CLI never does.

Two traps shape it (``docs/gate.md``): sphinx-needs does not always warn about a bad
reference, and an incremental build does not repeat the warnings of documents it does
not re-read. So the gate runs at ``build-finished`` over *all* needs and re-checks every
link and ``{need}`` reference itself; an incremental build re-reads the pages whose
sources or rendered code changed (content hashes), re-writes the pages that show a need
whose data changed, and re-reads everything after a build that did not pass cleanly
("Incremental builds" in ``docs/gate.md``). Need boxes are rendered here, not by
sphinx-needs' layout engine (``docs/bench.md``).
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx_needs.api import add_need
from sphinx_needs.data import SphinxNeedsData
from sphinx_needs.roles.need_ref import NeedRef
from sphinx_needs.utils import add_doc

from vmxkb import gate
from vmxkb.citations import SECTIONS
from vmxkb.kvm.explore import domain_size, explore_all
from vmxkb.kvm.models import BEHAVIOURS
from vmxkb.registry import REGISTRY
from vmxkb.sdm import load_all

LOGGER = logging.getLogger("vmxkb")
from vmxkb.links import PERMALINK_DIR  # noqa: E402  (<site>/id/<NEED_ID>.html)


def _literal(code: str, language: str = "python") -> nodes.literal_block:
    block = nodes.literal_block(code, code)
    block["language"] = language
    return block


def search_key(number: str) -> str:
    """The search-index word for an SDM section number: Sphinx's search drops numbers, so
    ``26.3.1.5`` is indexed as ``sdm_26_3_1_5`` (``_static/vmxkb-search.js`` rewrites a
    query typed as a dotted number into this word)."""
    return "sdm_" + number.replace(".", "_")


def _search_keys(section_key: str) -> nodes.inline:
    """Hidden words that make a section's numbers, in every edition, findable by search (none
    for a section that does not exist: the gate reports the rule's dangling ``sdm`` link)."""
    section = SECTIONS.get(section_key)
    numbers = sorted({n[0] for n in section.numbers.values() if n}) if section else []
    text = " ".join(search_key(n) for n in numbers)
    return nodes.inline(text, text, classes=["vmx-search-keys"])


def _para(text: str) -> nodes.paragraph:
    return nodes.paragraph(text, text)


class SectionsDirective(SphinxDirective):
    """``{vmx-sections}``: one section need per SDM section the clauses cite."""

    def run(self) -> list[nodes.Node]:
        add_doc(self.env, self.env.docname)
        note_code(self.env, *_area_and_model_files()[:-2])
        out: list[nodes.Node] = []
        for s in SECTIONS.values():
            rows = ", ".join(
                f"{e} {n[0]} ({n[1]})" if n else f"{e} ?" for e, n in s.numbers.items()
            )
            out += add_need(
                self.env.app,
                self.state,
                self.env.docname,
                self.lineno,
                need_type="section",
                title=s.title,
                id=s.key,
                content=f"SDM Vol. {s.volume}. Numbers by edition group: {rows}.",
                editions=s.as_field(),
                sdm_volume=s.volume,
            )
            out.append(nodes.paragraph("", "", _search_keys(s.key)))
        return out


class NumberIndexDirective(SphinxDirective):
    """``{vmx-number-index}``: every section number of every edition, sorted, each leading
    to its section need (and from there to the clauses that cite it)."""

    def run(self) -> list[nodes.Node]:
        note_code(self.env, *_area_and_model_files()[:-2])
        rows: dict[tuple[str, str], list[str]] = {}
        for s in SECTIONS.values():
            for edition, num in s.numbers.items():
                if num:
                    rows.setdefault((num[0], s.key), []).append(f"{edition} ({num[1]})")
        key = lambda r: ([int(x) if x.isdigit() else 0 for x in r[0].split(".")], r[1])  # noqa: E731
        lines = ["| Number | Editions (confidence) | Section |", "|---|---|---|"]
        lines += [
            f"| {n} | {', '.join(rows[n, k])} | {SECTIONS[k].title} ({{need}}`{k} <{k}>`) |"
            for n, k in sorted(rows, key=key)
        ]
        return self.parse_text_to_nodes("\n".join(lines))


def cli_help_texts(width: int = 88) -> dict[str, str]:
    """``vmxkb --help`` and every ``vmxkb COMMAND --help``, as the live parser prints them."""
    import argparse

    from vmxkb.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        parser = build_parser()
        texts = {"vmxkb": parser.format_help()}
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        for name, p in sub.choices.items():
            texts[f"vmxkb {name}"] = p.format_help()
        return texts
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


class CliHelpDirective(SphinxDirective):
    """``{vmx-cli-help}``: the live ``--help`` of the command line, rendered at build time."""

    def run(self) -> list[nodes.Node]:
        _ensure(self.env)
        self.env.vmxkb_volatile.add(self.env.docname)  # type: ignore[attr-defined]  # re-read every build
        out: list[nodes.Node] = []
        for command, text in cli_help_texts().items():
            out.append(nodes.rubric(command, command))
            out.append(_literal(text.rstrip(), "text"))
        return out


class RunDirective(SphinxDirective):
    """``{vmx-run} vmxkb ARGS...``: run the command line at build time and show what it
    prints (paths are relative to the repository root), so the docs never show stale output."""

    required_arguments = 1
    final_argument_whitespace = True

    def run(self) -> list[nodes.Node]:
        import contextlib
        import io
        import shlex

        from vmxkb.cli import main

        # the command line reads code, docs pages and input files: re-read this page every build
        _ensure(self.env)
        self.env.vmxkb_volatile.add(self.env.docname)  # type: ignore[attr-defined]
        argv = shlex.split(self.arguments[0])
        if argv[:1] != ["vmxkb"]:
            raise self.error("vmx-run runs 'vmxkb ...' only")
        root = self.env.app.confdir
        real = [str(os.path.join(root, a)) if os.path.exists(os.path.join(root, a)) else a for a in argv[1:]]
        buf, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
                status = main(real)
        except Exception as exc:  # report it on this page and let the gate run, never a traceback
            raise self.error(f"vmx-run: {self.arguments[0]!r} raised {type(exc).__name__}: {exc}") from None
        if status == 2:  # bad input: the page would show an error instead of the output
            raise self.error(f"vmx-run: {self.arguments[0]!r} failed: {err.getvalue().strip()}")
        text = f"$ {self.arguments[0]}\n{buf.getvalue()}{err.getvalue()}(exit status {status})"
        return [_literal(text, "text")]


class EditionDirective(SphinxDirective):
    """``{vmx-edition} E3b``: every section's number in one edition group, what it was in
    the group before and what it is now, with the rules citing it."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        from vmxkb.citations import CURRENT_EDITION, EDITIONS

        key = self.arguments[0]
        note_code(self.env, *_area_and_model_files()[:-2])
        if key not in EDITIONS:
            raise self.error(f"unknown edition group {key!r} (known: {', '.join(EDITIONS)})")
        order = list(EDITIONS)
        prev = order[order.index(key) - 1] if order.index(key) else None

        def cell(num: Any) -> str:
            return f"{num[0]} ({num[1]})" if num else "?"

        lines = [
            f"| Section | {key} | {'before (' + prev + ')' if prev else 'before'} | now ({CURRENT_EDITION}) | moved | rules |",
            "|---|---|---|---|---|---|",
        ]
        for s in SECTIONS.values():
            here, before, now = s.numbers[key], s.numbers[prev] if prev else None, s.numbers[CURRENT_EDITION]
            moved = "yes" if prev and here and before and here[0] != before[0] else ("first group" if not prev else "no" if here and before else "?")
            rules = sum(1 for r in REGISTRY.values() if r.section == s.key)
            lines.append(f"| {s.title} ({{need}}`{s.key} <{s.key}>`) | {cell(here)} | {cell(before)} | {cell(now)} | {moved} | {rules} |")
        return self.parse_text_to_nodes("\n".join(lines))


class RuleDirective(SphinxDirective):
    """``{vmx-rule} RULE_ID``: the rule's code, and one scenario need per scenario."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        load_all()
        add_doc(self.env, self.env.docname)
        rid = self.arguments[0]
        r = REGISTRY.get(rid)
        if r is None:  # the gate reports it with the file; render a marker
            note_code(self.env, *_area_and_model_files()[:-2])  # re-read when a rule appears
            return [_para(f"(no registered rule {rid})")]
        note_code(self.env, code_path(r.source_file))
        out: list[nodes.Node] = []
        src = inspect.getsource(r.func)
        body = src.split('"""', 2)[2].lstrip("\n") if src.count('"""') >= 2 else src
        head = src.split("\n", 1)[0] if src.startswith("@") else ""
        sig = next(line for line in src.splitlines() if line.startswith("def "))
        what = {"control": "VMfail, VM-instruction error 7", "host": "VMfail, VM-instruction error 8", "guest": "VM-entry failure, exit reason 0x80000021"}
        kind = what.get(r.phase or "", {"effect": "judges a VM entry as observed", "bare-metal": "judges a bare-metal run"}.get(r.kind, ""))
        qual = f", exit qualification {r.qualification}" if r.qualification else ""
        out.append(_para(f"Executable rule {r.qualname} ({kind}{qual}):"))
        out[-1] += _search_keys(r.section)
        out.append(_literal("\n".join(x for x in (head, sig, "    ...", body.rstrip()) if x)))
        existing = SphinxNeedsData(self.env).get_needs_mutable()
        for s in r.scenarios:
            if s.id in existing:  # a scenario ID used twice: the gate reports it, naming the rule's file
                continue
            out += add_need(
                self.env.app,
                self.state,
                self.env.docname,
                self.lineno,
                need_type="scenario",
                title=s.summary,
                id=s.id,
                content=f"Expected: the rule **{s.expect}**.\n\n```pycon\n{s.source}\n```",
                exercises=[rid],
                expect=s.expect,
            )
        return out


class ModelDirective(SphinxDirective):
    """``{vmx-model} KVM_ID``: a behaviour model's code and the size of its domain."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        note_code(self.env, "kvm/models.py")
        b = BEHAVIOURS.get(self.arguments[0])
        if b is None:
            return [_para(f"(no registered model {self.arguments[0]})")]
        return [
            _para(f"Model {b.qualname}, explored over {domain_size(b)} inputs:"),
            _literal(inspect.getsource(b.func)),
        ]


class WitnessDirective(SphinxDirective):
    """``{vmx-witness} DEV_ID``: the smallest input of every finding class the deviation
    covers, as the exploration found it in this build."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        did = self.arguments[0]
        note_code(self.env, *_area_and_model_files())
        need = SphinxNeedsData(self.env).get_needs_mutable().get(did)
        if need is None:
            return [_para(f"(no deviation {did} above)")]
        affects, breaks, kind = set(need["affects"] or ()), set(need["breaks"] or ()), need["kind"]
        out: list[nodes.Node] = []
        for (bid, k, rules), (f, count) in sorted(explore_all().items()):
            if bid not in affects or k != kind or not set(rules) <= breaks:
                continue
            lines = [
                f"# {bid}: {count} input(s); smallest:",
                f"situation : {f.situation}",
                *(f"KVM       : {t}" for t in f.kvm.trace),
            ]
            if f.kvm.entry is not None:
                given = f.kvm.entry.vmcs.given()
                lines += [f"VMCS      : {n} = {given[n]:#x}" for n in (
                    "GUEST_RFLAGS", "GUEST_INTERRUPTIBILITY_INFO", "GUEST_PENDING_DBG_EXCEPTIONS",
                    "GUEST_IA32_DEBUGCTL", "VM_ENTRY_INTR_INFO_FIELD")]
            lines += [f"result    : {f.detail}", f"breaks    : {', '.join(rules) or '-'}"]
            out.append(_literal("\n".join(lines), "text"))
        if not out:
            out.append(_para("(the exploration finds nothing this deviation covers: the gate fails)"))
        return out


def _all_needs(env: BuildEnvironment) -> Any:
    """Every need, read-only: the mutable store while the pages are read, the view once
    sphinx-needs has post-processed (and frozen) them."""
    data = SphinxNeedsData(env)
    return data.get_needs_view() if data.needs_is_post_processed else data.get_needs_mutable()


def _mutation_key(app: Sphinx, committed: bytes) -> str:
    """What the mutation results depend on: the package's sources, the committed results and
    the deviation needs the models are judged against."""
    import hashlib

    deviations = sorted(
        (nid, tuple(sorted(getattr(x, "id", x) for x in n.get("affects") or ())), n.get("kind"),
         tuple(sorted(getattr(x, "id", x) for x in n.get("breaks") or ())))
        for nid, n in _all_needs(app.env).items() if n.get("type") == "deviation")
    digest = hashlib.sha256(_package_hash(app).encode() + hashlib.sha256(committed).digest() + repr(deviations).encode())
    return digest.hexdigest()


def mutation_results(app: Sphinx) -> list[Any]:
    """This build's mutation results (:func:`vmxkb.mutants.current`): the committed
    ``docs/_generated/mutation.json`` where its fingerprints match the sources, every other
    rule or model mutated afresh. Kept in the environment and reused while nothing they
    depend on changed (:func:`_mutation_key`)."""
    import json

    from vmxkb import mutants

    try:
        with open(os.path.join(app.srcdir, "_generated", "mutation.json"), "rb") as f:
            raw = f.read()
    except OSError:
        raw = b""
    key = _mutation_key(app, raw)
    cached = getattr(app.env, "vmxkb_mutation", None)
    if isinstance(cached, tuple) and len(cached) == 2 and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    try:
        committed = json.loads(raw) if raw else None
    except ValueError:
        committed = None
    results = mutants.current(committed)
    app.env.vmxkb_mutation = (key, results)  # type: ignore[attr-defined]
    return results


class MutationDirective(SphinxDirective):
    """``{vmx-mutation}``: the mutation score of every rule and KVM model, as this build
    computes it (the committed results reused where they are current)."""

    def run(self) -> list[nodes.Node]:
        from vmxkb import knowledge, mutants

        note_code(self.env, *_area_and_model_files())
        # the models are judged against the deviation needs as the pages write them
        for need in knowledge.load().values():
            if need.type == "deviation":
                self.env.note_dependency(os.path.join(self.env.app.confdir, need.file))
        self.env.note_dependency(os.path.join(self.env.app.srcdir, "_generated", "mutation.json"))
        return self.parse_text_to_nodes(mutants.as_markdown(mutation_results(self.env.app)))


class coverage_node(nodes.General, nodes.Element):
    """Placeholder for ``{vmx-coverage}``, filled in once every need is known."""


class CoverageDirective(SphinxDirective):
    """``{vmx-coverage}``: clause counts per area and status, computed from the needs."""

    def run(self) -> list[nodes.Node]:
        return [coverage_node()]


def coverage_counts(needs: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Clause counts by area (the docs page the clause is on) and status."""
    out: dict[str, dict[str, int]] = {}
    for need in needs.values():
        if need["type"] != "clause":
            continue
        area = (need.get("docname") or "?").rsplit("/", 1)[-1]
        row = out.setdefault(area, dict.fromkeys((*gate.CLAUSE_STATUSES, "no status"), 0))
        status = need.get("status") if need.get("status") in gate.CLAUSE_STATUSES else "no status"
        row[status] += 1
    return out


def _table(header: list[str], rows: list[list[str]]) -> nodes.table:
    table = nodes.table()
    group = nodes.tgroup(cols=len(header))
    table += group
    group.extend(nodes.colspec(colwidth=1) for _ in header)
    head, body = nodes.thead(), nodes.tbody()
    for container, lines in ((head, [header]), (body, rows)):
        for line in lines:
            row = nodes.row()
            for cell in line:
                entry = nodes.entry()
                entry += _para(cell)
                row += entry
            container += row
    group += head
    group += body
    return table


def _fill_coverage(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    placeholders = list(doctree.findall(coverage_node))
    if not placeholders:
        return
    needs = _final_needs(app)  # read-only: only type, docname and status are used
    counts = coverage_counts(needs)
    from vmxkb.sdm import AREAS

    order = [a for a in AREAS if a in counts] + sorted(set(counts) - set(AREAS))
    cols = [*gate.CLAUSE_STATUSES, "no status"]
    rows = [[a, *(str(counts[a][c]) for c in cols), str(sum(counts[a].values()))] for a in order]
    totals = [sum(counts[a][c] for a in order) for c in cols]
    rows.append(["all areas", *(str(t) for t in totals), str(sum(totals))])
    for node in placeholders:
        node.replace_self(_table(["area", *cols, "clauses"], rows))


#: The fields shown in a need's box, in this order, when the need has a value for them.
BOX_FIELDS = ("status", "expect", "kind", "failure", "confidence", "sdm_volume", "reason", "interpretation",
              "support", "implementation", "commit", "url")


def _edition_numbers(values: list[str]) -> str:
    """``E3a:26.3.1.5:v`` strings as ``E3a 26.3.1.5 (v)``, the way the editions page writes them
    (the raw field is kept in needs.json and in the box's title attribute)."""
    out = []
    for value in values:
        edition, number, mark = (str(value).split(":") + ["", ""])[:3]
        out.append(f"{edition} {number}" + (f" ({mark})" if mark and mark != "?" else ""))
    return " · ".join(out)


def _need_box(app: Sphinx, fromdocname: str, node: nodes.Element, need: Any, labels: dict[str, Any]) -> nodes.container:
    """The rendered box of one need: head (type, title, ID), its fields, its links both ways,
    then its content. Plain docutils nodes, built from the need's data."""
    builder = app.builder
    nid = need["id"]
    box = nodes.container(classes=["vmx-need", f"vmx-need-{need['type']}"], ids=[nid])
    head = nodes.paragraph(classes=["vmx-need-head"])
    head += nodes.inline(labels["types"].get(need["type"], need["type"]) + ": ", labels["types"].get(need["type"], need["type"]) + ": ",
                         classes=["vmx-need-type"])
    head += nodes.strong(need["title"], need["title"])
    head += nodes.Text(" ")
    head += nodes.reference(nid, nid, refid=nid, classes=["vmx-need-id"])
    box += head
    rows = nodes.field_list(classes=["vmx-need-fields"])

    def row(name: str, body: nodes.Node | str) -> None:
        field = nodes.field()
        field += nodes.field_name(name, name)
        value = nodes.field_body()
        para = nodes.paragraph()
        para += nodes.Text(body) if isinstance(body, str) else body
        value += para
        field += value
        rows.append(field)

    for name in ("sdm_sections", "editions"):
        if need.get(name):
            row("SDM numbers", _edition_numbers(need[name]))
            rows[-1]["classes"].append("vmx-sdm-numbers")
            rows[-1]["title"] = ", ".join(need[name])  # type: ignore[index]
    for name in BOX_FIELDS:
        value = need.get(name)
        if value in (None, "", []):
            continue
        if name == "url":
            row(name, nodes.reference(str(value), str(value), refuri=str(value)))
        else:
            row(name, str(value))
    needs = labels["needs"]
    for link, (outgoing, incoming) in labels["links"].items():
        for label, targets in ((outgoing, need.get(link)), (incoming, need.get(f"{link}_back"))):
            ids = [getattr(t, "id", t) for t in targets or ()]
            if not ids:
                continue
            para = nodes.inline()
            for k, target in enumerate(ids):
                if k:
                    para += nodes.Text(", ")
                other = needs.get(target)
                if other is None or not other.get("docname"):
                    para += nodes.literal(target, target)  # the gate reports a missing target
                    continue
                uri = builder.get_relative_uri(fromdocname, other["docname"]) + "#" + target
                para += nodes.reference(target, target, refuri=uri, internal=True)
            row(label, para)
    if len(rows):
        box += rows
    box.extend(node.children)
    return box


def _final_needs(app: Sphinx) -> Any:
    """The needs once sphinx-needs has post-processed them (the write phase), taken once per
    build: sphinx-needs builds a new read-only view on every call, which for every page of a
    large site adds up (``docs/bench.md``, the 10x corpus)."""
    view = getattr(app, "vmxkb_final_needs", None)
    if view is None:
        view = app.vmxkb_final_needs = SphinxNeedsData(app.env).get_needs_view()  # type: ignore[attr-defined]
    return view


def _render_needs(app: Sphinx, doctree: nodes.document, fromdocname: str) -> None:
    """Render every need node of the page as a :func:`_need_box`, before sphinx-needs would.

    sphinx-needs' layout engine parses its layout strings and builds nested tables for every
    need; with four hundred needs that was a third of the build's time (``docs/bench.md``).
    The needs stay sphinx-needs' own (needs.json, filters, tables, diagrams, roles); only the
    view is vmxkb's. sphinx-needs then finds no need node left to lay out.
    """
    from sphinx_needs.nodes import Need

    found = list(doctree.findall(Need))
    if not found:
        return
    cfg = app.config
    labels = {
        "types": {t["directive"]: t["title"] for t in cfg.needs_types},
        "links": {"links": ("links", "linked from"),
                  **{name: (spec.get("outgoing", name), spec.get("incoming", f"{name} (incoming)"))
                     for name, spec in cfg.needs_links.items()}},
        "needs": _final_needs(app),
    }
    needs = labels["needs"]
    for node in found:
        nid = node["ids"][0]
        need = needs.get(nid)
        if need is None or (node.get("docname") and node["docname"] != need["docname"]):
            node.parent.remove(node)  # a duplicate ID: the gate reports it
            continue
        if need.get("hide"):
            node.parent.remove(node)
            continue
        node.replace_self(_need_box(app, fromdocname, node, need, labels))


def _register_ids(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Every need ID becomes an object other Sphinx projects can link through intersphinx
    (``objects.inv``): ``std:vmxid`` under its ID, and ``std:label`` under its lower-cased
    ID (which any project's ``:ref:`` can use with no configuration)."""
    std = env.get_domain("std")
    # get_needs_mutable(): the view would freeze the needs before the environment is
    # pickled, and the next incremental build could not purge them
    for nid, need in SphinxNeedsData(env).get_needs_mutable().items():
        docname = need.get("docname")
        if not docname:
            continue
        std.objects["vmxid", nid] = (docname, nid)  # type: ignore[attr-defined]
        title = f"{nid}: {need['title']}"
        std.labels[nid.lower()] = (docname, nid, title)  # type: ignore[attr-defined]
        std.anonlabels[nid.lower()] = (docname, nid)  # type: ignore[attr-defined]
    return []


def _permalink_pages(app: Sphinx) -> dict[str, str]:
    """``id/<ID>.html`` for every need, by file path: a page that never moves, pointing at
    wherever the need is rendered now (the pages may be reorganised; these URLs stay)."""
    import html as _html

    outdir = os.path.join(app.outdir, PERMALINK_DIR)
    pages = {}
    for nid, need in sorted(SphinxNeedsData(app.env).get_needs_view().items()):
        docname = need.get("docname")
        if not docname:
            continue
        target = "../" + app.builder.get_target_uri(docname) + "#" + nid
        title = _html.escape(f"{nid}: {need['title']}")
        pages[os.path.join(outdir, f"{nid}.html")] = (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            f"<title>{title}</title>\n<link rel=\"canonical\" href=\"{target}\">\n"
            f"<meta http-equiv=\"refresh\" content=\"0; url={target}\">\n</head>\n"
            f"<body><p><a href=\"{target}\">{title}</a></p></body></html>\n"
        )
    return pages


def _write_files(pages: dict[str, str]) -> None:
    """Write each page whose file is missing or different (an incremental build touches
    only the permalinks that changed)."""
    for path, page in pages.items():
        try:
            with open(path, encoding="utf-8") as f:
                if f.read() == page:
                    continue
        except OSError:
            pass
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)


def _start_permalinks(app: Sphinx, *_: Any) -> None:
    """Start writing the permalink pages in a thread once the needs are final (``write-started``).

    Creating five hundred small files costs this machine's file system about 0.3 s, all of it
    waiting on the kernel; in a thread it overlaps with writing the pages and running the gate
    (``docs/bench.md``). :func:`_write_permalinks` waits for it."""
    import threading

    if app.builder.name not in ("html", "dirhtml"):
        return
    pages = _permalink_pages(app)
    os.makedirs(os.path.join(app.outdir, PERMALINK_DIR), exist_ok=True)
    failures: list[BaseException] = []

    def work() -> None:
        try:
            _write_files(pages)
        except BaseException as exc:  # noqa: BLE001 - reported by _write_permalinks
            failures.append(exc)

    thread = threading.Thread(target=work, name="vmxkb-permalinks", daemon=True)
    thread.start()
    app.vmxkb_permalinks = (thread, failures)  # type: ignore[attr-defined]


def _write_permalinks(app: Sphinx, exc: Exception | None) -> None:
    """Finish the permalink pages: wait for the thread :func:`_start_permalinks` started, or
    write them here when no page was written in this build (nothing was out of date)."""
    if app.builder.name not in ("html", "dirhtml"):
        return
    started = getattr(app, "vmxkb_permalinks", None)
    if started is None:
        if exc is None:
            os.makedirs(os.path.join(app.outdir, PERMALINK_DIR), exist_ok=True)
            _write_files(_permalink_pages(app))
        return
    thread, failures = started
    thread.join()
    if failures and exc is None:
        raise failures[0]


# --- incremental builds -------------------------------------------------------------------------
#
# A build re-reads a page when Sphinx finds its source changed, when code it renders changed
# (content hashes, not mtimes: a file restored to old content is seen as restored), or when
# the last build did not pass cleanly; it re-writes, without re-reading, the pages that show
# a need another re-read page changed. The gate runs over all needs in every build either way.
# docs/gate.md explains it; tests/test_incremental.py and the generated breakages prove it.

#: What every page's rendering may depend on: a change to any of these re-reads every page.
_FRAMEWORK_GLOBS = ("*.py", "_static/*", "sdm/__init__.py", "kvm/__init__.py")
#: Fields of a need that no other page shows (its box on its own page shows them, and that
#: page is re-read); a change in any other field changes what other pages show.
_LOCAL_FIELDS = frozenset({"content", "lineno", "lineno_content", "parts", "constraints_results", "signature",
                           "doctype", "section_name", "sections", "pre_content", "post_content"})
_STATE_FILE = "vmxkb-build-state.json"
_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def _hash_file(path: str) -> str:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return "missing"


def _framework_hash(app: Sphinx) -> str:
    """One hash over conf.py and the package's own modules and static files (not the rule
    areas or the KVM models, which are tracked page by page)."""
    import glob
    import hashlib

    files = sorted({f for g in _FRAMEWORK_GLOBS for f in glob.glob(os.path.join(_PACKAGE, g))})
    files.append(os.path.join(app.confdir, "conf.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.encode() + b"\0" + _hash_file(f).encode() + b"\0")
    return digest.hexdigest()


def code_path(module_file: str) -> str:
    """A code file as the pages record it: relative to the package (``sdm/guest_segments.py``)."""
    return os.path.relpath(os.path.abspath(module_file), _PACKAGE)


def note_code(env: BuildEnvironment, *paths: str) -> None:
    """The page being read renders these code files (package-relative): re-read it when one
    of them changes."""
    _ensure(env)
    deps = env.vmxkb_code.setdefault(env.docname, {})  # type: ignore[attr-defined]
    for rel in paths:
        deps[rel] = _hash_file(os.path.join(_PACKAGE, rel))


def _area_and_model_files() -> list[str]:
    from vmxkb.sdm import AREAS

    return [f"sdm/{a}.py" for a in AREAS] + ["kvm/models.py", "kvm/explore.py"]


def _need_signature(need: Any) -> tuple[Any, ...]:
    """What other pages show of a need (tables, diagrams, link lists, back-links)."""
    out = []
    for key in sorted(need.keys()):
        if key in _LOCAL_FIELDS or key.endswith("_back"):
            continue
        value = need[key]
        if isinstance(value, list | tuple):
            value = tuple(getattr(x, "id", x) if not isinstance(x, str) else x for x in value)
        elif isinstance(value, dict):
            value = repr(sorted(value.items()))
        out.append((key, value))
    return tuple(out)


def _needs_of(env: BuildEnvironment, docname: str) -> dict[str, tuple[Any, ...]]:
    return {nid: _need_signature(n) for nid, n in SphinxNeedsData(env).get_needs_mutable().items()
            if n.get("docname") == docname}


def _ensure(env: BuildEnvironment) -> None:
    """vmxkb's records in the environment (pickled with it between builds)."""
    for name, factory in (("vmxkb_refs", dict), ("vmxkb_code", dict), ("vmxkb_volatile", set),
                          ("vmxkb_views", set), ("vmxkb_before", dict)):
        if not hasattr(env, name):
            setattr(env, name, factory())


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    """Forget what a page recorded, keeping what other pages saw of its needs (before
    sphinx-needs forgets them: this handler runs first)."""
    _ensure(env)
    for name in ("vmxkb_refs", "vmxkb_code"):
        getattr(env, name, {}).pop(docname, None)
    for name in ("vmxkb_volatile", "vmxkb_views"):
        getattr(env, name, set()).discard(docname)
    if docname not in env.vmxkb_before:  # type: ignore[attr-defined]
        index = getattr(env, "vmxkb_index", None)
        if index is None:  # the needs by page, as they were before this build read anything
            index = env.vmxkb_index = {}  # type: ignore[attr-defined]
            for nid, n in SphinxNeedsData(env).get_needs_mutable().items():
                index.setdefault(n.get("docname"), []).append(nid)
        needs = SphinxNeedsData(env).get_needs_mutable()
        env.vmxkb_before[docname] = {nid: _need_signature(needs[nid]) for nid in index.get(docname, ())  # type: ignore[attr-defined]
                                     if nid in needs}


def _collect_references(app: Sphinx, doctree: nodes.document) -> None:
    """Record the page's ``{need}`` references (checked by the gate) and whether it shows a
    view computed from every need (a table, a diagram, the coverage counts)."""
    env = app.env
    _ensure(env)
    refs = env.vmxkb_refs.setdefault(env.docname, [])  # type: ignore[attr-defined]
    for node in doctree.findall(NeedRef):
        refs.append((node["reftarget"], node.line))
    def is_view(node: nodes.Node) -> bool:  # needtable, needflow, needlist...: sphinx-needs' view nodes
        return isinstance(node, coverage_node) or type(node).__module__.startswith("sphinx_needs.directives")

    if next(iter(doctree.findall(is_view)), None) is not None:
        env.vmxkb_views.add(env.docname)  # type: ignore[attr-defined]


def _read_state(app: Sphinx) -> dict[str, Any]:
    import json

    try:
        with open(os.path.join(app.doctreedir, _STATE_FILE), encoding="utf-8") as f:
            state = json.load(f)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_state(app: Sphinx, status: str, touched: list[str] | None = None) -> None:
    import json

    os.makedirs(app.doctreedir, exist_ok=True)
    state: dict[str, Any] = {"status": status, "framework": getattr(app, "vmxkb_framework", "")}
    if touched is not None:
        state["touched"] = touched
    with open(os.path.join(app.doctreedir, _STATE_FILE), "w", encoding="utf-8") as f:
        json.dump(state, f)


def _outdated(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    """The pages to re-read besides those whose source changed: the pages whose rendered code
    changed, those that run the command line, and, when the last build failed, every page it
    read or wrote; every page when the last build crashed or never finished, or the framework
    changed."""
    _ensure(env)
    env.vmxkb_before = {}  # type: ignore[attr-defined]  # this build's snapshots only
    env.vmxkb_index = None  # type: ignore[attr-defined]
    app.vmxkb_touched = set()  # type: ignore[attr-defined]
    app.vmxkb_framework = _framework_hash(app)  # type: ignore[attr-defined]
    state = _read_state(app)
    _write_state(app, "running")  # a build that never finishes leaves "running": the next re-reads all
    status, touched = state.get("status"), state.get("touched")
    failed = status == "failed" and isinstance(touched, list) and all(isinstance(d, str) for d in touched)
    if not (status == "passed" or failed) or state.get("framework") != app.vmxkb_framework:  # type: ignore[attr-defined]
        app.vmxkb_full = True  # type: ignore[attr-defined]
        return sorted(env.found_docs)
    out = set(getattr(env, "vmxkb_volatile", set()))
    if failed:  # its warnings came from these pages (or from checks every build repeats)
        out |= set(touched)
    for doc, deps in getattr(env, "vmxkb_code", {}).items():
        if any(_hash_file(os.path.join(_PACKAGE, rel)) != digest for rel, digest in deps.items()):
            out.add(doc)
    return sorted(out & env.found_docs)


def _rewrite(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """The pages to re-write (not re-read): those that show a need whose data, as other pages
    see it, changed in the pages re-read now (its box links to it, a back-link names it, a
    reference points at it), and every page with a view computed from all needs."""
    before = getattr(env, "vmxkb_before", {})
    env.vmxkb_before = {}  # type: ignore[attr-defined]  # this build's snapshots: not worth pickling
    env.vmxkb_index = None  # type: ignore[attr-defined]
    if not before or getattr(app, "vmxkb_full", False):
        return []
    changed: set[str] = set()
    for doc, old in before.items():
        new = _needs_of(env, doc) if doc in env.found_docs else {}
        changed |= {nid for nid in old.keys() | new.keys() if old.get(nid) != new.get(nid)}
    if not changed:
        return []
    needs = SphinxNeedsData(env).get_needs_mutable()
    docs: set[str] = set(getattr(env, "vmxkb_views", set()))
    for nid, need in needs.items():
        targets = {getattr(t, "id", t) for link in gate.LINK_FIELDS for t in (need.get(link) or ())}
        if nid in changed:
            docs |= {needs[t]["docname"] for t in targets if t in needs and needs[t].get("docname")}
        elif targets & changed and need.get("docname"):
            docs.add(need["docname"])
    for old in before.values():  # the old links of needs that changed or went away
        for nid, signature in old.items():
            for key, value in signature:
                if key in gate.LINK_FIELDS:
                    docs |= {needs[t]["docname"] for t in value if t in needs and needs[t].get("docname")}
    for doc, refs in getattr(env, "vmxkb_refs", {}).items():
        if any(target.split(".", 1)[0] in changed for target, _ in refs):
            docs.add(doc)
    return sorted(docs & env.found_docs)


def _package_hash(app: Sphinx) -> str:
    """One hash over every source file of the package (what :class:`gate.CodeFacts` depends
    on), computed once per build."""
    import hashlib

    if getattr(app, "vmxkb_package_hash", None):
        return app.vmxkb_package_hash  # type: ignore[attr-defined,no-any-return]

    digest = hashlib.sha256()
    for d, _, files in sorted(os.walk(_PACKAGE)):
        for f in sorted(files):
            if f.endswith((".py", ".toml")):
                path = os.path.join(d, f)
                digest.update(os.path.relpath(path, _PACKAGE).encode() + b"\0" + _hash_file(path).encode() + b"\0")
    app.vmxkb_package_hash = digest.hexdigest()  # type: ignore[attr-defined]
    return app.vmxkb_package_hash  # type: ignore[attr-defined,no-any-return]


def _code_facts(app: Sphinx, env: BuildEnvironment) -> list[str]:
    """Run the scenarios and explore the KVM models once per version of the sources: the
    result is kept in the environment (pickled after this event) and reused by later
    builds while no source file of the package changes."""
    key = _package_hash(app)
    cached = getattr(env, "vmxkb_facts", None)
    if not (isinstance(cached, tuple) and len(cached) == 2 and cached[0] == key):
        env.vmxkb_facts = (key, gate.code_facts())  # type: ignore[attr-defined]
    mutation_results(app)  # here, so that the environment pickled after this event keeps them
    return []


def _note_read(app: Sphinx, env: BuildEnvironment, docnames: list[str]) -> None:
    """The pages this build reads: a failing build's warnings come from them or from those
    it writes (:func:`_note_written`)."""
    _touched(app).update(docnames)


def _note_written(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    _touched(app).add(docname)


def _touched(app: Sphinx) -> set[str]:
    if not isinstance(getattr(app, "vmxkb_touched", None), set):
        app.vmxkb_touched = set()  # type: ignore[attr-defined]
    return app.vmxkb_touched  # type: ignore[attr-defined,no-any-return]


def _finish_state(app: Sphinx, exc: Exception | None) -> None:
    """Record whether this build passed cleanly: no exception, no warning, the gate green.
    After a failing build the next re-reads every page this one read or wrote, so that their
    warnings are seen again (Sphinx repeats no warning of a page it does not re-read; the
    gate's and Sphinx's global checks run on every build); after an exception, every page."""
    clean = exc is None and app.statuscode == 0 and getattr(app, "_warncount", 0) == 0
    if clean:
        _write_state(app, "passed")
    elif exc is None:
        _write_state(app, "failed", sorted(_touched(app)))
    else:
        _write_state(app, "crashed")


def _need_dict(app: Sphinx, need: Any) -> dict[str, Any]:
    out = {k: need[k] for k in need.keys()}
    for link in gate.LINK_FIELDS:
        if link in out and out[link]:
            out[link] = [getattr(x, "id", x) for x in out[link]]
    out["file"] = os.path.relpath(app.env.doc2path(need["docname"]), app.confdir) if need.get("docname") else "?"
    return out


def _run_gate(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.name not in ("html", "dirhtml", "needs", "singlehtml"):
        return
    needs = {nid: _need_dict(app, n) for nid, n in SphinxNeedsData(app.env).get_needs_view().items()}
    refs = [
        (target, os.path.relpath(app.env.doc2path(doc), app.confdir), line)
        for doc, items in getattr(app.env, "vmxkb_refs", {}).items()
        for target, line in items
    ]
    cached = getattr(app.env, "vmxkb_facts", None)
    fresh = isinstance(cached, tuple) and len(cached) == 2 and cached[0] == _package_hash(app)
    facts = cached[1] if fresh else gate.code_facts()  # type: ignore[index]
    from vmxkb import mutants

    mutation = mutants.problems(mutation_results(app))
    problems = gate.check(needs, refs, facts, mutation)
    for p in problems:
        LOGGER.warning(str(p), type="vmxkb", subtype="gate")
    if problems:
        LOGGER.error(f"vmxkb gate: {len(problems)} problem(s); the build fails")
        app.statuscode = 1
    else:
        LOGGER.info(
            f"vmxkb gate: {len(needs)} needs, {len(REGISTRY)} rules, {len(BEHAVIOURS)} KVM models, "
            f"{len(facts.findings)} finding classes, all covered"
        )


def _drop_timing_report(app: Sphinx, exc: Exception | None) -> None:
    """Remove sphinx-needs' ``schema_violations.json`` from the site.

    sphinx-needs 9.1 writes it on every build with the validation's duration and rate in it,
    so no two builds publish the same bytes. vmxkb configures no schemas (a violation would be
    a warning, fatal under -W): the file carries nothing but that timing.
    """
    if exc is None:
        path = os.path.join(app.outdir, "schema_violations.json")
        if os.path.exists(path):
            os.remove(path)


def _freeze_heap(app: Sphinx, *_: Any) -> None:
    """Move everything alive now out of the cyclic garbage collector's sight (``gc.freeze``).

    A build keeps a large, long-lived heap (the environment, every need, the extensions),
    and each full collection walks all of it: measured, collections were two thirds of the
    time spent building the need boxes, and a fifth of the whole build (``docs/bench.md``).
    Called once the environment is loaded and once every document is read (then after a
    collection: the doctrees read are garbage by then); what is created later (each page's
    doctree while it is written) is collected as usual."""
    import gc

    # and collect less often: at 10x the corpus, the default thresholds (700, 10, 10) spent 8 s
    # of a 61 s build in collections, these 2 s more than none at all, for 4% more memory
    gc.set_threshold(100_000, 20, 20)
    if _:  # env-updated passes the environment; builder-inited passes nothing
        gc.collect()
    gc.freeze()


def _write_needs_json_in_one_go() -> None:
    """Have sphinx-needs write ``needs.json`` from one ``json.dumps`` string (its own
    ``NeedsList.dump_json()``) instead of ``json.dump`` to the file: the same bytes, but
    ``json.dump`` encodes in pure Python, chunk by chunk, and ``json.dumps`` with the C
    encoder, several times faster (a tenth of an incremental build went into it).
    ``tests/test_reproducible.py`` checks the file is byte-for-byte what ``json.dump``
    writes. Nothing is changed when the class does not look as expected."""
    from sphinx_needs import needsfile

    cls = getattr(needsfile, "NeedsList", None)
    if cls is None or not callable(getattr(cls, "dump_json", None)) or getattr(cls.write_json, "vmxkb", False):
        return

    def write_json(self: Any, needs_file: str = "needs.json", needs_path: str = "") -> None:
        text = self.dump_json()  # finalises the list, then json.dumps(..., sort_keys=True)
        with open(os.path.join(needs_path or self.outdir, needs_file), "w") as f:
            f.write(text)

    write_json.vmxkb = True  # type: ignore[attr-defined]
    cls.write_json = write_json


def setup(app: Sphinx) -> dict[str, Any]:
    import shutil

    from sphinx.errors import ExtensionError

    if shutil.which("dot") is None:
        raise ExtensionError(
            "Graphviz 'dot' is not installed; the needflow diagrams need it "
            "(Debian/Ubuntu: apt-get install graphviz; `make html` installs it when it can)"
        )
    load_all()
    _write_needs_json_in_one_go()
    static = os.path.join(os.path.dirname(__file__), "_static")
    # after the config is hashed into .buildinfo: the path of the installed package must not
    # make two builds of the same sources differ
    app.connect("builder-inited", lambda a: a.config.html_static_path.append(static)
                if a.builder.format == "html" and static not in a.config.html_static_path else None)
    app.add_js_file("vmxkb-search.js", priority=100)
    app.add_css_file("vmxkb.css")
    app.add_directive("vmx-sections", SectionsDirective)
    app.add_directive("vmx-rule", RuleDirective)
    app.add_directive("vmx-model", ModelDirective)
    app.add_directive("vmx-witness", WitnessDirective)
    app.add_directive("vmx-coverage", CoverageDirective)
    app.add_directive("vmx-number-index", NumberIndexDirective)
    app.add_directive("vmx-cli-help", CliHelpDirective)
    app.add_directive("vmx-run", RunDirective)
    app.add_directive("vmx-edition", EditionDirective)
    app.add_directive("vmx-mutation", MutationDirective)
    app.add_node(coverage_node)
    app.connect("doctree-resolved", _render_needs, priority=450)  # before sphinx-needs' (500)
    app.connect("doctree-resolved", _fill_coverage)
    app.connect("env-purge-doc", _purge, priority=100)  # before sphinx-needs forgets the page's needs
    app.connect("env-get-outdated", _outdated)
    app.connect("env-before-read-docs", _note_read, priority=900)  # after any handler adds pages
    app.connect("doctree-resolved", _note_written)
    app.connect("env-get-updated", _rewrite)
    app.connect("doctree-read", _collect_references)
    app.connect("build-finished", _finish_state, priority=950)
    app.connect("build-finished", _run_gate, priority=100)
    app.connect("write-started", _start_permalinks, priority=900)
    app.connect("build-finished", _write_permalinks, priority=200)
    app.connect("build-finished", _drop_timing_report, priority=300)
    app.add_object_type("vmxid", "vmxid", objname="vmxkb need ID")
    app.connect("env-updated", _register_ids)
    app.connect("env-updated", _code_facts)
    app.connect("builder-inited", _freeze_heap, priority=900)
    app.connect("env-updated", _freeze_heap, priority=900)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True, "env_version": 1}

