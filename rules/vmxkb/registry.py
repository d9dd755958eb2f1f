"""Rules, their violations, and the scenarios written in their docstrings.

A rule is a pure function of frozen data that returns the violations it finds, each
carrying the rule's ID. ``@rule`` records it in :data:`REGISTRY`; the docs gate checks
that every registered rule has a clause need with the same ID, and the reverse.

A *scenario* is a doctest in the rule's docstring introduced by a header line::

    Scenario SCN_SOME_NAME (passes): one line saying what it shows.

    >>> from vmxkb.sdm.guest_non_register import act_value_supported
    >>> from vmxkb.state import entry
    >>> verdict(act_value_supported, entry(GUEST_ACTIVITY_STATE=0))
    passes

The header states the outcome; the doctest states the exact verdict. Both are checked:
by pytest's doctest run, and by the docs gate, which executes every scenario at build
time and compares.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping

from vmxkb.record import Record
from vmxkb.state import MissingField

TYPE_CHECKING = False  # typing is not imported at run time (start-up: docs/bench.md)
if TYPE_CHECKING:
    import doctest
    from typing import Any, Literal, TypeAlias

    Kind: TypeAlias = Literal["check", "effect", "bare-metal"]
    #: What a violated check makes the CPU report. ``control``: VMfail with VM-instruction
    #: error 7 (checks on VMX controls). ``host``: VMfail with error 8 (checks on host state,
    #: which include those related to address-space size). ``guest``: VM-entry failure, exit
    #: reason 33 with bit 31 set.
    Phase: TypeAlias = Literal["control", "host", "guest"]

RULE_ID_RE = re.compile(r"^(ENTRY|POST|BM)_[A-Z0-9]+(_[A-Z0-9]+)+$")
SCENARIO_ID_RE = re.compile(r"^SCN_[A-Z0-9]+(_[A-Z0-9]+)+$")


class Violation(Record):
    """One broken rule: its ID, a one-line reason, and the values that prove it."""

    rule_id: str
    reason: str
    fields: tuple[tuple[str, int | bool | str], ...] = ()

    def __str__(self) -> str:
        proof = ", ".join(f"{n}={_fmt(v)}" for n, v in self.fields)
        return f"{self.rule_id}: {self.reason}" + (f" [{proof}]" if proof else "")


def _fmt(value: int | bool | str) -> str:
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    return f"{value:#x}"


Violations = tuple[Violation, ...]
RuleFunc = Callable[..., Violations]


class Scenario(Record):
    """A doctest scenario of a rule, as parsed from its docstring."""

    id: str
    rule_id: str
    expect: Literal["passes", "fails"]
    summary: str
    examples: tuple[doctest.Example, ...]
    lineno: int  #: line of the header in the source file

    @property
    def source(self) -> str:
        """The doctest text, as a reader would type it."""
        out = []
        for ex in self.examples:
            lines = ex.source.rstrip("\n").split("\n")
            out.append(">>> " + lines[0])
            out.extend("... " + line for line in lines[1:])
            out.extend(ex.want.rstrip("\n").split("\n") if ex.want else [])
        return "\n".join(out)


class Rule(Record):
    """A registered rule."""

    id: str
    func: RuleFunc
    kind: Kind
    section: str  #: key of :data:`vmxkb.citations.SECTIONS`
    phase: Phase | None = None
    qualification: int = 0

    @functools.cached_property
    def scenarios(self) -> tuple[Scenario, ...]:
        """The scenarios in the rule's docstring, parsed on first use (reading the source
        for line numbers costs more than every check together: the CLI does not pay it)."""
        return tuple(parse_scenarios(self))

    @property
    def area(self) -> str:
        """The SDM area: the last part of the module name (shared by docs and tests)."""
        return self.func.__module__.rsplit(".", 1)[-1]

    @property
    def summary(self) -> str:
        """First paragraph of the docstring: the one-line paraphrase."""
        import inspect

        doc = inspect.getdoc(self.func) or ""
        return " ".join(doc.split("\n\n", 1)[0].split())

    @property
    def source_file(self) -> str:
        import inspect

        return inspect.getsourcefile(self.func) or "?"

    @property
    def qualname(self) -> str:
        return f"{self.func.__module__}.{self.func.__name__}"

    def violation(self, reason: str, **fields: int | bool | str) -> Violation:
        """A violation of this rule."""
        return Violation(self.id, reason, tuple(fields.items()))


#: Every registered rule by ID, in registration (= SDM) order.
REGISTRY: dict[str, Rule] = {}


def rule(
    rule_id: str,
    *,
    section: str,
    kind: Kind = "check",
    phase: Phase | None = None,
    qualification: int = 0,
) -> Callable[[Callable[..., Violations]], Callable[..., Violations]]:
    """Register a rule function under ``rule_id``."""
    if not RULE_ID_RE.match(rule_id):
        raise ValueError(f"rule ID {rule_id!r} does not match {RULE_ID_RE.pattern}")
    if kind == "check" and phase is None:
        raise ValueError(f"check rule {rule_id} needs a phase")

    def register(func: Callable[..., Violations]) -> Callable[..., Violations]:
        if rule_id in REGISTRY and REGISTRY[rule_id].func.__qualname__ != func.__qualname__:
            raise ValueError(f"rule ID {rule_id} registered twice")
        func.rule_id = rule_id  # type: ignore[attr-defined]
        REGISTRY[rule_id] = Rule(rule_id, func, kind, section, phase, qualification)
        return func

    return register


def me(func: Callable[..., Violations]) -> Rule:
    """The registered :class:`Rule` of a rule function (used inside rule bodies)."""
    return REGISTRY[func.rule_id]  # type: ignore[attr-defined]


_HEADER_RE = re.compile(
    r"^[ \t]*Scenario[ \t]+(?P<id>\S+)[ \t]+\((?P<expect>passes|fails)\):[ \t]*(?P<summary>.+)$",
    re.MULTILINE,
)


def parse_scenarios(r: Rule) -> Iterator[Scenario]:
    """The scenarios in a rule's docstring (see the module docstring for the format)."""
    import inspect

    doc = r.func.__doc__ or ""
    try:
        source, first_line = inspect.getsourcelines(r.func)
    except (OSError, TypeError):
        source, first_line = [], 0
    import doctest  # only when scenarios are read: the CLI's check never needs it

    parser = doctest.DocTestParser()
    headers = list(_HEADER_RE.finditer(doc))
    for i, m in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(doc)
        block = doc[m.end() : end]
        examples = tuple(parser.get_examples(inspect.cleandoc("\n" + block) if block.strip() else ""))
        # the header's own line in the file (a multi-line signature or decorator shifts the
        # docstring, so count in the source, not in the docstring)
        lineno = next((first_line + k for k, line in enumerate(source) if f"Scenario {m['id']} (" in line),
                      first_line + doc[: m.start()].count("\n") + 1)
        summary = [m["summary"].strip()]
        for line in block.split("\n")[1:]:  # the summary runs on to the first blank line
            if not line.strip() or line.strip().startswith(">>>"):
                break
            summary.append(line.strip())
        yield Scenario(
            m["id"], r.id, m["expect"], " ".join(summary), examples, lineno  # type: ignore[arg-type]
        )


