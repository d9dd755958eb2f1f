"""The command line: every command, every exit status, every class of bad input (one line
on stderr, status 2, never a traceback), and the --json schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vmxkb.cli import main

ROOT = Path(__file__).resolve().parent.parent
STATES = ROOT / "examples/states"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_with_after_entry_effects(capsys) -> None:
    code, out, _ = run(capsys, "check", str(STATES / "long-mode-valid.json"))
    assert code == 0
    assert out.startswith("verdict: passes")
    assert "POST_INTR_NONVECTORING_LOADS_SHADOW" in out and "POST_INJ_NO_DEBUG_REGISTER_UPDATE" in out


def test_check_fails_naming_rule_fields_section_and_page(capsys) -> None:
    code, out, _ = run(capsys, "check", str(STATES / "movss-tf-no-bs.json"))
    assert code == 1
    assert "ENTRY_GUEST_PDE_BS_REQUIRED_TF" in out
    assert "GUEST_PENDING_DBG_EXCEPTIONS=0x0" in out and "GUEST_RFLAGS=0x302" in out
    assert "§29.3.1.5 (E6, c)" in out
    assert "_build/html/id/ENTRY_GUEST_PDE_BS_REQUIRED_TF.html" in out


def test_check_edition_changes_the_section_number(capsys) -> None:
    code, out, _ = run(capsys, "check", "--edition", "E3a", str(STATES / "movss-tf-no-bs.json"))
    assert code == 1 and "§26.3.1.5 (E3a, v)" in out


def test_check_json_schema(capsys) -> None:
    code, out, _ = run(capsys, "check", "--json", str(STATES / "sti-blocking-if0.json"))
    data = json.loads(out)
    assert code == 1
    assert data["schema"] == "vmxkb.check/1" and data["verdict"] == "fails"
    v = next(x for x in data["violations"] if x["id"] == "ENTRY_GUEST_INTR_STI_NEEDS_IF")
    assert v["fields"] == {"GUEST_INTERRUPTIBILITY_INFO": "0x9", "GUEST_RFLAGS": "0x2"}
    assert v["sdm"]["section"] == "29.3.1.5" and v["sdm"]["edition"] == "E6"
    assert set(data) >= {"verdict", "violations", "not_evaluated", "after_entry"}


def test_check_incomplete_is_status_3(tmp_path: Path, capsys) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps({"GUEST_RFLAGS": "0x202", "GUEST_INTERRUPTIBILITY_INFO": 0}))
    code, out, _ = run(capsys, "check", str(f))
    assert code == 3 and out.startswith("verdict: incomplete") and "not evaluated" in out


def test_check_reads_toml_yaml_and_stdin(tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, _ = run(capsys, "check", str(STATES / "partial-seed.toml"))
    assert code == 1
    y = tmp_path / "s.yaml"
    y.write_text("GUEST_RFLAGS: 0x302\nGUEST_INTERRUPTIBILITY_INFO: 2\nGUEST_ACTIVITY_STATE: 0\n"
                 "GUEST_PENDING_DBG_EXCEPTIONS: 0\nGUEST_IA32_DEBUGCTL: 0\nVM_ENTRY_INTR_INFO_FIELD: 0\n")
    code, out, _ = run(capsys, "check", str(y))
    assert code == 1 and "ENTRY_GUEST_PDE_BS_REQUIRED_TF" in out
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((STATES / "movss-tf-no-bs.json").read_bytes())))
    code, out, _ = run(capsys, "check", "-")
    assert code == 1 and "ENTRY_GUEST_PDE_BS_REQUIRED_TF" in out


def test_check_profile_changes_the_answer(tmp_path: Path, capsys) -> None:
    f = tmp_path / "hlt.json"
    f.write_text(json.dumps({"GUEST_ACTIVITY_STATE": 1, "GUEST_SS_AR_BYTES": "0xc093"}))
    p = tmp_path / "no-hlt.toml"
    p.write_text("activity_states = [0, 2, 3]\n")
    _, out_default, _ = run(capsys, "check", str(f))
    code, out, _ = run(capsys, "check", "--profile", str(p), str(f))
    assert "ENTRY_GUEST_ACT_VALUE_SUPPORTED" not in out_default
    assert code == 1 and "ENTRY_GUEST_ACT_VALUE_SUPPORTED" in out


BAD_STATES = {
    "unknown-field": ('{"GUEST_RFLAG": 2}', "did you mean GUEST_RFLAGS"),
    "malformed-number": ('{"GUEST_RFLAGS": "0xZZ"}', "not a number"),
    "bool-number": ('{"GUEST_RFLAGS": true}', "not a number"),
    "too-wide": ('{"GUEST_SS_SELECTOR": "0x10000"}', "does not fit in 16 bits"),
    "not-a-mapping": ("[1, 2, 3]", "mapping"),
    "garbage": ("[unclosed, {", "not a JSON, TOML or YAML mapping"),
    "prose": ("this is : not a state", "unknown VMCS field"),
    "empty": ("", "is empty"),
    "whitespace": ("  \n\t\n", "is empty"),
}


@pytest.mark.parametrize("name", sorted(BAD_STATES))
def test_bad_state_is_one_line_and_status_2(name: str, tmp_path: Path, capsys) -> None:
    text, expected = BAD_STATES[name]
    f = tmp_path / "bad"
    f.write_text(text)
    code, out, err = run(capsys, "check", str(f))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("vmxkb: error: ") and expected in err, err


def test_binary_junk_and_missing_file_and_bad_profile(tmp_path: Path, capsys) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    for argv, expected in (
        (["check", str(junk)], "binary"),
        (["check", "--dmesg", str(junk)], "binary"),
        (["check", str(tmp_path / "nope.json")], "cannot read"),
        (["review", str(junk)], "binary"),
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and expected in err, (argv, err)
    prof = tmp_path / "p.toml"
    prof.write_text('maxphyaddr = 99\nbogus = 1\n')
    code, _, err = run(capsys, "check", "--profile", str(prof), str(STATES / "long-mode-valid.json"))
    assert code == 2 and err.count("\n") == 1 and "maxphyaddr" in err and "bogus" in err


def test_usage_errors_are_one_line(capsys) -> None:
    for argv in (["frobnicate"], ["check"], ["cite", "X", "--edition", "E9"], []):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, (argv, err)


def test_explain_shows_clause_rule_scenarios_behaviours_deviations(capsys) -> None:
    code, out, _ = run(capsys, "explain", "ENTRY_GUEST_PDE_BS_REQUIRED_TF")
    assert code == 0
    for part in ("status: executable", "E3a: 26.3.1.5 (v)", "SCN_PDE_BS_MISSING_STI_DB (fails)",
                 "KVM_VMX_BS_ON_INJECTED_DB", "DEV_MIGRATION_LOSES_PENDING_DBG", "pde_bs_required_tf"):
        assert part in out, part
    code, out, _ = run(capsys, "explain", "--json", "entry.guest.pde.bs.required.tf")
    data = json.loads(out)
    assert code == 0 and data["id"] == "ENTRY_GUEST_PDE_BS_REQUIRED_TF" and len(data["scenarios"]) >= 2


def test_explain_unknown_id_suggests_and_section_number_lists(capsys) -> None:
    code, _, err = run(capsys, "explain", "ENTRY_GUEST_PDE_BS_REQUIRD_TF")
    assert code == 2 and "nearest: ENTRY_GUEST_PDE_BS_REQUIRED_TF" in err
    code, out, _ = run(capsys, "explain", "26.3.1.5")
    assert code == 0 and "E3a, E3b" in out and "29.3.1.5 (E6, c)" in out and "ENTRY_GUEST_PDE_BS_REQUIRED_TF" in out
    code, _, err = run(capsys, "explain", "99.1.2")
    assert code == 2 and "not a section number" in err


def test_cite_is_one_line_per_edition(capsys) -> None:
    code, out, _ = run(capsys, "cite", "ENTRY_GUEST_INTR_STI_NEEDS_IF")
    assert code == 0 and out.count("\n") == 1 and "§29.3.1.5" in out and "E6" in out
    code, out, _ = run(capsys, "cite", "ENTRY_GUEST_INTR_STI_NEEDS_IF", "--edition", "E1")
    assert "§22.3.1.5" in out and "E1" in out
    code, out, _ = run(capsys, "cite", "--json", "ENTRY_GUEST_INTR_STI_NEEDS_IF")
    assert json.loads(out)["sdm"]["section"] == "29.3.1.5"


def test_list_and_area_filter(capsys) -> None:
    code, out, _ = run(capsys, "list")
    assert code == 0 and "ENTRY_GUEST_PDE_BS_REQUIRED_TF" in out and "BM_STI_SHADOW" in out
    code, out, _ = run(capsys, "list", "--area", "bare_metal", "--json")
    ids = [r["id"] for r in json.loads(out)["rules"]]
    assert ids and all(i.startswith("BM_") for i in ids)


PATCH = """\
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
Subject: [PATCH] KVM: VMX: example touching the pending debug exceptions

