//! flowstat-dpi: names each flow's protocol and application from its first
//! packets.
//!
//! [`Engine`] is the flow table's [`Classifier`]. For each flow it keeps a
//! [`FlowState`] (created on the first packet with payload, dropped when
//! detection ends): inline, the set of dissectors that may still claim
//! the flow and what each direction has shown, which is all a flow
//! waiting for its server's reply needs; boxed once there is more to
//! keep, the dissector that claimed the flow and, each allocated only
//! once there is something in it, the first bytes of each TCP direction
//! in order, the dissectors' scratch state and the [`Metadata`] found.
//! Every packet with payload goes to the candidate dissectors (`proto/`)
//! until one claims the flow; the one that claimed it is then asked alone
//! until it has nothing more to learn.
//!
//! Applications come from the host name (SNI, Host, query name), then the
//! DNS cache (an earlier answer naming the server's address), then the
//! server's address, all looked up in the [`Applications`] table. The
//! cache is not fed by detection: whoever sees every packet in order (the
//! packet dispatcher) reads each DNS response with [`dns_answer`] and
//! hands it to every worker's engine ([`Engine::learn`]), so what a flow
//! is named depends on packet order alone, not on which worker ran first.
//!
//! Every dissector works on untrusted bytes: bounded reads, no panics, and
//! no allocation that grows with the input beyond fixed caps.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod apps;
mod dissect;
mod dns_cache;
mod proto;
mod registry;
mod stream;

use std::sync::{Arc, Mutex, PoisonError};

use flowstat_core::{
    Category, Classifier, FlowInfo, Metadata, Outcome, PacketMeta, PortGuess, Protocol, TcpInfo,
    ip_addr,
};

pub use apps::{Applications, AppsError};
use dissect::{Packet, Scratch, Small, Verdict};
use dns_cache::DnsCache;
use proto::REGISTRY;
pub use proto::dns::{DnsAnswer, dns_answer};
use registry::Candidates;
use stream::Stream;

/// One registered dissector, as `flowstatd list-protocols` shows it.
#[derive(Clone, Copy, Debug)]
pub struct DissectorInfo {
    /// Its short name.
    pub name: &'static str,
    /// The protocols it can name.
    pub protocols: &'static [Protocol],
    /// Asked for TCP flows.
    pub tcp: bool,
    /// Asked for UDP flows.
    pub udp: bool,
    /// The ports it is asked first on.
    pub ports: &'static [u16],
    /// Asked only on `ports`.
    pub ports_only: bool,
}

/// Every registered dissector, in the order they are asked.
pub fn dissectors() -> impl ExactSizeIterator<Item = DissectorInfo> {
    REGISTRY.iter().map(|d| DissectorInfo {
        name: d.name,
        protocols: d.protocols,
        tcp: d.tcp,
        udp: d.udp,
        ports: d.ports,
        ports_only: d.ports_only,
    })
}

/// Addresses remembered from DNS answers by default.
pub const DNS_CACHE_ENTRIES: usize = 65_536;

/// A DNS cache: addresses named by DNS answers, so that later flows to
/// them get the name's application. Clones share it, as the clones of an
/// [`Engine`] do; give each worker one of its own, fed the same answers
/// in the same order ([`Engine::learn`]).
#[derive(Clone, Debug)]
pub struct SharedDnsCache(Arc<Mutex<DnsCache>>);

impl SharedDnsCache {
    /// A cache of at most `entries` addresses (0 disables it).
    pub fn new(entries: usize) -> Self {
        SharedDnsCache(Arc::new(Mutex::new(DnsCache::new(entries))))
    }

