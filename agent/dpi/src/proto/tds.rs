//! Microsoft SQL Server's TDS (nDPI "MsSQL-TDS"): every message is
//! packets with an 8-byte header (type, status, length of the packet,
//! server process id, packet number, window 0).
//!
//! The client opens with a PRELOGIN (type 0x12), whose option table
//! (token, offset, length; ended by 0xFF) points inside the packet: that
//! alone tells. Other openings (a LOGIN7, a SQL batch, an RPC, a
//! transaction manager request) need the server's answer, a tabular
//! result (type 4), or the flow on SQL Server's port.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's MsSQL-TDS.
const TDS: Protocol = Protocol(114);
/// The packet header.
const HEADER: usize = 8;
/// Message types a client opens with: SQL batch, pre-7 login, RPC,
/// transaction manager request, LOGIN7, PRELOGIN.
const CLIENT_TYPES: [u8; 6] = [0x01, 0x02, 0x03, 0x0e, 0x10, 0x12];
const PRELOGIN: u8 = 0x12;
/// The server's tabular result.
const RESULT: u8 = 0x04;
/// SQL Server's port.
const PORT: u16 = 1433;

/// A packet header at the start of `p` with a type in `types` and whose
/// length is `p`'s (the first packet of a message is sent alone).
fn header(p: &[u8], types: &[u8]) -> bool {
    let Some(&[kind, status, l0, l1, _, _, _, window]) = p.first_chunk::<HEADER>() else {
        return false;
    };
    types.contains(&kind)
        && matches!(status, 0x00 | 0x01 | 0x02 | 0x04 | 0x08 | 0x09 | 0x10)
        && usize::from(u16::from_be_bytes([l0, l1])) == p.len()
        && window == 0
}

/// A PRELOGIN's option table: each option's data inside the packet.
fn prelogin_options(p: &[u8]) -> bool {
    let data = &p[HEADER.min(p.len())..];
    let mut at = 0;
    for _ in 0..32 {
        match data.get(at) {
            Some(0xff) => return at > 0,
            None => return false,
            Some(_) => {}
        }
        let Some(&[token, o0, o1, l0, l1]) = data.get(at..at + 5) else {
            return false;
        };
        let offset = usize::from(u16::from_be_bytes([o0, o1]));
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        // Tokens: 0..=8, 0xFE (nonce and federated auth).
        if !(token <= 8 || token == 0xfe) || offset + len > data.len() {
            return false;
        }
        at += 5;
    }
    false
}

/// `Done` on a client PRELOGIN, or on a client opening answered by a
/// tabular result (or on SQL Server's port); `Maybe` between the two.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let on_port = pkt.flow.server_port == PORT;
    let [client, server] = pkt.seen;
    let p = pkt.payload;
    match (pkt.from_client, client, server) {
        (true, 0, 0) if header(p, &CLIENT_TYPES) => {
            if (p[0] == PRELOGIN && prelogin_options(p)) || (on_port && p[0] != 0x03) {
                Verdict::Done(TDS)
            } else if p[0] == PRELOGIN {
                Verdict::No
            } else {
                Verdict::Maybe
            }
        }
        (false, 1, 0) if header(p, &[RESULT]) => Verdict::Done(TDS),
        // The server's result, the client's request missed.
        (false, 0, 0) if on_port && header(p, &[RESULT]) => Verdict::Done(TDS),
        _ => Verdict::No,
    }
}

/// Built: a PRELOGIN as SQL Server 2008's clients send (version,
/// encryption, instance, thread id, MARS).
const PRELOGIN_SAMPLE: &str = "1201002f0000010000001a00060100200001020021000103002200040400260001ff0f0007d0000002000000103800";
/// Built: the server's PRELOGIN answer, a tabular result.
const PRELOGIN_ANSWER: &str =
    "0401002b0000010000001a00060100200001020021000103002200000400220001ff0f0007d00000020000";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "tds",
    protocols: &[TDS],
    tcp: true,
    udp: false,
    ports: &[PORT],
    ports_only: false,
    first: |from_client, b| {
        if from_client {
            CLIENT_TYPES.contains(&b)
        } else {
            b == RESULT
        }
    },
    run: dissect,
    samples: &[Sample {
        origin: "built: a client's PRELOGIN and the server's answer",
        tcp: true,
        server_port: 49433,
        packets: &[(true, PRELOGIN_SAMPLE), (false, PRELOGIN_ANSWER)],
        protocol: TDS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{TLS_HELLO_HEAD, flow, hex, run};

    #[test]
    fn a_prelogin_alone_tells() {
        let f = flow(true, 50000, 50123);
        let p = hex(PRELOGIN_SAMPLE);
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::Done(TDS)]);
        // An option pointing past the packet.
        let mut bad = p.clone();
        bad[14] = 0x40;
        assert_eq!(run(dissect, &f, &[(true, &bad)]).0, [Verdict::No]);
    }

    #[test]
    fn another_opening_needs_the_result_or_the_port() {
        // A SQL batch "select 1" in UTF-16 (no ALL_HEADERS, TDS 7.1).
        let mut batch = hex("0101001800000100730065006c0065006300740020003100");
        let answer = hex(PRELOGIN_ANSWER);
        let f = flow(true, 50000, 50123);
        let (v, _) = run(dissect, &f, &[(true, &batch), (false, &answer)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(TDS)]);
        let (v, _) = run(dissect, &f, &[(true, &batch), (false, b"HTTP/1.1 200 OK")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let on_port = flow(true, 50000, PORT);
        assert_eq!(
            run(dissect, &on_port, &[(true, &batch)]).0,
            [Verdict::Done(TDS)]
        );
        batch[2] = 0x30;
        assert_eq!(run(dissect, &on_port, &[(true, &batch)]).0, [Verdict::No]);
    }

    #[test]
    fn tpkt_and_tls_are_not_tds() {
        // An RDP connection request in TPKT (type 3 as TDS would read it).
        let tpkt = hex("030000130ee000000000000100080003000000");
        let f = flow(true, 50000, PORT);
        assert_eq!(run(dissect, &f, &[(true, &tpkt)]).0, [Verdict::Maybe]);
        let f = flow(true, 50000, 3389);
        let (v, _) = run(dissect, &f, &[(true, &tpkt), (false, &tpkt)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let hello = hex(TLS_HELLO_HEAD);
        assert_eq!(run(dissect, &f, &[(true, &hello)]).0, [Verdict::No]);
    }
}
