"""Settings from the environment: parsing, error messages, and refusals outside dev."""

from __future__ import annotations

import re

import pytest

from server.settings import (
    DEFAULT_DATABASE_URL,
    DEV_DATA_KEY,
    DEV_JWT_SECRET,
    Env,
    Settings,
    SettingsError,
)

STRONG_SECRET = "k" * 32
STRONG_DATA_KEY = "d" * 40
MAIL = {
    "SMTP_URL": "smtps://relay%40example.com:pw@smtp.example.com",
    "MAIL_FROM": "StudyBuddy <no-reply@example.com>",
    "PUBLIC_WEB_URL": "https://app.example.com",
}
SAFE_PRODUCTION = {
    "ENV": "production",
    "JWT_SECRET": STRONG_SECRET,
    "DATA_ENCRYPTION_KEY": STRONG_DATA_KEY,
    **MAIL,
}


def test_empty_environment_gives_the_embedded_default() -> None:
    """Nothing set: dev, SQLite, no Redis, the development secrets."""
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.env is Env.DEV
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url is None
    assert settings.is_dev is True


def test_scalars_are_converted_from_strings() -> None:
    """Integers, floats, optional strings and enums are parsed from their text."""
    settings = Settings.from_env(
        {
            "DB_POOL_MAX": "7",
            "WS_HEARTBEAT_S": "2.5",
            "REDIS_URL": "redis://cache:6379/0",
            "DATABASE_URL": "postgresql+asyncpg://db/studybuddy",
            "LOG_LEVEL": "debug",
        }
    )
    assert settings.db_pool_max == 7
    assert settings.ws_heartbeat_s == 2.5
    assert settings.redis_url == "redis://cache:6379/0"
    assert settings.log_level == "debug"


@pytest.mark.parametrize(("text", "value"), [("true", True), ("1", True), ("false", False)])
def test_booleans_are_parsed(text: str, value: bool) -> None:
    """DB_ECHO accepts true/false and 1/0."""
    assert Settings.from_env({"DB_ECHO": text}).db_echo is value


def test_lists_are_comma_separated_and_trimmed() -> None:
    """Blank items and surrounding spaces are dropped."""
    settings = Settings.from_env(
        {
            "CORS_ORIGINS": " https://a.example ,https://b.example,, ",
            "TRUSTED_PROXIES": "10.0.0.0/8",
            "JWT_PREVIOUS_KEYS": f"old:{'1' * 32}, older:{'2' * 32}",
        }
    )
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    assert settings.jwt_previous_keys == (f"old:{'1' * 32}", f"older:{'2' * 32}")


def test_empty_values_mean_unset() -> None:
    """An empty variable keeps the default rather than failing to parse."""
    settings = Settings.from_env({"DB_POOL_MAX": "", "CORS_ORIGINS": "", "REDIS_URL": ""})
    assert settings.db_pool_max == Settings().db_pool_max
    assert settings.cors_origins == ()
    assert settings.redis_url is None


def test_unknown_variables_are_ignored() -> None:
    """Variables that are not settings (PATH, HOME, ...) do not matter."""
    assert Settings.from_env({"PATH": "/usr/bin", "NOT_A_SETTING": "x"}) == Settings()


def test_bad_integer_names_the_environment_variable() -> None:
    """A wrong type is reported with the upper-case variable name, not a JSON path."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"DB_POOL_MAX": "many"})
    assert str(caught.value) == "DB_POOL_MAX: Expected `int`, got `str`"


def test_bad_boolean_names_the_environment_variable() -> None:
    """An unrecognised boolean is refused with its variable name."""
    with pytest.raises(SettingsError, match=r"^DB_ECHO: Expected `bool`"):
        Settings.from_env({"DB_ECHO": "yes please"})


def test_unknown_environment_name_is_refused() -> None:
    """ENV must be dev, staging or production."""
    with pytest.raises(SettingsError, match=r"^ENV: Invalid enum value 'prod'"):
        Settings.from_env({"ENV": "prod"})


def test_settings_error_is_a_value_error() -> None:
    """Callers may catch it as ValueError."""
    assert issubclass(SettingsError, ValueError)


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a mapping, os.environ is read."""
    monkeypatch.setenv("ENV", "dev")
    monkeypatch.setenv("DB_POOL_MIN", "3")
    assert Settings.from_env().db_pool_min == 3


def test_safe_production_starts() -> None:
    """A strong secret and data key are enough for production."""
    settings = Settings.from_env(SAFE_PRODUCTION)
    assert settings.env is Env.PRODUCTION
    assert settings.is_dev is False


