"""Checks on guest control registers, debug registers and MSRs (SDM Vol. 3C "Checks on
Guest Control Registers, Debug Registers, and MSRs").

A violation is a VM-entry failure: nothing of the guest state is kept, and the CPU reports
a VM exit with basic reason 33 ("invalid guest state") and bit 31 set, the ``0x80000021``
of KVM's "KVM: entry failed, hardware error 0x80000021". The exit qualification is 0.

The rules read CR0, CR3, CR4, DR7 and the MSR fields of the guest-state area, together
with the VM-entry controls that decide whether an MSR field is loaded at all, and the
"unrestricted guest" control for the CR0.PE/PG exemption. Where a clause asks for a
*canonical* address, "canonical" is relative to the processor's linear-address width (the
profile's ``linear_address_width``: 57 on a CPU with 5-level paging), not to the guest's
CR4.LA57 (see ``ENTRY_GUEST_SYSENTER_CANONICAL``).
"""

from __future__ import annotations

from vmxkb.bits import (
    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS,
    DR7_RESERVED_HIGH,
    EFER_LMA,
    EFER_LME,
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
    X86_CR0_WP,
    X86_CR4_CET,
    X86_CR4_FRED,
    X86_CR4_PAE,
    X86_CR4_PCIDE,
    bit,
    bits,
)
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.predicates import beyond_maxphyaddr, canonical, ia32e_mode_guest, unrestricted_guest
from vmxkb.registry import Violation, Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState

SECTION = "SEC_GUEST_CONTROL_REGS"

__all__ = ["long_mode", "protected_mode", "real_mode", "Capabilities", "verdict"]

# --- Constants of this area (facts from SDM Vol. 3A/3B/3C; not in vmxkb.bits) -------------
REG64 = bits(63, 0)  #: a 64-bit field
#: CR0.NW and CR0.CD: never checked against the fixed bits (VM entry does not load them)
CR0_NEVER_CHECKED = X86_CR0_NW | X86_CR0_CD
#: CR0.PE and CR0.PG: not checked against IA32_VMX_CR0_FIXED0 with "unrestricted guest"
CR0_UG_EXEMPT = X86_CR0_PE | X86_CR0_PG
#: IA32_PAT: eight 8-bit entries, each one of these memory types
PAT_ENTRY_COUNT = 8
PAT_ENTRY_WIDTH = 8
PAT_ENTRY_MASK = bits(7, 0)
PAT_TYPE_NAMES = {0: "UC", 1: "WC", 4: "WT", 5: "WP", 6: "WB", 7: "UC-"}
PAT_VALID_TYPES = frozenset(PAT_TYPE_NAMES)
#: IA32_S_CET (same layout as IA32_U_CET)
S_CET_RESERVED = bits(9, 6)
S_CET_SUPPRESS = bit(10)  #: SUPPRESS: indirect-branch tracking suppressed
S_CET_TRACKER = bit(11)  #: TRACKER: WAIT_FOR_ENDBRANCH
#: IA32_BNDCFGS: EN (0), BNDPRESERVE (1), reserved 11:2, base of the bound directory 63:12
BNDCFGS_RESERVED = bits(11, 2)
BNDCFGS_BASE = bits(63, 12)
#: IA32_LBR_CTL (architectural LBRs): LBREn (0), OS (1), USR (2), CALL_STACK (3), and the
#: branch-type enables COND..OTHER_BRANCH (22:16); every other bit is reserved
LBR_CTL_DEFINED = bits(3, 0) | bits(22, 16)
LBR_CTL_RESERVED = REG64 & ~LBR_CTL_DEFINED
#: IA32_PKRS: one 2-bit (AD, WD) pair per key in bits 31:0; bits 63:32 are reserved
PKRS_RESERVED_HIGH = bits(63, 32)


def _ug_proof(s: EntryState) -> dict[str, int]:
    """The control fields that show "unrestricted guest" is 0."""
    primary = s.need1("CPU_BASED_VM_EXEC_CONTROL")
    if not primary & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS:
        return {"CPU_BASED_VM_EXEC_CONTROL": primary}
    return {"SECONDARY_VM_EXEC_CONTROL": s.need1("SECONDARY_VM_EXEC_CONTROL")}


def _loads(s: EntryState, control: int) -> tuple[bool, int]:
    """Whether the VM-entry control ``control`` is 1, with the controls read."""
    ctl = s.need1("VM_ENTRY_CONTROLS")
    return bool(ctl & control), ctl


# --- Control registers -------------------------------------------------------------------


@rule("ENTRY_GUEST_CR0_FIXED_BITS", section=SECTION, phase="guest")
def cr0_fixed_bits(s: EntryState) -> Violations:
    """The CR0 field must respect the VMX fixed bits: every bit set in
    IA32_VMX_CR0_FIXED0 must be 1 and every bit clear in IA32_VMX_CR0_FIXED1 must be 0.
    Two exemptions: with "unrestricted guest" set, PE (bit 0) and PG (bit 31) are not
    checked; NW (bit 29) and CD (bit 30) are never checked, because VM entry does not load
    them.

    Scenario SCN_GCR_CR0_REAL_MODE_UG (passes): PE=PG=0 under "unrestricted guest".

    >>> verdict(cr0_fixed_bits, real_mode(GUEST_CR0=0x30))
    passes

    Scenario SCN_GCR_CR0_REAL_MODE_NO_UG (fails): the same CR0 with "unrestricted guest"
    off: FIXED0 asks for PE and PG.

    >>> verdict(cr0_fixed_bits, real_mode(GUEST_CR0=0x30, SECONDARY_VM_EXEC_CONTROL=0x6B))
    fails ENTRY_GUEST_CR0_FIXED_BITS: CR0 bits 0x80000001 are clear but IA32_VMX_CR0_FIXED0 requires them
        ("unrestricted guest"=0) [GUEST_CR0=0x30, SECONDARY_VM_EXEC_CONTROL=0x6b]

    Scenario SCN_GCR_CR0_CD_NW_UNCHECKED (passes): CD and NW set on a CPU whose
    IA32_VMX_CR0_FIXED1 reports them as fixed to 0: they are never checked.

    >>> verdict(cr0_fixed_bits, long_mode(Capabilities(cr0_fixed1=0x9FFFFFFF), GUEST_CR0=0xE0050033))
    passes

    Scenario SCN_GCR_CR0_NE_CLEAR (fails): NE (bit 5) is fixed to 1 by the default profile.

    >>> verdict(cr0_fixed_bits, long_mode(GUEST_CR0=0x80050013))
    fails ENTRY_GUEST_CR0_FIXED_BITS: CR0 bits 0x20 are clear but IA32_VMX_CR0_FIXED0 requires them
        [GUEST_CR0=0x80050013]

    Scenario SCN_GCR_CR0_PROTECTED_NO_UG (passes): a paged protected-mode guest on a host
    that runs without "unrestricted guest" (KVM with unrestricted_guest=0, or a CPU without
    it): PE and PG are both set, so FIXED0 is met with no exemption to lean on.

    >>> verdict(cr0_fixed_bits, protected_mode(SECONDARY_VM_EXEC_CONTROL=0x6B))
    passes
    """
    cr0 = s.need1("GUEST_CR0")
    r = me(cr0_fixed_bits)
    fixed0, fixed1 = s.caps.cr0_fixed0 & ~CR0_NEVER_CHECKED, s.caps.cr0_fixed1 | CR0_NEVER_CHECKED
    out: list[Violation] = []
    missing = fixed0 & ~cr0
    if missing & CR0_UG_EXEMPT:
        # only now does the "unrestricted guest" control matter
        if unrestricted_guest(s):
            missing &= ~CR0_UG_EXEMPT
        else:
            out.append(
                r.violation(
                    f'CR0 bits {missing:#x} are clear but IA32_VMX_CR0_FIXED0 requires them ("unrestricted guest"=0)',
                    GUEST_CR0=cr0,
                    **_ug_proof(s),
                )
            )
            missing = 0
    if missing:
        out.append(r.violation(f"CR0 bits {missing:#x} are clear but IA32_VMX_CR0_FIXED0 requires them", GUEST_CR0=cr0))
    extra = cr0 & ~fixed1 & REG64
    if extra:
        out.append(r.violation(f"CR0 bits {extra:#x} are set but IA32_VMX_CR0_FIXED1 forbids them", GUEST_CR0=cr0))
    return tuple(out)


