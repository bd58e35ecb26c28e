"""The one typed settings object, read from the environment.

Every setting is a field of :class:`Settings`; its environment variable is the field name in
upper case. Lists are comma-separated. With nothing set, a node runs on the embedded default:
a SQLite file and in-process fan-out.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from email.utils import parseaddr
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"  # noqa: S105  # nosec B105
DEV_DATA_KEY = "dev-only-insecure-data-key-change-me-0123456789"
MIN_SECRET_LENGTH = 32
MAX_PARTITIONS = 1024
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./studybuddy.db"
DEV_MAIL_FROM = "StudyBuddy <no-reply@studybuddy.localhost>"
DEV_PUBLIC_WEB_URL = "http://127.0.0.1:8000"
SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
DATABASE_SCHEMES = ("postgresql", "postgresql+asyncpg", "postgres", "sqlite+aiosqlite", "sqlite")
REDIS_SCHEMES = ("redis", "rediss", "unix")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_RATE = re.compile(r"[1-9][0-9]{0,8}/(?:[0-9]{1,9}(?:\.[0-9]+)?)")


AtLeast0 = Annotated[int, msgspec.Meta(ge=0)]
AtLeast1 = Annotated[int, msgspec.Meta(ge=1)]
AtLeast0F = Annotated[float, msgspec.Meta(ge=0)]
Above0F = Annotated[float, msgspec.Meta(gt=0)]
BcryptRounds = Annotated[int, msgspec.Meta(ge=4, le=31)]
"""Bounds of numeric settings: a value outside them is refused at start-up, naming the
variable (a negative token lifetime or a zero socket cap would start a node that works for
no one)."""


class Env(StrEnum):
    """Deployment environment."""

    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"


class SettingsError(ValueError):
    """The environment does not describe a runnable node."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Configuration of one node. See the README's configuration table."""

    env: Env = Env.DEV
    database_url: str = DEFAULT_DATABASE_URL
    database_replica_urls: tuple[str, ...] = ()
    database_replica_max_lag_s: Above0F = 10.0
    database_replica_wait_s: AtLeast0F = 0.05
    database_replica_check_s: Above0F = 1.0
    redis_url: str | None = None
    redis_prefix: str = "sb:"
    redis_cluster: bool = False
    redis_partitions: AtLeast1 = 16
    redis_min_replicas_ack: AtLeast0 = 0
    redis_ack_timeout_ms: AtLeast1 = 500
    cors_origins: tuple[str, ...] = ()
    webhook_allowed_hosts: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    jwt_secret: str = DEV_JWT_SECRET
    jwt_algorithm: str = "HS256"
    jwt_private_key_file: str | None = None
    jwt_public_key_file: str | None = None
    jwt_key_id: str = "k1"
    jwt_previous_keys: tuple[str, ...] = ()
    jwt_issuer: str = "studybuddy"
    jwt_audience: str = "studybuddy-api"
    access_token_ttl_s: AtLeast1 = 900
    refresh_token_ttl_s: AtLeast1 = 7 * 24 * 3600
    data_encryption_key: str = DEV_DATA_KEY
    sentry_dsn: str | None = None
    log_level: str = "INFO"
    db_pool_min: AtLeast1 = 5
    db_pool_max: AtLeast1 = 20
    db_echo: bool = False
    bcrypt_rounds: BcryptRounds = 12
    bcrypt_max_concurrency: AtLeast1 = 4
    rate_limit_auth: str = "5/60"
    rate_limit_user: str = "100/60"
    rate_limit_anon: str = "20/60"
    ws_message_rate: Above0F = 10.0
    ws_message_burst: AtLeast1 = 30
    ws_frame_rate: Above0F = 50.0
    ws_frame_burst: AtLeast1 = 100
    ws_heartbeat_s: Above0F = 20.0
    ws_auth_timeout_s: Above0F = 5.0
    http_head_timeout_s: Above0F = 10.0
    http_send_timeout_s: Above0F = 30.0
    ws_max_sockets_per_user: AtLeast1 = 3
    ws_lease_ttl_s: Above0F = 30.0
    ws_queue_max_frames: AtLeast1 = 1000
    ws_queue_max_bytes: AtLeast1 = 1024 * 1024
    ws_admission_concurrency: AtLeast1 = 64
    ws_admission_queue: AtLeast0 = 2000
    max_body_bytes: AtLeast1 = 3 * 1024 * 1024
    max_json_bytes: AtLeast1 = 64 * 1024
    media_dir: str = "./media"
    media_url_prefix: str = "/media"
    clamd_url: str | None = None
    profile_cache_ttl_s: AtLeast1 = 300
    webhook_retry_base_s: AtLeast0F = 1.0
    webhook_timeout_s: Above0F = 5.0
    recovery_window_size: AtLeast1 = 1000
    recovery_window_s: AtLeast1 = 24 * 3600
    shutdown_grace_s: AtLeast0F = 10.0
    smtp_url: str | None = None
    mail_dir: str = "./mail"
    mail_from: str = DEV_MAIL_FROM
    public_web_url: str = DEV_PUBLIC_WEB_URL
    reminder_lead_s: AtLeast1 = 24 * 3600
    scheduler_tick_s: AtLeast1 = 60
    retention_sessions_days: AtLeast0 = 30
    retention_email_tokens_days: AtLeast0 = 7
    retention_webhook_deliveries_days: AtLeast0 = 30
    retention_dead_letters_days: AtLeast0 = 30
    retention_read_notifications_days: AtLeast0 = 90
    task_retry_base_s: AtLeast0F = 2.0

    @property
    def retention_days(self) -> dict[str, int]:
        """Each retention kind's period in days (``RETENTION_<KIND>_DAYS``)."""
        return {
            name.removeprefix("retention_").removesuffix("_days"): getattr(self, name)
            for name in self.__struct_fields__
            if name.startswith("retention_")
        }

    @property
    def is_dev(self) -> bool:
        """True on a developer's machine (plain HTTP, relaxed defaults)."""
        return self.env is Env.DEV

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default: the process environment).

        Raises:
            SettingsError: a value has the wrong type, or production is misconfigured.
        """
        source = os.environ if environ is None else environ
        raw: dict[str, Any] = {}
        for name, field_type in _FIELD_TYPES.items():
            value = source.get(name.upper())
            if value is None or value == "":
                continue
            raw[name] = _split(value) if field_type == "list" else value
        try:
            settings = msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SettingsError(_env_error(str(exc))) from exc
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse configurations that cannot work anywhere, or are unsafe outside development.

        Raises:
            SettingsError: with every problem found.
        """
        self._check_replicas()
        problems = _everywhere(self) + _previous_key_problems(self) + self._redis_problems()
        if not self.is_dev:
            problems += _outside_dev(self)
        if problems:
            raise SettingsError(f"refusing to start in {self.env}: " + "; ".join(problems))

    def _redis_problems(self) -> list[str]:
        problems = []
        if self.redis_cluster and not self.redis_url:
            problems.append("REDIS_CLUSTER=true needs REDIS_URL (a seed node of the cluster)")
        if not 1 <= self.redis_partitions <= MAX_PARTITIONS:
            problems.append(f"REDIS_PARTITIONS must be between 1 and {MAX_PARTITIONS}")
        if self.redis_min_replicas_ack < 0 or self.redis_ack_timeout_ms < 1:
            problems.append("REDIS_MIN_REPLICAS_ACK must be >= 0, REDIS_ACK_TIMEOUT_MS >= 1")
        return problems

    def _check_replicas(self) -> None:
        """Read replicas are PostgreSQL standbys of a PostgreSQL primary (any environment)."""
        if not self.database_replica_urls:
            return
        urls = (self.database_url, *self.database_replica_urls)
        if not all(url.split(":", 1)[0].startswith("postgres") for url in urls):
            raise SettingsError(
                "DATABASE_REPLICA_URLS: read replicas need a PostgreSQL DATABASE_URL and "
                "PostgreSQL replica URLs"
            )


