"""Saving a merge into Contacts.xml: every refusal is checked before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from microsip_bridge.errors import UnsafeInputError
from microsip_bridge.microsip.contact import Contact


def save_contacts(
    path: Path,
    contacts: Sequence[Contact],
    *,
    max_bytes: int,
    backups: int,
    microsip_running: bool | None,
    force: bool,
) -> Path | None:
    """Write ``contacts`` to ``path`` as MicroSIP does; returns the backup's path, if any.

    Refused before a byte is written: a file over ``max_bytes`` (every command would refuse to
    read it back), and a Contacts.xml that a running MicroSIP would overwrite (unless
    ``force``). A caller that prints after this returns never shows a plan as if done.
    """
    from microsip_bridge.microsip.contacts_xml import serialize_contacts, write_contacts

    # write_contacts cannot take a size limit yet (its module is being reworked), so the size
    # is checked on a serialisation of our own: the bytes it will write, computed twice (about
    # 0.5 s per 100,000 contacts; the limit allows some 250,000).
    size = len(serialize_contacts(contacts))
    if size > max_bytes:
        raise UnsafeInputError(
            f"the import would make it {size:,} bytes, over the limit of {max_bytes:,} that "
            "every command reads (max_file_mb); nothing was written",
            path=path,
        )
    return write_contacts(
        path, contacts, backups=backups, microsip_running=microsip_running, force=force
    )
