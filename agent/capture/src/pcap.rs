//! Classic pcap: a 24-byte global header, then records of a 16-byte header
//! (seconds, sub-seconds, captured length, original length) and the
//! captured bytes, all in the byte order the magic number announces.

use flowstat_core::{Frame, LinkType, Timestamp};
use pcap_parser::nom;
use pcap_parser::pcap::{
    LegacyPcapBlock, parse_pcap_frame, parse_pcap_frame_be, parse_pcap_header,
};

use crate::file::{Lend, Stop, caplen_limit, normalize_link};
use crate::read_u32;

/// LT_LINKTYPE(): the link type is the low 26 bits of the header field; the
/// high bits may carry the FCS length.
const LINKTYPE_MASK: u32 = 0x03ff_ffff;

/// Reads the records of a classic pcap file.
#[derive(Debug)]
pub(crate) struct PcapReader {
    big_endian: bool,
    /// Nanoseconds per sub-second unit: 1000 (microsecond magic) or 1.
    nanos_per_unit: u64,
    link: LinkType,
    /// A larger caplen is corrupt.
    max_caplen: u32,
}

/// Length of a record header.
const RECORD_HEADER_LEN: usize = 16;

impl PcapReader {
    /// Length of the global header; the first record follows it.
    pub(crate) const HEADER_LEN: usize = 24;

    /// Checks the global header at the start of `data` (whose magic is a
    /// pcap magic); the error is the reason it is corrupt.
    pub(crate) fn open(data: &[u8]) -> Result<PcapReader, String> {
        if data.len() < Self::HEADER_LEN {
            return Err(format!(
                "pcap file header truncated: {} of {} bytes",
                data.len(),
                Self::HEADER_LEN
            ));
        }
        let (_, header) =
            parse_pcap_header(data).map_err(|e| format!("bad pcap file header: {e}"))?;
        if header.version_major != 2 {
            return Err(format!(
                "unsupported pcap version {}.{}",
                header.version_major, header.version_minor
            ));
        }
        let network = header.network.0 as u32 & LINKTYPE_MASK;
        let reader = PcapReader {
            big_endian: header.is_bigendian(),
            nanos_per_unit: if header.is_nanosecond_precision() {
                1
            } else {
                1000
            },
            link: normalize_link(network),
            max_caplen: caplen_limit(header.snaplen),
        };
        tracing::debug!(
            link = reader.link.0,
            snaplen = header.snaplen,
            big_endian = reader.big_endian,
            nanosecond = reader.nanos_per_unit == 1,
            "pcap header"
        );
        Ok(reader)
    }