@pytest.mark.parametrize("env", ["production", "staging"])
def test_default_secret_is_refused_outside_dev(env: str) -> None:
    """The development JWT secret may not sign real tokens."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**SAFE_PRODUCTION, "ENV": env, "JWT_SECRET": DEV_JWT_SECRET})
    assert str(caught.value) == (
        f"refusing to start in {env}: "
        "JWT_SECRET must be set to a random value of at least 32 characters"
    )


@pytest.mark.parametrize("env", ["production", "staging"])
def test_short_secret_is_refused_outside_dev(env: str) -> None:
    """31 characters is too short."""
    with pytest.raises(SettingsError, match="JWT_SECRET must be set"):
        Settings.from_env({**SAFE_PRODUCTION, "ENV": env, "JWT_SECRET": "k" * 31})


@pytest.mark.parametrize("env", ["production", "staging"])
def test_default_data_key_is_refused_outside_dev(env: str) -> None:
    """Secrets at rest need a real DATA_ENCRYPTION_KEY."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({**SAFE_PRODUCTION, "ENV": env, "DATA_ENCRYPTION_KEY": DEV_DATA_KEY})
    assert str(caught.value) == f"refusing to start in {env}: DATA_ENCRYPTION_KEY must be set"


@pytest.mark.parametrize("env", ["production", "staging"])
def test_wildcard_cors_is_refused_outside_dev(env: str) -> None:
    """A wildcard origin anywhere in the list is refused."""
    with pytest.raises(SettingsError, match="CORS_ORIGINS must not contain a wildcard"):
        Settings.from_env(
            {**SAFE_PRODUCTION, "ENV": env, "CORS_ORIGINS": "https://a.example,https://*.x.io"}
        )


def test_every_problem_is_reported_together() -> None:
    """An unconfigured production node lists all three problems at once."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"ENV": "production", "CORS_ORIGINS": "*"})
    assert str(caught.value) == (
        "refusing to start in production: "
        "JWT_SECRET must be set to a random value of at least 32 characters; "
        "DATA_ENCRYPTION_KEY must be set; "
        "CORS_ORIGINS must not contain a wildcard; "
        "PUBLIC_WEB_URL must be an https:// URL; "
        "MAIL_FROM must be set; "
        "SMTP_URL must be set (without it emails are only written to MAIL_DIR)"
    )


def test_dev_allows_the_defaults_and_wildcards() -> None:
    """On a developer's machine nothing is refused."""
    settings = Settings.from_env({"ENV": "dev", "CORS_ORIGINS": "*", "JWT_SECRET": "short"})
    assert settings.cors_origins == ("*",)
    settings.check()


def test_key_file_mode_skips_the_secret_check() -> None:
    """With asymmetric key files, JWT_SECRET is unused and not checked."""
    settings = Settings.from_env(
        {
            "ENV": "production",
            "DATA_ENCRYPTION_KEY": STRONG_DATA_KEY,
            **MAIL,
            "JWT_ALGORITHM": "EdDSA",
            "JWT_PRIVATE_KEY_FILE": "/run/secrets/jwt.key",
            "JWT_PUBLIC_KEY_FILE": "/run/secrets/jwt.pub",
        }
    )
    assert settings.jwt_secret == DEV_JWT_SECRET
    assert settings.jwt_algorithm == "EdDSA"


def test_private_key_without_public_key_still_needs_a_secret() -> None:
    """Only half the key pair means tokens fall back to HS256 with JWT_SECRET: check it."""
    with pytest.raises(SettingsError, match="JWT_SECRET must be set"):
        Settings.from_env(
            {
                "ENV": "production",
                "DATA_ENCRYPTION_KEY": STRONG_DATA_KEY,
                **MAIL,
                "JWT_PRIVATE_KEY_FILE": "/run/secrets/jwt.key",
            }
        )


def test_check_can_be_called_on_a_constructed_object() -> None:
    """Settings built in code are checked the same way."""
    with pytest.raises(SettingsError, match="DATA_ENCRYPTION_KEY"):
        Settings(env=Env.STAGING, jwt_secret=STRONG_SECRET).check()


