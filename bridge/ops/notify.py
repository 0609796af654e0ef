"""Where alerts go: Telegram, a generic JSON webhook, e-mail. Each channel sends one ``Notice``.

A channel raises ``NotifyError`` with words a person can act on ("Telegram answered HTTP 401:
Unauthorized") and never with its URL or credentials: the Telegram bot token sits in the URL path, and
chat webhooks (Slack, Mattermost) carry their key in the URL too. ``bridge.ops.alerts`` decides *when* to send
and retries a channel that failed; this module only knows *how*.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Literal, Protocol

import httpx

from bridge import __version__
from bridge.settings import Settings

TIMEOUT = 10.0
ICONS = {"open": "🔴", "resolved": "✅"}


class NotifyError(Exception):
    """A channel could not deliver a notice; the message holds no secret."""


@dataclass(frozen=True)
class Notice:
    """One alert message: an incident opened or resolved. Times are unix seconds."""

    alert: str
    state: Literal["open", "resolved"]
    title: str
    text: str
    since: float
    at: float

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = _iso(self.since)
        data["at"] = _iso(self.at)
        data["source"] = "bridge"
        return data

    def plain(self) -> str:
        return f"{ICONS[self.state]} bridge: {self.title}\n{self.text}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notice:
        return cls(
            alert=str(data["alert"]),
            state="resolved" if data.get("state") == "resolved" else "open",
            title=str(data["title"]),
            text=str(data["text"]),
            since=float(data["since"]),
            at=float(data["at"]),
        )


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> None: ...


def _post(client: httpx.Client, url: str, payload: dict[str, Any], who: str) -> httpx.Response:
    try:
        return client.post(url, json=payload)
    except httpx.HTTPError as exc:  # the text of httpx errors may name the URL: only the class is kept
        raise NotifyError(f"{who} did not answer ({type(exc).__name__})") from None


class Telegram:
    """Bot API ``sendMessage``. ``api_url`` is configurable for a proxy, a local Bot API server, or tests."""

    name = "telegram"

    def __init__(self, api_url: str, token: str, chat_id: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self.chat_id = chat_id
        self._client = httpx.Client(
            transport=transport, timeout=TIMEOUT, headers={"User-Agent": f"bridge/{__version__}"}
        )

    def send(self, notice: Notice) -> None:
        payload = {"chat_id": self.chat_id, "text": notice.plain(), "disable_web_page_preview": True}
        response = _post(self._client, self._url, payload, "Telegram")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not (isinstance(body, dict) and body.get("ok")):
            description = body.get("description", "") if isinstance(body, dict) else ""
            raise NotifyError(f"Telegram answered HTTP {response.status_code}: {str(description)[:200]}")


class Webhook:
    """A JSON POST of the notice (``alert``, ``state``, ``title``, ``text``, ``since``, ``at``, ``source``)."""

    name = "webhook"

    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self._url = url
        self._client = httpx.Client(
            transport=transport, timeout=TIMEOUT, headers={"User-Agent": f"bridge/{__version__}"}
        )

    def send(self, notice: Notice) -> None:
        payload = notice.as_dict()
        payload["message"] = notice.plain()  # a ready line for receivers that only show one field
        response = _post(self._client, self._url, payload, "the alert webhook")
        if not 200 <= response.status_code < 300:
            raise NotifyError(f"the alert webhook answered HTTP {response.status_code}")


class Email:
    """SMTP with STARTTLS (port 587), implicit TLS (``ssl``, port 465) or none (a relay on localhost)."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: list[str],
        user: str = "",
        password: str = "",
        security: str = "starttls",
    ) -> None:
        self.host, self.port = host, port
        self.sender, self.recipients = sender, recipients
        self.user, self._password = user, password
        self.security = security

    def message(self, notice: Notice) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = f"[bridge] {'RESOLVED' if notice.state == 'resolved' else 'ALERT'}: {notice.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(f"{notice.text}\n\nsince: {_iso(notice.since)}\nat: {_iso(notice.at)}\n")
        return message

    def send(self, notice: Notice) -> None:
        try:
            if self.security == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=TIMEOUT, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self._password)
                smtp.send_message(self.message(notice))
        except smtplib.SMTPResponseException as exc:
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise NotifyError(f"the mail server answered {exc.smtp_code}: {text[:200]}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"e-mail not sent ({type(exc).__name__})") from None


def channels(settings: Settings, *, transport: httpx.BaseTransport | None = None) -> dict[str, Channel]:
    """Every channel the settings configure, by name; empty when none is (alerts then go to the log only)."""
    found: dict[str, Channel] = {}
    if settings.telegram_bot_token is not None and settings.telegram_chat_id:
        found["telegram"] = Telegram(
            settings.telegram_api_url,
            settings.telegram_bot_token.get_secret_value(),
            settings.telegram_chat_id,
            transport=transport,
        )
    if settings.alert_webhook_url is not None:
        found["webhook"] = Webhook(settings.alert_webhook_url.get_secret_value(), transport=transport)
    if settings.smtp_host and settings.smtp_to:
        found["email"] = Email(
            settings.smtp_host,
            settings.smtp_port,
            sender=settings.smtp_from or (settings.smtp_user or "bridge@localhost"),
            recipients=settings.smtp_to,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value(),
            security=settings.smtp_security,
        )
    return found


def missing_settings(settings: Settings) -> list[str]:
    """Half-configured channels, in words for ``bridge check`` and the start-up log."""
    problems = []
    if (settings.telegram_bot_token is None) != (not settings.telegram_chat_id):
        problems.append("Telegram alerts need both BRIDGE_TELEGRAM_BOT_TOKEN and BRIDGE_TELEGRAM_CHAT_ID")
    if bool(settings.smtp_host) != bool(settings.smtp_to):
        problems.append("e-mail alerts need both BRIDGE_SMTP_HOST and BRIDGE_SMTP_TO")
    return problems
