"""The call log for spreadsheets: CSV rows, the same for `calls --format csv` and the API."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Iterator
from typing import cast

from microsip_bridge.csvsafe import neutralise
from microsip_bridge.model import Call
from microsip_bridge.store.reader import CALL_FIELDS

# Calls per piece of output: a piece is handed on as soon as it is full.
BLOCK = 1000


def calls_csv(calls: Iterable[dict[str, object]], *, raw: bool = False) -> Iterator[str]:
    """Calls for spreadsheets: a header, then one line per call with every field, in the JSON's
    order (RFC 4180: CRLF line ends); ``events`` and ``transitions`` as space-separated names,
    booleans as ``true``/``false``, nothing for null. Text that a spreadsheet would run as a
    formula gets a ``'`` in front (csvsafe.py), unless ``raw``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # lineterminator "\r\n"

    def take() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    # By position, worked out once from Call's own types: a million rows go through the loop.
    kinds = {f.name: str(f.type).split(" | ")[0] for f in dataclasses.fields(Call)}
    flags = [i for i, name in enumerate(CALL_FIELDS) if kinds[name] == "bool"]
    numbers = {i for i, name in enumerate(CALL_FIELDS) if kinds[name] in ("int", "float")}
    texts = [i for i in range(len(CALL_FIELDS)) if i not in numbers and i not in flags]
    uids = CALL_FIELDS.index("events")
    fired = CALL_FIELDS.index("transitions")
    writer.writerow(CALL_FIELDS)
    yield take()
    for count, call in enumerate(calls, 1):
        cells: list[object] = list(call.values())  # None is written as an empty cell
        for i in flags:
            cells[i] = "true" if cells[i] else "false"
        cells[uids] = " ".join(cast(list[str], cells[uids]))
        cells[fired] = " ".join(cast(list[str], cells[fired] or ()))
        if not raw:
            for i in texts:
                if cells[i]:
                    cells[i] = neutralise(cast(str, cells[i]))
        writer.writerow(cells)
        if count % BLOCK == 0:
            yield take()
    yield take()
