"""Checks on guest RIP, RFLAGS and SSP (SDM Vol. 3C).

RIP, RFLAGS and, with CET, SSP (SDM "Checks on Guest RIP, RFLAGS, and SSP"; before CET
the section was "Checks on Guest RIP and RFLAGS").

A violation is a VM-entry failure: exit reason 33 with bit 31 set (``0x80000021``),
exit qualification 0. "64-bit mode" below means: the "IA-32e mode guest" VM-entry
control is 1 and CS.L (bit 13 of the CS access rights) is 1.
"""

from __future__ import annotations

from vmxkb.bits import (
    AR_L,
    INTR_TYPE_EXT_INTR,
    RFLAGS_FIXED1,
    RFLAGS_IF,
    RFLAGS_VM,
    VM_ENTRY_LOAD_CET_STATE,
    X86_CR0_PE,
    bit,
    bits,
    intr_info_type,
    intr_info_valid,
    make_intr_info,
)
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.predicates import ia32e_mode_guest
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState, entry

SECTION = "SEC_GUEST_RIP_RFLAGS"

__all__ = ["entry", "verdict", "long_mode", "protected_mode", "real_mode", "Capabilities", "make_intr_info"]

#: RFLAGS bits that must be 0 in the field: 63:22, 15, 5 and 3.
RFLAGS_RESERVED = bits(63, 22) | bit(15) | bit(5) | bit(3)
#: The upper half of a 64-bit field (RIP outside 64-bit mode).
HIGH_HALF = bits(63, 32)
#: SSP bits 1:0 (the shadow-stack pointer is at least 4-byte aligned).
SSP_LOW_BITS = bits(1, 0)


def _sixty_four_bit(s: EntryState) -> bool:
    """The guest will run 64-bit code: "IA-32e mode guest" = 1 and CS.L = 1."""
    return ia32e_mode_guest(s) and bool(s.need1("GUEST_CS_AR_BYTES") & AR_L)


def _upper_identical(value: int, n: int) -> bool:
    """Bits 63:n of a 64-bit value are all 0 or all 1 (n = 64: nothing to check)."""
    if n >= 64:
        return True
    return value >> n in (0, bits(63 - n, 0))


# --- RIP ---------------------------------------------------------------------------------


@rule("ENTRY_GUEST_RIP_HIGH_ZERO_OUTSIDE_64BIT", section=SECTION, phase="guest")
def rip_high_zero_outside_64bit(s: EntryState) -> Violations:
    """Unless the guest will run 64-bit code ("IA-32e mode guest" = 1 and CS.L = 1),
    bits 63:32 of the RIP field must be 0. This covers compatibility mode (IA-32e mode,
    CS.L = 0) as well as every non-IA-32e guest.

    Scenario SCN_RIP_32BIT_TOP (passes): a 32-bit guest at the top of its 4-GByte space.

    >>> verdict(rip_high_zero_outside_64bit, protected_mode(GUEST_RIP=0xFFFFFFF0))
    passes

    Scenario SCN_RIP_COMPAT_MODE_HIGH (fails): a 64-bit kernel RIP left in the field
    while CS describes a compatibility-mode segment (L = 0), as after a VMM loads a
    32-bit CS without truncating RIP.

    >>> verdict(rip_high_zero_outside_64bit, long_mode(GUEST_CS_AR_BYTES=0xC09B))
    fails ENTRY_GUEST_RIP_HIGH_ZERO_OUTSIDE_64BIT: RIP bits 63:32 set outside 64-bit mode
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_CS_AR_BYTES=0xc09b, GUEST_RIP=0xffffffff81000000]

    Scenario SCN_RIP_64BIT_KERNEL (passes): the same kernel RIP with a 64-bit CS (L = 1):
    in 64-bit mode the upper half may be set.

    >>> verdict(rip_high_zero_outside_64bit, long_mode())
    passes
    """
    proof = {"VM_ENTRY_CONTROLS": s.need1("VM_ENTRY_CONTROLS")}
    if ia32e_mode_guest(s):
        proof["GUEST_CS_AR_BYTES"] = cs_ar = s.need1("GUEST_CS_AR_BYTES")
        if cs_ar & AR_L:
            return ()
    rip = s.need1("GUEST_RIP")
    if not rip & HIGH_HALF:
        return ()
    return (me(rip_high_zero_outside_64bit).violation("RIP bits 63:32 set outside 64-bit mode", **proof, GUEST_RIP=rip),)


