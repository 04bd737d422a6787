"""One running system for the whole fault suite (``make test-faults``), restarted only by the scenario
that stops it on purpose, with live routes to local fakes so every provider call can be counted:
SMS to an HTTP carrier, email straight to the recipient domain's MX (an SMTP sink found through the
suite's DNS server), WhatsApp to a fake Graph API on the platform's line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from postwire_testing.dns_server import DnsServer
from postwire_testing.smtp_sink import SmtpSink
from postwire_testing.system import DevSystem

from .broker import fault_broker
from .fakes import FaultyCarrier, FaultyGraph
from .load import RECIPIENT_DOMAIN
from .world import World

logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request would drown a report

PHONE_NUMBER_ID = "106540352242922"
SYSTEM_ENV = {
    "SMS_CARRIER_TIMEOUT": "2",
    "DISPATCH_LEASE_SECONDS": "3",
    # retry schedules that outlast a minute of provider trouble, without hour-long steps
    "SMS_RETRY_DELAYS": json.dumps([1, 2, 3, 5, 8, 13, 20, 30]),
    "EMAIL_RETRY_DELAYS": json.dumps([1, 2, 3, 5, 8, 13, 20, 30]),
    "EMAIL_SMTP_TIMEOUT": "5",
    "WHATSAPP_RETRY_DELAYS": json.dumps([1, 2, 3, 5, 8, 13, 20, 30]),
    "WHATSAPP_GRAPH_TIMEOUT": "5",
    "WEBHOOK_RETRY_DELAYS": json.dumps([1, 2, 4, 8, 15, 30, 60]),
    "OUTBOX_GRACE_SECONDS": "5",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``postwire dev`` on the suite's broker, its own ports and SecantusDB, live routes to fakes."""
    with fault_broker() as broker, FaultyCarrier() as carrier, SmtpSink() as sink, \
            DnsServer() as dns:
        print(f"\nfault suite broker: {broker.kind}")
        dns.add(RECIPIENT_DOMAIN, "MX", f"10 mx.{RECIPIENT_DOMAIN}.")
        dns.add(f"mx.{RECIPIENT_DOMAIN}", "A", "127.0.0.1")
        graph = FaultyGraph(app_secret="faults-app-secret")
        dev = DevSystem(tmp_path_factory.mktemp("postwire-faults"), amqp_url=broker.url, env={
            **SYSTEM_ENV,
            "SMS_CARRIER_URL": carrier.url,
            "DNS_NAMESERVERS": dns.nameserver,
            "EMAIL_RELAY_HOST": "",
            "EMAIL_MX_PORT": str(sink.port),
            "WHATSAPP_GRAPH_URL": "",  # set below, once the fake listens
            "WHATSAPP_APP_SECRET": graph.app_secret,
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_ACCESS_TOKEN": "faults-platform-token",
        })
        graph.webhook_url = f"http://127.0.0.1:{dev.base_port + 1}/v1/webhooks/whatsapp"
        with graph:
            dev.env["WHATSAPP_GRAPH_URL"] = graph.url
            dev.start()
            try:
                yield World(system=dev, broker=broker, carrier=carrier, sink=sink, graph=graph,
                            dns=dns)
            finally:
                code = dev.stop()
                if code != 0:
                    print(dev.read_output())
                assert code == 0, f"postwire dev exited {code}"
