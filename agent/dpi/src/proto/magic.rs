//! Protocols told by how their first message opens: a fixed magic or
//! banner, then a few fields checked for consistency. One dissector reads
//! the first message of the side that spoke first (TCP: its stream; UDP:
//! the first datagram) against each opening in [`OPENINGS`].
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

/// One opening: the protocol, whether it may come over UDP, the check.
struct Opening {
    protocol: Protocol,
    udp: bool,
    check: fn(&[u8]) -> Check,
}

/// The protocols of [`OPENINGS`].
const OPENING_PROTOCOLS: [Protocol; 9] = [
    Protocol(248),
    MUNIN,
    Protocol(309),
    Protocol(166),
    Protocol(230),
    Protocol(168),
    Protocol(394),
    Protocol(330),
    Protocol(89),
];

/// Every opening, checked in order.
const OPENINGS: &[Opening] = &[
    Opening {
        protocol: Protocol(248),
        udp: false,
        check: zabbix,
    },
    Opening {
        protocol: MUNIN,
        udp: false,
        check: munin,
    },
    Opening {
        protocol: Protocol(309),
        udp: false,
        check: kismet,
    },
    Opening {
        protocol: Protocol(166),
        udp: false,
        check: rsync,
    },
    Opening {
        protocol: Protocol(230),
        udp: false,
        check: fix,
    },
    Opening {
        protocol: Protocol(168),
        udp: true,
        check: giop,
    },
    Opening {
        protocol: Protocol(394),
        udp: false,
        check: gearman,
    },
    Opening {
        protocol: Protocol(330),
        udp: false,
        check: elasticsearch,
    },
    Opening {
        protocol: Protocol(89),
        udp: false,
        check: rfb,
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
    for o in OPENINGS.iter().filter(|o| pkt.tcp || o.udp) {
        match (o.check)(first) {
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

/// [`Dissector::first`]: the first byte of one of the openings.
fn magic_first(_from_client: bool, byte: u8) -> bool {
    b"Z#*@8GMER\0".contains(&byte)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "magic",
    protocols: &OPENING_PROTOCOLS,
    tcp: true,
    udp: true,
    ports: &[10050, 10051, 4949, 2501, 873, 4730, 9300, 5900, 5901],
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
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

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
}
