"""Read a VMCS dump as people paste it: kvm_intel's ``dump_vmcs()`` or Xen's ``vmcs_dump_vcpu()``.

:func:`parse_dump` turns the text into a :class:`Dump`: the guest-state and control fields it
prints, by the kernel names of :data:`vmxkb.state.FIELDS`, plus the exit reason, the exit
qualification and a VM-instruction error when the text records them. A field the dump does
not print stays absent: nothing is guessed, so a rule that needs it is *not evaluated*.

What is read (the layouts, learnt from the printing functions, not from sample dumps):

* ``kvm-pre-5.13``: ``dump_vmcs()`` of ``arch/x86/kvm/vmx.c`` (read in 4.19) and of
  ``arch/x86/kvm/vmx/vmx.c`` up to 5.12: no header line; ``EFER =     0x...  PAT = 0x...`` on
  one line (printed only when the EFER/PAT controls are set); ``PinBased=%08x CPUBased=%08x
  SecondaryExec=%08x``.
* ``kvm-5.13``: from 5.13, a ``VMCS %p, last attempted VM-entry on CPU %d`` header,
  ``EFER= 0x...`` and ``PAT = 0x...`` on lines of their own, MSR autoload lists. An ``EFER=``
  marked ``(effective)`` or ``(autoload)`` is KVM's idea of EFER, not the VMCS field (the
  "load IA32_EFER" control is 0), so it is not mapped.
* ``kvm-6.x``: ``CPUBased=0x... SecondaryExec=0x... TertiaryExec=0x...`` then ``PinBased=0x...
  EntryControls=... ExitControls=...`` (5.17 on), and in current kernels a ``kvm_intel:`` prefix
  on every line (``pr_fmt``); FRED kernels split ``ExitControls=`` onto its own line; out-of-tree
  CET kernels add ``S_CET = ..., SSP = ..., SSP TABLE = ...``.
* ``xen``: ``vmcs_dump_vcpu()`` of ``xen/arch/x86/hvm/vmx/vmcs.c`` from Xen 4.6: ``(XEN)``
  prefix, a segment table (``  CS: 0008 0c09b ffffffff 0000000000000000``), ``PDPTE0..3``,
  ``RSP = 0x... (0x...)`` where the bracketed copy is Xen's saved register, not the VMCS, and
  ``EFER(VMCS) = ...`` (``EFER(MSR LL)`` is a load-list value, not mapped).
* ``xen-pre-4.6``: the same function up to Xen 4.5: ``CS: sel=0x..., attr=...`` lines,
  ``CR3: actual=0x..., target_count=``, ``Guest PAT = ``, ``Interruptibility=%04x``.

Pasting habits undone before reading: dmesg timestamps (also ``-T`` and ISO), printk caller
IDs, ``dmesg -x`` facility/level, syslog/journald prefixes, ``kvm_intel:`` and ``(XEN)``
prefixes, mail quoting, CRLF, soft wraps (a line ending in a space continues on the next),
hard wraps (a line without the log prefix its neighbours carry continues the line above),
``...`` elisions, a dump inside other text (commentary after an empty line ends it). Another
program's lines (journald's ``QEMU[pid]:``) and QEMU's failure report and register dump, with
its own ``CR0=`` and ``EFER=``, are never read as VMCS state. Only the *Guest State* part maps to ``GUEST_*`` and only the *Control State*
part to controls and exit information; the *Host State* part (with its own ``CR0=``,
``EFER``, ``PAT``) is never read as guest state.

>>> d = parse_dump('''[ 12.3] *** Guest State ***
... [ 12.3] RFLAGS=0x00000002         DR7 = 0x0000000000000400
... [ 12.3] *** Host State ***
... [ 12.3] CR0=0000000080050033 CR3=00000001226c8004 CR4=00000000001726e0''')
>>> {k: hex(v) for k, v in d.fields.items()}
{'GUEST_RFLAGS': '0x2', 'GUEST_DR7': '0x400'}
>>> d.truncated
True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from vmxkb.record import Record
from vmxkb.state import FIELDS

TYPE_CHECKING = False  # typing is not imported at run time (start-up: docs/bench.md)
if TYPE_CHECKING:
    from vmxkb.state import Vmcs

__all__ = [
    "ENTRY_FAILURE_REASONS",
    "Dump",
    "DumpError",
    "entry_failure",
    "failure_kind",
    "parse_dump",
    "parse_dumps",
    "to_vmcs",
    "vm_fail",
]

#: Basic exit reasons of a VM-entry failure (exit reason bit 31 set), SDM Appendix C.
ENTRY_FAILURE_REASONS: Mapping[int, str] = MappingProxyType(
    {33: "invalid guest state", 34: "MSR loading", 41: "machine-check event"})


class DumpError(ValueError):
    """The text cannot be read as a VMCS dump (the message is one line)."""


class Dump(Record):
    """One VMCS dump, as data."""

    #: guest-state and control fields, by :data:`vmxkb.state.FIELDS` name (only those printed)
    fields: Mapping[str, int]
    #: the exit reason (``reason=`` of the ``VMExit:`` lines), if printed
    exit_reason: int | None = None
    #: the exit qualification printed with it
    exit_qualification: int | None = None
    #: a VM-instruction error the text records (VMfail: e.g. 7, invalid control field)
    vm_instruction_error: int | None = None
    #: ``kvm-pre-5.13``, ``kvm-5.13``, ``kvm-6.x``, ``kvm`` (version not told), ``xen``,
    #: ``xen-pre-4.6``
    layout: str = "kvm"
    #: the text stops before the end of the dump (what is there is read)
    truncated: bool = False
    #: what the reader noticed: fields printed but out of scope, lines skipped, elisions...
    notes: tuple[str, ...] = ()


def entry_failure(d: Dump) -> bool:
    """Whether the dump records a VM-entry failure: exit reason bit 31 set (0x80000021
    invalid guest state, 0x80000022 MSR loading, 0x80000029 machine check). A reason
    without bit 31 is an ordinary VM exit; a VMfail (:func:`vm_fail`) is not a VM exit.

    >>> entry_failure(Dump({}, exit_reason=0x80000021)), entry_failure(Dump({}, exit_reason=0x1e))
    (True, False)
    """
    return d.exit_reason is not None and bool(d.exit_reason >> 31 & 1)


def vm_fail(d: Dump) -> bool:
    """Whether the text records a VMfail (VMLAUNCH/VMRESUME failed with a VM-instruction
    error; the VMCS exit-reason field then still holds the previous VM exit)."""
    return d.vm_instruction_error is not None


def failure_kind(d: Dump) -> str | None:
    """What the entry failure was (``"invalid guest state"``...), or ``None`` if none is recorded.

    >>> failure_kind(Dump({}, exit_reason=0x80000022)), failure_kind(Dump({}, exit_reason=0x1e))
    ('MSR loading', None)
    """
    if not entry_failure(d):
        return None
    return ENTRY_FAILURE_REASONS.get(d.exit_reason & 0xFFFF, "unknown")  # type: ignore[operator]


def to_vmcs(d: Dump) -> Vmcs:
    """The dump's fields as a :class:`vmxkb.state.Vmcs` (absent fields are ``None``)."""
    from vmxkb.state import Vmcs

    return Vmcs.from_fields(d.fields)


