//! NNTP (Usenet, RFC 3977) over TCP: the server greets with `200` (posting
//! allowed) or `201` (not allowed), then the client sends commands.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};
use crate::proto::mail::{Line, first_line, first_word_in};

/// Usenet.
const USENET: Protocol = Protocol(93);
/// Client commands (RFC 3977, 4643, 2980).
const COMMANDS: &[&str] = &[
    "MODE",
    "AUTHINFO",
    "CAPABILITIES",
    "GROUP",
    "LISTGROUP",
    "LIST",
    "ARTICLE",
    "HEAD",
    "BODY",
    "STAT",
    "XOVER",
    "OVER",
    "XHDR",
    "HDR",
    "NEWNEWS",
    "NEWGROUPS",
    "POST",
    "IHAVE",
    "CHECK",
    "TAKETHIS",
    "DATE",
    "HELP",
    "STARTTLS",
    "XFEATURE",
];

/// Usenet when the server's first line is a `200`/`201` greeting that
/// names NNTP, or any such greeting followed by an NNTP command from the
/// client.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || !pkt.server_first {
        return Verdict::No;
    }
    let greeting = match first_line(pkt.server_stream) {
        Line::Full(line) if line.starts_with(b"200 ") || line.starts_with(b"201 ") => line,
        Line::More if greets(pkt.server_stream) => return Verdict::Maybe,
        _ => return Verdict::No,
    };
    if greeting.windows(4).any(|w| w.eq_ignore_ascii_case(b"NNTP")) {
        return Verdict::Done(USENET);
    }
    match first_line(pkt.client_stream).check(|l| first_word_in(l, COMMANDS)) {
        Some(true) => Verdict::Done(USENET),
        Some(false) => Verdict::No,
        None => Verdict::Maybe,
    }
}

/// Whether `stream` starts with `200 ` or `201 ` (or a prefix of them).
fn greets(stream: &[u8]) -> bool {
    let n = stream.len().min(4);
    [b"200 ", b"201 "].iter().any(|g| g[..n] == stream[..n])
}

/// [`Dissector::first`]: the server greets first, with a 2xx code.
fn nntp_first(from_client: bool, byte: u8) -> bool {
    !from_client && byte == b'2'
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "nntp",
    protocols: &[USENET],
    tcp: true,
    udp: false,
    ports: &[119],
    ports_only: false,
    first: nntp_first,
    run: dissect,
    samples: &[Sample {
        origin: "nntp.pcap frames 4,6 (greeting cut, MODE READER)",
        tcp: true,
        server_port: 119,
        packets: &[
            (
                false,
                "323030204c6561666e6f6465204e4e5450204461656d6f6e0d0a",
            ),
            (true, "4d4f4445205245414445520d0a"),
        ],
        protocol: USENET,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, run};

    #[test]
    fn greeting_and_command() {
        let f = flow(true, 55630, 119);
        // nntp.pcap frame 4 (first line).
        let (v, meta) = run(
            dissect,
            &f,
            &[(
                false,
                b"200 Leafnode NNTP Daemon, version 1.11.7.rc1 running at x\r\n",
            )],
        );
        assert_eq!(v, [Verdict::Done(USENET)]);
        assert_eq!(meta, Metadata::default());
        // A greeting that does not say NNTP, then MODE READER (frame 6).
        let (v, _) = run(
            dissect,
            &f,
            &[
                (
                    false,
                    b"200 news.example.org InterNetNews NNRP server ready\r\n",
                ),
                (true, b"MODE READER\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(USENET)]);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"20"),
                (false, b"1 ready (no posting)\r\n"),
                (true, b"GROUP a.b\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(USENET)]);
    }

    #[test]
    fn not_usenet() {
        let f = flow(true, 40000, 119);
        let (v, _) = run(dissect, &f, &[(false, b"220 smtp.example.org ESMTP\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(false, b"200 ok\r\n"), (true, b"EHLO x\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, b"GROUP a.b\r\n")]);
        assert_eq!(v, [Verdict::No]);
    }
}
