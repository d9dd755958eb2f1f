"""Facts derived from several fields that more than one area's rules use.

Each reads its fields through :meth:`EntryState.need`, so a missing field makes the
calling rule *not evaluated* rather than guessed. The SDM's own definitions are followed:
a secondary (or tertiary) control counts as 0 when the primary control that activates it
is 0.
"""

from __future__ import annotations

from vmxkb.bits import (
    AR_UNUSABLE,
    CPU_BASED_ACTIVATE_SECONDARY_CONTROLS,
    RFLAGS_VM,
    SECONDARY_EXEC_ENABLE_EPT,
    SECONDARY_EXEC_UNRESTRICTED_GUEST,
    VM_ENTRY_IA32E_MODE,
    bits,
)
from vmxkb.state import Capabilities, EntryState


def secondary_control(s: EntryState, mask: int) -> bool:
    """Whether a secondary processor-based control is 1 (it counts as 0 when
    "activate secondary controls" is 0)."""
    primary = s.need1("CPU_BASED_VM_EXEC_CONTROL")
    if not primary & CPU_BASED_ACTIVATE_SECONDARY_CONTROLS:
        return False
    return bool(s.need1("SECONDARY_VM_EXEC_CONTROL") & mask)


def unrestricted_guest(s: EntryState) -> bool:
    """The "unrestricted guest" VM-execution control."""
    return secondary_control(s, SECONDARY_EXEC_UNRESTRICTED_GUEST)


def ept_enabled(s: EntryState) -> bool:
    """The "enable EPT" VM-execution control."""
    return secondary_control(s, SECONDARY_EXEC_ENABLE_EPT)


def ia32e_mode_guest(s: EntryState) -> bool:
    """The "IA-32e mode guest" VM-entry control."""
    return bool(s.need1("VM_ENTRY_CONTROLS") & VM_ENTRY_IA32E_MODE)


def virtual_8086(s: EntryState) -> bool:
    """RFLAGS.VM: the guest is entered in virtual-8086 mode."""
    return bool(s.need1("GUEST_RFLAGS") & RFLAGS_VM)


def unusable(ar_bytes: int) -> bool:
    """The "segment unusable" bit (16) of an access-rights field."""
    return bool(ar_bytes & AR_UNUSABLE)


def canonical(address: int, caps: Capabilities) -> bool:
    """Whether a 64-bit address is canonical for this CPU's linear-address width
    (bits 63:width-1 all equal)."""
    top = address >> (caps.linear_address_width - 1)
    return top in (0, bits(64 - caps.linear_address_width, 0))


def beyond_maxphyaddr(address: int, caps: Capabilities) -> int:
    """The bits of a physical address at or above MAXPHYADDR (0 when it fits)."""
    return address & ~((1 << caps.maxphyaddr) - 1)
