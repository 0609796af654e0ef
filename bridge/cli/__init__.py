"""The ``bridge`` command: the processes of the Procfile, plus checks and dead-letter handling."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from bridge.cli import health, ops
from bridge.cli.check import cmd_check
from bridge.cli.demo import cmd_demo
from bridge.cli.processes import cmd_clock, cmd_serve, cmd_web, cmd_worker


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
    check = sub.add_parser("check", help="validate settings and mappings")
    check.add_argument("--live", action="store_true", help="also call the shop and 1C (reads only) and report")
    check.set_defaults(func=cmd_check)
    ops.add_commands(sub)  # failed list / failed retry / log
    health.add_command(sub)  # the container health check
    demo = sub.add_parser("demo", help="the bridge with an emulated shop and 1C, playing traffic (no settings)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
