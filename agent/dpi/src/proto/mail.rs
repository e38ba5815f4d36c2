//! Mail: SMTP, POP3 and IMAP, and their STARTTLS upgrade to TLS. Also the
//! text-line helpers that the other line-based dissectors share.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::tls;

/// Longest text line read (bytes, LF included).
pub(crate) const MAX_LINE: usize = 1024;

/// Longest first word of a line still being received.
const MAX_WORD: usize = 32;

/// The first line of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Text so far, without a line feed yet.
    More,
    /// The complete line, without its CR LF (or LF).
    Full(&'a [u8]),
    /// Not a text line: control bytes, or no line feed in [`MAX_LINE`] bytes.
    Bad,
}

impl<'a> Line<'a> {
    /// `check` of the complete line; `None` while incomplete.
    pub(crate) fn check(self, check: impl Fn(&'a [u8]) -> bool) -> Option<bool> {
        match self {
            Line::More => None,
            Line::Full(line) => Some(check(line)),
            Line::Bad => Some(false),
        }
    }
}

/// The first line of `bytes`.
pub(crate) fn first_line(bytes: &[u8]) -> Line<'_> {
    // Binary data opens with a control byte: no line these protocols start
    // with does (an empty line aside), so it is turned down at once.
    if let Some(&b) = bytes.first()
        && (b < 0x20 && !matches!(b, b'\r' | b'\n' | b'\t') || b == 0x7f)
    {
        return Line::Bad;
    }
    match memchr::memchr(b'\n', &bytes[..bytes.len().min(MAX_LINE)]) {
        Some(end) => {
            let line = bytes.get(..end).unwrap_or_default();
            Line::Full(line.strip_suffix(b"\r").unwrap_or(line))
        }
        // Every line these protocols start with opens with a short word
        // (a command, a status code): text without a space early on is not
        // such a line, however long it grows.
        None if bytes.len() < MAX_LINE
            && (bytes.len() <= MAX_WORD || bytes.iter().take(MAX_WORD + 1).any(|&b| b == b' '))
            && bytes
                .iter()
                .all(|&b| b >= 0x20 && b != 0x7f || b == b'\r' || b == b'\t') =>
        {
            Line::More
        }
        None => Line::Bad,
    }
}

/// The last line of `bytes` when `bytes` ends with a line feed (without
/// its CR LF), looked for in the last [`MAX_LINE`] bytes.
pub(crate) fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    let body = bytes.strip_suffix(b"\n")?;
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let tail = body.get(body.len().saturating_sub(MAX_LINE)..)?;
    let start = tail.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = tail.get(start..)?;
    (start > 0 || tail.len() == body.len()).then_some(line)
}

/// True when `line` starts with `prefix`, ignoring ASCII case.
pub(crate) fn starts_ci(line: &[u8], prefix: &[u8]) -> bool {
    line.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// True when the first word of `line` (up to a space or the end) is one
/// of `words`, ignoring ASCII case.
pub(crate) fn first_word_in(line: &[u8], words: &[&str]) -> bool {
    let word = line.split(|&b| b == b' ').next().unwrap_or_default();
    words
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
}

/// `line` after its first word and one space (empty when it has one word).
pub(crate) fn after_word(line: &[u8]) -> &[u8] {
    line.iter()
        .position(|&b| b == b' ')
        .and_then(|i| line.get(i + 1..))
        .unwrap_or_default()
}

/// The mail protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Smtp,
    Pop3,
    Imap,
}

/// Every kind, in the order tried.
const KINDS: [Kind; 3] = [Kind::Smtp, Kind::Pop3, Kind::Imap];

/// POP3 commands a client may start with.
const POP3_FIRST: &[&str] = &["USER", "APOP", "CAPA", "STLS", "AUTH", "UTF8"];
/// IMAP commands a client may start with (after its tag).
const IMAP_FIRST: &[&str] = &[
    "CAPABILITY",
    "LOGIN",
    "STARTTLS",
    "AUTHENTICATE",
    "ID",
    "NOOP",
    "LOGOUT",
    "ENABLE",
];

