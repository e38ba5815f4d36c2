//! FTP control connections, and their `AUTH TLS` upgrade to TLS.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::mail::{Answer, after_word, answer, first_line, first_word_in, last_line};
use crate::proto::tls;

/// FTP_CONTROL.
const FTP: Protocol = Protocol(1);

/// Commands an FTP client may start with. None of them starts an SMTP
/// (EHLO/HELO) or NNTP session, and the `220` greeting is not NNTP's.
const FIRST_COMMANDS: &[&str] = &[
    "USER", "AUTH", "FEAT", "SYST", "OPTS", "HOST", "CLNT", "PASS", "ACCT", "PBSZ", "PROT", "PWD",
    "TYPE", "PASV", "EPSV", "CWD", "LANG", "SITE",
];

/// Commands a client may send before asking for TLS (RFC 4217): any
/// other shows that the session goes on in clear text.
const BEFORE_AUTH: &[&str] = &[
    "AUTH", "FEAT", "SYST", "OPTS", "HOST", "CLNT", "LANG", "NOOP",
];

/// Packets with payload within which the client asks for TLS, or the
/// session is taken to go on in clear text.
const AUTH_WAIT: u32 = 16;

/// `AUTH` mechanisms that ask for TLS (RFC 4217 and the older drafts).
const TLS_MECHANISMS: &[&str] = &["TLS", "SSL", "TLS-C", "TLS-P"];

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Detected: the greeting and a first command were seen.
    ftp: bool,
    /// Stream lengths (client, server) when the client sent `AUTH TLS`.
    pending: Option<[usize; 2]>,
    /// After an accepted `AUTH TLS`: where TLS starts in each stream.
    tls: Option<[usize; 2]>,
}

/// FTP control (`Protocol(1)`, "FTP_CONTROL"): the server's `220`
/// greeting and a first client command that FTP has and SMTP does not
/// start with. Then the commands are followed until the session shows
/// whether it goes on in TLS: an `AUTH TLS` (or `SSL`) answered `234`
/// hands the rest of both streams to the TLS dissector (the flow stays
/// FTP_CONTROL, as nDPI has no FTPS), any command but those allowed
/// before it ends detection.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    tls::after_starttls(pkt, scratch, meta, |st: &mut State, _| {
        (step(pkt, st), st.tls.map(|start| (start, FTP)))
    })
}

/// Detection, then `AUTH TLS` tracking (the TLS part is left to `dissect`).
fn step(pkt: &Packet<'_>, st: &mut State) -> Verdict {
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    if !st.ftp {
        match detect(pkt) {
            Verdict::Done(_) => st.ftp = true,
            verdict => return verdict,
        }
    }
    if st.tls.is_some() {
        return Verdict::Found(FTP);
    }
    if st.pending.is_none() && pkt.packets() >= AUTH_WAIT {
        return Verdict::Done(FTP);
    }
    if pkt.from_client {
        let Some(line) = last_line(client) else {
            return Verdict::Found(FTP);
        };
        if !first_word_in(line, BEFORE_AUTH) {
            return Verdict::Done(FTP);
        }
        if first_word_in(line, &["AUTH"]) && first_word_in(after_word(line), TLS_MECHANISMS) {
            st.pending = Some([client.len(), server.len()]);
        }
        return Verdict::Found(FTP);
    }
    let Some([client_end, server_start]) = st.pending else {
        return Verdict::Found(FTP);
    };
    // A multi-line reply (`234-...`) goes on to its last line.
    let accepts = |line: &[u8]| match line.get(3) {
        Some(b'-') => None,
        _ => Some(line.starts_with(b"234")),
    };
    match answer(server, server_start, accepts) {
        Answer::More => Verdict::Found(FTP),
        Answer::Refused => {
            // Refused: the client may ask again or go on in clear text.
            st.pending = None;
            Verdict::Found(FTP)
        }
        Answer::Accepted(server_tls) => {
            st.tls = Some([client_end, server_tls]);
            Verdict::Found(FTP)
        }
    }
}