    fn with<T>(&self, f: impl FnOnce(&mut DnsCache) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The DPI classifier of one flow table. Clones share the application
/// table and the DNS cache.
#[derive(Clone, Debug)]
pub struct Engine {
    apps: Arc<Applications>,
    dns: SharedDnsCache,
    /// What the dissectors write metadata to for a flow that has none
    /// yet: empty between packets (see [`Full::meta`]).
    spare_meta: Metadata,
}

/// Detection state of one flow, held inline by the flow table: 16 bytes
/// (`Option<FlowState>` too), and no heap while detection has nothing to
/// keep but which dissectors are left and what each direction has shown
/// (a UDP flow of junk waiting for a reply). It boxes the rest the first
/// time a packet leaves something that does not fit: a claim, TCP
/// stream bytes, a dissector's bigger state, metadata.
#[derive(Debug)]
pub struct FlowState(State);

#[derive(Debug)]
enum State {
    Light(Light),
    Full(Box<Full>),
}

/// What a flow no dissector has claimed keeps while none has anything
/// else to keep: the candidates' bit set (a word per 64 dissectors) and 5
/// bytes, aligned to 8. `FlowState` is no bigger: rustc lays `Full`'s box
/// over `candidates` and tells the variants (and an `Option`'s `None`)
/// apart by spare values of `server_first`'s byte (`tests/memory.rs`
/// checks that it still does).
#[derive(Clone, Copy, Debug, Default)]
struct Light {
    candidates: Candidates,
    seen: [u8; 2],
    server_first: bool,
    scratch: Small,
}

/// Everything detection may keep for a flow.
#[derive(Debug, Default)]
struct Full {
    /// Dissectors that may still claim the flow (by index in `REGISTRY`).
    candidates: Candidates,
    /// The dissector that claimed the flow.
    claimed: Option<u8>,
    protocol: Protocol,
    /// Packets with payload shown to the dissectors: `[from client, from
    /// server]`. The flow table shows at most `max_detection_packets`
    /// (a `u8`) packets; the counts saturate should a caller show more.
    seen: [u8; 2],
    /// The first packet shown to the dissectors came from the server.
    server_first: bool,
    /// TCP: each direction's first bytes, from the first segment with
    /// payload.
    streams: Option<Box<[Stream; 2]>>,
    scratch: Scratch,
    /// From the first packet a dissector found something in: until then
    /// the engine lends the dissectors an empty `Metadata` of its own,
    /// and the flow takes it once it holds something.
    meta: Option<Box<Metadata>>,
}

impl From<Light> for Full {
    fn from(light: Light) -> Self {
        Full {
            candidates: light.candidates,
            seen: light.seen,
            server_first: light.server_first,
            scratch: light.scratch.into(),
            ..Full::default()
        }
    }
}

impl Full {
    /// The state as a [`Light`], if it has nothing more to keep.
    fn light(&self) -> Option<Light> {
        if self.claimed.is_some() || self.streams.is_some() || self.meta.is_some() {
            return None;
        }
        Some(Light {
            candidates: self.candidates,
            seen: self.seen,
            server_first: self.server_first,
            scratch: self.scratch.small()?,
        })
    }
}

impl FlowState {
    fn full(&self) -> Option<&Full> {
        match &self.0 {
            State::Light(_) => None,
            State::Full(full) => Some(full),
        }
    }

    /// The protocol found (unknown until a dissector claims the flow).
    fn protocol(&self) -> Protocol {
        self.full().map_or(Protocol::UNKNOWN, |full| full.protocol)
    }

    fn meta(&self) -> Option<&Metadata> {
        self.full().and_then(|full| full.meta.as_deref())
    }
}

impl Engine {
    /// An engine naming applications from `apps`, sharing `dns`.
    pub fn new(apps: Arc<Applications>, dns: SharedDnsCache) -> Self {
        Engine {
            apps,
            dns,
            spare_meta: Metadata::default(),
        }
    }

    /// Replaces the application table (SIGHUP). Flows detected later use
    /// the new one.
    pub fn set_applications(&mut self, apps: Arc<Applications>) {
        self.apps = apps;
    }

    /// The application of a flow to `flow.server_ip` named `host`, and
    /// whether it came from the DNS cache.
    fn application(&self, flow: &FlowInfo, host: &str) -> (u32, bool) {
        if !host.is_empty()
            && let Some(app) = self.apps.by_host(host)
        {
            return (app, false);
        }
        let server = ip_addr(flow.ip_version, &flow.server_ip);
        let cached = self
            .dns
            .with(|c| c.get(&server).and_then(|name| self.apps.by_host(name)));
        if let Some(app) = cached {
            return (app, true);
        }
        let app = self.apps.by_addr(flow.ip_version, &flow.server_ip);
        (app.unwrap_or(0), false)
    }

    /// Teaches the DNS cache that `answer`'s addresses belong to its name
    /// (the newest name for an address wins). Call it with every answer
    /// [`dns_answer`] finds, in packet order, before the packet's flow is
    /// observed: the cache keeps at most its number of addresses,
    /// forgetting the one learnt first, and a lookup does not refresh an
    /// address, so what it holds depends on that order alone.
    pub fn learn(&self, answer: &DnsAnswer) {
        self.dns.with(|c| {
            for &addr in answer.addresses.iter() {
                c.insert(addr, Arc::clone(&answer.name));
            }
        });
    }
}

impl Classifier for Engine {
    type State = FlowState;

    fn start(&mut self, flow: &FlowInfo) -> FlowState {
        FlowState(State::Light(Light {
            candidates: registry::start(flow),
            ..Light::default()
        }))
    }

    fn inspect(
        &mut self,
        st: &mut FlowState,
        flow: &FlowInfo,
        pkt: &PacketMeta<'_>,
        from_client: bool,
    ) -> bool {
        match &mut st.0 {
            State::Full(full) => self.detect(full, flow, pkt, from_client),
            State::Light(light) => {
                // Detection runs on the whole state, on the stack; it is
                // boxed only if it has something to keep that a `Light`
                // has no room for.
                let mut full = Full::from(*light);
                let done = self.detect(&mut full, flow, pkt, from_client);
                st.0 = match full.light() {
                    Some(light) => State::Light(light),
                    None => State::Full(Box::new(full)),
                };
                done
            }
        }
    }

    fn outcome(&mut self, state: Option<&FlowState>, flow: &FlowInfo) -> Outcome {
        let found = state
            .map(FlowState::protocol)
            .filter(|&p| p != Protocol::UNKNOWN);
        let mut outcome = match found {
            Some(protocol) => Outcome {
                protocol,
                ..Outcome::default()
            },
            None => PortGuess::guess(flow),
        };
        let host = state
            .and_then(FlowState::meta)
            .map_or("", |meta| meta.host_server_name.as_str());
        (outcome.application, outcome.dns_cache_hit) = self.application(flow, host);
        outcome
    }

    fn metadata<'s>(&self, state: &'s FlowState) -> &'s Metadata {
        state.meta().unwrap_or(Metadata::none())
    }

