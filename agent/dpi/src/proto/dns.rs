//! DNS over UDP and TCP, and with the same parser mDNS and LLMNR: the
//! dissector, and [`dns_answer`], which reads what a response tells the
//! DNS cache.

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use flowstat_core::{Metadata, PacketMeta, Protocol, wire_text};

use crate::dissect::{Dissector, Packet, Sample, Scratch, Verdict, any_first};
use crate::stream::STREAM_MAX;

/// Most addresses taken from one response.
const MAX_ANSWERS: usize = 16;
/// Most questions in a message (mDNS asks several at once).
const MAX_QUESTIONS: u16 = 16;
/// Most records in any other section.
const MAX_RECORDS: u16 = 512;

/// The addresses a DNS, mDNS or LLMNR response gave for a name: what the
/// DNS cache learns from it (see [`crate::Engine::learn`]). Cheap to
/// clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    pub(crate) name: Arc<str>,
    pub(crate) addresses: Arc<[IpAddr]>,
}

impl DnsAnswer {
    /// The name the addresses belong to: the response's first question
    /// name or, when it asks none, its first answer's owner name.
    /// Lowercase, without the root's trailing dot, never empty.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The addresses of the A and AAAA records of the answer section, in
    /// their order: 1 to 16 of them.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }
}

/// The answer `pkt` carries, if it is a DNS response that gives
/// addresses: a UDP datagram from port 53, 5353 (mDNS) or 5355 (LLMNR),
/// or a TCP segment from port 53 whose payload holds one whole
/// length-prefixed message, that is a valid response (as the dissector
/// checks it) with at least one A or AAAA record in its answer section.
/// The NetBIOS name service (ports 137 to 139) shares the format and is
/// left alone.
///
/// Meant to be asked about every packet, in packet order (see
/// [`crate::Engine::learn`]): for any other packet it costs a couple of
/// comparisons.
#[inline]
pub fn dns_answer(pkt: &PacketMeta<'_>) -> Option<DnsAnswer> {
    match (pkt.protocol, pkt.src_port) {
        (17, 53 | 5353 | 5355) | (6, 53) => read_answer(pkt),
        _ => None,
    }
}

/// [`dns_answer`] for a packet from a DNS port.
fn read_answer(pkt: &PacketMeta<'_>) -> Option<DnsAnswer> {
    let proto = protocol([pkt.src_port, pkt.dst_port])?;
    let msg = if pkt.protocol == 6 {
        let (len, rest) = pkt.payload.split_first_chunk::<2>()?;
        rest.get(..usize::from(u16::from_be_bytes(*len)))?
    } else {
        pkt.payload
    };
    let (true, qd) = header(msg, proto)? else {
        return None;
    };
    let (pos, mut name) = questions(msg, qd)?;
    // Without a question name, the first answer's owner names them.
    let (mut owner_names, mut addresses) = (name.is_empty(), Vec::new());
    answers(msg, pos, |record| {
        if owner_names {
            name = record.owner.to_owned();
            owner_names = false;
        }
        if matches!(record.rtype, 1 | 28) && record.class == 1 {
            addresses.extend(answer_addr(record.data));
        }
        if addresses.len() < MAX_ANSWERS {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    });
    (!addresses.is_empty() && !name.is_empty()).then(|| DnsAnswer {
        name: name.into(),
        addresses: addresses.into(),
    })
}

/// The protocol of a flow between `ports`: mDNS on 5353, LLMNR on 5355,
/// else DNS. `None` on the ports of NetBIOS, whose name service shares
/// the format (left to `netbios`).
fn protocol(ports: [u16; 2]) -> Option<Protocol> {
    if ports.iter().any(|p| (137..=139).contains(p)) {
        None
    } else if ports.contains(&5353) {
        Some(Protocol(8)) // MDNS
    } else if ports.contains(&5355) {
        Some(Protocol(154)) // LLMNR
    } else {
        Some(Protocol(5)) // DNS
    }
}

/// DNS (`Protocol(5)`), mDNS (`Protocol(8)`, "MDNS", port 5353) and LLMNR
/// (`Protocol(154)`, port 5355): a header with sane flags and counts and
/// questions with valid names, over UDP or TCP (2-byte length). The
/// first query name goes to `host_server_name`; a response's first
/// answer name to `mdns_answer` (mDNS), and to `host_server_name` when
/// there was no question. `Found` on a query, `Done` on a response.
pub(crate) fn dissect(pkt: &Packet<'_>, _scratch: &mut Scratch, meta: &mut Metadata) -> Verdict {
    let Some(proto) = protocol([pkt.flow.client_port, pkt.flow.server_port]) else {
        return Verdict::No;
    };
    // The message, and whether all of it is here.
    let (msg, complete) = if pkt.tcp {
        let stream = pkt.stream();
        let Some((len, rest)) = stream.split_first_chunk::<2>() else {
            return Verdict::Maybe;
        };
        let len = usize::from(u16::from_be_bytes(*len));
        if len < 12 {
            return Verdict::No;
        }
        (rest.get(..len).unwrap_or(rest), rest.len() >= len)
    } else {
        (pkt.payload, true)
    };
    let Some((response, qd)) = header(msg, proto) else {
        return if complete || msg.len() >= 12 {
            Verdict::No
        } else {
            Verdict::Maybe
        };
    };
    let Some((pos, host)) = questions(msg, qd) else {
        // A TCP message cut short may be fine once it is all here.
        return if complete {
            Verdict::No
        } else {
            Verdict::Maybe
        };
    };
    if !host.is_empty() {
        meta.host_server_name = host;
    }
    if !response {
        return Verdict::Found(proto);
    }
    // Wait for the whole TCP response, unless the stream cannot hold it.
    if !complete && pkt.stream().len() < STREAM_MAX {
        return Verdict::Found(proto);
    }
    answers(msg, pos, |first| {
        if meta.host_server_name.is_empty() {
            meta.host_server_name = first.owner.to_owned();
        }
        if proto == Protocol(8) {
            meta.mdns_answer = Some(first.owner.to_owned());
        }
        ControlFlow::Break(())
    });
    Verdict::Done(proto)
}

/// The 16-bit word at `i` of `msg`.
fn word(msg: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes(*msg.get(i..)?.first_chunk::<2>()?))
}

