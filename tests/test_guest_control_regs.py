"""Checks on guest control registers, debug registers and MSRs: the scenarios hold, the
complete guests pass, and every reserved bit, fixed bit and limit is tried on its own."""

from __future__ import annotations

import pytest

from vmxkb.bits import (
    VM_ENTRY_IA32E_MODE,
    VM_ENTRY_LOAD_BNDCFGS,
    VM_ENTRY_LOAD_CET_STATE,
    VM_ENTRY_LOAD_DEBUG_CONTROLS,
    VM_ENTRY_LOAD_IA32_EFER,
    VM_ENTRY_LOAD_IA32_LBR_CTL,
    VM_ENTRY_LOAD_IA32_PAT,
    VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL,
    VM_ENTRY_LOAD_IA32_PKRS,
    X86_CR0_CD,
    X86_CR0_NW,
    X86_CR0_PE,
    X86_CR0_PG,
    X86_CR4_FRED,
    X86_CR4_PCIDE,
)
from vmxkb.guests import LONG_MODE, long_mode, protected_mode, real_mode
from vmxkb.registry import verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm import guest_control_regs as g
from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities, entry

AREA = "guest_control_regs"
CTL = LONG_MODE["VM_ENTRY_CONTROLS"]
NO_UG_SECONDARY = LONG_MODE["SECONDARY_VM_EXEC_CONTROL"] & ~0x80  # "unrestricted guest" off

EXPECTED_RULES = [
    "ENTRY_GUEST_CR0_FIXED_BITS",
    "ENTRY_GUEST_CR0_PG_NEEDS_PE",
    "ENTRY_GUEST_CR4_FIXED_BITS",
    "ENTRY_GUEST_CR4_CET_NEEDS_WP",
    "ENTRY_GUEST_DEBUGCTL_RESERVED_ZERO",
    "ENTRY_GUEST_IA32E_NEEDS_PG_PAE",
    "ENTRY_GUEST_CR4_PCIDE_NEEDS_IA32E",
    "ENTRY_GUEST_CR4_FRED_NEEDS_IA32E",
    "ENTRY_GUEST_CR3_WITHIN_MAXPHYADDR",
    "ENTRY_GUEST_DR7_HIGH_ZERO",
    "ENTRY_GUEST_SYSENTER_CANONICAL",
    "ENTRY_GUEST_S_CET_CANONICAL",
    "ENTRY_GUEST_SSP_TABLE_CANONICAL",
    "ENTRY_GUEST_PERF_GLOBAL_CTRL_RESERVED_ZERO",
    "ENTRY_GUEST_PAT_VALID_TYPES",
    "ENTRY_GUEST_EFER_RESERVED_ZERO",
    "ENTRY_GUEST_EFER_LMA_MATCHES_IA32E",
    "ENTRY_GUEST_EFER_LME_MATCHES_LMA",
    "ENTRY_GUEST_BNDCFGS_RESERVED_ZERO",
    "ENTRY_GUEST_BNDCFGS_BASE_CANONICAL",
    "ENTRY_GUEST_S_CET_RESERVED_ZERO",
    "ENTRY_GUEST_S_CET_SUPPRESS_TRACKER",
    "ENTRY_GUEST_LBR_CTL_RESERVED_ZERO",
    "ENTRY_GUEST_PKRS_HIGH_ZERO",
]


def outcome(func, state) -> str:
    return verdict(func, state).outcome


def bit_positions(mask: int) -> list[int]:
    return [i for i in range(64) if mask >> i & 1]


# --- the area as a whole ---------------------------------------------------------------------


def test_area_rules_in_sdm_order() -> None:
    assert [r.id for r in rules_of(AREA)] == EXPECTED_RULES


def test_every_scenario_holds() -> None:
    assert scenario_problems(AREA) == []


