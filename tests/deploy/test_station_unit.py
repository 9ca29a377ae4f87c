"""The station's systemd unit runs a ``bwc watch`` the program accepts, with the token kept off the command line,
and systemd itself (``systemd-analyze verify``) finds nothing wrong with it."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
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


UNITS = sorted((UNIT.parent).glob("*.service"))


def _verify(unit: Path, unit_text: str, folder: Path) -> str:
    """``systemd-analyze verify``'s complaints about a copy of the unit whose ``bwc`` is this venv's.

    verify refuses a unit whose ExecStart binary does not exist here (/opt/bwc is the image's path), and it
    reports unknown keys on stderr while still exiting 0: stderr is what tells. A template unit
    (``name@.service``) is verified as one instance of it.
    """
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    bwc = Path(sys.executable).with_name("bwc")
    copy = folder / unit.name.replace("@.", "@example.")
    copy.write_text(unit_text.replace("/opt/bwc/.venv/bin/bwc", str(bwc)))
    done = subprocess.run([analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    return (done.stderr + ("" if done.returncode == 0 else f"exit {done.returncode}")).strip()


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_finds_nothing_wrong_with_each_unit(unit: Path, tmp_path: Path) -> None:
    assert _verify(unit, unit.read_text(), tmp_path) == ""


def test_systemd_verify_catches_a_misspelt_key(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("\nRestart=", "\nRestartt=")
    assert "Unknown key 'Restartt'" in _verify(UNIT, text, tmp_path)


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_bwc_command_in_a_unit_exists_with_its_options(unit: Path) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    service = parser["Service"]
    for key in ("ExecStartPre", "ExecStart"):
        if key not in service:
            continue
        argv = shlex.split(service[key])
        assert argv[0] == "/opt/bwc/.venv/bin/bwc", argv
        done = CliRunner().invoke(app, [argv[1], "--help"], env={"COLUMNS": "200"})
        assert done.exit_code == 0, done.output
        for option in (a for a in argv[2:] if a.startswith("--")):
            assert option in done.output, f"{unit.name} {key}: bwc {argv[1]} has no {option}"
