//! MySQL (and MariaDB) client/server protocol.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::tls;

/// MySQL.
const MYSQL: Protocol = Protocol(20);

/// Longest server version text read.
const MAX_VERSION: usize = 64;
/// `CLIENT_PROTOCOL_41` capability.
const PROTOCOL_41: u32 = 0x200;
/// `CLIENT_SSL` capability.
const CLIENT_SSL: u32 = 0x800;
/// Packets with payload within which the client answers the greeting
/// and, after an SSL request, TLS starts.
const TLS_WAIT: u32 = 6;

/// MySQL (`Protocol(20)`): the server's greeting (packet 0, protocol 10,
/// a NUL-terminated version starting with a digit, connection id, salt,
/// NUL filler), or the client's handshake response or SSL request
/// (packet 1, `CLIENT_PROTOCOL_41`, a character set, zero filler). Then
/// the client's answer to the greeting: an SSL request hands what
/// follows to TLS; a handshake response ends detection.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match (greeting(pkt.server_stream), response(pkt.client_stream)) {
        (Some(true), _) | (_, Some(true)) => match ssl_request(pkt.client_stream) {
            Some(true) => tls::inside(pkt, scratch, meta, MYSQL, TLS_WAIT),
            Some(false) => Verdict::Done(MYSQL),
            None if pkt.packets() >= TLS_WAIT => Verdict::Done(MYSQL),
            None => Verdict::Found(MYSQL),
        },
        (Some(false), Some(false)) => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// Whether the client's first packet is an SSL request (a 32-byte body
/// whose capabilities ask for SSL), after which TLS starts: `None` while
/// cut short.
fn ssl_request(stream: &[u8]) -> Option<bool> {
    let (&[l0, l1, l2, _], body) = stream.split_first_chunk::<4>()?;
    if [l0, l1, l2] != [32, 0, 0] {
        return Some(false);
    }
    let caps = body.first_chunk::<4>()?;
    Some(u32::from_le_bytes(*caps) & CLIENT_SSL != 0)
}

/// The body of the packet starting `stream` if its sequence number is
/// `seq` and its length is in `len`: `None` while the header is cut.
fn packet(stream: &[u8], seq: u8, len: std::ops::RangeInclusive<usize>) -> Option<Option<&[u8]>> {
    let (&[l0, l1, l2, s], body) = stream.split_first_chunk::<4>()?;
    let n = usize::from(l0) | usize::from(l1) << 8 | usize::from(l2) << 16;
    Some((s == seq && len.contains(&n)).then_some(body))
}

/// Whether `stream` starts with a server greeting (`None`: cut short).
fn greeting(stream: &[u8]) -> Option<bool> {
    if stream.is_empty() {
        return None;
    }
    let Some(body) = packet(stream, 0, 20..=1024)? else {
        return Some(false);
    };
    let (&protocol, rest) = body.split_first()?;
    if protocol != 10 {
        return Some(false);
    }
    let printable = |b: &u8| (0x20..0x7f).contains(b);
    let Some(nul) = rest.iter().take(MAX_VERSION).position(|&b| b == 0) else {
        let cut = rest.len() < MAX_VERSION && rest.iter().all(printable);
        return (!cut).then_some(false);
    };
    let version = rest.get(..nul)?;
    let version_ok =
        version.first().is_some_and(u8::is_ascii_digit) && version.iter().all(printable);
    // Connection id (4), salt (8), filler (0).
    let filler = *rest.get(nul + 13)?;
    Some(version_ok && filler == 0)
}

