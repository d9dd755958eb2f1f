"""Checks on the VM-entry control fields (SDM "Checks on VM-Entry Control Fields").

A violation makes VMLAUNCH/VMRESUME fail with VMfailValid, VM-instruction error 7
("invalid control field(s)"): no VM exit happens and no guest state is loaded. The
section covers the reserved bits of the VM-entry controls, the three event-injection
fields (checked only when the valid bit, 31, of ``VM_ENTRY_INTR_INFO_FIELD`` is set), the
VM-entry MSR-load area (not modelled: the state has no MSR-load count or address), and
the two SMM controls. KVM emulates these checks for L1 in
``nested_check_vm_entry_controls()`` (``arch/x86/kvm/vmx/nested.c``).
"""

from __future__ import annotations

from vmxkb.bits import (
    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS,
    ERROR_CODE_VECTORS,
    ERROR_CODE_WIDTH_MASK,
    INSTRUCTION_LENGTH_TYPES,
    INTR_INFO_DELIVER_CODE_MASK,
    INTR_INFO_RESERVED,
    INTR_TYPE_HARD_EXCEPTION,
    INTR_TYPE_NMI_INTR,
    INTR_TYPE_OTHER_EVENT,
    INTR_TYPE_RESERVED,
    MAX_EXCEPTION_VECTOR,
    MAX_INSTRUCTION_LENGTH,
    MTF_PENDING_VECTOR,
    NMI_VECTOR,
    VM_ENTRY_DEACT_DUAL_MONITOR,
    VM_ENTRY_IA32E_MODE,
    VM_ENTRY_LOAD_BNDCFGS,
    VM_ENTRY_LOAD_CET_STATE,
    VM_ENTRY_LOAD_IA32_LBR_CTL,
    VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL,
    VM_ENTRY_LOAD_IA32_PKRS,
    VM_ENTRY_LOAD_IA32_RTIT_CTL,
    VM_ENTRY_SMM,
    X86_CR0_PE,
    X86_CR4_FRED,
    bit,
    bits,
    intr_info_type,
    intr_info_valid,
    intr_info_vector,
    make_intr_info,
)
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.predicates import unrestricted_guest
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState, entry

SECTION = "SEC_CTRL_ENTRY"

__all__ = [
    "Capabilities",
    "entry",
    "long_mode",
    "make_intr_info",
    "protected_mode",
    "real_mode",
    "verdict",
]

#: "load IA32_FRED" VM-entry control (kernel ``VM_ENTRY_LOAD_IA32_FRED``).
VM_ENTRY_LOAD_IA32_FRED = bit(23)
#: Bits 31:0 of an IA32_VMX_*_CTLS capability MSR: the allowed 0-settings.
CTLS_ALLOWED0_MASK = bits(31, 0)
#: Shift of the allowed 1-settings (bits 63:32) in such an MSR.
CTLS_ALLOWED1_SHIFT = 32
#: Bit 13 of the interruption-information field: "nested exception" on FRED processors
#: with VMX nested-exception support (reserved otherwise).
INTR_INFO_NESTED_EXCEPTION = bit(13)
#: Other-event vectors FRED adds: 1 (SYSCALL) and 2 (SYSENTER).
FRED_OTHER_EVENT_VECTORS = frozenset({1, 2})


def _injection(s: EntryState) -> int | None:
    """The interruption-information value if an event is being injected, else None."""
    info = s.need1("VM_ENTRY_INTR_INFO_FIELD")
    return info if intr_info_valid(info) else None


# --- Reserved bits of the VM-entry controls -------------------------------------------------


def _entry_ctls_allowed(caps: Capabilities) -> tuple[int, int]:
    """(must-be-1 mask, may-be-1 mask) of the VM-entry controls for this profile: the
    capability MSR, with each "load ..." control that a boolean fact names following it."""
    must_be_1 = caps.vmx_entry_ctls & CTLS_ALLOWED0_MASK
    may_be_1 = caps.vmx_entry_ctls >> CTLS_ALLOWED1_SHIFT
    for mask, supported in (
        (VM_ENTRY_LOAD_IA32_PERF_GLOBAL_CTRL, caps.perf_global_ctrl),
        (VM_ENTRY_LOAD_BNDCFGS, caps.mpx),
        (VM_ENTRY_LOAD_IA32_RTIT_CTL, caps.rtit),
        (VM_ENTRY_LOAD_CET_STATE, caps.cet),
        (VM_ENTRY_LOAD_IA32_LBR_CTL, caps.arch_lbr),
        (VM_ENTRY_LOAD_IA32_PKRS, caps.pks),
        (VM_ENTRY_LOAD_IA32_FRED, caps.fred),
    ):
        may_be_1 = may_be_1 | mask if supported else may_be_1 & ~mask
    return must_be_1, may_be_1