def test_every_rule_has_both_outcomes_and_is_a_guest_check() -> None:
    for r in rules_of(AREA):
        assert {s.expect for s in r.scenarios} == {"passes", "fails"}, r.id
        assert r.phase == "guest" and r.section == "SEC_GUEST_CONTROL_REGS" and r.qualification == 0, r.id
        assert all(s.id.startswith("SCN_GCR_") for s in r.scenarios), r.id


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode], ids=lambda f: f.__name__)
@pytest.mark.parametrize("rid", EXPECTED_RULES)
def test_complete_guests_pass(rid: str, guest) -> None:
    r = next(r for r in rules_of(AREA) if r.id == rid)
    v = verdict(r.func, guest())
    assert v.passed, v


@pytest.mark.parametrize("rid", EXPECTED_RULES)
def test_every_rule_is_not_evaluated_without_its_fields(rid: str) -> None:
    r = next(r for r in rules_of(AREA) if r.id == rid)
    assert verdict(r.func, entry()).outcome == "not evaluated"


# --- CR0 / CR4 fixed bits ----------------------------------------------------------------------


@pytest.mark.parametrize("n", bit_positions(DEFAULT_CAPABILITIES.cr0_fixed0))
def test_each_cr0_fixed0_bit_clear_alone_fails_without_ug(n: int) -> None:
    s = long_mode(GUEST_CR0=LONG_MODE["GUEST_CR0"] & ~(1 << n), SECONDARY_VM_EXEC_CONTROL=NO_UG_SECONDARY)
    assert outcome(g.cr0_fixed_bits, s) == "fails"


@pytest.mark.parametrize("n", bit_positions(DEFAULT_CAPABILITIES.cr0_fixed0))
def test_each_cr0_fixed0_bit_clear_alone_with_ug(n: int) -> None:
    s = long_mode(GUEST_CR0=LONG_MODE["GUEST_CR0"] & ~(1 << n))
    expected = "passes" if (1 << n) & (X86_CR0_PE | X86_CR0_PG) else "fails"
    assert outcome(g.cr0_fixed_bits, s) == expected


def test_ug_counts_zero_when_secondary_controls_are_not_active() -> None:
    s = real_mode(CPU_BASED_VM_EXEC_CONTROL=LONG_MODE["CPU_BASED_VM_EXEC_CONTROL"] & ~(1 << 31))
    v = verdict(g.cr0_fixed_bits, s)
    assert v.outcome == "fails" and "CPU_BASED_VM_EXEC_CONTROL" in str(v)


@pytest.mark.parametrize("n", range(32, 64))
def test_each_cr0_high_bit_fails(n: int) -> None:
    assert outcome(g.cr0_fixed_bits, long_mode(GUEST_CR0=LONG_MODE["GUEST_CR0"] | 1 << n)) == "fails"


@pytest.mark.parametrize("n", bit_positions(~(X86_CR0_CD | X86_CR0_NW) & 0xFFFFFFFF))
def test_each_cr0_bit_forbidden_by_fixed1_fails_except_cd_nw(n: int) -> None:
    caps = Capabilities(cr0_fixed0=0, cr0_fixed1=0)
    assert outcome(g.cr0_fixed_bits, long_mode(caps, GUEST_CR0=1 << n)) == "fails"


def test_cd_nw_are_never_checked() -> None:
    caps = Capabilities(cr0_fixed0=X86_CR0_CD | X86_CR0_NW | 0x80000021, cr0_fixed1=0x9FFFFFFF)
    for cr0 in (0x80050033, 0xA0050033, 0xC0050033, 0xE0050033):
        assert outcome(g.cr0_fixed_bits, long_mode(caps, GUEST_CR0=cr0)) == "passes", hex(cr0)


def test_cr0_partial_dump_is_evaluated_when_pe_pg_are_set() -> None:
    # no control fields at all: PE and PG are set, so "unrestricted guest" is not needed
    assert outcome(g.cr0_fixed_bits, entry(GUEST_CR0=0x80050033)) == "passes"
    assert outcome(g.cr0_fixed_bits, entry(GUEST_CR0=0x80050013)) == "fails"
    assert outcome(g.cr0_fixed_bits, entry(GUEST_CR0=0x30)) == "not evaluated"


