"""Checks on the VM-entry control fields: every scenario holds, every rule accepts the
baseline guests, and the boundaries of each check (each reserved bit alone, each vector,
each length just inside and outside the range) fall on the right side."""

from __future__ import annotations

import pytest

from vmxkb.bits import (
    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS,
    ERROR_CODE_VECTORS,
    INTR_INFO_DELIVER_CODE_MASK,
    SECONDARY_EXEC_UNRESTRICTED_GUEST,
    VM_ENTRY_DEACT_DUAL_MONITOR,
    VM_ENTRY_IA32E_MODE,
    VM_ENTRY_LOAD_BNDCFGS,
    VM_ENTRY_LOAD_CET_STATE,
    VM_ENTRY_SMM,
    X86_CR0_PE,
    X86_CR0_PG,
    X86_CR4_FRED,
    bit,
    make_intr_info,
)
from vmxkb.guests import LONG_MODE, long_mode, protected_mode, real_mode
from vmxkb.registry import verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm.entry_controls import (
    entry_ctls_reserved,
    inj_errcode_iff,
    inj_errcode_width,
    inj_fred_other_event,
    inj_insn_len,
    inj_reserved_zero,
    inj_type_valid,
    inj_vector_matches_type,
    smm_controls_outside_smm,
    smm_entry_deact_exclusive,
)
from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities, entry
from vmxkb.vmentry import evaluate

AREA = "entry_controls"
MUST_BE_1 = DEFAULT_CAPABILITIES.vmx_entry_ctls & 0xFFFFFFFF
MAY_BE_1 = DEFAULT_CAPABILITIES.vmx_entry_ctls >> 32
FRED = Capabilities(fred=True)
FRED_CR4 = LONG_MODE["GUEST_CR4"] | X86_CR4_FRED


def outcome(func, state) -> str:
    return verdict(func, state).outcome


def test_area_rules_and_scenarios_hold() -> None:
    assert [r.id for r in rules_of(AREA)] == [
        "ENTRY_CTRL_ENTRY_CTLS_RESERVED",
        "ENTRY_CTRL_INJ_TYPE_VALID",
        "ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE",
        "ENTRY_CTRL_INJ_ERRCODE_IFF",
        "ENTRY_CTRL_INJ_RESERVED_ZERO",
        "ENTRY_CTRL_INJ_ERRCODE_WIDTH",
        "ENTRY_CTRL_INJ_INSN_LEN",
        "ENTRY_CTRL_INJ_FRED_OTHER_EVENT",
        "ENTRY_CTRL_SMM_CONTROLS_OUTSIDE_SMM",
        "ENTRY_CTRL_SMM_ENTRY_DEACT_EXCLUSIVE",
    ]
    assert scenario_problems(AREA) == []
    for r in rules_of(AREA):
        assert r.phase == "control" and r.section == "SEC_CTRL_ENTRY"
        assert {s.expect for s in r.scenarios} == {"passes", "fails"}, r.id


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode])
def test_every_rule_passes_on_the_baseline_guests(guest) -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, guest()).passed, (r.id, guest.__name__)


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode])
def test_every_rule_passes_on_baseline_guests_injecting_a_db(guest) -> None:
    s = guest(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3))
    for r in rules_of(AREA):
        assert verdict(r.func, s).passed, (r.id, guest.__name__)


# --- reserved bits of the VM-entry controls --------------------------------------------------


def test_default_entry_ctls_profile() -> None:
    assert MUST_BE_1 == 0x11FB  # default1 bits 0, 1, 3-8, 12; "load debug controls" (2) may be 0
    assert MUST_BE_1 & ~MAY_BE_1 == 0


@pytest.mark.parametrize("n", [n for n in range(32) if MUST_BE_1 & bit(n)])
def test_each_default1_bit_cleared_alone_fails(n: int) -> None:
    s = long_mode(VM_ENTRY_CONTROLS=LONG_MODE["VM_ENTRY_CONTROLS"] & ~bit(n))
    assert outcome(entry_ctls_reserved, s) == "fails"


