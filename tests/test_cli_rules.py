"""`rules check` and `rules test`: what the file holds, what would fire, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli_support import run

CONFIG = """
default_region = "GB"

[[webhooks]]
name = "crm"
url = "https://crm.example/hooks"
events = ["*"]
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[rules]]
name = "crm pop"
on = ["ringing"]
direction = "incoming"
number = '^\\+44'
hours = "Mon-Fri 08:00-18:00"
open = "https://crm.example/search?q={e164}&n={name}"
run = ["/opt/log", "{raw}", "{name}", "{{literal}}"]
webhook = "crm"
notify = true

[[rules]]
name = "ended"
on = ["ended"]
run = ["/opt/log", "{outcome}"]
"""


@pytest.fixture
def config(bridge_home: Path) -> Path:
    path = bridge_home / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_check_lists_rules_and_targets(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, err = run(capsys, "rules", "check")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"# {config}: 2 rules, 1 webhook targets, all valid"
    assert "rule 1 ('crm pop'): on ringing" in out
    assert '    hours = "Mon-Fri 08:00-18:00"' in out
    assert "webhook 'crm': https://crm.example/hooks (*)" in out


def test_check_json(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run(capsys, "rules", "check", "--format", "json")
    data = json.loads(out)
    assert code == 0
    assert [r["name"] for r in data["rules"]] == ["crm pop", "ended"]
    assert data["rules"][0]["run"] == ["/opt/log", "{raw}", "{name}", "{{literal}}"]
    assert data["webhooks"] == [
        {"name": "crm", "url": "https://crm.example/hooks", "events": ["*"]}
    ]
    assert "secret" not in out


def test_check_a_bad_file_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "other.toml"
    path.write_text(CONFIG.replace("Mon-Fri 08", "Mon-Fry 08"), encoding="utf-8")
    code, out, err = run(capsys, "rules", "check", "--config", str(path))
    assert code == 1 and out == ""
    assert err.strip() == (
        f"microsip-bridge: error: {path}, [[rules]] 1 ('crm pop'), hours: 'Mon-Fry': days are "
        "Mon Tue Wed Thu Fri Sat Sun, or a range Mon-Fri"
    )
    assert "Traceback" not in err


def test_test_prints_the_exact_url_and_argv(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    code, out, _ = run(
        capsys,
        "rules",
        "test",
        "--event",
        "ringing",
        "--number",
        "020 7946 0000",
        "--name",
        "Ann & Bob",
        "--at",
        "2026-12-07 09:30",
    )
    assert code == 0
    assert out.splitlines() == [
        "rule 1 ('crm pop') fires:",
        "    open https://crm.example/search?q=%2B442079460000&n=Ann%20%26%20Bob",
        '    run ["/opt/log", "020 7946 0000", "Ann & Bob", "{literal}"]',
        "    webhook crm",
        "    notify",
    ]


def test_test_outside_hours_or_other_event_fires_nothing(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    args = ["rules", "test", "--number", "02079460000"]
    code, out, _ = run(capsys, *args, "--event", "ringing", "--at", "2026-12-06 09:30")
    assert (code, out) == (0, "no rule fires on ringing (incoming) for '02079460000'\n")
    code, out, _ = run(capsys, *args, "--event", "answered", "--at", "2026-12-07 09:30")
    assert "no rule fires" in out
    code, out, _ = run(
        capsys, *args, "--event", "ringing", "--direction", "outgoing", "--at", "2026-12-07 09:30"
    )
    assert "no rule fires" in out


def test_test_json(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, out, _ = run(
        capsys, "rules", "test", "--event", "ended", "--number", "101", "--format", "json"
    )
    data = json.loads(out)
    assert code == 0
    assert data["number"]["kind"] == "extension"
    assert data["fires"] == [
        {
            "rule": "ended",
            "index": 2,
            "event": "ended",
            "open": None,
            "run": ["/opt/log", "answered"],
            "webhook": None,
            "notify": False,
        }
    ]


def test_test_bad_at_and_bad_event(capsys: pytest.CaptureFixture[str], config: Path) -> None:
    code, _, err = run(
        capsys, "rules", "test", "--event", "ringing", "--number", "1", "--at", "tomorrow"
    )
    assert code == 1
    assert err.strip() == "microsip-bridge: error: --at: 'tomorrow' is not \"YYYY-MM-DD HH:MM\""
    code, _, err = run(capsys, "rules", "test", "--event", "rang", "--number", "1")
    assert code == 2
    assert "rang" in err


def test_no_config_file_means_no_rules(
    capsys: pytest.CaptureFixture[str], bridge_home: Path
) -> None:
    code, out, _ = run(capsys, "rules", "check")
    assert code == 0
    assert "0 rules, 0 webhook targets" in out