/// Checks the header of `msg`; returns whether it is a response, and its
/// question count.
fn header(msg: &[u8], proto: Protocol) -> Option<(bool, u16)> {
    let word = |i| word(msg, i);
    let flags = word(2)?;
    let [qd, an, ns, ar] = [word(4)?, word(6)?, word(8)?, word(10)?];
    let response = flags & 0x8000 != 0;
    let opcode = (flags >> 11) & 0xf;
    let plain_query = !response && opcode == 0 && proto == Protocol(5);
    let sane = matches!(opcode, 0 | 2 | 4 | 5)
        && flags & 0x0040 == 0 // Z
        && (response || flags & 0xf == 0) // no rcode in a query
        && qd <= MAX_QUESTIONS
        && (qd > 0 || (response && an > 0 && proto == Protocol(8)))
        && an.max(ns).max(ar) <= MAX_RECORDS
        && (!plain_query || (an == 0 && ns == 0 && ar <= 4));
    sane.then_some((response, qd))
}

/// Checks the `qd` questions of `msg`; returns the offset after them and
/// the first one's name.
fn questions(msg: &[u8], qd: u16) -> Option<(usize, String)> {
    let (mut pos, mut first) = (12, String::new());
    for i in 0..qd {
        let mut host = String::new();
        pos = name(msg, pos, &mut host)?;
        let [qtype, qclass] = [word(msg, pos)?, word(msg, pos + 2)?];
        // IN, CH, HS, NONE, ANY; mDNS's top bit asks for a unicast reply.
        if qtype == 0 || !matches!(qclass & 0x7fff, 1 | 3 | 4 | 254 | 255) {
            return None;
        }
        if i == 0 {
            first = host;
        }
        pos += 4;
    }
    Some((pos, first))
}

/// One resource record of an answer section.
struct Record<'a> {
    /// Owner name (as [`name`] reads it).
    owner: &'a str,
    /// Type.
    rtype: u16,
    /// Class, without mDNS's cache-flush bit.
    class: u16,
    /// Data.
    data: &'a [u8],
}

