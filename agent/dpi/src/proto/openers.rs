//! Less common protocols told by the first message of the side that
//! spoke first (TCP: its stream; UDP: the first datagram), each by a magic
//! or a command and a few fields checked for consistency.
//!
//! - Git (`git://`, TCP): a pkt-line, four hex digits of length, then
//!   `git-upload-pack `, `git-receive-pack ` or `git-upload-archive `.
//! - NATS (TCP): the server's `INFO {` (or, the server's first message
//!   missed, the client's `CONNECT {`).
//! - CheckMK (TCP): the agent's `<<<check_mk>>>` section header.
//! - Java RMI (TCP): `JRMI`, version 1 or 2, protocol 0x4B (stream),
//!   0x4C (single op) or 0x4D (multiplex).
//! - TeamSpeak: TeamSpeak 3's `TS3INIT1` (UDP), TeamSpeak 2's `F4 BE`
//!   login, version 1 to 3 (TCP); at least 20 bytes either way.
//! - BJNP (Canon printers): `BJNP`/`BJNB`/`BJNS`/`MFNP`/`MFNB`, a request
//!   or response type, the command, and the payload length of the rest.
//! - TiVoConnect: the beacon's `tivoconnect=` (any case).
//! - XDMCP (UDP, to port 177): version 1, an opcode 1 to 14, and the
//!   length of the rest.
//! - collectd (UDP): at least three parts of known types, each its
//!   length, those of fixed size the right size (or one encrypted part
//!   filling the datagram).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// What a check of a first message found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// Not this opening.
    No,
    /// A prefix of it: more bytes needed.
    More,
    /// This opening.
    Yes,
}

const GIT: Protocol = Protocol(226);
const NATS: Protocol = Protocol(68);
const CHECKMK: Protocol = Protocol(138);
const JRMI: Protocol = Protocol(416);
const TEAMSPEAK: Protocol = Protocol(162);
const BJNP: Protocol = Protocol(204);
const TIVOCONNECT: Protocol = Protocol(308);
const XDMCP: Protocol = Protocol(15);
const COLLECTD: Protocol = Protocol(298);

/// XDMCP's port.
const XDMCP_PORT: u16 = 177;

/// One opening: the protocol, the transports it comes over, the check
/// (of the first message and whether the flow's server port is the
/// protocol's own, for those that need it).
struct Opening {
    protocol: Protocol,
    tcp: bool,
    udp: bool,
    check: fn(&[u8], u16) -> Check,
}

/// Every opening, checked in order.
const OPENINGS: &[Opening] = &[
    Opening {
        protocol: GIT,
        tcp: true,
        udp: false,
        check: git,
    },
    Opening {
        protocol: NATS,
        tcp: true,
        udp: false,
        check: nats,
    },
    Opening {
        protocol: CHECKMK,
        tcp: true,
        udp: false,
        check: |b, _| prefix(b, b"<<<check_mk>>>"),
    },
    Opening {
        protocol: JRMI,
        tcp: true,
        udp: false,
        check: jrmi,
    },
    Opening {
        protocol: TEAMSPEAK,
        tcp: false,
        udp: true,
        check: |b, _| at_least(prefix(b, b"TS3INIT1"), b, 20),
    },
    Opening {
        protocol: TEAMSPEAK,
        tcp: true,
        udp: false,
        check: teamspeak2,
    },
    Opening {
        protocol: BJNP,
        tcp: true,
        udp: true,
        check: bjnp,
    },
    Opening {
        protocol: TIVOCONNECT,
        tcp: true,
        udp: true,
        check: tivo,
    },
    Opening {
        protocol: XDMCP,
        tcp: false,
        udp: true,
        check: xdmcp,
    },
    Opening {
        protocol: COLLECTD,
        tcp: false,
        udp: true,
        check: |b, _| collectd(b),
    },
];

/// The protocols of [`OPENINGS`].
const PROTOCOLS: [Protocol; 9] = [
    GIT,
    NATS,
    CHECKMK,
    JRMI,
    TEAMSPEAK,
    BJNP,
    TIVOCONNECT,
    XDMCP,
    COLLECTD,
];

