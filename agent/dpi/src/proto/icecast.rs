//! IceCast's source protocol over TCP: a streaming source (a broadcaster)
//! feeding a mount point of an Icecast server.
//!
//! The source sends an HTTP-like request whose method is `SOURCE` (the
//! Icecast 1/2 protocol; version `ICE/1.0` or `HTTP/1.x`) with its
//! stream's `ice-` headers (`ice-name`, `ice-public`, ...) before the
//! blank line. Claimed on a `SOURCE` request line followed by at least
//! one `ice-` header. (Listeners' plain HTTP requests answered by an
//! Icecast server are HTTP's.)

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// IceCast.
const ICECAST: Protocol = Protocol(52);
/// Bytes of the request searched for its headers.
const MAX_HEAD: usize = 2048;
/// Client packets after which an unfinished request is not IceCast.
const MAX_PACKETS: u32 = 4;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first {
        return Verdict::No;
    }
    if !pkt.from_client {
        return if pkt.seen[1] + 1 < MAX_PACKETS {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    }
    let s = &pkt.client_stream[..pkt.client_stream.len().min(MAX_HEAD)];
    let Some(end) = s.iter().position(|&b| b == b'\n') else {
        let want = b"SOURCE ";
        let n = s.len().min(want.len());
        return if s[..n] == want[..n] && pkt.seen[0] + 1 < MAX_PACKETS {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    };
    if !request_line(&s[..end]) {
        return Verdict::No;
    }
    // Header lines up to the blank one.
    for line in s[end + 1..].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Verdict::No;
        }
        if line.len() > 4 && line[..4].eq_ignore_ascii_case(b"ice-") {
            return Verdict::Done(ICECAST);
        }
    }
    if pkt.seen[0] + 1 < MAX_PACKETS && s.len() < MAX_HEAD {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether `line` is `SOURCE <mount> <ICE|HTTP>/<version>`.
fn request_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut words = line.split(|&b| b == b' ');
    let (Some(b"SOURCE"), Some(mount), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    mount.first() == Some(&b'/')
        && mount.iter().all(|b| b.is_ascii_graphic())
        && (version.starts_with(b"ICE/") || version.starts_with(b"HTTP/1."))
}

/// A source request as Icecast 2's documentation shows one.
const SOURCE: &str = "534f55524345202f6c6976652e6f676720485454502f312e300d0a\
    417574686f72697a6174696f6e3a204261736963206147466a6132316c4f6d686859327474\
    5a513d3d0d0a436f6e74656e742d547970653a206170706c69636174696f6e2f6f67670d0a\
    6963652d6e616d653a2054657374204d6f756e740d0a0d0a";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "icecast",
    protocols: &[ICECAST],
    tcp: true,
    udp: false,
    ports: &[8000],
    ports_only: false,
    first: |from_client, b| from_client && b == b'S',
    run: dissect,
    samples: &[Sample {
        origin: "built from Icecast 2's source protocol",
        tcp: true,
        server_port: 8000,
        packets: &[(true, SOURCE)],
        protocol: ICECAST,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn source_requests() {
        let f = flow(true, 40000, 8000);
        let p = hex(SOURCE);
        let (v, _) = run(dissect, &f, &[(true, &p)]);
        assert_eq!(v, [Verdict::Done(ICECAST)]);
        let (a, b) = p.split_at(30);
        let (v, _) = run(dissect, &f, &[(true, a), (true, b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(ICECAST)]);
        let old = b"SOURCE /stream ICE/1.0\r\nice-public: 1\r\n\r\n";
        let (v, _) = run(dissect, &f, &[(true, old)]);
        assert_eq!(v, [Verdict::Done(ICECAST)]);
    }

    #[test]
    fn rejects_others() {
        use crate::dissect::testing::HTTP_REQUEST_HEAD;
        let f = flow(true, 40000, 8000);
        for p in [
            &hex(HTTP_REQUEST_HEAD)[..],
            b"SOURCE /x HTTP/1.0\r\nHost: a\r\n\r\n",
            b"SOURCES are many\n",
            b"SOURCE x HTTP/1.0\r\nice-name: a\r\n",
        ] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No], "{p:?}");
        }
    }
}
