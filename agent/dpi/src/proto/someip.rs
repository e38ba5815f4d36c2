//! SOME/IP (AUTOSAR) and its service discovery, over UDP and TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// SOMEIP.
const SOMEIP: Protocol = Protocol(229);
/// Message ids of service discovery and the TCP magic cookies.
const SD: u32 = 0xffff_8100;
const COOKIE_CLIENT: u32 = 0xffff_0000;
const COOKIE_SERVER: u32 = 0xffff_8000;
/// Ports AUTOSAR suggests (SD 30490; services from 30491 to 30509).
const PORTS: std::ops::RangeInclusive<u16> = 30490..=30509;
/// Payload packets a TCP flow may take to show a whole header.
const MAX_PACKETS: u32 = 6;

/// SOMEIP (`Protocol(229)`): a message at the start of the payload (UDP)
/// or of either stream (TCP): length field at least 8 and the message
/// within the packet, protocol version 1, a defined message type
/// (request, notification, response, error, their TP and ACK forms), a
/// return code below 0x40. Service discovery (id 0xffff8100, a
/// notification, interface version 1) and the magic cookies are enough
/// anywhere; other messages must be on the suggested ports and, on UDP,
/// fill the datagram exactly. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    let on_port = PORTS.contains(&pkt.flow.server_port) || PORTS.contains(&pkt.flow.client_port);
    match message(bytes, pkt.tcp, on_port) {
        Some(true) => Verdict::Done(SOMEIP),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with a SOME/IP message: `None` while cut short.
fn message(bytes: &[u8], stream: bool, on_port: bool) -> Option<bool> {
    let Some(head) = bytes.first_chunk::<16>() else {
        return if stream { None } else { Some(false) };
    };
    let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let [version, interface, kind, code] = [head[12], head[13], head[14], head[15]];
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let kind_ok = matches!(kind & !0x20, 0x00..=0x02 | 0x40..=0x42 | 0x80 | 0x81 | 0xc0 | 0xc1);
    if version != 1 || !kind_ok || code >= 0x40 || !(8..=1 << 20).contains(&len) {
        return Some(false);
    }
    let exact = len.checked_add(8) == Some(bytes.len());
    if !stream && bytes.len() < len + 8 {
        return Some(false);
    }
    Some(match id {
        SD => interface == 1 && kind == 0x02 && code == 0,
        COOKIE_CLIENT | COOKIE_SERVER => len == 8 && interface == 1 && kind & 0x7f == 1,
        _ => on_port && (stream || exact),
    })
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "someip",
    protocols: &[Protocol(229)],
    tcp: true,
    udp: true,
    ports: &[30490, 30491, 30501],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "someip_sd_sample.pcap frame 1",
            tcp: false,
            server_port: 30490,
            packets: &[(
                true,
                "ffff8100000000300000000301010200c0000000000000100100001000eb0000\
             0100001e000000000000000c00090400c0a858490011c350",
            )],
            protocol: SOMEIP,
        },
        Sample {
            origin: "synthetic (AUTOSAR SOME/IP 4.1): a request",
            tcp: false,
            server_port: 30501,
            packets: &[(true, "123400010000000c0001000201010000deadbeef")],
            protocol: SOMEIP,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// someip_sd_sample.pcap frame 3: an SD offer (subscribe ack).
    const SD_MESSAGE: &str =
        "ffff8100000000240000000201010200c0000000000000100700000000eb00000100001e0000000100000000";
    /// Synthetic (AUTOSAR SOME/IP protocol 4.1): a request to service
    /// 0x1234 method 0x0001 with a 4-byte payload.
    const REQUEST: &str = "12340001 0000000c 00010002 01010000 deadbeef";

    #[test]
    fn service_discovery_anywhere() {
        let (v, meta) = run(
            dissect,
            &flow(false, 30490, 30490),
            &[(true, &hex(SD_MESSAGE))],
        );
        assert_eq!(v, [Verdict::Done(SOMEIP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(
            dissect,
            &flow(false, 40000, 40001),
            &[(true, &hex(SD_MESSAGE))],
        );
        assert_eq!(v, [Verdict::Done(SOMEIP)]);
    }

    #[test]
    fn requests_on_the_ports() {
        let (v, _) = run(
            dissect,
            &flow(false, 40000, 30501),
            &[(true, &hex(REQUEST))],
        );
        assert_eq!(v, [Verdict::Done(SOMEIP)]);
        let r = hex(REQUEST);
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 30501),
            &[(true, &r[..10]), (true, &r[10..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SOMEIP)]);
        let (v, _) = run(dissect, &flow(false, 40000, 8080), &[(true, &r)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 30490);
        let mut bad = hex(REQUEST);
        bad[12] = 2;
        for bytes in [bad, hex(DNS_QUERY), hex(HTTP_REQUEST_HEAD)] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }
}
