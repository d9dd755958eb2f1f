"""Capability profiles: the implementation facts a rule depends on, read from a file.

A profile is a TOML file whose keys are the fields of :class:`vmxkb.state.Capabilities`
(the documented default is ``examples/profiles/default.toml``). Integers may be written as
TOML integers or as ``"0x..."`` strings; a key that is absent keeps the default. Every
problem in a file is reported at once, never just the first.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities

#: Keys that are neither capability fields nor ignored metadata are errors.
METADATA_KEYS = frozenset({"name", "description"})

_TYPES = {name: type(getattr(DEFAULT_CAPABILITIES, name)) for name in Capabilities.field_names()}


class ProfileError(ValueError):
    """A profile that cannot be used; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 0)
        except ValueError:
            return None
    return None


def capabilities_from_mapping(data: Mapping[str, Any], source: str = "<profile>") -> Capabilities:
    """Validate ``data`` and build :class:`Capabilities`; raises :class:`ProfileError`."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key in sorted(data):
        raw = data[key]
        if key in METADATA_KEYS:
            if not isinstance(raw, str):
                problems.append(f"{key} must be a string")
            continue
        kind = _TYPES.get(key)
        if kind is None:
            problems.append(f"unknown key {key!r}")
        elif kind is bool:
            if isinstance(raw, bool):
                values[key] = raw
            else:
                problems.append(f"{key} must be true or false, not {raw!r}")
        elif kind is int:
            number = _int(raw)
            if number is None or number < 0:
                problems.append(f"{key} must be a non-negative integer or a 0x string, not {raw!r}")
            else:
                values[key] = number
        elif kind is frozenset:
            if isinstance(raw, list) and all(_int(x) is not None for x in raw):
                values[key] = frozenset(_int(x) for x in raw)
            else:
                problems.append(f"{key} must be a list of integers, not {raw!r}")
    caps = DEFAULT_CAPABILITIES.replace(**values)
    problems += _consistency(caps, set(values))
    if problems:
        raise ProfileError(source, problems)
    return caps


def _consistency(c: Capabilities, given: set[str]) -> list[str]:
    out = []
    if not c.activity_states <= {0, 1, 2, 3}:
        out.append(f"activity_states may only hold 0-3, not {sorted(c.activity_states)}")
    if c.cr0_fixed0 & ~c.cr0_fixed1:
        out.append("cr0_fixed0 has bits that cr0_fixed1 does not allow")
    if c.cr4_fixed0 & ~c.cr4_fixed1:
        out.append("cr4_fixed0 has bits that cr4_fixed1 does not allow")
    for name in ("cr0_fixed0", "cr0_fixed1", "cr4_fixed0", "cr4_fixed1"):
        if getattr(c, name) >> 64:
            out.append(f"{name} does not fit in 64 bits")
    if not 36 <= c.maxphyaddr <= 52:
        out.append(f"maxphyaddr must be 36-52, not {c.maxphyaddr}")
    if c.linear_address_width not in (48, 57):
        out.append(f"linear_address_width must be 48 or 57, not {c.linear_address_width}")
    return out


def load_profile(path: str | Path) -> Capabilities:
    """Read and validate a profile file; raises :class:`ProfileError` (one line per
    problem, all of them) or ``OSError``."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(str(p), [f"not valid TOML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ProfileError(str(p), ["not UTF-8 text"]) from None
    return capabilities_from_mapping(data, str(p))


def profile_toml(caps: Capabilities = DEFAULT_CAPABILITIES) -> str:
    """A profile file for ``caps`` (how ``examples/profiles/default.toml`` is made)."""
    lines = []
    for name in Capabilities.field_names():
        value = getattr(caps, name)
        if isinstance(value, bool):
            lines.append(f"{name} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f'{name} = "{value:#x}"' if value > 255 else f"{name} = {value}")
        else:
            lines.append(f"{name} = {sorted(value)}")
    return "\n".join(lines) + "\n"
