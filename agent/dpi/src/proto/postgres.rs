//! PostgreSQL frontend/backend protocol.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::tls;

/// PostgreSQL.
const POSTGRES: Protocol = Protocol(19);

/// Request codes of the first message.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
const CANCEL_REQUEST: u32 = 80_877_102;
/// Packets with payload within which TLS starts after an accepted
/// SSLRequest.
const TLS_WAIT: u32 = 6;
/// Longest startup message read.
const MAX_STARTUP: usize = 10_000;
/// Parameters read at most.
const MAX_PARAMS: usize = 64;

/// The client's first message.
enum Request {
    /// Cut short.
    More,
    /// Not PostgreSQL.
    Bad,
    /// SSLRequest or GSSENCRequest: the server answers with one byte.
    Encrypt,
    /// A StartupMessage (protocol 3.x) with a `user`, or a CancelRequest.
    Startup,
}

/// PostgreSQL (`Protocol(19)`): the client's StartupMessage (length,
/// protocol 3.x, `key\0value\0` pairs with `user`, a final NUL) or
/// CancelRequest; or its SSLRequest / GSSENCRequest answered by the
/// server's single `S`, `N` or `G`. An SSLRequest answered `S` hands
/// what follows to TLS; otherwise `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match request(pkt.client_stream) {
        Request::Startup => Verdict::Done(POSTGRES),
        Request::Encrypt => match pkt.server_stream.first() {
            None => Verdict::Maybe,
            Some(b'S') if pkt.client_stream.get(4..8) == Some(&SSL_REQUEST.to_be_bytes()) => {
                tls::inside(pkt, scratch, meta, POSTGRES, TLS_WAIT)
            }
            Some(b'S' | b'N' | b'G') => Verdict::Done(POSTGRES),
            Some(_) => Verdict::No,
        },
        Request::More => Verdict::Maybe,
        Request::Bad => Verdict::No,
    }
}

/// Reads the client's first message.
fn request(stream: &[u8]) -> Request {
    let Some((len, rest)) = stream.split_first_chunk::<4>() else {
        // Lengths start with zero bytes.
        return if stream.iter().all(|&b| b == 0) {
            Request::More
        } else {
            Request::Bad
        };
    };
    let len = u32::from_be_bytes(*len) as usize;
    let Some((code, _)) = rest.split_first_chunk::<4>() else {
        return if (8..=MAX_STARTUP).contains(&len) {
            Request::More
        } else {
            Request::Bad
        };
    };
    match (u32::from_be_bytes(*code), len) {
        (SSL_REQUEST | GSSENC_REQUEST, 8) => Request::Encrypt,
        (CANCEL_REQUEST, 16) => Request::Startup,
        (0x0003_0000..=0x0003_00ff, 9..=MAX_STARTUP) => match stream.get(8..len) {
            None => Request::More,
            Some(params) if startup_params(params) => Request::Startup,
            Some(_) => Request::Bad,
        },
        _ => Request::Bad,
    }
}