@rule("ENTRY_GUEST_CR0_PG_NEEDS_PE", section=SECTION, phase="guest")
def cr0_pg_needs_pe(s: EntryState) -> Violations:
    """If PG (bit 31) is set in the CR0 field, PE (bit 0) must be set too. Without
    "unrestricted guest" the fixed bits already demand both; the check matters when
    "unrestricted guest" lifts them.

    Scenario SCN_GCR_PG_WITH_PE (passes): paging in protected mode.

    >>> verdict(cr0_pg_needs_pe, protected_mode())
    passes

    Scenario SCN_GCR_PG_WITHOUT_PE (fails): paging without protection under "unrestricted
    guest", which KVM checks for L1 itself since 2023 because L0 may force PE and PG on.

    >>> verdict(cr0_pg_needs_pe, real_mode(GUEST_CR0=0x80000030))
    fails ENTRY_GUEST_CR0_PG_NEEDS_PE: CR0.PG=1 with CR0.PE=0 [GUEST_CR0=0x80000030]

    Scenario SCN_GCR_PG_AND_PE_CLEAR (passes): real mode under "unrestricted guest", PE and
    PG both 0: only PG without PE is refused, not the absence of both.

    >>> verdict(cr0_pg_needs_pe, real_mode())
    passes
    """
    cr0 = s.need1("GUEST_CR0")
    if cr0 & X86_CR0_PG and not cr0 & X86_CR0_PE:
        return (me(cr0_pg_needs_pe).violation("CR0.PG=1 with CR0.PE=0", GUEST_CR0=cr0),)
    return ()


@rule("ENTRY_GUEST_CR4_FIXED_BITS", section=SECTION, phase="guest")
def cr4_fixed_bits(s: EntryState) -> Violations:
    """The CR4 field must respect the VMX fixed bits: every bit set in
    IA32_VMX_CR4_FIXED0 (VMXE) must be 1 and every bit clear in IA32_VMX_CR4_FIXED1 must
    be 0. There is no exemption.

    Scenario SCN_GCR_CR4_VMXE_SET (passes): the usual 64-bit CR4, VMXE included.

    >>> verdict(cr4_fixed_bits, long_mode(GUEST_CR4=0x26E0))
    passes

    Scenario SCN_GCR_CR4_VMXE_CLEAR (fails): the guest's view of CR4 (VMXE clear) written
    to the VMCS field instead of the value the CPU needs.

    >>> verdict(cr4_fixed_bits, long_mode(GUEST_CR4=0x6E0))
    fails ENTRY_GUEST_CR4_FIXED_BITS: CR4 bits 0x2000 are clear but IA32_VMX_CR4_FIXED0 requires them
        [GUEST_CR4=0x6e0]

    Scenario SCN_GCR_CR4_LA57_UNSUPPORTED (fails): CR4.LA57 on a CPU without 5-level
    paging (bit 12 is clear in the default IA32_VMX_CR4_FIXED1).

    >>> verdict(cr4_fixed_bits, long_mode(GUEST_CR4=0x36E0))
    fails ENTRY_GUEST_CR4_FIXED_BITS: CR4 bits 0x1000 are set but IA32_VMX_CR4_FIXED1 forbids them
        [GUEST_CR4=0x36e0]
    """
    cr4 = s.need1("GUEST_CR4")
    r = me(cr4_fixed_bits)
    out = []
    missing = s.caps.cr4_fixed0 & ~cr4
    if missing:
        out.append(r.violation(f"CR4 bits {missing:#x} are clear but IA32_VMX_CR4_FIXED0 requires them", GUEST_CR4=cr4))
    extra = cr4 & ~s.caps.cr4_fixed1 & REG64
    if extra:
        out.append(r.violation(f"CR4 bits {extra:#x} are set but IA32_VMX_CR4_FIXED1 forbids them", GUEST_CR4=cr4))
    return tuple(out)


@rule("ENTRY_GUEST_CR4_CET_NEEDS_WP", section=SECTION, phase="guest")
def cr4_cet_needs_wp(s: EntryState) -> Violations:
    """If CET (bit 23) is set in the CR4 field, WP (bit 16) must be set in the CR0 field.
    The check does not depend on the "load CET state" control.

    Scenario SCN_GCR_CET_WITH_WP (passes): CR4.CET with CR0.WP.

    >>> verdict(cr4_cet_needs_wp, long_mode(GUEST_CR4=0x8026E0, GUEST_CR0=0x80050033))
    passes

    Scenario SCN_GCR_CET_WITHOUT_WP (fails): a VMM (or an L1 hypervisor writing vmcs12) that
    restores CR0 with WP clear beside CR4.CET=1; the guest itself could not reach this pair,
    since MOV to CR0 that clears WP while CR4.CET=1 faults.

    >>> verdict(cr4_cet_needs_wp, long_mode(GUEST_CR4=0x8026E0, GUEST_CR0=0x80040033))
    fails ENTRY_GUEST_CR4_CET_NEEDS_WP: CR4.CET=1 with CR0.WP=0 [GUEST_CR4=0x8026e0, GUEST_CR0=0x80040033]

    Scenario SCN_GCR_NO_CET_NO_WP (passes): a 32-bit guest that runs with CR0.WP=0, as
    older kernels did; without CR4.CET the WP bit is not looked at.

    >>> verdict(cr4_cet_needs_wp, protected_mode())
    passes
    """
    cr4 = s.need1("GUEST_CR4")
    if not cr4 & X86_CR4_CET:
        return ()
    cr0 = s.need1("GUEST_CR0")
    if cr0 & X86_CR0_WP:
        return ()
    return (me(cr4_cet_needs_wp).violation("CR4.CET=1 with CR0.WP=0", GUEST_CR4=cr4, GUEST_CR0=cr0),)


