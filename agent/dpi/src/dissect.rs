//! What a protocol dissector sees and answers, and the list of dissectors.

use flowstat_core::{FlowInfo, Metadata, Protocol};

use crate::proto::*;

/// One packet with payload, as a dissector sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Packet<'a> {
    /// The flow, oriented client to server.
    pub(crate) flow: &'a FlowInfo,
    /// This packet's transport payload (the captured part).
    pub(crate) payload: &'a [u8],
    /// True when the client sent it.
    pub(crate) from_client: bool,
    /// True for TCP, false for UDP.
    pub(crate) tcp: bool,
    /// TCP only: the bytes each direction has sent so far, in sequence
    /// order, this packet's included (at most [`crate::stream::STREAM_MAX`];
    /// a gap in the sequence stops a stream). Empty for UDP.
    pub(crate) client_stream: &'a [u8],
    /// TCP only: as `client_stream`, from the server.
    pub(crate) server_stream: &'a [u8],
    /// Packets with payload seen before this one: `[from client, from server]`.
    pub(crate) seen: [u32; 2],
    /// True when the first packet with payload the dissectors were shown
    /// (maybe this one) came from the server.
    pub(crate) server_first: bool,
}

impl<'a> Packet<'a> {
    /// The stream of this packet's direction (TCP).
    pub(crate) fn stream(&self) -> &'a [u8] {
        if self.from_client {
            self.client_stream
        } else {
            self.server_stream
        }
    }

    /// Packets with payload this packet's direction sent before it.
    pub(crate) fn seen_here(&self) -> u32 {
        self.seen[usize::from(!self.from_client)]
    }
}

/// A dissector's answer for the flow after one more packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not this protocol: the dissector is not asked again for this flow.
    No,
    /// Could be this protocol: ask again with the next packet.
    Maybe,
    /// This protocol, and more metadata may come: from now on only this
    /// dissector is asked.
    Found(Protocol),
    /// This protocol, and nothing more to learn: detection is complete.
    Done(Protocol),
}

impl Verdict {
    /// Whether the dissector will be asked again, with a later packet.
    fn asks_again(self) -> bool {
        matches!(self, Verdict::Maybe | Verdict::Found(_))
    }
}

/// Per-flow state of the dissectors that need to remember something
/// between packets. Dropped with the rest of the DPI state at detection.
///
/// States of a few flags live inline. The others cost a flow a pointer
/// until a dissector first has something to keep (see
/// [`Scratch::keep`]), and then only that dissector's state. While only
/// Kerberos and LDAP hold something (which directions said no: what a
/// UDP flow waiting for its server's reply carries for as long as it
/// waits), the flow keeps the scratch state as [`Small`], with no heap.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) tls: tls::State,
    pub(crate) http: http::State,
    pub(crate) kerberos: kerberos::State,
    pub(crate) ldap: ldap::State,
    kept: Option<Box<Kept>>,
}

/// The scratch state of a flow none of whose dissectors holds more than
/// Kerberos and LDAP do: two bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Small {
    kerberos: kerberos::State,
    ldap: ldap::State,
}

impl From<Small> for Scratch {
    fn from(small: Small) -> Self {
        Scratch {
            kerberos: small.kerberos,
            ldap: small.ldap,
            ..Scratch::default()
        }
    }
}

/// The states of the dissectors that keep more, each boxed when first
/// kept.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    pub(crate) quic: Option<Box<quic::State>>,
    pub(crate) mail: Option<Box<mail::State>>,
    pub(crate) rtp: Option<Box<rtp::State>>,
    pub(crate) stun: Option<Box<stun::State>>,
    pub(crate) wireguard: Option<Box<wireguard::State>>,
    pub(crate) openvpn: Option<Box<openvpn::State>>,
    pub(crate) ipsec: Option<Box<ipsec::State>>,
    pub(crate) bittorrent: Option<Box<bittorrent::State>>,
}

impl Scratch {
    /// The state as a [`Small`], unless another dissector than Kerberos
    /// and LDAP holds something.
    pub(crate) fn small(&self) -> Option<Small> {
        let others_hold_nothing = self.kept.is_none()
            && self.tls == tls::State::default()
            && self.http == http::State::default();
        others_hold_nothing.then_some(Small {
            kerberos: self.kerberos,
            ldap: self.ldap,
        })
    }

    /// Runs a dissector (`run`) on its state, which `slot` picks out of
    /// [`Kept`]: the flow's, or a default one when the flow has none yet.
    /// A new state is kept only when it holds something (it differs from
    /// the default) and the dissector may be asked again (`Maybe` or
    /// `Found`); a kept one is dropped once the dissector is done.
    pub(crate) fn keep<T: Default + PartialEq>(
        &mut self,
        slot: fn(&mut Kept) -> &mut Option<Box<T>>,
        run: impl FnOnce(&mut T) -> Verdict,
    ) -> Verdict {
        if let Some(kept) = self.kept.as_deref_mut() {
            let slot = slot(kept);
            if let Some(st) = slot.as_deref_mut() {
                let verdict = run(st);
                if !verdict.asks_again() {
                    *slot = None;
                }
                return verdict;
            }
        }
        let mut st = T::default();
        let verdict = run(&mut st);
        if verdict.asks_again() && st != T::default() {
            *slot(self.kept.get_or_insert_default()) = Some(Box::new(st));
        }
        verdict
    }
}

