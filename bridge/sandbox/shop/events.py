"""The shop's outgoing webhooks: what it POSTs to a handler when an order is saved or deleted.

The payload is a PHP form body (brackets percent-encoded, every value a string), carrying the event, the
handler's id, ``data[FIELDS]`` with the order's ``ID`` (and, for save and delete, its ``XML_ID`` and an
``ACTION``), a timestamp and an ``auth`` block whose ``application_token`` the receiver checks.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge.sandbox.shop.state import ShopState
from bridge.shop import phpquery


class ShopEvents(ShopState):
    def event_payload(self, event: str, order_id: int, *, token: str | None = None) -> dict[str, Any]:
        """The payload of ``event`` for the order, every value a string as on the wire."""
        event = event.upper()
        with self.lock:
            order = self.orders.get(order_id, {})
        fields: dict[str, str] = {"ID": str(order_id)}
        if event in ("ONSALEORDERSAVED", "ONSALEBEFOREORDERDELETE"):
            fields["XML_ID"] = str(order.get("xmlId") or "")
            fields["ACTION"] = "delete" if event == "ONSALEBEFOREORDERDELETE" else "save"
        parts = urlsplit(self.url) if self.url else None
        domain = parts.netloc if parts else "shop.example.ru"
        scheme = parts.scheme if parts else "https"
        return {
            "event": event,
            "event_handler_id": self.event_handler_id,
            "data": {"FIELDS": fields},
            "ts": str(int(time.time())),
            "auth": {
                "domain": domain,
                "client_endpoint": f"{scheme}://{domain}/rest/",
                "server_endpoint": "https://oauth.bitrix.info/rest/",
                "member_id": self.member_id,
                "application_token": self.application_token if token is None else token,
            },
        }

    def fire_event(
        self,
        target_url: str,
        event: str,
        order_id: int,
        *,
        token: str | None = None,
        duplicates: int = 1,
        as_json: bool = False,
    ) -> list[httpx.Response]:
        """POST the event to ``target_url`` ``duplicates`` times, form-encoded with percent-encoded brackets."""
        payload = self.event_payload(event, order_id, token=token)
        responses = []
        with httpx.Client(timeout=30) as client:
            for _ in range(duplicates):
                if as_json:
                    response = client.post(target_url, json=payload)
                else:
                    response = client.post(
                        target_url,
                        content=phpquery.build(payload).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                responses.append(response)
        return responses
