"""Input is never executed: no eval/exec, pickle/marshal/shelve, unsafe YAML loading, or
shell interpolation anywhere in the code that reads input (the package, the examples, conf.py).

The one allowed exception is explicit and narrow: ``vmxkb.registry.run_scenario`` evaluates
the scenario doctests written in the rules' own docstrings (repository code, not input), with
exactly one ``eval`` and one ``exec``, both on ``compile(ex.source, ...)``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [*(ROOT / "rules").rglob("*.py"), *(ROOT / "examples").rglob("*.py"), ROOT / "conf.py"]

#: (file relative to ROOT, enclosing function, call) -> how many times it may occur
ALLOWED = {
    ("rules/vmxkb/registry.py", "run_scenario", "eval"): 1,
    ("rules/vmxkb/registry.py", "run_scenario", "exec"): 1,
}
FORBIDDEN_CALLS = {"eval", "exec", "execfile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "jsonpickle", "cloudpickle"}
FORBIDDEN_ATTRS = {
    ("os", "system"), ("os", "popen"), ("os", "execv"), ("os", "execl"), ("os", "execvp"), ("os", "spawnl"),
    ("yaml", "unsafe_load"), ("yaml", "full_load"), ("yaml", "load_all"), ("yaml", "unsafe_load_all"),
    ("subprocess", "getoutput"), ("subprocess", "getstatusoutput"),
}
SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def findings(source: str, file: str) -> list[tuple[str, str, str, int]]:
    """(file, enclosing function, what, line) for each way ``source`` could execute input."""
    out: list[tuple[str, str, str, int]] = []

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            func = node.name
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in FORBIDDEN_MODULES:
                    out.append((file, func, f"import {a.name}", node.lineno))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_MODULES:
            out.append((file, func, f"from {node.module} import", node.lineno))
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if isinstance(node.func, ast.Name) and name in FORBIDDEN_CALLS:
                out.append((file, func, name, node.lineno))
            if name in {"builtins.eval", "builtins.exec"}:
                out.append((file, func, last, node.lineno))
            if tuple(name.rsplit(".", 1)) in FORBIDDEN_ATTRS:
                out.append((file, func, name, node.lineno))
            if name == "yaml.load":
                loader = next((k.value for k in node.keywords if k.arg == "Loader"), node.args[1] if len(node.args) > 1 else None)
                if loader is None or _dotted(loader).rsplit(".", 1)[-1] not in SAFE_YAML_LOADERS:
                    out.append((file, func, "yaml.load without a safe Loader", node.lineno))
            for k in node.keywords:
                if k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False):
                    out.append((file, func, f"{name}(shell=...)", node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(ast.parse(source, file), "<module>")
    return out


def test_scanned_files_exist() -> None:
    rels = {str(p.relative_to(ROOT)) for p in SCANNED}
    assert "rules/vmxkb/cli.py" in rels and "rules/vmxkb/knowledge.py" in rels and "conf.py" in rels
    assert len(rels) > 20


def test_no_input_is_executed() -> None:
    counts: dict[tuple[str, str, str], int] = {}
    bad = []
    for path in SCANNED:
        rel = str(path.relative_to(ROOT))
        for file, func, what, line in findings(path.read_text(encoding="utf-8"), rel):
            key = (file, func, what)
            counts[key] = counts.get(key, 0) + 1
            if key not in ALLOWED:
                bad.append(f"{file}:{line}: {what} (in {func})")
    assert not bad, "input could be executed:\n" + "\n".join(bad)
    for key, n in counts.items():
        assert n <= ALLOWED[key], f"{key}: {n} occurrences, {ALLOWED[key]} allowed"
    # the allow-list is not stale: each allowed use is still there
    assert counts == ALLOWED


def test_allowed_eval_runs_only_compiled_docstring_examples() -> None:
    """The two allowed calls take ``compile(ex.source, ...)`` of a scenario example, which the
    registry parses from the rule functions' own docstrings (``parse_scenarios``)."""
    tree = ast.parse((ROOT / "rules/vmxkb/registry.py").read_text(encoding="utf-8"))
    func = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "run_scenario")
    calls = [n for n in ast.walk(func) if isinstance(n, ast.Call) and _dotted(n.func) in {"eval", "exec"}]
    assert len(calls) == 2
    for c in calls:
        arg = c.args[0]
        assert isinstance(arg, ast.Call) and _dotted(arg.func) == "compile"
        assert _dotted(arg.args[0]) == "ex.source"
    parse = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "parse_scenarios")
    assert "r.func.__doc__" in ast.unparse(parse)


@pytest.mark.parametrize(
    "snippet",
    [
        "eval(text)",
        "exec(text)",
        "import pickle",
        "from marshal import loads",
        "import yaml\nyaml.load(f)",
        "import yaml\nyaml.load(f, Loader=yaml.Loader)",
        "import yaml\nyaml.unsafe_load(f)",
        "import subprocess\nsubprocess.run(cmd, shell=True)",
        "import os\nos.system(cmd)",
        "import builtins\nbuiltins.exec(text)",
        "__import__(name)",
    ],
)
def test_the_scanner_catches(snippet: str) -> None:
    assert findings("def load(text, f, cmd, name):\n    " + snippet.replace("\n", "\n    "), "x.py")


def test_the_scanner_allows_safe_forms() -> None:
    ok = "import yaml, subprocess, json\ndef f(t):\n    yaml.safe_load(t)\n    yaml.load(t, Loader=yaml.SafeLoader)\n    subprocess.run(['a'], shell=False)\n    json.loads(t)\n"
    assert findings(ok, "x.py") == []
