//! SSH: the identification strings both sides send first.

use flowstat_core::{Metadata, Protocol, Ssh, wire_text};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// SSH.
const SSH: Protocol = Protocol(92);

/// Longest identification line (RFC 4253: 255 bytes with CR LF).
const MAX_BANNER: usize = 255;

/// Lines a server may send before its identification (RFC 4253 4.2).
const MAX_PRE_LINES: usize = 8;

/// What a stream's start says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Banner<'a> {
    /// Nothing yet, or the start of a banner.
    More,
    /// The identification string, without CR LF.
    Found(&'a [u8]),
    /// Not SSH.
    Bad,
}

/// SSH (`Protocol(92)`): `SSH-<proto>-<software>` lines at the start of
/// the client's stream and of the server's (which may send other lines
/// first). The banners go to `ssh.client` and `ssh.server`. `Found` after
/// the first, `Done` when both are known (or the other side is not SSH).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    let client = banner(pkt.client_stream, 0);
    let server = banner(pkt.server_stream, MAX_PRE_LINES);
    for (side, is_client) in [(client, true), (server, false)] {
        if let Banner::Found(text) = side {
            let ssh = meta.ssh.get_or_insert_with(Box::<Ssh>::default);
            let slot = if is_client {
                &mut ssh.client
            } else {
                &mut ssh.server
            };
            if slot.is_empty() {
                *slot = wire_text(text, MAX_BANNER);
            }
        }
    }
    match (client, server) {
        (Banner::Found(_), Banner::Found(_) | Banner::Bad) | (Banner::Bad, Banner::Found(_)) => {
            Verdict::Done(SSH)
        }
        (Banner::Found(_), Banner::More) | (Banner::More, Banner::Found(_)) => Verdict::Found(SSH),
        (Banner::More, Banner::More) => Verdict::Maybe,
        (Banner::Bad, _) | (_, Banner::Bad) => Verdict::No,
    }
}

