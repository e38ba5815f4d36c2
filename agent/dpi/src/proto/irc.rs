//! IRC (RFC 1459, 2812; IRCv3 capability negotiation) over TCP: lines of
//! text ending with CR LF, at most 512 bytes. The client registers with
//! `NICK`, `USER`, `PASS` or `CAP`; the server greets with a prefixed
//! `NOTICE` or a numeric reply (`:irc.example.net 001 nick :Welcome`), or
//! the older `NOTICE AUTH :`.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's IRC.
const IRC: Protocol = Protocol(65);
/// Longest line, CR LF included.
const LINE_MAX: usize = 512;
/// Commands a client registers with.
const CLIENT_COMMANDS: [&[u8]; 4] = [b"NICK ", b"USER ", b"PASS ", b"CAP "];

/// What the first line of a stream says.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Line {
    Yes,
    More,
    No,
}

/// The first line of `s`, if ended (without its LF or CR LF); `Err` with
/// whether it may still end well.
fn first_line(s: &[u8]) -> Result<&[u8], bool> {
    let text = |b: &[u8]| b.iter().all(|&c| c >= 0x20 || c == b'\t' || c == b'\r');
    match memchr::memchr(b'\n', &s[..s.len().min(LINE_MAX)]) {
        Some(end) => {
            let line = &s[..end];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if text(line) { Ok(line) } else { Err(false) }
        }
        None => Err(s.len() < LINE_MAX && text(s)),
    }
}

/// A client's registration: `NICK <nick>`, `CAP <subcommand>`, or
/// `USER <user> <mode> <unused> :<real name>`, maybe after `PASS <pass>`
/// (FTP and POP3 clients send `USER` and `PASS` too, but not so).
fn client(mut s: &[u8]) -> Line {
    for _ in 0..2 {
        let head = &s[..s.len().min(5)];
        if !CLIENT_COMMANDS
            .iter()
            .any(|c| c.starts_with(head) || head.starts_with(c))
        {
            return Line::No;
        }
        let line = match first_line(s) {
            Ok(line) => line,
            Err(true) => return Line::More,
            Err(false) => return Line::No,
        };
        let arg = |c: &[u8]| {
            line.strip_prefix(c)
                .filter(|a| a.first().is_some_and(|&b| b != b' '))
        };
        if arg(b"NICK ").is_some_and(|a| !a.contains(&b' ')) || arg(b"CAP ").is_some() {
            return Line::Yes;
        }
        if let Some(a) = arg(b"USER ") {
            let mut words = a.splitn(4, |&b| b == b' ');
            let ok = words.by_ref().take(3).filter(|w| !w.is_empty()).count() == 3
                && words.next().is_some_and(|w| w.starts_with(b":"));
            return if ok { Line::Yes } else { Line::No };
        }
        if arg(b"PASS ").is_none() {
            return Line::No;
        }
        // PASS: the next line decides.
        let Some(next) = s.get(memchr::memchr(b'\n', s).map_or(s.len(), |i| i + 1)..) else {
            return Line::More;
        };
        if next.is_empty() {
            return Line::More;
        }
        s = next;
    }
    Line::No
}

/// A server's first line: `:prefix NOTICE ...`, `:prefix NNN ...`, or
/// `NOTICE AUTH :...` / `NOTICE * :...`.
fn server(s: &[u8]) -> Line {
    match s.first() {
        None => return Line::More,
        Some(b':' | b'N') => {}
        Some(_) => return Line::No,
    }
    let line = match first_line(s) {
        Ok(line) => line,
        Err(true) => return Line::More,
        Err(false) => return Line::No,
    };
    let ok = if let Some(rest) = line.strip_prefix(b":") {
        let mut words = rest.splitn(3, |&b| b == b' ');
        let (prefix, command) = (words.next().unwrap_or(&[]), words.next().unwrap_or(&[]));
        let numeric = command.len() == 3 && command.iter().all(u8::is_ascii_digit);
        !prefix.is_empty() && (numeric || command == b"NOTICE") && words.next().is_some()
    } else {
        line.starts_with(b"NOTICE AUTH :") || line.starts_with(b"NOTICE * :")
    };
    if ok { Line::Yes } else { Line::No }
}

