"""Rule and model adequacy by mutation: would the checks notice if a rule or a KVM
behaviour model were subtly wrong?

For each registered rule, and each function of :mod:`vmxkb.kvm.models` that carries model
logic (the ``@behaviour`` functions and the helpers they call), the function's own source
is parsed and changed in one place at a time (a *mutant*):

- a comparison operator flipped (``==``/``!=``, ``<``/``>=``, ``>``/``<=``, ``in``/``not in``,
  ``is``/``is not``);
- an ``if`` test negated;
- one operand of an ``and``/``or`` dropped;
- ``&`` swapped with ``|``, and a bit constant tested with ``&`` replaced by the next
  constant of the same family (same name prefix, different value) in the module;
- an integer constant, or a shift amount, made one larger;
- ``return ()`` made to return a violation, and a returned value made ``()``;
- models only: a ``True``/``False`` literal flipped (the behaviours differ from one another
  by such flags: ``stuff_on_inject=True``), outside the signature.

Each mutant is compiled and turned into a function whose globals are a *copy* of the
module's namespace, with the mutant bound under the function's name; nothing global
changes. A rule mutant is *killed* when one of the rule's scenarios reports a problem (a
wrong outcome, a wrong printed verdict, or an exception). A model mutant is *killed* when
a check that runs in the build or the tests fails on it (see :class:`ModelJudge`): a
doctest example of ``models.py`` fails, or exploring the behaviours with the mutant
(:func:`vmxkb.kvm.explore.explore`) raises or gives finding classes on which the docs
gate's check of the deviation needs (``gate.py`` check 5) fails where it passes on the
models as they are. A survivor is either a missing scenario or doctest, or an equivalent
mutant, which ``equivalent_mutants.toml`` next to this file lists with the reason.

The mutants are built from code objects (``compile`` + ``types.FunctionType``), not with
``exec``: the only source compiled is the repository's own functions.

The results are cached by :func:`fingerprint` (a hash of everything that decides an item's
results): :func:`current` reuses a committed entry whose fingerprint matches and recomputes
the others; :func:`problems` lists every undocumented survivor and every stale equivalent
entry, for the docs gate.

``python -m vmxkb.mutants [--json PATH] [--md PATH] [--reuse PATH] [--check] [ID ...]``:
prints one line per rule or model and the scores; writes the results as JSON and as
Markdown. An ID is a rule ID, a behaviour ID (``KVM_...``) or a model helper's name
(``vmxkb.kvm.models.vmx_enter``).
"""

from __future__ import annotations

import __future__
import argparse
import ast
import copy
import doctest
import functools
import hashlib
import inspect
import json
import sys
import textwrap
import tomllib
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from vmxkb.registry import REGISTRY, Rule, run_scenario

PACKAGE_DIR = Path(__file__).resolve().parent
EQUIVALENTS_FILE = PACKAGE_DIR / "equivalent_mutants.toml"
EQUIVALENTS_REL = "rules/vmxkb/equivalent_mutants.toml"
MODELS_MODULE = "vmxkb.kvm.models"
#: The seed slice: these rule areas, the rules with these ID prefixes, and every model.
SEED_AREAS = ("guest_non_register", "event_injection", "after_entry", "bare_metal")
SEED_PREFIXES = ("ENTRY_CTRL_INJ_",)

_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE, ast.GtE: ast.Lt,
    ast.Gt: ast.LtE, ast.LtE: ast.Gt,
    ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
_OP_TEXT: dict[type[ast.AST], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=",
    ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not",
    ast.And: "and", ast.Or: "or", ast.BitAnd: "&", ast.BitOr: "|",
}


@dataclass(frozen=True)
class Mutation:
    """One change: the index of the node in ``ast.walk`` order, and how to change it."""

    index: int
    kind: str
    arg: Any
    description: str


@dataclass(frozen=True)
class Item:
    """Something mutated: a rule, or a function of the KVM behaviour models.

    A model's ID is its behaviour ID for a ``@behaviour`` function, else the helper's
    qualified name (``vmxkb.kvm.models.vmx_enter``)."""

    id: str
    kind: Literal["rule", "model"]
    func: Callable[..., Any]
    behaviours: tuple[str, ...] = ()  #: models: the behaviours whose exploration runs this function

    @property
    def source_file(self) -> str:
        return _rel(Path(inspect.getsourcefile(self.func) or ""))

    @property
    def namespace(self) -> dict[str, Any]:
        return dict(vars(sys.modules[self.func.__module__]))


