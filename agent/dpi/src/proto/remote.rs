//! Remote desktops: TeamViewer (nDPI 148) and NoMachine (nDPI 378).
//!
//! - TeamViewer, TCP: the client's stream opens with `17 24` (its
//!   protocol's magic), the server's with `11 30`; on TeamViewer's port
//!   5938 the client's magic alone tells (as nDPI). UDP: every datagram
//!   has a zero first byte and the magic at bytes 11..13; on port 5938
//!   one tells, elsewhere four (nDPI's count).
//! - NoMachine, TCP: the client's stream opens with `NXSH-<version>\n`
//!   and the server's with `NXD-<version>\n` (the TLS handshake follows);
//!   either line tells. UDP, on NoMachine's port 4000: a little-endian
//!   header with 1 at bytes 2..4, the datagram's length at 4..6 and zero
//!   at 8..10 (nDPI's rule).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::tls;

/// nDPI's TeamViewer.
const TEAMVIEWER: Protocol = Protocol(148);
/// nDPI's NoMachine.
const NOMACHINE: Protocol = Protocol(378);
/// TeamViewer's port.
const TEAMVIEWER_PORT: u16 = 5938;
/// NoMachine's port.
const NOMACHINE_PORT: u16 = 4000;
/// TeamViewer datagrams that tell off its port.
const TEAMVIEWER_UDP: u8 = 4;
/// Longest NoMachine version line.
const NX_LINE_MAX: usize = 32;
/// Packets with payload within which NoMachine's TLS handshake starts
/// (after both version lines).
const TLS_WAIT: u32 = 6;

/// Per-flow state: TeamViewer datagrams seen.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    datagrams: u8,
}

/// TeamViewer or NoMachine (over TCP, then the TLS its version lines
/// lead to).
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let port = |n: u16| pkt.flow.server_port == n || pkt.flow.client_port == n;
    if pkt.tcp {
        let verdicts = [
            teamviewer_tcp(pkt, port(TEAMVIEWER_PORT)),
            nomachine_tcp(pkt),
        ];
        if let Some(&done) = verdicts.iter().find(|v| matches!(v, Verdict::Done(_))) {
            return match done {
                Verdict::Done(NOMACHINE) => tls::inside(pkt, scratch, meta, NOMACHINE, TLS_WAIT),
                done => done,
            };
        }
        return if verdicts.contains(&Verdict::Maybe) {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    }
    let p = pkt.payload;
    if port(NOMACHINE_PORT)
        && p.len() > 9
        && p[2..4] == [1, 0]
        && usize::from(u16::from_le_bytes([p[4], p[5]])) == p.len()
        && p[8..10] == [0, 0]
    {
        return Verdict::Done(NOMACHINE);
    }
    if !(p.len() > 13 && p[0] == 0 && p[11..13] == [0x17, 0x24]) {
        return Verdict::No;
    }
    if port(TEAMVIEWER_PORT) {
        return Verdict::Done(TEAMVIEWER);
    }
    scratch.keep(|st: &mut State| {
        st.datagrams += 1;
        if st.datagrams >= TEAMVIEWER_UDP {
            Verdict::Done(TEAMVIEWER)
        } else {
            Verdict::Maybe
        }
    })
}

/// TeamViewer over TCP.
fn teamviewer_tcp(pkt: &Packet<'_>, on_port: bool) -> Verdict {
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    // Whether a stream opens with `magic`: `None` while it is too short.
    let starts = |stream: &[u8], magic: [u8; 2]| match stream {
        [] => None,
        [a] if *a == magic[0] => None,
        [a, b, ..] if [*a, *b] == magic => Some(true),
        _ => Some(false),
    };
    match (starts(client, [0x17, 0x24]), starts(server, [0x11, 0x30])) {
        (Some(false), _) | (_, Some(false)) => Verdict::No,
        (Some(true), Some(true)) => Verdict::Done(TEAMVIEWER),
        (Some(true), None) if on_port && server.is_empty() => Verdict::Done(TEAMVIEWER),
        _ => Verdict::Maybe,
    }
}

