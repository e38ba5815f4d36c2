//! What a protocol dissector sees and answers, and the list of dissectors.

use std::any::Any;

use flowstat_core::{FlowInfo, Metadata, Protocol};

use crate::proto::{http, kerberos, ldap, tls};

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

    /// Packets with payload so far, this one included.
    pub(crate) fn packets(&self) -> u32 {
        self.seen[0] + self.seen[1] + 1
    }

    /// TCP: the stream of the side that sent the first payload.
    pub(crate) fn first_stream(&self) -> &'a [u8] {
        if self.server_first {
            self.server_stream
        } else {
            self.client_stream
        }
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
    /// The states other dissectors keep, each boxed by the module that
    /// defines its type.
    kept: Vec<Box<dyn Any + Send>>,
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

impl Scratch {
    /// The state as a [`Small`], unless another dissector than Kerberos
    /// and LDAP holds something.
    pub(crate) fn small(&self) -> Option<Small> {
        let others_hold_nothing = self.kept.is_empty()
            && self.tls == tls::State::default()
            && self.http == http::State::default();
        others_hold_nothing.then_some(Small {
            kerberos: self.kerberos,
            ldap: self.ldap,
        })
    }

    /// Runs a dissector (`run`) on its state of type `T` (a type of the
    /// dissector's module): the flow's, or a default one when the flow
    /// has none yet. A new state is kept only when it holds something (it
    /// differs from the default) and the dissector may be asked again
    /// (`Maybe` or `Found`); a kept one is dropped once the dissector is
    /// done.
    pub(crate) fn keep<T: Any + Send + Default + PartialEq>(
        &mut self,
        run: impl FnOnce(&mut T) -> Verdict,
    ) -> Verdict {
        if let Some(i) = self.kept.iter().position(|st| st.is::<T>()) {
            let verdict = match self.kept[i].downcast_mut::<T>() {
                Some(st) => run(st),
                None => Verdict::No,
            };
            if !verdict.asks_again() {
                self.kept.swap_remove(i);
            }
            return verdict;
        }
        let mut st = T::default();
        let verdict = run(&mut st);
        if verdict.asks_again() && st != T::default() {
            self.kept.push(Box::new(st));
        }
        verdict
    }
}

/// The verdict on a TCP flow told by the opening of its first message:
/// `opens` reads the stream of the side that spoke first and says yes,
/// no, or `None` (too short to tell yet), which waits for at most
/// `max_packets` packets with payload.
pub(crate) fn by_opening(
    pkt: &Packet<'_>,
    protocol: Protocol,
    max_packets: u32,
    opens: impl FnOnce(&[u8]) -> Option<bool>,
) -> Verdict {
    if !pkt.tcp {
        return Verdict::No;
    }
    match opens(pkt.first_stream()) {
        Some(true) => Verdict::Done(protocol),
        None if pkt.packets() < max_packets => Verdict::Maybe,
        _ => Verdict::No,
    }
}

/// A dissector: a function of the packet, its flow's scratch state and
/// the flow's metadata.
pub(crate) type Dissect = fn(&Packet<'_>, &mut Scratch, &mut Metadata) -> Verdict;

/// What a protocol module tells the registry ([`crate::proto::REGISTRY`])
/// about its dissector: each module exports one as `DISSECTOR`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dissector {
    /// A short name for `flowstatd list-protocols` (the module's).
    pub(crate) name: &'static str,
    /// Every protocol it can name.
    pub(crate) protocols: &'static [Protocol],
    /// Asked for TCP flows.
    pub(crate) tcp: bool,
    /// Asked for UDP flows.
    pub(crate) udp: bool,
    /// Ports the protocol usually runs on (either side of the flow): a
    /// flow on one of them asks this dissector before the others.
    pub(crate) ports: &'static [u16],
    /// Asked only for flows on one of `ports`: for protocols whose payload
    /// alone says too little.
    pub(crate) ports_only: bool,
    /// Whether a flow whose first packet with payload came from the
    /// client (`true`) or the server and starts with `byte` may be this
    /// protocol: when not, the dissector is never asked for the flow.
    pub(crate) first: fn(from_client: bool, byte: u8) -> bool,
    /// The function.
    pub(crate) run: Dissect,
    /// Real payloads the whole engine must name `protocol` (the registry's
    /// test runs every one).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the registry's test"))]
    pub(crate) samples: &'static [Sample],
}

/// A [`Dissector::first`] for protocols that may start with any byte.
pub(crate) fn any_first(_from_client: bool, _byte: u8) -> bool {
    true
}

/// One flow's packets that the engine must name [`Sample::protocol`].
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(test), expect(dead_code, reason = "read by the registry's test"))]
pub(crate) struct Sample {
    /// Where the payloads come from (capture and frames).
    pub(crate) origin: &'static str,
    /// TCP (else UDP).
    pub(crate) tcp: bool,
    /// The server's port (the client's is 40000).
    pub(crate) server_port: u16,
    /// Payloads in order: `(from client, hex)`.
    pub(crate) packets: &'static [(bool, &'static str)],
    pub(crate) protocol: Protocol,
}

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
