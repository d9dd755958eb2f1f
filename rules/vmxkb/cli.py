"""The ``vmxkb`` command line: a thin shell over the library (no Sphinx import).

Commands: ``check`` (a guest state or a kvm_intel/Xen VMCS dump against every rule),
``explain`` and ``cite`` (one rule), ``list``, ``review`` (a patch). Every command takes
``--json``; the schemas are in ``docs/cli.md``.

Exit status: 0 passes / nothing to report; 1 fails / the review found problems; 2 bad
input (one line on standard error, never a traceback); 3 incomplete (no violation proven,
but some checks could not be evaluated).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

# Start-up is a measured target (``docs/bench.md``: ``check`` within 3x ``python -c pass``):
# this module imports only what every command needs; json, difflib, pathlib and the rest are
# imported where they are used, and typing never at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from types import SimpleNamespace
    from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_INCOMPLETE = 0, 1, 2, 3
SCHEMA_VERSION = 1


class InputError(Exception):
    """Bad input: reported as one line, exit status 2."""


COMMANDS = ("check", "explain", "cite", "list", "review")
_CHECK_FLAGS = {"--dmesg": "dmesg", "--json": "json"}
_CHECK_VALUES = {"--profile": "profile", "--edition": "edition"}


def quick_check(argv: Sequence[str]) -> SimpleNamespace | None:
    """``argv`` as argparse would read it when it is a plain ``check``, else ``None``.

    It reads exactly the command lines that need no decision of argparse's: ``check``, its
    flags, ``--profile FILE`` and ``--edition E`` as two words, and one input file. Anything
    else (help, errors, abbreviations, ``--opt=value``, ``--``, a value that starts with
    ``-``) is left to argparse. ``tests/test_cli.py`` checks the two agree on generated
    command lines."""
    from types import SimpleNamespace

    if not argv or argv[0] != "check":
        return None
    from vmxkb.citations import EDITIONS

    values: dict[str, Any] = {"command": "check", "dmesg": False, "profile": None, "edition": None, "json": False}
    files: list[str] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg in _CHECK_FLAGS:
            values[_CHECK_FLAGS[arg]] = True
        elif arg in _CHECK_VALUES:
            if i + 1 == len(argv) or argv[i + 1].startswith("-"):
                return None
            i += 1
            values[_CHECK_VALUES[arg]] = argv[i]
        elif arg == "-" or not arg.startswith("-"):
            files.append(arg)
        else:
            return None
        i += 1
    if len(files) != 1 or (values["edition"] is not None and values["edition"] not in EDITIONS):
        return None
    return SimpleNamespace(file=files[0], **values)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (:func:`vmxkb.cli_args.build_parser`; its ``--help`` texts are
    rendered into ``docs/cli.md``)."""
    from vmxkb.cli_args import build_parser

    return build_parser(only)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = quick_check(argv)  # a plain `check` is read without argparse (start-up)
        if args is None:
            parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
            try:
                args = parser.parse_args(argv)
            except SystemExit as exc:  # --help
                return int(exc.code or 0)
        handler = {"check": cmd_check, "explain": cmd_explain, "cite": cmd_cite, "list": cmd_list, "review": cmd_review}
        return handler[args.command](args)
    except InputError as exc:
        sys.stderr.write(f"vmxkb: error: {_one_line(str(exc))}\n")
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


