"""Rule adequacy by mutation: would the scenarios notice if a rule were subtly wrong?

For each registered rule, the rule function's own source is parsed and changed in one
place at a time (a *mutant*):

- a comparison operator flipped (``==``/``!=``, ``<``/``>=``, ``>``/``<=``, ``in``/``not in``,
  ``is``/``is not``);
- an ``if`` test negated;
- one operand of an ``and``/``or`` dropped;
- ``&`` swapped with ``|``, and a bit constant tested with ``&`` replaced by the next
  constant of the same family (same name prefix, different value) in the rule's module;
- an integer constant, or a shift amount, made one larger;
- ``return ()`` made to return a violation, and a returned violation made ``()``.

Each mutant is compiled and turned into a function whose globals are a *copy* of the rule
module's namespace, with the mutant bound under the rule function's name (so the
scenarios, which call the rule by that name, run the mutant; nothing global changes).
The mutant is *killed* when one of the rule's scenarios reports a problem (a wrong
outcome, a wrong printed verdict, or an exception), else it *survives*. A survivor is a
change to the rule that no scenario can tell from the rule: either a missing scenario or
an equivalent mutant, which ``equivalent_mutants.toml`` next to this file lists with the
reason it is equivalent.

The mutants are built from code objects (``compile`` + ``types.FunctionType``), not with
``exec``: the only source compiled is the repository's own rule functions.

``python -m vmxkb.mutants [--json PATH] [--md PATH] [RULE_ID ...]``: prints one line per
rule and the overall score; writes the results as JSON and as a Markdown table.
"""

from __future__ import annotations

import __future__
import argparse
import ast
import copy
import inspect
import json
import sys
import textwrap
import tomllib
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from vmxkb.registry import REGISTRY, Rule, run_scenario

EQUIVALENTS_FILE = Path(__file__).with_name("equivalent_mutants.toml")

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


@dataclass
class RuleResult:
    """The mutants of one rule and what became of them."""

    rule_id: str
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    equivalent: list[dict[str, str]] = field(default_factory=list)  #: survivors listed as equivalent

    @property
    def mutants(self) -> int:
        return len(self.killed) + len(self.survived) + len(self.equivalent)

    @property
    def score(self) -> float:
        """Killed over the mutants that are not equivalent (1.0 when there are none)."""
        relevant = len(self.killed) + len(self.survived)
        return len(self.killed) / relevant if relevant else 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "mutants": self.mutants,
            "killed": len(self.killed),
            "survived": self.survived,
            "equivalent": self.equivalent,
            "score": round(self.score, 4),
        }


def _function_tree(func: Callable[..., Any]) -> tuple[ast.Module, int, str]:
    """The rule function's source as a module holding only its ``def`` (decorators
    dropped), the file line of its first source line, and the source text."""
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


def _family(name: str, namespace: dict[str, Any]) -> str | None:
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


def mutations(func: Callable[..., Any], namespace: dict[str, Any]) -> list[Mutation]:
    """Every mutation of ``func``, in ``ast.walk`` order (deterministic)."""
    tree, _, source = _function_tree(func)
    fn = tree.body[0]
    assert isinstance(fn, ast.FunctionDef)
    doc = _docstring(fn)
    # nodes inside nested function definitions: their returns are not the rule's
    nested_returns = {
        id(r) for d in ast.walk(fn) if d is not fn and isinstance(d, (ast.FunctionDef, ast.Lambda))
        for r in ast.walk(d) if isinstance(r, ast.Return)
    }
    in_fstring = {id(n) for j in ast.walk(fn) if isinstance(j, ast.JoinedStr) for n in ast.walk(j)}
    # where a mutant is: its line counted from the first line of the body after the
    # docstring ("body line 3"), so that a scenario added to the docstring does not rename
    # the rule's mutants (equivalent_mutants.toml names them by their description)
    body = fn.body[1:] if doc is not None and len(fn.body) > 1 else fn.body
    start = body[0].lineno
    out: list[Mutation] = []
    for index, node in enumerate(ast.walk(tree)):
        if node is doc or id(node) in in_fstring:
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
            out.append(Mutation(index, "int", None, f"{where} `{_snippet(node, source)}`: "
                                                    f"{node.value} -> {node.value + 1}"))
        elif isinstance(node, ast.Return) and node.value is not None:
            value = node.value
            if isinstance(value, ast.Tuple) and not value.elts:
                out.append(Mutation(index, "ret-violation", None, f"{where} `return ()`: returns a violation"))
            elif isinstance(value, ast.Tuple) or id(node) not in nested_returns:
                out.append(Mutation(index, "ret-empty", None,
                                    f"{where} `return {_snippet(value, source)}`: returns ()"))
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


