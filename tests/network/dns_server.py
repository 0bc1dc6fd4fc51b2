"""A tiny authoritative DNS server for the network tests, run inside a test host: ``python dns_server.py ZONE``.

ZONE is JSON, ``{"name": ["A address", ...] or {"TXT": "text"}}``; a name starting with ``*.`` answers for its
subdomains. UDP and TCP on port 53. Names it does not know get NXDOMAIN.
"""

from __future__ import annotations

import json
import socketserver
import struct
import sys
import threading

from dnslib import QTYPE, RCODE, RR, TXT, A, DNSRecord

ZONE: dict[str, object] = json.loads(sys.argv[1])


def lookup(name: str) -> object | None:
    name = name.lower().rstrip(".")
    if name in ZONE:
        return ZONE[name]
    for key, value in ZONE.items():
        if key.startswith("*.") and name.endswith(key[1:]):
            return value
    return None


def answer(data: bytes) -> bytes:
    request = DNSRecord.parse(data)
    reply = request.reply()
    qname, qtype = request.q.qname, QTYPE[request.q.qtype]
    found = lookup(str(qname))
    if found is None:
        reply.header.rcode = RCODE.NXDOMAIN
    elif isinstance(found, list) and qtype == "A":
        for address in found:
            reply.add_answer(RR(qname, QTYPE.A, rdata=A(address), ttl=30))
    elif isinstance(found, dict) and qtype == "TXT":
        text = found["TXT"]
        chunks = [text[i : i + 255] for i in range(0, len(text), 255)]
        reply.add_answer(RR(qname, QTYPE.TXT, rdata=TXT(chunks), ttl=30))
    return reply.pack()


class Udp(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(answer(data), self.client_address)


class Tcp(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        (length,) = struct.unpack("!H", self.rfile.read(2))
        response = answer(self.rfile.read(length))
        self.wfile.write(struct.pack("!H", len(response)) + response)


if __name__ == "__main__":
    udp = socketserver.ThreadingUDPServer(("0.0.0.0", 53), Udp)
    tcp = socketserver.ThreadingTCPServer(("0.0.0.0", 53), Tcp)
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    print("ready", flush=True)
    udp.serve_forever()
