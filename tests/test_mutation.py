"""The rule mutator (vmxkb.mutants) on a fixed sample of rules: it kills mutants that must
die, leaves an unchanged rule alive, is deterministic, changes nothing global, and the
committed results (docs/_generated/mutation.json, written by `make mutation`) match a fresh
run for the sampled rules. The full run is `make mutation`, not part of `make test`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from vmxkb import mutants, sdm
from vmxkb.registry import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "_generated" / "mutation.json"
SAMPLE = [
    "ENTRY_GUEST_PDE_BS_REQUIRED_TF",
    "ENTRY_GUEST_ACT_HLT_NEEDS_CPL0",
    "ENTRY_CTRL_INJ_ERRCODE_IFF",
    "POST_INTR_VECTORING_CLEARS_SHADOW",
]


@pytest.fixture(scope="module")
def sample() -> list[mutants.RuleResult]:
    sdm.load_all()
    return mutants.run(SAMPLE)


def _mutation(rule_id: str, kind: str, contains: str = "") -> mutants.Mutation:
    r = REGISTRY[rule_id]
    found = [m for m in mutants.mutations(r.func, dict(vars(sys.modules[r.func.__module__])))
             if m.kind == kind and contains in m.description]
    assert found, (rule_id, kind, contains)
    return found[0]


def test_unchanged_rule_survives() -> None:
    """The control: a 'mutant' built the same way but with no change passes every scenario
    (so a kill means the change was noticed, not that building mutants breaks rules)."""
    sdm.load_all()
    for rid in SAMPLE:
        r = REGISTRY[rid]
        ns = mutants.build_mutant(r, mutants.Mutation(0, "identity", None, "no change"))
        assert ns[r.func.__name__] is not r.func
        assert not mutants.killed(r, ns), rid


@pytest.mark.parametrize(("rule_id", "kind", "contains"), [
    # the violation of the seed rule replaced by (): its failing scenarios must see it
    ("ENTRY_GUEST_PDE_BS_REQUIRED_TF", "ret-empty", ""),
    # BS no longer clears the violation: the passing scenario has BS set
    ("ENTRY_GUEST_PDE_BS_REQUIRED_TF", "drop", "`pde & PENDING_DBG_BS` dropped"),
    ("ENTRY_GUEST_ACT_HLT_NEEDS_CPL0", "cmp", "ss_dpl(ar) == 0"),
    ("ENTRY_GUEST_ACT_HLT_NEEDS_CPL0", "int", "`0`: 0 -> 1"),
    ("POST_INTR_VECTORING_CLEARS_SHADOW", "not-if", ""),
])
def test_known_bad_mutants_are_killed(rule_id: str, kind: str, contains: str) -> None:
    sdm.load_all()
    r = REGISTRY[rule_id]
    assert mutants.killed(r, mutants.build_mutant(r, _mutation(rule_id, kind, contains)))


def test_nothing_global_changes(sample: list[mutants.RuleResult]) -> None:
    for rid in SAMPLE:
        r = REGISTRY[rid]
        assert getattr(sys.modules[r.func.__module__], r.func.__name__) is r.func
        assert r.func.__qualname__ == r.func.__name__ and r.func.rule_id == rid  # type: ignore[attr-defined]


def test_every_kind_of_mutation_is_made(sample: list[mutants.RuleResult]) -> None:
    kinds = {m.kind for rid in SAMPLE for m in mutants.mutations(
        REGISTRY[rid].func, dict(vars(sys.modules[REGISTRY[rid].func.__module__])))}
    assert {"cmp", "not-if", "drop", "bitop", "bitconst", "int", "ret-violation", "ret-empty"} <= kinds


def test_deterministic(sample: list[mutants.RuleResult]) -> None:
    again = mutants.run(list(reversed(SAMPLE)))
    assert mutants.as_json(again) == mutants.as_json(sample)
    assert [r.rule_id for r in sample] == sorted(SAMPLE)


def test_committed_results_match_a_fresh_run(sample: list[mutants.RuleResult]) -> None:
    committed = json.loads(RESULTS.read_text(encoding="utf-8"))["rules"]
    fresh = mutants.as_json(sample)["rules"]
    for rid in SAMPLE:
        assert committed.get(rid) == fresh[rid], f"{rid}: docs/_generated/mutation.json is stale: run make mutation"


def test_equivalents_name_real_mutants() -> None:
    """Every equivalent mutant listed names a rule and a mutant the mutator makes."""
    sdm.load_all()
    for (rid, description), reason in mutants.load_equivalents().items():
        assert rid in REGISTRY, rid
        r = REGISTRY[rid]
        made = {m.description for m in mutants.mutations(r.func, dict(vars(sys.modules[r.func.__module__])))}
        assert description in made, (rid, description)
        assert reason.strip(), (rid, description)


def test_bad_input_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        mutants.main(["NO_SUCH_RULE_X"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown rule ID NO_SUCH_RULE_X" in err
    with pytest.raises(SystemExit) as e:
        mutants.main(["--bogus"])
    assert e.value.code == 2
