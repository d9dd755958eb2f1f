"""Checks on guest segment registers (SDM Vol. 3C).

Selectors, bases, limits and access rights of CS, SS, DS, ES, FS, GS, TR and LDTR (SDM "Checks on Guest Segment Registers").
"""

from __future__ import annotations

from vmxkb.registry import verdict
from vmxkb.state import entry

SECTION = "SEC_GUEST_SEGMENTS"

__all__ = ["entry", "verdict"]
