"""`make fuzz`: the fuzz targets of tests/fuzzing.py with many more inputs (default: a million
in all, shared over the targets), random seeds, and every counterexample saved under
tests/fuzz_regressions/ as JSON, which tests/test_fuzz.py replays in every `make test`.

Usage: python tests/fuzz_long.py [--inputs N] [--seed S] [--only TARGET ...] [--jobs J]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import multiprocessing
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fuzz_regressions"
#: share of the inputs per target (the cheap junk readers get more)
SHARES = {"junk": 0.30, "mutated": 0.25, "states": 0.15, "lookups": 0.15, "dump_formats": 0.08, "state_formats": 0.07}


def _fuzzing():
    spec = importlib.util.spec_from_file_location("vmxkb_fuzzing", ROOT / "tests" / "fuzzing.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _targets(fz):
    """name -> (strategy, function of one drawn value): the targets of tests/fuzzing.py."""
    return {
        "junk": (fz.JUNK, lambda v: fz.target_text(*v)),
        "mutated": (fz.mutated_inputs(), lambda v: fz.target_text(*v)),
        "states": (fz.STATE_FILES, lambda v: fz.target_state(*v)),
        "lookups": (fz.LOOKUPS, lambda v: fz.target_lookup(*v)),
        "dump_formats": (fz.DUMP_FORMATS, lambda v: fz.check_dump_format(*v)),
        "state_formats": (fz.STATE_FORMATS, lambda v: fz.check_state_format(*v)),
    }


def run_target(name: str, n: int, seed: int) -> dict:
    """Run ``n`` inputs through one target; restart after each counterexample (saved)."""
    from hypothesis import HealthCheck, given, seed as hseed, settings

    fz = _fuzzing()
    strategy, fn = _targets(fz)[name]
    count, found, start = 0, [], time.time()

    def body(v):
        nonlocal count
        count += 1
        fn(v)

    rounds = 0
    while count < n and rounds < 50:
        rounds += 1
        test = settings(max_examples=n - count, deadline=1000, database=None, derandomize=False,
                        suppress_health_check=list(HealthCheck))(given(strategy)(body))
        try:
            hseed(seed * 1000 + rounds)(test)()
        except Exception as exc:  # noqa: BLE001 - a counterexample: save the shrunk input it ended on
            case = dict(fz.LAST.get("case") or {"target": "?", "args": []})
            case["found_by"] = f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            digest = hashlib.sha256(json.dumps(case, sort_keys=True).encode()).hexdigest()[:12]
            OUT.mkdir(parents=True, exist_ok=True)
            (OUT / f"{name}-{digest}.json").write_text(json.dumps(case, indent=1, sort_keys=True) + "\n")
            found.append(case["found_by"])
    for work in fz._WORK:  # the chunk's scratch files (each chunk loads its own copy of fuzzing.py)
        shutil.rmtree(work, ignore_errors=True)
    return {"target": name, "inputs": count, "seconds": round(time.time() - start, 1), "found": found}


def _run_chunk(chunk: tuple[str, int, int]) -> dict:
    return run_target(*chunk)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tests/fuzz_long.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=1_000_000, help="inputs in all (default 1,000,000)")
    p.add_argument("--seed", type=int, default=int(time.time()), help="random seed (printed)")
    p.add_argument("--only", nargs="+", choices=sorted(SHARES), help="run only these targets")
    p.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    args = p.parse_args(argv)
    if args.inputs < 1 or args.jobs < 1:
        p.error("--inputs and --jobs must be at least 1")
    names = args.only or sorted(SHARES)
    total = sum(SHARES[n] for n in names)
    # chunks of at most 5,000 inputs, so that progress is printed as the run goes
    plan = []
    for name in names:
        share = round(args.inputs * SHARES[name] / total)
        chunks = max(args.jobs, -(-share // 5000))
        for i in range(chunks):
            plan.append((name, share // chunks + (1 if i < share % chunks else 0), args.seed + 7919 * i))
    plan.sort(key=lambda c: c[2])  # interleave the targets
    print(f"fuzz: {args.inputs} inputs over {', '.join(names)}; seed {args.seed}; {args.jobs} processes", flush=True)
    results, done = [], 0
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for r in pool.imap_unordered(_run_chunk, plan):
            results.append(r)
            done += r["inputs"]
            print(f"  {done} inputs done ({r['target']}: +{r['inputs']} in {r['seconds']} s, {len(r['found'])} found)", flush=True)
    by: dict[str, dict] = {}
    for r in results:
        t = by.setdefault(r["target"], {"inputs": 0, "seconds": 0.0, "found": []})
        t["inputs"] += r["inputs"]
        t["seconds"] += r["seconds"]
        t["found"] += r["found"]
    for name, t in by.items():
        print(f"{name:<14} {t['inputs']:>9} inputs  {t['seconds']:>8.1f} s  {len(t['found'])} counterexample(s)")
        for f in t["found"]:
            print(f"    {f}")
    n = sum(t["inputs"] for t in by.values())
    bad = sum(len(t["found"]) for t in by.values())
    print(f"fuzz: {n} inputs run, {bad} counterexample(s) saved under {OUT.relative_to(ROOT)}/")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
