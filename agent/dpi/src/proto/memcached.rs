//! Memcached: the text protocol (TCP, and UDP behind an 8-byte frame
//! header) and the binary protocol (TCP).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Memcached.
const MEMCACHED: Protocol = Protocol(40);
/// Commands followed by a key (and arguments).
const KEYED: &[&[u8]] = &[
    b"get", b"gets", b"gat", b"gats", b"set", b"add", b"replace", b"append", b"prepend", b"cas",
    b"delete", b"incr", b"decr", b"touch", b"mg", b"ms", b"md", b"ma",
];
/// Commands that may stand alone.
const BARE: &[&[u8]] = &[
    b"stats",
    b"version",
    b"flush_all",
    b"verbosity",
    b"mn",
    b"me",
    b"lru_crawler",
    b"watch",
];
/// First words of the server's replies.
const REPLIES: &[&[u8]] = &[
    b"VALUE",
    b"END",
    b"STORED",
    b"NOT_STORED",
    b"EXISTS",
    b"NOT_FOUND",
    b"DELETED",
    b"TOUCHED",
    b"STAT",
    b"ERROR",
    b"CLIENT_ERROR",
    b"SERVER_ERROR",
    b"VERSION",
    b"OK",
    b"HD",
    b"VA",
    b"EN",
    b"NF",
    b"NS",
    b"EX",
    b"MN",
    b"ME",
];
/// Binary protocol: request and response magic, header length.
const REQUEST: u8 = 0x80;
const RESPONSE: u8 = 0x81;
const BINARY_HEADER: usize = 24;
/// Client packets to wait for a reply (a capture of one side only).
const MAX_CLIENT_PACKETS: u32 = 4;

/// Memcached when the client's first line is a command (with a key where
/// the command takes one) and the server's first line starts with a reply
/// word, or the client sent two commands and the server nothing; over UDP
/// a request datagram (frame header, then a command) is enough; binary:
/// a request and the response with its opcode and opaque.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return udp(pkt);
    }
    if pkt.server_first {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    if client.first() == Some(&REQUEST) {
        return binary(client, server);
    }
    let rest = match line(client) {
        Text::Ok(first, rest) if command(first) => rest,
        Text::More if command_start(client) => return Verdict::Maybe,
        _ => return Verdict::No,
    };
    match line(server) {
        Text::Ok(reply, _) if starts_with_word(reply, REPLIES) => return Verdict::Done(MEMCACHED),
        Text::Ok(..) | Text::Bad => return Verdict::No,
        Text::More if !server.is_empty() => return Verdict::Maybe,
        Text::More => {}
    }
    // No reply yet: a second command (after a storage command's data
    // block, a line of its own) will do.
    let second = match line(rest) {
        Text::Ok(data, after) if !command(data) => line(after),
        other => other,
    };
    match (second, pkt.seen[0] + 1 < MAX_CLIENT_PACKETS) {
        (Text::Ok(next, _), _) if command(next) => Verdict::Done(MEMCACHED),
        (Text::More, true) => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// A read of a text line.
enum Text<'a> {
    /// Not a line: control bytes, or too long.
    Bad,
    /// No line feed yet.
    More,
    /// The line without its CR LF, and what follows.
    Ok(&'a [u8], &'a [u8]),
}

/// Reads the first line of `bytes` (at most 1024 bytes).
fn line(bytes: &[u8]) -> Text<'_> {
    let head = &bytes[..bytes.len().min(1024)];
    let end = head.iter().position(|&b| b == b'\n');
    let text = &head[..end.unwrap_or(head.len())];
    if text
        .iter()
        .any(|&b| b < 0x20 && b != b'\r' && b != b'\t' || b == 0x7f)
    {
        return Text::Bad;
    }
    match end {
        Some(end) => Text::Ok(
            text.strip_suffix(b"\r").unwrap_or(text),
            bytes.get(end + 1..).unwrap_or_default(),
        ),
        None if head.len() < 1024 => Text::More,
        None => Text::Bad,
    }
}

/// A UDP request: frame header (request id, sequence 0, total 1,
/// reserved 0), then a command line.
fn udp(pkt: &Packet<'_>) -> Verdict {
    // The flow's first datagram, whichever way the flow table oriented it.
    if pkt.seen != [0, 0] {
        return Verdict::No;
    }
    let Some((frame, text)) = pkt.payload.split_first_chunk::<8>() else {
        return Verdict::No;
    };
    if frame[2..] != [0, 0, 0, 1, 0, 0] {
        return Verdict::No;
    }
    match line(text) {
        Text::Ok(first, _) if command(first) => Verdict::Done(MEMCACHED),
        _ => Verdict::No,
    }
}