@dataclass
class ItemResult:
    """The mutants of one rule or model and what became of them."""

    item_id: str
    kind: Literal["rule", "model"] = "rule"
    source_file: str = ""  #: the file to fix (repository-relative)
    fingerprint: str = ""
    behaviours: tuple[str, ...] = ()  #: models: see :attr:`Item.behaviours`
    killed: int = 0
    survived: list[str] = field(default_factory=list)
    equivalent: list[dict[str, str]] = field(default_factory=list)  #: survivors listed as equivalent

    @property
    def rule_id(self) -> str:
        return self.item_id

    @property
    def mutants(self) -> int:
        return self.killed + len(self.survived) + len(self.equivalent)

    @property
    def score(self) -> float:
        """Killed over the mutants that are not equivalent (1.0 when there are none)."""
        relevant = self.killed + len(self.survived)
        return self.killed / relevant if relevant else 1.0

    @property
    def seed(self) -> bool:
        """Whether the item is in the seed slice (see SEED_AREAS, SEED_PREFIXES)."""
        return (self.kind == "model" or Path(self.source_file).stem in SEED_AREAS
                or self.item_id.startswith(SEED_PREFIXES))

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mutants": self.mutants,
            "killed": self.killed,
            "survived": self.survived,
            "equivalent": self.equivalent,
            "score": round(self.score, 4),
            "fingerprint": self.fingerprint,
        }
        if self.kind == "model":
            out["behaviours"] = list(self.behaviours)
        return out

    @classmethod
    def from_json(cls, item: Item, entry: Mapping[str, Any]) -> ItemResult:
        """The result a JSON entry (:meth:`as_json`) records for ``item``."""
        survived, equivalent = list(entry["survived"]), [dict(e) for e in entry["equivalent"]]
        killed = int(entry["killed"])
        if killed + len(survived) + len(equivalent) != entry["mutants"]:
            raise ValueError(f"inconsistent entry for {item.id}")
        return cls(item.id, item.kind, item.source_file, str(entry["fingerprint"]),
                   tuple(entry.get("behaviours", item.behaviours)), killed, survived, equivalent)


RuleResult = ItemResult  #: the name this class had before models were mutated too


@functools.lru_cache(maxsize=None)
def _rel(path: Path) -> str:
    """The repository-relative name of a file of the package."""
    try:
        return "rules/vmxkb/" + path.resolve().relative_to(PACKAGE_DIR).as_posix()
    except ValueError:
        return path.as_posix()


def _function_tree(func: Callable[..., Any]) -> tuple[ast.Module, int, str]:
    """The function's source as a module holding only its ``def`` (decorators dropped),
    the file line of its first source line, and the source text."""
    lines, first = inspect.getsourcelines(func)
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    fn.decorator_list = []
    return tree, first, source


def _docstring(fn: ast.FunctionDef) -> ast.AST | None:
    first = fn.body[0] if fn.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.value
    return None


def _family(name: str, namespace: Mapping[str, Any]) -> str | None:
    """The next int constant after ``name`` in its family (same prefix up to the last
    ``_``), in name order, that has a different value; None if there is none."""
    value = namespace.get(name)
    if not name.isupper() or not isinstance(value, int) or isinstance(value, bool) or "_" not in name:
        return None
    prefix = name.rsplit("_", 1)[0] + "_"
    family = sorted(
        n for n, v in namespace.items()
        if n.startswith(prefix) and n.isupper() and isinstance(v, int) and not isinstance(v, bool)
    )
    after = family[family.index(name) + 1 :] + family[: family.index(name)]
    return next((n for n in after if namespace[n] != value), None)


def _snippet(node: ast.AST, source: str) -> str:
    text = ast.get_source_segment(source, node) or ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _constant_snippet(node: ast.Constant, parents: Mapping[int, ast.AST], source: str) -> str:
    """Models: a literal named by where it stands (``kw=True``, ``f(...) argument 3 `0```,
    the expression holding it), since a bare ``0`` or ``True`` does not say which one
    changed."""
    parent = parents.get(id(node))
    if isinstance(parent, ast.keyword) and parent.arg:
        return f"`{parent.arg}={_snippet(node, source)}`"
    if isinstance(parent, ast.Call) and node in parent.args:
        return f"`{_snippet(parent.func, source)}(...)` argument {parent.args.index(node) + 1} `{_snippet(node, source)}`"
    if isinstance(parent, ast.expr):  # `RFLAGS_TF if tf else 0`, `0, DR6_INIT, "..."`
        return f"`{_snippet(parent, source)}` literal `{_snippet(node, source)}`"
    return f"`{_snippet(node, source)}`"


