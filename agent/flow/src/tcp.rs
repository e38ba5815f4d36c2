//! TCP sequence analysis (SPEC section 3, "TCP counters"; the rules in
//! full are in `docs/records.md`).
//!
//! Each segment is judged per direction as Wireshark's sequence analysis
//! (`tcp_analyze_sequence_number`) judges it, the SPEC's reference: a
//! segment carrying data, SYN or FIN that starts before the direction's
//! next expected sequence number is a retransmission, unless it is a
//! keep-alive, or an out-of-order segment (it came within the handshake's
//! round-trip time, or 3 ms without one, of the segment that last moved
//! the direction forward, and does not end where that one did); one that
//! the other side has already acknowledged is a retransmission wherever it
//! starts; one that starts after the next expected number follows a gap.
//! `retrans` counts retransmissions, `seq_errors` gaps and out-of-order
//! segments, `resets` segments with RST.

use std::time::Duration;

use flowstat_core::{Side, TcpCounters, TcpInfo};

const FIN: u8 = TcpInfo::FIN;
const SYN: u8 = TcpInfo::SYN;
const RST: u8 = TcpInfo::RST;
const ACK: u8 = TcpInfo::ACK;

/// Out of order rather than retransmitted: how soon after the segment that
/// last moved its direction forward, when the handshake gave no round-trip
/// time (Wireshark's default).
const OUT_OF_ORDER_MICROS: u32 = 3_000;
/// A fast retransmission: how soon after the other side's latest segment
/// (the duplicate ACKs that asked for it).
const FAST_RETRANSMISSION: Duration = Duration::from_millis(20);

// `TcpState::bits`. Per direction, by side index:
/// A segment was analysed in this direction.
const STARTED: [u16; 2] = [1, 1 << 1];
/// The direction's latest segment was a keep-alive.
const KEEP_ALIVE: [u16; 2] = [1 << 2, 1 << 3];
/// Duplicate ACKs the direction sent in a row (0, 1, or 2 for two or
/// more), two bits from this shift.
const DUP_ACKS: [u16; 2] = [4, 6];
// Per flow:
/// A SYN without ACK was seen: `syn_rtt` holds its time.
const SYN_SEEN: u16 = 1 << 8;
/// `syn_rtt` holds the handshake's round-trip time.
const RTT_KNOWN: u16 = 1 << 9;
/// `isn` holds the sequence number of a SYN without ACK ...
const ISN_SET: u16 = 1 << 10;
/// ... sent by the upper side (else the lower).
const ISN_UPPER: u16 = 1 << 11;

/// When a segment was sent, in the two forms the analysis compares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegmentTime {
    /// Microseconds since the flow's first packet, wrapping at 2^32 (71
    /// minutes). Times are compared with a round-trip time: a direction
    /// whose `next` has not moved for 71 minutes or more can look recent,
    /// once in 2^32 / round trip, where Wireshark's nanoseconds would not.
    pub(crate) micros: u32,
    /// Time since the other side's latest packet (from the epoch when it
    /// sent none).
    pub(crate) since_peer: Duration,
}

/// What one segment was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Verdict {
    retransmission: bool,
    /// Beyond the next expected sequence number: something before it was
    /// not seen.
    gap: bool,
    out_of_order: bool,
    keep_alive: bool,
    /// One byte at the next expected number while the other side's window
    /// is zero: it does not move the direction forward.
    window_probe: bool,
}

/// The TCP state of a flow: the counters, and what sequence analysis
/// keeps of each direction. Directions are indexed by [`Side::index`].
/// Kept small: it is part of every flow slot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TcpState {
    /// Counters since the flow's previous record.
    pub(crate) interval: TcpCounters,
    /// Counters since the flow began.
    pub(crate) total: TcpCounters,
    /// TCP flags each side sent since the flow's previous record, OR-ed.
    pub(crate) flags_sent: [u8; 2],
    /// Next expected sequence number: the furthest end of a segment.
    next: [u32; 2],
    /// When `next` last moved (as [`SegmentTime::micros`]).
    next_at: [u32; 2],
    /// Acknowledgement field of the direction's latest segment.
    ack: [u32; 2],
    /// Window field of the direction's latest segment.
    window: [u16; 2],
    /// See `ISN_SET`.
    isn: u32,
    /// The time of the latest SYN without ACK until the handshake's
    /// round-trip time is known (`SYN_SEEN`), then that time (`RTT_KNOWN`);
    /// microseconds.
    syn_rtt: u32,
    bits: u16,
}

