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
