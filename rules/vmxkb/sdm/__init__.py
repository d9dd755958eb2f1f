"""The SDM rules, one module per area, in SDM order.

The area name is shared by the module, its docs page (``docs/sdm/<area>.md``) and its
test file (``tests/test_<area>.py``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Areas in SDM order: Vol. 3C VM-entry checks, then what happens after entry, then the
#: bare-metal (Vol. 3A/3B) behaviour the VMX rules are measured against.
AREAS: tuple[str, ...] = (
    "entry_controls",
    "addr_space_size",
    "guest_control_regs",
    "guest_segments",
    "guest_descriptor_tables",
    "guest_rip_rflags",
    "guest_non_register",
    "guest_pdpte",
    "event_injection",
    "after_entry",
    "bare_metal",
)


def load_all() -> list[ModuleType]:
    """Import every area module (which registers its rules)."""
    return [importlib.import_module(f"vmxkb.sdm.{area}") for area in AREAS]
