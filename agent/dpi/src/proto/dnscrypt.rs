//! DNSCrypt v1/v2 (nDPI 208 "DNScrypt") over UDP and TCP (each message
//! behind a 2-byte length on TCP).
//!
//! A resolver's answers open with the resolver magic `r6fnvWj8`; a client
//! asks for the resolver's certificates with a plain DNS TXT query for
//! `2.dnscrypt-cert.<provider>`. A client's encrypted query (its magic,
//! public key, nonce, then the box) is padded to a multiple of 64 bytes,
//! at least 256, over UDP: such a query waits for the answer. Registered
//! before DNS, which would take the certificate query for its own.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// nDPI's DNScrypt.
const DNSCRYPT: Protocol = Protocol(208);
/// The resolver magic that opens every answer.
const RESOLVER_MAGIC: &[u8] = b"r6fnvWj8";
/// The first label of a certificate query: `2`, then `dnscrypt-cert`.
const CERT_LABELS: &[u8] = b"\x012\x0ddnscrypt-cert";
/// Smallest encrypted answer: magic, nonce (24), a tag (16).
const MIN_ANSWER: usize = 8 + 24 + 16;
/// Smallest padded query over UDP.
const MIN_QUERY: usize = 256;

/// DNSCrypt from one message, or a padded query and its answer.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let msg = if pkt.tcp {
        // The first message of this direction, behind its length.
        let stream = pkt.stream();
        match stream.first_chunk::<2>() {
            Some(&l) if usize::from(u16::from_be_bytes(l)) >= 12 => &stream[2..],
            Some(_) => return Verdict::No,
            None => return Verdict::Maybe,
        }
    } else {
        pkt.payload
    };
    if msg.starts_with(RESOLVER_MAGIC) && msg.len() >= MIN_ANSWER {
        return Verdict::Done(DNSCRYPT);
    }
    // A DNS query (QR clear, one question) for 2.dnscrypt-cert.*.
    let cert_query = msg.get(2).is_some_and(|flags| flags & 0x80 == 0)
        && msg.get(4..6) == Some(&[0, 1])
        && msg
            .get(12..12 + CERT_LABELS.len())
            .is_some_and(|l| l.eq_ignore_ascii_case(CERT_LABELS));
    if cert_query {
        return Verdict::Done(DNSCRYPT);
    }
    if pkt.tcp && pkt.stream().len() < 2 + 12 + CERT_LABELS.len() {
        return Verdict::Maybe;
    }
    // A padded query from the client, its answer not seen yet.
    let padded = if pkt.tcp {
        msg.len() >= 8 + 32 + 12 + 16
    } else {
        msg.len() >= MIN_QUERY && msg.len() % 64 == 0
    };
    if pkt.from_client && pkt.seen == [0, 0] && padded {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dnscrypt",
    protocols: &[DNSCRYPT],
    tcp: true,
    udp: true,
    ports: &[443, 5353],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "built: a certificate query (dnscrypt-proxy's)",
        tcp: false,
        server_port: 443,
        packets: &[(
            true,
            "1d6a01000001000000000000\
             01320d646e7363727970742d6365727405736372756204\
             7a6f6e650000100001",
        )],
        protocol: DNSCRYPT,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, STUN_REQUEST, TLS_HELLO_HEAD, WIREGUARD_KEEPALIVE, flow, hex, run,
    };

    /// dnscrypt-v2.pcap frames 1 and 2, cut to 64 bytes (the query is
    /// 1088 bytes, a multiple of 64, here padded with zeros).
    const QUERY: &str = "e3c3eac4701b47d5dec5672004a90bde439e38f593136bcabfb1b76fe34e5bceb606fc1bd6b85e450a50507d66afa7bc382bbf7e26e7f1c61302fb1170d640f3";
    const ANSWER: &str = "7236666e76576a380a50507d66afa7bc382bbf7e70c0f164928905af515a8a03bc1fe084c3d5d9f6ff7888a61dbe1a1f1fbfebd13debba5b59f59b8c630eb7";

    #[test]
    fn padded_query_and_answer() {
        let mut q = hex(QUERY);
        q.resize(1088, 0);
        let f = flow(false, 38650, 5353);
        let (v, meta) = run(dissect, &f, &[(true, &q), (false, &hex(ANSWER))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(DNSCRYPT)]);
        assert_eq!(meta, Metadata::default());
        // An unpadded first datagram is not a DNSCrypt query.
        let (v, _) = run(dissect, &f, &[(true, &q[..1000])]);
        assert_eq!(v, [Verdict::No]);
        // Over TCP, behind its length.
        let f = flow(true, 38650, 443);
        let mut a = vec![0, 64];
        a.extend(hex(ANSWER));
        let mut tq = vec![4, 64];
        tq.extend(&q);
        let (v, _) = run(dissect, &f, &[(true, &tq), (false, &a)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(DNSCRYPT)]);
    }

    #[test]
    fn certificate_query() {
        let cert = hex(
            "1d6a0100000100000000000001320d646e7363727970742d63657274057363727562047a6f6e650000100001",
        );
        let (v, _) = run(dissect, &flow(false, 40000, 443), &[(true, &cert)]);
        assert_eq!(v, [Verdict::Done(DNSCRYPT)]);
        let mut tcp = vec![0, cert.len() as u8];
        tcp.extend(&cert);
        let (v, _) = run(dissect, &flow(true, 40000, 443), &[(true, &tcp)]);
        assert_eq!(v, [Verdict::Done(DNSCRYPT)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(false, 40000, 5353);
        for p in [DNS_QUERY, STUN_REQUEST, WIREGUARD_KEEPALIVE] {
            assert_eq!(run(dissect, &f, &[(true, &hex(p))]).0, [Verdict::No], "{p}");
        }
        let f = flow(true, 40000, 443);
        assert_eq!(
            run(dissect, &f, &[(true, &hex(TLS_HELLO_HEAD))]).0,
            [Verdict::No]
        );
    }
}