/// Walks the answer section of `msg` from `pos`, showing `each` record
/// until it breaks; stops at the first malformed record.
fn answers(msg: &[u8], mut pos: usize, mut each: impl FnMut(&Record<'_>) -> ControlFlow<()>) {
    let mut owner = String::new();
    for _ in 0..word(msg, 6).unwrap_or(0) {
        owner.clear();
        let Some(end) = name(msg, pos, &mut owner) else {
            return;
        };
        let Some((fixed, rest)) = msg.get(end..).and_then(|r| r.split_first_chunk::<10>()) else {
            return;
        };
        let Some(data) = rest.get(..usize::from(u16::from_be_bytes([fixed[8], fixed[9]]))) else {
            return;
        };
        let record = Record {
            owner: &owner,
            rtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            class: u16::from_be_bytes([fixed[2], fixed[3]]) & 0x7fff,
            data,
        };
        if each(&record).is_break() {
            return;
        }
        pos = end + 10 + data.len();
    }
}

/// Reads the (possibly compressed) name at `pos` of `msg` into `out`,
/// lowercase, dot-separated, without the root's trailing dot. Returns the
/// offset after the name; `None` when it is malformed: a bad label length
/// or control characters, a pointer that does not point backwards, more
/// than 16 pointers, or more than 255 bytes.
fn name(msg: &[u8], mut pos: usize, out: &mut String) -> Option<usize> {
    let (mut end, mut hops, mut total) = (None, 0, 0);
    loop {
        let len = usize::from(*msg.get(pos)?);
        match len >> 6 {
            0 if len == 0 => return Some(end.unwrap_or(pos + 1)),
            0 => {
                let label = msg.get(pos + 1..pos + 1 + len)?;
                total += len + 1;
                if total > 255 || label.iter().any(|&b| b < 0x20 || b == 0x7f) {
                    return None;
                }
                if !out.is_empty() {
                    out.push('.');
                }
                if label.is_ascii() {
                    out.extend(label.iter().map(|b| char::from(b.to_ascii_lowercase())));
                } else {
                    out.push_str(&wire_text(label, 63).to_lowercase());
                }
                pos += 1 + len;
            }
            3 => {
                let target = (len & 0x3f) << 8 | usize::from(*msg.get(pos + 1)?);
                hops += 1;
                if target < 12 || target >= pos || hops > 16 {
                    return None;
                }
                end.get_or_insert(pos + 2);
                pos = target;
            }
            _ => return None,
        }
    }
}

/// The address an A or AAAA record's data holds.
fn answer_addr(rdata: &[u8]) -> Option<IpAddr> {
    match rdata.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(rdata).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(rdata).ok()?)),
        _ => None,
    }
}

