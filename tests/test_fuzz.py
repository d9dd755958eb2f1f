"""Fuzzing every reader of outside text (a bounded, derandomized run; `make fuzz` runs a
million inputs and saves what it finds under tests/fuzz_regressions/, replayed here)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("vmxkb_fuzzing", ROOT / "tests" / "fuzzing.py")
fz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fz)

#: deterministic in CI; a reader that takes over a second on one input fails (a hang)
BOUNDED = settings(max_examples=150, derandomize=True, deadline=1000, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
REGRESSIONS = ROOT / "tests" / "fuzz_regressions"


@BOUNDED
@given(fz.STATE_FILES)
def test_state_files(case) -> None:
    fz.target_state(*case)


@BOUNDED
@given(fz.JUNK)
def test_junk_into_every_reader(case) -> None:
    fz.target_text(*case)


@BOUNDED
@given(fz.mutated_inputs())
def test_mutated_dumps_patches_profiles(case) -> None:
    fz.target_text(*case)


@BOUNDED
@given(fz.LOOKUPS)
def test_ids_and_section_numbers(case) -> None:
    fz.target_lookup(*case)


@BOUNDED
@given(fz.DUMP_FORMATS)
def test_reformatted_dumps_read_the_same(case) -> None:
    fz.check_dump_format(*case)


@BOUNDED
@given(fz.STATE_FORMATS)
def test_reformatted_states_check_the_same(case) -> None:
    fz.check_state_format(*case)


def test_saved_counterexamples() -> None:
    """Inputs `make fuzz` once found failing, replayed through the same target (none is an
    empty list, not a skip: the directory holds what the long runs have found so far)."""
    for case in sorted(REGRESSIONS.glob("*.json")):
        fz.replay(json.loads(case.read_text()))