def _one_line(message: str) -> str:
    """The message with every character that is not printable escaped (``\\x0c``, ``\\n``...):
    an error is one line, whatever the input it quotes (found by make fuzz)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


# --- reading input ---------------------------------------------------------------------------


def read_text(name: str) -> str:
    """The text of a file or of standard input (``-``): UTF-8, not empty."""
    try:
        if name == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise InputError(f"{name} is binary, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text") from None
    if not text.strip():
        raise InputError(f"{name} is empty")
    return text


def _number(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{name}: {value!r} is not a number (give an integer or a hex string)")
    if isinstance(value, int):
        return value
    try:
        return int(value.strip().replace("_", ""), 16 if value.strip().lower().startswith("0x") else 10)
    except ValueError:
        raise InputError(f"{name}: {value!r} is not a number (give an integer or a hex string such as 0x202)") from None


def parse_state(text: str, name: str) -> dict[str, int]:
    """A guest state from JSON, TOML or YAML text: kernel field names to integers."""
    from vmxkb.state import FIELDS

    data: Any = None
    import os

    suffix = os.path.splitext(name)[1].lower()
    errors = []
    order = {".json": "json", ".toml": "toml", ".yaml": "yaml", ".yml": "yaml"}.get(suffix)
    for kind in ([order] if order else ["json", "toml", "yaml"]):
        try:
            data = _load(kind, text)
            break
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - any parser's error means "not this format"
            errors.append(f"{kind}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    else:
        raise InputError(f"{name} is not a JSON, TOML or YAML mapping ({'; '.join(errors)})")
    if not isinstance(data, dict) or not data:
        raise InputError(f"{name} must be a non-empty mapping of VMCS field names to values")
    fields: dict[str, int] = {}
    for key, value in data.items():
        field = str(key).strip().upper()
        if field not in FIELDS:
            import difflib

            close = difflib.get_close_matches(field, FIELDS, n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise InputError(f"unknown VMCS field {key!r}{hint}")
        number = _number(field, value)
        width = FIELDS[field].width
        if number < 0 or number >> width:
            raise InputError(f"{field}={value!r} does not fit in {width} bits")
        fields[field] = number
    return fields


def _load(kind: str, text: str) -> Any:
    if kind == "json":
        import json

        return json.loads(text)
    if kind == "toml":
        import tomllib

        return tomllib.loads(text)
    try:
        import yaml
    except ImportError:
        raise InputError("reading YAML needs PyYAML (pip install pyyaml); JSON and TOML work without it") from None
    return yaml.safe_load(text)


def load_caps(profile: str | None):  # -> Capabilities
    from vmxkb.state import DEFAULT_CAPABILITIES

    if profile is None:
        return DEFAULT_CAPABILITIES
    from vmxkb.profile import ProfileError, load_profile  # TOML only when a profile is named

    try:
        return load_profile(profile)
    except ProfileError as exc:
        raise InputError(f"profile {exc.source}: {'; '.join(exc.problems)}") from None
    except OSError as exc:
        raise InputError(f"cannot read profile {profile}: {exc.strerror or exc}") from None


# --- check -----------------------------------------------------------------------------------


def _sdm(rule_id: str, edition: str | None) -> dict[str, Any]:
    from vmxkb.citations import CURRENT_EDITION, SECTIONS
    from vmxkb.registry import REGISTRY

    e = edition or CURRENT_EDITION
    section = SECTIONS[REGISTRY[rule_id].section]
    num = section.number(e)
    return {"volume": section.volume, "title": section.title, "edition": e,
            "section": num[0] if num else None, "confidence": num[1] if num else None, "cite": section.cite(e)}


def page_of(rule_id: str) -> str:
    """The rule's permalink (``<base>/id/<ID>.html``, see :mod:`vmxkb.links`)."""
    from vmxkb.links import permalink

    return permalink(rule_id)


def title_of(rule_id: str) -> str:
    """The clause's one-line title from the docs, or the rule's summary without them."""
    from vmxkb import knowledge
    from vmxkb.registry import REGISTRY

    need = knowledge.page(f"docs/sdm/{REGISTRY[rule_id].area}.md").get(rule_id) or knowledge.load().get(rule_id)
    return need.title if need else REGISTRY[rule_id].summary


def _fmt(value: Any) -> Any:
    return f"{value:#x}" if isinstance(value, int) and not isinstance(value, bool) else value


