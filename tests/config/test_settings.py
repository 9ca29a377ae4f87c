"""Settings: environment, TOML file, derived paths and masking of secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import Settings, mask_text, mask_url


def test_embedded_defaults_live_under_home(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "h")
    assert s.db_url == f"sqlite:///{tmp_path / 'h' / 'bwc.db'}"
    assert s.store_url == f"file://{tmp_path / 'h' / 'objects'}"
    assert s.inbox_path == tmp_path / "h" / "inbox"
    assert (s.stable_seconds, s.min_devices, s.max_gap_seconds, s.retention_days) == (5, 2, 3, 180)


def test_environment_overrides_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "bwc.toml"
    cfg.write_text('timezone = "Asia/Shanghai"\nmin_devices = 3\nstable_seconds = 9\n', encoding="utf-8")
    monkeypatch.setenv("BWC_CONFIG", str(cfg))
    monkeypatch.setenv("BWC_MIN_DEVICES", "4")
    s = Settings(home=tmp_path)
    assert s.timezone == "Asia/Shanghai"
    assert s.stable_seconds == 9
    assert s.min_devices == 4


def test_missing_config_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWC_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ValueError, match="not a readable file"):
        Settings(home=tmp_path)


def test_a_misspelt_key_in_the_settings_file_is_refused_with_the_nearest_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "bwc.toml"
    cfg.write_text("retention_day = 3650\nmin_devices = 3\n", encoding="utf-8")
    monkeypatch.setenv("BWC_CONFIG", str(cfg))
    with pytest.raises(ValueError, match="unknown settings: 'retention_day' \\(did you mean 'retention_days'\\?\\)"):
        Settings(home=tmp_path)
    cfg.write_text("min_devices = = 3\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is not valid TOML"):
        Settings(home=tmp_path)


def test_the_example_settings_file_in_deploy_loads_and_every_key_is_a_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "bwc.example.toml"
    monkeypatch.setenv("BWC_CONFIG", str(example))
    s = Settings(home=tmp_path)  # home from the arguments; the rest from the example
    assert s.timezone == "Asia/Shanghai" and s.retention_days == 180 and s.after_ingest == "keep"


def test_unknown_timezone_and_policy_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Settings(home=tmp_path, timezone="Mars/Olympus")
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, after_ingest="shred")


def test_extra_digests_from_comma_list(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BWC_EXTRA_DIGESTS", "sm3")
    assert Settings(home=tmp_path).extra_digests == ["sm3"]


def test_keyword_beats_environment_beats_file_for_the_same_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "bwc.toml"
    cfg.write_text("min_devices = 3\nretention_days = 30\nport = 8100\n", encoding="utf-8")
    monkeypatch.setenv("BWC_CONFIG", str(cfg))
    monkeypatch.setenv("BWC_MIN_DEVICES", "4")
    monkeypatch.setenv("bwc_retention_days", "40")  # the variable's case does not matter
    monkeypatch.setenv("BWC_TOKEN", "a station's token")  # shares the prefix, names no setting: ignored
    s = Settings(home=tmp_path, min_devices=5)
    assert (s.min_devices, s.retention_days, s.port) == (5, 40, 8100)


def test_structured_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BWC_FINDING_DUE_DAYS", '{"late_upload": 3.5}')
    monkeypatch.setenv("BWC_NAME_PATTERNS", '["^(?P<device>[^/]+)/.*$"]')
    monkeypatch.setenv("BWC_TRUSTED_PROXIES", "10.0.0.1, 10.0.0.2")
    monkeypatch.setenv("BWC_REQUIRE_AUDIO", "false")
    s = Settings(home=tmp_path)
    assert s.finding_due_days == {"late_upload": 3.5}
    assert s.name_patterns == ["^(?P<device>[^/]+)/.*$"]
    assert s.trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert s.require_audio is False


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://bwc:hunter2@db:5432/bwc", "postgresql+psycopg://bwc:***@db:5432/bwc"),
        (
            "s3://b?endpoint_url=http://m:9000&aws_secret_access_key=abc",
            "s3://b?endpoint_url=http://m:9000&aws_secret_access_key=***",
        ),
        ("sqlite:////abs/path/bwc.db", "sqlite:////abs/path/bwc.db"),
        (
            "s3://b?endpoint_url=http://user:secret@m:9000&aws_access_key_id=AK",
            "s3://b?endpoint_url=http://user:***@m:9000&aws_access_key_id=AK",
        ),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_mask_text_hides_passwords_by_shape_and_known_secrets_anywhere() -> None:
    text = (
        'Could not connect to the endpoint URL: "http://user:pa55word@m:9000/b"; '
        "dsn postgresql://bwc:hunter2@db/bwc?sslpassword=xyz&x=1; raw value TOPSECRETKEY"
    )
    masked = mask_text(text, {"TOPSECRETKEY"})
    assert masked == (
        'Could not connect to the endpoint URL: "http://user:***@m:9000/b"; '
        "dsn postgresql://bwc:***@db/bwc?sslpassword=***&x=1; raw value ***"
    )


def test_settings_know_their_secrets(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        database_url="postgresql+psycopg://bwc:db-pw-1@db/bwc",
        storage_url="s3://b?endpoint_url=http://u:ep-pw-2@m&aws_secret_access_key=key-3333",
    )
    assert settings.secrets() == {"db-pw-1", "ep-pw-2", "key-3333"}
    assert settings.mask("db-pw-1 ep-pw-2 key-3333 kept") == "*** *** *** kept"


@pytest.mark.parametrize(
    ("value", "why"),
    [("0", "greater than or equal to 1"), ("201", "less than or equal to 200"), ("twenty", "valid integer")],
)
def test_a_database_pool_size_out_of_range_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, why: str
) -> None:
    """A pool of 0 would make every request wait for a connection that never comes; one of thousands would
    exhaust PostgreSQL's ``max_connections`` (deploy/README.md sizes it)."""
    monkeypatch.setenv("BWC_DB_POOL_SIZE", value)
    with pytest.raises(ValidationError, match=why):
        Settings(home=tmp_path)
    monkeypatch.setenv("BWC_DB_POOL_SIZE", "32")
    assert Settings(home=tmp_path).db_pool_size == 32