/// Binary protocol: a request header, confirmed by the response.
fn binary(client: &[u8], server: &[u8]) -> Verdict {
    let Some(req) = client.get(..BINARY_HEADER) else {
        return Verdict::Maybe;
    };
    if !header_ok(req) {
        return Verdict::No;
    }
    let Some(resp) = server.get(..BINARY_HEADER) else {
        return Verdict::Maybe;
    };
    // Same opcode and opaque.
    if resp[0] == RESPONSE && header_ok(resp) && resp[1] == req[1] && resp[12..16] == req[12..16] {
        Verdict::Done(MEMCACHED)
    } else {
        Verdict::No
    }
}

/// A binary header: known opcode, raw data type, a body that holds the
/// key and extras.
fn header_ok(h: &[u8]) -> bool {
    let key = usize::from(u16::from_be_bytes([h[2], h[3]]));
    let extras = usize::from(h[4]);
    let body = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
    h[1] <= 0x48 && h[5] == 0 && key + extras <= body && body <= 1 << 24
}

/// Whether `line` (without its end) is a command line: a keyed command
/// with a printable key, or a bare one.
fn command(line: &[u8]) -> bool {
    let mut words = line.split(|&b| b == b' ');
    let Some(name) = words.next() else {
        return false;
    };
    if KEYED.contains(&name) {
        let key = words.next().unwrap_or_default();
        (1..=250).contains(&key.len()) && key.iter().all(u8::is_ascii_graphic)
    } else {
        BARE.contains(&name) && line.iter().all(|&b| b.is_ascii_graphic() || b == b' ')
    }
}

/// Whether `text` (a line cut short) may still become a command: its
/// first word so far starts a command's name.
fn command_start(text: &[u8]) -> bool {
    let word = text.split(|&b| b == b' ').next().unwrap_or_default();
    let complete = text.len() > word.len();
    KEYED.iter().chain(BARE).any(|name| {
        if complete {
            *name == word
        } else {
            name.starts_with(word)
        }
    })
}

/// Whether `line`'s first word is one of `words`.
fn starts_with_word(line: &[u8], words: &[&[u8]]) -> bool {
    let end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    words.contains(&&line[..end])
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "memcached",
    protocols: &[MEMCACHED],
    tcp: true,
    udp: true,
    ports: &[11211],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic: get and its reply (the corpus has no memcached capture)",
        tcp: true,
        server_port: 11211,
        packets: &[
            (true, "676574207573657234320d0a"),
            (
                false,
                "56414c554520757365723432203020320d0a68690d0a454e440d0a",
            ),
        ],
        protocol: MEMCACHED,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn text_command_and_reply() {
        // Synthetic (the corpus has no memcached capture).
        let f = flow(true, 40000, 11211);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (true, b"get user:42\r\n"),
                (false, b"VALUE user:42 0 2\r\nhi\r\nEND\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MEMCACHED)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"set k 0 0 1\r\nx\r\n"), (false, b"STORED\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MEMCACHED)]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"stats\r\n"), (false, b"STAT pid 1\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MEMCACHED)]);
        // Two commands and no reply (one side captured).
        let (v, _) = run(dissect, &f, &[(true, b"get a\r\n"), (true, b"get b\r\n")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MEMCACHED)]);
    }

    #[test]
    fn udp_request() {
        let mut d = hex("12340000 00010000");
        d.extend_from_slice(b"get foo\r\n");
        let (v, _) = run(dissect, &flow(false, 40000, 11211), &[(true, &d)]);
        assert_eq!(v, [Verdict::Done(MEMCACHED)]);
        d[5] = 0;
        let (v, _) = run(dissect, &flow(false, 40000, 11211), &[(true, &d)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn binary_request_and_response() {
        // GET "Hello", opaque 0xdeadbeef; its NOT_FOUND response.
        let req = hex("80000005 00000000 00000005 deadbeef 0000000000000000 48656c6c6f");
        let resp = hex("81000000 00000001 00000009 deadbeef 0000000000000000 4e6f7420666f756e64");
        let f = flow(true, 40000, 11211);
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &resp)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(MEMCACHED)]);
        let mut other = resp.clone();
        other[15] ^= 1;
        let (v, _) = run(dissect, &f, &[(true, &req), (false, &other)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn not_memcached() {
        let f = flow(true, 40000, 11211);
        for (c, s) in [
            (&b"GET / HTTP/1.1\r\n"[..], &b"HTTP/1.1 200 OK\r\n"[..]),
            (b"get\r\n", b"END\r\n"),
            (b"get a\r\n", b"+OK\r\n"),
            (b"USER x\r\n", b"+OK\r\n"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, c), (false, s)]);
            assert!(!v.contains(&Verdict::Done(MEMCACHED)), "{c:?}");
            assert_eq!(v.last(), Some(&Verdict::No), "{c:?}");
        }
        let tls = hex(crate::dissect::testing::TLS_HELLO_HEAD);
        let (v, _) = run(dissect, &f, &[(true, &tls)]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &flow(false, 1, 11211),
            &[(true, &hex(crate::dissect::testing::DNS_QUERY))],
        );
        assert_eq!(v, [Verdict::No]);
    }
}