    /// Lends records from `data[*pos..]` until the budget is spent or the
    /// file ends; `*pos` is left at the first unread record.
    #[inline]
    pub(crate) fn read(&self, data: &[u8], pos: &mut usize, lend: &mut Lend<'_>) -> Stop {
        while lend.wants_more() {
            lend.prefetch(data, *pos);
            let Some(rest) = data.get(*pos..) else {
                return Stop::End;
            };
            if rest.is_empty() {
                return Stop::End;
            }
            // parse_pcap_frame borrows the captured bytes from `rest` and
            // reports both a short header and short data as Incomplete.
            // (A branch, not a fn pointer, so both stay inlinable.)
            let parsed = if self.big_endian {
                parse_pcap_frame_be(rest)
            } else {
                parse_pcap_frame(rest)
            };
            let record: LegacyPcapBlock<'_> = match parsed {
                Ok((_, record)) => record,
                Err(nom::Err::Incomplete(_)) => {
                    // Cut short, unless the caplen itself is absurd.
                    if let Some(&[a, b, c, d]) = rest.get(8..12) {
                        if let Some(stop) =
                            self.check_caplen(read_u32(self.big_endian, [a, b, c, d]))
                        {
                            return stop;
                        }
                    }
                    return Stop::Truncated;
                }
                Err(e) => return Stop::corrupt(format_args!("bad record header: {e}")),
            };
            if let Some(stop) = self.check_caplen(record.caplen) {
                return stop;
            }
            let nanos = u64::from(record.ts_sec) * 1_000_000_000
                + u64::from(record.ts_usec) * self.nanos_per_unit;
            lend.frame(&Frame {
                ts: Timestamp::from_nanos(nanos),
                wire_len: record.origlen.max(record.caplen),
                link: self.link,
                data: record.data,
            });
            *pos += RECORD_HEADER_LEN + record.data.len();
        }
        Stop::Budget
    }

    /// `Some(Corrupt)` when `caplen` is larger than any sane record.
    #[inline]
    fn check_caplen(&self, caplen: u32) -> Option<Stop> {
        (caplen > self.max_caplen).then(|| {
            Stop::corrupt(format_args!(
                "record claims {caplen} captured bytes, more than the limit of {} bytes",
                self.max_caplen
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use flowstat_core::{Batch, CaptureError, CaptureSource};

    use super::*;
    use crate::FileSource;
    use crate::testutil::{OwnedFrame, TempFile, drain, pcap_file};

    const TS: u32 = 1_700_000_000;

    fn frame(ts: u64, wire_len: u32, link: u32, data: &[u8]) -> OwnedFrame {
        OwnedFrame {
            ts,
            wire_len,
            link,
            data: data.to_vec(),
        }
    }

    #[test]
    fn all_four_magics_give_the_same_frames_in_nanoseconds() {
        for (little_endian, nanos, frac, want_ns) in [
            (true, false, 123_456, 123_456_000),
            (false, false, 123_456, 123_456_000),
            (true, true, 123_456_789, 123_456_789),
            (false, true, 123_456_789, 123_456_789),
        ] {
            let bytes = pcap_file(
                little_endian,
                nanos,
                1,
                65535,
                &[(TS, frac, 60, &[1, 2, 3, 4]), (TS + 1, 0, 4, b"abcd")],
            );
            let file = TempFile::new("magic.pcap", &bytes);
            let mut source = FileSource::open(file.path()).unwrap();
            let (frames, error) = drain(&mut source, 64);
            assert!(error.is_none(), "{error:?}");
            let base = u64::from(TS) * 1_000_000_000;
            assert_eq!(
                frames,
                vec![
                    frame(base + want_ns, 60, 1, &[1, 2, 3, 4]),
                    frame(base + 1_000_000_000, 4, 1, b"abcd"),
                ],
                "little_endian={little_endian} nanos={nanos}"
            );
        }
    }

    #[test]
    fn dlt_raw_12_and_14_become_linktype_raw() {
        for dlt in [12, 14] {
            let bytes = pcap_file(true, false, dlt, 65535, &[(TS, 0, 20, &[0x45; 20])]);
            let file = TempFile::new("raw.pcap", &bytes);
            let (frames, _) = drain(&mut FileSource::open(file.path()).unwrap(), 8);
            assert_eq!(frames[0].link, LinkType::RAW.0, "dlt {dlt}");
        }
        // The FCS bits above the link type are not part of it.
        let bytes = pcap_file(true, false, 0x1000_0001, 65535, &[(TS, 0, 4, b"abcd")]);
        let file = TempFile::new("fcs.pcap", &bytes);
        let (frames, _) = drain(&mut FileSource::open(file.path()).unwrap(), 8);
        assert_eq!(frames[0].link, 1);
    }

    #[test]
    fn wire_len_is_never_below_the_captured_length() {
        let bytes = pcap_file(true, false, 1, 65535, &[(TS, 0, 2, b"abcd")]);
        let file = TempFile::new("short-len.pcap", &bytes);
        let (frames, _) = drain(&mut FileSource::open(file.path()).unwrap(), 8);
        assert_eq!(frames[0].wire_len, 4);
    }

    #[test]
    fn truncated_record_lends_complete_frames_then_errors_then_ends() {
        let whole = pcap_file(
            true,
            false,
            1,
            65535,
            &[
                (TS, 0, 4, b"abcd"),
                (TS, 1, 4, b"efgh"),
                (TS, 2, 8, b"ijklmnop"),
            ],
        );
        let third = 24 + 2 * (16 + 4);
        // Cut inside the third record's data, then inside its header.
        for cut in [whole.len() - 3, third + 9] {
            let file = TempFile::new("cut.pcap", &whole[..cut]);
            let mut source = FileSource::open(file.path()).unwrap();
            let mut seen = Vec::new();
            let batch = source
                .poll_batch(64, &mut |f| seen.push(f.data.to_vec()))
                .unwrap();
            assert_eq!(batch, Batch::Frames(2));
            assert_eq!(seen, vec![b"abcd".to_vec(), b"efgh".to_vec()]);
            match source.poll_batch(64, &mut |_| panic!("no frame after the cut")) {
                Err(CaptureError::Truncated {
                    path,
                    offset,
                    packets,
                }) => {
                    assert_eq!(path, file.path());
                    assert_eq!(offset, third as u64);
                    assert_eq!(packets, 2);
                }
                other => panic!("expected Truncated, got {other:?}"),
            }
            assert_eq!(source.poll_batch(64, &mut |_| {}).unwrap(), Batch::End);
            assert_eq!(source.stats().received, 2);
        }
    }

    #[test]
    fn truncated_file_header_is_corrupt() {
        let whole = pcap_file(false, true, 1, 65535, &[]);
        for cut in [2, 4, 23] {
            let file = TempFile::new("header.pcap", &whole[..cut]);
            match FileSource::open(file.path()).unwrap_err() {
                CaptureError::Corrupt { offset, .. } => assert_eq!(offset, 0),
                other => panic!("cut {cut}: expected Corrupt, got {other:?}"),
            }
        }
        let file = TempFile::new("header-only.pcap", &whole);
        let (frames, error) = drain(&mut FileSource::open(file.path()).unwrap(), 8);
        assert!(frames.is_empty() && error.is_none());
    }

    #[test]
    fn absurd_caplen_is_corrupt_even_at_the_end_of_the_file() {
        let mut bytes = pcap_file(true, false, 1, 65535, &[(TS, 0, 4, b"abcd")]);
        let bad = bytes.len();
        bytes.extend_from_slice(&TS.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&0x0100_0000_u32.to_le_bytes()); // 16 MiB
        bytes.extend_from_slice(&60u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 40]);
        let file = TempFile::new("absurd.pcap", &bytes);
        let mut source = FileSource::open(file.path()).unwrap();
        let (frames, error) = drain(&mut source, 8);
        assert_eq!(frames.len(), 1);
        match error {
            Some(CaptureError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, bad as u64);
                assert!(reason.contains("16777216"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn caplen_above_snaplen_but_below_256k_is_accepted() {
        let data = vec![7u8; 2000];
        let bytes = pcap_file(true, false, 1, 96, &[(TS, 0, 2000, &data)]);
        let file = TempFile::new("oversnap.pcap", &bytes);
        let (frames, error) = drain(&mut FileSource::open(file.path()).unwrap(), 8);
        assert!(error.is_none());
        assert_eq!(frames[0].data.len(), 2000);
    }
}
