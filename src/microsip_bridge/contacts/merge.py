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
  skipped, as MicroSIP's import drops them.
* With ``replace=True`` the import becomes the whole list: existing contacts that no imported
  contact matches are removed (MicroSIP does this only for directory contacts on a directory
  refresh, facts §4.6).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from microsip_bridge.contacts.importing import (
    ALL_FIELDS,
    ImportResult,
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
    skipped: list[Contact] = field(default_factory=list)
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
    if isinstance(imported, ImportResult):
        carried = validate_fields(imported.fields if fields is None else fields)
        incoming_list: Sequence[Contact] = imported.contacts
    else:
        carried = validate_fields(ALL_FIELDS if fields is None else fields)
        incoming_list = imported
    plan = MergePlan()
    incoming: dict[tuple[str, str], Contact] = {}
    for contact in incoming_list:
        key = prepared_key(contact)
        if not key[0]:
            plan.skipped.append(contact)
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


def describe(plan: MergePlan) -> list[str]:
    """One line per change for ``--dry-run`` output, then a summary line, e.g.::

    + add  "Jane Doe" 5551234
    ~ update "Bob" 1001: email "" -> "b@x"
    - remove "Old" 1002
    """
    lines = [f"+ add  {_label(contact)}" for contact in plan.added]
    for change in plan.updated:
        details = ", ".join(_difference(change, name) for name in change.fields)
        lines.append(f"~ update {_label(change.after)}: {details}")
    lines += [f"- remove {_label(contact)}" for contact in plan.removed]
    lines += [
        f"= duplicate {_label(contact)}: combined with an earlier imported contact"
        for contact in plan.duplicates
    ]
    lines += [f"! skip {_label(contact)}: no number" for contact in plan.skipped]
    summary = (
        f"{len(plan.added)} added, {len(plan.updated)} updated, "
        f"{len(plan.unchanged)} unchanged, {len(plan.removed)} removed"
    )
    if plan.duplicates:
        summary += f", {_count(len(plan.duplicates), 'duplicate')} combined"
    if plan.skipped:
        summary += f", {len(plan.skipped)} skipped without a number"
    lines.append(summary)
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


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
