"""Exhaustive exploration of every KVM behaviour model against the SDM model.

For every input of a model's declared domain: if the VMCS KVM would enter with fails an
SDM entry check, that is an *entry-failure* finding naming the broken checks; if the
entry succeeds but the guest observes something other than bare metal does, that is a
*guest-visible* finding naming the bare-metal rules the KVM run breaks. Findings are
grouped into classes (behaviour, kind, rules); each class keeps its smallest witness.
Every class must be covered by a documented deviation, or the docs build fails.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from vmxkb.kvm.models import BEHAVIOURS, Behaviour, KvmRun, Situation
from vmxkb.registry import REGISTRY, verdict
from vmxkb.sdm import load_all
from vmxkb.sdm.bare_metal import Run, run_bare_metal
from vmxkb.vmentry import evaluate

FindingKind = Literal["entry-failure", "guest-visible"]


@dataclass(frozen=True)
class Finding:
    """One input on which a KVM model parts from the SDM model."""

    behaviour: str
    kind: FindingKind
    rules: tuple[str, ...]
    situation: Situation
    kvm: KvmRun
    bare_metal: Run
    detail: str

    @property
    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (self.behaviour, self.kind, self.rules)


def _bare_metal_rules(run: Run) -> tuple[str, ...]:
    load_all()
    broken = []
    for r in REGISTRY.values():
        if r.kind == "bare-metal" and verdict(r.func, run).violations:
            broken.append(r.id)
    return tuple(sorted(broken))


def explore(b: Behaviour) -> list[Finding]:
    """Run ``b`` over its whole domain; return every finding."""
    findings = []
    for s in b.domain():
        kvm = b.func(s)
        reference = run_bare_metal(s.program, s.start)
        if kvm.entry is not None:
            result = evaluate(kvm.entry, kvm.dr6_before)
            if result.outcome.kind != "entered":
                rules = tuple(sorted({v.rule_id for v in result.violations}))
                findings.append(
                    Finding(b.id, "entry-failure", rules, s, kvm, reference, str(result.outcome))
                )
                continue
        if kvm.run is not None and kvm.run.first != reference.first:
            detail = f"guest sees {kvm.run.first or 'no event'}; bare metal: {reference.first or 'no event'}"
            findings.append(Finding(b.id, "guest-visible", _bare_metal_rules(kvm.run), s, kvm, reference, detail))
    return findings


def domain_size(b: Behaviour) -> int:
    return sum(1 for _ in b.domain())


@functools.cache
def explore_all() -> dict[tuple[str, str, tuple[str, ...]], tuple[Finding, int]]:
    """Every finding class of every behaviour: its smallest witness and its count."""
    load_all()
    from vmxkb.kvm import models  # noqa: F401  (registers the behaviours)

    return classify(f for b in BEHAVIOURS.values() for f in explore(b))


def classify(findings: Iterable[Finding]) -> dict[tuple[str, str, tuple[str, ...]], tuple[Finding, int]]:
    """Group findings by class; keep each class's smallest witness (whatever the order the
    findings come in) and count them."""
    classes: dict[tuple[str, str, tuple[str, ...]], tuple[Finding, int]] = {}
    for f in findings:
        best, count = classes.get(f.key, (f, 0))
        if (f.situation.size, f.situation) < (best.situation.size, best.situation):
            best = f
        classes[f.key] = (best, count + 1)
    return classes
