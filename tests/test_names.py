"""Caller names: Contacts.xml (MicroSIP's rule, then equal E.164 forms), the bridge's own
contacts, the order of the sources, and the indexes following their files and table."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from microsip_bridge.contacts.names import CallerNames, NameMatch
from microsip_bridge.contacts.search import lookup_number
from microsip_bridge.microsip.contact import Contact, ContactIndex, contact_for_number
from microsip_bridge.microsip.contacts_xml import write_contacts
from microsip_bridge.model import Call, CallState, Direction
from microsip_bridge.numbers import Normaliser
from microsip_bridge.store import contacts as table
from microsip_bridge.store.contacts import BridgeContact
from microsip_bridge.store.engine import make_engine, upgrade
from tests.test_store import db, fresh, pg_admin  # noqa: F401 - fixtures

# (region, as a contact or caller in national format, the same in E.164): real-looking
# numbers libphonenumber takes as valid.
COUNTRIES = [
    ("US", "(212) 555-0142", "+12125550142"),
    ("GB", "020 7946 0000", "+442079460000"),
    ("DE", "030 12345678", "+493012345678"),
    ("GR", "210 345 6789", "+302103456789"),
    ("IN", "098765 43210", "+919876543210"),
    ("RU", "8 (495) 123-45-67", "+74951234567"),
]


def contacts_xml(path: Path, contacts: list[Contact]) -> Path:
    write_contacts(path, contacts, backups=0)
    return path


def a_call(number: str, name: str = "", source: str = "") -> Call:
    return Call(
        call_id=f"c-{number}",
        direction=Direction.INCOMING,
        number=number,
        state=CallState.RINGING,
        started_at=1.0,
        name=name,
        name_source=source,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'names.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(("region", "national", "e164"), COUNTRIES)
def test_contacts_in_national_format_name_calls_in_e164(
    tmp_path: Path, region: str, national: str, e164: str
) -> None:
    path = contacts_xml(tmp_path / "Contacts.xml", [Contact(name="Ada", number=national)])
    names = CallerNames(Normaliser(region), contacts=path)
    if region not in ("US", "GR"):  # no trunk prefix: MicroSIP's suffix rule finds these
        # MicroSIP's own rule finds nothing: a 0 or 8 in front against the country code.
        assert contact_for_number([Contact(name="Ada", number=national)], e164) is None
    for caller in (e164, f"sip:{e164}@pbx.example", "00" + e164[1:]):
        assert names.lookup(caller) == NameMatch("Ada", "microsip", national), caller


@pytest.mark.parametrize(("region", "national", "e164"), COUNTRIES)
def test_contacts_in_e164_name_calls_in_national_format(
    tmp_path: Path, region: str, national: str, e164: str
) -> None:
    path = contacts_xml(tmp_path / "Contacts.xml", [Contact(name="Ada", number=e164)])
    names = CallerNames(Normaliser(region), contacts=path)
    assert names.lookup(national) == NameMatch("Ada", "microsip", e164)
    # Another region reads the national digits as another number: no name.
    other = "JP" if region != "JP" else "US"
    assert CallerNames(Normaliser(other), contacts=path).lookup(national) is None


def test_microsips_own_rule_comes_first(tmp_path: Path) -> None:
    contacts = [
        Contact(name="Suffix", number="79460000"),  # MicroSIP: 3 more in front at most
        Contact(name="Exact", number="+442079460000"),
        Contact(name="Equal E.164", number="020 7946 0000"),
    ]
    names = CallerNames(Normaliser("GB"), contacts=contacts_xml(tmp_path / "C.xml", contacts))
    assert names.lookup("+442079460000").name == "Exact"  # type: ignore[union-attr]
    assert names.lookup("0079460000").name == "Suffix"  # type: ignore[union-attr]
    # Phone and mobile count for equal E.164 forms (MicroSIP's rule looks at the number only).
    extra = [Contact(name="Mobile", number="101", mobile="07700 900123")]
    names = CallerNames(Normaliser("GB"), contacts=contacts_xml(tmp_path / "D.xml", extra))
    assert names.lookup("+447700900123") == NameMatch("Mobile", "microsip", "07700 900123")


@pytest.mark.parametrize(
    ("contact", "caller", "named"),
    [
        ("alice@pbx.example", "sip:alice@pbx.example", True),
        ("alice", "sip:alice@other.example", True),  # the user part, as MicroSIP
        ("alice", "alicia", False),
        ("101", "sip:101@pbx", True),
        ("101", "1101", False),  # "101" is too short for a suffix match
        ("2002", "12002", True),  # MicroSIP's suffix rule
        ("2002", "2003", False),
    ],
)
def test_sip_names_and_extensions_are_matched_as_they_are(
    tmp_path: Path, contact: str, caller: str, named: bool
) -> None:
    path = contacts_xml(tmp_path / "Contacts.xml", [Contact(name="Someone", number=contact)])
    found = CallerNames(Normaliser("GB"), contacts=path).lookup(caller)
    assert (found is not None) is named


def test_the_bridge_contacts_come_after_microsips(tmp_path: Path, store: Engine) -> None:
    normalise = Normaliser("GB")
    path = contacts_xml(tmp_path / "C.xml", [Contact(name="From MicroSIP", number="1001")])
    with store.begin() as conn:
        table.insert_contacts(
            conn,
            [
                BridgeContact("From the bridge", "020 7946 0001", "+442079460001"),
                BridgeContact("Shadowed", "1001", "1001"),
            ],
        )
    names = CallerNames(normalise, contacts=path, engine=store)
    assert names.lookup("+44 20 7946 0001") == NameMatch(
        "From the bridge", "bridge", "020 7946 0001"
    )
    assert names.lookup("1001") == NameMatch("From MicroSIP", "microsip", "1001")
    assert names.lookup("+44 20 7946 0002") is None


def test_prepare_names_only_calls_without_a_name(tmp_path: Path) -> None:
    path = contacts_xml(tmp_path / "C.xml", [Contact(name="Ada", number="020 7946 0000")])
    names = CallerNames(Normaliser("GB"), contacts=path)
    unnamed = a_call("+442079460000")
    from_calls = a_call("+442079460000", name="Ada Lovelace (MicroSIP)")
    stranger = a_call("+442079469999")
    names.prepare([unnamed, from_calls, stranger])
    assert (unnamed.name, unnamed.name_source) == ("Ada", "microsip")
    # A name MicroSIP's [Calls] gave stays, and says where it came from.
    assert (from_calls.name, from_calls.name_source) == ("Ada Lovelace (MicroSIP)", "microsip")
    assert (stranger.name, stranger.name_source) == ("", "")


def test_the_indexes_follow_the_file_and_the_table(tmp_path: Path, store: Engine) -> None:
    now = [100.0]
    path = contacts_xml(tmp_path / "C.xml", [Contact(name="Old", number="1001")])
    names = CallerNames(Normaliser("GB"), contacts=path, engine=store, clock=lambda: now[0])
    assert names.lookup("1001").name == "Old"  # type: ignore[union-attr]
    contacts_xml(path, [Contact(name="New", number="1001")])
    os.utime(path, ns=(1, 1))  # another mtime whatever the clock's resolution
    with store.begin() as conn:
        table.insert_contacts(conn, [BridgeContact("Added", "2002", "2002")])
    # Looked at most once a second: not yet.
    assert names.lookup("1001").name == "Old"  # type: ignore[union-attr]
    assert names.lookup("2002") is None
    now[0] += 1.5
    assert names.lookup("1001").name == "New"  # type: ignore[union-attr]
    assert names.lookup("2002") == NameMatch("Added", "bridge", "2002")
    with store.begin() as conn:
        table.delete_contacts(conn)
    path.unlink()
    now[0] += 1.5
    assert names.lookup("1001") is None and names.lookup("2002") is None


def test_a_damaged_file_keeps_the_last_good_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    path = contacts_xml(tmp_path / "C.xml", [Contact(name="Ada", number="1001")])
    names = CallerNames(Normaliser("GB"), contacts=path, clock=lambda: now[0])
    assert names.lookup("1001") is not None
    for _ in range(3):
        path.write_bytes(b"<contacts><contact name='half")
        now[0] += 2
        assert names.lookup("1001") == NameMatch("Ada", "microsip", "1001")
    assert sum("for caller names" in r.message for r in caplog.records) == 1  # logged once


def test_a_store_without_the_table_is_no_source(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # never migrated
    try:
        assert CallerNames(Normaliser("GB"), engine=engine).lookup("1001") is None
    finally:
        engine.dispose()


def test_lookup_number_also_matches_equal_e164_forms() -> None:
    contacts = [Contact(name="Bob", number="101"), Contact(name="Ada", phone="020 7946 0000")]
    contacts[1].number = "5"
    assert lookup_number(contacts, "+442079460000") is None  # MicroSIP's rule alone
    found = lookup_number(contacts, "+442079460000", Normaliser("GB"))
    assert found is not None and (found.name, found.number) == ("Ada", "020 7946 0000")
    assert lookup_number(contacts, "alice", Normaliser("GB")) is None


def test_one_rule_for_lookups_and_presence() -> None:
    contacts = [
        Contact(name="A", number="555-1234"),
        Contact(name="B", number="5551234", mobile="+1 212 555 0142"),
    ]
    index = ContactIndex(contacts)
    # Blanks, dashes, dots and brackets are ignored on both sides; the first in file order.
    assert index.first("555 1234") is contacts[0]
    assert contact_for_number(contacts, "0015551234") is contacts[0]
    assert ContactIndex(contacts).named_by("+12125550142") == []  # the dial number only
    every = ContactIndex(contacts, every_number=True)
    assert every.named_by("+12125550142") == [contacts[1]]
    assert every.named_by("5551234") == contacts


def test_start_builds_microsips_rule_at_once_and_e164_forms_on_its_thread(
    tmp_path: Path,
) -> None:
    contacts = [Contact(name="Ada", number="020 7946 0000"), Contact(name="Desk", number="101")]
    names = CallerNames(Normaliser("GB"), contacts=contacts_xml(tmp_path / "C.xml", contacts))
    names.start()
    try:
        desk = a_call("sip:101@pbx")
        names.prepare([desk])  # no refresh on the caller's thread once started
        assert desk.name == "Desk"
        deadline = time.monotonic() + 10
        ada = a_call("+442079460000")
        while not ada.name and time.monotonic() < deadline:
            names.prepare([ada])
            time.sleep(0.01)
        assert (ada.name, ada.name_source) == ("Ada", "microsip")
    finally:
        names.stop()


def test_the_bridge_contacts_table_on_both_databases(db: Engine) -> None:  # noqa: F811
    rows = [
        BridgeContact("Ada", "020 7946 0000", "+442079460000", source="/a.csv", added_at=1.0),
        BridgeContact("Bob", "101", "101", organization="Desk", source="/b.vcf", added_at=2.0),
        BridgeContact("Cy", "102", "102", source="/a.csv", added_at=3.0),
    ]
    with db.begin() as conn:
        assert table.signature(conn) == (0, 0)
        assert table.insert_contacts(conn, rows) == 3
        assert table.insert_contacts(conn, []) == 0
    with db.connect() as conn:
        listed = table.list_contacts(conn)
        assert [(r.name, r.organization, r.source) for r in listed] == [
            ("Ada", "", "/a.csv"),
            ("Bob", "Desk", "/b.vcf"),
            ("Cy", "", "/a.csv"),
        ]
        assert table.known_keys(conn) == {"+442079460000", "101", "102"}
        count, highest = table.signature(conn)
        assert count == 3 and highest == listed[-1].id
    with db.begin() as conn:
        assert table.delete_contacts(conn, "/a.csv") == 2
        assert table.signature(conn) == (1, listed[1].id)  # a delete changes the count
        assert table.delete_contacts(conn) == 1
    names = CallerNames(Normaliser("GB"), engine=db)
    assert names.lookup("101") is None


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Ada", "Bob", ""]),
            st.lists(
                st.sampled_from(
                    [
                        "020 7946 0000",
                        "+44 20 7946 0000",
                        "0044 20 7946 0000",
                        "sip:101@pbx",
                        "101",
                        "Alice@pbx",
                        "alice@PBX",
                        "07700 900123",
                        "",
                    ]
                ),
                max_size=3,
            ),
        ),
        max_size=8,
    )
)
def test_an_import_keeps_one_row_per_number(people: list[tuple[str, list[str]]]) -> None:
    from microsip_bridge.contacts.book import BookImport, book_rows

    normalise = Normaliser("GB")
    contacts = []
    for name, numbers in people:
        fields = dict(zip(("number", "phone", "mobile"), numbers, strict=False))
        contacts.append(Contact(name=name, **fields))
    report = BookImport("x")
    rows = book_rows(contacts, normalise, source="x", known={"101"}, report=report, now=0.0)
    keys = [row.number_key for row in rows]
    assert len(keys) == len(set(keys)) and "101" not in keys and "" not in keys
    wanted = {normalise(n).key for c in contacts for n in c.numbers()} - {"", "101"}
    assert set(keys) == wanted  # every number is there once, the first contact's
    for row in rows:
        first = next(c for c in contacts if row.number in c.numbers())
        assert row.name == first.display_name
