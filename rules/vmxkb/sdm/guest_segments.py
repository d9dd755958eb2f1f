"""Checks on guest segment registers (SDM Vol. 3C "Checks on Guest Segment Registers").

Selectors, bases, limits and access rights of CS, SS, DS, ES, FS, GS, TR and LDTR. A
violation is a VM-entry failure: basic exit reason 33 with bit 31 set (``0x80000021``),
exit qualification 0.

The SDM's terms: the guest *will be virtual-8086* when RFLAGS.VM is 1 in the guest-state
area; it *will be IA-32e mode* when the "IA-32e mode guest" entry control is 1; a register
is *usable* when bit 16 of its access-rights field is 0. Most clauses hold for several
registers: each is one rule that checks every register it names and reports one violation
per register that breaks it, with that register's fields as the proof. A rule over several
registers evaluates each one on its own: a register that breaks the clause is reported even
if another register's fields are missing; the rule passes only when every register it
names could be checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vmxkb.bits import (
    AR_DB,
    AR_DPL_MASK,
    AR_DPL_SHIFT,
    AR_G,
    AR_L,
    AR_P,
    AR_RESERVED_11_8,
    AR_RESERVED_31_17,
    AR_S,
    AR_TYPE_ACCESSED,
    AR_TYPE_CODE,
    AR_TYPE_MASK,
    AR_TYPE_WRITABLE,
    AR_UNUSABLE,
    SEG_TYPE_LDT,
    SEG_TYPE_TSS_BUSY_16,
    SEG_TYPE_TSS_BUSY_32,
    SELECTOR_RPL_MASK,
    SELECTOR_TI,
    X86_CR0_PE,
    X86_CR4_FRED,
    bit,
    bits,
)
from vmxkb.guests import PROTECTED_MODE, long_mode, protected_mode, real_mode
from vmxkb.predicates import canonical, ia32e_mode_guest, unrestricted_guest, unusable, virtual_8086
from vmxkb.registry import Violation, Violations, me, rule, verdict
from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities, EntryState, MissingField, Vmcs, entry

SECTION = "SEC_GUEST_SEGMENTS"

__all__ = ["entry", "verdict", "long_mode", "protected_mode", "real_mode", "virtual_8086_mode", "Capabilities"]

# --- Facts of this section not in vmxkb.bits ------------------------------------------
SEG_REGS = ("CS", "SS", "DS", "ES", "FS", "GS")  #: the code and data segment registers
DATA_REGS = ("DS", "ES", "FS", "GS")
ALL_REGS = (*SEG_REGS, "TR", "LDTR")
V86_SEG_LIMIT = 0xFFFF  #: every code/data limit in virtual-8086 mode
V86_SEG_AR = 0xF3  #: P=1, DPL=3, S=1, type 3; every other bit 0
V86_BASE_SHIFT = 4  #: virtual-8086 base = selector * 16
SEG_BASE_HIGH = bits(63, 32)  #: base bits that must be 0 for CS, SS, DS, ES
LIMIT_LOW = bits(11, 0)  #: must be all ones when G=1
LIMIT_HIGH = bits(31, 20)  #: must be all zeros when G=0
AR_TYPE_CONFORMING = bit(2)  #: type bit 2 of a code segment: conforming
SEG_TYPE_DATA_RW_ACCESSED = 3  #: read/write, accessed, expand-up data
SEG_TYPE_DATA_RW_DOWN_ACCESSED = 7  #: read/write, accessed, expand-down data
CS_CODE_TYPES = frozenset({9, 11, 13, 15})  #: accessed code segments
SS_TYPES = frozenset({SEG_TYPE_DATA_RW_ACCESSED, SEG_TYPE_DATA_RW_DOWN_ACCESSED})
NONCONFORMING_CODE_TYPES = frozenset({9, 11})
CONFORMING_CODE_TYPES = frozenset({13, 15})
DATA_DPL_CHECK_MAX_TYPE = 11  #: types 0-11 (data, non-conforming code) get DPL >= RPL
FRED_SS_DPLS = frozenset({0, 3})  #: the only privilege levels FRED defines


def virtual_8086_mode(caps: Capabilities = DEFAULT_CAPABILITIES, **changes: int) -> EntryState:
    """A complete, valid virtual-8086 guest: :data:`vmxkb.guests.PROTECTED_MODE` with
    RFLAGS.VM=1 and the six code/data registers as virtual-8086 mode requires them
    (base = selector * 16, limit FFFFH, access rights F3H); ``changes`` are applied last."""
    v86: dict[str, int] = {"GUEST_RFLAGS": 0x20202, "GUEST_RIP": 0x100}
    for reg, sel in (("CS", 0x1000), ("SS", 0x2000), ("DS", 0x2000), ("ES", 0x3000), ("FS", 0), ("GS", 0)):
        v86 |= {
            _f(reg, "SELECTOR"): sel,
            _f(reg, "BASE"): sel << V86_BASE_SHIFT,
            _f(reg, "LIMIT"): V86_SEG_LIMIT,
            _f(reg, "AR_BYTES"): V86_SEG_AR,
        }
    return EntryState(Vmcs.from_fields({**PROTECTED_MODE, **v86, **changes}), caps)


# --- Helpers ---------------------------------------------------------------------------


def _f(reg: str, kind: str) -> str:
    """A segment field's kernel name, e.g. ``GUEST_DS_AR_BYTES``."""
    return f"GUEST_{reg}_{kind}"


def _type(ar: int) -> int:
    return ar & AR_TYPE_MASK


def _dpl(ar: int) -> int:
    return (ar & AR_DPL_MASK) >> AR_DPL_SHIFT


def _rpl(selector: int) -> int:
    return selector & SELECTOR_RPL_MASK


def _each(regs: Iterable[str], check: Callable[[str], Iterable[Violation]]) -> Violations:
    """Run ``check`` on every register: the violations found, else *not evaluated* if a
    register's fields were missing, else a pass."""
    found: list[Violation] = []
    missing: list[str] = []
    for reg in regs:
        try:
            found.extend(check(reg))
        except MissingField as m:
            missing.extend(n for n in m.names if n not in missing)
    if found:
        return tuple(found)
    if missing:
        raise MissingField(tuple(missing))
    return ()


def _checked_ar(s: EntryState, reg: str) -> int | None:
    """The access rights of ``reg`` if the per-bit access-rights checks apply to it, else
    None: CS always and SS..GS when usable, both only outside virtual-8086 mode; TR
    always; LDTR when usable."""
    if reg in SEG_REGS and virtual_8086(s):
        return None
    ar = s.need1(_f(reg, "AR_BYTES"))
    if reg in ("CS", "TR") or not unusable(ar):
        return ar
    return None


# --- Selector fields ---------------------------------------------------------------------


@rule("ENTRY_GUEST_SEG_TR_SEL_TI", section=SECTION, phase="guest")
def tr_sel_ti(s: EntryState) -> Violations:
    """The TR selector's TI flag (bit 2) must be 0: the TSS descriptor lives in the GDT.

    Scenario SCN_SEG_TR_SEL_GDT (passes): TR selector 0x40, a GDT selector.

    >>> verdict(tr_sel_ti, long_mode(GUEST_TR_SELECTOR=0x40))
    passes

    Scenario SCN_SEG_TR_SEL_LDT (fails): TR selector 0x44 has TI=1.

    >>> verdict(tr_sel_ti, long_mode(GUEST_TR_SELECTOR=0x44))
    fails ENTRY_GUEST_SEG_TR_SEL_TI: TR selector has TI=1 [GUEST_TR_SELECTOR=0x44]
    """
    sel = s.need1("GUEST_TR_SELECTOR")
    if sel & SELECTOR_TI:
        return (me(tr_sel_ti).violation("TR selector has TI=1", GUEST_TR_SELECTOR=sel),)
    return ()