/// `Done` when the first line of the side that spoke first is IRC.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let line = if pkt.server_first {
        server(pkt.server_stream)
    } else {
        client(pkt.client_stream)
    };
    match line {
        Line::Yes => Verdict::Done(IRC),
        Line::More => Verdict::Maybe,
        Line::No => Verdict::No,
    }
}

/// Built: a client's registration.
const REGISTRATION: &str = "4e49434b20616c6963650d0a5553455220616c6963652030202a203a416c6963650d0a";
/// Built: a server's greeting.
const GREETING: &str = "3a6972632e6578616d706c652e6e6574204e4f54494345202a203a2a2a2a204c6f6f6b696e6720757020796f757220686f73746e616d652e2e2e0d0a";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "irc",
    protocols: &[IRC],
    tcp: true,
    udp: false,
    ports: &[
        6667, 6660, 6661, 6662, 6663, 6664, 6665, 6666, 6668, 6669, 7000,
    ],
    ports_only: false,
    first: |from_client, b| {
        if from_client {
            matches!(b, b'N' | b'U' | b'P' | b'C')
        } else {
            matches!(b, b':' | b'N')
        }
    },
    run: dissect,
    samples: &[
        Sample {
            origin: "built: NICK and USER",
            tcp: true,
            server_port: 6667,
            packets: &[(true, REGISTRATION)],
            protocol: IRC,
        },
        Sample {
            origin: "built: a server's NOTICE greeting",
            tcp: true,
            server_port: 6667,
            packets: &[(false, GREETING)],
            protocol: IRC,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, flow, hex, run};

    #[test]
    fn registrations_and_greetings() {
        let f = flow(true, 50000, 6667);
        let r = hex(REGISTRATION);
        assert_eq!(run(dissect, &f, &[(true, &r)]).0, [Verdict::Done(IRC)]);
        let (v, _) = run(dissect, &f, &[(true, &r[..3]), (true, &r[3..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(IRC)]);
        for line in [
            &b"CAP LS 302\r\n"[..],
            b"PASS secret\r\nNICK bob\r\n",
            b"NICK bob\n",
        ] {
            assert_eq!(run(dissect, &f, &[(true, line)]).0, [Verdict::Done(IRC)]);
        }
        for line in [
            hex(GREETING),
            b":irc.libera.chat 001 bob :Welcome\r\n".to_vec(),
            b"NOTICE AUTH :*** Checking Ident\r\n".to_vec(),
        ] {
            assert_eq!(run(dissect, &f, &[(false, &line)]).0, [Verdict::Done(IRC)]);
        }
    }

    #[test]
    fn other_text_is_not_irc() {
        let f = flow(true, 50000, 6667);
        for line in [
            &b"USER anonymous\r\n"[..0],
            b"USERS\r\n",
            b"PASV\r\n",
            b"CAPABILITY\r\n",
            b"NICK \r\n",
            b"NICK a\x01b\r\n",
            b"USER anonymous\r\n",
            b"PASS secret\r\nLIST\r\n",
            &hex(HTTP_REQUEST_HEAD),
        ] {
            if line.is_empty() {
                continue;
            }
            assert_eq!(
                run(dissect, &f, &[(true, line)]).0,
                [Verdict::No],
                "{line:?}"
            );
        }
        for line in [&b"220 FTP ready\r\n"[..], b":x 2000 y\r\n", b"+OK POP3\r\n"] {
            assert_eq!(
                run(dissect, &f, &[(false, line)]).0,
                [Verdict::No],
                "{line:?}"
            );
        }
    }
}