def test_mail_settings_have_working_defaults() -> None:
    """Nothing set: .eml files under ./mail, links to the local node, a one-day lead."""
    settings = Settings.from_env({})
    assert settings.smtp_url is None
    assert settings.mail_dir == "./mail"
    assert settings.public_web_url.startswith("http://")
    assert settings.reminder_lead_s == 86400


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"SMTP_URL": "http://smtp.example.com"}, "SMTP_URL must start with smtp://"),
        ({"MAIL_FROM": "nobody"}, "MAIL_FROM must be an address"),
        ({"PUBLIC_WEB_URL": "ftp://app.example.com"}, "PUBLIC_WEB_URL must be an http(s) URL"),
        ({"REMINDER_LEAD_S": "0"}, "REMINDER_LEAD_S: Expected `int` >= 1"),
        ({"SCHEDULER_TICK_S": "0"}, "SCHEDULER_TICK_S: Expected `int` >= 1"),
        ({"HTTP_HEAD_TIMEOUT_S": "0"}, "HTTP_HEAD_TIMEOUT_S: Expected `float` > 0.0"),
        ({"JWT_PREVIOUS_KEYS": "old:"}, "JWT_PREVIOUS_KEYS entries must be kid:secret"),
        ({"JWT_PREVIOUS_KEYS": "old:short"}, "JWT_PREVIOUS_KEYS entries must be kid:secret"),
        ({"JWT_PREVIOUS_KEYS": f":{'x' * 32}"}, "JWT_PREVIOUS_KEYS entries must be kid:secret"),
        ({"JWT_PREVIOUS_KEYS": f"k1:{'x' * 32}"}, "must not reuse the current JWT_KEY_ID"),
    ],
)
def test_mail_values_that_cannot_work_are_refused_everywhere(
    variables: dict[str, str], problem: str
) -> None:
    """A scheme the mailer does not speak, a sender without an address: refused even in dev."""
    with pytest.raises(SettingsError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env(variables)


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"ACCESS_TOKEN_TTL_S": "-5"}, "ACCESS_TOKEN_TTL_S: Expected `int` >= 1"),
        ({"MAX_JSON_BYTES": "-1"}, "MAX_JSON_BYTES: Expected `int` >= 1"),
        ({"WS_MAX_SOCKETS_PER_USER": "0"}, "WS_MAX_SOCKETS_PER_USER: Expected `int` >= 1"),
        ({"BCRYPT_ROUNDS": "100"}, "BCRYPT_ROUNDS: Expected `int` <= 31"),
        ({"WS_MESSAGE_RATE": "0"}, "WS_MESSAGE_RATE: Expected `float` > 0.0"),
        ({"RETENTION_SESSIONS_DAYS": "-1"}, "RETENTION_SESSIONS_DAYS: Expected `int` >= 0"),
        ({"RATE_LIMIT_AUTH": "abc"}, "RATE_LIMIT_AUTH must be <requests>/<seconds>"),
        ({"RATE_LIMIT_USER": "0/60"}, "RATE_LIMIT_USER must be <requests>/<seconds>"),
        ({"RATE_LIMIT_ANON": "5/0"}, "RATE_LIMIT_ANON must be <requests>/<seconds>"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be one of DEBUG, INFO"),
        ({"MEDIA_URL_PREFIX": "media"}, "MEDIA_URL_PREFIX must start with /"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL must be a postgresql://"),
        ({"REDIS_URL": "127.0.0.1:6379"}, "REDIS_URL must be a redis://"),
        ({"SENTRY_DSN": "garbage"}, "SENTRY_DSN must be an http(s) DSN"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,foo"}, "TRUSTED_PROXIES entries must be IPs or CIDRs"),
    ],
)
def test_values_a_node_cannot_work_with_are_refused_naming_the_variable(
    variables: dict[str, str], problem: str
) -> None:
    """Out of range or malformed: refused at start-up, not a node that works for no one."""
    with pytest.raises(SettingsError, match=re.escape(problem)):
        Settings.from_env(variables)


def test_lower_case_log_levels_and_proxy_addresses_are_fine() -> None:
    """LOG_LEVEL is read in any case; a proxy may be one address or a network."""
    settings = Settings.from_env({"LOG_LEVEL": "debug", "TRUSTED_PROXIES": "10.0.0.1,fd00::/8"})
    assert settings.log_level == "debug" and len(settings.trusted_proxies) == 2


@pytest.mark.parametrize("env", ["production", "staging"])
def test_plain_http_links_and_clear_smtp_passwords_are_refused_outside_dev(env: str) -> None:
    """Links in emails must be HTTPS; a password over plain smtp:// would cross in clear."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                **SAFE_PRODUCTION,
                "ENV": env,
                "PUBLIC_WEB_URL": "http://app.example.com",
                "SMTP_URL": "smtp://user:secret@smtp.example.com:25",
            }
        )
    assert str(caught.value) == (
        f"refusing to start in {env}: PUBLIC_WEB_URL must be an https:// URL; "
        "SMTP_URL must not send a password in clear: use smtp+starttls or smtps"
    )


def test_staging_may_write_eml_files_and_relay_without_login() -> None:
    """Outside production an unset SMTP_URL is allowed; plain smtp:// without a login too."""
    staging = {**SAFE_PRODUCTION, "ENV": "staging"}
    del staging["SMTP_URL"]
    assert Settings.from_env(staging).smtp_url is None
    relay = Settings.from_env({**SAFE_PRODUCTION, "SMTP_URL": "smtp://relay.internal:25"})
    assert relay.smtp_url == "smtp://relay.internal:25"