/// The first opening of [`OPENINGS`] the first message has; `Maybe`
/// while it is a prefix of one (TCP); `No` once it cannot be any.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let first = if !pkt.tcp {
        if pkt.seen != [0, 0] {
            return Verdict::No;
        }
        pkt.payload
    } else if pkt.server_first {
        pkt.server_stream
    } else {
        pkt.client_stream
    };
    let port = pkt.flow.server_port;
    let mut more = false;
    for o in OPENINGS
        .iter()
        .filter(|o| if pkt.tcp { o.tcp } else { o.udp })
    {
        match (o.check)(first, port) {
            Check::Yes => return Verdict::Done(o.protocol),
            Check::More => more = true,
            Check::No => {}
        }
    }
    if more && pkt.tcp {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// `Yes` when `bytes` starts with `magic`, `More` when it is shorter and a
/// prefix of it.
fn prefix(bytes: &[u8], magic: &[u8]) -> Check {
    let n = bytes.len().min(magic.len());
    match (bytes[..n] == magic[..n], n == magic.len()) {
        (false, _) => Check::No,
        (true, true) => Check::Yes,
        (true, false) => Check::More,
    }
}

/// `check`, but `More` while `bytes` is shorter than `len`.
fn at_least(check: Check, bytes: &[u8], len: usize) -> Check {
    match check {
        Check::Yes if bytes.len() < len => Check::More,
        other => other,
    }
}

/// Big-endian `u16` at `at`.
fn be16(b: &[u8], at: usize) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes(
        b.get(at..at + 2)?.try_into().ok()?,
    )))
}

/// Git's services, as the first pkt-line of a `git://` request names them.
const GIT_SERVICES: [&[u8]; 3] = [
    b"git-upload-pack ",
    b"git-receive-pack ",
    b"git-upload-archive ",
];

fn git(b: &[u8], _port: u16) -> Check {
    let digits = &b[..b.len().min(4)];
    if !digits
        .iter()
        .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return Check::No;
    }
    let Some(len) = std::str::from_utf8(digits)
        .ok()
        .filter(|d| d.len() == 4)
        .and_then(|d| usize::from_str_radix(d, 16).ok())
    else {
        return Check::More;
    };
    // The shortest request: the service, a path and its NUL.
    if len < 4 + GIT_SERVICES[0].len() + 2 {
        return Check::No;
    }
    let rest = &b[4..];
    let mut more = false;
    for service in GIT_SERVICES {
        match prefix(rest, service) {
            Check::Yes => return Check::Yes,
            Check::More => more = true,
            Check::No => {}
        }
    }
    if more { Check::More } else { Check::No }
}

fn nats(b: &[u8], _port: u16) -> Check {
    match prefix(b, b"INFO {") {
        Check::No => prefix(b, b"CONNECT {"),
        other => other,
    }
}

fn jrmi(b: &[u8], _port: u16) -> Check {
    match prefix(b, b"JRMI\0") {
        Check::Yes => match (b.get(5), b.get(6)) {
            (None, _) => Check::More,
            (Some(1 | 2), None) => Check::More,
            (Some(1 | 2), Some(0x4b..=0x4d)) => Check::Yes,
            _ => Check::No,
        },
        other => other,
    }
}

fn teamspeak2(b: &[u8], _port: u16) -> Check {
    let check = match b {
        [] | [0xf4] | [0xf4, 0xbe] | [0xf4, 0xbe, 1..=3] => Check::More,
        [0xf4, 0xbe, 1..=3, 0, ..] => Check::Yes,
        _ => Check::No,
    };
    at_least(check, b, 20)
}

/// BJNP's magics: printer and scanner, requests and responses.
const BJNP_MAGICS: [&[u8]; 5] = [b"BJNP", b"BJNB", b"BJNS", b"MFNP", b"MFNB"];
/// BJNP header: magic, type, command, error, sequence, session, length.
const BJNP_HEADER: usize = 16;

fn bjnp(b: &[u8], _port: u16) -> Check {
    let head = &b[..b.len().min(4)];
    if !BJNP_MAGICS.iter().any(|m| m.starts_with(head)) {
        return Check::No;
    }
    let Some(h) = b.get(..BJNP_HEADER) else {
        return match b.get(4) {
            Some(1 | 2 | 0x81 | 0x82) | None => Check::More,
            Some(_) => Check::No,
        };
    };
    let len = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let ok = matches!(h[4], 1 | 2 | 0x81 | 0x82)
        && h[5] < 0x40
        && usize::try_from(len).is_ok_and(|l| l == b.len() - BJNP_HEADER);
    if ok { Check::Yes } else { Check::No }
}

fn tivo(b: &[u8], _port: u16) -> Check {
    let magic = b"tivoconnect=";
    let n = b.len().min(magic.len());
    if !b[..n].eq_ignore_ascii_case(&magic[..n]) {
        Check::No
    } else if n < magic.len() {
        Check::More
    } else {
        Check::Yes
    }
}

