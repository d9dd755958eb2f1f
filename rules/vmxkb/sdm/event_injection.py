"""What injecting an event does (SDM "Details of Vectored-Event Injection").

These rules judge a :class:`~vmxkb.vmentry.Transition`: the state a VM entry used and
what the guest had right after it.
"""

from __future__ import annotations

from vmxkb.bits import make_intr_info
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import entry
from vmxkb.vmentry import Transition, transition

SECTION = "SEC_INJECTION_DETAILS"

__all__ = ["entry", "verdict", "make_intr_info", "transition"]


@rule("POST_INJ_NO_DEBUG_REGISTER_UPDATE", section=SECTION, kind="effect")
def inj_no_debug_register_update(t: Transition) -> Violations:
    """Injecting an event, even a #DB, leaves DR6, DR7 and IA32_DEBUGCTL as they were
    loaded: the processor does not record a cause in DR6 as a real #DB would. A VMM that
    injects a #DB has to write the guest-visible DR6 itself (KVM does, from the #DB
    payload). When a pending #DB is also delivered after the injected event (an INT3, INTO
    or software exception injected in a MOV-SS shadow with a trap pending, which the SDM
    lets be delivered after the injection), that #DB updates the debug registers normally,
    and this clause judges nothing: a change cannot be told apart from the #DB's own.

    Scenario SCN_INJ_DB_DR6_KEPT (passes): a #DB injected with TF=1 in an STI shadow;
    DR6 keeps the value the VMM loaded.

    >>> verdict(inj_no_debug_register_update, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), dr6_before=0xffff4ff0))
    passes

    Scenario SCN_INJ_DB_DR6_WRITTEN (fails): an implementation that sets DR6.BS itself
    when it injects the #DB.

    >>> verdict(inj_no_debug_register_update, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0), dr6=0xffff4ff0))
    fails POST_INJ_NO_DEBUG_REGISTER_UPDATE: DR6 changed by injection [dr6_before=0xffff0ff0, dr6_after=0xffff4ff0]

    Scenario SCN_INJ_DB_DR7_DEBUGCTL_CLEARED (fails): an implementation that treats the
    injection like a delivered #DB and clears DR7.GD and IA32_DEBUGCTL.BTF.

    >>> verdict(inj_no_debug_register_update, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_INTERRUPTIBILITY_INFO=1, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x2400, GUEST_IA32_DEBUGCTL=2), dr7=0x400, debugctl=0))
    fails POST_INJ_NO_DEBUG_REGISTER_UPDATE: DR7 differs from the loaded value [GUEST_DR7=0x2400, dr7_after=0x400]
    fails POST_INJ_NO_DEBUG_REGISTER_UPDATE: IA32_DEBUGCTL differs from the loaded value
        [GUEST_IA32_DEBUGCTL=0x2, debugctl_after=0x0]

    Scenario SCN_INJ_INT3_THEN_PENDING_DB (passes): an INT3 injected in a MOV-SS shadow with
    BS pending, and the implementation (an emulator's trace, say) delivers the single-step
    #DB after the #BP, setting DR6.BS: that is the #DB's delivery, not the injection's.

    >>> verdict(inj_no_debug_register_update, transition(entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6),
    ...     VM_ENTRY_INSTRUCTION_LEN=1, GUEST_INTERRUPTIBILITY_INFO=2, GUEST_ACTIVITY_STATE=0,
    ...     GUEST_PENDING_DBG_EXCEPTIONS=0x4000, GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0),
    ...     pending_dbg_delivered=0x4000, dr6=0xffff4ff0))
    passes

    Scenario SCN_INJ_NONE_DR6_FROM_GUEST (passes): nothing injected and nothing pending,
    and DR6 differs once the guest runs (its first instruction hit a data breakpoint, B0):
    the guest's own debug activity, not an injection's.

    >>> verdict(inj_no_debug_register_update, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0,
    ...     GUEST_DR7=0x402, GUEST_IA32_DEBUGCTL=0), dr6=0xffff0ff1))
    passes

    Scenario SCN_INJ_NONE_PENDING_DB_DR6 (passes): no event injected and a pending
    single-step #DB (TF=1, BS pending) delivered right after entry: that #DB writes DR6.BS,
    which this clause, about injection only, does not forbid.

    >>> verdict(inj_no_debug_register_update, transition(entry(VM_ENTRY_INTR_INFO_FIELD=0,
    ...     GUEST_INTERRUPTIBILITY_INFO=0, GUEST_ACTIVITY_STATE=0, GUEST_PENDING_DBG_EXCEPTIONS=0x4000,
    ...     GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)))
    passes
    """
    if t.after.injected is None or t.after.pending_dbg_delivered:
        return ()
    dr7, debugctl = t.state.need("GUEST_DR7", "GUEST_IA32_DEBUGCTL")
    r = me(inj_no_debug_register_update)
    out = []
    if t.after.dr6 != t.dr6_before:
        out.append(r.violation("DR6 changed by injection", dr6_before=t.dr6_before, dr6_after=t.after.dr6))
    if t.after.dr7 != dr7:
        out.append(r.violation("DR7 differs from the loaded value", GUEST_DR7=dr7, dr7_after=t.after.dr7))
    if t.after.debugctl != debugctl:
        out.append(
            r.violation(
                "IA32_DEBUGCTL differs from the loaded value", GUEST_IA32_DEBUGCTL=debugctl, debugctl_after=t.after.debugctl
            )
        )
    return tuple(out)
