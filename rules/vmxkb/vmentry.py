"""The SDM model of one VM entry: run every check, say what the CPU reports, and, if
the entry succeeds, what the guest has right after it.

``evaluate()`` runs *every* registered check (the CPU reports one failure; a reviewer
wants all of them) and derives the reported outcome from the check phases: a control
check failing is a VMfail with VM-instruction error 7 whatever else is wrong; otherwise
a guest-state check failing is a VM-entry failure (exit reason 33 | bit 31). Only when
every check passes does ``after_entry()`` compute the post-entry state, each part with
the rule that governs it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up: docs/bench.md)
if TYPE_CHECKING:
    from typing import Literal

from vmxkb.bits import (
    DR6_BS,
    EXIT_REASON_INVALID_STATE,
    GUEST_ACTIVITY_ACTIVE,
    GUEST_ACTIVITY_HLT,
    GUEST_INTR_STATE_MOV_SS,
    GUEST_INTR_STATE_STI,
    INTR_TYPE_SOFT_EXCEPTION,
    INTR_TYPE_SOFT_INTR,
    PENDING_DBG_B0_B3,
    PENDING_DBG_BS,
    PENDING_DBG_VALID_CAUSES,
    VECTORING_TYPES,
    VMX_EXIT_REASONS_FAILED_VMENTRY,
    VMXERR_ENTRY_INVALID_CONTROL_FIELD,
    VMXERR_ENTRY_INVALID_HOST_STATE_FIELD,
    intr_info_type,
    intr_info_valid,
)
from vmxkb.record import Record
from vmxkb.registry import REGISTRY, Rule, Violation, verdict
from vmxkb.state import EntryState

#: DR6 as it reads with nothing recorded (its architectural reset value).
DR6_INIT = 0xFFFF0FF0


class Outcome(Record):
    """What VMLAUNCH/VMRESUME reports."""

    kind: Literal["vmfail", "entry-failure", "entered", "unknown"]
    vm_instruction_error: int | None = None
    exit_reason: int | None = None
    qualification: int | None = None

    def __str__(self) -> str:
        if self.kind == "vmfail":
            return f"VMfailValid, VM-instruction error {self.vm_instruction_error}"
        if self.kind == "entry-failure":
            return f"VM-entry failure, exit reason {self.exit_reason:#x}, qualification {self.qualification}"
        if self.kind == "entered":
            return "VM entry succeeds"
        return "unknown: no check failed, but some could not be evaluated"


class AfterEntry(Record):
    """The guest right after a successful VM entry, at the boundary where it resumes."""

    vectoring: bool
    sti_blocking: bool
    movss_blocking: bool
    activity: int
    #: the interruption information of the event delivered by the entry, if any
    injected: int | None
    #: pending-#DB bits delivered as a #DB right after entry (0: none)
    pending_dbg_delivered: int
    #: pending-#DB bits that stay pending (MOV-SS blocking) past the next instruction
    pending_dbg_held: int
    #: the pending-debug field was consulted but its fate is outside this model
    #: (software interrupt/exception injected with MOV-SS blocking)
    pending_dbg_unmodelled: bool
    dr6: int
    dr7: int
    debugctl: int


class EntryResult(Record):
    """Everything the model says about one attempted VM entry."""

    violations: tuple[Violation, ...]
    not_evaluated: tuple[tuple[str, tuple[str, ...]], ...]  #: (rule ID, missing fields)
    outcome: Outcome
    after: AfterEntry | None


def check_rules() -> list[Rule]:
    """The registered entry checks, in SDM order."""
    from vmxkb.sdm import load_all

    load_all()
    return [r for r in REGISTRY.values() if r.kind == "check"]


def evaluate(state: EntryState, dr6_before: int = DR6_INIT) -> EntryResult:
    """Run every check on ``state``; if none fails and none is missing, enter."""
    violations: list[Violation] = []
    missing: list[tuple[str, tuple[str, ...]]] = []
    first_guest: Rule | None = None
    control_failed = host_failed = False
    for r in check_rules():
        v = verdict(r.func, state)
        if v.missing:
            missing.append((r.id, v.missing))
        if v.violations:
            violations.extend(v.violations)
            if r.phase == "control":
                control_failed = True
            elif r.phase == "host":
                host_failed = True
            elif first_guest is None:
                first_guest = r
    if control_failed:
        outcome = Outcome("vmfail", vm_instruction_error=VMXERR_ENTRY_INVALID_CONTROL_FIELD)
    elif host_failed:
        outcome = Outcome("vmfail", vm_instruction_error=VMXERR_ENTRY_INVALID_HOST_STATE_FIELD)
    elif first_guest is not None:
        outcome = Outcome(
            "entry-failure",
            exit_reason=VMX_EXIT_REASONS_FAILED_VMENTRY | EXIT_REASON_INVALID_STATE,
            qualification=first_guest.qualification,
        )
    elif missing:
        outcome = Outcome("unknown")
    else:
        outcome = Outcome("entered")
    after = after_entry(state, dr6_before) if outcome.kind == "entered" else None
    return EntryResult(tuple(violations), tuple(missing), outcome, after)


def is_vectoring(info: int) -> bool:
    """A VM entry is vectoring when it injects an event of type 0, 2, 3, 4, 5 or 6."""
    return intr_info_valid(info) and intr_info_type(info) in VECTORING_TYPES


def after_entry(state: EntryState, dr6_before: int = DR6_INIT) -> AfterEntry:
    """The guest's state right after a successful entry, clause by clause:

    - shadow: POST_INTR_VECTORING_CLEARS_SHADOW / POST_INTR_NONVECTORING_LOADS_SHADOW;
    - pending #DBs: POST_PDE_NONE_AFTER_ENTRY / POST_PDE_VALID_DELIVERY;
    - DR6, DR7, DEBUGCTL: POST_INJ_NO_DEBUG_REGISTER_UPDATE (only a #DB delivered by
      the processor after entry writes DR6).
    """
    info, intr, act, pde, dr7, debugctl = state.need(
        "VM_ENTRY_INTR_INFO_FIELD",
        "GUEST_INTERRUPTIBILITY_INFO",
        "GUEST_ACTIVITY_STATE",
        "GUEST_PENDING_DBG_EXCEPTIONS",
        "GUEST_DR7",
        "GUEST_IA32_DEBUGCTL",
    )
    vectoring = is_vectoring(info)
    movss = bool(intr & GUEST_INTR_STATE_MOV_SS)
    delivered = held = 0
    unmodelled = False
    if vectoring:
        if intr_info_type(info) in (INTR_TYPE_SOFT_INTR, INTR_TYPE_SOFT_EXCEPTION) and movss:
            unmodelled = True
    elif act in (GUEST_ACTIVITY_ACTIVE, GUEST_ACTIVITY_HLT) and pde & PENDING_DBG_VALID_CAUSES:
        if movss:
            held = pde
        else:
            delivered = pde
    dr6 = dr6_before
    if delivered:
        dr6 = (dr6_before & ~PENDING_DBG_B0_B3) | (delivered & PENDING_DBG_B0_B3)
        if delivered & PENDING_DBG_BS:
            dr6 |= DR6_BS
    return AfterEntry(
        vectoring=vectoring,
        sti_blocking=not vectoring and bool(intr & GUEST_INTR_STATE_STI),
        movss_blocking=not vectoring and movss,
        activity=GUEST_ACTIVITY_ACTIVE if vectoring else act,
        injected=info if vectoring else None,
        pending_dbg_delivered=delivered,
        pending_dbg_held=held,
        pending_dbg_unmodelled=unmodelled,
        dr6=dr6,
        dr7=dr7,
        debugctl=debugctl,
    )


class Transition(Record):
    """A VM entry as observed: the state entered with, DR6 before it, and what the guest
    had right after. The post-entry rules judge a transition, whoever produced it (this
    model, an emulator such as Bochs, or a trace from hardware)."""

    state: EntryState
    after: AfterEntry
    dr6_before: int = DR6_INIT


def transition(state: EntryState, dr6_before: int = DR6_INIT, **changes: object) -> Transition:
    """The transition this model computes for ``state``, with some after-entry values
    replaced (``changes``): how scenarios describe an implementation that differs."""
    after = after_entry(state, dr6_before).replace(**changes)
    return Transition(state, after, dr6_before)
