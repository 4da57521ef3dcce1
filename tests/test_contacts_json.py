"""Our JSON contacts format, and the usersDirectory JSON its import also reads (facts §4.6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microsip_bridge.contacts.jsonfile import export_json, import_json
from microsip_bridge.errors import BridgeError, FileFormatError
from microsip_bridge.microsip.contact import ATTRIBUTES, Contact
from microsip_bridge.microsip.contacts_xml import prepare_contact


def test_export_shape_is_stable() -> None:
    text = export_json([Contact(name="Bob", number="1001", starred=True, extra={"x-crm": "7"})])
    assert text.endswith("]\n")
    [item] = json.loads(text)
    # All 17 fields in MicroSIP's order, flags as booleans, then extra.
    assert list(item) == [*ATTRIBUTES, "extra"]
    assert item["starred"] is True
    assert item["presence"] is False
    assert item["email"] == ""
    assert item["extra"] == {"x-crm": "7"}


def test_export_keeps_non_ascii_readable() -> None:
    assert '"Zoë"' in export_json([Contact(name="Zoë", number="1")])


def test_round_trip_of_a_full_contact() -> None:
    contact = Contact(
        name="Ann",
        number="1",
        firstname="A",
        phone="2",
        mobile="3",
        comment="x\ny",
        info="Ready",
        presence=True,
        directory=True,
        extra={"department": "Sales"},
    )
    result = import_json(export_json([contact]))
    assert result.contacts == [contact]
    assert result.report == []


def test_users_directory_object_with_integer_flags() -> None:
    document = {
        "refresh": 3600,
        "silent": 1,
        "items": [
            {"name": "Reception", "number": "100", "presence": 1, "starred": 0},
            {"name": "Sales", "telephone": "200"},  # the last number alias (§4.6)
            {"name": "Support", "phone": 300, "presence": 2},  # phone as the number; an int
            {"name": "Nobody", "email": "n@x"},
        ],
        "presence": [{"number": "100", "status": "online"}],
    }
    result = import_json(json.dumps(document).encode())
    reception, sales, support = result.contacts
    assert (reception.number, reception.presence, reception.starred) == ("100", True, False)
    assert sales.number == "200"
    # ContactPrepare copies phone into number; presence 2 is not 1, so off.
    assert (support.number, support.phone, support.presence) == ("300", "300", False)
    assert [str(n) for n in result.report] == [
        "presence: 1 presence entries ignored (not contacts)"
    ]
    assert [str(s) for s in result.skipped] == ["item 4: 'Nobody' has no phone number; skipped"]
    # Only the keys the items had are carried into a merge (plus the number fields).
    assert result.fields == {"name", "number", "phone", "mobile", "presence", "starred", "email"}


def test_number_alias_order_is_number_phone_telephone() -> None:
    # facts §4.6: "number, or else phone, or else telephone"; mobile only after all three.
    text = json.dumps(
        [
            {"name": "a", "number": "1", "phone": "2", "telephone": "3"},
            {"name": "b", "phone": "2", "telephone": "3", "mobile": "4"},
            {"name": "c", "telephone": " 3 ", "mobile": "4"},
        ]
    )
    assert [c.number for c in import_json(text).contacts] == ["1", "2", "3"]


def test_bare_array_with_unknown_keys_and_nulls() -> None:
    text = '[{"name": null, "number": "1", "department": "IT"}, {"number": "2", "department": "x"}]'
    result = import_json(text)
    assert [c.name for c in result.contacts] == ["1", "2"]  # the number names them (§4.2)
    assert [str(n) for n in result.report] == [
        "item 1-2: key 'department' is not a contact field; ignored"
    ]


def test_bom_and_utf16_are_read() -> None:
    text = '[{"name": "Zoë", "number": "1"}]'
    assert import_json(text.encode("utf-8-sig")).contacts[0].name == "Zoë"
    assert import_json(text.encode("utf-16")).contacts[0].name == "Zoë"


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("[1, 2", "line 1, column 6", "not valid JSON"),
        ('"x"', None, "expected an array of contacts, got a string"),
        ('{"contacts": []}', None, 'an object with "items"'),
        ('{"items": {}}', None, '"items" must be an array, got an object'),
        ('[{"number": "1"}, []]', "item 2", "expected an object, got an array"),
        ('[{"number": "1", "email": ["a"]}]', "item 1", "'email' must be a string, got an array"),
        ('[{"number": 1.5}]', "item 1", "'number' must be a string, got a number"),
        ('[{"number": true}]', "item 1", "'number' must be a string, got a boolean"),
        (
            '[{"number": "1", "starred": "1"}]',
            "item 1",
            "'starred' must be a boolean or an integer",
        ),
        ('[{"number": "1", "extra": []}]', "item 1", "'extra' must be an object"),
        ('[{"number": "1", "extra": {"a": 1}}]', "item 1", "'extra' value 'a' must be a string"),
        ('[{"number": "1", "extra": {"a b": "1"}}]', "item 1", "cannot be a Contacts.xml"),
        ('[{"number": "1", "extra": {"name": "1"}}]', "item 1", "cannot be a Contacts.xml"),
        ("[" * 100_000 + "]" * 100_000, None, "not readable JSON"),
    ],
)
def test_wrong_shapes_and_types_name_the_item(text: str, where: str | None, message: str) -> None:
    with pytest.raises(FileFormatError, match=message.replace("(", r"\(")) as info:
        import_json(text)
    assert info.value.where == where


def test_control_characters_and_lone_surrogates_are_replaced() -> None:
    result = import_json('[{"name": "A\\u0000B\\ud800", "number": "1"}]')
    assert result.contacts[0].name == "A B "
    assert result.report[0].where == "item 1, key 'name'"
    assert "U+0000" in result.report[0].message


# --- properties -----------------------------------------------------------------------------

_TEXT = st.text(
    st.characters(
        exclude_categories=["Cs"],
        exclude_characters="".join(map(chr, [*range(9), 11, 12, *range(14, 32)])) + "\ufffe\uffff",
    ),
    max_size=10,
)


@st.composite
def json_contacts(draw: st.DrawFn) -> Contact:
    texts = draw(st.lists(_TEXT, min_size=14, max_size=14))
    number = draw(_TEXT.map(str.strip).filter(bool))
    flags = draw(st.lists(st.booleans(), min_size=3, max_size=3))
    extra = draw(st.dictionaries(st.from_regex(r"x-[a-z]{1,5}", fullmatch=True), _TEXT, max_size=2))
    # The importer trims numbers, so phone and mobile are drawn trimmed.
    texts[4], texts[5] = texts[4].strip(), texts[5].strip()
    fields: dict[str, Any] = dict(zip(ATTRIBUTES, [*texts, *flags], strict=True))
    fields["number"] = number
    return Contact(**fields, extra=extra)


@given(st.lists(json_contacts(), max_size=4))
def test_export_then_import_gives_the_prepared_contacts(contacts: list[Contact]) -> None:
    result = import_json(export_json(contacts))
    assert result.contacts == [prepare_contact(c) for c in contacts]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_ITEM_KEYS = st.sampled_from([*ATTRIBUTES, "extra", "telephone", "other"])


@given(
    st.one_of(
        _JSON,
        st.lists(st.dictionaries(_ITEM_KEYS, _JSON, max_size=5), max_size=4),
        st.fixed_dictionaries(
            {"items": st.lists(st.dictionaries(_ITEM_KEYS, _JSON, max_size=5), max_size=4)}
        ),
    )
)
def test_any_json_document_gives_contacts_or_a_bridge_error(document: object) -> None:
    try:
        result = import_json(json.dumps(document))
    except BridgeError:
        return
    assert all(contact.number for contact in result.contacts)


@given(st.binary(max_size=300))
def test_any_bytes_give_contacts_or_a_bridge_error(data: bytes) -> None:
    try:
        result = import_json(data)
    except BridgeError:
        return
    assert all(contact.number for contact in result.contacts)
