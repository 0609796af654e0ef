"""The long-running processes of the Procfile: ``bridge serve``, ``web``, ``worker`` and ``clock``.

Each command imports its process's modules only when it runs, so ``bridge check`` and ``bridge failed`` start
without loading uvicorn, RQ's worker or the web app.
"""

from __future__ import annotations

import argparse

from bridge.cli.common import load_or_explain, require_redis, warn_unknown_variables
from bridge.settings import FEATURE_REQUIREMENTS, Settings

NOTHING_CONFIGURED = (
    "nothing is configured, so the bridge has no shop and no 1C to talk to; to see it at work, run `bridge demo` "
    "(`bridge check` lists the settings each feature needs)"
)


def cmd_serve(args: argparse.Namespace) -> int:
    from bridge import logs
    from bridge.serve import serve
    from bridge.stopping import exit_on_signal

    exit_on_signal()
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
    from bridge.stopping import exit_on_signal, listen, quiet_signals
    from bridge.web.app import UVICORN_OPTIONS, create_app

    exit_on_signal()
    settings = load_or_explain(with_mappings=True)
    require_redis(settings, "web")
    logs.configure(settings, "web")
    warn_missing(settings)
    sock = listen(settings.host, args.port or settings.port, "web")
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, **UVICORN_OPTIONS))

    def stop() -> None:
        server.should_exit = True

    # uvicorn re-raises the signal it stopped on into these (exit 0, not 143); one that comes before uvicorn
    # listens for it stops it as soon as it has started.
    quiet_signals(stop)
    server.run(sockets=[sock])
    sock.close()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:

    from bridge import logs
    from bridge.stopping import exit_on_signal
    from bridge.worker import run_worker, worker_connection

    exit_on_signal()  # until RQ's handlers are in place
    settings = load_or_explain(with_mappings=True)
    url = require_redis(settings, "worker")
    logs.configure(settings, "worker")
    warn_missing(settings)
    run_worker(settings, worker_connection(url, settings), burst=args.burst)
    return 0


def cmd_clock(args: argparse.Namespace) -> int:
    from redis import Redis

    from bridge import logs
    from bridge.clock import log, run_clock
    from bridge.stopping import StopRequest, exit_on_signal

    exit_on_signal()
    settings = load_or_explain(with_mappings=True)
    url = require_redis(settings, "clock")
    logs.configure(settings, "clock")
    warn_unknown_variables()
    stop = StopRequest().install()  # the first signal ends the tick and releases the leadership
    run_clock(settings, Redis.from_url(url), stop.event)
    log.info("clock stopped")
    return 0


def warn_missing(settings: Settings) -> None:
    """The start's warnings: misspelt setting names, and the features that are off for want of a setting."""
    import logging

    warn_unknown_variables()
    log = logging.getLogger("bridge")
    if all(settings.missing_for(feature) for feature in FEATURE_REQUIREMENTS):
        # Nothing set at all: a newcomer's first start. One pointer helps more than a warning per feature.
        log.warning(NOTHING_CONFIGURED)
        return
    for feature in FEATURE_REQUIREMENTS:
        missing = settings.missing_for(feature)
        if missing:
            log.warning("%s is off until %s is set", feature, ", ".join(missing))
