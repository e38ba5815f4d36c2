//! pcapng: a sequence of blocks (type, total length, body, total length).
//!
//! A Section Header Block (SHB) starts each section and fixes its byte
//! order; Interface Description Blocks (IDB) number the section's
//! interfaces, each with its link type, snap length and timestamp units;
//! packets come in Enhanced (EPB), Simple (SPB) and obsolete (type 2, OPB)
//! packet blocks. Every other block is skipped.
//!
//! The block framing (length sanity, truncation, trailer) is checked here,
//! so that pcap-parser's block parsers always get one whole block and any
//! error they report means a corrupt block, never a short file. SHB, IDB and
//! SPB are parsed by pcap-parser. EPB and OPB, the per-packet hot path, are
//! read here: their fixed part is five words at fixed offsets, and
//! pcap-parser's EPB parser collects the packet's options into a `Vec`, an
//! allocation per packet in files whose EPBs carry flags or comments.

use flowstat_core::{Frame, LinkType, Timestamp};
use pcap_parser::pcapng::{
    InterfaceDescriptionBlock, parse_interfacedescriptionblock_be,
    parse_interfacedescriptionblock_le, parse_sectionheaderblock, parse_simplepacketblock_be,
    parse_simplepacketblock_le,
};
use pcap_parser::{BOM_MAGIC, EPB_MAGIC, IDB_MAGIC, SPB_MAGIC};

use crate::file::{Lend, PCAPNG_MAGIC, Stop, caplen_limit, normalize_link};
use crate::read_u32;

/// Block type of the obsolete Packet Block, laid out like an EPB except
/// that the interface id is 16 bits, followed by a 16-bit drop count.
const OPB_TYPE: u32 = 0x0000_0002;

/// Smallest total lengths: any block; SHB; IDB; SPB; EPB and OPB.
const MIN_BLOCK: u32 = 12;
const MIN_SHB: u32 = 28;
const MIN_IDB: u32 = 20;
const MIN_SPB: u32 = 16;
const MIN_PACKET: u32 = 32;

/// Length of the fixed part of an EPB/OPB before the packet data.
const PACKET_HEADER_LEN: usize = 28;

/// IDB option codes.
const OPT_ENDOFOPT: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// How an interface's timestamp ticks become nanoseconds, chosen once per
/// interface so that the common cases cost a multiplication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ticks {
    /// Ticks of 10^-k s, k <= 9: multiply by 10^(9-k).
    Multiply(u64),
    /// Ticks of 10^-k s, 10 <= k <= 19: divide by 10^(k-9).
    Divide(u64),
    /// Ticks of 2^-k s, k <= 63.
    PowerOfTwo(u32),
}

impl Ticks {
    /// Decodes `if_tsresol`: 10^-v, or 2^-(v & 0x7f) when the high bit is
    /// set. `None` when the unit does not fit 64 bits.
    fn from_tsresol(v: u8) -> Option<Ticks> {
        let exponent = u32::from(v & 0x7f);
        if v & 0x80 == 0 {
            match exponent {
                0..=9 => Some(Ticks::Multiply(10u64.pow(9 - exponent))),
                10..=19 => Some(Ticks::Divide(10u64.pow(exponent - 9))),
                _ => None,
            }
        } else if exponent <= 63 {
            Some(Ticks::PowerOfTwo(exponent))
        } else {
            None
        }
    }

    /// `ticks` as nanoseconds (rounded down, saturating).
    #[inline]
    fn to_nanos(self, ticks: u64) -> u64 {
        match self {
            Ticks::Multiply(m) => ticks.saturating_mul(m),
            Ticks::Divide(d) => ticks / d,
            Ticks::PowerOfTwo(k) => {
                let secs = ticks >> k;
                let frac = ticks & ((1u64 << k) - 1);
                // frac < 2^k, so this is below 10^9 and fits.
                let frac_nanos = ((u128::from(frac) * u128::from(NANOS_PER_SEC)) >> k) as u64;
                secs.saturating_mul(NANOS_PER_SEC)
                    .saturating_add(frac_nanos)
            }
        }
    }
}

/// What an IDB says about the packets of its interface.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: LinkType,
    /// 0: no limit.
    snaplen: u32,
    /// A larger caplen is corrupt.
    max_caplen: u32,
    ticks: Ticks,
    /// `if_tsoffset`, in nanoseconds (saturated).
    offset_nanos: i64,
}