@pytest.mark.parametrize("n", [n for n in range(32) if not MAY_BE_1 & bit(n)])
def test_each_disallowed_bit_set_alone_fails(n: int) -> None:
    s = long_mode(VM_ENTRY_CONTROLS=LONG_MODE["VM_ENTRY_CONTROLS"] | bit(n))
    assert outcome(entry_ctls_reserved, s) == "fails"


@pytest.mark.parametrize("n", [n for n in range(32) if MAY_BE_1 & ~MUST_BE_1 & bit(n)])
def test_each_optional_bit_toggled_alone_passes(n: int) -> None:
    s = long_mode(VM_ENTRY_CONTROLS=LONG_MODE["VM_ENTRY_CONTROLS"] ^ bit(n))
    assert outcome(entry_ctls_reserved, s) == "passes"


def test_feature_facts_decide_their_load_controls() -> None:
    with_bndcfgs = LONG_MODE["VM_ENTRY_CONTROLS"] | VM_ENTRY_LOAD_BNDCFGS
    assert outcome(entry_ctls_reserved, long_mode(VM_ENTRY_CONTROLS=with_bndcfgs)) == "fails"
    assert outcome(entry_ctls_reserved, long_mode(Capabilities(mpx=True), VM_ENTRY_CONTROLS=with_bndcfgs)) == "passes"
    with_cet = LONG_MODE["VM_ENTRY_CONTROLS"] | VM_ENTRY_LOAD_CET_STATE
    assert outcome(entry_ctls_reserved, long_mode(VM_ENTRY_CONTROLS=with_cet)) == "passes"
    assert outcome(entry_ctls_reserved, long_mode(Capabilities(cet=False), VM_ENTRY_CONTROLS=with_cet)) == "fails"


def test_both_kinds_of_reserved_bit_are_reported() -> None:
    v = verdict(entry_ctls_reserved, long_mode(VM_ENTRY_CONTROLS=(LONG_MODE["VM_ENTRY_CONTROLS"] & ~1) | bit(31)))
    assert len(v.violations) == 2


def test_a_control_failure_is_a_vmfail_7() -> None:
    result = evaluate(long_mode(VM_ENTRY_CONTROLS=0))
    assert result.outcome.kind == "vmfail" and result.outcome.vm_instruction_error == 7
    assert "ENTRY_CTRL_ENTRY_CTLS_RESERVED" in {v.rule_id for v in result.violations}


# --- event injection -------------------------------------------------------------------------


def test_nothing_is_checked_without_the_valid_bit() -> None:
    junk = 0x7FFFFFFF  # every bit but valid
    for r in rules_of(AREA):
        if r.id.startswith("ENTRY_CTRL_INJ_"):
            assert verdict(r.func, entry(VM_ENTRY_INTR_INFO_FIELD=junk)).passed, r.id


@pytest.mark.parametrize("t", range(8))
def test_injection_types(t: int) -> None:
    s = long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2 if t == 2 else 0, t))
    assert outcome(inj_type_valid, s) == ("fails" if t == 1 else "passes")
    no_mtf = long_mode(Capabilities(monitor_trap_flag=False), VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0, t))
    assert outcome(inj_type_valid, no_mtf) == ("fails" if t in (1, 7) else "passes")


@pytest.mark.parametrize("v", range(256))
def test_vector_per_type(v: int) -> None:
    def out(t: int, caps: Capabilities = DEFAULT_CAPABILITIES) -> str:
        return outcome(inj_vector_matches_type, long_mode(caps, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(v, t)))

    assert out(2) == ("passes" if v == 2 else "fails")
    assert out(3) == ("passes" if v <= 31 else "fails")
    assert out(7) == ("passes" if v == 0 else "fails")
    assert out(7, FRED) == "passes"  # left to ENTRY_CTRL_INJ_FRED_OTHER_EVENT
    for t in (0, 4, 5, 6):
        assert out(t) == "passes"


def _hw(vector: int, code: bool, guest=protected_mode, caps: Capabilities = DEFAULT_CAPABILITIES, **changes: int):
    return guest(caps, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(vector, 3, deliver_code=code), **changes)


