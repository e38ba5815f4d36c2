//! The first bytes of each direction of a TCP flow, in sequence order.

use flowstat_core::TcpInfo;

/// Most bytes kept per direction: enough for a TLS 1.2 server's
/// certificate chain, and released when detection ends.
pub(crate) const STREAM_MAX: usize = 16 * 1024;

/// Segments held while a gap before them is open, at most.
const HELD_MAX: usize = 4;

/// The in-order prefix of one direction of a TCP stream.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) bytes: Vec<u8>,
    /// Sequence number of the next byte expected.
    next: u32,
    started: bool,
    /// A gap was not filled: later bytes are not appended.
    broken: bool,
    /// Segments that came before the bytes preceding them (reordered on
    /// the way), by sequence number, until the gap fills: at most
    /// [`HELD_MAX`] of them, and no more bytes than the stream has room
    /// for.
    held: Vec<(u32, Vec<u8>)>,
}

impl Stream {
    /// Appends the part of a segment's `payload` that continues the
    /// stream; retransmitted bytes are skipped, a segment past a gap is
    /// held until the gap fills, and a gap that does not fill stops the
    /// stream. False when the segment is held: it is not to be read yet.
    pub(crate) fn push(&mut self, tcp: &TcpInfo, payload: &[u8]) -> bool {
        // A SYN's sequence number is one before the first data byte. A
        // SYN before any data restarts the stream (a handshake repeated
        // with a new initial sequence number).
        let syn = tcp.has(TcpInfo::SYN);
        let seq = tcp.seq.wrapping_add(u32::from(syn));
        if !self.started || (syn && self.bytes.is_empty()) {
            self.start(seq);
        }
        if self.broken || payload.is_empty() {
            return true;
        }
        // Data from before where the stream was expected to start, none
        // read yet: the flow table counted bytes detection never reads
        // (zero padding on a handshake packet) or took another of
        // several SYN+ACKs' sequence numbers. The data starts here.
        let before = (self.next.wrapping_sub(seq) as i32) > 0;
        if before && self.bytes.is_empty() && self.held.is_empty() {
            self.start(seq);
        }
        if !self.append(seq, payload) {
            return !self.hold(seq, payload);
        }
        // The gap before held segments may have filled.
        while let Some(i) = self
            .held
            .iter()
            .position(|(seq, _)| (self.next.wrapping_sub(*seq) as i32) >= 0)
        {
            let (seq, data) = self.held.swap_remove(i);
            self.append(seq, &data);
        }
        true
    }

    /// Starts the stream, if it has not started, at `next`: where the flow
    /// table expects this side's first byte (after its SYN), so that a
    /// first segment that came out of order is held, not taken for the
    /// start.
    pub(crate) fn expect(&mut self, next: u32) {
        if !self.started {
            self.start(next);
        }
    }

    /// (Re)starts the stream at `next`, with nothing held.
    fn start(&mut self, next: u32) {
        self.started = true;
        self.broken = false;
        self.held.clear();
        self.next = next;
    }

    /// Appends what of `data` (starting at `seq`) is new; false when it
    /// starts past the next byte expected (a gap).
    fn append(&mut self, seq: u32, data: &[u8]) -> bool {
        let skip = self.next.wrapping_sub(seq);
        if (skip as i32) < 0 {
            return false;
        }
        // `skip` at or past the length: wholly a retransmission.
        let Some(new) = data.get(skip as usize..).filter(|d| !d.is_empty()) else {
            return true;
        };
        let room = STREAM_MAX - self.bytes.len();
        let kept = &new[..new.len().min(room)];
        self.bytes.extend_from_slice(kept);
        self.next = self.next.wrapping_add(new.len() as u32);
        true
    }

