"""1C's exchange node on the order side (``type=sale``), as a test peer: it calls the bridge's ``/1c/exchange``
over real HTTP the way UT 11's node does (``checkauth`` with Basic, the cookie and ``sessid`` on every later
call, ``init`` with a ``version``, ``query``, ``success``, ``file`` in chunks of ``file_limit`` and ``import``
repeated while the answer is ``progress``), with the user agent 1C sends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import httpx
from lxml import etree

from tests.peers.onec_exchange import OnecExchange, Reply

USER_AGENT = "1C+Enterprise/8.3"


@dataclass
class SaleNode:
    url: str  # the bridge's base URL
    user: str
    password: str
    version: str | None = "2.08"
    path: str = "/1c/exchange"
    sessid: str = ""
    file_limit: int = 1024 * 1024
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, headers={"User-Agent": USER_AGENT}, timeout=30.0)

    def close(self) -> None:
        self.client.close()

    def call(self, mode: str, body: bytes | None = None, **params: str) -> httpx.Response:
        query = {"type": "sale", "mode": mode, **params}
        if self.sessid:
            query["sessid"] = self.sessid
        if body is None:
            return self.client.get(self.path, params=query)
        return self.client.post(self.path, params=query, content=body)

    def start(self) -> None:
        """checkauth and init: a new session."""
        self.client.cookies.clear()
        self.sessid = ""
        answer = self.client.get(
            self.path, params={"type": "sale", "mode": "checkauth"}, auth=(self.user, self.password)
        )
        lines = answer.text.split("\n")
        if lines[0] != "success":
            raise RuntimeError(f"checkauth refused: {answer.text}")
        self.client.cookies.set(lines[1], lines[2])
        self.sessid = lines[3].removeprefix("sessid=")
        init = self.call("init", **({"version": self.version} if self.version else {}))
        for line in init.text.split("\n"):
            if line.startswith("file_limit="):
                self.file_limit = int(line.removeprefix("file_limit="))

    def query(self) -> list[etree._Element]:
        """The order documents of one query (``Документ`` elements, wherever they sit)."""
        answer = self.call("query")
        if not answer.headers.get("content-type", "").startswith("application/xml"):
            raise RuntimeError(f"query answered {answer.text[:300]}")
        return list(etree.fromstring(answer.content).iter("Документ"))

    def success(self) -> str:
        return self.call("success").text

    def send_documents(self, name: str, body: bytes, *, timeout: float = 60.0) -> str:
        """Upload 1C's documents in chunks, then ``import`` until it is no longer ``progress``."""
        for start in range(0, len(body), self.file_limit):
            answer = self.call("file", body[start : start + self.file_limit], filename=name)
            if not answer.text.startswith("success"):
                return answer.text
        deadline = time.monotonic() + timeout
        while True:
            answer = self.call("import", filename=name).text
            if not answer.startswith("progress") or time.monotonic() > deadline:
                return answer
            time.sleep(0.1)


class OnecSaleExchange(OnecExchange):
    """The protocol's exchange client (``tests/peers/onec_exchange.py``) with the order side's modes."""

    def query(self) -> Reply:
        return self.call("sale", "query")

    def success(self) -> Reply:
        return self.call("sale", "success")

    def info(self) -> Reply:
        return self.call("sale", "info")

    def documents(self, name: str, content: bytes) -> Reply:
        """Upload 1C's documents and import them (the last answer, a failure included)."""
        self.upload(name, content, "sale")
        for _round in range(self.max_rounds):
            reply = self.call("sale", "import", filename=name)
            if not (reply.readable and reply.status == "progress"):
                return reply
            if self.on_progress is not None:
                self.on_progress()
        raise AssertionError(f"import of {name} still in progress after {self.max_rounds} calls")
