//! Redis serialization protocol (RESP) over TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
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

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "redis",
    protocols: &[Protocol(182)],
    tcp: true,
    udp: false,
    ports: &[6379],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "resp.pcap frames 4,6,8,10",
        tcp: true,
        server_port: 6379,
        packets: &[
            (true, "2a310d0a24370d0a434f4d4d414e440d0a"),
            (
                false,
                "2a3234300d0a2a31300d0a2431310d0a73696e74657273746f72650d0a3a2d33\
             0d0a2a320d0a2b77726974650d0a2b64656e796f6f6d0d0a3a310d0a3a2d310d\
             0a3a310d0a2a330d0a2b4077726974650d0a2b407365740d0a2b40736c6f770d\
             0a2a300d0a2a320d0a2a360d0a24350d0a666c6167730d0a2a320d0a2b52570d\
             0a2b7570646174650d0a2431320d0a626567696e5f7365617263680d0a2a340d\
             0a24340d0a747970650d0a24350d0a696e6465780d0a24340d0a737065630d0a\
             2a320d0a24350d0a696e6465780d0a3a310d0a24390d0a66696e645f6b657973\
             0d0a2a340d0a24340d0a747970650d0a24350d0a72616e67650d0a24340d0a73\
             7065630d0a2a360d0a24370d0a6c6173746b65790d0a3a300d0a24370d0a6b65\
             79737465700d0a3a310d0a24350d0a6c696d69740d0a3a300d0a2a360d0a2435\
             0d0a666c6167730d0a2a320d0a2b524f0d0a2b6163636573730d0a2431320d0a\
             626567696e5f7365617263680d0a2a340d0a24340d0a747970650d0a24350d0a\
             696e6465780d0a24340d0a737065630d0a2a320d0a24350d0a696e6465780d0a\
             3a320d0a24390d0a66696e645f6b6579730d0a2a340d0a24340d0a747970650d\
             0a24350d0a72616e67650d0a24340d0a737065630d0a2a360d0a24370d0a6c61\
             73746b65790d0a3a2d310d0a24370d0a6b6579737465700d0a3a310d0a24350d",
            ),
            (
                false,
                "6b65790d0a3a2d310d0a24370d0a6b6579737465700d0a3a320d0a24350d0a6c\
             696d69740d0a3a300d0a2a300d0a2a31300d0a2431330d0a7a72616e67656279\
             73636f72650d0a3a2d340d0a2a310d0a2b726561646f6e6c790d0a3a310d0a3a\
             310d0a3a310d0a2a330d0a2b40726561640d0a2b40736f727465647365740d0a\
             2b40736c6f770d0a2a300d0a2a310d0a2a360d0a24350d0a666c6167730d0a2a\
             320d0a2b524f0d0a2b6163636573730d0a2431320d0a626567696e5f73656172\
             63680d0a2a340d0a24340d0a747970650d0a24350d0a696e6465780d0a24340d\
             0a737065630d0a2a320d0a24350d0a696e6465780d0a3a310d0a24390d0a6669\
             6e645f6b6579730d0a2a340d0a24340d0a747970650d0a24350d0a72616e6765\
             0d0a24340d0a737065630d0a2a360d0a24370d0a6c6173746b65790d0a3a300d\
             0a24370d0a6b6579737465700d0a3a310d0a24350d0a6c696d69740d0a3a300d\
             0a2a300d0a2a31300d0a2431320d0a70756e7375627363726962650d0a3a2d31\
             0d0a2a340d0a2b7075627375620d0a2b6e6f7363726970740d0a2b6c6f616469\
             6e670d0a2b7374616c650d0a3a300d0a3a300d0a3a300d0a2a320d0a2b407075\
             627375620d0a2b40736c6f770d0a2a300d0a2a300d0a2a300d0a2a31300d0a24\
             350d0a67657465780d0a3a2d320d0a2a320d0a2b77726974650d0a2b66617374",
            ),
            (
                false,
                "6167730d0a2a320d0a2b52570d0a2b64656c6574650d0a2431320d0a62656769\
             6e5f7365617263680d0a2a340d0a24340d0a747970650d0a24350d0a696e6465\
             780d0a24340d0a737065630d0a2a320d0a24350d0a696e6465780d0a3a310d0a\
             24390d0a66696e645f6b6579730d0a2a340d0a24340d0a747970650d0a24350d\
             0a72616e67650d0a24340d0a737065630d0a2a360d0a24370d0a6c6173746b65\
             790d0a3a300d0a24370d0a6b6579737465700d0a3a310d0a24350d0a6c696d69\
             740d0a3a300d0a2a300d0a2a31300d0a24340d0a776169740d0a3a330d0a2a31\
             0d0a2b6e6f7363726970740d0a3a300d0a3a300d0a3a300d0a2a320d0a2b4073\
             6c6f770d0a2b40636f6e6e656374696f6e0d0a2a320d0a2432350d0a72657175\
             6573745f706f6c6963793a616c6c5f7368617264730d0a2432330d0a72657370\
             6f6e73655f706f6c6963793a6167675f6d696e0d0a2a300d0a2a300d0a2a3130\
             0d0a2431310d0a7372616e646d656d6265720d0a3a2d320d0a2a310d0a2b7265\
             61646f6e6c790d0a3a310d0a3a310d0a3a310d0a2a330d0a2b40726561640d0a\
             2b407365740d0a2b40736c6f770d0a2a310d0a2432330d0a6e6f6e6465746572\
             6d696e69737469635f6f75747075740d0a2a310d0a2a360d0a24350d0a666c61\
             67730d0a2a320d0a2b524f0d0a2b6163636573730d0a2431320d0a626567696e",
            ),
        ],
        protocol: Protocol(182),
    }],
};

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
