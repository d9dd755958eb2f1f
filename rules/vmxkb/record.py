"""Frozen records for the modules the command line imports.

``vmxkb check`` has to start nearly as fast as the interpreter (``docs/bench.md``), and the
standard library's ``dataclasses`` costs more than the whole check: importing it pulls in
``inspect`` (with ``ast``, ``dis`` and ``tokenize``), and every ``@dataclass`` generates and
compiles its methods at import time, about a millisecond a class and ten for the 75-field
:class:`~vmxkb.state.Vmcs`. A record here is a plain class whose methods are shared and
generic, so defining one costs nothing measurable.

What a record gives, as a frozen dataclass does:

- fields from the class annotations, in order (a base class's first), each with an
  optional default given as a class attribute (immutable values only: there are no
  default factories);
- ``__init__`` taking the fields positionally or by name, then ``__post_init__`` if the
  class defines it;
- equality, hashing and ``repr`` over the fields, equality only between instances of the
  same class;
- no assignment or deletion of attributes (:class:`FrozenError`);
- :meth:`Record.replace` for a changed copy, :meth:`Record.field_names` and
  :meth:`Record.field_defaults`.

The modules no command imports (the KVM models, the gate, the mutator) use ``dataclasses``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

TYPE_CHECKING = False  # typing is not imported at run time
if TYPE_CHECKING:
    from typing import Any, ClassVar, Self, dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Any:
        return lambda cls: cls


_NOTHING = object()


class FrozenError(AttributeError):
    """An attempt to change a frozen record."""


@dataclass_transform(frozen_default=True)
class Record:
    """Base of vmxkb's frozen records (see the module docstring)."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _defaults: ClassVar[dict[str, Any]] = {}
    _post_init: ClassVar[Any] = None  #: the class's ``__post_init__``, if it has one

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = list(cls._fields)
        defaults = dict(cls._defaults)
        for name, annotation in cls.__dict__.get("__annotations__", {}).items():
            if str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in fields:
                fields.append(name)
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
        cls._fields = tuple(fields)
        cls._defaults = defaults
        cls._post_init = getattr(cls, "__post_init__", None)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        values = self.__dict__
        if not kwargs and len(args) == len(fields):  # the common case, kept fast
            values.update(zip(fields, args))
        else:
            if len(args) > len(fields):
                raise TypeError(f"{type(self).__name__}() takes {len(fields)} fields, {len(args)} were given")
            values.update(zip(fields, args))
            for name, value in kwargs.items():
                if name in values or name not in self._defaults and name not in fields:
                    problem = "given twice" if name in values else "not a field"
                    raise TypeError(f"{type(self).__name__}(): {name!r} is {problem}")
                values[name] = value
            if len(values) < len(fields):
                for name in fields:
                    if name not in values:
                        default = self._defaults.get(name, _NOTHING)
                        if default is _NOTHING:
                            raise TypeError(f"{type(self).__name__}() needs a value for {name!r}")
                        values[name] = default
        if self._post_init is not None:
            self._post_init()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The field names, in order."""
        return cls._fields

    @classmethod
    def field_defaults(cls) -> Mapping[str, Any]:
        """The fields that have a default, with it."""
        return dict(cls._defaults)

    def _values(self) -> tuple[Any, ...]:
        values = self.__dict__
        return tuple(values[n] for n in self._fields)

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (checked like a new record)."""
        return type(self)(**{**{n: self.__dict__[n] for n in self._fields}, **changes})

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.__class__.__name__, self._values()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={self.__dict__[n]!r}" for n in self._fields)
        return f"{type(self).__name__}({inner})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenError(f"cannot assign to field {name!r} of a frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise FrozenError(f"cannot delete field {name!r} of a frozen {type(self).__name__}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._values()))


def _rebuild(cls: type[Record], values: Iterable[Any]) -> Record:
    return cls(*values)


def make_record(name: str, fields: Iterable[str], default: Any, base: type, module: str) -> type:
    """A record class with many fields sharing one default (the VMCS, by field name)."""
    names = tuple(fields)
    cls = type(name, (base, Record), {"__module__": module, "__annotations__": dict.fromkeys(names, "int | None")})
    cls._fields = names
    cls._defaults = dict.fromkeys(names, default)
    cls._post_init = getattr(cls, "__post_init__", None)
    return cls