@rule("ENTRY_GUEST_DEBUGCTL_RESERVED_ZERO", section=SECTION, phase="guest")
def debugctl_reserved_zero(s: EntryState) -> Violations:
    """With the "load debug controls" VM-entry control set, the IA32_DEBUGCTL field must
    have 0 in every bit that is reserved in that MSR. Which bits are reserved depends on
    the processor (the profile's ``debugctl_valid``). The first VMX processors could not
    clear the control and so always made this check.

    Scenario SCN_GCR_DEBUGCTL_BTF (passes): BTF and LBR, both defined.

    >>> verdict(debugctl_reserved_zero, long_mode(GUEST_IA32_DEBUGCTL=0x3))
    passes

    Scenario SCN_GCR_DEBUGCTL_BIT3 (fails): bit 3 is reserved on every processor.

    >>> verdict(debugctl_reserved_zero, long_mode(GUEST_IA32_DEBUGCTL=0x8))
    fails ENTRY_GUEST_DEBUGCTL_RESERVED_ZERO: reserved IA32_DEBUGCTL bits 0x8 set
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_IA32_DEBUGCTL=0x8]

    Scenario SCN_GCR_DEBUGCTL_NOT_LOADED (passes): the same value with "load debug
    controls" clear: the field is neither loaded nor checked.

    >>> verdict(debugctl_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0xD3FB, GUEST_IA32_DEBUGCTL=0x8))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_DEBUG_CONTROLS)
    if not loads:
        return ()
    debugctl = s.need1("GUEST_IA32_DEBUGCTL")
    bad = debugctl & ~s.caps.debugctl_valid & REG64
    if not bad:
        return ()
    return (
        me(debugctl_reserved_zero).violation(
            f"reserved IA32_DEBUGCTL bits {bad:#x} set", VM_ENTRY_CONTROLS=ctl, GUEST_IA32_DEBUGCTL=debugctl
        ),
    )


@rule("ENTRY_GUEST_IA32E_NEEDS_PG_PAE", section=SECTION, phase="guest")
def ia32e_needs_pg_pae(s: EntryState) -> Violations:
    """With the "IA-32e mode guest" VM-entry control set, PG (bit 31) must be set in the
    CR0 field and PAE (bit 5) in the CR4 field. (Editions before "unrestricted guest" name
    only CR4.PAE; CR0.PG was then forced by the fixed bits.)

    Scenario SCN_GCR_IA32E_PAGED (passes): a 64-bit guest with paging and PAE.

    >>> verdict(ia32e_needs_pg_pae, long_mode())
    passes

    Scenario SCN_GCR_IA32E_UNPAGED (fails): IA-32e mode with CR0.PG=0 under "unrestricted
    guest", which the fixed bits no longer catch.

    >>> verdict(ia32e_needs_pg_pae, long_mode(GUEST_CR0=0x50033))
    fails ENTRY_GUEST_IA32E_NEEDS_PG_PAE: "IA-32e mode guest" with CR0.PG=0
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_CR0=0x50033]

    Scenario SCN_GCR_IA32E_NO_PAE (fails): IA-32e mode with CR4.PAE=0.

    >>> verdict(ia32e_needs_pg_pae, long_mode(GUEST_CR4=0x26C0))
    fails ENTRY_GUEST_IA32E_NEEDS_PG_PAE: "IA-32e mode guest" with CR4.PAE=0
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_CR4=0x26c0]

    Scenario SCN_GCR_IA32E_OFF_NO_PAE (passes): a 32-bit guest with classic (non-PAE)
    paging: the PG and PAE requirement binds only "IA-32e mode guest" entries.

    >>> verdict(ia32e_needs_pg_pae, protected_mode())
    passes
    """
    if not ia32e_mode_guest(s):
        return ()
    ctl = s.need1("VM_ENTRY_CONTROLS")
    cr0, cr4 = s.need("GUEST_CR0", "GUEST_CR4")
    r = me(ia32e_needs_pg_pae)
    out = []
    if not cr0 & X86_CR0_PG:
        out.append(r.violation('"IA-32e mode guest" with CR0.PG=0', VM_ENTRY_CONTROLS=ctl, GUEST_CR0=cr0))
    if not cr4 & X86_CR4_PAE:
        out.append(r.violation('"IA-32e mode guest" with CR4.PAE=0', VM_ENTRY_CONTROLS=ctl, GUEST_CR4=cr4))
    return tuple(out)


@rule("ENTRY_GUEST_CR4_PCIDE_NEEDS_IA32E", section=SECTION, phase="guest")
def cr4_pcide_needs_ia32e(s: EntryState) -> Violations:
    """With the "IA-32e mode guest" VM-entry control clear, PCIDE (bit 17) must be clear
    in the CR4 field: PCIDs exist only in IA-32e mode.

    Scenario SCN_GCR_PCIDE_64BIT (passes): PCIDE in a 64-bit guest.

    >>> verdict(cr4_pcide_needs_ia32e, long_mode(GUEST_CR4=0x226E0))
    passes

    Scenario SCN_GCR_PCIDE_32BIT (fails): PCIDE left set in a 32-bit guest.

    >>> verdict(cr4_pcide_needs_ia32e, protected_mode(GUEST_CR4=0x22010))
    fails ENTRY_GUEST_CR4_PCIDE_NEEDS_IA32E: CR4.PCIDE=1 without "IA-32e mode guest"
        [VM_ENTRY_CONTROLS=0xd1ff, GUEST_CR4=0x22010]

    Scenario SCN_GCR_PCIDE_CLEAR_32BIT (passes): a 32-bit guest with PCIDE clear, the
    normal case outside IA-32e mode.

    >>> verdict(cr4_pcide_needs_ia32e, protected_mode())
    passes
    """
    if ia32e_mode_guest(s):
        return ()
    ctl, cr4 = s.need("VM_ENTRY_CONTROLS", "GUEST_CR4")
    if not cr4 & X86_CR4_PCIDE:
        return ()
    return (
        me(cr4_pcide_needs_ia32e).violation(
            'CR4.PCIDE=1 without "IA-32e mode guest"', VM_ENTRY_CONTROLS=ctl, GUEST_CR4=cr4
        ),
    )


@rule("ENTRY_GUEST_CR4_FRED_NEEDS_IA32E", section=SECTION, phase="guest")
def cr4_fred_needs_ia32e(s: EntryState) -> Violations:
    """With the "IA-32e mode guest" VM-entry control clear, FRED (bit 32) must be clear in
    the CR4 field: FRED event delivery exists only in IA-32e mode.

    Scenario SCN_GCR_FRED_64BIT (passes): CR4.FRED in a 64-bit guest on a FRED CPU.

    >>> verdict(cr4_fred_needs_ia32e, long_mode(Capabilities(fred=True, cr4_fixed1=0x101F76FFF),
    ...     GUEST_CR4=0x1000026E0))
    passes

    Scenario SCN_GCR_FRED_32BIT (fails): CR4.FRED in a 32-bit guest.

    >>> verdict(cr4_fred_needs_ia32e, protected_mode(Capabilities(fred=True, cr4_fixed1=0x101F76FFF),
    ...     GUEST_CR4=0x100002010))
    fails ENTRY_GUEST_CR4_FRED_NEEDS_IA32E: CR4.FRED=1 without "IA-32e mode guest"
        [VM_ENTRY_CONTROLS=0xd1ff, GUEST_CR4=0x100002010]

    Scenario SCN_GCR_FRED_CLEAR_32BIT (passes): a 32-bit guest with CR4.FRED clear, on a
    FRED CPU: nothing to refuse.

    >>> verdict(cr4_fred_needs_ia32e, protected_mode(Capabilities(fred=True, cr4_fixed1=0x101F76FFF)))
    passes
    """
    if ia32e_mode_guest(s):
        return ()
    ctl, cr4 = s.need("VM_ENTRY_CONTROLS", "GUEST_CR4")
    if not cr4 & X86_CR4_FRED:
        return ()
    return (
        me(cr4_fred_needs_ia32e).violation(
            'CR4.FRED=1 without "IA-32e mode guest"', VM_ENTRY_CONTROLS=ctl, GUEST_CR4=cr4
        ),
    )


@rule("ENTRY_GUEST_CR3_WITHIN_MAXPHYADDR", section=SECTION, phase="guest")
def cr3_within_maxphyaddr(s: EntryState) -> Violations:
    """Bits 63:52 of the CR3 field, and the bits of 51:32 at or above the processor's
    physical-address width (MAXPHYADDR), must be 0. The check does not depend on the
    paging mode the guest will use.

    Scenario SCN_GCR_CR3_BELOW_LIMIT (passes): the highest page-aligned CR3 below 2^46.

    >>> verdict(cr3_within_maxphyaddr, long_mode(GUEST_CR3=0x3FFFFFFFF000))
    passes

    Scenario SCN_GCR_CR3_AT_LIMIT (fails): bit 46 set with MAXPHYADDR=46, e.g. a CR3 taken
    from a host with a wider physical-address width after migration.

    >>> verdict(cr3_within_maxphyaddr, long_mode(GUEST_CR3=0x400000001000))
    fails ENTRY_GUEST_CR3_WITHIN_MAXPHYADDR: CR3 bits 0x400000000000 at or above MAXPHYADDR (46)
        [GUEST_CR3=0x400000001000]
    """
    cr3 = s.need1("GUEST_CR3")
    bad = beyond_maxphyaddr(cr3, s.caps)
    if not bad:
        return ()
    return (
        me(cr3_within_maxphyaddr).violation(
            f"CR3 bits {bad:#x} at or above MAXPHYADDR ({s.caps.maxphyaddr})", GUEST_CR3=cr3
        ),
    )


@rule("ENTRY_GUEST_DR7_HIGH_ZERO", section=SECTION, phase="guest")
def dr7_high_zero(s: EntryState) -> Violations:
    """With the "load debug controls" VM-entry control set, bits 63:32 of the DR7 field
    must be 0. (The first VMX processors could not clear the control and so always made
    this check.)

    Scenario SCN_GCR_DR7_LOW_BITS (passes): every defined low bit of DR7 may be set.

    >>> verdict(dr7_high_zero, long_mode(GUEST_DR7=0xFFFFFFFF))
    passes

    Scenario SCN_GCR_DR7_BIT32 (fails): bit 32 set.

    >>> verdict(dr7_high_zero, long_mode(GUEST_DR7=0x100000400))
    fails ENTRY_GUEST_DR7_HIGH_ZERO: DR7 bits 63:32 are 0x1 [VM_ENTRY_CONTROLS=0xd3ff, GUEST_DR7=0x100000400]

    Scenario SCN_GCR_DR7_NOT_LOADED (passes): bit 32 set in the DR7 field with "load debug
    controls" clear: DR7 keeps its current value, so the field is neither loaded nor checked.

    >>> verdict(dr7_high_zero, long_mode(VM_ENTRY_CONTROLS=0xD3FB, GUEST_DR7=0x100000400))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_DEBUG_CONTROLS)
    if not loads:
        return ()
    dr7 = s.need1("GUEST_DR7")
    if not dr7 & DR7_RESERVED_HIGH:
        return ()
    return (
        me(dr7_high_zero).violation(f"DR7 bits 63:32 are {dr7 >> 32:#x}", VM_ENTRY_CONTROLS=ctl, GUEST_DR7=dr7),
    )


