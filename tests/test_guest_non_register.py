"""Guest non-register state: every scenario holds, the baseline guests pass, the new
link-pointer and FRED rules are exact at their boundaries, and the real failure of
../shared/dumps/04 (Proxmox 2022, STI blocking with IF=0) is explained by exactly one rule."""

from __future__ import annotations

import pytest

from vmxkb.bits import GUEST_INTR_STATE_STI, X86_CR4_FRED
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.registry import REGISTRY, verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm.guest_non_register import intr_fred_sti_not_cpl3, link_ptr_aligned, link_ptr_within_maxphyaddr
from vmxkb.state import Capabilities, EntryState, Vmcs, entry

AREA = "guest_non_register"
NEW_RULES = ["ENTRY_GUEST_LINK_PTR_ALIGNED", "ENTRY_GUEST_LINK_PTR_WITHIN_MAXPHYADDR", "ENTRY_GUEST_INTR_FRED_STI_NOT_CPL3"]


def test_area_has_rules_and_their_scenarios_hold() -> None:
    ids = [r.id for r in rules_of(AREA)]
    assert len(ids) == 22
    assert ids[-3:] == NEW_RULES
    assert all(r.phase == "guest" for r in rules_of(AREA))
    assert REGISTRY["ENTRY_GUEST_LINK_PTR_ALIGNED"].qualification == 4
    assert REGISTRY["ENTRY_GUEST_LINK_PTR_WITHIN_MAXPHYADDR"].qualification == 4
    assert REGISTRY["ENTRY_GUEST_INTR_FRED_STI_NOT_CPL3"].qualification == 0
    assert scenario_problems(AREA) == []


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode])
def test_every_rule_passes_on_the_baseline_guests(guest) -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, guest()).passed, r.id


def test_rules_are_not_evaluated_without_their_fields() -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, entry()).outcome == "not evaluated", r.id


# --- VMCS link pointer --------------------------------------------------------------------------


def test_all_ones_is_the_only_unaligned_value_allowed() -> None:
    assert verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=0xFFFFFFFFFFFFFFFF)).passed
    assert verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=0)).passed
    for b in range(12):
        v = verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=0x12345000 | (1 << b)))
        assert v.outcome == "fails", b
    for b in range(12, 64):
        assert verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=1 << b)).passed, b


@pytest.mark.parametrize("maxphyaddr", [36, 39, 46, 52])
def test_the_link_pointer_width_follows_maxphyaddr(maxphyaddr: int) -> None:
    caps = Capabilities(maxphyaddr=maxphyaddr)
    assert verdict(link_ptr_within_maxphyaddr, long_mode(caps, VMCS_LINK_POINTER=0xFFFFFFFFFFFFFFFF)).passed
    for b in range(12, 64):
        v = verdict(link_ptr_within_maxphyaddr, long_mode(caps, VMCS_LINK_POINTER=1 << b))
        assert v.outcome == ("fails" if b >= maxphyaddr else "passes"), (maxphyaddr, b)


def test_a_zero_link_pointer_passes_the_address_checks() -> None:
    """Only the (not executable) revision-identifier clause catches "0 instead of -1"."""
    s = long_mode(VMCS_LINK_POINTER=0)
    assert verdict(link_ptr_aligned, s).passed and verdict(link_ptr_within_maxphyaddr, s).passed


# --- FRED ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dpl", range(4))
@pytest.mark.parametrize("fred", [False, True])
@pytest.mark.parametrize("intr", [0, 1, 2, 8, 9])
def test_fred_sti_rule_fires_only_at_cpl3_with_sti_and_cr4_fred(dpl: int, fred: bool, intr: int) -> None:
    cr4 = long_mode().vmcs.GUEST_CR4 | (X86_CR4_FRED if fred else 0)
    s = long_mode(Capabilities(fred=True), GUEST_CR4=cr4, GUEST_INTERRUPTIBILITY_INFO=intr,
                  GUEST_RFLAGS=0x202, GUEST_SS_AR_BYTES=0xC093 | (dpl << 5))
    expected = fred and dpl == 3 and bool(intr & GUEST_INTR_STATE_STI)
    assert verdict(intr_fred_sti_not_cpl3, s).outcome == ("fails" if expected else "passes")


def test_fred_rule_reads_cr4_only_under_sti_blocking() -> None:
    assert verdict(intr_fred_sti_not_cpl3, entry(GUEST_INTERRUPTIBILITY_INFO=2)).passed


# --- The real failure: ../shared/dumps/04 ---------------------------------------------------------

