"""The mutator (vmxkb.mutants) on a fixed sample of rules and KVM model functions: it kills
mutants that must die, leaves an unchanged rule or model alive, is deterministic, changes
nothing global, its cache reuses what is fresh and recomputes what is stale, and the
committed results (docs/_generated/mutation.json, written by `make mutation`) match a fresh
run for the sample. The full run is `make mutation`, not part of `make test`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

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
MODEL_SAMPLE = ["KVM_VMX_BS_ON_INJECTED_DB", "vmxkb.kvm.models.vmx_enter", "vmxkb.kvm.models.hardware_exit"]


@pytest.fixture(scope="module")
def sample() -> list[mutants.ItemResult]:
    sdm.load_all()
    return mutants.run(SAMPLE + MODEL_SAMPLE)


@pytest.fixture(scope="module")
def judge() -> mutants.ModelJudge:
    return mutants.ModelJudge()


def _mutation(rule_id: str, kind: str, contains: str = "") -> mutants.Mutation:
    r = REGISTRY[rule_id]
    found = [m for m in mutants.mutations(r.func, dict(vars(sys.modules[r.func.__module__])))
             if m.kind == kind and contains in m.description]
    assert found, (rule_id, kind, contains)
    return found[0]


def _model_mutation(item_id: str, contains: str) -> tuple[mutants.Item, mutants.Mutation]:
    item = mutants.model_items()[item_id]
    found = [m for m in mutants.mutations(item.func, item.namespace, model=True) if contains in m.description]
    assert len(found) == 1, (item_id, contains, found)
    return item, found[0]


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


def test_model_functions_are_mutated() -> None:
    """Every behaviour and every helper it calls is an item with mutants, and the model
    operators (booleans, literals named by their place) are made; the registration
    decorator and the domains are not model logic."""
    items = mutants.model_items()
    from vmxkb.kvm.models import BEHAVIOURS

    assert set(BEHAVIOURS) <= set(items)
    for name in ("hardware_exit", "emulate_last", "save_restore", "vmx_enter", "observe_vmx", "_vmx_kvm"):
        assert f"vmxkb.kvm.models.{name}" in items
    assert "vmxkb.kvm.models.behaviour" not in items and "vmxkb.kvm.models.situations" not in items
    assert items["vmxkb.kvm.models.observe_vmx"].behaviours == (
        "KVM_EMULATOR_SINGLESTEP_NOW", "KVM_VCPU_EVENTS_SAVE_RESTORE", "KVM_VMX_BS_ON_INJECTED_DB",
        "KVM_VMX_BS_ON_INTERCEPTED_DB")
    kinds: set[str] = set()
    for item in items.values():
        made = mutants.mutations(item.func, item.namespace, model=True)
        assert made, item.id
        assert len({m.description for m in made}) == len(made), item.id
        assert not any(m.description.startswith("signature") for m in made), item.id
        kinds |= {m.kind for m in made}
    assert {"cmp", "not-if", "drop", "bitop", "bitconst", "int", "bool", "ret-empty"} <= kinds
    _model_mutation("KVM_VMX_BS_ON_INJECTED_DB", "`stuff_on_inject=True`: True -> False")


def test_unchanged_model_survives(judge: mutants.ModelJudge) -> None:
    """The model control: every model function rebound to a copy of the namespace, one of
    them recompiled with no change, explores to the same classes and passes its doctests."""
    assert judge.doctests and judge.doctest_failures == 0 and not judge.gate
    for item in mutants.model_items().values():
        ns = judge.namespace(item, mutants.Mutation(0, "identity", None, "no change"))
        assert ns[item.func.__name__] is not item.func
        # model code run on a mutant's values is never credited to models.py by coverage
        assert ns["vmx_enter"].__code__.co_filename != item.func.__code__.co_filename
        assert not judge.killed(item, ns), item.id


@pytest.mark.parametrize(("item_id", "contains", "why"), [
    # v3 without its fix: the patched model loses its early-#DB class; its deviation still
    # covers other behaviours, but it affects this one too and now covers nothing of it
    ("KVM_VMX_BS_ON_INJECTED_DB", "`stuff_on_inject=True`: True -> False", "gate"),
    # never stuffing BS: the migration hole's class is joined by new entry failures
    ("vmxkb.kvm.models.vmx_enter", "`if stuff_bs_on_inject and v.rflags & RFLAGS_TF and intr`: negated", "gate"),
    # the emulator stops queueing the single-step: the early-#DB deviation covers nothing
    ("vmxkb.kvm.models.emulate_last", "`Vcpu(...)` argument 3 `0`", "doctest"),
    # every single-step #DB taken for an asynchronous exit: new findings no deviation covers
    ("vmxkb.kvm.models.hardware_exit", "`due.event == \"#DB\"`: == -> !=", "gate"),
    # the exploration itself breaks (the build would stop there)
    ("vmxkb.kvm.models.hardware_exit", "`due is not None`: is not -> is", "raises"),
])
def test_known_bad_model_mutants_are_killed(judge: mutants.ModelJudge, item_id: str, contains: str, why: str) -> None:
    item, m = _model_mutation(item_id, contains)
    ns = judge.namespace(item, m)
    assert judge.killed(item, ns)
    try:
        classes = judge.all_classes(judge.explored(item, ns))
    except AttributeError:
        assert why == "raises"
        return
    gate_fails = bool(mutants.gate_problems(classes, judge.deviations) - judge.gate)
    assert gate_fails == (why == "gate") and why != "raises", (item_id, contains)


def test_the_judge_is_the_gate_check(judge: mutants.ModelJudge) -> None:
    """gate_problems() says what the docs gate's check 5 (vmxkb.gate) says about the same
    finding classes, for the deviations as written and with one of them taken away or
    made to cover nothing."""
    from vmxkb import gate

    def gate_check5(deviations: mutants.Deviations) -> int:
        needs = {d: {"type": "deviation", "affects": sorted(a), "kind": k, "breaks": sorted(b), "file": "x.md"}
                 for d, (a, k, b) in deviations.items()}
        return sum(p.message.startswith("exploring ") or "covers no finding" in p.message for p in gate.check(needs))

    written = dict(judge.deviations)
    variants = [written, {d: v for d, v in written.items() if d != "DEV_GUESTDBG_DROPS_SHADOW"},
                {**written, "DEV_X": (frozenset({"KVM_SVM_NO_PENDING_DBG"}), "entry-failure", frozenset())}]
    counts = [len(mutants.gate_problems(judge.all_classes(judge.classes), v)) for v in variants]
    assert counts == [0, 2, 1]
    assert [gate_check5(v) for v in variants] == counts


def test_nothing_global_changes(sample: list[mutants.ItemResult]) -> None:
    for rid in SAMPLE:
        r = REGISTRY[rid]
        assert getattr(sys.modules[r.func.__module__], r.func.__name__) is r.func
        assert r.func.__qualname__ == r.func.__name__ and r.func.rule_id == rid  # type: ignore[attr-defined]
    from vmxkb.kvm import models

    for bid, b in models.BEHAVIOURS.items():
        assert getattr(models, b.func.__name__) is b.func and b.func.__globals__ is vars(models), bid
    for name, f in mutants._model_functions().items():
        assert f.__code__.co_filename == models.__file__, name
    assert models.evaluate.__module__ == "vmxkb.vmentry"


def test_every_kind_of_mutation_is_made(sample: list[mutants.ItemResult]) -> None:
    kinds = {m.kind for rid in SAMPLE for m in mutants.mutations(
        REGISTRY[rid].func, dict(vars(sys.modules[REGISTRY[rid].func.__module__])))}
    assert {"cmp", "not-if", "drop", "bitop", "bitconst", "int", "ret-violation", "ret-empty"} <= kinds


def test_deterministic(sample: list[mutants.ItemResult]) -> None:
    again = mutants.run(list(reversed(SAMPLE + MODEL_SAMPLE)))
    assert json.dumps(mutants.as_json(again), sort_keys=True) == json.dumps(mutants.as_json(sample), sort_keys=True)
    assert [r.item_id for r in sample] == sorted(SAMPLE) + sorted(MODEL_SAMPLE)
    assert mutants.as_markdown(again) == mutants.as_markdown(sample)


def test_committed_results_match_a_fresh_run(sample: list[mutants.ItemResult]) -> None:
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    fresh = mutants.as_json(sample)
    for part, ids in (("rules", SAMPLE), ("models", MODEL_SAMPLE)):
        for iid in ids:
            assert data.get(part, {}).get(iid) == fresh[part][iid], \
                f"{iid}: docs/_generated/mutation.json is stale: run make mutation"


def test_the_cache_reuses_fresh_entries_and_recomputes_stale_ones(
    sample: list[mutants.ItemResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = mutants.as_json(sample)
    calls: list[str] = []
    real_rule, real_model = mutants.mutate_rule, mutants.mutate_model

    def count_rule(r: Any, *a: Any, **k: Any) -> mutants.ItemResult:
        calls.append(r.id)
        return real_rule(r, *a, **k)

    def count_model(item: Any, *a: Any, **k: Any) -> mutants.ItemResult:
        calls.append(item.id)
        return real_model(item, *a, **k)

    monkeypatch.setattr(mutants, "mutate_rule", count_rule)
    monkeypatch.setattr(mutants, "mutate_model", count_model)
    ids = SAMPLE + MODEL_SAMPLE
    reused = mutants.current(committed, ids)
    assert calls == []
    assert mutants.as_json(reused) == committed
    stale = json.loads(json.dumps(committed))
    stale["rules"][SAMPLE[0]]["fingerprint"] = "0" * 16
    stale["models"][MODEL_SAMPLE[1]]["fingerprint"] = "stale"
    del stale["rules"][SAMPLE[1]]["killed"]  # a damaged entry is recomputed, not trusted
    again = mutants.current(stale, ids)
    assert sorted(calls) == sorted([SAMPLE[0], SAMPLE[1], MODEL_SAMPLE[1]])
    assert mutants.as_json(again) == committed


def test_fingerprints(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stable; changed by an equivalent entry naming the item; a rule's does not depend on
    other rule modules or the models (editing one area costs only its rules), a model's
    depends on every rule module and the deviation needs."""
    items = mutants.items()
    rule, model = items["ENTRY_GUEST_PDE_BS_REQUIRED_TF"], items["vmxkb.kvm.models.vmx_enter"]
    eq = mutants.load_equivalents()
    assert mutants.fingerprint(rule.id) == mutants.fingerprint(rule, eq) == mutants.fingerprint(REGISTRY[rule.id])
    assert mutants.fingerprint(rule, {**eq, (rule.id, "body line 1 x"): "why"}) != mutants.fingerprint(rule, eq)
    assert mutants.fingerprint(rule, {**eq, ("OTHER_RULE", "body line 1 x"): "why"}) == mutants.fingerprint(rule, eq)
    rule_deps = {mutants._rel(p) for p in mutants._dependencies(rule)}
    assert {"rules/vmxkb/sdm/guest_non_register.py", "rules/vmxkb/registry.py", "rules/vmxkb/state.py",
            "rules/vmxkb/bits.py", "rules/vmxkb/mutants.py"} <= rule_deps
    assert "rules/vmxkb/sdm/guest_segments.py" not in rule_deps and "rules/vmxkb/kvm/models.py" not in rule_deps
    model_deps = {mutants._rel(p) for p in mutants._dependencies(model)}
    assert {"rules/vmxkb/kvm/models.py", "rules/vmxkb/kvm/explore.py", "rules/vmxkb/sdm/bare_metal.py",
            "rules/vmxkb/sdm/guest_segments.py", "rules/vmxkb/vmentry.py", "rules/vmxkb/guests.py"} <= model_deps
    before = mutants.fingerprint(model, eq)
    devs = mutants.deviation_needs()
    monkeypatch.setattr(mutants, "deviation_needs", lambda: {k: v for k, v in devs.items() if k != "DEV_GUESTDBG_DROPS_SHADOW"})
    assert mutants.fingerprint(model, eq) != before


