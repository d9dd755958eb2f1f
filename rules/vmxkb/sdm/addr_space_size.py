"""Checks related to address-space size (SDM Vol. 3C).

VM-entry control and guest checks that tie the "IA-32e mode guest" and "host address-space size" controls to the mode of the logical processor (SDM "Checks Related to Address-Space Size").
"""

from __future__ import annotations

from vmxkb.registry import verdict
from vmxkb.state import entry

SECTION = "SEC_ADDR_SPACE_SIZE"

__all__ = ["entry", "verdict"]
