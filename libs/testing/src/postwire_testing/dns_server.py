"""A tiny authoritative DNS server on loopback UDP, built on dnspython's message API, for tests.

Records are added as zone-file text per name and type; anything else is NXDOMAIN (or NOERROR with no
answer when the name has records of another type). Point a ``dns.asyncresolver.Resolver`` at
``127.0.0.1:<port>`` (Postwire's ``DNS_NAMESERVERS=127.0.0.1:<port>``)::

    with DnsServer() as dns_server:
        dns_server.add("sel._domainkey.shop.example", "TXT", '"v=DKIM1; k=rsa; p=MIIB…"')
        dns_server.add("shop.example", "MX", "10 mx.shop.example.")
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from .servers import Served


def txt_value(text: str) -> str:
    """``text`` as TXT rdata: split into quoted strings of at most 255 characters (RFC 1035)."""
    chunks = [text[i:i + 255] for i in range(0, len(text), 255)] or [""]
    return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


class DnsServer(Served):
    """Answers A, MX, TXT, CNAME (any type, really) queries from an in-memory table."""

    def __init__(self, *, ttl: int = 60) -> None:
        self.ttl = ttl
        self.port = 0
        self.queries: list[tuple[str, str]] = []
        self._records: dict[tuple[dns.name.Name, int], list[str]] = {}
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def nameserver(self) -> str:
        """``127.0.0.1:<port>`` as Postwire's ``DNS_NAMESERVERS`` setting takes it."""
        return f"127.0.0.1:{self.port}"

    def add(self, name: str, rdtype: str, value: str) -> None:
        """Add one record (zone-file rdata text, e.g. ``"10 mx.example."`` for MX)."""
        key = (dns.name.from_text(name), dns.rdatatype.from_text(rdtype))
        with self._lock:
            self._records.setdefault(key, []).append(value)

    def add_txt(self, name: str, text: str) -> None:
        """Add a TXT record holding ``text`` (long values split into strings)."""
        self.add(name, "TXT", txt_value(text))

    def remove(self, name: str, rdtype: str | None = None) -> None:
        """Remove the records of ``name`` (of one type, or all)."""
        target = dns.name.from_text(name)
        with self._lock:
            for key in list(self._records):
                if key[0] == target and (rdtype is None
                                         or key[1] == dns.rdatatype.from_text(rdtype)):
                    del self._records[key]

    # lifecycle -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Bind 127.0.0.1 on a free UDP port and answer in a thread."""
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = int(self._sock.getsockname()[1])
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the socket."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()
        self._thread = None
        self._sock = None

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                answer = self._answer(wire)
            except Exception:  # a malformed query gets no answer, as from a real server
                continue
            self._sock.sendto(answer, peer)

    def _answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        with self._lock:
            self.queries.append((question.name.to_text(), dns.rdatatype.to_text(question.rdtype)))
            values = list(self._records.get((question.name, question.rdtype), []))
            cname = list(self._records.get((question.name, dns.rdatatype.CNAME), []))
            known = any(name == question.name for name, _ in self._records)
        if not values and cname and question.rdtype != dns.rdatatype.CNAME:
            values, rdtype = cname, dns.rdatatype.CNAME
        else:
            rdtype = question.rdtype
        if values:
            response.answer.append(dns.rrset.from_text_list(
                question.name, self.ttl, dns.rdataclass.IN, rdtype, values))
        elif not known:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