# --- physical lines: quoting and log prefixes ----------------------------------------------------

_QUOTE = re.compile(r"[ \t]*(?:>[ \t]?)+")
_DATE = (r"(?:\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"
         r"|[A-Z][a-z]{2}[ \t]+\d{1,2}[ \t]+\d\d:\d\d:\d\d(?:[.,]\d+)?)")
_PREFIX = re.compile(
    r"(?P<level><[0-7]>)"
    r"|(?P<ts>\[[ \t]*\d+[.,]\d+\][ \t]?)"
    r"|(?P<caller>\[[ \t]*[TC]\d+\][ \t]?)"
    r"|(?P<human>\[(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)[ \t]+[A-Z][a-z]{2}[ \t]+\d{1,2}[ \t]+\d\d:\d\d:\d\d"
    r"[ \t]+\d{4}\][ \t]?)"
    r"|(?P<xen>\(XEN\)[ \t]?(?:\[[^\]\n]{1,40}\][ \t]?)?)"
    r"|(?P<dmesgx>(?:kern|user|mail|daemon|auth|syslog|lpr|news|uucp|cron|authpriv|ftp|local[0-7])[ \t]*:[ \t]*"
    r"(?:emerg|alert|crit|err|warn|warning|notice|info|debug)[ \t]*:[ \t]?)"
    rf"|(?P<date>{_DATE}[ \t]+(?:[\w.-]+[ \t]+(?P<prog>[A-Za-z_][\w./-]*)(?:\[\d+\])?:[ \t]?)?)"
    r"|(?P<hostkernel>(?:[\w.-]+[ \t]+)?kernel:[ \t]?)"
    r"|(?P<module>(?:kvm_intel|kvm-intel|kvm)(?:[ \t]*\[\d+\])?:[ \t]?)"
    r"|(?P<program>[A-Za-z][\w.-]*\[\d+\]:[ \t]?)"  # another program's line, e.g. "QEMU[2997]: "
)
_NONE, _KERNEL, _FOREIGN = 0, 1, 2
_TAG_XEN, _TAG_KVM_INTEL = 1, 2
_BAD_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\ufffd]")


def _physical(text: str) -> list[tuple[int, str, int, int, bool]]:
    """(line number, content, kind, tags, had a log prefix) for every line of ``text``."""
    out = []
    for lineno, s in enumerate(text.split("\n"), 1):
        if s[:1] in (">", " ", "\t"):
            m = _QUOTE.match(s)
            if m and ">" in m.group():
                s = s[m.end():]
        pos, kind, tags = 0, _NONE, 0
        while True:
            m = _PREFIX.match(s, pos)
            if m is None or m.end() == pos:
                break
            if m.group("program") is not None:
                kind = _FOREIGN
            elif m.group("date") is not None:
                prog = m.group("prog")
                if prog is not None:
                    kind = _KERNEL if prog == "kernel" and kind != _FOREIGN else _FOREIGN
                elif kind == _NONE:
                    kind = _KERNEL
            elif kind != _FOREIGN:
                kind = _KERNEL
                if m.group("xen") is not None:
                    tags |= _TAG_XEN
                elif m.group("module") is not None and m.group().startswith("kvm_intel"):
                    tags |= _TAG_KVM_INTEL
            pos = m.end()
        out.append((lineno, s[pos:], kind, tags, pos > 0))
    return out


# --- logical lines: joining wraps -----------------------------------------------------------------

_ELISION = re.compile(
    r"\s*(?:(?:\.{3,}|\u2026|\[\s*(?:\.{2,}|\u2026|snip(?:ped)?)\s*\]|<\s*snip(?:ped)?\s*>|\(\s*snip(?:ped)?\s*\)"
    r"|-+\s*snip(?:ped)?\s*-+|-*\s*8<\s*-*|snip(?:ped)?)\s*)+$", re.I)

#: how every line the dump functions print begins (any layout); a line that starts like
#: this is never the continuation of a wrapped line
_LINE_START = re.compile(
    r"VMCS\s+(?:0x)?[0-9a-fA-F]+,\s*last\b|\*{3}|\*+\s*VMCS\b|CR[034]:(?:\s|$)|CR[034]:\s*actual\s*="
    r"|CR3\s+=|PDPT[RE][0-3]\s*=|R[SI]P\s+=|RFLAGS\s*=|Sysenter\s"
    r"|(?:CS|DS|SS|ES|FS|GS|LDTR|TR|GDTR|IDTR):(?:\s|$)"
    r"|sel\s+attr\s+limit|EFER\b|(?:Guest\s+|Host\s+)?PAT\s*=|DebugCtl\s*=|PerfGlobCtl\s*=|BndCfgS\s*="
    r"|Interruptibility\s*=|InterruptStatus\s*=|PreemptionTimer\s*=|SPEC_CTRL\b|MSR\s+(?:guest|host)\s+auto"
    r"|\d+:\s*msr=|S_CET\s*=|FRED\s+(?:guest|host):|RSP[0-3]=|target\d+=|TSC\s+(?:Offset|Multiplier)"
    r"|CS=[0-9a-fA-F]{4}\s|FSBase=|GDTBase=|CR0=[0-9a-fA-F]|PinBased=|CPUBased=|SecondaryExec="
    r"|EntryControls=|ExitControls=|ExceptionBitmap=|VMEntry:|VMExit:|reason=|IDTVectoring:|TPR\s+Threshold"
    r"|SVI\|RVI|APIC-access\s+addr|virt-APIC\s+addr|PostedIntrVec|EPT\s+pointer|CR3\s+target|PLE\s+Gap"
    r"|Virtual\s+processor\s+ID|VMCS\s+link\s+pointer")
