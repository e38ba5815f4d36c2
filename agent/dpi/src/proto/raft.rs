//! Raft messages of the C raft library's TCP transport (canonical/raft,
//! as in dqlite). The connecting side opens with a handshake: protocol
//! version 1, its server id and the length of its address, then the
//! address (`host:port`, NUL-padded to 8 bytes); all integers 8 bytes,
//! little-endian. Messages follow: an 8-byte type (1 to 6: append
//! entries and its result, request vote and its result, install
//! snapshot, timeout now) and an 8-byte body length, then the body.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Raft.
const RAFT: Protocol = Protocol(392);
/// Largest body taken.
const MAX_BODY: u64 = 64 << 20;

/// Raft when the client's first bytes are the handshake, or the first
/// message of the side that spoke first has a known type and a body length that is that of the rest of its segment
/// (nDPI's check), or of more than a full segment.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let first = pkt.first_stream();
    let Some(header) = first.get(..16) else {
        // Only the type's high zero bytes can be told early.
        let ok = first
            .get(1..8)
            .unwrap_or(&first[first.len().min(1)..])
            .iter()
            .all(|&b| b == 0)
            && first.first().is_none_or(|t| (1..=6).contains(t));
        return if ok { Verdict::Maybe } else { Verdict::No };
    };
    if !pkt.server_first {
        match handshake(first) {
            Some(true) => return Verdict::Done(RAFT),
            None => return Verdict::Maybe,
            Some(false) => {}
        }
    }
    let kind = u64::from_le_bytes(header[..8].try_into().unwrap_or_default());
    let len = u64::from_le_bytes(header[8..].try_into().unwrap_or_default());
    if !(1..=6).contains(&kind) || len > MAX_BODY {
        return Verdict::No;
    }
    let body = (first.len() - 16) as u64;
    if body == len || (body > len && is_raft_header(&first[16 + len as usize..])) {
        Verdict::Done(RAFT)
    } else if body < len && first.len() < 1200 {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `stream` starts with a handshake; `None` until its address
/// is in.
fn handshake(stream: &[u8]) -> Option<bool> {
    let word = |i: usize| {
        let b = stream.get(i * 8..i * 8 + 8)?;
        Some(u64::from_le_bytes(b.try_into().ok()?))
    };
    if word(0)? != 1 {
        return Some(false);
    }
    let len = word(2)?;
    if !(3..=256).contains(&len) {
        return Some(false);
    }
    let address = stream.get(24..24 + len as usize)?;
    let end = address
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(address.len());
    let (text, padding) = address.split_at(end);
    Some(
        text.contains(&b':')
            && text.iter().all(u8::is_ascii_graphic)
            && padding.iter().all(|&b| b == 0),
    )
}

/// Whether `next` (what follows a message) starts as a message header.
fn is_raft_header(next: &[u8]) -> bool {
    let n = next.len().min(8);
    next.first().is_some_and(|t| (1..=6).contains(t)) && next[1..n].iter().all(|&b| b == 0)
}

/// [`Dissector::first`]: a handshake (version 1) or a message type.
fn raft_first(_from_client: bool, byte: u8) -> bool {
    (1..=6).contains(&byte)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "raft",
    protocols: &[RAFT],
    tcp: true,
    udp: false,
    ports: &[],
    ports_only: false,
    first: raft_first,
    run: dissect,
    samples: &[Sample {
        origin: "raft.pcap frame 4 (handshake)",
        tcp: true,
        server_port: 9002,
        packets: &[(
            true,
            "0100000000000000010000000000000010000000000000003132372e302e302e313a393030310000",
        )],
        protocol: RAFT,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// raft.pcap frame 4: the handshake (version 1, id 1, address
    /// `127.0.0.1:9001`).
    const HANDSHAKE: &str =
        "0100000000000000010000000000000010000000000000003132372e302e302e313a393030310000";

    #[test]
    fn handshake_and_messages() {
        let f = flow(true, 46286, 9002);
        let (v, meta) = run(dissect, &f, &[(true, &hex(HANDSHAKE))]);
        assert_eq!(v, [Verdict::Done(RAFT)]);
        assert_eq!(meta, Metadata::default());
        // raft.pcap frame 6: request vote (a capture that missed the
        // handshake).
        let a = hex(
            "03000000000000002800000000000000060000000000000001000000000000000100000000000000c60000000000000004000000000000000200000000000000",
        );
        let (v, _) = run(dissect, &f, &[(true, &a[..20]), (true, &a[20..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RAFT)]);
    }

    #[test]
    fn not_raft() {
        let f = flow(true, 40000, 9001);
        for p in [
            "0700000000000000010000000000000000",
            "0100000000000000ffffffffffffffff000000000000000100",
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No], "{p}");
        }
    }
}
