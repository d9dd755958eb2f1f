"""Incremental builds: a rebuild re-reads what changed and re-writes what shows it, and is
still correct (docs/gate.md, "Incremental builds").

One tree is built clean once; each test edits it, rebuilds incrementally and checks the
pages, needs.json and which documents Sphinx read and wrote. The tests run in file order
and each leaves the tree passing again.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = "docs/sdm/guest_non_register.md"
HTML = "_build/html"


def _build(tree: Path) -> subprocess.CompletedProcess[str]:
    """`make html`'s build, not quiet: Sphinx's log names what it reads and writes."""
    env = {"PYTHONPATH": str(tree / "rules"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-c", str(tree), "-W", "--keep-going", "-b", "html",
         str(tree / "docs"), str(tree / HTML)], capture_output=True, text=True, env=env, check=False)


def _docs(log: str, phase: str) -> set[str]:
    """The documents of one phase ("reading sources", "writing output") in Sphinx's log."""
    return {m[1] for m in re.finditer(rf"{phase}\.\.\. \[\s*\d+%\] (\S+)", log)}


def _need(tree: Path, nid: str) -> dict:
    data = json.loads((tree / HTML / "needs.json").read_text())
    return next(iter(data["versions"].values()))["needs"][nid]


def _edit(tree: Path, rel: str, old: str, new: str) -> None:
    path = tree / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def built(tmp_path_factory, copy_repo) -> Path:
    tree = copy_repo(tmp_path_factory.mktemp("incremental") / "repo")
    r = _build(tree)
    assert r.returncode == 0, r.stderr
    return tree


def test_nothing_changed_reads_only_the_command_line_pages(built: Path) -> None:
    r = _build(built)
    assert r.returncode == 0, r.stderr
    # the pages that run the command line at build time read code and docs: always re-read
    assert _docs(r.stdout, "reading sources") <= {"cli"}, r.stdout
    assert "vmxkb gate:" in r.stdout and "all covered" in r.stdout  # the gate ran over everything


def test_edited_clause_text_reaches_its_page_and_needs_json(built: Path) -> None:
    _edit(built, PAGE, "HLT may be the activity state only when SS.DPL", "(edit A) HLT may be the activity state only when SS.DPL")
    r = _build(built)
    assert r.returncode == 0, r.stderr
    assert "sdm/guest_non_register" in _docs(r.stdout, "reading sources")
    assert "(edit A)" in (built / HTML / "sdm/guest_non_register.html").read_text()
    assert "(edit A)" in _need(built, "ENTRY_GUEST_ACT_HLT_NEEDS_CPL0")["content"]
    # a text edit changes nothing another page shows: only the toctree parent is re-written
    assert _docs(r.stdout, "writing output") <= {"sdm/guest_non_register", "index", "cli"}, r.stdout


def test_edited_title_refreshes_the_tables_on_other_pages(built: Path) -> None:
    _edit(built, PAGE, "```{clause} HLT activity state needs SS.DPL=0", "```{clause} HLT activity state needs SS.DPL=0 (retitled)")
    r = _build(built)
    assert r.returncode == 0, r.stderr
    written = _docs(r.stdout, "writing output")
    assert {"traceability", "coverage"} <= written, written  # the pages with need tables
    assert "SS.DPL=0 (retitled)" in (built / HTML / "coverage.html").read_text()
    assert _need(built, "ENTRY_GUEST_ACT_HLT_NEEDS_CPL0")["title"].endswith("(retitled)")


def test_new_link_shows_as_a_back_link_on_the_target_page(built: Path) -> None:
    # a KVM behaviour (docs/kvm/behaviours.md) now also touches a clause of another page
    page = built / "docs/kvm/behaviours.md"
    text = page.read_text()
    m = re.search(r"^:touches:(.*)$", text, re.M)
    assert m
    _edit(built, "docs/kvm/behaviours.md", m[0], m[0] + ", ENTRY_GUEST_ACT_HLT_NEEDS_CPL0")
    r = _build(built)
    assert r.returncode == 0, r.stderr
    assert "sdm/guest_non_register" in _docs(r.stdout, "writing output")
    html = (built / HTML / "sdm/guest_non_register.html").read_text()
    box = html[html.index('id="ENTRY_GUEST_ACT_HLT_NEEDS_CPL0"'):]
    box = box[: box.index('id="SCN_')]
    assert "KVM behaviours" in box and "KVM_" in box


def test_edited_rule_module_re_reads_its_page(built: Path) -> None:
    _edit(built, "rules/vmxkb/sdm/guest_non_register.py", "Scenario SCN_ACT_HLT_CPL0 (passes): ", "Scenario SCN_ACT_HLT_CPL0 (passes): (edit B) ")
    r = _build(built)
    assert r.returncode == 0, r.stderr
    assert "sdm/guest_non_register" in _docs(r.stdout, "reading sources")
    assert _need(built, "SCN_ACT_HLT_CPL0")["title"].startswith("(edit B)")
    assert "(edit B)" in (built / HTML / "sdm/guest_non_register.html").read_text()


def test_a_failing_build_is_failed_again_by_the_next_until_fixed(built: Path) -> None:
    """Sphinx repeats no warning of a page it does not re-read (#725/#4937): after a failing
    build the next one re-reads every page the failing one read or wrote, so a warning from
    reading fails it again; a build that never finished makes the next re-read everything."""
    page = built / "docs/references.md"
    good = page.read_text()
    page.write_text(good + "\n```{no-such-directive}\n```\n")
    first = _build(built)
    assert first.returncode != 0 and "no-such-directive" in first.stderr
    touched = _docs(first.stdout, "reading sources") | _docs(first.stdout, "writing output")
    assert "references" in touched
    again = _build(built)  # nothing changed since: the page is not re-read unless we insist
    assert again.returncode != 0 and "no-such-directive" in again.stderr, again.stderr
    read = _docs(again.stdout, "reading sources")
    assert "references" in read and touched <= read | {"cli"}, (touched, read)
    assert "sdm/guest_non_register" not in read  # not every page: only what the failing build touched
    page.write_text(good)
    fixed = _build(built)
    assert fixed.returncode == 0, fixed.stderr
    assert _build(built).returncode == 0
    # a build that never finished ("running" in the state file) is followed by a full re-read
    state = next((built / HTML).glob(".doctrees/vmxkb-build-state.json"))
    data = json.loads(state.read_text())
    assert data["status"] == "passed"
    state.write_text(json.dumps(dict(data, status="running")))
    full = _build(built)
    assert full.returncode == 0, full.stderr
    assert "sdm/guest_non_register" in _docs(full.stdout, "reading sources")


def test_restored_code_with_an_old_timestamp_is_seen(built: Path) -> None:
    """Code is tracked by content, not modification time: a module put back with an older
    timestamp than the last build (git checkout, cp -p) still re-reads the page."""
    import os

    rel = "rules/vmxkb/sdm/guest_non_register.py"
    path = built / rel
    before = path.stat()
    _edit(built, rel, "Scenario SCN_ACT_HLT_CPL0 (passes): (edit B) ", "Scenario SCN_ACT_HLT_CPL0 (passes): ")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 10**12))  # back in time
    r = _build(built)
    assert r.returncode == 0, r.stderr
    assert not _need(built, "SCN_ACT_HLT_CPL0")["title"].startswith("(edit B)")