impl Interface {
    fn from_idb(idb: &InterfaceDescriptionBlock<'_>, big_endian: bool) -> Result<Self, String> {
        let mut tsresol = 6;
        let mut tsoffset = 0i64;
        // As Wireshark does: options of the wrong length are ignored, and a
        // repeated option overrides the earlier one.
        for option in &idb.options {
            let Ok(value) = option.as_bytes() else {
                continue;
            };
            match (option.code.0, value) {
                (OPT_ENDOFOPT, _) => break,
                (OPT_IF_TSRESOL, &[v]) => tsresol = v,
                (OPT_IF_TSOFFSET, v) => {
                    if let Ok(bytes) = <[u8; 8]>::try_from(v) {
                        tsoffset = if big_endian {
                            i64::from_be_bytes(bytes)
                        } else {
                            i64::from_le_bytes(bytes)
                        };
                    }
                }
                _ => {}
            }
        }
        let ticks = Ticks::from_tsresol(tsresol)
            .ok_or_else(|| format!("if_tsresol {tsresol:#04x} is out of range"))?;
        // The IDB's link type is 16 bits, so the cast cannot wrap.
        let link = normalize_link(idb.linktype.0 as u32);
        Ok(Interface {
            link,
            snaplen: idb.snaplen,
            max_caplen: caplen_limit(idb.snaplen),
            ticks,
            offset_nanos: tsoffset.saturating_mul(NANOS_PER_SEC as i64),
        })
    }

    #[inline]
    fn timestamp(&self, ts_high: u32, ts_low: u32) -> Timestamp {
        let ticks = (u64::from(ts_high) << 32) | u64::from(ts_low);
        let nanos = self.ticks.to_nanos(ticks);
        Timestamp::from_nanos(nanos.saturating_add_signed(self.offset_nanos))
    }
}

/// The fixed part of an EPB or OPB, decoded.
struct PacketHeader {
    ts: Timestamp,
    caplen: u32,
    origlen: u32,
    link: LinkType,
}

/// Reads the blocks of a pcapng file.
#[derive(Debug)]
pub(crate) struct PcapNgReader {
    /// Byte order of the current section.
    big_endian: bool,
    /// The current section's interfaces, by id.
    interfaces: Vec<Interface>,
    /// Timestamp of the last packet, for SPBs (which have none).
    last_ts: Timestamp,
    /// Sections seen so far.
    sections: u32,
}

