"""Section numbers are data per edition; an old number leads back to its section."""

from __future__ import annotations

from vmxkb.citations import CURRENT_EDITION, EDITIONS, SECTIONS, find_section_number
from vmxkb.registry import REGISTRY
from vmxkb.sdm import load_all


def test_every_section_has_every_edition_with_a_mark() -> None:
    for s in SECTIONS.values():
        assert list(s.numbers) == list(EDITIONS)
        for num in s.numbers.values():
            assert num is None or num[1] in "vci"


def test_vm_entry_sections_follow_the_chapter_of_their_edition() -> None:
    for s in SECTIONS.values():
        if s.volume != "3C":
            continue
        for edition, num in s.numbers.items():
            if num:
                assert int(num[0].split(".")[0]) == EDITIONS[edition].vm_entry_chapter, (s.key, edition, num)


def test_old_number_leads_to_the_section() -> None:
    hits = {(s.key, e) for s, e in find_section_number("26.3.1.5")}
    assert hits == {("SEC_GUEST_NON_REGISTER", "E3a"), ("SEC_GUEST_NON_REGISTER", "E3b")}
    assert {s.key for s, _ in find_section_number("§29.3.1.2")} == {"SEC_GUEST_SEGMENTS"}
    assert find_section_number("99.9") == []


def test_every_rule_cites_a_known_section() -> None:
    load_all()
    for r in REGISTRY.values():
        assert r.section in SECTIONS, r.id


def test_cite_current_edition() -> None:
    s = SECTIONS["SEC_GUEST_NON_REGISTER"]
    assert s.cite() == 'SDM Vol. 3C §29.3.1.5 (E6, c) "Checks on Guest Non-Register State"'
    assert CURRENT_EDITION == "E6"