    fn application_name(&self, id: u32) -> &str {
        self.apps.name(id)
    }

    fn application_category(&self, id: u32) -> Category {
        self.apps.category(id)
    }
}

impl Engine {
    /// Shows one packet to the flow's dissectors: [`Classifier::inspect`]
    /// on the whole state.
    fn detect(
        &mut self,
        st: &mut Full,
        flow: &FlowInfo,
        pkt: &PacketMeta<'_>,
        from_client: bool,
    ) -> bool {
        if st.candidates.is_empty() && st.claimed.is_none() {
            return true; // not TCP or UDP, or nothing left to try
        }
        if pkt.payload.is_empty() || zero_padding(pkt) {
            return false;
        }
        let dir = usize::from(!from_client);
        if let Some(tcp) = &pkt.tcp {
            let streams = st.streams.get_or_insert_default();
            // The other side's stream starts where the flow table expects
            // its first byte, if that side has sent a segment (SYN, ACK).
            if let Some(next) = flow.tcp_next[1 - dir] {
                streams[1 - dir].expect(next);
            }
            if !streams[dir].push(tcp, pkt.payload) {
                // Held until the gap before it fills: nothing to read yet.
                return false;
            }
        }
        let tcp = flow.ip_protocol == 6;
        if st.seen == [0, 0] {
            st.server_first = !from_client;
            st.candidates = st
                .candidates
                .and(registry::first(tcp, from_client, pkt.payload[0]));
        }
        let (client_stream, server_stream) = match st.streams.as_deref() {
            Some([client, server]) => (&client.bytes[..], &server.bytes[..]),
            None => (&[][..], &[][..]),
        };
        let packet = Packet {
            flow,
            payload: pkt.payload,
            from_client,
            tcp,
            client_stream,
            server_stream,
            seen: st.seen.map(u32::from),
            server_first: st.server_first,
        };
        st.seen[dir] = st.seen[dir].saturating_add(1);
        let meta = match st.meta.as_deref_mut() {
            Some(meta) => meta,
            None => &mut self.spare_meta,
        };
        let done = match st.claimed {
            Some(i) => {
                match (REGISTRY[usize::from(i)].run)(&packet, &mut st.scratch, meta) {
                    Verdict::Found(p) => {
                        st.protocol = p;
                        false
                    }
                    Verdict::Done(p) => {
                        st.protocol = p;
                        true
                    }
                    // The claim stands; the dissector has nothing more to read.
                    Verdict::No => true,
                    Verdict::Maybe => false,
                }
            }
            None => {
                let mut done = false;
                // Those the flow's ports hint at first, then the others.
                let hinted = registry::hinted(flow);
                let set = st.candidates;
                let order = set.and(&hinted).iter().chain(set.and_not(&hinted).iter());
                for i in order {
                    match (REGISTRY[i].run)(&packet, &mut st.scratch, meta) {
                        Verdict::No => st.candidates.remove(i),
                        Verdict::Maybe => {}
                        Verdict::Found(p) => {
                            (st.protocol, st.claimed) = (p, Some(i as u8));
                            break;
                        }
                        Verdict::Done(p) => {
                            (st.protocol, st.claimed, done) = (p, Some(i as u8), true);
                            break;
                        }
                    }
                }
                done || (st.candidates.is_empty() && st.claimed.is_none())
            }
        };
        if st.meta.is_none() && self.spare_meta != *Metadata::none() {
            st.meta = Some(Box::new(std::mem::take(&mut self.spare_meta)));
        }
        done
    }
}

