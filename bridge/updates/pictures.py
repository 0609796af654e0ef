"""Product pictures: content kept in Redis by its sha256, uploaded to a product once per content.

A picture reaches the bridge as bytes (a base64 field of ``POST /1c/products``, a file of a 1C exchange
upload) or as a URL. Bytes are stored under ``bridge:image:<sha256>`` for 7 days (refreshed when staged
again), so a pending product carries only the digest and two products with the same picture share it. The
products writer uploads a picture with ``catalog.productImage.add``, one request each (the shop refuses file
methods inside ``batch``), and remembers per shop product which digests it already got, so an unchanged
picture is never sent twice. A digest whose content is gone (expired) keeps the shop's picture as it is:
nothing is deleted.

A URL is fetched by the writer, not the web intake (no request waits on a third party), bounded in size and
time, without following redirects, and never from a loopback, private or link-local address unless
``BRIDGE_IMAGE_PRIVATE_URLS`` allows it (the bridge often runs next to services that must not be reachable
through it). What a URL held is remembered by digest for a day.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from bridge import keys
from bridge.errors import TransientError
from bridge.runtime import Runtime
from bridge.shop.errors import ShopError, ShopTransientError

log = logging.getLogger("bridge.updates.pictures")

IMAGE_TTL = 7 * 24 * 3600
URL_TTL = 24 * 3600
MAX_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT = 15.0


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def store_image(redis: Redis, name: str, content: bytes) -> dict[str, str]:
    """Keep ``content`` for the products writer; the item's ``{"name", "sha256"}``."""
    sha = digest(content)
    redis.set(keys.IMAGE.format(sha256=sha), content, ex=IMAGE_TTL)
    return {"name": name, "sha256": sha}


async def store_images_async(redis: AsyncRedis, pictures: list[tuple[str, bytes]]) -> None:
    """``store_image`` for the web intake: every picture in one round trip."""
    if not pictures:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for _name, content in pictures:
            pipe.set(keys.IMAGE.format(sha256=digest(content)), content, ex=IMAGE_TTL)
        await pipe.execute()


def upload(rt: Runtime, product_id: int, images: list[dict[str, Any]], *, what: str) -> list[tuple[str, str]]:
    """Upload the pictures ``product_id`` has not got yet; the first one is the detail picture.

    Raises ``TransientError`` when the shop (or a picture's host) is in trouble, so the entry waits and the
    rest are uploaded by the next round. A picture that will never arrive (refused by the shop, a URL that
    cannot work, content no longer stored) does not stop the product: it is returned as a (class, reason)
    warning, which the flush counts in the batch and the sync log.
    """
    warnings: list[tuple[str, str]] = []
    if not images:
        return warnings
    done_key = keys.PRODUCT_IMAGES.format(product_id=product_id)
    done = {m.decode() if isinstance(m, bytes) else str(m) for m in rt.redis.smembers(done_key)}
    for index, image in enumerate(images):
        sha, name, problem = _content_digest(rt, image)
        if problem is not None:
            warnings.append(("picture_not_fetched", f"{what}: {problem}"))
        if sha is None or sha in done:
            continue
        stored = rt.redis.get(keys.IMAGE.format(sha256=sha))
        if stored is None:
            log.info("%s: picture %s is no longer stored; the shop's picture is kept", what, sha[:12])
            warnings.append(("picture_gone", f"{what}: picture {sha[:12]} is no longer stored; the shop's is kept"))
            continue
        params = {
            "fields": {"productId": product_id, "type": "DETAIL_PICTURE" if index == 0 else "MORE_PHOTO"},
            "fileContent": [name or f"{sha[:16]}.jpg", base64.b64encode(_bytes(stored)).decode("ascii")],
        }
        try:
            rt.shop.call("catalog.productImage.add", params)
        except ShopTransientError:
            raise
        except ShopError as error:
            words = f"{what}: the shop refused picture {name or sha[:12]}: {error.description or error}"
            log.warning("%s", words)
            warnings.append(("picture_refused", words))
            continue
        rt.redis.sadd(done_key, sha)
        done.add(sha)
    return warnings


def _content_digest(rt: Runtime, image: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(digest, file name, why it could not be had): a URL is fetched once and its digest cached."""
    if image.get("sha256"):
        return str(image["sha256"]), image.get("name"), None
    url = str(image.get("url") or "")
    if not url:
        return None, None, None
    name = urlsplit(url).path.rsplit("/", 1)[-1] or None
    cache_key = keys.CACHE_IMAGE_URL.format(digest=digest(url.encode("utf-8")))
    cached = rt.redis.get(cache_key)
    if cached is not None:
        return (cached.decode() if isinstance(cached, bytes) else str(cached)), name, None
    try:
        content = fetch(url, allow_private=rt.settings.image_private_urls)
    except ValueError as exc:
        log.warning("picture %s not fetched: %s", _shown(url), exc)
        return None, None, f"picture {_shown(url)} not fetched: {exc}"
    sha = store_image(rt.redis, name or "", content)["sha256"]
    rt.redis.set(cache_key, sha, ex=URL_TTL)
    return sha, name, None


def fetch(url: str, *, allow_private: bool, transport: httpx.BaseTransport | None = None) -> bytes:
    """The bytes at ``url``; ``ValueError`` for a URL that will never work, ``TransientError`` for a host in trouble."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("only http and https URLs are fetched")
    if not allow_private:
        _public_only(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    try:
        with (
            httpx.Client(timeout=FETCH_TIMEOUT, follow_redirects=False, transport=transport) as client,
            client.stream("GET", url) as answer,
        ):
            if answer.status_code >= 500:
                raise TransientError(f"picture host answered {answer.status_code}")
            if answer.status_code != 200:
                raise ValueError(f"the host answered {answer.status_code}")
            chunks: list[bytes] = []
            size = 0
            for chunk in answer.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise ValueError(f"the picture is larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise TransientError(f"picture host unreachable ({type(exc).__name__})") from None


def _public_only(host: str, port: int) -> None:
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except OSError as exc:
        raise ValueError(f"the host does not resolve ({exc})") from None
    for address in addresses:
        if not ipaddress.ip_address(str(address).split("%", 1)[0]).is_global:
            raise ValueError("the host is a loopback, private or link-local address (BRIDGE_IMAGE_PRIVATE_URLS)")


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def _shown(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{parts.path}"  # no credentials, no query