def mutations(func: Callable[..., Any], namespace: Mapping[str, Any], *, model: bool = False) -> list[Mutation]:
    """Every mutation of ``func``, in ``ast.walk`` order (deterministic). ``model``: the
    model operators (literals named by their place, booleans flipped, nothing in the
    signature, whose defaults a mutant does not recompute)."""
    tree, _, source = _function_tree(func)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    doc = _docstring(fn)
    # nodes inside nested function definitions: their returns are not the rule's
    nested_returns = {
        id(r) for d in ast.walk(fn) if d is not fn and isinstance(d, (ast.FunctionDef, ast.Lambda))
        for r in ast.walk(d) if isinstance(r, ast.Return)
    }
    skip = {id(n) for j in ast.walk(fn) if isinstance(j, ast.JoinedStr) for n in ast.walk(j)}
    parents: dict[int, ast.AST] = {}
    if model:
        skip |= {id(n) for n in ast.walk(fn.args)} | ({id(n) for n in ast.walk(fn.returns)} if fn.returns else set())
        parents = {id(c): p for p in ast.walk(fn) for c in ast.iter_child_nodes(p)}
    # where a mutant is: its line counted from the first line of the body after the
    # docstring ("body line 3"), so that a scenario added to the docstring does not rename
    # the function's mutants (equivalent_mutants.toml names them by their description)
    body = fn.body[1:] if doc is not None and len(fn.body) > 1 else fn.body
    start = body[0].lineno
    out: list[Mutation] = []
    for index, node in enumerate(ast.walk(tree)):
        if node is doc or id(node) in skip:
            continue
        lineno = getattr(node, "lineno", start)
        where = f"body line {lineno - start + 1}" if lineno >= start else "signature"
        if isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                new = _FLIP[type(op)]
                out.append(Mutation(index, "cmp", k, f"{where} `{_snippet(node, source)}`: "
                                                      f"{_OP_TEXT[type(op)]} -> {_OP_TEXT[new]}"))
        elif isinstance(node, ast.If):
            out.append(Mutation(index, "not-if", None, f"{where} `if {_snippet(node.test, source)}`: negated"))
        elif isinstance(node, ast.BoolOp):
            for k, value in enumerate(node.values):
                out.append(Mutation(index, "drop", k, f"{where} `{_snippet(node, source)}`: "
                                                       f"{_OP_TEXT[type(node.op)]} operand "
                                                       f"`{_snippet(value, source)}` dropped"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitAnd, ast.BitOr)):
            new_op = ast.BitOr if isinstance(node.op, ast.BitAnd) else ast.BitAnd
            out.append(Mutation(index, "bitop", None, f"{where} `{_snippet(node, source)}`: "
                                                       f"{_OP_TEXT[type(node.op)]} -> {_OP_TEXT[new_op]}"))
            if isinstance(node.op, ast.BitAnd):
                for side in ("left", "right"):
                    operand = getattr(node, side)
                    if isinstance(operand, ast.Name) and (other := _family(operand.id, namespace)):
                        out.append(Mutation(index, "bitconst", (side, other),
                                            f"{where} `{_snippet(node, source)}`: {operand.id} -> {other}"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.LShift, ast.RShift)):
            if not (isinstance(node.right, ast.Constant) and type(node.right.value) is int):
                out.append(Mutation(index, "shift", None,
                                    f"{where} `{_snippet(node, source)}`: shift amount + 1"))
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            text = _constant_snippet(node, parents, source) if model else f"`{_snippet(node, source)}`"
            out.append(Mutation(index, "int", None, f"{where} {text}: {node.value} -> {node.value + 1}"))
        elif model and isinstance(node, ast.Constant) and type(node.value) is bool:
            out.append(Mutation(index, "bool", None, f"{where} {_constant_snippet(node, parents, source)}: "
                                                     f"{node.value} -> {not node.value}"))
        elif isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Tuple) and not value.elts:
                out.append(Mutation(index, "ret-violation", None, f"{where} `return ()`: returns a violation"))
            elif isinstance(value, ast.Tuple) or id(node) not in nested_returns:
                out.append(Mutation(index, "ret-empty", None,
                                    f"{where} `return {_snippet(value, source)}`: returns ()"))
    # two mutants with one description (two `0`s on a line, `a <= b <= c`) could not be
    # told apart in equivalent_mutants.toml: the later ones are numbered
    seen: dict[str, int] = {}
    for k, m in enumerate(out):
        n = seen[m.description] = seen.get(m.description, 0) + 1
        if n > 1:
            out[k] = Mutation(m.index, m.kind, m.arg, f"{m.description} (#{n})")
    return out


def _apply(tree: ast.Module, m: Mutation, func_name: str) -> ast.Module:
    tree = copy.deepcopy(tree)
    node = next(n for i, n in enumerate(ast.walk(tree)) if i == m.index)
    if m.kind == "cmp":
        assert isinstance(node, ast.Compare)
        node.ops[m.arg] = _FLIP[type(node.ops[m.arg])]()
    elif m.kind == "not-if":
        assert isinstance(node, ast.If)
        node.test = ast.UnaryOp(ast.Not(), node.test)
    elif m.kind == "drop":
        assert isinstance(node, ast.BoolOp)
        rest = [v for k, v in enumerate(node.values) if k != m.arg]
        if len(rest) == 1:  # replace the BoolOp by its remaining operand, in its parent
            _replace(tree, node, rest[0])
        else:
            node.values = rest
    elif m.kind == "bitop":
        assert isinstance(node, ast.BinOp)
        node.op = ast.BitOr() if isinstance(node.op, ast.BitAnd) else ast.BitAnd()
    elif m.kind == "bitconst":
        assert isinstance(node, ast.BinOp)
        side, other = m.arg
        setattr(node, side, ast.Name(other, ast.Load()))
    elif m.kind == "shift":
        assert isinstance(node, ast.BinOp)
        node.right = ast.BinOp(node.right, ast.Add(), ast.Constant(1))
    elif m.kind == "int":
        assert isinstance(node, ast.Constant)
        node.value = node.value + 1
    elif m.kind == "bool":
        assert isinstance(node, ast.Constant)
        node.value = not node.value
    elif m.kind == "ret-violation":
        assert isinstance(node, ast.Return)
        node.value = ast.parse(f"(me({func_name}).violation('mutant'),)", mode="eval").body
    elif m.kind == "ret-empty":
        assert isinstance(node, ast.Return)
        node.value = ast.Tuple([], ast.Load())
    elif m.kind == "identity":  # no change: the pipeline's own control (tests/test_mutation.py)
        pass
    else:  # pragma: no cover - every kind made by mutations() is handled above
        raise ValueError(m.kind)
    return ast.fix_missing_locations(tree)


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list):
                for k, item in enumerate(value):
                    if item is old:
                        value[k] = new
                        return
    raise ValueError("node not found")  # pragma: no cover - the node comes from this tree


