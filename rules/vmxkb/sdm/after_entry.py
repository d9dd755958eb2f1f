"""The guest right after VM entry (SDM "Special Features of VM Entry": interruptibility
state, and delivery of pending debug exceptions after VM entry).

An entry is *vectoring* when it injects an event of type 0, 2, 3, 4, 5 or 6 (anything
but type 7, the pending-MTF "other event"). These rules judge a
:class:`~vmxkb.vmentry.Transition`. Together with the BS check in
:mod:`vmxkb.sdm.guest_non_register` they are the asymmetry at the heart of the May 2026
thread: the check reads the shadow bits of a vectoring entry, and the entry then ignores
them.
"""

from __future__ import annotations

from vmxkb.bits import (
    GUEST_ACTIVITY_ACTIVE,
    GUEST_ACTIVITY_HLT,
    GUEST_INTR_STATE_MOV_SS,
    GUEST_INTR_STATE_STI,
    INTR_TYPE_SOFT_EXCEPTION,
    INTR_TYPE_SOFT_INTR,
    PENDING_DBG_VALID_CAUSES,
    intr_info_type,
    make_intr_info,
)
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import entry
from vmxkb.vmentry import Transition, is_vectoring, transition

SHADOW_SECTION = "SEC_SPECIAL_INTERRUPTIBILITY"
PDE_SECTION = "SEC_SPECIAL_PENDING_DBG"

__all__ = ["entry", "verdict", "make_intr_info", "transition"]


@rule("POST_INTR_VECTORING_CLEARS_SHADOW", section=SHADOW_SECTION, kind="effect")
def intr_vectoring_clears_shadow(t: Transition) -> Violations:
    """After a vectoring VM entry there is no blocking by STI and none by MOV SS,
    whatever bits 0 and 1 of the interruptibility state said.

    Scenario SCN_POST_DB_INJECT_DROPS_MOVSS (passes): a #DB injected in a MOV-SS shadow
    leaves no MOV-SS blocking behind.

    >>> verdict(intr_vectoring_clears_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_DB_INJECT_KEEPS_MOVSS (fails): an implementation that keeps the
    MOV-SS shadow across the injected #DB.

    >>> verdict(intr_vectoring_clears_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), movss_blocking=True))
    fails POST_INTR_VECTORING_CLEARS_SHADOW: blocking survives a vectoring entry
        [VM_ENTRY_INTR_INFO_FIELD=0x80000301, sti_blocking=False, movss_blocking=True]

    Scenario SCN_POST_STI_SHADOW_KEPT_ON_RESUME (passes): a plain VMRESUME (nothing
    injected) of a guest that exited right after STI keeps its STI blocking; that is
    correct, and it is not this clause's business, which is only about vectoring entries.

    >>> verdict(intr_vectoring_clears_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_DB_INJECT_KEEPS_STI (fails): the single-step #DB a guest took right
    after STI (a trap the STI shadow does not hold off) is re-injected by an implementation
    that keeps STI blocking in force: the #DB handler's first instruction would run with
    interrupts still held off.

    >>> verdict(intr_vectoring_clears_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), sti_blocking=True))
    fails POST_INTR_VECTORING_CLEARS_SHADOW: blocking survives a vectoring entry
        [VM_ENTRY_INTR_INFO_FIELD=0x80000301, sti_blocking=True, movss_blocking=False]
    """
    info = t.state.need1("VM_ENTRY_INTR_INFO_FIELD")
    if not is_vectoring(info) or not (t.after.sti_blocking or t.after.movss_blocking):
        return ()
    return (
        me(intr_vectoring_clears_shadow).violation(
            "blocking survives a vectoring entry",
            VM_ENTRY_INTR_INFO_FIELD=info,
            sti_blocking=t.after.sti_blocking,
            movss_blocking=t.after.movss_blocking,
        ),
    )


