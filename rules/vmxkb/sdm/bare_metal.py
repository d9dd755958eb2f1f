"""Bare-metal behaviour the VMX rules are measured against (Vol. 3A "Masking
Maskable Hardware Interrupts", "Masking Exceptions and Interrupts When Switching
Stacks"; Vol. 3B "Single-Step Exception Condition").

The model is deliberately tiny: a program of a few non-branch instructions starting at
an instruction boundary with no shadow and nothing pending, and the first event the
guest takes (a single-step #DB or a maskable interrupt), with the boundary it is taken
at. Boundary *i* is the one right after ``program[i]`` retires. What a guest can observe
here is exactly that first event: the handler runs from there.

The rules judge a :class:`Run`, whoever produced it: :func:`run_bare_metal` (the
reference), or a KVM behaviour model (:mod:`vmxkb.kvm`).
"""

from __future__ import annotations

from vmxkb.bits import PENDING_DBG_BS, PENDING_DBG_VALID_CAUSES
from vmxkb.record import Record
from vmxkb.registry import Violations, me, rule, verdict

TYPE_CHECKING = False  # typing is not imported at run time (start-up: docs/bench.md)
if TYPE_CHECKING:
    from typing import Literal, TypeAlias

    Shadow: TypeAlias = Literal["none", "sti", "movss"]

MOVSS_SECTION = "SEC_BM_MOVSS"
STI_SECTION = "SEC_BM_STI"
STEP_SECTION = "SEC_BM_SINGLE_STEP"

#: Instructions that load SS and open a MOV-SS shadow.
MOVSS_LIKE = frozenset({"MOV SS", "POP SS"})
#: Every instruction the model knows; NOP stands for any non-branch instruction.
INSTRUCTIONS = ("NOP", "MOV SS", "POP SS", "STI")


class Cpu(Record):
    """Architectural state at an instruction boundary."""

    tf: bool = False  #: RFLAGS.TF
    btf: bool = False  #: IA32_DEBUGCTL.BTF (single-step on branches only)
    if_: bool = True  #: RFLAGS.IF
    shadow: Shadow = "none"  #: blocking by STI / MOV SS in force at this boundary
    pending_db: int = 0  #: debug-exception causes held for delivery (pending-debug layout)
    irq_pending: bool = False  #: a maskable interrupt is waiting


class Delivery(Record):
    """The first event the guest takes."""

    at: int  #: boundary index
    event: Literal["#DB", "INTR"]
    dr6_bs: bool = False  #: DR6.BS as the #DB handler reads it

    def __str__(self) -> str:
        bs = " (DR6.BS=1)" if self.dr6_bs else ""
        return f"{self.event}{bs} at boundary {self.at}"


class Run(Record):
    """A program, the state it started in, and the first event taken (or none)."""

    program: tuple[str, ...]
    start: Cpu
    first: Delivery | None

    def __str__(self) -> str:
        return f"{'; '.join(self.program)}: {self.first or 'no event'}"


def execute(cpu: Cpu, insn: str) -> Cpu:
    """Retire ``insn`` (a non-branch instruction): the state at the boundary after it.

    An instruction that began with TF=1 and BTF=0 raises a single-step trap; MOV SS and
    POP SS open a MOV-SS shadow; STI opens an STI shadow only if it found IF=0.
    """
    if insn not in INSTRUCTIONS:
        raise ValueError(f"unknown instruction {insn!r}")
    pending = cpu.pending_db | (PENDING_DBG_BS if cpu.tf and not cpu.btf else 0)
    shadow: Shadow = "none"
    if insn in MOVSS_LIKE:
        shadow = "movss"
    elif insn == "STI" and not cpu.if_:
        shadow = "sti"
    return cpu.replace(shadow=shadow, pending_db=pending, if_=cpu.if_ or insn == "STI")


def take_event(cpu: Cpu, at: int) -> Delivery | None:
    """The event taken at a boundary, by priority: a trap on the previous instruction
    (#DB) before a maskable interrupt. A MOV-SS shadow holds both off; an STI shadow
    holds off interrupts but not a single-step #DB."""
    if cpu.pending_db & PENDING_DBG_VALID_CAUSES and cpu.shadow != "movss":
        return Delivery(at, "#DB", bool(cpu.pending_db & PENDING_DBG_BS))
    if cpu.irq_pending and cpu.if_ and cpu.shadow == "none":
        return Delivery(at, "INTR")
    return None


def continue_run(cpu: Cpu, program: tuple[str, ...], first_index: int) -> Delivery | None:
    """Run ``program[first_index:]`` from ``cpu`` (a boundary state) to the first event."""
    for i in range(first_index, len(program)):
        cpu = execute(cpu, program[i])
        event = take_event(cpu, i)
        if event:
            return event
    return None


