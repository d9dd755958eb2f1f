"""Fuzz targets for every reader of outside text, shared by tests/test_fuzz.py (a bounded,
derandomized run in `make test`) and tests/fuzz_long.py (`make fuzz`, a million inputs).

Each target takes generated input, runs it through the command line in-process
(``vmxkb.cli.main``, so argument handling, file reading and output are fuzzed too) and
checks the contract of the readers:

- the exit status is 0, 1, 2 or 3, and nothing but those escapes (no traceback);
- status 2 comes with exactly one line on stderr, ``vmxkb: error: ...``, and nothing on stdout;
- ``--json`` output, when there is any, is one JSON document.

The *reformat* targets also check that a valid input, reformatted the way people paste it
(spacing, hex-digit case, key order and case, timestamps, log prefixes, quote markers, mail
soft-wraps, CRLF), gives the same result as the original.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import io
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from vmxkb.cli import main

ROOT = Path(__file__).resolve().parent.parent
DUMPS = sorted((ROOT / "tests" / "dumps").glob("*/dump.txt"))
PATCH = ROOT / "examples" / "patches" / "bs-on-injected-db.patch"
PROFILE = ROOT / "examples" / "profiles" / "default.toml"
STATES = sorted((ROOT / "examples" / "states").glob("*.json"))
_WORK: list[Path] = []  # made on first use, not on import

#: the last input given to a target, for the long run to save when a check fails
LAST: dict[str, Any] = {}


def _record(target: str, *args: Any) -> None:
    LAST["case"] = {"target": target, "args": [{"b64": base64.b64encode(a).decode()} if isinstance(a, bytes) else a for a in args]}


def replay(case: dict[str, Any]) -> None:
    """Run a saved case (see :data:`LAST`) through its target again."""
    args = [base64.b64decode(a["b64"]) if isinstance(a, dict) and set(a) == {"b64"} else a for a in case["args"]]
    {"state": target_state, "text": target_text, "lookup": target_lookup}[case["target"]](*args)


class ContractError(AssertionError):
    pass


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def check_contract(argv: list[str], json_out: bool = False) -> tuple[int, str]:
    status, out, err = run(argv)
    if status not in (0, 1, 2, 3):
        raise ContractError(f"exit status {status} for {argv}")
    if status == 2:
        lines = err.splitlines()
        if len(lines) != 1 or not lines[0].startswith("vmxkb: error: ") or out:
            raise ContractError(f"status 2 must print one error line and nothing else; got {err!r} / {out[:200]!r}")
    elif json_out:
        json.loads(out)
    return status, out


def write(name: str, data: bytes | str) -> str:
    if not _WORK:
        _WORK.append(Path(tempfile.mkdtemp(prefix="vmxkb-fuzz-")))
        atexit.register(shutil.rmtree, _WORK[0], True)
    path = _WORK[0] / name
    path.write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return str(path)


# --- strategies -----------------------------------------------------------------------------

_junk_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)
_junk_bytes = st.binary(max_size=400)


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """``base`` with a few random edits: delete, duplicate or swap lines, insert junk, cut."""
    lines = base.splitlines(keepends=True)
    for _ in range(draw(st.integers(0, 4))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "dup", "junk", "flip", "cut"]))
        if op == "delete":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "junk":
            lines.insert(i, draw(_junk_text) + "\n")
        elif op == "flip" and lines[i]:
            j = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:j] + draw(st.characters(codec="utf-8", exclude_categories=("Cs",))) + lines[i][j + 1 :]
        elif op == "cut":
            lines = lines[: i + 1]
            if lines:
                lines[-1] = lines[-1][: draw(st.integers(0, len(lines[-1])))]
    return "".join(lines)


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                       st.text(max_size=20), st.sampled_from(["0x202", "0X1F", "0x", "-1", "1_000", " 0x2 ", "0xffffffffffffffffff"]))
_field_names = st.sampled_from(["GUEST_RFLAGS", "guest_rflags", "GUEST_INTERRUPTIBILITY_INFO", "GUEST_ACTIVITY_STATE",
                                "GUEST_PENDING_DBG_EXCEPTIONS", "VM_ENTRY_INTR_INFO_FIELD", "GUEST_CR0", "GUEST_RFLAG",
                                "", "0", "GUEST_DR7", "VMCS_LINK_POINTER"])
_json_values = st.recursive(_json_leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=8)
state_docs = st.one_of(st.dictionaries(_field_names, _json_values, max_size=6), _json_values)


# --- targets --------------------------------------------------------------------------------


def target_state(doc: Any, suffix: str, as_json: bool) -> None:
    _record("state", doc, suffix, as_json)
    text = json.dumps(doc) if suffix in (".json", "") else _to_toml_or_yaml(doc, suffix)
    check_contract(["check", write("state" + suffix, text), *(["--json"] if as_json else [])], as_json)


def _to_toml_or_yaml(doc: Any, suffix: str) -> str:
    if suffix == ".toml" and isinstance(doc, dict):
        return "".join(f'{json.dumps(str(k))} = {json.dumps(v) if not isinstance(v, dict | list) else json.dumps(str(v))}\n'
                       for k, v in doc.items())
    return json.dumps(doc)  # YAML is a superset of JSON


def target_text(kind: str, data: bytes | str) -> None:
    """Arbitrary text or bytes into each reader."""
    _record("text", kind, data)
    name = write("input" + {"state": ".json", "toml": ".toml", "yaml": ".yaml"}.get(kind, ".txt"), data)
    argv = {
        "state": ["check", name], "toml": ["check", name], "yaml": ["check", name],
        "dmesg": ["check", "--dmesg", name, "--json"],
        "review": ["review", name, "--json"],
        "profile": ["check", str(STATES[0]), "--profile", write("profile.toml", data)],
    }[kind]
    check_contract(argv, "--json" in argv)


def target_lookup(command: str, word: str, edition: str | None) -> None:
    _record("lookup", command, word, edition)
    if command == "list":
        argv = ["list", f"--area={word}"]
    else:
        options = ["--edition", edition] if edition is not None and command == "cite" else []
        argv = [command, *options, *(["--"] if word.startswith("-") else []), word]
    check_contract(argv)


# --- reformatting ---------------------------------------------------------------------------

_HEX = re.compile(r"\b(0x)?([0-9a-f]{4,16})\b")


def reformat_dump(text: str, how: list[str], ts: float) -> str:
    lines = text.splitlines()
    # a log that already has timestamps keeps them (its mail soft-wraps have none to add)
    stamped = any(re.match(r"\s*\[\s*\d+\.\d+\]", line) for line in lines)
    out = []
    for line in lines:
        if "upper" in how:
            line = _HEX.sub(lambda m: (m[1] or "") + m[2].upper(), line)
        if "trailing" in how:
            line = line + "  "
        if "timestamp" in how and not stamped:
            line = f"[{ts:12.6f}] " + line
        if "callerid" in how and line.startswith("["):
            line = line.replace("] ", "] [ T1234] ", 1)
        if "quote" in how:
            line = "> " + line
        out.append(line)
    if "softwrap" in how:  # a long line broken after a space, as mail does at 78 columns
        wrapped = []
        for line in out:
            while len(line) > 78 and " " in line[40:78]:
                cut = line.rindex(" ", 40, 78) + 1
                wrapped.append(line[:cut])
                line = ("> " if "quote" in how else "") + line[cut:]
            wrapped.append(line)
        out = wrapped
    sep = "\r\n" if "crlf" in how else "\n"
    return sep.join(out) + sep


def dump_result(text: str) -> tuple[int, dict[str, Any]]:
    status, out = check_contract(["check", "--dmesg", write("dump.txt", text), "--json"], True)
    data = json.loads(out) if status != 2 else {}
    data.pop("notes", None)
    return status, data


def reformat_state(fields: dict[str, int], how: list[str], order: list[int], fmt: str) -> str:
    items = list(fields.items())
    items = [items[i] for i in order] if sorted(order) == list(range(len(items))) else items
    out = {}
    for k, v in items:
        key = k.lower() if "lowerkeys" in how else k
        val: Any = v
        if "hex" in how:
            val = hex(v).upper().replace("0X", "0x") if "upper" in how else hex(v)
        out[key] = val
    if fmt == "toml":
        return "".join(f"{k} = {json.dumps(v)}\n" for k, v in out.items())
    if fmt == "yaml":
        return "".join(f"{k}: {json.dumps(v) if isinstance(v, str) else v}\n" for k, v in out.items())
    return json.dumps(out, indent=4 if "spaced" in how else None)


def state_result(text: str, suffix: str) -> tuple[int, str]:
    return check_contract(["check", write("fmt" + suffix, text), "--json"], True)


# --- the inputs of each target, shared by the bounded run and `make fuzz` ----------------------

STATE_FILES = st.tuples(state_docs, st.sampled_from([".json", ".toml", ".yaml", ""]), st.booleans())
JUNK = st.tuples(st.sampled_from(["state", "toml", "yaml", "dmesg", "review", "profile"]),
                 st.one_of(_junk_text, _junk_bytes))
LOOKUPS = st.tuples(
    st.sampled_from(["explain", "cite", "list"]),
    st.one_of(st.text(max_size=40), st.from_regex(r"\A[0-9]{1,3}(\.[0-9]{1,3}){0,5}\Z"),
              st.from_regex(r"\A(ENTRY|POST|BM|SCN|DEV|KVM|SEC)_[A-Z_]{0,30}\Z")),
    st.one_of(st.none(), st.text(max_size=6), st.sampled_from(["E1", "E3a", "E6", "e6", "E7"])),
)
DUMP_FORMATS = st.tuples(
    st.sampled_from(DUMPS),
    st.lists(st.sampled_from(["upper", "trailing", "timestamp", "callerid", "quote", "softwrap", "crlf"]), unique=True),
    st.floats(0, 99999),
)
STATE_FORMATS = st.tuples(
    st.sampled_from(STATES),
    st.lists(st.sampled_from(["hex", "upper", "lowerkeys", "spaced"]), unique=True),
    st.permutations(range(64)),
    st.sampled_from(["json", "toml", "yaml"]),
)


@st.composite
def mutated_inputs(draw: st.DrawFn) -> tuple[str, str]:
    """A reader and a mutated copy of one of its real inputs (dumps, the patch, the profile)."""
    bases = [("dmesg", p.read_text()) for p in DUMPS] + [("review", PATCH.read_text()), ("profile", PROFILE.read_text())]
    kind, base = draw(st.sampled_from(bases))
    return kind, draw(mutated(base))


def check_dump_format(path: Path, how: list[str], ts: float) -> None:
    """A real dump reformatted ``how`` reads the same as the original."""
    text = path.read_text()
    assert dump_result(reformat_dump(text, how, ts)) == dump_result(text), (path.parent.name, how)


def check_state_format(path: Path, how: list[str], order: list[int], fmt: str) -> None:
    """A state file rewritten ``how``, in ``order``, as ``fmt`` checks the same as the original."""
    fields = {k: int(v, 0) if isinstance(v, str) else v for k, v in json.loads(path.read_text()).items()}
    order = [i for i in order if i < len(fields)]
    assert state_result(reformat_state(fields, how, order, fmt), "." + fmt) == state_result(path.read_text(), ".json"), (path.name, how, fmt)
