"""vmxkb.record: the frozen records of the modules the command line imports behave as frozen
dataclasses do where vmxkb relies on it."""

from __future__ import annotations

import copy
import pickle

import pytest

from vmxkb.record import FrozenError, Record
from vmxkb.state import DEFAULT_CAPABILITIES, Capabilities, Vmcs, entry


class Point(Record):
    x: int
    y: int = 0
    label: str = "p"


def test_fields_defaults_positional_and_keywords() -> None:
    assert Point.field_names() == ("x", "y", "label")
    assert Point.field_defaults() == {"y": 0, "label": "p"}
    assert Point(1) == Point(x=1, y=0, label="p") == Point(1, 0, "p")
    assert Point(1, label="q").label == "q"


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "needs a value for 'x'"),
    ((1, 2, "a", 4), {}, "takes 3 fields"),
    ((1,), {"x": 2}, "'x' is given twice"),
    ((1,), {"z": 2}, "'z' is not a field"),
])
def test_bad_construction_is_a_type_error(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Point(*args, **kwargs)


def test_frozen() -> None:
    p = Point(1)
    with pytest.raises(FrozenError):
        p.x = 2  # type: ignore[misc]
    with pytest.raises(FrozenError):
        del p.x
    assert isinstance(FrozenError("x"), AttributeError)


def test_equality_hash_repr_replace() -> None:
    class Other(Record):
        x: int
        y: int = 0
        label: str = "p"

    assert Point(1) != Other(1) and hash(Point(1)) == hash(Point(1))
    assert {Point(1), Point(1), Point(2)} == {Point(1), Point(2)}
    assert repr(Point(1)) == "Point(x=1, y=0, label='p')"
    assert Point(1).replace(y=5) == Point(1, 5) and Point(1).replace() == Point(1)


def test_inheritance_appends_fields() -> None:
    class Labelled(Point):
        colour: str = "red"

    assert Labelled.field_names() == ("x", "y", "label", "colour")
    assert Labelled(1).colour == "red" and Labelled(1) != Point(1)


def test_post_init_validates_and_replace_revalidates() -> None:
    v = Vmcs(GUEST_RFLAGS=2)
    with pytest.raises(ValueError, match="does not fit in 32 bits"):
        v.replace(GUEST_ACTIVITY_STATE=1 << 32)
    with pytest.raises(TypeError):
        Vmcs(GUEST_RFLAGS="2")  # type: ignore[arg-type]


def test_pickle_and_copy_round_trip() -> None:
    s = entry(GUEST_RFLAGS=0x302, GUEST_INTERRUPTIBILITY_INFO=2)
    for again in (pickle.loads(pickle.dumps(s)), copy.deepcopy(s), copy.copy(s)):
        assert again == s and again.vmcs.GUEST_RFLAGS == 0x302
    assert Capabilities().replace(sgx=True) != DEFAULT_CAPABILITIES


def test_the_check_path_imports_no_dataclasses_no_typing_no_argparse() -> None:
    """What the start-up target rests on (docs/bench.md): a plain `check` of a JSON state and
    of a dump imports none of the heavy modules."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    dump = next((root / "tests" / "dumps").glob("03-*/dump.txt"))
    for argv in (["check", str(root / "examples/states/movss-tf-no-bs.json")], ["check", "--dmesg", str(dump)]):
        code = ("import sys, io, contextlib\nfrom vmxkb.cli import main\n"
                f"with contextlib.redirect_stdout(io.StringIO()): main({argv!r})\n"
                "print(' '.join(m for m in ('dataclasses', 'typing', 'argparse', 'inspect', 'pathlib', 'shutil')"
                " if m in sys.modules))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert out.strip() == "", (argv, out)
