"""What every ``bridge`` command shares: settings loaded or explained in one plain line each, and Redis required.

Kept apart from the commands so that ``bridge.cli.ops`` and ``bridge.cli.processes`` import it without importing
each other (the parser in ``bridge.cli`` imports them all).
"""

from __future__ import annotations

import sys

from pydantic import ValidationError

from bridge.settings import Settings

ENV_NAMES = {"port": "PORT"}


def env_name(field: str) -> str:
    return ENV_NAMES.get(field, "BRIDGE_" + field.upper())


def settings_problems(error: ValidationError) -> list[str]:
    """One plain line per problem, naming the environment variable to fix."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{env_name(field)}: {message}")
    return lines


def load_or_explain() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for line in settings_problems(exc):
            print(f"bridge: {line}", file=sys.stderr)
        raise SystemExit(1) from None


def require_redis(settings: Settings, command: str) -> str:
    if settings.redis_url is None:
        print(
            f"bridge {command}: BRIDGE_REDIS_URL is not set; separate processes share their queues through Redis "
            "(use `bridge serve` to run everything in one process on an in-memory Redis)",
            file=sys.stderr,
        )
        raise SystemExit(1)
    return settings.redis_url.get_secret_value()
