//! RTMP (Adobe's Real Time Messaging Protocol; nDPI 174) over TCP.
//!
//! The handshake: the client sends C0 (the version byte: 3 plain, 6
//! encrypted RTMPE) and C1 (1536 bytes) and must then wait for the
//! server's S0 and S1 before sending C2. So when the server's first bytes
//! come, the client has sent exactly 1537 bytes, and the server's first
//! byte is a version (3, 6, or one of RTMPE's 8..=10, as nDPI allows).

use flowstat_core::{Metadata, Protocol};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict};

/// nDPI's RTMP.
const RTMP: Protocol = Protocol(174);
/// C0 and C1.
const C0_C1: usize = 1 + 1536;

/// Done at the server's first bytes, when the client sent C0 and C1.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, _meta: &mut Metadata) -> Verdict {
    let (client, server) = (pkt.client_stream, pkt.server_stream);
    if !pkt.tcp || pkt.server_first || !matches!(client.first(), Some(3 | 6)) {
        return Verdict::No;
    }
    match server.first() {
        None if client.len() <= C0_C1 => Verdict::Maybe,
        Some(3 | 6 | 8..=10) if client.len() == C0_C1 => Verdict::Done(RTMP),
        _ => Verdict::No,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "rtmp",
    protocols: &[RTMP],
    tcp: true,
    udp: false,
    ports: &[1935],
    ports_only: false,
    first: |from_client, byte| from_client && (byte == 3 || byte == 6),
    run: dissect,
    samples: &[Sample {
        origin: "rtmp.pcap frames 4, 6 (C0, C1), 8 (S0, first 32 bytes)",
        tcp: true,
        server_port: 1935,
        packets: &[
            (
                true,
                "030007aa5700000000c4ff95ff1affe3ffc000c1003600af00fc002d0092ffbb\
             ff7807d97c2e06077c3406c57c0a5f93003000f10026005f006cff5dff82f96b\
             02e80009001ef8b702a4f9f502fa30436fa000210016f90f02dc258d6f72ec1b\
             6f584f39000e10677c143a2500ea24f36f1000510006ffbfff4c00bd00625dcb\
             00c8046900fe59174684005500da00a30080008100f6006f00bc00ed0052007b\
             0038009900eeffc7fff4008500ca005300f001b100e6011f002c011d0042012b\
             00a801c900de0277006402b500ba0203006002e100d604cf009c044d003201db\
             0118fbf902cefb2702d4eee57caaecb36fd04f1100c6077f7c0c067d7c22f98b\
             028801297cbe00d700440015009a00630040004100b6fa2f027c02ad7c12003b\
             00f8005900ae03877cb40045008afa1302b0007100a602df7cec00dd0002ffeb\
             ff680089009e00370024a0757f7afac3002000a10096008f005c000d00f2039b\
             7cd800b9008e00e7009400a5006af9730290e3d17c86323f7ccc003d00e2fd4b\
             0248fde9027e00970004ffd5ff5a00230000fe01027605ef7c3ce46d7cd205fb\
             7cb80219006e06477c740005004a71d3027000310066fa9f02acf49d00c2fcab\
             0228ee497c5e07f77ce4ff35ff3a018300e090617f56024f001c0dcd00b2005b\
             00980079004e00a7005405657c2a5f3300500091004600ff008c00fd00a2000b\
             0208f0a9023e005702c47195021a71e302c002c100360daf00fcff2dff9200bb\
             007800d9002e0207003400c5000a0093003085f10026fb5f026c005d0082656b\
             00e8ff09001e16b771a4fbf502faa44300a0a3210016fa0f02dca38d0072fc1b\
             02582139710ed8677c144d2571ea02f300100251000600bf004c00bd0062fbcb\
             02c8206900fefb170284005500da00a30080008100f6006f00bca3ed00524d7b\
             7138fb9902ee00c700f4008500ca005300f02fb100e6001f002c001d0042002b\
             00a800c900de0077006400b500ba0003006071e102d600cf009c004d00323edb\
             301820f900ce06277cd400e500aa30b300d0ff1102c6007f000c007d0022008b\
             0088002900be00d700440015009a00630040004100b6002f007cfbad0212003b\
             00f805597cae678700b4fc45028a05137cb0077100a605df7cec16dd7102fceb\
             0268a489009ea3370024fb75027aa3c30020fda10296218f715cd80d7cf24d9b\
             71d802b9008e02e7009400a5006a00730090fcd10286203f00ccfc3d02e2004b\
             004800e9007e0097000400d5005aa32300004d017176fcef023c006d00d200fb\
             00b80019006e2f4700740005004afcd3027000310066009f00ac009d00c200ab\
             00280049005e00f700e40035003a008300e000610056204f001c20cd00b2005b\
             00980079004e03a700540065002a003300500091004600ff008c00fd00a2000b\
             000800a9003e005700c40095001a00e300c000c10036fcaf02fc002d009205bb\
             7c78a4d9002efd07023405c57c0a0793003005f17c26a45f006ca45d0082306b\
             00e80009001e00b700a400f500fa204300a000210016000f00dc008d0072001b\
             0058fd39020e0067001405257cea62f30010fd51020605bf7c4c09bd006205cb\
             7cc8626900fe2f170084305500dafda30280008100f6056f7cbc2fed0052fd7b\
             023805997cee0bc700f405857cca2f5300f000b100e6001f002c001d0042532b\
             71a85fc900de6777006400b500baed030060a3e100d600cf009cfc4d023200db\
             0018fdf902ceee277cd405e57caaffb3ffd005117cc6197f7c0c007d0022008b\
             0088022900be0ad700445815009a00630040004100b6002f007c00ad0012053b\
             7cf8025900ae028700b40d45008a071300b005717ca6a2df02ec05dd020200eb\
             00680089009ed53702240175007a00c30020d5a10296008f005cfe0d02f2ee9b\
             7cd801b9008effe7ff943ba5026a4273719000d10086003f00cc2f3d00e2004b\
             00482fe9007e2f9700043bd5025a042300000001007641ef713c076d00d252fb\
             00b8ff19026e8c4730744405024a07d300700031",
            ),
            (
                true,
                "0066009f00ac299d00c2faab02280049005efff702e49a357c3a06837ce0ff61\
             ff56064f7c1c06cd7cb2ff5bff980079004e00a700543e65302a713302500091\
             004671ff028cfefd02a23f0b30",
            ),
            (
                false,
                "033dd5b7000000000001007600ef003c006d00d200fb00b80019006e00470074",
            ),
        ],
        protocol: RTMP,
    }],
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::testing::{HTTP_REQUEST_HEAD, TLS_HELLO_HEAD, flow, hex, run};

    /// rtmp.pcap frames 4 and 6: C0 and C1 in two segments (the first 12
    /// bytes of each; the rest is zeroed here).
    fn c0_c1() -> (Vec<u8>, Vec<u8>) {
        let mut a = hex("030007aa5700000000c4ff95");
        a.resize(1460, 0);
        let mut b = hex("0066009f00ac299d00c2faab");
        b.resize(77, 0);
        (a, b)
    }

    #[test]
    fn handshake() {
        let (a, b) = c0_c1();
        let s0 = hex("033dd5b7000000000001007600ef003c");
        let f = flow(true, 1177, 1935);
        let (v, meta) = run(dissect, &f, &[(true, &a), (true, &b), (false, &s0)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::Done(RTMP)]);
        assert_eq!(meta, Metadata::default());
        // The server answering before C1 is whole, or a client sending
        // more than C0 and C1 first, is not RTMP.
        let (v, _) = run(dissect, &f, &[(true, &a), (false, &s0)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
        let (v, _) = run(dissect, &f, &[(true, &a), (true, &b), (true, &b)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::Maybe, Verdict::No]);
        // A server answering with another byte.
        let (v, _) = run(dissect, &f, &[(true, &a), (true, &b), (false, b"\x16")]);
        assert_eq!(v[2], Verdict::No);
    }

    #[test]
    fn not_other_protocols() {
        let f = flow(true, 40000, 1935);
        for p in [TLS_HELLO_HEAD, HTTP_REQUEST_HEAD] {
            assert_eq!(run(dissect, &f, &[(true, &hex(p))]).0, [Verdict::No]);
        }
        // TPKT (RDP, S7, MMS) also opens with 3, but its first PDU is
        // short and the server answers it.
        let cr = hex("0300002b26e00000000000436f6f6b69653a206d737473686173683d");
        let cc = hex("0300000b06d00000123400");
        let (v, _) = run(dissect, &f, &[(true, &cr), (false, &cc)]);
        assert_eq!(v, [Verdict::Maybe, Verdict::No]);
    }
}
