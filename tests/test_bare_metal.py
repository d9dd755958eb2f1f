"""The bare-metal reference satisfies its own clauses on every short program, and a run
that takes its first event one boundary early or late is caught."""

from __future__ import annotations

import itertools

from vmxkb.sdm import rules_of, scenario_problems

from vmxkb.registry import verdict
from vmxkb.sdm.bare_metal import INSTRUCTIONS, MOVSS_LIKE, Cpu, Delivery, run_bare_metal

STARTS = [Cpu(tf=tf, btf=btf, if_=if_, irq_pending=irq) for tf, btf, if_, irq in itertools.product((False, True), repeat=4)]
PROGRAMS = [p for n in (1, 2, 3) for p in itertools.product(INSTRUCTIONS, repeat=n)]


def test_area_has_rules_and_their_scenarios_hold() -> None:
    assert len(rules_of("bare_metal")) == 5
    assert scenario_problems("bare_metal") == []


def test_reference_satisfies_every_bare_metal_rule() -> None:
    n = 0
    for program, start in itertools.product(PROGRAMS, STARTS):
        run = run_bare_metal(program, start)
        for r in rules_of("bare_metal"):
            assert verdict(r.func, run).passed, (r.id, str(run))
        n += 1
    assert n == len(PROGRAMS) * 16 == 84 * 16


def test_taking_the_first_event_inside_a_shadow_is_caught() -> None:
    """The clauses say how long events are held off, not how soon they must come: so every
    run whose first event follows a shadow, moved one boundary earlier (into the shadow),
    must break a clause."""
    total = 0
    for program, start in itertools.product(PROGRAMS, STARTS):
        run = run_bare_metal(program, start)
        opens_shadow = program[0] in MOVSS_LIKE or (program[0] == "STI" and not start.if_)
        if run.first is None or run.first.at != 1 or not opens_shadow:
            continue
        early = run.replace(first=Delivery(0, run.first.event, run.first.dr6_bs))
        broken = [r.id for r in rules_of("bare_metal") if not verdict(r.func, early).passed]
        assert broken, str(early)
        total += 1
    assert total == 170


def test_consecutive_ss_loads_are_not_judged() -> None:
    run = run_bare_metal(("MOV SS", "POP SS", "NOP"), Cpu(tf=True))
    assert all(verdict(r.func, run).passed for r in rules_of("bare_metal"))


def test_unknown_instruction_and_printed_run() -> None:
    import pytest

    from vmxkb.sdm.bare_metal import execute

    with pytest.raises(ValueError, match="unknown instruction 'JMP'"):
        execute(Cpu(), "JMP")
    run = run_bare_metal(("MOV SS", "NOP"), Cpu(tf=True))
    assert str(run).startswith("MOV SS; NOP: ") and "#DB" in str(run)
    assert str(run.replace(first=None)).endswith("no event")


def test_an_interrupt_held_off_after_sti_with_if_set_is_caught() -> None:
    """The converse of the STI shadow: after an STI that found IF=1 nothing is held off, so
    every run in which the reference takes the waiting interrupt right after such an STI,
    moved one boundary later (as after KVM's emulated STI), breaks a clause."""
    total = 0
    for program, start in itertools.product(PROGRAMS, STARTS):
        run = run_bare_metal(program, start)
        if program[0] != "STI" or not start.if_ or run.first != Delivery(0, "INTR"):
            continue
        late = run.replace(first=Delivery(1, "INTR"))
        broken = [r.id for r in rules_of("bare_metal") if not verdict(r.func, late).passed]
        assert "BM_STI_IF_SET_NO_SHADOW" in broken, str(late)
        total += 1
    assert total > 0