@pytest.mark.parametrize("n", bit_positions(~DEFAULT_CAPABILITIES.cr4_fixed1 & (2**64 - 1)))
def test_each_cr4_bit_outside_fixed1_fails(n: int) -> None:
    assert outcome(g.cr4_fixed_bits, long_mode(GUEST_CR4=LONG_MODE["GUEST_CR4"] | 1 << n)) == "fails"


@pytest.mark.parametrize("n", bit_positions(DEFAULT_CAPABILITIES.cr4_fixed1 & ~DEFAULT_CAPABILITIES.cr4_fixed0))
def test_each_cr4_bit_inside_fixed1_passes(n: int) -> None:
    assert outcome(g.cr4_fixed_bits, long_mode(GUEST_CR4=LONG_MODE["GUEST_CR4"] | 1 << n)) == "passes"


def test_cr0_pg_pe_truth_table() -> None:
    for cr0, expected in ((0x30, "passes"), (0x31, "passes"), (0x80000031, "passes"), (0x80000030, "fails")):
        assert outcome(g.cr0_pg_needs_pe, real_mode(GUEST_CR0=cr0)) == expected, hex(cr0)


def test_cet_wp_truth_table() -> None:
    for cet in (0, 1):
        for wp in (0, 1):
            s = long_mode(GUEST_CR4=0x26E0 | cet << 23, GUEST_CR0=0x80040033 | wp << 16)
            assert outcome(g.cr4_cet_needs_wp, s) == ("fails" if cet and not wp else "passes")


# --- IA-32e mode guest vs CR0/CR4 ----------------------------------------------------------------


def test_ia32e_pg_pae_truth_table() -> None:
    for pg in (0, 1):
        for pae in (0, 1):
            cr0 = 0x50033 | pg << 31
            cr4 = 0x26C0 | pae << 5
            got = verdict(g.ia32e_needs_pg_pae, long_mode(GUEST_CR0=cr0, GUEST_CR4=cr4))
            assert len(got.violations) == (1 - pg) + (1 - pae)
            # without IA-32e mode, nothing is required
            plain = protected_mode(GUEST_CR0=cr0 | 1, GUEST_CR4=cr4)
            assert outcome(g.ia32e_needs_pg_pae, plain) == "passes"


@pytest.mark.parametrize(("func", "flag"), [(g.cr4_pcide_needs_ia32e, X86_CR4_PCIDE), (g.cr4_fred_needs_ia32e, X86_CR4_FRED)])
def test_cr4_bits_that_need_ia32e(func, flag: int) -> None:
    assert outcome(func, long_mode(GUEST_CR4=LONG_MODE["GUEST_CR4"] | flag)) == "passes"
    assert outcome(func, protected_mode(GUEST_CR4=0x2010 | flag)) == "fails"
    assert outcome(func, protected_mode(GUEST_CR4=0x2010)) == "passes"
    # "IA-32e mode guest" decides alone, not CR4.PAE or EFER
    assert outcome(func, long_mode(VM_ENTRY_CONTROLS=CTL & ~VM_ENTRY_IA32E_MODE, GUEST_CR4=0x2020 | flag)) == "fails"


# --- CR3 and MAXPHYADDR --------------------------------------------------------------------------


@pytest.mark.parametrize("maxphyaddr", [36, 39, 46, 52])
def test_cr3_limit_is_maxphyaddr(maxphyaddr: int) -> None:
    caps = Capabilities(maxphyaddr=maxphyaddr)
    assert outcome(g.cr3_within_maxphyaddr, long_mode(caps, GUEST_CR3=(1 << maxphyaddr) - 0x1000)) == "passes"
    for n in range(maxphyaddr, 64):
        assert outcome(g.cr3_within_maxphyaddr, long_mode(caps, GUEST_CR3=1 << n)) == "fails", n


