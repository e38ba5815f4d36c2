//! Telnet: option negotiation at the start of a connection.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// Telnet.
const TELNET: Protocol = Protocol(77);

/// Interpret As Command.
const IAC: u8 = 0xff;
/// Subnegotiation begin and end.
const SB: u8 = 0xfa;
const SE: u8 = 0xf0;
/// WILL, WONT, DO, DONT.
const NEGOTIATE: std::ops::RangeInclusive<u8> = 0xfb..=0xfe;
/// Highest option code accepted (the IANA registry ends at 49; 255 is
/// EXOPL).
const MAX_OPTION: u8 = 49;
/// Commands read at most.
const MAX_COMMANDS: usize = 32;
/// Longest subnegotiation read.
const MAX_SB: usize = 256;

/// Telnet (`Protocol(77)`): a stream that starts with IAC commands, at
/// least one of them a WILL/WONT/DO/DONT of a known option, all well
/// formed up to the first data byte or the end. `Done` on the first such
/// stream (nothing else is read).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match (
        negotiation(pkt.client_stream),
        negotiation(pkt.server_stream),
    ) {
        (Some(true), _) | (_, Some(true)) => Verdict::Done(TELNET),
        (Some(false), Some(false)) => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// Whether `stream` starts with a valid negotiation: `Some(true)` yes,
/// `Some(false)` no, `None` not known yet (empty, or one command cut).
fn negotiation(stream: &[u8]) -> Option<bool> {
    if stream.is_empty() {
        return None;
    }
    let mut rest = stream;
    let mut negotiated = false;
    for _ in 0..MAX_COMMANDS {
        match rest {
            [] => break,
            [IAC] => return negotiated.then_some(true),
            [IAC, cmd, tail @ ..] if NEGOTIATE.contains(cmd) => {
                let Some((&opt, tail)) = tail.split_first() else {
                    return negotiated.then_some(true);
                };
                if opt > MAX_OPTION && opt != 0xff {
                    return Some(false);
                }
                negotiated = true;
                rest = tail;
            }
            [IAC, SB, tail @ ..] => {
                let body = tail.get(..MAX_SB).unwrap_or(tail);
                match body.windows(2).position(|w| w == [IAC, SE]) {
                    Some(end) => rest = tail.get(end + 2..).unwrap_or_default(),
                    None if tail.len() < MAX_SB => return negotiated.then_some(true),
                    None => return Some(false),
                }
            }
            // Other commands (NOP, GA, ...) but not a doubled IAC (data).
            [IAC, 0xf1..=0xf9, tail @ ..] => rest = tail,
            // Data after the commands.
            _ => break,
        }
    }
    Some(negotiated)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "telnet",
    protocols: &[Protocol(77)],
    tcp: true,
    udp: false,
    ports: &[23],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "telnet.pcap frames 4,5,7,9",
        tcp: true,
        server_port: 23,
        packets: &[
            (
                true,
                "fffd03fffb18fffb1ffffb20fffb21fffb22fffb27fffd05fffb23",
            ),
            (false, "fffd25"),
            (true, "fffc25"),
            (false, "fffb03fffd18fffd1ffffd20fffd21fffd22fffa22010bfff0"),
        ],
        protocol: Protocol(77),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// telnet.pcap frame 4 (client), 5 (server).
    const CLIENT: &str = "fffd03fffb18fffb1ffffb20fffb21fffb22fffb27fffd05fffb23";
    const SERVER: &str = "fffd25";

    #[test]
    fn negotiation_from_client() {
        let f = flow(true, 1550, 23);
        let (v, meta) = run(dissect, &f, &[(true, &hex(CLIENT))]);
        assert_eq!(v, [Verdict::Done(TELNET)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(SERVER))]);
        assert_eq!(v, [Verdict::Done(TELNET)]);
    }

    #[test]
    fn subnegotiation_and_data() {
        // telnet.pcap frame 9 (ends with a subnegotiation), then 27 (data)
        // after synthetic frame 5.
        let f = flow(true, 1550, 23);
        let nine = hex("fffb03fffd18fffd1ffffd20fffd21fffd22fffa22010bfff0");
        assert_eq!(negotiation(&nine), Some(true));
        let data = hex("0d0a4f70656e4253442f6933383620286f6f662920287474797032290d0a0d0a");
        assert_eq!(negotiation(&data), Some(false));
        let mut both = hex(SERVER);
        both.extend_from_slice(&data);
        assert_eq!(negotiation(&both), Some(true));
        let (v, _) = run(dissect, &f, &[(true, b"fake\r\n"), (false, &data)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 23);
        // An HTTP request (synthetic), a TLS record start (rdp.pcap frame
        // 7), an SSH banner (ssh.pcap frame 4).
        for (from_client, bytes) in [
            (true, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
            (true, hex("16030100a8010000a403035cef9e29f7")),
            (false, b"SSH-2.0-OpenSSH_5.3\r\n".to_vec()),
        ] {
            let (v, _) = run(dissect, &f, &[(from_client, &bytes), (!from_client, b"x")]);
            assert_eq!(v[1], Verdict::No);
        }
        // IAC with an unknown option, or a doubled IAC (data 0xff).
        assert_eq!(negotiation(&[IAC, 0xfb, 0x80]), Some(false));
        assert_eq!(negotiation(&[IAC, IAC, 0x01]), Some(false));
    }

    #[test]
    fn prefixes_do_not_panic() {
        let bytes = hex(
            "fffa1f00500020fff0fffa220301000003620304020f05000007621c08020409421a0a027f0b02150f0211100213110000120000fff0fffd03fffa22010ffff0",
        );
        for n in 0..=bytes.len() {
            let _ = negotiation(&bytes[..n]);
            let _ = run(dissect, &flow(true, 1, 23), &[(true, &bytes[..n])]);
        }
        assert_eq!(negotiation(&bytes), Some(true));
    }
}
