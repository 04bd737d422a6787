"""Transports behind one small protocol: the SMTP relay (pooled connections), direct MX, the sandbox.

Each ``deliver`` hands one message to SMTP and returns the server's acceptance, or raises
``DeliveryError`` carrying the answer that decides between a retry and a bounce.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiosmtplib
from aiosmtplib.response import SMTPResponse

from .answers import DeliveryError, SmtpAnswer, network_failure

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One message ready for the wire: envelope and the exact (signed) bytes."""

    message_id: str
    tenant_id: str
    mail_from: str
    recipients: list[str]
    data: bytes
    pixel_url: str | None = None
    """The open-tracking pixel of this message, if it has one (the sandbox "opens" it)."""
    before_data: Callable[[], Awaitable[None]] | None = None
    """Awaited right before each transaction's DATA command (the envelope was accepted): from then on
    the server may take the message, so the dispatcher records that first. If it raises, the
    transaction is abandoned and the delivery fails as transient, with nothing sent."""


class GuardedSmtp(aiosmtplib.SMTP):
    """aiosmtplib's client with a per-transaction hook run right before DATA (``before_data``), and
    whether DATA was begun on this connection (``data_started``)."""

    before_data: Callable[[], Awaitable[None]] | None = None
    data_started: bool = False

    async def data(self, message: str | bytes, /, **kwargs: Any) -> SMTPResponse:
        hook, self.before_data = self.before_data, None
        if hook is not None:
            try:
                await hook()
            except Exception as exc:
                raise NotRecorded(exc) from exc
        self.data_started = True
        return await super().data(message, **kwargs)


class NotRecorded(Exception):
    """The ``before_data`` hook failed: the transaction was not completed."""


@dataclass(frozen=True)
class Accepted:
    """The server took the message."""

    answer: SmtpAnswer
    transport: str
    host: str | None = None


class EmailTransport(Protocol):
    """Anything that hands a message to SMTP: the relay, direct MX, the sandbox, a test fake."""

    name: str

    async def deliver(self, outgoing: Outgoing) -> Accepted:
        """Deliver ``outgoing`` once; raise ``DeliveryError`` when the server did not accept it."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


async def send_over(client: GuardedSmtp, outgoing: Outgoing) -> SmtpAnswer:
    """One transaction on a connected client; the answer, or ``DeliveryError`` with the refusal."""
    client.before_data, client.data_started = outgoing.before_data, False
    try:
        refused, response = await client.sendmail(outgoing.mail_from, outgoing.recipients,
                                                  outgoing.data)
    except NotRecorded as exc:
        raise network_failure(f"the delivery attempt could not be recorded: {exc.__cause__!r}",
                              "mail") from exc
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        raise DeliveryError(SmtpAnswer(first.code, first.message, "rcpt")) from exc
    except aiosmtplib.SMTPSenderRefused as exc:
        raise DeliveryError(SmtpAnswer(exc.code, exc.message, "mail")) from exc
    except aiosmtplib.SMTPDataError as exc:
        raise DeliveryError(SmtpAnswer(exc.code, exc.message, "data")) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise DeliveryError(SmtpAnswer(exc.code, exc.message, "mail")) from exc
    if refused:
        log.warning("some recipients refused", extra={"message_id": outgoing.message_id,
                                                     "refused": sorted(refused)})
    code, _, text = response.partition(" ")
    return SmtpAnswer(int(code) if code.isdigit() else 250, text or response, "data")


class RelayTransport:
    """A configured relay (host, port, STARTTLS or implicit TLS, AUTH) over a pool of connections.

    A connection is reused for the next message; one that failed is closed and replaced. A reused
    connection that turns out to have been dropped by the relay (idle timeout) is retried once on a
    fresh connection at once, so an idle pool never costs a message a retry delay.
    """

    name = "relay"

    def __init__(self, host: str, port: int, *, tls: str = "starttls", username: str = "",
                 password: str = "", verify_tls: bool = True, pool_size: int = 10,
                 timeout: float = 30.0, helo: str | None = None) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._username = username
        self._password = password
        self._verify = verify_tls
        self._timeout = timeout
        self._helo = helo
        self._idle: list[GuardedSmtp] = []
        self._slots = asyncio.Semaphore(pool_size)
        self._closed = False

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self._verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def _connect(self) -> GuardedSmtp:
        client = GuardedSmtp(
            hostname=self._host, port=self._port, timeout=self._timeout,
            use_tls=self._tls == "implicit", start_tls=self._tls == "starttls",
            tls_context=self._tls_context() if self._tls != "none" else None,
            local_hostname=self._helo)
        try:
            await client.connect()
            if self._username:
                await client.login(self._username, self._password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            log.error("the relay refused our credentials; check EMAIL_RELAY_USERNAME/PASSWORD",
                      extra={"smtp_code": exc.code})
            await _close(client)
            raise network_failure(f"relay authentication failed ({exc.code} {exc.message})",
                                  "auth") from exc
        except aiosmtplib.SMTPResponseException as exc:
            await _close(client)
            # the relay answered the connection or EHLO with a refusal: ours to fix, not the message's
            raise network_failure(f"relay refused the session ({exc.code} {exc.message})") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _close(client)
            raise network_failure(f"relay unreachable: {exc!r}") from exc
        return client

    async def deliver(self, outgoing: Outgoing) -> Accepted:
        if self._closed:
            raise network_failure("transport closed")
        async with self._slots:
            for attempt in (1, 2):
                reused = bool(self._idle)
                client = self._idle.pop() if reused else await self._connect()
                try:
                    answer = await send_over(client, outgoing)
                except DeliveryError:
                    await _close(client)
                    raise
                except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError,
                        aiosmtplib.SMTPException, OSError) as exc:
                    await _close(client)
                    if reused and attempt == 1 and isinstance(exc, ConnectionError) \
                            and not client.data_started:
                        continue  # a pooled connection the relay had dropped: once more, fresh
                    raise network_failure(f"relay connection failed: {exc!r}", "data") from exc
                self._idle.append(client)
                return Accepted(answer, self.name, self._host)
        raise network_failure("relay connection failed twice")  # not reached: the loop returns

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
            await _close(client)


async def _close(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection must never fail a delivery
        client.close()