@rule("ENTRY_GUEST_RIP_UPPER_BITS_IDENTICAL", section=SECTION, phase="guest")
def rip_upper_bits_identical(s: EntryState) -> Violations:
    """When the guest will run 64-bit code, bits 63:N of RIP must be identical, N being
    the CPU's linear-address width (48, or 57 with 5-level paging). This is one bit
    looser than "canonical" (bits 63:N-1): with N = 48, RIP 0x0000_8000_0000_0000
    passes the VM-entry check; its first instruction fetch then faults in the guest.

    Scenario SCN_RIP_KERNEL_TEXT (passes): the long-mode guest's kernel-text RIP.

    >>> verdict(rip_upper_bits_identical, long_mode(GUEST_RIP=0xFFFFFFFF81000000))
    passes

    Scenario SCN_RIP_BIT47_ONLY (passes): bit 47 alone set is not canonical, but bits
    63:48 are identical, which is all VM entry checks.

    >>> verdict(rip_upper_bits_identical, long_mode(GUEST_RIP=0x0000800000000000))
    passes

    Scenario SCN_RIP_UPPER_MIXED (fails): bits 63:48 are neither all 0 nor all 1.

    >>> verdict(rip_upper_bits_identical, long_mode(GUEST_RIP=0x00FF800000000000))
    fails ENTRY_GUEST_RIP_UPPER_BITS_IDENTICAL: RIP bits 63:48 are not all equal
        [GUEST_CS_AR_BYTES=0xa09b, GUEST_RIP=0xff800000000000]

    Scenario SCN_RIP_COMPAT_MODE_USER (passes): a 32-bit program under a 64-bit kernel
    (IA-32e mode, CS.L = 0): outside 64-bit mode this check does not apply (the RIP bits
    63:32 check does).

    >>> verdict(rip_upper_bits_identical, long_mode(GUEST_CS_AR_BYTES=0xC09B, GUEST_RIP=0x08048000))
    passes
    """
    if not _sixty_four_bit(s):
        return ()
    cs_ar, rip = s.need("GUEST_CS_AR_BYTES", "GUEST_RIP")
    n = s.caps.linear_address_width
    if _upper_identical(rip, n):
        return ()
    return (
        me(rip_upper_bits_identical).violation(
            f"RIP bits 63:{n} are not all equal", GUEST_CS_AR_BYTES=cs_ar, GUEST_RIP=rip
        ),
    )


# --- RFLAGS ------------------------------------------------------------------------------


@rule("ENTRY_GUEST_RFLAGS_RESERVED_ZERO", section=SECTION, phase="guest")
def rflags_reserved_zero(s: EntryState) -> Violations:
    """The reserved RFLAGS bits 63:22, 15, 5 and 3 must be 0 in the field.

    Scenario SCN_RFLAGS_ALL_DEFINED (passes): every defined flag set (ID, VIP, VIF, AC,
    VM, RF, NT, IOPL, OF, DF, IF, TF, SF, ZF, AF, PF, CF) in a 32-bit guest.

    >>> verdict(rflags_reserved_zero, protected_mode(GUEST_RFLAGS=0x3F7FD7))
    passes

    Scenario SCN_RFLAGS_BIT15 (fails): reserved bit 15 set.

    >>> verdict(rflags_reserved_zero, long_mode(GUEST_RFLAGS=0x8202))
    fails ENTRY_GUEST_RFLAGS_RESERVED_ZERO: reserved RFLAGS bits 0x8000 set [GUEST_RFLAGS=0x8202]
    """
    rflags = s.need1("GUEST_RFLAGS")
    if not rflags & RFLAGS_RESERVED:
        return ()
    return (
        me(rflags_reserved_zero).violation(
            f"reserved RFLAGS bits {rflags & RFLAGS_RESERVED:#x} set", GUEST_RFLAGS=rflags
        ),
    )


@rule("ENTRY_GUEST_RFLAGS_FIXED1_SET", section=SECTION, phase="guest")
def rflags_fixed1_set(s: EntryState) -> Violations:
    """RFLAGS bit 1, reserved and always read as 1, must be 1 in the field.

    Scenario SCN_RFLAGS_RESET_VALUE (passes): 0x2, the value after RESET/INIT.

    >>> verdict(rflags_fixed1_set, real_mode(GUEST_RFLAGS=0x2))
    passes

    Scenario SCN_RFLAGS_ZERO (fails): an all-zero RFLAGS, as a VMM that never filled
    the field (or restored it from a zeroed save area) would enter with.

    >>> verdict(rflags_fixed1_set, real_mode(GUEST_RFLAGS=0))
    fails ENTRY_GUEST_RFLAGS_FIXED1_SET: RFLAGS bit 1 is 0 [GUEST_RFLAGS=0x0]
    """
    rflags = s.need1("GUEST_RFLAGS")
    if rflags & RFLAGS_FIXED1:
        return ()
    return (me(rflags_fixed1_set).violation("RFLAGS bit 1 is 0", GUEST_RFLAGS=rflags),)