#[inline]
fn word<const N: usize>(bytes: &[u8; N], at: usize) -> [u8; 4] {
    [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
}

impl PcapNgReader {
    /// Checks the first section header at the start of `data` (which starts
    /// with the SHB type); returns the reader and the offset after the SHB,
    /// or the reason the header is corrupt.
    pub(crate) fn open(data: &[u8]) -> Result<(PcapNgReader, usize), String> {
        let mut reader = PcapNgReader {
            big_endian: false,
            interfaces: Vec::new(),
            last_ts: Timestamp::ZERO,
            sections: 0,
        };
        match reader.section_header(data) {
            Ok(len) => Ok((reader, len)),
            Err(Stop::Corrupt(reason)) => Err(reason),
            Err(_) => Err(format!(
                "pcapng section header block truncated: the file has only {} bytes",
                data.len()
            )),
        }
    }

    /// Lends packets from `data[*pos..]` until the budget is spent or the
    /// file ends; `*pos` is left at the first unread block.
    pub(crate) fn read(&mut self, data: &[u8], pos: &mut usize, lend: &mut Lend<'_>) -> Stop {
        while lend.wants_more() {
            lend.prefetch(data, *pos);
            let Some(rest) = data.get(*pos..) else {
                return Stop::End;
            };
            if rest.is_empty() {
                return Stop::End;
            }
            match self.next_block(rest, lend) {
                Ok(len) => *pos += len,
                Err(stop) => return stop,
            }
        }
        Stop::Budget
    }

    /// Handles the block at the start of `rest`, returning its length.
    #[inline]
    fn next_block(&mut self, rest: &[u8], lend: &mut Lend<'_>) -> Result<usize, Stop> {
        let Some(head) = rest.first_chunk::<8>() else {
            return Err(Stop::Truncated);
        };
        if word(head, 0) == PCAPNG_MAGIC {
            return self.section_header(rest);
        }
        let kind = read_u32(self.big_endian, word(head, 0));
        let len = read_u32(self.big_endian, word(head, 4));
        match kind {
            EPB_MAGIC | OPB_TYPE => self.packet(rest, kind, len, lend),
            SPB_MAGIC => self.simple_packet(rest, len, lend),
            IDB_MAGIC => self.interface(rest, len),
            // NRB, ISB, DSB, custom and unknown blocks: skipped.
            _ => self.block(rest, len, MIN_BLOCK, "block").map(<[u8]>::len),
        }
    }

    /// The whole block at the start of `rest`, whose header claims `len`
    /// bytes: checks that the length is a multiple of 4 and at least `min`,
    /// that the file holds the block, and that the trailing length matches.
    #[inline(always)]
    fn block<'a>(&self, rest: &'a [u8], len: u32, min: u32, what: &str) -> Result<&'a [u8], Stop> {
        if len < min.max(MIN_BLOCK) {
            return Err(Stop::corrupt(format_args!(
                "{what} length {len} is less than {}",
                min.max(MIN_BLOCK)
            )));
        }
        if len % 4 != 0 {
            return Err(Stop::corrupt(format_args!(
                "{what} length {len} is not a multiple of 4"
            )));
        }
        let len = len as usize;
        let Some(block) = rest.get(..len) else {
            return Err(Stop::Truncated);
        };
        let trailer = match block.get(len - 4..) {
            Some(&[a, b, c, d]) => read_u32(self.big_endian, [a, b, c, d]),
            _ => 0,
        };
        if trailer != len as u32 {
            return Err(Stop::corrupt(format_args!(
                "{what} length {len} at its start but {trailer} at its end"
            )));
        }
        Ok(block)
    }

    /// A Section Header Block: starts a section with its own byte order
    /// and no interfaces.
    fn section_header(&mut self, rest: &[u8]) -> Result<usize, Stop> {
        let Some(head) = rest.first_chunk::<12>() else {
            return Err(Stop::Truncated);
        };
        let big_endian = match u32::from_le_bytes(word(head, 8)) {
            BOM_MAGIC => false,
            bom if bom == BOM_MAGIC.swap_bytes() => true,
            bom => {
                return Err(Stop::corrupt(format_args!(
                    "section header byte-order magic is {bom:#010x}, not 0x1a2b3c4d"
                )));
            }
        };
        self.big_endian = big_endian;
        self.interfaces.clear();
        let len = read_u32(self.big_endian, word(head, 4));
        let block = self.block(rest, len, MIN_SHB, "section header block")?;
        let (_, shb) = parse_sectionheaderblock(block)
            .map_err(|e| Stop::corrupt(format_args!("bad section header block: {e}")))?;
        if shb.major_version != 1 {
            return Err(Stop::corrupt(format_args!(
                "unsupported pcapng version {}.{}",
                shb.major_version, shb.minor_version
            )));
        }
        self.sections += 1;
        tracing::debug!(section = self.sections, big_endian, "pcapng section");
        Ok(block.len())
    }

    /// An Interface Description Block: the next interface of the section.
    fn interface(&mut self, rest: &[u8], len: u32) -> Result<usize, Stop> {
        let block = self.block(rest, len, MIN_IDB, "interface description block")?;
        let parsed = if self.big_endian {
            parse_interfacedescriptionblock_be(block)
        } else {
            parse_interfacedescriptionblock_le(block)
        };
        let (_, idb) = parsed
            .map_err(|e| Stop::corrupt(format_args!("bad interface description block: {e}")))?;
        let interface = Interface::from_idb(&idb, self.big_endian).map_err(Stop::Corrupt)?;
        tracing::debug!(
            section = self.sections,
            interface = self.interfaces.len(),
            link = interface.link.0,
            snaplen = interface.snaplen,
            ticks = ?interface.ticks,
            "pcapng interface"
        );
        self.interfaces.push(interface);
        Ok(block.len())
    }

    /// Decodes the fixed part of an EPB or OPB and checks it against its
    /// interface.
    #[inline(always)]
    fn packet_header(&self, kind: u32, h: &[u8; PACKET_HEADER_LEN]) -> Result<PacketHeader, Stop> {
        let id = if kind == OPB_TYPE {
            let [a, b, _, _] = word(h, 8);
            u32::from(if self.big_endian {
                u16::from_be_bytes([a, b])
            } else {
                u16::from_le_bytes([a, b])
            })
        } else {
            read_u32(self.big_endian, word(h, 8))
        };
        let Some(interface) = self.interfaces.get(id as usize) else {
            return Err(Stop::corrupt(format_args!(
                "packet for interface {id}, but the section describes {} interface(s)",
                self.interfaces.len()
            )));
        };
        let caplen = read_u32(self.big_endian, word(h, 20));
        if caplen > interface.max_caplen {
            return Err(Stop::corrupt(format_args!(
                "packet block claims {caplen} captured bytes, more than the limit of {} bytes",
                interface.max_caplen
            )));
        }
        Ok(PacketHeader {
            ts: interface.timestamp(
                read_u32(self.big_endian, word(h, 12)),
                read_u32(self.big_endian, word(h, 16)),
            ),
            caplen,
            origlen: read_u32(self.big_endian, word(h, 24)),
            link: interface.link,
        })
    }

    /// An Enhanced Packet Block or an obsolete Packet Block.
    #[inline]
    fn packet(
        &mut self,
        rest: &[u8],
        kind: u32,
        len: u32,
        lend: &mut Lend<'_>,
    ) -> Result<usize, Stop> {
        let block = match self.block(rest, len, MIN_PACKET, "packet block") {
            Ok(block) => block,
            Err(Stop::Truncated) => {
                // Cut short, unless what it says of itself is already wrong.
                if let Some(h) = rest.first_chunk::<PACKET_HEADER_LEN>() {
                    self.packet_header(kind, h)?;
                }
                return Err(Stop::Truncated);
            }
            Err(stop) => return Err(stop),
        };
        let header = match block.first_chunk::<PACKET_HEADER_LEN>() {
            Some(h) => self.packet_header(kind, h)?,
            None => return Err(Stop::Truncated), // unreachable: len >= 32
        };
        // Room for the data: the block minus its fixed part and trailer.
        let room = block.len() - PACKET_HEADER_LEN - 4;
        let caplen = header.caplen as usize;
        let data = match block.get(PACKET_HEADER_LEN..PACKET_HEADER_LEN + caplen) {
            Some(data) if caplen <= room => data,
            _ => {
                return Err(Stop::corrupt(format_args!(
                    "packet block claims {caplen} captured bytes but holds only {room}"
                )));
            }
        };
        self.last_ts = header.ts;
        lend.frame(&Frame {
            ts: header.ts,
            wire_len: header.origlen.max(header.caplen),
            link: header.link,
            data,
        });
        Ok(block.len())
    }

    /// A Simple Packet Block: a packet of interface 0, without timestamp
    /// (it gets the previous packet's), captured up to that interface's
    /// snap length.
    fn simple_packet(&mut self, rest: &[u8], len: u32, lend: &mut Lend<'_>) -> Result<usize, Stop> {
        let block = self.block(rest, len, MIN_SPB, "simple packet block")?;
        let parsed = if self.big_endian {
            parse_simplepacketblock_be(block)
        } else {
            parse_simplepacketblock_le(block)
        };
        let (_, spb) =
            parsed.map_err(|e| Stop::corrupt(format_args!("bad simple packet block: {e}")))?;
        let Some(interface) = self.interfaces.first() else {
            return Err(Stop::Corrupt(
                "simple packet block in a section without interfaces".to_string(),
            ));
        };
        let mut caplen = spb.data.len().min(spb.origlen as usize);
        if interface.snaplen != 0 {
            caplen = caplen.min(interface.snaplen as usize);
        }
        let data = spb.data.get(..caplen).unwrap_or(spb.data);
        lend.frame(&Frame {
            ts: self.last_ts,
            wire_len: spb.origlen.max(data.len() as u32),
            link: interface.link,
            data,
        });
        Ok(block.len())
    }
}

