//! Omron FINS over UDP and FINS/TCP.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// FINS.
const FINS: Protocol = Protocol(362);
/// FINS/TCP commands: node address request and response, frame send,
/// frame send error.
const MAX_TCP_COMMAND: u32 = 3;
/// Payload packets a TCP flow may take to show a whole header.
const MAX_PACKETS: u32 = 6;

/// FINS (`Protocol(362)`). TCP: either stream opens with `FINS`, a
/// length of at least 8 and at most 2 KiB, a command 0 to 3. UDP: a FINS
/// header (ICF a command or response, reserved 0, gateway count 2,
/// network addresses below 0x80, unit addresses of a CPU, a CPU bus
/// unit, an inner board or the unit itself) and a known main request
/// code. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        return match tcp(pkt.stream()) {
            Some(true) => Verdict::Done(FINS),
            None if pkt.packets() < MAX_PACKETS => Verdict::Maybe,
            _ => Verdict::No,
        };
    }
    let Some(&[icf, 0, 2, dna, _, da2, sna, _, sa2, _, mrc, _]) = pkt.payload.first_chunk::<12>()
    else {
        return Verdict::No;
    };
    let unit = |u: u8| matches!(u, 0x00 | 0x10..=0x1f | 0xe1 | 0xfe);
    let ok = matches!(icf, 0x80 | 0x81 | 0xc0 | 0xc1)
        && dna < 0x80
        && sna < 0x80
        && unit(da2)
        && unit(sa2)
        && matches!(
            mrc,
            0x01..=0x07 | 0x09 | 0x0c | 0x21 | 0x22 | 0x23 | 0x26 | 0x28
        );
    if ok { Verdict::Done(FINS) } else { Verdict::No }
}

/// Whether `stream` opens with a FINS/TCP header: `None` while cut short.
fn tcp(stream: &[u8]) -> Option<bool> {
    let magic = b"FINS";
    let n = stream.len().min(4);
    if stream[..n] != magic[..n] {
        return Some(false);
    }
    let head = stream.first_chunk::<12>()?;
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let command = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    Some((8..=2048).contains(&len) && command <= MAX_TCP_COMMAND)
}

/// `F` of FINS/TCP, or a UDP header's ICF.
fn start(_from_client: bool, byte: u8) -> bool {
    matches!(byte, b'F' | 0x80 | 0x81 | 0xc0 | 0xc1)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "fins",
    protocols: &[Protocol(362)],
    tcp: true,
    udp: true,
    ports: &[9600],
    ports_only: false,
    first: start,
    run: dissect,
    samples: &[
        Sample {
            origin: "synthetic (Omron W421 7.1): memory area read",
            tcp: false,
            server_port: 9600,
            packets: &[(true, "800002000100000a00010101820064000002")],
            protocol: FINS,
        },
        Sample {
            origin: "synthetic (Omron W421 7.4): FINS/TCP node address request",
            tcp: true,
            server_port: 9600,
            packets: &[(true, "46494e530000000c000000000000000000000000")],
            protocol: FINS,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// Synthetic (Omron W421, 7.1 and 7.4): a UDP memory area read of
    /// DM 100, 2 words, and a FINS/TCP node address request.
    const READ: &str = "800002000100000a0001 0101 82006400 0002";
    const NODE_REQUEST: &str = "46494e53 0000000c 00000000 00000000 00000000";

    #[test]
    fn udp_and_tcp() {
        let (v, meta) = run(dissect, &flow(false, 9600, 9600), &[(true, &hex(READ))]);
        assert_eq!(v, [Verdict::Done(FINS)]);
        assert_eq!(meta, Metadata::default());
        let r = hex(NODE_REQUEST);
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 9600),
            &[(true, &r[..6]), (true, &r[6..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(FINS)]);
    }

    #[test]
    fn not_other_protocols() {
        for bytes in [
            hex("800003000100000a00010101"),
            hex("800002000100000a0001ff01"),
            hex(DNS_QUERY),
            hex(HTTP_REQUEST_HEAD),
        ] {
            let (v, _) = run(dissect, &flow(false, 9600, 9600), &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
            let (v, _) = run(dissect, &flow(true, 9600, 9600), &[(true, &bytes)]);
            assert_eq!(v, [Verdict::No]);
        }
    }
}
