"""The station's systemd unit runs a ``bwc watch`` the program accepts, with the token kept off the command line."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from typer.testing import CliRunner

from api.cli.main import app

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "bwc-station.service"


def _service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def test_the_station_unit_pushes_with_options_bwc_knows() -> None:
    argv = shlex.split(_service()["ExecStart"])
    assert argv[0].endswith("/bwc") and argv[1] == "watch" and "--server" in argv
    assert "--token" not in argv  # BWC_TOKEN from the EnvironmentFile: never visible in ps
    options = [a for a in argv[2:] if a.startswith("--")]
    help_text = CliRunner().invoke(app, ["watch", "--help"], env={"COLUMNS": "200"}).output
    for option in options:
        assert option in help_text, option


def test_the_station_unit_keeps_its_queue_in_its_state_directory() -> None:
    service = _service()
    assert "Environment=BWC_HOME=/var/lib/bwc-station" in UNIT.read_text().splitlines()
    assert service["StateDirectory"] == "bwc-station" and service["Restart"] == "always"
