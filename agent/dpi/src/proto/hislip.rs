//! HiSLIP (IVI-6.1, high-speed LAN instrument protocol) over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// HiSLIP.
const HISLIP: Protocol = Protocol(372);
/// The last message type IVI-6.1 defines (vendor types are 128 to 255).
const LAST_TYPE: u8 = 25;
/// Largest payload length of a first message accepted.
const MAX_PAYLOAD: u64 = 1 << 20;

/// HiSLIP (`Protocol(372)`): either stream opens with a message header:
/// prologue `HS`, a defined or vendor message type, and a payload length
/// (8 bytes) small enough. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let s = pkt.stream();
    let head_ok = s.first().is_none_or(|&b| b == b'H')
        && s.get(1).is_none_or(|&b| b == b'S')
        && s.get(2).is_none_or(|&t| t <= LAST_TYPE || t >= 128);
    if !head_ok {
        return Verdict::No;
    }
    let Some(head) = s.first_chunk::<16>() else {
        return Verdict::Maybe;
    };
    let mut len = [0; 8];
    len.copy_from_slice(&head[8..]);
    if u64::from_be_bytes(len) <= MAX_PAYLOAD {
        Verdict::Done(HISLIP)
    } else {
        Verdict::No
    }
}

/// The prologue's `H`.
fn prologue(_from_client: bool, byte: u8) -> bool {
    byte == b'H'
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "hislip",
    protocols: &[Protocol(372)],
    tcp: true,
    udp: false,
    ports: &[4880],
    ports_only: false,
    first: prologue,
    run: dissect,
    samples: &[Sample {
        origin: "hislip.pcap frames 4,5",
        tcp: true,
        server_port: 4880,
        packets: &[
            (true, "485300000100525300000000000000076869736c697030"),
            (false, "48530100010000010000000000000000"),
        ],
        protocol: HISLIP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// hislip.pcap frames 4 and 5: Initialize ("hislip0") and its
    /// response.
    const INITIALIZE: &str = "485300000100525300000000000000076869736c697030";
    const INITIALIZED: &str = "48530100010000010000000000000000";

    #[test]
    fn initialize() {
        let f = flow(true, 51053, 4880);
        let (v, meta) = run(dissect, &f, &[(true, &hex(INITIALIZE))]);
        assert_eq!(v, [Verdict::Done(HISLIP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(INITIALIZED))]);
        assert_eq!(v, [Verdict::Done(HISLIP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 4880);
        for bytes in [
            hex(HTTP_REQUEST_HEAD),
            hex(TLS_HELLO_HEAD),
            b"HS\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec(),
            b"HS\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x00\x00\x00\x00".to_vec(),
            b"HTTP/1.1 200 OK\r\n".to_vec(),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }
}