@pytest.mark.parametrize("v", range(32))
def test_errcode_per_vector_in_protected_mode(v: int) -> None:
    pushes = v in ERROR_CODE_VECTORS
    assert outcome(inj_errcode_iff, _hw(v, pushes)) == "passes"
    assert outcome(inj_errcode_iff, _hw(v, not pushes)) == "fails"
    # IA32_VMX_BASIC[56]: either way is fine in protected mode
    basic56 = Capabilities(no_hw_errcode_check=True)
    assert outcome(inj_errcode_iff, _hw(v, True, caps=basic56)) == "passes"
    assert outcome(inj_errcode_iff, _hw(v, False, caps=basic56)) == "passes"


@pytest.mark.parametrize("v", range(32))
def test_errcode_never_in_real_mode(v: int) -> None:
    for caps in (DEFAULT_CAPABILITIES, Capabilities(no_hw_errcode_check=True)):
        assert outcome(inj_errcode_iff, _hw(v, False, real_mode, caps)) == "passes"
        assert outcome(inj_errcode_iff, _hw(v, True, real_mode, caps)) == "fails"


@pytest.mark.parametrize("t", [0, 2, 4, 5, 6, 7])
def test_errcode_never_for_other_types(t: int) -> None:
    for caps in (DEFAULT_CAPABILITIES, Capabilities(no_hw_errcode_check=True)):
        info = make_intr_info(2 if t == 2 else 13, t, deliver_code=True)
        assert outcome(inj_errcode_iff, long_mode(caps, VM_ENTRY_INTR_INFO_FIELD=info)) == "fails"
        assert outcome(inj_errcode_iff, long_mode(caps, VM_ENTRY_INTR_INFO_FIELD=info & ~INTR_INFO_DELIVER_CODE_MASK)) == "passes"


def test_errcode_protected_mode_when_unrestricted_guest_is_off() -> None:
    # kvm-unit-tests test_invalid_event_injection(): URG off, CR0.PE=0, #GP with code passes
    real_cr0 = real_mode().vmcs.GUEST_CR0 & ~(X86_CR0_PE | X86_CR0_PG)
    no_ug = {"SECONDARY_VM_EXEC_CONTROL": LONG_MODE["SECONDARY_VM_EXEC_CONTROL"] & ~SECONDARY_EXEC_UNRESTRICTED_GUEST,
             "GUEST_CR0": real_cr0}
    assert outcome(inj_errcode_iff, _hw(13, True, real_mode, **no_ug)) == "passes"
    assert outcome(inj_errcode_iff, _hw(13, False, real_mode, **no_ug)) == "fails"
    # "unrestricted guest" in the secondary controls counts as 0 when they are not activated
    inactive = {"CPU_BASED_VM_EXEC_CONTROL": LONG_MODE["CPU_BASED_VM_EXEC_CONTROL"] & ~CPU_BASED_ACTIVATE_SECONDARY_CONTROLS}
    assert outcome(inj_errcode_iff, _hw(13, True, real_mode, **inactive)) == "passes"


def test_errcode_reads_the_mode_only_when_it_matters() -> None:
    assert verdict(inj_errcode_iff, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3))).passed
    assert verdict(inj_errcode_iff, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0x20, 0, deliver_code=True))).outcome == "fails"
    gp = verdict(inj_errcode_iff, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True)))
    assert gp.missing == ("CPU_BASED_VM_EXEC_CONTROL",)


@pytest.mark.parametrize("n", range(12, 31))
def test_each_reserved_injection_bit_alone_fails(n: int) -> None:
    info = make_intr_info(13, 3, deliver_code=True) | bit(n)
    assert outcome(inj_reserved_zero, long_mode(VM_ENTRY_INTR_INFO_FIELD=info)) == "fails"
    assert outcome(inj_reserved_zero, long_mode(FRED, VM_ENTRY_INTR_INFO_FIELD=info)) == ("passes" if n == 13 else "fails")


@pytest.mark.parametrize("n", range(32))
def test_error_code_width_bit_by_bit(n: int) -> None:
    info = make_intr_info(13, 3, deliver_code=True)
    s = long_mode(VM_ENTRY_INTR_INFO_FIELD=info, VM_ENTRY_EXCEPTION_ERROR_CODE=bit(n))
    assert outcome(inj_errcode_width, s) == ("fails" if n >= 16 else "passes")
    no_code = long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(6, 3), VM_ENTRY_EXCEPTION_ERROR_CODE=bit(n))
    assert outcome(inj_errcode_width, no_code) == "passes"


