"""The guest state a VM entry is attempted with, as frozen data.

Fields carry the names of the kernel's ``enum vmcs_field`` (``arch/x86/include/asm/vmx.h``),
so a value can be pasted from a ``dump_vmcs()`` line or grepped in ``vmx.c``. A field
that is ``None`` was not given: a rule that needs it is reported as *not evaluated*,
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping

from vmxkb.record import Record, make_record


class FieldInfo(Record):
    """What the SDM and the kernel say about one VMCS field."""

    encoding: int
    width: int  #: bits
    meaning: str


#: The VMCS fields in scope, by the kernel's ``enum vmcs_field`` name: encoding, width in
#: bits (natural-width fields as on a 64-bit host), meaning. Grouped as the SDM lists them.
FIELDS: Mapping[str, FieldInfo] = {
    # 16-bit guest state: selectors
    "GUEST_ES_SELECTOR": FieldInfo(0x0800, 16, "guest ES selector"),
    "GUEST_CS_SELECTOR": FieldInfo(0x0802, 16, "guest CS selector"),
    "GUEST_SS_SELECTOR": FieldInfo(0x0804, 16, "guest SS selector"),
    "GUEST_DS_SELECTOR": FieldInfo(0x0806, 16, "guest DS selector"),
    "GUEST_FS_SELECTOR": FieldInfo(0x0808, 16, "guest FS selector"),
    "GUEST_GS_SELECTOR": FieldInfo(0x080A, 16, "guest GS selector"),
    "GUEST_LDTR_SELECTOR": FieldInfo(0x080C, 16, "guest LDTR selector"),
    "GUEST_TR_SELECTOR": FieldInfo(0x080E, 16, "guest TR selector"),
    # 64-bit control and guest state
    "EPT_POINTER": FieldInfo(0x201A, 64, "EPT pointer"),
    "TERTIARY_VM_EXEC_CONTROL": FieldInfo(0x2034, 64, "tertiary processor-based controls"),
    "VMCS_LINK_POINTER": FieldInfo(0x2800, 64, "VMCS link pointer"),
    "GUEST_IA32_DEBUGCTL": FieldInfo(0x2802, 64, "guest IA32_DEBUGCTL"),
    "GUEST_IA32_PAT": FieldInfo(0x2804, 64, "guest IA32_PAT"),
    "GUEST_IA32_EFER": FieldInfo(0x2806, 64, "guest IA32_EFER"),
    "GUEST_IA32_PERF_GLOBAL_CTRL": FieldInfo(0x2808, 64, "guest IA32_PERF_GLOBAL_CTRL"),
    "GUEST_PDPTR0": FieldInfo(0x280A, 64, "guest PDPTE 0"),
    "GUEST_PDPTR1": FieldInfo(0x280C, 64, "guest PDPTE 1"),
    "GUEST_PDPTR2": FieldInfo(0x280E, 64, "guest PDPTE 2"),
    "GUEST_PDPTR3": FieldInfo(0x2810, 64, "guest PDPTE 3"),
    "GUEST_BNDCFGS": FieldInfo(0x2812, 64, "guest IA32_BNDCFGS"),
    "GUEST_IA32_RTIT_CTL": FieldInfo(0x2814, 64, "guest IA32_RTIT_CTL"),
    "GUEST_IA32_LBR_CTL": FieldInfo(0x2816, 64, "guest IA32_LBR_CTL"),
    "GUEST_IA32_PKRS": FieldInfo(0x2818, 64, "guest IA32_PKRS"),
    # 32-bit control fields
    "PIN_BASED_VM_EXEC_CONTROL": FieldInfo(0x4000, 32, "pin-based VM-execution controls"),
    "CPU_BASED_VM_EXEC_CONTROL": FieldInfo(0x4002, 32, "primary processor-based controls"),
    "VM_EXIT_CONTROLS": FieldInfo(0x400C, 32, "VM-exit controls"),
    "VM_ENTRY_CONTROLS": FieldInfo(0x4012, 32, "VM-entry controls"),
    "VM_ENTRY_INTR_INFO_FIELD": FieldInfo(0x4016, 32, "VM-entry interruption-information field"),
    "VM_ENTRY_EXCEPTION_ERROR_CODE": FieldInfo(0x4018, 32, "VM-entry exception error code"),
    "VM_ENTRY_INSTRUCTION_LEN": FieldInfo(0x401A, 32, "VM-entry instruction length"),
    "SECONDARY_VM_EXEC_CONTROL": FieldInfo(0x401E, 32, "secondary processor-based controls"),
    # 32-bit guest state: limits, access rights, non-register state
    "GUEST_ES_LIMIT": FieldInfo(0x4800, 32, "guest ES limit"),
    "GUEST_CS_LIMIT": FieldInfo(0x4802, 32, "guest CS limit"),
    "GUEST_SS_LIMIT": FieldInfo(0x4804, 32, "guest SS limit"),
    "GUEST_DS_LIMIT": FieldInfo(0x4806, 32, "guest DS limit"),
    "GUEST_FS_LIMIT": FieldInfo(0x4808, 32, "guest FS limit"),
    "GUEST_GS_LIMIT": FieldInfo(0x480A, 32, "guest GS limit"),
    "GUEST_LDTR_LIMIT": FieldInfo(0x480C, 32, "guest LDTR limit"),
    "GUEST_TR_LIMIT": FieldInfo(0x480E, 32, "guest TR limit"),
    "GUEST_GDTR_LIMIT": FieldInfo(0x4810, 32, "guest GDTR limit"),
    "GUEST_IDTR_LIMIT": FieldInfo(0x4812, 32, "guest IDTR limit"),
    "GUEST_ES_AR_BYTES": FieldInfo(0x4814, 32, "guest ES access rights"),
    "GUEST_CS_AR_BYTES": FieldInfo(0x4816, 32, "guest CS access rights"),
    "GUEST_SS_AR_BYTES": FieldInfo(0x4818, 32, "guest SS access rights"),
    "GUEST_DS_AR_BYTES": FieldInfo(0x481A, 32, "guest DS access rights"),
    "GUEST_FS_AR_BYTES": FieldInfo(0x481C, 32, "guest FS access rights"),
    "GUEST_GS_AR_BYTES": FieldInfo(0x481E, 32, "guest GS access rights"),
    "GUEST_LDTR_AR_BYTES": FieldInfo(0x4820, 32, "guest LDTR access rights"),
    "GUEST_TR_AR_BYTES": FieldInfo(0x4822, 32, "guest TR access rights"),
    "GUEST_INTERRUPTIBILITY_INFO": FieldInfo(0x4824, 32, "guest interruptibility state"),
    "GUEST_ACTIVITY_STATE": FieldInfo(0x4826, 32, "guest activity state"),
    "GUEST_SYSENTER_CS": FieldInfo(0x482A, 32, "guest IA32_SYSENTER_CS"),
    # natural-width guest state
    "GUEST_CR0": FieldInfo(0x6800, 64, "guest CR0"),
    "GUEST_CR3": FieldInfo(0x6802, 64, "guest CR3"),
    "GUEST_CR4": FieldInfo(0x6804, 64, "guest CR4"),
    "GUEST_ES_BASE": FieldInfo(0x6806, 64, "guest ES base"),
    "GUEST_CS_BASE": FieldInfo(0x6808, 64, "guest CS base"),
    "GUEST_SS_BASE": FieldInfo(0x680A, 64, "guest SS base"),
    "GUEST_DS_BASE": FieldInfo(0x680C, 64, "guest DS base"),
    "GUEST_FS_BASE": FieldInfo(0x680E, 64, "guest FS base"),
    "GUEST_GS_BASE": FieldInfo(0x6810, 64, "guest GS base"),
    "GUEST_LDTR_BASE": FieldInfo(0x6812, 64, "guest LDTR base"),
    "GUEST_TR_BASE": FieldInfo(0x6814, 64, "guest TR base"),
    "GUEST_GDTR_BASE": FieldInfo(0x6816, 64, "guest GDTR base"),
    "GUEST_IDTR_BASE": FieldInfo(0x6818, 64, "guest IDTR base"),
    "GUEST_DR7": FieldInfo(0x681A, 64, "guest DR7"),
    "GUEST_RSP": FieldInfo(0x681C, 64, "guest RSP"),
    "GUEST_RIP": FieldInfo(0x681E, 64, "guest RIP"),
    "GUEST_RFLAGS": FieldInfo(0x6820, 64, "guest RFLAGS"),
    "GUEST_PENDING_DBG_EXCEPTIONS": FieldInfo(0x6822, 64, "guest pending debug exceptions"),
    "GUEST_SYSENTER_ESP": FieldInfo(0x6824, 64, "guest IA32_SYSENTER_ESP"),
    "GUEST_SYSENTER_EIP": FieldInfo(0x6826, 64, "guest IA32_SYSENTER_EIP"),
    "GUEST_S_CET": FieldInfo(0x6828, 64, "guest IA32_S_CET"),
    "GUEST_SSP": FieldInfo(0x682A, 64, "guest SSP"),
    "GUEST_INTR_SSP_TABLE": FieldInfo(0x682C, 64, "guest IA32_INTERRUPT_SSP_TABLE_ADDR"),
}


class MissingField(Exception):
    """A rule needed fields the state does not give (the rule is *not evaluated*)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class UnknownField(ValueError):
    """A name that is not one of :data:`FIELDS`."""


