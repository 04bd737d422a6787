"""Everything a fault scenario works with: the running system, its broker, and the local fakes its live
routes point at (so every provider call can be counted per message id)."""

from __future__ import annotations

from dataclasses import dataclass

from postwire_testing.dns_server import DnsServer
from postwire_testing.smtp_sink import SmtpSink
from postwire_testing.system import DevSystem

from .broker import Broker
from .fakes import FaultyCarrier, FaultyGraph, sink_count


@dataclass
class World:
    system: DevSystem
    broker: Broker
    carrier: FaultyCarrier
    sink: SmtpSink
    graph: FaultyGraph
    dns: DnsServer

    def provider_counts(self, channel: str) -> dict[str, int]:
        """Accepted provider calls per message id: carrier submissions, mails at the recipient's MX,
        Graph API sends."""
        counts: dict[str, int] = {}
        if channel == "sms":
            for submission in list(self.carrier.submissions):
                counts[submission.reference] = counts.get(submission.reference, 0) + 1
        elif channel == "email":
            counts = sink_count(self.sink)
        else:
            for accepted in list(self.graph.accepted):
                if accepted.callback_data:
                    counts[accepted.callback_data] = counts.get(accepted.callback_data, 0) + 1
        return counts