def test_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    """One problem per undocumented survivor, naming the item, the mutant and the file to
    fix; one per equivalent entry that names no surviving mutant."""
    results = [
        mutants.ItemResult("ENTRY_GUEST_PDE_BS_REQUIRED_TF", "rule", "rules/vmxkb/sdm/guest_non_register.py", "f",
                           (), 3, ["body line 1 `a`: == -> !="], []),
        mutants.ItemResult("vmxkb.kvm.models.vmx_enter", "model", "rules/vmxkb/kvm/models.py", "f",
                           ("KVM_X",), 1, ["body line 2 `b`: True -> False"], []),
    ]
    killed_one = mutants.mutations(mutants.items()["vmxkb.kvm.models.vmx_enter"].func, {}, model=True)[0].description
    monkeypatch.setattr(mutants, "load_equivalents", lambda path=None: {
        ("NO_SUCH_RULE_X", "body line 1 `x`: 0 -> 1"): "why",
        ("vmxkb.kvm.models.vmx_enter", "body line 99 `nothing`: negated"): "why",
        ("vmxkb.kvm.models.vmx_enter", killed_one): "",
    })
    found = mutants.problems(results)
    assert found[0] == ("ENTRY_GUEST_PDE_BS_REQUIRED_TF", "rules/vmxkb/sdm/guest_non_register.py", found[0][2])
    assert "body line 1 `a`: == -> !=" in found[0][2] and "scenario" in found[0][2]
    assert found[1][:2] == ("vmxkb.kvm.models.vmx_enter", "rules/vmxkb/kvm/models.py") and "doctest" in found[1][2]
    rest = found[2:]
    assert all(f[1] == mutants.EQUIVALENTS_REL for f in rest) and len(rest) == 4
    text = "\n".join(f[2] for f in rest)
    assert "no rule or model" in text and "does not make" in text and "kill" in text and "no reason" in text


