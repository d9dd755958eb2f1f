"""PDPTE checks: the scenarios hold, the baseline guests pass, every reserved bit of every
present PDPTE fails alone with qualification 2, and the PAE-paging/EPT trigger is exact."""

from __future__ import annotations

import pytest

from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.registry import REGISTRY, verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm.guest_pdpte import pae_guest, pdpte_vmcs_reserved_zero
from vmxkb.state import Capabilities, entry

AREA = "guest_pdpte"
FIELDS = ("GUEST_PDPTR0", "GUEST_PDPTR1", "GUEST_PDPTR2", "GUEST_PDPTR3")
JUNK = 0xFFFFFFFFFFFFFFFF


def test_area_has_rules_and_their_scenarios_hold() -> None:
    assert [r.id for r in rules_of(AREA)] == ["ENTRY_GUEST_PDPTE_VMCS_RESERVED_ZERO"]
    assert REGISTRY["ENTRY_GUEST_PDPTE_VMCS_RESERVED_ZERO"].qualification == 2
    assert REGISTRY["ENTRY_GUEST_PDPTE_VMCS_RESERVED_ZERO"].phase == "guest"
    assert scenario_problems(AREA) == []


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode, pae_guest])
def test_every_rule_passes_on_the_baseline_guests(guest) -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, guest()).passed, r.id


def test_rules_are_not_evaluated_without_their_fields() -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, entry()).outcome == "not evaluated", r.id


@pytest.mark.parametrize("field", FIELDS)
def test_each_reserved_bit_of_each_present_pdpte_fails_alone(field: str) -> None:
    base = pae_guest().vmcs.given()[field]
    reserved = [1, 2, 5, 6, 7, 8, *range(46, 64)]
    for b in range(1, 64):
        v = verdict(pdpte_vmcs_reserved_zero, pae_guest(**{field: base | (1 << b)}))
        if b in reserved:
            assert v.outcome == "fails", (field, b)
            assert dict(v.violations[0].fields)[field] == base | (1 << b)
        else:
            assert v.passed, (field, b)  # PWT, PCD, ignored 11:9, address bits below MAXPHYADDR


@pytest.mark.parametrize("maxphyaddr", [36, 39, 46, 52])
def test_the_address_limit_follows_maxphyaddr(maxphyaddr: int) -> None:
    caps = Capabilities(maxphyaddr=maxphyaddr)
    below = 0x1001 | (1 << (maxphyaddr - 1))
    above = 0x1001 | (1 << maxphyaddr)
    assert verdict(pdpte_vmcs_reserved_zero, pae_guest(caps, GUEST_PDPTR2=below)).passed
    assert verdict(pdpte_vmcs_reserved_zero, pae_guest(caps, GUEST_PDPTR2=above)).outcome == "fails"


def test_not_present_pdptes_are_not_checked() -> None:
    assert verdict(pdpte_vmcs_reserved_zero, pae_guest(**{f: JUNK ^ 1 for f in FIELDS})).passed


def test_every_bad_pdpte_is_reported() -> None:
    v = verdict(pdpte_vmcs_reserved_zero, pae_guest(**{f: JUNK for f in FIELDS}))
    assert len(v.violations) == 4


@pytest.mark.parametrize(
    "changes",
    [
        {"GUEST_CR0": 0x00000031},  # paging off (unrestricted guest)
        {"GUEST_CR4": 0x00002010},  # PAE off: 32-bit paging
        {"SECONDARY_VM_EXEC_CONTROL": 0x000007E9},  # "enable EPT" off: PDPTEs come from memory
        {"CPU_BASED_VM_EXEC_CONTROL": 0x35A06DFA},  # secondary controls inactive: EPT counts as off
    ],
    ids=["pg0", "pae0", "ept0", "no-secondary"],
)
def test_no_check_outside_pae_paging_with_ept(changes: dict[str, int]) -> None:
    assert verdict(pdpte_vmcs_reserved_zero, pae_guest(GUEST_PDPTR0=JUNK, **changes)).passed


def test_no_check_for_an_ia32e_guest() -> None:
    assert verdict(pdpte_vmcs_reserved_zero, long_mode(**{f: JUNK for f in FIELDS})).passed


def test_the_trigger_is_read_before_the_pdptes() -> None:
    """A dump without PDPTE fields is still judged when the guest does not use PAE paging."""
    partial = entry(GUEST_CR0=0x80050033, GUEST_CR4=0x26E0, VM_ENTRY_CONTROLS=0xD3FF)
    assert verdict(pdpte_vmcs_reserved_zero, partial).passed
