"""Settings: declared once, read from config.toml, every mistake named with the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from microsip_bridge.config import DEFAULTS, SETTINGS, config_path, load_config
from microsip_bridge.errors import FileFormatError


def test_missing_file_means_defaults(bridge_home: Path) -> None:
    cfg = load_config()
    assert cfg.path == bridge_home / "config.toml"
    assert cfg.values == DEFAULTS
    assert set(cfg.sources.values()) == {"default"}


def test_values_and_their_source(bridge_home: Path) -> None:
    config_path().write_text('backups = 2\nmicrosip = "C:\\\\MicroSIP"\n', encoding="utf-8")
    cfg = load_config()
    assert cfg.backups == 2
    assert cfg["microsip"] == "C:\\MicroSIP"
    assert cfg.sources["backups"] == str(config_path())
    assert cfg.sources["max_file_mb"] == "default"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("backups = 'five'\n", "backups must be a int"),
        ("bakups = 5\n", "unknown setting 'bakups'"),
        ("backups = \n", "not valid TOML"),
        ("backups = -1\n", "must not be negative"),
    ],
)
def test_mistakes_are_named(bridge_home: Path, text: str, message: str) -> None:
    config_path().write_text(text, encoding="utf-8")
    with pytest.raises(FileFormatError, match=message) as info:
        load_config()
    assert "config.toml" in str(info.value)


def test_every_setting_has_help_and_a_simple_type() -> None:
    for setting in SETTINGS:
        assert setting.help.endswith((".", ")")), setting.name
        assert setting.type in (str, int, float, bool)


def test_a_whole_number_is_fine_for_seconds(bridge_home: Path) -> None:
    config_path().write_text("reject_timeout = 20\n", encoding="utf-8")
    assert load_config()["reject_timeout"] == 20.0
