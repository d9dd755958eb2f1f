"""RIP, RFLAGS and SSP checks: the scenarios hold, the baseline guests pass, each reserved
bit fails alone, and the 32-bit and 63:N boundaries are exact."""

from __future__ import annotations

import pytest

from vmxkb.bits import RFLAGS_FIXED1, VM_ENTRY_LOAD_CET_STATE, make_intr_info
from vmxkb.guests import LONG_MODE, long_mode, protected_mode, real_mode
from vmxkb.registry import verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm.guest_rip_rflags import (
    RFLAGS_RESERVED,
    rflags_fixed1_set,
    rflags_if_for_extint,
    rflags_reserved_zero,
    rflags_vm_forbidden,
    rip_high_zero_outside_64bit,
    rip_upper_bits_identical,
    ssp_aligned,
    ssp_upper_bits_identical,
)
from vmxkb.state import Capabilities, entry

AREA = "guest_rip_rflags"
CET = LONG_MODE["VM_ENTRY_CONTROLS"] | VM_ENTRY_LOAD_CET_STATE
LA57 = Capabilities(linear_address_width=57)
COMPAT_CS = 0xC09B  # 32-bit code segment (L=0) under an IA-32e guest


def test_area_has_rules_and_their_scenarios_hold() -> None:
    assert [r.id for r in rules_of(AREA)] == [
        "ENTRY_GUEST_RIP_HIGH_ZERO_OUTSIDE_64BIT",
        "ENTRY_GUEST_RIP_UPPER_BITS_IDENTICAL",
        "ENTRY_GUEST_RFLAGS_RESERVED_ZERO",
        "ENTRY_GUEST_RFLAGS_FIXED1_SET",
        "ENTRY_GUEST_RFLAGS_VM_FORBIDDEN",
        "ENTRY_GUEST_RFLAGS_IF_FOR_EXTINT",
        "ENTRY_GUEST_SSP_ALIGNED",
        "ENTRY_GUEST_SSP_UPPER_BITS_IDENTICAL",
    ]
    assert all(r.phase == "guest" and r.qualification == 0 for r in rules_of(AREA))
    assert scenario_problems(AREA) == []


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode])
def test_every_rule_passes_on_the_baseline_guests(guest) -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, guest()).passed, r.id
        assert verdict(r.func, guest(VM_ENTRY_CONTROLS=guest().vmcs.VM_ENTRY_CONTROLS | VM_ENTRY_LOAD_CET_STATE)).passed


def test_rules_are_not_evaluated_without_their_fields() -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, entry()).outcome == "not evaluated", r.id


# --- RIP -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "guest",
    [protected_mode, real_mode, lambda **kw: long_mode(GUEST_CS_AR_BYTES=COMPAT_CS, **kw)],
    ids=["protected", "real", "compat"],
)
def test_rip_bits_63_32_each_fail_alone_outside_64bit(guest) -> None:
    assert verdict(rip_high_zero_outside_64bit, guest(GUEST_RIP=0xFFFFFFFF)).passed
    for b in range(32, 64):
        assert verdict(rip_high_zero_outside_64bit, guest(GUEST_RIP=1 << b)).outcome == "fails", b


def test_rip_high_bits_are_free_in_64bit_mode() -> None:
    assert verdict(rip_high_zero_outside_64bit, long_mode(GUEST_RIP=0xFFFFFFFF81000000)).passed


def test_a_32bit_guest_needs_no_cs_access_rights_for_the_rip_width_check() -> None:
    partial = entry(VM_ENTRY_CONTROLS=protected_mode().vmcs.VM_ENTRY_CONTROLS, GUEST_RIP=1 << 32)
    assert verdict(rip_high_zero_outside_64bit, partial).outcome == "fails"
    assert dict(verdict(rip_high_zero_outside_64bit, partial).violations[0].fields) == {
        "VM_ENTRY_CONTROLS": 0xD1FF,
        "GUEST_RIP": 1 << 32,
    }


@pytest.mark.parametrize(
    ("caps", "good", "bad"),
    [
        (
            Capabilities(),
            (0x0000FFFFFFFFFFFF, 0xFFFF000000000000, 0x0000800000000000, 0xFFFF7FFFFFFFFFFF),
            (0x0001000000000000, 0xFFFEFFFFFFFFFFFF, 0x8000000000000000),
        ),
        (LA57, (0x01FFFFFFFFFFFFFF, 0xFE00000000000000), (0x0200000000000000, 0xFDFFFFFFFFFFFFFF)),
    ],
)
def test_rip_63_n_boundary_in_64bit_mode(caps: Capabilities, good: tuple[int, ...], bad: tuple[int, ...]) -> None:
    for rip in good:
        assert verdict(rip_upper_bits_identical, long_mode(caps, GUEST_RIP=rip)).passed, hex(rip)
    for rip in bad:
        assert verdict(rip_upper_bits_identical, long_mode(caps, GUEST_RIP=rip)).outcome == "fails", hex(rip)


def test_rip_63_n_check_does_not_apply_outside_64bit_mode() -> None:
    assert verdict(rip_upper_bits_identical, long_mode(GUEST_CS_AR_BYTES=COMPAT_CS, GUEST_RIP=1 << 60)).passed
    assert verdict(rip_upper_bits_identical, protected_mode(GUEST_RIP=1 << 60)).passed


