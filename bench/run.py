"""`make bench`: the build, the CLI and the exploration, each measured side by side with its
reference in one run; prints a table of ratios (medians, raw numbers beside them) and writes
it to bench/latest.json and docs/_generated/bench-latest.md (which docs/bench.md includes).

Usage: python bench/run.py [--runs N] [--cli-runs N] [--out DIR] [--md FILE]

The references:
- a *plain* Sphinx build of the same pages, generated here: every need directive becomes a
  rubric with its ID, options and text; every ``vmx-rule`` becomes the rule's source and its
  scenarios' doctests as literal blocks (the same text the real page shows); generated
  tables, diagrams and computed blocks (``needtable``, ``needflow``, the other ``vmx-*``
  directives) become one paragraph each; extensions: MyST and the theme only;
- ``python -c pass`` for the command line;
- the 1x corpus for the 10x corpus, which repeats every SDM area ten times under new IDs
  (rules, clauses and scenarios included) and builds with the gate on.
Peak memory is the build process's maximum resident set size (``wait4``'s ru_maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("conf.py", "docs", "rules", "examples")
SPHINX = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
EDIT_PAGE = "docs/sdm/guest_non_register.md"
EDIT_ANCHOR = "HLT may be the activity state only when SS.DPL"
TARGETS = {
    "build_clean": 1.5,
    "build_incremental": 1.3,
    "cli_check_json": 3.0,
    "cli_check_dmesg": 4.0,
    "scale_10x": 10.0,
}


# --------------------------------------------------------------------------- running


def run(cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one command, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1, 3) or (proc.returncode and "sphinx" in " ".join(cmd)):
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({proc.returncode}): {err.strip()[-400:]}")
    return wall, usage.ru_maxrss


def build_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree / "rules")}


def sphinx(tree: Path, clean: bool = True) -> tuple[float, int]:
    out = tree / "_build" / "html"
    if clean:
        shutil.rmtree(tree / "_build", ignore_errors=True)
    return run([*SPHINX, "-c", str(tree), str(tree / "docs"), str(out)], env=build_env(tree))


def copy_sources(dst: Path) -> Path:
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst / name)
    return dst


# --------------------------------------------------------------------------- the plain copy

_NEED_TYPES = {"section", "clause", "scenario", "behaviour", "deviation", "patch"}
_PLAIN_CONF = '''project = "vmxkb (plain copy)"
root_doc = "index"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_generated"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
html_theme = "furo"
'''


def _plain_rule(rule_id: str, registry: dict) -> str:
    import inspect

    r = registry.get(rule_id)
    if r is None:
        return f"Rule {rule_id}.\n"
    parts = [f"Executable rule {r.qualname}:\n", "```python\n" + inspect.getsource(r.func).rstrip() + "\n```\n"]
    for s in r.scenarios:
        parts.append(f"```{{rubric}} Scenario {s.id}: {s.summary}\n```\n")
        parts.append(f"expect: {s.expect}\n\n```pycon\n{s.source}\n```\n")
    return "\n".join(parts)


def _plain_block(name: str, arg: str, body: str, whole: str, registry: dict) -> str:
    arg = arg.strip()
    if name in _NEED_TYPES:
        options = [line for line in body.splitlines() if line.startswith(":")]
        text = "\n".join(line for line in body.splitlines() if not line.startswith(":"))
        nid = next((line.split(":", 2)[2].strip() for line in options if line.startswith(":id:")), "")
        fields = "\n\n".join(f"{o.split(':', 2)[1]}: {o.split(':', 2)[2].strip()}" for o in options if not o.startswith(":id:"))
        return f"```{{rubric}} {nid}: {arg}\n```\n\n{fields}\n\n{text.strip()}\n"
    if name == "vmx-rule":
        return _plain_rule(arg, registry)
    if name in ("toctree",):
        return whole
    return f"(generated by {name})\n"


def _plain_text(text: str, registry: dict) -> str:
    """Replace each top-level ```{directive} block of a MyST page (nested fences kept)."""
    lines, out, i = text.split("\n"), [], 0
    opener = re.compile(r"^(`{3,})\{(?P<name>[a-z-]+)\}[ \t]*(?P<arg>.*)$")
    while i < len(lines):
        m = opener.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        fence, depth, j = m[1], 0, i + 1
        while j < len(lines):
            line = lines[j].strip()
            if line == fence and depth == 0:
                break
            if line.startswith("```") and line != "```":
                depth += 1
            elif line == "```":
                depth -= 1
            j += 1
        body = "\n".join(lines[i + 1 : j]) + "\n"
        out.append(_plain_block(m["name"], m["arg"], body, "\n".join(lines[i : j + 1]), registry))
        i = j + 1
    return "\n".join(out)


