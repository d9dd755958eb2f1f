"""The VMCS dump reader (:mod:`vmxkb.dump`): real dumps, pasted variants, other layouts, bad input."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from vmxkb.dump import (
    Dump,
    DumpError,
    entry_failure,
    failure_kind,
    parse_dump,
    parse_dumps,
    to_vmcs,
    vm_fail,
)
from vmxkb.state import FIELDS

DUMPS = Path(__file__).resolve().parent / "dumps"
D03 = "03-kvm-2021-core2duo-ds-es-not-accessed"
D04 = "04-kvm-2022-proxmox-smm-sti-blocking-if0"
D16 = "16-kvm-2026-coconut-svsm-ci-nested-partial"


def text(name: str) -> str:
    return (DUMPS / name / "dump.txt").read_text()


def seg(name: str, sel: int | None, attr: int | None, limit: int | None, base: int | None) -> dict[str, int]:
    keys = {"sel": f"GUEST_{name}_SELECTOR", "attr": f"GUEST_{name}_AR_BYTES",
            "limit": f"GUEST_{name}_LIMIT", "base": f"GUEST_{name}_BASE"}
    vals = {"sel": sel, "attr": attr, "limit": limit, "base": base}
    return {keys[k]: v for k, v in vals.items() if v is not None}


# --- the three real dumps: every printed value, written out from the dump texts --------------------

EXPECT_03 = {
    "GUEST_CR0": 0x80000031, "GUEST_CR4": 0x2041, "GUEST_CR3": 0xA709000,
    "GUEST_RSP": 0xEFF0, "GUEST_RIP": 0x17C, "GUEST_RFLAGS": 0x80202, "GUEST_DR7": 0x400,
    "GUEST_SYSENTER_ESP": 0, "GUEST_SYSENTER_CS": 0, "GUEST_SYSENTER_EIP": 0,
    **seg("CS", 0x97, 0x40FB, 0x1A0, 0x2110000), **seg("DS", 0xF7, 0xC0F2, 0xFFFFFFFF, 0),
    **seg("SS", 0x9F, 0x40F3, 0xEFFF, 0x2111000), **seg("ES", 0xF7, 0xC0F2, 0xFFFFFFFF, 0),
    **seg("FS", 0, 0x10000, 0, 0), **seg("GS", 0, 0x10000, 0, 0),
    **seg("GDTR", None, None, 0x17, 0xA708100), **seg("LDTR", 0x10, 0x82, 0xFFFF, 0xAB0A000),
    **seg("IDTR", None, None, 0x7FF, 0xA708200), **seg("TR", 0x10, 0x8B, 0x2088, 0xA706000),
    "GUEST_IA32_EFER": 0, "GUEST_IA32_PAT": 0x0007040600070406,
    "GUEST_IA32_DEBUGCTL": 0, "GUEST_PENDING_DBG_EXCEPTIONS": 0,
    "GUEST_INTERRUPTIBILITY_INFO": 0, "GUEST_ACTIVITY_STATE": 0,
    "PIN_BASED_VM_EXEC_CONTROL": 0x7F, "CPU_BASED_VM_EXEC_CONTROL": 0xB5986DFA,
    "SECONDARY_VM_EXEC_CONTROL": 0x2C6A, "VM_ENTRY_CONTROLS": 0xD1FF, "VM_EXIT_CONTROLS": 0x2BEFFF,
    "VM_ENTRY_INTR_INFO_FIELD": 0x4E6, "VM_ENTRY_EXCEPTION_ERROR_CODE": 0, "VM_ENTRY_INSTRUCTION_LEN": 2,
    "EPT_POINTER": 0x5FCEC605E,
}

EXPECT_04 = {
    "GUEST_CR0": 0x50032, "GUEST_CR4": 0x2040, "GUEST_CR3": 0x13CBF4002,
    "GUEST_PDPTR0": 0x3300050011, "GUEST_PDPTR1": 0, "GUEST_PDPTR2": 0, "GUEST_PDPTR3": 0x10000000000,
    "GUEST_RSP": 0xFFFF898CACDA2C90, "GUEST_RIP": 0x8000, "GUEST_RFLAGS": 0x2, "GUEST_DR7": 0x400,
    "GUEST_SYSENTER_ESP": 0, "GUEST_SYSENTER_CS": 0, "GUEST_SYSENTER_EIP": 0,
    **seg("CS", 0xC200, 0x8093, 0xFFFFFFFF, 0x7FFC2000),
    **{k: v for s in ("DS", "SS", "ES", "FS", "GS") for k, v in seg(s, 0, 0x8093, 0xFFFFFFFF, 0).items()},
    **seg("GDTR", None, None, 0x57, 0xFFFFF8024E652FB0), **seg("LDTR", 0, 0x10000, 0xFFFFF, 0),
    **seg("IDTR", None, None, 0, 0), **seg("TR", 0x40, 0x8B, 0x67, 0xFFFFF8024E651000),
    "GUEST_IA32_EFER": 0, "GUEST_IA32_PAT": 0x0007010600070106,
    "GUEST_IA32_DEBUGCTL": 0, "GUEST_PENDING_DBG_EXCEPTIONS": 0,
    "GUEST_INTERRUPTIBILITY_INFO": 9, "GUEST_ACTIVITY_STATE": 0,
    "PIN_BASED_VM_EXEC_CONTROL": 0xFF, "CPU_BASED_VM_EXEC_CONTROL": 0xB5A06DFA,
    "SECONDARY_VM_EXEC_CONTROL": 0x7EB, "VM_ENTRY_CONTROLS": 0xD1FF, "VM_EXIT_CONTROLS": 0x2BEFFF,
    "VM_ENTRY_INTR_INFO_FIELD": 0, "VM_ENTRY_EXCEPTION_ERROR_CODE": 4, "VM_ENTRY_INSTRUCTION_LEN": 0,
    "EPT_POINTER": 0x11AA2D01E,
}

EXPECT_16 = {
    "GUEST_CR0": 0x80010033, "GUEST_CR4": 0x342AF0, "GUEST_CR3": 0x8000F76000,
    "GUEST_PDPTR0": 0x5E0E5001, "GUEST_PDPTR1": 0x5E0E4001, "GUEST_PDPTR2": 0x5E0E3001, "GUEST_PDPTR3": 0x5E0E2001,
    "GUEST_RSP": 0xFFFFFE006000BE50, "GUEST_RIP": 0xFFFFFF8000042837, "GUEST_RFLAGS": 0x2, "GUEST_DR7": 0x400,
    "GUEST_SYSENTER_ESP": 0, "GUEST_SYSENTER_CS": 0, "GUEST_SYSENTER_EIP": 0,
    **seg("CS", 8, 0xA09B, 0xFFFFFFFF, 0), **seg("DS", 0x10, 0xC093, 0xFFFFFFFF, 0),
    **seg("SS", 0x10, 0xC093, 0xFFFFFFFF, 0),
    **seg("ES", 0x10, 0xC093, None, None),  # the text stops at "limit"
}


def test_dump_03_pre_5_13_every_value() -> None:
    d = parse_dump(text(D03))
    assert dict(d.fields) == EXPECT_03
    assert d.fields["GUEST_DS_AR_BYTES"] == d.fields["GUEST_ES_AR_BYTES"] == 0xC0F2  # type 2: not accessed
    assert (d.exit_reason, d.exit_qualification, d.vm_instruction_error) == (0x80000021, 0, None)
    assert d.layout == "kvm-pre-5.13" and not d.truncated
    assert entry_failure(d) and failure_kind(d) == "invalid guest state" and not vm_fail(d)


def test_dump_04_5_13_every_value_and_no_host_or_qemu_value() -> None:
    d = parse_dump(text(D04))
    assert dict(d.fields) == EXPECT_04
    assert d.fields["GUEST_RFLAGS"] == 0x2 and d.fields["GUEST_INTERRUPTIBILITY_INFO"] == 0x9
    assert d.fields["GUEST_CR0"] == 0x50032  # not the host's CR0=0000000080050033
    assert d.fields["GUEST_IA32_EFER"] == 0  # not the host's EFER= 0x...0d01
    assert d.fields["GUEST_IA32_PAT"] == 0x0007010600070106  # not the host's 0x0407050600070106
    assert d.fields["GUEST_RIP"] == 0x8000 and d.fields["GUEST_RSP"] == 0xFFFF898CACDA2C90  # not the host's
    assert (d.exit_reason, d.exit_qualification) == (0x80000021, 0)
    assert d.layout == "kvm-5.13" and not d.truncated
    assert not any("skipped" in n for n in d.notes), d.notes  # QEMU's lines are not "odd dump lines"


def test_dump_16_partial_6x() -> None:
    d = parse_dump(text(D16))
    assert dict(d.fields) == EXPECT_16
    assert "GUEST_ES_LIMIT" not in d.fields and "GUEST_INTERRUPTIBILITY_INFO" not in d.fields
    assert d.truncated and d.layout == "kvm-6.x"
    assert d.exit_reason is None and d.vm_instruction_error is None and not entry_failure(d)
    assert any("stops at line 14" in n for n in d.notes), d.notes


def test_dump_is_frozen_and_converts_to_vmcs() -> None:
    d = parse_dump(text(D04))
    with pytest.raises(TypeError):
        d.fields["GUEST_RFLAGS"] = 0x202  # type: ignore[index]
    with pytest.raises(AttributeError):
        d.truncated = True  # type: ignore[misc]
    v = to_vmcs(d)
    assert v.GUEST_INTERRUPTIBILITY_INFO == 9 and v.GUEST_IA32_PERF_GLOBAL_CTRL is None
    assert set(d.fields) <= set(FIELDS)


# --- pasting habits, made by program from the real dumps ---------------------------------------------

TS = re.compile(r"^\[ *\d+\.\d+\] ", re.M)
JOURNAL = re.compile(r"^Jun 24 17:25:51 testhost kernel: ", re.M)


def strip_journal(t: str) -> str:
    return JOURNAL.sub("", t)


def add_timestamps(t: str, caller: bool = False, module: bool = False) -> str:
    out = []
    for i, line in enumerate(t.split("\n")):
        if not line:
            out.append(line)
            continue
        prefix = f"[{1234 + i // 7:6d}.{(i * 7919) % 1000000:06d}]"
        if caller:
            prefix += f"[T{2997 + i % 3}]"
        out.append(f"{prefix} {'kvm_intel: ' if module else ''}{line}")
    return "\n".join(out)


def quote(t: str, marker: str = "> ") -> str:
    return "\n".join(marker + line if line else marker.rstrip() for line in t.split("\n"))


def soft_wrap(t: str, seed: int, prefix: re.Pattern[str] | None = None, width: tuple[int, int] = (20, 60)) -> str:
    """Flowed-mail soft wraps: a long line is broken after a blank (which it keeps) at a random
    column; the continuation carries no log prefix."""
    rnd = random.Random(seed)
    out = []
    for line in t.split("\n"):
        m = prefix.match(line) if prefix else None
        head, body = (line[: m.end()], line[m.end():]) if m else ("", line)
        while len(body) > width[1]:
            col = rnd.randint(*width)
            cut = body.find(" ", col)
            if cut < 0 or cut == len(body) - 1:
                break
            out.append(head + body[: cut + 1])
            head, body = "", body[cut + 1:]
        out.append(head + body)
    return "\n".join(out)


def hard_wrap(t: str, seed: int, prefix: re.Pattern[str]) -> str:
    """Column wraps inside tokens (a terminal or a mail client breaking at a fixed width): the
    continuation has no log prefix and no blank is added or lost."""
    rnd = random.Random(seed)
    out = []
    for line in t.split("\n"):
        m = prefix.match(line)
        if not m or len(line) - m.end() < 12:
            out.append(line)
            continue
        col = rnd.randint(m.end() + 2, len(line) - 2)
        out += [line[:col], line[col:]]
    return "\n".join(out)


def same(a: Dump, b: Dump) -> None:
    assert dict(a.fields) == dict(b.fields)
    assert (a.exit_reason, a.exit_qualification, a.vm_instruction_error, a.truncated) == (
        b.exit_reason, b.exit_qualification, b.vm_instruction_error, b.truncated)


VARIANTS = {
    "03 without timestamps": (D03, lambda t: TS.sub("", t)),
    "03 quoted": (D03, quote),
    "03 quoted twice": (D03, lambda t: quote(quote(t), ">")),
    "03 crlf": (D03, lambda t: t.replace("\n", "\r\n")),
    "03 cr only": (D03, lambda t: t.replace("\n", "\r")),
    "03 re-wrapped at random columns": (D03, lambda t: soft_wrap(TS.sub("", t).replace(" \n", " "), 3)),
    "03 kvm_intel prefix": (D03, lambda t: TS.sub(lambda m: m.group() + "kvm_intel: ", t)),
    "04 without journald": (D04, strip_journal),
    "04 timestamps instead of journald": (D04, lambda t: add_timestamps(strip_journal(t))),
    "04 timestamps and caller ids": (D04, lambda t: add_timestamps(strip_journal(t), caller=True)),
    "04 timestamps and kvm_intel": (D04, lambda t: add_timestamps(strip_journal(t), module=True)),
    "04 soft wraps, seed 1": (D04, lambda t: soft_wrap(t, 1, JOURNAL)),
    "04 soft wraps, seed 2, no prefix": (D04, lambda t: soft_wrap(strip_journal(t), 2)),
    "04 soft wraps and quoting, crlf": (D04, lambda t: quote(soft_wrap(t, 4, JOURNAL)).replace("\n", "\r\n")),
    "04 hard wraps, seed 5": (D04, lambda t: hard_wrap(t, 5, JOURNAL)),
    "04 hard wraps, seed 6, timestamps": (D04, lambda t: hard_wrap(add_timestamps(strip_journal(t)), 6, TS)),
    "04 iso dates": (D04, lambda t: JOURNAL.sub("2022-06-24T17:25:51.123456+02:00 testhost kernel: ", t)),
    "04 dmesg -x": (D04, lambda t: re.sub(r"(?m)^(\[)", r"kern  :err   : \1", add_timestamps(strip_journal(t)))),
    "04 dmesg -T": (D04, lambda t: JOURNAL.sub("[Fri Jun 24 17:25:51 2022] ", t)),
    "04 padded caller ids": (D04, lambda t: JOURNAL.sub("[  673.850218][ T2997] ", t)),
    "04 in a mail": (D04, lambda t: "Hi,\n\nwith the patch I get this:\n\n" + quote(t) + "\n\nAny idea?\n-- \nJoe\n"),
    "16 without timestamps": (D16, lambda t: TS.sub("", t)),
    "16 without kvm_intel": (D16, lambda t: t.replace("kvm_intel: ", "")),
    "16 quoted crlf": (D16, lambda t: quote(t).replace("\n", "\r\n")),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_pasted_variants_read_the_same(name: str) -> None:
    folder, make = VARIANTS[name]
    original = text(folder)
    variant = make(original)
    assert variant != original
    same(parse_dump(variant), parse_dump(original))


@pytest.mark.parametrize("seed", range(12))
def test_random_soft_and_hard_wraps(seed: int) -> None:
    for folder, prefix in ((D04, JOURNAL), (D03, TS)):
        original = text(folder)
        base = original.replace(" \n", " ") if folder == D03 else original
        same(parse_dump(soft_wrap(base, 100 + seed, prefix, (8, 40))), parse_dump(original))
        same(parse_dump(hard_wrap(base, 200 + seed, prefix)), parse_dump(original))


def test_qemu_register_dump_is_never_read() -> None:
    t = text(D04)
    # give QEMU's register dump values no VMCS field has, with and without the journald prefix
    fake = (t.replace("CR0=00050032", "CR0=deadbeef").replace("EFER=0000000000000000", "EFER=0000000000000d01")
            .replace("EFL=00000002", "EFL=00000202").replace("ES =0000 00000000 ffffffff 00809300",
                                                            "ES =0018 00000000 ffffffff 00c09300"))
    for variant in (fake, strip_journal(fake), re.sub(r"(?m)^Jun 24 17:25:51 testhost QEMU\[2997\]: ", "",
                                                        strip_journal(fake))):
        d = parse_dump(variant)
        assert dict(d.fields) == EXPECT_04
    with pytest.raises(DumpError, match="QEMU's register dump is not a VMCS dump"):
        parse_dump("\n".join(line for line in t.split("\n") if "QEMU" in line))


def test_qemu_output_pasted_bare_after_a_cut_dump_is_not_joined_into_it() -> None:
    t = add_timestamps(strip_journal(text(D04)))
    cut = t[: t.index("DebugCtl")].rsplit("\n", 1)[0] + "\n"  # the dump stops after PAT
    qemu = "\n".join(line.split("QEMU[2997]: ", 1)[1] for line in t.split("\n") if "QEMU[2997]: " in line)
    qemu = qemu.replace("EFER=0000000000000000", "EFER=0000000000000d01").replace("DR7=0000000000000400",
                                                                                     "DR7=0000000000000000")
    d = parse_dump(cut + qemu + "\n")
    assert d.truncated and d.exit_reason == 0x80000021  # from "KVM: entry failed, hardware error 0x80000021"
    assert {k: v for k, v in EXPECT_04.items() if k in d.fields} == dict(d.fields)
    assert d.fields["GUEST_DR7"] == 0x400 and d.fields["GUEST_IA32_EFER"] == 0
    assert "GUEST_IA32_DEBUGCTL" not in d.fields


def test_host_state_is_never_guest_state() -> None:
    t = TS.sub("", text(D03))
    # kernels print the guest EFER/PAT line only when the EFER/PAT controls are set: drop it
    no_guest_efer = re.sub(r"EFER =     0x0+  PAT = 0x0007040600070406\n", "", t)
    d = parse_dump(no_guest_efer)
    assert "GUEST_IA32_EFER" not in d.fields and "GUEST_IA32_PAT" not in d.fields  # host's 0xd01 not taken
    # without the '*** Host State ***' line the host lines are still recognised as host lines
    d = parse_dump(no_guest_efer.replace("*** Host State ***\n", ""))
    assert "GUEST_IA32_EFER" not in d.fields and d.fields["GUEST_RIP"] == 0x17C
    assert any("Host State" in n for n in d.notes)


def test_every_cut_keeps_only_true_values() -> None:
    """Cut the text anywhere: what is read is right, and a shorter read says truncated."""
    original = text(D04)
    full = parse_dump(original)
    rnd = random.Random(7)
    for cut in sorted(rnd.sample(range(150, len(original)), 120)):
        d = parse_dump(original[:cut])
        assert all(full.fields[k] == v for k, v in d.fields.items()), cut
        if dict(d.fields) != dict(full.fields):
            assert d.truncated, cut


def test_value_cut_by_the_end_of_the_text_is_not_read() -> None:
    t = text(D04)
    cut = t.index("DebugExceptions = 0x") + len("DebugExceptions = 0x0000")
    d = parse_dump(t[:cut])
    assert "GUEST_PENDING_DBG_EXCEPTIONS" not in d.fields and d.fields["GUEST_IA32_DEBUGCTL"] == 0
    assert d.truncated and any("stops inside the value of DebugExceptions" in n for n in d.notes)
    # a value printed in full at the very end is read
    cut = t.index("DebugExceptions = 0x") + len("DebugExceptions = 0x0000000000000000")
    assert parse_dump(t[:cut]).fields["GUEST_PENDING_DBG_EXCEPTIONS"] == 0


def test_elisions() -> None:
    t = text(D04)
    elided = re.sub(r"(?m)^(Jun 24 17:25:51 testhost kernel: )(CS|DS|SS):.*$", r"\1...", t)
    d = parse_dump(elided)
    assert "GUEST_CS_SELECTOR" not in d.fields and d.fields["GUEST_ES_AR_BYTES"] == 0x8093
    assert not d.truncated and sum("elision" in n for n in d.notes) == 3
    d = parse_dump(t[: t.index("Jun 24 17:25:51 testhost kernel: *** Host State")] + "[...]\n")
    assert d.truncated and d.fields["GUEST_INTERRUPTIBILITY_INFO"] == 9


def test_elided_excerpt_in_a_mail_ends_at_the_commentary() -> None:
    mail = ("The selftest fails with FAIL_ENTRY; from dmesg:\n\n"
            "[  88.100001] VMCS 00000000a1b2c3d4, last attempted VM-entry on CPU 3\n"
            "... ...\n"
            "[  88.100020] RFLAGS=0x00000046         DR7 = 0x0000000000000400\n"
            "[...]\n"
            "[  88.100031] Interruptibility = 00000001  ActivityState = 00000000\n"
            "\n\n"
            "Reason=5 looks odd, and CR3 = 0x1000 is what I set.\n")
    d = parse_dump(mail)
    assert dict(d.fields) == {"GUEST_RFLAGS": 0x46, "GUEST_DR7": 0x400, "GUEST_INTERRUPTIBILITY_INFO": 1,
                              "GUEST_ACTIVITY_STATE": 0}  # not the CR3 of the commentary
    assert d.truncated and d.layout == "kvm-5.13" and d.exit_reason is None
    assert sum("elision" in n for n in d.notes) == 2 and any("breaks off at line 7" in n for n in d.notes)


# --- layouts written from the printing functions ---------------------------------------------------

# Xen >= 4.6 vmcs_dump_vcpu(), as vmx_failed_vmentry() prints it (xen/arch/x86/hvm/vmx/vmcs.c, vmx.c)
XEN = """\
(XEN) d1v0 vmentry failure (reason 0x80000021): Invalid guest state (0)
(XEN) ************* VMCS Area **************
(XEN) *** Guest State ***
(XEN) CR0: actual=0x0000000000000039, shadow=0x0000000000000011, gh_mask=ffffffffffffffff
(XEN) CR4: actual=0x0000000000002050, shadow=0x0000000000000000, gh_mask=ffffffffffffffff
(XEN) CR3 = 0x0000000000400000
(XEN) PDPTE0 = 0x0000000000401001  PDPTE1 = 0x0000000000000000
(XEN) PDPTE2 = 0x0000000000000000  PDPTE3 = 0x0000000000000000
(XEN) RSP = 0x0000000000006fdc (0x0000000000006fd8)  RIP = 0x0000000000100000 (0x0000000000100003)
(XEN) RFLAGS=0x00000002 (0x00000202)  DR7 = 0x0000000000000400
(XEN) Sysenter RSP=0000000000001000 CS:RIP=0008:0000000000102000
(XEN)        sel  attr  limit   base
(XEN)   CS: 0008 0c09b ffffffff 0000000000000000
(XEN)   DS: 0010 0c093 ffffffff 0000000000000000
(XEN)   SS: 0010 0c093 ffffffff 0000000000000000
(XEN)   ES: 0010 0c093 ffffffff 0000000000000000
(XEN)   FS: 0000 00093 0000ffff 0000000000000000
(XEN)   GS: 0000 00093 0000ffff 0000000000000000
(XEN) GDTR:            00000017 0000000000102eb8
(XEN) LDTR: 0000 00082 0000ffff 0000000000000000
(XEN) IDTR:            0000ffff 0000000000000000
(XEN)   TR: 0000 0008b 0000ffff 0000000000000000
(XEN) EFER(VMCS) = 0x0000000000000000  PAT = 0x0007040600070406
(XEN) PreemptionTimer = 0x00000000  SM Base = 0x00000000
(XEN) DebugCtl = 0x0000000000000000  DebugExceptions = 0x0000000000000000
(XEN) PerfGlobCtl = 0x0000000000000000  BndCfgS = 0x0000000000000000
(XEN) Interruptibility = 00000000  ActivityState = 00000000
(XEN) *** Host State ***
(XEN) RIP = 0xffff82d08031a5d0 (vmx_asm_vmexit_handler)  RSP = 0xffff83007a2bff70
(XEN) CS=e008 SS=0000 DS=0000 ES=0000 FS=0000 GS=0000 TR=e040
(XEN) FSBase=0000000000000000 GSBase=0000000000000000 TRBase=ffff83007a2c4c80
(XEN) GDTBase=ffff83007a2b5000 IDTBase=ffff83007a2c0000
(XEN) CR0=0000000080050033 CR3=000000007a0a5000 CR4=00000000003526e0
(XEN) Sysenter RSP=ffff83007a2bffa0 CS:RIP=e008:ffff82d08035c140
(XEN) EFER = 0x0000000000000d01  PAT = 0x0000050100070406
(XEN) *** Control State ***
(XEN) PinBased=0000003f CPUBased=b6a065fa
(XEN) SecondaryExec=000014eb TertiaryExec=0000000000000000
(XEN) EntryControls=0000d3ff ExitControls=002fefff
(XEN) ExceptionBitmap=00060002 PFECmask=00000000 PFECmatch=00000000
(XEN) VMEntry: intr_info=80000b0e errcode=00000002 ilen=00000000
(XEN) VMExit: intr_info=00000000 errcode=00000000 ilen=00000000
(XEN)         reason=80000021 qualification=0000000000000000
(XEN) IDTVectoring: info=00000000 errcode=00000000
(XEN) TSC Offset = 0xffffffd2b5a1c3d4  TSC Multiplier = 0x0000000000000000
(XEN) TPR Threshold = 0x00  PostedIntrVec = 0x00
(XEN) EPT pointer = 0x000000007a0d801e  EPTP index = 0x0000
(XEN) PLE Gap=00000080 Window=00001000
(XEN) Virtual processor ID = 0x0001 VMfunc controls = 0000000000000000
(XEN) **************************************
"""


def test_xen_layout() -> None:
    d = parse_dump(XEN)
    assert d.layout == "xen" and not d.truncated
    f = d.fields
    assert f["GUEST_RSP"] == 0x6FDC and f["GUEST_RIP"] == 0x100000  # the VMCS, not Xen's saved registers
    assert f["GUEST_RFLAGS"] == 0x2
    assert (f["GUEST_PDPTR0"], f["GUEST_PDPTR3"]) == (0x401001, 0)
    assert (f["GUEST_SYSENTER_ESP"], f["GUEST_SYSENTER_CS"], f["GUEST_SYSENTER_EIP"]) == (0x1000, 8, 0x102000)
    assert [f[f"GUEST_CS_{k}"] for k in ("SELECTOR", "AR_BYTES", "LIMIT", "BASE")] == [8, 0xC09B, 0xFFFFFFFF, 0]
    assert [f[f"GUEST_FS_{k}"] for k in ("SELECTOR", "AR_BYTES", "LIMIT", "BASE")] == [0, 0x93, 0xFFFF, 0]
    assert (f["GUEST_GDTR_LIMIT"], f["GUEST_GDTR_BASE"]) == (0x17, 0x102EB8)
    assert (f["GUEST_IDTR_LIMIT"], f["GUEST_TR_AR_BYTES"], f["GUEST_LDTR_AR_BYTES"]) == (0xFFFF, 0x8B, 0x82)
    assert f["GUEST_IA32_EFER"] == 0 and f["GUEST_IA32_PAT"] == 0x0007040600070406  # not the host's
    assert f["GUEST_IA32_PERF_GLOBAL_CTRL"] == 0 and f["GUEST_BNDCFGS"] == 0
    assert f["TERTIARY_VM_EXEC_CONTROL"] == 0 and f["SECONDARY_VM_EXEC_CONTROL"] == 0x14EB
    assert (f["VM_ENTRY_INTR_INFO_FIELD"], f["VM_ENTRY_EXCEPTION_ERROR_CODE"]) == (0x80000B0E, 2)
    assert f["EPT_POINTER"] == 0x7A0D801E and d.exit_reason == 0x80000021
    assert len(f) == 68  # every guest and control field printed, nothing from the host part


def test_xen_efer_from_the_msr_load_list_is_not_the_vmcs_field() -> None:
    d = parse_dump(XEN.replace("EFER(VMCS) = 0x0000000000000000", "EFER(MSR LL) = 0x0000000000000500"))
    assert "GUEST_IA32_EFER" not in d.fields and d.fields["GUEST_IA32_PAT"] == 0x0007040600070406
    assert any("MSR LL" in n for n in d.notes)


def test_xen_vmfail_and_vcpu_dumps() -> None:
    # vmx_vmentry_failure(): "VMRESUME error: 0x7", then the dump, whose exit reason is stale
    t = "(XEN) d2v1 VMRESUME error: 0x7\n" + XEN.split("\n", 1)[1].replace("reason=80000021", "reason=0000001e")
    d = parse_dump(t)
    assert d.vm_instruction_error == 7 and vm_fail(d) and d.exit_reason == 0x1E and not entry_failure(d)
    assert any("previous exit" in n for n in d.notes)
    # the 'v' debug key dumps every vCPU: two dumps
    body = XEN.split("************* VMCS Area **************\n", 1)[1].rsplit("(XEN) ****", 1)[0]
    two = "(XEN) *********** VMCS Areas **************\n(XEN) \tVCPU 0\n" + body + "(XEN) \tVCPU 1\n" + body.replace(
        "RFLAGS=0x00000002", "RFLAGS=0x00000046")
    dumps = parse_dumps(two)
    assert [x.fields["GUEST_RFLAGS"] for x in dumps] == [0x2, 0x46]
    assert any("2 dumps" in n for n in parse_dump(two).notes)


# Xen <= 4.5 vmcs_dump_vcpu(): key=value segments, CR3 targets, "Guest PAT", %04x interruptibility
XEN_OLD = """\
(XEN) Failed vm entry (exit reason 0x80000021) caused by invalid guest state (0).
(XEN) ************* VMCS Area **************
(XEN) *** Guest State ***
(XEN) CR0: actual=0x0000000000000031, shadow=0x0000000000000011, gh_mask=ffffffffffffffff
(XEN) CR4: actual=0x0000000000002000, shadow=0x0000000000000000, gh_mask=ffffffffffffffff
(XEN) CR3: actual=0x0000000000800000, target_count=0
(XEN)      target0=0000000000000000, target1=0000000000000000
(XEN)      target2=0000000000000000, target3=0000000000000000
(XEN) RSP = 0x0000000000006fdc (0x0000000000006fdc)  RIP = 0x0000000000100000 (0x0000000000100000)
(XEN) RFLAGS=0x0000000000000002 (0x0000000000000002)  DR7 = 0x0000000000000400
(XEN) Sysenter RSP=0000000000000000 CS:RIP=0000:0000000000000000
(XEN) CS: sel=0x0008, attr=0x0c09b, limit=0xffffffff, base=0x0000000000000000
(XEN) DS: sel=0x0010, attr=0x0c093, limit=0xffffffff, base=0x0000000000000000
(XEN) SS: sel=0x0010, attr=0x0c093, limit=0xffffffff, base=0x0000000000000000
(XEN) ES: sel=0x0010, attr=0x0c092, limit=0xffffffff, base=0x0000000000000000
(XEN) FS: sel=0x0000, attr=0x00093, limit=0x0000ffff, base=0x0000000000000000
(XEN) GS: sel=0x0000, attr=0x00093, limit=0x0000ffff, base=0x0000000000000000
(XEN) GDTR:                           limit=0x00000017, base=0x0000000000102eb8
(XEN) LDTR: sel=0x0000, attr=0x00082, limit=0x0000ffff, base=0x0000000000000000
(XEN) IDTR:                           limit=0x0000ffff, base=0x0000000000000000
(XEN) TR: sel=0x0000, attr=0x0008b, limit=0x0000ffff, base=0x0000000000000000
(XEN) Guest PAT = 0x0007040600070406
(XEN) TSC Offset = ffffffd2b5a1c3d4
(XEN) DebugCtl=0000000000000000 DebugExceptions=0000000000000000
(XEN) Interruptibility=0008 ActivityState=0000
(XEN) *** Host State ***
(XEN) RSP = 0xffff83007a2bff70  RIP = 0xffff82d0801d9a40
(XEN) CS=e008 DS=0000 ES=0000 FS=0000 GS=0000 SS=0000 TR=e040
(XEN) FSBase=0000000000000000 GSBase=0000000000000000 TRBase=ffff83007a2c4c80
(XEN) GDTBase=ffff83007a2b5000 IDTBase=ffff83007a2c0000
(XEN) CR0=0000000080050033 CR3=000000007a0a5000 CR4=00000000000426f0
(XEN) Sysenter RSP=ffff83007a2bffa0 CS:RIP=e008:ffff82d08022b4b0
(XEN) Host PAT = 0x0000050100070406
(XEN) *** Control State ***
(XEN) PinBased=0000003f CPUBased=b6a065fa SecondaryExec=000014eb
(XEN) EntryControls=0000d1ff ExitControls=000fefff
(XEN) ExceptionBitmap=00060002
(XEN) VMEntry: intr_info=00000000 errcode=00000000 ilen=00000000
(XEN) VMExit: intr_info=00000000 errcode=00000000 ilen=00000000
(XEN)         reason=80000021 qualification=00000000
(XEN) IDTVectoring: info=00000000 errcode=00000000
(XEN) TPR Threshold = 0x00
(XEN) EPT pointer = 0x000000007a0d801e
(XEN) Virtual processor ID = 0x0001
(XEN) **************************************
"""


def test_xen_before_4_6_layout() -> None:
    d = parse_dump(XEN_OLD)
    assert d.layout == "xen-pre-4.6" and not d.truncated
    f = d.fields
    assert f["GUEST_CR3"] == 0x800000 and f["GUEST_RFLAGS"] == 0x2 and f["GUEST_IA32_PAT"] == 0x0007040600070406
    assert f["GUEST_ES_AR_BYTES"] == 0xC092 and f["GUEST_ES_SELECTOR"] == 0x10
    assert f["GUEST_INTERRUPTIBILITY_INFO"] == 8 and f["GUEST_PENDING_DBG_EXCEPTIONS"] == 0
    assert "GUEST_IA32_EFER" not in f and "GUEST_PDPTR0" not in f
    assert d.exit_reason == 0x80000021 and d.exit_qualification == 0
    assert any("CR3-target" in n for n in d.notes)
    # the end of this layout is the VPID line, not TSC Offset (printed in the guest part here)
    assert parse_dump(XEN_OLD.split("(XEN) Virtual processor ID")[0]).truncated


# the kernel's dump_vmcs() before 5.13 (arch/x86/kvm/vmx.c, 4.x), with every conditional line
KVM_OLD = """\
kvm_intel: ignored line before the dump
*** Guest State ***
CR0: actual=0x0000000080000031, shadow=0x0000000080000031, gh_mask=fffffffffffffff7
CR4: actual=0x00000000000026f0, shadow=0x00000000000006b0, gh_mask=ffffffffffffe871
CR3 = 0x0000000001e0a000
PDPTR0 = 0x0000000001e0b001  PDPTR1 = 0x0000000001e0c001
PDPTR2 = 0x0000000001e0d001  PDPTR3 = 0x0000000001e0e001
RSP = 0x00000000c1a01f4c  RIP = 0x00000000c10380c6
RFLAGS=0x00010246         DR7 = 0x0000000000000400
Sysenter RSP=00000000c1b05000 CS:RIP=0060:00000000c15f6b70
CS:   sel=0x0060, attr=0x0c09b, limit=0xffffffff, base=0x0000000000000000
DS:   sel=0x007b, attr=0x0c0f3, limit=0xffffffff, base=0x0000000000000000
SS:   sel=0x0068, attr=0x0c093, limit=0xffffffff, base=0x0000000000000000
ES:   sel=0x007b, attr=0x0c0f3, limit=0xffffffff, base=0x0000000000000000
FS:   sel=0x00d8, attr=0x04093, limit=0xffffffff, base=0x000000001f3f8000
GS:   sel=0x00e0, attr=0x04091, limit=0x00000018, base=0x00000000c1b0b1e0
GDTR:                           limit=0x000000ff, base=0x00000000df9f1000
LDTR: sel=0x0000, attr=0x10000, limit=0x00000000, base=0x0000000000000000
IDTR:                           limit=0x000007ff, base=0x00000000fffba000
TR:   sel=0x0080, attr=0x0008b, limit=0x0000206b, base=0x00000000df9f6f00
EFER =     0x0000000000000800  PAT = 0x0007010600070106
DebugCtl = 0x0000000000000000  DebugExceptions = 0x0000000000004000
PerfGlobCtl = 0x000000070000000f
BndCfgS = 0x0000000000000000
Interruptibility = 00000001  ActivityState = 00000000
InterruptStatus = 0000
*** Host State ***
RIP = 0xffffffffc0b5e5a0  RSP = 0xffffa8ea019f3cb8
CS=0010 SS=0018 DS=0000 ES=0000 FS=0000 GS=0000 TR=0040
FSBase=00007f32a3f1b700 GSBase=ffff9b3a3fa00000 TRBase=fffffe0000034000
GDTBase=fffffe0000032000 IDTBase=fffffe0000000000
CR0=0000000080050033 CR3=000000040d2d8005 CR4=00000000003626e0
Sysenter RSP=fffffe0000034000 CS:RIP=0010:ffffffff87a01780
EFER = 0x0000000000000d01  PAT = 0x0407050600070106
PerfGlobCtl = 0x0000000000000000
*** Control State ***
PinBased=000000ff CPUBased=b5a06dfa SecondaryExec=000237eb
EntryControls=0000f3ff ExitControls=002fefff
ExceptionBitmap=00060042 PFECmask=00000000 PFECmatch=00000000
VMEntry: intr_info=800000ec errcode=00000000 ilen=00000000
VMExit: intr_info=00000000 errcode=00000000 ilen=00000003
        reason=80000021 qualification=0000000000000000