class _VmcsMethods:
    """Methods of :class:`Vmcs` (its attributes are generated from :data:`FIELDS`)."""

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
        return cls(**values)  # type: ignore[return-value]

    def given(self) -> dict[str, int]:
        """The fields that have a value, by kernel name."""
        return {n: v for n in FIELDS if (v := getattr(self, n)) is not None}



#: Values of the VMCS fields in scope (one attribute per :data:`FIELDS` name, ``None``
#: meaning "not given"), frozen; ``replace(**fields)`` gives a changed copy.
Vmcs = make_record("Vmcs", FIELDS, None, _VmcsMethods, __name__)


class Capabilities(Record):
    """Implementation facts the rules depend on (IA32_VMX_* MSRs, CPUID), as data.

    The defaults are the documented default profile (``examples/profiles/default.toml``,
    a recent Intel server part without LA57, as KVM sees it); :mod:`vmxkb.profile` reads
    other profiles and validates them.
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
    #: IA32_VMX_CR0_FIXED0: CR0 bits that must be 1 (PE and PG are exempt with
    #: unrestricted guest)
    cr0_fixed0: int = 0x80000021
    #: IA32_VMX_CR0_FIXED1: CR0 bits that may be 1
    cr0_fixed1: int = 0xFFFFFFFF
    #: IA32_VMX_CR4_FIXED0: CR4 bits that must be 1 (VMXE)
    cr4_fixed0: int = 0x2000
    #: IA32_VMX_CR4_FIXED1: CR4 bits that may be 1
    cr4_fixed1: int = 0x1F76FFF
    #: CPUID.80000008H:EAX[7:0], the physical-address width
    maxphyaddr: int = 46
    #: linear-address width: 48, or 57 with 5-level paging (what "canonical" means)
    linear_address_width: int = 48
    #: secondary control "unrestricted guest" may be 1
    unrestricted_guest: bool = True
    #: the "load CET state" entry control may be 1 (CET shadow stack / IBT)
    cet: bool = True
    #: the "load IA32_PKRS" entry control may be 1
    pks: bool = True
    #: the "load IA32_BNDCFGS" entry control may be 1 (MPX)
    mpx: bool = False
    #: the "load IA32_RTIT_CTL" entry control may be 1 (Intel PT in VMX)
    rtit: bool = True
    #: the "load guest IA32_LBR_CTL" entry control may be 1 (architectural LBRs)
    arch_lbr: bool = True
    #: the "load IA32_PERF_GLOBAL_CTRL" entry control may be 1
    perf_global_ctrl: bool = True
    #: IA32_PERF_GLOBAL_CTRL bits that may be 1 (8 general-purpose, 4 fixed counters)
    perf_global_ctrl_valid: int = 0x0000000F000000FF
    #: IA32_EFER bits that may be 1 (SCE, LME, LMA, NXE)
    efer_valid: int = 0xD01
    #: FRED (flexible return and event delivery) is supported
    fred: bool = False
    #: IA32_VMX_TRUE_ENTRY_CTLS (IA32_VMX_ENTRY_CTLS if IA32_VMX_BASIC[55]=0): bits 31:0
    #: are the allowed 0-settings (a 1 there: the VM-entry control must be 1), bits 63:32
    #: the allowed 1-settings; the "load ..." bits that the facts above name (cet, pks,
    #: mpx, rtit, arch_lbr, perf_global_ctrl, fred) follow those facts
    vmx_entry_ctls: int = 0x0076FFFF000011FB
    #: IA32_DEBUGCTL bits that may be 1 (LBR, BTF, BUS_LOCK_DETECT, TR, BTS, BTINT, BTS_OFF_OS,
    #: BTS_OFF_USR, FREEZE_LBRS_ON_PMI, FREEZE_PERFMON_ON_PMI, ENABLE_UNCORE_PMI,
    #: FREEZE_WHILE_SMM, RTM_DEBUG); the rest is reserved for the "load debug controls" check
    debugctl_valid: int = 0xFFC7


DEFAULT_CAPABILITIES = Capabilities()


class EntryState(Record):
    """Everything a VM-entry check looks at: the VMCS, the CPU's capabilities, and
    whether VMLAUNCH/VMRESUME runs in SMM."""

    vmcs: Vmcs
    caps: Capabilities = DEFAULT_CAPABILITIES
    in_smm: bool = False

    def need(self, *names: str) -> tuple[int, ...]:
        """The values of ``names``; raises :class:`MissingField` naming every absent one."""
        values = tuple(map(self.vmcs.__dict__.__getitem__, names))
        if None in values:
            raise MissingField(tuple(n for n, v in zip(names, values, strict=True) if v is None))
        return values  # type: ignore[return-value]

    def need1(self, name: str) -> int:
        """The value of one field (see :meth:`need`)."""
        value = self.vmcs.__dict__[name]
        if value is None:
            raise MissingField((name,))
        return value  # type: ignore[no-any-return]


def entry(caps: Capabilities = DEFAULT_CAPABILITIES, in_smm: bool = False, **fields: int) -> EntryState:
    """An :class:`EntryState` from kernel field names: the shorthand scenarios use."""
    return EntryState(Vmcs.from_fields(fields), caps, in_smm)