/// `Done` when the greeting and a first command show FTP.
fn detect(pkt: &Packet<'_>) -> Verdict {
    let server = first_line(pkt.server_stream).check(|line| {
        line.strip_prefix(b"220")
            .is_some_and(|rest| rest.first().is_none_or(|b| b" -".contains(b)))
    });
    let client = first_line(pkt.client_stream).check(|line| {
        first_word_in(line, FIRST_COMMANDS)
            && line.iter().all(|&b| (0x20..0x7f).contains(&b) || b >= 0x80)
    });
    match (server, client) {
        (Some(true), Some(true)) => Verdict::Done(FTP),
        (Some(false), _) | (_, Some(false)) => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ftp",
    protocols: &[Protocol(1)],
    tcp: true,
    udp: false,
    ports: &[21],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "ftp.pcap frames 4,6,8,10",
        tcp: true,
        server_port: 21,
        packets: &[
            (false, "323230202876734654506420332e302e33290d0a"),
            (true, "5553455220616e6f6e796d6f75730d0a"),
            (
                false,
                "33333120506c656173652073706563696679207468652070617373776f72642e\
             0d0a",
            ),
            (true, "50415353204e63465450400d0a"),
        ],
        protocol: Protocol(1),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn greeting_and_user() {
        // ftp.pcap frames 4, 6.
        let f = flow(true, 50694, 21);
        let greeting = hex("323230202876734654506420332e302e33290d0a");
        let (v, meta) = run(
            dissect,
            &f,
            &[(false, &greeting), (true, b"USER anonymous\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(FTP)]);
        assert_eq!(meta, Metadata::default());
    }

    #[test]
    fn multiline_greeting_split() {
        // Synthetic: a `220-` greeting cut in two segments, then AUTH TLS.
        let f = flow(true, 40000, 21);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"220-Welcome"),
                (false, b"\r\n220 ready\r\n"),
                (true, b"AUTH TLS\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Found(FTP)]);
    }

    #[test]
    fn auth_tls_hands_the_streams_to_tls() {
        // Synthetic: the corpus has no FTP session upgraded to TLS. The
        // hello is 443-curl.pcap frame 4.
        let hello = hex(include_str!("tls/testdata/443-curl-4.hex"));
        let f = flow(true, 40000, 21);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (false, b"220 ready\r\n"),
                (true, b"FEAT\r\n"),
                (false, b"211-Features:\r\n AUTH TLS\r\n211 End\r\n"),
                (true, b"AUTH TLS\r\n"),
                (false, b"234 Proceed with negotiation.\r\n"),
                (true, &hello),
            ],
        );
        assert_eq!(v[0], Verdict::Maybe);
        assert!(v[1..].iter().all(|&v| v == Verdict::Found(FTP)), "{v:?}");
        let ssl = meta.ssl.unwrap();
        assert_eq!(ssl.client_ja4, "t12d6707h2_2955a3196ffa_c83f907a73d3");
        assert_eq!(meta.host_server_name, "www.ntop.org");
    }

    #[test]
    fn refused_auth_tls_goes_on_in_clear_text() {
        let f = flow(true, 40000, 21);
        let (v, meta) = run(
            dissect,
            &f,
            &[
                (false, b"220 ready\r\n"),
                (true, b"AUTH TLS\r\n"),
                (false, b"534 Local policy on server does not allow TLS.\r\n"),
                (true, b"USER anonymous\r\n"),
            ],
        );
        let found = Verdict::Found(FTP);
        assert_eq!(v, [Verdict::Maybe, found, found, Verdict::Done(FTP)]);
        assert_eq!(meta, Metadata::default());
        // A client that never asks: done after AUTH_WAIT packets.
        let mut packets = vec![(false, &b"220 ready\r\n"[..])];
        packets.resize(AUTH_WAIT as usize, (true, b"FEAT\r\n"));
        let (v, _) = run(dissect, &f, &packets);
        assert_eq!(v.last(), Some(&Verdict::Done(FTP)));
    }

    #[test]
    fn not_other_protocols() {
        // smtp.pcap frames 4, 6: a 220 greeting, then EHLO.
        let f = flow(true, 2127, 25);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (
                    false,
                    b"220 pigeon.eyrie.af.mil ESMTP Sendmail 8.8.7/8.8.7\r\n",
                ),
                (true, b"EHLO delta.peach.mil\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        // pop3.pcap frames 4, 6: USER after a +OK greeting.
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"+OK POP server ready H migmxus005\r\n"),
                (true, b"user cicciopernacchio@mail.com\r\n"),
            ],
        );
        assert_eq!(v[0], Verdict::No);
        // An HTTP request (synthetic), a TLS ClientHello (rdp.pcap frame 7).
        let (v, _) = run(dissect, &f, &[(true, b"GET / HTTP/1.1\r\n\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex("16030100a8010000a403035cef9e29f7"))],
        );
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(true, 50694, 21);
        let greeting = b"220 (vsFTPd 3.0.3)\r\n";
        for n in 0..=greeting.len() {
            let (v, _) = run(
                dissect,
                &f,
                &[(false, &greeting[..n]), (true, b"USER anonymous\r\n")],
            );
            assert_eq!(v[1] == Verdict::Done(FTP), n == greeting.len());
        }
    }
}
