"""``bridge check``: settings, mappings, alert channels and Redis, one plain line per problem, exit 1 on error."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from bridge.cli.common import settings_problems
from bridge.settings import FEATURE_REQUIREMENTS, Settings


def cmd_check(args: argparse.Namespace) -> int:
    from bridge.mappings import MappingError, describe, load_mappings

    errors: list[str] = []
    notes: list[str] = []
    try:
        settings = Settings()
    except ValidationError as exc:
        errors.extend(settings_problems(exc))
        settings = None
    if settings is not None:
        for feature in FEATURE_REQUIREMENTS:
            missing = settings.missing_for(feature)
            if missing:
                notes.append(f"{feature}: off until {', '.join(missing)} is set")
        from bridge.ops import notify

        errors.extend(notify.missing_settings(settings))  # a half-configured alert channel would stay silent
        channels = ", ".join(notify.channels(settings)) or "none (alerts go to the log only)"
        notes.append(f"alert channels: {channels}")
        try:
            notes.extend(describe(load_mappings(settings.mappings_dir)))
        except MappingError as exc:
            errors.extend(exc.problems)
        if settings.redis_url is not None:
            errors.extend(_check_redis(settings.redis_url.get_secret_value()))
        else:
            notes.append("BRIDGE_REDIS_URL: unset; only `bridge serve` (in-memory Redis) can run")
    for line in notes:
        print(f"  {line}")
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if errors:
        print(f"bridge check: {len(errors)} problem(s)", file=sys.stderr)
        return 1
    print("bridge check: settings and mappings are valid")
    return 0


def _check_redis(url: str) -> list[str]:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except (RedisError, OSError) as exc:
        return [f"BRIDGE_REDIS_URL: Redis does not answer ({type(exc).__name__})"]
    if policy not in (None, "noeviction"):
        return [f"Redis maxmemory-policy is {policy!r}: queued work could be evicted; set it to 'noeviction'"]
    return []