def _compile_mutant(func: Callable[..., Any], m: Mutation, namespace: dict[str, Any], label: str) -> types.FunctionType:
    tree, _, _ = _function_tree(func)
    mutated = _apply(tree, m, func.__name__)
    flags = __future__.annotations.compiler_flag if "annotations" in namespace else 0
    # a file name of its own: coverage and tracebacks must never credit a mutant's lines to
    # the function's file
    code = compile(mutated, f"<mutant of {label}>", "exec", flags=flags, dont_inherit=True)
    fcode = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == func.__name__)
    mutant = types.FunctionType(fcode, namespace, func.__name__, func.__defaults__)
    mutant.__kwdefaults__ = func.__kwdefaults__
    mutant.__doc__ = func.__doc__
    return mutant


def build_mutant(r: Rule, m: Mutation) -> dict[str, Any]:
    """A copy of the rule module's namespace with the mutant bound under the rule's name."""
    namespace = dict(vars(sys.modules[r.func.__module__]))
    mutant = _compile_mutant(r.func, m, namespace, r.id)
    mutant.rule_id = r.id  # type: ignore[attr-defined]
    namespace[r.func.__name__] = mutant
    return namespace


def killed(r: Rule, namespace: dict[str, Any]) -> bool:
    """Whether some scenario of ``r`` reports a problem when run in ``namespace``."""
    for s in r.scenarios:
        try:
            if run_scenario(s, namespace).problems:
                return True
        except Exception:  # noqa: BLE001 - an exception while running kills the mutant
            return True
    return False


def load_equivalents(path: Path = EQUIVALENTS_FILE) -> dict[tuple[str, str], str]:
    """(rule or model ID, mutant description) -> why that mutant is equivalent. A rule's
    entry names it with ``rule = "ID"``, a model's with ``model = "ID"`` (a behaviour ID or
    ``vmxkb.kvm.models.<helper>``)."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {(e.get("rule") or e.get("model") or "", e.get("mutant", "")): e.get("reason", "")
            for e in data.get("equivalent", [])}


def _tally(item: Item, fp: str, verdicts: Iterable[tuple[Mutation, bool]],
           equivalents: Mapping[tuple[str, str], str]) -> ItemResult:
    result = ItemResult(item.id, item.kind, item.source_file, fp, item.behaviours)
    for m, dead in verdicts:
        if dead:
            result.killed += 1
        elif (item.id, m.description) in equivalents:
            result.equivalent.append({"mutant": m.description, "reason": equivalents[(item.id, m.description)]})
        else:
            result.survived.append(m.description)
    return result


def mutate_rule(r: Rule, equivalents: Mapping[tuple[str, str], str] | None = None,
                _sources: _Sources | None = None) -> ItemResult:
    """Every mutant of one rule, run against its scenarios."""
    equivalents = load_equivalents() if equivalents is None else equivalents
    item = Item(r.id, "rule", r.func)
    fp = fingerprint(item, equivalents, _sources=_sources)

    def verdicts() -> Iterable[tuple[Mutation, bool]]:
        for m in mutations(r.func, item.namespace):
            try:
                dead = killed(r, build_mutant(r, m))
            except Exception:  # noqa: BLE001 - a mutant that does not even build counts as killed
                dead = True
            yield m, dead

    return _tally(item, fp, verdicts(), equivalents)


# --- the KVM behaviour models ------------------------------------------------------------------


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            names |= _code_names(c)
    return names


def _model_functions() -> dict[str, types.FunctionType]:
    """The module-level functions of ``vmxkb.kvm.models``, by name."""
    from vmxkb.kvm import models

    ns = vars(models)
    return {n: f for n, f in ns.items()
            if isinstance(f, types.FunctionType) and f.__module__ == MODELS_MODULE and f.__globals__ is ns}


def model_items() -> dict[str, Item]:
    """Every model function that carries model logic: each ``@behaviour`` function (by its
    behaviour ID) and every module function a behaviour calls, directly or not (by its
    qualified name). The registration decorator and the input domains are not model logic
    and are not mutated."""
    from vmxkb.kvm.models import BEHAVIOURS

    funcs = _model_functions()
    calls = {n: _code_names(f.__code__) & funcs.keys() for n, f in funcs.items()}

    def reach(name: str) -> set[str]:
        seen, todo = {name}, [name]
        while todo:
            for callee in calls[todo.pop()] - seen:
                seen.add(callee)
                todo.append(callee)
        return seen

    reached = {bid: reach(b.func.__name__) for bid, b in BEHAVIOURS.items()}
    ids = {b.func.__name__: bid for bid, b in BEHAVIOURS.items()}
    out: dict[str, Item] = {}
    for name in sorted(set().union(*reached.values())):
        item_id = ids.get(name, f"{MODELS_MODULE}.{name}")
        users = tuple(sorted(bid for bid, names in reached.items() if name in names))
        out[item_id] = Item(item_id, "model", funcs[name], users)
    return dict(sorted(out.items()))


def _relabel(code: types.CodeType, filename: str) -> types.CodeType:
    """``code`` (and the code nested in it) under another file name: model code run in a
    judge's namespace, on a mutant's values, must never be credited to its file by
    coverage (a branch only a mutant reaches is no branch a test covers)."""
    consts = tuple(_relabel(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _memo(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` (pure, over frozen records) with its results remembered."""
    table: dict[Any, Any] = {}

    def call(*args: Any, **kwargs: Any) -> Any:
        if kwargs:
            return func(*args, **kwargs)
        try:
            return table[args]
        except KeyError:
            value = table[args] = func(*args)
            return value
        except TypeError:  # an unhashable argument (a mutant's doing)
            return func(*args)

    return call


