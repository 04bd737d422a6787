"""The SMTP sink and the DNS server used by email tests (and the benchmarks)."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

import dns.asyncresolver
import pytest

from postwire_testing.dns_server import DnsServer
from postwire_testing.smtp_sink import SmtpSink, client_context


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "a@shop.example"
    message["To"] = to
    message["Subject"] = "Hello"
    message.set_content("Hi there")
    return message


def test_the_sink_records_messages_and_answers_as_told() -> None:
    with SmtpSink(starttls=True, username="relay", password="secret") as sink, \
            smtplib.SMTP(sink.host, sink.port, timeout=10) as client:
        client.starttls(context=client_context())
        client.login("relay", "secret")
        client.send_message(_message("ada@example.com"))
        sink.reject("gone@example.com", "550 5.1.1 no such user")
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(_message("gone@example.com"))
        assert refused.value.recipients["gone@example.com"][0] == 550
        sink.fail_next(1, "421 4.3.2 try later", stage="mail")
        with pytest.raises(smtplib.SMTPSenderRefused) as deferred:
            client.send_message(_message("ada@example.com"))
        assert deferred.value.smtp_code == 421
    [mail] = sink.messages
    assert mail.rcpt_tos == ["ada@example.com"] and mail.tls and mail.auth_user == "relay"
    assert mail.parsed()["Subject"] == "Hello"


def test_the_sink_refuses_bad_credentials() -> None:
    with SmtpSink(username="relay", password="secret") as sink, \
            smtplib.SMTP(sink.host, sink.port, timeout=10) as client, \
            pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("relay", "wrong")


async def test_the_dns_server_answers_txt_mx_and_cname() -> None:
    with DnsServer() as server:
        long_key = "v=DKIM1; k=rsa; p=" + "A" * 400
        server.add_txt("pw1._domainkey.shop.example", long_key)
        server.add("shop.example", "MX", "10 mx.shop.example.")
        server.add("bounces.shop.example", "CNAME", "rp.postwire.example.")
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = server.port
        txt = await resolver.resolve("pw1._domainkey.shop.example", "TXT")
        assert b"".join(txt[0].strings).decode() == long_key
        mx = await resolver.resolve("shop.example", "MX")
        assert str(mx[0].exchange) == "mx.shop.example."
        cname = await resolver.resolve("bounces.shop.example", "CNAME")
        assert str(cname[0].target) == "rp.postwire.example."
        with pytest.raises(dns.resolver.NXDOMAIN):
            await resolver.resolve("nothing.shop.example", "TXT")