/// A dissector: a function of the packet, its flow's scratch state and
/// the flow's metadata.
pub(crate) type Dissect = fn(&Packet<'_>, &mut Scratch, &mut Metadata) -> Verdict;

/// One entry of [`DISSECTORS`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dissector {
    /// Asked for TCP flows.
    pub(crate) tcp: bool,
    /// Asked for UDP flows.
    pub(crate) udp: bool,
    /// The function.
    pub(crate) run: Dissect,
}

const fn d(tcp: bool, udp: bool, run: Dissect) -> Dissector {
    Dissector { tcp, udp, run }
}

/// Every dissector, in the order they are asked (when two claim a flow on
/// the same packet, the first wins). At most 64 (a flow's candidates are
/// a `u64` bit set).
pub(crate) static DISSECTORS: &[Dissector] = &[
    d(true, true, dns::dissect),
    d(true, false, tls::dissect),
    d(false, true, quic::dissect),
    d(true, false, http::dissect),
    d(true, false, ssh::dissect),
    d(false, true, dhcp::dissect),
    d(false, true, ntp::dissect),
    d(true, true, netbios::dissect),
    d(false, true, ssdp::dissect),
    d(false, true, snmp::dissect),
    d(true, true, syslog::dissect),
    d(true, true, kerberos::dissect),
    d(true, true, ldap::dissect),
    d(true, false, mail::dissect),
    d(true, false, ftp::dissect),
    d(true, false, telnet::dissect),
    d(true, true, sip::dissect),
    d(true, false, rtsp::dissect),
    d(true, false, mqtt::dissect),
    d(true, false, amqp::dissect),
    d(true, false, redis::dissect),
    d(true, false, mysql::dissect),
    d(true, false, postgres::dissect),
    d(true, false, smb::dissect),
    d(true, false, rdp::dissect),
    d(true, true, stun::dissect),
    d(false, true, rtp::dissect),
    d(false, true, wireguard::dissect),
    d(true, true, openvpn::dissect),
    d(false, true, ipsec::dissect),
    d(true, true, bittorrent::dissect),
];

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the dissectors' unit tests.
    use super::*;

    /// A flow from 10.0.0.1:`client_port` to 10.0.0.2:`server_port`.
    pub(crate) fn flow(tcp: bool, client_port: u16, server_port: u16) -> FlowInfo {
        let mut client_ip = [0; 16];
        client_ip[..4].copy_from_slice(&[10, 0, 0, 1]);
        let mut server_ip = [0; 16];
        server_ip[..4].copy_from_slice(&[10, 0, 0, 2]);
        FlowInfo {
            ip_version: 4,
            ip_protocol: if tcp { 6 } else { 17 },
            client_ip,
            client_port,
            server_ip,
            server_port,
            tcp_next: [None; 2],
        }
    }

    /// Runs dissector `run` over `packets` (`(from_client, payload)`), as
    /// the engine would with each TCP direction a stream of its packets
    /// in order. Returns every verdict and the metadata.
    pub(crate) fn run(
        run: Dissect,
        flow: &FlowInfo,
        packets: &[(bool, &[u8])],
    ) -> (Vec<Verdict>, Metadata) {
        let tcp = flow.ip_protocol == 6;
        let (mut scratch, mut meta) = (Scratch::default(), Metadata::default());
        let (mut streams, mut seen) = ([Vec::new(), Vec::new()], [0u32; 2]);
        let server_first = packets
            .first()
            .is_some_and(|&(from_client, _)| !from_client);
        let mut verdicts = Vec::new();
        for &(from_client, payload) in packets {
            let dir = usize::from(!from_client);
            if tcp {
                streams[dir].extend_from_slice(payload);
            }
            let pkt = Packet {
                flow,
                payload,
                from_client,
                tcp,
                client_stream: &streams[0],
                server_stream: &streams[1],
                seen,
                server_first,
            };
            verdicts.push(run(&pkt, &mut scratch, &mut meta));
            seen[dir] += 1;
        }
        (verdicts, meta)
    }

    // Real payloads of other protocols, for the dissectors' tests that
    // they do not claim what is not theirs (hex).
    /// dns.pcap frame 2: a DNS query for www.example.com (AAAA).
    pub(crate) const DNS_QUERY: &str =
        "bc1f0100000100000000000003777777076578616d706c6503636f6d00001c0001";

    /// stun_classic.pcap frame 1: a classic STUN binding request.
    pub(crate) const STUN_REQUEST: &str =
        "000100089429ef88294dd52632c72931cb8dbb4c0003000400000000";

    /// wireguard.pcap frame 9: a WireGuard keepalive.
    pub(crate) const WIREGUARD_KEEPALIVE: &str =
        "0400000006f47dab03000000000000001956e2b6651dd4f59cb23092a0d09671";

    /// openvpn.pcap frame 515: an OpenVPN hard reset.
    pub(crate) const OPENVPN_RESET: &str = "3839fded2daa10a4370000000000";

    /// sip.pcap frame 95: RTP (first 36 bytes).
    pub(crate) const RTP: &str =
        "80086fae000004d83796cb71d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5";

    /// tls_alert.pcap frame 4: a TLS ClientHello (first 43 bytes).
    pub(crate) const TLS_HELLO_HEAD: &str =
        "16030100c2010000be030152db35f3eaa1188bf1e193fccf333e5873f435bbdc1c481817853f5476256a3a";

    /// 6in4tunnel.pcap frame 85: an HTTP request (first 33 bytes).
    pub(crate) const HTTP_REQUEST_HEAD: &str =
        "474554202f20485454502f312e310d0a557365722d4167656e743a20576765742f";

    /// Bytes from a hex string (whitespace ignored).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap_or("00"), 16).unwrap_or(0))
            .collect()
    }
}