Classes = frozenset[tuple[str, str, tuple[str, ...]]]
Deviations = Mapping[str, tuple[frozenset[str], str, frozenset[str]]]


def deviation_needs() -> dict[str, tuple[frozenset[str], str, frozenset[str]]]:
    """The deviation needs as written in ``docs/`` (read with :mod:`vmxkb.knowledge`'s
    parser, afresh): ID -> (affects, kind, breaks)."""
    from vmxkb.knowledge import docs_root, parse_page

    root = docs_root()
    if root is None:
        raise RuntimeError("no docs/ tree next to the package: model mutants are judged against its deviation needs")
    out: dict[str, tuple[frozenset[str], str, frozenset[str]]] = {}
    for path in sorted(Path(root).rglob("*.md")):
        rel = path.relative_to(Path(root).parent).as_posix()
        for n in parse_page(path.read_text(encoding="utf-8"), rel):
            if n.type == "deviation":
                out.setdefault(n.id, (frozenset(n.links("affects")), n.options.get("kind", ""), frozenset(n.links("breaks"))))
    return dict(sorted(out.items()))


def gate_problems(classes: Iterable[tuple[str, str, tuple[str, ...]]], deviations: Deviations) -> frozenset[tuple[str, Any]]:
    """The docs gate's check 5 (:func:`vmxkb.gate.coverage`) on these finding classes: the
    classes no deviation covers and the deviations left idle."""
    from vmxkb.gate import coverage

    uncovered, idle = coverage(classes, deviations)
    return frozenset({("uncovered finding", key) for key, _ in uncovered} | {("idle deviation", did) for did, _ in idle})


class ModelJudge:
    """What a model mutant is judged with, built once per run.

    A model mutant is killed when, with the mutant bound in a copy of the models' namespace
    (every model function rebound to that copy, so that the behaviours call the mutant):

    - a doctest example of ``vmxkb.kvm.models`` fails (they run under ``pytest
      --doctest-modules``); or
    - exploring a behaviour whose code reaches the mutated function
      (:func:`vmxkb.kvm.explore.explore`, its code run with these globals) raises; or
    - the finding classes of all behaviours make the docs gate's check 5 fail
      (:func:`gate_problems` against the deviation needs in ``docs/``) where the models as
      they are make it pass: a finding that no deviation covers, or a deviation left
      covering nothing.

    ``evaluate`` (the SDM entry checks) and the bare-metal verdicts are remembered across
    mutants: they are pure functions of frozen records, and the mutants keep asking about
    the same few VMCSs.
    """

    def __init__(self) -> None:
        from vmxkb import sdm
        from vmxkb.kvm import explore, models

        sdm.load_all()
        self.module = models
        self.funcs = _model_functions()
        self._codes = {n: _relabel(f.__code__, f"<{n}, judging mutants>") for n, f in self.funcs.items()}
        self.evaluate = _memo(explore.evaluate)
        g = dict(vars(explore))
        g["evaluate"] = self.evaluate
        g["_bare_metal_rules"] = _memo(explore._bare_metal_rules)
        self._explore = types.FunctionType(_relabel(explore.explore.__code__, "<explore, judging mutants>"), g,
                                           "explore", explore.explore.__defaults__)
        self.behaviours = dict(models.BEHAVIOURS)
        self.deviations = deviation_needs()
        self.doctests = [t for t in doctest.DocTestFinder().find(models) if t.examples]
        base = self.namespace()
        self.classes = {bid: self._classes(base, bid) for bid in sorted(self.behaviours)}
        self.gate = gate_problems(self.all_classes(self.classes), self.deviations)
        self.doctest_failures = self._doctest_failures(base)

    @staticmethod
    def all_classes(classes: Mapping[str, Classes]) -> Classes:
        return frozenset().union(*classes.values())

    def namespace(self, item: Item | None = None, m: Mutation | None = None) -> dict[str, Any]:
        """A copy of the models' namespace, every model function rebound to it, with the
        mutant of ``item`` (if given) bound under the function's name."""
        ns = dict(vars(self.module))
        ns["evaluate"] = self.evaluate
        for name, f in self.funcs.items():
            g = types.FunctionType(self._codes[name], ns, f.__name__, f.__defaults__, f.__closure__)
            g.__kwdefaults__, g.__doc__ = f.__kwdefaults__, f.__doc__
            ns[name] = g
        if item is not None and m is not None:
            ns[item.func.__name__] = _compile_mutant(item.func, m, ns, item.id)
        return ns

    def _classes(self, ns: Mapping[str, Any], bid: str) -> Classes:
        from vmxkb.kvm.models import Behaviour

        b = self.behaviours[bid]
        return frozenset(f.key for f in self._explore(Behaviour(b.id, ns[b.func.__name__], b.domain, b.vendor, b.summary)))

    def _doctest_failures(self, ns: Mapping[str, Any]) -> int:
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
        failed = 0
        for t in self.doctests:
            t = copy.copy(t)
            t.globs = dict(ns)
            failed += runner.run(t, out=lambda _: None).failed
        return failed

    def explored(self, item: Item, ns: Mapping[str, Any]) -> dict[str, Classes]:
        """The finding classes of every behaviour with ``ns`` (only the behaviours that run
        ``item``'s function are explored again)."""
        return {bid: self._classes(ns, bid) if bid in item.behaviours else c for bid, c in self.classes.items()}

    def killed(self, item: Item, ns: Mapping[str, Any]) -> bool:
        try:
            if self._doctest_failures(ns) > self.doctest_failures:
                return True
            classes = self.explored(item, ns)
        except Exception:  # noqa: BLE001 - the build's exploration would raise too
            return True
        return bool(gate_problems(self.all_classes(classes), self.deviations) - self.gate)


