"""``bridge check``: settings, mappings, alert channels and Redis, one plain line per problem, exit 1 on error.

It reads the configuration exactly as the processes do (``bridge.cli.common.read_configuration``), so what it
passes they start with, and what it refuses they refuse.
"""

from __future__ import annotations

import argparse
import sys

from bridge.cli.common import read_configuration
from bridge.orders import poll_start
from bridge.settings import FEATURE_REQUIREMENTS, Settings


def cmd_check(args: argparse.Namespace) -> int:
    from bridge.mappings import describe

    configuration = read_configuration()
    settings = configuration.settings
    errors = list(configuration.problems)
    notes: list[str] = []
    if settings is not None:
        for feature in FEATURE_REQUIREMENTS:
            missing = settings.missing_for(feature)
            if missing:
                notes.append(f"{feature}: off until {', '.join(missing)} is set")
        errors.extend(_exchange_problems(settings))
        from bridge.ops import notify

        errors.extend(notify.missing_settings(settings))  # a half-configured alert channel would stay silent
        channels = ", ".join(notify.channels(settings)) or "none (alerts go to the log only)"
        notes.append(f"alert channels: {channels}")
        if configuration.mappings is not None:
            notes.extend(describe(configuration.mappings))
            notes.append(_iblock_line(settings.shop_iblock_id, configuration.mappings.products.iblock_id))
        if getattr(args, "live", False) and configuration.mappings is not None:
            from bridge.cli.live import live_check

            live_notes, live_errors = live_check(settings, configuration.mappings)
            notes.extend(live_notes)
            errors.extend(live_errors)
        notes.append(poll_start.describe(settings.poll_start))
        if settings.redis_url is not None:
            redis_problems = _check_redis(settings.redis_url.get_secret_value())
            errors.extend(redis_problems)
            if not redis_problems:
                notes.extend(_watermark_note(settings.redis_url.get_secret_value()))
        else:
            notes.append("BRIDGE_REDIS_URL: unset; only `bridge serve` (in-memory Redis) can run")
    for line in notes:
        print(f"  {line}")
    for line in configuration.warnings:
        print(f"warning: {line}", file=sys.stderr)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if errors:
        print(f"bridge check: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("bridge check: settings and mappings are valid")
    return 0


def _iblock_line(setting: int | None, mapped: int | None) -> str:
    """Which product catalog (iblock) the products are looked up and created in."""
    if setting is not None and mapped is not None and setting != mapped:
        return f"product catalog: iblock {setting} (BRIDGE_SHOP_IBLOCK_ID; it wins over iblock_id = {mapped} in catalog.toml)"
    if setting is not None:
        return f"product catalog: iblock {setting} (BRIDGE_SHOP_IBLOCK_ID)"
    if mapped is not None:
        return f"product catalog: iblock {mapped} (iblock_id in catalog.toml)"
    return "product catalog: the one the shop names in catalog.catalog.list (set BRIDGE_SHOP_IBLOCK_ID to choose)"


def _check_redis(url: str) -> list[str]:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except (RedisError, OSError, ValueError) as exc:  # ValueError: a URL redis-py cannot use
        return [f"BRIDGE_REDIS_URL: Redis does not answer ({type(exc).__name__})"]
    if policy not in (None, "noeviction"):
        return [f"Redis maxmemory-policy is {policy!r}: queued work could be evicted; set it to 'noeviction'"]
    return []


def _watermark_note(url: str) -> list[str]:
    """Once a poll has run, BRIDGE_POLL_START no longer matters; say so, or changing it would seem to do nothing."""
    from redis import Redis
    from redis.exceptions import RedisError

    from bridge import keys
    from bridge.texts import as_text

    try:
        with Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            watermark = client.get(keys.POLL_WATERMARK)
    except (RedisError, OSError, ValueError):
        return []
    if watermark is None:
        return []
    return [f"  polls have run: the next starts at {as_text(watermark)} (minus 2 minutes), not at BRIDGE_POLL_START"]


def _exchange_problems(settings: Settings) -> list[str]:
    """A half-configured 1C exchange, in plain words: 1C would be refused at checkauth without knowing why."""
    user = bool(settings.exchange_user and settings.exchange_user.strip())
    password = bool(settings.exchange_password and settings.exchange_password.get_secret_value())
    if user and not password:
        return [
            "BRIDGE_EXCHANGE_USER is set but BRIDGE_EXCHANGE_PASSWORD is not: 1C's exchange stays off until both are"
        ]
    if password and not user:
        return [
            "BRIDGE_EXCHANGE_PASSWORD is set but BRIDGE_EXCHANGE_USER is not: 1C's exchange stays off until both are"
        ]
    if user and password and settings.exchange_file_limit > settings.exchange_session_bytes:
        return [
            f"BRIDGE_EXCHANGE_FILE_LIMIT ({settings.exchange_file_limit}) is larger than BRIDGE_EXCHANGE_SESSION_BYTES "
            f"({settings.exchange_session_bytes}): not even one chunk of 1C's could be stored"
        ]
    return []
