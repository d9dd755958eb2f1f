"""Generated gate breakages (tests/breakages.py): the set is generated from the knowledge base,
and a sample of it (one breakage, its class rotating with a printed seed) must fail a clean
and an incremental build, naming the item and its file, and pass again once undone.
The full set runs with `make breakages`."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

_spec = importlib.util.spec_from_file_location("vmxkb_test_breakages", Path(__file__).with_name("breakages.py"))
breakages = sys.modules.setdefault("vmxkb_test_breakages", importlib.util.module_from_spec(_spec))  # type: ignore[arg-type]
_spec.loader.exec_module(breakages)  # type: ignore[union-attr]

#: the breakage classes the issue names, each of which must be generated
REQUIRED = (
    "delete-need:clause", "delete-need:behaviour", "delete-need:deviation", "delete-need:patch",
    "delete-need:section", "delete-rule", "unregister-rule", "delete-scenario", "flip-scenario",
    "link-missing:sdm", "reference-missing", "duplicate-id:clause", "duplicate-id:scenario",
    "detach-doctest", "kvm-diverge", "unknown-edition", "delete-scenario:mutant",
)


def test_the_set_is_generated_from_the_knowledge_base() -> None:
    every = breakages.generate()
    counts = Counter(b.cls for b in every)
    assert len(every) >= 200
    assert not [c for c in REQUIRED if not counts[c]], counts
    assert len({b.edits for b in every}) == len(every)  # no two breakages are the same edit
    assert len({b.key for b in every}) == len(every)  # the key the run records is unique
    root = breakages.ROOT
    for b in every:
        assert b.item and b.files
        for rel, new in b.edits:
            assert new != (root / rel).read_text(encoding="utf-8"), b.name
    # one per rule, per scenario and per hand-written need: the counts follow the code and docs
    from vmxkb.registry import REGISTRY
    from vmxkb.sdm import load_all

    load_all()
    assert counts["delete-rule"] == counts["unregister-rule"] == len(REGISTRY)
    n_scenarios = sum(len(r.scenarios) for r in REGISTRY.values())
    assert counts["flip-scenario"] == counts["detach-doctest"] == n_scenarios
    # every deletion not generated is accounted for (nothing else records the item)
    unrecorded = breakages.UNRECORDED[str(root)]
    assert counts["delete-scenario"] + counts["delete-scenario:mutant"] + len(unrecorded["scenario"]) == n_scenarios
    hand = list(breakages._doc_needs(root))
    deleted = sum(n for c, n in counts.items() if c.startswith("delete-need:") and c != "delete-need:section")
    assert deleted + len(unrecorded["need"]) == len(hand)
    for sid in unrecorded["scenario"]:  # each leaves its rule with both outcomes
        r = next(r for r in REGISTRY.values() if sid in {s.id for s in r.scenarios})
        s = next(s for s in r.scenarios if s.id == sid)
        assert [x.expect for x in r.scenarios].count(s.expect) > 1


def test_a_sampled_breakage_fails_clean_and_incremental_builds(tmp_path: Path) -> None:
    seed = int(os.environ.get("VMXKB_BREAKAGE_SEED", int(time.time()) // 3600))
    (b,) = breakages.sample(breakages.generate(), 1, seed)
    print(f"breakage sample seed {seed} (VMXKB_BREAKAGE_SEED={seed} to rerun): {b.name}")
    (r,) = breakages.run([b], jobs=1, workdir=tmp_path, log=lambda s: None)
    assert r.ok, f"seed {seed}: {b.name} not caught: incremental={r.incremental} clean={r.clean} undone={r.undone}: {r.detail}"


def test_the_checker_rejects_a_build_that_does_not_name_the_item() -> None:
    b = breakages.Breakage("delete-rule", "ENTRY_X", ("rules/vmxkb/sdm/x.py",), ())
    named = "rules/vmxkb/sdm/x.py: vmxkb gate: rule ENTRY_X (f) has no clause need"
    assert breakages.names_item(named, b)
    assert not breakages.names_item("rules/vmxkb/sdm/x.py: vmxkb gate: something else", b)
    assert not breakages.names_item("docs/y.md: ENTRY_X", b)
    import subprocess

    ok = subprocess.CompletedProcess([], 1, "", named)
    assert breakages._check(ok, b) == (True, "")
    crash = subprocess.CompletedProcess([], 2, "", named + "\nTraceback\n    KeyError: 'SEC_X'\n")
    assert breakages._check(crash, b) == (False, "the build crashed: KeyError: 'SEC_X'")
    assert breakages._check(subprocess.CompletedProcess([], 0, "", ""), b) == (False, "build passed")


def test_the_record_is_keyed_by_the_tree_and_resume_counts_only_its_own(tmp_path: Path, monkeypatch, capsys) -> None:
    root = breakages.ROOT
    copy = breakages.copy_tree(tmp_path / "copy")
    assert breakages.fingerprint(copy) == breakages.fingerprint(root)
    page = copy / "docs" / "index.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nan edit\n", encoding="utf-8")
    assert breakages.fingerprint(copy) != breakages.fingerprint(root)

    first = breakages.interleave(breakages.generate())[0]
    monkeypatch.setattr(breakages, "RECORDS", tmp_path / "runs")
    monkeypatch.setattr(breakages, "REPORT", tmp_path / "report.md")
    fp = breakages.fingerprint()
    (tmp_path / "runs").mkdir()
    line = {"key": first.key, "name": first.name, "cls": first.cls, "incremental": True, "clean": True,
            "undone": True, "detail": ""}
    # a record of another tree is not counted: nothing is skipped (checked with --list-like dry run below)
    (tmp_path / "runs" / "0000000000000000.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    # the last line for a name wins: an earlier miss, then a catch
    miss = dict(line, clean=False, detail="clean: build passed")
    # and a line cut short by an interrupted run is skipped
    (tmp_path / "runs" / f"{fp}.jsonl").write_text(json.dumps(miss) + "\n" + json.dumps(line) + "\n"
                                                   + json.dumps(miss)[:20], encoding="utf-8")
    assert breakages.read_record(tmp_path / "runs" / f"{fp}.jsonl")[first.key]["clean"] is True
    # a breakage of the same name but other edits is not the recorded one
    other = breakages.Breakage(first.cls, first.item, first.files, (("docs/x.md", "other"),))
    assert other.name == first.name and other.key != first.key
    assert breakages.main(["--limit", "1", "--resume"]) == 0  # the one breakage is recorded as caught: none run
    out = capsys.readouterr().out
    assert "--resume: 1 already caught on this tree (recorded), 0 to run" in out
    assert f"{first.cls:28}     1           1            1           1" in out
    # a recorded miss is run again
    (tmp_path / "runs" / f"{fp}.jsonl").write_text(json.dumps(miss) + "\n", encoding="utf-8")
    monkeypatch.setattr(breakages, "run", lambda chosen, *a, **k: [breakages.Result(b, True, True, True) for b in chosen])
    assert breakages.main(["--limit", "1", "--resume"]) == 0
    assert "--resume: 0 already caught on this tree (recorded), 1 to run" in capsys.readouterr().out
    # the run wrote the set line (the counts per class this tree generates) and the report
    assert breakages.read_set(tmp_path / "runs" / f"{fp}.jsonl") == dict(Counter(b.cls for b in breakages.generate()))
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == breakages.report(tmp_path / "runs")


def test_the_committed_report_is_current() -> None:
    committed = breakages.REPORT.read_text(encoding="utf-8")
    assert committed == breakages.report(), "docs/_generated/breakage-records.md is stale: run python tests/breakages.py --report"


def test_the_report_says_complete_only_when_every_breakage_of_the_set_was_caught(tmp_path: Path) -> None:
    rec = tmp_path / "abc.jsonl"

    def line(key: str, cls: str, **k) -> str:
        r = {"key": key, "name": key, "cls": cls, "incremental": True, "clean": True, "undone": True,
             "detail": "", "at": "2026-12-03T10:00:00Z"}
        return json.dumps(dict(r, **k)) + "\n"

    head = json.dumps({"set": {"a": 2, "b": 1}, "total": 3, "fingerprint": "abc"}) + "\n"
    rec.write_text(head + line("a1", "a") + line("a2", "a") + line("b1", "b"), encoding="utf-8")
    md = breakages.report(tmp_path)
    assert "**complete**" in md and "0 not caught" in md and "| **all** | 3 | 3 | 3 | 3 | 3 |" in md
    rec.write_text(head + line("a1", "a") + line("b1", "b"), encoding="utf-8")  # one not yet run
    md = breakages.report(tmp_path)
    assert "**not complete**: 2 of 3 caught so far" in md and "| a | 2 | 1 | 1 | 1 | 1 |" in md
    rec.write_text(head + line("a1", "a") + line("a2", "a", clean=False) + line("b1", "b"), encoding="utf-8")
    md = breakages.report(tmp_path)  # one missed by the clean build
    assert "**not complete**: 2 of 3 caught so far; 1 not caught" in md and "| a | 2 | 2 | 2 | 1 | 2 |" in md
    rec.write_text(line("a1", "a"), encoding="utf-8")  # no set line: the size of the set is not known
    md = breakages.report(tmp_path)
    assert "**not complete**: 1 caught so far, of a set whose size the record does not give" in md and "| a | ? | 1 |" in md
    assert "No full-set run is recorded." in breakages.report(tmp_path / "none")