def check_report(fields: dict[str, int], caps: Any, edition: str | None, dump: Any = None) -> tuple[dict[str, Any], int]:
    """The ``check`` result as data (the JSON schema) and its exit status."""
    from vmxkb.state import EntryState, Vmcs
    from vmxkb.vmentry import evaluate

    result = evaluate(EntryState(Vmcs.from_fields(fields), caps))
    violations = [
        {"id": v.rule_id, "summary": title_of(v.rule_id), "reason": v.reason,
         "fields": {n: _fmt(x) for n, x in v.fields}, "sdm": _sdm(v.rule_id, edition), "page": page_of(v.rule_id)}
        for v in result.violations
    ]
    not_evaluated = [{"id": rid, "missing": list(missing)} for rid, missing in result.not_evaluated]
    report: dict[str, Any] = {"schema": f"vmxkb.check/{SCHEMA_VERSION}"}
    status = EXIT_OK
    if violations:
        verdict, status = "fails", EXIT_FAIL
    elif not_evaluated:
        verdict, status = "incomplete", EXIT_INCOMPLETE
    else:
        verdict = "passes"
    notes: list[str] = []
    if dump is not None:
        notes += _dump_notes(dump, verdict)
        if verdict == "passes" and _is_entry_failure(dump):
            verdict, status = "incomplete", EXIT_INCOMPLETE
    report.update(verdict=verdict, outcome=str(result.outcome), violations=violations, not_evaluated=not_evaluated,
                  after_entry=_after(result.after) if result.after else None, notes=notes)
    if dump is not None:
        report["dump"] = {"layout": dump.layout, "truncated": dump.truncated, "exit_reason": _fmt(dump.exit_reason),
                          "exit_qualification": _fmt(dump.exit_qualification),
                          "vm_instruction_error": dump.vm_instruction_error, "fields": len(dump.fields)}
    return report, status


def _is_entry_failure(dump: Any) -> bool:
    return dump.exit_reason is not None and bool(dump.exit_reason & (1 << 31))


def _dump_notes(dump: Any, verdict: str) -> list[str]:
    notes = []
    if dump.truncated:
        notes.append("the dump stops before its end: only what it shows is checked")
    if dump.vm_instruction_error is not None:
        notes.append(f"the dump records VMfail with VM-instruction error {dump.vm_instruction_error}"
                     + (" (invalid control field: see the ENTRY_CTRL_* rules)" if dump.vm_instruction_error == 7 else ""))
    reason = dump.exit_reason
    if dump.vm_instruction_error is not None:
        if reason is not None:
            notes.append(f"the exit-reason line ({reason:#x}) is the previous VM exit's: a VMfail has no exit")
        reason = None
    if reason is not None:
        basic = reason & 0xFFFF
        if reason & (1 << 31):
            kind = {33: "invalid guest state", 34: "MSR loading", 41: "machine-check event"}.get(basic, "unknown")
            notes.append(f"the dump records a VM-entry failure: exit reason {reason:#x} ({kind})")
            if basic == 34:
                notes.append(f"an MSR-load failure is about entry {dump.exit_qualification} of the VM-entry "
                             "MSR-load area, which the dump does not show; the guest-state checks had passed")
            if verdict == "passes":
                notes.append("no rule explains it: the cause is outside the checks modelled here")
        else:
            notes.append(f"the dump shows an ordinary VM exit (reason {reason:#x}, bit 31 clear), not an entry failure")
    return notes


def _after(after: Any) -> dict[str, Any]:
    from vmxkb.bits import ACTIVITY_NAMES

    return {
        "vectoring": after.vectoring,
        "sti_blocking": {"value": after.sti_blocking, "rule": "POST_INTR_VECTORING_CLEARS_SHADOW" if after.vectoring else "POST_INTR_NONVECTORING_LOADS_SHADOW"},
        "movss_blocking": {"value": after.movss_blocking, "rule": "POST_INTR_VECTORING_CLEARS_SHADOW" if after.vectoring else "POST_INTR_NONVECTORING_LOADS_SHADOW"},
        "activity": ACTIVITY_NAMES.get(after.activity, str(after.activity)),
        "injected": _fmt(after.injected),
        "pending_dbg": {
            "delivered": _fmt(after.pending_dbg_delivered), "held": _fmt(after.pending_dbg_held),
            "unmodelled": after.pending_dbg_unmodelled,
            "rule": "POST_PDE_NONE_AFTER_ENTRY" if after.vectoring or not (after.pending_dbg_delivered or after.pending_dbg_held) else "POST_PDE_VALID_DELIVERY",
        },
        "debug_registers": {"dr6": _fmt(after.dr6), "dr7": _fmt(after.dr7), "debugctl": _fmt(after.debugctl),
                            "rule": "POST_INJ_NO_DEBUG_REGISTER_UPDATE"},
    }


