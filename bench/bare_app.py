"""The yardsticks of the intake and big-push benchmarks: bare Starlette endpoints that read the body and answer.

It runs in its own process with the same uvicorn options as ``bridge web`` (``bridge.web.app.UVICORN_OPTIONS``),
so the ratio bridge ÷ bare measures what the bridge's handler costs, not what the server costs.

    python -m bench.bare_app --port 8001
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.web.app import UVICORN_OPTIONS


async def bare(request: Request) -> Response:
    await request.body()
    return Response(b'{"status": "ok"}', media_type="application/json")


async def bare_push(request: Request) -> Response:
    """The yardstick of the big-push benchmark: read the whole body, answer 202."""
    await request.body()
    return Response(b'{"accepted": 0}', status_code=202, media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response(b"ok")


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/shop/events", bare, methods=["POST"]),
            Route("/1c/stock", bare_push, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, **UVICORN_OPTIONS)


if __name__ == "__main__":
    main()