def test_cr3_low_bits_are_not_this_rules_business() -> None:
    # PCID / PWT / PCD bits below 12 are not checked here
    assert outcome(g.cr3_within_maxphyaddr, long_mode(GUEST_CR3=0x1000FFF)) == "passes"


# --- debug controls --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", range(64))
def test_dr7_each_bit(n: int) -> None:
    expected = "fails" if n >= 32 else "passes"
    assert outcome(g.dr7_high_zero, long_mode(GUEST_DR7=1 << n)) == expected
    assert outcome(g.dr7_high_zero, long_mode(VM_ENTRY_CONTROLS=CTL & ~VM_ENTRY_LOAD_DEBUG_CONTROLS, GUEST_DR7=1 << n)) == "passes"


@pytest.mark.parametrize("n", range(64))
def test_debugctl_each_bit(n: int) -> None:
    expected = "passes" if DEFAULT_CAPABILITIES.debugctl_valid >> n & 1 else "fails"
    assert outcome(g.debugctl_reserved_zero, long_mode(GUEST_IA32_DEBUGCTL=1 << n)) == expected
    off = long_mode(VM_ENTRY_CONTROLS=CTL & ~VM_ENTRY_LOAD_DEBUG_CONTROLS, GUEST_IA32_DEBUGCTL=1 << n)
    assert outcome(g.debugctl_reserved_zero, off) == "passes"


def test_debugctl_follows_the_profile() -> None:
    older = Capabilities(debugctl_valid=0xFFC3)  # no bus-lock detection
    assert outcome(g.debugctl_reserved_zero, long_mode(older, GUEST_IA32_DEBUGCTL=0x4)) == "fails"
    assert outcome(g.debugctl_reserved_zero, long_mode(GUEST_IA32_DEBUGCTL=0x4)) == "passes"


def test_debug_rules_do_not_read_fields_they_do_not_need() -> None:
    off = entry(VM_ENTRY_CONTROLS=CTL & ~VM_ENTRY_LOAD_DEBUG_CONTROLS)
    assert outcome(g.dr7_high_zero, off) == "passes"
    assert outcome(g.debugctl_reserved_zero, off) == "passes"


# --- canonical addresses ---------------------------------------------------------------------------

CANONICAL_CASES = [
    # (address, canonical at 48, canonical at 57)
    (0x00007FFFFFFFFFFF, True, True),
    (0x0000800000000000, False, True),
    (0xFFFF800000000000, True, True),
    (0xFFFF7FFFFFFFFFFF, False, True),
    (0x00FFFFFFFFFFFFFF, False, True),
    (0x0100000000000000, False, False),
    (0xFF00000000000000, False, True),
    (0xFEFFFFFFFFFFFFFF, False, False),
]


@pytest.mark.parametrize(("addr", "c48", "c57"), CANONICAL_CASES)
@pytest.mark.parametrize("field", ["GUEST_SYSENTER_ESP", "GUEST_SYSENTER_EIP"])
def test_sysenter_canonical_boundaries(field: str, addr: int, c48: bool, c57: bool) -> None:
    assert outcome(g.sysenter_canonical, long_mode(**{field: addr})) == ("passes" if c48 else "fails")
    la57 = Capabilities(linear_address_width=57)
    # the guest's CR4.LA57 plays no part: both the 4-level and the 5-level guest see the CPU width
    for cr4 in (0x26E0, 0x36E0):
        assert outcome(g.sysenter_canonical, long_mode(la57, GUEST_CR4=cr4, **{field: addr})) == (
            "passes" if c57 else "fails"
        )


def test_sysenter_checked_in_every_mode() -> None:
    for guest in (protected_mode, real_mode):
        assert outcome(g.sysenter_canonical, guest(GUEST_SYSENTER_ESP=0x0000800000000000)) == "fails"


