//! The first bytes of each direction of a TCP flow, in sequence order.

use flowstat_core::TcpInfo;

/// Most bytes kept per direction: enough for a TLS 1.2 server's
/// certificate chain, and released when detection ends.
pub(crate) const STREAM_MAX: usize = 16 * 1024;

/// The in-order prefix of one direction of a TCP stream.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) bytes: Vec<u8>,
    /// Sequence number of the next byte expected.
    next: u32,
    started: bool,
    /// A gap was seen: later bytes are not appended.
    broken: bool,
}

impl Stream {
    /// Appends the part of a segment's `payload` that continues the
    /// stream; retransmitted bytes are skipped, and a gap stops the stream.
    pub(crate) fn push(&mut self, tcp: &TcpInfo, payload: &[u8]) {
        // A SYN's sequence number is one before the first data byte. A
        // SYN before any data restarts the stream (a handshake repeated
        // with a new initial sequence number).
        let syn = tcp.has(TcpInfo::SYN);
        if !self.started || (syn && self.bytes.is_empty()) {
            self.started = true;
            self.broken = false;
            self.next = tcp.seq.wrapping_add(u32::from(syn));
        }
        if self.broken || payload.is_empty() {
            return;
        }
        let seq = tcp.seq.wrapping_add(u32::from(tcp.has(TcpInfo::SYN)));
        let skip = self.next.wrapping_sub(seq);
        // `skip` below the length: the segment overlaps bytes already kept.
        let data = if skip == 0 {
            payload
        } else if (skip as i32) > 0 && (skip as usize) < payload.len() {
            &payload[skip as usize..]
        } else if (skip as i32) > 0 {
            return; // wholly a retransmission
        } else {
            self.broken = true; // a gap: bytes are missing
            return;
        };
        let room = STREAM_MAX - self.bytes.len();
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
        self.next = self.next.wrapping_add(data.len() as u32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(seq: u32, flags: u8) -> TcpInfo {
        TcpInfo { seq, ack: 0, flags }
    }

    #[test]
    fn in_order_retransmitted_and_gapped_segments() {
        let mut s = Stream::default();
        s.push(&seg(99, TcpInfo::SYN), b"");
        s.push(&seg(100, TcpInfo::ACK), b"abc");
        s.push(&seg(100, TcpInfo::ACK), b"abc"); // retransmission
        s.push(&seg(102, TcpInfo::ACK), b"cde"); // overlap
        assert_eq!(s.bytes, b"abcde");
        s.push(&seg(200, TcpInfo::ACK), b"zzz"); // gap
        s.push(&seg(105, TcpInfo::ACK), b"f");
        assert_eq!(s.bytes, b"abcde");
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
    fn bounded() {
        let mut s = Stream::default();
        let big = vec![b'x'; STREAM_MAX + 10];
        s.push(&seg(1, 0), &big);
        s.push(&seg(1 + big.len() as u32, 0), b"more");
        assert_eq!(s.bytes.len(), STREAM_MAX);
    }
}
