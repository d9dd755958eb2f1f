"""Checks on guest segment registers: every scenario holds, the complete guests pass, the
real 2021 failure (dump 03) is explained by exactly one clause, and each boundary (reserved
bits, limit/G, type tables, DPL/RPL, canonical widths) falls on the side the SDM puts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmxkb.dump import parse_dump
from vmxkb.registry import REGISTRY, verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm import guest_segments as gs
from vmxkb.state import Capabilities, FIELDS, entry
from vmxkb.guests import long_mode, protected_mode, real_mode

AREA = "guest_segments"
RULES = rules_of(AREA)
UG_OFF = 0x76B  # the guests' secondary controls without "unrestricted guest"
DUMP_03 = Path(__file__).resolve().parent / "dumps/03-kvm-2021-core2duo-ds-es-not-accessed/dump.txt"
#: a 32-bit guest with a usable LDTR, so that LDTR's checks have something to look at
WITH_LDTR = dict(GUEST_LDTR_SELECTOR=0x28, GUEST_LDTR_BASE=0xC0004000, GUEST_LDTR_LIMIT=0xFFF, GUEST_LDTR_AR_BYTES=0x82)


def ids(state) -> list[str]:
    """The IDs of the area's rules that fail on ``state`` (one entry per violation)."""
    return [v.rule_id for r in RULES for v in verdict(r.func, state).violations]


def fails(func, state) -> list[str]:
    """The violations of one rule, as text; [] when it passes (and it must be evaluated)."""
    v = verdict(func, state)
    assert not v.missing, v
    return [str(x) for x in v.violations]


# --- the area as a whole -------------------------------------------------------------------


def test_area_has_rules_and_their_scenarios_hold() -> None:
    assert len(RULES) == 29
    assert all(r.id.startswith("ENTRY_GUEST_SEG_") and r.phase == "guest" and r.qualification == 0 for r in RULES)
    assert all({s.expect for s in r.scenarios} == {"passes", "fails"} for r in RULES)
    assert all(s.id.startswith("SCN_SEG_") for r in RULES for s in r.scenarios)
    assert scenario_problems(AREA) == []


@pytest.mark.parametrize(
    "guest",
    [long_mode(), protected_mode(), real_mode(), gs.virtual_8086_mode(), protected_mode(**WITH_LDTR)],
    ids=["long_mode", "protected_mode", "real_mode", "virtual_8086_mode", "protected_mode_ldtr"],
)
@pytest.mark.parametrize("r", RULES, ids=lambda r: r.id)
def test_every_rule_passes_on_the_complete_guests(r, guest) -> None:
    assert verdict(r.func, guest).passed, verdict(r.func, guest)


def test_the_guests_without_unrestricted_guest_still_pass_where_they_can() -> None:
    # real mode needs unrestricted guest (CR0.PE=0); the other two do not
    assert ids(long_mode(SECONDARY_VM_EXEC_CONTROL=UG_OFF)) == []
    assert ids(protected_mode(SECONDARY_VM_EXEC_CONTROL=UG_OFF)) == []


# --- dump 03: the real failure this area has to explain ------------------------------------

@pytest.fixture(scope="module")
def dump03():
    """The real dump, kept in tests/dumps (source: tests/dumps/SOURCE.md), read by vmxkb.dump."""
    fields = dict(parse_dump(DUMP_03.read_text()).fields)
    assert set(fields) <= set(FIELDS)
    return entry(**fields)


def test_dump03_is_parsed_as_published(dump03) -> None:
    vmcs = dump03.vmcs
    assert (vmcs.GUEST_DS_AR_BYTES, vmcs.GUEST_ES_AR_BYTES) == (0xC0F2, 0xC0F2)
    assert vmcs.SECONDARY_VM_EXEC_CONTROL == 0x2C6A and vmcs.GUEST_RFLAGS == 0x80202
    assert (vmcs.GUEST_CS_SELECTOR, vmcs.GUEST_CS_BASE) == (0x97, 0x2110000)
    assert vmcs.GUEST_TR_AR_BYTES == 0x8B and vmcs.GUEST_LDTR_AR_BYTES == 0x82