#: keys that appear inside printed lines (a wrapped line may continue with one of them)
_KEYISH = re.compile(
    r"(?:CS:RIP\s*=|(?:sel|attr|limit|base|shadow|gh_mask|actual|target_count|target\d+|RIP|RSP|DR7|PDPT[RE][0-3]"
    r"|PAT|DebugExceptions|ActivityState|BndCfgS|SSP(?:\s+TABLE)?|TRBase|GSBase|IDTBase|CR[34]|SS|DS|ES|FS"
    r"|GS|TR|CPUBased|SecondaryExec|TertiaryExec|ExitControls|SecondaryExitControls|EntryControls|PFECmask"
    r"|PFECmatch|errcode|ilen|qualification|event_data|info|Window|TPR\s+Threshold|virt-APIC\s+addr"
    r"|EPTP\s+index|VMfunc\s+controls|TSC\s+Multiplier|SM\s+Base|stack_levels|RSP[0-3]|value|msr|intr_info"
    r")\s*[=(])")
_HEXISH = re.compile(r"(?:0x[0-9a-fA-F]+|[0-9a-fA-F]*\d[0-9a-fA-F]*)(?:[\s,)|:]|$)")


class _Line:
    __slots__ = ("lineno", "text", "kind", "tags", "prefixed", "elision", "after_gap")

    def __init__(self, lineno: int, text: str, kind: int, tags: int, prefixed: bool, elision: bool,
                 after_gap: bool = False) -> None:
        self.lineno, self.text, self.kind, self.tags = lineno, text, kind, tags
        self.prefixed, self.elision, self.after_gap = prefixed, elision, after_gap


#: words of the printed labels (a wrap inside one of them is healed without a space)
_VOCAB = frozenset("""
    CR0 CR3 CR4 actual shadow gh_mask target_count PDPTR0 PDPTR1 PDPTR2 PDPTR3 PDPTE0 PDPTE1 PDPTE2 PDPTE3 RSP
    RIP RFLAGS DR7 Sysenter CS DS SS ES FS GS LDTR TR GDTR IDTR sel attr limit base EFER PAT DebugCtl
    DebugExceptions PerfGlobCtl BndCfgS Interruptibility ActivityState InterruptStatus PreemptionTimer S_CET SSP
    TABLE FSBase GSBase TRBase GDTBase IDTBase PinBased CPUBased SecondaryExec TertiaryExec EntryControls
    ExitControls SecondaryExitControls ExceptionBitmap PFECmask PFECmatch VMEntry VMExit intr_info errcode ilen
    event_data reason qualification IDTVectoring info Offset Multiplier Threshold PostedIntrVec pointer index
    Gap Window Virtual processor VMCS link autoload autostore effective
""".split())
#: two-word labels (a wrap that ate the blank between them puts it back)
_PAIRS = frozenset(tuple(p.split()) for p in (
    "TSC Offset", "TSC Multiplier", "EPT pointer", "EPTP index", "TPR Threshold", "PLE Gap", "Virtual processor",
    "processor ID", "SSP TABLE", "SM Base", "Guest PAT", "Host PAT", "Sysenter RSP", "VMCS link", "link pointer",
    "MSR guest", "MSR host", "guest autoload", "guest autostore", "host autoload", "CR3 target", "Guest State",
    "Host State", "Control State", "MSR LL", "VMfunc controls", "last attempted", "on CPU", "Interrupt Status"))
_LASTWORD = re.compile(r"\w+$")
_FIRSTWORD = re.compile(r"\w+")


def _split_label(a: str, b: str) -> bool:
    """Whether ``a`` ends and ``b`` begins with the two halves of a label."""
    wa, wb = _LASTWORD.search(a), _FIRSTWORD.match(b)
    if wa is None or wb is None:
        return False
    return (wa.group(), wb.group()) in _PAIRS or (wa.group() + wb.group() in _VOCAB and wa.group() not in _VOCAB)


def _join(a: str, b: str) -> str:
    """Heal a wrap: ``a`` is the line so far, ``b`` its continuation (leading blanks kept)."""
    if a[-1:].isspace():
        return a + b.lstrip()
    if b[:1].isspace():
        return a + " " + b.lstrip()
    wa, wb = _LASTWORD.search(a), _FIRSTWORD.match(b)
    if wa is None or wb is None:
        return a + b  # punctuation at the break: "CR0" + ": actual=", "CS" + ":RIP="
    if wa.group() + wb.group() in _VOCAB:
        return a + b  # "RFLA" + "GS=", "Debug" + "Exceptions"
    if (wa.group(), wb.group()) in _PAIRS:
        return a + " " + b  # "TSC" + "Offset"
    if _KEYISH.match(b):
        return a + " " + b  # the wrap ate the blank before a key
    return a + b  # a wrap inside a value


def _logical(phys: list[tuple[int, str, int, int, bool]]) -> list[_Line]:
    lines: list[_Line] = []
    prev: _Line | None = None
    gap = False
    for lineno, content, kind, tags, prefixed in phys:
        if not content.strip():
            if not (content and prev is not None and prev.text[-1:].isspace()):
                prev = None  # an empty line ends a paragraph; blanks inside a soft wrap do not
                gap = gap or not prefixed
            continue
        if _ELISION.fullmatch(content):
            lines.append(_Line(lineno, "", kind, tags, prefixed, True))
            prev, gap = None, False
            continue
        body = content.lstrip()
        if prev is not None and not prefixed:
            if _TERMINATOR.match(body):
                join = False
            elif prev.prefixed:
                # the log prefix its neighbours carry is missing: a wrapped line (but a header
                # line is never the middle of a line: there the paste changes to bare lines)
                join = not (_HDR.match(body) or _VMCS_HDR.match(body) or _XEN_AREA.match(body))
            elif _LINE_START.match(body) or prev.text.rstrip().endswith("***"):
                join = False
            else:
                join = bool(prev.text[-1:].isspace() or _KEYISH.match(body) or _HEXISH.match(body)
                            or body[:1] in "=,(:|" or _split_label(prev.text, body))
            if join:
                prev.text = _join(prev.text, content)
                continue
        line = _Line(lineno, content, kind, tags, prefixed, False, gap)
        lines.append(line)
        prev, gap = line, False
    return lines


