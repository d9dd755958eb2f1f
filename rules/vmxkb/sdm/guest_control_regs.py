"""Checks on guest control registers, debug registers and MSRs (SDM Vol. 3C).

CR0, CR3, CR4, DR7 and the MSRs loaded from the guest-state area (SDM "Checks on Guest Control Registers, Debug Registers, and MSRs").
"""

from __future__ import annotations

from vmxkb.registry import verdict
from vmxkb.state import entry

SECTION = "SEC_GUEST_CONTROL_REGS"

__all__ = ["entry", "verdict"]
