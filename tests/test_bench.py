"""The benchmark's generated references are what docs/bench.md says they are (no timing here:
speed is measured by `make bench`, never asserted in a test)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("vmxkb_bench_run", ROOT / "bench" / "run.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_plain_copy_has_the_text_but_no_needs(tmp_path: Path) -> None:
    plain = bench.make_plain(ROOT, tmp_path / "plain")
    conf = (plain / "conf.py").read_text()
    assert "sphinx_needs" not in conf and "vmxkb" not in conf.replace("vmxkb (plain copy)", "")
    pages = {p.relative_to(plain / "docs"): p.read_text() for p in (plain / "docs").rglob("*.md")}
    assert set(pages) == {p.relative_to(ROOT / "docs") for p in (ROOT / "docs").rglob("*.md")}
    text = "\n".join(pages.values())
    assert not re.search(r"^`{3,}\{(clause|scenario|behaviour|deviation|patch|section|vmx-[a-z-]+|need[a-z]+)\}", text, re.M)
    # the rule's source and its scenarios are there, as on the real page
    page = pages[Path("sdm/guest_non_register.md")]
    assert "def pde_bs_required_tf" in page and "Scenario SCN_PDE_BS_MISSING_STI_DB" in page


def test_corpus_repeats_every_area_under_new_ids(tmp_path: Path) -> None:
    tree, counts = bench.make_corpus(tmp_path / "x3", 3)
    one = bench.make_corpus(tmp_path / "x1", 1)[1]
    assert counts["rules"] == 3 * one["rules"] and counts["scenarios"] == 3 * one["scenarios"]
    ids = re.findall(r"^:id:\s*(\S+)", "\n".join(p.read_text() for p in (tree / "docs").rglob("*.md")), re.M)
    assert len(ids) == len(set(ids)), "a copy reuses an ID"
    assert "ENTRY_GUEST_PDE_BS_REQUIRED_TF_C3" in ids
    init = (tree / "rules" / "vmxkb" / "sdm" / "__init__.py").read_text()
    assert '"guest_non_register_c3"' in init


def test_latest_table_has_every_measurement() -> None:
    data = json.loads((ROOT / "bench" / "latest.json").read_text())
    assert set(bench.TARGETS) <= set(data) and {"exploration", "memory_1x", "memory_10x", "machine"} <= set(data)
    md = (ROOT / "docs" / "_generated" / "bench-latest.md").read_text()
    assert all(row["measurement"] in md for row in data["table"])