@rule("ENTRY_CTRL_ENTRY_CTLS_RESERVED", section=SECTION, phase="control")
def entry_ctls_reserved(s: EntryState) -> Violations:
    """The VM-entry controls must respect the capability MSR: every bit whose allowed
    0-setting is 1 must be 1 (bits of the default1 class, 0-8 and 12, unless the true MSR
    lets one be 0, as it typically does for bit 2, "load debug controls"), and every bit
    whose allowed 1-setting is 0 must be 0 (undefined bits, and controls for features the
    CPU lacks, such as "load IA32_BNDCFGS" without MPX).

    Scenario SCN_ECTL_RESERVED_KVM_LONG_MODE (passes): the controls KVM uses for a 64-bit
    guest (default1 bits, IA-32e mode guest, load debug controls, PAT and EFER).

    >>> verdict(entry_ctls_reserved, long_mode())
    passes

    Scenario SCN_ECTL_RESERVED_BNDCFGS_NO_MPX (fails): "load IA32_BNDCFGS" (bit 16) on a
    CPU without MPX.

    >>> verdict(entry_ctls_reserved, long_mode(VM_ENTRY_CONTROLS=0x1d3ff))
    fails ENTRY_CTRL_ENTRY_CTLS_RESERVED: bits 0x10000 set that this CPU does not allow to be 1
        [VM_ENTRY_CONTROLS=0x1d3ff]

    Scenario SCN_ECTL_RESERVED_DEFAULT1_CLEAR (fails): bit 0, one of the default1 bits,
    left 0 (a VMCS built from a zeroed template).

    >>> verdict(entry_ctls_reserved, long_mode(VM_ENTRY_CONTROLS=0xd3fe))
    fails ENTRY_CTRL_ENTRY_CTLS_RESERVED: bits 0x1 clear that this CPU requires to be 1
        [VM_ENTRY_CONTROLS=0xd3fe]
    """
    ctl = s.need1("VM_ENTRY_CONTROLS")
    must_be_1, may_be_1 = _entry_ctls_allowed(s.caps)
    r = me(entry_ctls_reserved)
    out = []
    if missing := must_be_1 & ~ctl:
        out.append(r.violation(f"bits {missing:#x} clear that this CPU requires to be 1", VM_ENTRY_CONTROLS=ctl))
    if extra := ctl & ~may_be_1:
        out.append(r.violation(f"bits {extra:#x} set that this CPU does not allow to be 1", VM_ENTRY_CONTROLS=ctl))
    return tuple(out)


# --- Event injection ------------------------------------------------------------------------


@rule("ENTRY_CTRL_INJ_TYPE_VALID", section=SECTION, phase="control")
def inj_type_valid(s: EntryState) -> Violations:
    """The injected event's type may not be 1 (reserved), and may be 7 ("other event")
    only on a CPU that supports the monitor-trap-flag control.

    Scenario SCN_INJ_TYPE_HW_EXCEPTION (passes): a #DB injected as a hardware exception.

    >>> verdict(inj_type_valid, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes

    Scenario SCN_INJ_TYPE_RESERVED (fails): type 1 is reserved on every CPU.

    >>> verdict(inj_type_valid, long_mode(VM_ENTRY_INTR_INFO_FIELD=0x80000101))
    fails ENTRY_CTRL_INJ_TYPE_VALID: injection type 1 is reserved [VM_ENTRY_INTR_INFO_FIELD=0x80000101]

    Scenario SCN_INJ_TYPE_OTHER_NO_MTF (fails): a pending MTF exit (type 7) injected on a
    CPU without the monitor trap flag.

    >>> verdict(inj_type_valid, long_mode(Capabilities(monitor_trap_flag=False),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0, 7)))
    fails ENTRY_CTRL_INJ_TYPE_VALID: type 7 needs monitor-trap-flag support [VM_ENTRY_INTR_INFO_FIELD=0x80000700]

    Scenario SCN_INJ_TYPE_NOT_VALID (passes): bits 10:8 say type 1 but the valid bit (31)
    is clear, so nothing is injected and the type is not checked: only bit 31 arms the
    event-injection checks (the CPU clears just that bit on every VM exit).

    >>> verdict(inj_type_valid, long_mode(VM_ENTRY_INTR_INFO_FIELD=0x101))
    passes

    Scenario SCN_INJ_TYPE_MTF_PENDING (passes): a pending MTF VM exit (type 7, vector 0)
    injected on a CPU that has the monitor trap flag, as a VMM restoring a saved vCPU does.

    >>> verdict(inj_type_valid, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0, 7)))
    passes

    Scenario SCN_INJ_TYPE_NO_MTF_DB (passes): a #DB hardware exception on a CPU without the
    monitor trap flag: that capability matters only for type 7.

    >>> verdict(inj_type_valid, long_mode(Capabilities(monitor_trap_flag=False),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes
    """
    info = _injection(s)
    if info is None:
        return ()
    t = intr_info_type(info)
    if t == INTR_TYPE_RESERVED:
        return (me(inj_type_valid).violation("injection type 1 is reserved", VM_ENTRY_INTR_INFO_FIELD=info),)
    if t == INTR_TYPE_OTHER_EVENT and not s.caps.monitor_trap_flag:
        return (
            me(inj_type_valid).violation(
                "type 7 needs monitor-trap-flag support", VM_ENTRY_INTR_INFO_FIELD=info
            ),
        )
    return ()