def make_plain(src: Path, dst: Path) -> Path:
    """The plain copy of tree ``src``'s pages in ``dst`` (conf.py + docs/)."""
    sys.path.insert(0, str(src / "rules"))
    try:
        from vmxkb.registry import REGISTRY
        from vmxkb.sdm import load_all

        load_all()
        registry = dict(REGISTRY)
    finally:
        sys.path.pop(0)
    for page in (src / "docs").rglob("*.md"):
        text = _plain_text(page.read_text(), registry)
        text = re.sub(r"\{need\}`([^`]+)`", r"`\1`", text)
        out = dst / "docs" / page.relative_to(src / "docs")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    (dst / "conf.py").write_text(_PLAIN_CONF)
    return dst


# --------------------------------------------------------------------------- the k-times corpus


def make_corpus(dst: Path, k: int) -> tuple[Path, dict[str, int]]:
    """A copy of the repository whose SDM areas appear ``k`` times (IDs renamed per copy)."""
    tree = copy_sources(dst)
    sys.path.insert(0, str(ROOT / "rules"))
    try:
        from vmxkb.registry import REGISTRY
        from vmxkb.sdm import AREAS, load_all

        load_all()
        by_area = {a: [r for r in REGISTRY.values() if r.area == a] for a in AREAS}
    finally:
        sys.path.pop(0)
    init = tree / "rules" / "vmxkb" / "sdm" / "__init__.py"
    index = tree / "docs" / "index.md"
    new_areas: list[str] = []
    for area in AREAS:
        page = (tree / "docs" / "sdm" / f"{area}.md").read_text()
        module = (tree / "rules" / "vmxkb" / "sdm" / f"{area}.py").read_text()
        ids = set(re.findall(r"^:id:\s*(\S+)", page, re.M))
        ids |= {r.id for r in by_area[area]} | {s.id for r in by_area[area] for s in r.scenarios}
        pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, ids), key=len, reverse=True)) + r")\b")
        for c in range(2, k + 1):
            suffix = f"_C{c}"
            name = f"{area}_c{c}"
            (tree / "rules" / "vmxkb" / "sdm" / f"{name}.py").write_text(pattern.sub(lambda m: m[1] + suffix, module))
            (tree / "docs" / "sdm" / f"{name}.md").write_text(
                pattern.sub(lambda m: m[1] + suffix, page).replace(f"# ", f"# (copy {c}) ", 1)
            )
            new_areas.append(name)
    # Deviations and behaviours that name a rule name its copies too: the exploration runs
    # every registered rule, so a KVM model breaks the copies as it breaks the original.
    copied = {i for area in AREAS for i in re.findall(r"^:id:\s*(\S+)", (tree / "docs" / "sdm" / f"{area}.md").read_text(), re.M)}
    for page in (tree / "docs").rglob("*.md"):
        if page.parent.name == "sdm":
            continue
        text = page.read_text()
        def extend(m: re.Match[str]) -> str:
            names = [x.strip() for x in m[2].split(",") if x.strip()]
            names += [f"{x}_C{c}" for c in range(2, k + 1) for x in names if x in copied]
            return f"{m[1]} {', '.join(names)}"

        fixed = re.sub(r"^(:(?:breaks|touches):)(.*)$", extend, text, flags=re.M)
        if fixed != text:
            page.write_text(fixed)
    # equivalent mutants are listed by rule ID: the copies' are the same mutants
    eq = tree / "rules" / "vmxkb" / "equivalent_mutants.toml"
    if k > 1 and eq.exists():
        import tomllib

        entries = [e for e in tomllib.loads(eq.read_text()).get("equivalent", []) if "rule" in e]
        extra = "".join(
            f'\n[[equivalent]]\nrule = "{e["rule"]}_C{c}"\nmutant = {json.dumps(e["mutant"])}\nreason = {json.dumps(e["reason"])}\n'
            for c in range(2, k + 1) for e in entries)
        eq.write_text(eq.read_text() + extra)
    if new_areas:
        text = init.read_text()
        text = text.replace('    "bare_metal",\n)', '    "bare_metal",\n' + "".join(f'    "{a}",\n' for a in new_areas) + ")")
        init.write_text(text)
        text = index.read_text()
        index.write_text(text.replace("sdm/bare_metal\n", "sdm/bare_metal\n" + "".join(f"sdm/{a}\n" for a in new_areas), 1))
    pages = list((tree / "docs").rglob("*.md"))
    counts = {
        "pages": len(pages),
        "need_directives": sum(len(re.findall(r"^:id:", p.read_text(), re.M)) for p in pages),
        "rules": sum(len(v) for v in by_area.values()) * k,
        "scenarios": sum(len(r.scenarios) for v in by_area.values() for r in v) * k,
    }
    return tree, counts


