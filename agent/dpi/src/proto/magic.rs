//! Protocols told by how their first message opens: a fixed magic or
//! banner, then a few fields checked for consistency. One dissector reads
//! the first message of the side that spoke first (TCP: its stream; UDP:
//! the first datagram) against each opening in [`OPENINGS`]; some are
//! only taken on their own port.
//!
//! - Zabbix: `ZBXD`, flags (bit 0 set: the protocol; 2: compressed; 4:
//!   large packet), data and reserved lengths.
//! - Munin: the node's banner `# munin node at <host>\n`; the host is the
//!   flow's host name, as nDPI takes it.
//! - Kismet: the server's `*KISMET: ` line.
//! - RSYNC: the daemon greeting `@RSYNCD: <version>`.
//! - FIX: `8=FIX.4.x` or `8=FIXT.1.1`, SOH, `9=<length>`, SOH, `35=`.
//! - CORBA GIOP (TCP and UDP): `GIOP`, version 1.0 to 1.3, flags, message
//!   type 0 to 7, size (byte order from the flags); or MIOP (UDP
//!   multicast), `MIOP` and version 1.0.
//! - Gearman: `\0REQ` or `\0RES`, packet type 1 to 42, size.
//! - Elasticsearch transport: `ES`, size (-1: a ping), request id,
//!   status flags, version.
//! - VNC (RFB): `RFB xxx.yyy\n`, the 12-byte version (server first, or
//!   the viewer first when it is the one listening).
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

/// One opening: the protocol, the transports it comes over, the check
/// (of the first message and the flow's server port, for the openings
/// that need their own port).
struct Opening {
    protocol: Protocol,
    tcp: bool,
    udp: bool,
    check: fn(&[u8], u16) -> Check,
}

