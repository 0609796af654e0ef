"""The long-running processes of the Procfile: ``bridge serve``, ``web``, ``worker`` and ``clock``.

Each command imports its process's modules only when it runs, so ``bridge check`` and ``bridge failed`` start
without loading uvicorn, RQ's worker or the web app.
"""

from __future__ import annotations

import argparse

from bridge.cli.common import load_or_explain, require_redis, warn_unknown_variables
from bridge.settings import FEATURE_REQUIREMENTS, Settings


def cmd_serve(args: argparse.Namespace) -> int:
    from bridge import logs
    from bridge.serve import serve

    settings = load_or_explain(with_mappings=True)
    if args.port:
        settings.port = args.port
    logs.configure(settings, "serve")
    warn_missing(settings)
    serve(settings)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from bridge import logs
    from bridge.web.app import UVICORN_OPTIONS, create_app

    settings = load_or_explain(with_mappings=True)
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

    settings = load_or_explain(with_mappings=True)
    url = require_redis(settings, "worker")
    logs.configure(settings, "worker")
    warn_missing(settings)
    run_worker(settings, Redis.from_url(url), burst=args.burst)
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from redis import Redis

    from bridge import logs
    from bridge.clock import run_clock

    settings = load_or_explain(with_mappings=True)
    url = require_redis(settings, "clock")
    logs.configure(settings, "clock")
    warn_unknown_variables()
    run_clock(settings, Redis.from_url(url))
    return 0


def warn_missing(settings: Settings) -> None:
    """The start's warnings: misspelt setting names, and the features that are off for want of a setting."""
    import logging

    warn_unknown_variables()
    log = logging.getLogger("bridge")
    for feature in FEATURE_REQUIREMENTS:
        missing = settings.missing_for(feature)
        if missing:
            log.warning("%s is off until %s is set", feature, ", ".join(missing))
