"""Complete, valid guest states to start a scenario or a test vector from.

Each is a full VMCS (every field in :data:`vmxkb.state.FIELDS` has a value) that passes
every VM-entry check under the default profile; a scenario changes the one or two fields
it is about. ``tests/test_guests.py`` checks that each of them enters.

- :data:`LONG_MODE`: a 64-bit kernel as KVM runs it (paging, EFER loaded, TR busy 64-bit
  TSS, LDTR unusable), the usual starting point;
- :data:`PROTECTED_MODE`: 32-bit protected mode with paging, no IA-32e;
- :data:`REAL_MODE`: real mode under "unrestricted guest" (CR0.PE=CR0.PG=0), the state of
  a vCPU after RESET/INIT or in SMM (the layout of ``../shared/dumps`` 04, made valid).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities, EntryState, Vmcs


def _seg(name: str, selector: int, base: int, limit: int, ar: int) -> dict[str, int]:
    return {
        f"GUEST_{name}_SELECTOR": selector,
        f"GUEST_{name}_BASE": base,
        f"GUEST_{name}_LIMIT": limit,
        f"GUEST_{name}_AR_BYTES": ar,
    }


_COMMON: dict[str, int] = {
    "PIN_BASED_VM_EXEC_CONTROL": 0x000000FF,
    "CPU_BASED_VM_EXEC_CONTROL": 0xB5A06DFA,  # secondary controls active
    "SECONDARY_VM_EXEC_CONTROL": 0x000007EB,  # EPT, unrestricted guest, ...
    "TERTIARY_VM_EXEC_CONTROL": 0,
    "VM_EXIT_CONTROLS": 0x002BEFFF,
    "EPT_POINTER": 0x000000011AA2D01E,
    "VMCS_LINK_POINTER": 0xFFFFFFFFFFFFFFFF,
    "VM_ENTRY_INTR_INFO_FIELD": 0,
    "VM_ENTRY_EXCEPTION_ERROR_CODE": 0,
    "VM_ENTRY_INSTRUCTION_LEN": 0,
    "GUEST_DR7": 0x400,
    "GUEST_IA32_DEBUGCTL": 0,
    "GUEST_IA32_PAT": 0x0007040600070406,
    "GUEST_IA32_PERF_GLOBAL_CTRL": 0,
    "GUEST_BNDCFGS": 0,
    "GUEST_IA32_RTIT_CTL": 0,
    "GUEST_IA32_LBR_CTL": 0,
    "GUEST_IA32_PKRS": 0,
    "GUEST_S_CET": 0,
    "GUEST_SSP": 0,
    "GUEST_INTR_SSP_TABLE": 0,
    "GUEST_SYSENTER_CS": 0,
    "GUEST_SYSENTER_ESP": 0,
    "GUEST_SYSENTER_EIP": 0,
    "GUEST_INTERRUPTIBILITY_INFO": 0,
    "GUEST_ACTIVITY_STATE": 0,
    "GUEST_PENDING_DBG_EXCEPTIONS": 0,
    "GUEST_PDPTR0": 0,
    "GUEST_PDPTR1": 0,
    "GUEST_PDPTR2": 0,
    "GUEST_PDPTR3": 0,
    **_seg("LDTR", 0, 0, 0, 0x10000),  # unusable
}

LONG_MODE: Mapping[str, int] = MappingProxyType({
    **_COMMON,
    "VM_ENTRY_CONTROLS": 0x0000D3FF,  # IA-32e mode guest, load DEBUGCTL/DR7, PAT, EFER
    "GUEST_CR0": 0x80050033,  # PG AM WP NE ET MP PE
    "GUEST_CR3": 0x0000000001000000,
    "GUEST_CR4": 0x000026E0,  # VMXE OSXMMEXCPT OSFXSR PGE MCE PAE
    "GUEST_IA32_EFER": 0xD01,  # NXE LMA LME SCE
    "GUEST_RIP": 0xFFFFFFFF81000000,
    "GUEST_RSP": 0xFFFFC90000003F00,
    "GUEST_RFLAGS": 0x202,
    **_seg("CS", 0x10, 0, 0xFFFFFFFF, 0xA09B),  # 64-bit code, DPL 0
    **_seg("SS", 0x18, 0, 0xFFFFFFFF, 0xC093),
    **_seg("DS", 0x18, 0, 0xFFFFFFFF, 0xC093),
    **_seg("ES", 0x18, 0, 0xFFFFFFFF, 0xC093),
    **_seg("FS", 0, 0x00007F0000000000, 0xFFFFFFFF, 0x10000),  # unusable, base kept
    **_seg("GS", 0, 0xFFFF888000000000, 0xFFFFFFFF, 0x10000),
    **_seg("TR", 0x40, 0xFFFFFE0000003000, 0x67, 0x008B),  # busy 64-bit TSS
    "GUEST_GDTR_BASE": 0xFFFFFE0000001000,
    "GUEST_GDTR_LIMIT": 0x7F,
    "GUEST_IDTR_BASE": 0xFFFFFE0000000000,
    "GUEST_IDTR_LIMIT": 0xFFF,
})

PROTECTED_MODE: Mapping[str, int] = MappingProxyType({
    **_COMMON,
    "VM_ENTRY_CONTROLS": 0x0000D1FF,
    "GUEST_CR0": 0x80000031,  # PG NE ET PE
    "GUEST_CR3": 0x00100000,
    "GUEST_CR4": 0x00002010,  # VMXE PSE
    "GUEST_IA32_EFER": 0,
    "GUEST_RIP": 0xC0100000,
    "GUEST_RSP": 0xC0200000,
    "GUEST_RFLAGS": 0x202,
    **_seg("CS", 0x08, 0, 0xFFFFFFFF, 0xC09B),
    **_seg("SS", 0x10, 0, 0xFFFFFFFF, 0xC093),
    **_seg("DS", 0x10, 0, 0xFFFFFFFF, 0xC093),
    **_seg("ES", 0x10, 0, 0xFFFFFFFF, 0xC093),
    **_seg("FS", 0x10, 0, 0xFFFFFFFF, 0xC093),
    **_seg("GS", 0x10, 0, 0xFFFFFFFF, 0xC093),
    **_seg("TR", 0x20, 0xC0300000, 0x67, 0x008B),  # busy 32-bit TSS
    "GUEST_GDTR_BASE": 0xC0001000,
    "GUEST_GDTR_LIMIT": 0x27,
    "GUEST_IDTR_BASE": 0xC0002000,
    "GUEST_IDTR_LIMIT": 0x7FF,
})

REAL_MODE: Mapping[str, int] = MappingProxyType({
    **_COMMON,
    "VM_ENTRY_CONTROLS": 0x0000D1FF,
    "GUEST_CR0": 0x00000030,  # NE ET; PE=PG=0 (unrestricted guest)
    "GUEST_CR3": 0,
    "GUEST_CR4": 0x00002000,  # VMXE
    "GUEST_IA32_EFER": 0,
    "GUEST_RIP": 0xFFF0,
    "GUEST_RSP": 0,
    "GUEST_RFLAGS": 0x2,
    **_seg("CS", 0xF000, 0xFFFF0000, 0xFFFF, 0x009B),
    **_seg("SS", 0, 0, 0xFFFF, 0x0093),
    **_seg("DS", 0, 0, 0xFFFF, 0x0093),
    **_seg("ES", 0, 0, 0xFFFF, 0x0093),
    **_seg("FS", 0, 0, 0xFFFF, 0x0093),
    **_seg("GS", 0, 0, 0xFFFF, 0x0093),
    **_seg("TR", 0, 0, 0xFFFF, 0x008B),
    "GUEST_GDTR_BASE": 0,
    "GUEST_GDTR_LIMIT": 0xFFFF,
    "GUEST_IDTR_BASE": 0,
    "GUEST_IDTR_LIMIT": 0xFFFF,
})

GUESTS: Mapping[str, Mapping[str, int]] = MappingProxyType(
    {"long_mode": LONG_MODE, "protected_mode": PROTECTED_MODE, "real_mode": REAL_MODE}
)

def _make(base: Mapping[str, int], caps: Capabilities, in_smm: bool, changes: Mapping[str, int]) -> EntryState:
    return EntryState(Vmcs.from_fields({**base, **changes}), caps, in_smm)


def long_mode(caps: Capabilities = DEFAULT_CAPABILITIES, in_smm: bool = False, **changes: int) -> EntryState:
    """:data:`LONG_MODE` with some fields changed."""
    return _make(LONG_MODE, caps, in_smm, changes)


def protected_mode(caps: Capabilities = DEFAULT_CAPABILITIES, in_smm: bool = False, **changes: int) -> EntryState:
    """:data:`PROTECTED_MODE` with some fields changed."""
    return _make(PROTECTED_MODE, caps, in_smm, changes)


def real_mode(caps: Capabilities = DEFAULT_CAPABILITIES, in_smm: bool = False, **changes: int) -> EntryState:
    """:data:`REAL_MODE` with some fields changed."""
    return _make(REAL_MODE, caps, in_smm, changes)
