//! IPsec key exchange (IKEv1, IKEv2) over UDP, and ESP in UDP (RFC 3948,
//! port 4500). ESP and AH as IP protocols are named by the engine.
//!
//! IKE: the 28-byte header (non-zero initiator SPI, version 1.0 or 2.0, a
//! known exchange type, only defined flags, length equal to the message)
//! and, unless encrypted as a whole (IKEv1), a payload chain walking
//! exactly to the end. On port 4500 IKE follows four zero bytes (the
//! non-ESP marker); anything else there is ESP, taken once a direction
//! repeats its SPI with a slightly higher sequence number.

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};

/// IPSec.
const IPSEC: Protocol = Protocol(79);
/// The NAT traversal port, where IKE and ESP share the flow.
const NAT_T_PORT: u16 = 4500;
/// IKEv1 exchanges: base, identity protection (main mode), authentication
/// only, aggressive, informational, quick mode, new group mode.
const V1_EXCHANGES: [u8; 7] = [1, 2, 3, 4, 5, 32, 33];
/// IKEv2 exchanges: IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA,
/// INFORMATIONAL, IKE_SESSION_RESUME, IKE_INTERMEDIATE.
const V2_EXCHANGES: [u8; 6] = [34, 35, 36, 37, 38, 43];
/// IKEv2 payloads that hold the rest of the message encrypted: SK, SKF.
const V2_ENCRYPTED: [u8; 2] = [46, 53];
/// Payloads read from one message.
const MAX_PAYLOADS: usize = 32;
/// Largest sequence number step between two ESP packets taken as in order.
const MAX_STEP: u32 = 64;
/// Packets of one direction after which ESP without a matching second
/// packet is not taken.
const MAX_TRIES: u32 = 4;

/// Per-flow state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    /// Last ESP header of each direction (client, server): SPI and
    /// sequence number.
    esp: [Option<(u32, u32)>; 2],
}

/// Done on one IKE message, or on ESP in UDP seen twice in a direction.
pub(crate) fn dissect(pkt: &Packet<'_>, scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let p = pkt.payload;
    let nat_t = pkt.flow.server_port == NAT_T_PORT || pkt.flow.client_port == NAT_T_PORT;
    if pkt.tcp {
        return Verdict::No;
    }
    if !nat_t {
        return if ike(p) {
            Verdict::Done(IPSEC)
        } else {
            Verdict::No
        };
    }
    // NAT keepalive.
    if p == [0xFF] {
        return Verdict::Maybe;
    }
    let Some((&[s0, s1, s2, s3, q0, q1, q2, q3], rest)) = p.split_first_chunk::<8>() else {
        return Verdict::No;
    };
    let spi = u32::from_be_bytes([s0, s1, s2, s3]);
    if spi == 0 {
        return if ike(p.get(4..).unwrap_or_default()) {
            Verdict::Done(IPSEC)
        } else {
            Verdict::No
        };
    }
    // SPIs 1 to 255 are reserved; a cipher adds at least an IV or a tag.
    let seq = u32::from_be_bytes([q0, q1, q2, q3]);
    if spi < 256 || rest.len() < 8 {
        return Verdict::No;
    }
    let dir = usize::from(!pkt.from_client);
    scratch.keep(|st: &mut State| match st.esp[dir].replace((spi, seq)) {
        Some((s, q)) if s == spi && seq > q && seq - q <= MAX_STEP => Verdict::Done(IPSEC),
        _ if pkt.seen_here() + 1 >= MAX_TRIES => Verdict::No,
        _ => Verdict::Maybe,
    })
}