def mutate_model(item: Item, equivalents: Mapping[tuple[str, str], str] | None = None,
                 judge: ModelJudge | None = None, _sources: _Sources | None = None) -> ItemResult:
    """Every mutant of one model function, judged by :class:`ModelJudge`."""
    equivalents = load_equivalents() if equivalents is None else equivalents
    judge = judge or ModelJudge()
    fp = fingerprint(item, equivalents, _sources=_sources)

    def verdicts() -> Iterable[tuple[Mutation, bool]]:
        for m in mutations(item.func, item.namespace, model=True):
            try:
                dead = judge.killed(item, judge.namespace(item, m))
            except Exception:  # noqa: BLE001 - a mutant that does not even build counts as killed
                dead = True
            yield m, dead

    return _tally(item, fp, verdicts(), equivalents)


# --- items, fingerprints, the cache --------------------------------------------------------------


def items() -> dict[str, Item]:
    """Every rule (by rule ID, sorted) then every model function (sorted), by ID."""
    from vmxkb import sdm

    sdm.load_all()
    out = {rid: Item(rid, "rule", REGISTRY[rid].func) for rid in sorted(REGISTRY)}
    out.update(model_items())
    return out


_FILES: dict[Path, tuple[tuple[int, int], str, frozenset[str]]] = {}


def _file_info(path: Path) -> tuple[str, frozenset[str]]:
    """A module file's SHA-256 and the vmxkb modules it imports anywhere in it (read again
    when the file changes)."""
    st = path.stat()
    key = (st.st_mtime_ns, st.st_size)
    cached = _FILES.get(path)
    if cached and cached[0] == key:
        return cached[1], cached[2]
    data = path.read_bytes()
    names: set[str] = set()
    try:
        tree = ast.parse(data)
    except SyntaxError:
        tree = ast.Module([], [])
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] == "vmxkb"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] == "vmxkb":
            names.add(node.module)
            if PACKAGE_DIR.parent.joinpath(*node.module.split(".")).is_dir():  # `from vmxkb.kvm import models`
                names |= {f"{node.module}.{a.name}" for a in node.names}
    _FILES[path] = (key, hashlib.sha256(data).hexdigest(), frozenset(names))
    return _FILES[path][1], _FILES[path][2]


class _Sources:
    """What fingerprints read, looked up once per run (:func:`current` fingerprints every
    item with one of these)."""

    def __init__(self, equivalents: Mapping[tuple[str, str], str] | None = None) -> None:
        self.equivalents = load_equivalents() if equivalents is None else equivalents
        self._files: dict[str, Path | None] = {}
        self._closures: dict[str, frozenset[Path]] = {}
        self._deviations: list[Any] | None = None

    def module_file(self, name: str) -> Path | None:
        if name not in self._files:
            base = PACKAGE_DIR.parent.joinpath(*name.split("."))
            self._files[name] = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
        return self._files[name]

    def closure(self, module: str) -> frozenset[Path]:
        """The files of ``module``, of the vmxkb modules it imports (transitively), and of
        the packages holding them."""
        if module not in self._closures:
            files: set[Path] = set()
            todo = [module]
            while todo:
                parts = todo.pop().split(".")
                for k in range(1, len(parts) + 1):
                    p = self.module_file(".".join(parts[:k]))
                    if p is not None and p not in files:
                        files.add(p)
                        todo.extend(_file_info(p)[1])
            self._closures[module] = frozenset(files)
        return self._closures[module]

    def dependencies(self, item: Item) -> set[Path]:
        if item.kind == "rule":
            modules = [item.func.__module__, "vmxkb.registry", "vmxkb.sdm"]
        else:
            modules = [MODELS_MODULE, "vmxkb.kvm.explore", "vmxkb.knowledge",
                       *sorted(f"vmxkb.sdm.{p.stem}" for p in (PACKAGE_DIR / "sdm").glob("*.py"))]
        return set().union(*(self.closure(m) for m in modules)) | {Path(__file__).resolve()}

    def deviations(self) -> list[Any]:
        if self._deviations is None:
            self._deviations = [[d, sorted(a), k, sorted(b)] for d, (a, k, b) in deviation_needs().items()]
        return self._deviations