@pytest.mark.parametrize(("addr", "c48", "c57"), CANONICAL_CASES)
def test_cet_canonical_boundaries(addr: int, c48: bool, c57: bool) -> None:
    cet = CTL | VM_ENTRY_LOAD_CET_STATE
    la57 = Capabilities(linear_address_width=57)
    assert outcome(g.ssp_table_canonical, long_mode(VM_ENTRY_CONTROLS=cet, GUEST_INTR_SSP_TABLE=addr)) == (
        "passes" if c48 else "fails"
    )
    assert outcome(g.ssp_table_canonical, long_mode(la57, VM_ENTRY_CONTROLS=cet, GUEST_INTR_SSP_TABLE=addr)) == (
        "passes" if c57 else "fails"
    )
    s_cet = addr & ~0xFFF
    assert outcome(g.s_cet_canonical, long_mode(VM_ENTRY_CONTROLS=cet, GUEST_S_CET=s_cet)) == (
        "passes" if c48 else "fails"
    )
    # not loaded: not checked
    assert outcome(g.ssp_table_canonical, long_mode(GUEST_INTR_SSP_TABLE=addr)) == "passes"
    assert outcome(g.s_cet_canonical, long_mode(GUEST_S_CET=s_cet)) == "passes"


@pytest.mark.parametrize(("addr", "c48", "c57"), CANONICAL_CASES)
def test_bndcfgs_base_canonical_boundaries(addr: int, c48: bool, c57: bool) -> None:
    ctl = CTL | VM_ENTRY_LOAD_BNDCFGS
    # the low 12 bits (EN, BNDPRESERVE, reserved) are not part of the address
    value = (addr & ~0xFFF) | 0x3
    assert outcome(g.bndcfgs_base_canonical, long_mode(VM_ENTRY_CONTROLS=ctl, GUEST_BNDCFGS=value)) == (
        "passes" if c48 else "fails"
    )


# --- MSR reserved bits -------------------------------------------------------------------------------

RESERVED_CASES = [
    # (rule, control, field, bits that may be 1)
    (g.perf_global_ctrl_reserved_zero, VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL, "GUEST_IA32_PERF_GLOBAL_CTRL",
     DEFAULT_CAPABILITIES.perf_global_ctrl_valid),
    (g.efer_reserved_zero, VM_ENTRY_LOAD_IA32_EFER, "GUEST_IA32_EFER", DEFAULT_CAPABILITIES.efer_valid),
    (g.bndcfgs_reserved_zero, VM_ENTRY_LOAD_BNDCFGS, "GUEST_BNDCFGS", ~g.BNDCFGS_RESERVED & (2**64 - 1)),
    (g.s_cet_reserved_zero, VM_ENTRY_LOAD_CET_STATE, "GUEST_S_CET", ~g.S_CET_RESERVED & (2**64 - 1)),
    (g.lbr_ctl_reserved_zero, VM_ENTRY_LOAD_IA32_LBR_CTL, "GUEST_IA32_LBR_CTL", 0x7F000F),
    (g.pkrs_high_zero, VM_ENTRY_LOAD_IA32_PKRS, "GUEST_IA32_PKRS", 0xFFFFFFFF),
]


@pytest.mark.parametrize(("func", "control", "field", "valid"), RESERVED_CASES, ids=lambda x: getattr(x, "__name__", None))
def test_each_reserved_bit_alone(func, control: int, field: str, valid: int) -> None:
    for n in range(64):
        # EFER keeps its LMA/LME (the other EFER rules stay quiet); the others start from 0
        value = (LONG_MODE[field] | 1 << n) if field == "GUEST_IA32_EFER" else 1 << n
        s = long_mode(VM_ENTRY_CONTROLS=CTL | control, **{field: value})
        expected = "passes" if valid >> n & 1 else "fails"
        assert outcome(func, s) == expected, (func.__name__, n)
        off = long_mode(VM_ENTRY_CONTROLS=CTL & ~control, **{field: value})
        assert outcome(func, off) == "passes", (func.__name__, n, "not loaded")


