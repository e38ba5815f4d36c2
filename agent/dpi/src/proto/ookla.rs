//! Ookla's speedtest protocol over TCP (port 8080, also 5060).
//!
//! A text protocol of newline-ended commands: the client greets with
//! `HI` (alone, or followed by a space and a session id) and the server
//! answers `HELLO` and its version (`HELLO 2.9 (2.9.2) 2021-11-30...`).
//! Claimed on the greeting and its answer.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// Ookla.
const OOKLA: Protocol = Protocol(191);
/// Longest greeting line taken as real.
const MAX_LINE: usize = 128;

/// See the module's documentation.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp || pkt.server_first || !greeting(pkt.client_stream) {
        return Verdict::No;
    }
    let s = pkt.server_stream;
    let want = b"HELLO ";
    let n = s.len().min(want.len());
    if s[..n] != want[..n] {
        return Verdict::No;
    }
    if s.len() >= want.len() {
        return Verdict::Done(OOKLA);
    }
    if pkt.seen[0] + pkt.seen[1] < 4 {
        Verdict::Maybe
    } else {
        Verdict::No
    }
}

/// Whether the client's bytes open with its greeting line (or a prefix
/// of one, before the server answered).
fn greeting(c: &[u8]) -> bool {
    match c {
        [b'H'] | [b'H', b'I'] | [b'H', b'I', b'\n', ..] => true,
        [b'H', b'I', b' ', id @ ..] => {
            let line = id.iter().position(|&b| b == b'\n').map_or(id, |i| &id[..i]);
            line.len() < MAX_LINE
                && !line.is_empty()
                && line
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
        _ => false,
    }
}

/// ookla.pcap, stream 3 (client `HI`, server `HELLO 2.4 ...`) and
/// stream 0 (`HI` with a session id).
const HI: &str = "48490a";
const HELLO: &str = "48454c4c4f20322e3420323031362d31302d30362e313332342e393936616239310a";
const HI_ID: &str =
    "48492038653137636236352d633662352d346233392d616463632d3937303036613165343533370a";

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ookla",
    protocols: &[OOKLA],
    tcp: true,
    udp: false,
    ports: &[8080, 5060],
    ports_only: false,
    first: |from_client, b| from_client && b == b'H',
    run: dissect,
    samples: &[
        Sample {
            origin: "ookla.pcap stream 3",
            tcp: true,
            server_port: 8080,
            packets: &[(true, HI), (false, HELLO)],
            protocol: OOKLA,
        },
        Sample {
            origin: "ookla.pcap stream 0",
            tcp: true,
            server_port: 8080,
            packets: &[(true, HI_ID), (false, HELLO)],
            protocol: OOKLA,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    #[test]
    fn greeting_and_answer() {
        let f = flow(true, 51215, 8080);
        for hi in [HI, HI_ID] {
            let (v, _) = run(dissect, &f, &[(true, &hex(hi)), (false, &hex(HELLO))]);
            assert_eq!(v, [Verdict::Maybe, Verdict::Done(OOKLA)], "{hi}");
        }
    }

    #[test]
    fn rejects_others() {
        use crate::dissect::testing::HTTP_REQUEST_HEAD;
        let f = flow(true, 40000, 8080);
        let (v, _) = run(dissect, &f, &[(true, &hex(HTTP_REQUEST_HEAD))]);
        assert_eq!(v, [Verdict::No]);
        // HEAD requests, other answers.
        let (v, _) = run(dissect, &f, &[(true, b"HEAD / HTTP/1.1\r\n")]);
        assert_eq!(v, [Verdict::No]);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, b"HI\n"), (false, b"HTTP/1.1 400 Bad\r\n")],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, b"HI there!\n")]);
        assert_eq!(v, [Verdict::No]);
    }
}