@rule("ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE", section=SECTION, phase="control")
def inj_vector_matches_type(s: EntryState) -> Violations:
    """The vector must suit the type: an NMI uses vector 2, a hardware exception a vector
    of at most 31, and type 7 uses vector 0 (a pending MTF VM exit). On a FRED profile a
    nonzero type-7 vector is left to ENTRY_CTRL_INJ_FRED_OTHER_EVENT.

    Scenario SCN_INJ_VECTOR_DB_HW (passes): #DB (vector 1) as a hardware exception.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes

    Scenario SCN_INJ_VECTOR_NMI_WRONG (fails): an NMI must use vector 2, not 1.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 2)))
    fails ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE: NMI injected with vector 1, not 2
        [VM_ENTRY_INTR_INFO_FIELD=0x80000201]

    Scenario SCN_INJ_VECTOR_HW_ABOVE_31 (fails): an external-interrupt vector (0x20)
    injected as a hardware exception.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0x20, 3)))
    fails ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE: hardware exception with vector 32 > 31
        [VM_ENTRY_INTR_INFO_FIELD=0x80000320]

    Scenario SCN_INJ_VECTOR_OTHER_NONZERO (fails): type 7 with vector 1 on a CPU without
    FRED.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 7)))
    fails ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE: type 7 with vector 1, not 0
        [VM_ENTRY_INTR_INFO_FIELD=0x80000701]

    Scenario SCN_INJ_VECTOR_NOT_VALID (passes): an NMI type with vector 1 left in the field
    with the valid bit clear: no event is injected, so the vector is not checked.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=0x201))
    passes

    Scenario SCN_INJ_VECTOR_NMI_2 (passes): a virtual NMI injected with vector 2, the only
    vector an NMI may use.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 2)))
    passes

    Scenario SCN_INJ_VECTOR_EXT_INTR_TIMER (passes): an external interrupt with the local
    APIC timer vector 0xec: the limit of 31 binds hardware exceptions only.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0xec, 0)))
    passes

    Scenario SCN_INJ_VECTOR_MTF_PENDING (passes): type 7 with vector 0, a pending MTF VM
    exit, on a CPU without FRED.

    >>> verdict(inj_vector_matches_type, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0, 7)))
    passes

    Scenario SCN_INJ_VECTOR_OTHER_FRED (passes): on a FRED CPU a re-injected SYSCALL (type
    7, vector 1) is not judged here but by ENTRY_CTRL_INJ_FRED_OTHER_EVENT.

    >>> verdict(inj_vector_matches_type, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026e0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 7), VM_ENTRY_INSTRUCTION_LEN=2))
    passes
    """
    info = _injection(s)
    if info is None:
        return ()
    t, v = intr_info_type(info), intr_info_vector(info)
    r = me(inj_vector_matches_type)
    if t == INTR_TYPE_NMI_INTR and v != NMI_VECTOR:
        return (r.violation(f"NMI injected with vector {v}, not 2", VM_ENTRY_INTR_INFO_FIELD=info),)
    if t == INTR_TYPE_HARD_EXCEPTION and v > MAX_EXCEPTION_VECTOR:
        return (r.violation(f"hardware exception with vector {v} > 31", VM_ENTRY_INTR_INFO_FIELD=info),)
    if t == INTR_TYPE_OTHER_EVENT and v != MTF_PENDING_VECTOR and not s.caps.fred:
        return (r.violation(f"type 7 with vector {v}, not 0", VM_ENTRY_INTR_INFO_FIELD=info),)
    return ()


def _exec_controls(s: EntryState) -> dict[str, int]:
    """The execution-control fields that decide "unrestricted guest", as proof."""
    primary = s.need1("CPU_BASED_VM_EXEC_CONTROL")
    out = {"CPU_BASED_VM_EXEC_CONTROL": primary}
    if primary & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS:
        out["SECONDARY_VM_EXEC_CONTROL"] = s.need1("SECONDARY_VM_EXEC_CONTROL")
    return out