def build_mutant(r: Rule, m: Mutation) -> dict[str, Any]:
    """A copy of the rule module's namespace with the mutant bound under the rule's name."""
    func = r.func
    module = sys.modules[func.__module__]
    namespace = dict(vars(module))
    tree, _, _ = _function_tree(func)
    mutated = _apply(tree, m, func.__name__)
    flags = __future__.annotations.compiler_flag if "annotations" in namespace else 0
    # a file name of its own: coverage and tracebacks must never credit a mutant's lines to
    # the rule's file
    code = compile(mutated, f"<mutant of {r.id}>", "exec", flags=flags, dont_inherit=True)
    fcode = next(c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == func.__name__)
    mutant = types.FunctionType(fcode, namespace, func.__name__, func.__defaults__)
    mutant.__kwdefaults__ = func.__kwdefaults__
    mutant.__doc__ = func.__doc__
    mutant.rule_id = r.id  # type: ignore[attr-defined]
    namespace[func.__name__] = mutant
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
    """(rule ID, mutant description) -> why that mutant is equivalent."""
    if not path.exists():
        return {}
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {(e["rule"], e["mutant"]): e["reason"] for e in data.get("equivalent", [])}


def mutate_rule(r: Rule, equivalents: dict[tuple[str, str], str] | None = None) -> RuleResult:
    """Every mutant of one rule, run against its scenarios."""
    equivalents = equivalents or {}
    module = sys.modules[r.func.__module__]
    result = RuleResult(r.id)
    for m in mutations(r.func, dict(vars(module))):
        try:
            dead = killed(r, build_mutant(r, m))
        except Exception:  # noqa: BLE001 - a mutant that does not even build counts as killed
            dead = True
        if dead:
            result.killed.append(m.description)
        elif (r.id, m.description) in equivalents:
            result.equivalent.append({"mutant": m.description, "reason": equivalents[(r.id, m.description)]})
        else:
            result.survived.append(m.description)
    return result


def run(rule_ids: Sequence[str] | None = None) -> list[RuleResult]:
    """Mutate the given rules (all by default), sorted by rule ID."""
    from vmxkb import sdm

    sdm.load_all()
    ids = sorted(REGISTRY) if not rule_ids else sorted(set(rule_ids))
    equivalents = load_equivalents()
    return [mutate_rule(REGISTRY[i], equivalents) for i in ids]


def totals(results: Sequence[RuleResult]) -> dict[str, Any]:
    k = sum(len(r.killed) for r in results)
    s = sum(len(r.survived) for r in results)
    e = sum(len(r.equivalent) for r in results)
    return {"rules": len(results), "mutants": k + s + e, "killed": k, "survived": s, "equivalent": e,
            "score": round(k / (k + s), 4) if k + s else 1.0}


def as_json(results: Sequence[RuleResult]) -> dict[str, Any]:
    return {"total": totals(results), "rules": {r.rule_id: r.as_json() for r in results}}


def as_markdown(results: Sequence[RuleResult]) -> str:
    t = totals(results)
    out = [
        f"Overall: **{t['killed']} of {t['mutants'] - t['equivalent']}** non-equivalent mutants killed "
        f"(**{100 * t['score']:.1f}%**) over {t['rules']} rules; {t['equivalent']} equivalent, "
        f"{t['survived']} surviving.",
        "",
        "| Rule | Mutants | Killed | Survived | Equivalent | Score |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        out.append(f"| `{r.rule_id}` | {r.mutants} | {len(r.killed)} | {len(r.survived)} | "
                   f"{len(r.equivalent)} | {100 * r.score:.0f}% |")
    survivors = [(r.rule_id, d) for r in results for d in r.survived]
    out += ["", "### Surviving mutants", ""]
    out += [f"- `{rid}` {d}" for rid, d in survivors] or ["None."]
    equiv = [(r.rule_id, e) for r in results for e in r.equivalent]
    out += ["", "### Equivalent mutants", ""]
    out += [f"- `{rid}` {e['mutant']}: {e['reason']}" for rid, e in equiv] or ["None."]
    return "\n".join(out) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"vmxkb.mutants: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="python -m vmxkb.mutants", description="Mutation score of the rules' scenarios.")
    p.add_argument("rules", nargs="*", metavar="RULE_ID", help="rules to mutate (default: all)")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--md", type=Path, help="write the results as a Markdown table here")
    args = p.parse_args(argv)
    from vmxkb import sdm

    sdm.load_all()
    unknown = [i for i in args.rules if i not in REGISTRY]
    if unknown:
        p.error(f"unknown rule ID {unknown[0]}")
    results = run(args.rules)
    for r in results:
        print(f"{r.rule_id}: {r.mutants} mutants, {len(r.killed)} killed, {len(r.survived)} survived, "
              f"{len(r.equivalent)} equivalent")
        for d in r.survived:
            print(f"    survived: {d}")
    t = totals(results)
    print(f"total: {t['mutants']} mutants, {t['killed']} killed, {t['survived']} survived, "
          f"{t['equivalent']} equivalent; score {100 * t['score']:.1f}%")
    try:
        if args.json:
            args.json.write_text(json.dumps(as_json(results), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if args.md:
            args.md.write_text(as_markdown(results), encoding="utf-8")
    except OSError as e:
        p.error(f"cannot write results: {e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
