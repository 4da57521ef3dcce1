"""Accounts: what doctor shows of [AccountN], and that a password never comes out."""

from __future__ import annotations

from pathlib import Path

import pytest

from microsip_bridge.microsip.accounts import (
    PasswordState,
    Transport,
    active_account_id,
    password_state,
    reachable_accounts,
    read_accounts,
)
from microsip_bridge.microsip.inifile import IniDocument


@pytest.mark.parametrize(
    ("stored", "state"),
    [
        ("", PasswordState.NONE),
        ("0" * 48, PasswordState.ENCRYPTED),  # facts §3.5: hex of whole 8-byte RC2 blocks
        ("7a1f0c9e3b5d2a68", PasswordState.ENCRYPTED),
        ("secret", PasswordState.CLEAR),
        ("7a1f0c9e3b5d2a6", PasswordState.CLEAR),  # not a whole block
        ("zz1f0c9e3b5d2a68", PasswordState.CLEAR),
    ],
)
def test_password_state(stored: str, state: PasswordState) -> None:
    assert password_state(stored) is state


@pytest.mark.parametrize(
    "sample",
    ["data/ini/fork-2016.microsip.ini", "corpus/ini/real-microtalk-ng-2016.microsip.ini"],
    indirect=True,
)
def test_real_accounts(sample: Path) -> None:
    doc = IniDocument.load(sample)
    (account,) = read_accounts(doc)
    assert account.id == 1
    assert account.domain == "192.0.2.10"
    assert account.password is PasswordState.ENCRYPTED
    # facts §3.5: transport present but empty means UDP+TCP.
    assert account.transport is Transport.UDP_TCP
    stored = doc.get("Account1", "password") or ""
    assert stored[:8] not in repr(account)  # the password itself is never kept


def test_account_rules() -> None:
    doc = IniDocument.from_text(
        "[Settings]\r\naccountId=2\r\n[Account1]\r\ndomain=a\r\npassword=hunter2\r\n"
        "[Account2]\r\ndomain=b\r\nserver=b\r\ntransport=TLS\r\n[Account3]\r\ndomain=\r\n"
        "[Account4]\r\ndomain=d\r\n[Account0]\r\ndomain=local\r\n"
    )
    accounts = read_accounts(doc)
    assert [a.id for a in accounts] == [1, 2, 3, 4]
    assert accounts[0].password is PasswordState.CLEAR
    assert accounts[0].transport is Transport.UDP  # absent: UDP (facts §3.5)
    assert accounts[1].transport is Transport.TLS
    assert not accounts[0].registers
    assert accounts[1].registers
    # facts §3.3: the menu stops at the first invalid account (3 has no domain).
    assert [a.id for a in reachable_accounts(accounts)] == [1, 2]
    assert active_account_id(doc) == 2