@rule("ENTRY_GUEST_RFLAGS_VM_FORBIDDEN", section=SECTION, phase="guest")
def rflags_vm_forbidden(s: EntryState) -> Violations:
    """RFLAGS.VM (bit 17) must be 0 if the "IA-32e mode guest" control is 1 or if CR0.PE
    is 0 in the CR0 field: virtual-8086 mode exists only inside legacy protected mode.
    (CR0.PE = 0 is possible only with "unrestricted guest"; the oldest editions, which
    predate it, state the IA-32e half only.)

    Scenario SCN_RFLAGS_VM86_PROTECTED (passes): virtual-8086 mode in a 32-bit
    protected-mode guest.

    >>> verdict(rflags_vm_forbidden, protected_mode(GUEST_RFLAGS=0x20202))
    passes

    Scenario SCN_RFLAGS_VM86_REAL (fails): VM=1 with CR0.PE=0, as a VMM that keeps the
    vm86 trick it uses without unrestricted guest after switching to a real-mode guest.

    >>> verdict(rflags_vm_forbidden, real_mode(GUEST_RFLAGS=0x20002))
    fails ENTRY_GUEST_RFLAGS_VM_FORBIDDEN: RFLAGS.VM=1 with CR0.PE=0
        [GUEST_RFLAGS=0x20002, GUEST_CR0=0x30]

    Scenario SCN_RFLAGS_VM86_IA32E (fails): VM=1 for an IA-32e-mode guest.

    >>> verdict(rflags_vm_forbidden, long_mode(GUEST_RFLAGS=0x20202))
    fails ENTRY_GUEST_RFLAGS_VM_FORBIDDEN: RFLAGS.VM=1 with "IA-32e mode guest"
        [GUEST_RFLAGS=0x20202, VM_ENTRY_CONTROLS=0xd3ff]

    Scenario SCN_RFLAGS_LONG_MODE_NO_VM86 (passes): a 64-bit guest with VM=0 (and the
    always-1 bit 1 set): nothing to refuse.

    >>> verdict(rflags_vm_forbidden, long_mode())
    passes
    """
    rflags = s.need1("GUEST_RFLAGS")
    if not rflags & RFLAGS_VM:
        return ()
    r = me(rflags_vm_forbidden)
    out = []
    ctl, cr0 = s.need("VM_ENTRY_CONTROLS", "GUEST_CR0")
    if ia32e_mode_guest(s):
        out.append(r.violation('RFLAGS.VM=1 with "IA-32e mode guest"', GUEST_RFLAGS=rflags, VM_ENTRY_CONTROLS=ctl))
    if not cr0 & X86_CR0_PE:
        out.append(r.violation("RFLAGS.VM=1 with CR0.PE=0", GUEST_RFLAGS=rflags, GUEST_CR0=cr0))
    return tuple(out)


@rule("ENTRY_GUEST_RFLAGS_IF_FOR_EXTINT", section=SECTION, phase="guest")
def rflags_if_for_extint(s: EntryState) -> Violations:
    """If the entry injects an external interrupt (valid bit set, type 0), RFLAGS.IF
    must be 1. NMIs and exceptions carry no IF requirement.

    Scenario SCN_RFLAGS_EXTINT_IF1 (passes): vector 0xEC injected with IF=1.

    >>> verdict(rflags_if_for_extint, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0xEC, 0)))
    passes

    Scenario SCN_RFLAGS_NMI_IF0 (passes): an NMI may be injected with IF=0.

    >>> verdict(rflags_if_for_extint, real_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 2)))
    passes

    Scenario SCN_RFLAGS_EXTINT_IF0 (fails): an interrupt injected into a guest with IF=0,
    the "intr_info=800000d1, RFLAGS=0x2" failure of tianocore/edk2#91.

    >>> verdict(rflags_if_for_extint, real_mode(VM_ENTRY_INTR_INFO_FIELD=0x800000D1))
    fails ENTRY_GUEST_RFLAGS_IF_FOR_EXTINT: external interrupt injected with RFLAGS.IF=0
        [VM_ENTRY_INTR_INFO_FIELD=0x800000d1, GUEST_RFLAGS=0x2]

    Scenario SCN_RFLAGS_STALE_VECTOR_NOT_VALID (passes): the field still holds vector 0xD1,
    type 0, but the valid bit is clear (a VMM that clears only bit 31 once the event is
    delivered): nothing is injected, so IF=0 is fine.

    >>> verdict(rflags_if_for_extint, real_mode(VM_ENTRY_INTR_INFO_FIELD=0xD1))
    passes
    """
    info = s.need1("VM_ENTRY_INTR_INFO_FIELD")
    if not intr_info_valid(info) or intr_info_type(info) != INTR_TYPE_EXT_INTR:
        return ()
    rflags = s.need1("GUEST_RFLAGS")
    if rflags & RFLAGS_IF:
        return ()
    return (
        me(rflags_if_for_extint).violation(
            "external interrupt injected with RFLAGS.IF=0", VM_ENTRY_INTR_INFO_FIELD=info, GUEST_RFLAGS=rflags
        ),
    )


