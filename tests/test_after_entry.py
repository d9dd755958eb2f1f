"""The computing model after_entry() agrees with every post-entry clause, exhaustively."""

from __future__ import annotations

import itertools

from vmxkb.bits import make_intr_info
from vmxkb.registry import REGISTRY, verdict
from vmxkb.sdm import load_all
from vmxkb.state import entry
from vmxkb.vmentry import transition


def test_after_entry_satisfies_every_effect_rule() -> None:
    load_all()
    effects = [r for r in REGISTRY.values() if r.kind == "effect"]
    infos = [0, make_intr_info(1, 3), make_intr_info(3, 6), make_intr_info(1, 5), make_intr_info(0x20, 0), make_intr_info(2, 2), make_intr_info(0, 7)]
    n = 0
    for info, intr, act, pde in itertools.product(infos, (0, 1, 2), (0, 1, 2, 3), (0, 0x1, 0x1000, 0x4000, 0x4001)):
        t = transition(entry(VM_ENTRY_INTR_INFO_FIELD=info, GUEST_INTERRUPTIBILITY_INFO=intr, GUEST_ACTIVITY_STATE=act,
                             GUEST_PENDING_DBG_EXCEPTIONS=pde, GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0))
        for r in effects:
            v = verdict(r.func, t)
            assert not v.violations, (r.id, info, intr, act, pde, v)
        n += 1
    assert n == 7 * 3 * 4 * 5