@rule("ENTRY_GUEST_SYSENTER_CANONICAL", section=SECTION, phase="guest")
def sysenter_canonical(s: EntryState) -> Violations:
    """The IA32_SYSENTER_ESP and IA32_SYSENTER_EIP fields must each hold a canonical
    address, whatever the guest's mode. Canonical is taken relative to the processor's
    linear-address width (57 bits with 5-level paging support), not to the guest's
    CR4.LA57.

    Scenario SCN_GCR_SYSENTER_LA57_CPU (passes): a 57-bit canonical SYSENTER_EIP on a CPU
    with 5-level paging, entered with CR4.LA57=0.

    >>> verdict(sysenter_canonical, long_mode(Capabilities(linear_address_width=57),
    ...     GUEST_SYSENTER_EIP=0xFF00000000000000))
    passes

    Scenario SCN_GCR_SYSENTER_LA48_CPU (fails): the same value on a CPU without 5-level
    paging.

    >>> verdict(sysenter_canonical, long_mode(GUEST_SYSENTER_EIP=0xFF00000000000000))
    fails ENTRY_GUEST_SYSENTER_CANONICAL: IA32_SYSENTER_EIP is not canonical (48-bit)
        [GUEST_SYSENTER_EIP=0xff00000000000000]
    """
    r = me(sysenter_canonical)
    out = []
    for name in ("GUEST_SYSENTER_ESP", "GUEST_SYSENTER_EIP"):
        value = s.need1(name)
        if not canonical(value, s.caps):
            msr = name.removeprefix("GUEST_")
            out.append(
                r.violation(f"IA32_{msr} is not canonical ({s.caps.linear_address_width}-bit)", **{name: value})
            )
    return tuple(out)


