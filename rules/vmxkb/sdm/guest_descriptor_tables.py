"""Checks on guest descriptor-table registers (SDM Vol. 3C).

GDTR and IDTR bases and limits (SDM "Checks on Guest Descriptor-Table Registers").

A violation is a VM-entry failure: exit reason 33 with bit 31 set (``0x80000021``),
exit qualification 0. The two checks look at the four VMCS fields alone, whatever mode
the guest is entered in: a 32-bit guest's bases are canonical as long as their upper
half is 0, and its limits are 16-bit quantities stored in 32-bit fields.
"""

from __future__ import annotations

from vmxkb.bits import bits
from vmxkb.guests import long_mode, protected_mode, real_mode
from vmxkb.predicates import canonical
from vmxkb.registry import Violations, me, rule, verdict
from vmxkb.state import Capabilities, EntryState, entry

SECTION = "SEC_GUEST_DESCRIPTOR_TABLES"

__all__ = ["entry", "verdict", "long_mode", "protected_mode", "real_mode", "Capabilities"]

#: GDTR/IDTR limits are 16 bits wide; the VMCS fields are 32 bits and bits 31:16 must be 0.
DTR_LIMIT_HIGH = bits(31, 16)

_TABLES = (("GDTR", "GUEST_GDTR_BASE", "GUEST_GDTR_LIMIT"), ("IDTR", "GUEST_IDTR_BASE", "GUEST_IDTR_LIMIT"))


@rule("ENTRY_GUEST_DTR_BASE_CANONICAL", section=SECTION, phase="guest")
def dtr_base_canonical(s: EntryState) -> Violations:
    """The GDTR and IDTR base-address fields must both hold canonical addresses (for the
    CPU's linear-address width, 48 or 57 bits), in every guest mode.

    Scenario SCN_DTR_BASES_KERNEL_HALF (passes): the long-mode guest's bases in the upper
    canonical half.

    >>> verdict(dtr_base_canonical, long_mode(GUEST_GDTR_BASE=0xFFFFFE0000001000))
    passes

    Scenario SCN_DTR_GDTR_BASE_HOLE (fails): a GDTR base in the non-canonical hole, as a
    VMM that restores a truncated or sign-lost 64-bit base would write it.

    >>> verdict(dtr_base_canonical, long_mode(GUEST_GDTR_BASE=0x0000800000001000))
    fails ENTRY_GUEST_DTR_BASE_CANONICAL: GDTR base is not canonical for 48-bit linear addresses
        [GUEST_GDTR_BASE=0x800000001000]

    Scenario SCN_DTR_IDTR_BASE_LA57 (passes): the same kind of base is canonical on a CPU
    with 57-bit linear addresses.

    >>> verdict(dtr_base_canonical, long_mode(Capabilities(linear_address_width=57),
    ...     GUEST_IDTR_BASE=0x0000800000000000))
    passes
    """
    out = []
    for name, base_field, _ in _TABLES:
        base = s.need1(base_field)
        if not canonical(base, s.caps):
            out.append(
                me(dtr_base_canonical).violation(
                    f"{name} base is not canonical for {s.caps.linear_address_width}-bit linear addresses",
                    **{base_field: base},
                )
            )
    return tuple(out)


@rule("ENTRY_GUEST_DTR_LIMIT_HIGH_ZERO", section=SECTION, phase="guest")
def dtr_limit_high_zero(s: EntryState) -> Violations:
    """Bits 31:16 of the GDTR and IDTR limit fields must be 0: a descriptor-table limit
    is at most 0xFFFF.

    Scenario SCN_DTR_LIMIT_FFFF (passes): real mode's 64-KByte tables, the largest limit.

    >>> verdict(dtr_limit_high_zero, real_mode(GUEST_IDTR_LIMIT=0xFFFF))
    passes

    Scenario SCN_DTR_IDTR_LIMIT_17BIT (fails): an IDTR limit of 0x10000, as a VMM that
    stores a segment-style 32-bit limit (or limit + 1) in the field would write it.

    >>> verdict(dtr_limit_high_zero, real_mode(GUEST_IDTR_LIMIT=0x10000))
    fails ENTRY_GUEST_DTR_LIMIT_HIGH_ZERO: IDTR limit 0x10000 is above 0xFFFF [GUEST_IDTR_LIMIT=0x10000]
    """
    out = []
    for name, _, limit_field in _TABLES:
        limit = s.need1(limit_field)
        if limit & DTR_LIMIT_HIGH:
            out.append(
                me(dtr_limit_high_zero).violation(f"{name} limit {limit:#x} is above 0xFFFF", **{limit_field: limit})
            )
    return tuple(out)