@rule("ENTRY_CTRL_INJ_ERRCODE_IFF", section=SECTION, phase="control")
def inj_errcode_iff(s: EntryState) -> Violations:
    """The deliver-error-code bit (11) must be set exactly when the guest will be in
    protected mode ("unrestricted guest" 0, or CR0.PE=1), the type is hardware exception,
    and the vector is one that pushes an error code (8, 10-14, 17). A CPU reporting
    IA32_VMX_BASIC[56] drops the per-vector part: a protected-mode hardware exception may
    then carry an error code or not; every other event still may not.

    Scenario SCN_INJ_ERRCODE_DB_NONE (passes): #DB pushes no error code and asks for none.

    >>> verdict(inj_errcode_iff, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes

    Scenario SCN_INJ_ERRCODE_DB_WITH_CODE (fails): a #DB injected with an error code.

    >>> verdict(inj_errcode_iff, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3, deliver_code=True)))
    fails ENTRY_CTRL_INJ_ERRCODE_IFF: deliver-error-code is 1 but a hardware exception with vector 1
        pushes none [VM_ENTRY_INTR_INFO_FIELD=0x80000b01]

    Scenario SCN_INJ_ERRCODE_GP_WITHOUT_CODE (fails): a #GP in a protected-mode guest
    without its error code, on a CPU that checks (IA32_VMX_BASIC[56]=0).

    >>> verdict(inj_errcode_iff, protected_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3)))
    fails ENTRY_CTRL_INJ_ERRCODE_IFF: deliver-error-code is 0 but a hardware exception with vector 13
        in protected mode (unrestricted guest=1, CR0.PE=1) pushes one
        [VM_ENTRY_INTR_INFO_FIELD=0x8000030d, CPU_BASED_VM_EXEC_CONTROL=0xb5a06dfa,
         SECONDARY_VM_EXEC_CONTROL=0x7eb, GUEST_CR0=0x80000031]

    Scenario SCN_INJ_ERRCODE_GP_REAL_MODE (fails): a #GP with an error code into a real-mode
    guest (unrestricted guest, CR0.PE=0), where no exception pushes one.

    >>> verdict(inj_errcode_iff, real_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True)))
    fails ENTRY_CTRL_INJ_ERRCODE_IFF: deliver-error-code is 1 but a hardware exception with vector 13
        in real mode (unrestricted guest=1, CR0.PE=0) pushes none
        [VM_ENTRY_INTR_INFO_FIELD=0x80000b0d, CPU_BASED_VM_EXEC_CONTROL=0xb5a06dfa,
         SECONDARY_VM_EXEC_CONTROL=0x7eb, GUEST_CR0=0x30]

    Scenario SCN_INJ_ERRCODE_NO_HW_CHECK (passes): with IA32_VMX_BASIC[56]=1 a protected-
    mode #GP may omit its error code.

    >>> verdict(inj_errcode_iff, protected_mode(Capabilities(no_hw_errcode_check=True),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3)))
    passes

    Scenario SCN_INJ_ERRCODE_NOT_VALID (passes): deliver-error-code is set on a #DB but the
    valid bit is clear: nothing is injected, so the bit is not checked.

    >>> verdict(inj_errcode_iff, long_mode(VM_ENTRY_INTR_INFO_FIELD=0xb01))
    passes

    Scenario SCN_INJ_ERRCODE_SOFT_INT_13 (passes): INT 0Dh reflected as a software
    interrupt (type 4) into a protected-mode guest carries no error code: vector 13 pushes
    one only when it is delivered as a #GP hardware exception.

    >>> verdict(inj_errcode_iff, protected_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 4),
    ...     VM_ENTRY_INSTRUCTION_LEN=2))
    passes

    Scenario SCN_INJ_ERRCODE_NO_HW_CHECK_DB_CODE (passes): with IA32_VMX_BASIC[56]=1 a
    protected-mode #DB may even carry an error code: the per-vector part is gone for
    every vector, not only for those that push one.

    >>> verdict(inj_errcode_iff, protected_mode(Capabilities(no_hw_errcode_check=True),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3, deliver_code=True)))
    passes

    Scenario SCN_INJ_ERRCODE_NO_HW_CHECK_REAL_MODE (fails): IA32_VMX_BASIC[56]=1 does not
    relax real mode: a #GP with an error code into an unrestricted guest with CR0.PE=0
    still fails.

    >>> verdict(inj_errcode_iff, real_mode(Capabilities(no_hw_errcode_check=True),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True)))
    fails ENTRY_CTRL_INJ_ERRCODE_IFF: deliver-error-code is 1 but a hardware exception with vector 13
        in real mode (unrestricted guest=1, CR0.PE=0) pushes none
        [VM_ENTRY_INTR_INFO_FIELD=0x80000b0d, CPU_BASED_VM_EXEC_CONTROL=0xb5a06dfa,
         SECONDARY_VM_EXEC_CONTROL=0x7eb, GUEST_CR0=0x30]
    """
    info = _injection(s)
    if info is None:
        return ()
    t, v = intr_info_type(info), intr_info_vector(info)
    has_code = bool(info & INTR_INFO_DELIVER_CODE_MASK)
    proof: dict[str, int] = {"VM_ENTRY_INTR_INFO_FIELD": info}
    mode = ""
    # Protected mode matters only for a hardware exception whose vector pushes an error
    # code, or for any hardware exception on a CPU without the per-vector check.
    if t == INTR_TYPE_HARD_EXCEPTION and (v in ERROR_CODE_VECTORS or s.caps.no_hw_errcode_check):
        proof.update(_exec_controls(s))
        ug = unrestricted_guest(s)
        protected = True
        if ug:
            cr0 = s.need1("GUEST_CR0")
            proof["GUEST_CR0"] = cr0
            protected = bool(cr0 & X86_CR0_PE)
        mode = (
            f" in {'protected' if protected else 'real'} mode (unrestricted guest={int(ug)}"
            + (f", CR0.PE={int(protected)})" if ug else ")")
        )
        if protected and s.caps.no_hw_errcode_check:
            return ()
        expected = protected and v in ERROR_CODE_VECTORS
    else:
        expected = False
    if has_code == expected:
        return ()
    what = "a hardware exception" if t == INTR_TYPE_HARD_EXCEPTION else f"an event of type {t}"
    word = "pushes one" if expected else "pushes none"
    return (
        me(inj_errcode_iff).violation(
            f"deliver-error-code is {int(has_code)} but {what} with vector {v}{mode} {word}", **proof
        ),
    )


