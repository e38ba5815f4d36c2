//! SMB over TCP (direct hosting on port 445, or NetBIOS session messages).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// SMBv1.
const SMB1: Protocol = Protocol(16);
/// SMBv23.
const SMB23: Protocol = Protocol(41);

/// Header magics, with the protocol and the least message length.
const MAGICS: [([u8; 4], Protocol, usize); 4] = [
    (*b"\xffSMB", SMB1, 32),  // SMB1 header
    (*b"\xfeSMB", SMB23, 64), // SMB2/3 header
    (*b"\xfdSMB", SMB23, 52), // SMB3 transform (encrypted) header
    (*b"\xfcSMB", SMB23, 16), // SMB3 compression transform header
];

/// The start of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// Cut short, could still be SMB.
    More,
    /// Not SMB.
    Bad,
    /// An SMB message of this protocol.
    Smb(Protocol),
}

/// SMBv1 (`Protocol(16)`) and SMBv23 (`Protocol(41)`): a session message
/// header (type 0, 3-byte length) then `\xFFSMB` (SMBv1) or `\xFESMB`
/// with its 64-byte header size, `\xFDSMB`, `\xFCSMB` (SMB 2/3), the
/// length fitting the header, at the start of either stream (a capture
/// may miss the start of one side). `Done` at once.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match [pkt.client_stream, pkt.server_stream].map(start) {
        [Start::Smb(p), _] | [_, Start::Smb(p)] => Verdict::Done(p),
        [Start::Bad, Start::Bad] => Verdict::No,
        _ => Verdict::Maybe,
    }
}