impl Kind {
    /// The protocol in clear text.
    fn plain(self) -> Protocol {
        match self {
            Kind::Smtp => Protocol(3), // SMTP
            Kind::Pop3 => Protocol(2), // POP3
            Kind::Imap => Protocol(4), // IMAP
        }
    }

    /// The protocol after a STARTTLS upgrade.
    fn secure(self) -> Protocol {
        match self {
            Kind::Smtp => Protocol(29), // SMTPS
            Kind::Pop3 => Protocol(23), // POPS
            Kind::Imap => Protocol(51), // IMAPS
        }
    }

    /// The server's first line (a greeting, or for SMTP also the answer
    /// to an EHLO when the greeting was missed).
    fn server_first(self, line: &[u8]) -> bool {
        let code_then = |code: &[u8], seps: &[u8]| {
            line.strip_prefix(code)
                .is_some_and(|rest| rest.first().is_none_or(|b| seps.contains(b)))
        };
        match self {
            Kind::Smtp => code_then(b"220", b" -") || code_then(b"250", b" -"),
            Kind::Pop3 => code_then(b"+OK", b" "),
            Kind::Imap => {
                line.starts_with(b"* ") && first_word_in(after_word(line), &["OK", "PREAUTH"])
            }
        }
    }

    /// The client's first command.
    fn client_first(self, line: &[u8]) -> bool {
        match self {
            Kind::Smtp => starts_ci(line, b"EHLO ") || starts_ci(line, b"HELO "),
            Kind::Pop3 => first_word_in(line, POP3_FIRST),
            Kind::Imap => imap_tag(line) && first_word_in(after_word(line), IMAP_FIRST),
        }
    }

    /// True when the client's command `line` asks for STARTTLS.
    fn starttls(self, line: &[u8]) -> bool {
        match self {
            Kind::Smtp => line.eq_ignore_ascii_case(b"STARTTLS"),
            Kind::Pop3 => line.eq_ignore_ascii_case(b"STLS"),
            Kind::Imap => after_word(line).eq_ignore_ascii_case(b"STARTTLS"),
        }
    }

    /// Whether the server's reply `line` accepts STARTTLS (`None`: an
    /// untagged IMAP line, read on).
    fn accepts(self, line: &[u8]) -> Option<bool> {
        match self {
            Kind::Smtp => Some(line.starts_with(b"220")),
            Kind::Pop3 => Some(line.starts_with(b"+OK")),
            Kind::Imap if line.starts_with(b"* ") => None,
            Kind::Imap => Some(first_word_in(after_word(line), &["OK"])),
        }
    }

    /// True when the client's command `line` shows that the session goes
    /// on in clear text (no STARTTLS will come).
    fn in_clear(self, line: &[u8]) -> bool {
        match self {
            Kind::Smtp => {
                first_word_in(line, &["MAIL", "RCPT", "DATA", "QUIT"]) || starts_ci(line, b"AUTH ")
            }
            Kind::Pop3 => {
                first_word_in(
                    line,
                    &["USER", "PASS", "APOP", "RETR", "LIST", "STAT", "QUIT"],
                ) || starts_ci(line, b"AUTH ")
            }
            Kind::Imap => first_word_in(
                after_word(line),
                &["LOGIN", "AUTHENTICATE", "SELECT", "EXAMINE", "LOGOUT"],
            ),
        }
    }
}

