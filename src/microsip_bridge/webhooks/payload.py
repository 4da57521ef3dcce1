"""The JSON body of a webhook message (version :data:`VERSION`), fixed when its row is written."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from typing import TYPE_CHECKING

from microsip_bridge.model import Happened, webhook_type

if TYPE_CHECKING:
    from microsip_bridge.numbers import Normaliser

# Bumped when a field changes meaning or goes away (added fields do not bump it).
VERSION = 1


def iso_utc(ts: float) -> str:
    """``ts`` (Unix seconds) as ISO 8601 UTC with milliseconds and a Z."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def message_id(target: str, call_id: str, transition: str) -> str:
    """The ``webhook-id`` of one transition of one call for one target: derived, not random,
    so writing the row again (a retried transaction) finds the row already there."""
    digest = hashlib.sha256(f"{target}\0{call_id}\0{transition}".encode()).hexdigest()
    return "msg_" + digest[:32]


def test_message_id() -> str:
    """A fresh id for a ``webhook.test`` message."""
    return "msg_test_" + secrets.token_hex(12)


def call_body(happened: Happened, normalise: Normaliser) -> str:
    """The body reporting ``happened``: the call as the API gives it (``Call.to_dict``), with
    the number's forms under ``number_forms``."""
    data: dict[str, object] = happened.call.to_dict()
    data["number_forms"] = normalise(happened.call.number).as_dict()
    return _body(webhook_type(happened.transition), happened.at, data)


def test_body(target: str, now: float) -> str:
    """The body of a ``webhook.test`` message to ``target``."""
    return _body("webhook.test", now, {"target": target, "message": "a test from microsip-bridge"})


def _body(type_: str, at: float, data: dict[str, object]) -> str:
    doc = {"type": type_, "timestamp": iso_utc(at), "version": VERSION, "data": data}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