# --- RFLAGS ------------------------------------------------------------------------------------


def test_each_reserved_rflags_bit_fails_alone_and_each_defined_bit_passes() -> None:
    for b in range(64):
        rflags = RFLAGS_FIXED1 | (1 << b)
        v = verdict(rflags_reserved_zero, long_mode(GUEST_RFLAGS=rflags))
        if b in (3, 5, 15) or b >= 22:
            assert v.outcome == "fails", b
        else:
            assert v.passed, b
    assert RFLAGS_RESERVED == 0xFFFFFFFFFFC08028


def test_bit_1_must_be_set_whatever_else_is() -> None:
    assert verdict(rflags_fixed1_set, long_mode(GUEST_RFLAGS=0x2)).passed
    assert verdict(rflags_fixed1_set, long_mode(GUEST_RFLAGS=0x3F7FD5)).outcome == "fails"


@pytest.mark.parametrize(
    ("guest", "fails"),
    [(protected_mode, 0), (real_mode, 1), (long_mode, 1)],
    ids=["protected", "real", "ia32e"],
)
def test_vm_flag_is_legal_only_in_legacy_protected_mode(guest, fails: int) -> None:
    v = verdict(rflags_vm_forbidden, guest(GUEST_RFLAGS=0x20202))
    assert len(v.violations) == fails
    assert verdict(rflags_vm_forbidden, guest(GUEST_RFLAGS=0x202)).passed


def test_vm_flag_with_ia32e_and_pe0_reports_both_halves() -> None:
    v = verdict(rflags_vm_forbidden, long_mode(GUEST_RFLAGS=0x20202, GUEST_CR0=0x80050032))
    assert len(v.violations) == 2


def test_only_an_injected_external_interrupt_needs_if() -> None:
    for t in range(8):
        info = make_intr_info(0x20 if t in (0, 4) else 2 if t == 2 else 0 if t == 7 else 6, t)
        v = verdict(rflags_if_for_extint, real_mode(VM_ENTRY_INTR_INFO_FIELD=info))
        assert (v.outcome == "fails") == (t == 0), t
        assert verdict(rflags_if_for_extint, real_mode(GUEST_RFLAGS=0x202, VM_ENTRY_INTR_INFO_FIELD=info)).passed
    # the valid bit clear: nothing is injected
    assert verdict(rflags_if_for_extint, real_mode(VM_ENTRY_INTR_INFO_FIELD=0x000000EC)).passed


def test_if_check_reads_rflags_only_when_an_interrupt_is_injected() -> None:
    assert verdict(rflags_if_for_extint, entry(VM_ENTRY_INTR_INFO_FIELD=0)).passed


# --- SSP ----------------------------------------------------------------------------------------


def test_ssp_bits_1_0_each_fail_alone_with_load_cet_state() -> None:
    for ssp, outcome in ((0x1000, "passes"), (0x1004, "passes"), (0x1001, "fails"), (0x1002, "fails"), (0x1003, "fails")):
        assert verdict(ssp_aligned, long_mode(VM_ENTRY_CONTROLS=CET, GUEST_SSP=ssp)).outcome == outcome, hex(ssp)
        assert verdict(ssp_aligned, long_mode(GUEST_SSP=ssp)).passed


def test_ssp_is_not_read_without_load_cet_state() -> None:
    assert verdict(ssp_aligned, entry(VM_ENTRY_CONTROLS=0xD3FF)).passed
    assert verdict(ssp_upper_bits_identical, entry(VM_ENTRY_CONTROLS=0xD3FF)).passed


@pytest.mark.parametrize("caps", [Capabilities(), LA57], ids=["la48", "la57"])
def test_ssp_63_n_boundary(caps: Capabilities) -> None:
    n = caps.linear_address_width
    low_top = (1 << n) - 8
    for ssp in (low_top, ((1 << 64) - 1) ^ ((1 << n) - 1), 1 << (n - 1)):
        assert verdict(ssp_upper_bits_identical, long_mode(caps, VM_ENTRY_CONTROLS=CET, GUEST_SSP=ssp)).passed, hex(ssp)
    for ssp in (1 << n, 1 << 63, ((1 << 64) - 1) ^ (1 << n)):
        v = verdict(ssp_upper_bits_identical, long_mode(caps, VM_ENTRY_CONTROLS=CET, GUEST_SSP=ssp))
        assert v.outcome == "fails", hex(ssp)


def test_ssp_high_half_is_not_checked_for_a_32bit_guest() -> None:
    """The interpretation chosen: no bits 63:32 check outside 64-bit mode (Bochs has one)."""
    ctl = protected_mode().vmcs.VM_ENTRY_CONTROLS | VM_ENTRY_LOAD_CET_STATE
    assert verdict(ssp_upper_bits_identical, protected_mode(VM_ENTRY_CONTROLS=ctl, GUEST_SSP=1 << 40)).passed


def test_upper_identical_with_a_64_bit_linear_width_checks_nothing() -> None:
    from vmxkb.sdm.guest_rip_rflags import _upper_identical

    assert _upper_identical(0x8000_0000_0000_0000, 64) and _upper_identical(0x1234, 64)
    assert not _upper_identical(0x0001_8000_0000_0000, 48) and _upper_identical(0xFFFF_8000_0000_0000, 48)