@rule("ENTRY_GUEST_SEG_LDTR_SEL_TI", section=SECTION, phase="guest")
def ldtr_sel_ti(s: EntryState) -> Violations:
    """If LDTR is usable, its selector's TI flag (bit 2) must be 0. An unusable LDTR's
    selector is not checked.

    Scenario SCN_SEG_LDTR_SEL_TI_UNUSABLE (passes): TI=1 in the selector of an unusable LDTR.

    >>> verdict(ldtr_sel_ti, long_mode(GUEST_LDTR_SELECTOR=0x14, GUEST_LDTR_AR_BYTES=0x10000))
    passes

    Scenario SCN_SEG_LDTR_SEL_TI_USABLE (fails): the same selector with LDTR usable.

    >>> verdict(ldtr_sel_ti, long_mode(GUEST_LDTR_SELECTOR=0x14, GUEST_LDTR_AR_BYTES=0x82))
    fails ENTRY_GUEST_SEG_LDTR_SEL_TI: usable LDTR with TI=1 in its selector
        [GUEST_LDTR_AR_BYTES=0x82, GUEST_LDTR_SELECTOR=0x14]

    Scenario SCN_SEG_LDTR_SEL_TI_GDT (passes): a guest that uses an LDT: LDTR usable, its
    selector 0x28 a GDT selector (TI=0).

    >>> verdict(ldtr_sel_ti, protected_mode(GUEST_LDTR_SELECTOR=0x28, GUEST_LDTR_AR_BYTES=0x82,
    ...     GUEST_LDTR_LIMIT=0xFFF))
    passes
    """
    ar = s.need1("GUEST_LDTR_AR_BYTES")
    if unusable(ar):
        return ()
    sel = s.need1("GUEST_LDTR_SELECTOR")
    if sel & SELECTOR_TI:
        return (
            me(ldtr_sel_ti).violation(
                "usable LDTR with TI=1 in its selector", GUEST_LDTR_AR_BYTES=ar, GUEST_LDTR_SELECTOR=sel
            ),
        )
    return ()


@rule("ENTRY_GUEST_SEG_SS_RPL_CS_RPL", section=SECTION, phase="guest")
def ss_rpl_cs_rpl(s: EntryState) -> Violations:
    """Outside virtual-8086 mode and with "unrestricted guest" 0, the RPL of the SS
    selector must equal the RPL of the CS selector. This holds whether or not SS is
    usable.

    Scenario SCN_SEG_SS_RPL_UG_ON (passes): the RPLs differ, but unrestricted guest is on.

    >>> verdict(ss_rpl_cs_rpl, protected_mode(GUEST_SS_SELECTOR=0x13))
    passes

    Scenario SCN_SEG_SS_RPL_MISMATCH (fails): SS.RPL=3 with CS.RPL=0 and unrestricted guest off.

    >>> verdict(ss_rpl_cs_rpl, protected_mode(GUEST_SS_SELECTOR=0x13, SECONDARY_VM_EXEC_CONTROL=0x76B))
    fails ENTRY_GUEST_SEG_SS_RPL_CS_RPL: SS.RPL=3 but CS.RPL=0 (unrestricted guest off)
        [GUEST_CS_SELECTOR=0x8, GUEST_SS_SELECTOR=0x13]

    Scenario SCN_SEG_SS_RPL_MATCH_UG_OFF (passes): CS and SS selectors both RPL 0 with
    unrestricted guest off: the clause applies and holds.

    >>> verdict(ss_rpl_cs_rpl, protected_mode(SECONDARY_VM_EXEC_CONTROL=0x76B))
    passes

    Scenario SCN_SEG_SS_RPL_V86_PARAGRAPH (passes): real-mode code run in virtual-8086 mode
    without unrestricted guest (how KVM runs real mode on such CPUs) with SS at paragraph
    2003H: a virtual-8086 selector is a paragraph number whose low bits are address bits, so
    its "RPL" is not compared with CS's.

    >>> verdict(ss_rpl_cs_rpl, virtual_8086_mode(SECONDARY_VM_EXEC_CONTROL=0x76B,
    ...     GUEST_SS_SELECTOR=0x2003, GUEST_SS_BASE=0x20030))
    passes
    """
    if virtual_8086(s) or unrestricted_guest(s):
        return ()
    cs, ss = s.need("GUEST_CS_SELECTOR", "GUEST_SS_SELECTOR")
    if _rpl(cs) == _rpl(ss):
        return ()
    return (
        me(ss_rpl_cs_rpl).violation(
            f"SS.RPL={_rpl(ss)} but CS.RPL={_rpl(cs)} (unrestricted guest off)",
            GUEST_CS_SELECTOR=cs,
            GUEST_SS_SELECTOR=ss,
        ),
    )


# --- Base-address fields -----------------------------------------------------------------


@rule("ENTRY_GUEST_SEG_V86_BASE", section=SECTION, phase="guest")
def v86_base(s: EntryState) -> Violations:
    """In virtual-8086 mode, the base of each of CS, SS, DS, ES, FS and GS must be its
    selector shifted left by 4 (selector * 16).

    Scenario SCN_SEG_V86_BASE_OK (passes): a virtual-8086 guest, every base = selector * 16.

    >>> verdict(v86_base, virtual_8086_mode())
    passes

    Scenario SCN_SEG_V86_BASE_STALE (fails): a protected-mode DS base kept on the switch to
    virtual-8086 mode.

    >>> verdict(v86_base, virtual_8086_mode(GUEST_DS_BASE=0x100000))
    fails ENTRY_GUEST_SEG_V86_BASE: virtual-8086 DS base is not selector * 16 (0x20000)
        [GUEST_DS_SELECTOR=0x2000, GUEST_DS_BASE=0x100000]

    Scenario SCN_SEG_V86_BASE_NOT_V86 (passes): a flat protected-mode guest (DS selector
    0x10, base 0): outside virtual-8086 mode a base need not be selector * 16.

    >>> verdict(v86_base, protected_mode())
    passes
    """
    if not virtual_8086(s):
        return ()
    r = me(v86_base)

    def check(reg: str) -> Iterable[Violation]:
        sel, base = s.need(_f(reg, "SELECTOR"), _f(reg, "BASE"))
        want = sel << V86_BASE_SHIFT
        if base != want:
            yield r.violation(
                f"virtual-8086 {reg} base is not selector * 16 ({want:#x})",
                **{_f(reg, "SELECTOR"): sel, _f(reg, "BASE"): base},
            )

    return _each(SEG_REGS, check)


@rule("ENTRY_GUEST_SEG_BASE_CANONICAL", section=SECTION, phase="guest")
def base_canonical(s: EntryState) -> Violations:
    """The bases of TR, FS and GS must be canonical, and so must the base of LDTR if
    LDTR is usable. "Canonical" is relative to the CPU's linear-address width (48 bits,
    57 with 5-level paging), whatever the guest's CR4.LA57. FS and GS are checked even
    when unusable (their bases are loaded anyway).

    Scenario SCN_SEG_BASE_CANONICAL_OK (passes): a kernel GS base in the upper half.

    >>> verdict(base_canonical, long_mode(GUEST_GS_BASE=0xFFFF888000000000))
    passes

    Scenario SCN_SEG_BASE_NONCANONICAL (fails): an unusable FS with a non-canonical base,
    and a usable LDTR with one.

    >>> verdict(base_canonical, long_mode(GUEST_FS_BASE=0x0000800000000000,
    ...     GUEST_LDTR_AR_BYTES=0x82, GUEST_LDTR_BASE=0xFFFF000000000000))
    fails ENTRY_GUEST_SEG_BASE_CANONICAL: FS base is not canonical [GUEST_FS_BASE=0x800000000000]
    fails ENTRY_GUEST_SEG_BASE_CANONICAL: LDTR base is not canonical
        [GUEST_LDTR_AR_BYTES=0x82, GUEST_LDTR_BASE=0xffff000000000000]
    """
    r = me(base_canonical)

    def check(reg: str) -> Iterable[Violation]:
        proof: dict[str, int] = {}
        if reg == "LDTR":
            ar = s.need1("GUEST_LDTR_AR_BYTES")
            if unusable(ar):
                return
            proof["GUEST_LDTR_AR_BYTES"] = ar
        base = s.need1(_f(reg, "BASE"))
        if not canonical(base, s.caps):
            yield r.violation(f"{reg} base is not canonical", **proof, **{_f(reg, "BASE"): base})

    return _each(("TR", "FS", "GS", "LDTR"), check)