@rule("POST_INTR_NONVECTORING_LOADS_SHADOW", section=SHADOW_SECTION, kind="effect")
def intr_nonvectoring_loads_shadow(t: Transition) -> Violations:
    """After a VM entry that is not vectoring, blocking by STI (by MOV SS) is in force
    exactly when bit 0 (bit 1) of the interruptibility state is set; it ends after the
    guest's next instruction or its next exception.

    Scenario SCN_POST_RESUME_KEEPS_MOVSS (passes): resuming in a MOV-SS shadow keeps it.

    >>> verdict(intr_nonvectoring_loads_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_RESUME_LOSES_MOVSS (fails): an implementation that drops it.

    >>> verdict(intr_nonvectoring_loads_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), movss_blocking=False))
    fails POST_INTR_NONVECTORING_LOADS_SHADOW: blocking after entry differs from the field
        [GUEST_INTERRUPTIBILITY_INFO=0x2, sti_blocking=False, movss_blocking=False]

    Scenario SCN_POST_INJECT_SHADOW_NOT_LOADED (passes): a #DB injected in a MOV-SS
    shadow: the entry is vectoring, so the field's shadow bits are not loaded, and this
    clause (about entries that inject nothing) does not apply.

    >>> verdict(intr_nonvectoring_loads_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_RESUME_KEEPS_STI (passes): resuming a guest that exited between
    "sti" and "hlt" keeps the STI shadow, and only that one: no MOV-SS blocking appears.

    >>> verdict(intr_nonvectoring_loads_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_RESUME_LOSES_STI (fails): an implementation that drops the STI
    shadow on that resume: a pending interrupt is taken before the HLT, and the guest then
    halts with nothing left to wake it.

    >>> verdict(intr_nonvectoring_loads_shadow, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), sti_blocking=False))
    fails POST_INTR_NONVECTORING_LOADS_SHADOW: blocking after entry differs from the field
        [GUEST_INTERRUPTIBILITY_INFO=0x1, sti_blocking=False, movss_blocking=False]
    """
    info, intr = t.state.need("VM_ENTRY_INTR_INFO_FIELD", "GUEST_INTERRUPTIBILITY_INFO")
    if is_vectoring(info):
        return ()
    if t.after.sti_blocking == bool(intr & GUEST_INTR_STATE_STI) and t.after.movss_blocking == bool(
        intr & GUEST_INTR_STATE_MOV_SS
    ):
        return ()
    return (
        me(intr_nonvectoring_loads_shadow).violation(
            "blocking after entry differs from the field",
            GUEST_INTERRUPTIBILITY_INFO=intr,
            sti_blocking=t.after.sti_blocking,
            movss_blocking=t.after.movss_blocking,
        ),
    )


def _field_ignored(info: int, intr: int, act: int) -> bool:
    """The cases in which nothing is pending after entry, whatever the field says."""
    if is_vectoring(info):
        if intr_info_type(info) in (INTR_TYPE_SOFT_INTR, INTR_TYPE_SOFT_EXCEPTION):
            return not intr & GUEST_INTR_STATE_MOV_SS
        return True  # external interrupt, NMI, hardware exception, privileged sw exception
    return act not in (GUEST_ACTIVITY_ACTIVE, GUEST_ACTIVITY_HLT)  # shutdown, wait-for-SIPI


