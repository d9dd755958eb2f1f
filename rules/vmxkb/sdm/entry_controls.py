"""Checks on the VM-entry event-injection fields (SDM "Checks on VM-Entry Control Fields").

These apply only when the valid bit (31) of ``VM_ENTRY_INTR_INFO_FIELD`` is set. A
violation makes VMLAUNCH/VMRESUME fail with VM-instruction error 7 ("invalid control
field(s)"): no VM exit, and the guest state is not loaded. They are the checks a
#DB (type 3, vector 1), a #BP (type 6, vector 3) or an ICEBP (type 5, vector 1)
injection has to meet. Cross-checked against KVM's ``nested_check_vm_entry_controls()``
(``arch/x86/kvm/vmx/nested.c``), which emulates them for L1.
"""

from __future__ import annotations

from vmxkb.bits import (
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
    SECONDARY_EXEC_UNRESTRICTED_GUEST,
    X86_CR0_PE,
    intr_info_type,
    intr_info_valid,
    intr_info_vector,
    make_intr_info,
)
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState, entry

SECTION = "SEC_CTRL_ENTRY"

__all__ = ["entry", "verdict", "make_intr_info", "Capabilities"]


def _injection(s: EntryState) -> int | None:
    """The interruption-information value if an event is being injected, else None."""
    info = s.need1("VM_ENTRY_INTR_INFO_FIELD")
    return info if intr_info_valid(info) else None


