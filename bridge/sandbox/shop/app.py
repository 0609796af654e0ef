"""The Starlette app serving a ``ShopEmulator`` at the incoming-webhook URL, and how it reads parameters."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge.sandbox.shop.emulator import ShopEmulator
from bridge.shop import phpquery


async def _read_params(request: Request) -> dict[str, Any]:
    """Query string and body (JSON, urlencoded or multipart with PHP brackets) as one nested dict.

    The body wins over the query string when both name a parameter: which one Bitrix prefers is unknown.
    """
    params: dict[str, Any] = {}
    if request.url.query:
        params.update(phpquery.listify(phpquery.parse(request.url.query)))
    body = await request.body()
    if request.method != "POST" or not body.strip():
        return params
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    if media == "application/json" or (not media and body.lstrip().startswith(b"{")):
        data = json.loads(body.decode("utf-8"))
        if not isinstance(data, dict):
            raise ValueError("JSON body must be an object")
    elif media == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        pairs = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name is not None and part.get_filename() is None:
                pairs.append((str(name), str(part.get_content()).rstrip("\r\n") if part.get_content() else ""))
        data = phpquery.listify(phpquery.parse_pairs(pairs))
    else:
        data = phpquery.listify(phpquery.parse(body))
    params.update(data)
    return params


def create_shop_app(emulator: ShopEmulator) -> Starlette:
    """``/rest/{user_id}/{webhook_code}/{method}[.json][/]``; ``/rest/{method}`` (OAuth form) gets 401."""

    async def rest(request: Request) -> JSONResponse:
        user_id = request.path_params.get("user_id", "")
        code = request.path_params.get("code", "")
        method = request.path_params["method"].strip("/").removesuffix(".json")
        try:
            params = await _read_params(request)
        except (ValueError, phpquery.QueryError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            status, body = emulator.refuse(method, f"Malformed request: {exc}")
            return JSONResponse(body, status_code=status)
        if emulator.latency:
            await asyncio.sleep(emulator.latency)
        status, body = emulator.handle(user_id, code, method, params)
        return JSONResponse(body, status_code=status)

    routes = [
        Route("/rest/{user_id}/{code}/{method:path}", rest, methods=["GET", "POST"]),
        Route("/rest/{method:path}", rest, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)