@rule("POST_PDE_NONE_AFTER_ENTRY", section=PDE_SECTION, kind="effect")
def pde_none_after_entry(t: Transition) -> Violations:
    """There are no pending debug exceptions after VM entry, whatever the field says, if
    the entry is vectoring with an external interrupt, NMI, hardware exception or
    privileged software exception; or vectoring with a software interrupt or exception
    and no MOV-SS blocking; or not vectoring and the activity state is shutdown or
    wait-for-SIPI. This is why KVM's stuffed BS is invisible to the guest.

    Scenario SCN_POST_STUFFED_BS_IGNORED (passes): a #DB injected with BS stuffed leaves
    nothing pending.

    >>> verdict(pde_none_after_entry, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_STUFFED_BS_DELIVERED (fails): an implementation that delivers the
    stuffed BS as a second #DB after the injected one.

    >>> verdict(pde_none_after_entry, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), pending_dbg_delivered=0x4000))
    fails POST_PDE_NONE_AFTER_ENTRY: pending debug exceptions survive an entry that discards them
        [VM_ENTRY_INTR_INFO_FIELD=0x80000301, GUEST_PENDING_DBG_EXCEPTIONS=0x4000, delivered=0x4000, held=0x0]

    Scenario SCN_POST_STUFFED_BS_HELD (fails): an implementation that keeps the stuffed BS
    pending instead, to deliver a second #DB after the first instruction of the injected
    #DB's handler.

    >>> verdict(pde_none_after_entry, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), pending_dbg_held=0x4000))
    fails POST_PDE_NONE_AFTER_ENTRY: pending debug exceptions survive an entry that discards them
        [VM_ENTRY_INTR_INFO_FIELD=0x80000301, GUEST_PENDING_DBG_EXCEPTIONS=0x4000, delivered=0x0, held=0x4000]

    Scenario SCN_POST_RESUME_BS_NOT_DISCARDED (passes): a plain resume with a single-step
    pending and no shadow: this entry does not discard the field, so the #DB delivered
    right after it is correct here (POST_PDE_VALID_DELIVERY says when it must come).

    >>> verdict(pde_none_after_entry, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes
    """
    info, intr, act, pde = t.state.need(
        "VM_ENTRY_INTR_INFO_FIELD", "GUEST_INTERRUPTIBILITY_INFO", "GUEST_ACTIVITY_STATE", "GUEST_PENDING_DBG_EXCEPTIONS"
    )
    if not _field_ignored(info, intr, act):
        return ()
    if not (t.after.pending_dbg_delivered or t.after.pending_dbg_held):
        return ()
    return (
        me(pde_none_after_entry).violation(
            "pending debug exceptions survive an entry that discards them",
            VM_ENTRY_INTR_INFO_FIELD=info,
            GUEST_PENDING_DBG_EXCEPTIONS=pde,
            delivered=t.after.pending_dbg_delivered,
            held=t.after.pending_dbg_held,
        ),
    )