def test_dump03_fails_only_on_the_accessed_bit_of_ds_and_es(dump03) -> None:
    missing = {r.id: verdict(r.func, dump03).missing for r in RULES if verdict(r.func, dump03).missing}
    assert missing == {}
    assert fails(gs.data_accessed, dump03) == [
        "ENTRY_GUEST_SEG_DATA_ACCESSED: usable DS with type 2: accessed bit clear [GUEST_DS_AR_BYTES=0xc0f2]",
        "ENTRY_GUEST_SEG_DATA_ACCESSED: usable ES with type 2: accessed bit clear [GUEST_ES_AR_BYTES=0xc0f2]",
    ]
    assert ids(dump03) == ["ENTRY_GUEST_SEG_DATA_ACCESSED"] * 2


def test_dump03_with_the_accessed_bits_set_passes_the_area(dump03) -> None:
    fixed = entry(**{**dump03.vmcs.given(), "GUEST_DS_AR_BYTES": 0xC0F3, "GUEST_ES_AR_BYTES": 0xC0F3})
    assert ids(fixed) == []


# --- partial states -------------------------------------------------------------------------


def test_a_register_that_breaks_the_clause_is_reported_even_if_another_is_missing() -> None:
    partial = entry(GUEST_RFLAGS=0x2, GUEST_DS_AR_BYTES=0xC092, GUEST_ES_AR_BYTES=0xC093, GUEST_GS_AR_BYTES=0x10000)
    assert fails(gs.data_accessed, partial) == [
        "ENTRY_GUEST_SEG_DATA_ACCESSED: usable DS with type 2: accessed bit clear [GUEST_DS_AR_BYTES=0xc092]"
    ]
    clean = entry(GUEST_RFLAGS=0x2, GUEST_DS_AR_BYTES=0xC093, GUEST_ES_AR_BYTES=0xC093, GUEST_GS_AR_BYTES=0x10000)
    assert verdict(gs.data_accessed, clean).missing == ("GUEST_FS_AR_BYTES",)


def test_deciding_fields_are_read_first() -> None:
    # outside virtual-8086 mode the v86 rules need nothing but RFLAGS
    for func in (gs.v86_base, gs.v86_limit, gs.v86_ar):
        assert verdict(func, entry(GUEST_RFLAGS=0x2)).passed
    # an unusable LDTR needs no selector, base or limit
    for func in (gs.ldtr_sel_ti, gs.ldtr_type):
        assert verdict(func, entry(GUEST_LDTR_AR_BYTES=0x10000)).passed
    # a busy 32-bit TSS needs no entry controls; a type-11 CS no unrestricted-guest control
    assert verdict(gs.tr_type, entry(GUEST_TR_AR_BYTES=0x8B)).passed
    assert verdict(gs.cs_type, entry(GUEST_RFLAGS=0x2, GUEST_CS_AR_BYTES=0xC09B)).passed
    type3 = entry(GUEST_RFLAGS=0x2, GUEST_CS_AR_BYTES=0x93)
    assert verdict(gs.cs_type, type3).missing == ("CPU_BASED_VM_EXEC_CONTROL",)


# --- reserved bits: each bit alone ---------------------------------------------------------

_CHECKED = [  # (register, guest whose register is checked, its access rights)
    ("CS", protected_mode(), 0xC09B),
    ("DS", protected_mode(), 0xC093),
    ("TR", protected_mode(), 0x8B),
    ("LDTR", protected_mode(**WITH_LDTR), 0x82),
]


@pytest.mark.parametrize("func, hi, lo", [(gs.ar_reserved_11_8, 11, 8), (gs.ar_reserved_31_17, 31, 17)])
@pytest.mark.parametrize("reg, guest, ar", _CHECKED, ids=[c[0] for c in _CHECKED])
def test_each_reserved_access_rights_bit_fails_alone(func, hi, lo, reg, guest, ar) -> None:
    for n in range(lo, hi + 1):
        bad = guest.vmcs.given() | {f"GUEST_{reg}_AR_BYTES": ar | 1 << n}
        out = fails(func, entry(**bad))
        assert len(out) == 1 and f"{reg} access rights have reserved bits" in out[0], (n, out)
    assert fails(func, guest) == []


