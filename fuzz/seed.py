#!/usr/bin/env python3
"""Seed corpus for the `detect` fuzz target, from the nDPI fixture captures.

(`run.sh` seeds the `capture` and `config` targets itself: with whole
captures and the shipped configurations.)

Reads every classic pcap and pcapng file under tests/fixtures/ndpi/ (only
Ethernet frames: link type 1; captures with none are skipped) and writes, in
the target's input format (a 0 byte, Ethernet; then each frame prefixed by
its length, u16 big-endian):

  <capture>-first.bin     the capture's first FIRST_FRAMES frames
  <capture>-flow-NN.bin   the first FLOW_FRAMES frames of each of the first
                          MAX_FLOWS flows (IP 5-tuple, either direction)

Usage: python3 seed.py [FIXTURES_DIR [OUT_DIR]]
(defaults: ../tests/fixtures/ndpi and corpus/detect, from this dir).
Standard library only.
"""

import os
import struct
import sys

FIRST_FRAMES = 64
FLOW_FRAMES = 32
MAX_FLOWS = 16
LINKTYPE_ETHERNET = 1
MAX_FRAME = 0xFFFF

HERE = os.path.dirname(os.path.abspath(__file__))


def read_pcap(data):
    """Frames of a classic pcap, or None if `data` is not one."""
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        return None
    if len(data) < 24:
        return []
    link = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    if link != LINKTYPE_ETHERNET:
        return []
    frames, off = [], 24
    while off + 16 <= len(data):
        caplen = struct.unpack(end + "I", data[off + 8 : off + 12])[0]
        off += 16
        frames.append(data[off : off + caplen])
        off += caplen
    return frames


def read_pcapng(data):
    """Ethernet frames of a pcapng, or None if `data` is not one."""
    if data[:4] != b"\x0a\x0d\x0d\x0a":
        return None
    frames, links, end, off = [], [], "<", 0
    while off + 12 <= len(data):
        if data[off : off + 4] == b"\x0a\x0d\x0d\x0a":  # section header
            end = "<" if data[off + 8 : off + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            links = []
        btype, blen = struct.unpack(end + "II", data[off : off + 8])
        if blen < 12 or off + blen > len(data):
            break
        body = data[off + 8 : off + blen - 4]
        if btype == 1 and len(body) >= 2:  # interface description
            links.append(struct.unpack(end + "H", body[:2])[0])
        elif btype == 6 and len(body) >= 20:  # enhanced packet
            ifc, _, _, caplen, _ = struct.unpack(end + "IIIII", body[:20])
            if ifc < len(links) and links[ifc] == LINKTYPE_ETHERNET:
                frames.append(body[20 : 20 + caplen])
        elif btype == 3 and len(body) >= 4:  # simple packet (interface 0)
            if links and links[0] == LINKTYPE_ETHERNET:
                frames.append(body[4:])
        elif btype == 2 and len(body) >= 20:  # obsolete packet block
            ifc = struct.unpack(end + "H", body[:2])[0]
            caplen = struct.unpack(end + "I", body[12:16])[0]
            if ifc < len(links) and links[ifc] == LINKTYPE_ETHERNET:
                frames.append(body[20 : 20 + caplen])
        off += blen
    return frames


def flow_key(frame):
    """An unordered IP 5-tuple of an Ethernet frame (after VLAN tags), or None."""
    off, etype = 12, None
    while off + 2 <= len(frame):
        etype = struct.unpack(">H", frame[off : off + 2])[0]
        if etype in (0x8100, 0x88A8, 0x9100):
            off += 4
            continue
        off += 2
        break
    ip = frame[off:]
    if etype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        proto, src, dst, l4 = ip[9], ip[12:16], ip[16:20], ip[ihl:]
    elif etype == 0x86DD and len(ip) >= 40:
        proto, src, dst, l4 = ip[6], ip[8:24], ip[24:40], ip[40:]
    else:
        return None
    sport = dport = 0
    if proto in (6, 17, 132) and len(l4) >= 4:
        sport, dport = struct.unpack(">HH", l4[:4])
    a, b = (bytes(src), sport), (bytes(dst), dport)
    return (proto,) + (min(a, b), max(a, b))


def encode(frames):
    # The first byte picks the link type: 0 is Ethernet (see detect.rs).
    out = bytearray(b"\x00")
    for f in frames:
        f = f[:MAX_FRAME]
        out += struct.pack(">H", len(f)) + f
    return bytes(out)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../tests/fixtures/ndpi")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "corpus/detect")
    os.makedirs(dst, exist_ok=True)
    written = skipped = 0
    for name in sorted(os.listdir(src)):
        if not name.endswith((".pcap", ".pcapng")):
            continue
        with open(os.path.join(src, name), "rb") as fh:
            data = fh.read()
        frames = read_pcap(data)
        if frames is None:
            frames = read_pcapng(data)
        if not frames:
            print(f"skip {name}: no Ethernet frames", file=sys.stderr)
            skipped += 1
            continue
        stem = name.rsplit(".", 1)[0]
        seeds = {f"{stem}-first.bin": frames[:FIRST_FRAMES]}
        flows = {}
        for f in frames:
            key = flow_key(f)
            if key is None:
                continue
            if key not in flows:
                if len(flows) >= MAX_FLOWS:
                    continue
                flows[key] = []
            if len(flows[key]) < FLOW_FRAMES:
                flows[key].append(f)
        if len(flows) > 1:
            for i, fl in enumerate(flows.values()):
                seeds[f"{stem}-flow-{i:02}.bin"] = fl
        for seed, fs in seeds.items():
            with open(os.path.join(dst, seed), "wb") as fh:
                fh.write(encode(fs))
            written += 1
    print(f"{written} seeds in {dst} ({skipped} captures skipped)")


if __name__ == "__main__":
    main()