@rule("POST_PDE_VALID_DELIVERY", section=PDE_SECTION, kind="effect")
def pde_valid_delivery(t: Transition) -> Violations:
    """Otherwise (not vectoring, active or HLT) the field's pending debug exceptions are
    *valid* when BS or the enabled-breakpoint bit (12) is set; B0-B3 alone deliver
    nothing. Valid ones are delivered as a #DB right after entry when there is no MOV-SS
    blocking. With MOV-SS blocking nothing is delivered at entry: they are held pending (as
    on bare metal, until after the next instruction) or lost, "as would normally be the
    case"; the SDM allows both, so this clause accepts both, all of them held or none.

    Scenario SCN_POST_BS_HELD_IN_MOVSS (passes): resuming in a MOV-SS shadow with BS keeps
    the single-step pending past the next instruction.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_BS_LOST_IN_MOVSS (passes): an implementation that drops the pending
    single-step in the MOV-SS shadow: nothing delivered, nothing held. The SDM's "held
    pending or lost" allows it (the guest loses a trap it would lose on bare metal too if
    the next instruction faulted, say).

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), pending_dbg_held=0))
    passes

    Scenario SCN_POST_BS_PART_HELD_IN_MOVSS (fails): BS and a data breakpoint (B0 with
    bit 12) pending in a MOV-SS shadow, and only the breakpoint held: the SDM holds or loses
    the pending debug exceptions together, not some of them.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x5001,
    ...     GUEST_DR7=0x402, GUEST_IA32_DEBUGCTL=0), pending_dbg_held=0x1001))
    fails POST_PDE_VALID_DELIVERY: valid pending debug exceptions should be held or lost, all together, not delivered
        (MOV-SS blocking) [GUEST_PENDING_DBG_EXCEPTIONS=0x5001, GUEST_INTERRUPTIBILITY_INFO=0x2, delivered=0x0, held=0x1001]

    Scenario SCN_POST_BS_DELIVERED_IN_MOVSS (fails): an implementation that delivers it
    at once, inside the shadow.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), pending_dbg_delivered=0x4000, pending_dbg_held=0))
    fails POST_PDE_VALID_DELIVERY: valid pending debug exceptions should be held or lost, all together, not delivered
        (MOV-SS blocking) [GUEST_PENDING_DBG_EXCEPTIONS=0x4000, GUEST_INTERRUPTIBILITY_INFO=0x2, delivered=0x4000, held=0x0]

    Scenario SCN_POST_BS_DELIVERED_AT_ONCE (passes): resuming with BS pending and no
    shadow, as a VMM does after emulating an instruction the guest single-stepped: the #DB
    is delivered right after entry, and nothing stays pending.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_B0_ALONE_NOT_VALID (passes): only B0 set in the field (a breakpoint
    condition matched, bit 12 clear): these are not valid pending debug exceptions, so
    nothing is delivered and nothing stays pending.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x1,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_B0_ALONE_DELIVERED (fails): an implementation that delivers a #DB
    for B0 alone: the guest sees a debug exception for a breakpoint that was not enabled.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x1,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), pending_dbg_delivered=0x1))
    fails POST_PDE_VALID_DELIVERY: pending bits not valid: nothing should be delivered or held
        [GUEST_PENDING_DBG_EXCEPTIONS=0x1, GUEST_INTERRUPTIBILITY_INFO=0x0, delivered=0x1, held=0x0]

    Scenario SCN_POST_INT3_INJECT_IN_MOVSS_NOT_JUDGED (passes): an INT3 injected in a
    MOV-SS shadow with BS pending: the SDM treats the pending trap as if the INT3 had
    followed a MOV SS that hit a debug trap, a vectoring case outside this clause (and
    outside the model), so the clause expects neither delivery nor holding.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6),
    ...     GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes

    Scenario SCN_POST_INT3_IN_MOVSS_DB_AFTER (passes): the same INT3 injection, and the
    implementation delivers the pending #DB once the #BP has been delivered, as bare metal
    would after "mov ss; int3" with a trap on the MOV SS: a vectoring entry, which this
    clause does not judge (held, lost or delivered alike).

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6),
    ...     VM_ENTRY_INSTRUCTION_LEN=1, GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0,
    ...     GUEST_PENDING_DBG_EXCEPTIONS=0x4000, GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0),
    ...     pending_dbg_delivered=0x4000, pending_dbg_held=0))
    passes

    Scenario SCN_POST_SHUTDOWN_DROPS_BS (passes): a guest resumed in the shutdown state
    (it triple-faulted while single-stepping) with BS still in the field: the entry
    discards it (POST_PDE_NONE_AFTER_ENTRY), so this clause does not expect the #DB.

    >>> verdict(pde_valid_delivery, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=2, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes
    """
    info, intr, act, pde = t.state.need(
        "VM_ENTRY_INTR_INFO_FIELD", "GUEST_INTERRUPTIBILITY_INFO", "GUEST_ACTIVITY_STATE", "GUEST_PENDING_DBG_EXCEPTIONS"
    )
    if is_vectoring(info) or _field_ignored(info, intr, act):
        return ()
    movss = bool(intr & GUEST_INTR_STATE_MOV_SS)
    # the allowed (delivered, held) pairs
    if not pde & PENDING_DBG_VALID_CAUSES:
        allowed, how = ((0, 0),), "not valid: nothing should be delivered or held"
    elif movss:
        allowed, how = ((0, pde), (0, 0)), "should be held or lost, all together, not delivered (MOV-SS blocking)"
    else:
        allowed, how = ((pde, 0),), "should be delivered right after entry"
    got = (t.after.pending_dbg_delivered, t.after.pending_dbg_held)
    if got in allowed:
        return ()
    return (
        me(pde_valid_delivery).violation(
            f"valid pending debug exceptions {how}" if pde & PENDING_DBG_VALID_CAUSES else f"pending bits {how}",
            GUEST_PENDING_DBG_EXCEPTIONS=pde,
            GUEST_INTERRUPTIBILITY_INFO=intr,
            delivered=got[0],
            held=got[1],
        ),
    )