@pytest.mark.parametrize("func, hi, lo", [(gs.ar_reserved_11_8, 11, 8), (gs.ar_reserved_31_17, 31, 17)])
def test_reserved_bits_of_unusable_registers_and_of_v86_mode_are_not_checked(func, hi, lo) -> None:
    for n in range(lo, hi + 1):
        unusable = protected_mode(GUEST_DS_AR_BYTES=0x10000 | 1 << n, GUEST_LDTR_AR_BYTES=0x10000 | 1 << n)
        assert fails(func, unusable) == []
        # in virtual-8086 mode the whole field is pinned by ENTRY_GUEST_SEG_V86_AR instead
        v86 = gs.virtual_8086_mode(GUEST_DS_AR_BYTES=0xF3 | 1 << n)
        assert fails(func, v86) == [] and len(fails(gs.v86_ar, v86)) == 1


def test_reserved_bits_of_an_unusable_cs_or_tr_are_still_checked() -> None:
    assert len(fails(gs.ar_reserved_31_17, protected_mode(GUEST_CS_AR_BYTES=0x3C09B))) == 1
    assert len(fails(gs.ar_reserved_11_8, protected_mode(GUEST_TR_AR_BYTES=0x1018B))) == 1


# --- limit and granularity ------------------------------------------------------------------


@pytest.mark.parametrize("reg, guest, ar", _CHECKED, ids=[c[0] for c in _CHECKED])
def test_limit_granularity_boundaries(reg, guest, ar) -> None:
    def state(limit: int, g: bool):
        a = ar | gs.AR_G if g else ar & ~gs.AR_G
        return entry(**guest.vmcs.given() | {f"GUEST_{reg}_LIMIT": limit, f"GUEST_{reg}_AR_BYTES": a})

    # G=0: up to FFFFFH is fine, any bit of 31:20 fails
    assert fails(gs.limit_g_clear, state(0xFFFFF, False)) == []
    assert fails(gs.limit_g_set, state(0xFFFFF, False)) == []
    for n in range(20, 32):
        assert len(fails(gs.limit_g_clear, state(1 << n, False))) == 1, n
    # G=1: bits 11:0 must all be 1, whatever the rest
    assert fails(gs.limit_g_set, state(0xFFF, True)) == []
    assert fails(gs.limit_g_clear, state(0xFFFFFFFF, True)) == []
    for n in range(12):
        assert len(fails(gs.limit_g_set, state(0xFFFFFFFF & ~(1 << n), True))) == 1, n


def test_limit_granularity_of_unusable_registers_is_not_checked() -> None:
    s = protected_mode(GUEST_GS_LIMIT=0xFFFFF000, GUEST_GS_AR_BYTES=0x18000,
                       GUEST_FS_LIMIT=0x100000, GUEST_FS_AR_BYTES=0x10000)
    assert fails(gs.limit_g_set, s) == [] and fails(gs.limit_g_clear, s) == []


# --- types -------------------------------------------------------------------------------


def _with_type(ar: int, t: int) -> int:
    return ar & ~gs.AR_TYPE_MASK | t


@pytest.mark.parametrize("ug", [True, False])
def test_cs_type_table(ug: bool) -> None:
    allowed = {9, 11, 13, 15} | ({3} if ug else set())
    sec = 0x7EB if ug else UG_OFF
    for t in range(16):
        out = fails(gs.cs_type, protected_mode(GUEST_CS_AR_BYTES=_with_type(0xC09B, t), SECONDARY_VM_EXEC_CONTROL=sec))
        assert (out == []) == (t in allowed), (t, out)


def test_cs_type_3_needs_unrestricted_guest_also_when_secondary_controls_are_off() -> None:
    s = protected_mode(GUEST_CS_AR_BYTES=0xC093, CPU_BASED_VM_EXEC_CONTROL=0x35A06DFA)
    assert fails(gs.cs_type, s) == [
        "ENTRY_GUEST_SEG_CS_TYPE: CS type 3 needs unrestricted guest [GUEST_CS_AR_BYTES=0xc093]"
    ]


