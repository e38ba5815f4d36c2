//! FTP control connections.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::proto::mail::{first_line, first_word_in};

/// FTP_CONTROL.
const FTP: Protocol = Protocol(1);

/// Commands an FTP client may start with. None of them starts an SMTP
/// (EHLO/HELO) or NNTP session, and the `220` greeting is not NNTP's.
const FIRST_COMMANDS: &[&str] = &[
    "USER", "AUTH", "FEAT", "SYST", "OPTS", "HOST", "CLNT", "PASS", "ACCT", "PBSZ", "PROT", "PWD",
    "TYPE", "PASV", "EPSV", "CWD", "LANG", "SITE",
];

/// FTP control (`Protocol(1)`, "FTP_CONTROL"): the server's `220`
/// greeting and a first client command that FTP has and SMTP does not
/// start with. `Done` when both are seen.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
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
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(FTP)]);
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