/// NoMachine's version line, `NXSH-` from the client or `NXD-` from the
/// server.
fn nomachine_tcp(pkt: &Packet<'_>) -> Verdict {
    let (stream, prefix): (&[u8], &[u8]) = if pkt.from_client {
        (pkt.client_stream, b"NXSH-")
    } else {
        (pkt.server_stream, b"NXD-")
    };
    let head = &stream[..stream.len().min(prefix.len())];
    if !prefix.starts_with(head) {
        return Verdict::No;
    }
    let version = stream.get(prefix.len()..).unwrap_or_default();
    let digits = version
        .iter()
        .take(NX_LINE_MAX)
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .count();
    match version.get(digits) {
        Some(b'\n' | b'\r') if digits > 0 && version[0].is_ascii_digit() => {
            Verdict::Done(NOMACHINE)
        }
        None if digits < NX_LINE_MAX => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "remote",
    protocols: &[TEAMVIEWER, NOMACHINE],
    tcp: true,
    udp: true,
    ports: &[TEAMVIEWER_PORT, NOMACHINE_PORT],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "teamviewer.pcap frames 4, 12 (first 24 bytes)",
            tcp: true,
            server_port: TEAMVIEWER_PORT,
            packets: &[
                (true, "17240a200000000000000000004800800001000000148000"),
                (false, "113036001800000001000000000000001b00000018000000"),
            ],
            protocol: TEAMVIEWER,
        },
        Sample {
            origin: "nomachine.pcapng frames 4, 6",
            tcp: true,
            server_port: NOMACHINE_PORT,
            packets: &[
                (true, "4e5853482d382e31302e310a"),
                (false, "4e58442d382e31302e310a"),
            ],
            protocol: NOMACHINE,
        },
        Sample {
            origin: "nomachine.pcapng frame 50",
            tcp: false,
            server_port: NOMACHINE_PORT,
            packets: &[(true, "010001000a0000000000")],
            protocol: NOMACHINE,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, HTTP_REQUEST_HEAD, RTP, STUN_REQUEST, TLS_HELLO_HEAD, flow, hex, run,
    };

    /// teamviewer.pcap frame 238 (first 40 bytes): a datagram off
    /// TeamViewer's port.
    const TV_UDP: &str =
        "000000000000000000000317244750000500000000000000000000003933 2e34372e3232342e";

    #[test]
    fn teamviewer_tcp_both_directions() {
        let (c, s) = (
            hex("17240a200000000000000000004800800001000000148000"),
            hex("113036001800000001000000000000001b00000018000000"),
        );
        let f = flow(true, 35732, 5938);
        let (v, meta) = run(dissect, &f, &[(true, &c)]);
        assert_eq!(v, [Verdict::Done(TEAMVIEWER)]);
        assert_eq!(meta, Metadata::default());
        let f = flow(true, 35732, 443);
        let (v, _) = run(dissect, &f, &[(true, &c), (false, &s)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(TEAMVIEWER)]);
        let (v, _) = run(dissect, &f, &[(true, &c), (false, &hex(TLS_HELLO_HEAD))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn teamviewer_udp_counts_off_its_port() {
        let d = hex(TV_UDP);
        let f = flow(false, 34417, 36037);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &d), (false, &d), (false, &d), (false, &d)],
        );
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Maybe,
                Verdict::Done(TEAMVIEWER)
            ]
        );
        let (v, _) = run(dissect, &flow(false, 34417, 5938), &[(true, &d)]);
        assert_eq!(v, [Verdict::Done(TEAMVIEWER)]);
        let (v, _) = run(dissect, &f, &[(true, &d), (false, &hex(RTP))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn nomachine() {
        let f = flow(true, 48084, 4000);
        let (v, _) = run(dissect, &f, &[(true, b"NXSH-8.10.1\n")]);
        assert_eq!(v, [Verdict::Found(NOMACHINE)]);
        let (v, _) = run(dissect, &f, &[(true, b"NXSH-8."), (true, b"10.1\n")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(NOMACHINE)]);
        let (v, _) = run(dissect, &f, &[(false, b"NXD-8.10.1\n")]);
        assert_eq!(v, [Verdict::Found(NOMACHINE)]);
        // The TLS handshake after the version lines (nomachine.pcapng
        // frames 4, 6; the hello is tls_alert.pcap frame 4).
        let hello = hex(include_str!("tls/testdata/tls_alert-4.hex"));
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, b"NXSH-8.10.1\n"),
                (false, b"NXD-8.10.1\n"),
                (true, &hello),
            ],
        );
        assert_eq!(v, [Verdict::Found(NOMACHINE); 3]);
        assert_eq!(meta.host_server_name, "www.google-analytics.com");
        let (v, _) = run(dissect, &f, &[(true, b"NXSH-x\n")]);
        assert_eq!(v, [Verdict::No]);
        let f = flow(false, 56019, 4000);
        let (v, _) = run(dissect, &f, &[(false, &hex("020001000a0000000000"))]);
        assert_eq!(v, [Verdict::Done(NOMACHINE)]);
        let f = flow(false, 56019, 4001);
        let (v, _) = run(dissect, &f, &[(false, &hex("020001000a0000000000"))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn not_other_protocols() {
        for tcp in [true, false] {
            for port in [4000, 5938, 40000] {
                let f = flow(tcp, 40001, port);
                for p in [
                    DNS_QUERY,
                    STUN_REQUEST,
                    TLS_HELLO_HEAD,
                    HTTP_REQUEST_HEAD,
                    RTP,
                ] {
                    let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
                    assert_eq!(v, [Verdict::No], "{tcp} {port} {p}");
                }
            }
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(true, 40000, 4000);
        let line = b"NXSH-8.10.1\n";
        for n in 1..line.len() {
            let (v, _) = run(dissect, &f, &[(true, &line[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
        let d = hex(TV_UDP);
        for n in 0..d.len() {
            run(dissect, &flow(false, 40000, 5938), &[(true, &d[..n])]);
        }
    }
}
