//! MQTT over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// MQTT.
const MQTT: Protocol = Protocol(222);

/// Largest CONNECT accepted (its remaining length).
const MAX_CONNECT: usize = 64 * 1024;

/// MQTT (`Protocol(222)`): a CONNECT packet (type 1, no flags, remaining
/// length varint, protocol `MQTT` level 4 or 5 or `MQIsdp` level 3, sane
/// connect flags) starting either stream; or the server's CONNACK
/// answering a stream that starts as a CONNECT. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    match [client, server].map(connect) {
        [Some(true), _] | [_, Some(true)] => Verdict::Done(MQTT),
        _ if client.first() == Some(&0x10) && connack(server) => Verdict::Done(MQTT),
        [Some(false), Some(false)] => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// Whether `stream` starts with a CONNECT packet: `None` while too short
/// to tell.
fn connect(stream: &[u8]) -> Option<bool> {
    let (&first, rest) = stream.split_first()?;
    if first != 0x10 {
        return Some(false);
    }
    // Remaining length: 1 to 4 bytes of 7 bits, least significant first.
    let mut len = 0usize;
    let mut body = None;
    for i in 0..4 {
        let b = *rest.get(i)?;
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            body = rest.get(i + 1..);
            break;
        }
    }
    // Four bytes all saying "more" is not a length.
    let Some(body) = body else {
        return Some(false);
    };
    if !(10..=MAX_CONNECT).contains(&len) {
        return Some(false);
    }
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    if name_len != 4 && name_len != 6 {
        return Some(false);
    }
    let name = body.get(2..2 + name_len)?;
    let level = *body.get(2 + name_len)?;
    let flags = *body.get(3 + name_len)?;
    let level_ok =
        (name == b"MQTT" && (4..=5).contains(&level)) || (name == b"MQIsdp" && level == 3);
    // Reserved bit clear, will QoS not 3, and without a will no will QoS
    // or retain.
    let flags_ok =
        flags & 0x01 == 0 && flags & 0x18 != 0x18 && (flags & 0x04 != 0 || flags & 0x38 == 0);
    Some(level_ok && flags_ok)
}

/// True when `stream` is exactly a CONNACK (MQTT 3.1/3.1.1).
fn connack(stream: &[u8]) -> bool {
    matches!(stream, [0x20, 0x02, 0x00 | 0x01, 0x00..=0x05])
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mqtt",
    protocols: &[Protocol(222)],
    tcp: true,
    udp: false,
    ports: &[1883],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "mqtt.pcap frames 2,3,4,5",
        tcp: true,
        server_port: 41892,
        packets: &[
            (
                false,
                "104000064d514973647003c20014001663626161626362616261636262626262\
             616161616162000c303244353035303232334433000c30324435303530323233\
             4433",
            ),
            (
                false,
                "821e00010019617374722f733732302f3032443530353032323344332f393900",
            ),
            (true, "20020000"),
            (true, "9003000100"),
        ],
        protocol: Protocol(222),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// mqtt.pcap frame 2: CONNECT, `MQIsdp` level 3.
    const CONNECT_31: &str = "104000064d514973647003c20014001663626161626362616261636262626262616161616162000c303244353035303232334433000c303244353035303232334433";
    /// mqtt.pcap frame 9, first bytes: CONNECT, `MQTT` level 4, 2-byte length.
    const CONNECT_311: &str =
        "109a0200044d51545404c00258001050343737373549443137305732313230004a696f74";

    #[test]
    fn connect() {
        let f = flow(true, 41892, 1883);
        let (v, meta) = run(dissect, &f, &[(true, &hex(CONNECT_31))]);
        assert_eq!(v, [Verdict::Done(MQTT)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(true, &hex(CONNECT_311))]);
        assert_eq!(v, [Verdict::Done(MQTT)]);
    }

    #[test]
    fn connack_confirms_a_cut_connect() {
        // mqtt.pcap frames 2 (its first 3 bytes) and 4 (CONNACK).
        let f = flow(true, 41892, 1883);
        let c = hex(CONNECT_31);
        let (v, _) = run(dissect, &f, &[(true, &c[..3]), (false, &hex("20020000"))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MQTT)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 1883);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), an MQTT
        // PUBLISH that is not a CONNECT (mqtt.pcap frame 7, first bytes).
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
            hex("30570019617374722f733732302f3032443530353032323344332f3939"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes), (false, &bytes)]);
            assert_eq!(v[1], Verdict::No);
        }
        assert_eq!(
            super::connect(&[0x10, 0xff, 0xff, 0xff, 0xff, 0]),
            Some(false)
        );
        // A CONNECT with the wrong level for its name.
        let mut bad = hex(CONNECT_31);
        bad[10] = 4;
        assert_eq!(super::connect(&bad), Some(false));
    }

    #[test]
    fn prefixes_do_not_panic() {
        let c = hex(CONNECT_311);
        for n in 0..c.len() {
            let (v, _) = run(dissect, &flow(true, 1, 1883), &[(true, &c[..n])]);
            assert_eq!(
                v,
                [if n < 11 {
                    Verdict::Maybe
                } else {
                    Verdict::Done(MQTT)
                }]
            );
        }
    }
}
