"""The operator's commands: ``bridge failed list``, ``bridge failed retry ID… | --all``, ``bridge log``.

They read the same Redis as the running bridge and print plain, aligned text (``--json`` for tools), so
nobody has to read Redis by hand. Kept apart from ``bridge.cli.processes``, which starts the long-running processes.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from bridge.cli.common import load_or_explain


def _redis(command: str) -> Redis:
    from bridge import serve_state

    settings = load_or_explain()
    # In the newcomer's mode the queues live in the in-memory Redis of the running `bridge serve`.
    if settings.redis_url is None:
        url = serve_state.running_redis_url()
        if url is None:
            print(
                f"bridge {command}: BRIDGE_REDIS_URL is not set and no `bridge serve` on an in-memory Redis is "
                f"running for this user (looked for {serve_state.state_path()}); set BRIDGE_REDIS_URL to the "
                "bridge's Redis, or run this while `bridge serve` runs",
                file=sys.stderr,
            )
            raise SystemExit(1)
    else:
        url = settings.redis_url.get_secret_value()
    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30, retry=Retry(NoBackoff(), 1))


def _friendly(command: str, func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """An unreachable Redis is one plain line and exit code 1, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (RedisError, OSError) as exc:
            print(
                f"bridge {command}: Redis does not answer ({type(exc).__name__}); check BRIDGE_REDIS_URL",
                file=sys.stderr,
            )
            return 1

    return run


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_failed_list(args: argparse.Namespace) -> int:
    from bridge.queue import deadletters

    letters = deadletters.list_failed(_redis("failed list"), limit=args.limit)
    if args.json:
        _print_json([d.as_dict() for d in letters])
        return 0
    if not letters:
        print("no failed jobs")
        return 0
    for line in deadletters.format_table(letters):
        print(line)
    print(f"{len(letters)} failed job(s); `bridge failed retry ID…` or `bridge failed retry --all` sends them again")
    return 0


def cmd_failed_retry(args: argparse.Namespace) -> int:
    from bridge.queue import deadletters

    if args.all == bool(args.ids):
        print("bridge failed retry: give job ids (see `bridge failed list`) or --all, not both", file=sys.stderr)
        return 2
    redis = _redis("failed retry")
    report = deadletters.retry_all(redis) if args.all else deadletters.retry(redis, args.ids)
    if args.json:
        _print_json(report.as_dict())
    else:
        for letter in report.requeued:
            print(f"requeued {letter.id}  {letter.what}")
        for job_id in report.missing:
            print(f"not found {job_id}: not in the failed list (already retried, or never failed)", file=sys.stderr)
        print(f"{len(report.requeued)} job(s) requeued")
    return 1 if report.missing else 0


def cmd_failed_discard(args: argparse.Namespace) -> int:
    from bridge.queue import deadletters

    if args.all == bool(args.ids):
        print(
            "bridge failed discard: give job ids (see `bridge failed list`) or --all, one of the two", file=sys.stderr
        )
        return 2
    if not args.reason.strip():
        print("bridge failed discard: say why with --reason (it is kept in the sync log)", file=sys.stderr)
        return 2
    redis = _redis("failed discard")
    if args.all:
        report = deadletters.discard_all(redis, args.reason)
    else:
        report = deadletters.discard(redis, args.ids, args.reason)
    if args.json:
        _print_json(report.as_dict())
    else:
        for letter in report.discarded:
            print(f"discarded {letter.id}  {letter.what}")
        for job_id in report.missing:
            print(f"not found {job_id}: not in the failed list (already retried or discarded?)", file=sys.stderr)
        print(f"{len(report.discarded)} job(s) discarded; the reason is in `bridge log`")
    return 1 if report.missing else 0


def cmd_log(args: argparse.Namespace) -> int:
    from bridge.ops import synclog

    if args.id and not args.entity:
        args.entity = "order"  # the only entity with an id most people ask about
    entries = synclog.read(_redis("log"), entity=args.entity, entity_id=args.id, limit=args.limit)
    if args.json:
        _print_json([e.as_dict() for e in entries])
        return 0
    if not entries:
        subject = f" for {args.entity} {args.id or ''}".rstrip() if args.entity else ""
        print(f"no entries{subject}")
        return 0
    for line in synclog.format_lines(reversed(entries)):  # oldest first, like a log file
        print(line)
    return 0


def add_commands(sub: Any) -> None:
    """Register the commands on the ``bridge`` parser's subparsers."""
    failed = sub.add_parser("failed", help="dead letters: jobs that failed for good").add_subparsers(
        dest="failed_command", required=True
    )
    listing = failed.add_parser("list", help="id, what, why, when and attempts of every failed job")
    listing.add_argument("--limit", type=int, default=1000)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_friendly("failed list", cmd_failed_list))
    retry = failed.add_parser("retry", help="put failed jobs back on their queue")
    retry.add_argument("ids", nargs="*", metavar="ID", help="job ids from `bridge failed list`")
    retry.add_argument("--all", action="store_true", help="every failed job")
    retry.add_argument("--json", action="store_true", help="machine-readable output")
    retry.set_defaults(func=_friendly("failed retry", cmd_failed_retry))

    discard = failed.add_parser("discard", help="drop failed jobs for good, with a reason kept in the sync log")
    discard.add_argument("ids", nargs="*", metavar="ID", help="job ids from `bridge failed list`")
    discard.add_argument("--all", action="store_true", help="every failed job")
    discard.add_argument("--reason", required=True, help="why, in a few words (kept in the sync log)")
    discard.add_argument("--json", action="store_true", help="machine-readable output")
    discard.set_defaults(func=_friendly("failed discard", cmd_failed_discard))

    log = sub.add_parser("log", help="the sync log: every operation with the shop and 1C")
    log.add_argument("--entity", help="e.g. order")
    log.add_argument("--id", help="the entity's id, e.g. the shop's order id 300")
    log.add_argument("--limit", type=int, default=50)
    log.add_argument("--json", action="store_true", help="machine-readable output")
    log.set_defaults(func=_friendly("log", cmd_log))
