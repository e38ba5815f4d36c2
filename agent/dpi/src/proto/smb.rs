//! SMB over TCP (direct hosting on port 445, or NetBIOS session messages).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Packet, Scratch, Verdict};

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