@rule("ENTRY_CTRL_INJ_RESERVED_ZERO", section=SECTION, phase="control")
def inj_reserved_zero(s: EntryState) -> Violations:
    """Bits 30:12 of the interruption-information field must be 0. (On a FRED profile
    bit 13, "nested exception", is left to the clause ENTRY_CTRL_INJ_FRED_NESTED_EXCEPTION,
    which is not executable.)

    Scenario SCN_INJ_RESERVED_CLEAR (passes): an ICEBP injection with clean reserved bits.

    >>> verdict(inj_reserved_zero, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 5)))
    passes

    Scenario SCN_INJ_RESERVED_SET (fails): bit 12 set in a #BP injection, as when a VMM
    copies the IDT-vectoring information (whose bit 12 is undefined) into the field.

    >>> verdict(inj_reserved_zero, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6) | 0x1000))
    fails ENTRY_CTRL_INJ_RESERVED_ZERO: reserved bits 30:12 are 0x1000 [VM_ENTRY_INTR_INFO_FIELD=0x80001603]

    Scenario SCN_INJ_RESERVED_NOT_VALID (passes): the same copied value with bit 12 set,
    but with the valid bit clear: nothing is injected, so the reserved bits are not checked.

    >>> verdict(inj_reserved_zero, long_mode(VM_ENTRY_INTR_INFO_FIELD=0x1603))
    passes
    """
    info = _injection(s)
    if info is None:
        return ()
    reserved = INTR_INFO_RESERVED & ~(INTR_INFO_NESTED_EXCEPTION if s.caps.fred else 0)
    if not info & reserved:
        return ()
    return (
        me(inj_reserved_zero).violation(
            f"reserved bits 30:12 are {info & reserved:#x}", VM_ENTRY_INTR_INFO_FIELD=info
        ),
    )


@rule("ENTRY_CTRL_INJ_ERRCODE_WIDTH", section=SECTION, phase="control")
def inj_errcode_width(s: EntryState) -> Violations:
    """When an error code is delivered, bits 31:16 of the error-code field must be 0.
    (Editions up to at least 2019 print 31:15; KVM commit 567926cca99b records that
    hardware checks 31:16.)

    Scenario SCN_INJ_ERRCODE_16BIT (passes): a #GP with a 16-bit selector error code
    (bit 15 set, which the 31:15 wording would have rejected).

    >>> verdict(inj_errcode_width, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True),
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=0xfffc))
    passes

    Scenario SCN_INJ_ERRCODE_32BIT (fails): an AMD-style 32-bit error code.

    >>> verdict(inj_errcode_width, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True),
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=0x10000))
    fails ENTRY_CTRL_INJ_ERRCODE_WIDTH: error code does not fit in 16 bits
        [VM_ENTRY_INTR_INFO_FIELD=0x80000b0d, VM_ENTRY_EXCEPTION_ERROR_CODE=0x10000]

    Scenario SCN_INJ_WIDTH_NOT_VALID (passes): a 32-bit value left in the error-code field
    while the interruption information has its valid bit clear: nothing is injected.

    >>> verdict(inj_errcode_width, long_mode(VM_ENTRY_INTR_INFO_FIELD=0xb0d,
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=0x10000))
    passes

    Scenario SCN_INJ_WIDTH_NOT_DELIVERED (passes): a #DB injected without an error code,
    with a stale 32-bit value in the error-code field: the field is read only when
    deliver-error-code is 1.

    >>> verdict(inj_errcode_width, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=0x10000))
    passes
    """
    info = _injection(s)
    if info is None or not info & INTR_INFO_DELIVER_CODE_MASK:
        return ()
    code = s.need1("VM_ENTRY_EXCEPTION_ERROR_CODE")
    if not code & ERROR_CODE_WIDTH_MASK:
        return ()
    return (
        me(inj_errcode_width).violation(
            "error code does not fit in 16 bits",
            VM_ENTRY_INTR_INFO_FIELD=info,
            VM_ENTRY_EXCEPTION_ERROR_CODE=code,
        ),
    )


