"""GDTR/IDTR checks: the scenarios hold, the baseline guests pass, and the limits and the
canonical boundary are exact for both registers and both linear-address widths."""

from __future__ import annotations

import pytest

from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.registry import verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm.guest_descriptor_tables import dtr_base_canonical, dtr_limit_high_zero
from vmxkb.state import Capabilities, entry

AREA = "guest_descriptor_tables"
LA57 = Capabilities(linear_address_width=57)


def test_area_has_rules_and_their_scenarios_hold() -> None:
    assert [r.id for r in rules_of(AREA)] == ["ENTRY_GUEST_DTR_BASE_CANONICAL", "ENTRY_GUEST_DTR_LIMIT_HIGH_ZERO"]
    assert all(r.phase == "guest" and r.qualification == 0 for r in rules_of(AREA))
    assert scenario_problems(AREA) == []


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode])
def test_every_rule_passes_on_the_baseline_guests(guest) -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, guest()).passed, r.id


def test_rules_are_not_evaluated_without_their_fields() -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, entry()).outcome == "not evaluated", r.id


@pytest.mark.parametrize("field", ["GUEST_GDTR_LIMIT", "GUEST_IDTR_LIMIT"])
def test_each_limit_bit_above_15_fails_alone(field: str) -> None:
    assert verdict(dtr_limit_high_zero, real_mode(**{field: 0xFFFF})).passed
    for b in range(16, 32):
        v = verdict(dtr_limit_high_zero, real_mode(**{field: 1 << b}))
        assert v.outcome == "fails", (field, b)
        assert dict(v.violations[0].fields) == {field: 1 << b}


@pytest.mark.parametrize("field", ["GUEST_GDTR_BASE", "GUEST_IDTR_BASE"])
@pytest.mark.parametrize(
    ("caps", "good", "bad"),
    [
        (Capabilities(), (0x00007FFFFFFFFFFF, 0xFFFF800000000000, 0), (0x0000800000000000, 0xFFFF7FFFFFFFFFFF)),
        (LA57, (0x00FFFFFFFFFFFFFF, 0xFF00000000000000, 0x0000800000000000), (0x0100000000000000, 0xFEFFFFFFFFFFFFFF)),
    ],
)
def test_canonical_boundary_per_width(field: str, caps: Capabilities, good: tuple[int, ...], bad: tuple[int, ...]) -> None:
    for base in good:
        assert verdict(dtr_base_canonical, long_mode(caps, **{field: base})).passed, hex(base)
    for base in bad:
        assert verdict(dtr_base_canonical, long_mode(caps, **{field: base})).outcome == "fails", hex(base)


def test_both_tables_are_reported_separately() -> None:
    v = verdict(dtr_base_canonical, long_mode(GUEST_GDTR_BASE=1 << 47, GUEST_IDTR_BASE=1 << 50))
    assert [dict(x.fields) for x in v.violations] == [{"GUEST_GDTR_BASE": 1 << 47}, {"GUEST_IDTR_BASE": 1 << 50}]
    v = verdict(dtr_limit_high_zero, real_mode(GUEST_GDTR_LIMIT=0x10000, GUEST_IDTR_LIMIT=0xFFFFFFFF))
    assert len(v.violations) == 2


def test_a_32bit_guest_base_is_always_canonical() -> None:
    for base in (0xFFFFFFFF, 0x80000000, 0xC0001000):
        assert verdict(dtr_base_canonical, protected_mode(GUEST_GDTR_BASE=base, GUEST_IDTR_BASE=base)).passed
