//! HART-IP (FCG TS20085) over UDP and TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// HART-IP.
const HART_IP: Protocol = Protocol(72);
/// Header: version, type, id, status, sequence, length.
const HEADER: usize = 8;
/// Largest message accepted.
const MAX_LEN: usize = 8192;
/// Payload packets a TCP flow may take to show a whole message.
const MAX_PACKETS: u32 = 6;

/// HART-IP (`Protocol(72)`): a message at the start of the payload (UDP,
/// filling it) or of either stream (TCP, whole): version 1 or 2, message
/// type request, response, publish or NAK, message id 0 to 5 (session
/// initiate and close, keep alive, token-passing and direct PDU, audit
/// log), a length of at least the header. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    match message(bytes, pkt.tcp) {
        Some(true) => Verdict::Done(HART_IP),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with a HART-IP message: `None` while cut short.
fn message(bytes: &[u8], stream: bool) -> Option<bool> {
    let head_ok = bytes.first().is_none_or(|v| (1..=2).contains(v))
        && bytes.get(1).is_none_or(|&t| matches!(t, 0..=2 | 15))
        && bytes.get(2).is_none_or(|&id| id <= 5);
    if !head_ok {
        return Some(false);
    }
    let len = bytes.get(6..8)?;
    let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
    if !(HEADER..=MAX_LEN).contains(&len) || (!stream && len != bytes.len()) {
        return Some(false);
    }
    (bytes.len() >= len).then_some(true)
}

/// Versions 1 and 2.
fn version(_from_client: bool, byte: u8) -> bool {
    matches!(byte, 1 | 2)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "hartip",
    protocols: &[Protocol(72)],
    tcp: true,
    udp: true,
    ports: &[5094],
    ports_only: false,
    first: version,
    run: dissect,
    samples: &[
        Sample {
            origin: "hart_ip.pcap frames 1,2",
            tcp: false,
            server_port: 5094,
            packets: &[
                (true, "010000000002000d0100007530"),
                (false, "010100000002000d010000ea60"),
            ],
            protocol: HART_IP,
        },
        Sample {
            origin: "hart_ip.pcap frame 3 (over TCP)",
            tcp: true,
            server_port: 5094,
            packets: &[(true, "010003000003001182264e0000d2000038")],
            protocol: HART_IP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// hart_ip.pcap frames 1 and 2: session initiate request and
    /// response; frame 3: a token-passing PDU request.
    const INITIATE: &str = "010000000002000d0100007530";
    const INITIATED: &str = "010100000002000d010000ea60";
    const PDU: &str = "010003000003001182264e0000d2000038";

    #[test]
    fn messages() {
        for tcp in [false, true] {
            let f = flow(tcp, 49905, 5094);
            for (from_client, m) in [(true, INITIATE), (false, INITIATED), (true, PDU)] {
                let (v, meta) = run(dissect, &f, &[(from_client, &hex(m))]);
                assert_eq!(v, [Verdict::Done(HART_IP)], "{m}");
                assert_eq!(meta, Metadata::default());
            }
        }
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 5094);
        for bytes in [
            hex("010000000002000e0100007530"),
            hex("030000000002000d0100007530"),
            hex("010009000002000d0100007530"),
            hex(DNS_QUERY),
            hex(HTTP_REQUEST_HEAD),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let r = hex(PDU);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 5094), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
