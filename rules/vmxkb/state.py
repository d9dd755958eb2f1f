"""The guest state a VM entry is attempted with, as frozen data.

Fields carry the names of the kernel's ``enum vmcs_field`` (``arch/x86/include/asm/vmx.h``),
so a value can be pasted from a ``dump_vmcs()`` line or grepped in ``vmx.c``. A field
that is ``None`` was not given: a rule that needs it is reported as *not evaluated*,
never guessed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


class FieldInfo(NamedTuple):
    """What the SDM and the kernel say about one VMCS field."""

    encoding: int
    width: int  #: bits
    meaning: str


#: The VMCS fields in scope, in encoding order of their area.
FIELDS: Mapping[str, FieldInfo] = {
    "PIN_BASED_VM_EXEC_CONTROL": FieldInfo(0x4000, 32, "pin-based VM-execution controls"),
    "VM_ENTRY_CONTROLS": FieldInfo(0x4012, 32, "VM-entry controls"),
    "VM_ENTRY_INTR_INFO_FIELD": FieldInfo(0x4016, 32, "VM-entry interruption-information field"),
    "VM_ENTRY_EXCEPTION_ERROR_CODE": FieldInfo(0x4018, 32, "VM-entry exception error code"),
    "VM_ENTRY_INSTRUCTION_LEN": FieldInfo(0x401A, 32, "VM-entry instruction length"),
    "SECONDARY_VM_EXEC_CONTROL": FieldInfo(0x401E, 32, "secondary processor-based controls"),
    "GUEST_SS_AR_BYTES": FieldInfo(0x4818, 32, "guest SS access rights"),
    "GUEST_INTERRUPTIBILITY_INFO": FieldInfo(0x4824, 32, "guest interruptibility state"),
    "GUEST_ACTIVITY_STATE": FieldInfo(0x4826, 32, "guest activity state"),
    "GUEST_IA32_DEBUGCTL": FieldInfo(0x2802, 64, "guest IA32_DEBUGCTL"),
    "GUEST_CR0": FieldInfo(0x6800, 64, "guest CR0"),
    "GUEST_DR7": FieldInfo(0x681A, 64, "guest DR7"),
    "GUEST_RFLAGS": FieldInfo(0x6820, 64, "guest RFLAGS"),
    "GUEST_PENDING_DBG_EXCEPTIONS": FieldInfo(0x6822, 64, "guest pending debug exceptions"),
}


class MissingField(Exception):
    """A rule needed fields the state does not give (the rule is *not evaluated*)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class UnknownField(ValueError):
    """A name that is not one of :data:`FIELDS`."""


@dataclass(frozen=True)
class Vmcs:
    """Values of the VMCS fields in scope; ``None`` means "not given"."""

    PIN_BASED_VM_EXEC_CONTROL: int | None = None
    VM_ENTRY_CONTROLS: int | None = None
    VM_ENTRY_INTR_INFO_FIELD: int | None = None
    VM_ENTRY_EXCEPTION_ERROR_CODE: int | None = None
    VM_ENTRY_INSTRUCTION_LEN: int | None = None
    SECONDARY_VM_EXEC_CONTROL: int | None = None
    GUEST_SS_AR_BYTES: int | None = None
    GUEST_INTERRUPTIBILITY_INFO: int | None = None
    GUEST_ACTIVITY_STATE: int | None = None
    GUEST_IA32_DEBUGCTL: int | None = None
    GUEST_CR0: int | None = None
    GUEST_DR7: int | None = None
    GUEST_RFLAGS: int | None = None
    GUEST_PENDING_DBG_EXCEPTIONS: int | None = None

    def __post_init__(self) -> None:
        for name, info in FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {type(value).__name__}")
            if value < 0 or value >> info.width:
                raise ValueError(f"{name}={value:#x} does not fit in {info.width} bits")

    @classmethod
    def from_fields(cls, values: Mapping[str, int]) -> Vmcs:
        """Build from kernel field names; an unknown name raises :class:`UnknownField`."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise UnknownField(", ".join(unknown))
        return cls(**values)

    def given(self) -> dict[str, int]:
        """The fields that have a value, by kernel name."""
        return {n: v for n in FIELDS if (v := getattr(self, n)) is not None}

    def replace(self, **values: int | None) -> Vmcs:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **values)


@dataclass(frozen=True)
class Capabilities:
    """Implementation facts a rule depends on (IA32_VMX_* MSRs, CPUID).

    The defaults describe a recent Intel server part as KVM sees it; issue-level
    profiles will replace them.
    """

    #: activity states the CPU reports in IA32_VMX_MISC bits 8:6 (active is always there)
    activity_states: frozenset[int] = frozenset({0, 1, 2, 3})
    #: the "monitor trap flag" control exists (makes injection type 7 legal)
    monitor_trap_flag: bool = True
    #: IA32_VMX_MISC bit 30: injecting a software event with instruction length 0 is allowed
    zero_length_injection: bool = False
    #: IA32_VMX_BASIC bit 56: hardware exceptions may carry an error code or not, freely
    no_hw_errcode_check: bool = False
    #: CPUID.(EAX=7,ECX=0):EBX[11]
    rtm: bool = True
    #: CPUID.(EAX=7,ECX=0):EBX[2]
    sgx: bool = False
    #: whether this processor rejects NMI injection while STI blocking is reported
    #: (the SDM leaves it model-specific)
    nmi_injection_rejects_sti_blocking: bool = True


DEFAULT_CAPABILITIES = Capabilities()


@dataclass(frozen=True)
class EntryState:
    """Everything a VM-entry check looks at: the VMCS, the CPU's capabilities, and
    whether VMLAUNCH/VMRESUME runs in SMM."""

    vmcs: Vmcs
    caps: Capabilities = field(default=DEFAULT_CAPABILITIES)
    in_smm: bool = False

    def need(self, *names: str) -> tuple[int, ...]:
        """The values of ``names``; raises :class:`MissingField` naming every absent one."""
        values = tuple(getattr(self.vmcs, n) for n in names)
        missing = tuple(n for n, v in zip(names, values, strict=True) if v is None)
        if missing:
            raise MissingField(missing)
        return values  # type: ignore[return-value]

    def need1(self, name: str) -> int:
        """The value of one field (see :meth:`need`)."""
        return self.need(name)[0]


def entry(caps: Capabilities = DEFAULT_CAPABILITIES, in_smm: bool = False, **fields: int) -> EntryState:
    """An :class:`EntryState` from kernel field names: the shorthand scenarios use."""
    return EntryState(Vmcs.from_fields(fields), caps, in_smm)
