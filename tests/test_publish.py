"""Publishing: permalinks per ID, objects.inv for intersphinx, needs.json for tools."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_every_need_has_a_permalink_to_where_it_is_rendered(site) -> None:
    tree, r = site
    assert r.returncode == 0, r.stderr
    out = tree / "_build/html"
    needs = next(iter(json.loads((out / "needs.json").read_text())["versions"].values()))["needs"]
    pages = {p.name for p in (out / "id").glob("*.html")}
    assert pages == {f"{nid}.html" for nid in needs}
    for nid in ("ENTRY_GUEST_PDE_BS_REQUIRED_TF", "SCN_PDE_BS_MISSING_STI_DB", "DEV_MIGRATION_LOSES_PENDING_DBG"):
        target = re.search(r'http-equiv="refresh" content="0; url=\.\./([^"]+)"', (out / "id" / f"{nid}.html").read_text())[1]
        page, anchor = target.split("#")
        assert anchor == nid and f'id="{nid}"' in (out / page).read_text(), nid


def test_objects_inv_links_a_rule_from_another_project(site, tmp_path: Path) -> None:
    tree, r = site
    inv = tree / "_build/html/objects.inv"
    env = {**os.environ, "VMXKB_OBJECTS_INV": str(inv)}
    b = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(HERE / "intersphinx_project"), str(tmp_path / "out")],
        capture_output=True, text=True, env=env, check=False,
    )
    assert b.returncode == 0, b.stderr
    assert "WARNING" not in b.stderr
    html = (tmp_path / "out/index.html").read_text()
    assert "https://vmxkb.example.org/sdm/guest_non_register.html#ENTRY_GUEST_PDE_BS_REQUIRED_TF" in html
    assert "https://vmxkb.example.org/sdm/after_entry.html#POST_INTR_VECTORING_CLEARS_SHADOW" in html


def test_needs_json_carries_rule_and_citation_fields(site) -> None:
    tree, _ = site
    data = json.loads((tree / "_build/html/needs.json").read_text())
    needs = next(iter(data["versions"].values()))["needs"]
    clause = needs["ENTRY_GUEST_PDE_BS_REQUIRED_TF"]
    assert clause["type"] == "clause" and clause["status"] == "executable"
    assert "E3a:26.3.1.5:v" in clause["sdm_sections"] and clause["sdm"] == ["SEC_GUEST_NON_REGISTER"]
    assert needs["SCN_PDE_BS_MISSING_STI_DB"]["expect"] == "fails"


def test_hosting_config_builds_what_make_html_builds() -> None:
    """.readthedocs.yaml runs the Makefile's Sphinx command line (same options, conf dir,
    source dir, builder) and installs Graphviz; checked against the Makefile's text."""
    root = HERE.parent
    make = (root / "Makefile").read_text()
    rtd = (root / ".readthedocs.yaml").read_text()
    opts = re.search(r"^SPHINXOPTS \?= (.+)$", make, re.MULTILINE)[1].strip()
    html = re.search(r"^html:.*\n\t\$\(BIN\)/sphinx-build \$\(SPHINXOPTS\) (.+) _build/html$", make, re.MULTILINE)[1]
    assert f"python -m sphinx {opts} {html} \"${{READTHEDOCS_OUTPUT}}/html\"" in rtd
    assert "- graphviz" in rtd and "'.[docs]'" in rtd


def _search_index(out: Path) -> dict:
    text = (out / "searchindex.js").read_text()
    return json.loads(text[text.index("(") + 1 : text.rindex(")")])


def test_search_index_finds_ids_fields_and_section_numbers_of_any_edition(site) -> None:
    tree, _ = site
    out = tree / "_build/html"
    index = _search_index(out)
    docs = index["docnames"]

    def pages(term: str) -> set[str]:
        found = set()
        for table in ("terms", "titleterms"):  # body words and heading words
            hits = index[table].get(term, [])
            found |= {docs[i] for i in ([hits] if isinstance(hits, int) else hits)}
        return found

    assert "sdm/guest_non_register" in pages("entry_guest_pde_bs_required_tf")
    assert "sdm/guest_non_register" in pages("guest_pending_dbg_except")  # stemmed field name
    for number in ("22.3.1.5", "26.3.1.5", "29.3.1.5"):  # E1, E3a/E3b, E6 numbers of one section
        assert {"sdm/guest_non_register", "editions"} <= pages("sdm_" + number.replace(".", "_")), number
    js = (out / "_static/vmxkb-search.js").read_text()
    assert 'replace(/\\./g, "_")' in js and "vmxkb-search.js" in (out / "search.html").read_text()
