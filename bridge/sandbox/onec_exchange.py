"""1C's side of the standard "exchange with website", driving the bridge over real HTTP as 1C's exchange node does.

What it copies from 1C: the User-Agent ``1C+Enterprise/8.3``; HTTP Basic only on ``checkauth`` and the cookie
from lines 2–3 of its answer on every later call; ``init`` read as ``key=value`` lines; every file sent as
raw POST bodies of at most ``file_limit`` bytes under the same ``filename``; one ``v8_….zip`` of all files
when ``init`` says ``zip=yes``, then ``import`` of the files inside it by name; ``import`` repeated while the
answer is ``progress``; then ``deactivate`` and ``complete``. A ``failure`` stops the run, as in 1C.

The class is meant to be extended (the order side adds ``query``/``success``): ``call`` is the one way a
request is made, and ``Reply`` the one way an answer is read.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

USER_AGENT = "1C+Enterprise/8.3"
PATH = "/1c/exchange"


class ExchangeFailed(Exception):
    """The bridge answered ``failure`` (or something 1C cannot read); ``reply`` is what it said."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(f"{reply.mode}: {reply.text[:300]!r}")
        self.reply = reply


@dataclass
class Reply:
    mode: str
    status_code: int
    content_type: str
    text: str

    @property
    def status(self) -> str:
        return self.text.split("\n", 1)[0]

    @property
    def message(self) -> str:
        return self.text.split("\n", 1)[1] if "\n" in self.text else ""

    @property
    def readable(self) -> bool:
        """What 1C accepts: HTTP 200, plain text, a first line it knows."""
        return self.status_code == 200 and self.status in ("success", "progress", "failure")


@dataclass
class OnecExchange:
    client: httpx.Client
    user: str
    password: str
    path: str = PATH
    cookie: tuple[str, str] | None = None
    sessid: str | None = None
    timestamp: str | None = None
    zip_allowed: bool = False
    file_limit: int = 0
    replies: list[Reply] = field(default_factory=list)
    max_rounds: int = 2000
    on_progress: Callable[[], None] | None = None  # run between two ``import`` calls (a test works its queue)

    # -- the one way a request is made

    def call(
        self, exchange_type: str, mode: str, *, body: bytes | None = None, auth: bool = False, **params: str
    ) -> Reply:
        headers = {"User-Agent": USER_AGENT}
        if self.cookie is not None:
            headers["Cookie"] = f"{self.cookie[0]}={self.cookie[1]}"
        query = {"type": exchange_type, "mode": mode, **params}
        if auth:
            headers["Authorization"] = httpx.BasicAuth(self.user, self.password)._auth_header
        if body is None:
            answer = self.client.get(self.path, params=query, headers=headers)
        else:
            answer = self.client.post(self.path, params=query, headers=headers, content=body)
        charset = answer.charset_encoding or "windows-1251"
        reply = Reply(mode, answer.status_code, answer.headers.get("content-type", ""), answer.content.decode(charset))
        self.replies.append(reply)
        return reply

    def expect(self, reply: Reply, *statuses: str) -> Reply:
        if not reply.readable or reply.status not in statuses:
            raise ExchangeFailed(reply)
        return reply

    # -- the modes

    def checkauth(self, exchange_type: str = "catalog") -> Reply:
        self.client.cookies.clear()
        reply = self.expect(self.call(exchange_type, "checkauth", auth=True), "success")
        lines = reply.text.split("\n")
        self.cookie = (lines[1], lines[2])
        for line in lines[3:]:
            key, _, value = line.partition("=")
            if key == "sessid":
                self.sessid = value
            elif key == "timestamp":
                self.timestamp = value
        return reply

    def init(self, exchange_type: str = "catalog", version: str | None = "2.08") -> dict[str, str]:
        reply = self.call(exchange_type, "init", version=version) if version else self.call(exchange_type, "init")
        if reply.status_code != 200 or reply.status == "failure":
            raise ExchangeFailed(reply)
        values = dict(line.partition("=")[::2] for line in reply.text.split("\n") if "=" in line)
        self.zip_allowed = values.get("zip") == "yes"
        self.file_limit = int(values["file_limit"])
        return values

    def upload(self, name: str, content: bytes, exchange_type: str = "catalog") -> list[Reply]:
        """Send ``content`` in chunks of at most ``file_limit`` bytes, as 1C does."""
        step = self.file_limit or len(content) or 1
        sent = []
        for start in range(0, max(len(content), 1), step):
            chunk = content[start : start + step]
            sent.append(self.expect(self.call(exchange_type, "file", body=chunk, filename=name), "success"))
        return sent

    def import_file(self, name: str, exchange_type: str = "catalog") -> Reply:
        """``import`` again and again while the answer is ``progress``; the last answer."""
        for _round in range(self.max_rounds):
            reply = self.call(exchange_type, "import", filename=name)
            if reply.readable and reply.status == "progress":
                if self.on_progress is not None:
                    self.on_progress()
                continue
            return self.expect(reply, "success")
        raise AssertionError(f"import of {name} still in progress after {self.max_rounds} calls")

    def deactivate(self) -> Reply:
        return self.expect(self.call("catalog", "deactivate", timestamp=self.timestamp or ""), "success")

    def complete(self) -> Reply:
        return self.expect(self.call("catalog", "complete"), "success")

    # -- a whole run

    def run_catalog(self, files: Mapping[str, bytes], *, use_zip: bool | None = None) -> dict[str, Reply]:
        """checkauth → init → the files (one zip when offered) → import of each XML → deactivate → complete.

        ``files`` in the order 1C sends them (import*.xml, then offers*.xml; pictures as ``import_files/…``).
        Returns the final ``import`` answer of each XML file.
        """
        self.checkauth()
        self.init()
        zipped = self.zip_allowed if use_zip is None else use_zip
        if zipped:
            self.upload("v8_1A76_155ae.zip", make_zip(files))
        else:
            for name, content in files.items():
                self.upload(name, content)
        finals = {name: self.import_file(name) for name in files if name.lower().endswith(".xml")}
        self.deactivate()
        self.complete()
        return finals


def make_zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