# --- dumps: where they start and end ------------------------------------------------------------

_HDR = re.compile(r"\*{3}\s*(?P<sec>Guest|Host|Control)\s+State\s*\*{3}")
_VMCS_HDR = re.compile(r"VMCS\s+(?:0x)?[0-9a-fA-F]+,\s*last attempted VM-entry on CPU")
_XEN_AREA = re.compile(r"\*+\s*VMCS Areas?\s*\*+")
_XEN_CLOSE = re.compile(r"\*{20,}")
_CR0_ACTUAL = re.compile(r"CR0:\s*actual\s*=")
#: lines that are never part of a dump: QEMU's failure report and register dump (with or
#: without a "program: " in front), which has CR0=, EFER=, segment lines of its own
_TERMINATOR = re.compile(
    r"(?:[A-Za-z][\w.-]*(?:\[\d+\])?:\s+)?(?:KVM: entry failed|KVM internal error|KVM_EXIT_|error: kvm run failed"
    r"|If you're running a guest on an Intel machine|[ER]AX=[0-9a-fA-F]{8}|[ER]SI=[0-9a-fA-F]{8}"
    r"|[ER]IP=[0-9a-fA-F]+ [ER]FL=|(?:ES|CS|SS|DS|FS|GS) =[0-9a-fA-F]{4} |LDT=[0-9a-fA-F]{4} |TR =[0-9a-fA-F]{4} "
    r"|[GI]DT=\s|CR0=[0-9a-fA-F]+ CR2=|DR[0-7]=[0-9a-fA-F]|EFER=[0-9a-fA-F]{16}\s*$|Code=|R(?:8 |9 |1[0-5])=[0-9a-fA-F]"
    r"|FCW=|FSW=|FPR\d=|[XYZ]MM\d\d=|MXCSR=)")
_CONTROL_ONLY = re.compile(r"(?:PinBased|CPUBased|SecondaryExec|EntryControls|ExceptionBitmap)=|VMEntry:|VMExit:")
_HOST_ONLY = re.compile(r"CS=[0-9a-fA-F]{4}\s+(?:SS|DS)=|FSBase=|GDTBase=|CR0=[0-9a-fA-F]+\s+CR3=|Host PAT")
_END_MARK = re.compile(r"TSC\s+Offset|Virtual\s+processor\s+ID")