def run_bare_metal(program: tuple[str, ...], start: Cpu) -> Run:
    """The reference: what a processor does, per the Vol. 3A/3B clauses."""
    return Run(program, start, continue_run(start, program, 0))


def _armed(c: Cpu) -> bool:
    return c.tf and not c.btf


@rule("BM_MOVSS_INHIBIT", section=MOVSS_SECTION, kind="bare-metal")
def movss_inhibit(run: Run) -> Violations:
    """After MOV SS or POP SS, interrupts and debug exceptions (single-step traps
    included) are held off until the boundary after the next instruction.

    Scenario SCN_BM_MOVSS_HOLDS_IRQ (passes): an interrupt arriving during MOV SS waits
    one instruction.

    >>> verdict(movss_inhibit, run_bare_metal(("MOV SS", "NOP"), Cpu(irq_pending=True)))
    passes

    Scenario SCN_BM_MOVSS_DB_INSIDE (fails): KVM's emulator delivering the single-step #DB
    at the boundary right after an emulated MOV SS.

    >>> verdict(movss_inhibit, Run(("MOV SS", "NOP"), Cpu(tf=True), Delivery(0, "#DB", True)))
    fails BM_MOVSS_INHIBIT: #DB taken inside the MOV-SS shadow [program=MOV SS; NOP, event=#DB (DR6.BS=1) at boundary 0]

    Scenario SCN_BM_MOVSS_NOTHING_TO_HOLD (passes): MOV SS with no trap armed and no
    interrupt waiting: no event at all, which the shadow has nothing to say about.

    >>> verdict(movss_inhibit, run_bare_metal(("MOV SS", "NOP"), Cpu()))
    passes

    Scenario SCN_BM_NOP_STEP_NOT_HELD (passes): without an SS load there is no shadow, and
    the single-step trap of the first instruction is taken right after it, at boundary 0.

    >>> verdict(movss_inhibit, run_bare_metal(("NOP", "NOP"), Cpu(tf=True)))
    passes

    Scenario SCN_BM_MOVSS_EMPTY_TRACE (passes): a trace that stops before its first
    instruction retires has no MOV SS to judge, whatever is armed or waiting.

    >>> verdict(movss_inhibit, run_bare_metal((), Cpu(tf=True, irq_pending=True)))
    passes
    """
    if not run.program or run.program[0] not in MOVSS_LIKE or run.first is None or run.first.at != 0:
        return ()
    return (
        me(movss_inhibit).violation(
            f"{run.first.event} taken inside the MOV-SS shadow", program="; ".join(run.program), event=str(run.first)
        ),
    )


@rule("BM_MOVSS_SINGLESTEP_DELAY", section=MOVSS_SECTION, kind="bare-metal")
def movss_singlestep_delay(run: Run) -> Violations:
    """With single-stepping armed (TF=1, BTF=0), there is no single-step #DB at the
    boundary right after MOV SS or POP SS: the first one is taken after the following
    instruction, with DR6.BS set. (When the following instruction loads SS again, the SDM
    guarantees the hold-off only for the first of the two; the rule does not judge that.)

    Scenario SCN_BM_MOVSS_STEP_AFTER_NEXT (passes): the processor's behaviour.

    >>> verdict(movss_singlestep_delay, run_bare_metal(("MOV SS", "NOP"), Cpu(tf=True)))
    passes

    Scenario SCN_BM_MOVSS_STEP_EARLY (fails): the #DB comes one instruction early, as with
    KVM's emulated MOV SS.

    >>> verdict(movss_singlestep_delay, Run(("POP SS", "NOP"), Cpu(tf=True), Delivery(0, "#DB", True)))
    fails BM_MOVSS_SINGLESTEP_DELAY: first event is #DB (DR6.BS=1) at boundary 0, not a single-step #DB at boundary 1
        [program=POP SS; NOP]

    Scenario SCN_BM_NOP_STEP_NOT_DELAYED (passes): a single-stepped NOP traps right after
    it, at boundary 0: the one-instruction delay belongs to SS loads only.

    >>> verdict(movss_singlestep_delay, run_bare_metal(("NOP", "NOP"), Cpu(tf=True)))
    passes

    Scenario SCN_BM_MOVSS_BTF_NO_STEP (passes): with TF=1 and BTF=1 the processor traps
    on branches only, so "mov ss; nop" takes no single-step #DB at all.

    >>> verdict(movss_singlestep_delay, run_bare_metal(("MOV SS", "NOP"), Cpu(tf=True, btf=True)))
    passes

    Scenario SCN_BM_MOVSS_LAST_IN_TRACE (passes): a trace that ends right after the MOV SS:
    the trap is still held off, so there is no event yet, and without the following
    instruction the clause has nothing to judge.

    >>> verdict(movss_singlestep_delay, run_bare_metal(("MOV SS",), Cpu(tf=True)))
    passes

    Scenario SCN_BM_MOVSS_POPSS_NOT_JUDGED (passes): MOV SS followed by POP SS: the hold-off
    is guaranteed for the first SS load only, so the clause accepts the trap wherever it
    comes (this model takes it after the third instruction).

    >>> verdict(movss_singlestep_delay, run_bare_metal(("MOV SS", "POP SS", "NOP"), Cpu(tf=True)))
    passes
    """
    if len(run.program) < 2 or run.program[0] not in MOVSS_LIKE or not _armed(run.start):
        return ()
    if run.program[1] in MOVSS_LIKE:  # consecutive SS loads: only the first is guaranteed
        return ()
    if run.first == Delivery(1, "#DB", True):
        return ()
    return (
        me(movss_singlestep_delay).violation(
            f"first event is {run.first or 'none'}, not a single-step #DB at boundary 1",
            program="; ".join(run.program),
        ),
    )


