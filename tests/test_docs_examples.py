"""Every ```pycon block in the docs runs as a doctest: the pages never show stale output."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK_RE = re.compile(r"^```pycon\n(.*?)^```", re.MULTILINE | re.DOTALL)
BLOCKS = [(p, i, m.group(1)) for p in sorted(DOCS.rglob("*.md")) for i, m in enumerate(BLOCK_RE.finditer(p.read_text()))]


def test_there_are_examples() -> None:
    assert len(BLOCKS) >= 1


@pytest.mark.parametrize("page,index,text", BLOCKS, ids=[f"{p.relative_to(DOCS)}#{i}" for p, i, _ in BLOCKS])
def test_pycon_block(page: Path, index: int, text: str) -> None:
    test = doctest.DocTestParser().get_doctest(text, {}, f"{page.name}#{index}", str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0 and result.attempted > 0