#[cfg(test)]
mod tests {
    use flowstat_core::{Batch, CaptureError, CaptureSource};

    use super::*;
    use crate::FileSource;
    use crate::testutil::{Ng, OwnedFrame, TempFile, drain};

    const SEC: u64 = 1_700_000_000;

    fn open(ng: &Ng) -> (TempFile, FileSource) {
        let file = TempFile::new("test.pcapng", &ng.bytes);
        let source = FileSource::open(file.path()).unwrap();
        (file, source)
    }

    #[test]
    fn ticks_decode_every_kind_of_if_tsresol() {
        assert_eq!(Ticks::from_tsresol(6), Some(Ticks::Multiply(1000)));
        assert_eq!(Ticks::from_tsresol(9), Some(Ticks::Multiply(1)));
        assert_eq!(Ticks::from_tsresol(12), Some(Ticks::Divide(1000)));
        assert_eq!(Ticks::from_tsresol(19), Some(Ticks::Divide(10_000_000_000)));
        assert_eq!(Ticks::from_tsresol(20), None);
        assert_eq!(Ticks::from_tsresol(0x80 | 20), Some(Ticks::PowerOfTwo(20)));
        assert_eq!(Ticks::from_tsresol(0x80 | 63), Some(Ticks::PowerOfTwo(63)));
        assert_eq!(Ticks::from_tsresol(0x80 | 64), None);

        assert_eq!(Ticks::Multiply(1000).to_nanos(1_500_000), 1_500_000_000);
        assert_eq!(
            Ticks::Divide(1000).to_nanos(2_000_000_000_999),
            2_000_000_000
        );
        // 2^-20 s ticks: 1.5 s, and one tick (953.67... ns, rounded down).
        let pow2 = Ticks::PowerOfTwo(20);
        assert_eq!(pow2.to_nanos(3 << 19), 1_500_000_000);
        assert_eq!(pow2.to_nanos((5 << 20) + 1), 5_000_000_953);
        assert_eq!(Ticks::PowerOfTwo(0).to_nanos(7), 7_000_000_000);
        assert_eq!(Ticks::Multiply(1).to_nanos(u64::MAX), u64::MAX);
        assert_eq!(Ticks::Multiply(1000).to_nanos(u64::MAX), u64::MAX);
    }

