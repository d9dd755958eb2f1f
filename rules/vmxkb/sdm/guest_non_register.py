"""Checks on the guest's non-register state (SDM "Checks on Guest Non-Register State").

A violation is a VM-entry failure: the CPU loads nothing it can keep and reports a VM
exit with basic reason 33 ("invalid guest state") and bit 31 set, i.e. the
``0x80000021`` in KVM's "KVM: entry failed, hardware error 0x80000021". The exit
qualification is 0 except where a rule says otherwise.

The rules read the activity state, the interruptibility state and the pending debug
exceptions, together with RFLAGS, IA32_DEBUGCTL and the event being injected.
"""

from __future__ import annotations

from vmxkb.bits import (
    ACTIVITY_NAMES,
    DB_VECTOR,
    DEBUGCTLMSR_BTF,
    ENTRY_FAIL_NMI_WITH_STI,
    GUEST_ACTIVITY_ACTIVE,
    GUEST_ACTIVITY_HLT,
    GUEST_ACTIVITY_SHUTDOWN,
    GUEST_ACTIVITY_WAIT_SIPI,
    GUEST_INTR_STATE_ENCLAVE_INTR,
    GUEST_INTR_STATE_MOV_SS,
    GUEST_INTR_STATE_NMI,
    GUEST_INTR_STATE_RESERVED,
    GUEST_INTR_STATE_SHADOW,
    GUEST_INTR_STATE_SMI,
    GUEST_INTR_STATE_STI,
    INTR_TYPE_EXT_INTR,
    INTR_TYPE_HARD_EXCEPTION,
    INTR_TYPE_NMI_INTR,
    INTR_TYPE_OTHER_EVENT,
    MC_VECTOR,
    MTF_PENDING_VECTOR,
    PENDING_DBG_B0_B3,
    PENDING_DBG_BS,
    PENDING_DBG_ENABLED_BP,
    PENDING_DBG_RESERVED,
    PENDING_DBG_RTM,
    PIN_BASED_VIRTUAL_NMIS,
    RFLAGS_IF,
    RFLAGS_TF,
    VM_ENTRY_SMM,
    VMCS_LINK_POINTER_NONE,
    X86_CR4_FRED,
    bits,
    intr_info_type,
    intr_info_valid,
    intr_info_vector,
    make_intr_info,
    ss_dpl,
)
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.predicates import beyond_maxphyaddr
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState, entry

SECTION = "SEC_GUEST_NON_REGISTER"

__all__ = ["entry", "verdict", "make_intr_info", "Capabilities", "long_mode", "protected_mode", "real_mode"]


def _injected(s: EntryState) -> int | None:
    info = s.need1("VM_ENTRY_INTR_INFO_FIELD")
    return info if intr_info_valid(info) else None


# --- Activity state ---------------------------------------------------------------------


@rule("ENTRY_GUEST_ACT_VALUE_SUPPORTED", section=SECTION, phase="guest")
def act_value_supported(s: EntryState) -> Violations:
    """The activity state must be one of the four defined values (0 active, 1 HLT,
    2 shutdown, 3 wait-for-SIPI) and one this CPU reports in IA32_VMX_MISC[8:6].

    Scenario SCN_ACT_HLT (passes): HLT on a CPU that supports it.

    >>> verdict(act_value_supported, entry(GUEST_ACTIVITY_STATE=1))
    passes

    Scenario SCN_ACT_UNDEFINED (fails): activity state 4 is not defined.

    >>> verdict(act_value_supported, entry(GUEST_ACTIVITY_STATE=4))
    fails ENTRY_GUEST_ACT_VALUE_SUPPORTED: activity state 4 is not defined [GUEST_ACTIVITY_STATE=0x4]

    Scenario SCN_ACT_ACTIVE_NOT_LISTED (passes): a profile that copies only the
    IA32_VMX_MISC[8:6] bits (here just HLT) and so does not list 0: the active state is
    always allowed, whatever the MSR reports.

    >>> verdict(act_value_supported, long_mode(Capabilities(activity_states=frozenset({1})), GUEST_ACTIVITY_STATE=0))
    passes

    Scenario SCN_ACT_SIPI_UNSUPPORTED (fails): an AP parked in wait-for-SIPI on a CPU that
    reports only HLT: a defined value the CPU does not support still fails the entry.

    >>> verdict(act_value_supported, real_mode(Capabilities(activity_states=frozenset({0, 1})), GUEST_ACTIVITY_STATE=3))
    fails ENTRY_GUEST_ACT_VALUE_SUPPORTED: this CPU does not support wait-for-SIPI [GUEST_ACTIVITY_STATE=0x3]
    """
    act = s.need1("GUEST_ACTIVITY_STATE")
    r = me(act_value_supported)
    if act > GUEST_ACTIVITY_WAIT_SIPI:
        return (r.violation(f"activity state {act} is not defined", GUEST_ACTIVITY_STATE=act),)
    if act != GUEST_ACTIVITY_ACTIVE and act not in s.caps.activity_states:
        return (r.violation(f"this CPU does not support {ACTIVITY_NAMES[act]}", GUEST_ACTIVITY_STATE=act),)
    return ()


@rule("ENTRY_GUEST_ACT_HLT_NEEDS_CPL0", section=SECTION, phase="guest")
def act_hlt_needs_cpl0(s: EntryState) -> Violations:
    """HLT may be the activity state only when SS.DPL (which stands for CPL) is 0.

    Scenario SCN_ACT_HLT_CPL0 (passes): HLT with a ring-0 stack segment.

    >>> verdict(act_hlt_needs_cpl0, entry(GUEST_ACTIVITY_STATE=1, GUEST_SS_AR_BYTES=0xc093))
    passes

    Scenario SCN_ACT_HLT_CPL3 (fails): HLT with SS.DPL=3.

    >>> verdict(act_hlt_needs_cpl0, entry(GUEST_ACTIVITY_STATE=1, GUEST_SS_AR_BYTES=0xc0f3))
    fails ENTRY_GUEST_ACT_HLT_NEEDS_CPL0: HLT with SS.DPL=3 [GUEST_ACTIVITY_STATE=0x1, GUEST_SS_AR_BYTES=0xc0f3]

    Scenario SCN_ACT_USER_MODE_RUNNING (passes): a guest running user code (SS.DPL=3) in
    the active state: the CPL requirement belongs to HLT only.

    >>> verdict(act_hlt_needs_cpl0, long_mode(GUEST_ACTIVITY_STATE=0, GUEST_CS_AR_BYTES=0xA0FB,
    ...     GUEST_SS_AR_BYTES=0xC0F3))
    passes
    """
    act = s.need1("GUEST_ACTIVITY_STATE")
    if act != GUEST_ACTIVITY_HLT:
        return ()
    ar = s.need1("GUEST_SS_AR_BYTES")
    if ss_dpl(ar) == 0:
        return ()
    return (
        me(act_hlt_needs_cpl0).violation(
            f"HLT with SS.DPL={ss_dpl(ar)}", GUEST_ACTIVITY_STATE=act, GUEST_SS_AR_BYTES=ar
        ),
    )


