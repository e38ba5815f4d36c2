//! KNXnet/IP (ISO 22510) over UDP and TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// KNXnet_IP.
const KNXNET_IP: Protocol = Protocol(410);
/// Header length and protocol version 1.0.
const HEADER: u8 = 0x06;
const VERSION: u8 = 0x10;
/// Payload packets a TCP flow may take to show a whole header.
const MAX_PACKETS: u32 = 6;

/// KNXnet_IP (`Protocol(410)`): a frame at the start of the payload (UDP,
/// filling it) or of either stream (TCP): header length 6, version 1.0,
/// a service type of a defined family (core, device management,
/// tunnelling, routing, remote logging and configuration, object server,
/// security) and a total length of at least the header. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    match frame(bytes, pkt.tcp) {
        Some(true) => Verdict::Done(KNXNET_IP),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with a KNXnet/IP frame: `None` while cut short.
fn frame(bytes: &[u8], stream: bool) -> Option<bool> {
    let head_ok = bytes.first().is_none_or(|&b| b == HEADER)
        && bytes.get(1).is_none_or(|&b| b == VERSION)
        && bytes
            .get(2)
            .is_none_or(|&family| matches!(family, 0x02..=0x09));
    if !head_ok {
        return Some(false);
    }
    let &[_, _, family, service, l0, l1] = bytes.first_chunk::<6>()?;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    let service_ok = match family {
        // Core: search, description, connect, connection state,
        // disconnect (requests and responses), extended search.
        0x02 => matches!(service, 0x01..=0x0c),
        0x03 => matches!(service, 0x10 | 0x11),
        0x04 => matches!(service, 0x20..=0x22),
        0x05 => matches!(service, 0x30..=0x32),
        0x09 => matches!(service, 0x50..=0x55),
        _ => true,
    };
    Some(
        service_ok
            && len >= 6
            && (if stream {
                len <= 1 << 12
            } else {
                len == bytes.len()
            }),
    )
}

/// The header length.
fn header(_from_client: bool, byte: u8) -> bool {
    byte == HEADER
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "knxnet",
    protocols: &[Protocol(410)],
    tcp: true,
    udp: true,
    ports: &[3671],
    ports_only: false,
    first: header,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic (KNX 03.08.02): search request",
        tcp: false,
        server_port: 3671,
        packets: &[(true, "06100201000e0801c0a8010a0e57")],
        protocol: KNXNET_IP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// Synthetic (KNX 03.08.02 7.8): a search request with its HPAI
    /// (UDP, 192.168.1.10:3671), and a connection state request.
    const SEARCH: &str = "06100201000e 0801c0a8010a0e57";
    const STATE: &str = "061002070010 1500 0801c0a8010a0e57";

    #[test]
    fn requests() {
        let f = flow(false, 3671, 3671);
        for m in [SEARCH, STATE] {
            let (v, meta) = run(dissect, &f, &[(true, &hex(m))]);
            assert_eq!(v, [Verdict::Done(KNXNET_IP)], "{m}");
            assert_eq!(meta, Metadata::default());
        }
        let (v, _) = run(dissect, &flow(true, 40000, 3671), &[(true, &hex(STATE))]);
        assert_eq!(v, [Verdict::Done(KNXNET_IP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 3671);
        for bytes in [
            hex("06100201000f0801c0a8010a0e57"),
            hex("06100299000e0801c0a8010a0e57"),
            hex(DNS_QUERY),
            hex(HTTP_REQUEST_HEAD),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No], "{bytes:02x?}");
        }
    }
}
