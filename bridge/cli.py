"""The ``bridge`` command: the processes of the Procfile, plus checks and dead-letter handling."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from bridge.settings import FEATURE_REQUIREMENTS, Settings

ENV_NAMES = {"port": "PORT"}
# How ``bridge web`` runs uvicorn; bench/bare_app.py serves its bare endpoint with the very same options, so
# the intake benchmark's ratio compares request handlers, not server settings.
# proxy_headers off: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 and hand the bridge a
# forged client address; who is a trusted proxy is BRIDGE_TRUSTED_PROXIES' business (bridge.web.clientip).
UVICORN_OPTIONS: dict[str, Any] = {"log_config": None, "access_log": False, "proxy_headers": False}


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


def cmd_serve(args: argparse.Namespace) -> int:
    from bridge import logs
    from bridge.embedded import serve

    settings = load_or_explain()
    if args.port:
        settings.port = args.port
    logs.configure(settings, "serve")
    warn_missing(settings)
    serve(settings)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge import logs
    from bridge.web.app import create_app

    settings = load_or_explain()
    require_redis(settings, "web")
    logs.configure(settings, "web")
    warn_missing(settings)
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=args.port or settings.port, **UVICORN_OPTIONS)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from redis import Redis

    from bridge import logs
    from bridge.worker import run_worker

    settings = load_or_explain()
    url = require_redis(settings, "worker")
    logs.configure(settings, "worker")
    warn_missing(settings)
    run_worker(settings, Redis.from_url(url), burst=args.burst)
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from redis import Redis

    from bridge import logs
    from bridge.clock import run_clock

    settings = load_or_explain()
    url = require_redis(settings, "clock")
    logs.configure(settings, "clock")
    run_clock(settings, Redis.from_url(url))
    return 0


def warn_missing(settings: Settings) -> None:
    import logging

    log = logging.getLogger("bridge")
    for feature in FEATURE_REQUIREMENTS:
        missing = settings.missing_for(feature)
        if missing:
            log.warning("%s is off until %s is set", feature, ", ".join(missing))


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
        from bridge import notify

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="web + worker + clock in one process (in-memory Redis if none is set)")
    serve.add_argument("--port", type=int, default=None)
    serve.set_defaults(func=cmd_serve)
    web = sub.add_parser("web", help="the HTTP server")
    web.add_argument("--port", type=int, default=None)
    web.set_defaults(func=cmd_web)
    worker = sub.add_parser("worker", help="an RQ worker with the scheduler")
    worker.add_argument("--burst", action="store_true", help="quit when the queues are empty")
    worker.set_defaults(func=cmd_worker)
    sub.add_parser("clock", help="periodic work (order polling); run exactly one").set_defaults(func=cmd_clock)
    sub.add_parser("check", help="validate settings and mappings").set_defaults(func=cmd_check)
    from bridge.cli_ops import add_commands

    add_commands(sub)  # failed list / failed retry / log
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