/// Whether `stream` starts with a handshake response (`None`: cut short).
fn response(stream: &[u8]) -> Option<bool> {
    if stream.is_empty() {
        return None;
    }
    let Some(body) = packet(stream, 1, 32..=65_535)? else {
        return Some(false);
    };
    let fixed = body.first_chunk::<32>()?;
    let caps = u32::from_le_bytes([fixed[0], fixed[1], fixed[2], fixed[3]]);
    // Capabilities, max packet size, character set, then 23 zero bytes
    // (MariaDB puts its own capabilities in the last 4).
    Some(caps & PROTOCOL_41 != 0 && fixed[8] != 0 && fixed[9..28].iter().all(|&b| b == 0))
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mysql",
    protocols: &[Protocol(20)],
    tcp: true,
    udp: false,
    ports: &[3306],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "mysql.pcapng frames 4,6,8,9",
        tcp: true,
        server_port: 3306,
        packets: &[
            (
                false,
                "6a0000000a352e352e352d31302e362e31322d4d6172696144422d307562756e\
             7475302e32322e30342e3100200000004767503d212b544800fef72d0200ff81\
             150000000000001d0000004976374f652f59526d52313e006d7973716c5f6e61\
             746976655f70617373776f726400",
            ),
            (
                true,
                "d600000184a6ff20000000012100000000000000000000000000000000000000\
             1d00000061646d696e0014e38721fbab8305d547465b19e40b1ce58bdf1b8f6d\
             7973716c5f6e61746976655f70617373776f72640084035f6f73054c696e7578\
             0c5f636c69656e745f6e616d650a6c69626d617269616462045f706964063733\
             373831320f5f636c69656e745f76657273696f6e05332e332e34095f706c6174\
             666f726d067838365f36340c70726f6772616d5f6e616d65056d7973716c0c5f\
             7365727665725f686f73740e3139322e3136382e38382e323031",
            ),
            (false, "0700000200000002000000"),
            (
                true,
                "210000000373656c65637420404076657273696f6e5f636f6d6d656e74206c69\
             6d69742031",
            ),
        ],
        protocol: Protocol(20),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// mysql.pcapng frame 4: a MariaDB greeting.
    const GREETING: &str = "6a0000000a352e352e352d31302e362e31322d4d6172696144422d307562756e7475302e32322e30342e3100200000004767503d212b544800fef72d0200ff81150000000000001d0000004976374f652f59526d52313e006d7973716c5f6e61746976655f70617373776f726400";
    /// mysql.pcapng frame 19: a MySQL 8 greeting.
    const GREETING_8: &str = "4a0000000a382e302e3336000c00000031747567785f235600ffffff0200ffdf150000000000000000000070223e346d0f367c31226a7c0063616368696e675f736861325f70617373776f726400";
    /// mysql.pcapng frame 21: an SSL request.
    const SSL_REQUEST: &str =
        "2000000185aeff1900000001ff0000000000000000000000000000000000000000000000";

    #[test]
    fn greetings_and_responses() {
        let f = flow(true, 36272, 3306);
        for (from_client, bytes) in [(false, GREETING), (false, GREETING_8), (true, SSL_REQUEST)] {
            let (v, meta) = run(dissect, &f, &[(from_client, &hex(bytes))]);
            assert_eq!(v, [Verdict::Found(MYSQL)]);
            assert_eq!(meta, Metadata::default());
        }
        // mysql.pcapng frame 6: MariaDB's handshake response, first bytes.
        let response = hex(
            "d600000184a6ff200000000121000000000000000000000000000000000000001d00000061646d696e00",
        );
        assert_eq!(super::response(&response), Some(true));
        assert_eq!(ssl_request(&response), Some(false));
        // The greeting answered by a handshake response: done.
        let (v, _) = run(dissect, &f, &[(false, &hex(GREETING)), (true, &response)]);
        assert_eq!(v, [Verdict::Found(MYSQL), Verdict::Done(MYSQL)]);
    }

    #[test]
    fn ssl_request_hands_the_rest_to_tls() {
        // mysql.pcapng frames 19 and 21, then a ClientHello (tls_alert.pcap
        // frame 4).
        let f = flow(true, 36272, 3306);
        let hello = hex(include_str!("tls/testdata/tls_alert-4.hex"));
        let packets = [
            (false, hex(GREETING_8)),
            (true, hex(SSL_REQUEST)),
            (true, hello),
        ];
        let packets: Vec<(bool, &[u8])> = packets.iter().map(|(c, p)| (*c, &p[..])).collect();
        let (v, meta) = run(dissect, &f, &packets);
        assert_eq!(v, [Verdict::Found(MYSQL); 3]);
        assert_eq!(
            meta.ssl.unwrap().client_ja4,
            "t10d0909h2_61c4dbd01224_cc731f12afbb"
        );
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 3306);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), a
        // PostgreSQL startup (pgsql.pcap frame 7), an SSH banner (ssh.pcap
        // frame 4).
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
            hex("000000260003000075736572006f727978006461746162617365006d61696c73746f72650000"),
            b"SSH-2.0-OpenSSH_5.3\r\n".to_vec(),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes), (false, &bytes)]);
            assert_eq!(v[1], Verdict::No);
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let g = hex(GREETING);
        for n in 0..g.len() {
            let (v, _) = run(dissect, &flow(true, 1, 3306), &[(false, &g[..n])]);
            assert_eq!(
                v,
                [if n < 57 {
                    Verdict::Maybe
                } else {
                    Verdict::Found(MYSQL)
                }],
                "{n}"
            );
        }
        let r = hex(SSL_REQUEST);
        for n in 0..r.len() {
            let (v, _) = run(dissect, &flow(true, 1, 3306), &[(true, &r[..n])]);
            assert_eq!(v, [Verdict::Maybe]);
        }
    }
}