/// True when `line` starts with an IMAP command tag and a space.
fn imap_tag(line: &[u8]) -> bool {
    let tag = line.split(|&b| b == b' ').next().unwrap_or_default();
    (1..=32).contains(&tag.len())
        && tag.len() < line.len()
        && tag
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The host name of an SMTP greeting `220 host text` (as nDPI takes it:
/// the word after the code, when more text follows), lowercase.
fn smtp_host(line: &[u8]) -> Option<String> {
    let rest = line.strip_prefix(b"220")?.get(1..)?;
    let end = rest.iter().position(|&b| b == b' ')?;
    let host = rest.get(..end)?;
    let valid = (1..=255).contains(&host.len())
        && host
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
    valid.then(|| String::from_utf8_lossy(host).to_ascii_lowercase())
}

/// The server's answer to a client's request for TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Not all there yet.
    More,
    /// Refused, or not an answer: the session goes on in clear text.
    Refused,
    /// Accepted: TLS starts at this byte of the server stream.
    Accepted(usize),
}

/// Reads the server's answer to a request for TLS from byte `start` of
/// `server`: a few lines at most, each of which `accepts` says accepts,
/// refuses, or (`None`) comes before the answer.
pub(crate) fn answer(
    server: &[u8],
    start: usize,
    accepts: impl Fn(&[u8]) -> Option<bool>,
) -> Answer {
    let mut pos = start;
    for _ in 0..8 {
        let rest = server.get(pos..).unwrap_or_default();
        let line = match first_line(rest) {
            Line::Full(line) => line,
            Line::More => return Answer::More,
            Line::Bad => return Answer::Refused,
        };
        pos += rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        match accepts(line) {
            None => {}
            Some(true) => return Answer::Accepted(pos),
            Some(false) => return Answer::Refused,
        }
    }
    Answer::Refused
}

/// Per-flow state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// The protocol, once detected.
    kind: Option<Kind>,
    /// Stream lengths (client, server) when the client asked for STARTTLS.
    pending: Option<[usize; 2]>,
    /// After an accepted STARTTLS: where TLS starts in each stream.
    tls: Option<[usize; 2]>,
}

/// SMTP (`220` greeting or `250` reply, and an `EHLO`/`HELO` first
/// command), POP3 (`+OK` greeting sent first, and a POP3 first command)
/// and IMAP (`* OK` greeting, and a tagged first command), over TCP. The
/// SMTP greeting's host name goes to `host_server_name`. After detection
/// the client's commands are followed: an accepted STARTTLS makes the
/// flow SMTPS, POPS or IMAPS and the TLS dissector reads the rest; a
/// command that goes on in clear text ends detection.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    tls::after_starttls(pkt, scratch, meta, |st: &mut State, meta| {
        let verdict = step(pkt, st, meta);
        (
            verdict,
            st.tls
                .zip(st.kind)
                .map(|(start, kind)| (start, kind.secure())),
        )
    })
}

/// Detection, then STARTTLS tracking (the TLS part is left to `dissect`).
fn step(pkt: &Packet<'_>, st: &mut State, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    let kind = match st.kind {
        Some(kind) => kind,
        None => match detect(pkt, meta) {
            Ok(kind) => {
                st.kind = Some(kind);
                kind
            }
            Err(verdict) => return verdict,
        },
    };
    if st.tls.is_some() {
        return Verdict::Found(kind.secure());
    }
    let found = Verdict::Found(kind.plain());
    if pkt.from_client {
        let Some(line) = last_line(client) else {
            return found;
        };
        if kind.starttls(line) {
            st.pending = Some([client.len(), server.len()]);
        } else if kind.in_clear(line) {
            return Verdict::Done(kind.plain());
        }
        return found;
    }
    let Some([client_end, server_start]) = st.pending else {
        return found;
    };
    // IMAP may send untagged lines before the answer.
    match answer(server, server_start, |line| kind.accepts(line)) {
        Answer::More => found,
        Answer::Refused => Verdict::Done(kind.plain()),
        Answer::Accepted(server_tls) => {
            st.tls = Some([client_end, server_tls]);
            Verdict::Found(kind.secure())
        }
    }
}