Cites ENTRY_GUEST_PDE_BS_REQUIRED_TF and ENTRY_GUEST_PDE_BS_REQURED (a typo), and the
SDM 26.3.1.5 and SDM 29.7.3.
---
diff --git a/arch/x86/kvm/vmx/vmx.c b/arch/x86/kvm/vmx/vmx.c
--- a/arch/x86/kvm/vmx/vmx.c
+++ b/arch/x86/kvm/vmx/vmx.c
@@ -10,6 +10,8 @@ void vmx_inject_exception(struct kvm_vcpu *vcpu)
 	u32 x = 0;
+	if (needs_bs(vcpu))
+		vmcs_set_bits(GUEST_PENDING_DBG_EXCEPTIONS, DR6_BS);
 	return;
"""


def test_review_finds_rules_and_checks_citations(tmp_path: Path, capsys) -> None:
    f = tmp_path / "p.patch"
    f.write_text(PATCH)
    code, out, _ = run(capsys, "review", "--json", str(f))
    data = json.loads(out)
    assert code == 1  # a typo'd rule ID and an old-edition number
    assert data["fields"] == ["GUEST_PENDING_DBG_EXCEPTIONS"]
    assert "vmx_inject_exception" in data["functions"]
    rules = {r["id"] for r in data["rules"]}
    assert {"ENTRY_GUEST_PDE_BS_REQUIRED_TF", "ENTRY_GUEST_PDE_RESERVED_ZERO"} <= rules
    assert "KVM_VMX_BS_ON_INJECTED_DB" in {b["id"] for b in data["behaviours"]}
    cited = {c["id"]: c for c in data["cited_ids"]}
    assert cited["ENTRY_GUEST_PDE_BS_REQUIRED_TF"]["exists"] and not cited["ENTRY_GUEST_PDE_BS_REQURED"]["exists"]
    sections = {c["number"]: c for c in data["cited_sections"]}
    assert not sections["26.3.1.5"]["current"] and sections["29.7.3"]["current"]
    assert any("26.3.1.5" in p and "29.3.1.5" in p for p in data["problems"])


def test_review_clean_patch_is_status_0_and_no_diff_is_2(tmp_path: Path, capsys) -> None:
    f = tmp_path / "ok.patch"
    f.write_text(PATCH.replace(" and ENTRY_GUEST_PDE_BS_REQURED (a typo)", "").replace("SDM 26.3.1.5", "SDM 29.3.1.5"))
    code, out, _ = run(capsys, "review", str(f))
    assert code == 0 and "no problems found" in out
    g = tmp_path / "mail.txt"
    g.write_text("Subject: Re: [PATCH] something\n\nLooks good to me.\n")
    code, _, err = run(capsys, "review", str(g))
    assert code == 2 and "no diff" in err and err.count("\n") == 1


def test_cli_imports_no_sphinx() -> None:
    code = ("import sys, vmxkb.cli as c, vmxkb.review, vmxkb.dump; c.main(['list']);"
            "bad=[m for m in sys.modules if m.split('.')[0] in ('sphinx','sphinx_needs','docutils','myst_parser','yaml')];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("[]"), out


def test_console_script_help_exits_0() -> None:
    r = subprocess.run([sys.executable, "-m", "vmxkb", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage: vmxkb" in r.stdout


def test_review_reads_numbers_in_context_only() -> None:
    from vmxkb.review import _cited_numbers

    text = "Tested on Linux 6.8.1 and 5.13.2. Per SDM Vol. 3C 27.3.1.5 and 28.7.1, and section 6.8.3."
    assert _cited_numbers(text) == ["27.3.1.5", "28.7.1", "6.8.3"]


def test_cli_reference_page_follows_the_live_parser() -> None:
    """docs/cli.md renders --help live ({vmx-cli-help}); its prose must still name every
    command the parser has, and no command it does not have."""
    import re

    from vmxkb.sphinxext import cli_help_texts

    page = (ROOT / "docs/cli.md").read_text()
    assert "```{vmx-cli-help}" in page
    commands = {k.split()[1] for k in cli_help_texts() if " " in k}
    documented = set(re.findall(r"`vmxkb (\w+)`", page))
    assert commands == documented, (commands, documented)


DUMPS = ROOT / "tests/dumps"


def test_dmesg_real_dumps_give_their_stated_causes(capsys) -> None:
    """../shared/dumps, kept in tests/dumps with their sources (SOURCE.md)."""
    code, out, _ = run(capsys, "check", "--dmesg", "--json", str(DUMPS / "03-kvm-2021-core2duo-ds-es-not-accessed/dump.txt"))
    data = json.loads(out)
    assert code == 1 and data["verdict"] == "fails"
    assert {(v["id"], tuple(v["fields"])) for v in data["violations"]} == {
        ("ENTRY_GUEST_SEG_DATA_ACCESSED", ("GUEST_DS_AR_BYTES",)), ("ENTRY_GUEST_SEG_DATA_ACCESSED", ("GUEST_ES_AR_BYTES",))}
    code, out, _ = run(capsys, "check", "--dmesg", "--json", str(DUMPS / "04-kvm-2022-proxmox-smm-sti-blocking-if0/dump.txt"))
    data = json.loads(out)
    assert code == 1 and [v["id"] for v in data["violations"]] == ["ENTRY_GUEST_INTR_STI_NEEDS_IF"]
    assert data["violations"][0]["fields"] == {"GUEST_INTERRUPTIBILITY_INFO": "0x9", "GUEST_RFLAGS": "0x2"}
    assert data["dump"]["exit_reason"] == "0x80000021"
    code, out, _ = run(capsys, "check", "--dmesg", str(DUMPS / "16-kvm-2026-coconut-svsm-ci-nested-partial/dump.txt"))
    assert code == 3 and out.startswith("verdict: incomplete") and "stops before its end" in out


def _dump04() -> str:
    return (DUMPS / "04-kvm-2022-proxmox-smm-sti-blocking-if0/dump.txt").read_text()


def test_dmesg_ordinary_exit_is_not_diagnosed(tmp_path: Path, capsys) -> None:
    f = tmp_path / "exit.txt"
    f.write_text(_dump04().replace("reason=80000021", "reason=0000001e").replace("hardware error 0x80000021", ""))
    code, out, _ = run(capsys, "check", "--dmesg", str(f))
    assert code == 0 and out.startswith("verdict: not an entry failure") and "0x1e" in out
    assert "ENTRY_GUEST" not in out


def test_dmesg_msr_load_failure_is_read_as_such(tmp_path: Path, capsys) -> None:
    text = _dump04().replace("reason=80000021", "reason=80000022").replace("qualification=0000000000000000", "qualification=0000000000000002")
    text = text.replace("Interruptibility = 00000009", "Interruptibility = 00000000")
    f = tmp_path / "msr.txt"
    f.write_text(text)
    code, out, _ = run(capsys, "check", "--dmesg", str(f))
    assert "MSR loading" in out and "entry 2 of the VM-entry MSR-load area" in out
    assert code == 3  # no guest-state rule explains it: the MSR-load area is not in the dump


def test_dmesg_no_dump_is_bad_input(tmp_path: Path, capsys) -> None:
    f = tmp_path / "mail.txt"
    f.write_text("Hi all,\n\nmy guest crashed with KVM: entry failed. Any idea?\n")
    code, out, err = run(capsys, "check", "--dmesg", str(f))
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("vmxkb: error: ")


def test_dmesg_vmfail_is_read_as_a_vmfail(tmp_path: Path, capsys) -> None:
    text = _dump04().replace("hardware error 0x80000021", "hardware error 0x7").replace(
        "VMEntry: intr_info=00000000", "VMEntry: intr_info=80000100")
    f = tmp_path / "vmfail.txt"
    f.write_text(text)
    code, out, _ = run(capsys, "check", "--dmesg", "--json", str(f))
    data = json.loads(out)
    assert code == 1 and data["dump"]["vm_instruction_error"] == 7
    assert data["outcome"] == "VMfailValid, VM-instruction error 7"
    assert "ENTRY_CTRL_INJ_TYPE_VALID" in [v["id"] for v in data["violations"]]
    assert any("previous VM exit" in n for n in data["notes"])


def test_cite_accepts_a_section_number_of_any_edition(capsys) -> None:
    code, out, _ = run(capsys, "cite", "26.3.1.5")
    assert code == 0 and out == 'SDM Vol. 3C §29.3.1.5 (E6, c) "Checks on Guest Non-Register State"; 26.3.1.5 in E3a/E3b\n'
    code, out, _ = run(capsys, "cite", "26.3.1.5", "--edition", "E3a")
    assert out == 'SDM Vol. 3C §26.3.1.5 (E3a, v) "Checks on Guest Non-Register State"\n'
    code, _, err = run(capsys, "cite", "77.7")
    assert code == 2 and "not a section number" in err


def test_cite_prints_the_permalink_under_the_configured_base(capsys, monkeypatch) -> None:
    monkeypatch.setenv("VMXKB_BASE_URL", "https://vmxkb.example.org/")
    code, out, _ = run(capsys, "cite", "ENTRY_GUEST_INTR_STI_NEEDS_IF")
    assert out.rstrip().endswith("<https://vmxkb.example.org/id/ENTRY_GUEST_INTR_STI_NEEDS_IF.html>")
    monkeypatch.delenv("VMXKB_BASE_URL")
    code, out, _ = run(capsys, "cite", "ENTRY_GUEST_INTR_STI_NEEDS_IF")
    assert out.rstrip().endswith("<_build/html/id/ENTRY_GUEST_INTR_STI_NEEDS_IF.html>")


def test_an_error_quoting_control_characters_stays_one_line(capsys) -> None:
    """Found by make fuzz (tests/fuzz_regressions/lookups-60d19145163d.json): argparse quoted a
    form feed from the command line into the error, which then printed as two lines."""
    from vmxkb.cli import main

    assert main(["cite", "--", "-", "--edition", "\f"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vmxkb: error: ") and "\\x0c" in err


# --- the quick path for a plain `check` (vmxkb.cli.quick_check) agrees with argparse ----------

_WORDS = ["check", "explain", "--dmesg", "--json", "--profile", "--edition", "--edition=E6", "--dm",
          "--", "-", "-h", "--help", "E3a", "E6", "E9", "state.json", "dump.txt", "-x", "-1", "a b", "", "--js"]


def _argparse_reading(argv: list[str]) -> dict | None:
    from vmxkb.cli import InputError, build_parser

    try:
        return vars(build_parser().parse_args(argv))
    except (InputError, SystemExit):
        return None


@pytest.mark.parametrize("argv", [
    ["check", "state.json"], ["check", "--dmesg", "dump.txt", "--json"], ["check", "-"],
    ["check", "--edition", "E3a", "--profile", "p.toml", "s.json"], ["check", "s.json", "--json", "--json"],
])
def test_quick_check_reads_plain_checks_as_argparse_does(argv: list[str]) -> None:
    from vmxkb.cli import quick_check

    quick = quick_check(argv)
    assert quick is not None and vars(quick) == _argparse_reading(argv)


@pytest.mark.parametrize("argv", [
    ["check"], ["check", "a", "b"], ["check", "--help"], ["check", "--dm", "d.txt"], ["check", "--edition=E6", "s"],
    ["check", "--edition", "E9", "s"], ["check", "--profile", "-", "s"], ["check", "--", "s"], ["explain", "X"], [],
])
def test_quick_check_leaves_the_rest_to_argparse(argv: list[str]) -> None:
    from vmxkb.cli import quick_check

    assert quick_check(argv) is None


def test_quick_check_never_disagrees_with_argparse() -> None:
    """On generated command lines the quick path either declines or gives argparse's reading."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from vmxkb.cli import quick_check

    @settings(max_examples=400, derandomize=True, deadline=None)
    @given(st.lists(st.sampled_from(_WORDS), max_size=6).map(lambda xs: ["check", *xs]))
    def agree(argv: list[str]) -> None:
        quick = quick_check(argv)
        if quick is not None:
            assert vars(quick) == _argparse_reading(argv), argv

    agree()
