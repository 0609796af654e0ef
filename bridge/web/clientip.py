"""Who is really calling: the peer address, or the client a trusted proxy forwarded for.

``X-Forwarded-For`` is a list any client can start with made-up addresses; only the entries appended by
proxies we trust (``BRIDGE_TRUSTED_PROXIES``) mean anything. So the header is read only when the direct
peer is a trusted proxy, from the right, skipping trusted hops: the first untrusted address is the client.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.7:5000"
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: IPAddress, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_ip(request: Request, trusted_proxies: Sequence[Network]) -> IPAddress | None:
    """The caller's address; None when it cannot be known (no peer, or a garbled forwarded chain)."""
    peer = _address(request.client.host) if request.client else None
    if peer is None or not _within(peer, trusted_proxies):
        return peer
    chain = [hop for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
    client = peer
    for hop in reversed([hop for hop in chain if hop.strip()]):
        address = _address(hop)
        if address is None:
            return None
        client = address
        if not _within(address, trusted_proxies):
            return address
    return client


def allowed(address: IPAddress | None, networks: Sequence[Network]) -> bool:
    """Whether the caller may pass an allow-list; no list means everyone may."""
    if not networks:
        return True
    return address is not None and _within(address, networks)
