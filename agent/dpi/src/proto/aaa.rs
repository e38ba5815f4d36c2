//! Authentication, authorization and accounting: RADIUS over UDP (RFC
//! 2865, 2866, 5176; nDPI 146 "Radius") and Diameter over TCP (RFC 6733;
//! nDPI 237 "Diameter").
//!
//! RADIUS: a code (1..=5, 11..=13, 40..=45), an identifier, the length
//! (20..=4096) of the whole datagram, a 16-byte authenticator, then
//! attributes (type, length >= 2) filling the datagram exactly. Off the
//! RADIUS ports a datagram needs two attributes to tell.
//!
//! Diameter: version 1, the message length (a multiple of 4, >= 20), the
//! flags (low four bits reserved, zero), a known command code, then AVPs
//! (code, flags, length >= 8 within the message). The first message of
//! either direction tells.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's Radius.
const RADIUS: Protocol = Protocol(146);
/// nDPI's Diameter.
const DIAMETER: Protocol = Protocol(237);
/// RADIUS authentication, accounting (also the old ones), dynamic
/// authorization, and nDPI's alternative accounting port.
const RADIUS_PORTS: [u16; 6] = [1812, 1813, 1645, 1646, 3799, 18013];
/// Attributes walked in one datagram.
const MAX_ATTRS: usize = 128;
/// Diameter command codes: base (RFC 6733, 4006, 4005, 4072), 3GPP
/// (S6a/S6d 316..=324, Cx/Dx 300..=305, Sh 306..=309, Gx/Rx 258, 265,
/// 272, 274, 275).
const DIAMETER_COMMANDS: &[u32] = &[
    257, 258, 265, 268, 271, 272, 274, 275, 280, 282, 300, 301, 302, 303, 304, 305, 306, 307, 308,
    309, 316, 317, 318, 319, 320, 321, 322, 323, 324, 8_388_620, 8_388_622,
];

/// RADIUS (UDP) or Diameter (TCP).
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    if pkt.tcp {
        diameter(pkt.stream())
    } else {
        let on_port = RADIUS_PORTS.contains(&pkt.flow.server_port)
            || RADIUS_PORTS.contains(&pkt.flow.client_port);
        match radius_attributes(pkt.payload) {
            Some(n) if on_port || n >= 2 => Verdict::Done(RADIUS),
            _ => Verdict::No,
        }
    }
}

/// The number of attributes of a well-formed RADIUS datagram.
fn radius_attributes(p: &[u8]) -> Option<usize> {
    let &[code, _id, l0, l1] = p.first_chunk::<4>()?;
    let len = usize::from(u16::from_be_bytes([l0, l1]));
    if !matches!(code, 1..=5 | 11..=13 | 40..=45) || len != p.len() || !(20..=4096).contains(&len) {
        return None;
    }
    let mut at = 20;
    for n in 0..MAX_ATTRS {
        if at == p.len() {
            return Some(n);
        }
        let attr_len = usize::from(*p.get(at + 1)?);
        let attr_type = p[at];
        if attr_len < 2 || attr_type == 0 {
            return None;
        }
        at += attr_len;
    }
    None
}

