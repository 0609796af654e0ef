"""Settings from the environment (prefix ``BRIDGE_``) and ``.env``.

The names are fixed: deployment tooling sets them. A missing required setting disables only the feature that
needs it (see ``missing_for``), so a half-configured bridge still starts and says what is missing instead of
crashing. A setting that is given but wrong (a URL without a scheme, a port out of range, an unknown log
level) is refused here, so every process and ``bridge check`` stop at start with one plain line per problem
(``bridge.cli.common``) instead of failing later in the middle of work. The messages never repeat a URL: the
shop's and the alert webhook's carry their key, and Redis' may carry a password.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bridge.orders import poll_start as poll_start_setting

# What each feature needs, in the words an operator sees in ``bridge check`` and in 503 answers.
FEATURE_REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "shop events": ("BRIDGE_SHOP_APP_TOKENS",),
    "shop calls": ("BRIDGE_SHOP_URL",),
    "1C calls": ("BRIDGE_ONEC_URL",),
    "1C inbound": ("BRIDGE_INBOUND_TOKEN",),
    "admin API": ("BRIDGE_ADMIN_TOKEN",),
    "1C exchange": ("BRIDGE_EXCHANGE_USER", "BRIDGE_EXCHANGE_PASSWORD"),
}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
WEB_SCHEMES = ("http", "https")
REDIS_SCHEMES = ("redis", "rediss", "unix")
TELEGRAM_API = "https://api.telegram.org"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,15})://")


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _url_text(value: object) -> str | None:
    """The text of a URL setting; empty means unset, as if the variable were not there."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def url_problem(url: str, schemes: tuple[str, ...], *, needs_host: bool = True) -> str | None:
    """What is wrong with ``url`` in plain words, without repeating any of it but its scheme."""
    wanted = ", ".join(f"{s}://" for s in schemes[:-1]) + f" or {schemes[-1]}://"
    scheme = _SCHEME.match(url)
    if scheme is None:
        return f"must start with {wanted}"
    if scheme.group(1).lower() not in schemes:
        return f"must start with {wanted}, not {scheme.group(1)}://"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return "is not a valid URL (look at the host and the port)"
    if needs_host and not parts.hostname:
        return f"must name a host after {scheme.group(1)}://"
    return None


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port number from 1 to 65535, got {value}")
    return value


