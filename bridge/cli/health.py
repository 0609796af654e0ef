"""``bridge health [web|worker|clock|serve]``: the container health check, one line and exit 0 or 1.

The checks themselves are in ``bridge.health``; this is only the command around them.
"""

from __future__ import annotations

import argparse
import sys

from bridge.cli.common import load_or_explain, require_redis


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from bridge.health import KINDS

    health = sub.add_parser("health", help="is this container's bridge process healthy? (for HEALTHCHECK)")
    health.add_argument("kind", nargs="?", choices=KINDS, help="the process to check; found by itself if omitted")
    health.set_defaults(func=cmd_health)


def cmd_health(args: argparse.Namespace) -> int:
    from bridge.health import Found, check_clock, check_web, check_worker, find_process

    settings = load_or_explain()
    # Named, the kind is checked for any process of this host (its pids unknown); else the one found here.
    found = Found(args.kind) if args.kind is not None else find_process()
    if found is None:
        print("bridge health: no bridge process (web, worker, clock or serve) runs here", file=sys.stderr)
        return 1
    if found.kind in ("web", "serve"):
        healthy, line = check_web(settings, found.port)
    else:
        from redis import Redis

        url = require_redis(settings, "health")
        connection = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        if found.kind == "worker":
            healthy, line = check_worker(settings, connection, found.pids)
        else:
            healthy, line = check_clock(connection, found.pids)
    print(f"bridge health: {line}", file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1
