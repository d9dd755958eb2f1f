"""The ``vmxkb`` command line (a thin shell over the library; no Sphinx import).

This backbone version has ``list`` only; ``check``, ``explain``, ``cite`` and ``review``
are the CLI issue's work.
"""

from __future__ import annotations

import argparse
import sys

from vmxkb.citations import SECTIONS
from vmxkb.registry import REGISTRY
from vmxkb.sdm import AREAS, load_all


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vmxkb", description="Intel SDM VMX rules, executable")
    sub = parser.add_subparsers(dest="command", required=True)
    lst = sub.add_parser("list", help="list the rules")
    lst.add_argument("--area", choices=AREAS)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    load_all()
    for r in REGISTRY.values():
        if args.area and r.area != args.area:
            continue
        sys.stdout.write(f"{r.id}\t{SECTIONS[r.section].cite()}\t{r.summary}\n")
    return 0
