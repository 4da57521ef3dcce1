"""Saving a merge into Contacts.xml: every refusal is checked before anything is written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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
    from microsip_bridge.errors import TooLargeError
    from microsip_bridge.microsip.contacts_xml import write_contacts

    try:
        return write_contacts(
            path,
            contacts,
            backups=backups,
            microsip_running=microsip_running,
            force=force,
            max_bytes=max_bytes,
        )
    except TooLargeError as exc:
        raise TooLargeError(
            f"{exc.message}; nothing was written (max_file_mb sets the limit)", path=path
        ) from None
