"""Where each clause lives in every SDM edition: section numbers are data, per edition.

Rule IDs never contain a section number, because Intel renumbers chapters every few
years. A clause names one of the :data:`SECTIONS` below; the per-edition numbers and
their confidence marks come from the research catalogue (``shared/reference/sdm.md``
§1), and are shown on every clause page.

Confidence marks: ``v`` wording checked against a stored copy of that edition;
``c`` number cited by a third party quoting that edition; ``i`` inferred from the
chapter shift alone. A number that is not known is ``None`` (shown as ``?``).
"""

from __future__ import annotations

from collections.abc import Mapping

from vmxkb.record import Record

CONFIDENCE = {"v": "verified in a stored copy", "c": "cited by a third party", "i": "inferred"}


class Edition(Record):
    """A group of SDM revisions that share their VMX chapter numbering."""

    key: str
    period: str
    vmx_volume: str
    vm_entry_chapter: int


#: Edition groups, oldest first. The newest is the default for citations.
EDITIONS: Mapping[str, Edition] = {
    e.key: e
    for e in (
        Edition("E1", "2008 to mid-2009, before the Paging chapter", "3B", 22),
        Edition("E2", "Sep 2009 (253668-032) to early 2011", "3B", 23),
        Edition("E3a", "2011 (3A/3B/3C split) to about 2016", "3C", 26),
        Edition("E3b", "about 2017 to 2020 (a new x.5 section in chapter 26)", "3C", 26),
        Edition("E4", "about 2021 to 2023", "3C", 27),
        Edition("E5", "about 2024 to mid-2026", "3C", 28),
        Edition("E6", "order 325462-093 (2026)", "3C", 29),
    )
}
CURRENT_EDITION = "E6"

SectionNumber = tuple[str, str] | None  #: (number, confidence) or unknown


class Section(Record):
    """One SDM section that clauses cite, with its number in every edition group."""

    key: str  #: the need ID of the section (``SEC_...``)
    volume: str
    title: str
    numbers: Mapping[str, SectionNumber]

    def number(self, edition: str = CURRENT_EDITION) -> SectionNumber:
        """The (number, confidence) pair in ``edition``, or ``None`` when unknown."""
        return self.numbers[edition]

    def cite(self, edition: str = CURRENT_EDITION) -> str:
        """A one-line citation, e.g. ``SDM Vol. 3C §29.3.1.5 (E6, c) "Checks on ..."``."""
        num = self.number(edition)
        where = f"§{num[0]} ({edition}, {num[1]})" if num else f"§? ({edition}: number unknown)"
        return f'SDM Vol. {self.volume} {where} "{self.title}"'

    def as_field(self) -> list[str]:
        """The per-edition numbers as ``EDITION:NUMBER:MARK`` strings (the needs field)."""
        return [f"{e}:{n[0]}:{n[1]}" if n else f"{e}:?:?" for e, n in self.numbers.items()]


def _numbers(*cells: str | None) -> dict[str, SectionNumber]:
    """Seven cells, E1..E6, each ``"22.3.1.5v"`` style or ``None``."""
    if len(cells) != len(EDITIONS):
        raise ValueError("one cell per edition group")
    out: dict[str, SectionNumber] = {}
    for edition, cell in zip(EDITIONS, cells, strict=True):
        out[edition] = None if cell is None else (cell[:-1], cell[-1])
    return out