/// The registry's entry.
pub(crate) const DISSECTOR: Dissector = Dissector {
    name: "dns",
    protocols: &[Protocol(5), Protocol(8), Protocol(154)],
    tcp: true,
    udp: true,
    ports: &[53, 5353, 5355],
    ports_only: false,
    first: any_first,
    run: dissect,
    samples: &[Sample {
        origin: "badpackets.pcap frames ",
        tcp: false,
        server_port: 52327,
        packets: &[(
            true,
            "0168859300010000000c00010b70686c317370727431303802616403646c6103\
             6d696c0000010001c01b000600010000021d002d086561676c65696231c0180b\
             72616e64792e736d697468c01b77b2292b00002a300000043800093a80000003\
             84c01b002e00010000021d009b0006080200000384592fe8e65922abd6362403\
             646c61036d696c0043e363acda6d57e6f6fc24ea64a1f66e248fdbbb643964c6\
             ab628252194e1fd138d4c2d23a4da50982fab260d7e5f9a6d7326ea1ba76772a\
             d4a3ef489ab77c6d70f150c81bbcc97fb7fa1bd822918f553021a60712e5b0ab\
             72c473916b",
        )],
        protocol: Protocol(5),
    }],
};

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::dissect::testing::{flow, hex, run};

    // dns.pcap frame 4: query e7.whatsapp.net A.
    const QUERY: &str = "784301000001000000000000026537087768617473617070036e65740000010001";
    // dns.pcap frame 5: its response, 8 A records behind pointers.
    const RESPONSE: &str = "784381800001000800000000026537087768617473617070036e65740000010001c00c00010001000001eb0004a92ddbebc00c00010001000001eb0004a92f288ec00c00010001000001eb0004a92df879c00c00010001000001eb00046ca8b0eac00c00010001000001eb0004a92df8bdc00c00010001000001eb0004a92df8b4c00c00010001000001eb0004a935514fc00c00010001000001eb0004a92ddbe8";

    // dns_fragmented.pcap frame 62.
    const RESPONSE_62: &str = "06c206da850000010004000000010877656265726c61620264650000300001c00c003000010000003c02080101030a03010001ddeffded22ad760a3b0b58101dd53deef3f7daaf8b995ef7fcb55d7ca9969e72ff9c5aaab9bfade946f29831f06b0d5b6220be224a009e94894e391112a81fe7f3daa7f6494147156c24c1e896c8b6781191e1a30be2084c7de0fe0eb3034a5e67581dedfcae51cf6bedceca95bd8187d1f6584228ade77823eaf3f68516c4d323b750f90da41115a208c0b26e5e163b0b01a3f4659cf338cae7cc28894006233935640f36623a8d8cc0629628c9485df479e72080e5350f3d1e95d07459b2b0cada5d86fba833a838488ea1db6d287d32fefb49d92454d39445e0012e99a708533022e4b2f670c4310bbb7bae50c8e17e363517ce2c0a86b8e79c9458f3ab3dce7402567a0fc002749b6f4d80182910dfbd135f5856bde017b7ac693d638b8075d22c817f973fb097e0e6f193560e79f9cc426e123df1a2f6b583cce645724e9aa03a5611aa7b0c45f1cfb229e344387cf85f8fd12e658722e11bbdba0fd340e4e40f5b87264656ccad38983e37084542dbc158b983f36145b5f4addaf99b1453700193a7459589386f4bed315c1889b538450b9a8854c852ec0463170c53aed64d28ea9aa6e3de6db01b8cc893697dd4283f03a4529b0a8ba8e636aeaf463bef36225b705ca54d0aea1c64c6b8ea29b94b016d45e3fe73abe08ea3e3693a18322e4f22c391a56b76bc579869df3674ad76a5a6bc75e8fd8170765b3d6dc4fbc00c003000010000003c01080100030a03010001d054dc28f150ac3b49e6336bb731caafd7837ce7550b0ccee17f51e2da8a03ae6ed24787184bfa6d76f48c509132a8f094485dc2970fe6958b3b629a5f3ef013c25c534f7ed1697450b30513461e3fdc6b583f165724eafe5abda7c1fe11aa6d6298d8b10629be64b585868fc241d26aca1aa0d954fca2782d1d615bf4da239a3af521765ed0b605726d1dd5ea01e58681b40711be19b8d4a7e3723c295bb8c388c1f95b546079f78e8fc9019082718d5f62f5307ba639a602fc3dd49f2cd064d326aa3f391b00cd3f011e0df2eaeb09b50547f1eccc3070456e3b607462653288f8927d4a064f09b63f59c634c8656228f76d8f55bf2c42a8f4272b4b394ebdc00c002e00010000003c021f00300a020000003c5d27b1b05d0023c1337b0877656265726c616202646500c364ca216ac342cdd672faa5d3fa2f44b97fe29e56a81dc9283d0ea9654339e4738a8975b06c21766e0476bd36ad96d7e0750318b231cb6fdcbcffc2b5eb1d5b20da3b8c784f8624379993e78510db0bcd7dfe683f0c026511fa38fcf207ae868e5c7904b3172503749f9795f3a8c63c74822308c488468866a73dda8ddd60f10e673e1bebba24e2deb6e491a16ebc0bba2416b34b1be99414c646c2e2c03fe4793d47d1c87b055735a19eb19a4ab2ebcbc8b03eb7163d6bd4faedee99ab0874c2b8482c3bbf03f5d090b9608b909431194557263e422371efef1145829bb659d2bb1221011f9ac7a618dbf2124f15ea7572083381d48eee0af83cbd7a510278a5a156128be549248a37a0aa5742a5cd8e542a9a02e1b39c44c8a2ba391c80b45c2730cd8d370fe7debdf5e89105872749436eecd47f0103ac2ded6070604c615236f2e5c00628c52493d461014544a290618cbb53c6ae81fa1d24294d33ee4f8c3acded551aa325bf0ad6c58a02d96a37bf49b2c592877da1392e8677ad2fb7f21279467f12a6119db5f2a3dcb0a0c946b472ca673e59d67eb4f719bd05ebe80552ed1652a144d5ffee5d55dda45aeb85db0e6bb27008394df0c0810f86c4f0abd9e385bf41a7d8ce307dc515ba38b2b36f638a6870eb3d2e27353acf35ddbbbb572433dcdaefff17cf38fbef1bffee7dc3c43b5dc59c1eddc20ff299379ebbc363002e00010000003c011f00300a020000003c5d27b1b05d0023c190470877656265726c616202646500a53c4c9c4569c62b9f38f3ae26c9ca1cc8fcf65333cd68eccd0de776d58468a3fbdce125135ea141b665b849014304040bbb81e6a9c49ed4d73f94aa19054a2f10bba8d13a7322879c739a2c573a33b64621d3f1e33340c1ea8a5ade7b199dcfeeeb1f88c2820a4083661e9d1333a6f86b7f4f8e11650d870aba74d61594d5a0d587f5a31091b19e978aada97a695ee0a3a48286d610281d10b68c9c864a509d16b6901926e09b0083ef6a4dd880770d3d1e126f1d652914cf5ba4318c5b072795ff07a98d315b6a1bdef0cda3bfba05701fcd50b762e5a63e566fcef702d31b77b39060bc2127b7e1c49f713499fa4a5551a7a0bed4fd96caeffb5349a03feb000029100000008000001c000a0018c6ab1a7fa365f223dd0e36455d08fc1c37dacb4464d60422";

    fn udp(packets: &[(bool, &[u8])]) -> (Vec<Verdict>, Metadata) {
        run(dissect, &flow(false, 47255, 53), packets)
    }

    #[test]
    fn query_then_response() {
        let (q, r) = (hex(QUERY), hex(RESPONSE));
        let (v, meta) = udp(&[(true, &q), (false, &r)]);
        assert_eq!(v, [Verdict::Found(Protocol(5)), Verdict::Done(Protocol(5))]);
        assert_eq!(meta.host_server_name, "e7.whatsapp.net");
        assert_eq!(meta.mdns_answer, None);
    }

    #[test]
    fn response_first() {
        // dns.pcap frame 1: a lone AAAA response for www.l.google.com.
        let r = hex("dca28180000100000000000003777777016c06676f6f676c6503636f6d00001c0001");
        let (v, meta) = udp(&[(false, &r)]);
        assert_eq!(v, [Verdict::Done(Protocol(5))]);
        assert_eq!(meta.host_server_name, "www.l.google.com");
        // It gives no address: nothing for the DNS cache.
        assert_eq!(dns_answer(&packet(17, 53, 4500, &r)), None);
    }

    #[test]
    fn tcp_split_response() {
        // dns_fragmented.pcap frames 60 and 62 (TCP 39005 -> 53): a query
        // for weberlab.de DNSKEY, and its 1732-byte response, split here
        // after 64 bytes.
        let query = hex(
            "003406da012000010000000000010877656265726c61620264650000300001000029100000008000000c000a0008c6ab1a7fa365f223",
        );
        let response = hex(RESPONSE_62);
        let (a, b) = response.split_at(64);
        let f = flow(true, 39005, 53);
        let (v, meta) = run(dissect, &f, &[(true, &query), (false, a), (false, b)]);
        let found = Verdict::Found(Protocol(5));
        assert_eq!(v, [found, found, Verdict::Done(Protocol(5))]);
        assert_eq!(meta.host_server_name, "weberlab.de");
        for n in 0..response.len() {
            run(dissect, &f, &[(false, &response[..n])]);
        }
    }

    #[test]
    fn malformed_dns() {
        // malformed_dns.pcap frames 1 and 2 (first 120 bytes): a second
        // question with NUL bytes in its labels.
        let q = hex("84b4010000010000000000000377777702787403636f6d0000010001");
        let r = hex(
            "84b4810000020002000000000377777702787403636f6d000001000122414141414141414141414141414141414141414141414141414141414141414141413f000000003f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f",
        );
        let (v, meta) = udp(&[(true, &q), (false, &r)]);
        assert_eq!(v, [Verdict::Found(Protocol(5)), Verdict::No]);
        assert_eq!(meta.host_server_name, "www.xt.com");
    }

    #[test]
    fn mdns_and_llmnr_by_port() {
        // Synthetic (no mDNS or LLMNR in the corpus): an mDNS response
        // without question, one A answer printer.local -> 192.168.1.5, and
        // the e7.whatsapp.net query of dns.pcap frame 4 sent to 5355.
        let r = hex(
            "000084000000000100000000077072696e746572056c6f63616c00000180010000007800 04c0a80105",
        );
        let (v, meta) = run(dissect, &flow(false, 5353, 5353), &[(false, &r)]);
        assert_eq!(v, [Verdict::Done(Protocol(8))]);
        assert_eq!(meta.host_server_name, "printer.local");
        assert_eq!(meta.mdns_answer.as_deref(), Some("printer.local"));
        let (v, _) = run(dissect, &flow(false, 50000, 5355), &[(true, &hex(QUERY))]);
        assert_eq!(v, [Verdict::Found(Protocol(154))]);
    }

    #[test]
    fn compression_loops_are_rejected() {
        let mut out = String::new();
        // A pointer to itself, and a label followed by a pointer back to it.
        let msg = hex("000000000000000000000000 c00c");
        assert_eq!(name(&msg, 12, &mut out), None);
        let msg = hex("000000000000000000000000 0161 c00c");
        assert_eq!(name(&msg, 12, &mut out), None);
        let msg = hex("000000000000000000000000 0161 00 0162 c00c");
        out.clear();
        assert_eq!(name(&msg, 15, &mut out), Some(19));
        assert_eq!(out, "b.a");
    }

    #[test]
    fn other_protocols_and_truncation() {
        // netbios.pcap frame 54: NetBIOS name query (to port 137).
        let nbns = hex(
            "20a80000000100000000000020434b4141414141414141414141414141414141414141414141414141414141410000210001",
        );
        assert_eq!(
            run(dissect, &flow(false, 57836, 137), &[(true, &nbns)]).0,
            [Verdict::No]
        );
        // snmp.pcap frame 1; NTPv4.pcap frame 1; ssdp-m-search.pcap frame 1.
        let others = [
            "302902010004067075626c6963a11c02044b781a6e020100020100300e300c06082b060102010105000500",
            "230207eb00000450000003ab83bc03dfd94f51c33165b860d944575530336fd0d944575531b4e978d94f51f42d26e2f4",
            "4d2d534541524348202a20485454502f312e310d0a",
        ];
        for other in others {
            assert_eq!(udp(&[(true, &hex(other))]).0, [Verdict::No]);
        }
        // 443-curl.pcap frame 4: TLS ClientHello; 6in4tunnel.pcap frame
        // 85: HTTP request (first 48 bytes each), on TCP.
        let tcp_others = [
            "1603010200010001fc03033e3841edcc20f6d0e5f7167ab7ee91a800c8ef70c2d624c7c7943a24026d9fbc",
            "474554202f20485454502f312e310d0a557365722d4167656e743a20576765742f312e31362e3320286c696e",
        ];
        for other in tcp_others {
            let (v, _) = run(dissect, &flow(true, 40000, 53), &[(true, &hex(other))]);
            assert_eq!(v, [Verdict::No]);
        }
        for msg in [hex(QUERY), hex(RESPONSE)] {
            for n in 0..msg.len() {
                udp(&[(false, &msg[..n])]);
                let mut framed = u16::try_from(msg.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&msg[..n]);
                run(dissect, &flow(true, 1, 53), &[(false, &framed)]);
            }
        }
    }

    /// A packet of IP protocol `ip_protocol` from port `src` to `dst`.
    fn packet(ip_protocol: u8, src: u16, dst: u16, payload: &[u8]) -> PacketMeta<'_> {
        let mut pkt = PacketMeta::new(flowstat_core::Timestamp::ZERO, 100);
        (pkt.protocol, pkt.src_port, pkt.dst_port) = (ip_protocol, src, dst);
        pkt.payload = payload;
        pkt
    }

    #[test]
    fn dns_answer_gives_the_addresses_a_response_names() {
        let r = hex(RESPONSE);
        let answer = dns_answer(&packet(17, 53, 47255, &r)).unwrap();
        assert_eq!(answer.name(), "e7.whatsapp.net");
        let first: [IpAddr; 2] = [[169, 45, 219, 235].into(), [169, 47, 40, 142].into()];
        assert_eq!(answer.addresses().len(), 8);
        assert_eq!(answer.addresses()[..2], first);
        // dns_fragmented.pcap frame 35 (UDP 53 -> 46709 over IPv6):
        // erfpop.de, two AAAA records, and an OPT record after them.
        let r = hex(
            "8cec8180000100020000000106657266706f7002646500001c0001c00c001c00010000012c001026064700\
             003000000000000068186291c00c001c00010000012c001026064700003000000000000068186391000029\
             0200000000000000",
        );
        let answer = dns_answer(&packet(17, 53, 46709, &r)).unwrap();
        assert_eq!(answer.name(), "erfpop.de");
        let v6 = |last: u16| IpAddr::from([0x2606, 0x4700, 0x30, 0, 0, 0, 0x6818, last]);
        assert_eq!(answer.addresses(), [v6(0x6291), v6(0x6391)]);
        // At most 16 addresses: the same A record 20 times.
        let mut many = hex("00018180000100140000000001610000010001");
        for _ in 0..20 {
            many.extend(hex("c00c000100010000012c00040a000001"));
        }
        let answer = dns_answer(&packet(17, 53, 1000, &many)).unwrap();
        assert_eq!(answer.addresses().len(), 16);
    }

    #[test]
    fn dns_answer_skips_other_packets() {
        let (q, r) = (hex(QUERY), hex(RESPONSE));
        for (ip_protocol, src, dst, payload) in [
            // Not from a DNS port (the fast path): the response sent back,
            // from another UDP port, over ICMP, over TCP from port 443.
            (17, 47255, 53, &r),
            (17, 40000, 5353, &r),
            (1, 0, 0, &r),
            (6, 443, 40000, &r),
            // From port 53, but a query, junk, a response cut before its
            // first address, or to a NetBIOS port.
            (17, 53, 47255, &q),
            (17, 53, 47255, &vec![b'x'; 18]),
            (17, 53, 47255, &r[..40].to_vec()),
            (17, 53, 137, &r),
            // LLMNR's and mDNS's ports over TCP, and DNS over TCP without
            // its length.
            (6, 5355, 40000, &r),
            (6, 53, 40000, &r),
        ] {
            let pkt = packet(ip_protocol, src, dst, payload);
            assert_eq!(dns_answer(&pkt), None, "{ip_protocol} {src} -> {dst}");
        }
    }

    #[test]
    fn dns_answer_over_tcp_takes_a_whole_response() {
        // dns.pcap frame 5's response framed as on TCP (synthetic: the
        // corpus's TCP responses carry no address).
        let r = hex(RESPONSE);
        let mut framed = u16::try_from(r.len()).unwrap().to_be_bytes().to_vec();
        framed.extend_from_slice(&r);
        let answer = dns_answer(&packet(6, 53, 39005, &framed)).unwrap();
        assert_eq!(answer.name(), "e7.whatsapp.net");
        assert_eq!(answer.addresses().len(), 8);
        // A segment with the first part of it only, and dns_fragmented.pcap
        // frame 62's whole DNSKEY response (no address).
        assert_eq!(dns_answer(&packet(6, 53, 39005, &framed[..100])), None);
        assert_eq!(dns_answer(&packet(6, 53, 39005, &hex(RESPONSE_62))), None);
        // Two responses in one segment: the first is read.
        framed.extend_from_slice(&framed.clone());
        assert_eq!(dns_answer(&packet(6, 53, 39005, &framed)), Some(answer));
    }

    #[test]
    fn dns_answer_of_mdns_names_the_first_owner() {
        // The synthetic mDNS response of `mdns_and_llmnr_by_port`: no
        // question, printer.local A 192.168.1.5 (cache-flush bit set).
        let r = hex(
            "000084000000000100000000077072696e746572056c6f63616c00000180010000007800 04c0a80105",
        );
        let answer = dns_answer(&packet(17, 5353, 5353, &r)).unwrap();
        assert_eq!(answer.name(), "printer.local");
        assert_eq!(answer.addresses(), [IpAddr::from([192, 168, 1, 5])]);
        // The same from LLMNR's port is no answer: only mDNS may omit the
        // question.
        assert_eq!(dns_answer(&packet(17, 5355, 40000, &r)), None);
    }
}
