"""Real alert channels on this machine: an SMTP server (aiosmtpd) and a JSON webhook receiver
(the standard library's http.server), each on a free 127.0.0.1 port, and ARCADIA_ALERT_URLS
pointing at both (Apprise's mailto:// without TLS, and json://)."""

from __future__ import annotations

import email
import json
import os
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from arcadia_pipeline.orchestration.resources import WarehouseResource


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """An aiosmtpd handler keeping every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def message_text(message: EmailMessage) -> str:
    """The subject and every text part of an email, decoded."""
    parts = [str(message["Subject"])]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            parts.append(part.get_content())
    return "\n".join(parts)


@dataclass
class Channels:
    """What the two local channels received: emails and webhook POSTs."""

    mailbox: Mailbox
    requests: list[tuple[str, str]]  # the webhook's (request line and headers, body)
    urls: str  # ARCADIA_ALERT_URLS

    @property
    def emails(self) -> list[str]:
        """Each email's subject and text."""
        return [message_text(m) for m in self.mailbox.messages]

    @property
    def posts(self) -> list[dict]:
        """Each webhook POST's JSON body."""
        return [json.loads(body) for _, body in self.requests]

    def everything(self) -> str:
        """Every byte both channels received, headers included, as text."""
        mails = [m.as_string() for m in self.mailbox.messages]
        return "\n".join(mails + [head + body for head, body in self.requests])


@pytest.fixture
def smtp_server():
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture
def webhook():
    received: list[tuple[str, str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            received.append((f"{self.command} {self.path}\n{self.headers}", body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def channels(smtp_server, webhook, monkeypatch) -> Channels:
    """ARCADIA_ALERT_URLS set to the local SMTP server and webhook; what each receives."""
    mailbox, smtp_port = smtp_server
    received, web_port = webhook
    urls = (
        f"mailto://127.0.0.1:{smtp_port}?from=alerts@arcadia.test&to=ops@arcadia.test"
        f"&mode=insecure json://127.0.0.1:{web_port}/alerts"
    )
    monkeypatch.setenv("ARCADIA_ALERT_URLS", urls)

    return Channels(mailbox, received, urls)


def incidents(engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(text("SELECT incident FROM metering.alerts ORDER BY 1")).scalars()
        )


def assert_one_alert(channels, *expected: str) -> tuple[str, dict]:
    """Exactly one email and one webhook POST, each naming every `expected` text, and
    neither holding the warehouse's URL, its password or an alert URL."""
    assert len(channels.emails) == 1, channels.emails
    assert len(channels.posts) == 1, channels.posts
    [mail], [post] = channels.emails, channels.posts
    for wanted in expected:
        assert wanted in mail, (wanted, mail)
        assert wanted in post["title"] + "\n" + post["message"], (wanted, post)
    received = channels.everything()
    database_url = os.environ["ARCADIA_DATABASE_URL"]
    assert database_url not in received
    password = WarehouseResource(database_url=database_url).engine.url.password
    assert not password or password not in received
    for url in channels.urls.split():
        assert url not in received
    return mail, post
