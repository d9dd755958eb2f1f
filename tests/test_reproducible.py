"""Two clean builds of the same sources, in different folders, give the same data and pages.

needs.json is what tools consume (docs/data.md): it must not change unless the knowledge base
does (no timestamps, no build paths, stable order). The rule pages must be the same too, and so
must the verdicts the CLI prints for the same input.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_two_clean_builds_are_identical_and_offline(site, tmp_path: Path, guarded_build) -> None:
    """The second build is of the repository itself, in another folder, under the network
    guard of conftest.py (any DNS lookup or internet connection fails it)."""
    first, result = site
    assert result.returncode == 0, result.stderr
    b = tmp_path / "html"
    second = guarded_build(b)
    assert "VMXKB-OFFLINE-GUARD" not in second.stderr, second.stderr
    assert second.returncode == 0, second.stderr
    a = first / "_build" / "html"
    assert a != b
    assert (a / "needs.json").read_bytes() == (b / "needs.json").read_bytes()
    # Every published file, rule pages included (Sphinx's own .doctrees cache aside, and the
    # browser test's screenshots, which it adds to the shared build).
    def published(html: Path) -> list[Path]:
        skip = {".doctrees", "_screenshots"}
        return sorted(p.relative_to(html) for p in html.rglob("*") if p.is_file() and not skip & set(p.relative_to(html).parts))

    files = published(a)
    assert len([p for p in files if p.parts[0] == "sdm"]) >= 11
    assert files == published(b)
    differ = [str(p) for p in files if (a / p).read_bytes() != (b / p).read_bytes()]
    assert not differ, f"files differ between two clean builds: {differ}"
    # No build folder leaks into the published data.
    assert str(first) not in (a / "needs.json").read_text()


def test_verdicts_are_repeatable() -> None:
    dump = next((ROOT / "tests" / "dumps").glob("03-*/dump.txt"))
    runs = [
        subprocess.run([sys.executable, "-m", "vmxkb", "check", "--dmesg", str(dump), "--json"],
                       capture_output=True, text=True, check=False)
        for _ in range(2)
    ]
    assert runs[0].returncode == runs[1].returncode == 1
    assert runs[0].stdout == runs[1].stdout and '"ENTRY_GUEST_SEG_DATA_ACCESSED"' in runs[0].stdout


def test_needs_json_is_what_sphinx_needs_own_writer_gives(site) -> None:
    """vmxkb has sphinx-needs write needs.json from one json.dumps string (faster, the C
    encoder); the bytes must be exactly those of sphinx-needs' json.dump(..., sort_keys=True),
    and the replacement must apply to the installed sphinx-needs."""
    import io
    import json

    from sphinx_needs import needsfile

    from vmxkb.sphinxext import _write_needs_json_in_one_go

    first, result = site
    assert result.returncode == 0, result.stderr
    text = (first / "_build" / "html" / "needs.json").read_text()
    out = io.StringIO()
    json.dump(json.loads(text), out, sort_keys=True)
    assert text == out.getvalue()
    _write_needs_json_in_one_go()
    assert getattr(needsfile.NeedsList.write_json, "vmxkb", False)
