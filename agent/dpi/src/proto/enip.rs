//! EtherNet/IP (ODVA): the encapsulation protocol over TCP and UDP
//! 44818, and CIP class 0/1 I/O over UDP 2222.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// EthernetIP.
const ETHERNET_IP: Protocol = Protocol(278);
/// CIP (implicit I/O).
const CIP: Protocol = Protocol(393);
/// The encapsulation port and the I/O port.
const ENCAP_PORT: u16 = 44818;
const IO_PORT: u16 = 2222;
/// Encapsulation header length.
const HEADER: usize = 24;
/// Encapsulation commands: NOP, ListServices, ListIdentity,
/// ListInterfaces, RegisterSession, UnRegisterSession, SendRRData,
/// SendUnitData, IndicateStatus, Cancel.
const COMMANDS: [u16; 10] = [
    0x0000, 0x0004, 0x0063, 0x0064, 0x0065, 0x0066, 0x006f, 0x0070, 0x0072, 0x0073,
];
/// Common packet format item types seen in I/O: null and connected
/// address, sequenced address, connected data, socket addresses.
const IO_ITEMS: [u16; 6] = [0x0000, 0x00a1, 0x00b1, 0x8000, 0x8001, 0x8002];
/// Payload packets a TCP flow may take to show a whole header.
const MAX_PACKETS: u32 = 6;

/// EthernetIP (`Protocol(278)`): on port 44818, an encapsulation header
/// (little-endian: a defined command, its data length, options 0) at
/// the start of the payload (UDP, filling it) or of either stream (TCP).
/// CIP (`Protocol(393)`): on UDP port 2222 at both ends, a common packet
/// format of 1 to 4 known items that fill the datagram. `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let ports = [pkt.flow.client_port, pkt.flow.server_port];
    if !pkt.tcp && ports == [IO_PORT; 2] {
        return if io(pkt.payload) {
            Verdict::Done(CIP)
        } else {
            Verdict::No
        };
    }
    if !ports.contains(&ENCAP_PORT) {
        return Verdict::No;
    }
    let bytes = if pkt.tcp { pkt.stream() } else { pkt.payload };
    match encapsulation(bytes, pkt.tcp) {
        Some(true) => Verdict::Done(ETHERNET_IP),
        None if pkt.tcp && pkt.packets() < MAX_PACKETS => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// Whether `bytes` open with an encapsulation header: `None` while cut
/// short.
fn encapsulation(bytes: &[u8], stream: bool) -> Option<bool> {
    if let Some(&[c0, c1]) = bytes.first_chunk::<2>()
        && !COMMANDS.contains(&u16::from_le_bytes([c0, c1]))
    {
        return Some(false);
    }
    let head = bytes.first_chunk::<HEADER>()?;
    let len = usize::from(u16::from_le_bytes([head[2], head[3]]));
    let options = &head[20..24];
    Some(
        options == [0; 4]
            && (if stream {
                len <= 1 << 14
            } else {
                HEADER + len == bytes.len()
            }),
    )
}

/// Whether `p` is a CIP I/O datagram: item count (little-endian, 1 to
/// 4), then items (type, length, data) of known types that fill it.
fn io(p: &[u8]) -> bool {
    let Some((&[n0, n1], mut items)) = p.split_first_chunk::<2>() else {
        return false;
    };
    let count = u16::from_le_bytes([n0, n1]);
    if !(1..=4).contains(&count) {
        return false;
    }
    for _ in 0..count {
        let Some((&[t0, t1, l0, l1], rest)) = items.split_first_chunk::<4>() else {
            return false;
        };
        let len = usize::from(u16::from_le_bytes([l0, l1]));
        match rest.get(len..) {
            Some(next) if IO_ITEMS.contains(&u16::from_le_bytes([t0, t1])) => items = next,
            _ => return false,
        }
    }
    items.is_empty()
}

/// An encapsulation command's low byte, or an I/O item count's.
fn start(_from_client: bool, byte: u8) -> bool {
    COMMANDS.iter().any(|&c| c.to_le_bytes()[0] == byte) || (1..=4).contains(&byte)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "enip",
    protocols: &[ETHERNET_IP, CIP],
    tcp: true,
    udp: true,
    ports: &[ENCAP_PORT, IO_PORT],
    ports_only: true,
    first: start,
    run: dissect,
    samples: &[Sample {
        origin: "synthetic (ODVA CIP vol. 2): RegisterSession",
        tcp: true,
        server_port: 44818,
        packets: &[(
            true,
            "65000400000000000000000000000000000000000000000001000000",
        )],
        protocol: ETHERNET_IP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{DNS_QUERY, HTTP_REQUEST_HEAD, flow, hex, run};

    /// Synthetic (ODVA CIP vol. 2, 2-4): a RegisterSession request
    /// (protocol version 1, options 0), and a ListIdentity request.
    const REGISTER: &str = "6500 0400 00000000 00000000 0000000000000000 00000000 0100 0000";
    const LIST_IDENTITY: &str = "6300 0000 00000000 00000000 0000000000000000 00000000";
    /// Synthetic (vol. 2, 3-6.2): a class 1 I/O datagram: sequenced
    /// address item (connection id, sequence) and connected data item.
    const IO: &str = "0200 0280 0800 01000000 05000000 b100 0600 0500 00000000";

    #[test]
    fn encapsulation_and_io() {
        let (v, meta) = run(
            dissect,
            &flow(true, 40000, 44818),
            &[(true, &hex(REGISTER))],
        );
        assert_eq!(v, [Verdict::Done(ETHERNET_IP)]);
        assert_eq!(meta, Metadata::default());
        let r = hex(REGISTER);
        let (v, _) = run(
            dissect,
            &flow(true, 40000, 44818),
            &[(true, &r[..10]), (true, &r[10..])],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(ETHERNET_IP)]);
        let (v, _) = run(
            dissect,
            &flow(false, 40000, 44818),
            &[(true, &hex(LIST_IDENTITY))],
        );
        assert_eq!(v, [Verdict::Done(ETHERNET_IP)]);
        let (v, _) = run(dissect, &flow(false, 2222, 2222), &[(true, &hex(IO))]);
        assert_eq!(v, [Verdict::Done(CIP)]);
    }

    #[test]
    fn not_other_protocols() {
        for (tcp, port) in [(true, 44818), (false, 44818), (false, 2222)] {
            for bytes in [
                hex(DNS_QUERY),
                hex(HTTP_REQUEST_HEAD),
                hex("0200028008000100"),
            ] {
                let (v, _) = run(dissect, &flow(tcp, port, port), &[(true, &bytes)]);
                assert_eq!(v, [Verdict::No]);
            }
        }
        let (v, _) = run(dissect, &flow(true, 40000, 8080), &[(true, &hex(REGISTER))]);
        assert_eq!(v, [Verdict::No]);
    }
}