# --------------------------------------------------------------------------- the measurements


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_build(work: Path, runs: int) -> dict:
    real = copy_sources(work / "real")
    plain = make_plain(real, work / "plain")
    clean_real, clean_plain, mem_real, mem_plain = [], [], [], []
    for _ in range(runs):  # interleaved: the machine's noise hits both sides alike
        t, m = sphinx(real)
        clean_real.append(t)
        mem_real.append(m)
        t, m = sphinx(plain)
        clean_plain.append(t)
        mem_plain.append(m)
    inc_real, inc_plain = [], []
    for i in range(runs):
        for tree, out in ((real, inc_real), (plain, inc_plain)):
            page = tree / EDIT_PAGE
            text = page.read_text()
            assert EDIT_ANCHOR in text, f"bench: the edit anchor is gone from {EDIT_PAGE}"
            page.write_text(text.replace(EDIT_ANCHOR, f"(edit {i}) " + EDIT_ANCHOR, 1))
            out.append(sphinx(tree, clean=False)[0])
    # still correct: the edited text is in the rebuilt page and in needs.json
    needs = (real / "_build" / "html" / "needs.json").read_text()
    html = (real / "_build" / "html" / "sdm" / "guest_non_register.html").read_text()
    fresh = f"(edit {runs - 1})" in needs and f"(edit {runs - 1})" in html
    return {
        "build_clean": {"real_s": clean_real, "plain_s": clean_plain, "ratio": med(clean_real) / med(clean_plain)},
        "build_incremental": {"real_s": inc_real, "plain_s": inc_plain, "ratio": med(inc_real) / med(inc_plain),
                              "edited_item_refreshed": fresh},
        "memory_1x": {"real_kib": max(mem_real), "plain_kib": max(mem_plain), "ratio": max(mem_real) / max(mem_plain)},
    }


