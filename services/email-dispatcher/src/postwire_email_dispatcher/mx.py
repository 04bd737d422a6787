"""Direct delivery to the recipient's MX (when no relay is configured).

The MX hosts come from DNS in preference order (an A record stands in when there is no MX, RFC 5321
§5.1; a "null MX" refuses mail, RFC 7505). Each host is tried in turn until one answers; STARTTLS is
used when offered (opportunistic, as between MTAs). A recipient's server accepting the message means
it is delivered, not merely relayed.
"""

from __future__ import annotations

import contextlib
import logging
import ssl

import aiosmtplib
import dns.asyncresolver
import dns.exception
import dns.resolver

from .answers import DeliveryError, SmtpAnswer, network_failure
from .transport import Accepted, GuardedSmtp, Outgoing, _close, send_over

log = logging.getLogger(__name__)

MAX_HOSTS = 5


class MxTransport:
    """One connection per message to the recipient domain's best reachable MX."""

    name = "mx"

    def __init__(self, resolver: dns.asyncresolver.Resolver, *, port: int = 25,
                 timeout: float = 30.0, helo: str | None = None) -> None:
        self._resolver = resolver
        self._port = port
        self._timeout = timeout
        self._helo = helo

    async def deliver(self, outgoing: Outgoing) -> Accepted:
        domains = {r.rsplit("@", 1)[-1].lower() for r in outgoing.recipients}
        if len(domains) != 1:
            raise DeliveryError(SmtpAnswer(554, "5.5.0 one recipient domain per direct delivery",
                                           "rcpt"))
        hosts = await self._hosts(domains.pop())
        last: DeliveryError | None = None
        for host in hosts[:MAX_HOSTS]:
            try:
                address = await self._address(host)
                return await self._deliver_to(address, host, outgoing)
            except DeliveryError as exc:
                if not exc.transient or exc.answer.stage not in ("connect", "ehlo"):
                    raise
                last = exc
                log.info("MX host failed; trying the next", extra={
                    "message_id": outgoing.message_id, "host": host, "error": str(exc)})
        raise last or network_failure("no MX host reachable")

    async def _hosts(self, domain: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(domain, "MX")
        except dns.resolver.NXDOMAIN as exc:
            raise DeliveryError(SmtpAnswer(550, f"5.1.2 the domain {domain} does not exist",
                                           "rcpt")) from exc
        except dns.resolver.NoAnswer:
            return [domain]  # implicit MX: the domain's own address
        except dns.exception.DNSException as exc:
            raise network_failure(f"DNS lookup of {domain} failed: {exc!r}") from exc
        records = sorted(answer, key=lambda r: r.preference)
        hosts = [str(r.exchange).rstrip(".") for r in records]
        if hosts == [""] or hosts == ["."]:
            raise DeliveryError(SmtpAnswer(556, f"5.1.10 {domain} accepts no mail (null MX)",
                                           "rcpt"))
        return [h for h in hosts if h]

    async def _address(self, host: str) -> str:
        try:
            answer = await self._resolver.resolve(host, "A")
        except dns.exception.DNSException as exc:
            raise network_failure(f"cannot resolve MX host {host}: {exc!r}") from exc
        return str(answer[0])

    async def _deliver_to(self, address: str, host: str, outgoing: Outgoing) -> Accepted:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # opportunistic TLS between MTAs (RFC 3207 §4.1)
        client = GuardedSmtp(hostname=address, port=self._port, timeout=self._timeout,
                                 start_tls=None, tls_context=context, local_hostname=self._helo)
        try:
            try:
                await client.connect()
            except aiosmtplib.SMTPResponseException as exc:
                raise DeliveryError(SmtpAnswer(exc.code, exc.message, "connect")) from exc
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise network_failure(f"cannot connect to {host}: {exc!r}") from exc
            try:
                answer = await send_over(client, outgoing)
            except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
                raise network_failure(f"{host} dropped the connection: {exc!r}", "data") from exc
            except DeliveryError:
                raise
            except aiosmtplib.SMTPException as exc:
                raise network_failure(f"{host}: {exc!r}", "data") from exc
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()  # the message was accepted; a rude goodbye changes nothing
            return Accepted(answer, self.name, host)
        finally:
            await _close(client)

    async def aclose(self) -> None:
        return None
