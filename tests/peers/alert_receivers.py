"""Stand-ins for where alerts go: Telegram's Bot API (``/bot<token>/sendMessage``), a JSON webhook, and an
SMTP server. They record what arrived so tests can count notices and check their words."""

from __future__ import annotations

import base64
import socketserver
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.peers.server import HOST, free_port


class AlertReceiver:
    """Telegram Bot API and a generic webhook on one app. ``token`` is the bot token the API accepts."""

    def __init__(self, token: str = "123456:telegram-bot-t0ken-secret") -> None:
        self.token = token
        self.telegram: list[dict[str, Any]] = []
        self.hooks: list[dict[str, Any]] = []
        self.fail_telegram = 0  # answer the next N sendMessage calls with 500
        self.lock = threading.Lock()

    def app(self) -> Starlette:
        async def send_message(request: Request) -> JSONResponse:
            if request.path_params["token"] != self.token:
                return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, 401)
            body = await request.json()
            with self.lock:
                if self.fail_telegram:
                    self.fail_telegram -= 1
                    return JSONResponse({"ok": False, "error_code": 500, "description": "Internal Server Error"}, 500)
                self.telegram.append(body)
                count = len(self.telegram)
            return JSONResponse({"ok": True, "result": {"message_id": count, "text": body.get("text")}})

        async def hook(request: Request) -> JSONResponse:
            body = await request.json()
            with self.lock:
                self.hooks.append(body)
            return JSONResponse({"received": True})

        return Starlette(
            routes=[
                Route("/bot{token}/sendMessage", send_message, methods=["POST"]),
                Route("/hook", hook, methods=["POST"]),
            ]
        )

    def texts(self) -> list[str]:
        with self.lock:
            return [str(m.get("text", "")) for m in self.telegram]


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    login: tuple[str, str] | None


@dataclass
class SmtpRecorder:
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO with AUTH, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    server: _SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def readline(self) -> str:
        return self.rfile.readline().decode(errors="replace").rstrip("\r\n")

    def handle(self) -> None:
        sender, recipients, login = "", [], None
        self.reply("220 test SMTP")
        while True:
            line = self.readline()
            if not line and self.rfile.closed:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-test\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == "AUTH":
                parts = line.split()
                if parts[1].upper() == "PLAIN":
                    _, user, password = base64.b64decode(parts[2]).decode().split("\0")
                else:
                    self.reply("334 VXNlcm5hbWU6")
                    user = base64.b64decode(self.readline()).decode()
                    self.reply("334 UGFzc3dvcmQ6")
                    password = base64.b64decode(self.readline()).decode()
                login = (user, password)
                self.server.recorder.logins.append(login)
                self.reply("235 ok")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip().split()[0].strip("<>")
                self.reply("250 ok")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(data[1:] if data.startswith(b"..") else data)
                self.server.recorder.mails.append(Mail(sender, recipients, message_from_bytes(b"".join(lines)), login))
                recipients = []
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif not line:
                return
            else:
                self.reply("502 not implemented")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    recorder: SmtpRecorder


class SmtpServer:
    """A loopback SMTP server in a thread; ``recorder`` holds the mails and logins."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server = _SmtpServer((HOST, self.port), _SmtpHandler)
        self._server.recorder = SmtpRecorder()
        self.recorder = self._server.recorder
        self._thread = threading.Thread(target=self._server.serve_forever, name="smtp", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
