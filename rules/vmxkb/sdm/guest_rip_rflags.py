"""Checks on guest RIP, RFLAGS and SSP (SDM Vol. 3C).

RIP, RFLAGS and, with CET, SSP (SDM "Checks on Guest RIP, RFLAGS, and SSP").
"""

from __future__ import annotations

from vmxkb.registry import verdict
from vmxkb.state import entry

SECTION = "SEC_GUEST_RIP_RFLAGS"

__all__ = ["entry", "verdict"]