@rule("ENTRY_CTRL_INJ_INSN_LEN", section=SECTION, phase="control")
def inj_insn_len(s: EntryState) -> Violations:
    """For a software interrupt, privileged software exception (ICEBP) or software
    exception (INT3, INTO), the VM-entry instruction length must be 1 to 15; 0 is also
    accepted when IA32_VMX_MISC[30] says so.

    Scenario SCN_INJ_LEN_INT3 (passes): INT3 re-injected with its length, 1.

    >>> verdict(inj_insn_len, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6), VM_ENTRY_INSTRUCTION_LEN=1))
    passes

    Scenario SCN_INJ_LEN_ICEBP_ZERO (fails): ICEBP with length 0 on a CPU without the
    zero-length capability.

    >>> verdict(inj_insn_len, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 5), VM_ENTRY_INSTRUCTION_LEN=0))
    fails ENTRY_CTRL_INJ_INSN_LEN: type 5 needs an instruction length of 1 to 15, not 0
        [VM_ENTRY_INTR_INFO_FIELD=0x80000501, VM_ENTRY_INSTRUCTION_LEN=0x0]

    Scenario SCN_INJ_LEN_ZERO_ALLOWED (passes): the same ICEBP on a CPU reporting
    IA32_VMX_MISC[30].

    >>> verdict(inj_insn_len, long_mode(Capabilities(zero_length_injection=True),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 5), VM_ENTRY_INSTRUCTION_LEN=0))
    passes

    Scenario SCN_INJ_LEN_SIXTEEN (fails): INT 0x80 with a length of 16, longer than any
    instruction.

    >>> verdict(inj_insn_len, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0x80, 4), VM_ENTRY_INSTRUCTION_LEN=16))
    fails ENTRY_CTRL_INJ_INSN_LEN: type 4 needs an instruction length of 1 to 15, not 16
        [VM_ENTRY_INTR_INFO_FIELD=0x80000480, VM_ENTRY_INSTRUCTION_LEN=0x10]

    Scenario SCN_INJ_LEN_NOT_VALID (passes): INT 0x80 with length 0, but the valid bit is
    clear: nothing is injected, so the length is not checked.

    >>> verdict(inj_insn_len, long_mode(VM_ENTRY_INTR_INFO_FIELD=0x480, VM_ENTRY_INSTRUCTION_LEN=0))
    passes

    Scenario SCN_INJ_LEN_PF_ZERO (passes): a #PF hardware exception with length 0: only
    software events (types 4, 5 and 6) use the instruction length.

    >>> verdict(inj_insn_len, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(14, 3, deliver_code=True),
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=2, VM_ENTRY_INSTRUCTION_LEN=0))
    passes
    """
    info = _injection(s)
    if info is None or intr_info_type(info) not in INSTRUCTION_LENGTH_TYPES:
        return ()
    length = s.need1("VM_ENTRY_INSTRUCTION_LEN")
    low = 0 if s.caps.zero_length_injection else 1
    if low <= length <= MAX_INSTRUCTION_LENGTH:
        return ()
    return (
        me(inj_insn_len).violation(
            f"type {intr_info_type(info)} needs an instruction length of {low} to 15, not {length}",
            VM_ENTRY_INTR_INFO_FIELD=info,
            VM_ENTRY_INSTRUCTION_LEN=length,
        ),
    )