    /// Holds a segment past a gap, or stops the stream when too much is
    /// held already. True when it is held.
    fn hold(&mut self, seq: u32, data: &[u8]) -> bool {
        let held: usize = self.held.iter().map(|(_, d)| d.len()).sum();
        if self.held.len() == HELD_MAX || self.bytes.len() + held + data.len() > STREAM_MAX {
            self.broken = true;
            self.held = Vec::new();
            return false;
        }
        self.held.push((seq, data.to_vec()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, flags: u8) -> TcpInfo {
        TcpInfo {
            seq,
            flags,
            ..TcpInfo::default()
        }
    }

    #[test]
    fn in_order_retransmitted_and_gapped_segments() {
        let mut s = Stream::default();
        s.push(&seg(99, TcpInfo::SYN), b"");
        s.push(&seg(100, TcpInfo::ACK), b"abc");
        s.push(&seg(100, TcpInfo::ACK), b"abc"); // retransmission
        s.push(&seg(102, TcpInfo::ACK), b"cde"); // overlap
        assert_eq!(s.bytes, b"abcde");
        s.push(&seg(200, TcpInfo::ACK), b"zzz"); // a gap, held
        s.push(&seg(105, TcpInfo::ACK), b"f");
        assert_eq!(s.bytes, b"abcdef");
        for seq in [300, 400, 500, 600] {
            s.push(&seg(seq, TcpInfo::ACK), b"z"); // more than can be held
        }
        s.push(&seg(106, TcpInfo::ACK), b"g");
        assert_eq!(s.bytes, b"abcdef", "the gap did not fill: the stream stops");
    }

    #[test]
    fn reordered_segments_are_put_in_order() {
        let mut s = Stream::default();
        s.push(&seg(0, TcpInfo::SYN | TcpInfo::ACK), b"");
        assert!(!s.push(&seg(7, TcpInfo::ACK), b"ghi"), "held"); // came first
        assert!(!s.push(&seg(4, TcpInfo::ACK), b"def"), "held"); // came second
        assert_eq!(s.bytes, b"");
        assert!(s.push(&seg(1, TcpInfo::ACK), b"abcd")); // overlaps "def" by one byte
        assert_eq!(s.bytes, b"abcdefghi");
        s.push(&seg(10, TcpInfo::ACK), b"j");
        assert_eq!(s.bytes, b"abcdefghij");
    }

    #[test]
    fn a_new_syn_before_data_restarts_the_stream() {
        let mut s = Stream::default();
        s.push(&seg(1000, TcpInfo::SYN | TcpInfo::ACK), b"");
        s.push(&seg(5000, TcpInfo::SYN | TcpInfo::ACK), b"");
        s.push(&seg(5001, TcpInfo::ACK), b"hello");
        assert_eq!(s.bytes, b"hello");
    }

    #[test]
    fn a_stream_started_where_expected_holds_a_reordered_first_segment() {
        let mut s = Stream::default();
        s.expect(1);
        assert!(!s.push(&seg(4, TcpInfo::ACK), b"def"), "held");
        assert!(s.push(&seg(1, TcpInfo::ACK), b"abc"));
        assert_eq!(s.bytes, b"abcdef");
        s.expect(100); // started already
        s.push(&seg(7, TcpInfo::ACK), b"g");
        assert_eq!(s.bytes, b"abcdefg");
    }

    /// heuristic_tcp_ack_payload.pcap: the flow table counted a SYN+ACK's
    /// two zero bytes, so the server's data was expected two bytes later
    /// than it starts; tls_multiple_synack_different_seq.pcapng: the flow
    /// table followed another of four SYN+ACKs than the one the data
    /// continues.
    #[test]
    fn data_before_the_expected_start_starts_the_stream() {
        let mut s = Stream::default();
        s.expect(3);
        assert!(s.push(&seg(1, TcpInfo::ACK), b"abcd"));
        assert_eq!(s.bytes, b"abcd");
        s.push(&seg(1, TcpInfo::ACK), b"ab"); // a retransmission now
        assert_eq!(s.bytes, b"abcd");
        let mut s = Stream::default();
        s.expect(2_859_879_430);
        s.push(&seg(2_829_651_201, TcpInfo::ACK), b"hello");
        assert_eq!(s.bytes, b"hello");
    }

    #[test]
    fn bounded() {
        let mut s = Stream::default();
        let big = vec![b'x'; STREAM_MAX + 10];
        s.push(&seg(1, 0), &big);
        s.push(&seg(1 + big.len() as u32, 0), b"more");
        assert_eq!(s.bytes.len(), STREAM_MAX);
    }
}
