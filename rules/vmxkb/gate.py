"""The documentation gate: code and docs must describe the same things.

Pure functions over plain data (the needs as dicts, the registries, the exploration),
so the same checks run inside the Sphinx build (:mod:`vmxkb.sphinxext`) and can be unit
tested. Every problem names the item and the file to fix. The checks do not trust
sphinx-needs to warn: links and references are checked here again, over all needs, on
every build (see ``docs/gate.md``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmxkb.citations import EDITIONS, SECTIONS
from vmxkb.kvm.explore import explore_all
from vmxkb.kvm.models import BEHAVIOURS
from vmxkb.registry import REGISTRY, run_scenario
from vmxkb.sdm import load_all

#: Link fields of our need types (see conf.py); every value must name an existing need.
CLAUSE_STATUSES = ("executable", "not-executable", "ambiguous")
LINK_FIELDS = ("links", "sdm", "exercises", "source", "touches", "affects", "breaks", "fixed_by")


@dataclass(frozen=True)
class Problem:
    """One gate failure."""

    message: str
    file: str  #: a repository-relative path (docs page or Python source)
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: vmxkb gate: {self.message}"


Need = Mapping[str, Any]


def _file(need: Need) -> str:
    return need.get("file") or f"{need.get('docname', '?')}.md"


def _rel(path: str) -> str:
    marker = "/rules/vmxkb/"
    return "rules/vmxkb/" + path.split(marker, 1)[1] if marker in path else path


@dataclass(frozen=True)
class CodeFacts:
    """What the gate learns from running the code alone: a pure function of the package's
    sources, so a build may reuse it while they are unchanged (:func:`code_facts`)."""

    #: (rule ID, scenario ID, outcome stated, file, line, problems) for every scenario
    scenarios: tuple[tuple[str, str, str, str, int, tuple[str, ...]], ...]
    #: (behaviour ID, kind, rules broken, inputs, smallest situation, its result) per finding class
    findings: tuple[tuple[str, str, tuple[str, ...], int, str, str], ...]


def code_facts() -> CodeFacts:
    """Run every scenario and explore every KVM behaviour model."""
    load_all()
    scenarios = []
    for rid, r in REGISTRY.items():
        namespace = vars(importlib.import_module(r.func.__module__))
        for s in r.scenarios:
            scenarios.append((rid, s.id, s.expect, _rel(r.source_file), s.lineno, run_scenario(s, namespace).problems))
    findings = tuple(
        (bid, kind, tuple(rules), count, str(witness.situation), str(witness.detail))
        for (bid, kind, rules), (witness, count) in explore_all().items()
    )
    return CodeFacts(tuple(scenarios), findings)


def check(needs: Mapping[str, Need], references: Iterable[tuple[str, str, int | None]] = (),
          facts: CodeFacts | None = None, mutation: Iterable[tuple[str, str, str]] = ()) -> list[Problem]:
    """Every gate problem, given all needs by ID, the ``{need}`` references (target, file,
    line) found in the docs, if the caller has them the :class:`CodeFacts` of the current
    sources (else they are computed), and the mutation run's problems
    (:func:`vmxkb.mutants.problems`: item, file, message)."""
    load_all()
    facts = facts or code_facts()
    problems: list[Problem] = []
    by_type: dict[str, dict[str, Need]] = {}
    for nid, need in needs.items():
        by_type.setdefault(need["type"], {})[nid] = need

    # 1. links and references point at existing needs
    for nid, need in needs.items():
        for link in LINK_FIELDS:
            for target in need.get(link) or ():
                if target not in needs:
                    problems.append(Problem(f"{nid} links ({link}) to missing need {target}", _file(need), need.get("lineno")))
    for target, file, line in references:
        if target.split(".", 1)[0] not in needs:
            problems.append(Problem(f"reference to missing need {target}", file, line))

    # 2. rules <-> clause needs
    clauses = by_type.get("clause", {})
    for rid, r in REGISTRY.items():
        if rid not in clauses:
            problems.append(Problem(f"rule {rid} ({r.qualname}) has no clause need", _rel(r.source_file)))
    for cid, need in clauses.items():
        status = need.get("status")
        where = (_file(need), need.get("lineno"))
        if status not in CLAUSE_STATUSES:
            problems.append(Problem(f"clause {cid} has no status (one of {', '.join(CLAUSE_STATUSES)})", *where))
        if status == "not-executable":
            if not need.get("reason"):
                problems.append(Problem(f"clause {cid} is not executable but gives no reason", *where))
            if cid in REGISTRY:
                problems.append(Problem(f"clause {cid} is marked not executable but rule {cid} exists", *where))
        if status == "ambiguous" and not (need.get("interpretation") and need.get("support")):
            problems.append(Problem(f"ambiguous clause {cid} needs both an interpretation and its support", *where))
        if not need.get("sdm_sections"):
            problems.append(Problem(f"clause {cid} has no per-edition section numbers", *where))
        if status == "not-executable":
            continue
        if cid not in REGISTRY:
            problems.append(Problem(f"clause need {cid} names no registered rule", *where))
            continue
        r = REGISTRY[cid]
        if list(need.get("sdm") or []) != [r.section]:
            problems.append(
                Problem(f"clause {cid} cites {need.get('sdm')} but its rule cites {r.section}", _file(need), need.get("lineno"))
            )

    # 3. scenarios: both outcomes, stated outcome == computed, each documented
    scenario_needs = by_type.get("scenario", {})
    seen: set[str] = set()
    outcomes: dict[str, set[str]] = {rid: set() for rid in REGISTRY}
    for rid, sid, expect, file, lineno, scenario_problems in facts.scenarios:
        outcomes.setdefault(rid, set()).add(expect)
        if sid in seen:
            problems.append(Problem(f"scenario ID {sid} used twice", file, lineno))
        seen.add(sid)
        for p in scenario_problems:
            problems.append(Problem(f"scenario {sid} of {rid} {p}", file, lineno))
        if sid not in scenario_needs:
            problems.append(Problem(f"scenario {sid} of {rid} has no scenario need", file, lineno))
    for rid, r in REGISTRY.items():
        for missing in sorted({"passes", "fails"} - outcomes[rid]):
            problems.append(Problem(f"rule {rid} has no scenario that {missing}", _rel(r.source_file)))
    for sid, need in scenario_needs.items():
        if sid not in seen:
            problems.append(Problem(f"scenario need {sid} matches no scenario in the rules", _file(need), need.get("lineno")))

    # 4. behaviours <-> behaviour needs
    behaviour_needs = by_type.get("behaviour", {})
    for bid, b in BEHAVIOURS.items():
        if bid not in behaviour_needs:
            problems.append(Problem(f"KVM behaviour model {bid} ({b.qualname}) has no behaviour need", "rules/vmxkb/kvm/models.py"))
    for bid, need in behaviour_needs.items():
        if bid not in BEHAVIOURS:
            problems.append(Problem(f"behaviour need {bid} has no model", _file(need), need.get("lineno")))
        if not need.get("source"):
            problems.append(Problem(f"behaviour need {bid} cites no source (patch need)", _file(need), need.get("lineno")))

    # 5. exploration findings <-> deviations
    deviations = by_type.get("deviation", {})
    shapes = {did: (frozenset(d.get("affects") or ()), d.get("kind") or "", frozenset(d.get("breaks") or ()))
              for did, d in deviations.items()}
    counts = {(bid, kind, tuple(rules)): (count, situation, detail) for bid, kind, rules, count, situation, detail in facts.findings}
    uncovered, idle = coverage(counts, shapes)
    for (bid, kind, rules), why in uncovered:
        count, situation, detail = counts[(bid, kind, rules)]
        where = behaviour_needs.get(bid)
        problems.append(
            Problem(
                f"exploring {bid} finds a {kind} breaking {', '.join(rules) or 'no named rule'} "
                f"on {count} input(s) (smallest: {situation}: {detail}) that {why}",
                _file(where) if where else "rules/vmxkb/kvm/models.py",
                where.get("lineno") if where else None,
            )
        )
    for did, d in deviations.items():
        if d.get("kind") == "reference" and (not d.get("implementation") or not d.get("breaks")):
            problems.append(
                Problem(f"reference deviation {did} needs the implementation and the clause it breaks", _file(d), d.get("lineno"))
            )
    for did, why in idle:
        d = deviations[did]
        problems.append(Problem(f"deviation {did} {why}", _file(d), d.get("lineno")))

    # 6. sections
    for key in SECTIONS:
        if key not in by_type.get("section", {}):
            problems.append(Problem(f"SDM section {key} has no section need", "docs/editions.md"))
    # every per-edition number is for a known edition group (vmxkb.citations.EDITIONS)
    for sid, need in by_type.get("section", {}).items():
        for edition in _unknown_editions(need.get("editions")):
            problems.append(Problem(f"section {sid} has a number for unknown edition {edition}", "rules/vmxkb/citations.py"))
    for cid, need in clauses.items():
        for edition in _unknown_editions(need.get("sdm_sections")):
            problems.append(
                Problem(f"clause {cid} has a section number for unknown edition {edition} (from {', '.join(need.get('sdm') or [])})",
                        _file(need), need.get("lineno"))
            )
    # 7. mutation adequacy: every surviving mutant of a rule or a KVM model is killed by a
    #    scenario or example, or documented as equivalent (docs/mutation.md)
    for item, file, message in mutation:
        problems.append(Problem(f"mutation: {item}: {message}", file))
    return problems


#: A deviation need as check 5 sees it: (behaviours it affects, kind, clauses it breaks).
DeviationShape = tuple[frozenset[str], str, frozenset[str]]


def coverage(classes: Iterable[tuple[str, str, tuple[str, ...]]], deviations: Mapping[str, DeviationShape]
             ) -> tuple[list[tuple[tuple[str, str, tuple[str, ...]], str]], list[tuple[str, str]]]:
    """Check 5 as a pure function: the finding classes ``(behaviour, kind, rules broken)``
    that no deviation covers, each with why, and the deviations (other than ``reference``
    ones) that are idle, each with why.

    A deviation covers a class when it affects the class's behaviour, has its kind, and lists
    every rule the class breaks. A class that breaks no named rule is never covered: a
    difference from the SDM model that no rule names is a missing rule, not a deviation. A
    deviation must cover some class of *every* behaviour it says it affects.
    """
    classes = sorted(set(classes))
    uncovered = []
    covered: dict[str, set[str]] = {}
    for key in classes:
        bid, kind, rules = key
        if not rules:
            uncovered.append((key, "breaks no named rule (a deviation must name the clauses it breaks: "
                                   "add the rule this difference breaks)"))
            continue
        covering = [did for did, (affects, dkind, breaks) in deviations.items()
                    if bid in affects and dkind == kind and set(rules) <= breaks]
        for did in covering:
            covered.setdefault(did, set()).add(bid)
        if not covering:
            uncovered.append((key, "no deviation need covers"))
    idle = []
    for did, (affects, kind, _) in sorted(deviations.items()):
        if kind == "reference":
            continue
        if did not in covered:
            idle.append((did, "covers no finding of the exploration"))
        elif affects - covered[did]:
            idle.append((did, f"affects {', '.join(sorted(affects - covered[did]))} but covers no finding of it"))
    return uncovered, idle


def _unknown_editions(numbers: Iterable[str] | None) -> list[str]:
    """The edition keys of ``EDITION:NUMBER:MARK`` strings that are not edition groups."""
    return sorted({str(n).split(":", 1)[0] for n in numbers or ()} - set(EDITIONS))