def test_ss_type_table() -> None:
    for t in range(16):
        assert (fails(gs.ss_type, protected_mode(GUEST_SS_AR_BYTES=_with_type(0xC093, t))) == []) == (t in (3, 7)), t
        assert fails(gs.ss_type, protected_mode(GUEST_SS_AR_BYTES=0x10000 | t)) == []


def test_data_register_type_tables() -> None:
    for reg in gs.DATA_REGS:
        for t in range(16):
            s = protected_mode(**{f"GUEST_{reg}_AR_BYTES": _with_type(0xC093, t)})
            assert (fails(gs.data_accessed, s) == []) == bool(t & 1), (reg, t)
            assert (fails(gs.data_code_readable, s) == []) == (t < 8 or bool(t & 2)), (reg, t)
            unusable = protected_mode(**{f"GUEST_{reg}_AR_BYTES": 0x10000 | t})
            assert fails(gs.data_accessed, unusable) == fails(gs.data_code_readable, unusable) == []


def test_accessed_bit_is_required_with_unrestricted_guest_too() -> None:
    assert len(fails(gs.data_accessed, real_mode(GUEST_ES_AR_BYTES=0x92))) == 1


def test_tr_and_ldtr_types() -> None:
    for t in range(16):
        assert (fails(gs.tr_type, long_mode(GUEST_TR_AR_BYTES=0x80 | t)) == []) == (t == 11), t
        assert (fails(gs.tr_type, protected_mode(GUEST_TR_AR_BYTES=0x80 | t)) == []) == (t in (3, 11)), t
        ldtr = protected_mode(**WITH_LDTR | {"GUEST_LDTR_AR_BYTES": 0x80 | t})
        assert (fails(gs.ldtr_type, ldtr) == []) == (t == 2), t
    assert fails(gs.tr_usable, long_mode(GUEST_TR_AR_BYTES=0x1008B)) != []


def test_s_bit_per_register() -> None:
    for reg in gs.SEG_REGS:
        ar = protected_mode().vmcs.given()[f"GUEST_{reg}_AR_BYTES"]
        assert len(fails(gs.s_bit, protected_mode(**{f"GUEST_{reg}_AR_BYTES": ar & ~gs.AR_S}))) == 1, reg
    assert len(fails(gs.s_bit, protected_mode(GUEST_TR_AR_BYTES=0x9B))) == 1
    assert len(fails(gs.s_bit, protected_mode(**WITH_LDTR | {"GUEST_LDTR_AR_BYTES": 0x92}))) == 1
    assert fails(gs.s_bit, protected_mode(GUEST_LDTR_AR_BYTES=0x10092, GUEST_FS_AR_BYTES=0x10003)) == []


def test_p_bit_per_register() -> None:
    for reg in gs.SEG_REGS + ("TR",):
        ar = protected_mode().vmcs.given()[f"GUEST_{reg}_AR_BYTES"]
        assert len(fails(gs.p_bit, protected_mode(**{f"GUEST_{reg}_AR_BYTES": ar & ~gs.AR_P}))) == 1, reg
    assert len(fails(gs.p_bit, protected_mode(**WITH_LDTR | {"GUEST_LDTR_AR_BYTES": 0x02}))) == 1


# --- privilege levels -------------------------------------------------------------------------


def _cs_ss(cs_type: int, cs_dpl: int, ss_dpl: int):
    return protected_mode(GUEST_CS_AR_BYTES=0xC090 | cs_dpl << 5 | cs_type, GUEST_SS_AR_BYTES=0xC093 | ss_dpl << 5)


