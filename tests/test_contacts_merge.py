"""MicroSIP's import merge (ContactsAdd, facts §4.5): match on number and name, update or add."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from microsip_bridge.contacts.csvfile import import_csv
from microsip_bridge.contacts.importing import ImportResult, Skipped, prepared_key
from microsip_bridge.contacts.merge import describe, merge, records, summary, summary_line
from microsip_bridge.microsip.contact import Contact
from microsip_bridge.microsip.contacts_csv import export_csv


def file_contacts(path: Path) -> list[Contact]:
    root = ET.fromstring(path.read_bytes())
    return [Contact.from_attributes(element.attrib) for element in root.iter("contact")]


def test_match_on_number_and_name_updates_anything_else_is_added() -> None:
    existing = [Contact(name="Bob", number="1001"), Contact(name="Ann", number="1002")]
    imported = [
        Contact(name="Bob", number="1001", email="b@x"),  # same number and name: update
        Contact(name="Robert", number="1001"),  # same number, other name: a new contact
        Contact(name="Ann", number="1003"),  # same name, other number: a new contact
    ]
    plan = merge(existing, imported)
    assert [c.email for c in plan.result] == ["b@x", "", "", ""]
    assert [prepared_key(c) for c in plan.added] == [("1001", "Robert"), ("1003", "Ann")]
    [change] = plan.updated
    assert (change.before.email, change.after.email, change.fields) == ("", "b@x", ("email",))
    assert plan.unchanged == []
    assert plan.changed


def test_matching_is_exact_after_contact_prepare() -> None:
    # Contacts.xml keeps names verbatim (the corpus has names ending in U+00A0).
    existing = [Contact(name="Julia\xa0", number="3015"), Contact(number="", phone="7")]
    imported = [Contact(name="Julia", number="3015"), Contact(name="7", number="7")]
    plan = merge(existing, imported)
    # "Julia" is not "Julia\xa0"; the phone-only contact is named and numbered "7" by
    # ContactPrepare, so it matches.
    assert [prepared_key(c) for c in plan.added] == [("3015", "Julia")]
    assert plan.unchanged == [existing[1]]


def test_carried_fields_overwrite_even_with_empty_values_but_never_empty_a_number() -> None:
    existing = [Contact(name="Bob", number="1", email="b@x", city="Paris", mobile="9")]
    imported = ImportResult(
        contacts=[Contact(name="Bob", number="1", email="", city="Lyon", mobile="")],
        fields=frozenset({"name", "number", "email", "mobile"}),
    )
    [after] = merge(existing, imported).result
    # email is carried: emptied (MicroSIP's ContactUpdate); city is not carried: kept;
    # mobile is carried but empty: a number is never deleted by an import.
    assert (after.email, after.city, after.mobile) == ("", "Paris", "9")


def test_update_writes_out_the_prepared_name_and_number() -> None:
    existing = [Contact(firstname="Ann", lastname="Lee", phone="5")]
    imported = [Contact(name="Ann Lee", number="5", email="a@x")]
    [change] = merge(existing, imported, fields={"name", "number", "email"}).updated
    assert (change.after.name, change.after.number) == ("Ann Lee", "5")
    assert change.fields == ("name", "number", "email")


def test_every_duplicate_in_the_existing_list_is_updated() -> None:
    existing = [Contact(name="A", number="1"), Contact(name="A", number="1")]
    plan = merge(existing, [Contact(name="A", number="1", info="Ready")])
    assert [c.info for c in plan.result] == ["Ready", "Ready"]
    assert len(plan.updated) == 2


def test_duplicates_within_the_import_are_combined() -> None:
    imported = [
        Contact(name="A", number="1", email="a@x", phone="2"),
        Contact(name="B", number="3"),
        Contact(name="A", number="1", mobile="4", starred=True),
    ]
    plan = merge([], imported)
    assert [(c.name, c.email, c.phone, c.mobile, c.starred) for c in plan.result] == [
        ("A", "a@x", "2", "4", True),
        ("B", "", "", "", False),
    ]
    assert plan.duplicates == [imported[2]]


def test_contacts_without_a_number_are_skipped() -> None:
    plan = merge([], [Contact(name="Nobody", email="n@x")])
    assert plan.result == []
    assert plan.skipped == [Skipped("contact 1", "Nobody")]


def test_the_importers_skips_are_counted_with_the_merges() -> None:
    # A row the importer skipped is one the user sees listed: it must be in the counts too.
    result = ImportResult(
        contacts=[Contact(name="Ann", number="1"), Contact(name="Nobody")],
        skipped=[Skipped("row 3", "n@x")],
    )
    plan = merge([], result)
    assert plan.skipped == [Skipped("row 3", "n@x"), Skipped("contact 2", "Nobody")]
    assert summary(plan)["skipped"] == 2
    assert summary_line(plan) == (
        "1 added, 0 updated, 0 unchanged, 0 removed, 0 duplicates in file, 2 skipped"
    )


def test_replace_removes_the_unmatched() -> None:
    existing = [Contact(name="Old", number="1"), Contact(name="Kept", number="2")]
    plan = merge(existing, [Contact(name="Kept", number="2")], replace=True)
    assert plan.removed == [existing[0]]
    assert plan.result == [existing[1]]


def test_added_contacts_are_prepared() -> None:
    [added] = merge([], [Contact(firstname="Ann", mobile="5")]).added
    assert (added.name, added.number, added.mobile) == ("Ann", "5", "5")


def test_extra_attributes_are_merged() -> None:
    existing = [Contact(name="A", number="1", extra={"x-a": "1", "x-b": "2"})]
    [change] = merge(existing, [Contact(name="A", number="1", extra={"x-b": "3"})]).updated
    assert change.after.extra == {"x-a": "1", "x-b": "3"}
    assert change.fields == ("extra.x-b",)


def test_unknown_field_names_are_refused() -> None:
    with pytest.raises(ValueError, match="nickname"):
        merge([], [], fields={"nickname"})


def test_describe() -> None:
    existing = [Contact(name="Bob", number="1001"), Contact(name="Old", number="1002")]
    imported = [
        Contact(name="Bob", number="1001", email="b@x", comment="line\n" + "x" * 100),
        Contact(name="Jane Doe", number="5551234"),
        Contact(name="Jane Doe", number="5551234"),
        Contact(name="No number"),
    ]
    plan = merge(existing, imported, replace=True)
    # One line per change, and the summary once, by the caller (it used to be printed twice).
    assert describe(plan) == [
        '+ add  "Jane Doe" 5551234',
        '~ update "Bob" 1001: email "" -> "b@x", comment "" -> "line\\n' + "x" * 54 + '…"',
        '- remove "Old" 1002',
        '= duplicate "Jane Doe" 5551234: combined with an earlier imported contact',
        '! skip contact 4 "No number": has no phone number',
    ]
    assert summary_line(plan) == (
        "1 added, 1 updated, 0 unchanged, 1 removed, 1 duplicates in file, 1 skipped"
    )


def test_records_are_structured() -> None:
    existing = [Contact(name="Bob", number="1001")]
    imported = [Contact(name="Bob", number="1001", email="b@x"), Contact(firstname="Ann")]
    blank = {"fields": [], "reason": "", "where": ""}
    assert records(merge(existing, [*imported, Contact(name="Jo", mobile="7")])) == [
        {"action": "added", "name": "Jo", "number": "7", **blank},
        {**blank, "action": "updated", "name": "Bob", "number": "1001", "fields": ["email"]},
        {
            **blank,
            "action": "skipped",
            "name": "Ann",
            "number": "",
            "reason": "has no phone number",
            "where": "contact 2",
        },
    ]


# --- real-world files: ours (tests/data) and the corpus's --------------------------------------


@pytest.mark.samples("contacts/*.xml", "contacts-*.xml")
def test_merging_a_contacts_file_into_itself_changes_nothing(sample: Path) -> None:
    contacts = file_contacts(sample)
    plan = merge(contacts, contacts)
    assert plan.result == contacts
    assert not plan.changed
    # Repeated (number, name) pairs of the file are combined on the import side.
    assert len(plan.duplicates) == len(contacts) - len({prepared_key(c) for c in contacts})


@pytest.mark.samples("contacts/*.xml", "contacts-*.xml")
def test_reimporting_an_exported_csv_changes_nothing(sample: Path) -> None:
    contacts = file_contacts(sample)
    plan = merge(contacts, import_csv(export_csv(contacts)))
    assert not plan.changed
    assert len(plan.unchanged) == len(contacts)


@pytest.mark.parametrize(
    "sample",
    ["data/csv/google-outlook.csv", "corpus/csv/real-index-google-outlookcsv.csv"],
    indirect=True,
)
def test_importing_a_google_export_twice_adds_once(sample: Path) -> None:
    imported = import_csv(sample.read_bytes())
    first = merge([], imported)
    assert len(first.added) == 4
    second = merge(first.result, imported)
    assert not second.changed
    # The row without a number is skipped each time, and said so each time.
    [skipped] = imported.skipped
    assert skipped.label.endswith("@example.invalid") or skipped.label == "mail@mail.com"
    assert describe(second) == [f'! skip row 4 "{skipped.label}": has no phone number']
    assert summary(second) == {
        "added": 0,
        "updated": 0,
        "unchanged": 4,
        "removed": 0,
        "duplicates_in_file": 0,
        "skipped": 1,
    }


# --- properties -----------------------------------------------------------------------------

# Few distinct values, so that keys collide and every branch of the merge is taken.
_VALUE = st.sampled_from(["", "1", "2", "Ann", "Bob", " "])
_FIELDS = st.sets(
    st.sampled_from(["name", "number", "phone", "mobile", "email", "firstname", "starred", "extra"])
)


@st.composite
def contacts(draw: st.DrawFn) -> Contact:
    return Contact(
        name=draw(_VALUE),
        number=draw(_VALUE),
        firstname=draw(_VALUE),
        lastname=draw(_VALUE),
        phone=draw(_VALUE),
        mobile=draw(_VALUE),
        email=draw(_VALUE),
        starred=draw(st.booleans()),
        extra=draw(st.dictionaries(st.sampled_from(["x-a", "x-b"]), _VALUE, max_size=2)),
    )


_LISTS = st.lists(contacts(), max_size=6)


@given(_LISTS, st.booleans())
def test_merging_a_list_into_itself_changes_nothing(items: list[Contact], replace: bool) -> None:
    numbered = [c for c in items if c.dial_number]
    # Two different contacts with one key cannot both stay as they are: MicroSIP updates both
    # from the imported rows too. Identical repeats are fine (the corpus has them).
    by_key: dict[tuple[str, str], Contact] = {}
    for contact in numbered:
        assume(by_key.setdefault(prepared_key(contact), contact) == contact)
    plan = merge(items, items, replace=replace)
    assert plan.added == []
    assert plan.updated == []
    assert plan.result == (numbered if replace else items)


@given(_LISTS, _LISTS, st.booleans(), _FIELDS)
def test_merging_is_idempotent(
    existing: list[Contact], imported: list[Contact], replace: bool, fields: set[str]
) -> None:
    first = merge(existing, imported, replace, fields=fields)
    second = merge(first.result, imported, replace, fields=fields)
    assert second.added == []
    assert second.updated == []
    assert second.removed == []
    assert second.result == first.result


@given(_LISTS, _LISTS, st.booleans())
def test_the_counts_are_the_changes_listed(
    existing: list[Contact], imported: list[Contact], replace: bool
) -> None:
    plan = merge(existing, imported, replace)
    counts = summary(plan)
    listed = [r["action"] for r in records(plan)]
    for key, action in [
        ("added", "added"),
        ("updated", "updated"),
        ("removed", "removed"),
        ("duplicates_in_file", "duplicate"),
        ("skipped", "skipped"),
    ]:
        assert counts[key] == listed.count(action)
    assert len(describe(plan)) == len(listed)
    assert counts["unchanged"] + counts["updated"] + counts["removed"] <= len(existing)


@given(_LISTS, _LISTS)
def test_replace_leaves_exactly_the_imported_keys(
    existing: list[Contact], imported: list[Contact]
) -> None:
    plan = merge(existing, imported, replace=True)
    wanted = {prepared_key(c) for c in imported if c.dial_number}
    assert {prepared_key(c) for c in plan.result} == wanted
    # Nothing is lost without being listed.
    assert len(plan.result) + len(plan.removed) == len(existing) + len(plan.added)