/// True for `key\0value\0` pairs of printable text, one of them `user`,
/// then a final NUL that ends `params`.
fn startup_params(params: &[u8]) -> bool {
    let mut fields = params.split(|&b| b == 0);
    let mut user = false;
    for _ in 0..MAX_PARAMS {
        let Some(key) = fields.next() else {
            return false;
        };
        if key.is_empty() {
            // The final NUL, and nothing after it.
            return user && fields.next() == Some(&[][..]) && fields.next().is_none();
        }
        let Some(value) = fields.next() else {
            return false;
        };
        let text = |s: &[u8]| s.iter().all(|&b| b >= 0x20 && b != 0x7f);
        if !text(key) || !text(value) {
            return false;
        }
        user |= key == b"user";
    }
    false
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "postgres",
    protocols: &[Protocol(19)],
    tcp: true,
    udp: false,
    ports: &[5432],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "pgsql.pcap frames 7,11,15,20",
        tcp: true,
        server_port: 5432,
        packets: &[
            (
                true,
                "000000260003000075736572006f727978006461746162617365006d61696c73\
             746f72650000",
            ),
            (false, "520000000c00000005ad44ff54"),
            (
                true,
                "70000000286d6435636566666330316463646537353431383239646565663662\
             356539633931343200",
            ),
            (
                false,
                "520000000800000000530000001c636c69656e745f656e636f64696e6700554e\
             49434f4445005300000017446174655374796c650049534f2c204d4459005300\
             00001569735f737570657275736572006f66660053000000197365727665725f\
             76657273696f6e00372e342e3600530000001f73657373696f6e5f617574686f\
             72697a6174696f6e006f727978004b0000000c000058e823de9db85a00000005\
             49",
            ),
        ],
        protocol: Protocol(19),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// pgsql.pcap frame 7: a StartupMessage.
    const STARTUP: &str =
        "000000260003000075736572006f727978006461746162617365006d61696c73746f72650000";
    /// pgsql.pcap frame 43: a GSSENCRequest; frame 45 the answer `G`.
    const GSSENC: &str = "0000000804d21630";
    /// pgsql.pcap frame 51: an SSLRequest; frame 53 the answer `N`.
    const SSL: &str = "0000000804d2162f";

    #[test]
    fn startup() {
        let f = flow(true, 45930, 5432);
        let (v, meta) = run(dissect, &f, &[(true, &hex(STARTUP))]);
        assert_eq!(v, [Verdict::Done(POSTGRES)]);
        assert_eq!(meta, Metadata::default());
    }

    #[test]
    fn encryption_requests() {
        let f = flow(true, 59036, 5432);
        let (v, _) = run(dissect, &f, &[(true, &hex(GSSENC)), (false, b"G")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(POSTGRES)]);
        let (v, _) = run(dissect, &f, &[(true, &hex(SSL)), (false, b"N")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(POSTGRES)]);
        let (v, _) = run(dissect, &f, &[(true, &hex(SSL)), (false, b"HTTP/1.1")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn ssl_request_answered_s_hands_the_rest_to_tls() {
        // Synthetic: pgsql.pcap's SSLRequest answered `S`, then a
        // ClientHello (tls_alert.pcap frame 4).
        let f = flow(true, 59036, 5432);
        let hello = hex(include_str!("tls/testdata/tls_alert-4.hex"));
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(SSL)), (false, b"S"), (true, &hello)],
        );
        let pg = Verdict::Found(POSTGRES);
        assert_eq!(v, [Verdict::Maybe, pg, pg]);
        assert_eq!(
            meta.ssl.unwrap().client_ja4,
            "t10d0909h2_61c4dbd01224_cc731f12afbb"
        );
        // `S` to a GSSENCRequest is not TLS.
        let (v, _) = run(dissect, &f, &[(true, &hex(GSSENC)), (false, b"S")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(POSTGRES)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 5432);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), a MySQL
        // SSL request (mysql.pcapng frame 21), an SMB negotiate (smbv1.pcap
        // frame 1, first bytes).
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
            hex("2000000185aeff1900000001ff0000000000000000000000000000000000000000000000"),
            hex("00000085ff534d4272000000001853c00000000000000000000000000000fffe0000400000620002"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
        // A startup without `user`, or with bytes after its final NUL.
        assert!(!startup_params(b"database\0x\0\0"));
        assert!(!startup_params(b"user\0x\0\0\0"));
        assert!(startup_params(b"user\0x\0\0"));
    }

    #[test]
    fn prefixes_do_not_panic() {
        let s = hex(STARTUP);
        for n in 0..s.len() {
            let (v, _) = run(dissect, &flow(true, 1, 5432), &[(true, &s[..n])]);
            assert_eq!(v, [Verdict::Maybe]);
        }
    }
}