@rule("BM_STI_SHADOW", section=STI_SECTION, kind="bare-metal")
def sti_shadow(run: Run) -> Violations:
    """An STI that finds IF=0 holds maskable interrupts off at the boundary right after
    it; they can be taken after the next instruction.

    Scenario SCN_BM_STI_HOLDS_IRQ (passes): "sti; nop" takes the interrupt after the NOP.

    >>> verdict(sti_shadow, run_bare_metal(("STI", "NOP"), Cpu(if_=False, irq_pending=True)))
    passes

    Scenario SCN_BM_STI_IRQ_INSIDE (fails): the interrupt taken inside the STI shadow, as
    when a VMM drops the shadow before entry.

    >>> verdict(sti_shadow, Run(("STI", "NOP"), Cpu(if_=False, irq_pending=True), Delivery(0, "INTR")))
    fails BM_STI_SHADOW: interrupt taken inside the STI shadow [program=STI; NOP]

    Scenario SCN_BM_STI_WITH_IF_SET (passes): an STI that finds IF already 1 opens no
    shadow: an interrupt arriving while it executes is taken right after it.

    >>> verdict(sti_shadow, run_bare_metal(("STI", "NOP"), Cpu(irq_pending=True)))
    passes

    Scenario SCN_BM_STI_SHADOW_NEEDS_STI (passes): the clause is about the boundary after
    an STI: a run that starts with a NOP is not judged by it, even one that wrongly takes
    an interrupt there with IF=0 (that breaks IF masking, not the STI shadow).

    >>> verdict(sti_shadow, Run(("NOP", "NOP"), Cpu(if_=False, irq_pending=True), Delivery(0, "INTR")))
    passes

    Scenario SCN_BM_STI_EMPTY_TRACE (passes): a trace that stops before its first
    instruction retires has no STI to judge.

    >>> verdict(sti_shadow, run_bare_metal((), Cpu(if_=False, irq_pending=True)))
    passes
    """
    if not run.program or run.program[0] != "STI" or run.start.if_:
        return ()
    if run.first is None or run.first != Delivery(0, "INTR"):
        return ()
    return (me(sti_shadow).violation("interrupt taken inside the STI shadow", program="; ".join(run.program)),)


