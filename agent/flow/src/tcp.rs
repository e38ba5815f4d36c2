//! TCP sequence analysis, per direction (SPEC section 3, "TCP counters").

use flowstat_core::{TcpCounters, TcpInfo};

/// Sequence state of one direction of a TCP flow. The flow table stores
/// it compactly (`next` in the side's counters, the two flags in the flow's
/// flag bits) and runs each segment through a copy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SeqTracker {
    /// The next expected sequence number, once `started`.
    pub(crate) next: u32,
    /// A segment was seen in this direction.
    pub(crate) started: bool,
    /// This direction sent a FIN.
    pub(crate) fin: bool,
}

/// `a` before `b` in sequence space (RFC 1982 serial arithmetic).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl SeqTracker {
    /// Accounts one segment of `payload_len` bytes sent in this direction,
    /// adding to `counters` what it reveals.
    pub(crate) fn segment(&mut self, tcp: &TcpInfo, payload_len: u32, counters: &mut TcpCounters) {
        if tcp.has(TcpInfo::RST) {
            counters.resets += 1;
        }
        if tcp.has(TcpInfo::FIN) {
            self.fin = true;
        }
        let seq = tcp.seq;
        let seq_len = payload_len
            .wrapping_add(u32::from(tcp.has(TcpInfo::SYN)))
            .wrapping_add(u32::from(tcp.has(TcpInfo::FIN)));
        let end = seq.wrapping_add(seq_len);
        if !self.started {
            self.started = true;
            self.next = end;
            return;
        }
        if seq == self.next {
            self.next = end;
        } else if before(seq, self.next) {
            let keep_alive = payload_len <= 1
                && seq == self.next.wrapping_sub(1)
                && tcp.flags & (TcpInfo::SYN | TcpInfo::FIN | TcpInfo::RST) == 0;
            if keep_alive {
                return;
            }
            if seq_len > 0 && !before(self.next, end) {
                counters.retrans += 1;
            } else {
                counters.seq_errors += 1;
                if before(self.next, end) {
                    self.next = end;
                }
            }
        } else {
            counters.seq_errors += 1;
            self.next = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: u8 = TcpInfo::ACK;

    /// Feeds `(seq, payload_len, flags)` segments and returns the counters.
    fn run(segments: &[(u32, u32, u8)]) -> TcpCounters {
        let mut t = SeqTracker::default();
        let mut c = TcpCounters::default();
        for &(seq, len, flags) in segments {
            t.segment(
                &TcpInfo {
                    seq,
                    flags,
                    ..TcpInfo::default()
                },
                len,
                &mut c,
            );
        }
        c
    }

    fn counters(resets: u32, retrans: u32, seq_errors: u32) -> TcpCounters {
        TcpCounters {
            resets,
            retrans,
            seq_errors,
        }
    }

    #[test]
    fn in_order_stream_counts_nothing() {
        let c = run(&[
            (100, 0, TcpInfo::SYN),
            (101, 10, A),
            (111, 0, A),
            (111, 5, A),
            (116, 0, A | TcpInfo::FIN),
        ]);
        assert_eq!(c, counters(0, 0, 0));
    }

    #[test]
    fn full_resend_is_a_retransmission() {
        let c = run(&[(1, 100, A), (101, 100, A), (1, 100, A), (101, 50, A)]);
        assert_eq!(c, counters(0, 2, 0));
    }

    #[test]
    fn resent_syn_and_fin_are_retransmissions() {
        // SYN then the same SYN again; FIN then the same FIN again.
        let c = run(&[
            (7, 0, TcpInfo::SYN),
            (7, 0, TcpInfo::SYN),
            (8, 0, A | TcpInfo::FIN),
            (8, 0, A | TcpInfo::FIN),
        ]);
        assert_eq!(c, counters(0, 2, 0));
    }

    #[test]
    fn gap_is_a_sequence_error_and_moves_next() {
        // 100 bytes missing at 101; later segments follow the new position.
        let c = run(&[(1, 100, A), (201, 100, A), (301, 100, A)]);
        assert_eq!(c, counters(0, 0, 1));
    }

    #[test]
    fn filling_a_gap_later_is_a_retransmission() {
        let c = run(&[(1, 100, A), (201, 100, A), (101, 100, A)]);
        assert_eq!(c, counters(0, 1, 1));
    }

    #[test]
    fn partial_overlap_is_a_sequence_error_and_advances() {
        // 51..151 overlaps the sent 1..101 and goes past it.
        let c = run(&[(1, 100, A), (51, 100, A), (151, 10, A)]);
        assert_eq!(c, counters(0, 0, 1));
    }

    #[test]
    fn empty_segment_out_of_place_is_a_sequence_error() {
        let c = run(&[(1, 100, A), (50, 0, A)]);
        assert_eq!(c, counters(0, 0, 1));
    }

    #[test]
    fn keep_alives_count_nothing() {
        // Zero-byte and one-byte probes at next - 1.
        let c = run(&[(1, 100, A), (100, 0, A), (100, 1, A), (101, 0, A)]);
        assert_eq!(c, counters(0, 0, 0));
    }

    #[test]
    fn every_rst_counts() {
        let c = run(&[
            (1, 0, TcpInfo::SYN),
            (2, 0, TcpInfo::RST),
            (2, 0, TcpInfo::RST | A),
        ]);
        assert_eq!(c, counters(2, 0, 0));
    }

    #[test]
    fn sequence_space_wraps() {
        let c = run(&[
            (u32::MAX - 9, 10, A),
            (0, 10, A),
            (u32::MAX - 9, 10, A),
            (10, 0, A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn fin_is_remembered() {
        let mut t = SeqTracker::default();
        let mut c = TcpCounters::default();
        t.segment(
            &TcpInfo {
                seq: 1,
                flags: A,
                ..TcpInfo::default()
            },
            0,
            &mut c,
        );
        assert!(!t.fin);
        t.segment(
            &TcpInfo {
                seq: 1,
                flags: A | TcpInfo::FIN,
                ..TcpInfo::default()
            },
            0,
            &mut c,
        );
        assert!(t.fin);
    }
}