/// The identification string at the start of `stream`, after at most
/// `pre_lines` other text lines.
fn banner(stream: &[u8], pre_lines: usize) -> Banner<'_> {
    let mut rest = stream;
    for _ in 0..=pre_lines {
        let end = rest.iter().take(MAX_BANNER).position(|&b| b == b'\n');
        let line = end.and_then(|i| rest.get(..i)).unwrap_or(rest);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let is_banner = line.starts_with(b"SSH-");
        let text = line
            .iter()
            .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t' || b == b'\r');
        match end {
            // `SSH-` protoversion `-` softwareversion.
            Some(_) if is_banner => {
                let mut parts = line.splitn(3, |&b| b == b'-').skip(1);
                let proto = parts.next().unwrap_or_default();
                let software = parts.next().unwrap_or_default();
                let ok = text
                    && !proto.is_empty()
                    && proto.iter().all(|&b| b.is_ascii_digit() || b == b'.')
                    && !software.is_empty();
                return if ok { Banner::Found(line) } else { Banner::Bad };
            }
            // Another line, allowed before the server's banner.
            Some(i) if text && pre_lines > 0 => rest = rest.get(i + 1..).unwrap_or_default(),
            // Incomplete, and may still become a banner (or a line before it).
            None if rest.len() < MAX_BANNER
                && text
                && (is_banner || b"SSH-".starts_with(line) || pre_lines > 0) =>
            {
                return Banner::More;
            }
            _ => return Banner::Bad,
        }
    }
    Banner::Bad
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ssh",
    protocols: &[Protocol(92)],
    tcp: true,
    udp: false,
    ports: &[22],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "ssh.pcap frames 4,6,8,10",
        tcp: true,
        server_port: 22,
        packets: &[
            (false, "5353482d322e302d4f70656e5353485f352e330d0a"),
            (true, "5353482d322e302d4f70656e5353485f352e360d0a"),
            (
                true,
                "00000384041418ba31471acef22d8889d6d144500df40000007e646966666965\
             2d68656c6c6d616e2d67726f75702d65786368616e67652d7368613235362c64\
             69666669652d68656c6c6d616e2d67726f75702d65786368616e67652d736861\
             312c6469666669652d68656c6c6d616e2d67726f757031342d736861312c6469\
             666669652d68656c6c6d616e2d67726f7570312d73686131000000837373682d\
             7273612d636572742d763031406f70656e7373682e636f6d2c7373682d647373\
             2d636572742d763031406f70656e7373682e636f6d2c7373682d7273612d6365\
             72742d763030406f70656e7373682e636f6d2c7373682d6473732d636572742d\
             763030406f70656e7373682e636f6d2c7373682d7273612c7373682d64737300\
             00009d6165733132382d6374722c6165733139322d6374722c6165733235362d\
             6374722c617263666f75723235362c617263666f75723132382c616573313238\
             2d6362632c336465732d6362632c626c6f77666973682d6362632c6361737431\
             32382d6362632c6165733139322d6362632c6165733235362d6362632c617263\
             666f75722c72696a6e6461656c2d636263406c797361746f722e6c69752e7365\
             0000009d6165733132382d6374722c6165733139322d6374722c616573323536\
             2d6374722c617263666f75723235362c617263666f75723132382c6165733132",
            ),
            (
                false,
                "0000030c0a1400f2294e8c29fd1dc45641ba5dafaad70000007e646966666965\
             2d68656c6c6d616e2d67726f75702d65786368616e67652d7368613235362c64\
             69666669652d68656c6c6d616e2d67726f75702d65786368616e67652d736861\
             312c6469666669652d68656c6c6d616e2d67726f757031342d736861312c6469\
             666669652d68656c6c6d616e2d67726f7570312d736861310000000f7373682d\
             7273612c7373682d6473730000009d6165733132382d6374722c616573313932\
             2d6374722c6165733235362d6374722c617263666f75723235362c617263666f\
             75723132382c6165733132382d6362632c336465732d6362632c626c6f776669\
             73682d6362632c636173743132382d6362632c6165733139322d6362632c6165\
             733235362d6362632c617263666f75722c72696a6e6461656c2d636263406c79\
             7361746f722e6c69752e73650000009d6165733132382d6374722c6165733139\
             322d6374722c6165733235362d6374722c617263666f75723235362c61726366\
             6f75723132382c6165733132382d6362632c336465732d6362632c626c6f7766\
             6973682d6362632c636173743132382d6362632c6165733139322d6362632c61\
             65733235362d6362632c617263666f75722c72696a6e6461656c2d636263406c\
             797361746f722e6c69752e736500000069686d61632d6d64352c686d61632d73",
            ),
        ],
        protocol: Protocol(92),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// ssh.pcap frame 4 (server) and 6 (client).
    const SERVER: &[u8] = b"SSH-2.0-OpenSSH_5.3\r\n";
    const CLIENT: &[u8] = b"SSH-2.0-OpenSSH_5.6\r\n";

    #[test]
    fn both_banners() {
        // ssh.pcap frames 4, 6 (the server speaks first).
        let f = flow(true, 58395, 22);
        let (v, meta) = run(dissect, &f, &[(false, SERVER), (true, CLIENT)]);
        assert_eq!(v, [Verdict::Found(SSH), Verdict::Done(SSH)]);
        let ssh = meta.ssh.unwrap();
        assert_eq!(ssh.client, "SSH-2.0-OpenSSH_5.6");
        assert_eq!(ssh.server, "SSH-2.0-OpenSSH_5.3");
    }

    #[test]
    fn client_first_split_banner() {
        // ssh.pcap frames 262, 264, the client's banner cut in two.
        let client = hex(
            "5353482d322e302d4f70656e5353485f382e327031205562756e74752d347562756e7475302e31310d0a",
        );
        let server = hex("5353482d322e302d4150414348452d535348442d322e352e300d0a");
        let f = flow(true, 58496, 8000);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &client[..6]), (true, &client[6..]), (false, &server)],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Found(SSH), Verdict::Done(SSH)]);
        let ssh = meta.ssh.unwrap();
        assert_eq!(ssh.client, "SSH-2.0-OpenSSH_8.2p1 Ubuntu-4ubuntu0.11");
        assert_eq!(ssh.server, "SSH-2.0-APACHE-SSHD-2.5.0");
    }

    #[test]
    fn server_lines_before_banner() {
        // Synthetic (RFC 4253 4.2): no such server in the corpus.
        let f = flow(true, 40000, 22);
        let (v, meta) = run(
            dissect,
            &f,
            &[(false, b"Welcome\r\nSSH-2.0-x\r\n"), (true, CLIENT)],
        );
        assert_eq!(v, [Verdict::Found(SSH), Verdict::Done(SSH)]);
        assert_eq!(meta.ssh.unwrap().server, "SSH-2.0-x");
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 22);
        // An HTTP request (synthetic), an FTP greeting (ftp.pcap frame 4),
        // an SSH packet that is not a banner (ssh.pcap frame 12).
        let (v, _) = run(dissect, &f, &[(true, b"GET / HTTP/1.1\r\n\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[
                (false, b"220 (vsFTPd 3.0.3)\r\n"),
                (true, b"USER anonymous\r\n"),
            ],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, meta) = run(dissect, &f, &[(true, &hex("000000140622000004"))]);
        assert_eq!(v, [Verdict::No]);
        assert!(meta.ssh.is_none());
        let (v, _) = run(dissect, &f, &[(true, b"SSH-x-y\r\n")]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(true, 58395, 22);
        for n in 0..=SERVER.len() {
            let (v, _) = run(dissect, &f, &[(false, &SERVER[..n]), (true, CLIENT)]);
            assert!(v.iter().all(|v| *v != Verdict::No));
        }
    }
}