    #[test]
    fn two_interfaces_keep_their_link_types_and_resolutions() {
        let mut ng = Ng::new(false);
        ng.idb(1, 65535, &[]); // Ethernet, microseconds by default
        let nine = [9u8];
        ng.idb(113, 65535, &[(OPT_IF_TSRESOL, &nine)]); // SLL, nanoseconds
        ng.block(4, &[0; 8]); // NRB: skipped
        ng.epb(0, SEC * 1_000_000 + 123_456, 60, b"eth0", &[]);
        let flags = ng.word(1);
        ng.epb(
            1,
            SEC * 1_000_000_000 + 123_456_789,
            5,
            b"sll!!",
            &[(2, &flags)],
        );
        ng.block(5, &[0; 12]); // ISB: skipped
        ng.block(0x0000_0bad, &[0; 8]); // custom: skipped
        ng.block(0x4242, &[]); // unknown: skipped
        let (_file, mut source) = open(&ng);
        let (frames, error) = drain(&mut source, 64);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(
            frames,
            vec![
                OwnedFrame {
                    ts: SEC * 1_000_000_000 + 123_456_000,
                    wire_len: 60,
                    link: 1,
                    data: b"eth0".to_vec()
                },
                OwnedFrame {
                    ts: SEC * 1_000_000_000 + 123_456_789,
                    wire_len: 5,
                    link: 113,
                    data: b"sll!!".to_vec()
                },
            ]
        );
        assert_eq!(
            source.progress(),
            Some((ng.bytes.len() as u64, ng.bytes.len() as u64))
        );
    }

    #[test]
    fn second_section_has_its_own_byte_order_and_interfaces() {
        let mut ng = Ng::new(false);
        ng.idb(1, 65535, &[]);
        ng.epb(0, SEC * 1_000_000, 4, b"one.", &[]);
        ng.section(true);
        let millis = [3u8];
        let offset = ng.dword(100);
        ng.idb(
            12,
            65535,
            &[(OPT_IF_TSRESOL, &millis), (OPT_IF_TSOFFSET, &offset)],
        );
        ng.epb(0, 2_500, 4, b"two.", &[]);
        ng.section(false);
        let pow2 = [0x80 | 20];
        ng.idb(101, 65535, &[(OPT_IF_TSRESOL, &pow2)]);
        ng.epb(0, 3 << 19, 6, b"three.", &[]);
        let (_file, mut source) = open(&ng);
        let (frames, error) = drain(&mut source, 1);
        assert!(error.is_none(), "{error:?}");
        let got: Vec<(u64, u32, &[u8])> = frames
            .iter()
            .map(|f| (f.ts, f.link, f.data.as_slice()))
            .collect();
        assert_eq!(
            got,
            vec![
                (SEC * 1_000_000_000, 1, &b"one."[..]),
                (102_500_000_000, LinkType::RAW.0, &b"two."[..]),
                (1_500_000_000, LinkType::RAW.0, &b"three."[..]),
            ]
        );
    }