def _print_check(report: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"verdict: {report['verdict']} ({report['outcome']})\n")
    for note in report["notes"]:
        out(f"note: {note}\n")
    for v in report["violations"]:
        out(f"\n{v['id']}: {v['summary']}\n")
        out(f"  why:   {v['reason']}\n")
        if v["fields"]:
            out("  proof: " + ", ".join(f"{n}={x}" for n, x in v["fields"].items()) + "\n")
        out(f"  SDM:   {v['sdm']['cite']}\n  page:  {v['page']}\n")
    if report["not_evaluated"]:
        out(f"\nnot evaluated ({len(report['not_evaluated'])} rules; fields missing from the input):\n")
        for n in report["not_evaluated"]:
            out(f"  {n['id']}: {', '.join(n['missing'])}\n")
    after = report["after_entry"]
    if after:
        pd = after["pending_dbg"]
        fate = ("a #DB is delivered right after entry (bits " + pd["delivered"] + ")") if pd["delivered"] != "0x0" and pd["delivered"] else (
            ("held by MOV-SS blocking past the next instruction (bits " + pd["held"] + ")") if pd["held"] and pd["held"] != "0x0" else
            ("not modelled (software event injected in a MOV-SS shadow)" if pd["unmodelled"] else "none pending"))
        out("\nafter entry:\n")
        out(f"  STI blocking: {after['sti_blocking']['value']}, MOV-SS blocking: {after['movss_blocking']['value']}"
            f"  [{after['sti_blocking']['rule']}]\n")
        out(f"  activity: {after['activity']}; injected event: {after['injected'] or 'none'}\n")
        out(f"  pending debug exceptions: {fate}  [{pd['rule']}]\n")
        regs = after["debug_registers"]
        out(f"  DR6={regs['dr6']} DR7={regs['dr7']} DEBUGCTL={regs['debugctl']}  [{regs['rule']}]\n")


def cmd_check(args: argparse.Namespace) -> int:
    text = read_text(args.file)
    caps = load_caps(args.profile)
    dump = None
    if args.dmesg:
        from vmxkb.dump import DumpError, parse_dump

        try:
            dump = parse_dump(text)
        except DumpError as exc:
            raise InputError(f"{args.file}: {exc}") from None
        fields = dict(dump.fields)
        if dump.exit_reason is not None and not _is_entry_failure(dump) and dump.vm_instruction_error is None:
            report = {"schema": f"vmxkb.check/{SCHEMA_VERSION}", "verdict": "not an entry failure",
                      "outcome": f"VM exit with reason {dump.exit_reason:#x}", "violations": [], "not_evaluated": [],
                      "after_entry": None, "notes": _dump_notes(dump, "passes")}
            _emit(report, args.json, lambda r: sys.stdout.write(f"verdict: {r['verdict']} ({r['outcome']})\n"
                                                                + "".join(f"note: {n}\n" for n in r["notes"])))
            return EXIT_OK
    else:
        fields = parse_state(text, args.file)
    report, status = check_report(fields, caps, args.edition, dump)
    _emit(report, args.json, _print_check)
    return status


def _emit(report: dict[str, Any], as_json: bool, printer: Any) -> None:
    if as_json:
        import json

        sys.stdout.write(json.dumps(report, indent=2, sort_keys=False) + "\n")
    else:
        printer(report)


# --- explain, cite, list ------------------------------------------------------------------------


def _all_ids() -> list[str]:
    from vmxkb import knowledge
    from vmxkb.registry import REGISTRY

    return sorted(set(REGISTRY) | set(knowledge.load()))


def _resolve(rule_id: str) -> str:
    from vmxkb.registry import REGISTRY
    from vmxkb.sdm import load_all

    load_all()
    rid = rule_id.strip().upper().replace(".", "_")
    if rid in REGISTRY:
        return rid
    import difflib

    close = difflib.get_close_matches(rid, list(REGISTRY), n=3, cutoff=0.6)
    hint = f"; nearest: {', '.join(close)}" if close else ""
    raise InputError(f"unknown rule ID {rule_id!r}{hint}")


def cite_line(rule_id: str, edition: str | None = None) -> str:
    """One line for a review mail: ID, section (edition), title, page."""
    sdm = _sdm(rule_id, edition)
    num = f"§{sdm['section']}" if sdm["section"] else "§?"
    return f"{rule_id} (SDM Vol. {sdm['volume']} {num} \"{sdm['title']}\", {sdm['edition']}): {title_of(rule_id)} <{page_of(rule_id)}>"


