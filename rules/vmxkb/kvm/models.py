"""KVM behaviour models: from a guest situation to the VMCS KVM enters with, and to
what the guest then observes.

Each model is a small pure function registered with ``@behaviour``; its docs need (same
ID) cites the commit or thread it is read from. A model declares its input domain; the
exploration (:mod:`vmxkb.kvm.explore`) runs every input, checks the VMCS with the SDM
entry checks, and compares what the guest observes with bare metal
(:func:`vmxkb.sdm.bare_metal.run_bare_metal`).

The situation: the guest has just retired ``last`` (a non-branch instruction, MOV SS or
STI), with RFLAGS.TF and IF as given and maybe an interrupt arriving; the next
instruction is a NOP. KVM gets involved at that boundary (boundary 0) along one path:

``exit``
    the CPU ran ``last`` and exited at boundary 0: on the single-step #DB if one is
    due there (KVM intercepts #DB unconditionally), else on some asynchronous exit (a
    host interrupt, an EPT violation fetching the NOP);
``emulate``
    KVM's emulator ran ``last`` (forced emulation, or an exit that needs it);
``restore``
    as ``exit``, then the vCPU was saved with KVM_GET_VCPU_EVENTS / KVM_GET_REGS and
    restored into a fresh VMCS (live migration, snapshot).

Modelling assumptions, each from a cited source:

- an exit caused by #DB saves 0 in GUEST_PENDING_DBG_EXCEPTIONS; an asynchronous exit
  inside a MOV-SS shadow saves the deferred single-step as BS (the CPU behaviour KVM's
  ``handle_exception_nmi()`` comment relies on; the SDM calls BS here
  implementation-specific);
- KVM's VMX guest never runs with DEBUGCTL.BTF=1: ``vmx_set_msr()`` drops BTF on
  WRMSR (``vmx_is_valid_debugctl()``), so the domains fix BTF=0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from vmxkb.bits import (
    DB_VECTOR,
    DR6_BS,
    GUEST_INTR_STATE_MOV_SS,
    GUEST_INTR_STATE_STI,
    INTR_TYPE_EXT_INTR,
    INTR_TYPE_HARD_EXCEPTION,
    PENDING_DBG_BS,
    RFLAGS_FIXED1,
    RFLAGS_IF,
    RFLAGS_TF,
    intr_info_type,
    intr_info_vector,
    make_intr_info,
)
from vmxkb.guests import long_mode
from vmxkb.sdm.bare_metal import Cpu, Delivery, Run, continue_run, execute, take_event
from vmxkb.state import EntryState
from vmxkb.vmentry import DR6_INIT, after_entry, evaluate

Path = Literal["exit", "emulate", "restore"]
PATHS: tuple[Path, ...] = ("exit", "emulate", "restore")
LAST_INSTRUCTIONS = ("NOP", "MOV SS", "STI")
IRQ_VECTOR = 0x20


@dataclass(frozen=True, order=True)
class Situation:
    """The guest at boundary 0, and how KVM got involved there."""

    path: Path
    last: str
    tf: bool
    if_: bool  #: RFLAGS.IF when ``last`` began
    irq: bool  #: an interrupt arrives while ``last`` runs

    @property
    def program(self) -> tuple[str, ...]:
        return (self.last, "NOP")

    @property
    def start(self) -> Cpu:
        return Cpu(tf=self.tf, btf=False, if_=self.if_, irq_pending=self.irq)

    @property
    def size(self) -> int:
        """How much is going on: used to pick the smallest witness."""
        return int(self.tf) + int(self.if_) + int(self.irq) + (self.last != "NOP") + PATHS.index(self.path)

    def __str__(self) -> str:
        flags = f"TF={int(self.tf)} IF={int(self.if_)}" + (", interrupt arriving" if self.irq else "")
        return f"guest runs {self.last!r} with {flags}; KVM path: {self.path}"


@dataclass(frozen=True)
class KvmRun:
    """What one model input leads to."""

    entry: EntryState | None  #: the VMCS KVM enters with (None: not a VMX entry)
    dr6_before: int  #: guest DR6 KVM loads before entry
    run: Run | None  #: what the guest observes; None when the entry fails
    trace: tuple[str, ...]  #: what KVM did, step by step


Domain = Callable[[], Iterable[Situation]]


@dataclass(frozen=True)
class Behaviour:
    """A registered KVM behaviour model."""

    id: str
    func: Callable[[Situation], KvmRun]
    domain: Domain
    vendor: Literal["vmx", "svm"]
    summary: str = field(default="", compare=False)

    @property
    def qualname(self) -> str:
        return f"{self.func.__module__}.{self.func.__name__}"


BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(
    behaviour_id: str, *, domain: Domain, vendor: Literal["vmx", "svm"] = "vmx"
) -> Callable[[Callable[[Situation], KvmRun]], Callable[[Situation], KvmRun]]:
    """Register a behaviour model under ``behaviour_id``."""

    def register(func: Callable[[Situation], KvmRun]) -> Callable[[Situation], KvmRun]:
        doc = " ".join((func.__doc__ or "").split("\n\n", 1)[0].split())
        BEHAVIOURS[behaviour_id] = Behaviour(behaviour_id, func, domain, vendor, doc)
        return func

    return register


def situations(
    paths: Iterable[Path] = PATHS, tf: Iterable[bool] = (False, True), lasts: Iterable[str] = LAST_INSTRUCTIONS
) -> Domain:
    """A domain: every combination, minus the impossible (STI that found IF=1 with a
    shadow is just a NOP here; we keep it, as the model handles it)."""
    paths, tf, lasts = tuple(paths), tuple(tf), tuple(lasts)

    def domain() -> Iterable[Situation]:
        for p, last, t, i, q in itertools.product(paths, lasts, tf, (False, True), (False, True)):
            yield Situation(p, last, t, i, q)

    return domain


# --- the pieces of KVM the models share -------------------------------------------------------


@dataclass(frozen=True)
class Vcpu:
    """KVM's view of the vCPU at boundary 0 before it enters."""

    rflags: int
    shadow: Literal["none", "sti", "movss"]
    pending_dbg: int  #: the VMCS field as it stands (saved by the CPU or left by KVM)
    queued_db: bool  #: a #DB with payload DR6.BS is queued for injection
    irq: bool