@rule("ENTRY_GUEST_SEG_BASE_HIGH_ZERO", section=SECTION, phase="guest")
def base_high_zero(s: EntryState) -> Violations:
    """Bits 63:32 of the CS base must be 0, and so must bits 63:32 of the SS, DS and ES
    bases when the register is usable.

    Scenario SCN_SEG_BASE_HIGH_UNUSABLE (passes): an unusable DS keeps a 64-bit base.

    >>> verdict(base_high_zero, long_mode(GUEST_DS_AR_BYTES=0x10000, GUEST_DS_BASE=0x100000000))
    passes

    Scenario SCN_SEG_BASE_HIGH_CS (fails): a CS base above 4 GiB.

    >>> verdict(base_high_zero, long_mode(GUEST_CS_BASE=0x100000000))
    fails ENTRY_GUEST_SEG_BASE_HIGH_ZERO: CS base has bits 63:32 set [GUEST_CS_BASE=0x100000000]
    """
    r = me(base_high_zero)

    def check(reg: str) -> Iterable[Violation]:
        proof: dict[str, int] = {}
        if reg != "CS":
            ar = s.need1(_f(reg, "AR_BYTES"))
            if unusable(ar):
                return
            proof[_f(reg, "AR_BYTES")] = ar
        base = s.need1(_f(reg, "BASE"))
        if base & SEG_BASE_HIGH:
            yield r.violation(f"{reg} base has bits 63:32 set", **proof, **{_f(reg, "BASE"): base})

    return _each(("CS", "SS", "DS", "ES"), check)


# --- Limit fields -----------------------------------------------------------------------


@rule("ENTRY_GUEST_SEG_V86_LIMIT", section=SECTION, phase="guest")
def v86_limit(s: EntryState) -> Violations:
    """In virtual-8086 mode, the limit of each of CS, SS, DS, ES, FS and GS must be
    0000FFFFH.

    Scenario SCN_SEG_V86_LIMIT_OK (passes): every limit is FFFFH.

    >>> verdict(v86_limit, virtual_8086_mode())
    passes

    Scenario SCN_SEG_V86_LIMIT_FLAT (fails): a flat 4 GiB FS kept in virtual-8086 mode.

    >>> verdict(v86_limit, virtual_8086_mode(GUEST_FS_LIMIT=0xFFFFFFFF))
    fails ENTRY_GUEST_SEG_V86_LIMIT: virtual-8086 FS limit is not 0xffff [GUEST_FS_LIMIT=0xffffffff]

    Scenario SCN_SEG_V86_LIMIT_NOT_V86 (passes): a flat protected-mode guest with 4 GiB
    limits: the FFFFH limit is required in virtual-8086 mode only.

    >>> verdict(v86_limit, protected_mode())
    passes
    """
    if not virtual_8086(s):
        return ()
    r = me(v86_limit)

    def check(reg: str) -> Iterable[Violation]:
        limit = s.need1(_f(reg, "LIMIT"))
        if limit != V86_SEG_LIMIT:
            yield r.violation(f"virtual-8086 {reg} limit is not {V86_SEG_LIMIT:#x}", **{_f(reg, "LIMIT"): limit})

    return _each(SEG_REGS, check)


# --- Access-rights fields: virtual-8086 ----------------------------------------------------


@rule("ENTRY_GUEST_SEG_V86_AR", section=SECTION, phase="guest")
def v86_ar(s: EntryState) -> Violations:
    """In virtual-8086 mode, the access rights of each of CS, SS, DS, ES, FS and GS must
    be exactly 000000F3H: present, DPL 3, code/data, type 3 (read/write, accessed), and
    every other bit 0, the unusable bit included.

    Scenario SCN_SEG_V86_AR_OK (passes): every access-rights field is F3H.

    >>> verdict(v86_ar, virtual_8086_mode())
    passes

    Scenario SCN_SEG_V86_AR_UNUSABLE (fails): an unusable GS in virtual-8086 mode.

    >>> verdict(v86_ar, virtual_8086_mode(GUEST_GS_AR_BYTES=0x10000))
    fails ENTRY_GUEST_SEG_V86_AR: virtual-8086 GS access rights are not 0xf3 [GUEST_GS_AR_BYTES=0x10000]

    Scenario SCN_SEG_V86_AR_NOT_V86 (passes): a protected-mode guest with DPL-0, 32-bit
    access rights (C09BH, C093H): the fixed F3H value is required in virtual-8086 mode only.

    >>> verdict(v86_ar, protected_mode())
    passes
    """
    if not virtual_8086(s):
        return ()
    r = me(v86_ar)

    def check(reg: str) -> Iterable[Violation]:
        ar = s.need1(_f(reg, "AR_BYTES"))
        if ar != V86_SEG_AR:
            yield r.violation(f"virtual-8086 {reg} access rights are not {V86_SEG_AR:#x}", **{_f(reg, "AR_BYTES"): ar})

    return _each(SEG_REGS, check)


# --- Access rights outside virtual-8086 mode: type -----------------------------------------