@rule("BM_STI_IF_SET_NO_SHADOW", section=STI_SECTION, kind="bare-metal")
def sti_if_set_no_shadow(run: Run) -> Violations:
    """An STI that finds IF=1 opens no shadow: an interrupt waiting when it completes is
    taken at the boundary right after it, unless a single-step trap (which outranks it)
    is taken there first. Only STI that finds IF=0 delays interrupts (BM_STI_SHADOW).

    Scenario SCN_BM_STI_IF_SET_IRQ_AT_ONCE (passes): "sti; nop" with IF already 1 takes
    the interrupt right after the STI.

    >>> verdict(sti_if_set_no_shadow, run_bare_metal(("STI", "NOP"), Cpu(irq_pending=True)))
    passes

    Scenario SCN_BM_STI_IF_SET_IRQ_DELAYED (fails): the interrupt taken one instruction
    late, as after KVM's emulated STI, which installs an STI shadow whatever IF was.

    >>> verdict(sti_if_set_no_shadow, Run(("STI", "NOP"), Cpu(irq_pending=True), Delivery(1, "INTR")))
    fails BM_STI_IF_SET_NO_SHADOW: STI found IF=1 but the interrupt was not taken right after it
        [program=STI; NOP, event=INTR at boundary 1]

    Scenario SCN_BM_STI_IF_SET_IRQ_NEVER (fails): a trace in which the waiting interrupt is
    not taken at all.

    >>> verdict(sti_if_set_no_shadow, Run(("STI", "NOP"), Cpu(irq_pending=True), None))
    fails BM_STI_IF_SET_NO_SHADOW: STI found IF=1 but the interrupt was not taken right after it
        [program=STI; NOP, event=no event]

    Scenario SCN_BM_STI_IF_SET_STEP_FIRST (passes): with TF=1 the single-step trap is taken
    right after the STI, before the interrupt: still nothing held off.

    >>> verdict(sti_if_set_no_shadow, run_bare_metal(("STI", "NOP"), Cpu(tf=True, irq_pending=True)))
    passes

    Scenario SCN_BM_STI_IF_CLEAR_NOT_JUDGED (passes): an STI that finds IF=0 does delay the
    interrupt (BM_STI_SHADOW's case, not this one).

    >>> verdict(sti_if_set_no_shadow, run_bare_metal(("STI", "NOP"), Cpu(if_=False, irq_pending=True)))
    passes

    Scenario SCN_BM_STI_IF_SET_NOTHING_WAITING (passes): no interrupt waiting, no event:
    nothing for the missing shadow to show.

    >>> verdict(sti_if_set_no_shadow, run_bare_metal(("STI", "NOP"), Cpu()))
    passes

    Scenario SCN_BM_NOP_IRQ_LATE_NOT_JUDGED (passes): a run that starts with a NOP is not
    this clause's, whatever it does with the interrupt.

    >>> verdict(sti_if_set_no_shadow, Run(("NOP", "NOP"), Cpu(irq_pending=True), Delivery(1, "INTR")))
    passes

    Scenario SCN_BM_STI_IF_SET_EMPTY_TRACE (passes): a trace that stops before its first
    instruction retires has no STI to judge.

    >>> verdict(sti_if_set_no_shadow, run_bare_metal((), Cpu(irq_pending=True)))
    passes
    """
    if not run.program or run.program[0] != "STI" or not run.start.if_ or not run.start.irq_pending:
        return ()
    if run.first is not None and run.first.at == 0:
        return ()
    return (
        me(sti_if_set_no_shadow).violation(
            "STI found IF=1 but the interrupt was not taken right after it",
            program="; ".join(run.program),
            event=str(run.first) if run.first is not None else "no event",
        ),
    )


@rule("BM_STI_NO_DB_BLOCK", section=STEP_SECTION, kind="bare-metal")
def sti_no_db_block(run: Run) -> Violations:
    """STI blocking does not hold off a single-step #DB: with TF=1 and BTF=0 the trap is
    taken right after STI, inside the STI shadow (single-step traps outrank interrupts).

    Scenario SCN_BM_STI_STEP_AT_ONCE (passes): the processor's behaviour.

    >>> verdict(sti_no_db_block, run_bare_metal(("STI", "NOP"), Cpu(tf=True, if_=False)))
    passes

    Scenario SCN_BM_STI_STEP_DELAYED (fails): an implementation that treats the STI
    shadow like a MOV-SS shadow.

    >>> verdict(sti_no_db_block, Run(("STI", "NOP"), Cpu(tf=True, if_=False), Delivery(1, "#DB", True)))
    fails BM_STI_NO_DB_BLOCK: first event is #DB (DR6.BS=1) at boundary 1, not a single-step #DB at boundary 0
        [program=STI; NOP]

    Scenario SCN_BM_MOVSS_STEP_NOT_STI (passes): after MOV SS the single-step trap comes
    one instruction later; that shadow is not an STI shadow, and this clause does not
    apply.

    >>> verdict(sti_no_db_block, run_bare_metal(("MOV SS", "NOP"), Cpu(tf=True)))
    passes

    Scenario SCN_BM_STI_BTF_NO_STEP (passes): with BTF=1 a non-branch STI does not trap:
    there is no single-step #DB to take inside the shadow.

    >>> verdict(sti_no_db_block, run_bare_metal(("STI", "NOP"), Cpu(tf=True, btf=True, if_=False)))
    passes

    Scenario SCN_BM_STI_STEP_EMPTY_TRACE (passes): a trace that stops before its first
    instruction retires has no STI to judge, even with single-stepping armed.

    >>> verdict(sti_no_db_block, run_bare_metal((), Cpu(tf=True, if_=False)))
    passes
    """
    if not run.program or run.program[0] != "STI" or not _armed(run.start):
        return ()
    if run.first == Delivery(0, "#DB", True):
        return ()
    return (
        me(sti_no_db_block).violation(
            f"first event is {run.first or 'none'}, not a single-step #DB at boundary 0",
            program="; ".join(run.program),
        ),
    )