@rule("ENTRY_GUEST_S_CET_CANONICAL", section=SECTION, phase="guest")
def s_cet_canonical(s: EntryState) -> Violations:
    """With the "load CET state" VM-entry control set, the IA32_S_CET field must be a
    canonical address: its bits 63:12 are the linear address of the IBT legacy-code
    bitmap.

    Scenario SCN_GCR_S_CET_BITMAP_KERNEL (passes): a legacy bitmap in the kernel half.

    >>> verdict(s_cet_canonical, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_S_CET=0xFFFFC90000004004))
    passes

    Scenario SCN_GCR_S_CET_BITMAP_NONCANONICAL (fails): a bitmap base with bit 47 set but not
    bits 63:48.

    >>> verdict(s_cet_canonical, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_S_CET=0x800000004004))
    fails ENTRY_GUEST_S_CET_CANONICAL: IA32_S_CET is not canonical (48-bit)
        [VM_ENTRY_CONTROLS=0x10d3ff, GUEST_S_CET=0x800000004004]

    Scenario SCN_GCR_S_CET_BITMAP_NOT_LOADED (passes): the same non-canonical value with
    "load CET state" clear, as a VMM that does not expose CET leaves a stale field: not
    loaded, not checked.

    >>> verdict(s_cet_canonical, long_mode(GUEST_S_CET=0x800000004004))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_CET_STATE)
    if not loads:
        return ()
    value = s.need1("GUEST_S_CET")
    if canonical(value, s.caps):
        return ()
    return (
        me(s_cet_canonical).violation(
            f"IA32_S_CET is not canonical ({s.caps.linear_address_width}-bit)", VM_ENTRY_CONTROLS=ctl, GUEST_S_CET=value
        ),
    )


@rule("ENTRY_GUEST_SSP_TABLE_CANONICAL", section=SECTION, phase="guest")
def ssp_table_canonical(s: EntryState) -> Violations:
    """With the "load CET state" VM-entry control set, the
    IA32_INTERRUPT_SSP_TABLE_ADDR field must hold a canonical address.

    Scenario SCN_GCR_SSP_TABLE_KERNEL (passes): a table in the kernel half.

    >>> verdict(ssp_table_canonical, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_INTR_SSP_TABLE=0xFFFFFE0000005000))
    passes

    Scenario SCN_GCR_SSP_TABLE_NONCANONICAL (fails): bit 48 set alone.

    >>> verdict(ssp_table_canonical, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_INTR_SSP_TABLE=0x1000000005000))
    fails ENTRY_GUEST_SSP_TABLE_CANONICAL: IA32_INTERRUPT_SSP_TABLE_ADDR is not canonical (48-bit)
        [VM_ENTRY_CONTROLS=0x10d3ff, GUEST_INTR_SSP_TABLE=0x1000000005000]

    Scenario SCN_GCR_SSP_TABLE_NOT_LOADED (passes): the same non-canonical table address
    with "load CET state" clear: the field is ignored.

    >>> verdict(ssp_table_canonical, long_mode(GUEST_INTR_SSP_TABLE=0x1000000005000))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_CET_STATE)
    if not loads:
        return ()
    value = s.need1("GUEST_INTR_SSP_TABLE")
    if canonical(value, s.caps):
        return ()
    return (
        me(ssp_table_canonical).violation(
            f"IA32_INTERRUPT_SSP_TABLE_ADDR is not canonical ({s.caps.linear_address_width}-bit)",
            VM_ENTRY_CONTROLS=ctl,
            GUEST_INTR_SSP_TABLE=value,
        ),
    )


# --- MSRs loaded under a "load ..." VM-entry control ---------------------------------------


@rule("ENTRY_GUEST_PERF_GLOBAL_CTRL_RESERVED_ZERO", section=SECTION, phase="guest")
def perf_global_ctrl_reserved_zero(s: EntryState) -> Violations:
    """With the "load IA32_PERF_GLOBAL_CTRL" VM-entry control set, the
    IA32_PERF_GLOBAL_CTRL field must have 0 in every bit reserved in that MSR, i.e. every
    bit that does not enable an existing general-purpose or fixed counter (the profile's
    ``perf_global_ctrl_valid``).

    Scenario SCN_GCR_PERF_ALL_COUNTERS (passes): all 8 general-purpose and 4 fixed counters.

    >>> verdict(perf_global_ctrl_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0xF3FF,
    ...     GUEST_IA32_PERF_GLOBAL_CTRL=0xF000000FF))
    passes

    Scenario SCN_GCR_PERF_NINTH_GP (fails): the enable bit of a ninth general-purpose
    counter, which this CPU does not have.

    >>> verdict(perf_global_ctrl_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0xF3FF,
    ...     GUEST_IA32_PERF_GLOBAL_CTRL=0x100))
    fails ENTRY_GUEST_PERF_GLOBAL_CTRL_RESERVED_ZERO: reserved IA32_PERF_GLOBAL_CTRL bits 0x100 set
        [VM_ENTRY_CONTROLS=0xf3ff, GUEST_IA32_PERF_GLOBAL_CTRL=0x100]

    Scenario SCN_GCR_PERF_NOT_LOADED (passes): the ninth-counter bit in the field with "load
    IA32_PERF_GLOBAL_CTRL" clear (KVM's long-mode default here): the field is ignored.

    >>> verdict(perf_global_ctrl_reserved_zero, long_mode(GUEST_IA32_PERF_GLOBAL_CTRL=0x100))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL)
    if not loads:
        return ()
    value = s.need1("GUEST_IA32_PERF_GLOBAL_CTRL")
    bad = value & ~s.caps.perf_global_ctrl_valid & REG64
    if not bad:
        return ()
    return (
        me(perf_global_ctrl_reserved_zero).violation(
            f"reserved IA32_PERF_GLOBAL_CTRL bits {bad:#x} set",
            VM_ENTRY_CONTROLS=ctl,
            GUEST_IA32_PERF_GLOBAL_CTRL=value,
        ),
    )


@rule("ENTRY_GUEST_PAT_VALID_TYPES", section=SECTION, phase="guest")
def pat_valid_types(s: EntryState) -> Violations:
    """With the "load IA32_PAT" VM-entry control set, the IA32_PAT field must hold a
    value WRMSR would accept at CPL 0: each of its 8 bytes must be a memory type, 0 (UC),
    1 (WC), 4 (WT), 5 (WP), 6 (WB) or 7 (UC-). Values 2, 3 and 8-255 fail.

    Scenario SCN_GCR_PAT_DEFAULT (passes): the power-up PAT value.

    >>> verdict(pat_valid_types, long_mode(GUEST_IA32_PAT=0x0007040600070406))
    passes

    Scenario SCN_GCR_PAT_TYPE_2 (fails): PA3 holds the reserved type 2.

    >>> verdict(pat_valid_types, long_mode(GUEST_IA32_PAT=0x0007040602070406))
    fails ENTRY_GUEST_PAT_VALID_TYPES: IA32_PAT entry PA3 holds 0x2, not a memory type
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_IA32_PAT=0x7040602070406]

    Scenario SCN_GCR_PAT_NOT_LOADED (passes): the same reserved type 2 with "load IA32_PAT"
    clear: the guest keeps the current PAT, and the field is not checked.

    >>> verdict(pat_valid_types, long_mode(VM_ENTRY_CONTROLS=0x93FF, GUEST_IA32_PAT=0x0007040602070406))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_PAT)
    if not loads:
        return ()
    pat = s.need1("GUEST_IA32_PAT")
    r = me(pat_valid_types)
    out = []
    for i in range(PAT_ENTRY_COUNT):
        entry = (pat >> (i * PAT_ENTRY_WIDTH)) & PAT_ENTRY_MASK
        if entry not in PAT_VALID_TYPES:
            out.append(
                r.violation(
                    f"IA32_PAT entry PA{i} holds {entry:#x}, not a memory type",
                    VM_ENTRY_CONTROLS=ctl,
                    GUEST_IA32_PAT=pat,
                )
            )
    return tuple(out)


