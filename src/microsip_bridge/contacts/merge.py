"""Merging imported contacts into a contact list the way MicroSIP's import does (``ContactsAdd``).

The rules (facts §4.5; S22 ``Contacts::ContactsAdd`` and ``ContactUpdate``), and where we differ:

* An imported contact **matches** an existing one when both the number and the name are equal,
  compared exactly (case and spaces count) after MicroSIP's ``ContactPrepare`` (number falls
  back to phone, then mobile; an empty name is built from first and last name, else the
  number). Every existing contact that matches is updated, duplicates in Contacts.xml included.
* A match is **updated** in the fields the import carries (``ImportResult.fields``: a CSV's
  columns, say), the imported value overwriting the existing one even when it is empty, as
  MicroSIP does. Name and number are the match itself, so they never change; but a contact that
  changes gets the name and number ``ContactPrepare`` gives it written out (MicroSIP holds its
  contacts prepared and saves them so), which keeps the match stable for the next import. One
  deliberate exception: an import never empties the phone or mobile field. A blank cell is far
  more often a missing value than a wish to delete, and numbers are what contacts are for.
* MicroSIP leaves ``info`` alone on a contact with presence on and a non-empty ``info``,
  because at run time that field shows the BLF status. In the file it is plain text, so we
  update it like any other field.
* Anything else is **added**, prepared, after the existing contacts, in import order (MicroSIP
  appends).
* Within one import, MicroSIP adds each of two identical (number, name) rows. We combine them
  into the first: later non-empty texts win, flags are or-ed, ``extra`` is merged, so neither
  row's data is lost and the list gets no duplicate. Imported contacts without any number are
  skipped, as MicroSIP's import drops them; the plan lists them with the importer's own skips,
  so its counts are what was printed.
* With ``replace=True`` the import becomes the whole list: existing contacts that no imported
  contact matches are removed (MicroSIP does this only for directory contacts on a directory
  refresh, facts §4.6).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from microsip_bridge.contacts.importing import (
    ALL_FIELDS,
    ImportResult,
    Skipped,
    prepared_key,
    validate_fields,
)
from microsip_bridge.microsip.contact import (
    ATTRIBUTES,
    FLAG_FIELDS,
    NUMBER_FIELDS,
    TEXT_FIELDS,
    Contact,
)
from microsip_bridge.microsip.contacts_xml import prepare_contact

# The match key: equal in both contacts by definition, so an update never writes them.
_KEY_FIELDS = frozenset(("name", "number"))
# describe() shortens long values (a comment can be pages long) to keep one line per change.
_SHOWN_CHARS = 60
_COMBINED = "combined with an earlier imported contact"


@dataclass(frozen=True, slots=True)
class ContactChange:
    """An existing contact before and after the merge, and the fields that changed
    (attribute names, ``extra.<key>`` for unknown attributes)."""

    before: Contact
    after: Contact
    fields: tuple[str, ...]


@dataclass(slots=True)
class MergePlan:
    """What a merge does, for a dry run to show and a writer to apply (``result``)."""

    added: list[Contact] = field(default_factory=list)
    updated: list[ContactChange] = field(default_factory=list)
    unchanged: list[Contact] = field(default_factory=list)
    removed: list[Contact] = field(default_factory=list)
    duplicates: list[Contact] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    result: list[Contact] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether ``result`` differs from the existing list (MicroSIP saves only then)."""
        return bool(self.added or self.updated or self.removed)


def merge(
    existing: Sequence[Contact],
    imported: Sequence[Contact] | ImportResult,
    replace: bool = False,
    *,
    fields: Iterable[str] | None = None,
) -> MergePlan:
    """Plan merging ``imported`` into ``existing`` (see the module docstring for the rules).

    ``fields`` names what the import carries; by default the ``ImportResult``'s ``fields``, or
    every field for a plain list. Neither input is modified. Raises ``ValueError`` for an
    unknown field name.
    """
    plan = MergePlan()
    if isinstance(imported, ImportResult):
        carried = validate_fields(imported.fields if fields is None else fields)
        incoming_list: Sequence[Contact] = imported.contacts
        plan.skipped += imported.skipped
    else:
        carried = validate_fields(ALL_FIELDS if fields is None else fields)
        incoming_list = imported
    incoming: dict[tuple[str, str], Contact] = {}
    for position, contact in enumerate(incoming_list, start=1):
        key = prepared_key(contact)
        if not key[0]:
            plan.skipped.append(Skipped.no_number(f"contact {position}", contact))
        elif key in incoming:
            plan.duplicates.append(contact)
            incoming[key] = _combine(incoming[key], contact)
        else:
            incoming[key] = contact
    matched: set[tuple[str, str]] = set()
    for contact in existing:
        key = prepared_key(contact)
        source = incoming.get(key) if key[0] else None
        if source is None:
            if replace:
                plan.removed.append(contact)
            else:
                plan.result.append(contact)
            continue
        matched.add(key)
        after, changed = _apply(contact, source, carried)
        if changed:
            plan.updated.append(ContactChange(contact, after, changed))
        else:
            plan.unchanged.append(contact)
        plan.result.append(after)
    for key, contact in incoming.items():
        if key not in matched:
            added = prepare_contact(contact) or contact  # never None: the key has a number
            plan.added.append(added)
            plan.result.append(added)
    return plan