def test_cs_dpl_against_ss_dpl() -> None:
    for cs_dpl in range(4):
        for ss_dpl in range(4):
            for t in (9, 11):
                assert (fails(gs.cs_dpl_nonconforming, _cs_ss(t, cs_dpl, ss_dpl)) == []) == (cs_dpl == ss_dpl)
                assert fails(gs.cs_dpl_conforming, _cs_ss(t, cs_dpl, ss_dpl)) == []
            for t in (13, 15):
                assert (fails(gs.cs_dpl_conforming, _cs_ss(t, cs_dpl, ss_dpl)) == []) == (cs_dpl <= ss_dpl)
                assert fails(gs.cs_dpl_nonconforming, _cs_ss(t, cs_dpl, ss_dpl)) == []
            # CS type 3: DPL 0, and SS.DPL 0 with it
            assert (fails(gs.cs_dpl_data_type, _cs_ss(3, cs_dpl, ss_dpl)) == []) == (cs_dpl == 0)
            assert (fails(gs.ss_dpl_zero, _cs_ss(3, cs_dpl, ss_dpl)) == []) == (ss_dpl == 0)


def test_ss_dpl_zero_with_cr0_pe_clear_and_not_with_pe_set() -> None:
    for dpl in range(4):
        assert (fails(gs.ss_dpl_zero, real_mode(GUEST_SS_AR_BYTES=0x93 | dpl << 5)) == []) == (dpl == 0)
        assert fails(gs.ss_dpl_zero, protected_mode(GUEST_SS_AR_BYTES=0xC093 | dpl << 5)) == []


def test_ss_rpl_and_dpl_without_unrestricted_guest_even_when_ss_is_unusable() -> None:
    for rpl in range(4):
        for dpl in range(4):
            s = protected_mode(SECONDARY_VM_EXEC_CONTROL=UG_OFF, GUEST_SS_SELECTOR=0x10 | rpl,
                               GUEST_SS_AR_BYTES=0x10000 | dpl << 5)
            assert (fails(gs.ss_rpl_cs_rpl, s) == []) == (rpl == 0)
            assert (fails(gs.ss_dpl_rpl, s) == []) == (rpl == dpl)
            ug = protected_mode(GUEST_SS_SELECTOR=0x10 | rpl, GUEST_SS_AR_BYTES=0x10000 | dpl << 5)
            assert fails(gs.ss_rpl_cs_rpl, ug) == fails(gs.ss_dpl_rpl, ug) == []


def test_data_dpl_against_rpl() -> None:
    for t in range(16):
        for dpl in range(4):
            for rpl in range(4):
                ar = 0xC090 | dpl << 5 | t
                s = protected_mode(SECONDARY_VM_EXEC_CONTROL=UG_OFF, GUEST_FS_SELECTOR=0x10 | rpl, GUEST_FS_AR_BYTES=ar)
                assert (fails(gs.data_dpl_rpl, s) == []) == (t > 11 or dpl >= rpl), (t, dpl, rpl)
                ug = protected_mode(GUEST_FS_SELECTOR=0x10 | rpl, GUEST_FS_AR_BYTES=ar)
                assert fails(gs.data_dpl_rpl, ug) == []


def test_cs_db_only_matters_for_64_bit_code_in_ia32e_mode() -> None:
    assert len(fails(gs.cs_db_64bit, long_mode(GUEST_CS_AR_BYTES=0xE09B))) == 1
    assert fails(gs.cs_db_64bit, long_mode(GUEST_CS_AR_BYTES=0xC09B)) == []
    assert fails(gs.cs_db_64bit, protected_mode(GUEST_CS_AR_BYTES=0xE09B)) == []


def test_fred_ss_dpl() -> None:
    cr4 = 0x1000026E0
    for dpl in range(4):
        for cs in (0xA09B, 0xC09B):
            s = long_mode(GUEST_CR4=cr4, GUEST_SS_AR_BYTES=0xC093 | dpl << 5, GUEST_CS_AR_BYTES=cs | dpl << 5)
            ok = dpl == 3 or (dpl == 0 and cs & gs.AR_L)
            assert (fails(gs.fred_ss_dpl, s) == []) == bool(ok), (dpl, hex(cs))
            assert fails(gs.fred_ss_dpl, long_mode(GUEST_SS_AR_BYTES=0xC093 | dpl << 5, GUEST_CS_AR_BYTES=cs)) == []


# --- selectors and bases ------------------------------------------------------------------------


