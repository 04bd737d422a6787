"""A ``SendEmail`` as the bytes that go on the wire: MIME structure, headers, tracking, DKIM.

The message is built with the ``email`` package's SMTP policy (CRLF line ends, RFC 2047 headers), so
the DKIM signature made by dkimpy over those bytes verifies at the receiver (its RSA step by OpenSSL:
``dkim_rsa``).
"""

from __future__ import annotations

import email.policy
import email.utils
from dataclasses import dataclass
from email.message import EmailMessage

import dkim

from postwire_contracts.messages import SendEmail

from . import dkim_rsa, tracking

dkim_rsa.install()

RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "mime-version",
    "content-type", "content-transfer-encoding", "dkim-signature", "return-path", "sender",
    "x-postwire-message-id",
})
SIGNED_HEADERS = [b"from", b"to", b"cc", b"subject", b"date", b"message-id", b"reply-to",
                  b"mime-version", b"content-type", b"list-unsubscribe"]


@dataclass(frozen=True)
class SigningKey:
    """A sending domain's DKIM key (decrypted), selector and bounce (return-path) domain."""

    domain: str
    selector: str
    private_key_pem: str
    return_path_domain: str | None = None


@dataclass(frozen=True)
class Tracking:
    base_url: str
    secret: str


@dataclass(frozen=True)
class Composed:
    data: bytes
    message_id_header: str
    """The Message-ID without angle brackets (our provider id for this message)."""
    pixel_url: str | None


def sender_domain(cmd: SendEmail) -> str:
    """The domain of the From address."""
    _, address = email.utils.parseaddr(cmd.from_address)
    return address.rsplit("@", 1)[-1].lower()


def compose(cmd: SendEmail, *, key: SigningKey | None, tracking_config: Tracking | None) -> Composed:
    """Build (and sign, when ``key`` is given) the message for ``cmd``."""
    domain = sender_domain(cmd)
    message_id_header = f"{cmd.message_id.lower()}@{domain}"
    html = cmd.html
    pixel_url = None
    if html is not None and tracking_config is not None and tracking_config.secret:
        if cmd.track_clicks:
            html = tracking.rewrite_links(html, tracking_config.base_url, tracking_config.secret,
                                          cmd.message_id)
        if cmd.track_opens:
            pixel_url = tracking.open_url(tracking_config.base_url, tracking_config.secret,
                                          cmd.message_id)
            html = tracking.add_pixel(html, pixel_url)
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = cmd.from_address
    message["To"] = ", ".join(cmd.display_to or cmd.to)
    if cmd.cc:
        message["Cc"] = ", ".join(cmd.cc)
    if cmd.reply_to:
        message["Reply-To"] = cmd.reply_to
    message["Subject"] = cmd.subject
    message["Date"] = email.utils.format_datetime(cmd.accepted_at)
    message["Message-ID"] = f"<{message_id_header}>"
    message["X-Postwire-Message-ID"] = cmd.message_id
    for name, value in cmd.headers.items():
        if name.lower() not in RESERVED_HEADERS:
            message[name] = value
    if cmd.text is not None:
        message.set_content(cmd.text)
        if html is not None:
            message.add_alternative(html, subtype="html")
    elif html is not None:
        message.set_content(html, subtype="html")
    else:
        message.set_content("")
    data = message.as_bytes(policy=email.policy.SMTP)
    if key is not None:
        signature = dkim.sign(data, key.selector.encode(), key.domain.encode(),
                              key.private_key_pem.encode(), include_headers=SIGNED_HEADERS)
        data = signature + data
    return Composed(data=data, message_id_header=message_id_header, pixel_url=pixel_url)


def envelope_sender(cmd: SendEmail, key: SigningKey | None) -> str:
    """MAIL FROM: a per-message bounce address on the verified return-path domain (VERP), else From."""
    if key is not None and key.return_path_domain:
        return f"pwb-{cmd.message_id.lower()}@{key.return_path_domain}"
    _, address = email.utils.parseaddr(cmd.from_address)
    return address
