#!/usr/bin/env python3
"""Writes a large pcap of presence traffic for the constant-memory replay bench.

    python3 pcaps/gen_big.py OUT.pcap SIZE_MB

Ethernet/IPv4/UDP on 10.1.0.0/16 (never sent anywhere: the replay only reads it).
1000 phones at 10.1.x.y:5060 cycle REGISTER, SUBSCRIBE to a user of
pcaps/presence.policy.json (alice) and other owners, NOTIFY with a PIDF body,
un-SUBSCRIBE and the final NOTIFY, each answered 200; the upstream is
10.0.0.1:5060. Timestamps advance 200 us per packet.
"""
import struct
import sys

UPSTREAM = (bytes([10, 0, 0, 1]), 5060)
PIDF = ('<?xml version="1.0" encoding="UTF-8"?>\r\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{owner}@example.com">'
        '<tuple id="t1"><status><basic>open</basic></status><note>In the office</note></tuple>'
        '</presence>\r\n')
WATCHERS = ["bob", "carol", "dave", "erin"]


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def frame(src, dst, payload):
    (sip, sport), (dip, dport) = src, dst
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, sip, dip)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    eth = b"\x02\x00" + dip + b"\x02\x00" + sip + b"\x08\x00"
    return eth + ip + udp


def request(method, ruri, frm, to, callid, cseq, via, extra="", body=""):
    return (f"{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bK{callid}{cseq}{method[0]}\r\n"
            f"Max-Forwards: 70\r\nFrom: {frm}\r\nTo: {to}\r\nCall-ID: {callid}\r\nCSeq: {cseq} {method}\r\n"
            f"{extra}Content-Length: {len(body)}\r\n\r\n{body}").encode()


def response(req):
    head = req.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    keep = [h for h in head[1:] if h.split(b":", 1)[0] in (b"Via", b"From", b"To", b"Call-ID", b"CSeq")]
    keep = [h + b";tag=srv" if h.startswith(b"To:") and b"tag=" not in h else h for h in keep]
    return b"SIP/2.0 200 OK\r\n" + b"\r\n".join(keep) + b"\r\nContent-Length: 0\r\n\r\n"


def cycle(n):
    i = n % 1000
    phone = (bytes([10, 1, i // 250, i % 250 + 1]), 5060)
    ip = ".".join(str(b) for b in phone[0])
    user = WATCHERS[n % len(WATCHERS)] if i < 4 else f"user{i}"
    owner = "alice" if n % 3 == 0 else f"owner{n % 50}"
    cid = f"c{n}"
    frm = f"<sip:{user}@example.com>;tag=w{n}"
    reg = request("REGISTER", "sip:example.com", f"<sip:{user}@example.com>;tag=r{n}",
                  f"<sip:{user}@example.com>", f"r{n}", 1, f"{ip}:5060",
                  f"Contact: <sip:{user}@{ip}:5060>\r\nExpires: 600\r\n")
    yield phone, UPSTREAM, reg
    yield UPSTREAM, phone, response(reg)
    sub = request("SUBSCRIBE", f"sip:{owner}@example.com", frm, f"<sip:{owner}@example.com>", cid, 1,
                  f"{ip}:5060", f"Contact: <sip:{user}@{ip}:5060>\r\nEvent: presence\r\nExpires: 600\r\n")
    yield phone, UPSTREAM, sub
    yield UPSTREAM, phone, response(sub)
    body = PIDF.format(owner=owner)
    to_w = f"<sip:{user}@example.com>;tag=w{n}"
    from_o = f"<sip:{owner}@example.com>;tag=srv"
    for cseq, state in ((1, "active;expires=600"), (2, "terminated;reason=timeout")):
        if cseq == 2:
            unsub = request("SUBSCRIBE", f"sip:{owner}@example.com", frm, f"<sip:{owner}@example.com>;tag=srv",
                            cid, 2, f"{ip}:5060", "Event: presence\r\nExpires: 0\r\n")
            yield phone, UPSTREAM, unsub
            yield UPSTREAM, phone, response(unsub)
        notify = request("NOTIFY", f"sip:{user}@{ip}:5060", from_o, to_w, cid, cseq, "10.0.0.1:5060",
                         f"Event: presence\r\nSubscription-State: {state}\r\nContent-Type: application/pidf+xml\r\n",
                         body)
        yield UPSTREAM, phone, notify
        yield phone, UPSTREAM, response(notify)


def main():
    out, size_mb = sys.argv[1], int(sys.argv[2])
    limit = size_mb * 1024 * 1024
    t = 1_700_000_000_000_000
    written = 24
    n = 0
    with open(out, "wb", buffering=1 << 20) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        while written < limit:
            for src, dst, payload in cycle(n):
                pkt = frame(src, dst, payload)
                f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(pkt), len(pkt)) + pkt)
                written += 16 + len(pkt)
                t += 200
            n += 1
    print(f"{out}: {written} bytes, {n} cycles, {n * 10} SIP messages")


if __name__ == "__main__":
    main()