class Settings(BaseSettings):
    """Every knob of the bridge. Secrets are ``SecretStr`` so that a repr or a log line never shows them."""

    model_config = SettingsConfigDict(
        env_prefix="BRIDGE_", env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    redis_url: SecretStr | None = None

    shop_url: SecretStr | None = None
    # NoDecode: a comma-separated value is split by ``_csv`` below instead of being parsed as JSON.
    shop_app_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    shop_rate: float = Field(2.0, gt=0)
    shop_burst: int = Field(50, ge=1)
    shop_timeout: float = Field(30.0, gt=0)
    # OVERLOAD_LIMIT (REST blocked by Bitrix support) says nothing about when it ends: pause all calls this long.
    shop_overload_pause: float = Field(600.0, gt=0)
    # The shop's product catalog (iblock); unset: the one catalog.catalog.list names (catalog.toml may name it).
    shop_iblock_id: int | None = Field(None, ge=1)
    # Picture URLs of POST /1c/products may point at loopback or private addresses (off: only public hosts).
    image_private_urls: bool = False

    onec_url: str | None = None
    onec_user: str = ""
    onec_password: SecretStr = SecretStr("")
    onec_concurrency: int = Field(2, ge=1)
    onec_timeout: float = Field(60.0, gt=0)

    inbound_token: SecretStr | None = None
    inbound_allowed_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_token: SecretStr | None = None

    mappings_dir: Path = Path("./mappings")
    poll_interval: float = Field(300.0, ge=0)
    # Where the very first poll starts (no watermark yet): a look-back such as 24h or 0, or a date-time.
    poll_start: str = poll_start_setting.DEFAULT
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024)

    host: str = "0.0.0.0"
    port: int = Field(8000, validation_alias=AliasChoices("PORT", "BRIDGE_PORT"))  # 1-65535
    log_format: str = "text"
    log_level: str = "INFO"

    # Retry policy: transient failures wait min_delay, doubling up to max_delay, for at least retry_hours.
    retry_min_delay: float = Field(5.0, gt=0)
    retry_max_delay: float = Field(600.0, gt=0)
    retry_hours: float = Field(72.0, gt=0)
    # RQ: a job running longer than this is killed (and retried). It must outlast one honest pass: up to 120 s
    # waiting for the shop's rate limit + shop_timeout, then waiting for a 1C slot + onec_timeout (270 s).
    job_timeout: int = Field(300, ge=10)
    # Heartbeats, leases and the search for jobs of dead workers all follow this; see ``bridge.worker``.
    maintenance_interval: int = Field(30, ge=1)
    # Orders one job fetches in one shop ``batch`` when several are due (bridge.orders.batched); 1: each alone.
    order_batch: int = Field(50, ge=1, le=50)

    # Operations: the sync log's size, and when to alert (see bridge.ops.alerts) through which channels.
    sync_log_max: int = Field(100_000, ge=100)
    alert_onec_down_after: float = Field(600.0, ge=0)
    alert_dead_letters: int = Field(5, ge=0)  # 0 turns the dead-letter alert off
    alert_dead_letters_window: float = Field(3600.0, gt=0)
    alert_webhook_url: SecretStr | None = None  # chat webhooks (Slack, Mattermost) carry their key in the URL
    telegram_api_url: str = TELEGRAM_API
    telegram_bot_token: SecretStr | None = None
    telegram_chat_id: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587  # 1-65535
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str | None = None
    smtp_to: Annotated[list[str], NoDecode] = Field(default_factory=list)
    smtp_security: str = "starttls"

    # 1C's standard CommerceML exchange (``/1c/exchange``): off until both user and password are set.
    exchange_user: str | None = None
    exchange_password: SecretStr | None = None
    exchange_file_limit: int = Field(8 * 1024 * 1024, ge=1024)  # announced in init: the largest mode=file body
    exchange_zip: bool = True  # yes/no: whether init invites one zip
    exchange_session_ttl: int = Field(24 * 3600, ge=60)  # seconds a session and its uploads live after its last call
    exchange_session_bytes: int = Field(2 * 1024**3, ge=1024)  # all uploads of one session (zip members included)
    exchange_zip_ratio: int = Field(200, ge=2)  # a zip member may unpack to at most this many times its size
    exchange_zip_entries: int = Field(20_000, ge=1)  # members of one zip at most
    exchange_import_timeout: int = Field(3600, ge=60)  # seconds one file's import job may run before RQ stops it
    # seconds a mode=import call waits for its running job before it answers progress (1C asks again at once)
    exchange_import_wait: float = Field(2.0, ge=0, le=10)
    # The order side of the 1C exchange (type=sale): orders per query reply, and the reply's encoding.
    exchange_sale_page: int = Field(500, ge=1, le=10_000)
    exchange_sale_encoding: Literal["windows-1251", "utf-8"] = "windows-1251"

    @field_validator("shop_app_tokens", "inbound_allowed_ips", "trusted_proxies", "smtp_to", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("inbound_token", "admin_token", "telegram_bot_token", mode="before")
    @classmethod
    def _blank_token_is_unset(cls, value: object) -> object:
        """``BRIDGE_INBOUND_TOKEN=`` (a line of .env.example left empty) leaves the feature off, and says so."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("exchange_sale_encoding", mode="before")
    @classmethod
    def _encoding(cls, value: object) -> object:
        """``UTF-8``, ``utf8``, ``CP1251`` are the same encodings as ``utf-8`` and ``windows-1251``."""
        if isinstance(value, str):
            text = value.strip().lower()
            return {"utf8": "utf-8", "cp1251": "windows-1251", "win-1251": "windows-1251"}.get(text, text)
        return value

    @field_validator("shop_url", "onec_url", mode="before")
    @classmethod
    def _base_url(cls, value: object) -> object:
        """A base that method names are appended to: http(s) with a host, ending in a slash."""
        text = _url_text(value)
        if text is None:
            return None
        problem = url_problem(text, WEB_SCHEMES)
        if problem:
            raise ValueError(problem)
        return text if text.endswith("/") else text + "/"

    @field_validator("alert_webhook_url", "telegram_api_url", mode="before")
    @classmethod
    def _web_url(cls, value: object, info: ValidationInfo) -> object:
        text = _url_text(value)
        if text is None:  # empty: unset, which for Telegram means its public API
            return TELEGRAM_API if info.field_name == "telegram_api_url" else None
        problem = url_problem(text, WEB_SCHEMES)
        if problem:
            raise ValueError(problem)
        return text

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: object) -> object:
        text = _url_text(value)
        if text is None:
            return None
        problem = url_problem(text, REDIS_SCHEMES, needs_host=False)  # redis:// alone means localhost
        if problem:
            raise ValueError(problem)
        return text

    @field_validator("port", "smtp_port")
    @classmethod
    def _valid_port(cls, value: int) -> int:
        return _port(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        level = value.strip().upper()
        level = "WARNING" if level == "WARN" else level
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, got {value.strip()[:20]!r}")
        return level

    @field_validator("retry_max_delay")
    @classmethod
    def _max_delay_not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("retry_min_delay")
        if low is not None and value < low:
            raise ValueError(f"must not be less than BRIDGE_RETRY_MIN_DELAY ({low:g})")
        return value

    @field_validator("inbound_allowed_ips", "trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP address or CIDR network") from exc
        return value

    @field_validator("smtp_security")
    @classmethod
    def _smtp_security(cls, value: str) -> str:
        if value not in ("starttls", "ssl", "none"):
            raise ValueError("must be 'starttls', 'ssl' or 'none'")
        return value

    @field_validator("poll_start")
    @classmethod
    def _poll_start(cls, value: str) -> str:
        poll_start_setting.parse(value)  # a ValueError says which forms it takes
        return value.strip()

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("must be 'text' or 'json'")
        return value

    @property
    def job_heartbeat(self) -> int:
        """Seconds between a running job's heartbeats and the renewals of the per-key lock it holds."""
        return max(1, self.maintenance_interval // 3)

    @property
    def job_lease(self) -> int:
        """Seconds a per-key lock outlives its holder's last renewal (three heartbeats at least)."""
        return max(self.maintenance_interval, 3 * self.job_heartbeat)

    @cached_property
    def allowed_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.inbound_allowed_ips]

    @cached_property
    def trusted_proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [ipaddress.ip_network(c, strict=False) for c in self.trusted_proxies]

    def missing_for(self, feature: str) -> list[str]:
        """The unset settings that keep ``feature`` (a key of FEATURE_REQUIREMENTS) from working."""
        present = {
            "BRIDGE_SHOP_APP_TOKENS": bool(self.shop_app_tokens),
            "BRIDGE_SHOP_URL": self.shop_url is not None,
            "BRIDGE_ONEC_URL": self.onec_url is not None,
            "BRIDGE_INBOUND_TOKEN": self.inbound_token is not None,
            "BRIDGE_ADMIN_TOKEN": self.admin_token is not None,
            "BRIDGE_EXCHANGE_USER": bool(self.exchange_user and self.exchange_user.strip()),
            "BRIDGE_EXCHANGE_PASSWORD": bool(self.exchange_password and self.exchange_password.get_secret_value()),
        }
        return [name for name in FEATURE_REQUIREMENTS[feature] if not present[name]]

    def secrets(self) -> list[str]:
        """Every configured secret value, for the log scrubber. Includes the webhook key of the shop URL."""
        values: list[str] = []
        for secret in (
            self.shop_url,
            self.onec_password,
            self.inbound_token,
            self.admin_token,
            self.redis_url,
            self.telegram_bot_token,
            self.smtp_password,
            self.alert_webhook_url,
            self.exchange_password,
        ):
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        values.extend(t.get_secret_value() for t in self.shop_app_tokens if t.get_secret_value())
        if self.shop_url is not None:
            from bridge.redaction import webhook_key

            key = webhook_key(self.shop_url.get_secret_value())
            if key:
                values.append(key)
        if self.redis_url is not None:
            from bridge.redaction import url_password

            password = url_password(self.redis_url.get_secret_value())
            if password:
                values.append(password)
        return [v for v in values if len(v) >= 4]


def load_settings(**overrides: object) -> Settings:
    """Read the settings afresh; tests pass overrides instead of touching the environment."""
    return Settings(**overrides)  # type: ignore[arg-type]


def known_variables() -> frozenset[str]:
    """Every environment variable the settings read (``PORT`` and ``BRIDGE_PORT`` both name the port)."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(Settings.model_config.get("env_prefix", "") + name.upper())
    return frozenset(names)


def unknown_variables(names: Iterable[str]) -> list[str]:
    """A warning for each ``BRIDGE_*`` name that no setting reads, with the closest known name.

    The settings ignore unknown names (deployment tooling sets more than the bridge reads), so without
    this a misspelt ``BRIDGE_SHOP_ULR`` would leave the shop off in silence.
    """
    known = known_variables()
    warnings: list[str] = []
    for name in sorted(set(names)):
        if not name.upper().startswith("BRIDGE_") or name.upper() in known:
            continue
        # Compared without the prefix, which every name shares and which would make any two look alike.
        by_rest: dict[str, str] = {}
        for known_name in sorted(known):  # BRIDGE_PORT before PORT: a BRIDGE_ name is told a BRIDGE_ name
            by_rest.setdefault(known_name.removeprefix("BRIDGE_"), known_name)
        close = difflib.get_close_matches(name.upper().removeprefix("BRIDGE_"), list(by_rest), n=1, cutoff=0.6)
        hint = f"; did you mean {by_rest[close[0]]}?" if close else ""
        warnings.append(f"{name}: not a setting of the bridge, ignored{hint}")
    return warnings


def given_variables(env_file: Path | str | None = ".env") -> list[str]:
    """The names set in the environment and in the ``.env`` file: what ``unknown_variables`` looks through."""
    names = list(os.environ)
    path = Path(env_file) if env_file else None
    if path is not None and path.is_file():
        from dotenv import dotenv_values

        names.extend(dotenv_values(path))
    return names