def _combine(first: Contact, later: Contact) -> Contact:
    changes: dict[str, object] = {
        name: getattr(later, name) for name in TEXT_FIELDS if getattr(later, name)
    }
    changes.update({name: getattr(first, name) or getattr(later, name) for name in FLAG_FIELDS})
    changes["extra"] = {**first.extra, **later.extra}
    return first.replace(**changes)


def _apply(
    before: Contact, source: Contact, carried: frozenset[str]
) -> tuple[Contact, tuple[str, ...]]:
    changes: dict[str, object] = {}
    for name in ATTRIBUTES:
        if name not in carried or name in _KEY_FIELDS:
            continue
        new = getattr(source, name)
        if name in NUMBER_FIELDS and not new:
            continue  # never empty a number field, see the module docstring
        if new != getattr(before, name):
            changes[name] = new
    if "extra" in carried and any(before.extra.get(k) != v for k, v in source.extra.items()):
        changes["extra"] = {**before.extra, **source.extra}
    if not changes:
        return before, ()
    number, name = prepared_key(before)
    after = before.replace(**changes, number=number, name=name)
    names = [attr for attr in ATTRIBUTES if getattr(after, attr) != getattr(before, attr)]
    names += [
        f"extra.{key}" for key, value in after.extra.items() if before.extra.get(key) != value
    ]
    return after, tuple(names)


# The summary's keys, in the order it prints them (the JSON report's ``summary`` too).
SUMMARY_KEYS = ("added", "updated", "unchanged", "removed", "duplicates_in_file", "skipped")


def summary(plan: MergePlan) -> dict[str, int]:
    """How many contacts each kind of change touches, and how many records were skipped."""
    counts = (
        len(plan.added),
        len(plan.updated),
        len(plan.unchanged),
        len(plan.removed),
        len(plan.duplicates),
        len(plan.skipped),
    )
    return dict(zip(SUMMARY_KEYS, counts, strict=True))


def summary_line(plan: MergePlan) -> str:
    """``2 added, 0 updated, 5 unchanged, 0 removed, 0 duplicates in file, 1 skipped``."""
    return ", ".join(f"{n} {key.replace('_', ' ')}" for key, n in summary(plan).items())


def records(plan: MergePlan) -> list[dict[str, Any]]:
    """The changes as structured records, in :func:`describe`'s order, for the JSON report:
    ``{"action", "name", "number", "fields", "reason", "where"}``. ``action`` is ``added``,
    ``updated``, ``removed``, ``duplicate`` or ``skipped``; ``fields`` lists what an update
    changes; ``reason`` says why a record was combined or skipped; ``where`` is a skipped
    record's place in the file (``row 4``, ``card 2 (line 9)``)."""
    out = [_record("added", contact) for contact in plan.added]
    out += [_record("updated", change.after, fields=change.fields) for change in plan.updated]
    out += [_record("removed", contact) for contact in plan.removed]
    out += [_record("duplicate", contact, reason=_COMBINED) for contact in plan.duplicates]
    out += [
        _record("skipped", None, name=skip.label, reason=skip.reason, where=skip.where)
        for skip in plan.skipped
    ]
    return out


def _record(
    action: str,
    contact: Contact | None,
    *,
    name: str = "",
    fields: Sequence[str] = (),
    reason: str = "",
    where: str = "",
) -> dict[str, Any]:
    number = ""
    if contact is not None:
        number, name = prepared_key(contact)
    return {
        "action": action,
        "name": name,
        "number": number,
        "fields": list(fields),
        "reason": reason,
        "where": where,
    }


def describe(plan: MergePlan) -> list[str]:
    """One line per change for ``--dry-run`` output, e.g.::

    + add  "Jane Doe" 5551234
    ~ update "Bob" 1001: email "" -> "b@x"
    - remove "Old" 1002
    = duplicate "Ann" 1003: combined with an earlier imported contact
    ! skip row 4 "mail@mail.com": has no phone number
    """
    lines = [f"+ add  {_label(contact)}" for contact in plan.added]
    for change in plan.updated:
        details = ", ".join(_difference(change, name) for name in change.fields)
        lines.append(f"~ update {_label(change.after)}: {details}")
    lines += [f"- remove {_label(contact)}" for contact in plan.removed]
    lines += [f"= duplicate {_label(contact)}: {_COMBINED}" for contact in plan.duplicates]
    lines += [
        f"! skip {skip.where + ' ' if skip.where else ''}{_show(skip.label)}: {skip.reason}"
        for skip in plan.skipped
    ]
    return lines


def _label(contact: Contact) -> str:
    number, name = prepared_key(contact)
    return f"{_show(name)} {number or '(no number)'}"


def _difference(change: ContactChange, name: str) -> str:
    if name.startswith("extra."):
        key = name.removeprefix("extra.")
        old: object = change.before.extra.get(key, "")
        new: object = change.after.extra.get(key, "")
    else:
        old = getattr(change.before, name)
        new = getattr(change.after, name)
    return f"{name} {_show(old)} -> {_show(new)}"


def _show(value: object) -> str:
    """A value as a JSON literal: quoted, with line breaks and controls escaped."""
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        value = value[: _SHOWN_CHARS - 1] + "…"
    return json.dumps(value, ensure_ascii=False)
