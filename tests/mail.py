"""A real SMTP server on loopback (aiosmtpd) that keeps every message it receives, for the alert tests.

The DAGs' alerts reach it through an ordinary ``smtp_default`` connection: plain SMTP, no TLS and no
login, as a relay inside a private network would accept. Nothing in the code under test knows it is
a test server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from local_stack.stack import free_port

FROM_EMAIL = "airflow-alerts@example.test"


@dataclass
class ReceivedMail:
    """One message as the server received it: the envelope and the parsed email."""

    sender: str
    recipients: list[str]
    message: EmailMessage
    received_at: datetime

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def html(self) -> str:
        """The HTML body, decoded from its transfer encoding."""
        part = self.message.get_body(preferencelist=("html", "plain"))
        return part.get_content() if part is not None else ""


@dataclass
class MailServer:
    """The messages received so far, and the port the server listens on."""

    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition, repr=False)

    async def handle_DATA(self, server, session, envelope) -> str:
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        now = datetime.now(timezone.utc)
        with self._arrived:
            self.received.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), message, now))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def connection_uri(self) -> str:
        """``AIRFLOW_CONN_SMTP_DEFAULT`` for this server: plain SMTP, the sender in the extra."""
        extra = {"from_email": FROM_EMAIL, "disable_ssl": True, "disable_tls": True, "timeout": 10}
        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port, "extra": extra})

    def wait_for(self, matches: Callable[[ReceivedMail], bool], timeout: float) -> ReceivedMail:
        """The first message ``matches`` accepts, waiting up to ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = next((mail for mail in self.received if matches(mail)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    subjects = [mail.subject for mail in self.received]
                    raise AssertionError(f"no matching mail within {timeout:.0f} s; received: {subjects}")
                self._arrived.wait(left)


def start_mail_server() -> tuple[MailServer, Controller]:
    """Start a server on a free loopback port; stop it with ``controller.stop()``."""
    mail = MailServer(port=free_port())
    # aiosmtpd checks that the server answers on the port it was given, so not port 0.
    controller = Controller(mail, hostname="127.0.0.1", port=mail.port)
    controller.start()
    return mail, controller