def test_perf_global_ctrl_follows_the_profile() -> None:
    caps = Capabilities(perf_global_ctrl_valid=0x70000000F)  # 4 GP, 3 fixed counters
    ctl = CTL | VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL
    assert outcome(g.perf_global_ctrl_reserved_zero, long_mode(caps, VM_ENTRY_CONTROLS=ctl, GUEST_IA32_PERF_GLOBAL_CTRL=0xF)) == "passes"
    assert outcome(g.perf_global_ctrl_reserved_zero, long_mode(caps, VM_ENTRY_CONTROLS=ctl, GUEST_IA32_PERF_GLOBAL_CTRL=0x10)) == "fails"


def test_s_cet_suppress_tracker_truth_table() -> None:
    ctl = CTL | VM_ENTRY_LOAD_CET_STATE
    for suppress in (0, 1):
        for tracker in (0, 1):
            value = 0x4 | suppress << 10 | tracker << 11
            got = outcome(g.s_cet_suppress_tracker, long_mode(VM_ENTRY_CONTROLS=ctl, GUEST_S_CET=value))
            assert got == ("fails" if suppress and tracker else "passes")


# --- PAT -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry_no", range(8))
def test_pat_every_value_in_every_entry(entry_no: int) -> None:
    for value in range(256):
        pat = LONG_MODE["GUEST_IA32_PAT"] & ~(0xFF << 8 * entry_no) | value << 8 * entry_no
        expected = "passes" if value in (0, 1, 4, 5, 6, 7) else "fails"
        assert outcome(g.pat_valid_types, long_mode(GUEST_IA32_PAT=pat)) == expected, (entry_no, value)
        off = long_mode(VM_ENTRY_CONTROLS=CTL & ~VM_ENTRY_LOAD_IA32_PAT, GUEST_IA32_PAT=pat)
        assert outcome(g.pat_valid_types, off) == "passes"


def test_pat_reports_each_bad_entry() -> None:
    v = verdict(g.pat_valid_types, long_mode(GUEST_IA32_PAT=0x0203020302030203))
    assert len(v.violations) == 8


# --- EFER consistency ----------------------------------------------------------------------------------


def test_efer_lma_lme_pg_table() -> None:
    for ia32e in (0, 1):
        for lma in (0, 1):
            for lme in (0, 1):
                for pg in (0, 1):
                    ctl = (CTL & ~VM_ENTRY_IA32E_MODE) | ia32e * VM_ENTRY_IA32E_MODE
                    efer = 0x801 | lma << 10 | lme << 8
                    cr0 = 0x50033 | pg << 31
                    s = long_mode(VM_ENTRY_CONTROLS=ctl, GUEST_IA32_EFER=efer, GUEST_CR0=cr0)
                    assert outcome(g.efer_lma_matches_ia32e, s) == ("passes" if lma == ia32e else "fails")
                    assert outcome(g.efer_lme_matches_lma, s) == ("fails" if pg and lma != lme else "passes")
                    off = long_mode(VM_ENTRY_CONTROLS=ctl & ~VM_ENTRY_LOAD_IA32_EFER, GUEST_IA32_EFER=efer, GUEST_CR0=cr0)
                    assert outcome(g.efer_lma_matches_ia32e, off) == "passes"
                    assert outcome(g.efer_lme_matches_lma, off) == "passes"


def test_efer_lme_rule_reads_cr0_only_when_it_matters() -> None:
    load = CTL & ~VM_ENTRY_IA32E_MODE
    assert outcome(g.efer_lme_matches_lma, entry(VM_ENTRY_CONTROLS=load, GUEST_IA32_EFER=0)) == "passes"
    assert outcome(g.efer_lme_matches_lma, entry(VM_ENTRY_CONTROLS=load, GUEST_IA32_EFER=0x100)) == "not evaluated"