def _rflags(tf: bool, if_: bool) -> int:
    return RFLAGS_FIXED1 | (RFLAGS_TF if tf else 0) | (RFLAGS_IF if if_ else 0)


def hardware_exit(s: Situation) -> tuple[str, Vcpu]:
    """The CPU runs ``last`` and exits at boundary 0; what the exit saves."""
    cpu = execute(s.start, s.last)
    due = take_event(cpu, 0)
    if due is not None and due.event == "#DB":
        return "#DB intercept", Vcpu(_rflags(cpu.tf, cpu.if_), cpu.shadow, 0, False, s.irq)
    return "asynchronous exit", Vcpu(_rflags(cpu.tf, cpu.if_), cpu.shadow, cpu.pending_db, False, s.irq)


def emulate_last(s: Situation) -> Vcpu:
    """KVM's emulator runs ``last`` (``x86_emulate_instruction()``): it sets the shadow
    the instruction opens (``toggle_interruptibility()``) and, when TF was set, queues a
    single-step #DB at once (``kvm_vcpu_do_singlestep()``), without looking at that shadow."""
    cpu = execute(s.start, s.last)
    return Vcpu(_rflags(cpu.tf, cpu.if_), cpu.shadow, 0, s.tf, s.irq)


def save_restore(v: Vcpu) -> Vcpu:
    """KVM_GET/SET_VCPU_EVENTS + KVM_GET/SET_REGS: RFLAGS, the interrupt shadow and the
    queued exception travel; GUEST_PENDING_DBG_EXCEPTIONS does not (no ABI field), so the
    destination VMCS holds 0."""
    return Vcpu(v.rflags, v.shadow, 0, v.queued_db, v.irq)


def _shadow_bits(shadow: str) -> int:
    return {"none": 0, "sti": GUEST_INTR_STATE_STI, "movss": GUEST_INTR_STATE_MOV_SS}[shadow]


def vmx_enter(v: Vcpu, *, stuff_bs_on_inject: bool, clear_shadow: bool = False) -> tuple[EntryState, int, str]:
    """Build the VMCS KVM enters with; returns it, DR6 before entry, and a note."""
    info, dr6, note = 0, DR6_INIT, "resume without injection"
    pending, intr = v.pending_dbg, _shadow_bits(v.shadow)
    if v.queued_db:
        info = make_intr_info(DB_VECTOR, INTR_TYPE_HARD_EXCEPTION)
        dr6 = DR6_INIT | DR6_BS  # kvm_deliver_exception_payload(): the payload lands in DR6
        note = "inject #DB (payload DR6.BS)"
        if stuff_bs_on_inject and v.rflags & RFLAGS_TF and intr:
            pending |= PENDING_DBG_BS
            note += ", stuff PENDING_DBG.BS (vmx_inject_exception)"
    elif v.irq and v.rflags & RFLAGS_IF and not intr:
        info = make_intr_info(IRQ_VECTOR, INTR_TYPE_EXT_INTR)
        note = "inject the interrupt"
    if clear_shadow and intr:
        intr = 0
        note += ", clear the interrupt shadow (vmx_vcpu_run, host single-step)"
    # Everything KVM does not touch here is a valid 64-bit guest (vmxkb.guests.LONG_MODE):
    # the models are about these four fields, and every other check must pass.
    state = long_mode(
        VM_ENTRY_INTR_INFO_FIELD=info,
        GUEST_INTERRUPTIBILITY_INFO=intr,
        GUEST_RFLAGS=v.rflags,
        GUEST_PENDING_DBG_EXCEPTIONS=pending,
    )
    return state, dr6, note