@pytest.mark.parametrize("t", range(8))
@pytest.mark.parametrize("length", [0, 1, 15, 16, 0xFFFFFFFF])
def test_instruction_length(t: int, length: int) -> None:
    info = make_intr_info(3, t)
    inside = 1 <= length <= 15
    expect = "passes" if t not in (4, 5, 6) or inside else "fails"
    assert outcome(inj_insn_len, long_mode(VM_ENTRY_INTR_INFO_FIELD=info, VM_ENTRY_INSTRUCTION_LEN=length)) == expect
    zero_ok = Capabilities(zero_length_injection=True)
    expect0 = "passes" if t not in (4, 5, 6) or length <= 15 else "fails"
    s = long_mode(zero_ok, VM_ENTRY_INTR_INFO_FIELD=info, VM_ENTRY_INSTRUCTION_LEN=length)
    assert outcome(inj_insn_len, s) == expect0


@pytest.mark.parametrize("v", range(256))
def test_fred_other_event_vectors(v: int) -> None:
    s = long_mode(FRED, GUEST_CR4=FRED_CR4, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(v, 7), VM_ENTRY_INSTRUCTION_LEN=3)
    assert outcome(inj_fred_other_event, s) == ("passes" if v <= 2 else "fails")
    # without FRED the rule does nothing (the vector rule decides)
    plain = long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(v, 7))
    assert outcome(inj_fred_other_event, plain) == "passes"


@pytest.mark.parametrize("length,expect", [(0, "passes"), (15, "passes"), (16, "fails")])
def test_fred_syscall_length(length: int, expect: str) -> None:
    s = long_mode(FRED, GUEST_CR4=FRED_CR4, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 7), VM_ENTRY_INSTRUCTION_LEN=length)
    assert outcome(inj_fred_other_event, s) == expect


def test_fred_syscall_needs_a_fred_guest() -> None:
    info = make_intr_info(1, 7)
    ctl = LONG_MODE["VM_ENTRY_CONTROLS"]
    assert outcome(inj_fred_other_event, long_mode(FRED, VM_ENTRY_INTR_INFO_FIELD=info)) == "fails"
    no_ia32e = long_mode(FRED, GUEST_CR4=FRED_CR4, VM_ENTRY_CONTROLS=ctl & ~VM_ENTRY_IA32E_MODE, VM_ENTRY_INTR_INFO_FIELD=info)
    assert outcome(inj_fred_other_event, no_ia32e) == "fails"
    # a pending MTF exit (vector 0) needs no FRED guest
    assert outcome(inj_fred_other_event, long_mode(FRED, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0, 7))) == "passes"


# --- SMM ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [VM_ENTRY_SMM, VM_ENTRY_DEACT_DUAL_MONITOR])
def test_smm_controls_outside_and_inside_smm(mask: int) -> None:
    ctl = LONG_MODE["VM_ENTRY_CONTROLS"] | mask
    assert outcome(smm_controls_outside_smm, long_mode(VM_ENTRY_CONTROLS=ctl)) == "fails"
    assert outcome(smm_controls_outside_smm, long_mode(in_smm=True, VM_ENTRY_CONTROLS=ctl)) == "passes"
    assert outcome(smm_entry_deact_exclusive, long_mode(in_smm=True, VM_ENTRY_CONTROLS=ctl)) == "passes"


def test_smm_both_controls() -> None:
    ctl = LONG_MODE["VM_ENTRY_CONTROLS"] | VM_ENTRY_SMM | VM_ENTRY_DEACT_DUAL_MONITOR
    assert len(verdict(smm_controls_outside_smm, long_mode(VM_ENTRY_CONTROLS=ctl)).violations) == 2
    for in_smm in (False, True):
        assert outcome(smm_entry_deact_exclusive, long_mode(in_smm=in_smm, VM_ENTRY_CONTROLS=ctl)) == "fails"