@rule("ENTRY_GUEST_ACT_SHADOW_NEEDS_ACTIVE", section=SECTION, phase="guest")
def act_shadow_needs_active(s: EntryState) -> Violations:
    """If the interruptibility state shows blocking by STI or by MOV SS, the activity
    state must be active.

    Scenario SCN_ACT_SHADOW_ACTIVE (passes): an STI shadow while active.

    >>> verdict(act_shadow_needs_active, entry(GUEST_ACTIVITY_STATE=0, GUEST_INTERRUPTIBILITY_INFO=1))
    passes

    Scenario SCN_ACT_SHADOW_HLT (fails): "sti; hlt" entered as HLT with the STI shadow kept.

    >>> verdict(act_shadow_needs_active, entry(GUEST_ACTIVITY_STATE=1, GUEST_INTERRUPTIBILITY_INFO=1))
    fails ENTRY_GUEST_ACT_SHADOW_NEEDS_ACTIVE: STI/MOV-SS blocking with activity state HLT
        [GUEST_ACTIVITY_STATE=0x1, GUEST_INTERRUPTIBILITY_INFO=0x1]

    Scenario SCN_ACT_HLT_SHADOW_EXPIRED (passes): "sti; hlt" entered as HLT with the
    interruptibility state clear, as the CPU saves it: the STI shadow ended with the HLT
    instruction, so HLT without blocking is the correct state.

    >>> verdict(act_shadow_needs_active, long_mode(GUEST_ACTIVITY_STATE=1, GUEST_INTERRUPTIBILITY_INFO=0))
    passes
    """
    act, intr = s.need("GUEST_ACTIVITY_STATE", "GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_SHADOW or act == GUEST_ACTIVITY_ACTIVE:
        return ()
    return (
        me(act_shadow_needs_active).violation(
            f"STI/MOV-SS blocking with activity state {ACTIVITY_NAMES.get(act, act)}",
            GUEST_ACTIVITY_STATE=act,
            GUEST_INTERRUPTIBILITY_INFO=intr,
        ),
    )


def _allowed_in(act: int, info: int) -> bool:
    """Whether the activity state ``act`` lets the injected event ``info`` through."""
    t, v = intr_info_type(info), intr_info_vector(info)
    if act == GUEST_ACTIVITY_ACTIVE:
        return True
    if act == GUEST_ACTIVITY_HLT:
        return (
            t in (INTR_TYPE_EXT_INTR, INTR_TYPE_NMI_INTR)
            or (t == INTR_TYPE_HARD_EXCEPTION and v in (DB_VECTOR, MC_VECTOR))
            or (t == INTR_TYPE_OTHER_EVENT and v == MTF_PENDING_VECTOR)
        )
    if act == GUEST_ACTIVITY_SHUTDOWN:
        return t == INTR_TYPE_NMI_INTR or (t == INTR_TYPE_HARD_EXCEPTION and v == MC_VECTOR)
    return False  # wait-for-SIPI blocks every injection


@rule("ENTRY_GUEST_ACT_INJECTION_ALLOWED", section=SECTION, phase="guest")
def act_injection_allowed(s: EntryState) -> Violations:
    """An injected event must be one the activity state would not block: in HLT only an
    external interrupt, an NMI, a hardware exception #DB or #MC, or a pending MTF exit; in
    shutdown only an NMI or a hardware exception #MC; in wait-for-SIPI nothing.

    Scenario SCN_ACT_INJECT_DB_IN_HLT (passes): a #DB may be injected into HLT.

    >>> verdict(act_injection_allowed, entry(GUEST_ACTIVITY_STATE=1, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes

    Scenario SCN_ACT_INJECT_ICEBP_IN_HLT (fails): the same vector 1 injected as an ICEBP
    (INT1, type 5, privileged software exception) is refused in HLT: the SDM's list for
    HLT names the interruption type (hardware exception) as well as the vector, so a #DB
    that an ICEBP raised cannot be re-injected into a vCPU entered in HLT.

    >>> verdict(act_injection_allowed, entry(GUEST_ACTIVITY_STATE=1, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 5),
    ...                                      VM_ENTRY_INSTRUCTION_LEN=1))
    fails ENTRY_GUEST_ACT_INJECTION_ALLOWED: HLT blocks the injected event (type 5, vector 1)
        [GUEST_ACTIVITY_STATE=0x1, VM_ENTRY_INTR_INFO_FIELD=0x80000501]

    Scenario SCN_ACT_INJECT_UD_IN_HLT (fails): a #UD may not.

    >>> verdict(act_injection_allowed, entry(GUEST_ACTIVITY_STATE=1, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(6, 3)))
    fails ENTRY_GUEST_ACT_INJECTION_ALLOWED: HLT blocks the injected event (type 3, vector 6)
        [GUEST_ACTIVITY_STATE=0x1, VM_ENTRY_INTR_INFO_FIELD=0x80000306]

    Scenario SCN_ACT_HLT_NOTHING_INJECTED (passes): an idle vCPU re-entered in HLT with
    the #UD of an earlier injection still in the field but its valid bit clear (a VM exit
    clears only bit 31): nothing is injected, so HLT blocks nothing.

    >>> verdict(act_injection_allowed, long_mode(GUEST_ACTIVITY_STATE=1, VM_ENTRY_INTR_INFO_FIELD=0x306))
    passes

    Scenario SCN_ACT_UNDEFINED_WITH_EVENT (passes): an event injected with the undefined
    activity state 4: this rule has no blocking table for it and leaves the failure to
    ENTRY_GUEST_ACT_VALUE_SUPPORTED, so the cause is reported once.

    >>> verdict(act_injection_allowed, long_mode(GUEST_ACTIVITY_STATE=4, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(6, 3)))
    passes

    Scenario SCN_ACT_INJECT_UD_ACTIVE (passes): the same #UD injected into a running
    (active) vCPU: the active state blocks nothing.

    >>> verdict(act_injection_allowed, long_mode(GUEST_ACTIVITY_STATE=0, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(6, 3)))
    passes

    Scenario SCN_ACT_INJECT_NMI_IN_SHUTDOWN (passes): an NMI injected into a vCPU in
    shutdown, one of the two events (NMI, #MC) that shutdown lets through.

    >>> verdict(act_injection_allowed, long_mode(GUEST_ACTIVITY_STATE=2, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 2)))
    passes

    Scenario SCN_ACT_INJECT_INTR_IN_SIPI_WAIT (fails): an external interrupt injected into an
    AP waiting for SIPI: no event may be injected in wait-for-SIPI.

    >>> verdict(act_injection_allowed, real_mode(GUEST_ACTIVITY_STATE=3, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0x30, 0)))
    fails ENTRY_GUEST_ACT_INJECTION_ALLOWED: wait-for-SIPI blocks the injected event (type 0, vector 48)
        [GUEST_ACTIVITY_STATE=0x3, VM_ENTRY_INTR_INFO_FIELD=0x80000030]
    """
    info = _injected(s)
    if info is None:
        return ()
    act = s.need1("GUEST_ACTIVITY_STATE")
    if act > GUEST_ACTIVITY_WAIT_SIPI or _allowed_in(act, info):
        return ()
    return (
        me(act_injection_allowed).violation(
            f"{ACTIVITY_NAMES[act]} blocks the injected event (type {intr_info_type(info)}, "
            f"vector {intr_info_vector(info)})",
            GUEST_ACTIVITY_STATE=act,
            VM_ENTRY_INTR_INFO_FIELD=info,
        ),
    )


@rule("ENTRY_GUEST_ACT_NO_SIPI_WAIT_ON_SMM_ENTRY", section=SECTION, phase="guest")
def act_no_sipi_wait_on_smm_entry(s: EntryState) -> Violations:
    """With the "entry to SMM" VM-entry control set, the activity state may not be
    wait-for-SIPI.

    Scenario SCN_ACT_SMM_ENTRY_ACTIVE (passes): entry to SMM in the active state.

    >>> verdict(act_no_sipi_wait_on_smm_entry, entry(VM_ENTRY_CONTROLS=0x400, GUEST_ACTIVITY_STATE=0))
    passes

    Scenario SCN_ACT_SMM_ENTRY_SIPI (fails): entry to SMM in wait-for-SIPI.

    >>> verdict(act_no_sipi_wait_on_smm_entry, entry(VM_ENTRY_CONTROLS=0x400, GUEST_ACTIVITY_STATE=3))
    fails ENTRY_GUEST_ACT_NO_SIPI_WAIT_ON_SMM_ENTRY: wait-for-SIPI with "entry to SMM"
        [VM_ENTRY_CONTROLS=0x400, GUEST_ACTIVITY_STATE=0x3]

    Scenario SCN_ACT_SIPI_WITHOUT_SMM_ENTRY (passes): an AP after INIT entered in
    wait-for-SIPI by an ordinary VM entry ("entry to SMM" clear): the restriction is
    only for entries to SMM.

    >>> verdict(act_no_sipi_wait_on_smm_entry, real_mode(GUEST_ACTIVITY_STATE=3))
    passes
    """
    ctl, act = s.need("VM_ENTRY_CONTROLS", "GUEST_ACTIVITY_STATE")
    if ctl & VM_ENTRY_SMM and act == GUEST_ACTIVITY_WAIT_SIPI:
        return (
            me(act_no_sipi_wait_on_smm_entry).violation(
                'wait-for-SIPI with "entry to SMM"', VM_ENTRY_CONTROLS=ctl, GUEST_ACTIVITY_STATE=act
            ),
        )
    return ()


# --- Interruptibility state ------------------------------------------------------------------


@rule("ENTRY_GUEST_INTR_RESERVED_ZERO", section=SECTION, phase="guest")
def intr_reserved_zero(s: EntryState) -> Violations:
    """Bits 31:5 of the interruptibility state are reserved and must be 0 (31:4 in
    editions before bit 4, enclave interruption, was defined).

    Scenario SCN_INTR_DEFINED_BITS (passes): MOV-SS blocking and NMI blocking.

    >>> verdict(intr_reserved_zero, entry(GUEST_INTERRUPTIBILITY_INFO=0xa))
    passes

    Scenario SCN_INTR_RESERVED_BIT (fails): bit 5 set.

    >>> verdict(intr_reserved_zero, entry(GUEST_INTERRUPTIBILITY_INFO=0x20))
    fails ENTRY_GUEST_INTR_RESERVED_ZERO: reserved bits 0x20 set [GUEST_INTERRUPTIBILITY_INFO=0x20]
    """
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_RESERVED:
        return ()
    return (
        me(intr_reserved_zero).violation(
            f"reserved bits {intr & GUEST_INTR_STATE_RESERVED:#x} set", GUEST_INTERRUPTIBILITY_INFO=intr
        ),
    )


@rule("ENTRY_GUEST_INTR_STI_MOVSS_EXCLUSIVE", section=SECTION, phase="guest")
def intr_sti_movss_exclusive(s: EntryState) -> Violations:
    """Blocking by STI and blocking by MOV SS may not both be set.

    Scenario SCN_INTR_MOVSS_ONLY (passes): MOV-SS blocking alone.

    >>> verdict(intr_sti_movss_exclusive, entry(GUEST_INTERRUPTIBILITY_INFO=2))
    passes

    Scenario SCN_INTR_BOTH_SHADOWS (fails): both bits, as an SVM-sourced vcpu-events
    shadow would read if copied bit for bit.

    >>> verdict(intr_sti_movss_exclusive, entry(GUEST_INTERRUPTIBILITY_INFO=3))
    fails ENTRY_GUEST_INTR_STI_MOVSS_EXCLUSIVE: STI and MOV-SS blocking both set [GUEST_INTERRUPTIBILITY_INFO=0x3]
    """
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if intr & GUEST_INTR_STATE_SHADOW != GUEST_INTR_STATE_SHADOW:
        return ()
    return (
        me(intr_sti_movss_exclusive).violation(
            "STI and MOV-SS blocking both set", GUEST_INTERRUPTIBILITY_INFO=intr
        ),
    )


@rule("ENTRY_GUEST_INTR_STI_NEEDS_IF", section=SECTION, phase="guest")
def intr_sti_needs_if(s: EntryState) -> Violations:
    """Blocking by STI may be set only if RFLAGS.IF is 1 (an STI shadow exists only
    after STI turned IF from 0 to 1).

    Scenario SCN_INTR_STI_IF1 (passes): STI blocking with IF=1.

    >>> verdict(intr_sti_needs_if, entry(GUEST_INTERRUPTIBILITY_INFO=1, GUEST_RFLAGS=0x202))
    passes

    Scenario SCN_INTR_STI_IF0 (fails): STI blocking with IF=0, as after an SMI taken in
    an STI shadow (the 2022 Proxmox report fixed by fb28875fd7da).

    >>> verdict(intr_sti_needs_if, entry(GUEST_INTERRUPTIBILITY_INFO=1, GUEST_RFLAGS=0x2))
    fails ENTRY_GUEST_INTR_STI_NEEDS_IF: STI blocking with RFLAGS.IF=0
        [GUEST_INTERRUPTIBILITY_INFO=0x1, GUEST_RFLAGS=0x2]

    Scenario SCN_INTR_MOVSS_IF0 (passes): a MOV-SS shadow with interrupts disabled (IF=0):
    only the STI shadow implies IF=1, MOV SS blocks whatever IF is.

    >>> verdict(intr_sti_needs_if, long_mode(GUEST_INTERRUPTIBILITY_INFO=2, GUEST_RFLAGS=0x2))
    passes
    """
    intr, rflags = s.need("GUEST_INTERRUPTIBILITY_INFO", "GUEST_RFLAGS")
    if intr & GUEST_INTR_STATE_STI and not rflags & RFLAGS_IF:
        return (
            me(intr_sti_needs_if).violation(
                "STI blocking with RFLAGS.IF=0", GUEST_INTERRUPTIBILITY_INFO=intr, GUEST_RFLAGS=rflags
            ),
        )
    return ()


@rule("ENTRY_GUEST_INTR_EXTINT_NO_SHADOW", section=SECTION, phase="guest")
def intr_extint_no_shadow(s: EntryState) -> Violations:
    """Injecting an external interrupt requires both STI and MOV-SS blocking to be clear.

    Scenario SCN_INTR_EXTINT_OPEN (passes): an interrupt injected with no shadow.

    >>> verdict(intr_extint_no_shadow, entry(GUEST_INTERRUPTIBILITY_INFO=0, VM_ENTRY_INTR_INFO_FIELD=0x800000ec))
    passes

    Scenario SCN_INTR_EXTINT_IN_STI (fails): an interrupt injected inside an STI shadow.

    >>> verdict(intr_extint_no_shadow, entry(GUEST_INTERRUPTIBILITY_INFO=1, VM_ENTRY_INTR_INFO_FIELD=0x800000ec))
    fails ENTRY_GUEST_INTR_EXTINT_NO_SHADOW: external interrupt injected with STI/MOV-SS blocking
        [GUEST_INTERRUPTIBILITY_INFO=0x1, VM_ENTRY_INTR_INFO_FIELD=0x800000ec]

    Scenario SCN_INTR_EXTINT_STALE_IN_STI (passes): an STI shadow with the interrupt of an
    earlier injection left in the field, valid bit clear as a VM exit leaves it: no
    interrupt is injected, so the shadow is allowed.

    >>> verdict(intr_extint_no_shadow, long_mode(GUEST_INTERRUPTIBILITY_INFO=1, VM_ENTRY_INTR_INFO_FIELD=0xec))
    passes

    Scenario SCN_INTR_EXCEPTION_IN_STI (passes): a #PF injected while an STI shadow is
    reported: this check is about external interrupts; hardware exceptions may be
    injected in a shadow.

    >>> verdict(intr_extint_no_shadow, long_mode(GUEST_INTERRUPTIBILITY_INFO=1,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(14, 3, deliver_code=True)))
    passes
    """
    info = _injected(s)
    if info is None or intr_info_type(info) != INTR_TYPE_EXT_INTR:
        return ()
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_SHADOW:
        return ()
    return (
        me(intr_extint_no_shadow).violation(
            "external interrupt injected with STI/MOV-SS blocking",
            GUEST_INTERRUPTIBILITY_INFO=intr,
            VM_ENTRY_INTR_INFO_FIELD=info,
        ),
    )


@rule("ENTRY_GUEST_INTR_NMI_NO_MOVSS", section=SECTION, phase="guest")
def intr_nmi_no_movss(s: EntryState) -> Violations:
    """Injecting an NMI requires MOV-SS blocking to be clear.

    Scenario SCN_INTR_NMI_OPEN (passes): an NMI injected with no shadow.

    >>> verdict(intr_nmi_no_movss, entry(GUEST_INTERRUPTIBILITY_INFO=0, VM_ENTRY_INTR_INFO_FIELD=0x80000202))
    passes

    Scenario SCN_INTR_NMI_IN_MOVSS (fails): an NMI injected in a MOV-SS shadow.

    >>> verdict(intr_nmi_no_movss, entry(GUEST_INTERRUPTIBILITY_INFO=2, VM_ENTRY_INTR_INFO_FIELD=0x80000202))
    fails ENTRY_GUEST_INTR_NMI_NO_MOVSS: NMI injected with MOV-SS blocking
        [GUEST_INTERRUPTIBILITY_INFO=0x2, VM_ENTRY_INTR_INFO_FIELD=0x80000202]

    Scenario SCN_INTR_NMI_STALE_IN_MOVSS (passes): a MOV-SS shadow with an earlier NMI left
    in the field, valid bit clear: nothing is injected, so MOV-SS blocking is allowed.

    >>> verdict(intr_nmi_no_movss, long_mode(GUEST_INTERRUPTIBILITY_INFO=2, VM_ENTRY_INTR_INFO_FIELD=0x202))
    passes

    Scenario SCN_INTR_EXCEPTION_IN_MOVSS (passes): a #PF injected while a MOV-SS shadow is
    reported: the rule restricts NMI injection only.

    >>> verdict(intr_nmi_no_movss, long_mode(GUEST_INTERRUPTIBILITY_INFO=2,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(14, 3, deliver_code=True)))
    passes
    """
    info = _injected(s)
    if info is None or intr_info_type(info) != INTR_TYPE_NMI_INTR:
        return ()
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_MOV_SS:
        return ()
    return (
        me(intr_nmi_no_movss).violation(
            "NMI injected with MOV-SS blocking", GUEST_INTERRUPTIBILITY_INFO=intr, VM_ENTRY_INTR_INFO_FIELD=info
        ),
    )


@rule(
    "ENTRY_GUEST_INTR_NMI_STI_MODEL_SPECIFIC",
    section=SECTION,
    phase="guest",
    qualification=ENTRY_FAIL_NMI_WITH_STI,
)
def intr_nmi_sti_model_specific(s: EntryState) -> Violations:
    """Injecting an NMI while STI blocking is set is refused by some processors and
    accepted by others; a refusal is reported with exit qualification 3. Which one this
    CPU does is a capability fact.

    Scenario SCN_INTR_NMI_STI_TOLERANT (passes): a CPU that accepts it.

    >>> verdict(intr_nmi_sti_model_specific, entry(Capabilities(nmi_injection_rejects_sti_blocking=False),
    ...     GUEST_INTERRUPTIBILITY_INFO=1, VM_ENTRY_INTR_INFO_FIELD=0x80000202))
    passes

    Scenario SCN_INTR_NMI_STI_STRICT (fails): a CPU that refuses it.

    >>> verdict(intr_nmi_sti_model_specific, entry(GUEST_INTERRUPTIBILITY_INFO=1, VM_ENTRY_INTR_INFO_FIELD=0x80000202))
    fails ENTRY_GUEST_INTR_NMI_STI_MODEL_SPECIFIC: NMI injected with STI blocking on a CPU that refuses it
        [GUEST_INTERRUPTIBILITY_INFO=0x1, VM_ENTRY_INTR_INFO_FIELD=0x80000202]

    Scenario SCN_INTR_NMI_STRICT_NO_SHADOW (passes): an NMI injected with no STI shadow on
    a CPU that refuses NMIs in one: the refusal needs the shadow.

    >>> verdict(intr_nmi_sti_model_specific, long_mode(GUEST_INTERRUPTIBILITY_INFO=0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 2)))
    passes

    Scenario SCN_INTR_NMI_STALE_IN_STI (passes): an STI shadow on the same CPU with an
    earlier NMI left in the field, valid bit clear: no NMI is injected.

    >>> verdict(intr_nmi_sti_model_specific, long_mode(GUEST_INTERRUPTIBILITY_INFO=1, VM_ENTRY_INTR_INFO_FIELD=0x202))
    passes

    Scenario SCN_INTR_EXCEPTION_IN_STI_STRICT (passes): a #PF injected with an STI shadow
    on the same CPU: the model-specific refusal is about NMIs only.

    >>> verdict(intr_nmi_sti_model_specific, long_mode(GUEST_INTERRUPTIBILITY_INFO=1,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(14, 3, deliver_code=True)))
    passes
    """
    info = _injected(s)
    if info is None or intr_info_type(info) != INTR_TYPE_NMI_INTR:
        return ()
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_STI or not s.caps.nmi_injection_rejects_sti_blocking:
        return ()
    return (
        me(intr_nmi_sti_model_specific).violation(
            "NMI injected with STI blocking on a CPU that refuses it",
            GUEST_INTERRUPTIBILITY_INFO=intr,
            VM_ENTRY_INTR_INFO_FIELD=info,
        ),
    )


@rule("ENTRY_GUEST_INTR_SMI_BIT_OUTSIDE_SMM", section=SECTION, phase="guest")
def intr_smi_bit_outside_smm(s: EntryState) -> Violations:
    """Blocking by SMI (bit 2) must be 0 when the VM entry is not executed in SMM.

    Scenario SCN_INTR_SMI_CLEAR (passes): no SMI blocking outside SMM.

    >>> verdict(intr_smi_bit_outside_smm, entry(GUEST_INTERRUPTIBILITY_INFO=0))
    passes

    Scenario SCN_INTR_SMI_OUTSIDE (fails): SMI blocking outside SMM.

    >>> verdict(intr_smi_bit_outside_smm, entry(GUEST_INTERRUPTIBILITY_INFO=4))
    fails ENTRY_GUEST_INTR_SMI_BIT_OUTSIDE_SMM: SMI blocking outside SMM [GUEST_INTERRUPTIBILITY_INFO=0x4]

    Scenario SCN_INTR_SMI_BLOCKING_IN_SMM (passes): an SMM-transfer monitor (dual-monitor
    treatment, running in SMM) entering its SMM guest with "entry to SMM" and SMI
    blocking set: SMI blocking is legal when VM entry is executed in SMM.

    >>> verdict(intr_smi_bit_outside_smm, long_mode(in_smm=True, VM_ENTRY_CONTROLS=0xD7FF,
    ...     GUEST_INTERRUPTIBILITY_INFO=4))
    passes
    """
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if intr & GUEST_INTR_STATE_SMI and not s.in_smm:
        return (me(intr_smi_bit_outside_smm).violation("SMI blocking outside SMM", GUEST_INTERRUPTIBILITY_INFO=intr),)
    return ()


@rule("ENTRY_GUEST_INTR_SMI_BIT_ON_SMM_ENTRY", section=SECTION, phase="guest")
def intr_smi_bit_on_smm_entry(s: EntryState) -> Violations:
    """With the "entry to SMM" VM-entry control set, blocking by SMI must be 1.

    Scenario SCN_INTR_SMM_ENTRY_SMI_SET (passes): entry to SMM with SMI blocking.

    >>> verdict(intr_smi_bit_on_smm_entry, entry(VM_ENTRY_CONTROLS=0x400, GUEST_INTERRUPTIBILITY_INFO=4))
    passes

    Scenario SCN_INTR_SMM_ENTRY_SMI_CLEAR (fails): entry to SMM without it.

    >>> verdict(intr_smi_bit_on_smm_entry, entry(VM_ENTRY_CONTROLS=0x400, GUEST_INTERRUPTIBILITY_INFO=0))
    fails ENTRY_GUEST_INTR_SMI_BIT_ON_SMM_ENTRY: "entry to SMM" without SMI blocking
        [VM_ENTRY_CONTROLS=0x400, GUEST_INTERRUPTIBILITY_INFO=0x0]

    Scenario SCN_INTR_NO_SMM_ENTRY_NO_SMI (passes): an ordinary VM entry ("entry to SMM"
    clear) without SMI blocking: SMI blocking is required only on entry to SMM.

    >>> verdict(intr_smi_bit_on_smm_entry, long_mode(GUEST_INTERRUPTIBILITY_INFO=0))
    passes
    """
    ctl, intr = s.need("VM_ENTRY_CONTROLS", "GUEST_INTERRUPTIBILITY_INFO")
    if ctl & VM_ENTRY_SMM and not intr & GUEST_INTR_STATE_SMI:
        return (
            me(intr_smi_bit_on_smm_entry).violation(
                '"entry to SMM" without SMI blocking', VM_ENTRY_CONTROLS=ctl, GUEST_INTERRUPTIBILITY_INFO=intr
            ),
        )
    return ()


@rule("ENTRY_GUEST_INTR_VNMI_INJECT_NEEDS_UNBLOCKED", section=SECTION, phase="guest")
def intr_vnmi_inject_needs_unblocked(s: EntryState) -> Violations:
    """With the "virtual NMIs" control set, injecting an NMI requires bit 3 (here:
    virtual-NMI blocking) to be clear. Without virtual NMIs there is no such check.

    Scenario SCN_INTR_VNMI_UNBLOCKED (passes): NMI injected, virtual NMIs, not blocked.

    >>> verdict(intr_vnmi_inject_needs_unblocked, entry(PIN_BASED_VM_EXEC_CONTROL=0x20,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, VM_ENTRY_INTR_INFO_FIELD=0x80000202))
    passes

    Scenario SCN_INTR_VNMI_BLOCKED (fails): the same with virtual-NMI blocking set.

    >>> verdict(intr_vnmi_inject_needs_unblocked, entry(PIN_BASED_VM_EXEC_CONTROL=0x20,
    ...     GUEST_INTERRUPTIBILITY_INFO=8, VM_ENTRY_INTR_INFO_FIELD=0x80000202))
    fails ENTRY_GUEST_INTR_VNMI_INJECT_NEEDS_UNBLOCKED: NMI injected with virtual-NMI blocking
        [PIN_BASED_VM_EXEC_CONTROL=0x20, GUEST_INTERRUPTIBILITY_INFO=0x8, VM_ENTRY_INTR_INFO_FIELD=0x80000202]

    Scenario SCN_INTR_VNMI_BLOCKED_NOTHING_INJECTED (passes): virtual NMIs, the guest inside
    its NMI handler (virtual-NMI blocking set) and the NMI of the previous entry left in
    the field with the valid bit clear: nothing is injected.

    >>> verdict(intr_vnmi_inject_needs_unblocked, long_mode(GUEST_INTERRUPTIBILITY_INFO=8,
    ...     VM_ENTRY_INTR_INFO_FIELD=0x202))
    passes

    Scenario SCN_INTR_VNMI_BLOCKED_EXTINT (passes): an external interrupt injected into the
    same NMI handler: virtual-NMI blocking holds back NMIs, not interrupts.

    >>> verdict(intr_vnmi_inject_needs_unblocked, long_mode(GUEST_INTERRUPTIBILITY_INFO=8,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0xEC, 0)))
    passes

    Scenario SCN_INTR_NMI_BLOCKED_NO_VNMI (passes): an NMI injected with NMI blocking set
    but the "virtual NMIs" control clear: without virtual NMIs, VM entry does not check
    NMI blocking against an injected NMI.

    >>> verdict(intr_vnmi_inject_needs_unblocked, long_mode(PIN_BASED_VM_EXEC_CONTROL=0xDF,
    ...     GUEST_INTERRUPTIBILITY_INFO=8, VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 2)))
    passes
    """
    info = _injected(s)
    if info is None or intr_info_type(info) != INTR_TYPE_NMI_INTR:
        return ()
    pin, intr = s.need("PIN_BASED_VM_EXEC_CONTROL", "GUEST_INTERRUPTIBILITY_INFO")
    if pin & PIN_BASED_VIRTUAL_NMIS and intr & GUEST_INTR_STATE_NMI:
        return (
            me(intr_vnmi_inject_needs_unblocked).violation(
                "NMI injected with virtual-NMI blocking",
                PIN_BASED_VM_EXEC_CONTROL=pin,
                GUEST_INTERRUPTIBILITY_INFO=intr,
                VM_ENTRY_INTR_INFO_FIELD=info,
            ),
        )
    return ()


@rule("ENTRY_GUEST_INTR_ENCLAVE_BIT", section=SECTION, phase="guest")
def intr_enclave_bit(s: EntryState) -> Violations:
    """If enclave interruption (bit 4) is set, MOV-SS blocking must be clear and the CPU
    must support SGX.

    Scenario SCN_INTR_ENCLAVE_OK (passes): enclave interruption on an SGX CPU.

    >>> verdict(intr_enclave_bit, entry(Capabilities(sgx=True), GUEST_INTERRUPTIBILITY_INFO=0x10))
    passes

    Scenario SCN_INTR_ENCLAVE_MOVSS (fails): enclave interruption with MOV-SS blocking.

    >>> verdict(intr_enclave_bit, entry(Capabilities(sgx=True), GUEST_INTERRUPTIBILITY_INFO=0x12))
    fails ENTRY_GUEST_INTR_ENCLAVE_BIT: enclave interruption with MOV-SS blocking [GUEST_INTERRUPTIBILITY_INFO=0x12]

    Scenario SCN_INTR_ENCLAVE_NO_SGX (fails): enclave interruption on a CPU without SGX.

    >>> verdict(intr_enclave_bit, entry(Capabilities(sgx=False), GUEST_INTERRUPTIBILITY_INFO=0x10))
    fails ENTRY_GUEST_INTR_ENCLAVE_BIT: enclave interruption on a CPU without SGX [GUEST_INTERRUPTIBILITY_INFO=0x10]

    Scenario SCN_INTR_MOVSS_NO_SGX (passes): MOV-SS blocking on a CPU without SGX, bit 4
    clear: neither restriction applies unless enclave interruption is reported.

    >>> verdict(intr_enclave_bit, long_mode(Capabilities(sgx=False), GUEST_INTERRUPTIBILITY_INFO=2))
    passes
    """
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_ENCLAVE_INTR:
        return ()
    r = me(intr_enclave_bit)
    out = []
    if intr & GUEST_INTR_STATE_MOV_SS:
        out.append(r.violation("enclave interruption with MOV-SS blocking", GUEST_INTERRUPTIBILITY_INFO=intr))
    if not s.caps.sgx:
        out.append(r.violation("enclave interruption on a CPU without SGX", GUEST_INTERRUPTIBILITY_INFO=intr))
    return tuple(out)


# --- Pending debug exceptions ---------------------------------------------------------------


@rule("ENTRY_GUEST_PDE_RESERVED_ZERO", section=SECTION, phase="guest")
def pde_reserved_zero(s: EntryState) -> Violations:
    """Bits 11:4, 13, 15 and 63:17 of the pending debug exceptions are reserved and must
    be 0 (before RTM was defined, bit 16 was reserved too).

    Scenario SCN_PDE_DEFINED_BITS (passes): BS and B0.

    >>> verdict(pde_reserved_zero, entry(GUEST_PENDING_DBG_EXCEPTIONS=0x4001))
    passes

    Scenario SCN_PDE_BD_BIT (fails): bit 13 (DR6.BD) has no pending form.

    >>> verdict(pde_reserved_zero, entry(GUEST_PENDING_DBG_EXCEPTIONS=0x2000))
    fails ENTRY_GUEST_PDE_RESERVED_ZERO: reserved bits 0x2000 set [GUEST_PENDING_DBG_EXCEPTIONS=0x2000]
    """
    pde = s.need1("GUEST_PENDING_DBG_EXCEPTIONS")
    if not pde & PENDING_DBG_RESERVED:
        return ()
    return (
        me(pde_reserved_zero).violation(
            f"reserved bits {pde & PENDING_DBG_RESERVED:#x} set", GUEST_PENDING_DBG_EXCEPTIONS=pde
        ),
    )


def _bs_trigger(intr: int, act: int) -> bool:
    """The BS rules apply inside an STI or MOV-SS shadow, or in HLT."""
    return bool(intr & GUEST_INTR_STATE_SHADOW) or act == GUEST_ACTIVITY_HLT


_BS_FIELDS = (
    "GUEST_INTERRUPTIBILITY_INFO",
    "GUEST_ACTIVITY_STATE",
    "GUEST_RFLAGS",
    "GUEST_IA32_DEBUGCTL",
    "GUEST_PENDING_DBG_EXCEPTIONS",
)


@rule("ENTRY_GUEST_PDE_BS_REQUIRED_TF", section=SECTION, phase="guest")
def pde_bs_required_tf(s: EntryState) -> Violations:
    """If the guest is entered in an STI shadow, in a MOV-SS shadow or in HLT, and
    single-stepping is armed (RFLAGS.TF=1 and DEBUGCTL.BTF=0), then BS (bit 14) of the
    pending debug exceptions must be 1. There is no exemption for an entry that injects
    an event, not even a #DB: this is the check KVM stuffs BS for.

    Scenario SCN_PDE_BS_SET_IN_MOVSS (passes): TF=1 in a MOV-SS shadow with BS set, as the
    CPU saves it on a non-#DB exit inside the shadow.

    >>> verdict(pde_bs_required_tf, entry(GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0,
    ...     GUEST_RFLAGS=0x102, GUEST_IA32_DEBUGCTL=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
    passes

    Scenario SCN_PDE_BS_MISSING_STI_DB (fails): the XSA-308 sequence: STI with TF=1, the
    single-step #DB intercepted and re-injected without BS (KVM before b9bed78e2fa9).

    >>> verdict(pde_bs_required_tf, entry(GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0,
    ...     GUEST_RFLAGS=0x302, GUEST_IA32_DEBUGCTL=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    fails ENTRY_GUEST_PDE_BS_REQUIRED_TF: TF=1, BTF=0 in an STI shadow but BS=0
        [GUEST_INTERRUPTIBILITY_INFO=0x1, GUEST_ACTIVITY_STATE=0x0, GUEST_RFLAGS=0x302,
         GUEST_IA32_DEBUGCTL=0x0, GUEST_PENDING_DBG_EXCEPTIONS=0x0]

    Scenario SCN_PDE_BS_MISSING_HLT (fails): a guest that executed HLT with TF=1 (the
    single-step trap of HLT is pending when the guest is entered in HLT), saved without BS.

    >>> verdict(pde_bs_required_tf, entry(GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=1,
    ...     GUEST_RFLAGS=0x102, GUEST_IA32_DEBUGCTL=0, GUEST_PENDING_DBG_EXCEPTIONS=0))
    fails ENTRY_GUEST_PDE_BS_REQUIRED_TF: TF=1, BTF=0 in HLT but BS=0
        [GUEST_INTERRUPTIBILITY_INFO=0x0, GUEST_ACTIVITY_STATE=0x1, GUEST_RFLAGS=0x102,
         GUEST_IA32_DEBUGCTL=0x0, GUEST_PENDING_DBG_EXCEPTIONS=0x0]

    Scenario SCN_PDE_SINGLE_STEP_OUTSIDE_SHADOW (passes): a debugger single-stepping the
    guest (TF=1) outside any shadow and not in HLT: VM entry asks for BS only in a shadow
    or in HLT, so BS=0 passes here.

    >>> verdict(pde_bs_required_tf, long_mode(GUEST_RFLAGS=0x302, GUEST_PENDING_DBG_EXCEPTIONS=0))
    passes

    Scenario SCN_PDE_HLT_NO_TF (passes): the everyday idle vCPU: entered in HLT with TF=0
    and BS=0; no single-step trap can be pending.

    >>> verdict(pde_bs_required_tf, long_mode(GUEST_ACTIVITY_STATE=1, GUEST_RFLAGS=0x202,
    ...     GUEST_PENDING_DBG_EXCEPTIONS=0))
    passes

    Scenario SCN_PDE_BTF_IN_STI_NO_BS (passes): branch stepping (TF=1 with DEBUGCTL.BTF=1)
    in an STI shadow with BS=0: the trap waits for a branch, not for the next
    instruction, so no single-step is pending and BS must stay clear.

    >>> verdict(pde_bs_required_tf, long_mode(GUEST_INTERRUPTIBILITY_INFO=1, GUEST_RFLAGS=0x302,
    ...     GUEST_IA32_DEBUGCTL=2, GUEST_PENDING_DBG_EXCEPTIONS=0))
    passes
    """
    intr, act, rflags, debugctl, pde = s.need(*_BS_FIELDS)
    if not _bs_trigger(intr, act):
        return ()
    if not rflags & RFLAGS_TF or debugctl & DEBUGCTLMSR_BTF or pde & PENDING_DBG_BS:
        return ()
    return (
        me(pde_bs_required_tf).violation(
            f"TF=1, BTF=0 in {_where(intr, act)} but BS=0", **dict(zip(_BS_FIELDS, (intr, act, rflags, debugctl, pde)))
        ),
    )


def _where(intr: int, act: int) -> str:
    if intr & GUEST_INTR_STATE_MOV_SS:
        return "a MOV-SS shadow"
    if intr & GUEST_INTR_STATE_STI:
        return "an STI shadow"
    return ACTIVITY_NAMES.get(act, str(act))


@rule("ENTRY_GUEST_PDE_BS_FORBIDDEN_NO_TF", section=SECTION, phase="guest")
def pde_bs_forbidden_no_tf(s: EntryState) -> Violations:
    """Under the same trigger (STI shadow, MOV-SS shadow or HLT), BS must be 0 if
    single-stepping is not armed, i.e. if TF=0 or BTF=1. Outside the trigger, BS is not
    constrained by VM entry.

    Scenario SCN_PDE_BS_CLEAR_NO_TF (passes): a MOV-SS shadow with TF=0 and BS clear.

    >>> verdict(pde_bs_forbidden_no_tf, entry(GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0,
    ...     GUEST_RFLAGS=0x2, GUEST_IA32_DEBUGCTL=0, GUEST_PENDING_DBG_EXCEPTIONS=0))
    passes

    Scenario SCN_PDE_BS_SET_WITH_BTF (fails): BS stuffed while BTF=1 (branch stepping),
    which a VMM that ignores DEBUGCTL.BTF when stuffing BS would produce.

    >>> verdict(pde_bs_forbidden_no_tf, entry(GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0,
    ...     GUEST_RFLAGS=0x102, GUEST_IA32_DEBUGCTL=2, GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
    fails ENTRY_GUEST_PDE_BS_FORBIDDEN_NO_TF: BS=1 in a MOV-SS shadow but single-step is not armed (TF=1, BTF=1)
        [GUEST_INTERRUPTIBILITY_INFO=0x2, GUEST_ACTIVITY_STATE=0x0, GUEST_RFLAGS=0x102,
         GUEST_IA32_DEBUGCTL=0x2, GUEST_PENDING_DBG_EXCEPTIONS=0x4000]

    Scenario SCN_PDE_BS_OUTSIDE_SHADOW (passes): BS pending with TF=0 outside any shadow
    and not in HLT: VM entry does not constrain BS there (the #DB is delivered right
    after the entry).

    >>> verdict(pde_bs_forbidden_no_tf, long_mode(GUEST_RFLAGS=0x202, GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
    passes

    Scenario SCN_PDE_BS_STUFFED_WITHOUT_TF (fails): BS set in an STI shadow with TF=0, as a
    VMM that stuffs BS whenever it sees a shadow, without looking at TF, would leave it.

    >>> verdict(pde_bs_forbidden_no_tf, long_mode(GUEST_INTERRUPTIBILITY_INFO=1, GUEST_RFLAGS=0x202,
    ...     GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
    fails ENTRY_GUEST_PDE_BS_FORBIDDEN_NO_TF: BS=1 in an STI shadow but single-step is not armed (TF=0, BTF=0)
        [GUEST_INTERRUPTIBILITY_INFO=0x1, GUEST_ACTIVITY_STATE=0x0, GUEST_RFLAGS=0x202,
         GUEST_IA32_DEBUGCTL=0x0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000]

    Scenario SCN_PDE_BS_SET_IN_HLT (passes): a guest that executed HLT with TF=1, entered in
    HLT with BS set as the CPU saves it: single-step is armed, so BS=1 is required, not
    forbidden.

    >>> verdict(pde_bs_forbidden_no_tf, long_mode(GUEST_ACTIVITY_STATE=1, GUEST_RFLAGS=0x302,
    ...     GUEST_PENDING_DBG_EXCEPTIONS=0x4000))
    passes
    """
    intr, act, rflags, debugctl, pde = s.need(*_BS_FIELDS)
    if not _bs_trigger(intr, act) or not pde & PENDING_DBG_BS:
        return ()
    tf, btf = bool(rflags & RFLAGS_TF), bool(debugctl & DEBUGCTLMSR_BTF)
    if tf and not btf:
        return ()
    return (
        me(pde_bs_forbidden_no_tf).violation(
            f"BS=1 in {_where(intr, act)} but single-step is not armed (TF={int(tf)}, BTF={int(btf)})",
            **dict(zip(_BS_FIELDS, (intr, act, rflags, debugctl, pde))),
        ),
    )


@rule("ENTRY_GUEST_PDE_RTM_CONSTRAINTS", section=SECTION, phase="guest")
def pde_rtm_constraints(s: EntryState) -> Violations:
    """If the RTM bit (16) is set: B0-B3 and BS (bit 14) must be clear, the
    enabled-breakpoint bit (12) must be set, the CPU must support RTM, and MOV-SS blocking
    must be clear. (The SDM states it as bits 11:0, 15:13 and 63:17 clear and bit 12 set;
    bits 11:4, 13, 15 and 63:17 are reserved anyway, ENTRY_GUEST_PDE_RESERVED_ZERO.)

    Scenario SCN_PDE_RTM_OK (passes): RTM with the enabled-breakpoint bit.

    >>> verdict(pde_rtm_constraints, entry(GUEST_PENDING_DBG_EXCEPTIONS=0x11000, GUEST_INTERRUPTIBILITY_INFO=0))
    passes

    Scenario SCN_PDE_RTM_WITH_B0 (fails): RTM with B0 set and bit 12 clear.

    >>> verdict(pde_rtm_constraints, entry(GUEST_PENDING_DBG_EXCEPTIONS=0x10001, GUEST_INTERRUPTIBILITY_INFO=0))
    fails ENTRY_GUEST_PDE_RTM_CONSTRAINTS: RTM with B0-B3 set [GUEST_PENDING_DBG_EXCEPTIONS=0x10001]
    fails ENTRY_GUEST_PDE_RTM_CONSTRAINTS: RTM without the enabled-breakpoint bit [GUEST_PENDING_DBG_EXCEPTIONS=0x10001]

    Scenario SCN_PDE_RTM_NO_RTM_MOVSS (fails): the RTM bit on a CPU without RTM, in a MOV-SS
    shadow.

    >>> verdict(pde_rtm_constraints, entry(Capabilities(rtm=False), GUEST_PENDING_DBG_EXCEPTIONS=0x11000,
    ...     GUEST_INTERRUPTIBILITY_INFO=2))
    fails ENTRY_GUEST_PDE_RTM_CONSTRAINTS: RTM bit on a CPU without RTM [GUEST_PENDING_DBG_EXCEPTIONS=0x11000]
    fails ENTRY_GUEST_PDE_RTM_CONSTRAINTS: RTM with MOV-SS blocking
        [GUEST_PENDING_DBG_EXCEPTIONS=0x11000, GUEST_INTERRUPTIBILITY_INFO=0x2]

    Scenario SCN_PDE_RTM_WITH_BS (fails): RTM with a single-step trap pending beside it (as
    if TF had been set inside the transaction): an RTM #DB carries no BS.

    >>> verdict(pde_rtm_constraints, long_mode(GUEST_PENDING_DBG_EXCEPTIONS=0x15000, GUEST_INTERRUPTIBILITY_INFO=0))
    fails ENTRY_GUEST_PDE_RTM_CONSTRAINTS: RTM with BS set [GUEST_PENDING_DBG_EXCEPTIONS=0x15000]

    Scenario SCN_PDE_DATA_BP_IN_MOVSS_NO_RTM (passes): a data breakpoint hit by MOV SS (B0
    and the enabled-breakpoint bit pending through the shadow) on a CPU without RTM: with
    the RTM bit clear none of its constraints apply.

    >>> verdict(pde_rtm_constraints, long_mode(Capabilities(rtm=False), GUEST_PENDING_DBG_EXCEPTIONS=0x1001,
    ...     GUEST_INTERRUPTIBILITY_INFO=2))
    passes
    """
    pde = s.need1("GUEST_PENDING_DBG_EXCEPTIONS")
    if not pde & PENDING_DBG_RTM:
        return ()
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    r = me(pde_rtm_constraints)
    out = []
    if pde & PENDING_DBG_B0_B3:
        out.append(r.violation("RTM with B0-B3 set", GUEST_PENDING_DBG_EXCEPTIONS=pde))
    if pde & PENDING_DBG_BS:
        out.append(r.violation("RTM with BS set", GUEST_PENDING_DBG_EXCEPTIONS=pde))
    if not pde & PENDING_DBG_ENABLED_BP:
        out.append(r.violation("RTM without the enabled-breakpoint bit", GUEST_PENDING_DBG_EXCEPTIONS=pde))
    if not s.caps.rtm:
        out.append(r.violation("RTM bit on a CPU without RTM", GUEST_PENDING_DBG_EXCEPTIONS=pde))
    if intr & GUEST_INTR_STATE_MOV_SS:
        out.append(
            r.violation("RTM with MOV-SS blocking", GUEST_PENDING_DBG_EXCEPTIONS=pde, GUEST_INTERRUPTIBILITY_INFO=intr)
        )
    return tuple(out)


# --- VMCS link pointer -------------------------------------------------------------------
# Unless the field is all ones, the SDM checks the pointer itself (alignment, width: the
# two rules below), then the VMCS it points to (revision identifier and shadow-VMCS
# indicator in guest memory) and that it is not the current (or, in SMM, the executive)
# VMCS: those need memory or host state the model does not have (not-executable clauses
# in docs/sdm/guest_non_register.md). Every one of them fails with exit qualification 4.

#: Exit qualification of a VM-entry failure caused by the VMCS link pointer
#: (kernel ENTRY_FAIL_VMCS_LINK_PTR).
ENTRY_FAIL_VMCS_LINK_PTR = 4
#: Bits 11:0 of a VMCS pointer (a VMCS region is 4-KByte aligned).
VMCS_PTR_PAGE_OFFSET = bits(11, 0)


@rule("ENTRY_GUEST_LINK_PTR_ALIGNED", section=SECTION, phase="guest", qualification=ENTRY_FAIL_VMCS_LINK_PTR)
def link_ptr_aligned(s: EntryState) -> Violations:
    """Unless the VMCS link pointer is all ones (FFFFFFFF_FFFFFFFFH: no linked VMCS), its
    bits 11:0 must be 0. Failure reports exit qualification 4.

    Scenario SCN_LINK_PTR_NONE (passes): the all-ones value every baseline guest uses.

    >>> verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=0xFFFFFFFFFFFFFFFF))
    passes

    Scenario SCN_LINK_PTR_SHADOW_PAGE (passes): a page-aligned shadow VMCS address.

    >>> verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=0x12345000))
    passes

    Scenario SCN_LINK_PTR_LOW_HALF_ONLY (fails): only the low 32 bits set to ones, as a
    32-bit VMM that writes the full encoding but not the high one leaves the field.

    >>> verdict(link_ptr_aligned, long_mode(VMCS_LINK_POINTER=0xFFFFFFFF))
    fails ENTRY_GUEST_LINK_PTR_ALIGNED: VMCS link pointer is not 4-KByte aligned [VMCS_LINK_POINTER=0xffffffff]
    """
    link = s.need1("VMCS_LINK_POINTER")
    if link == VMCS_LINK_POINTER_NONE or not link & VMCS_PTR_PAGE_OFFSET:
        return ()
    return (me(link_ptr_aligned).violation("VMCS link pointer is not 4-KByte aligned", VMCS_LINK_POINTER=link),)


@rule(
    "ENTRY_GUEST_LINK_PTR_WITHIN_MAXPHYADDR",
    section=SECTION,
    phase="guest",
    qualification=ENTRY_FAIL_VMCS_LINK_PTR,
)
def link_ptr_within_maxphyaddr(s: EntryState) -> Violations:
    """Unless the VMCS link pointer is all ones, it may not set any bit at or above the
    CPU's physical-address width (MAXPHYADDR). Failure reports exit qualification 4.

    Scenario SCN_LINK_PTR_TOP_OF_RAM (passes): the highest page below a 46-bit width.

    >>> verdict(link_ptr_within_maxphyaddr, long_mode(VMCS_LINK_POINTER=0x00003FFFFFFFF000))
    passes

    Scenario SCN_LINK_PTR_MASKED_ONES (fails): all ones with bits 11:0 cleared, as
    "-1 & PAGE_MASK" would produce.

    >>> verdict(link_ptr_within_maxphyaddr, long_mode(VMCS_LINK_POINTER=0xFFFFFFFFFFFFF000))
    fails ENTRY_GUEST_LINK_PTR_WITHIN_MAXPHYADDR: VMCS link pointer sets bits 0xffffc00000000000 beyond MAXPHYADDR 46
        [VMCS_LINK_POINTER=0xfffffffffffff000]

    Scenario SCN_LINK_PTR_NONE_ABOVE_WIDTH (passes): the all-ones "no linked VMCS" value,
    which sets every bit above MAXPHYADDR, is exempt from the width check.

    >>> verdict(link_ptr_within_maxphyaddr, long_mode(VMCS_LINK_POINTER=0xFFFFFFFFFFFFFFFF))
    passes
    """
    link = s.need1("VMCS_LINK_POINTER")
    if link == VMCS_LINK_POINTER_NONE:
        return ()
    beyond = beyond_maxphyaddr(link, s.caps)
    if not beyond:
        return ()
    return (
        me(link_ptr_within_maxphyaddr).violation(
            f"VMCS link pointer sets bits {beyond:#x} beyond MAXPHYADDR {s.caps.maxphyaddr}", VMCS_LINK_POINTER=link
        ),
    )


# --- FRED ----------------------------------------------------------------------------------


@rule("ENTRY_GUEST_INTR_FRED_STI_NOT_CPL3", section=SECTION, phase="guest")
def intr_fred_sti_not_cpl3(s: EntryState) -> Violations:
    """With CR4.FRED = 1 in the guest CR4 field, blocking by STI may not be reported
    while SS.DPL (the CPL) is 3. Read from Bochs, not yet from an SDM copy (see the
    clause).

    Scenario SCN_INTR_FRED_STI_RING0 (passes): an STI shadow in a FRED kernel at CPL 0.

    >>> verdict(intr_fred_sti_not_cpl3, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026E0,
    ...     GUEST_INTERRUPTIBILITY_INFO=1))
    passes

    Scenario SCN_INTR_FRED_STI_RING3 (fails): the same shadow at CPL 3.

    >>> verdict(intr_fred_sti_not_cpl3, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026E0,
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_SS_AR_BYTES=0xC0F3))
    fails ENTRY_GUEST_INTR_FRED_STI_NOT_CPL3: STI blocking at CPL 3 with CR4.FRED=1
        [GUEST_INTERRUPTIBILITY_INFO=0x1, GUEST_CR4=0x1000026e0, GUEST_SS_AR_BYTES=0xc0f3]

    Scenario SCN_INTR_FRED_RING3_NO_SHADOW (passes): a FRED guest running user code
    (CPL 3) with no STI shadow: CPL 3 is fine without the shadow.

    >>> verdict(intr_fred_sti_not_cpl3, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026E0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_CS_AR_BYTES=0xA0FB, GUEST_SS_AR_BYTES=0xC0F3))
    passes

    Scenario SCN_INTR_LEGACY_STI_RING3 (passes): an STI shadow at CPL 3 (IOPL=3) with
    CR4.FRED=0: the restriction is FRED's only.

    >>> verdict(intr_fred_sti_not_cpl3, long_mode(GUEST_RFLAGS=0x3202, GUEST_INTERRUPTIBILITY_INFO=1,
    ...     GUEST_CS_AR_BYTES=0xA0FB, GUEST_SS_AR_BYTES=0xC0F3))
    passes
    """
    intr = s.need1("GUEST_INTERRUPTIBILITY_INFO")
    if not intr & GUEST_INTR_STATE_STI:
        return ()
    cr4 = s.need1("GUEST_CR4")
    if not cr4 & X86_CR4_FRED:
        return ()
    ar = s.need1("GUEST_SS_AR_BYTES")
    if ss_dpl(ar) != 3:
        return ()
    return (
        me(intr_fred_sti_not_cpl3).violation(
            "STI blocking at CPL 3 with CR4.FRED=1", GUEST_INTERRUPTIBILITY_INFO=intr, GUEST_CR4=cr4, GUEST_SS_AR_BYTES=ar
        ),
    )