def observe_vmx(s: Situation, state: EntryState, dr6: int, guest_tf: bool | None = None) -> Run:
    """What the guest observes after a successful entry at boundary 0 (SDM model),
    continuing on the CPU through the NOP. ``guest_tf`` overrides the TF the guest itself
    set (host single-step sets TF the guest never sees)."""
    after = after_entry(state, dr6)
    if after.injected is not None:
        event = "#DB" if intr_info_vector(after.injected) == DB_VECTOR else "INTR"
        if intr_info_type(after.injected) == INTR_TYPE_EXT_INTR:
            event = "INTR"
        return Run(s.program, s.start, Delivery(0, event, event == "#DB" and bool(after.dr6 & DR6_BS)))  # type: ignore[arg-type]
    if after.pending_dbg_delivered:
        return Run(s.program, s.start, Delivery(0, "#DB", bool(after.dr6 & DR6_BS)))
    rflags = state.need1("GUEST_RFLAGS")
    shadow = "movss" if after.movss_blocking else "sti" if after.sti_blocking else "none"
    tf = bool(rflags & RFLAGS_TF) if guest_tf is None else guest_tf
    cpu = Cpu(tf=tf, btf=False, if_=bool(rflags & RFLAGS_IF), shadow=shadow, pending_db=after.pending_dbg_held, irq_pending=s.irq)  # type: ignore[arg-type]
    # The interrupt, if KVM could not inject it, waits for the window: at boundary 0 if
    # nothing blocks it any more, else after the next instruction.
    first = take_event(cpu, 0) if cpu.shadow == "none" and not cpu.pending_db else None
    return Run(s.program, s.start, first or continue_run(cpu, s.program, 1))


def _vmx_kvm(s: Situation, *, stuff_on_intercept: bool, stuff_on_inject: bool) -> KvmRun:
    trace: list[str] = []
    if s.path == "emulate":
        v = emulate_last(s)
        trace.append(f"emulator runs {s.last}" + (", queues single-step #DB" if v.queued_db else ""))
    else:
        kind, v = hardware_exit(s)
        trace.append(f"CPU exits at boundary 0 ({kind}), saves PENDING_DBG={v.pending_dbg:#x}")
        if kind == "#DB intercept":
            v = Vcpu(v.rflags, v.shadow, v.pending_dbg, True, v.irq)
            trace.append("handle_exception_nmi() reflects the #DB")
            if stuff_on_intercept and v.rflags & RFLAGS_TF and v.shadow != "none":
                v = Vcpu(v.rflags, v.shadow, v.pending_dbg | PENDING_DBG_BS, True, v.irq)
                trace.append("stuffs PENDING_DBG.BS (b9bed78e2fa9)")
        if s.path == "restore":
            v = save_restore(v)
            trace.append("vCPU saved and restored: PENDING_DBG lost")
    state, dr6, note = vmx_enter(v, stuff_bs_on_inject=stuff_on_inject)
    trace.append(note)
    result = evaluate(state, dr6)
    if result.outcome.kind != "entered":
        trace.append(str(result.outcome))
        return KvmRun(state, dr6, None, tuple(trace))
    return KvmRun(state, dr6, observe_vmx(s, state, dr6), tuple(trace))


# --- the behaviours ------------------------------------------------------------------------------


@behaviour("KVM_VMX_BS_ON_INTERCEPTED_DB", domain=situations())
def vmx_bs_on_intercepted_db(s: Situation) -> KvmRun:
    """KVM from b9bed78e2fa9 (Jan 2022) until the May 2026 fix: BS is set in
    GUEST_PENDING_DBG_EXCEPTIONS only when an intercepted #DB is reflected inside an
    STI/MOV-SS shadow with TF=1; other injected #DBs get no BS."""
    return _vmx_kvm(s, stuff_on_intercept=True, stuff_on_inject=False)


@behaviour("KVM_VMX_BS_ON_INJECTED_DB", domain=situations())
def vmx_bs_on_injected_db(s: Situation) -> KvmRun:
    """KVM with "KVM: VMX: Refresh GUEST_PENDING_DBG_EXCEPTIONS.BS on all injected #DBs"
    (v3, May 2026): ``vmx_inject_exception()`` sets BS for every injected #DB when TF=1 and
    an STI/MOV-SS shadow is active."""
    return _vmx_kvm(s, stuff_on_intercept=False, stuff_on_inject=True)