@rule("ENTRY_GUEST_EFER_RESERVED_ZERO", section=SECTION, phase="guest")
def efer_reserved_zero(s: EntryState) -> Violations:
    """With the "load IA32_EFER" VM-entry control set, the IA32_EFER field must have 0 in
    every bit reserved in that MSR (on this CPU: every bit but those in the profile's
    ``efer_valid``).

    Scenario SCN_GCR_EFER_USUAL (passes): SCE, LME, LMA and NXE.

    >>> verdict(efer_reserved_zero, long_mode(GUEST_IA32_EFER=0xD01))
    passes

    Scenario SCN_GCR_EFER_SVME (fails): bit 12 (SVME on AMD) is reserved on Intel.

    >>> verdict(efer_reserved_zero, long_mode(GUEST_IA32_EFER=0x1D01))
    fails ENTRY_GUEST_EFER_RESERVED_ZERO: reserved IA32_EFER bits 0x1000 set
        [VM_ENTRY_CONTROLS=0xd3ff, GUEST_IA32_EFER=0x1d01]

    Scenario SCN_GCR_EFER_NOT_LOADED (passes): the same reserved bit 12 with "load IA32_EFER"
    clear: VM entry then sets only EFER.LMA/LME from "IA-32e mode guest" and ignores the field.

    >>> verdict(efer_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0x53FF, GUEST_IA32_EFER=0x1D01))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_EFER)
    if not loads:
        return ()
    efer = s.need1("GUEST_IA32_EFER")
    bad = efer & ~s.caps.efer_valid & REG64
    if not bad:
        return ()
    return (
        me(efer_reserved_zero).violation(
            f"reserved IA32_EFER bits {bad:#x} set", VM_ENTRY_CONTROLS=ctl, GUEST_IA32_EFER=efer
        ),
    )


@rule("ENTRY_GUEST_EFER_LMA_MATCHES_IA32E", section=SECTION, phase="guest")
def efer_lma_matches_ia32e(s: EntryState) -> Violations:
    """With the "load IA32_EFER" VM-entry control set, LMA (bit 10) of the IA32_EFER
    field must equal the "IA-32e mode guest" VM-entry control.

    Scenario SCN_GCR_EFER_LMA_64BIT (passes): LMA=1 for a 64-bit guest.

    >>> verdict(efer_lma_matches_ia32e, long_mode())
    passes

    Scenario SCN_GCR_EFER_LMA_32BIT (fails): a 32-bit guest entered with the EFER of a
    64-bit one.

    >>> verdict(efer_lma_matches_ia32e, protected_mode(GUEST_IA32_EFER=0xD01))
    fails ENTRY_GUEST_EFER_LMA_MATCHES_IA32E: EFER.LMA=1 but "IA-32e mode guest"=0
        [VM_ENTRY_CONTROLS=0xd1ff, GUEST_IA32_EFER=0xd01]

    Scenario SCN_GCR_EFER_LMA_NOT_LOADED (passes): the same 64-bit EFER in the field of a
    32-bit guest, but "load IA32_EFER" is clear: the field is not loaded, so LMA is not
    compared with the control.

    >>> verdict(efer_lma_matches_ia32e, protected_mode(VM_ENTRY_CONTROLS=0x51FF, GUEST_IA32_EFER=0xD01))
    passes

    Scenario SCN_GCR_EFER_LMA_FOLLOWS_IA32E (passes): a 32-bit guest caught between setting
    EFER.LME and enabling paging (LME=1, LMA=0, CR0.PG=0): it is LMA, not LME, that must
    match the "IA-32e mode guest" control of 0.

    >>> verdict(efer_lma_matches_ia32e, protected_mode(GUEST_CR0=0x31, GUEST_IA32_EFER=0x100))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_EFER)
    if not loads:
        return ()
    efer = s.need1("GUEST_IA32_EFER")
    lma, ia32e = bool(efer & EFER_LMA), ia32e_mode_guest(s)
    if lma == ia32e:
        return ()
    return (
        me(efer_lma_matches_ia32e).violation(
            f'EFER.LMA={int(lma)} but "IA-32e mode guest"={int(ia32e)}', VM_ENTRY_CONTROLS=ctl, GUEST_IA32_EFER=efer
        ),
    )