# --- SSP ---------------------------------------------------------------------------------


@rule("ENTRY_GUEST_SSP_ALIGNED", section=SECTION, phase="guest")
def ssp_aligned(s: EntryState) -> Violations:
    """With the "load CET state" VM-entry control set, bits 1:0 of the SSP field must
    be 0. Without that control the field is not loaded and not checked.

    Scenario SCN_SSP_ALIGNED (passes): an 8-byte aligned shadow-stack pointer loaded.

    >>> verdict(ssp_aligned, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_SSP=0xFFFFC90000004FF8))
    passes

    Scenario SCN_SSP_NOT_LOADED (passes): a misaligned value is ignored when CET state is
    not loaded.

    >>> verdict(ssp_aligned, long_mode(GUEST_SSP=0x3))
    passes

    Scenario SCN_SSP_MISALIGNED (fails): bit 0 set with "load CET state".

    >>> verdict(ssp_aligned, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_SSP=0xFFFFC90000004FF9))
    fails ENTRY_GUEST_SSP_ALIGNED: SSP bits 1:0 are 0x1 [VM_ENTRY_CONTROLS=0x10d3ff, GUEST_SSP=0xffffc90000004ff9]
    """
    ctl = s.need1("VM_ENTRY_CONTROLS")
    if not ctl & VM_ENTRY_LOAD_CET_STATE:
        return ()
    ssp = s.need1("GUEST_SSP")
    if not ssp & SSP_LOW_BITS:
        return ()
    return (
        me(ssp_aligned).violation(f"SSP bits 1:0 are {ssp & SSP_LOW_BITS:#x}", VM_ENTRY_CONTROLS=ctl, GUEST_SSP=ssp),
    )


@rule("ENTRY_GUEST_SSP_UPPER_BITS_IDENTICAL", section=SECTION, phase="guest")
def ssp_upper_bits_identical(s: EntryState) -> Violations:
    """With "load CET state" set, bits 63:N of the SSP field must be identical, N being
    the CPU's linear-address width, whatever mode the guest is entered in. This rule
    reads the guest check as stated for the guest (not canonical, and no bits 63:32
    check outside 64-bit mode: those two belong to the host-state SSP check).

    Scenario SCN_SSP_BIT47_ONLY (passes): bit 47 alone set: not canonical, but bits 63:48
    are identical.

    >>> verdict(ssp_upper_bits_identical, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_SSP=0x0000800000000000))
    passes

    Scenario SCN_SSP_UPPER_MIXED (fails): bits 63:48 neither all 0 nor all 1.

    >>> verdict(ssp_upper_bits_identical, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_SSP=0x8000000000001000))
    fails ENTRY_GUEST_SSP_UPPER_BITS_IDENTICAL: SSP bits 63:48 are not all equal
        [VM_ENTRY_CONTROLS=0x10d3ff, GUEST_SSP=0x8000000000001000]

    Scenario SCN_SSP_UPPER_NOT_LOADED (passes): the same SSP with "load CET state" clear:
    the field is not loaded and not checked.

    >>> verdict(ssp_upper_bits_identical, long_mode(GUEST_SSP=0x8000000000001000))
    passes
    """
    ctl = s.need1("VM_ENTRY_CONTROLS")
    if not ctl & VM_ENTRY_LOAD_CET_STATE:
        return ()
    ssp = s.need1("GUEST_SSP")
    n = s.caps.linear_address_width
    if _upper_identical(ssp, n):
        return ()
    return (
        me(ssp_upper_bits_identical).violation(
            f"SSP bits 63:{n} are not all equal", VM_ENTRY_CONTROLS=ctl, GUEST_SSP=ssp
        ),
    )
