"""The exploration finds the thread's two problems by itself."""

from __future__ import annotations

from vmxkb.bits import GUEST_INTR_STATE_MOV_SS, PENDING_DBG_BS, RFLAGS_TF
from vmxkb.kvm.explore import explore_all


def test_patched_model_has_the_migration_hole() -> None:
    f, count = explore_all()[("KVM_VMX_BS_ON_INJECTED_DB", "entry-failure", ("ENTRY_GUEST_PDE_BS_REQUIRED_TF",))]
    assert f.situation.path == "restore" and f.situation.last == "MOV SS" and f.situation.tf
    vmcs = f.kvm.entry.vmcs  # type: ignore[union-attr]
    assert vmcs.GUEST_RFLAGS & RFLAGS_TF
    assert vmcs.GUEST_INTERRUPTIBILITY_INFO == GUEST_INTR_STATE_MOV_SS
    assert not vmcs.GUEST_PENDING_DBG_EXCEPTIONS & PENDING_DBG_BS
    assert vmcs.VM_ENTRY_INTR_INFO_FIELD == 0  # no #DB injected
    assert count == 4


def test_emulated_movss_db_is_early() -> None:
    key = ("KVM_EMULATOR_SINGLESTEP_NOW", "guest-visible", ("BM_MOVSS_INHIBIT", "BM_MOVSS_SINGLESTEP_DELAY"))
    f, _ = explore_all()[key]
    assert f.kvm.run is not None and f.kvm.run.first is not None and f.kvm.run.first.at == 0
    assert f.bare_metal.first is not None and f.bare_metal.first.at == 1


def test_patch_fixes_injected_db_entry_failures() -> None:
    classes = explore_all()
    old = classes[("KVM_VMX_BS_ON_INTERCEPTED_DB", "entry-failure", ("ENTRY_GUEST_PDE_BS_REQUIRED_TF",))][1]
    new = classes[("KVM_VMX_BS_ON_INJECTED_DB", "entry-failure", ("ENTRY_GUEST_PDE_BS_REQUIRED_TF",))][1]
    assert old > new > 0  # v3 removes the emulator and restored-#DB failures, not the migration hole


def test_svm_never_fails_entry() -> None:
    assert not [k for k in explore_all() if k[0] == "KVM_SVM_NO_PENDING_DBG" and k[1] == "entry-failure"]


def test_the_smallest_witness_wins_whatever_the_order() -> None:
    from vmxkb.kvm.explore import classify, explore
    from vmxkb.kvm.models import BEHAVIOURS

    findings = explore(BEHAVIOURS["KVM_VMX_BS_ON_INJECTED_DB"])
    forward, backward = classify(findings), classify(reversed(findings))
    assert forward.keys() == backward.keys() and forward
    for key in forward:
        assert forward[key][0].situation == backward[key][0].situation
        assert forward[key][1] == backward[key][1] == sum(f.key == key for f in findings)
        assert forward[key][0].situation.size == min(f.situation.size for f in findings if f.key == key)


def test_domains_and_the_names_the_site_prints() -> None:
    from vmxkb.kvm.explore import domain_size
    from vmxkb.kvm.models import BEHAVIOURS

    for b in BEHAVIOURS.values():
        situations = list(b.domain())
        assert domain_size(b) == len(situations) == len(set(situations)) > 0
        assert b.qualname == f"{b.func.__module__}.{b.func.__name__}"
        text = str(situations[0])
        assert f"TF={int(situations[0].tf)} IF={int(situations[0].if_)}" in text and situations[0].path in text


def test_a_pending_db_entered_without_a_shadow_is_delivered_at_once() -> None:
    """observe_vmx: BS pending, no shadow, no injection: the #DB comes at boundary 0."""
    from vmxkb.guests import long_mode
    from vmxkb.kvm.models import Situation, observe_vmx

    s = Situation("exit", "NOP", True, True, False)
    state = long_mode(GUEST_RFLAGS=0x302, GUEST_INTERRUPTIBILITY_INFO=0, GUEST_PENDING_DBG_EXCEPTIONS=PENDING_DBG_BS)
    run = observe_vmx(s, state, 0xFFFF0FF0)
    assert run.first is not None and run.first.at == 0 and run.first.event == "#DB" and run.first.dr6_bs