@rule("ENTRY_GUEST_EFER_LME_MATCHES_LMA", section=SECTION, phase="guest")
def efer_lme_matches_lma(s: EntryState) -> Violations:
    """With the "load IA32_EFER" VM-entry control set and PG (bit 31) set in the CR0
    field, LME (bit 8) of the IA32_EFER field must equal its LMA (bit 10). With CR0.PG=0
    the two may differ (LME set, paging not yet enabled).

    Scenario SCN_GCR_EFER_LME_BEFORE_PAGING (passes): LME=1, LMA=0 and CR0.PG=0, the state
    between setting EFER.LME and enabling paging, under "unrestricted guest".

    >>> verdict(efer_lme_matches_lma, protected_mode(GUEST_CR0=0x31, GUEST_IA32_EFER=0x100))
    passes

    Scenario SCN_GCR_EFER_LME_WITH_PAGING (fails): the same EFER once CR0.PG=1.

    >>> verdict(efer_lme_matches_lma, protected_mode(GUEST_IA32_EFER=0x100))
    fails ENTRY_GUEST_EFER_LME_MATCHES_LMA: EFER.LME=1 but EFER.LMA=0 with CR0.PG=1
        [VM_ENTRY_CONTROLS=0xd1ff, GUEST_IA32_EFER=0x100, GUEST_CR0=0x80000031]

    Scenario SCN_GCR_EFER_LME_NOT_LOADED (passes): the same mismatched EFER with CR0.PG=1,
    but "load IA32_EFER" clear: the field is not loaded and not checked.

    >>> verdict(efer_lme_matches_lma, protected_mode(VM_ENTRY_CONTROLS=0x51FF, GUEST_IA32_EFER=0x100))
    passes

    Scenario SCN_GCR_EFER_LEGACY_PAGED (passes): a paged 32-bit guest that loads an EFER
    with LME=LMA=0, the legacy-mode case: the two bits agree.

    >>> verdict(efer_lme_matches_lma, protected_mode())
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_EFER)
    if not loads:
        return ()
    efer = s.need1("GUEST_IA32_EFER")
    lme, lma = bool(efer & EFER_LME), bool(efer & EFER_LMA)
    if lme == lma:
        return ()
    cr0 = s.need1("GUEST_CR0")
    if not cr0 & X86_CR0_PG:
        return ()
    return (
        me(efer_lme_matches_lma).violation(
            f"EFER.LME={int(lme)} but EFER.LMA={int(lma)} with CR0.PG=1",
            VM_ENTRY_CONTROLS=ctl,
            GUEST_IA32_EFER=efer,
            GUEST_CR0=cr0,
        ),
    )


@rule("ENTRY_GUEST_BNDCFGS_RESERVED_ZERO", section=SECTION, phase="guest")
def bndcfgs_reserved_zero(s: EntryState) -> Violations:
    """With the "load IA32_BNDCFGS" VM-entry control set, the reserved bits of the
    IA32_BNDCFGS field (11:2) must be 0.

    Scenario SCN_GCR_BNDCFGS_ENABLED (passes): MPX enabled with BNDPRESERVE and a base.

    >>> verdict(bndcfgs_reserved_zero, long_mode(Capabilities(mpx=True), VM_ENTRY_CONTROLS=0x1D3FF,
    ...     GUEST_BNDCFGS=0x7F0000001003))
    passes

    Scenario SCN_GCR_BNDCFGS_BIT2 (fails): bit 2 set.

    >>> verdict(bndcfgs_reserved_zero, long_mode(Capabilities(mpx=True), VM_ENTRY_CONTROLS=0x1D3FF,
    ...     GUEST_BNDCFGS=0x7F0000001005))
    fails ENTRY_GUEST_BNDCFGS_RESERVED_ZERO: reserved IA32_BNDCFGS bits 0x4 set
        [VM_ENTRY_CONTROLS=0x1d3ff, GUEST_BNDCFGS=0x7f0000001005]

    Scenario SCN_GCR_BNDCFGS_RESERVED_NOT_LOADED (passes): the same bit 2 with "load
    IA32_BNDCFGS" clear, as on a host that does not expose MPX: the field is ignored.

    >>> verdict(bndcfgs_reserved_zero, long_mode(GUEST_BNDCFGS=0x7F0000001005))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_BNDCFGS)
    if not loads:
        return ()
    value = s.need1("GUEST_BNDCFGS")
    bad = value & BNDCFGS_RESERVED
    if not bad:
        return ()
    return (
        me(bndcfgs_reserved_zero).violation(
            f"reserved IA32_BNDCFGS bits {bad:#x} set", VM_ENTRY_CONTROLS=ctl, GUEST_BNDCFGS=value
        ),
    )


@rule("ENTRY_GUEST_BNDCFGS_BASE_CANONICAL", section=SECTION, phase="guest")
def bndcfgs_base_canonical(s: EntryState) -> Violations:
    """With the "load IA32_BNDCFGS" VM-entry control set, the linear address in bits
    63:12 of the IA32_BNDCFGS field (the bound-directory base) must be canonical.

    Scenario SCN_GCR_BNDCFGS_KERNEL_BASE (passes): a kernel-half base.

    >>> verdict(bndcfgs_base_canonical, long_mode(Capabilities(mpx=True), VM_ENTRY_CONTROLS=0x1D3FF,
    ...     GUEST_BNDCFGS=0xFFFF888000001001))
    passes

    Scenario SCN_GCR_BNDCFGS_NONCANONICAL (fails): bit 47 set but not bits 63:48.

    >>> verdict(bndcfgs_base_canonical, long_mode(Capabilities(mpx=True), VM_ENTRY_CONTROLS=0x1D3FF,
    ...     GUEST_BNDCFGS=0x800000001001))
    fails ENTRY_GUEST_BNDCFGS_BASE_CANONICAL: IA32_BNDCFGS base 0x800000001000 is not canonical (48-bit)
        [VM_ENTRY_CONTROLS=0x1d3ff, GUEST_BNDCFGS=0x800000001001]

    Scenario SCN_GCR_BNDCFGS_BASE_NOT_LOADED (passes): the same non-canonical base with "load
    IA32_BNDCFGS" clear: the field is ignored.

    >>> verdict(bndcfgs_base_canonical, long_mode(GUEST_BNDCFGS=0x800000001001))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_BNDCFGS)
    if not loads:
        return ()
    value = s.need1("GUEST_BNDCFGS")
    base = value & BNDCFGS_BASE
    if canonical(base, s.caps):
        return ()
    return (
        me(bndcfgs_base_canonical).violation(
            f"IA32_BNDCFGS base {base:#x} is not canonical ({s.caps.linear_address_width}-bit)",
            VM_ENTRY_CONTROLS=ctl,
            GUEST_BNDCFGS=value,
        ),
    )


@rule("ENTRY_GUEST_S_CET_RESERVED_ZERO", section=SECTION, phase="guest")
def s_cet_reserved_zero(s: EntryState) -> Violations:
    """With the "load CET state" VM-entry control set, the reserved bits of the IA32_S_CET
    field (9:6) must be 0.

    Scenario SCN_GCR_S_CET_IBT_SHSTK (passes): shadow stacks and IBT enabled for the kernel.

    >>> verdict(s_cet_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_S_CET=0x5))
    passes

    Scenario SCN_GCR_S_CET_BIT6 (fails): bit 6 set.

    >>> verdict(s_cet_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_S_CET=0x45))
    fails ENTRY_GUEST_S_CET_RESERVED_ZERO: reserved IA32_S_CET bits 0x40 set
        [VM_ENTRY_CONTROLS=0x10d3ff, GUEST_S_CET=0x45]

    Scenario SCN_GCR_S_CET_RESERVED_NOT_LOADED (passes): the same bit 6 with "load CET state"
    clear: the field is not loaded, so its reserved bits do not matter.

    >>> verdict(s_cet_reserved_zero, long_mode(GUEST_S_CET=0x45))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_CET_STATE)
    if not loads:
        return ()
    value = s.need1("GUEST_S_CET")
    bad = value & S_CET_RESERVED
    if not bad:
        return ()
    return (
        me(s_cet_reserved_zero).violation(
            f"reserved IA32_S_CET bits {bad:#x} set", VM_ENTRY_CONTROLS=ctl, GUEST_S_CET=value
        ),
    )