/// What the start of `stream` is.
fn start(stream: &[u8]) -> Start {
    let Some((&[kind, l0, l1, l2], rest)) = stream.split_first_chunk::<4>() else {
        return if stream.first().is_none_or(|&b| b == 0) {
            Start::More
        } else {
            Start::Bad
        };
    };
    let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
    let Some((magic, header)) = rest.split_first_chunk::<4>() else {
        let prefix = MAGICS.iter().any(|(m, ..)| m.starts_with(rest));
        return if kind == 0 && prefix {
            Start::More
        } else {
            Start::Bad
        };
    };
    let Some(&(_, protocol, min)) = MAGICS.iter().find(|(m, ..)| m == magic) else {
        return Start::Bad;
    };
    if kind != 0 || len < min {
        return Start::Bad;
    }
    if protocol == SMB23 && magic[0] == 0xfe {
        // The SMB2 header's StructureSize.
        match header.first_chunk::<2>() {
            None => return Start::More,
            Some(&[64, 0]) => {}
            Some(_) => return Start::Bad,
        }
    }
    Start::Smb(protocol)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "smb",
    protocols: &[Protocol(16), Protocol(41)],
    tcp: true,
    udp: false,
    ports: &[139, 445],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[
        Sample {
            origin: "smbv1.pcap frames 1,2,3,4",
            tcp: true,
            server_port: 445,
            packets: &[
                (
                    true,
                    "00000085ff534d4272000000001853c00000000000000000000000000000fffe\
             00004000006200025043204e4554574f524b2050524f4752414d20312e300002\
             4c414e4d414e312e30000257696e646f777320666f7220576f726b67726f7570\
             7320332e316100024c4d312e325830303200024c414e4d414e322e3100024e54\
             204c4d20302e313200",
                ),
                (
                    false,
                    "00000071ff534d4272000000009853c00000000000000000000000000000fffe\
             000040001105000332000100041100000000010000000000fce3010040f49cd3\
             44b5d201f000082c0008ab1c2fe1ece6a957004f0052004b00470052004f0055\
             00500000004a004f0048004e002d00500043000000",
                ),
                (
                    true,
                    "00000088ff534d4273000000001807c00000000000000000000000000000fffe\
             000040000dff00880004110a000000000000000100000000000000d40000004b\
             000000000000570069006e0064006f0077007300200032003000300030002000\
             32003100390035000000570069006e0064006f00770073002000320030003000\
             3000200035002e0030000000",
                ),
                (
                    false,
                    "000000b9ff534d4273000000009807c00000000000000000000000000000fffe\
             0008400003ff00b9000000900000570069006e0064006f007700730020003700\
             200055006c00740069006d006100740065002000370036003000310020005300\
             65007200760069006300650020005000610063006b0020003100000057006900\
             6e0064006f007700730020003700200055006c00740069006d00610074006500\
             200036002e003100000057004f0052004b00470052004f005500500000",
                ),
            ],
            protocol: Protocol(16),
        },
        Sample {
            origin: "kerberos.pcap frames 9,10",
            tcp: true,
            server_port: 445,
            packets: &[
                (
                    true,
                    "b44682a6850d31011c46ef2b5cbf9f9519295cf847b9d9ed7bb8ee6a801e4cbb\
             bfc933abfe494c1c32981d2cf424822c8a0215b0168c9773f224ba1e6ffb618e\
             86064b09040b69b89d17694570287f406e2375a75cf8a787b3213d509a4c6c89\
             35fa9f56eff575ce3e1d7298cbbe8c596578cd4b7340078066555d21bba82d49\
             6f1578c54b0e51c9bee50c0e5acb95cb327418d54d9b614b7a318c41b0bbc75d\
             9a54c0118f8f1b2da554dd765827c9857530eb0942fe43bb4bad2064f34e8e8b\
             a50ac652b51b8be8fae08ec29abf8a791bb07611338466dcfa6265c116230fa7\
             2f2310",
                ),
                (
                    false,
                    "00000100fe534d42400001000000000001001f00090000000000000002000000\
             00000000fffe0000000000005900000000040000cf4a5f5c6b16a77ad0af7092\
             dfeb7357090000004800b800a181b53081b2a0030a0100a10b06092a864882f7\
             12010202a2819d04819a60819706092a864886f71201020202006f8187308184\
             a003020105a10302010fa2783076a003020112a26f046da0dde22eff22dc91d5\
             af630b9d9abc48933a17abb0ce085c1dacf1e78adcef9fb689cdcd2deda126a4\
             87cb04dad0559b781ba8c04aab5cd267304147a72ef87ae3c69ff7c6824414f5\
             42ff8cbf0569a8b1c7bbcedd911dacd321c82dec5d2a0fee6863481691380c07\
             e554d11a",
                ),
            ],
            protocol: Protocol(41),
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// smbv1.pcap frame 1: an SMB1 Negotiate request (first 64 bytes).
    const NEGOTIATE_V1: &str = "00000085ff534d4272000000001853c00000000000000000000000000000fffe00004000006200025043204e4554574f524b2050524f4752414d20312e3000";
    /// kerberos.pcap frame 10: an SMB2 response (first 64 bytes), the
    /// client's side having started mid-stream (frame 9).
    const RESPONSE_V2: &str = "00000100fe534d42400001000000000001001f0009000000000000000200000000000000fffe0000000000005900000000040000cf4a5f5c6b16a77a";
    /// kerberos.pcap frame 9 (first bytes): mid-stream client data.
    const MID_STREAM: &str = "b44682a6850d31011c46ef2b5cbf9f9519295cf847b9d9ed";

    #[test]
    fn smb1_negotiate() {
        let f = flow(true, 50927, 445);
        let (v, meta) = run(dissect, &f, &[(true, &hex(NEGOTIATE_V1))]);
        assert_eq!(v, [Verdict::Done(SMB1)]);
        assert_eq!(meta, Metadata::default());
    }

    #[test]
    fn smb2_after_mid_stream_client() {
        let f = flow(true, 49156, 445);
        let (v, _) = run(
            dissect,
            &f,
            &[(true, &hex(MID_STREAM)), (false, &hex(RESPONSE_V2))],
        );
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(SMB23)]);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 445);
        // HTTP (synthetic), a TLS ClientHello (rdp.pcap frame 7), a
        // PostgreSQL startup (pgsql.pcap frame 7), a NetBIOS session
        // request (synthetic header).
        for bytes in [
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            hex("16030100a8010000a403035cef9e29f7"),
            hex("000000260003000075736572006f727978006461746162617365006d61696c73746f72650000"),
            hex("81000044204345434143414341434143"),
        ] {
            let (v, _) = run(dissect, &f, &[(true, &bytes), (false, &bytes)]);
            assert_eq!(v[1], Verdict::No);
        }
        // An SMB2 header with a wrong StructureSize.
        let mut bad = hex(RESPONSE_V2);
        bad[8] = 65;
        assert_eq!(start(&bad), Start::Bad);
    }

    #[test]
    fn prefixes_do_not_panic() {
        let m = hex(RESPONSE_V2);
        for n in 0..m.len() {
            let expected = if n < 10 {
                Start::More
            } else {
                Start::Smb(SMB23)
            };
            assert_eq!(start(&m[..n]), expected, "{n}");
        }
    }
}