/// The protocol when both first lines show it, else the verdict.
fn detect(pkt: &Packet<'_>, meta: &mut Metadata) -> Result<Kind, Verdict> {
    let (c, s) = (first_line(pkt.client_stream), first_line(pkt.server_stream));
    let mut possible = false;
    for kind in KINDS {
        let server_ok = s.check(|l| kind.server_first(l));
        let client_ok = c.check(|l| kind.client_first(l));
        let order_ok = kind == Kind::Smtp || pkt.server_first;
        if server_ok == Some(true) && client_ok == Some(true) && order_ok {
            if kind == Kind::Smtp
                && let Line::Full(greeting) = s
                && let Some(host) = smtp_host(greeting)
            {
                meta.host_server_name = host;
            }
            return Ok(kind);
        }
        possible |= server_ok != Some(false) && client_ok != Some(false) && order_ok;
    }
    Err(if possible {
        Verdict::Maybe
    } else {
        Verdict::No
    })
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "mail",
    protocols: &[
        Protocol(2),
        Protocol(3),
        Protocol(4),
        Protocol(23),
        Protocol(29),
        Protocol(51),
    ],
    tcp: true,
    udp: false,
    ports: &[25, 110, 143, 587],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "imap.pcap frames 4,6,7,9",
            tcp: true,
            server_port: 143,
            packets: &[
                (
                    false,
                    "2a204f4b20494d41503452657631205365727665722056657273696f6e20342e\
             392e30342e3031320d0a",
                ),
                (true, "433030303030204341504142494c4954590d0a"),
                (
                    false,
                    "2a204341504142494c49545920494d415034726576312049444c452041555448\
             3d4c4f47494e20415554483d504c41494e20415554483d4352414d2d4d44350d\
             0a",
                ),
                (
                    false,
                    "433030303030204f4b204341504142494c49545920636f6d706c657465640d0a",
                ),
            ],
            protocol: Protocol(4),
        },
        Sample {
            origin: "pop3.pcap frames 4,6,8,10",
            tcp: true,
            server_port: 110,
            packets: &[
                (
                    false,
                    "2b4f4b20504f50207365727665722072656164792048206d69676d7875733030\
             350d0a",
                ),
                (
                    true,
                    "757365722063696363696f7065726e61636368696f406d61696c2e636f6d0d0a",
                ),
                (
                    false,
                    "2b4f4b2070617373776f726420726571756972656420666f7220757365722022\
             63696363696f7065726e61636368696f406d61696c2e636f6d220d0a",
                ),
                (true, "7061737320706970706f7a7a6f0d0a"),
            ],
            protocol: Protocol(2),
        },
        Sample {
            origin: "smtp.pcap frames 4,6,8,9",
            tcp: true,
            server_port: 25,
            packets: &[
                (
                    false,
                    "32323020706967656f6e2e65797269652e61662e6d696c2045534d5450205365\
             6e646d61696c20382e382e372f382e382e373b205361742c2037204175672031\
             3939392030383a32303a3131202d303430300d0a",
                ),
                (true, "45484c4f2064656c74612e70656163682e6d696c0d0a"),
                (
                    false,
                    "35303020436f6d6d616e6420756e7265636f676e697a65640d0a",
                ),
                (true, "48454c4f2064656c74612e70656163682e6d696c0d0a"),
            ],
            protocol: Protocol(3),
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// smtp.pcap frame 4: the server's greeting.
    const SMTP_220: &[u8] =
        b"220 pigeon.eyrie.af.mil ESMTP Sendmail 8.8.7/8.8.7; Sat, 7 Aug 1999 08:20:11 -0400\r\n";

    /// rdp.pcap frame 7: a TLS ClientHello.
    const RDP_HELLO: &str = "
        16030100a8010000a403035cef9e29f7050d16a1a2391d64625681e3425a70bdd5045db0a23d3db250dbe700002c00ff
        c02cc02bc024c023c00ac009c008c030c02fc028c027c014c013c012009d009c003d003c0035002f000a0100004f0000
        0012001000000d3139322e3136382e322e313432000a00080006001700180019000b00020100000d0012001004010201
        0501060104030203050306030005000501000000000012000000170000";

    #[test]
    fn smtp_from_greeting_and_ehlo() {
        // smtp.pcap frames 4, 6, 8, 9, 10, 11.
        let f = flow(true, 2127, 25);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (false, SMTP_220),
                (true, b"EHLO delta.peach.mil\r\n"),
                (false, b"500 Command unrecognized\r\n"),
                (true, b"HELO delta.peach.mil\r\n"),
                (false, b"250 (delta.peach.mil) pleased to meet you.\r\n"),
                (true, b"MAIL From:<coreys@delta.peach.mil>\r\n"),
            ],
        );
        let smtp = Verdict::Found(Protocol(3));
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                smtp,
                smtp,
                smtp,
                smtp,
                Verdict::Done(Protocol(3))
            ]
        );
        assert_eq!(meta.host_server_name, "pigeon.eyrie.af.mil");
    }

    #[test]
    fn smtp_starttls_goes_to_tls() {
        // Synthetic exchange: the corpus has no STARTTLS session. The
        // ClientHello is rdp.pcap frame 7 (RDP's TLS upgrade).
        let f = flow(true, 40000, 25);
        let hello = hex(RDP_HELLO);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"220 mx.example.org ESMTP\r\n"),
                (true, b"EHLO client.example.org\r\n"),
                (false, b"250-mx.example.org\r\n250 STARTTLS\r\n"),
                (true, b"STARTTLS\r\n"),
                (false, b"220 2.0.0 Ready to start TLS\r\n"),
                (true, &hello),
            ],
        );
        let smtp = Verdict::Found(Protocol(3));
        assert_eq!(
            v[..5],
            [
                Verdict::Maybe,
                smtp,
                smtp,
                smtp,
                Verdict::Found(Protocol(29))
            ]
        );
        // Whatever TLS makes of the hello, the flow is SMTPS.
        assert!(matches!(
            v[5],
            Verdict::Found(Protocol(29)) | Verdict::Done(Protocol(29))
        ));
    }

    #[test]
    fn pop3_from_greeting_and_command() {
        // pop3.pcap frames 4, 6: USER shows no STLS will come.
        let f = flow(true, 35287, 110);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (false, b"+OK POP server ready H migmxus005\r\n"),
                (true, b"user cicciopernacchio@mail.com\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(Protocol(2))]);
        assert_eq!(meta, Metadata::default());
    }

    #[test]
    fn pop3_follows_commands_until_clear_text() {
        // pop3.pcap frames 48, 49, 51, 52, 53, 54.
        let f = flow(true, 26284, 110);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"+OK POP server ready H mimap8 0MHXFQ-1VDgSF1308-003NYq\r\n"),
                (true, b"AUTH\r\n"),
                (false, b"-ERR 1 argument required\r\n"),
                (true, b"CAPA\r\n"),
                (
                    false,
                    b"+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSTLS\r\nSASL PLAIN\r\nIMPLEMENTATION trinity\r\n.\r\n",
                ),
                (true, b"AUTH PLAIN\r\n"),
            ],
        );
        let pop3 = Verdict::Found(Protocol(2));
        assert_eq!(
            v,
            [
                Verdict::Maybe,
                pop3,
                pop3,
                pop3,
                pop3,
                Verdict::Done(Protocol(2))
            ]
        );
    }

    #[test]
    fn pop3_stls_is_pops() {
        // pop3.pcap frames 35, 36 then a synthetic STLS exchange.
        let f = flow(true, 26272, 110);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (
                    false,
                    b"+OK POP server ready H mimap4 0MHoUr-1VDxRD3Ui5-003eq2\r\n",
                ),
                (true, b"CAPA\r\n"),
                (true, b"STLS\r\n"),
                (false, b"+OK Begin TLS negotiation\r\n"),
            ],
        );
        assert_eq!(v[3], Verdict::Found(Protocol(23)));
    }

    #[test]
    fn imap_from_greeting_and_tagged_command() {
        // imap.pcap frames 4, 6, 7, 9, 11.
        let f = flow(true, 46045, 143);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"* OK IMAP4Rev1 Server Version 4.9.04.012\r\n"),
                (true, b"C00000 CAPABILITY\r\n"),
                (
                    false,
                    b"* CAPABILITY IMAP4rev1 IDLE AUTH=LOGIN AUTH=PLAIN AUTH=CRAM-MD5\r\n",
                ),
                (false, b"C00000 OK CAPABILITY completed\r\n"),
                (true, b"C00001 LOGIN samir pfres\r\n"),
            ],
        );
        let imap = Verdict::Found(Protocol(4));
        assert_eq!(
            v,
            [Verdict::Maybe, imap, imap, imap, Verdict::Done(Protocol(4))]
        );
    }

    #[test]
    fn imap_starttls_is_imaps() {
        // Synthetic: no IMAP STARTTLS in the corpus.
        let f = flow(true, 40000, 143);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"* OK ready\r\n"),
                (true, b"a1 STARTTLS\r\n"),
                (false, b"a1 OK Begin TLS negotiation now\r\n"),
            ],
        );
        assert_eq!(v[2], Verdict::Found(Protocol(51)));
    }

    #[test]
    fn refused_starttls_stays_plain() {
        let f = flow(true, 40000, 25);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, SMTP_220),
                (true, b"EHLO a\r\n"),
                (true, b"STARTTLS\r\n"),
                (false, b"454 TLS not available\r\n"),
            ],
        );
        assert_eq!(v[3], Verdict::Done(Protocol(3)));
    }

    #[test]
    fn not_other_protocols() {
        // ftp.pcap frames 4, 6: a 220 greeting, then an FTP command.
        let f = flow(true, 50694, 21);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"220 (vsFTPd 3.0.3)\r\n"),
                (true, b"USER anonymous\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        // resp.pcap-like Redis: the client speaks first; "+OK" does not make POP3.
        let f = flow(true, 51882, 6379);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"AUTH secret\r\n"), (false, b"+OK\r\n")],
        );
        assert_eq!(v, [Verdict::No, Verdict::No]);
        // An HTTP request (synthetic).
        let (v, _) = run(dissect, &f, &[(true, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")]);
        assert_eq!(v, [Verdict::No]);
        // A TLS ClientHello (rdp.pcap frame 7), and a UDP flow.
        let (v, _) = run(dissect, &f, &[(true, &hex(RDP_HELLO))]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(dissect, &flow(false, 1, 25), &[(true, SMTP_220)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(true, 2127, 25);
        let ehlo = b"EHLO delta.peach.mil\r\nSTARTTLS\r\n";
        for n in 0..=SMTP_220.len() {
            let _ = run(dissect, &f, &[(false, &SMTP_220[..n]), (true, ehlo)]);
        }
        for n in 0..=ehlo.len() {
            let _ = run(dissect, &f, &[(false, SMTP_220), (true, &ehlo[..n])]);
        }
        assert_eq!(last_line(b"a\r\nbc\r\n"), Some(&b"bc"[..]));
        assert_eq!(last_line(b"bc\n"), Some(&b"bc"[..]));
        assert_eq!(last_line(b"\n"), Some(&b""[..]));
        assert_eq!(last_line(b"bc"), None);
        assert_eq!(first_line(b"ab\r\ncd"), Line::Full(b"ab"));
        assert_eq!(first_line(b"ab\r"), Line::More);
        assert_eq!(first_line(b"ab\x16"), Line::Bad);
        assert_eq!(
            first_line(b"\x16\x03\x01\n"),
            Line::Bad,
            "binary, line feed or not"
        );
        assert_eq!(first_line(b"\r\nab"), Line::Full(b""));
    }
}