def bench_cli(runs: int) -> dict:
    script = Path(sys.executable).with_name("vmxkb")
    vmxkb = [str(script)] if script.exists() else [sys.executable, "-m", "vmxkb"]
    state = ROOT / "examples" / "states" / "movss-tf-no-bs.json"
    dump = next((ROOT / "tests" / "dumps").glob("03-*/dump.txt"))
    cmds = {
        "python": [sys.executable, "-c", "pass"],
        "check_json": [*vmxkb, "check", str(state)],
        "check_dmesg": [*vmxkb, "check", "--dmesg", str(dump)],
    }
    # As on a user's machine: bytecode is written on the warm-up run and used afterwards.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for name, cmd in cmds.items():  # warm-up: caches, bytecode
        run(cmd, env=env)
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(run(cmd, env=env)[0])
    base = med(times["python"])
    return {
        "cli_check_json": {"real_s": times["check_json"], "python_s": times["python"], "ratio": med(times["check_json"]) / base},
        "cli_check_dmesg": {"real_s": times["check_dmesg"], "python_s": times["python"], "ratio": med(times["check_dmesg"]) / base},
    }


def bench_explore(runs: int) -> dict:
    code = (
        "import time, json\n"
        "from vmxkb.kvm.models import BEHAVIOURS\n"
        "from vmxkb.kvm.explore import domain_size, explore_all\n"
        "t = time.perf_counter(); explore_all(); t = time.perf_counter() - t\n"
        "print(json.dumps({'states': sum(domain_size(b) for b in BEHAVIOURS.values()), 'seconds': t}))\n"
    )
    out = []
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "rules")})
        out.append(json.loads(proc.stdout))
    seconds = [o["seconds"] for o in out]
    states = out[0]["states"]
    return {"exploration": {"states": states, "seconds": seconds, "states_per_s": states / med(seconds)}}


def refresh_mutation(tree: Path) -> None:
    """`make mutation` in ``tree``: the committed results a build reuses (a developer runs it
    after changing rules; the copies' results are computed here, outside the timed builds)."""
    out = tree / "docs" / "_generated" / "mutation.json"
    subprocess.run([sys.executable, "-m", "vmxkb.mutants", "--json", str(out)], cwd=tree, env=build_env(tree),
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)


def bench_scale(work: Path, runs: int, k: int = 10) -> dict:
    one, c1 = make_corpus(work / "x1", 1)
    many, ck = make_corpus(work / f"x{k}", k)
    for tree in (one, many):
        refresh_mutation(tree)
    t1, tk, m1, mk = [], [], [], []
    for _ in range(runs):
        t, m = sphinx(one)
        t1.append(t)
        m1.append(m)
        t, m = sphinx(many)
        tk.append(t)
        mk.append(m)
    return {
        "scale_10x": {"x1_s": t1, "x10_s": tk, "ratio": med(tk) / med(t1), "x1": c1, "x10": ck},
        "memory_10x": {"x1_kib": max(m1), "x10_kib": max(mk), "ratio": max(mk) / max(m1)},
    }


