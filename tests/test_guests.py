"""The complete guests every scenario and vector starts from are complete and valid: each
enters under the default profile with no violation and nothing left unevaluated."""

from __future__ import annotations

import pytest

from vmxkb.guests import GUESTS, long_mode
from vmxkb.state import FIELDS, EntryState, Vmcs
from vmxkb.vmentry import evaluate


@pytest.mark.parametrize("name", sorted(GUESTS))
def test_guest_gives_every_field(name: str) -> None:
    assert set(GUESTS[name]) == set(FIELDS)


@pytest.mark.parametrize("name", sorted(GUESTS))
def test_guest_enters(name: str) -> None:
    result = evaluate(EntryState(Vmcs.from_fields(GUESTS[name])))
    assert [str(v) for v in result.violations] == []
    assert result.not_evaluated == ()
    assert result.outcome.kind == "entered"


def test_a_broken_guest_does_not_enter() -> None:
    # STI blocking with IF=0: the failure of ../shared/dumps/04
    result = evaluate(long_mode(GUEST_RFLAGS=0x2, GUEST_INTERRUPTIBILITY_INFO=1))
    assert result.outcome.kind == "entry-failure"
    assert "ENTRY_GUEST_INTR_STI_NEEDS_IF" in {v.rule_id for v in result.violations}
