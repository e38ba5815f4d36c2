//! DTLS (RFC 6347, RFC 9147's DTLSPlaintext records) over UDP: datagrams
//! made of whole records, each a content type, a DTLS version (1.0, 1.2,
//! 1.3's legacy 1.2, or Cisco's pre-standard 0x0100 of AnyConnect), an
//! epoch, a sequence number and a length.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// DTLS.
const DTLS: Protocol = Protocol(30);
/// Record header: type, version, epoch, sequence number, length.
const HEADER: usize = 13;
/// Content types: change_cipher_spec, alert, handshake, application_data,
/// heartbeat, tls12_cid.
const TYPES: std::ops::RangeInclusive<u8> = 20..=25;
/// Versions: DTLS 1.0, 1.2 (and 1.3 records), and the pre-standard one.
const VERSIONS: [[u8; 2]; 3] = [[0xfe, 0xff], [0xfe, 0xfd], [0x01, 0x00]];
/// Handshake record, and the messages that open one: ClientHello,
/// ServerHello, HelloVerifyRequest.
const HANDSHAKE: u8 = 22;
const OPENING_MESSAGES: [u8; 3] = [1, 2, 3];

/// `Done` on a datagram of whole records whose first opens a handshake in
/// epoch 0; `Maybe` on one of whole records of another kind (a flow seen
/// from its middle: the next datagram decides); `No` otherwise.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    if pkt.tcp || !whole_records(p) {
        return Verdict::No;
    }
    let opens = p[0] == HANDSHAKE
        && p[3..5] == [0, 0]
        && p.get(HEADER).is_some_and(|m| OPENING_MESSAGES.contains(m));
    if opens || pkt.seen != [0, 0] {
        Verdict::Done(DTLS)
    } else {
        Verdict::Maybe
    }
}

/// Whether `datagram` is one or more whole DTLS records and nothing else.
pub(crate) fn whole_records(mut datagram: &[u8]) -> bool {
    if datagram.is_empty() {
        return false;
    }
    while !datagram.is_empty() {
        match record(datagram).and_then(|size| datagram.get(size..)) {
            Some(rest) => datagram = rest,
            None => return false,
        }
    }
    true
}

/// The size of the record at the start of `b` (header included) when its
/// header is valid (a content type, a version, a length other than 0) and
/// the record fits.
pub(crate) fn record(b: &[u8]) -> Option<usize> {
    let h = b.get(..HEADER)?;
    if !TYPES.contains(&h[0]) || !VERSIONS.contains(&[h[1], h[2]]) {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([h[11], h[12]]));
    (len > 0 && HEADER + len <= b.len()).then_some(HEADER + len)
}

/// dtls_session_id_and_coockie_both.pcap frame 1: a ClientHello.
const CLIENT_HELLO: &str = "16fefd000000000000000000560100004a000000000000004afefd3fc15b397b\
                            7c6648012efa02ef69e2fac74534c631c046fe86fb3fb2ff4bd41d203832002f\
                            8393c761e3b64aae0df27f5c9b5716b19e1f7e852712a5a45e6d493e000002c0\
                            2c0100";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dtls",
    protocols: &[DTLS],
    tcp: false,
    udp: true,
    ports: &[443, 4433],
    ports_only: false,
    first: |_, b| TYPES.contains(&b),
    run: dissect,
    samples: &[Sample {
        origin: "dtls_session_id_and_coockie_both.pcap frame 1",
        tcp: false,
        server_port: 44443,
        packets: &[(true, CLIENT_HELLO)],
        protocol: DTLS,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, RTP, STUN_REQUEST, flow, hex, run};

    #[test]
    fn a_client_hello_in_whole_records() {
        let f = flow(false, 50257, 44443);
        let hello = hex(CLIENT_HELLO);
        assert_eq!(run(dissect, &f, &[(true, &hello)]).0, [Verdict::Done(DTLS)]);
        // AnyConnect's pre-standard version.
        let mut cisco = hello.clone();
        cisco[1..3].copy_from_slice(&[0x01, 0x00]);
        assert_eq!(run(dissect, &f, &[(true, &cisco)]).0, [Verdict::Done(DTLS)]);
        // Application data: one datagram is not enough, two are.
        let mut data = hello.clone();
        data[0] = 23;
        data[3..5].copy_from_slice(&[0, 1]);
        let (v, _) = run(dissect, &f, &[(true, &data), (false, &data)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(DTLS)]);
        // Two records in one datagram; then a length past the end.
        let two = [&hello[..], &hello[..]].concat();
        assert_eq!(run(dissect, &f, &[(true, &two)]).0, [Verdict::Done(DTLS)]);
        assert_eq!(run(dissect, &f, &[(true, &hello[..60])]).0, [Verdict::No]);
    }

    #[test]
    fn other_protocols_are_not_dtls() {
        let f = flow(false, 40000, 443);
        for other in [DNS_QUERY, RTP, STUN_REQUEST, "17030300050102030405"] {
            assert_eq!(
                run(dissect, &f, &[(true, &hex(other))]).0,
                [Verdict::No],
                "{other}"
            );
        }
    }
}