#: Sections cited by the clauses, in SDM order (Vol. 3C, then Vol. 3A/3B).
SECTIONS: Mapping[str, Section] = {
    s.key: s
    for s in (
        Section(
            "SEC_CTRL_ENTRY",
            "3C",
            "Checks on VM-Entry Control Fields",
            _numbers("22.2.1.3v", "23.2.1.3i", "26.2.1.3v", "26.2.1.3c", "27.2.1.3c", "28.2.1.3i", "29.2.1.3c"),
        ),
        Section(
            "SEC_ADDR_SPACE_SIZE",
            "3C",
            "Checks Related to Address-Space Size",
            _numbers("22.2.4i", "23.2.4i", "26.2.4i", "26.2.4i", "27.2.4i", "28.2.4i", "29.2.4i"),
        ),
        Section(
            "SEC_GUEST_CONTROL_REGS",
            "3C",
            "Checks on Guest Control Registers, Debug Registers, and MSRs",
            _numbers("22.3.1.1v", "23.3.1.1i", "26.3.1.1c", "26.3.1.1i", "27.3.1.1c", "28.3.1.1i", "29.3.1.1i"),
        ),
        Section(
            "SEC_GUEST_SEGMENTS",
            "3C",
            "Checks on Guest Segment Registers",
            _numbers("22.3.1.2i", "23.3.1.2i", "26.3.1.2i", "26.3.1.2i", "27.3.1.2i", "28.3.1.2c", "29.3.1.2i"),
        ),
        Section(
            "SEC_GUEST_DESCRIPTOR_TABLES",
            "3C",
            "Checks on Guest Descriptor-Table Registers",
            _numbers("22.3.1.3i", "23.3.1.3i", "26.3.1.3i", "26.3.1.3i", "27.3.1.3i", "28.3.1.3i", "29.3.1.3i"),
        ),
        Section(
            "SEC_GUEST_RIP_RFLAGS",
            "3C",
            "Checks on Guest RIP, RFLAGS, and SSP (before CET: Checks on Guest RIP and RFLAGS)",
            _numbers("22.3.1.4v", "23.3.1.4i", "26.3.1.4v", "26.3.1.4i", "27.3.1.4c", "28.3.1.4i", "29.3.1.4i"),
        ),
        Section(
            "SEC_GUEST_NON_REGISTER",
            "3C",
            "Checks on Guest Non-Register State",
            _numbers("22.3.1.5v", "23.3.1.5i", "26.3.1.5v", "26.3.1.5c", "27.3.1.5c", "28.3.1.5c", "29.3.1.5c"),
        ),
        Section(
            "SEC_GUEST_PDPTE",
            "3C",
            "Checks on Guest Page-Directory-Pointer-Table Entries",
            _numbers("22.3.1.6i", "23.3.1.6i", "26.3.1.6i", "26.3.1.6i", "27.3.1.6i", "28.3.1.6i", "29.3.1.6i"),
        ),
        Section(
            "SEC_INJECTION_DETAILS",
            "3C",
            "Details of Vectored-Event Injection",
            _numbers("22.5.1.1v", "23.5.1.1i", "26.5.1.1v", "26.6.1.1i", "27.6.1.1i", "28.6.1.1i", "29.6.1.1i"),
        ),
        Section(
            "SEC_SPECIAL_INTERRUPTIBILITY",
            "3C",
            "Special Features of VM Entry: Interruptibility State",
            _numbers("22.6.1v", "23.6.1i", "26.6.1v", "26.7.1i", "27.7.1i", "28.7.1c", "29.7.1i"),
        ),
        Section(
            "SEC_SPECIAL_PENDING_DBG",
            "3C",
            "Special Features of VM Entry: Delivery of Pending Debug Exceptions after VM Entry",
            _numbers("22.6.3v", "23.6.3i", "26.6.3v", "26.7.3i", "27.7.3c", "28.7.3c", "29.7.3i"),
        ),
        Section(
            "SEC_BM_STI",
            "3A",
            "Masking Maskable Hardware Interrupts",
            _numbers("5.8.1i", "6.8.1i", "6.8.1i", "6.8.1i", "6.8.1i", None, "7.8.1c"),
        ),
        Section(
            "SEC_BM_MOVSS",
            "3A",
            "Masking Exceptions and Interrupts When Switching Stacks",
            _numbers("5.8.3v", "6.8.3v", "6.8.3i", "6.8.3c", "6.8.3i", None, "7.8.3c"),
        ),
        Section(
            "SEC_BM_SINGLE_STEP",
            "3B",
            "Single-Step Exception Condition",
            _numbers("18.3.1.4i", "16.3.1.4v", "17.3.1.4i", "17.3.1.4i", None, None, None),
        ),
    )
}


def find_section_number(number: str) -> list[tuple[Section, str]]:
    """Every (section, edition) whose number is ``number`` (e.g. an old ``26.3.1.5``)."""
    hits = []
    for section in SECTIONS.values():
        for edition, num in section.numbers.items():
            if num and num[0] == number.strip().lstrip("§"):
                hits.append((section, edition))
    return hits