fn xdmcp(b: &[u8], port: u16) -> Check {
    let ok = port == XDMCP_PORT
        && be16(b, 0) == Some(1)
        && be16(b, 2).is_some_and(|op| (1..=14).contains(&op))
        && be16(b, 4).is_some_and(|len| len + 6 == b.len());
    if ok { Check::Yes } else { Check::No }
}

/// collectd's part types, and the size of those whose size is fixed.
const COLLECTD_PARTS: [(u16, Option<usize>); 14] = [
    (0x0000, None),     // host
    (0x0001, Some(12)), // time
    (0x0002, None),     // plugin
    (0x0003, None),     // plugin instance
    (0x0004, None),     // type
    (0x0005, None),     // type instance
    (0x0006, None),     // values
    (0x0007, Some(12)), // interval
    (0x0008, Some(12)), // time (high resolution)
    (0x0009, Some(12)), // interval (high resolution)
    (0x0100, None),     // message
    (0x0101, Some(12)), // severity
    (0x0200, None),     // SHA-256 signature
    (0x0210, None),     // AES-256 encrypted
];
/// The encrypted part: whole datagram, its user name's length first.
const COLLECTD_ENCRYPTED: u16 = 0x0210;

fn collectd(b: &[u8]) -> Check {
    let (mut at, mut parts) = (0, 0);
    while parts < 5 {
        let (Some(kind), Some(len)) = (be16(b, at), be16(b, at + 2)) else {
            break;
        };
        let Some(&(_, fixed)) = COLLECTD_PARTS.iter().find(|(t, _)| usize::from(*t) == kind) else {
            return Check::No;
        };
        if len < 4 || at + len > b.len() || fixed.is_some_and(|f| f != len) {
            return Check::No;
        }
        if kind == usize::from(COLLECTD_ENCRYPTED) {
            // User name length, the name, a 16-byte IV, then the data.
            let user_fits = be16(b, at + 4).is_some_and(|u| 6 + u + 16 <= len);
            return if at == 0 && len == b.len() && user_fits {
                Check::Yes
            } else {
                Check::No
            };
        }
        // Values: a count, a type byte each, then 8 bytes each.
        if kind == 6 && !be16(b, at + 4).is_some_and(|n| n > 0 && 6 + 9 * n == len) {
            return Check::No;
        }
        at += len;
        parts += 1;
    }
    if parts >= 3 { Check::Yes } else { Check::No }
}

/// Whether a first message starting with `byte` may be one of these.
fn first_byte(_from_client: bool, byte: u8) -> bool {
    matches!(
        byte,
        b'0'..=b'9' | b'a'..=b'f' | b'I' | b'C' | b'<' | b'J' | b'T' | b't' | 0xf4 | b'B' | b'M'
            | 0 | 1 | 2
    )
}