def _dependencies(item: Item) -> set[Path]:
    """The files whose text goes into ``item``'s fingerprint."""
    return _Sources({}).dependencies(item)


def fingerprint(item: Item | Rule | str, equivalents: Mapping[tuple[str, str], str] | None = None,
                *, _sources: _Sources | None = None) -> str:
    """A hash of everything that decides ``item``'s mutation results: the source of its
    module and of every vmxkb module that module imports (transitively), of this mutator,
    the equivalent entries naming it, the Python version; for a model also every rule
    module (the exploration runs all the entry checks and bare-metal rules), the explorer
    and the deviation needs in ``docs/`` it is judged against."""
    if isinstance(item, str):
        item = items()[item]
    elif isinstance(item, Rule):
        item = Item(item.id, "rule", item.func)
    src = _sources or _Sources(equivalents)
    if _sources is not None and equivalents is not None:
        src.equivalents = equivalents
    h = hashlib.sha256()
    for path in sorted(src.dependencies(item), key=_rel):
        h.update(f"{_rel(path)}\0{_file_info(path)[0]}\0".encode())
    extra: dict[str, Any] = {
        "item": [item.id, item.kind, item.func.__name__],
        "python": list(sys.version_info[:2]),
        "equivalent": sorted([d, r] for (i, d), r in src.equivalents.items() if i == item.id),
    }
    if item.kind == "model":
        extra["deviations"] = src.deviations()
    h.update(json.dumps(extra, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _compute(item: Item, src: _Sources, judge: Callable[[], ModelJudge]) -> ItemResult:
    if item.kind == "rule":
        return mutate_rule(REGISTRY[item.id], src.equivalents, _sources=src)
    return mutate_model(item, src.equivalents, judge(), _sources=src)


def current(committed: Mapping[str, Any] | None = None, ids: Sequence[str] | None = None) -> list[ItemResult]:
    """The results of every rule and model (or of ``ids``): a committed entry (the JSON
    :func:`as_json` writes) is reused when its fingerprint matches the item's, every other
    item is mutated afresh."""
    known = items()
    chosen = list(known) if not ids else [i for i in known if i in set(ids)]
    src = _Sources()
    old = {**(committed or {}).get("rules", {}), **(committed or {}).get("models", {})}
    judge: list[ModelJudge] = []

    def get_judge() -> ModelJudge:
        if not judge:
            judge.append(ModelJudge())
        return judge[0]

    out = []
    for iid in chosen:
        item, entry = known[iid], old.get(iid)
        if isinstance(entry, Mapping) and entry.get("fingerprint") == fingerprint(item, _sources=src):
            try:
                out.append(ItemResult.from_json(item, entry))
                continue
            except (KeyError, TypeError, ValueError):
                pass  # a damaged entry: recompute it
        out.append(_compute(item, src, get_judge))
    return out


def run(ids: Sequence[str] | None = None) -> list[ItemResult]:
    """Mutate the given rules and models (all by default): rules by ID, then models by ID."""
    return current(None, ids)


def problems(results: Sequence[ItemResult]) -> list[tuple[str, str, str]]:
    """(item ID, file to fix, message) for every surviving mutant that is not listed as
    equivalent, and every equivalent entry that names no surviving mutant of these results
    (an unknown item, a mutant the mutator does not make, one that is killed) or gives no
    reason."""
    out: list[tuple[str, str, str]] = []
    for r in results:
        fix = "a scenario of the rule" if r.kind == "rule" else "a doctest example in the model's docstring"
        for d in r.survived:
            out.append((r.item_id, r.source_file,
                        f"mutant of {r.item_id} survives: {d} (add {fix} that tells it apart, or list it in "
                        f"{EQUIVALENTS_REL} with the reason it is equivalent)"))
    by_id = {r.item_id: r for r in results}
    known: dict[str, Item] | None = None
    for (iid, desc), reason in sorted(load_equivalents().items()):
        known = known if known is not None else items()
        if iid not in known:
            out.append((iid, EQUIVALENTS_REL, f"equivalent entry names {iid!r}, which is no rule or model (mutant {desc!r})"))
            continue
        if not reason.strip():
            out.append((iid, EQUIVALENTS_REL, f"equivalent entry for {iid} gives no reason (mutant {desc!r})"))
        r = by_id.get(iid)
        if r is None or any(e["mutant"] == desc for e in r.equivalent):
            continue
        item = known[iid]
        made = {m.description for m in mutations(item.func, item.namespace, model=item.kind == "model")}
        why = "which the scenarios kill" if desc in made else "which the mutator does not make"
        out.append((iid, EQUIVALENTS_REL, f"equivalent entry for {iid} names mutant {desc!r}, {why}: remove or fix it"))
    return out


# --- reports -----------------------------------------------------------------------------------------


def totals(results: Sequence[ItemResult], noun: str = "rules") -> dict[str, Any]:
    k = sum(r.killed for r in results)
    s = sum(len(r.survived) for r in results)
    e = sum(len(r.equivalent) for r in results)
    return {noun: len(results), "mutants": k + s + e, "killed": k, "survived": s, "equivalent": e,
            "score": round(k / (k + s), 4) if k + s else 1.0}


def as_json(results: Sequence[ItemResult]) -> dict[str, Any]:
    rules = [r for r in results if r.kind == "rule"]
    models = [r for r in results if r.kind == "model"]
    return {
        "total": totals(rules),
        "rules": {r.item_id: r.as_json() for r in rules},
        "models_total": totals(models, "models"),
        "models": {r.item_id: r.as_json() for r in models},
        "combined_total": totals(results, "items"),
        "seed_total": totals([r for r in results if r.seed], "items"),
    }


def _line(t: Mapping[str, Any], what: str) -> str:
    return (f"**{t['killed']} of {t['mutants'] - t['equivalent']}** non-equivalent mutants killed "
            f"(**{100 * t['score']:.1f}%**) over {what}; {t['equivalent']} equivalent, {t['survived']} surviving.")


def as_markdown(results: Sequence[ItemResult]) -> str:
    rules = [r for r in results if r.kind == "rule"]
    models = [r for r in results if r.kind == "model"]
    t, tm = totals(rules), totals(models, "models")
    tc, ts = totals(results, "items"), totals([r for r in results if r.seed], "items")
    out = [
        f"Overall: {_line(t, str(t['rules']) + ' rules')}",
        "",
        f"KVM behaviour models: {_line(tm, str(tm['models']) + ' model functions')}",
        "",
        f"Combined: {_line(tc, str(tc['items']) + ' rules and model functions')}",
        "",
        f"Seed slice: {_line(ts, str(ts['items']) + ' rules and model functions')}",
        "",
        "| Rule | Mutants | Killed | Survived | Equivalent | Score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rules:
        out.append(f"| `{r.item_id}` | {r.mutants} | {r.killed} | {len(r.survived)} | "
                   f"{len(r.equivalent)} | {100 * r.score:.0f}% |")
    if models:
        out += ["", "### KVM behaviour models", "",
                "| Model function | Explored in | Mutants | Killed | Survived | Equivalent | Score |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in models:
            used = ", ".join(f"`{b}`" for b in r.behaviours) if r.behaviours != (r.item_id,) else "itself"
            out.append(f"| `{r.item_id}` | {used} | {r.mutants} | {r.killed} | {len(r.survived)} | "
                       f"{len(r.equivalent)} | {100 * r.score:.0f}% |")
    survivors = [(r.item_id, d) for r in results for d in r.survived]
    out += ["", "### Surviving mutants", ""]
    out += [f"- `{rid}` {d}" for rid, d in survivors] or ["None."]
    equiv = [(r.item_id, e) for r in results for e in r.equivalent]
    out += ["", "### Equivalent mutants", ""]
    out += [f"- `{rid}` {e['mutant']}: {e['reason']}" for rid, e in equiv] or ["None."]
    return "\n".join(out) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)  # one line, whatever it quotes
        print(f"vmxkb.mutants: {text}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="python -m vmxkb.mutants", description="Mutation score of the rules' scenarios and of the KVM models' checks.")
    p.add_argument("ids", nargs="*", metavar="ID",
                   help="rule IDs, behaviour IDs or vmxkb.kvm.models.<helper> names to mutate (default: all)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--md", type=Path, help="write the results as a Markdown table here")
    p.add_argument("--reuse", type=Path, metavar="JSON", help="reuse the entries of these results whose fingerprint matches")
    p.add_argument("--check", action="store_true", help="print every undocumented survivor and stale equivalent entry; exit 1 if any")
    args = p.parse_args(argv)
    known = items()
    unknown = [i for i in args.ids if i not in known]
    if unknown:
        p.error(f"unknown rule or model ID {unknown[0]}")
    committed = None
    if args.reuse:
        try:
            committed = json.loads(args.reuse.read_text(encoding="utf-8"))
            if not isinstance(committed, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            p.error(f"cannot reuse {args.reuse}: {e}")
    results = current(committed, args.ids)
    for r in results:
        print(f"{r.item_id}: {r.mutants} mutants, {r.killed} killed, {len(r.survived)} survived, "
              f"{len(r.equivalent)} equivalent")
        for d in r.survived:
            print(f"    survived: {d}")
    for noun, t in (("rules", totals([r for r in results if r.kind == "rule"])),
                    ("models", totals([r for r in results if r.kind == "model"], "models")),
                    ("total", totals(results, "items")),
                    ("seed slice", totals([r for r in results if r.seed], "items"))):
        print(f"{noun}: {t['mutants']} mutants, {t['killed']} killed, {t['survived']} survived, "
              f"{t['equivalent']} equivalent; score {100 * t['score']:.1f}%")
    try:
        if args.json:
            args.json.write_text(json.dumps(as_json(results), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if args.md:
            args.md.write_text(as_markdown(results), encoding="utf-8")
    except OSError as e:
        p.error(f"cannot write results: {e}")
    if args.check:
        found = problems(results)
        for iid, file, message in found:
            print(f"{file}: {iid}: {message}", file=sys.stderr)
        return 1 if found else 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