#: The fields of ../shared/dumps/04-kvm-2022-proxmox-smm-sti-blocking-if0/dump.txt, as printed by
#: kvm_intel's dump_vmcs() ("CR0: actual=" and "CR4: actual=" are the guest fields). The dump
#: has no VMCS link pointer, SSP, PKRS, ... line: those fields stay unknown.
DUMP_04 = {
    "GUEST_CR0": 0x50032,
    "GUEST_CR4": 0x2040,
    "GUEST_CR3": 0x13CBF4002,
    "GUEST_PDPTR0": 0x0000003300050011,
    "GUEST_PDPTR1": 0,
    "GUEST_PDPTR2": 0,
    "GUEST_PDPTR3": 0x0000010000000000,
    "GUEST_RSP": 0xFFFF898CACDA2C90,
    "GUEST_RIP": 0x8000,
    "GUEST_RFLAGS": 0x2,
    "GUEST_DR7": 0x400,
    "GUEST_SYSENTER_ESP": 0,
    "GUEST_SYSENTER_CS": 0,
    "GUEST_SYSENTER_EIP": 0,
    "GUEST_CS_SELECTOR": 0xC200, "GUEST_CS_AR_BYTES": 0x8093, "GUEST_CS_LIMIT": 0xFFFFFFFF, "GUEST_CS_BASE": 0x7FFC2000,
    "GUEST_DS_SELECTOR": 0, "GUEST_DS_AR_BYTES": 0x8093, "GUEST_DS_LIMIT": 0xFFFFFFFF, "GUEST_DS_BASE": 0,
    "GUEST_SS_SELECTOR": 0, "GUEST_SS_AR_BYTES": 0x8093, "GUEST_SS_LIMIT": 0xFFFFFFFF, "GUEST_SS_BASE": 0,
    "GUEST_ES_SELECTOR": 0, "GUEST_ES_AR_BYTES": 0x8093, "GUEST_ES_LIMIT": 0xFFFFFFFF, "GUEST_ES_BASE": 0,
    "GUEST_FS_SELECTOR": 0, "GUEST_FS_AR_BYTES": 0x8093, "GUEST_FS_LIMIT": 0xFFFFFFFF, "GUEST_FS_BASE": 0,
    "GUEST_GS_SELECTOR": 0, "GUEST_GS_AR_BYTES": 0x8093, "GUEST_GS_LIMIT": 0xFFFFFFFF, "GUEST_GS_BASE": 0,
    "GUEST_GDTR_LIMIT": 0x57, "GUEST_GDTR_BASE": 0xFFFFF8024E652FB0,
    "GUEST_LDTR_SELECTOR": 0, "GUEST_LDTR_AR_BYTES": 0x10000, "GUEST_LDTR_LIMIT": 0xFFFFF, "GUEST_LDTR_BASE": 0,
    "GUEST_IDTR_LIMIT": 0, "GUEST_IDTR_BASE": 0,
    "GUEST_TR_SELECTOR": 0x40, "GUEST_TR_AR_BYTES": 0x8B, "GUEST_TR_LIMIT": 0x67, "GUEST_TR_BASE": 0xFFFFF8024E651000,
    "GUEST_IA32_EFER": 0,
    "GUEST_IA32_PAT": 0x0007010600070106,
    "GUEST_IA32_DEBUGCTL": 0,
    "GUEST_PENDING_DBG_EXCEPTIONS": 0,
    "GUEST_INTERRUPTIBILITY_INFO": 0x9,
    "GUEST_ACTIVITY_STATE": 0,
    "PIN_BASED_VM_EXEC_CONTROL": 0xFF,
    "CPU_BASED_VM_EXEC_CONTROL": 0xB5A06DFA,
    "SECONDARY_VM_EXEC_CONTROL": 0x7EB,
    "VM_ENTRY_CONTROLS": 0xD1FF,
    "VM_EXIT_CONTROLS": 0x2BEFFF,
    "EPT_POINTER": 0x000000011AA2D01E,
    "VM_ENTRY_INTR_INFO_FIELD": 0,
    "VM_ENTRY_EXCEPTION_ERROR_CODE": 4,
    "VM_ENTRY_INSTRUCTION_LEN": 0,
}
MY_AREAS = ("guest_descriptor_tables", "guest_rip_rflags", "guest_non_register", "guest_pdpte")


def test_dump_04_fails_only_sti_needs_if_in_these_areas() -> None:
    s = EntryState(Vmcs.from_fields(DUMP_04))
    failing, unknown = [], []
    for area in MY_AREAS:
        for r in rules_of(area):
            v = verdict(r.func, s)
            if v.violations:
                failing.append(r.id)
            elif v.missing:
                unknown.append(r.id)
    assert failing == ["ENTRY_GUEST_INTR_STI_NEEDS_IF"]
    assert unknown == ["ENTRY_GUEST_LINK_PTR_ALIGNED", "ENTRY_GUEST_LINK_PTR_WITHIN_MAXPHYADDR"]


def test_dump_04_passes_once_the_shadow_is_dropped() -> None:
    """What fb28875fd7da does on SMM entry: clear the STI shadow (NMI blocking stays)."""
    s = EntryState(Vmcs.from_fields({**DUMP_04, "GUEST_INTERRUPTIBILITY_INFO": 0x8}))
    for area in MY_AREAS:
        for r in rules_of(area):
            assert not verdict(r.func, s).violations, r.id