/// A Diameter message at the start of `stream`.
fn diameter(stream: &[u8]) -> Verdict {
    let Some(&[version, l0, l1, l2, flags, c0, c1, c2]) = stream.first_chunk::<8>() else {
        return if stream.first().is_none_or(|&v| v == 1) {
            Verdict::Maybe
        } else {
            Verdict::No
        };
    };
    let len = u32::from_be_bytes([0, l0, l1, l2]) as usize;
    let command = u32::from_be_bytes([0, c0, c1, c2]);
    if version != 1
        || flags & 0x0f != 0
        || len < 20
        || len % 4 != 0
        || !DIAMETER_COMMANDS.contains(&command)
    {
        return Verdict::No;
    }
    // The first AVP's header, when the message has one.
    if len >= 28 {
        let Some(&[_, _, _, _, avp_flags, a0, a1, a2]) =
            stream.get(20..28).and_then(|s| s.first_chunk::<8>())
        else {
            return Verdict::Maybe;
        };
        let avp_len = u32::from_be_bytes([0, a0, a1, a2]) as usize;
        // Flags V, M, P; the others reserved.
        if avp_flags & 0x1f != 0 || avp_len < 8 || 20 + avp_len > len {
            return Verdict::No;
        }
    } else if len != 20 {
        return Verdict::No;
    }
    Verdict::Done(DIAMETER)
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "aaa",
    protocols: &[RADIUS, DIAMETER],
    tcp: true,
    udp: true,
    ports: &[1812, 1813, 1645, 1646, 3799, 18013, 3868],
    ports_only: false,
    first: |_, byte| matches!(byte, 1..=5 | 11..=13 | 40..=45),
    run: dissect,
    samples: &[
        Sample {
            origin: "synthetic (no capture): RFC 2865 7.1 Access-Request",
            tcp: false,
            server_port: 1812,
            packets: &[(
                true,
                "0100003832fa4b1cd2df0d89e6c8b3bc9def0dab01066e656d6f02120d15b8b2\
                 bd1d9c95e4d9f2efa45d0a600406c0a80110050600000003",
            )],
            protocol: RADIUS,
        },
        Sample {
            origin: "synthetic (no capture): Diameter Capabilities-Exchange-Request",
            tcp: true,
            server_port: 3868,
            packets: &[(
                true,
                "0100002c800001010000000000000001000000020000010840000018706565722e\
                 6578616d706c652e6e6574",
            )],
            protocol: DIAMETER,
        },
    ],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{
        DNS_QUERY, HTTP_REQUEST_HEAD, STUN_REQUEST, TLS_HELLO_HEAD, flow, hex, run,
    };

    /// A RADIUS Access-Request (synthetic, RFC 2865 section 7.1's
    /// example): User-Name "nemo", User-Password, NAS-IP-Address,
    /// NAS-Port.
    const ACCESS_REQUEST: &str = "0100003832fa4b1cd2df0d89e6c8b3bc9def0dab\
        01066e656d6f 0212 0d15b8b2bd1d9c95e4d9f2efa45d0a60 0406c0a80110 05060000 0003";
    /// Its Access-Accept: Service-Type, Login-Service, Login-IP-Host.
    const ACCESS_ACCEPT: &str =
        "0201002691b98b1cf7cae8f2bd98a4cc5b1ec2e2 06060000000106060000000e0606c0a80103";

    /// A Diameter Capabilities-Exchange-Request (synthetic): Origin-Host
    /// "peer.example.net" (AVP 264, M flag).
    fn cer() -> Vec<u8> {
        let mut avp = hex("00000108 40000018");
        avp.extend(b"peer.example.net");
        let mut msg = hex("01000000 80000101 00000000 00000001 00000002");
        msg.extend(avp);
        let len = (msg.len() as u32).to_be_bytes();
        msg[1..4].copy_from_slice(&len[1..]);
        msg
    }

    #[test]
    fn radius_request_and_accept() {
        let f = flow(false, 40000, 1812);
        let (v, meta) = run(
            dissect,
            &f,
            &[(true, &hex(ACCESS_REQUEST)), (false, &hex(ACCESS_ACCEPT))],
        );
        assert_eq!(v[0], Verdict::Done(RADIUS));
        assert_eq!(meta, Metadata::default());
        // Off the RADIUS ports the request still has four attributes.
        let f = flow(false, 40000, 50000);
        assert_eq!(
            run(dissect, &f, &[(true, &hex(ACCESS_REQUEST))]).0,
            [Verdict::Done(RADIUS)]
        );
        // A length field off by one, an attribute running past the end.
        let mut p = hex(ACCESS_REQUEST);
        p.push(0);
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
        let mut p = hex(ACCESS_ACCEPT);
        p[21] = 7;
        assert_eq!(run(dissect, &f, &[(true, &p)]).0, [Verdict::No]);
    }

    #[test]
    fn diameter_cer() {
        let f = flow(true, 40000, 3868);
        let msg = cer();
        let (v, _) = run(dissect, &f, &[(true, &msg)]);
        assert_eq!(v, [Verdict::Done(DIAMETER)]);
        let (v, _) = run(dissect, &f, &[(true, &msg[..10]), (true, &msg[10..])]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(DIAMETER)]);
        // An unknown command, reserved flags set, a length not a multiple
        // of 4.
        for (at, value) in [(7, 0x03), (4, 0x81), (3, 0x2d)] {
            let mut bad = cer();
            bad[at] = value;
            assert_eq!(run(dissect, &f, &[(true, &bad)]).0, [Verdict::No], "{at}");
        }
    }

    #[test]
    fn not_other_protocols() {
        for tcp in [true, false] {
            let f = flow(tcp, 40000, 1812);
            for p in [DNS_QUERY, STUN_REQUEST, TLS_HELLO_HEAD, HTTP_REQUEST_HEAD] {
                let (v, _) = run(dissect, &f, &[(true, &hex(p))]);
                assert_eq!(v, [Verdict::No], "{p}");
            }
        }
    }

    #[test]
    fn prefixes_do_not_panic() {
        let f = flow(false, 40000, 1812);
        let p = hex(ACCESS_REQUEST);
        for n in 0..p.len() {
            assert_eq!(run(dissect, &f, &[(true, &p[..n])]).0, [Verdict::No]);
        }
        let f = flow(true, 40000, 3868);
        let p = cer();
        for n in 0..28 {
            assert_eq!(
                run(dissect, &f, &[(true, &p[..n])]).0,
                [Verdict::Maybe],
                "{n}"
            );
        }
    }
}