# --------------------------------------------------------------------------- the table


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    def s(xs: list[float]) -> str:
        return f"{med(xs):.3f} s (" + ", ".join(f"{x:.2f}" for x in xs) + ")"

    def verdict(key: str) -> str:
        ratio, target = results[key]["ratio"], TARGETS[key]
        return f"{'met' if ratio <= target else 'MISSED'} (<= {target}x)"

    r = results
    out = [
        ("clean build: vmxkb vs plain Sphinx copy", f"{r['build_clean']['ratio']:.2f}x",
         f"{s(r['build_clean']['real_s'])} vs {s(r['build_clean']['plain_s'])}", verdict("build_clean")),
        ("incremental build, one rule page edited", f"{r['build_incremental']['ratio']:.2f}x",
         f"{s(r['build_incremental']['real_s'])} vs {s(r['build_incremental']['plain_s'])}; edited item refreshed: "
         f"{r['build_incremental']['edited_item_refreshed']}", verdict("build_incremental")),
        ("vmxkb check FILE.json vs python -c pass", f"{r['cli_check_json']['ratio']:.2f}x",
         f"{s(r['cli_check_json']['real_s'])} vs {s(r['cli_check_json']['python_s'])}", verdict("cli_check_json")),
        ("vmxkb check --dmesg DUMP vs python -c pass", f"{r['cli_check_dmesg']['ratio']:.2f}x",
         f"{s(r['cli_check_dmesg']['real_s'])} vs {s(r['cli_check_dmesg']['python_s'])}", verdict("cli_check_dmesg")),
        ("exploration of the KVM models", f"{r['exploration']['states_per_s']:.0f} states/s",
         f"{r['exploration']['states']} states in {s(r['exploration']['seconds'])}", "reported"),
        ("10x corpus vs 1x, clean build with gate", f"{r['scale_10x']['ratio']:.2f}x",
         f"{s(r['scale_10x']['x10_s'])} vs {s(r['scale_10x']['x1_s'])}; needs {r['scale_10x']['x10']['need_directives']}"
         f" vs {r['scale_10x']['x1']['need_directives']} (+ generated scenario needs), rules {r['scale_10x']['x10']['rules']}"
         f" vs {r['scale_10x']['x1']['rules']}", verdict("scale_10x")),
        ("peak memory, build 1x: vmxkb vs plain", f"{r['memory_1x']['ratio']:.2f}x",
         f"{r['memory_1x']['real_kib'] / 1024:.0f} MiB vs {r['memory_1x']['plain_kib'] / 1024:.0f} MiB", "reported"),
        ("peak memory, build 10x vs 1x", f"{r['memory_10x']['ratio']:.2f}x",
         f"{r['memory_10x']['x10_kib'] / 1024:.0f} MiB vs {r['memory_10x']['x1_kib'] / 1024:.0f} MiB",
         "linear or better" if r["memory_10x"]["ratio"] <= 10 else "SUPERLINEAR"),
    ]
    return out


def machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        info["cpu"] = model
    except (OSError, StopIteration):
        pass
    try:
        info["load_before"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return info


def markdown(results: dict, table: list[tuple[str, str, str, str]]) -> str:
    m = results["machine"]
    lines = [
        f"Measured {results['date']} with `{results['command']}` on {m.get('cpu', '?')} ({m['cpus']} CPUs), "
        f"Python {m['python']}, load average {m.get('load_before', '?')} at the start; medians of "
        f"{results['runs']} interleaved runs (raw runs in parentheses).",
        "",
        "| measurement | ratio | raw (median, runs) | target |",
        "|---|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in table]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3, help="builds per measurement (default 3)")
    p.add_argument("--cli-runs", type=int, default=15, help="runs per CLI command (default 15)")
    p.add_argument("--out", type=Path, default=ROOT / "bench", help="where latest.json goes (default bench/)")
    p.add_argument("--md", type=Path, default=None,
                   help="the table as Markdown (default docs/_generated/bench-latest.md, shown by docs/bench.md)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.cli_runs < 1:
        p.error("--runs and --cli-runs must be at least 1")
    results: dict = {
        "schema": 1,
        "date": time.strftime("%Y-%m-%d"),
        "command": "make bench" + (f" BENCH_ARGS='{' '.join(argv)}'" if argv else ""),
        "runs": args.runs,
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="vmxkb-bench-") as tmp:
        work = Path(tmp)
        results.update(bench_cli(args.cli_runs))
        results.update(bench_explore(args.runs))
        results.update(bench_build(work, args.runs))
        results.update(bench_scale(work, max(1, args.runs - 1)))
    table = rows(results)
    width = max(len(a) for a, *_ in table)
    for a, b, c, d in table:
        print(f"{a:<{width}}  {b:>16}  {d:<18}  {c}")
    results["table"] = [dict(zip(("measurement", "ratio", "raw", "target"), row)) for row in table]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    md = args.md or (ROOT / "docs" / "_generated" / "bench-latest.md" if args.out == ROOT / "bench" else args.out / "latest.md")
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(markdown(results, table))
    print(f"wrote {args.out / 'latest.json'} and {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