@rule("ENTRY_CTRL_INJ_TYPE_VALID", section=SECTION, phase="control")
def inj_type_valid(s: EntryState) -> Violations:
    """The injected event's type may not be 1 (reserved), and may be 7 ("other event")
    only on a CPU that supports the monitor-trap-flag control.

    Scenario SCN_INJ_TYPE_HW_EXCEPTION (passes): a #DB injected as a hardware exception.

    >>> verdict(inj_type_valid, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes

    Scenario SCN_INJ_TYPE_RESERVED (fails): type 1 is reserved on every CPU.

    >>> verdict(inj_type_valid, entry(VM_ENTRY_INTR_INFO_FIELD=0x80000101))
    fails ENTRY_CTRL_INJ_TYPE_VALID: injection type 1 is reserved [VM_ENTRY_INTR_INFO_FIELD=0x80000101]
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
    of at most 31, and type 7 uses vector 0 (a pending MTF VM exit).

    Scenario SCN_INJ_VECTOR_DB_HW (passes): #DB (vector 1) as a hardware exception.

    >>> verdict(inj_vector_matches_type, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3)))
    passes

    Scenario SCN_INJ_VECTOR_NMI_WRONG (fails): an NMI must use vector 2, not 1.

    >>> verdict(inj_vector_matches_type, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 2)))
    fails ENTRY_CTRL_INJ_VECTOR_MATCHES_TYPE: NMI injected with vector 1, not 2
        [VM_ENTRY_INTR_INFO_FIELD=0x80000201]
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
    if t == INTR_TYPE_OTHER_EVENT and v != MTF_PENDING_VECTOR:
        return (r.violation(f"type 7 with vector {v}, not 0", VM_ENTRY_INTR_INFO_FIELD=info),)
    return ()


@rule("ENTRY_CTRL_INJ_ERRCODE_IFF", section=SECTION, phase="control")
def inj_errcode_iff(s: EntryState) -> Violations:
    """The deliver-error-code bit (11) must be set exactly when the guest will be in
    protected mode (unrestricted guest off, or CR0.PE=1), the type is hardware exception,
    and the vector is one that pushes an error code (8, 10-14, 17). A CPU reporting
    IA32_VMX_BASIC[56] drops the per-vector part for hardware exceptions.

    Scenario SCN_INJ_ERRCODE_DB_NONE (passes): #DB pushes no error code and asks for none.

    >>> verdict(inj_errcode_iff, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3),
    ...     GUEST_CR0=0x80000011, SECONDARY_VM_EXEC_CONTROL=0x80))
    passes

    Scenario SCN_INJ_ERRCODE_DB_WITH_CODE (fails): a #DB injected with an error code.

    >>> verdict(inj_errcode_iff, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 3, deliver_code=True),
    ...     GUEST_CR0=0x80000011, SECONDARY_VM_EXEC_CONTROL=0x80))
    fails ENTRY_CTRL_INJ_ERRCODE_IFF: deliver-error-code is 1 but vector 1 of type 3 in protected mode
        pushes none [VM_ENTRY_INTR_INFO_FIELD=0x80000b01, GUEST_CR0=0x80000011, SECONDARY_VM_EXEC_CONTROL=0x80]
    """
    info = _injection(s)
    if info is None:
        return ()
    cr0, secondary = s.need("GUEST_CR0", "SECONDARY_VM_EXEC_CONTROL")
    t, v = intr_info_type(info), intr_info_vector(info)
    protected = not (secondary & SECONDARY_EXEC_UNRESTRICTED_GUEST) or bool(cr0 & X86_CR0_PE)
    has_code = bool(info & INTR_INFO_DELIVER_CODE_MASK)
    if t == INTR_TYPE_HARD_EXCEPTION and protected and s.caps.no_hw_errcode_check:
        return ()
    expected = t == INTR_TYPE_HARD_EXCEPTION and protected and v in ERROR_CODE_VECTORS
    if has_code == expected:
        return ()
    mode = "protected mode" if protected else "real mode"
    word = "pushes one" if expected else "pushes none"
    return (
        me(inj_errcode_iff).violation(
            f"deliver-error-code is {int(has_code)} but vector {v} of type {t} in {mode} {word}",
            VM_ENTRY_INTR_INFO_FIELD=info,
            GUEST_CR0=cr0,
            SECONDARY_VM_EXEC_CONTROL=secondary,
        ),
    )


@rule("ENTRY_CTRL_INJ_RESERVED_ZERO", section=SECTION, phase="control")
def inj_reserved_zero(s: EntryState) -> Violations:
    """Bits 30:12 of the interruption-information field must be 0.

    Scenario SCN_INJ_RESERVED_CLEAR (passes): an ICEBP injection with clean reserved bits.

    >>> verdict(inj_reserved_zero, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 5)))
    passes

    Scenario SCN_INJ_RESERVED_SET (fails): bit 12 set in a #BP injection.

    >>> verdict(inj_reserved_zero, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6) | 0x1000))
    fails ENTRY_CTRL_INJ_RESERVED_ZERO: reserved bits 30:12 are 0x1000 [VM_ENTRY_INTR_INFO_FIELD=0x80001603]
    """
    info = _injection(s)
    if info is None or not info & INTR_INFO_RESERVED:
        return ()
    return (
        me(inj_reserved_zero).violation(
            f"reserved bits 30:12 are {info & INTR_INFO_RESERVED:#x}", VM_ENTRY_INTR_INFO_FIELD=info
        ),
    )


@rule("ENTRY_CTRL_INJ_ERRCODE_WIDTH", section=SECTION, phase="control")
def inj_errcode_width(s: EntryState) -> Violations:
    """When an error code is delivered, bits 31:16 of the error-code field must be 0.
    (Older editions print 31:15; KVM commit 567926cca99b records that hardware checks
    31:16.)

    Scenario SCN_INJ_ERRCODE_16BIT (passes): a #GP with a 16-bit selector error code.

    >>> verdict(inj_errcode_width, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True),
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=0xfffc))
    passes

    Scenario SCN_INJ_ERRCODE_32BIT (fails): an AMD-style 32-bit error code.

    >>> verdict(inj_errcode_width, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(13, 3, deliver_code=True),
    ...     VM_ENTRY_EXCEPTION_ERROR_CODE=0x10000))
    fails ENTRY_CTRL_INJ_ERRCODE_WIDTH: error code does not fit in 16 bits
        [VM_ENTRY_INTR_INFO_FIELD=0x80000b0d, VM_ENTRY_EXCEPTION_ERROR_CODE=0x10000]
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

    >>> verdict(inj_insn_len, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(3, 6), VM_ENTRY_INSTRUCTION_LEN=1))
    passes

    Scenario SCN_INJ_LEN_ICEBP_ZERO (fails): ICEBP with length 0 on a CPU without the
    zero-length capability.

    >>> verdict(inj_insn_len, entry(VM_ENTRY_INTR_INFO_FIELD=make_intr_info(1, 5), VM_ENTRY_INSTRUCTION_LEN=0))
    fails ENTRY_CTRL_INJ_INSN_LEN: type 5 needs an instruction length of 1 to 15, not 0
        [VM_ENTRY_INTR_INFO_FIELD=0x80000501, VM_ENTRY_INSTRUCTION_LEN=0x0]
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

