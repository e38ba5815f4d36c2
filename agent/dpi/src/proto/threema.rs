//! Threema's chat protocol over TCP (port 5222).
//!
//! The client opens with 48 bytes (its temporary public key and cookie),
//! the server answers with 80 (its cookie and a sealed box), the client
//! logs in; from then on every message is framed by a 16-bit
//! little-endian length. Claimed on the login once the two hellos had
//! their sizes (XMPP, on the same port, starts with text), or on the
//! first frame after the handshake when the server sent more with its
//! hello.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Threema.
const THREEMA: Protocol = Protocol(305);
/// Threema's chat server port.
const PORT: u16 = 5222;
/// Size of the client's hello.
const CLIENT_HELLO: usize = 48;
/// Size of the server's hello.
const SERVER_HELLO: usize = 80;
/// Packets after which a flow without a frame is not Threema.
const MAX_PACKETS: u32 = 10;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first || pkt.flow.server_port != PORT {
        return Verdict::No;
    }
    let p = pkt.payload;
    let [client, server] = pkt.seen;
    let ok = match (pkt.from_client, client, server) {
        (true, 0, 0) => p.len() == CLIENT_HELLO,
        (false, _, 0) => pkt.client_stream.len() == CLIENT_HELLO,
        // The login after both hellos.
        (true, 1, 1..)
            if pkt.client_stream.len() > CLIENT_HELLO
                && pkt.server_stream.len() == SERVER_HELLO =>
        {
            return Verdict::Done(THREEMA);
        }
        // The login, and the server's answer, of any size.
        (true, 1, 1..) | (false, _, 1) => true,
        (true, 1, 0) => false,
        _ => {
            if framed(p) {
                return Verdict::Done(THREEMA);
            }
            true
        }
    };
    if ok && client + server + 1 < MAX_PACKETS {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `p` is one frame: a 16-bit little-endian length and as many
/// bytes.
fn framed(p: &[u8]) -> bool {
    match p {
        [l0, l1, rest @ ..] => {
            !rest.is_empty() && usize::from(u16::from_le_bytes([*l0, *l1])) == rest.len()
        }
        _ => false,
    }
}

/// threema.pcap frames 19, 20, 22 (first 16 bytes of 191), 25 (38
/// bytes, a frame of 36).
const HELLO: &str = "f311eae3ae90ba57d118a3d9a8dfa7cf19078a494e6808845e29e1e5748887709501f0088068501b360fce1d5d29f9ab";
const SERVER: &str = "380ba1d30d2e5a12d3d44012df98c4adf743f10fc03c58cc79bb8158bf5562ae4d250c51ab8c2eb1db6b4fb484569decd4b47dcfa10d72033c14d1b2e5c14d8fe41722e4fdfa49f393074749f8f49b35";
const LOGIN: &str = "0cc4780c0e84977d6850afafd8368e95";
const FRAME: &str = "240042a2c9f399e6cd7f5d45ba73d247992f48ecfea9ef9f955737263529184c71495fb358b9";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "threema",
    protocols: &[THREEMA],
    tcp: true,
    udp: false,
    ports: &[PORT],
    ports_only: true,
    first: crate::dissect::any_first,
    run: dissect,
    samples: &[Sample {
        origin: "threema.pcap frames 19,20,22,25",
        tcp: true,
        server_port: PORT,
        packets: &[(true, HELLO), (false, SERVER), (true, LOGIN), (true, FRAME)],
        protocol: THREEMA,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn handshake_then_frame() {
        let f = flow(true, 50484, PORT);
        let (h, s, l, fr) = (hex(HELLO), hex(SERVER), hex(LOGIN), hex(FRAME));
        let (v, _) = run(dissect, &f, &[(true, &h), (false, &s), (true, &l)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(THREEMA)]);
        // The server's hello in two pieces.
        let (s1, s2) = s.split_at(40);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &h), (false, s1), (false, s2), (true, &l)],
        );
        assert_eq!(v.last(), Some(&Verdict::Done(THREEMA)));
        // The server's hello with more after it: the next frame decides.
        let more = [&s[..], &fr[..]].concat();
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &h), (false, &more), (true, &l), (true, &fr)],
        );
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(THREEMA)
            ]
        );
        // A hello of another size is not Threema's.
        let (v, _) = run(dissect, &f, &[(true, &h[..47])]);
        assert_eq!(v, [Verdict::No]);
        // Nor is XMPP on the same port.
        let xmpp = b"<?xml version='1.0'?><stream:stream to='example.com' xmlns='jabber:client'>";
        let (v, _) = run(dissect, &f, &[(true, xmpp)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        let f = flow(true, 50484, PORT);
        let (h, s, l, fr) = (hex(HELLO), hex(SERVER), hex(LOGIN), hex(FRAME));
        for n in 0..fr.len() {
            run(
                dissect,
                &f,
                &[(true, &h), (false, &s), (true, &l), (true, &fr[..n])],
            );
        }
    }
}
