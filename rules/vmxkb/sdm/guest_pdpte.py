"""Checks on guest PDPTEs (SDM Vol. 3C).

The four PDPTEs of PAE paging, when the VMCS supplies them (SDM "Checks on Guest Page-Directory-Pointer-Table Entries").

The checks apply only to an entry into a guest that uses PAE paging: CR0.PG = 1 and
CR4.PAE = 1 in the guest-state fields and the "IA-32e mode guest" control 0. Where the
PDPTEs come from depends on "enable EPT": with EPT the four GUEST_PDPTRn fields are
checked (this module's rule); without EPT the CPU reads them from guest memory at CR3,
which the model does not have. Either way a bad PDPTE is a VM-entry failure, exit reason
33 with bit 31 set (``0x80000021``), and **exit qualification 2** ("problem loading the
PDPTEs"), KVM's ``ENTRY_FAIL_PDPTE``.
"""

from __future__ import annotations

from vmxkb.bits import X86_CR0_PG, X86_CR4_PAE, bit, bits
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.predicates import beyond_maxphyaddr, ept_enabled, ia32e_mode_guest
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities, EntryState, entry

SECTION = "SEC_GUEST_PDPTE"

__all__ = ["entry", "verdict", "long_mode", "protected_mode", "real_mode", "Capabilities", "pae_guest"]

#: Exit qualification of a VM-entry failure caused by the PDPTEs (kernel ENTRY_FAIL_PDPTE).
ENTRY_FAIL_PDPTE = 2
#: PDPTE bit 0: present. A PDPTE with P = 0 is not checked.
PDPTE_PRESENT = bit(0)
#: PDPTE bits reserved below the address (Vol. 3A, PAE PDPTE format): 2:1 and 8:5.
#: Bits 63:MAXPHYADDR are reserved too (bit 63 included: a PAE PDPTE has no XD bit).
PDPTE_RESERVED_LOW = bits(2, 1) | bits(8, 5)

_PDPTR_FIELDS = ("GUEST_PDPTR0", "GUEST_PDPTR1", "GUEST_PDPTR2", "GUEST_PDPTR3")


def pae_guest(caps: Capabilities = DEFAULT_CAPABILITIES, **changes: int) -> EntryState:
    """The protected-mode guest switched to PAE paging (CR4.PAE = 1), with EPT on (as in
    every baseline guest) and four valid present PDPTEs; ``caps`` and ``changes`` as for
    :func:`vmxkb.guests.protected_mode`."""
    fields = {
        "GUEST_CR4": 0x00002030,  # VMXE PAE PSE
        "GUEST_CR3": 0x00101000,
        "GUEST_PDPTR0": 0x00102001,
        "GUEST_PDPTR1": 0x00103001,
        "GUEST_PDPTR2": 0x00104001,
        "GUEST_PDPTR3": 0x00105001,
    }
    return protected_mode(caps, **{**fields, **changes})


def _uses_pae_paging(s: EntryState) -> bool:
    """CR0.PG = 1, CR4.PAE = 1 and "IA-32e mode guest" = 0, from the guest-state fields."""
    cr0, cr4 = s.need("GUEST_CR0", "GUEST_CR4")
    return bool(cr0 & X86_CR0_PG) and bool(cr4 & X86_CR4_PAE) and not ia32e_mode_guest(s)


@rule("ENTRY_GUEST_PDPTE_VMCS_RESERVED_ZERO", section=SECTION, phase="guest", qualification=ENTRY_FAIL_PDPTE)
def pdpte_vmcs_reserved_zero(s: EntryState) -> Violations:
    """When the guest uses PAE paging and "enable EPT" is 1, each of the four PDPTE fields
    that is present (bit 0 set) must have its reserved bits clear: bits 2:1, 8:5 and every
    bit from MAXPHYADDR to 63 (the same test MOV to CR3 applies). Not-present PDPTEs, and
    the PDPTE fields of a guest that does not use PAE paging, are not checked. Failure
    reports exit qualification 2.

    Scenario SCN_PDPTE_VALID (passes): four present PDPTEs, nothing reserved set.

    >>> verdict(pdpte_vmcs_reserved_zero, pae_guest())
    passes

    Scenario SCN_PDPTE_NOT_PRESENT_JUNK (passes): a not-present PDPTE may hold anything, even
    bits 2:1, which a present PDPTE must keep clear.

    >>> verdict(pdpte_vmcs_reserved_zero, pae_guest(GUEST_PDPTR3=0x0000000000000006))
    passes

    Scenario SCN_PDPTE_IGNORED_IN_LONG_MODE (passes): a 4-level-paging guest's PDPTE
    fields are not looked at.

    >>> verdict(pdpte_vmcs_reserved_zero, long_mode(GUEST_PDPTR0=0xFFFFFFFFFFFFFFFF))
    passes

    Scenario SCN_PDPTE_RW_BIT (fails): a present PDPTE with bit 1 set, as a VMM that writes
    a PAE PDPTE in the format of a 64-bit PDPTE (R/W and U/S set) would produce.

    >>> verdict(pdpte_vmcs_reserved_zero, pae_guest(GUEST_PDPTR1=0x00103007))
    fails ENTRY_GUEST_PDPTE_VMCS_RESERVED_ZERO: PDPTE1 sets reserved bits 0x6
        [GUEST_CR0=0x80000031, GUEST_CR4=0x2030, GUEST_PDPTR1=0x103007]

    Scenario SCN_PDPTE_BEYOND_MAXPHYADDR (fails): a present PDPTE pointing above a
    46-bit physical-address width.

    >>> verdict(pdpte_vmcs_reserved_zero, pae_guest(GUEST_PDPTR0=0x0000400000102001))
    fails ENTRY_GUEST_PDPTE_VMCS_RESERVED_ZERO: PDPTE0 sets reserved bits 0x400000000000
        [GUEST_CR0=0x80000031, GUEST_CR4=0x2030, GUEST_PDPTR0=0x400000102001]

    Scenario SCN_PDPTE_NOT_PRESENT_RESERVED (passes): a not-present PDPTE with every other bit
    set (reserved ones included), as an OS may leave in an unused slot: only present PDPTEs
    are checked.

    >>> verdict(pdpte_vmcs_reserved_zero, pae_guest(GUEST_PDPTR2=0xFFFFFFFFFFFFFFFE))
    passes

    Scenario SCN_PDPTE_NO_EPT (passes): a PAE guest with "enable EPT" (and so unrestricted
    guest) off and a bad value in a PDPTE field: without EPT the CPU takes the PDPTEs from
    the table at CR3 (ENTRY_GUEST_PDPTE_FROM_CR3) and the fields are not checked.

    >>> verdict(pdpte_vmcs_reserved_zero, pae_guest(SECONDARY_VM_EXEC_CONTROL=0x769,
    ...     GUEST_PDPTR1=0x00103007))
    passes
    """
    if not _uses_pae_paging(s) or not ept_enabled(s):
        return ()
    cr0, cr4 = s.need("GUEST_CR0", "GUEST_CR4")
    out = []
    for i, name in enumerate(_PDPTR_FIELDS):
        pdpte = s.need1(name)
        if not pdpte & PDPTE_PRESENT:
            continue
        bad = (pdpte & PDPTE_RESERVED_LOW) | beyond_maxphyaddr(pdpte, s.caps)
        if bad:
            out.append(
                me(pdpte_vmcs_reserved_zero).violation(
                    f"PDPTE{i} sets reserved bits {bad:#x}", GUEST_CR0=cr0, GUEST_CR4=cr4, **{name: pdpte}
                )
            )
    return tuple(out)
