"""Fuzzing every reader of outside text (a bounded, derandomized run; `make fuzz` runs a
million inputs and saves what it finds under tests/fuzz_regressions/, replayed here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("vmxkb_fuzzing", ROOT / "tests" / "fuzzing.py")
fz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fz)

#: deterministic in CI; a reader that takes over a second on one input fails (a hang)
BOUNDED = settings(max_examples=150, derandomize=True, deadline=1000, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"


@BOUNDED
@given(fz.state_docs, st.sampled_from([".json", ".toml", ".yaml", ""]), st.booleans())
def test_state_files(doc, suffix, as_json) -> None:
    fz.target_state(doc, suffix, as_json)


@BOUNDED
@given(st.sampled_from(["state", "toml", "yaml", "dmesg", "review", "profile"]),
       st.one_of(fz._junk_text, fz._junk_bytes))
def test_junk_into_every_reader(kind, data) -> None:
    fz.target_text(kind, data)


@BOUNDED
@given(st.data())
def test_mutated_dumps_patches_profiles(data) -> None:
    kind, base = data.draw(st.sampled_from(
        [("dmesg", p.read_text()) for p in fz.DUMPS] + [("review", fz.PATCH.read_text()), ("profile", fz.PROFILE.read_text())]))
    fz.target_text(kind, data.draw(fz.mutated(base)))


@BOUNDED
@given(st.sampled_from(["explain", "cite", "list"]),
       st.one_of(st.text(max_size=40), st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,3}){0,5}\Z"),
                 st.from_regex(r"\A(ENTRY|POST|BM|SCN|DEV|KVM|SEC)_[A-Z_]{0,30}\Z")),
       st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["E1", "E3a", "E6", "e6", "E7"])))
def test_ids_and_section_numbers(command, word, edition) -> None:
    fz.target_lookup(command, word, edition)


@BOUNDED
@given(st.sampled_from(fz.DUMPS),
       st.lists(st.sampled_from(["upper", "trailing", "timestamp", "callerid", "quote", "softwrap", "crlf"]), unique=True),
       st.floats(0, 99999))
def test_reformatted_dumps_read_the_same(path, how, ts) -> None:
    text = path.read_text()
    assert fz.dump_result(fz.reformat_dump(text, how, ts)) == fz.dump_result(text)


@BOUNDED
@given(st.sampled_from(fz.STATES),
       st.lists(st.sampled_from(["hex", "upper", "lowerkeys", "spaced"]), unique=True),
       st.permutations(range(64)), st.sampled_from(["json", "toml", "yaml"]))
def test_reformatted_states_check_the_same(path, how, order, fmt) -> None:
    fields = {k: int(v, 0) if isinstance(v, str) else v for k, v in json.loads(path.read_text()).items()}
    order = [i for i in order if i < len(fields)]
    text = fz.reformat_state(fields, how, order, fmt)
    assert fz.state_result(text, "." + fmt) == fz.state_result(path.read_text(), ".json")


def test_saved_counterexamples() -> None:
    """Inputs `make fuzz` once found failing, replayed through the same target (none is an
    empty list, not a skip: the directory holds what the long runs have found so far)."""
    for case in sorted(REGRESSIONS.glob("*.json")):
        fz.replay(json.loads(case.read_text()))