/// True for a valid IKE message filling `b` exactly.
fn ike(b: &[u8]) -> bool {
    let Some((header, body)) = b.split_first_chunk::<28>() else {
        return false;
    };
    // Initiator SPI (0..8), responder SPI, next payload (16), version,
    // exchange type, flags, message id, length (24..28).
    let spi_i = &header[..8];
    let (next, version, exchange, flags) = (header[16], header[17], header[18], header[19]);
    let len = u32::from_be_bytes([header[24], header[25], header[26], header[27]]);
    if spi_i.iter().all(|&b| b == 0) || usize::try_from(len).ok() != Some(b.len()) {
        return false;
    }
    match version {
        // IKEv1 flags: encryption, commit, authentication only.
        0x10 if V1_EXCHANGES.contains(&exchange) && flags & 0xF8 == 0 => {
            (next != 0 && next <= 20 || next >= 128)
                && (flags & 1 != 0 || payloads(next, body, false))
        }
        // IKEv2 flags: initiator, version, response.
        0x20 if V2_EXCHANGES.contains(&exchange) && flags & 0xC7 == 0 => {
            (33..=54).contains(&next) && payloads(next, body, true)
        }
        _ => false,
    }
}

/// True when the payload chain starting with type `next` walks exactly to
/// the end of `body`.
fn payloads(mut next: u8, mut body: &[u8], v2: bool) -> bool {
    for _ in 0..MAX_PAYLOADS {
        if next == 0 {
            return body.is_empty();
        }
        let Some((&[following, reserved, l0, l1], _)) = body.split_first_chunk::<4>() else {
            return false;
        };
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        // Reserved bits (IKEv2: all but the critical bit) are zero.
        let reserved_ok = reserved & if v2 { 0x7F } else { 0xFF } == 0;
        let Some(rest) = body.get(len..).filter(|_| len >= 4 && reserved_ok) else {
            return false;
        };
        if v2 && V2_ENCRYPTED.contains(&next) {
            return rest.is_empty();
        }
        (next, body) = (following, rest);
    }
    false
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "ipsec",
    protocols: &[Protocol(79)],
    tcp: false,
    udp: true,
    ports: &[500, 4500],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "esp.pcapng frames ,,,",
        tcp: false,
        server_port: 500,
        packets: &[
            (
                true,
                "05ac0f4d122013f4000000000000000021202208000000000000016622000030\
             0000002c010100040300000c0100000c800e0100030000080200000603000008\
             0300000d000000080400001428000068001400000c3b0391afddbafb19610cad\
             7a55a50ba3730111dfc50f634ff254d949fb342400fa35c9d3c5a517b7bf343b\
             8f4c1e76e91f026f866e93f42134d8b2cac032059d16edc7cea401663044e48e\
             0da5be949a3b45bbe37cddc196e1c0be71b440f02b00002418a7bf678d74766c\
             276f7056f3d39ce539b4c9e7841b63dba94add55291a568f2b00001743495343\
             4f2d44454c4554452d524541534f4e2b000013434953434f56504e2d5245562d\
             30322b000017434953434f2d44594e414d49432d524f55544529000015464c45\
             5856504e2d535550504f525445442900001c000040044fbeaa57ffae70cc0877\
             6899742185b6c2bbb55d0000001c00004005b16f1538b2b4d28d6f1aa6e8f79d\
             9e92ca33d409",
            ),
            (
                false,
                "05ac0f4d122013f45f46ee70bc4c5d0d21202220000000000000016622000030\
             0000002c010100040300000c0100000c800e0100030000080200000603000008\
             0300000d0000000804000014280000680014000079729fab068792255c32efac\
             e213d7e5c9e29155014945a112f8e9f2ea0eb38d13cf97065934af40957acb59\
             9105bc45890c9bd883209e36f58998b4c4ab40ff3d3e10818a7a43096317e66d\
             bff8c7001c4ec49d9225d6046a438c53efb70a052b0000245577a23522399f7a\
             01ba16335346a48c22527167f9c59b2ddc20886d2688bfbc2b00001743495343\
             4f2d44454c4554452d524541534f4e2b000013434953434f56504e2d5245562d\
             30322b000017434953434f2d44594e414d49432d524f55544529000015464c45\
             5856504e2d535550504f525445442900001c00004004cf73f6965980a0fef59c\
             dd6a6944b18aca9147850000001c00004005b5bf51e2925a867c96f0013bda4c\
             e526d85f36a6",
            ),
            (
                true,
                "05ac0f4d122013f45f46ee70bc4c5d0d2e20230800000001000001582b00013c\
             28f64994f205e3d0479d2a624d2be5561ab364ea6eddfbd1e4922d103e927651\
             0e4af316294f3473d68648dfae1991a480600a21204894c27a6b3b96e66e66fd\
             a88334f9f4e2670d43a23165a2ec8d834ddaff4933ea8f23449bf83ea09a6212\
             13221ff834a3c2381f6d718a214624a0bbfe731efe49bd64375e4b02f0872054\
             d32213fe5a1449511658e598ca630065d990ae579ef58991a9b1dab85cbdc240\
             8a3ef4523fe80ff8ffc34a3f73a55b8072eaa11c2970f98cbf1440c26390f68c\
             f6c5c616ae1210062df15942968e6cfea71367f746dd34bdd20e476c38398820\
             141aa7b1b9e33a25d6325641ead83e7b702ec851320034ac620161853ed38950\
             a9ff352000313e50e5323e47c2cafa309db0944c98d9d2a8bb1a71f7e887c141\
             a0f1f10bb56e6547bed3ff69adec6b545265360ea02ffd04",
            ),
            (
                false,
                "05ac0f4d122013f45f46ee70bc4c5d0d2e20232000000001000001282b00010c\
             3a5c7431864a8dcb82342bf7b0824158db777b50c2af96a7a116c1deec90dd46\
             b1ff5ec34ad98c829092d957dd601805e2316c2e0eacc31c826850bfda5eccb1\
             99f9e2ec9afac0f60bc650e0442e4c4fe24c36285959fba13ec2ed0d8b17c36d\
             ec1bc9917902e6884c3ab6cdcec1c1e1455ae0aeb4dce445b063de8912211e50\
             143270dca03685b92bb31045647065f9b04586690cbd692e1410e88ccfe89a1e\
             6468d0e31e6981f1906708fa28bcec79ea9f77c4d24df57c6ee91a63dd199b67\
             6e72bef5e59e507fa01a6a8102015836ed085db8157da0596fdc69c5ffb0aaea\
             9bcd7b3012c06a2f6b84249f21a477da18af4de1ed8ada48bcd7b86272763ca6\
             d711ece1bdd5f6f1",
            ),
        ],
        protocol: Protocol(79),
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    /// esp.pcapng frame 1: IKEv2 IKE_SA_INIT request (358 bytes) from
    /// 10.2.3.2:500.
    const SA_INIT: &str = "05ac0f4d122013f40000000000000000212022080000000000000166220000300000002c010100040300000c\
        0100000c800e01000300000802000006030000080300000d000000080400001428000068001400000c3b0391\
        afddbafb19610cad7a55a50ba3730111dfc50f634ff254d949fb342400fa35c9d3c5a517b7bf343b8f4c1e76\
        e91f026f866e93f42134d8b2cac032059d16edc7cea401663044e48e0da5be949a3b45bbe37cddc196e1c0be\
        71b440f02b00002418a7bf678d74766c276f7056f3d39ce539b4c9e7841b63dba94add55291a568f2b000017\
        434953434f2d44454c4554452d524541534f4e2b000013434953434f56504e2d5245562d30322b0000174349\
        53434f2d44594e414d49432d524f55544529000015464c455856504e2d535550504f525445442900001c0000\
        40044fbeaa57ffae70cc08776899742185b6c2bbb55d0000001c00004005b16f1538b2b4d28d6f1aa6e8f79d\
        9e92ca33d409";
    /// esp.pcapng frame 4: IKEv2 IKE_AUTH response (296 bytes), one
    /// encrypted (SK) payload.
    const AUTH: &str = "05ac0f4d122013f45f46ee70bc4c5d0d2e20232000000001000001282b00010c3a5c7431864a8dcb82342bf7\
        b0824158db777b50c2af96a7a116c1deec90dd46b1ff5ec34ad98c829092d957dd601805e2316c2e0eacc31c\
        826850bfda5eccb199f9e2ec9afac0f60bc650e0442e4c4fe24c36285959fba13ec2ed0d8b17c36dec1bc991\
        7902e6884c3ab6cdcec1c1e1455ae0aeb4dce445b063de8912211e50143270dca03685b92bb31045647065f9\
        b04586690cbd692e1410e88ccfe89a1e6468d0e31e6981f1906708fa28bcec79ea9f77c4d24df57c6ee91a63\
        dd199b676e72bef5e59e507fa01a6a8102015836ed085db8157da0596fdc69c5ffb0aaea9bcd7b3012c06a2f\
        6b84249f21a477da18af4de1ed8ada48bcd7b86272763ca6d711ece1bdd5f6f1";

    #[test]
    fn ike_messages() {
        let f = flow(false, 500, 500);
        let (v, meta) = run(dissect, &f, &[(true, &hex(SA_INIT))]);
        assert_eq!(v, [Verdict::Done(IPSEC)]);
        assert_eq!(meta, Metadata::default());
        let (v, _) = run(dissect, &f, &[(false, &hex(AUTH))]);
        assert_eq!(v, [Verdict::Done(IPSEC)]);
        // A zero initiator SPI, or a payload length off by 4, is not IKE.
        let mut bad = hex(SA_INIT);
        bad[..8].fill(0);
        assert!(!ike(&bad));
        let mut bad = hex(SA_INIT);
        bad[31] += 4;
        assert!(!ike(&bad));
    }

    #[test]
    fn nat_traversal_port() {
        let f = flow(false, 4500, 4500);
        // Synthetic (no NAT traversal in the corpus): frame 1 behind the
        // non-ESP marker, after a NAT keepalive.
        let mut marked = vec![0; 4];
        marked.extend_from_slice(&hex(SA_INIT));
        let (v, _) = run(dissect, &f, &[(true, &[0xFF]), (true, &marked)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(IPSEC)]);
        // Synthetic ESP: SPI 0x0000c0de, sequence numbers 1 and 2.
        let esp1 = hex("0000c0de 00000001 0123456789abcdef0123456789abcdef");
        let esp2 = hex("0000c0de 00000002 fedcba9876543210fedcba9876543210");
        let (v, _) = run(dissect, &f, &[(true, &esp1), (true, &esp2)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Done(IPSEC)]);
        // Replayed, or another SPI: not yet.
        let (v, _) = run(dissect, &f, &[(true, &esp2), (true, &esp1)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe]);
        // ESP is only looked for on port 4500.
        let (v, _) = run(dissect, &flow(false, 4501, 4501), &[(true, &esp1)]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn rejects_other_protocols() {
        let f = flow(false, 500, 500);
        let dns = hex(crate::dissect::testing::DNS_QUERY);
        let stun = hex(crate::dissect::testing::STUN_REQUEST);
        let wg = hex(crate::dissect::testing::WIREGUARD_KEEPALIVE);
        // openvpn.pcap frame 516: OpenVPN server hard reset.
        let ovpn = hex("409421917de7267729010000000039fded2daa10a43700000000");
        for p in [&dns, &stun, &wg, &ovpn] {
            let (v, _) = run(dissect, &f, &[(true, p)]);
            assert_eq!(v, [Verdict::No]);
        }
        let (v, _) = run(dissect, &flow(true, 500, 500), &[(true, &hex(SA_INIT))]);
        assert_eq!(v, [Verdict::No]);
    }

    #[test]
    fn truncated_input_does_not_panic() {
        for src in [SA_INIT, AUTH] {
            let p = hex(src);
            for n in 0..p.len() {
                for port in [500, 4500] {
                    let (v, _) = run(dissect, &flow(false, port, port), &[(true, &p[..n])]);
                    assert_ne!(v, [Verdict::Done(IPSEC)], "{n}");
                }
            }
        }
    }
}