class _Segment:
    """The logical lines of one dump, each with its section."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, _Line]] = []
        self.section = "header"
        self.sections: set[str] = set()
        self.vmcs_header = False
        self.guest_cr0 = False
        self.end_mark = False
        self.closed = False  # something after it ended it (a new dump, QEMU's report, Xen's closing line)
        self.at_eof = False  # the text ends while in it
        self.last_line = False  # its last line is the last line of the text
        self.notes: list[str] = []

    def new_for(self, ev: str) -> bool:
        """Whether a start line ``ev`` begins another dump."""
        sec = self.section
        if ev in ("vmcs", "xen_area"):
            return True
        if ev == "Guest":
            return sec != "header" or "guest" in self.sections
        if ev == "Host":
            return sec in ("host", "control")
        if ev == "Control":
            return sec == "control"
        return sec in ("host", "control") or self.guest_cr0  # CR0: actual=


def _segments(lines: list[_Line]) -> list[_Segment]:
    segs: list[_Segment] = []
    cur: _Segment | None = None
    for L in lines:
        if L.elision:
            if cur is not None:
                cur.lines.append((cur.section, L))
            continue
        s = L.text.strip()
        if L.kind == _FOREIGN:
            continue  # another program's line (QEMU's register dump...): never VMCS state
        if _TERMINATOR.match(s) or _XEN_CLOSE.fullmatch(s):
            if cur is not None:
                cur.closed = True
            cur = None
            continue
        m = _HDR.match(s)
        ev = m.group("sec") if m else None
        if ev is None:
            if _VMCS_HDR.match(s):
                ev = "vmcs"
            elif _XEN_AREA.match(s):
                ev = "xen_area"
            elif _CR0_ACTUAL.match(s):
                ev = "cr0"
        if ev is not None:
            if cur is None or cur.new_for(ev):
                if cur is not None:
                    cur.closed = True
                cur = _Segment()
                segs.append(cur)
            if ev == "vmcs":
                cur.vmcs_header = True
            elif ev == "cr0":
                if cur.section == "header":
                    cur.section = "guest"
                    cur.sections.add("guest")
                cur.guest_cr0 = True
            elif ev != "xen_area":
                cur.section = ev.lower()
                cur.sections.add(cur.section)
                continue
            if ev != "cr0":
                continue
        if cur is None:
            continue
        if L.after_gap and not L.prefixed and not _LINE_START.match(s):
            cur.closed = True  # other text after an empty line: the paste of the dump ended
            cur = None
            continue
        if cur.end_mark and not _LINE_START.match(s) and not (L.prefixed and "=" in s):
            continue  # text after the end of the dump
        if cur.section != "control" and _CONTROL_ONLY.match(s):
            cur.notes.append(f"line {L.lineno}: control lines without a '*** Control State ***' line before them")
            cur.section = "control"
            cur.sections.add("control")
        elif cur.section in ("header", "guest") and _HOST_ONLY.match(s):
            cur.notes.append(f"line {L.lineno}: host-state lines without a '*** Host State ***' line before them")
            cur.section = "host"
            cur.sections.add("host")
        if cur.section == "header":
            if not _LINE_START.match(s):
                continue  # e.g. Xen's "VCPU 0" between its banner and the dump
            cur.section = "guest"
            cur.sections.add("guest")
        if cur.section == "control" and _END_MARK.match(s):
            cur.end_mark = True
        cur.lines.append((cur.section, L))
    for seg in segs:
        seg.at_eof = not seg.closed
        seg.last_line = bool(seg.lines) and seg.lines[-1][1] is lines[-1]
    return segs


# --- layout ---------------------------------------------------------------------------------------

_XEN_HINT = re.compile(
    r"sel\s+attr\s+limit\s+base|PDPTE[0-3]\s*=|EFER\((?:VMCS|MSR LL)\)|R[SI]P = 0x[0-9a-fA-F]+ \(0x|Guest PAT"
    r"|.*EPTP index|PreemptionTimer|CR3: actual=|.*\bSM Base\b|(?:CS|DS|SS|ES|FS|GS|TR|LDTR):\s+[0-9a-fA-F]{4}\s")
_XEN_OLD_HINT = re.compile(
    r"CR3: actual=|Guest PAT|Interruptibility=[0-9a-fA-F]|DebugCtl=[0-9a-fA-F]|(?:CS|DS|SS|ES|FS|GS|TR): sel=0x")
_KVM6_HINT = re.compile(r".*\bTertiaryExec=|(?:CPUBased|PinBased)=0x|.*SecondaryExitControls=|FRED guest|.*event_data=")
_KVM513_HINT = re.compile(
    r"VMCS\s+[0-9a-fA-F]+, last attempted|EFER= |.*\((?:effective|autoload)\)|MSR (?:guest|host) auto")
_KVMOLD_HINT = re.compile(r"EFER =\s+0x[0-9a-fA-F]+\s+PAT = |PinBased=[0-9a-fA-F]{8} CPUBased=")


def _layout(seg: _Segment) -> str:
    texts = [L.text.strip() for _, L in seg.lines if not L.elision]
    tags = 0
    for _, L in seg.lines:
        tags |= L.tags
    if tags & _TAG_XEN or any(_XEN_HINT.match(t) for t in texts):
        return "xen-pre-4.6" if any(_XEN_OLD_HINT.match(t) for t in texts) else "xen"
    if tags & _TAG_KVM_INTEL or any(_KVM6_HINT.match(t) for t in texts):
        return "kvm-6.x"
    if seg.vmcs_header or any(_KVM513_HINT.match(t) for t in texts):
        return "kvm-5.13"
    if any(_KVMOLD_HINT.match(t) for t in texts) or "guest" in seg.sections:
        return "kvm-pre-5.13"  # 5.13 and later print the VMCS header line right before the guest state
    return "kvm"


# --- fields -----------------------------------------------------------------------------------------

_H = r"(?:0x)?(?P<val>[0-9a-fA-F]+)\b"
_CR_ACTUAL = re.compile(r"(?P<cr>CR[034]):\s*actual\s*=\s*" + _H)
_SYSENTER = re.compile(r"Sysenter\s+RSP\s*=\s*(?:0x)?(?P<esp>[0-9a-fA-F]+)\b"
                       r"(?:\s+CS:RIP\s*=\s*(?:0x)?(?P<cs>[0-9a-fA-F]+)\b(?::(?:0x)?(?P<eip>[0-9a-fA-F]+)\b)?)?")
_SEG = re.compile(r"(?P<seg>CS|DS|SS|ES|FS|GS|LDTR|TR|GDTR|IDTR):\s*")
_SEG_KV = re.compile(r"(?<![\w|])(?P<key>sel|attr|limit|base)\s*=\s*" + _H)
_HEXTOK = re.compile(r"(?<![\w.])(?:0x)?(?P<val>[0-9a-fA-F]+)\b")
_XEN_TABLE_HDR = re.compile(r"sel\s+attr\s+limit\s+base")
_GUEST_KV = re.compile(
    r"(?<![\w|:])(?P<key>SSP\s+TABLE|S_CET|SSP|CR3|PDPT[RE][0-3]|RSP|RIP|RFLAGS|DR7|EFER|(?:Guest\s+)?PAT"
    r"|DebugCtl|DebugExceptions|PerfGlobCtl|BndCfgS|Interruptibility|ActivityState|VMCS\s+link\s+pointer)"
    r"\s*(?P<qual>\((?:VMCS|MSR LL)\))?\s*=\s*" + _H + r"(?P<suffix>\s*\((?:effective|autoload)\))?")
_GUEST_UNMAPPED = re.compile(
    r"(?<![\w|])(?P<l>shadow|gh_mask|InterruptStatus|PreemptionTimer|SM Base|SPEC_CTRL|MSR guest autoload"
    r"|MSR guest autostore|FRED guest|target_count|target\d+|TSC Offset)\b")
_CTRL_KV = re.compile(
    r"(?<![\w|])(?P<key>PinBased|CPUBased|SecondaryExec|TertiaryExec|EntryControls|ExitControls)\s*=\s*" + _H)
_ENTRY_KV = re.compile(r"(?<![\w|])(?P<key>intr_info|errcode|ilen)\s*=\s*" + _H)
_REASON = re.compile(r"(?<![\w|])reason\s*=\s*(?:0x)?(?P<val>[0-9a-fA-F]+)\b"
                     r"(?:\s+qualification\s*=\s*(?:0x)?(?P<q>[0-9a-fA-F]+)\b)?")
_EPTP = re.compile(r"EPT\s+pointer\s*=\s*" + _H)
_LINK = re.compile(r"(?<![\w|])VMCS\s+link\s+pointer\s*=\s*" + _H)
_CTRL_UNMAPPED = re.compile(
    r"(?<![\w|])(?P<l>ExceptionBitmap|PFECmask|PFECmatch|VMExit|IDTVectoring|TSC Offset|TSC Multiplier"
    r"|TPR Threshold|SVI\|RVI|APIC-access addr|virt-APIC addr|PostedIntrVec|PLE Gap|Virtual processor ID"
    r"|CR3 target|SecondaryExitControls|EPTP index|VMfunc controls|event_data)\b")

_SEG_FIELDS = {key: {"sel": f"GUEST_{key}_SELECTOR", "attr": f"GUEST_{key}_AR_BYTES",
                     "limit": f"GUEST_{key}_LIMIT", "base": f"GUEST_{key}_BASE"}
               for key in ("CS", "DS", "SS", "ES", "FS", "GS", "LDTR", "TR", "GDTR", "IDTR")}
_GUEST_NAMES = {
    "CR3": "GUEST_CR3", "RSP": "GUEST_RSP", "RIP": "GUEST_RIP", "RFLAGS": "GUEST_RFLAGS", "DR7": "GUEST_DR7",
    "EFER": "GUEST_IA32_EFER", "PAT": "GUEST_IA32_PAT", "DebugCtl": "GUEST_IA32_DEBUGCTL",
    "DebugExceptions": "GUEST_PENDING_DBG_EXCEPTIONS", "PerfGlobCtl": "GUEST_IA32_PERF_GLOBAL_CTRL",
    "BndCfgS": "GUEST_BNDCFGS", "Interruptibility": "GUEST_INTERRUPTIBILITY_INFO",
    "ActivityState": "GUEST_ACTIVITY_STATE", "S_CET": "GUEST_S_CET", "SSP": "GUEST_SSP",
    "SSP TABLE": "GUEST_INTR_SSP_TABLE", "VMCS link pointer": "VMCS_LINK_POINTER",
}
_CTRL_NAMES = {
    "PinBased": "PIN_BASED_VM_EXEC_CONTROL", "CPUBased": "CPU_BASED_VM_EXEC_CONTROL",
    "SecondaryExec": "SECONDARY_VM_EXEC_CONTROL", "TertiaryExec": "TERTIARY_VM_EXEC_CONTROL",
    "EntryControls": "VM_ENTRY_CONTROLS", "ExitControls": "VM_EXIT_CONTROLS",
    "intr_info": "VM_ENTRY_INTR_INFO_FIELD", "errcode": "VM_ENTRY_EXCEPTION_ERROR_CODE",
    "ilen": "VM_ENTRY_INSTRUCTION_LEN",
}
#: hex digits each value is printed with (a value cut short by the end of the text is not read)
_DIGITS = {"sel": 4, "attr": 5, "limit": 8, "RFLAGS": 8, "Interruptibility": 8, "ActivityState": 8,
           "PinBased": 8, "CPUBased": 8, "SecondaryExec": 8, "EntryControls": 8, "ExitControls": 8,
           "intr_info": 8, "errcode": 8, "ilen": 8, "reason": 8, "Sysenter CS": 4}
_DIGITS_XEN_OLD = {"RFLAGS": 16, "Interruptibility": 4, "ActivityState": 4, "qualification": 8}
_UNMAPPED_NAMES = {"shadow": "CR0/CR4 read shadows", "gh_mask": "CR0/CR4 guest/host masks",
                   "target_count": "CR3-target count", "VMExit": "VM-exit interruption information",
                   "IDTVectoring": "IDT-vectoring information", "SVI|RVI": "guest interrupt status"}


class _Reader:
    """Turns the lines of one :class:`_Segment` into a :class:`Dump`."""

    def __init__(self, seg: _Segment) -> None:
        self.seg = seg
        self.layout = _layout(seg)
        self.fields: dict[str, int] = {}
        self.exit_reason: int | None = None
        self.exit_qualification: int | None = None
        self.notes: list[str] = list(seg.notes)
        self.unmapped: dict[str, None] = {}
        self.unknown: list[_Line] = []
        self.cut = False
        self.last: _Line | None = seg.lines[-1][1] if seg.last_line else None

    def digits(self, key: str) -> int:
        if self.layout == "xen-pre-4.6" and key in _DIGITS_XEN_OLD:
            return _DIGITS_XEN_OLD[key]
        return _DIGITS.get(key, 16)

    def value(self, L: _Line, s: str, m: re.Match[str], group: str, key: str) -> int | None:
        """The value of ``group``, or ``None`` if the end of the text cuts it short."""
        raw = m.group(group)
        if L is self.last and m.end(group) == len(s) and len(raw) < self.digits(key):
            self.cut = True
            self.notes.append(f"line {L.lineno}: the text stops inside the value of {key} ({raw!r}): not read")
            return None
        return int(raw, 16)

    def put(self, name: str, value: int | None, L: _Line, label: str, raw: str) -> None:
        if value is None:
            return
        width = FIELDS[name].width
        if value >> width:
            raise DumpError(f"line {L.lineno}: {label}={raw} does not fit {name} ({width} bits)")
        old = self.fields.get(name)
        if old is None:
            self.fields[name] = value
        elif old != value:
            self.notes.append(f"line {L.lineno}: {label} printed again with another value "
                              f"({value:#x}, first {old:#x}): the first is kept")

    def read(self) -> Dump:
        for section, L in self.seg.lines:
            if L.elision:
                self.notes.append(f"line {L.lineno}: an elision ('...'): what it stands for is absent")
                continue
            s = L.text.strip()
            if section == "guest":
                known = self.guest(L, s)
            elif section == "control":
                known = self.control(L, s)
            else:
                known = _LINE_START.match(s) is not None
            if not known:
                self.unknown.append(L)
        return self.finish()

    def guest(self, L: _Line, s: str) -> bool:
        m = _CR_ACTUAL.match(s)
        if m:
            cr = m.group("cr")
            self.put(f"GUEST_{cr}", self.value(L, s, m, "val", cr), L, f"{cr}: actual", m.group("val"))
            self.unmapped_in(s, _GUEST_UNMAPPED)
            return True
        m = _SYSENTER.match(s)
        if m:
            for group, name, label in (("esp", "GUEST_SYSENTER_ESP", "Sysenter RSP"),
                                       ("cs", "GUEST_SYSENTER_CS", "Sysenter CS"),
                                       ("eip", "GUEST_SYSENTER_EIP", "Sysenter RIP")):
                if m.group(group) is not None:
                    self.put(name, self.value(L, s, m, group, label), L, label, m.group(group))
            return True
        m = _SEG.match(s)
        if m and (s.startswith(("sel", "limit"), m.end()) or _HEXTOK.match(s, m.end())):
            self.segment(L, s, m.group("seg"), m.end())
            return True
        if _XEN_TABLE_HDR.match(s):
            return True
        found = False
        for m in _GUEST_KV.finditer(s):
            key = " ".join(m.group("key").split())
            if key == "Guest PAT":
                key = "PAT"
            elif key.startswith("PDPT"):
                name = f"GUEST_PDPTR{key[-1]}"
                self.put(name, self.value(L, s, m, "val", key), L, key, m.group("val"))
                found = True
                continue
            if key == "EFER" and (m.group("suffix") or m.group("qual") == "(MSR LL)"):
                how = (m.group("suffix") or m.group("qual")).strip()
                self.notes.append(f"line {L.lineno}: EFER {how} is not the VMCS field (VM entry does not load "
                                  "EFER from it): GUEST_IA32_EFER left absent")
                found = True
                continue
            self.put(_GUEST_NAMES[key], self.value(L, s, m, "val", key), L, key, m.group("val"))
            found = True
        return self.unmapped_in(s, _GUEST_UNMAPPED) or found or _LINE_START.match(s) is not None

    def segment(self, L: _Line, s: str, seg: str, pos: int) -> None:
        names = _SEG_FIELDS[seg]
        if s.startswith(("sel", "limit"), pos):  # kvm_intel, Xen before 4.6: key=value
            for m in _SEG_KV.finditer(s, pos):
                key = m.group("key")
                if key in names and not (seg in ("GDTR", "IDTR") and key in ("sel", "attr")):
                    self.put(names[key], self.value(L, s, m, "val", key), L, f"{seg} {key}", m.group("val"))
            return
        keys = ("limit", "base") if seg in ("GDTR", "IDTR") else ("sel", "attr", "limit", "base")
        for key, m in zip(keys, _HEXTOK.finditer(s, pos), strict=False):  # Xen's table
            self.put(names[key], self.value(L, s, m, "val", key), L, f"{seg} {key}", m.group("val"))

    def control(self, L: _Line, s: str) -> bool:
        found = False
        for m in _CTRL_KV.finditer(s):
            key = m.group("key")
            self.put(_CTRL_NAMES[key], self.value(L, s, m, "val", key), L, key, m.group("val"))
            found = True
        if s.startswith("VMEntry:"):
            for m in _ENTRY_KV.finditer(s):
                key = m.group("key")
                self.put(_CTRL_NAMES[key], self.value(L, s, m, "val", key), L, f"VMEntry {key}", m.group("val"))
            found = True
        m = _REASON.search(s)
        if m:
            reason = self.value(L, s, m, "val", "reason")
            if reason is not None:
                if reason >> 32:
                    raise DumpError(f"line {L.lineno}: reason={m.group('val')} does not fit the 32-bit exit reason")
                if self.exit_reason is None:
                    self.exit_reason = reason
            if m.group("q") is not None:
                qual = self.value(L, s, m, "q", "qualification")
                if qual is not None:
                    if qual >> 64:
                        raise DumpError(f"line {L.lineno}: qualification={m.group('q')} does not fit 64 bits")
                    if self.exit_qualification is None:
                        self.exit_qualification = qual
            found = True
        m = _EPTP.match(s)
        if m:
            self.put("EPT_POINTER", self.value(L, s, m, "val", "EPT pointer"), L, "EPT pointer", m.group("val"))
            found = True
        m = _LINK.search(s)
        if m:
            self.put("VMCS_LINK_POINTER", self.value(L, s, m, "val", "VMCS link pointer"), L,
                     "VMCS link pointer", m.group("val"))
            found = True
        return self.unmapped_in(s, _CTRL_UNMAPPED) or found or _LINE_START.match(s) is not None

    def unmapped_in(self, s: str, regex: re.Pattern[str]) -> bool:
        found = False
        for m in regex.finditer(s):
            label = m.group("l")
            if label[:6] == "target" and label[6:7].isdigit():
                label = "CR3-target values"
            self.unmapped[_UNMAPPED_NAMES.get(label, label)] = None
            found = True
        return found

    def finish(self) -> Dump:
        seg, notes = self.seg, self.notes
        if self.unknown:
            shown = "; ".join(f"line {L.lineno}: {L.text.strip()[:48]!r}" for L in self.unknown[:3])
            more = f" (and {len(self.unknown) - 3} more)" if len(self.unknown) > 3 else ""
            notes.append(f"skipped lines that are not part of the dump layout: {shown}{more}")
        if self.unmapped:
            notes.append("printed but not in FIELDS, so not read: " + ", ".join(self.unmapped))
        if "guest" not in seg.sections:
            notes.append("the text has no Guest State part: no guest field is read")
        need = "Virtual processor ID" if self.layout == "xen-pre-4.6" else "TSC Offset"
        truncated = "control" not in seg.sections or not any(
            sec == "control" and not L.elision and L.text.lstrip().startswith(need) for sec, L in seg.lines)
        if seg.at_eof:
            if self.cut or (seg.lines and seg.lines[-1][1].elision):
                truncated = True
            sec2 = self.fields.get("SECONDARY_VM_EXEC_CONTROL")
            if sec2 is not None and sec2 & 2 and "EPT_POINTER" not in self.fields:
                truncated = True  # EPT is on, so an 'EPT pointer' line was due
        if truncated and seg.lines:
            section, L = seg.lines[-1]
            where = "the text stops" if seg.at_eof else "the dump breaks off"
            notes.append(f"{where} at line {L.lineno}, in the {section.capitalize()} State part, before the "
                         "dump's end: what follows is absent")
        return Dump(MappingProxyType(dict(self.fields)), self.exit_reason, self.exit_qualification, None,
                    self.layout, truncated, tuple(notes))


# --- lines around the dump: VMfail, QEMU's and Xen's failure lines ------------------------------

_EVENTS = re.compile(
    r"(?P<xen>\bVM(?:RESUME|LAUNCH) error:\s*(?:0x)?(?P<xv>[0-9a-fA-F]+)\b)"
    r"|(?P<xenold><vm_(?:launch|resume)_fail> error code\s*(?:0x)?(?P<xov>[0-9a-fA-F]+)\b)"
    r"|(?P<xenr>(?:vmentry failure \(reason|Failed vm entry \(exit reason)\s*(?:0x)?(?P<xrv>[0-9a-fA-F]+)\))"
    r"|(?P<qemu>(?-i:KVM: entry failed, hardware error|hardware_entry_failure_reason\s*[=:])\s*"
    r"(?:0x)?(?P<qv>[0-9a-fA-F]+)\b)"
    r"|(?P<nested>(?-i:failed vm entry)\s+(?P<nv>[0-9a-fA-F]+)\b)"
    r"|(?P<generic>\bVM[-_ ]?instruction[-_ ]error(?:\s+(?:is|was|number|no\.?))?\s*[=:#]?\s*"
    r"(?P<gv>0x[0-9a-fA-F]+|\d+)\b)",
    re.I)


_EVENT_HINT = re.compile(r"rror|RROR|[Ff]ail|FAIL|reason")


def _events(lines: list[_Line]) -> list[tuple[int, str, int]]:
    """(line, kind, value): VM-instruction errors and failure reasons printed around dumps."""
    out = []
    for L in lines:
        lineno, content = L.lineno, L.text
        if not _EVENT_HINT.search(content):
            continue
        for m in _EVENTS.finditer(content):
            if m.group("xen"):
                out.append((lineno, "vmfail-before", int(m.group("xv"), 16)))
            elif m.group("xenold"):
                out.append((lineno, "vmfail-before", int(m.group("xov"), 16)))
            elif m.group("xenr"):
                out.append((lineno, "reason-before", int(m.group("xrv"), 16)))
            elif m.group("qemu"):
                value = int(m.group("qv"), 16)
                out.append((lineno, "reason-after" if value >> 31 & 1 else "vmfail-after", value))
            elif m.group("nested"):
                out.append((lineno, "vmfail-after", int(m.group("nv"), 16)))
            else:
                raw = m.group("gv")
                out.append((lineno, "vmfail-near", int(raw, 16) if raw[:2].lower() == "0x" else int(raw)))
    return out


def _owner(spans: list[tuple[int, int]], lineno: int, kind: str) -> int:
    """Which dump a line about a failure belongs to."""
    for i, (a, b) in enumerate(spans):
        if a <= lineno <= b:
            return i
    before = [i for i, (_, b) in enumerate(spans) if b < lineno]
    after = [i for i, (a, _) in enumerate(spans) if a > lineno]
    if kind.endswith("-before"):  # Xen prints these just before its dump
        return after[0] if after else before[-1]
    return before[-1] if before else after[0]


def _attach(d: Dump, events: list[tuple[int, str, int]]) -> Dump:
    notes = list(d.notes)
    reason, vmerr = d.exit_reason, None
    for lineno, kind, value in events:
        if kind.startswith("vmfail"):
            if value >> 32:
                raise DumpError(f"line {lineno}: VM-instruction error {value:#x} does not fit 32 bits")
            if vmerr is None:
                vmerr = value
        elif reason is None:
            if value >> 32:
                raise DumpError(f"line {lineno}: exit reason {value:#x} does not fit 32 bits")
            reason = value
            notes.append(f"line {lineno}: exit reason {value:#x} read from the failure report, not the dump")
        elif value != reason:
            notes.append(f"line {lineno}: the failure report gives exit reason {value:#x}, the dump {reason:#x}")
    if vmerr is not None and reason is not None and not reason >> 31 & 1:
        notes.append(f"VMfail (VM-instruction error {vmerr}): no VM exit happened, so the exit reason "
                     f"{reason:#x} is the previous exit's")
    if (reason, vmerr) == (d.exit_reason, d.vm_instruction_error) and len(notes) == len(d.notes):
        return d
    return Dump(d.fields, reason, d.exit_qualification, vmerr, d.layout, d.truncated, tuple(notes))


# --- entry points -------------------------------------------------------------------------------------


def _text_of(text: str | bytes) -> str:
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    if not isinstance(text, str):
        raise DumpError(f"expected text, not {type(text).__name__}")
    if not text.strip():
        raise DumpError("empty input: no VMCS dump to read")
    bad = len(_BAD_CHARS.findall(text))
    if bad and bad * 10 > len(text):
        raise DumpError(f"binary input, not text: {bad} of {len(text)} characters are control bytes or undecodable")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\ufeff", "").replace("\xa0", " ")


def parse_dumps(text: str | bytes) -> tuple[Dump, ...]:
    """Every VMCS dump in ``text``, in order (see :func:`parse_dump`)."""
    text = _text_of(text)
    lines = _logical(_physical(text))
    segs = [seg for seg in _segments(lines) if seg.lines or seg.sections]
    if not segs:
        hint = ""
        if "dump_invalid_vmcs" in text:
            hint = " (kvm_intel printed no dump: it needs the module parameter dump_invalid_vmcs=1)"
        elif re.search(r"KVM: entry failed|EAX=[0-9a-fA-F]{8}", text):
            hint = " (QEMU's register dump is not a VMCS dump: the kernel log holds dump_vmcs()'s lines)"
        raise DumpError("no VMCS dump found: expected dump_vmcs() or vmcs_dump_vcpu() output with a "
                        f"'*** Guest State ***' line{hint}")
    dumps = [_Reader(seg).read() for seg in segs]
    spans = [(min((L.lineno for _, L in s.lines), default=0), max((L.lineno for _, L in s.lines), default=0))
             for s in segs]
    events: dict[int, list[tuple[int, str, int]]] = {}
    for ev in _events(lines):
        events.setdefault(_owner(spans, ev[0], ev[1]), []).append(ev)
    return tuple(_attach(d, events.get(i, [])) for i, d in enumerate(dumps))


def parse_dump(text: str | bytes) -> Dump:
    """The VMCS dump in ``text`` (the first, if it holds several: a note says so).

    Raises :class:`DumpError` (one line) for empty or binary input, text without a dump, or a
    printed value wider than its field.
    """
    dumps = parse_dumps(text)
    first = dumps[0]
    if len(dumps) > 1:
        first = Dump(first.fields, first.exit_reason, first.exit_qualification, first.vm_instruction_error,
                     first.layout, first.truncated,
                     (*first.notes, f"the text holds {len(dumps)} dumps: this is the first (parse_dumps() gives all)"))
    return first