@rule("ENTRY_GUEST_SEG_CS_TYPE", section=SECTION, phase="guest")
def cs_type(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, the CS type must be an accessed code segment (9, 11, 13
    or 15); with "unrestricted guest" 1, type 3 (read/write accessed data) is allowed too.
    (Editions before unrestricted guest said the same as: type bits 0 and 3 set.)

    Scenario SCN_SEG_CS_TYPE_DATA_UG (passes): real mode under unrestricted guest with a
    type-3 CS (read/write accessed data), which only unrestricted guest allows.

    >>> verdict(cs_type, real_mode(GUEST_CS_AR_BYTES=0x93))
    passes

    Scenario SCN_SEG_CS_TYPE_NOT_ACCESSED (fails): CS type 10 (execute/read, accessed bit clear).

    >>> verdict(cs_type, protected_mode(GUEST_CS_AR_BYTES=0xC09A))
    fails ENTRY_GUEST_SEG_CS_TYPE: CS type 10 is not an accessed code segment [GUEST_CS_AR_BYTES=0xc09a]

    Scenario SCN_SEG_CS_TYPE_CODE (passes): the usual execute/read, accessed CS (type 11).

    >>> verdict(cs_type, protected_mode())
    passes

    Scenario SCN_SEG_CS_TYPE_V86_NO_UG (passes): a virtual-8086 guest without unrestricted
    guest: its CS access rights F3H have type 3, but the type checks apply only outside
    virtual-8086 mode.

    >>> verdict(cs_type, virtual_8086_mode(SECONDARY_VM_EXEC_CONTROL=0x76B))
    passes

    Scenario SCN_SEG_CS_TYPE_DATA_NO_UG (fails): a real-mode style type-3 CS (access rights
    93H kept from real mode) in a protected-mode guest with unrestricted guest off.

    >>> verdict(cs_type, protected_mode(GUEST_CS_AR_BYTES=0xC093, SECONDARY_VM_EXEC_CONTROL=0x76B))
    fails ENTRY_GUEST_SEG_CS_TYPE: CS type 3 needs unrestricted guest [GUEST_CS_AR_BYTES=0xc093]
    """
    if virtual_8086(s):
        return ()
    ar = s.need1("GUEST_CS_AR_BYTES")
    t = _type(ar)
    if t in CS_CODE_TYPES:
        return ()
    r = me(cs_type)
    if t == SEG_TYPE_DATA_RW_ACCESSED:
        if unrestricted_guest(s):
            return ()
        return (r.violation("CS type 3 needs unrestricted guest", GUEST_CS_AR_BYTES=ar),)
    return (r.violation(f"CS type {t} is not an accessed code segment", GUEST_CS_AR_BYTES=ar),)


@rule("ENTRY_GUEST_SEG_SS_TYPE", section=SECTION, phase="guest")
def ss_type(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, a usable SS must have type 3 or 7 (read/write,
    accessed data, expand-up or expand-down).

    Scenario SCN_SEG_SS_TYPE_EXPAND_DOWN (passes): SS type 7.

    >>> verdict(ss_type, protected_mode(GUEST_SS_AR_BYTES=0xC097))
    passes

    Scenario SCN_SEG_SS_TYPE_READ_ONLY (fails): SS type 1 (read-only, accessed).

    >>> verdict(ss_type, protected_mode(GUEST_SS_AR_BYTES=0xC091))
    fails ENTRY_GUEST_SEG_SS_TYPE: usable SS with type 1 (not 3 or 7) [GUEST_SS_AR_BYTES=0xc091]

    Scenario SCN_SEG_SS_TYPE_V86 (passes): a virtual-8086 guest: SS's access rights are
    checked as a whole (ENTRY_GUEST_SEG_V86_AR), not by type.

    >>> verdict(ss_type, virtual_8086_mode())
    passes

    Scenario SCN_SEG_SS_TYPE_NULL_64 (passes): a 64-bit kernel running with a null SS (as
    interrupt delivery through the IDT leaves it at CPL 0) that the VMM marks unusable: its
    type 0 is not checked.

    >>> verdict(ss_type, long_mode(GUEST_SS_SELECTOR=0, GUEST_SS_AR_BYTES=0x10000))
    passes
    """
    if virtual_8086(s):
        return ()
    ar = s.need1("GUEST_SS_AR_BYTES")
    if unusable(ar) or _type(ar) in SS_TYPES:
        return ()
    return (me(ss_type).violation(f"usable SS with type {_type(ar)} (not 3 or 7)", GUEST_SS_AR_BYTES=ar),)


@rule("ENTRY_GUEST_SEG_DATA_ACCESSED", section=SECTION, phase="guest")
def data_accessed(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, each usable DS, ES, FS and GS must have the accessed
    bit (type bit 0) set. Unrestricted guest changes nothing here.

    Scenario SCN_SEG_DATA_ACCESSED_OK (passes): DS type 3.

    >>> verdict(data_accessed, protected_mode(GUEST_DS_AR_BYTES=0xC093))
    passes

    Scenario SCN_SEG_DATA_NOT_ACCESSED (fails): the 2021 core2duo failure (dump 03): DS and
    ES usable with type 2, unrestricted guest off.

    >>> verdict(data_accessed, protected_mode(GUEST_DS_AR_BYTES=0xC0F2, GUEST_ES_AR_BYTES=0xC0F2,
    ...     GUEST_DS_SELECTOR=0xF7, GUEST_ES_SELECTOR=0xF7, SECONDARY_VM_EXEC_CONTROL=0x2C6A))
    fails ENTRY_GUEST_SEG_DATA_ACCESSED: usable DS with type 2: accessed bit clear [GUEST_DS_AR_BYTES=0xc0f2]
    fails ENTRY_GUEST_SEG_DATA_ACCESSED: usable ES with type 2: accessed bit clear [GUEST_ES_AR_BYTES=0xc0f2]

    Scenario SCN_SEG_DATA_ACCESSED_UNUSABLE (passes): the 64-bit guest's FS and GS are
    unusable with access rights 10000H (type 0, accessed bit clear): an unusable register's
    type is not checked.

    >>> verdict(data_accessed, long_mode())
    passes

    Scenario SCN_SEG_DATA_ACCESSED_V86 (passes): a virtual-8086 DS with access rights F2H
    (accessed bit clear): in virtual-8086 mode only ENTRY_GUEST_SEG_V86_AR looks at it.

    >>> verdict(data_accessed, virtual_8086_mode(GUEST_DS_AR_BYTES=0xF2))
    passes
    """
    if virtual_8086(s):
        return ()
    r = me(data_accessed)

    def check(reg: str) -> Iterable[Violation]:
        ar = s.need1(_f(reg, "AR_BYTES"))
        if not unusable(ar) and not ar & AR_TYPE_ACCESSED:
            yield r.violation(f"usable {reg} with type {_type(ar)}: accessed bit clear", **{_f(reg, "AR_BYTES"): ar})

    return _each(DATA_REGS, check)


@rule("ENTRY_GUEST_SEG_DATA_CODE_READABLE", section=SECTION, phase="guest")
def data_code_readable(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, a usable DS, ES, FS or GS that holds a code segment
    (type bit 3 set) must hold a readable one (type bit 1 set).

    Scenario SCN_SEG_DATA_CODE_READABLE (passes): ES loaded with an execute/read code segment.

    >>> verdict(data_code_readable, protected_mode(GUEST_ES_AR_BYTES=0xC09B))
    passes

    Scenario SCN_SEG_DATA_CODE_EXEC_ONLY (fails): FS loaded with an execute-only code segment.

    >>> verdict(data_code_readable, protected_mode(GUEST_FS_AR_BYTES=0xC099))
    fails ENTRY_GUEST_SEG_DATA_CODE_READABLE: usable FS holds execute-only code (type 9)
        [GUEST_FS_AR_BYTES=0xc099]

    Scenario SCN_SEG_DATA_READ_ONLY (passes): DS holds read-only data (type 1): bit 1 means
    "readable" only for code; for data it is the write-enable, which DS does not need.

    >>> verdict(data_code_readable, protected_mode(GUEST_DS_AR_BYTES=0xC091))
    passes

    Scenario SCN_SEG_DATA_CODE_UNUSABLE (passes): an unusable FS that still carries the
    type of an execute-only code segment: an unusable register's type is not checked.

    >>> verdict(data_code_readable, protected_mode(GUEST_FS_AR_BYTES=0x1C099))
    passes

    Scenario SCN_SEG_DATA_CODE_V86 (passes): a virtual-8086 FS with execute-only code access
    rights (F9H): in virtual-8086 mode only ENTRY_GUEST_SEG_V86_AR looks at it.

    >>> verdict(data_code_readable, virtual_8086_mode(GUEST_FS_AR_BYTES=0xF9))
    passes
    """
    if virtual_8086(s):
        return ()
    r = me(data_code_readable)

    def check(reg: str) -> Iterable[Violation]:
        ar = s.need1(_f(reg, "AR_BYTES"))
        if not unusable(ar) and ar & AR_TYPE_CODE and not ar & AR_TYPE_WRITABLE:
            yield r.violation(f"usable {reg} holds execute-only code (type {_type(ar)})", **{_f(reg, "AR_BYTES"): ar})

    return _each(DATA_REGS, check)


# --- Access rights outside virtual-8086 mode: S, DPL, P -------------------------------------


@rule("ENTRY_GUEST_SEG_S_BIT", section=SECTION, phase="guest")
def s_bit(s: EntryState) -> Violations:
    """The descriptor-type bit S (bit 4) must say what the register holds: S=1 (code or
    data) for CS and for each usable SS, DS, ES, FS and GS outside virtual-8086 mode;
    S=0 (system) for TR, and for LDTR when it is usable.

    Scenario SCN_SEG_S_BIT_OK (passes): the 64-bit guest: CS/SS/DS/ES with S=1, TR with S=0.

    >>> verdict(s_bit, long_mode())
    passes

    Scenario SCN_SEG_S_BIT_WRONG (fails): an SS with S=0 and a TR with S=1.

    >>> verdict(s_bit, long_mode(GUEST_SS_AR_BYTES=0xC083, GUEST_TR_AR_BYTES=0x9B))
    fails ENTRY_GUEST_SEG_S_BIT: usable SS has S=0 (must be 1) [GUEST_SS_AR_BYTES=0xc083]
    fails ENTRY_GUEST_SEG_S_BIT: TR has S=1 (must be 0) [GUEST_TR_AR_BYTES=0x9b]
    """
    r = me(s_bit)

    def check(reg: str) -> Iterable[Violation]:
        ar = _checked_ar(s, reg)
        if ar is None:
            return
        want = 1 if reg in SEG_REGS else 0
        got = int(bool(ar & AR_S))
        if got != want:
            what = "usable " if reg not in ("CS", "TR") else ""
            yield r.violation(f"{what}{reg} has S={got} (must be {want})", **{_f(reg, "AR_BYTES"): ar})

    return _each(ALL_REGS, check)


@rule("ENTRY_GUEST_SEG_CS_DPL_DATA_TYPE", section=SECTION, phase="guest")
def cs_dpl_data_type(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, a CS of type 3 (possible only with unrestricted guest)
    must have DPL 0.

    Scenario SCN_SEG_CS_DATA_DPL0 (passes): real mode under unrestricted guest, CS type 3, DPL 0.

    >>> verdict(cs_dpl_data_type, real_mode(GUEST_CS_AR_BYTES=0x93))
    passes

    Scenario SCN_SEG_CS_DATA_DPL3 (fails): the same CS with DPL 3.

    >>> verdict(cs_dpl_data_type, real_mode(GUEST_CS_AR_BYTES=0xF3))
    fails ENTRY_GUEST_SEG_CS_DPL_DATA_TYPE: CS type 3 with DPL 3 (must be 0) [GUEST_CS_AR_BYTES=0xf3]

    Scenario SCN_SEG_CS_DATA_DPL_V86 (passes): a virtual-8086 guest: its CS access rights F3H
    are type 3 with DPL 3, which is correct there, since the clause applies only outside
    virtual-8086 mode.

    >>> verdict(cs_dpl_data_type, virtual_8086_mode())
    passes

    Scenario SCN_SEG_CS_DATA_DPL_RING3_CODE (passes): a ring-3 code segment (type 11, DPL 3):
    only a type-3 CS is held to DPL 0.

    >>> verdict(cs_dpl_data_type, protected_mode(GUEST_CS_SELECTOR=0x1B, GUEST_CS_AR_BYTES=0xC0FB,
    ...     GUEST_SS_SELECTOR=0x23, GUEST_SS_AR_BYTES=0xC0F3))
    passes
    """
    if virtual_8086(s):
        return ()
    ar = s.need1("GUEST_CS_AR_BYTES")
    if _type(ar) != SEG_TYPE_DATA_RW_ACCESSED or _dpl(ar) == 0:
        return ()
    return (me(cs_dpl_data_type).violation(f"CS type 3 with DPL {_dpl(ar)} (must be 0)", GUEST_CS_AR_BYTES=ar),)


@rule("ENTRY_GUEST_SEG_CS_DPL_NONCONFORMING", section=SECTION, phase="guest")
def cs_dpl_nonconforming(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, a non-conforming CS (type 9 or 11) must have the same
    DPL as SS. (Before unrestricted guest, editions compared CS.DPL with CS.RPL instead.)

    Scenario SCN_SEG_CS_NONCONF_SAME (passes): a ring-3 code and stack segment.

    >>> verdict(cs_dpl_nonconforming, protected_mode(GUEST_CS_AR_BYTES=0xC0FB, GUEST_SS_AR_BYTES=0xC0F3))
    passes

    Scenario SCN_SEG_CS_NONCONF_DIFFER (fails): ring-0 code with a ring-3 stack.

    >>> verdict(cs_dpl_nonconforming, protected_mode(GUEST_CS_AR_BYTES=0xC09B, GUEST_SS_AR_BYTES=0xC0F3))
    fails ENTRY_GUEST_SEG_CS_DPL_NONCONFORMING: non-conforming CS with DPL 0 but SS.DPL=3
        [GUEST_CS_AR_BYTES=0xc09b, GUEST_SS_AR_BYTES=0xc0f3]

    Scenario SCN_SEG_CS_NONCONF_V86 (passes): a virtual-8086 guest: CS holds the fixed F3H
    value, to which the DPL comparisons do not apply.

    >>> verdict(cs_dpl_nonconforming, virtual_8086_mode())
    passes

    Scenario SCN_SEG_CS_NONCONF_CONFORMING (passes): a DPL-0 conforming CS running at ring 3:
    CS.DPL differs from SS.DPL, which is allowed for conforming code
    (ENTRY_GUEST_SEG_CS_DPL_CONFORMING decides it).

    >>> verdict(cs_dpl_nonconforming, protected_mode(GUEST_CS_AR_BYTES=0xC09F, GUEST_SS_AR_BYTES=0xC0F3))
    passes
    """
    if virtual_8086(s):
        return ()
    cs = s.need1("GUEST_CS_AR_BYTES")
    if _type(cs) not in NONCONFORMING_CODE_TYPES:
        return ()
    ss = s.need1("GUEST_SS_AR_BYTES")
    if _dpl(cs) == _dpl(ss):
        return ()
    return (
        me(cs_dpl_nonconforming).violation(
            f"non-conforming CS with DPL {_dpl(cs)} but SS.DPL={_dpl(ss)}", GUEST_CS_AR_BYTES=cs, GUEST_SS_AR_BYTES=ss
        ),
    )


@rule("ENTRY_GUEST_SEG_CS_DPL_CONFORMING", section=SECTION, phase="guest")
def cs_dpl_conforming(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, a conforming CS (type 13 or 15) must not have a DPL
    greater than SS.DPL. (Before unrestricted guest, editions compared with CS.RPL.)

    Scenario SCN_SEG_CS_CONF_LOWER (passes): a DPL-0 conforming CS running at ring 3.

    >>> verdict(cs_dpl_conforming, protected_mode(GUEST_CS_AR_BYTES=0xC09F, GUEST_SS_AR_BYTES=0xC0F3))
    passes

    Scenario SCN_SEG_CS_CONF_HIGHER (fails): a DPL-3 conforming CS with a ring-0 stack.

    >>> verdict(cs_dpl_conforming, protected_mode(GUEST_CS_AR_BYTES=0xC0FF, GUEST_SS_AR_BYTES=0xC093))
    fails ENTRY_GUEST_SEG_CS_DPL_CONFORMING: conforming CS with DPL 3 above SS.DPL=0
        [GUEST_CS_AR_BYTES=0xc0ff, GUEST_SS_AR_BYTES=0xc093]

    Scenario SCN_SEG_CS_CONF_V86 (passes): a virtual-8086 guest: CS holds the fixed F3H
    value, to which the DPL comparisons do not apply.

    >>> verdict(cs_dpl_conforming, virtual_8086_mode())
    passes

    Scenario SCN_SEG_CS_CONF_NONCONFORMING (passes): a non-conforming DPL-3 CS with a ring-0
    stack: broken, but for ENTRY_GUEST_SEG_CS_DPL_NONCONFORMING to report; the "not above"
    test is for conforming code only.

    >>> verdict(cs_dpl_conforming, protected_mode(GUEST_CS_AR_BYTES=0xC0FB, GUEST_SS_AR_BYTES=0xC093))
    passes
    """
    if virtual_8086(s):
        return ()
    cs = s.need1("GUEST_CS_AR_BYTES")
    if _type(cs) not in CONFORMING_CODE_TYPES:
        return ()
    ss = s.need1("GUEST_SS_AR_BYTES")
    if _dpl(cs) <= _dpl(ss):
        return ()
    return (
        me(cs_dpl_conforming).violation(
            f"conforming CS with DPL {_dpl(cs)} above SS.DPL={_dpl(ss)}", GUEST_CS_AR_BYTES=cs, GUEST_SS_AR_BYTES=ss
        ),
    )


@rule("ENTRY_GUEST_SEG_SS_DPL_RPL", section=SECTION, phase="guest")
def ss_dpl_rpl(s: EntryState) -> Violations:
    """Outside virtual-8086 mode and with "unrestricted guest" 0, SS.DPL must equal the
    RPL of the SS selector, whether or not SS is usable. (Editions before unrestricted
    guest stated it without the condition.)

    Scenario SCN_SEG_SS_DPL_RPL_UG_ON (passes): SS.DPL=0 with an RPL-3 selector, unrestricted
    guest on.

    >>> verdict(ss_dpl_rpl, protected_mode(GUEST_SS_SELECTOR=0x13))
    passes

    Scenario SCN_SEG_SS_DPL_RPL_MISMATCH (fails): the same with unrestricted guest off.

    >>> verdict(ss_dpl_rpl, protected_mode(GUEST_SS_SELECTOR=0x13, SECONDARY_VM_EXEC_CONTROL=0x76B))
    fails ENTRY_GUEST_SEG_SS_DPL_RPL: SS.DPL=0 but SS.RPL=3 (unrestricted guest off)
        [GUEST_SS_SELECTOR=0x13, GUEST_SS_AR_BYTES=0xc093]

    Scenario SCN_SEG_SS_DPL_RPL_MATCH (passes): SS.DPL=0 with an RPL-0 selector and
    unrestricted guest off: the clause applies and holds.

    >>> verdict(ss_dpl_rpl, protected_mode(SECONDARY_VM_EXEC_CONTROL=0x76B))
    passes

    Scenario SCN_SEG_SS_DPL_RPL_V86 (passes): real-mode code run in virtual-8086 mode without
    unrestricted guest: SS.DPL is 3 while the selector 2000H has RPL 0, which is correct in
    virtual-8086 mode.

    >>> verdict(ss_dpl_rpl, virtual_8086_mode(SECONDARY_VM_EXEC_CONTROL=0x76B))
    passes
    """
    if virtual_8086(s) or unrestricted_guest(s):
        return ()
    sel, ar = s.need("GUEST_SS_SELECTOR", "GUEST_SS_AR_BYTES")
    if _dpl(ar) == _rpl(sel):
        return ()
    return (
        me(ss_dpl_rpl).violation(
            f"SS.DPL={_dpl(ar)} but SS.RPL={_rpl(sel)} (unrestricted guest off)",
            GUEST_SS_SELECTOR=sel,
            GUEST_SS_AR_BYTES=ar,
        ),
    )


@rule("ENTRY_GUEST_SEG_SS_DPL_ZERO", section=SECTION, phase="guest")
def ss_dpl_zero(s: EntryState) -> Violations:
    """Outside virtual-8086 mode, SS.DPL must be 0 if CS has type 3 or if CR0.PE is 0
    (both possible only with unrestricted guest): real mode and the "big real mode"
    states run at CPL 0.

    Scenario SCN_SEG_SS_DPL_ZERO_REAL (passes): real mode under unrestricted guest, SS.DPL=0.

    >>> verdict(ss_dpl_zero, real_mode())
    passes

    Scenario SCN_SEG_SS_DPL_ZERO_REAL_DPL3 (fails): real mode with SS.DPL=3.

    >>> verdict(ss_dpl_zero, real_mode(GUEST_SS_AR_BYTES=0xF3))
    fails ENTRY_GUEST_SEG_SS_DPL_ZERO: SS.DPL=3 with CR0.PE=0 (must be 0)
        [GUEST_CR0=0x30, GUEST_SS_AR_BYTES=0xf3]

    Scenario SCN_SEG_SS_DPL_ZERO_V86 (passes): a virtual-8086 guest: CS type 3 and SS.DPL=3
    (both from the fixed F3H value), which is correct because the clause applies only outside
    virtual-8086 mode.

    >>> verdict(ss_dpl_zero, virtual_8086_mode())
    passes

    Scenario SCN_SEG_SS_DPL_ZERO_RING3 (passes): a ring-3 protected-mode guest (CR0.PE=1, CS
    type 11): SS.DPL=3 is allowed.

    >>> verdict(ss_dpl_zero, protected_mode(GUEST_CS_SELECTOR=0x1B, GUEST_CS_AR_BYTES=0xC0FB,
    ...     GUEST_SS_SELECTOR=0x23, GUEST_SS_AR_BYTES=0xC0F3))
    passes
    """
    if virtual_8086(s):
        return ()
    cs = s.need1("GUEST_CS_AR_BYTES")
    proof: dict[str, int]
    if _type(cs) == SEG_TYPE_DATA_RW_ACCESSED:
        why, proof = "CS type 3", {"GUEST_CS_AR_BYTES": cs}
    else:
        cr0 = s.need1("GUEST_CR0")
        if cr0 & X86_CR0_PE:
            return ()
        why, proof = "CR0.PE=0", {"GUEST_CR0": cr0}
    ss = s.need1("GUEST_SS_AR_BYTES")
    if _dpl(ss) == 0:
        return ()
    return (me(ss_dpl_zero).violation(f"SS.DPL={_dpl(ss)} with {why} (must be 0)", **proof, GUEST_SS_AR_BYTES=ss),)


@rule("ENTRY_GUEST_SEG_DATA_DPL_RPL", section=SECTION, phase="guest")
def data_dpl_rpl(s: EntryState) -> Violations:
    """Outside virtual-8086 mode and with "unrestricted guest" 0, each usable DS, ES, FS
    and GS holding a data or non-conforming code segment (type 0-11) must have DPL >= the
    RPL of its selector. Conforming code (types 12-15) is exempt.

    Scenario SCN_SEG_DATA_DPL_CONFORMING (passes): GS holds conforming code with DPL 0 and an
    RPL-3 selector, unrestricted guest off.

    >>> verdict(data_dpl_rpl, protected_mode(GUEST_GS_SELECTOR=0x13, GUEST_GS_AR_BYTES=0xC09F,
    ...     SECONDARY_VM_EXEC_CONTROL=0x76B))
    passes

    Scenario SCN_SEG_DATA_DPL_BELOW_RPL (fails): a DPL-0 data segment with an RPL-3 selector in DS.

    >>> verdict(data_dpl_rpl, protected_mode(GUEST_DS_SELECTOR=0x13, SECONDARY_VM_EXEC_CONTROL=0x76B))
    fails ENTRY_GUEST_SEG_DATA_DPL_RPL: usable DS with DPL 0 below its RPL 3 (unrestricted guest off)
        [GUEST_DS_SELECTOR=0x13, GUEST_DS_AR_BYTES=0xc093]

    Scenario SCN_SEG_DATA_DPL_UG_ON (passes): the DPL-0 DS with an RPL-3 selector, but
    unrestricted guest on, which lifts the clause.

    >>> verdict(data_dpl_rpl, protected_mode(GUEST_DS_SELECTOR=0x13))
    passes

    Scenario SCN_SEG_DATA_DPL_NULL_UNUSABLE (passes): unrestricted guest off, GS loaded with
    the null selector 3 and marked unusable: an unusable register's DPL is not compared.

    >>> verdict(data_dpl_rpl, protected_mode(GUEST_GS_SELECTOR=0x3, GUEST_GS_AR_BYTES=0x10000,
    ...     SECONDARY_VM_EXEC_CONTROL=0x76B))
    passes

    Scenario SCN_SEG_DATA_DPL_V86 (passes): virtual-8086 mode without unrestricted guest, DS
    at paragraph B803H (RPL bits 3) with access rights left at a DPL-0 value: only
    ENTRY_GUEST_SEG_V86_AR judges access rights in virtual-8086 mode.

    >>> verdict(data_dpl_rpl, virtual_8086_mode(SECONDARY_VM_EXEC_CONTROL=0x76B,
    ...     GUEST_DS_SELECTOR=0xB803, GUEST_DS_BASE=0xB8030, GUEST_DS_AR_BYTES=0xC093))
    passes
    """
    if virtual_8086(s) or unrestricted_guest(s):
        return ()
    r = me(data_dpl_rpl)

    def check(reg: str) -> Iterable[Violation]:
        ar = s.need1(_f(reg, "AR_BYTES"))
        if unusable(ar) or _type(ar) > DATA_DPL_CHECK_MAX_TYPE:
            return
        sel = s.need1(_f(reg, "SELECTOR"))
        if _dpl(ar) < _rpl(sel):
            yield r.violation(
                f"usable {reg} with DPL {_dpl(ar)} below its RPL {_rpl(sel)} (unrestricted guest off)",
                **{_f(reg, "SELECTOR"): sel, _f(reg, "AR_BYTES"): ar},
            )

    return _each(DATA_REGS, check)


@rule("ENTRY_GUEST_SEG_P_BIT", section=SECTION, phase="guest")
def p_bit(s: EntryState) -> Violations:
    """The present bit P (bit 7) must be 1 for CS and each usable SS, DS, ES, FS and GS
    (outside virtual-8086 mode), for TR, and for LDTR when it is usable.

    Scenario SCN_SEG_P_BIT_UNUSABLE (passes): an unusable FS with P=0.

    >>> verdict(p_bit, protected_mode(GUEST_FS_AR_BYTES=0x10000))
    passes

    Scenario SCN_SEG_P_BIT_CLEAR (fails): a usable ES and TR marked not present.

    >>> verdict(p_bit, protected_mode(GUEST_ES_AR_BYTES=0xC013, GUEST_TR_AR_BYTES=0x0B))
    fails ENTRY_GUEST_SEG_P_BIT: usable ES is not present (P=0) [GUEST_ES_AR_BYTES=0xc013]
    fails ENTRY_GUEST_SEG_P_BIT: TR is not present (P=0) [GUEST_TR_AR_BYTES=0xb]
    """
    r = me(p_bit)

    def check(reg: str) -> Iterable[Violation]:
        ar = _checked_ar(s, reg)
        if ar is not None and not ar & AR_P:
            what = "usable " if reg not in ("CS", "TR") else ""
            yield r.violation(f"{what}{reg} is not present (P=0)", **{_f(reg, "AR_BYTES"): ar})

    return _each(ALL_REGS, check)


@rule("ENTRY_GUEST_SEG_AR_RESERVED_11_8", section=SECTION, phase="guest")
def ar_reserved_11_8(s: EntryState) -> Violations:
    """Access-rights bits 11:8 are reserved and must be 0 for CS and each usable SS, DS,
    ES, FS and GS (outside virtual-8086 mode), for TR, and for LDTR when it is usable.

    Scenario SCN_SEG_AR_RSVD_LOW_UNUSABLE (passes): an unusable DS with bit 8 set.

    >>> verdict(ar_reserved_11_8, protected_mode(GUEST_DS_AR_BYTES=0x10100))
    passes

    Scenario SCN_SEG_AR_RSVD_LOW_SET (fails): CS with bit 8 set, as a descriptor's limit
    nibble copied into the access rights would leave it.

    >>> verdict(ar_reserved_11_8, protected_mode(GUEST_CS_AR_BYTES=0xCF9B))
    fails ENTRY_GUEST_SEG_AR_RESERVED_11_8: CS access rights have reserved bits 11:8 set
        [GUEST_CS_AR_BYTES=0xcf9b]
    """
    r = me(ar_reserved_11_8)

    def check(reg: str) -> Iterable[Violation]:
        ar = _checked_ar(s, reg)
        if ar is not None and ar & AR_RESERVED_11_8:
            yield r.violation(f"{reg} access rights have reserved bits 11:8 set", **{_f(reg, "AR_BYTES"): ar})

    return _each(ALL_REGS, check)


@rule("ENTRY_GUEST_SEG_CS_DB_64BIT", section=SECTION, phase="guest")
def cs_db_64bit(s: EntryState) -> Violations:
    """With the "IA-32e mode guest" entry control 1 (and outside virtual-8086 mode), a CS
    with L=1 (64-bit code) must have D/B=0.

    Scenario SCN_SEG_CS_DB_COMPAT (passes): a 32-bit compatibility-mode CS (L=0, D=1).

    >>> verdict(cs_db_64bit, long_mode(GUEST_CS_AR_BYTES=0xC09B))
    passes

    Scenario SCN_SEG_CS_DB_AND_L (fails): L=1 and D/B=1 together.

    >>> verdict(cs_db_64bit, long_mode(GUEST_CS_AR_BYTES=0xE09B))
    fails ENTRY_GUEST_SEG_CS_DB_64BIT: CS has L=1 and D/B=1 in an IA-32e mode guest
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_CS_AR_BYTES=0xe09b]

    Scenario SCN_SEG_CS_DB_64BIT_OK (passes): the 64-bit kernel's CS: L=1, D/B=0.

    >>> verdict(cs_db_64bit, long_mode())
    passes

    Scenario SCN_SEG_CS_DB_LEGACY (passes): L=1 and D/B=1 in a 32-bit guest (IA-32e mode
    guest 0), where L has no meaning and is not checked.

    >>> verdict(cs_db_64bit, protected_mode(GUEST_CS_AR_BYTES=0xE09B))
    passes

    Scenario SCN_SEG_CS_DB_V86 (passes): RFLAGS.VM=1 in an IA-32e mode guest (which
    ENTRY_GUEST_RFLAGS_VM_FORBIDDEN rejects) with L=D/B=1: CS's sub-fields are checked only
    outside virtual-8086 mode, so this clause does not apply.

    >>> verdict(cs_db_64bit, long_mode(GUEST_RFLAGS=0x20202, GUEST_CS_AR_BYTES=0xE09B))
    passes
    """
    if not ia32e_mode_guest(s) or virtual_8086(s):
        return ()
    ctl, ar = s.need("VM_ENTRY_CONTROLS", "GUEST_CS_AR_BYTES")
    if ar & AR_L and ar & AR_DB:
        return (
            me(cs_db_64bit).violation(
                "CS has L=1 and D/B=1 in an IA-32e mode guest", VM_ENTRY_CONTROLS=ctl, GUEST_CS_AR_BYTES=ar
            ),
        )
    return ()


@rule("ENTRY_GUEST_SEG_LIMIT_G_SET", section=SECTION, phase="guest")
def limit_g_set(s: EntryState) -> Violations:
    """If any of limit bits 11:0 is 0, G (bit 15) must be 0: a page-granular limit always
    ends in FFFH. Checked for CS and each usable SS, DS, ES, FS and GS (outside
    virtual-8086 mode), for TR, and for LDTR when it is usable.

    Scenario SCN_SEG_LIMIT_G_SET_FFF (passes): G=1 with limit FFFFFFFFH.

    >>> verdict(limit_g_set, protected_mode())
    passes

    Scenario SCN_SEG_LIMIT_G_SET_MISSCALED (fails): G=1 with limit FFFFF000H: the descriptor's
    20-bit limit shifted left by 12 without filling in the low 12 bits.

    >>> verdict(limit_g_set, protected_mode(GUEST_DS_LIMIT=0xFFFFF000))
    fails ENTRY_GUEST_SEG_LIMIT_G_SET: DS has G=1 but limit bits 11:0 are not all 1
        [GUEST_DS_LIMIT=0xfffff000, GUEST_DS_AR_BYTES=0xc093]
    """
    r = me(limit_g_set)

    def check(reg: str) -> Iterable[Violation]:
        ar = _checked_ar(s, reg)
        if ar is None or not ar & AR_G:
            return
        limit = s.need1(_f(reg, "LIMIT"))
        if limit & LIMIT_LOW != LIMIT_LOW:
            yield r.violation(
                f"{reg} has G=1 but limit bits 11:0 are not all 1",
                **{_f(reg, "LIMIT"): limit, _f(reg, "AR_BYTES"): ar},
            )

    return _each(ALL_REGS, check)


@rule("ENTRY_GUEST_SEG_LIMIT_G_CLEAR", section=SECTION, phase="guest")
def limit_g_clear(s: EntryState) -> Violations:
    """If any of limit bits 31:20 is 1, G must be 1: a byte-granular limit fits in 20
    bits. Checked for the same registers as the G=1 clause.

    Scenario SCN_SEG_LIMIT_G_CLEAR_1MB (passes): G=0 with limit FFFFFH, the largest byte-granular one.

    >>> verdict(limit_g_clear, protected_mode(GUEST_FS_LIMIT=0xFFFFF, GUEST_FS_AR_BYTES=0x4093))
    passes

    Scenario SCN_SEG_LIMIT_G_CLEAR_BIG (fails): TR with G=0 and limit 100000H.

    >>> verdict(limit_g_clear, protected_mode(GUEST_TR_LIMIT=0x100000))
    fails ENTRY_GUEST_SEG_LIMIT_G_CLEAR: TR has G=0 but limit bits 31:20 are not all 0
        [GUEST_TR_LIMIT=0x100000, GUEST_TR_AR_BYTES=0x8b]
    """
    r = me(limit_g_clear)

    def check(reg: str) -> Iterable[Violation]:
        ar = _checked_ar(s, reg)
        if ar is None or ar & AR_G:
            return
        limit = s.need1(_f(reg, "LIMIT"))
        if limit & LIMIT_HIGH:
            yield r.violation(
                f"{reg} has G=0 but limit bits 31:20 are not all 0",
                **{_f(reg, "LIMIT"): limit, _f(reg, "AR_BYTES"): ar},
            )

    return _each(ALL_REGS, check)


@rule("ENTRY_GUEST_SEG_AR_RESERVED_31_17", section=SECTION, phase="guest")
def ar_reserved_31_17(s: EntryState) -> Violations:
    """Access-rights bits 31:17 are reserved and must be 0 for CS and each usable SS,
    DS, ES, FS and GS (outside virtual-8086 mode), for TR, and for LDTR when it is usable.

    Scenario SCN_SEG_AR_RSVD_HIGH_UNUSABLE (passes): an unusable LDTR with bit 17 set.

    >>> verdict(ar_reserved_31_17, long_mode(GUEST_LDTR_AR_BYTES=0x30000))
    passes

    Scenario SCN_SEG_AR_RSVD_HIGH_SET (fails): a usable SS with bit 17 set.

    >>> verdict(ar_reserved_31_17, long_mode(GUEST_SS_AR_BYTES=0x2C093))
    fails ENTRY_GUEST_SEG_AR_RESERVED_31_17: SS access rights have reserved bits 31:17 set
        [GUEST_SS_AR_BYTES=0x2c093]
    """
    r = me(ar_reserved_31_17)

    def check(reg: str) -> Iterable[Violation]:
        ar = _checked_ar(s, reg)
        if ar is not None and ar & AR_RESERVED_31_17:
            yield r.violation(f"{reg} access rights have reserved bits 31:17 set", **{_f(reg, "AR_BYTES"): ar})

    return _each(ALL_REGS, check)


# --- Access rights: TR and LDTR ------------------------------------------------------------


@rule("ENTRY_GUEST_SEG_TR_TYPE", section=SECTION, phase="guest")
def tr_type(s: EntryState) -> Violations:
    """TR must hold a busy TSS: type 11 (busy 32-bit TSS, or busy 64-bit TSS in an IA-32e
    mode guest), or type 3 (busy 16-bit TSS), which is allowed only when the guest will
    not be IA-32e mode.

    Scenario SCN_SEG_TR_TYPE_16BIT (passes): a busy 16-bit TSS in a 32-bit guest.

    >>> verdict(tr_type, protected_mode(GUEST_TR_AR_BYTES=0x83))
    passes

    Scenario SCN_SEG_TR_TYPE_AVAILABLE (fails): an available (not busy) 64-bit TSS, type 9.

    >>> verdict(tr_type, long_mode(GUEST_TR_AR_BYTES=0x89))
    fails ENTRY_GUEST_SEG_TR_TYPE: TR type 9 is not a busy TSS [GUEST_TR_AR_BYTES=0x89]

    Scenario SCN_SEG_TR_TYPE_BUSY_64 (passes): the 64-bit guest's TR, a busy 64-bit TSS
    (type 11).

    >>> verdict(tr_type, long_mode())
    passes

    Scenario SCN_SEG_TR_TYPE_16BIT_LONG (fails): a busy 16-bit TSS in an IA-32e mode guest,
    which has no 16-bit tasks.

    >>> verdict(tr_type, long_mode(GUEST_TR_AR_BYTES=0x83))
    fails ENTRY_GUEST_SEG_TR_TYPE: TR type 3 (16-bit TSS) in an IA-32e mode guest
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_TR_AR_BYTES=0x83]
    """
    ar = s.need1("GUEST_TR_AR_BYTES")
    t = _type(ar)
    if t == SEG_TYPE_TSS_BUSY_32:
        return ()
    r = me(tr_type)
    if t == SEG_TYPE_TSS_BUSY_16:
        if not ia32e_mode_guest(s):
            return ()
        ctl = s.need1("VM_ENTRY_CONTROLS")
        return (
            r.violation(
                "TR type 3 (16-bit TSS) in an IA-32e mode guest", VM_ENTRY_CONTROLS=ctl, GUEST_TR_AR_BYTES=ar
            ),
        )
    return (r.violation(f"TR type {t} is not a busy TSS", GUEST_TR_AR_BYTES=ar),)


@rule("ENTRY_GUEST_SEG_TR_USABLE", section=SECTION, phase="guest")
def tr_usable(s: EntryState) -> Violations:
    """TR must be usable: its unusable bit (16) must be 0.

    Scenario SCN_SEG_TR_USABLE (passes): the 64-bit guest's TR.

    >>> verdict(tr_usable, long_mode())
    passes

    Scenario SCN_SEG_TR_UNUSABLE (fails): a busy 64-bit TSS with the unusable bit set.

    >>> verdict(tr_usable, long_mode(GUEST_TR_AR_BYTES=0x1008B))
    fails ENTRY_GUEST_SEG_TR_USABLE: TR is marked unusable [GUEST_TR_AR_BYTES=0x1008b]
    """
    ar = s.need1("GUEST_TR_AR_BYTES")
    if ar & AR_UNUSABLE:
        return (me(tr_usable).violation("TR is marked unusable", GUEST_TR_AR_BYTES=ar),)
    return ()


@rule("ENTRY_GUEST_SEG_LDTR_TYPE", section=SECTION, phase="guest")
def ldtr_type(s: EntryState) -> Violations:
    """If LDTR is usable, its type must be 2 (LDT).

    Scenario SCN_SEG_LDTR_TYPE_LDT (passes): a usable LDTR of type 2.

    >>> verdict(ldtr_type, protected_mode(GUEST_LDTR_AR_BYTES=0x82, GUEST_LDTR_SELECTOR=0x28,
    ...     GUEST_LDTR_LIMIT=0xFFF))
    passes

    Scenario SCN_SEG_LDTR_TYPE_TSS (fails): a usable LDTR holding a TSS type.

    >>> verdict(ldtr_type, protected_mode(GUEST_LDTR_AR_BYTES=0x8B))
    fails ENTRY_GUEST_SEG_LDTR_TYPE: usable LDTR with type 11 (must be 2) [GUEST_LDTR_AR_BYTES=0x8b]

    Scenario SCN_SEG_LDTR_TYPE_UNUSABLE (passes): the 64-bit guest's unusable LDTR, access
    rights 10000H (type 0): an unusable LDTR's type is not checked.

    >>> verdict(ldtr_type, long_mode())
    passes
    """
    ar = s.need1("GUEST_LDTR_AR_BYTES")
    if unusable(ar) or _type(ar) == SEG_TYPE_LDT:
        return ()
    return (me(ldtr_type).violation(f"usable LDTR with type {_type(ar)} (must be 2)", GUEST_LDTR_AR_BYTES=ar),)


# --- FRED -------------------------------------------------------------------------------------


@rule("ENTRY_GUEST_SEG_FRED_SS_DPL", section=SECTION, phase="guest")
def fred_ss_dpl(s: EntryState) -> Violations:
    """With CR4.FRED=1 in the guest CR4 field, SS.DPL (the CPL) must be 0 or 3, and if it
    is 0, CS.L must be 1 (FRED runs ring 0 only in 64-bit mode). The FRED-era checks on
    RFLAGS.IOPL and STI blocking at CPL 3 belong to other sections.

    Scenario SCN_SEG_FRED_RING0_64 (passes): a FRED kernel at CPL 0 in 64-bit code.

    >>> verdict(fred_ss_dpl, long_mode(GUEST_CR4=0x1000026E0))
    passes

    Scenario SCN_SEG_FRED_RING0_COMPAT (fails): FRED at CPL 0 in compatibility mode.

    >>> verdict(fred_ss_dpl, long_mode(GUEST_CR4=0x1000026E0, GUEST_CS_AR_BYTES=0xC09B))
    fails ENTRY_GUEST_SEG_FRED_SS_DPL: CR4.FRED=1 at SS.DPL=0 with CS.L=0
        [GUEST_CR4=0x1000026e0, GUEST_SS_AR_BYTES=0xc093, GUEST_CS_AR_BYTES=0xc09b]

    Scenario SCN_SEG_FRED_OFF_LEGACY (passes): a 32-bit guest at CPL 0 (CS.L=0) without
    CR4.FRED: the FRED constraints do not apply.

    >>> verdict(fred_ss_dpl, protected_mode())
    passes

    Scenario SCN_SEG_FRED_RING3_COMPAT (passes): a 32-bit user process (CPL 3, CS.L=0) under
    a FRED kernel: CS.L is required only at CPL 0.

    >>> verdict(fred_ss_dpl, long_mode(GUEST_CR4=0x1000026E0, GUEST_CS_SELECTOR=0x23,
    ...     GUEST_CS_AR_BYTES=0xC0FB, GUEST_SS_SELECTOR=0x2B, GUEST_SS_AR_BYTES=0xC0F3))
    passes

    Scenario SCN_SEG_FRED_RING1 (fails): FRED with SS.DPL=1, a privilege level FRED does not
    have.

    >>> verdict(fred_ss_dpl, long_mode(GUEST_CR4=0x1000026E0, GUEST_SS_SELECTOR=0x19,
    ...     GUEST_SS_AR_BYTES=0xC0B3))
    fails ENTRY_GUEST_SEG_FRED_SS_DPL: CR4.FRED=1 with SS.DPL=1 (must be 0 or 3)
        [GUEST_CR4=0x1000026e0, GUEST_SS_AR_BYTES=0xc0b3]
    """
    cr4 = s.need1("GUEST_CR4")
    if not cr4 & X86_CR4_FRED:
        return ()
    ss = s.need1("GUEST_SS_AR_BYTES")
    r = me(fred_ss_dpl)
    if _dpl(ss) not in FRED_SS_DPLS:
        return (
            r.violation(f"CR4.FRED=1 with SS.DPL={_dpl(ss)} (must be 0 or 3)", GUEST_CR4=cr4, GUEST_SS_AR_BYTES=ss),
        )
    if _dpl(ss) != 0:
        return ()
    cs = s.need1("GUEST_CS_AR_BYTES")
    if cs & AR_L:
        return ()
    return (
        r.violation(
            "CR4.FRED=1 at SS.DPL=0 with CS.L=0", GUEST_CR4=cr4, GUEST_SS_AR_BYTES=ss, GUEST_CS_AR_BYTES=cs
        ),
    )