class Verdict(Record):
    """What one rule says about one subject; its ``repr`` is what scenarios print."""

    rule_id: str
    violations: Violations
    missing: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.violations and not self.missing

    @property
    def outcome(self) -> str:
        if self.missing:
            return "not evaluated"
        return "fails" if self.violations else "passes"

    def __repr__(self) -> str:
        if self.missing:
            return "not evaluated: missing " + ", ".join(self.missing)
        if not self.violations:
            return "passes"
        return "\n".join("fails " + str(v) for v in self.violations)


def verdict(func: Callable[..., Violations], subject: object) -> Verdict:
    """Run one rule on one subject; a missing field gives *not evaluated*."""
    rule_id = func.rule_id  # type: ignore[attr-defined]
    try:
        return Verdict(rule_id, tuple(func(subject)))
    except MissingField as missing:
        return Verdict(rule_id, (), missing.names)


class ScenarioResult(Record):
    """A scenario run: what it states against what the model computes."""

    scenario: Scenario
    computed: str  #: passes / fails / not evaluated / error: ...
    printed: str
    problems: tuple[str, ...]


def run_scenario(s: Scenario, namespace: Mapping[str, Any]) -> ScenarioResult:
    """Execute a scenario's examples in ``namespace`` (its module's globals)."""
    import doctest

    checker, flags = doctest.OutputChecker(), doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    env = dict(namespace)
    problems: list[str] = []
    if not s.examples:
        return ScenarioResult(s, "error: no doctest", "", ("has no doctest example",))
    computed, printed = "error", ""
    for i, ex in enumerate(s.examples):
        last = i == len(s.examples) - 1
        try:
            if last:
                value = eval(compile(ex.source, f"<scenario {s.id}>", "eval"), env)  # noqa: S307
            else:
                exec(compile(ex.source, f"<scenario {s.id}>", "exec"), env)  # noqa: S102
                continue
        except Exception as exc:  # a broken scenario is reported, not raised
            return ScenarioResult(s, f"error: {type(exc).__name__}: {exc}", "", (f"raised {exc!r}",))
        printed = repr(value)
        if isinstance(value, Verdict):
            computed = value.outcome
            if value.rule_id != s.rule_id:
                problems.append(f"exercises {value.rule_id}, not its own rule {s.rule_id}")
        else:
            problems.append("last example does not produce a verdict")
        if not checker.check_output(ex.want, printed + "\n", flags):
            problems.append(f"prints {printed!r} but the doctest says {ex.want.strip()!r}")
    if computed != s.expect:
        problems.append(f"states the rule {s.expect} but the model computes: {computed}")
    return ScenarioResult(s, computed, printed, tuple(problems))