def cmd_cite(args: argparse.Namespace) -> int:
    if args.id.strip().lstrip("§")[:1].isdigit():  # a section number of any edition
        from vmxkb.citations import CURRENT_EDITION, SECTIONS

        data = section_clauses(args.id)
        if data is None:
            raise InputError(f"{args.id.strip()!r} is not a section number of any SDM edition known here")
        edition = args.edition or CURRENT_EDITION
        lines = []
        for s in data["sections"]:
            was = f"; {data['number']} in {'/'.join(s['editions'])}" if edition not in s["editions"] else ""
            lines.append(SECTIONS[s["key"]].cite(edition) + was)
        _emit({"schema": f"vmxkb.cite/{SCHEMA_VERSION}", "number": data["number"], "lines": lines,
               "sections": data["sections"]}, args.json, lambda r: sys.stdout.write("".join(x + "\n" for x in r["lines"])))
        return EXIT_OK
    rid = _resolve(args.id)
    line = cite_line(rid, args.edition)
    _emit({"schema": f"vmxkb.cite/{SCHEMA_VERSION}", "id": rid, "line": line, "sdm": _sdm(rid, args.edition),
           "page": page_of(rid)}, args.json, lambda r: sys.stdout.write(r["line"] + "\n"))
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from vmxkb.registry import REGISTRY
    from vmxkb.sdm import load_all

    load_all()
    rows = [{"id": r.id, "area": r.area, "kind": r.kind, "phase": r.phase, "title": title_of(r.id)}
            for r in REGISTRY.values() if not args.area or r.area == args.area]
    _emit({"schema": f"vmxkb.list/{SCHEMA_VERSION}", "rules": rows}, args.json,
          lambda r: sys.stdout.write("".join(f"{x['id']}\t{x['area']}\t{x['title']}\n" for x in r["rules"])))
    return EXIT_OK


def explain_data(rule_id: str) -> dict[str, Any]:
    """Everything known about one rule, as data."""
    from vmxkb import knowledge
    from vmxkb.citations import SECTIONS
    from vmxkb.registry import REGISTRY

    r = REGISTRY[rule_id]
    need = knowledge.load().get(rule_id)
    section = SECTIONS[r.section]
    return {
        "schema": f"vmxkb.explain/{SCHEMA_VERSION}",
        "id": rule_id,
        "title": title_of(rule_id),
        "status": need.options.get("status") if need else None,
        "clause": need.body if need else r.summary,
        "sdm": {"volume": section.volume, "title": section.title,
                "numbers": {e: (f"{n[0]} ({n[1]})" if n else None) for e, n in section.numbers.items()}},
        "rule": {"function": r.qualname, "kind": r.kind, "phase": r.phase, "qualification": r.qualification,
                 "summary": r.summary},
        "scenarios": [{"id": s.id, "expect": s.expect, "summary": s.summary} for s in r.scenarios],
        "kvm_behaviours": [{"id": n.id, "title": n.title} for n in knowledge.incoming(rule_id, "touches")],
        "deviations": [{"id": n.id, "title": n.title, "kind": n.options.get("kind")} for n in knowledge.incoming(rule_id, "breaks")],
        "page": page_of(rule_id),
    }


def _print_explain(d: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"{d['id']}: {d['title']}\n" + (f"status: {d['status']}\n" if d["status"] else ""))
    out(f"\n{d['clause']}\n\nSDM Vol. {d['sdm']['volume']} \"{d['sdm']['title']}\":\n")
    out("".join(f"  {e}: {n or '?'}\n" for e, n in d["sdm"]["numbers"].items()))
    rule = d["rule"]
    what = {"control": "VMfail, VM-instruction error 7", "host": "VMfail, VM-instruction error 8", "guest": "VM-entry failure, exit reason 0x80000021"}.get(rule["phase"] or "", rule["kind"])
    out(f"\nrule: {rule['function']} ({what}" + (f", qualification {rule['qualification']}" if rule["qualification"] else "") + ")\n")
    out("scenarios:\n" + "".join(f"  {s['id']} ({s['expect']}): {s['summary']}\n" for s in d["scenarios"]))
    if d["kvm_behaviours"]:
        out("KVM behaviours that touch it:\n" + "".join(f"  {b['id']}: {b['title']}\n" for b in d["kvm_behaviours"]))
    if d["deviations"]:
        out("deviations that break it:\n" + "".join(f"  {x['id']}: {x['title']}\n" for x in d["deviations"]))
    out(f"page: {d['page']}\n")