IDTVectoring: info=00000000 errcode=00000000
TSC Offset = 0xfffffd1ec0fc1a3a
TPR Threshold = 0x00
PostedIntrVec = 0xf2
EPT pointer = 0x000000040d2ce05e
CR3 target0=0000000000000000
PLE Gap=00000080 Window=00001000
Virtual processor ID = 0x0001
"""


def test_kvm_before_5_13_with_every_optional_line() -> None:
    d = parse_dump(KVM_OLD)
    assert d.layout == "kvm-pre-5.13" and not d.truncated
    f = d.fields
    assert f["GUEST_IA32_EFER"] == 0x800 and f["GUEST_IA32_PAT"] == 0x0007010600070106
    assert f["GUEST_IA32_PERF_GLOBAL_CTRL"] == 0x70000000F  # the guest's, not the host's 0
    assert f["GUEST_BNDCFGS"] == 0 and f["GUEST_PENDING_DBG_EXCEPTIONS"] == 0x4000
    assert f["GUEST_INTERRUPTIBILITY_INFO"] == 1 and f["GUEST_PDPTR2"] == 0x1E0D001
    assert (f["GUEST_SYSENTER_CS"], f["GUEST_SYSENTER_EIP"]) == (0x60, 0xC15F6B70)
    assert (f["GUEST_GS_LIMIT"], f["GUEST_GS_BASE"], f["GUEST_FS_AR_BYTES"]) == (0x18, 0xC1B0B1E0, 0x4093)
    assert (f["VM_ENTRY_INTR_INFO_FIELD"], f["VM_ENTRY_CONTROLS"]) == (0x800000EC, 0xF3FF)
    assert f["GUEST_RSP"] == 0xC1A01F4C and f["EPT_POINTER"] == 0x40D2CE05E
    assert "TERTIARY_VM_EXEC_CONTROL" not in f and "GUEST_S_CET" not in f
    assert not any("skipped" in n for n in d.notes), d.notes


# the newest layout: kvm_intel: prefix, 0x controls, TertiaryExec, (effective) EFER, MSR lists,
# CET (out of tree) and FRED (ExitControls on its own line)
KVM_6 = """\
[ 2311.499051] kvm_intel: VMCS 00000000336523a9, last attempted VM-entry on CPU 8
[ 2311.499052] kvm_intel: *** Guest State ***
[ 2311.499052] kvm_intel: CR0: actual=0x0000000080050033, shadow=0x0000000080050033, gh_mask=fffffffffffefff7
[ 2311.499053] kvm_intel: CR4: actual=0x0000000000f72ef0, shadow=0x0000000000f70ef0, gh_mask=fffffffffffef871
[ 2311.499053] kvm_intel: CR3 = 0x000000010b0e2004
[ 2311.499053] kvm_intel: PDPTR0 = 0x0000000000000000  PDPTR1 = 0x0000000000000000
[ 2311.499054] kvm_intel: PDPTR2 = 0x0000000000000000  PDPTR3 = 0x0000000000000000
[ 2311.499054] kvm_intel: RSP = 0xffffb7c9c00c3e80  RIP = 0xffffffff81f5b8a6
[ 2311.499055] kvm_intel: RFLAGS=0x00000246         DR7 = 0x0000000000000400
[ 2311.499055] kvm_intel: Sysenter RSP=fffffe4d12279000 CS:RIP=0010:ffffffff81e01d20
[ 2311.499056] kvm_intel: CS:   sel=0x0010, attr=0x0a09b, limit=0xffffffff, base=0x0000000000000000
[ 2311.499056] kvm_intel: DS:   sel=0x0000, attr=0x1c000, limit=0xffffffff, base=0x0000000000000000
[ 2311.499057] kvm_intel: SS:   sel=0x0018, attr=0x0c093, limit=0xffffffff, base=0x0000000000000000
[ 2311.499057] kvm_intel: ES:   sel=0x0000, attr=0x1c000, limit=0xffffffff, base=0x0000000000000000
[ 2311.499058] kvm_intel: FS:   sel=0x0000, attr=0x1c000, limit=0xffffffff, base=0x0000000000000000
[ 2311.499058] kvm_intel: GS:   sel=0x0000, attr=0x1c000, limit=0xffffffff, base=0xffff9e4a3fc00000
[ 2311.499059] kvm_intel: GDTR:                           limit=0x0000007f, base=0xfffffe4d12277000
[ 2311.499059] kvm_intel: LDTR: sel=0x0000, attr=0x1c000, limit=0xffffffff, base=0x0000000000000000
[ 2311.499060] kvm_intel: IDTR:                           limit=0x00000fff, base=0xfffffe0000000000
[ 2311.499060] kvm_intel: TR:   sel=0x0040, attr=0x0008b, limit=0x00004087, base=0xfffffe4d12279000
[ 2311.499061] kvm_intel: EFER= 0x0000000000000d01 (effective)
[ 2311.499061] kvm_intel: PAT = 0x0407050600070106
[ 2311.499061] kvm_intel: DebugCtl = 0x0000000000000000  DebugExceptions = 0x0000000000000000
[ 2311.499062] kvm_intel: Interruptibility = 00000000  ActivityState = 00000000
[ 2311.499062] kvm_intel: InterruptStatus = 00ec
[ 2311.499062] kvm_intel: MSR guest autoload:
[ 2311.499063] kvm_intel:    0: msr=0x00000600 value=0x0000000000000000
[ 2311.499063] kvm_intel: S_CET = 0x0000000000000004, SSP = 0xffffb7c9c00c7ff8, SSP TABLE = 0x0000000000000000
[ 2311.499064] kvm_intel: *** Host State ***
[ 2311.499064] kvm_intel: RIP = 0xffffffffc0ce2a90  RSP = 0xffffb1e34c4d3cb8
[ 2311.499064] kvm_intel: CS=0010 SS=0018 DS=0000 ES=0000 FS=0000 GS=0000 TR=0040
[ 2311.499065] kvm_intel: FSBase=00007f2f4be006c0 GSBase=ffff9f2bbf200000 TRBase=fffffe4d122bd000
[ 2311.499065] kvm_intel: GDTBase=fffffe4d122bb000 IDTBase=fffffe0000000000
[ 2311.499066] kvm_intel: CR0=0000000080050033 CR3=000000035dde6000 CR4=0000000000f52ef0
[ 2311.499066] kvm_intel: Sysenter RSP=fffffe4d122bd000 CS:RIP=0010:ffffffffa7e02020
[ 2311.499067] kvm_intel: PAT = 0x0407050600070106
[ 2311.499067] kvm_intel: S_CET = 0x0000000000000000, SSP = 0x0000000000000000, SSP TABLE = 0x0000000000000000
[ 2311.499067] kvm_intel: *** Control State ***
[ 2311.499068] kvm_intel: CPUBased=0xb5a26dfa SecondaryExec=0x061017fa TertiaryExec=0x0000000000000010
[ 2311.499068] kvm_intel: PinBased=0x000000ff EntryControls=0x001053ff
[ 2311.499068] kvm_intel: ExitControls=0x002befff SecondaryExitControls=0x0000000000000000
[ 2311.499069] kvm_intel: ExceptionBitmap=00060042 PFECmask=00000000 PFECmatch=00000000
[ 2311.499069] kvm_intel: VMEntry: intr_info=000000ec errcode=00000000 ilen=00000002 event_data=0000000000000000
[ 2311.499070] kvm_intel: VMExit: intr_info=00000000 errcode=00000000 ilen=00000003
[ 2311.499070] kvm_intel:         reason=80000021 qualification=0000000000000000
[ 2311.499071] kvm_intel: IDTVectoring: info=00000000 errcode=00000000 event_data=0000000000000000
[ 2311.499071] kvm_intel: TSC Offset = 0xffffa3b2e8c2e7e5
[ 2311.499072] kvm_intel: TSC Multiplier = 0x0001000000000000
[ 2311.499072] kvm_intel: SVI|RVI = 00|00 TPR Threshold = 0x00
[ 2311.499073] kvm_intel: APIC-access addr = 0x000000010d7d0000 virt-APIC addr = 0x000000010b07e000
[ 2311.499073] kvm_intel: PostedIntrVec = 0xf2
[ 2311.499074] kvm_intel: EPT pointer = 0x000000010e5bf05e
[ 2311.499074] kvm_intel: PLE Gap=00000080 Window=00001000
[ 2311.499075] kvm_intel: Virtual processor ID = 0x0002
"""


def test_kvm_6x_layout() -> None:
    d = parse_dump(KVM_6)
    assert d.layout == "kvm-6.x" and not d.truncated
    f = d.fields
    assert "GUEST_IA32_EFER" not in f  # "(effective)": KVM's value, not the VMCS field
    assert any("effective" in n for n in d.notes)
    assert f["GUEST_IA32_PAT"] == 0x0407050600070106
    assert (f["GUEST_S_CET"], f["GUEST_SSP"], f["GUEST_INTR_SSP_TABLE"]) == (4, 0xFFFFB7C9C00C7FF8, 0)  # guest's
    assert f["TERTIARY_VM_EXEC_CONTROL"] == 0x10 and f["CPU_BASED_VM_EXEC_CONTROL"] == 0xB5A26DFA
    assert (f["PIN_BASED_VM_EXEC_CONTROL"], f["VM_ENTRY_CONTROLS"], f["VM_EXIT_CONTROLS"]) == (0xFF, 0x1053FF, 0x2BEFFF)
    assert (f["VM_ENTRY_INTR_INFO_FIELD"], f["VM_ENTRY_INSTRUCTION_LEN"]) == (0xEC, 2)
    assert f["GUEST_DS_AR_BYTES"] == 0x1C000 and f["GUEST_TR_LIMIT"] == 0x4087
    assert f["GUEST_RSP"] == 0xFFFFB7C9C00C3E80 and f["EPT_POINTER"] == 0x10E5BF05E
    assert d.exit_reason == 0x80000021


def test_rarer_lines_and_prefixes() -> None:
    # a VMCS link pointer line (no upstream layout prints one), Xen console timestamps, a
    # SecondaryExitControls value that must not be read as ExitControls, libvirt's date prefix
    t = XEN.replace("(XEN) PreemptionTimer", "(XEN) VMCS link pointer = 0xffffffffffffffff\n(XEN) PreemptionTimer")
    t = t.replace("(XEN) ", "(XEN) [2024-03-01 10:20:30.123] ")
    d = parse_dump(t)
    assert d.fields["VMCS_LINK_POINTER"] == (1 << 64) - 1 and d.layout == "xen" and not d.truncated
    k = KVM_6.replace("SecondaryExitControls=0x0000000000000000", "SecondaryExitControls=0x0000000000000002")
    d = parse_dump(k)
    assert d.fields["VM_EXIT_CONTROLS"] == 0x2BEFFF and not any("again" in n for n in d.notes)
    d = parse_dump(TS.sub("2022-06-24T15:25:51.123456Z ", text(D03)) + "2022-06-24T15:25:52.000000Z "
                   "qemu-system-x86_64: KVM: entry failed, hardware error 0x80000021\n")
    assert dict(d.fields) == EXPECT_03 and d.exit_reason == 0x80000021


def test_vmfail_from_qemu_report_after_a_kvm_dump() -> None:
    t = TS.sub("", text(D03)).replace("reason=80000021", "reason=0000001e")
    d = parse_dump(t + "KVM: entry failed, hardware error 0x7\nEAX=00000000 EBX=00000000 ECX=00000000 EDX=00000663\n")
    assert d.vm_instruction_error == 7 and d.exit_reason == 0x1E and vm_fail(d) and not entry_failure(d)
    # the report's exit reason stands in for a dump that was cut before its reason line
    cut = text(D04)[: text(D04).index("Jun 24 17:25:51 testhost kernel: *** Host State")]
    d = parse_dump(cut + "Jun 24 17:25:51 testhost QEMU[2997]: KVM: entry failed, hardware error 0x80000021\n")
    assert d.exit_reason == 0x80000021 and d.truncated and any("failure report" in n for n in d.notes)


def test_layout_hints_on_short_texts() -> None:
    assert parse_dump(TS.sub("", text(D03))).layout == "kvm-pre-5.13"
    assert parse_dump(strip_journal(text(D04))).layout == "kvm-5.13"
    assert parse_dump(text(D16).replace("kvm_intel: ", "")).layout == "kvm-5.13"  # header, no 6.x hint left


# --- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "message"), [
    ("", "empty"),
    ("   \n\t\r\n  ", "empty"),
    (bytes(range(256)).decode("utf-8", errors="replace") * 4, "binary"),
    (random.Random(1).randbytes(4096).decode("utf-8", errors="replace"), "binary"),
    ("Hi,\n\nthe guest hangs at boot with kvm. Any idea?\n", "no VMCS dump found"),
    ("[  12.1] kvm_intel: set kvm_intel.dump_invalid_vmcs=1 to dump internal KVM state.\n", "dump_invalid_vmcs=1"),
])
def test_bad_input_is_one_line(bad: str, message: str) -> None:
    with pytest.raises(DumpError, match=re.escape(message)) as info:
        parse_dump(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("old", "new", "field"), [
    ("Interruptibility = 00000009", "Interruptibility = 100000009", "GUEST_INTERRUPTIBILITY_INFO"),
    ("CS:   sel=0xc200", "CS:   sel=0x1c200", "GUEST_CS_SELECTOR"),
    ("RIP = 0x0000000000008000", "RIP = 0x10000000000008000", "GUEST_RIP"),
    ("PinBased=000000ff", "PinBased=1000000ff", "PIN_BASED_VM_EXEC_CONTROL"),
    ("reason=80000021", "reason=180000021", "exit reason"),
])
def test_value_too_wide_names_the_line(old: str, new: str, field: str) -> None:
    t = text(D04)
    assert old in t
    line = t[: t.index(old)].count("\n") + 1
    with pytest.raises(DumpError, match=rf"^line {line}: .*{re.escape(field)}") as info:
        parse_dump(t.replace(old, new))
    assert "\n" not in str(info.value)
