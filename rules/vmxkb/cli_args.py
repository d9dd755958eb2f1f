"""The command line's argparse parser: ``--help`` and every usage error.

A plain ``vmxkb check`` is read without it (:func:`vmxkb.cli.quick_check`): importing argparse,
building the parser and looking up its messages' translations cost about 8 ms, as much as
every rule together, and ``check`` has a start-up target (``docs/bench.md``).
"""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

def _columns() -> int:
    """The terminal width as ``shutil.get_terminal_size()`` reads it ($COLUMNS, then the
    terminal, then 80), without importing shutil (with bz2 and lzma: 3 ms of start-up)."""
    import os

    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _columns() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        from vmxkb.cli import InputError

        raise InputError(message)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (its ``--help`` texts are rendered into ``docs/cli.md``).

    With ``only``, just that subcommand's parser is built (what ``main`` does when the
    command line names one: building the other four costs more than a check)."""
    from vmxkb.citations import EDITIONS

    editions = list(EDITIONS)
    wanted = (lambda name: only is None or name == only)  # noqa: E731
    parser = _Parser(
        prog="vmxkb",
        description="Intel SDM VMX rules, executable: diagnose a VM-entry failure, explain and cite a rule, review a patch.",
        epilog="Exit status: 0 passes, 1 fails (or the review found problems), 2 bad input, 3 incomplete.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    if wanted("check"):
        check = sub.add_parser("check", help="check a guest state or a VMCS dump against every rule",
                               description="Check a guest state (JSON, YAML or TOML mapping of kernel VMCS field names "
                               "to integers or hex strings) or, with --dmesg, a kvm_intel/Xen VMCS dump as pasted.")
        check.add_argument("file", help="the input file, or - for standard input")
        check.add_argument("--dmesg", action="store_true", help="the input is a VMCS dump (kvm_intel dump_vmcs or Xen vmcs_dump_vcpu)")
        check.add_argument("--profile", metavar="FILE", help="capability profile (default: examples/profiles/default.toml's values)")
        check.add_argument("--edition", choices=editions, help="SDM edition group for section numbers (default: current)")
        check.add_argument("--json", action="store_true", help="print JSON (schema vmxkb.check/1)")

    if wanted("explain"):
        explain = sub.add_parser("explain", help="the clause, rule, scenarios, KVM behaviours and deviations of an ID",
                                 description="Explain a rule ID, or list the clauses of an SDM section number of any edition.")
        explain.add_argument("id", help="a rule ID (e.g. ENTRY_GUEST_PDE_BS_REQUIRED_TF) or a section number (e.g. 26.3.1.5)")
        explain.add_argument("--json", action="store_true", help="print JSON (schema vmxkb.explain/1)")

    if wanted("cite"):
        cite = sub.add_parser("cite", help="one line to paste into a review mail")
        cite.add_argument("id", help="a rule ID, or an SDM section number of any edition")
        cite.add_argument("--edition", choices=editions, help="SDM edition group (default: current)")
        cite.add_argument("--json", action="store_true", help="print JSON (schema vmxkb.cite/1)")

    if wanted("list"):
        lst = sub.add_parser("list", help="list the rules")
        from vmxkb.sdm import AREAS

        lst.add_argument("--area", choices=AREAS, help="only this SDM area")
        lst.add_argument("--json", action="store_true", help="print JSON (schema vmxkb.list/1)")

    if wanted("review"):
        review = sub.add_parser("review", help="the rules a patch touches; check the rule IDs and SDM numbers it cites",
                                description="Read a git format-patch file, an mbox or a plain diff (- for standard input).")
        review.add_argument("patch", help="the patch file, or - for standard input")
        review.add_argument("--edition", choices=editions, help="SDM edition group to compare citations with (default: current)")
        review.add_argument("--json", action="store_true", help="print JSON (schema vmxkb.review/1)")

    return parser