/// The protocols of [`OPENINGS`].
const OPENING_PROTOCOLS: [Protocol; 18] = [
    Protocol(248),
    MUNIN,
    Protocol(309),
    Protocol(166),
    Protocol(230),
    Protocol(168),
    Protocol(394),
    Protocol(330),
    Protocol(89),
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

/// Every opening, checked in order.
const OPENINGS: &[Opening] = &[
    Opening {
        protocol: Protocol(248),
        tcp: true,
        udp: false,
        check: |b, _| zabbix(b),
    },
    Opening {
        protocol: MUNIN,
        tcp: true,
        udp: false,
        check: |b, _| munin(b),
    },
    Opening {
        protocol: Protocol(309),
        tcp: true,
        udp: false,
        check: |b, _| kismet(b),
    },
    Opening {
        protocol: Protocol(166),
        tcp: true,
        udp: false,
        check: |b, _| rsync(b),
    },
    Opening {
        protocol: Protocol(230),
        tcp: true,
        udp: false,
        check: |b, _| fix(b),
    },
    Opening {
        protocol: Protocol(168),
        tcp: true,
        udp: true,
        check: |b, _| giop(b),
    },
    Opening {
        protocol: Protocol(394),
        tcp: true,
        udp: false,
        check: |b, _| gearman(b),
    },
    Opening {
        protocol: Protocol(330),
        tcp: true,
        udp: false,
        check: |b, _| elasticsearch(b),
    },
    Opening {
        protocol: Protocol(89),
        tcp: true,
        udp: false,
        check: |b, _| rfb(b),
    },
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

/// The first opening of [`OPENINGS`] the first message has; `Maybe`
/// while it is a prefix of one; `No` once it cannot be any.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let first = if !pkt.tcp {
        if pkt.seen != [0, 0] {
            return Verdict::No;
        }
        pkt.payload
    } else {
        pkt.first_stream()
    };
    let mut more = false;
    let port = pkt.flow.server_port;
    for o in OPENINGS
        .iter()
        .filter(|o| if pkt.tcp { o.tcp } else { o.udp })
    {
        match (o.check)(first, port) {
            Check::Yes => {
                if let Some(host) = munin_host(first).filter(|_| o.protocol == MUNIN) {
                    meta.host_server_name = host.to_owned();
                }
                return Verdict::Done(o.protocol);
            }
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

/// `then` on the bytes after `magic`, if `bytes` starts with it.
fn after(bytes: &[u8], magic: &[u8], then: impl FnOnce(&[u8]) -> Check) -> Check {
    match prefix(bytes, magic) {
        Check::Yes => then(&bytes[magic.len()..]),
        other => other,
    }
}

/// Big-endian `u32` at `at`.
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn zabbix(b: &[u8]) -> Check {
    after(b, b"ZBXD", |rest| match rest.first() {
        None => Check::More,
        Some(&flags) if flags & 1 == 1 && flags <= 7 => Check::Yes,
        Some(_) => Check::No,
    })
}

/// Munin.
const MUNIN: Protocol = Protocol(329);

/// The start of a Munin node's banner.
const MUNIN_BANNER: &[u8] = b"# munin node at ";

/// `More` until the banner's line ends (or is longer than a host name).
fn munin(b: &[u8]) -> Check {
    after(b, MUNIN_BANNER, |rest| match memchr::memchr(b'\n', rest) {
        None if rest.len() <= 253 => Check::More,
        _ => Check::Yes,
    })
}

/// The host name a Munin banner gives.
fn munin_host(first: &[u8]) -> Option<&str> {
    let rest = first.strip_prefix(MUNIN_BANNER)?;
    let line = rest.get(..memchr::memchr(b'\n', rest)?)?;
    let host = std::str::from_utf8(line).ok()?.trim();
    (!host.is_empty() && host.len() <= 253 && host.bytes().all(|c| c.is_ascii_graphic()))
        .then_some(host)
}

fn kismet(b: &[u8]) -> Check {
    prefix(b, b"*KISMET: ")
}

fn rsync(b: &[u8]) -> Check {
    after(b, b"@RSYNCD: ", |rest| match rest.first() {
        None => Check::More,
        Some(d) if d.is_ascii_digit() => Check::Yes,
        Some(_) => Check::No,
    })
}

fn fix(b: &[u8]) -> Check {
    after(b, b"8=FIX", |rest| {
        // Version up to SOH, then the body length.
        let Some(soh) = rest.iter().take(8).position(|&b| b == 1) else {
            return if rest.len() < 8 && rest.iter().all(|&b| b.is_ascii_graphic()) {
                Check::More
            } else {
                Check::No
            };
        };
        let version_ok = matches!(
            &rest[..soh],
            b"T.1.1" | b".4.0" | b".4.1" | b".4.2" | b".4.3"
        ) || matches!(&rest[..soh], b".4.4" | b".5.0");
        if !version_ok {
            return Check::No;
        }
        after(&rest[soh + 1..], b"9=", |len| {
            let digits = len.iter().take_while(|b| b.is_ascii_digit()).count();
            match len.get(digits) {
                None if digits < 8 => Check::More,
                Some(1) if (1..8).contains(&digits) => prefix(&len[digits + 1..], b"35="),
                _ => Check::No,
            }
        })
    })
}

fn giop(b: &[u8]) -> Check {
    // MIOP (multicast GIOP): its magic, then version 1.0.
    if let Check::Yes | Check::More = prefix(b, b"MIOP") {
        return after(b, b"MIOP", |rest| match rest.first() {
            None => Check::More,
            Some(0x10) => Check::Yes,
            Some(_) => Check::No,
        });
    }
    after(b, b"GIOP", |rest| {
        let Some(&[major, minor, flags, kind, ref size @ ..]) = rest.get(..8) else {
            return match rest {
                [] => Check::More,
                [1] | [1, 0..=3] => Check::More,
                [1, 0..=3, f, ..] if *f <= 3 => Check::More,
                _ => Check::No,
            };
        };
        let size = if flags & 1 == 1 {
            u32::from_le_bytes([size[0], size[1], size[2], size[3]])
        } else {
            u32::from_be_bytes([size[0], size[1], size[2], size[3]])
        };
        let ok = major == 1 && minor <= 3 && flags <= 3 && kind <= 7 && size <= 1 << 24;
        if ok { Check::Yes } else { Check::No }
    })
}

fn gearman(b: &[u8]) -> Check {
    let magic = match prefix(b, b"\0REQ") {
        Check::No => prefix(b, b"\0RES"),
        other => other,
    };
    match (magic, be32(b, 4), be32(b, 8)) {
        (Check::Yes, Some(kind), Some(size)) => {
            if (1..=42).contains(&kind) && size <= 1 << 24 {
                Check::Yes
            } else {
                Check::No
            }
        }
        (Check::Yes, Some(kind), None) if !(1..=42).contains(&kind) => Check::No,
        (Check::Yes, ..) => Check::More,
        (other, ..) => other,
    }
}

fn elasticsearch(b: &[u8]) -> Check {
    after(b, b"ES", |rest| {
        let Some(size) = be32(rest, 0) else {
            return Check::More;
        };
        if size == u32::MAX {
            return Check::Yes; // a ping
        }
        // Request id (8), status (1), version (4).
        if !(13..=100 << 20).contains(&size) {
            return Check::No;
        }
        match rest.get(12) {
            None => Check::More,
            Some(status) if status & 0xc0 == 0 && rest.len() >= 17 => Check::Yes,
            Some(status) if status & 0xc0 == 0 => Check::More,
            Some(_) => Check::No,
        }
    })
}

fn rfb(b: &[u8]) -> Check {
    const SHAPE: &[u8] = b"RFB 000.000\n";
    for (i, (&got, &want)) in b.iter().zip(SHAPE).enumerate() {
        let ok = if want == b'0' {
            got.is_ascii_digit()
        } else {
            got == want
        };
        if !ok {
            return Check::No;
        }
        if i + 1 == SHAPE.len() {
            return Check::Yes;
        }
    }
    Check::More
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

/// Built: a `git clone git://host/repo.git` request (pkt-line).
const GIT_REQUEST: &str = "303032666769742d75706c6f61642d7061636b202f7265706f2e67697400686f73743d6578616d706c652e6f726700";

/// [`Dissector::first`]: the first byte of one of the openings.
fn magic_first(_from_client: bool, byte: u8) -> bool {
    matches!(
        byte,
        b'0'..=b'9' | b'a'..=b'f' | b'Z' | b'#' | b'*' | b'@' | b'G' | b'M' | b'E' | b'R' | b'I'
            | b'C' | b'<' | b'J' | b'T' | b't' | b'B' | 0xf4 | 0 | 1 | 2
    )
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "magic",
    protocols: &OPENING_PROTOCOLS,
    tcp: true,
    udp: true,
    ports: &[
        10050, 10051, 4949, 2501, 873, 4730, 9300, 5900, 5901, 9418, 4222, 6556, 1099, 9987, 8767,
        8611, 8612, 2190, 177, 25826,
    ],
    ports_only: false,
    first: magic_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "munin.pcap frame 4",
            tcp: true,
            server_port: 4949,
            packets: &[(
                false,
                "23206d756e696e206e6f6465206174206b6962616e612d6e6f646530310a",
            )],
            protocol: Protocol(329),
        },
        Sample {
            origin: "kismet.pcap frame 4 (first 24 bytes)",
            tcp: true,
            server_port: 2501,
            packets: &[(false, "2a4b49534d45543a20302e302e3020313134343030343338")],
            protocol: Protocol(309),
        },
        Sample {
            origin: "rsync.pcap frame 4",
            tcp: true,
            server_port: 873,
            packets: &[(true, "405253594e43443a2033302e300a")],
            protocol: Protocol(166),
        },
        Sample {
            origin: "fix2.pcap frame 8 (first 30 bytes)",
            tcp: true,
            server_port: 1024,
            packets: &[(
                true,
                "383d464958542e312e3101393d36320133353d410134393d396f58775678",
            )],
            protocol: Protocol(230),
        },
        Sample {
            origin: "corba.pcap frame 4 (first 16 bytes)",
            tcp: true,
            server_port: 56899,
            packets: &[(true, "47494f5001020000000000d800000000")],
            protocol: Protocol(168),
        },
        Sample {
            origin: "corba.pcap frame 19 (MIOP, first 40 bytes)",
            tcp: false,
            server_port: 15984,
            packets: &[(
                true,
                "4d494f501003e40000000000010000000c00000000000000000000000000000047494f5001020100",
            )],
            protocol: Protocol(168),
        },
        Sample {
            origin: "gearman.pcap frame 4",
            tcp: true,
            server_port: 4730,
            packets: &[(true, "0052455100000001000000027763")],
            protocol: Protocol(394),
        },
        Sample {
            origin: "elasticsearch.pcap frame 4",
            tcp: true,
            server_port: 9300,
            packets: &[(
                true,
                "455300000034000000000000000108005cc66300000106782d7061636b16696e7465726e616c3a7463702f68616e647368616b650004cbf6ae03",
            )],
            protocol: Protocol(330),
        },
        Sample {
            origin: "vnc.pcap frames 4,5",
            tcp: true,
            server_port: 6900,
            packets: &[
                (false, "524642203030342e3030310a"),
                (true, "524642203030342e3030310a"),
            ],
            protocol: Protocol(89),
        },
        Sample {
            origin: "synthetic: a Zabbix agent request header",
            tcp: true,
            server_port: 10051,
            packets: &[(true, "5a4258440105000000000000007b7d2020")],
            protocol: Protocol(248),
        },
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

    fn first(tcp: bool, from_client: bool, payload: &[u8]) -> Verdict {
        let f = flow(tcp, 40000, 5000);
        run(dissect, &f, &[(from_client, payload)]).0[0]
    }

    #[test]
    fn a_munin_banner_names_the_host_once_its_line_ends() {
        let f = flow(true, 40000, 4949);
        let banner = b"# munin node at kibana-node01\n";
        let (v, meta) = run(
            dissect,
            &f,
            &[(false, &banner[..20]), (false, &banner[20..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MUNIN)]);
        assert_eq!(meta.host_server_name, "kibana-node01");
        let (v, meta) = run(dissect, &f, &[(false, b"# munin node at \n")]);
        assert_eq!(v, [Verdict::Done(MUNIN)]);
        assert_eq!(meta.host_server_name, "");
    }

    #[test]
    fn openings_from_the_corpus() {
        let cases: &[(bool, bool, &str, u16)] = &[
            // zabbix (synthetic, Zabbix 6 agent active check request).
            (true, true, "5a4258440105000000000000007b7d2020", 248),
            // munin.pcap frame 4.
            (
                true,
                false,
                "23206d756e696e206e6f6465206174206b6962616e612d6e6f646530310a",
                329,
            ),
            // kismet.pcap frame 4, first 24 bytes.
            (
                true,
                false,
                "2a4b49534d45543a20302e302e3020313134343030343338",
                309,
            ),
            // rsync.pcap frame 4.
            (true, true, "405253594e43443a2033302e300a", 166),
            // fix2.pcap frame 8, first 32 bytes.
            (
                true,
                true,
                "383d464958542e312e3101393d36320133353d410134393d396f58775678",
                230,
            ),
            // corba.pcap frame 4, first 16 bytes.
            (true, true, "47494f5001020000000000d800000000", 168),
            // gearman.pcap frame 4.
            (true, true, "0052455100000001000000027763", 394),
            // elasticsearch.pcap frame 6 (a response, the server side
            // only captured).
            (
                true,
                false,
                "455300000013000000000000000109005cc6630000cbf6ae03",
                330,
            ),
            // vnc.pcap frame 4.
            (true, false, "524642203030342e3030310a", 89),
        ];
        for &(tcp, from_client, payload, id) in cases {
            assert_eq!(
                first(tcp, from_client, &hex(payload)),
                Verdict::Done(Protocol(id)),
                "{payload}"
            );
        }
    }

    #[test]
    fn giop_over_udp() {
        // corba.pcap frame 19: MIOP carrying GIOP (first 40 bytes).
        let p =
            hex("4d494f501003e40000000000010000000c00000000000000000000000000000047494f5001020100");
        assert_eq!(first(false, true, &p), Verdict::Done(Protocol(168)));
        // Other openings are TCP only.
        assert_eq!(
            first(false, true, &hex("405253594e43443a2033302e300a")),
            Verdict::No
        );
    }

    #[test]
    fn prefixes_wait_and_split_openings_are_found() {
        let vnc = hex("524642203030332e3030380a");
        for n in 1..vnc.len() {
            assert_eq!(first(true, false, &vnc[..n]), Verdict::Maybe, "{n}");
        }
        let f = flow(true, 40000, 5900);
        let (v, _) = run(dissect, &f, &[(false, &vnc[..5]), (false, &vnc[5..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(Protocol(89))]);
    }

    #[test]
    fn near_misses_are_not_claimed() {
        for p in [
            &b"ZBXD\x00\x05\x00\x00\x00"[..],
            b"# munin mode at x\n",
            b"@RSYNCD: x",
            b"8=FIX.9.9\x019=12\x01",
            b"GIOP\x02\x00",
            b"\0REQ\0\0\0\x63\0\0\0\0",
            b"ES\0\0\0\x02",
            b"RFB 3.8\n",
            b"GET / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(first(true, true, p), Verdict::No, "{p:?}");
        }
        for p in [
            crate::dissect::testing::TLS_HELLO_HEAD,
            crate::dissect::testing::DNS_QUERY,
        ] {
            assert_eq!(first(true, true, &hex(p)), Verdict::No);
            assert_eq!(first(false, true, &hex(p)), Verdict::No);
        }
    }

    fn first_on(tcp: bool, port: u16, from_client: bool, payload: &[u8]) -> Verdict {
        run(dissect, &flow(tcp, 40000, port), &[(from_client, payload)]).0[0]
    }

    #[test]
    fn every_sample_alone_is_claimed() {
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
            first_on(true, 4222, true, b"CONNECT {\"verbose\":false}\r\n"),
            Verdict::Done(NATS)
        );
        assert_eq!(
            first_on(false, 2190, true, b"TiVoConnect=1\n"),
            Verdict::Done(TIVOCONNECT)
        );
    }

    #[test]
    fn near_misses_of_the_port_bound_and_other_openings_are_not_claimed() {
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
            assert_eq!(first_on(tcp, port, true, p), Verdict::No, "{p:?}");
        }
        for p in [
            TLS_HELLO_HEAD,
            HTTP_REQUEST_HEAD,
            DNS_QUERY,
            STUN_REQUEST,
            RTP,
        ] {
            assert_eq!(first_on(true, 9418, true, &hex(p)), Verdict::No, "{p}");
            assert_eq!(first_on(false, 177, true, &hex(p)), Verdict::No, "{p}");
        }
    }
}