@rule("ENTRY_CTRL_INJ_FRED_OTHER_EVENT", section=SECTION, phase="control")
def inj_fred_other_event(s: EntryState) -> Violations:
    """On a FRED processor, type 7 (other event) may also carry vector 1 (SYSCALL) or 2
    (SYSENTER), but only into a guest that will run with FRED ("IA-32e mode guest" 1 and
    guest CR4.FRED 1); such an injection needs an instruction length of at most 15. Any
    other nonzero type-7 vector fails. Without FRED the vector rule applies instead.

    Scenario SCN_INJ_FRED_SYSCALL (passes): a SYSCALL (type 7, vector 1, length 2)
    re-injected into a FRED guest.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026e0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 7), VM_ENTRY_INSTRUCTION_LEN=2))
    passes

    Scenario SCN_INJ_FRED_VECTOR_3 (fails): type 7 with vector 3, which FRED does not define.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026e0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 7), VM_ENTRY_INSTRUCTION_LEN=2))
    fails ENTRY_CTRL_INJ_FRED_OTHER_EVENT: type 7 with vector 3: only 0, 1 and 2 are defined
        [VM_ENTRY_INTR_INFO_FIELD=0x80000703]

    Scenario SCN_INJ_FRED_SYSCALL_NO_FRED_GUEST (fails): a SYSCALL event into a guest with
    CR4.FRED=0.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 7), VM_ENTRY_INSTRUCTION_LEN=2))
    fails ENTRY_CTRL_INJ_FRED_OTHER_EVENT: type 7 with vector 1 needs a FRED guest (IA-32e mode guest=1, CR4.FRED=0)
        [VM_ENTRY_INTR_INFO_FIELD=0x80000701, VM_ENTRY_CONTROLS=0xd3ff, GUEST_CR4=0x26e0]

    Scenario SCN_INJ_FRED_EXT_INTR (passes): a FRED processor injecting an external
    interrupt: not type 7, nothing for this clause to check.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026e0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0x20, 0), VM_ENTRY_INSTRUCTION_LEN=0))
    passes

    Scenario SCN_INJ_FRED_NO_FRED_CPU (passes): type 7 with vector 1 on a CPU without FRED:
    this clause does not apply (ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE rejects the vector).

    >>> verdict(inj_fred_other_event, long_mode(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 7),
    ...     VM_ENTRY_INSTRUCTION_LEN=2))
    passes

    Scenario SCN_INJ_FRED_NOT_VALID (passes): type 7 with vector 3 left in the field of a
    FRED CPU with the valid bit clear: nothing is injected.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026e0,
    ...     VM_ENTRY_INTR_INFO_FIELD=0x703, VM_ENTRY_INSTRUCTION_LEN=2))
    passes

    Scenario SCN_INJ_FRED_MTF_PENDING (passes): a pending MTF VM exit (type 7, vector 0) on
    a FRED CPU into a guest with CR4.FRED=0: vector 0 needs no FRED guest.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True),
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(0, 7)))
    passes

    Scenario SCN_INJ_FRED_SYSCALL_LEN_16 (fails): a SYSCALL re-injected into a FRED guest
    with an instruction length of 16, longer than any instruction.

    >>> verdict(inj_fred_other_event, long_mode(Capabilities(fred=True), GUEST_CR4=0x1000026e0,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 7), VM_ENTRY_INSTRUCTION_LEN=16))
    fails ENTRY_CTRL_INJ_FRED_OTHER_EVENT: type 7 with vector 1 needs an instruction length of at most 15, not 16
        [VM_ENTRY_INTR_INFO_FIELD=0x80000701, VM_ENTRY_INSTRUCTION_LEN=0x10]

    Scenario SCN_INJ_FRED_SYSCALL_NOT_IA32E (fails): a SYSENTER event (type 7, vector 2)
    into a 32-bit guest ("IA-32e mode guest" 0) whose CR4.FRED is set: CR4.FRED alone
    does not make a FRED guest.

    >>> verdict(inj_fred_other_event, protected_mode(Capabilities(fred=True), GUEST_CR4=0x100002010,
    ...     VM_ENTRY_INTR_INFO_FIELD=make_intr_info(2, 7), VM_ENTRY_INSTRUCTION_LEN=2))
    fails ENTRY_CTRL_INJ_FRED_OTHER_EVENT: type 7 with vector 2 needs a FRED guest (IA-32e mode guest=0, CR4.FRED=1)
        [VM_ENTRY_INTR_INFO_FIELD=0x80000702, VM_ENTRY_CONTROLS=0xd1ff, GUEST_CR4=0x100002010]
    """
    if not s.caps.fred:
        return ()
    info = _injection(s)
    if info is None or intr_info_type(info) != INTR_TYPE_OTHER_EVENT:
        return ()
    v = intr_info_vector(info)
    r = me(inj_fred_other_event)
    if v == MTF_PENDING_VECTOR:
        return ()
    if v not in FRED_OTHER_EVENT_VECTORS:
        return (r.violation(f"type 7 with vector {v}: only 0, 1 and 2 are defined", VM_ENTRY_INTR_INFO_FIELD=info),)
    ctl, cr4 = s.need("VM_ENTRY_CONTROLS", "GUEST_CR4")
    ia32e, fred = bool(ctl & VM_ENTRY_IA32E_MODE), bool(cr4 & X86_CR4_FRED)
    if not (ia32e and fred):
        return (
            r.violation(
                f"type 7 with vector {v} needs a FRED guest (IA-32e mode guest={int(ia32e)}, CR4.FRED={int(fred)})",
                VM_ENTRY_INTR_INFO_FIELD=info,
                VM_ENTRY_CONTROLS=ctl,
                GUEST_CR4=cr4,
            ),
        )
    length = s.need1("VM_ENTRY_INSTRUCTION_LEN")
    if length > MAX_INSTRUCTION_LENGTH:
        return (
            r.violation(
                f"type 7 with vector {v} needs an instruction length of at most 15, not {length}",
                VM_ENTRY_INTR_INFO_FIELD=info,
                VM_ENTRY_INSTRUCTION_LEN=length,
            ),
        )
    return ()