def section_clauses(number: str) -> dict[str, Any] | None:
    """What an SDM section number of any edition is, with the rules citing it."""
    from vmxkb.citations import CURRENT_EDITION, find_section_number
    from vmxkb.registry import REGISTRY
    from vmxkb.sdm import load_all

    hits = find_section_number(number)
    if not hits:
        return None
    load_all()
    sections = []
    for section in {s.key: s for s, _ in hits}.values():
        now = section.number(CURRENT_EDITION)
        sections.append({"key": section.key, "title": section.title, "volume": section.volume,
                         "editions": [e for s, e in hits if s.key == section.key],
                         "current": f"{now[0]} ({CURRENT_EDITION}, {now[1]})" if now else None,
                         "rules": [r.id for r in REGISTRY.values() if r.section == section.key]})
    return {"schema": f"vmxkb.explain/{SCHEMA_VERSION}", "number": number.strip().lstrip("§"), "sections": sections}


def cmd_explain(args: argparse.Namespace) -> int:
    text = args.id.strip()
    if text.lstrip("§")[:1].isdigit():
        data = section_clauses(text)
        if data is None:
            raise InputError(f"{text!r} is not a section number of any SDM edition known here")

        def show(d: dict[str, Any]) -> None:
            for s in d["sections"]:
                sys.stdout.write(f"{d['number']} in {', '.join(s['editions'])}: SDM Vol. {s['volume']} \"{s['title']}\""
                                 f" (now {s['current'] or '?'})\n" + "".join(f"  {r}\n" for r in s["rules"]))

        _emit(data, args.json, show)
        return EXIT_OK
    rid = _resolve(text)
    _emit(explain_data(rid), args.json, _print_explain)
    return EXIT_OK


# --- review ----------------------------------------------------------------------------------


def cmd_review(args: argparse.Namespace) -> int:
    from vmxkb.review import ReviewError, review

    text = read_text(args.patch)
    try:
        report = review(text, args.edition)
    except ReviewError as exc:
        raise InputError(f"{args.patch}: {exc}") from None
    report = {"schema": f"vmxkb.review/{SCHEMA_VERSION}", **report}
    _emit(report, args.json, _print_review)
    return EXIT_FAIL if report["problems"] else EXIT_OK


def _print_review(r: dict[str, Any]) -> None:
    out = sys.stdout.write
    out(f"patch: {r['subject'] or '(no subject)'}\n")
    out(f"files: {', '.join(r['files']) or '-'}\n")
    if r["fields"]:
        out(f"VMCS fields touched: {', '.join(r['fields'])}\n")
    if r["functions"]:
        out(f"functions touched: {', '.join(r['functions'])}\n")
    if r["rules"]:
        out("\nrules to check:\n" + "".join(f"  {x['id']}: {x['title']}  ({x['why']})\n" for x in r["rules"]))
    if r["behaviours"]:
        out("\nKVM behaviours modelled here:\n" + "".join(f"  {b['id']}: {b['title']}  ({b['why']})\n" for b in r["behaviours"]))
    if r["cited_ids"]:
        out("\nrule IDs cited:\n" + "".join(f"  {c['id']}: {'ok' if c['exists'] else 'UNKNOWN' + (' (nearest: ' + ', '.join(c['nearest']) + ')' if c['nearest'] else '')}\n" for c in r["cited_ids"]))
    if r["cited_sections"]:
        out("\nSDM sections cited:\n")
        for c in r["cited_sections"]:
            if not c["sections"]:
                out(f"  {c['number']}: matches no section known here\n")
            for s in c["sections"]:
                flag = "" if c["current"] else f"  <- {'/'.join(s['editions'])} numbering; now {s['now']}"
                out(f"  {c['number']}: \"{s['title']}\"{flag}\n")
    out("\n" + ("problems:\n" + "".join(f"  {p}\n" for p in r["problems"]) if r["problems"] else "no problems found\n"))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
