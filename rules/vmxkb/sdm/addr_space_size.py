"""Checks related to address-space size (SDM Vol. 3C, "Checks Related to Address-Space Size").

They tie the "IA-32e mode guest" VM-entry control and the "host address-space size"
VM-exit control to each other, to the mode of the logical processor that executes
VMLAUNCH/VMRESUME, and to the host CR4 and RIP fields. A violation is a VMfail (no VM
exit, nothing loaded) with VM-instruction error 8, "invalid host-state field": the SDM groups
these checks with the checks on the host-state area, which report 8 (the checks on the VMX
controls report 7). KVM's emulation for L1 (``nested_vmx_check_address_space_size()``,
``nested_vmx_check_host_state()``) reports 8 too. The rules here are ``phase="host"``.

The state model holds neither host state (host CR4, host RIP) nor the processor's own
IA32_EFER.LMA at the time of VM entry. The rules here therefore decide only what the
controls decide, under one stated assumption: **the VMCS is entered by a 64-bit host
running KVM**, i.e. by a logical processor in IA-32e mode (the situation of every
``dump_vmcs()`` that KVM prints for vmcs01/vmcs02). For the vmcs12 of a 32-bit L1 that
assumption does not hold, and ENTRY_CTRL_ASZ_IA32E_NEEDS_HOST64 does not apply.
"""

from __future__ import annotations

from vmxkb.bits import VM_ENTRY_IA32E_MODE, VM_EXIT_HOST_ADDR_SPACE_SIZE
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState, entry

SECTION = "SEC_ADDR_SPACE_SIZE"

__all__ = ["Capabilities", "entry", "long_mode", "protected_mode", "real_mode", "verdict"]


@rule("ENTRY_CTRL_ASZ_IA32E_NEEDS_HOST64", section=SECTION, phase="host")
def asz_ia32e_needs_host64(s: EntryState) -> Violations:
    """A logical processor in IA-32e mode must enter with the "host address-space size"
    VM-exit control (bit 9) set, so that the next VM exit returns it to 64-bit mode. The
    model assumes the VMCS is entered by a 64-bit KVM host (IA32_EFER.LMA=1), so the
    control must always be 1 here.

    Scenario SCN_ASZ_HOST64_SET (passes): KVM's VM-exit controls, with host address-space
    size set.

    >>> verdict(asz_ia32e_needs_host64, long_mode())
    passes

    Scenario SCN_ASZ_HOST64_CLEAR (fails): a 64-bit host that leaves the control 0, as if
    it expected to return to a 32-bit host.

    >>> verdict(asz_ia32e_needs_host64, protected_mode(VM_EXIT_CONTROLS=0x2bedff))
    fails ENTRY_CTRL_ASZ_IA32E_NEEDS_HOST64: "host address-space size" is 0 but the host (64-bit KVM) is in IA-32e mode
        [VM_EXIT_CONTROLS=0x2bedff]
    """
    exit_ctl = s.need1("VM_EXIT_CONTROLS")
    if exit_ctl & VM_EXIT_HOST_ADDR_SPACE_SIZE:
        return ()
    return (
        me(asz_ia32e_needs_host64).violation(
            '"host address-space size" is 0 but the host (64-bit KVM) is in IA-32e mode', VM_EXIT_CONTROLS=exit_ctl
        ),
    )


@rule("ENTRY_CTRL_ASZ_GUEST64_NEEDS_HOST64", section=SECTION, phase="host")
def asz_guest64_needs_host64(s: EntryState) -> Violations:
    """If the "host address-space size" VM-exit control is 0, the "IA-32e mode guest"
    VM-entry control must be 0: only a 64-bit host may run a 64-bit guest. (Decided from
    the two controls alone; no host state is needed.)

    Scenario SCN_ASZ_32BIT_HOST_32BIT_GUEST (passes): a 32-bit guest with host
    address-space size 0.

    >>> verdict(asz_guest64_needs_host64, protected_mode(VM_EXIT_CONTROLS=0x2bedff))
    passes

    Scenario SCN_ASZ_32BIT_HOST_64BIT_GUEST (fails): a 64-bit guest entered with host
    address-space size 0.

    >>> verdict(asz_guest64_needs_host64, long_mode(VM_EXIT_CONTROLS=0x2bedff))
    fails ENTRY_CTRL_ASZ_GUEST64_NEEDS_HOST64: "IA-32e mode guest" is 1 but "host address-space size" is 0
        [VM_EXIT_CONTROLS=0x2bedff, VM_ENTRY_CONTROLS=0xd3ff]

    Scenario SCN_ASZ_64BIT_HOST_64BIT_GUEST (passes): the usual KVM case, a 64-bit guest
    entered with "host address-space size" set: the pairing is allowed, and the check looks
    no further than the exit control.

    >>> verdict(asz_guest64_needs_host64, long_mode())
    passes
    """
    exit_ctl = s.need1("VM_EXIT_CONTROLS")
    if exit_ctl & VM_EXIT_HOST_ADDR_SPACE_SIZE:
        return ()
    entry_ctl = s.need1("VM_ENTRY_CONTROLS")
    if not entry_ctl & VM_ENTRY_IA32E_MODE:
        return ()
    return (
        me(asz_guest64_needs_host64).violation(
            '"IA-32e mode guest" is 1 but "host address-space size" is 0',
            VM_EXIT_CONTROLS=exit_ctl,
            VM_ENTRY_CONTROLS=entry_ctl,
        ),
    )
