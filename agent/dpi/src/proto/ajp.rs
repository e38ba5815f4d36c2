//! AJP13 (Apache JServ Protocol) over TCP.
//!
//! Packets from the web server start with `0x12 0x34`, those from the
//! container with `AB`; then a 2-byte length and a prefix code. The web
//! server sends forward requests (2), shutdown (7), ping (8) and CPing
//! (10); the container answers with body chunks (3), headers (4), end of
//! response (5), a request for more body (6) and CPong (9).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// AJP.
const AJP: Protocol = Protocol(139);
/// Largest packet (AJP's `max_packet_size` tops at 65536).
const MAX_LEN: usize = 65_536;
/// Prefix codes from the web server.
const REQUESTS: [u8; 4] = [2, 7, 8, 10];
/// Prefix codes from the container.
const REPLIES: [u8; 5] = [3, 4, 5, 6, 9];

/// AJP when the client's first packet (magic, length, request code) is
/// answered by a container packet, or is a forward request whose method
/// code and protocol string (`HTTP/1.x`) check out.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    match packet(client, [0x12, 0x34], &REQUESTS) {
        Read::Bad => return Verdict::No,
        Read::More => return Verdict::Maybe,
        Read::Ok => {}
    }
    match packet(server, *b"AB", &REPLIES) {
        Read::Ok => return Verdict::Done(AJP),
        Read::Bad => return Verdict::No,
        Read::More if !server.is_empty() => return Verdict::Maybe,
        Read::More => {}
    }
    // Forward request: method (1 to 28), then the protocol as an AJP
    // string (2-byte length, bytes, NUL).
    match client.get(4..) {
        Some([2, method, len0, len1, rest @ ..]) if (1..=28).contains(method) => {
            let len = usize::from(u16::from_be_bytes([*len0, *len1]));
            match rest.get(..len + 1) {
                Some(proto) if len == 8 && proto.starts_with(b"HTTP/1.") && proto[8] == 0 => {
                    Verdict::Done(AJP)
                }
                None if rest.len() < 9 && len == 8 => Verdict::Maybe,
                _ => Verdict::No,
            }
        }
        Some([2, _, _, _, ..]) => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// A read of a packet header.
enum Read {
    Bad,
    More,
    Ok,
}

/// Reads the header at the start of `stream`: `magic`, a length, a code
/// from `codes`.
fn packet(stream: &[u8], magic: [u8; 2], codes: &[u8]) -> Read {
    let n = stream.len().min(2);
    if stream[..n] != magic[..n] {
        return Read::Bad;
    }
    let Some(&[_, _, l0, l1, code]) = stream.get(..5) else {
        return Read::More;
    };
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if (1..=MAX_LEN).contains(&len) && codes.contains(&code) {
        Read::Ok
    } else {
        Read::Bad
    }
}

/// [`Dissector::first`]: the web server opens with `0x12 0x34`.
fn ajp_first(from_client: bool, byte: u8) -> bool {
    from_client && byte == 0x12
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ajp",
    protocols: &[AJP],
    tcp: true,
    udp: false,
    ports: &[8009],
    ports_only: false,
    first: ajp_first,
    run: dissect,
    samples: &[Sample {
        origin: "ajp.pcap frames 5,9 (CPing, CPong)",
        tcp: true,
        server_port: 8009,
        packets: &[(true, "123400010a"), (false, "4142000109")],
        protocol: AJP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// ajp.pcap frame 5: CPing; frame 9: CPong.
    const CPING: &str = "123400010a";
    const CPONG: &str = "4142000109";
    /// ajp.pcap frame 11: a forward request, first 24 bytes.
    const FORWARD: &str = "1234033602040008485454502f312e310000342f4343502f";

    #[test]
    fn cping_cpong_and_forward_request() {
        let f = flow(true, 38856, 8009);
        let (v, meta) = run(dissect, &f, &[(true, &hex(CPING)), (false, &hex(CPONG))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(AJP)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(true, &hex(FORWARD))]);
        assert_eq!(v, [Verdict::Done(AJP)]);
    }

    #[test]
    fn not_ajp() {
        let f = flow(true, 40000, 8009);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(CPING)), (false, b"HTTP/1.1 400\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex("1234033602040008485454502f322e300000"))],
        );
        assert_eq!(v, [Verdict::No]);
        for p in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
            assert_eq!(v, [Verdict::No]);
        }
        let (v, _) = run(dissect, &f, &[(false, &hex(CPONG))]);
        assert_eq!(v, [Verdict::No]);
    }
}