/// Built: a `git clone git://host/repo.git` request (pkt-line).
const GIT_REQUEST: &str = "303032666769742d75706c6f61642d7061636b202f7265706f2e67697400686f73743d6578616d706c652e6f726700";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "openers",
    protocols: &PROTOCOLS,
    tcp: true,
    udp: true,
    ports: &[
        9418, 4222, 6556, 1099, 9987, 8767, 8611, 8612, 2190, 177, 25826,
    ],
    ports_only: false,
    first: first_byte,
    run: dissect,
    samples: &[
        Sample {
            origin: "built: git clone git://example.org/repo.git",
            tcp: true,
            server_port: 9418,
            packets: &[(true, GIT_REQUEST)],
            protocol: GIT,
        },
        Sample {
            origin: "built: a NATS server's INFO",
            tcp: true,
            server_port: 4222,
            packets: &[(
                false,
                "494e464f207b227365727665725f6964223a2241424344222c2276657273696f6e223a22322e31302e30227d0d0a",
            )],
            protocol: NATS,
        },
        Sample {
            origin: "built: a CheckMK agent's output",
            tcp: true,
            server_port: 6556,
            packets: &[(
                false,
                "3c3c3c636865636b5f6d6b3e3e3e0a56657273696f6e3a20322e312e300a",
            )],
            protocol: CHECKMK,
        },
        Sample {
            origin: "built: a Java RMI stream protocol header",
            tcp: true,
            server_port: 1099,
            packets: &[(true, "4a524d4900024b")],
            protocol: JRMI,
        },
        Sample {
            origin: "built: a TeamSpeak 3 client's init packet",
            tcp: false,
            server_port: 9987,
            packets: &[(
                true,
                "545333494e49543100658801000000030000000000005ebf5e000000000000000000",
            )],
            protocol: TEAMSPEAK,
        },
        Sample {
            origin: "built: a BJNP printer discovery request",
            tcp: false,
            server_port: 8611,
            packets: &[(true, "424a4e50010100000000000000000000")],
            protocol: BJNP,
        },
        Sample {
            origin: "built: a TiVoConnect beacon",
            tcp: false,
            server_port: 2190,
            packets: &[(
                true,
                "7469766f636f6e6e6563743d310a73776973686564756c653d310a6d616368696e653d7469766f0a",
            )],
            protocol: TIVOCONNECT,
        },
        Sample {
            origin: "built: an XDMCP Query without authentication names",
            tcp: false,
            server_port: 177,
            packets: &[(true, "00010002000100")],
            protocol: XDMCP,
        },
        Sample {
            origin: "built: a collectd datagram (host, time, plugin, type, values)",
            tcp: false,
            server_port: 25826,
            packets: &[(
                true,
                "00000009686f7374000001000c000000006553f1000002000863707500000400096c6f6164000006001800020101000000000000f03f0000000000000040",
            )],
            protocol: COLLECTD,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, HTTP_REQUEST_HEAD, RTP, STUN_REQUEST, TLS_HELLO_HEAD, flow, hex, run,
    };

    fn first(tcp: bool, port: u16, from_client: bool, payload: &[u8]) -> Verdict {
        run(dissect, &flow(tcp, 40000, port), &[(from_client, payload)]).0[0]
    }

    #[test]
    fn every_sample_alone() {
        for s in DISSECTOR.samples {
            let f = flow(s.tcp, 40000, s.server_port);
            let packets: Vec<(bool, Vec<u8>)> =
                s.packets.iter().map(|&(c, h)| (c, hex(h))).collect();
            let packets: Vec<(bool, &[u8])> =
                packets.iter().map(|(c, p)| (*c, p.as_slice())).collect();
            let (v, _) = run(dissect, &f, &packets);
            assert_eq!(v.last(), Some(&Verdict::Done(s.protocol)), "{}", s.origin);
        }
    }

    #[test]
    fn openings_split_over_packets_wait() {
        let git = hex(GIT_REQUEST);
        let f = flow(true, 40000, 9418);
        let (v, _) = run(dissect, &f, &[(true, &git[..6]), (true, &git[6..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(GIT)]);
        let (v, _) = run(dissect, &f, &[(true, b"JRMI"), (true, b"\x00\x02\x4b")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(JRMI)]);
        assert_eq!(
            first(true, 4222, true, b"CONNECT {\"verbose\":false}\r\n"),
            Verdict::Done(NATS)
        );
        assert_eq!(
            first(false, 2190, true, b"TiVoConnect=1\n"),
            Verdict::Done(TIVOCONNECT)
        );
    }

    #[test]
    fn near_misses_are_not_claimed() {
        for (tcp, port, p) in [
            (true, 9418, &b"0008git-upload-pack /x\0"[..]),
            (
                true,
                9418,
                b"002fgit-fetch-pack /repo.git\0host=example.org\0",
            ),
            (true, 4222, b"INFO server\r\n"),
            (true, 443, b"CONNECT example.org:443 HTTP/1.1\r\n"),
            (true, 1099, b"JRMI\x00\x03\x4b"),
            (true, 8767, b"\xf4\xbe\x04\x00aaaaaaaaaaaaaaaaaaaa"),
            (
                false,
                8611,
                b"BJNP\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05",
            ),
            (false, 177, b"\x00\x01\x00\x02\x00\x02\x00"),
            (false, 178, b"\x00\x01\x00\x02\x00\x01\x00"),
            (
                false,
                25826,
                b"\x00\x00\x00\x09host\x00\x00\x01\x00\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00",
            ),
        ] {
            assert_eq!(first(tcp, port, true, p), Verdict::No, "{p:?}");
        }
        for p in [
            TLS_HELLO_HEAD,
            HTTP_REQUEST_HEAD,
            DNS_QUERY,
            STUN_REQUEST,
            RTP,
        ] {
            assert_eq!(first(true, 9418, true, &hex(p)), Verdict::No, "{p}");
            assert_eq!(first(false, 177, true, &hex(p)), Verdict::No, "{p}");
        }
    }
}