/// `a` before `b` in sequence space (RFC 1982 serial arithmetic).
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl TcpState {
    fn has(&self, bit: u16) -> bool {
        self.bits & bit != 0
    }

    fn set(&mut self, bit: u16, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    fn dup_acks(&self, d: usize) -> u16 {
        (self.bits >> DUP_ACKS[d]) & 3
    }

    fn set_dup_acks(&mut self, d: usize, n: u16) {
        self.bits = self.bits & !(3 << DUP_ACKS[d]) | n.min(2) << DUP_ACKS[d];
    }

    /// The next sequence number expected from `side`, once it sent a
    /// segment.
    pub(crate) fn next(&self, side: Side) -> Option<u32> {
        self.has(STARTED[side.index()])
            .then_some(self.next[side.index()])
    }

    /// Starts a record's interval: its counters and flags from zero.
    pub(crate) fn end_interval(&mut self) {
        self.interval = TcpCounters::default();
        self.flags_sent = [0; 2];
    }

    /// Accounts one segment of `payload_len` bytes sent by `side` at `at`.
    pub(crate) fn segment(&mut self, side: Side, tcp: &TcpInfo, payload_len: u32, at: SegmentTime) {
        let f = side.index();
        if tcp.flags & (SYN | ACK) == SYN
            && self.has(STARTED[f])
            && !self.repeats_syn(side, tcp.seq)
        {
            // A new connection on the same ports: its analysis starts
            // afresh (the counters go on).
            *self = TcpState {
                interval: self.interval,
                total: self.total,
                flags_sent: self.flags_sent,
                ..TcpState::default()
            };
        }
        self.flags_sent[f] |= tcp.flags;
        let v = self.judge(f, tcp, payload_len, at);
        for c in [&mut self.interval, &mut self.total] {
            c.resets += u32::from(tcp.flags & RST != 0);
            c.retrans += u32::from(v.retransmission);
            c.seq_errors += u32::from(v.gap || v.out_of_order);
        }
        match tcp.flags & (SYN | ACK) {
            SYN if !self.has(RTT_KNOWN) => {
                self.syn_rtt = at.micros;
                self.bits |= SYN_SEEN;
            }
            ACK if self.has(SYN_SEEN) && !self.has(RTT_KNOWN) => {
                // The first pure ACK after a SYN ends the handshake (a
                // zero time is no time: the next ACK tries again).
                let rtt = at.micros.wrapping_sub(self.syn_rtt);
                if rtt != 0 {
                    self.syn_rtt = rtt;
                    self.bits |= RTT_KNOWN;
                }
            }
            _ => {}
        }
    }

    /// Whether a SYN without ACK from `side` with sequence number `seq`
    /// repeats the one that opened its connection.
    fn repeats_syn(&self, side: Side, seq: u32) -> bool {
        self.has(ISN_SET) && self.has(ISN_UPPER) == (side == Side::Upper) && self.isn == seq
    }

    /// Judges a segment sent in direction `f` and moves that direction's
    /// state past it.
    fn judge(&mut self, f: usize, tcp: &TcpInfo, len: u32, at: SegmentTime) -> Verdict {
        let r = 1 - f;
        let (seq, ack, flags, window) = (tcp.seq, tcp.ack, tcp.flags, tcp.window);
        let started = self.has(STARTED[f]);
        let next = self.next[f];
        let control = flags & (SYN | FIN | RST) != 0;
        let peer_window = self.has(STARTED[r]).then_some(self.window[r]);
        let mut v = Verdict::default();
        if len == 1 && started && seq == next && peer_window == Some(0) {
            v.window_probe = true;
        } else {
            v.gap = started && before(next, seq) && flags & RST == 0;
            v.keep_alive = len <= 1 && started && seq == next.wrapping_sub(1) && !control;
            // The same empty segment again, with the same open window: a
            // duplicate ACK, unless it answers a keep-alive.
            let duplicate = len == 0
                && started
                && seq == next
                && ack == self.ack[f]
                && window != 0
                && window == self.window[f]
                && !control
                && !self.has(KEEP_ALIVE[r]);
            if duplicate {
                self.set_dup_acks(f, self.dup_acks(f) + 1);
            }
        }
        if ack != self.ack[f] {
            self.set_dup_acks(f, 0);
        }
        let syn_fin = u32::from(flags & (SYN | FIN) != 0);
        let end = seq.wrapping_add(len).wrapping_add(syn_fin);
        if (len > 0 || syn_fin > 0) && !v.keep_alive {
            // Starts before the next expected number (one byte before it,
            // with more data, follows a window probe).
            let behind = started && before(seq, next) && !(len > 1 && seq == next.wrapping_sub(1));
            let peer_ack = self.ack[r];
            let threshold = if self.has(RTT_KNOWN) {
                self.syn_rtt
            } else {
                OUT_OF_ORDER_MICROS
            };
            if len > 0 && peer_ack != 0 && !before(peer_ack, seq.wrapping_add(len)) {
                // Already acknowledged (spurious).
                v.retransmission = true;
            } else if behind
                && self.dup_acks(r) >= 2
                && peer_ack == seq
                && at.since_peer < FAST_RETRANSMISSION
            {
                // Asked for by duplicate ACKs (fast).
                v.retransmission = true;
            } else if behind && at.micros.wrapping_sub(self.next_at[f]) < threshold && next != end {
                v.out_of_order = true;
            } else {
                v.retransmission = behind;
            }
        }
        self.ack[f] = ack;
        self.window[f] = window;
        self.set(KEEP_ALIVE[f], v.keep_alive);
        // An empty RST of sequence number 0 (the answer to a segment
        // without ACK, RFC 9293 3.10.7.1) says nothing of its sender's
        // sequence numbers: the connection that follows starts its
        // direction (Wireshark's "no segment seen yet", `nextseq` 0).
        if flags & RST != 0 && seq == 0 && len == 0 {
            return v;
        }
        if !v.window_probe && (!started || before(next, end)) {
            self.next[f] = end;
            self.next_at[f] = at.micros;
        }
        self.bits |= STARTED[f];
        if flags & (SYN | ACK) == SYN && !started {
            self.isn = seq;
            self.bits |= ISN_SET;
            self.set(ISN_UPPER, f == Side::Upper.index());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Side = Side::Lower;
    const S: Side = Side::Upper;
    const A: u8 = ACK;

    /// One segment: sender, time in microseconds, seq, ack, payload
    /// length, flags (window 1000).
    type Seg = (Side, u32, u32, u32, u32, u8);

    /// Runs `segments` through a fresh state; the counters.
    fn run(segments: &[Seg]) -> TcpCounters {
        run_windows(&segments.iter().map(|&s| (s, 1000)).collect::<Vec<_>>())
    }

    /// As [`run`], with each segment's window.
    fn run_windows(segments: &[(Seg, u16)]) -> TcpCounters {
        let mut t = TcpState::default();
        let mut sent: [Option<u32>; 2] = [None; 2];
        for &((side, us, seq, ack, len, flags), window) in segments {
            let peer = sent[side.other().index()];
            let at = SegmentTime {
                micros: us,
                since_peer: peer
                    .map_or(Duration::MAX, |p| Duration::from_micros(u64::from(us - p))),
            };
            let tcp = TcpInfo {
                seq,
                ack,
                flags,
                window,
            };
            t.segment(side, &tcp, len, at);
            sent[side.index()] = Some(us);
        }
        assert_eq!(t.interval, t.total);
        t.total
    }

    fn counters(resets: u32, retrans: u32, seq_errors: u32) -> TcpCounters {
        TcpCounters {
            resets,
            retrans,
            seq_errors,
        }
    }

    /// A handshake with a 10 ms round trip, client ISN 100, server 500.
    const HANDSHAKE: [Seg; 3] = [
        (C, 0, 100, 0, 0, SYN),
        (S, 5_000, 500, 101, 0, SYN | A),
        (C, 10_000, 101, 501, 0, A),
    ];

    fn after_handshake(more: &[Seg]) -> TcpCounters {
        run(&[&HANDSHAKE[..], more].concat())
    }

    #[test]
    fn an_in_order_connection_counts_nothing() {
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 10, A),
            (S, 16_000, 501, 111, 5, A),
            (C, 21_000, 111, 506, 0, A | FIN),
            (S, 26_000, 506, 112, 0, A | FIN),
            (C, 31_000, 112, 507, 0, A),
        ]);
        assert_eq!(c, counters(0, 0, 0));
    }

    #[test]
    fn every_repeated_syn_is_a_retransmission() {
        // A client retrying its SYN six times, then a RST.
        let mut segs: Vec<Seg> = [0, 1, 3, 7, 15, 31, 63]
            .iter()
            .map(|s| (C, s * 1_000_000, 100, 0, 0, SYN))
            .collect();
        segs.push((S, 64_000_000, 0, 101, 0, RST | A));
        assert_eq!(run(&segs), counters(1, 6, 0));
    }

    #[test]
    fn a_repeated_syn_ack_is_a_retransmission() {
        let c = run(&[
            (C, 0, 100, 0, 0, SYN),
            (S, 5_000, 500, 101, 0, SYN | A),
            (S, 1_005_000, 500, 101, 0, SYN | A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn a_resend_after_the_round_trip_is_a_retransmission() {
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 100, A),
            (C, 211_000, 101, 501, 100, A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn a_gap_filled_within_the_round_trip_is_out_of_order() {
        // 101..201 comes after 201..301, 2 ms later (the round trip is
        // 10 ms): a gap, then an out-of-order segment.
        let c = after_handshake(&[(C, 11_000, 201, 501, 100, A), (C, 13_000, 101, 501, 100, A)]);
        assert_eq!(c, counters(0, 0, 2));
    }

    #[test]
    fn a_gap_filled_after_the_round_trip_is_a_retransmission() {
        let c = after_handshake(&[(C, 11_000, 201, 501, 100, A), (C, 25_000, 101, 501, 100, A)]);
        assert_eq!(c, counters(0, 1, 1));
    }

    #[test]
    fn without_a_handshake_the_out_of_order_window_is_3_ms() {
        let out_of_order = run(&[
            (C, 0, 1, 9, 100, A),
            (C, 10, 201, 9, 100, A),
            (C, 2_999, 101, 9, 100, A),
        ]);
        assert_eq!(out_of_order, counters(0, 0, 2));
        let late = run(&[
            (C, 0, 1, 9, 100, A),
            (C, 10, 201, 9, 100, A),
            (C, 3_010, 101, 9, 100, A),
        ]);
        assert_eq!(late, counters(0, 1, 1));
    }

    #[test]
    fn a_resend_that_ends_where_the_stream_does_is_a_retransmission_however_soon() {
        // Out of order needs another end than the segment that moved the
        // direction forward: the same segment 1 ms later is sent again.
        let c = after_handshake(&[(C, 11_000, 101, 501, 100, A), (C, 12_000, 101, 501, 100, A)]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn a_partial_overlap_is_a_retransmission() {
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 100, A),
            (C, 111_000, 151, 501, 100, A),
            (C, 112_000, 251, 501, 10, A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn keep_alives_count_nothing() {
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 100, A),
            (C, 60_000_000, 200, 501, 0, A),
            (S, 60_001_000, 501, 201, 0, A),
            (C, 120_000_000, 200, 501, 1, A),
            (C, 120_001_000, 201, 501, 0, A),
        ]);
        assert_eq!(c, counters(0, 0, 0));
    }

    #[test]
    fn a_fin_one_byte_back_is_no_keep_alive() {
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 0, A | FIN),
            (C, 1_011_000, 101, 501, 0, A | FIN),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn zero_window_probes_are_not_retransmissions() {
        // The server's window is zero: the client probes one byte at its
        // next number, twice; the byte comes again with the data after.
        let c = run_windows(&[
            (HANDSHAKE[0], 1000),
            (HANDSHAKE[1], 1000),
            (HANDSHAKE[2], 1000),
            ((C, 11_000, 101, 501, 100, A), 1000),
            ((S, 21_000, 501, 201, 0, A), 0),
            ((C, 500_000, 201, 501, 1, A), 1000),
            ((S, 510_000, 501, 201, 0, A), 0),
            ((C, 1_500_000, 201, 501, 1, A), 1000),
            ((S, 1_510_000, 501, 201, 0, A), 500),
            ((C, 1_520_000, 201, 501, 100, A), 1000),
        ]);
        assert_eq!(c, counters(0, 0, 0));
    }

    #[test]
    fn data_already_acknowledged_is_a_retransmission() {
        // The server acknowledged 101..301, of which the capture saw only
        // the first half: the second half, when it comes, is spurious.
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 100, A),
            (S, 21_000, 501, 301, 0, A),
            (C, 22_000, 201, 501, 100, A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn a_resend_asked_for_by_duplicate_acks_is_a_retransmission_however_soon() {
        // 101..201 is lost on the way: the server acknowledges 101 three
        // times; the resend, within the out-of-order window but 1 ms
        // after the duplicates, is a fast retransmission.
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 100, A),
            (C, 11_010, 201, 501, 100, A),
            (C, 11_020, 301, 501, 100, A),
            (S, 11_030, 501, 101, 0, A),
            (S, 11_040, 501, 101, 0, A),
            (S, 11_050, 501, 101, 0, A),
            (C, 12_050, 101, 501, 100, A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn every_rst_counts_and_none_is_a_gap() {
        let c = after_handshake(&[
            (C, 11_000, 5_000, 0, 0, RST),
            (C, 11_001, 101, 501, 0, RST | A),
        ]);
        assert_eq!(c, counters(2, 0, 0));
    }

    #[test]
    fn a_new_connection_on_the_same_ports_starts_afresh() {
        // Closed, then a SYN with another ISN: no gap, no retransmission
        // (a SYN-ACK again from the server is one).
        let c = after_handshake(&[
            (C, 11_000, 101, 501, 0, RST),
            (C, 2_000_000, 9_000, 0, 0, SYN),
            (S, 2_005_000, 7_000, 9_001, 0, SYN | A),
            (S, 3_005_000, 7_000, 9_001, 0, SYN | A),
            (C, 3_010_000, 9_001, 7_001, 0, A),
        ]);
        assert_eq!(c, counters(1, 1, 0));
    }

    #[test]
    fn a_reset_of_sequence_number_0_starts_no_direction() {
        // Refused (RST+ACK of sequence number 0), the SYN sent again, then
        // accepted: the server's ISN, behind 0 in sequence space, opens
        // its direction; only the repeated SYN and SYN-ACK are resent
        // (rtsp.pcap of nDPI 4.2's test captures, frames 289-317).
        let isn = 0xf000_0000_u32;
        let c = run(&[
            (C, 0, 100, 0, 0, SYN),
            (S, 1_000, 0, 101, 0, RST | A),
            (C, 500_000, 100, 0, 0, SYN),
            (S, 501_000, isn, 101, 0, SYN | A),
            (S, 501_050, isn, 101, 0, SYN | A),
            (C, 502_000, 101, isn + 1, 0, A),
            (S, 520_000, isn + 1, 101, 125, A),
        ]);
        assert_eq!(c, counters(1, 2, 0));
    }

    #[test]
    fn sequence_space_wraps() {
        let c = run(&[
            (C, 0, u32::MAX - 9, 1, 10, A),
            (C, 10, 0, 1, 10, A),
            (C, 1_000_000, u32::MAX - 9, 1, 10, A),
            (C, 1_000_010, 10, 1, 0, A),
        ]);
        assert_eq!(c, counters(0, 1, 0));
    }

    #[test]
    fn totals_outlive_intervals() {
        let mut t = TcpState::default();
        let at = |us| SegmentTime {
            micros: us,
            since_peer: Duration::MAX,
        };
        let seg = |seq, flags| TcpInfo {
            seq,
            ack: 1,
            flags,
            window: 1000,
        };
        t.segment(C, &seg(1, A), 10, at(0));
        t.segment(C, &seg(1, A), 10, at(1_000_000));
        t.end_interval();
        t.segment(C, &seg(11, A | RST), 0, at(2_000_000));
        assert_eq!(t.interval, counters(1, 0, 0));
        assert_eq!(t.total, counters(1, 1, 0));
        assert_eq!(t.flags_sent, [A | RST, 0]);
    }
}