def test_equivalents_name_real_mutants() -> None:
    """Every equivalent mutant listed names a rule or model and a mutant the mutator makes,
    with a reason."""
    items = mutants.items()
    for (iid, description), reason in mutants.load_equivalents().items():
        assert iid in items, iid
        item = items[iid]
        made = {m.description for m in mutants.mutations(item.func, item.namespace, model=item.kind == "model")}
        assert description in made, (iid, description)
        assert reason.strip(), (iid, description)


def test_bad_input_is_one_line_and_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as e:
        mutants.main(["NO_SUCH_RULE_X"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown rule or model ID NO_SUCH_RULE_X" in err
    with pytest.raises(SystemExit) as e:
        mutants.main(["--bogus"])
    assert e.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    bad = tmp_path / "bad.json"
    bad.write_text("[1,\n", encoding="utf-8")
    with pytest.raises(SystemExit) as e:
        mutants.main(["--reuse", str(bad), "vmxkb.kvm.models._rflags"])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_takes_model_ids(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    assert mutants.main(["vmxkb.kvm.models._rflags", "--json", str(out), "--check"]) == 0
    printed = capsys.readouterr().out
    assert "vmxkb.kvm.models._rflags: 5 mutants, 5 killed" in printed and "models: 5 mutants" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert list(data["models"]) == ["vmxkb.kvm.models._rflags"] and data["rules"] == {}
    assert mutants.main(["vmxkb.kvm.models._rflags", "--reuse", str(out)]) == 0


def test_an_edited_rule_module_costs_only_its_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed source file makes stale exactly the items whose fingerprint reads it."""
    sdm.load_all()
    ids = ["ENTRY_CTRL_ASZ_IA32E_NEEDS_HOST64", "ENTRY_GUEST_ACT_HLT_NEEDS_CPL0"]
    committed = mutants.as_json(mutants.run(ids))
    edited = mutants.PACKAGE_DIR / "sdm" / "addr_space_size.py"
    real = mutants._file_info

    def file_info(path: Path) -> tuple[str, frozenset[str]]:
        digest, imports = real(path)
        return ("edited" if path == edited else digest), imports

    monkeypatch.setattr(mutants, "_file_info", file_info)
    calls: list[str] = []
    real_rule = mutants.mutate_rule
    monkeypatch.setattr(mutants, "mutate_rule", lambda r, *a, **k: calls.append(r.id) or real_rule(r, *a, **k))
    results = mutants.current(committed, ids)
    assert calls == [ids[0]]
    assert [r.killed for r in results] == [committed["rules"][i]["killed"] for i in ids]
