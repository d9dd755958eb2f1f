"""Event injection leaves the debug registers alone: the model agrees with the clause for
every injected event, and an implementation that writes DR6 is caught."""

from __future__ import annotations

import itertools

from vmxkb.sdm import rules_of, scenario_problems

from vmxkb.bits import DR6_BS, make_intr_info
from vmxkb.registry import verdict
from vmxkb.sdm.event_injection import inj_no_debug_register_update
from vmxkb.state import entry
from vmxkb.vmentry import transition

EVENTS = [make_intr_info(v, t) for v, t in ((1, 3), (3, 6), (1, 5), (0x20, 0), (2, 2), (14, 3), (0x80, 4))]


def test_area_has_rules_and_their_scenarios_hold() -> None:
    assert [r.id for r in rules_of("event_injection")] == ["POST_INJ_NO_DEBUG_REGISTER_UPDATE"]
    assert scenario_problems("event_injection") == []


def _state(info: int, intr: int, pde: int):
    return entry(VM_ENTRY_INTR_INFO_FIELD=info, GUEST_INTERRUPTIBILITY_INFO=intr, GUEST_ACTIVITY_STATE=0,
                 GUEST_PENDING_DBG_EXCEPTIONS=pde, GUEST_DR7=0x400, GUEST_IA32_DEBUGCTL=0)


def test_model_never_touches_debug_registers_on_injection() -> None:
    for info, intr, pde, dr6 in itertools.product(EVENTS, (0, 1, 2), (0, 0x4000, 0x1001), (0xFFFF0FF0, 0xFFFF4FF1)):
        v = verdict(inj_no_debug_register_update, transition(_state(info, intr, pde), dr6_before=dr6))
        assert v.passed, (hex(info), intr, pde, v)


def test_an_implementation_that_sets_dr6_bs_on_injection_is_caught() -> None:
    for info in EVENTS:
        t = transition(_state(info, 0, 0x4000), dr6=0xFFFF0FF0 | DR6_BS)
        assert verdict(inj_no_debug_register_update, t).outcome == "fails", hex(info)
