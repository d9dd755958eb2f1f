"""Checks on guest descriptor-table registers (SDM Vol. 3C).

GDTR and IDTR bases and limits (SDM "Checks on Guest Descriptor-Table Registers").
"""

from __future__ import annotations

from vmxkb.registry import verdict
from vmxkb.state import entry

SECTION = "SEC_GUEST_DESCRIPTOR_TABLES"

__all__ = ["entry", "verdict"]
