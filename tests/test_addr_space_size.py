"""Checks related to address-space size: every scenario holds, every rule accepts the
baseline guests, and the two controls decide what the model claims to decide (under the
64-bit KVM host assumption) and nothing else."""

from __future__ import annotations

import itertools

import pytest

from vmxkb.bits import VM_ENTRY_IA32E_MODE, VM_EXIT_HOST_ADDR_SPACE_SIZE
from vmxkb.guests import LONG_MODE, long_mode, protected_mode, real_mode
from vmxkb.registry import verdict
from vmxkb.sdm import rules_of, scenario_problems
from vmxkb.sdm.addr_space_size import asz_guest64_needs_host64, asz_ia32e_needs_host64
from vmxkb.state import entry

AREA = "addr_space_size"
EXIT = LONG_MODE["VM_EXIT_CONTROLS"]
ENTRY = LONG_MODE["VM_ENTRY_CONTROLS"]


def test_area_rules_and_scenarios_hold() -> None:
    assert [r.id for r in rules_of(AREA)] == ["ENTRY_CTRL_ASZ_IA32E_NEEDS_HOST64", "ENTRY_CTRL_ASZ_GUEST64_NEEDS_HOST64"]
    assert scenario_problems(AREA) == []
    for r in rules_of(AREA):
        assert r.phase == "host" and r.section == "SEC_ADDR_SPACE_SIZE"
        assert {s.expect for s in r.scenarios} == {"passes", "fails"}, r.id


@pytest.mark.parametrize("guest", [long_mode, protected_mode, real_mode])
def test_every_rule_passes_on_the_baseline_guests(guest) -> None:
    for r in rules_of(AREA):
        assert verdict(r.func, guest()).passed, (r.id, guest.__name__)


@pytest.mark.parametrize("host64,guest64", list(itertools.product((False, True), repeat=2)))
def test_the_two_controls(host64: bool, guest64: bool) -> None:
    exit_ctl = EXIT | VM_EXIT_HOST_ADDR_SPACE_SIZE if host64 else EXIT & ~VM_EXIT_HOST_ADDR_SPACE_SIZE
    entry_ctl = ENTRY | VM_ENTRY_IA32E_MODE if guest64 else ENTRY & ~VM_ENTRY_IA32E_MODE
    s = entry(VM_EXIT_CONTROLS=exit_ctl, VM_ENTRY_CONTROLS=entry_ctl)
    # a 64-bit KVM host (the model's assumption) always needs host address-space size 1
    assert verdict(asz_ia32e_needs_host64, s).outcome == ("passes" if host64 else "fails")
    # only a 64-bit host may enter a 64-bit guest, whatever the host is
    assert verdict(asz_guest64_needs_host64, s).outcome == ("fails" if guest64 and not host64 else "passes")


def test_only_the_controls_are_read() -> None:
    assert verdict(asz_ia32e_needs_host64, entry(VM_EXIT_CONTROLS=EXIT)).passed
    # with host address-space size 1 the entry control is not needed
    assert verdict(asz_guest64_needs_host64, entry(VM_EXIT_CONTROLS=EXIT)).passed
    v = verdict(asz_guest64_needs_host64, entry(VM_EXIT_CONTROLS=EXIT & ~VM_EXIT_HOST_ADDR_SPACE_SIZE))
    assert v.missing == ("VM_ENTRY_CONTROLS",)


def test_host_phase_reports_vmfail_8_and_control_failures_take_precedence() -> None:
    from vmxkb.bits import VM_EXIT_HOST_ADDR_SPACE_SIZE
    from vmxkb.guests import long_mode
    from vmxkb.vmentry import evaluate

    r = evaluate(long_mode(VM_EXIT_CONTROLS=EXIT & ~VM_EXIT_HOST_ADDR_SPACE_SIZE))
    assert r.outcome.kind == "vmfail" and r.outcome.vm_instruction_error == 8
    both = evaluate(long_mode(VM_EXIT_CONTROLS=EXIT & ~VM_EXIT_HOST_ADDR_SPACE_SIZE, VM_ENTRY_INTR_INFO_FIELD=0x80000100))
    assert both.outcome.vm_instruction_error == 7  # type 1 is reserved: a control check