def test_selector_ti_flags() -> None:
    assert len(fails(gs.tr_sel_ti, protected_mode(GUEST_TR_SELECTOR=0x24))) == 1
    assert len(fails(gs.ldtr_sel_ti, protected_mode(**WITH_LDTR | {"GUEST_LDTR_SELECTOR": 0x2C}))) == 1
    assert fails(gs.ldtr_sel_ti, protected_mode(GUEST_LDTR_SELECTOR=0x2C)) == []  # LDTR unusable


@pytest.mark.parametrize("width, good, bad", [
    (48, (0x00007FFFFFFFFFFF, 0xFFFF800000000000), (0x0000800000000000, 0xFFFF7FFFFFFFFFFF)),
    (57, (0x00FFFFFFFFFFFFFF, 0xFF00000000000000, 0x0000800000000000), (0x0100000000000000, 0xFEFFFFFFFFFFFFFF)),
])
def test_canonical_bases_follow_the_cpu_width(width, good, bad) -> None:
    caps = Capabilities(linear_address_width=width)
    for reg in ("TR", "FS", "GS"):
        for base in good:
            assert fails(gs.base_canonical, long_mode(caps=caps, **{f"GUEST_{reg}_BASE": base})) == [], (reg, hex(base))
        for base in bad:
            out = fails(gs.base_canonical, long_mode(caps=caps, **{f"GUEST_{reg}_BASE": base}))
            assert len(out) == 1, (reg, hex(base))
    assert fails(gs.base_canonical, long_mode(caps=caps, GUEST_LDTR_BASE=bad[0])) == []  # LDTR unusable
    assert len(fails(gs.base_canonical, long_mode(caps=caps, GUEST_LDTR_BASE=bad[0], GUEST_LDTR_AR_BYTES=0x82))) == 1


def test_base_bits_63_32() -> None:
    for n in range(32, 64):
        assert len(fails(gs.base_high_zero, long_mode(GUEST_CS_BASE=1 << n))) == 1, n
        assert len(fails(gs.base_high_zero, long_mode(GUEST_SS_BASE=1 << n))) == 1, n
    assert fails(gs.base_high_zero, long_mode(GUEST_CS_BASE=0xFFFFFFFF, GUEST_DS_BASE=0xFFFFFFFF)) == []
    # unusable SS/DS/ES, and FS/GS/TR/LDTR in general, are not limited to 32 bits here
    high = long_mode(GUEST_SS_AR_BYTES=0x10000, GUEST_SS_BASE=1 << 40, GUEST_FS_BASE=1 << 40)
    assert fails(gs.base_high_zero, high) == []


# --- virtual-8086 mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("reg", gs.SEG_REGS)
def test_v86_each_register_alone(reg: str) -> None:
    sel = gs.virtual_8086_mode().vmcs.given()[f"GUEST_{reg}_SELECTOR"]
    for func, field, value in (
        (gs.v86_base, "BASE", (sel << 4) + 1),
        (gs.v86_limit, "LIMIT", 0xFFFE),
        (gs.v86_limit, "LIMIT", 0x1FFFF),
        (gs.v86_ar, "AR_BYTES", 0xF2),
        (gs.v86_ar, "AR_BYTES", 0x4F3),
    ):
        out = fails(func, gs.virtual_8086_mode(**{f"GUEST_{reg}_{field}": value}))
        assert len(out) == 1 and f"virtual-8086 {reg}" in out[0], (func, field, out)
        # the same values outside virtual-8086 mode are not judged by these rules
        assert fails(func, gs.virtual_8086_mode(GUEST_RFLAGS=0x202, **{f"GUEST_{reg}_{field}": value})) == []


def test_v86_guest_is_exempt_from_the_protected_mode_subfield_checks() -> None:
    # type 3, DPL 3 CS with an RPL-0 SS selector and a DPL-3 SS: fine in virtual-8086 mode
    s = gs.virtual_8086_mode(SECONDARY_VM_EXEC_CONTROL=UG_OFF)
    assert ids(s) == []
    assert "ENTRY_GUEST_SEG_CS_TYPE" in ids(entry(**s.vmcs.given() | {"GUEST_RFLAGS": 0x202}))


def test_all_rule_ids_are_registered_once() -> None:
    assert [r.id for r in RULES] == [rid for rid, r in REGISTRY.items() if r.area == AREA]
