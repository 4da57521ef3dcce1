"""Contacts in other programs' formats: the format registry (the surface), importers, merging."""

from __future__ import annotations

from microsip_bridge.contacts.formats import (
    EXPORT_FORMATS,
    FORMATS,
    IMPORT_FORMATS,
    ContactFormat,
    ReadOptions,
    WriteOptions,
    format_for_path,
    get_format,
)

__all__ = [
    "EXPORT_FORMATS",
    "FORMATS",
    "IMPORT_FORMATS",
    "ContactFormat",
    "ReadOptions",
    "WriteOptions",
    "format_for_path",
    "get_format",
]