def _everywhere(settings: Settings) -> list[str]:
    """Problems in every environment: values that cannot work."""
    problems = _mail_problems(settings) + _address_problems(settings)
    for name in ("rate_limit_auth", "rate_limit_user", "rate_limit_anon"):
        if not _rate_ok(getattr(settings, name)):
            problems.append(f"{name.upper()} must be <requests>/<seconds>, e.g. 100/60")
    if settings.log_level.upper() not in LOG_LEVELS:
        problems.append(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    if not settings.media_url_prefix.startswith("/"):
        problems.append("MEDIA_URL_PREFIX must start with /")
    return problems


def _rate_ok(text: str) -> bool:
    """``<requests>/<seconds>``: at least one request, over a time above zero."""
    return bool(_RATE.fullmatch(text)) and float(text.partition("/")[2]) > 0


def _mail_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.smtp_url and urlsplit(settings.smtp_url).scheme not in SMTP_SCHEMES:
        problems.append("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if "@" not in parseaddr(settings.mail_from)[1]:
        problems.append("MAIL_FROM must be an address, e.g. StudyBuddy <no-reply@example.com>")
    if urlsplit(settings.public_web_url).scheme not in ("http", "https"):
        problems.append("PUBLIC_WEB_URL must be an http(s) URL")
    return problems


def _address_problems(settings: Settings) -> list[str]:
    """URLs of the services, and the proxies' networks, in the forms the node can use."""
    problems = []
    if urlsplit(settings.database_url).scheme not in DATABASE_SCHEMES:
        problems.append("DATABASE_URL must be a postgresql:// or sqlite+aiosqlite:/// URL")
    if settings.redis_url and urlsplit(settings.redis_url).scheme not in REDIS_SCHEMES:
        problems.append("REDIS_URL must be a redis://, rediss:// or unix:// URL")
    if settings.sentry_dsn and urlsplit(settings.sentry_dsn).scheme not in ("http", "https"):
        problems.append("SENTRY_DSN must be an http(s) DSN")
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            problems.append(f"TRUSTED_PROXIES entries must be IPs or CIDRs (not so: {proxy})")
    return problems


def _previous_key_problems(settings: Settings) -> list[str]:
    """``JWT_PREVIOUS_KEYS``: ``kid:secret`` pairs, real secrets, never the current key id."""
    problems = []
    for entry in settings.jwt_previous_keys:
        kid, _, secret = entry.partition(":")
        if not kid or len(secret) < MIN_SECRET_LENGTH:
            problems.append(
                f"JWT_PREVIOUS_KEYS entries must be kid:secret with a secret of at least "
                f"{MIN_SECRET_LENGTH} characters (not so: {kid or '(no kid)'})"
            )
        elif kid == settings.jwt_key_id:
            problems.append(f"JWT_PREVIOUS_KEYS must not reuse the current JWT_KEY_ID ({kid})")
    return problems


def _outside_dev(settings: Settings) -> list[str]:
    """Problems outside development: defaults and shortcuts that are unsafe there."""
    problems = []
    key_files = (settings.jwt_private_key_file, settings.jwt_public_key_file)
    if any(key_files) and not all(key_files):
        problems.append("JWT_PRIVATE_KEY_FILE and JWT_PUBLIC_KEY_FILE must be set together")
    uses_secret = not all(key_files)
    if uses_secret and (
        settings.jwt_secret == DEV_JWT_SECRET or len(settings.jwt_secret) < MIN_SECRET_LENGTH
    ):
        problems.append("JWT_SECRET must be set to a random value of at least 32 characters")
    if settings.data_encryption_key == DEV_DATA_KEY:
        problems.append("DATA_ENCRYPTION_KEY must be set")
    if any("*" in origin for origin in settings.cors_origins):
        problems.append("CORS_ORIGINS must not contain a wildcard")
    return problems + _mail_outside_dev(settings)


def _mail_outside_dev(settings: Settings) -> list[str]:
    """Email links must be HTTPS, the sender real, SMTP credentials never in clear."""
    problems = []
    if urlsplit(settings.public_web_url).scheme != "https":
        problems.append("PUBLIC_WEB_URL must be an https:// URL")
    if settings.mail_from == DEV_MAIL_FROM:
        problems.append("MAIL_FROM must be set")
    smtp = urlsplit(settings.smtp_url or "")
    if smtp.scheme == "smtp" and smtp.password:
        problems.append("SMTP_URL must not send a password in clear: use smtp+starttls or smtps")
    if settings.env is Env.PRODUCTION and not settings.smtp_url:
        problems.append("SMTP_URL must be set (without it emails are only written to MAIL_DIR)")
    return problems


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _env_error(message: str) -> str:
    # msgspec says "... - at `$.db_pool_max`"; name the environment variable instead.
    head, _, path = message.partition(" - at `$.")
    return f"{path.rstrip('`').upper()}: {head}" if path else message


def _field_kind(annotation: str) -> str:
    return "list" if annotation.startswith("tuple[") else "scalar"


_FIELD_TYPES: dict[str, str] = {
    name: _field_kind(str(annotation)) for name, annotation in Settings.__annotations__.items()
}
