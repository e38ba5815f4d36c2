//! Redis serialization protocol (RESP) over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Packet, Scratch, Verdict};
use crate::proto::mail::{first_line, first_word_in};

/// RESP.
const RESP: Protocol = Protocol(182);

/// First bytes of a reply (RESP2 and RESP3 types).
const REPLY_TYPES: &[u8] = b"+-:$*_,#!=(%~>|";

/// Inline commands accepted when the server's reply confirms them.
const INLINE: &[&str] = &["PING", "AUTH", "INFO", "SELECT", "ECHO", "HELLO"];

/// A read of one part of the stream.
enum Read<'a, T> {
    /// Cut short: could still be valid.
    More,
    /// Not RESP.
    Bad,
    /// The value and the bytes after it.
    Ok(T, &'a [u8]),
}

/// RESP (`Protocol(182)`): the client speaks first, with a command as an
/// array of bulk strings (`*N\r\n$len\r\nNAME\r\n`, N and len small, NAME
/// a command word), and the server's first byte (if any yet) is a reply
/// type; or an inline command (`PING`, `AUTH`, ...) that a reply line
/// confirms. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || (pkt.seen == [0, 0] && !pkt.from_client) {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let reply_ok = |line: &[u8]| line.first().is_some_and(|b| REPLY_TYPES.contains(b));
    match command(client) {
        Read::Ok((), _) if server.is_empty() || reply_ok(server) => Verdict::Done(RESP),
        Read::Ok(..) => Verdict::No,
        Read::More => Verdict::Maybe,
        Read::Bad => match first_line(client).check(|l| first_word_in(l, INLINE)) {
            None => Verdict::Maybe,
            Some(false) => Verdict::No,
            Some(true) => match first_line(server).check(reply_ok) {
                Some(true) => Verdict::Done(RESP),
                Some(false) => Verdict::No,
                None => Verdict::Maybe,
            },
        },
    }
}

/// Reads a command at the start of `stream`: an array whose first bulk
/// string is a command name.
fn command(stream: &[u8]) -> Read<'_, ()> {
    let (count, rest) = match int(stream, b'*') {
        Read::Ok(n, rest) => (n, rest),
        Read::More => return Read::More,
        Read::Bad => return Read::Bad,
    };
    let (len, rest) = match int(rest, b'$') {
        Read::Ok(n, rest) if (1..=1024).contains(&count) => (n, rest),
        Read::More => return Read::More,
        _ => return Read::Bad,
    };
    if !(1..=64).contains(&len) {
        return Read::Bad;
    }
    let name = rest.get(..len).unwrap_or(rest);
    let name_ok = name.first().is_none_or(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._-|".contains(&b));
    let end = rest.get(len..).unwrap_or_default();
    match (name_ok, end) {
        (false, _) => Read::Bad,
        (true, [b'\r', b'\n', after @ ..]) => Read::Ok((), after),
        (true, [] | [b'\r']) => Read::More,
        (true, _) => Read::Bad,
    }
}

/// Reads `<prefix><decimal>\r\n` (at most 6 digits).
fn int(bytes: &[u8], prefix: u8) -> Read<'_, usize> {
    let Some((&first, rest)) = bytes.split_first() else {
        return Read::More;
    };
    if first != prefix {
        return Read::Bad;
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 6 {
        return Read::Bad;
    }
    let value = rest
        .iter()
        .take(digits)
        .fold(0, |n, &d| n * 10 + usize::from(d - b'0'));
    match rest.get(digits..).unwrap_or_default() {
        [b'\r', b'\n', after @ ..] if digits > 0 => Read::Ok(value, after),
        [] | [b'\r'] => Read::More,
        _ => Read::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// resp.pcap frame 4: `*1 $7 COMMAND`.
    const COMMAND: &str = "2a310d0a24370d0a434f4d4d414e440d0a";
    /// resp.pcap frame 6, first bytes of the reply.
    const REPLY: &str = "2a3234300d0a2a31300d0a2431310d0a73696e74657273746f72650d0a";

    #[test]
    fn array_command() {
        let f = flow(true, 51882, 6379);
        let (v, meta) = run(dissect, &f, &[(true, &hex(COMMAND))]);
        assert_eq!(v, [Verdict::Done(RESP)]);
        assert_eq!(meta, Metadata::default());
        let c = hex(COMMAND);
        let (v, _) = run(dissect, &f, &[(true, &c[..9]), (true, &c[9..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RESP)]);
        let (v, _) = run(dissect, &f, &[(true, &c[..9]), (false, &hex(REPLY))]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        let (v, _) = run(dissect, &f, &[(true, &c), (false, &hex(REPLY))]);
        assert_eq!(v, [Verdict::Done(RESP), Verdict::Done(RESP)]);
    }

    #[test]
    fn inline_command() {
        // Synthetic: the corpus has no inline command.
        let f = flow(true, 40000, 6379);
        let (v, _) = run(dissect, &f, &[(true, b"PING\r\n"), (false, b"+PONG\r\n")]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(RESP)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 6379);
        // A POP3 greeting (pop3.pcap frame 4): the server speaks first.
        let (v, _) = run(
            dissect,
            &f,
            &[(false, b"+OK POP server ready H migmxus005\r\n")],
        );
        assert_eq!(v, [Verdict::No]);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), a server
        // reply that is not RESP.
        let (v, _) = run(dissect, &f, &[(true, b"GET / HTTP/1.1\r\n\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex("16030100a8010000a403035cef9e29f7"))],
        );
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"PING\r\n"), (false, b"HTTP/1.1 400\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, b"*1\r\n$3\r\n1ab\r\n")]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let c = hex(COMMAND);
        for n in 1..c.len() {
            let (v, _) = run(dissect, &flow(true, 1, 6379), &[(true, &c[..n])]);
            assert_eq!(v, [Verdict::Maybe], "{n}");
        }
    }
}
