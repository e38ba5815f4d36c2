//! SMPP (Short Message Peer-to-Peer, v3.3 to v5.0) over TCP.
//!
//! Every PDU opens with four big-endian words: `command_length` (the
//! whole PDU), `command_id` (bit 31: a response), `command_status` (0 in
//! requests) and `sequence_number`.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// SMPP.
const SMPP: Protocol = Protocol(207);
/// Header length.
const HEADER: usize = 16;
/// Largest PDU taken.
const MAX_PDU: u32 = 64 * 1024;
/// Request command ids (without the response bit): bind_receiver,
/// bind_transmitter, query_sm, submit_sm, deliver_sm, unbind,
/// replace_sm, cancel_sm, bind_transceiver, outbind, enquire_link,
/// submit_multi, alert_notification, data_sm, broadcast_sm,
/// query_broadcast_sm, cancel_broadcast_sm.
const COMMANDS: [u32; 17] = [
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x15, 0x21, 0x102, 0x103, 0x111,
    0x112, 0x113,
];
/// Binds: receiver, transmitter, transceiver.
const BINDS: [u32; 3] = [0x01, 0x02, 0x09];

/// A PDU header.
#[derive(Clone, Copy, Debug)]
struct Header {
    id: u32,
    status: u32,
    sequence: u32,
}

/// SMPP when the client's first PDU is a request (known command, status
/// 0) and the server's first PDU its response (same command with bit 31,
/// same sequence number); without a response yet, a bind whose system id
/// and password are NUL-terminated text will do.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let request = match header(client) {
        Some(Some(h)) if COMMANDS.contains(&h.id) && h.status == 0 => h,
        Some(_) => return Verdict::No,
        None => return Verdict::Maybe,
    };
    match header(server) {
        Some(Some(r)) if r.id == request.id | 0x8000_0000 && r.sequence == request.sequence => {
            return Verdict::Done(SMPP);
        }
        // generic_nack to a bad request.
        Some(Some(r)) if r.id == 0x8000_0000 && r.sequence == request.sequence => {
            return Verdict::Done(SMPP);
        }
        Some(_) => return Verdict::No,
        None if !server.is_empty() => return Verdict::Maybe,
        None => {}
    }
    if !BINDS.contains(&request.id) {
        return Verdict::Maybe;
    }
    // system_id (16) and password (9): NUL-terminated text.
    let body = client.get(HEADER..).unwrap_or_default();
    let mut rest = body;
    for max in [16, 9] {
        let Some(end) = rest.iter().take(max).position(|&b| b == 0) else {
            return if rest.len() < max {
                Verdict::Maybe
            } else {
                Verdict::No
            };
        };
        if !rest[..end]
            .iter()
            .all(|&b| b.is_ascii_graphic() || b == b' ')
        {
            return Verdict::No;
        }
        rest = &rest[end + 1..];
    }
    Verdict::Done(SMPP)
}

/// The header at the start of `stream`: `None` until it is in,
/// `Some(None)` when its length is out of range.
fn header(stream: &[u8]) -> Option<Option<Header>> {
    let h = stream.get(..HEADER)?;
    let word = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let len = word(0);
    let ok = (HEADER as u32..=MAX_PDU).contains(&len) && word(12) <= 0x7fff_ffff;
    Some(ok.then(|| Header {
        id: word(4),
        status: word(8),
        sequence: word(12),
    }))
}

/// [`Dissector::first`]: the client opens with a PDU under 64 KiB.
fn smpp_first(from_client: bool, byte: u8) -> bool {
    from_client && byte == 0
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "smpp",
    protocols: &[SMPP],
    tcp: true,
    udp: false,
    ports: &[2775],
    ports_only: false,
    first: smpp_first,
    run: dissect,
    samples: &[Sample {
        origin: "smpp_in_general.pcap frames 4,5 (bind_transmitter and its response)",
        tcp: true,
        server_port: 9000,
        packets: &[
            (
                true,
                "00000028000000020000000000000001616268696b0070617373776f726400534d50500001000000",
            ),
            (false, "00000015800000020000000000000001534d534300"),
        ],
        protocol: SMPP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// smpp_in_general.pcap frame 4: bind_transmitter, system id `abhik`.
    const BIND: &str =
        "00000028000000020000000000000001616268696b0070617373776f726400534d50500001000000";
    /// Frame 5: bind_transmitter_resp.
    const BIND_RESP: &str = "00000015800000020000000000000001534d534300";
    /// Frames 7 and 8: enquire_link and its response.
    const ENQUIRE: &str = "00000010000000150000000000000002";
    const ENQUIRE_RESP: &str = "00000010800000150000000000000002";

    #[test]
    fn bind_alone_or_request_and_response() {
        let f = flow(true, 1770, 9000);
        let (v, meta) = run(dissect, &f, &[(true, &hex(BIND))]);
        assert_eq!(v, [Verdict::Done(SMPP)]);
        assert_eq!(meta, Metadata::default());
        let b = hex(BIND);
        let (v, _) = run(dissect, &f, &[(true, &b[..18]), (false, &hex(BIND_RESP))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SMPP)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(ENQUIRE)), (false, &hex(ENQUIRE_RESP))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SMPP)]);
    }

    #[test]
    fn not_smpp() {
        let f = flow(true, 40000, 2775);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(ENQUIRE)), (false, &hex(BIND_RESP))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        for p in [
            "00000010000000990000000000000002",
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No], "{p}");
        }
    }
}