@behaviour("KVM_GUESTDBG_SINGLESTEP_CLEARS_SHADOW", domain=situations(paths=("exit",), tf=(False,)))
def guestdbg_singlestep_clears_shadow(s: Situation) -> KvmRun:
    """With KVM_GUESTDBG_SINGLESTEP, KVM itself sets TF to step the guest for userspace
    and, before every entry, clears the interrupt shadow (``vmx_vcpu_run()``), so that VM
    entry never demands BS. The guest's own TF is 0 here; the host's #DB exits are not
    guest-visible."""
    host = Situation(s.path, s.last, True, s.if_, s.irq)
    kind, v = hardware_exit(host)
    trace = [f"CPU exits at boundary 0 ({kind}): " + ("KVM_EXIT_DEBUG to userspace" if kind == "#DB intercept" else "")]
    state, dr6, note = vmx_enter(v, stuff_bs_on_inject=True, clear_shadow=True)
    trace.append(note)
    result = evaluate(state, dr6)
    if result.outcome.kind != "entered":  # pragma: no cover - the cleared shadow leaves no check to fail; kept so a change that breaks that is reported, not mis-modelled
        return KvmRun(state, dr6, None, (*trace, str(result.outcome)))
    # The host's single-step #DBs exit to userspace and are not guest-visible; what the
    # guest sees is the shadow KVM dropped.
    after = after_entry(state, dr6)
    shadow = "movss" if after.movss_blocking else "sti" if after.sti_blocking else "none"
    cpu = Cpu(tf=False, if_=bool(v.rflags & RFLAGS_IF), shadow=shadow, irq_pending=s.irq)  # type: ignore[arg-type]
    run = Run(s.program, s.start, take_event(cpu, 0) or continue_run(cpu, s.program, 1))
    return KvmRun(state, dr6, run, tuple(trace))


@behaviour("KVM_VCPU_EVENTS_SAVE_RESTORE", domain=situations(paths=("restore",)))
def vcpu_events_save_restore(s: Situation) -> KvmRun:
    """Live migration or snapshot restore through KVM_GET/SET_VCPU_EVENTS: RFLAGS and the
    interrupt shadow travel, GUEST_PENDING_DBG_EXCEPTIONS does not. Explored with the
    current (v3) injection code."""
    return _vmx_kvm(s, stuff_on_intercept=False, stuff_on_inject=True)


@behaviour("KVM_EMULATOR_SINGLESTEP_NOW", domain=situations(paths=("emulate",)))
def emulator_singlestep_now(s: Situation) -> KvmRun:
    """KVM's emulator running MOV SS, POP SS or STI with TF=1 queues the single-step #DB
    at once (``kvm_vcpu_do_singlestep()``), ignoring the shadow the instruction opened.
    Explored with the current (v3) injection code."""
    return _vmx_kvm(s, stuff_on_intercept=False, stuff_on_inject=True)


@behaviour("KVM_SVM_NO_PENDING_DBG", domain=situations(), vendor="svm")
def svm_no_pending_dbg(s: Situation) -> KvmRun:
    """SVM: the VMCB has one interrupt-shadow bit (STI and MOV SS are not told apart), no
    pending-debug-exceptions field, and VMRUN has no check tying TF and the shadow to a
    BS-like bit, so every entry here succeeds. An injected event is delivered at once; a
    resumed shadow holds off interrupts for one instruction."""
    trace: list[str] = []
    if s.path == "emulate":
        v = emulate_last(s)
        trace.append(f"emulator runs {s.last}" + (", queues single-step #DB" if v.queued_db else ""))
    else:
        kind, v = hardware_exit(s)
        if kind == "#DB intercept":
            v = Vcpu(v.rflags, v.shadow, 0, True, v.irq)
            trace.append("db_interception() re-queues the #DB")
        else:
            v = Vcpu(v.rflags, v.shadow, 0, False, v.irq)
            trace.append("asynchronous #VMEXIT; no pending-debug state is kept by KVM")
        if s.path == "restore":
            v = save_restore(v)
    if v.queued_db:
        return KvmRun(None, DR6_INIT | DR6_BS, Run(s.program, s.start, Delivery(0, "#DB", True)), (*trace, "EVENTINJ #DB"))
    shadowed = v.shadow != "none"
    cpu = Cpu(tf=bool(v.rflags & RFLAGS_TF), if_=bool(v.rflags & RFLAGS_IF), shadow="sti" if shadowed else "none", irq_pending=s.irq)
    first = take_event(cpu, 0) or continue_run(cpu, s.program, 1)
    return KvmRun(None, DR6_INIT, Run(s.program, s.start, first), (*trace, "VMRUN"))
