//! rsh (BSD remote shell, TCP port 514).
//!
//! The client sends the port for standard error as decimal text and a
//! NUL (`0` for none), then the client user, the server user and the
//! command, each NUL-terminated. The port comes alone in the client's
//! first packet.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// RSH.
const RSH: Protocol = Protocol(294);
/// Longest user name and command read.
const MAX_FIELD: usize = 1024;

/// RSH when the client's first packet is a stderr port alone and its
/// stream goes on with two user names and a command: each
/// NUL-terminated, user names one word, the command printable text.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    let stream = pkt.client_stream;
    // The port comes alone in the client's first packet.
    if pkt.from_client
        && pkt.seen[0] == 0
        && (pkt.payload.len() > 6 || pkt.payload.last() != Some(&0))
    {
        return Verdict::No;
    }
    // The port: 1 to 5 digits.
    let digits = stream.iter().take_while(|b| b.is_ascii_digit()).count();
    match stream.get(digits) {
        None if digits <= 5 => return Verdict::Maybe,
        Some(0) if (1..=5).contains(&digits) && port_ok(&stream[..digits]) => {}
        _ => return Verdict::No,
    }
    let mut rest = &stream[digits + 1..];
    for (i, max) in [32, 32, MAX_FIELD].into_iter().enumerate() {
        let Some(end) = rest.iter().take(max + 1).position(|&b| b == 0) else {
            let text = rest.iter().all(|&b| b.is_ascii_graphic() || b == b' ');
            return if text && rest.len() <= max {
                Verdict::Maybe
            } else {
                Verdict::No
            };
        };
        let field = &rest[..end];
        // User names are one word; the command is text.
        let ok = match i {
            2 => {
                !field.is_empty()
                    && field
                        .iter()
                        .all(|&b| b.is_ascii_graphic() || b == b' ' || b == b'\t')
            }
            _ => {
                field.first().is_some_and(|b| !b.is_ascii_digit())
                    && field
                        .iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b"._-$".contains(&b))
            }
        };
        if !ok {
            return Verdict::No;
        }
        rest = &rest[end + 1..];
    }
    Verdict::Done(RSH)
}

/// Whether decimal `digits` are a port number.
fn port_ok(digits: &[u8]) -> bool {
    digits
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'))
        <= 65_535
}

/// [`Dissector::first`]: the client opens with a port number.
fn rsh_first(from_client: bool, byte: u8) -> bool {
    from_client && byte.is_ascii_digit()
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rsh",
    protocols: &[RSH],
    tcp: true,
    udp: false,
    ports: &[514],
    ports_only: false,
    first: rsh_first,
    run: dissect,
    samples: &[Sample {
        origin: "rsh.pcap frames 4,6",
        tcp: true,
        server_port: 514,
        packets: &[
            (true, "3130323200"),
            (true, "6c6e7300726f6f74006d6b646972207465737464697200"),
        ],
        protocol: RSH,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn port_then_users_and_command() {
        // rsh.pcap frames 4 and 6.
        let f = flow(true, 1023, 514);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, &hex("3130323200")),
                (true, &hex("6c6e7300726f6f74006d6b646972207465737464697200")),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RSH)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"0\0"), (true, b"alice\0bob\0ls -l\0")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RSH)]);
    }

    #[test]
    fn not_rsh() {
        let f = flow(true, 40000, 514);
        for p in [
            &b"<34>Oct 11 22:14:15 host su: failed\n"[..],
            b"123456\0",
            b"99999\0",
            b"1022\0\0\0\0",
            b"GET / HTTP/1.1\r\n",
            b"\0alice\0bob\0xterm/38400\0",
            // soap.pcap frame 3: UTF-16 text.
            b"8\x000\x000\x000\x00",
            b"0\0alice\0bob\0ls -l\0",
        ] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No], "{p:?}");
        }
    }
}