@rule("ENTRY_GUEST_S_CET_SUPPRESS_TRACKER", section=SECTION, phase="guest")
def s_cet_suppress_tracker(s: EntryState) -> Violations:
    """With the "load CET state" VM-entry control set, the IA32_S_CET field may not have
    both SUPPRESS (bit 10) and TRACKER (bit 11) set: indirect-branch tracking cannot be
    suppressed while it waits for an ENDBRANCH.

    Scenario SCN_GCR_S_CET_TRACKER_ONLY (passes): TRACKER alone (an interrupted indirect
    branch, waiting for ENDBRANCH).

    >>> verdict(s_cet_suppress_tracker, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_S_CET=0x804))
    passes

    Scenario SCN_GCR_S_CET_BOTH (fails): SUPPRESS and TRACKER together.

    >>> verdict(s_cet_suppress_tracker, long_mode(VM_ENTRY_CONTROLS=0x10D3FF, GUEST_S_CET=0xC04))
    fails ENTRY_GUEST_S_CET_SUPPRESS_TRACKER: IA32_S_CET has SUPPRESS and TRACKER both set
        [VM_ENTRY_CONTROLS=0x10d3ff, GUEST_S_CET=0xc04]

    Scenario SCN_GCR_S_CET_BOTH_NOT_LOADED (passes): SUPPRESS and TRACKER together with "load
    CET state" clear: the field is ignored.

    >>> verdict(s_cet_suppress_tracker, long_mode(GUEST_S_CET=0xC04))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_CET_STATE)
    if not loads:
        return ()
    value = s.need1("GUEST_S_CET")
    if value & (S_CET_SUPPRESS | S_CET_TRACKER) != S_CET_SUPPRESS | S_CET_TRACKER:
        return ()
    return (
        me(s_cet_suppress_tracker).violation(
            "IA32_S_CET has SUPPRESS and TRACKER both set", VM_ENTRY_CONTROLS=ctl, GUEST_S_CET=value
        ),
    )


@rule("ENTRY_GUEST_LBR_CTL_RESERVED_ZERO", section=SECTION, phase="guest")
def lbr_ctl_reserved_zero(s: EntryState) -> Violations:
    """With the "load guest IA32_LBR_CTL" VM-entry control set, the IA32_LBR_CTL field
    must have 0 in every reserved bit: all but LBREn, OS, USR, CALL_STACK (3:0) and the
    branch-type enables (22:16).

    Scenario SCN_GCR_LBR_CTL_ALL_BRANCHES (passes): LBRs on for every branch type, both
    rings.

    >>> verdict(lbr_ctl_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0x20D3FF, GUEST_IA32_LBR_CTL=0x7F0007))
    passes

    Scenario SCN_GCR_LBR_CTL_BIT4 (fails): bit 4 set.

    >>> verdict(lbr_ctl_reserved_zero, long_mode(VM_ENTRY_CONTROLS=0x20D3FF, GUEST_IA32_LBR_CTL=0x7F0017))
    fails ENTRY_GUEST_LBR_CTL_RESERVED_ZERO: reserved IA32_LBR_CTL bits 0x10 set
        [VM_ENTRY_CONTROLS=0x20d3ff, GUEST_IA32_LBR_CTL=0x7f0017]

    Scenario SCN_GCR_LBR_CTL_NOT_LOADED (passes): the same bit 4 with "load guest
    IA32_LBR_CTL" clear: the field is ignored.

    >>> verdict(lbr_ctl_reserved_zero, long_mode(GUEST_IA32_LBR_CTL=0x7F0017))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_LBR_CTL)
    if not loads:
        return ()
    value = s.need1("GUEST_IA32_LBR_CTL")
    bad = value & LBR_CTL_RESERVED
    if not bad:
        return ()
    return (
        me(lbr_ctl_reserved_zero).violation(
            f"reserved IA32_LBR_CTL bits {bad:#x} set", VM_ENTRY_CONTROLS=ctl, GUEST_IA32_LBR_CTL=value
        ),
    )


@rule("ENTRY_GUEST_PKRS_HIGH_ZERO", section=SECTION, phase="guest")
def pkrs_high_zero(s: EntryState) -> Violations:
    """With the "load PKRS" VM-entry control set, bits 63:32 of the IA32_PKRS field must
    be 0.

    Scenario SCN_GCR_PKRS_ALL_KEYS (passes): access and write disabled for every key.

    >>> verdict(pkrs_high_zero, long_mode(VM_ENTRY_CONTROLS=0x40D3FF, GUEST_IA32_PKRS=0xFFFFFFFF))
    passes

    Scenario SCN_GCR_PKRS_BIT32 (fails): bit 32 set.

    >>> verdict(pkrs_high_zero, long_mode(VM_ENTRY_CONTROLS=0x40D3FF, GUEST_IA32_PKRS=0x100000000))
    fails ENTRY_GUEST_PKRS_HIGH_ZERO: IA32_PKRS bits 63:32 are 0x1
        [VM_ENTRY_CONTROLS=0x40d3ff, GUEST_IA32_PKRS=0x100000000]

    Scenario SCN_GCR_PKRS_NOT_LOADED (passes): the same bit 32 with "load PKRS" clear: the
    field is ignored.

    >>> verdict(pkrs_high_zero, long_mode(GUEST_IA32_PKRS=0x100000000))
    passes
    """
    loads, ctl = _loads(s, VM_ENTRY_LOAD_IA32_PKRS)
    if not loads:
        return ()
    value = s.need1("GUEST_IA32_PKRS")
    if not value & PKRS_RESERVED_HIGH:
        return ()
    return (
        me(pkrs_high_zero).violation(
            f"IA32_PKRS bits 63:32 are {value >> 32:#x}", VM_ENTRY_CONTROLS=ctl, GUEST_IA32_PKRS=value
        ),
    )