/// A bare TCP ACK (or SYN+ACK) whose few payload bytes are all zero:
/// padding that a broken stack counted in the IP length, not data (the
/// real data may follow at the same sequence number). Detection skips
/// it, as nDPI does.
fn zero_padding(pkt: &PacketMeta<'_>) -> bool {
    pkt.tcp
        .is_some_and(|tcp| tcp.has(TcpInfo::ACK) && tcp.flags & !(TcpInfo::ACK | TcpInfo::SYN) == 0)
        && pkt.payload.len() <= 6
        && pkt.payload.iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in table, loaded once for every test.
    static APPS: std::sync::LazyLock<Arc<Applications>> =
        std::sync::LazyLock::new(|| Arc::new(Applications::builtin().unwrap()));

    fn engine() -> Engine {
        Engine::new(Arc::clone(&APPS), SharedDnsCache::new(16))
    }

    fn flow_to(server: [u8; 4], port: u16) -> FlowInfo {
        let mut server_ip = [0; 16];
        server_ip[..4].copy_from_slice(&server);
        FlowInfo {
            ip_version: 4,
            ip_protocol: 6,
            client_ip: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            client_port: 40_000,
            server_ip,
            server_port: port,
            tcp_next: [None; 2],
        }
    }

    #[test]
    fn applications_from_host_then_dns_cache_then_address() {
        let mut e = engine();
        // A DNS answer named 192.0.2.7 www.youtube.com (synthetic: id
        // 0x1234, the question, one A record pointing back to its name),
        // learnt by a clone: clones share the cache.
        let response = dissect::testing::hex(
            "1234 8180 0001 0001 0000 0000 03777777 07796f7574756265 03636f6d 00 0001 0001
             c00c 0001 0001 0000012c 0004 c0000207",
        );
        let mut pkt = PacketMeta::new(flowstat_core::Timestamp::ZERO, 100);
        (pkt.protocol, pkt.src_port, pkt.dst_port) = (17, 53, 40_000);
        pkt.payload = &response;
        e.clone().learn(&dns_answer(&pkt).unwrap());

        let to_cached = e.outcome(None, &flow_to([192, 0, 2, 7], 443));
        assert_eq!(e.application_name(to_cached.application), "YouTube");
        assert!(to_cached.dns_cache_hit && to_cached.guessed);

        // Payload's host name wins over the cache.
        let tls = FlowState(State::Full(Box::new(Full {
            protocol: Protocol(91),
            meta: Some(Box::new(Metadata {
                host_server_name: "www.netflix.com".into(),
                ..Metadata::default()
            })),
            ..Full::default()
        })));
        let named = e.outcome(Some(&tls), &flow_to([192, 0, 2, 7], 443));
        assert_eq!(e.application_name(named.application), "NetFlix");
        assert_eq!(e.application_category(named.application).name(), "Video");
        assert_eq!(e.application_category(named.application).id(), 26);
        assert!(!named.dns_cache_hit && !named.guessed);

        // Unknown everywhere: no application, the port's protocol guessed.
        let nothing = e.outcome(None, &flow_to([192, 0, 2, 99], 443));
        assert_eq!((nothing.application, nothing.protocol), (0, Protocol(91)));
    }

    /// Every registered dissector's samples, each through a fresh engine
    /// with every dissector: named as the sample says, so that no
    /// dissector asked earlier takes them.
    #[test]
    fn every_dissector_names_its_samples_through_the_whole_engine() {
        let mut wrong = Vec::new();
        for d in REGISTRY {
            assert!(!d.samples.is_empty(), "{}: no sample", d.name);
            for sample in d.samples {
                let mut e = engine();
                let mut flow = flow_to([192, 0, 2, 1], sample.server_port);
                flow.ip_protocol = if sample.tcp { 6 } else { 17 };
                let mut st = e.start(&flow);
                // Client bytes from 1000, server bytes from 5000.
                let mut next = [1000u32, 5000];
                for &(from_client, hex) in sample.packets {
                    let payload = dissect::testing::hex(hex);
                    let mut pkt = PacketMeta::new(flowstat_core::Timestamp::ZERO, 100);
                    pkt.payload = &payload;
                    let dir = usize::from(!from_client);
                    if sample.tcp {
                        pkt.tcp = Some(TcpInfo {
                            seq: next[dir],
                            ack: next[1 - dir],
                            flags: TcpInfo::ACK,
                            ..TcpInfo::default()
                        });
                        next[dir] += payload.len() as u32;
                    }
                    if e.inspect(&mut st, &flow, &pkt, from_client) {
                        break;
                    }
                }
                let got = e.outcome(Some(&st), &flow);
                if (got.protocol, got.guessed) != (sample.protocol, false) {
                    wrong.push(format!(
                        "{}: {}: {}{}, not {}",
                        d.name,
                        sample.origin,
                        got.protocol,
                        if got.guessed { " (guessed)" } else { "" },
                        sample.protocol
                    ));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    /// heuristic_tcp_ack_payload.pcap: the ACK that ends the handshake
    /// carries two zero bytes at the sequence number where the
    /// ClientHello then starts. They are not data: the hello is read.
    #[test]
    fn zero_bytes_on_a_bare_ack_are_not_the_stream() {
        let mut e = engine();
        let flow = flow_to([192, 0, 2, 1], 443);
        let mut st = e.start(&flow);
        let hello = dissect::testing::hex(proto::tls::DISSECTOR.samples[0].packets[0].1);
        for (flags, payload) in [
            (TcpInfo::ACK, &[0u8, 0][..]),
            (TcpInfo::ACK | TcpInfo::PSH, &hello),
        ] {
            let mut pkt = PacketMeta::new(flowstat_core::Timestamp::ZERO, 100);
            pkt.payload = payload;
            pkt.tcp = Some(TcpInfo {
                seq: 1000,
                ack: 5000,
                flags,
                ..TcpInfo::default()
            });
            e.inspect(&mut st, &flow, &pkt, true);
        }
        assert_eq!(e.outcome(Some(&st), &flow).protocol, Protocol(91));
    }

    #[test]
    fn a_flow_no_dissector_claims_ends_early() {
        let mut e = engine();
        let flow = flow_to([192, 0, 2, 1], 40_001);
        let mut st = e.start(&flow);
        let junk = [0x5au8; 64];
        // Both directions: some dissectors wait for the other side first.
        let done = (0..4u32).any(|i| {
            let mut pkt = PacketMeta::new(flowstat_core::Timestamp::ZERO, 100);
            pkt.payload = &junk;
            // Client bytes from 1000, server bytes from 5000, in turn.
            let (client, server) = (1000 + i / 2 * 64, 5000 + i / 2 * 64);
            let (seq, ack) = if i % 2 == 0 {
                (client, server)
            } else {
                (server, client + 64)
            };
            pkt.tcp = Some(TcpInfo {
                seq,
                ack,
                flags: TcpInfo::ACK,
                ..TcpInfo::default()
            });
            e.inspect(&mut st, &flow, &pkt, i % 2 == 0)
        });
        let candidates = match &st.0 {
            State::Light(light) => light.candidates,
            State::Full(full) => full.candidates,
        };
        let left: Vec<&str> = candidates.iter().map(|i| REGISTRY[i].name).collect();
        assert!(
            done,
            "every dissector said no within four packets; left: {left:?}"
        );
        assert_eq!(e.outcome(Some(&st), &flow).protocol, Protocol::UNKNOWN);
    }
}
