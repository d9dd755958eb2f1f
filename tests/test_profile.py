"""Capability profiles: the documented default file says what the code's defaults say, and
a bad profile is reported whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmxkb.profile import ProfileError, capabilities_from_mapping, load_profile, profile_toml
from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities

DEFAULT_FILE = Path(__file__).resolve().parent.parent / "examples/profiles/default.toml"


def test_default_file_is_the_default() -> None:
    assert load_profile(DEFAULT_FILE) == DEFAULT_CAPABILITIES


def test_default_file_sets_every_capability() -> None:
    import tomllib

    keys = set(tomllib.loads(DEFAULT_FILE.read_text())) - {"name", "description"}
    assert keys == set(Capabilities.field_names())


def test_generated_profile_round_trips(tmp_path: Path) -> None:
    caps = Capabilities(maxphyaddr=52, linear_address_width=57, unrestricted_guest=False, activity_states=frozenset({0, 1}))
    path = tmp_path / "p.toml"
    path.write_text(profile_toml(caps))
    assert load_profile(path) == caps


def test_partial_profile_keeps_defaults() -> None:
    caps = capabilities_from_mapping({"maxphyaddr": 39, "cr4_fixed1": "0x3767ff"})
    assert caps.maxphyaddr == 39 and caps.cr4_fixed1 == 0x3767FF
    assert caps.cr0_fixed0 == DEFAULT_CAPABILITIES.cr0_fixed0


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ProfileError) as err:
        capabilities_from_mapping(
            {"maxphyaddr": 99, "rtm": "yes", "nonsense": 1, "cr0_fixed0": "0xzz", "activity_states": [0, 7]}
        )
    problems = err.value.problems
    assert len(problems) == 5, problems
    text = " ".join(problems)
    for word in ("maxphyaddr", "rtm", "nonsense", "cr0_fixed0", "activity_states"):
        assert word in text


def test_inconsistent_fixed_bits_rejected() -> None:
    with pytest.raises(ProfileError, match="cr4_fixed0 has bits"):
        capabilities_from_mapping({"cr4_fixed0": "0x2000", "cr4_fixed1": "0x1000"})


def test_bad_toml_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("maxphyaddr = = 3\n")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert len(err.value.problems) == 1 and "not valid TOML" in err.value.problems[0]
