//! eDonkey / eMule over TCP.
//!
//! Every message is a protocol byte (`0xe3` eDonkey, `0xc5` eMule
//! extensions, `0xd4` zlib-packed), a little-endian length of what
//! follows, and an opcode. The client's first message, then the
//! server's, each framed so (the length fitting a message, the opcode
//! known to start a session: hello, hello answer, login, server
//! message, ...), name the flow.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// eDonkey.
const EDONKEY: Protocol = Protocol(36);
/// Protocol bytes.
const PROTOCOLS: [u8; 3] = [0xe3, 0xc5, 0xd4];
/// Largest first message (a hello or login is small; a server list or
/// message can be a few kB).
const MAX_LEN: u32 = 256 * 1024;

/// What a direction's first bytes are.
enum Head {
    Bad,
    More,
    Ok,
}

/// `Done` once both sides opened with a framed message.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    match (head(pkt.client_stream), head(pkt.server_stream)) {
        (Head::Bad, _) | (_, Head::Bad) => Verdict::No,
        (Head::Ok, Head::Ok) => Verdict::Done(EDONKEY),
        _ if pkt.seen[0] + pkt.seen[1] < 8 => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Reads a message header.
fn head(s: &[u8]) -> Head {
    match s {
        [] => Head::More,
        [proto, ..] if !PROTOCOLS.contains(proto) => Head::Bad,
        [_, l0, l1, l2, l3, op, ..] => {
            let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]);
            if (1..=MAX_LEN).contains(&len) && *op != 0 {
                Head::Ok
            } else {
                Head::Bad
            }
        }
        _ => Head::More,
    }
}

/// Whether a flow may start with `byte`: the client's protocol byte.
fn first(from_client: bool, byte: u8) -> bool {
    from_client && PROTOCOLS.contains(&byte)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "edonkey",
    protocols: &[EDONKEY],
    tcp: true,
    udp: false,
    ports: &[4661, 4662],
    ports_only: false,
    first,
    run: dissect,
    samples: &[Sample {
        origin: "edonkey.pcap frames 4,5",
        tcp: true,
        server_port: 7551,
        packets: &[(true, HELLO_4), (false, ANSWER_5)],
        protocol: EDONKEY,
    }],
};

/// edonkey.pcap frame 4: a hello.
const HELLO_4: &str = "e37700000001101b42cd5b940ed779c20ab755fe256f977d4967e38a4d080000\
             00020100010f005b43484e5d5b5665727943445d7866030100113c0000000201\
             00550a00786c206275696c643631030100ee0ce98914030100f9a24ba24b0301\
             00fa14421334030100fb00c00000030100fe940000005511ac22e110";

/// edonkey.pcap frame 5: the hello answer.
const ANSWER_5: &str = "e37f0000004c3a3544a8310e281d51ed5182f4cf6fd48c71f4cf7f1d08000000\
             0201000115005b43484e5d5b5665727943445d796f75726e616d65030100113c\
             000000030100f9891d891d030100fa1b421334030100feb4010000030100fb00\
             c00000020100550d0056657279434420303930333034030100ee0ce98914d43f\
             ce239210";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// edonkey.pcap frames 4 and 5 (heads): hello and hello answer.
    const HELLO: &str = "e37700000001101b42cd5b940ed779c20ab755fe256f977d";
    const ANSWER: &str = "e37f0000004c3a3544a8310e281d51ed5182f4cf6fd48c71";

    #[test]
    fn hello_and_answer() {
        let f = flow(true, 1754, 7551);
        let (v, _) = run(dissect, &f, &[(true, &hex(HELLO)), (false, &hex(ANSWER))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(EDONKEY)]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(true, 40000, 4662);
        for s in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::HTTP_REQUEST_HEAD,
        ] {
            let (v, _) = run(dissect, &f, &[(true, &hex(s))]);
            assert_eq!(v, [Verdict::No], "{s}");
        }
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(HELLO)), (false, b"HTTP/1.1 200")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let p = hex(HELLO);
        for n in 0..p.len() {
            let _ = run(
                dissect,
                &flow(true, 1, 2),
                &[(true, &p[..n]), (false, &p[..n])],
            );
        }
    }
}