# --- SMM ------------------------------------------------------------------------------------


@rule("ENTRY_CTRL_SMM_CONTROLS_OUTSIDE_SMM", section=SECTION, phase="control")
def smm_controls_outside_smm(s: EntryState) -> Violations:
    """Outside SMM, the "entry to SMM" (bit 10) and "deactivate dual-monitor treatment"
    (bit 11) VM-entry controls must both be 0. (Only the SMM monitor of the dual-monitor
    treatment, which runs in SMM, may set them.)

    Scenario SCN_ECTL_SMM_BITS_CLEAR (passes): an ordinary entry from outside SMM.

    >>> verdict(smm_controls_outside_smm, long_mode())
    passes

    Scenario SCN_ECTL_SMM_ENTRY_OUTSIDE_SMM (fails): "entry to SMM" set by a VMM that is
    not in SMM.

    >>> verdict(smm_controls_outside_smm, long_mode(VM_ENTRY_CONTROLS=0xd7ff))
    fails ENTRY_CTRL_SMM_CONTROLS_OUTSIDE_SMM: "entry to SMM" is 1 outside SMM [VM_ENTRY_CONTROLS=0xd7ff]

    Scenario SCN_ECTL_SMM_DEACT_OUTSIDE_SMM (fails): "deactivate dual-monitor treatment" set
    outside SMM.

    >>> verdict(smm_controls_outside_smm, long_mode(VM_ENTRY_CONTROLS=0xdbff))
    fails ENTRY_CTRL_SMM_CONTROLS_OUTSIDE_SMM: "deactivate dual-monitor treatment" is 1 outside SMM
        [VM_ENTRY_CONTROLS=0xdbff]

    Scenario SCN_ECTL_SMM_ENTRY_IN_SMM (passes): the same "entry to SMM" from inside SMM.

    >>> verdict(smm_controls_outside_smm, long_mode(in_smm=True, VM_ENTRY_CONTROLS=0xd7ff))
    passes
    """
    if s.in_smm:
        return ()
    ctl = s.need1("VM_ENTRY_CONTROLS")
    r = me(smm_controls_outside_smm)
    out = []
    if ctl & VM_ENTRY_SMM:
        out.append(r.violation('"entry to SMM" is 1 outside SMM', VM_ENTRY_CONTROLS=ctl))
    if ctl & VM_ENTRY_DEACT_DUAL_MONITOR:
        out.append(r.violation('"deactivate dual-monitor treatment" is 1 outside SMM', VM_ENTRY_CONTROLS=ctl))
    return tuple(out)


@rule("ENTRY_CTRL_SMM_ENTRY_DEACT_EXCLUSIVE", section=SECTION, phase="control")
def smm_entry_deact_exclusive(s: EntryState) -> Violations:
    """"Entry to SMM" and "deactivate dual-monitor treatment" may not both be 1: an entry
    either stays in SMM or leaves it (possibly deactivating the dual-monitor treatment),
    not both.

    Scenario SCN_ECTL_SMM_DEACT_ALONE (passes): the SMM monitor leaves SMM and deactivates
    the dual-monitor treatment.

    >>> verdict(smm_entry_deact_exclusive, long_mode(in_smm=True, VM_ENTRY_CONTROLS=0xdbff))
    passes

    Scenario SCN_ECTL_SMM_BOTH (fails): both controls set, even inside SMM.

    >>> verdict(smm_entry_deact_exclusive, long_mode(in_smm=True, VM_ENTRY_CONTROLS=0xdfff))
    fails ENTRY_CTRL_SMM_ENTRY_DEACT_EXCLUSIVE: "entry to SMM" and "deactivate dual-monitor treatment"
        are both 1 [VM_ENTRY_CONTROLS=0xdfff]
    """
    ctl = s.need1("VM_ENTRY_CONTROLS")
    both = VM_ENTRY_SMM | VM_ENTRY_DEACT_DUAL_MONITOR
    if ctl & both != both:
        return ()
    return (
        me(smm_entry_deact_exclusive).violation(
            '"entry to SMM" and "deactivate dual-monitor treatment" are both 1', VM_ENTRY_CONTROLS=ctl
        ),
    )