    #[test]
    fn interfaces_do_not_carry_over_into_the_next_section() {
        let mut ng = Ng::new(false);
        ng.idb(1, 65535, &[]);
        ng.idb(1, 65535, &[]);
        ng.section(false);
        ng.idb(1, 65535, &[]);
        let bad = ng.bytes.len();
        ng.epb(1, 0, 4, b"lost", &[]);
        let (_file, mut source) = open(&ng);
        match drain(&mut source, 8) {
            (frames, Some(CaptureError::Corrupt { offset, reason, .. })) => {
                assert!(frames.is_empty());
                assert_eq!(offset, bad as u64);
                assert!(reason.contains("interface 1"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn simple_packet_blocks_take_the_previous_time_and_interface_0_snaplen() {
        let mut ng = Ng::new(false);
        ng.idb(1, 8, &[]);
        ng.idb(113, 65535, &[]);
        ng.epb(1, SEC * 1_000_000 + 7, 3, b"epb", &[]);
        ng.spb(20, &[0xaa; 20]); // cut to the snaplen of interface 0
        ng.spb(3, b"abc"); // padded to 4 bytes in the block
        let (_file, mut source) = open(&ng);
        let (frames, error) = drain(&mut source, 64);
        assert!(error.is_none(), "{error:?}");
        let ts = SEC * 1_000_000_000 + 7_000;
        assert_eq!(frames.len(), 3);
        assert_eq!(
            frames[1],
            OwnedFrame {
                ts,
                wire_len: 20,
                link: 1,
                data: vec![0xaa; 8]
            }
        );
        assert_eq!(
            frames[2],
            OwnedFrame {
                ts,
                wire_len: 3,
                link: 1,
                data: b"abc".to_vec()
            }
        );
    }

    #[test]
    fn simple_packet_block_without_interface_is_corrupt() {
        let mut ng = Ng::new(true);
        ng.spb(3, b"abc");
        let (_file, mut source) = open(&ng);
        let (_, error) = drain(&mut source, 8);
        assert!(
            matches!(error, Some(CaptureError::Corrupt { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn obsolete_packet_blocks_read_like_enhanced_ones() {
        for big_endian in [false, true] {
            let mut ng = Ng::new(big_endian);
            ng.idb(1, 65535, &[]);
            ng.idb(101, 65535, &[]);
            ng.opb(1, SEC * 1_000_000 + 1, 1500, b"opb!", &[]);
            let (_file, mut source) = open(&ng);
            let (frames, error) = drain(&mut source, 8);
            assert!(error.is_none(), "{error:?}");
            assert_eq!(
                frames,
                vec![OwnedFrame {
                    ts: SEC * 1_000_000_000 + 1_000,
                    wire_len: 1500,
                    link: 101,
                    data: b"opb!".to_vec()
                }]
            );
        }
    }

    #[test]
    fn truncated_block_lends_complete_frames_then_errors_then_ends() {
        let mut ng = Ng::new(false);
        ng.idb(1, 65535, &[]);
        ng.epb(0, 1, 4, b"abcd", &[]);
        ng.epb(0, 2, 4, b"efgh", &[]);
        let third = ng.bytes.len();
        ng.epb(0, 3, 8, b"ijklmnop", &[]);
        // Cut inside the data, inside the fixed part, inside the length.
        for cut in [ng.bytes.len() - 1, third + 20, third + 6] {
            let file = TempFile::new("cut.pcapng", &ng.bytes[..cut]);
            let mut source = FileSource::open(file.path()).unwrap();
            let mut seen = 0;
            assert_eq!(
                source.poll_batch(64, &mut |_| seen += 1).unwrap(),
                Batch::Frames(2)
            );
            assert_eq!(seen, 2);
            match source.poll_batch(64, &mut |_| panic!("no frame after the cut")) {
                Err(CaptureError::Truncated {
                    offset, packets, ..
                }) => {
                    assert_eq!((offset, packets), (third as u64, 2), "cut {cut}");
                }
                other => panic!("cut {cut}: expected Truncated, got {other:?}"),
            }
            assert_eq!(source.poll_batch(64, &mut |_| {}).unwrap(), Batch::End);
        }
    }

    #[test]
    fn bad_block_lengths_are_corrupt() {
        // (block type, total length written in its header, reason fragment)
        for (kind, len, why) in [
            (0x4242_u32, 8u32, "less than 12"),
            (0x4242, 14, "not a multiple of 4"),
            (EPB_MAGIC, 24, "less than 32"),
            (EPB_MAGIC, 42, "not a multiple of 4"),
        ] {
            let mut ng = Ng::new(false);
            ng.idb(1, 65535, &[]);
            ng.epb(0, 1, 4, b"good", &[]);
            let bad = ng.bytes.len();
            ng.epb(0, 2, 4, b"evil", &[]);
            ng.bytes[bad..bad + 4].copy_from_slice(&kind.to_le_bytes());
            ng.bytes[bad + 4..bad + 8].copy_from_slice(&len.to_le_bytes());
            let (_file, mut source) = open(&ng);
            match drain(&mut source, 64) {
                (frames, Some(CaptureError::Corrupt { offset, reason, .. })) => {
                    assert_eq!(frames.len(), 1);
                    assert_eq!(offset, bad as u64);
                    assert!(reason.contains(why), "{reason}");
                }
                other => panic!("type {kind:#x} length {len}: expected Corrupt, got {other:?}"),
            }
        }
    }

    #[test]
    fn mismatched_trailer_and_absurd_caplen_are_corrupt() {
        let mut ng = Ng::new(false);
        ng.idb(1, 65535, &[]);
        ng.epb(0, 2, 4, b"evil", &[]);
        let end = ng.bytes.len();
        ng.bytes[end - 4] ^= 4;
        let (_file, mut source) = open(&ng);
        let (_, error) = drain(&mut source, 64);
        assert!(
            matches!(&error, Some(CaptureError::Corrupt { reason, .. }) if reason.contains("at its end")),
            "{error:?}"
        );

        // A caplen of 1 MiB in a block that the file cuts short is still
        // corrupt rather than truncated.
        let mut ng = Ng::new(false);
        ng.idb(1, 65535, &[]);
        let bad = ng.bytes.len();
        ng.epb(0, 2, 4, &[0; 64], &[]);
        ng.bytes[bad + 20..bad + 24].copy_from_slice(&(1u32 << 20).to_le_bytes());
        ng.bytes[bad + 4..bad + 8].copy_from_slice(&(1u32 << 21).to_le_bytes());
        let (_file, mut source) = open(&ng);
        let (_, error) = drain(&mut source, 64);
        assert!(
            matches!(&error, Some(CaptureError::Corrupt { reason, .. }) if reason.contains("1048576")),
            "{error:?}"
        );
    }

    #[test]
    fn truncated_or_bad_section_header_fails_at_open() {
        let ng = Ng::new(false);
        for cut in [3, 4, 11, 27] {
            let file = TempFile::new("header.pcapng", &ng.bytes[..cut]);
            match FileSource::open(file.path()).unwrap_err() {
                CaptureError::Corrupt { offset: 0, .. } => {}
                other => panic!("cut {cut}: expected Corrupt, got {other:?}"),
            }
        }
        let mut bad_bom = ng.bytes.clone();
        bad_bom[8] = 0;
        let file = TempFile::new("bom.pcapng", &bad_bom);
        match FileSource::open(file.path()).unwrap_err() {
            CaptureError::Corrupt { reason, .. } => {
                assert!(reason.contains("byte-order"), "{reason}")
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let mut version2 = ng.bytes.clone();
        version2[12] = 2;
        let file = TempFile::new("v2.pcapng", &version2);
        let error = FileSource::open(file.path()).unwrap_err();
        assert!(matches!(error, CaptureError::Corrupt { .. }), "{error:?}");
    }

    #[test]
    fn out_of_range_if_tsresol_is_corrupt() {
        let mut ng = Ng::new(false);
        let bad = [20u8];
        ng.idb(1, 65535, &[(OPT_IF_TSRESOL, &bad)]);
        let (_file, mut source) = open(&ng);
        let (_, error) = drain(&mut source, 8);
        assert!(
            matches!(&error, Some(CaptureError::Corrupt { offset: 28, reason, .. }) if reason.contains("if_tsresol")),
            "{error:?}"
        );
    }
}
