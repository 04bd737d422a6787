"""A real SMTP server on loopback that records what it is sent: the relay (or MX) of email tests.

aiosmtpd's ``Controller`` runs it in a thread of its own, so it answers while the test's loop awaits.
Knobs: STARTTLS or implicit TLS with a self-signed certificate, AUTH (PLAIN/LOGIN) with one user,
answers programmed per recipient (``reject(address, "550 5.1.1 …")``) or for the next transactions
(``fail_next(2, "421 4.3.2 …")``), a message size limit. Reused by the benchmarks::

    with SmtpSink(starttls=True, username="relay", password="secret") as sink:
        ...  # sink.host, sink.port, sink.messages, await sink.wait_for(lambda ms: len(ms) == 1)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from postwire_platform.tls import self_signed_pem

from .servers import Served, free_port


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted transaction: the envelope and the exact bytes of the message."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    received_at: datetime
    tls: bool
    auth_user: str | None
    peer: str

    def parsed(self) -> EmailMessage:
        """The message parsed with the modern email policy."""
        message = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


class _QuietController(Controller):
    """aiosmtpd warns on every connection when AUTH is allowed without TLS; a test relay may do that."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            server: SMTP = super().factory()  # type: ignore[no-untyped-call]
            return server


@dataclass
class _Plan:
    """Answers for the next transactions: (stage, reply) pairs consumed one per transaction."""

    pending: list[tuple[str, str]] = field(default_factory=list)


def client_context() -> ssl.SSLContext:
    """A client TLS context that trusts the sink's self-signed certificate (no verification)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class SmtpSink(Served):
    """A recording SMTP server; answers 250 unless told otherwise."""

    def __init__(self, *, starttls: bool = False, implicit_tls: bool = False,
                 require_starttls: bool = False, username: str | None = None,
                 password: str | None = None, data_size_limit: int = 10 * 1024 * 1024) -> None:
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.require_starttls = require_starttls
        self.username = username
        self.password = password
        self.data_size_limit = data_size_limit
        self.host = "127.0.0.1"
        self.port = 0
        self._messages: list[ReceivedMail] = []
        self._rejects: dict[str, str] = {}
        self._plan = _Plan()
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.rcpt_attempts: list[str] = []

    # knobs and reads -------------------------------------------------------------------------------
    @property
    def messages(self) -> list[ReceivedMail]:
        """A snapshot of every accepted message, oldest first."""
        with self._lock:
            return list(self._messages)

    def messages_to(self, address: str) -> list[ReceivedMail]:
        """Accepted messages whose envelope names ``address``."""
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_tos)]

    def connections_used(self) -> int:
        """How many distinct client connections delivered the accepted messages (peer host:port)."""
        return len({m.peer for m in self.messages})

    def reject(self, address: str, reply: str) -> None:
        """Answer every RCPT TO of ``address`` with ``reply`` (e.g. ``"550 5.1.1 no such user"``)."""
        with self._lock:
            self._rejects[address.lower()] = reply

    def fail_next(self, n: int, reply: str, *, stage: str = "mail") -> None:
        """Answer the next ``n`` transactions at ``stage`` (``mail``, ``rcpt`` or ``data``) with ``reply``."""
        if stage not in ("mail", "rcpt", "data"):
            raise ValueError("stage must be mail, rcpt or data")
        with self._lock:
            self._plan.pending.extend([(stage, reply)] * n)

    async def wait_for(self, predicate: Callable[[list[ReceivedMail]], bool],
                       timeout: float = 15.0) -> list[ReceivedMail]:
        """Poll until ``predicate(messages)`` holds; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.messages
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"SmtpSink: condition not met in {timeout}s "
                                   f"({len(seen)} message(s) received)")
            await asyncio.sleep(0.02)

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Listen on 127.0.0.1 and a free port; return once it answers."""
        context = self._tls_context() if (self.starttls or self.implicit_tls) else None
        kwargs: dict[str, Any] = {"data_size_limit": self.data_size_limit}
        if self.starttls and context is not None:
            kwargs.update(tls_context=context, require_starttls=self.require_starttls)
        if self.username is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True,
                          auth_require_tls=self.starttls)
        self.port = free_port()
        self._controller = _QuietController(
            self, hostname=self.host, port=self.port, server_hostname="sink.localhost",
            ssl_context=context if self.implicit_tls else None, ready_timeout=30.0, **kwargs)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening and wait for the server thread."""
        if self._controller is not None:
            self._controller.stop()
        self._controller = None

    @staticmethod
    def _tls_context() -> ssl.SSLContext:
        cert, key = self_signed_pem("sink.localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory(prefix="smtp-sink-") as tmp:
            (Path(tmp) / "c.pem").write_bytes(cert)
            (Path(tmp) / "k.pem").write_bytes(key)
            context.load_cert_chain(str(Path(tmp) / "c.pem"), str(Path(tmp) / "k.pem"))
        return context

    # aiosmtpd handler hooks -------------------------------------------------------------------------
    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = (auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode())

    def _planned(self, stage: str) -> str | None:
        with self._lock:
            if self._plan.pending and self._plan.pending[0][0] == stage:
                return self._plan.pending.pop(0)[1]
        return None

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        planned = self._planned("mail")
        if planned:
            return planned
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        with self._lock:
            self.rcpt_attempts.append(address)
            rejected = self._rejects.get(address.lower())
        if rejected:
            return rejected
        planned = self._planned("rcpt")
        if planned:
            return planned
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        planned = self._planned("data")
        if planned:
            return planned
        content = envelope.original_content or b""
        auth = session.auth_data if isinstance(session.auth_data, str) else None
        mail = ReceivedMail(mail_from=envelope.mail_from or "", rcpt_tos=list(envelope.rcpt_tos),
                            data=content, received_at=datetime.now(UTC),
                            tls=session.ssl is not None, auth_user=auth,
                            peer=str(session.peer))
        with self._lock:
            self._messages.append(mail)
            number = len(self._messages)
        return f"250 2.0.0 Ok: queued as SINK{number:06d}"
