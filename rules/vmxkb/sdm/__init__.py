"""The SDM rules, one module per area, in SDM order.

The area name is shared by the module, its docs page (``docs/sdm/<area>.md``) and its
test file (``tests/test_<area>.py``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

TYPE_CHECKING = False  # typing is not imported at run time (start-up: docs/bench.md)

if TYPE_CHECKING:
    from vmxkb.registry import Rule

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


def rules_of(area: str) -> list[Rule]:
    """The registered rules of one area, in SDM order."""
    from vmxkb.registry import REGISTRY

    load_all()
    return [r for r in REGISTRY.values() if r.area == area]


def scenario_problems(area: str) -> list[str]:
    """Every problem of every scenario of an area's rules (empty when they all hold)."""
    from vmxkb.registry import run_scenario

    out = []
    for r in rules_of(area):
        namespace = vars(importlib.import_module(r.func.__module__))
        for s in r.scenarios:
            out += [f"{s.id}: {p}" for p in run_scenario(s, namespace).problems]
    return out
