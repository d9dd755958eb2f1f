"""Every vector written from an independent implementation (tests/vectors/) goes through
the rules and gets the SDM's answer; where the implementation disagrees, a deviation need
documents it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from vmxkb.guests import GUESTS
from vmxkb.profile import capabilities_from_mapping
from vmxkb.state import EntryState, Vmcs
from vmxkb.vmentry import evaluate

HERE = Path(__file__).parent / "vectors"
DOCS = Path(__file__).resolve().parent.parent / "docs"
OUTCOMES = ("vmfail", "entry-failure", "entered")
SOURCE_RE = re.compile(r"^[\w.-]+/[\w.-]+:[\w./-]+:\w+$")


def _int(v: Any) -> int:
    return int(v, 0) if isinstance(v, str) else int(v)


def load() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(HERE.glob("*.toml")):
        for v in tomllib.loads(path.read_text())["vector"]:
            out.append((path.name, v))
    return out


VECTORS = load()


def _state(v: dict[str, Any]) -> EntryState:
    fields = {**GUESTS[v["base"]], **{k: _int(x) for k, x in v.get("set", {}).items()}}
    return EntryState(Vmcs.from_fields(fields), capabilities_from_mapping(v.get("caps", {})))


def test_enough_vectors_from_independent_sources() -> None:
    repos = {v["source"].split(":", 1)[0] for _, v in VECTORS}
    assert len(VECTORS) >= 60, len(VECTORS)
    assert len(repos) >= 2, repos


def test_vector_ids_unique_and_well_formed() -> None:
    ids = [v["id"] for _, v in VECTORS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for name, v in VECTORS:
        assert re.fullmatch(r"[A-Z0-9_]+", v["id"]), (name, v["id"])
        assert SOURCE_RE.match(v["source"]), (name, v["id"], v["source"])
        assert v["expect"] in OUTCOMES, (name, v["id"])
        assert v["base"] in GUESTS, (name, v["id"])
        assert ("deviation" in v) == ("reference_says" in v), (name, v["id"])


@pytest.mark.parametrize("vector", [v for _, v in VECTORS], ids=[v["id"] for _, v in VECTORS])
def test_vector(vector: dict[str, Any]) -> None:
    result = evaluate(_state(vector))
    got = {r.rule_id for r in result.violations}
    assert not result.not_evaluated, result.not_evaluated
    assert result.outcome.kind == vector["expect"], (vector["what"], [str(x) for x in result.violations])
    for rid in vector.get("rules", ()):
        assert rid in got, (rid, sorted(got))
    if "qualification" in vector:
        assert result.outcome.qualification == vector["qualification"]


def test_disagreements_are_documented_deviations() -> None:
    text = "\n".join(p.read_text() for p in DOCS.rglob("*.md"))
    deviations = set(re.findall(r"^```\{deviation\}.*\n:id: (DEV_\w+)", text, re.MULTILINE))
    for _, v in VECTORS:
        if "deviation" in v:
            assert v["deviation"] in deviations, (v["id"], v["deviation"])
            assert v["reference_says"] != v["expect"], v["id"]
