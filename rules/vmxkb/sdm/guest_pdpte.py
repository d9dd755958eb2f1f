"""Checks on guest PDPTEs (SDM Vol. 3C).

The four PDPTEs of PAE paging, when the VMCS supplies them (SDM "Checks on Guest Page-Directory-Pointer-Table Entries").
"""

from __future__ import annotations

from vmxkb.registry import verdict
from vmxkb.state import entry

SECTION = "SEC_GUEST_PDPTE"

__all__ = ["entry", "verdict"]
