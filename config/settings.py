"""One typed settings object for the whole service (SPEC §3).

Values come, highest first, from: keyword arguments, ``BWC_*`` environment variables, the TOML file named
by ``BWC_CONFIG``, then the defaults below. Paths left empty derive from ``home`` so that the embedded
default keeps everything under one folder.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from config.errors import BadInput

MEDIA_EXTENSIONS = ("mp4", "mov", "avi", "mkv", "ts", "m4a", "wav", "jpg")
SIDECAR_EXTENSIONS = ("json", "xml", "gps", "nmea", "txt", "srt")

# Matched in order against the path relative to the watched root (``/``-separated). The first pattern
# that matches wins; each may name ``device``, ``officer``, ``start`` and ``seq``. ``start`` is parsed by
# taking its digits as YYYYMMDDHHMMSS. The defaults, in order:
#   <DEVICE>_<OFFICER>_<YYYYMMDDHHMMSS>_<NNNN>.<ext>  at any depth
#   <DEVICE>_<YYYYMMDD>_<HHMMSS>_<N>.<ext>            at any depth
#   <DEVICE>/<anything>.<ext>   the first folder under the root names the device, the file may sit deeper;
#                               a YYYYMMDD[_-T]HHMMSS run of digits in the file name is read as the start.
# Device and officer codes are letters (any script), digits and hyphens; in the first two a device code must
# hold a digit, so that camera prefixes such as ``VID_20240501_083000_1.mp4`` do not pass for a device.
DEFAULT_NAME_PATTERNS = (
    r"(?:^|/)(?=[^/_]*\d)(?P<device>(?:[^\W_]|-)+)_(?P<officer>(?:[^\W_]|-)+)_(?P<start>\d{14})_(?P<seq>\d+)\.[^./]+$",
    r"(?:^|/)(?=[^/_]*\d)(?P<device>(?:[^\W_]|-)+)_(?P<start>\d{8}_\d{6})_(?P<seq>\d+)\.[^./]+$",
    r"^(?P<device>[^/]+)/(?:[^/]+/)*(?:[^/]*?(?<!\d)(?P<start>\d{8}[_T-]?\d{6})(?!\d))?[^/]*$",
)


class Settings(BaseSettings):
    """Effective configuration; build with :func:`get_settings` outside tests."""

    model_config = SettingsConfigDict(env_prefix="BWC_", extra="ignore", validate_default=True)

    home: Path = Path("./var")
    database_url: SecretStr | None = None
    storage_url: SecretStr | None = None
    inbox: Path | None = None
    done_dir: Path | None = None
    signing_key_path: Path | None = None
    # the audit log's Ed25519 key as text (PEM, or Go's PRIVATE+KEY+... form); wins over signing_key_path
    signing_key: SecretStr | None = None
    # the audit log's name: the checkpoint origin line and the signing key's name (no spaces, no '+')
    audit_origin: str = "bwc-evidence.local/audit"
    # verifier keys (public, from `bwc audit public-key`) of retired signing keys, separated by spaces or commas:
    # after a key rotation they still check the checkpoints the old key signed (deploy/README.md)
    audit_retired_keys: str = ""
    checkpoint_seconds: float = Field(60.0, gt=0)
    # ``bwc run``'s housekeeping: re-judge pending verdicts whose grace ran out (their findings open), and
    # delete expired web sessions and finished viewings, this often (api/housekeeping.py)
    housekeeping_seconds: float = Field(300.0, gt=0)
    timezone: str = "UTC"
    # the language of written reports (the period report's XLSX and PDF) when none is asked for
    language: Literal["en", "zh"] = "en"

    # ingest
    station: str = "default"
    stable_seconds: float = Field(5.0, ge=0)
    rescan_seconds: float = Field(60.0, gt=0)
    after_ingest: Literal["keep", "move", "delete"] = "keep"
    retry_base_seconds: float = Field(10.0, gt=0)
    retry_max_seconds: float = Field(3600.0, gt=0)
    name_patterns: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_NAME_PATTERNS))
    earliest_plausible: datetime = datetime(2005, 1, 1)
    future_tolerance_seconds: float = Field(86400.0, ge=0)
    upload_deadline_hours: float = Field(24.0, ge=0)
    extra_digests: Annotated[list[Literal["sm3"]], NoDecode] = Field(default_factory=list)
    # files hashed, stored and probed at once by a watcher or ``--once`` scan (ffprobe and I/O overlap)
    ingest_workers: int = Field(3, ge=1, le=32)
    # database connections one process keeps open for reuse in each of its pools, writing and (PostgreSQL)
    # reading (plus 10 more each while busier, closed on return): at least the requests one HTTP worker serves at
    # once, or every request past it opens a new connection (a PostgreSQL backend forked for it) and drops it
    # again (storage/db.py)
    db_pool_size: int = Field(20, ge=1, le=200)
    # a crash's leftovers (partial objects, upload spool files, open S3 multipart uploads) idle this long are
    # removed at start-up; younger ones may belong to a live ingest in another process and are never touched
    leftover_minutes: float = Field(60.0, gt=0)
    # pushed uploads (tus, api/routes/uploads.py): at most this many at once per process, refused (507) when the
    # disk holding the partial files would keep less than this free, forgotten when not resumed for this long
    upload_max_concurrent: int = Field(8, ge=1, le=1024)
    upload_min_free_mb: float = Field(1024.0, ge=0)
    upload_expiry_hours: float = Field(24.0, gt=0)
    # the station's side (``bwc watch --server``): bytes per PATCH, and an optional bandwidth cap (0: none)
    push_chunk_mb: float = Field(8.0, gt=0)
    push_max_rate_mbps: float = Field(0.0, ge=0)

    # retention and fixity
    retention_days: int = Field(180, ge=1)
    # objects re-hashed per hour by ``bwc run`` (least recently checked first); 0 turns the schedule off
    fixity_sample_per_hour: int = Field(12, ge=0, le=36000)

    # coverage policy (SPEC §6)
    min_devices: int = Field(2, ge=1)
    max_gap_seconds: float = Field(3.0, ge=0)
    require_audio: bool = True
    upload_grace_hours: float = Field(24.0, ge=0)
    link_margin_seconds: float = Field(0.0, ge=0)
    # findings (SPEC §13): days to rectify, per kind, over the defaults in audit/findings_rules.py (JSON object)
    finding_due_days: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)

    # service
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: str = "INFO"
    # uvicorn's line per HTTP request: off by default, since evidence reads are audit events already and
    # request counts are in /metrics; writing the line cost more than a /healthz itself
    access_log: bool = False
    # web sign-in (SPEC §11): the address people open (an https one makes the session cookie Secure), the
    # reverse proxies whose X-Forwarded-Proto/-For are believed, and how long a signed-in session lasts
    public_url: str | None = None
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    web_session_hours: float = Field(12.0, gt=0, le=24 * 30)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("BWC_CONFIG")
        if config_file:
            if not Path(config_file).is_file():
                raise ValueError(f"BWC_CONFIG names {config_file!r}, which is not a readable file")
            _refuse_unknown_keys(Path(config_file), set(settings_cls.model_fields))
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("audit_origin")
    @classmethod
    def _key_name(cls, value: str) -> str:
        if not value or any(c.isspace() or c == "+" for c in value):
            raise ValueError("must be non-empty, without spaces or '+' (a signed-note key name)")
        return value

    @field_validator("extra_digests", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        # From the environment: a JSON list or a comma-separated one.
        if isinstance(value, str):
            return json.loads(value) if value.lstrip().startswith("[") else [v.strip() for v in value.split(",") if v]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _address_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else None

    @field_validator("name_patterns", mode="before")
    @classmethod
    def _json_list(cls, value: Any) -> Any:
        # Regular expressions may contain commas, so the environment form is a JSON list only.
        if isinstance(value, str):
            return json.loads(value)
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        home = self.home.resolve()
        self.home = home
        if self.database_url is None:
            self.database_url = SecretStr(f"sqlite:///{home / 'bwc.db'}")
        if self.storage_url is None:
            self.storage_url = SecretStr(f"file://{home / 'objects'}")
        if self.inbox is None:
            self.inbox = home / "inbox"
        if self.done_dir is None:
            self.done_dir = home / "done"
        if self.signing_key_path is None:
            self.signing_key_path = home / "keys" / "audit-ed25519.pem"
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        assert self.database_url is not None
        return self.database_url.get_secret_value()

    @property
    def store_url(self) -> str:
        assert self.storage_url is not None
        return self.storage_url.get_secret_value()

    @property
    def inbox_path(self) -> Path:
        assert self.inbox is not None
        return self.inbox

    def masked(self) -> dict[str, Any]:
        """Settings as plain values with every secret masked, for ``bwc config show`` and logs."""
        data = self.model_dump(mode="json")
        data["database_url"] = mask_url(self.db_url)
        data["storage_url"] = mask_url(self.store_url)
        return data

    def secrets(self) -> set[str]:
        """Every secret value these settings hold, for :func:`mask_text`."""
        return url_secrets(self.db_url) | url_secrets(self.store_url)

    def mask(self, text: str) -> str:
        """``text`` with every secret of these settings (and any URL password) masked."""
        return mask_text(text, self.secrets())


SECRET_QUERY_KEYS = {
    "aws_secret_access_key",
    "secret_access_key",
    "secret",
    "password",
    "token",
    "sslpassword",
}


MASK = "***"
# ``scheme://user:password@`` anywhere in a text (an error message, a traceback); the password is group 2.
_URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@?#'\"]*):([^\s/@'\"]+)@")
_QUERY_SECRET = re.compile(
    r"\b(" + "|".join(sorted(SECRET_QUERY_KEYS, key=len, reverse=True)) + r")=([^&\s'\"]+)", re.IGNORECASE
)
MIN_SECRET_LENGTH = 4  # shorter "secrets" would blank out ordinary words of a message


def mask_url(url: str) -> str:
    """Hide the password of a URL and any secret-looking query value, also inside a URL-valued query value."""
    parts = urlsplit(url)
    if "@" not in parts.netloc and not parts.query:
        return url  # nothing to hide; urlunsplit would also mangle ``sqlite:////abs/path``
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode([(k, _mask_query_value(k, v)) for k, v in parse_qsl(parts.query)], safe="*/:@")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _mask_query_value(key: str, value: str) -> str:
    if key.lower() in SECRET_QUERY_KEYS:
        return MASK
    return mask_url(value) if "://" in value else value  # ``endpoint_url=http://user:secret@host``


def url_secrets(url: str) -> set[str]:
    """The secret parts of a URL (password, secret query values, also of URL-valued query values)."""
    found: set[str] = set()
    parts = urlsplit(url)
    try:
        if parts.password:
            found |= {parts.password, unquote(parts.password)}
    except ValueError:  # an unparseable port: the password is still what sits between ':' and '@'
        pass
    for key, value in parse_qsl(parts.query):
        if key.lower() in SECRET_QUERY_KEYS and value:
            found.add(value)
        elif "://" in value:
            found |= url_secrets(value)
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH}


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Any text that may quote a URL or a secret (an error, a traceback), with every password masked.

    URL passwords and secret query values are masked by their shape; ``secrets`` (see
    :meth:`Settings.secrets`) are also masked wherever they appear, whatever surrounds them.
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={MASK}", text)


def _refuse_unknown_keys(path: Path, known: set[str]) -> None:
    """A misspelt key in the settings file would silently leave its default in force (``retention_day = 3650``
    keeps evidence 180 days): refuse it, naming the nearest known setting. Environment variables are not
    checked this way: other programs' ``BWC_*`` variables (the station's ``BWC_TOKEN``) share the prefix."""
    try:
        keys = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"BWC_CONFIG file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(keys) - known)
    if unknown:
        hints = []
        for key in unknown:
            near = difflib.get_close_matches(key, sorted(known), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
        raise ValueError(f"BWC_CONFIG file {path} has unknown settings: {', '.join(hints)}")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; a bad value is a :class:`BadInput` naming it (never its value,
    which may be a secret)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"BWC_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise BadInput(f"bad settings: {problems}", code="bad_settings") from None
    except (ValueError, SettingsError) as exc:
        raise BadInput(f"bad settings: {exc}", code="bad_settings") from None
