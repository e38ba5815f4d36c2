//! The core telemetry plugin: the JSON records, readable by Netify Agent
//! v5 consumers.
//!
//! Every record and field it writes, with units, when it appears and how
//! it stands to Netify v5, is in `docs/records.md` (kept exact by
//! `tests/e2e/records.rs`). One JSON object per record, keys in a fixed
//! order: `type` first, then the envelope, then the body with its keys
//! sorted (the `aggregate` and `event` bodies in the order of
//! [`flowstat_core::analytics`]'s types).

use std::sync::Arc;

use arc_swap::ArcSwap;
use flowstat_core::analytics::Row;
use flowstat_core::{
    AGENT_VERSION, AddrClass, AgentStatus, DecodeError, FlowEvent, FlowView, InterfaceReport,
    Metadata, Plugin, Record, RecordKind, Records, Snapshot, SourceInfo, digest_hex, mac_text,
};
use flowstat_geo::{GeoDb, GeoInfo, SharedGeo};

use crate::json::{Json, escape, key};

/// Produces `flow`, `flow_stats`, `flow_purge`, `agent_status`,
/// `interface_stats`, `aggregate` and `event`.
#[derive(Debug)]
pub struct CorePlugin {
    /// The last source's interface name, and its JSON string form: one
    /// escape per source instead of one per record.
    interface: (String, Vec<u8>),
    /// Where `flow` records' ASNs and countries come from.
    geo: SharedGeo,
}

impl CorePlugin {
    /// A plugin enriching `flow` records from `geo`.
    pub fn new(geo: SharedGeo) -> Self {
        CorePlugin {
            interface: (String::new(), Vec::new()),
            geo,
        }
    }
}

impl Default for CorePlugin {
    /// Without address databases.
    fn default() -> Self {
        CorePlugin::new(Arc::new(ArcSwap::from_pointee(GeoDb::empty())))
    }
}

impl Plugin for CorePlugin {
    fn name(&self) -> &str {
        "core"
    }

    fn on_flow(
        &mut self,
        source: &SourceInfo<'_>,
        event: FlowEvent,
        flow: &FlowView<'_>,
        out: &mut Records,
    ) {
        let (kind, purge) = match event {
            FlowEvent::Detected => (RecordKind::Flow, None),
            FlowEvent::Stats => (RecordKind::FlowStats, None),
            FlowEvent::Purged { reason, evicted } => {
                (RecordKind::FlowPurge, Some((reason, evicted)))
            }
        };
        if self.interface.0 != source.interface {
            self.interface = (source.interface.to_owned(), escape(source.interface));
        }
        let interface = &self.interface.1;
        let geo = &self.geo;
        record(out, kind, |j| {
            j.escaped(key!("interface"), interface);
            j.bool(key!("internal"), source.internal);
            if let Some((reason, evicted)) = purge {
                j.ascii(key!("reason"), reason.as_str().as_bytes());
                j.bool(key!("evicted"), evicted);
            }
            j.field_object(key!("flow"), |j| flow_body(j, kind, flow, geo));
        });
    }

    fn on_interval(&mut self, snapshot: &Snapshot, out: &mut Records) {
        record(out, RecordKind::AgentStatus, |j| {
            agent_status(j, &snapshot.status)
        });
        record(out, RecordKind::InterfaceStats, |j| {
            for iface in &snapshot.interfaces {
                j.named_object(&iface.name, |j| interface_counters(j, iface));
            }
        });
        let a = &snapshot.analytics;
        let at = snapshot.status.timestamp.as_millis();
        for table in a.definitions.iter().filter(|t| t.emit) {
            let body = Aggregate {
                name: &table.name,
                at,
                interval: table.interval,
                rows: &table.rows,
            };
            serialized(out, RecordKind::Aggregate, &body);
        }
        for event in &a.events {
            serialized(out, RecordKind::Event, event);
        }
    }
}

/// The `aggregate` record's fields.
#[derive(serde::Serialize)]
struct Aggregate<'a> {
    name: &'a str,
    at: u64,
    interval: u64,
    rows: &'a [Row],
}

/// Adds a record of `kind` whose fields are `body`'s, through serde: for
/// the few records an interval makes besides the flows'.
fn serialized(out: &mut Records, kind: RecordKind, body: &impl serde::Serialize) {
    #[derive(serde::Serialize)]
    struct Typed<'a, T> {
        r#type: &'static str,
        #[serde(flatten)]
        body: &'a T,
    }
    out.push(kind, |buf| {
        let typed = Typed {
            r#type: kind.as_str(),
            body,
        };
        // Into a Vec, of plain structs: this cannot fail.
        let _ = serde_json::to_writer(buf, &typed);
    });
}

/// The `agent_hello` record each new stream client gets first:
/// the agent's version, its build, and the version of the JSON records
/// (Netify v5's, which these records follow).
pub fn agent_hello() -> Record {
    let mut out = Records::default();
    record(&mut out, RecordKind::AgentHello, |j| {
        versions(j);
        j.constant_fields(r#""json_version":1.9"#);
    });
    out.take().remove(0)
}

/// Adds a record of `kind` to `out`: `{"type":..., <fields>}`.
fn record(out: &mut Records, kind: RecordKind, fields: impl FnOnce(&mut Json<'_>)) {
    out.push(kind, |buf| {
        Json::new(buf).object(|j| {
            j.ascii(key!("type"), kind.as_str().as_bytes());
            fields(j);
        })
    });
}

/// The `flow` object of a flow record: which fields it has depends on the
/// record kind (see `docs/records.md`); keys come out sorted. `geo` is read
/// for `flow` records only (once or twice in a flow's life, never per
/// packet).
fn flow_body(j: &mut Json<'_>, kind: RecordKind, f: &FlowView<'_>, geo: &ArcSwap<GeoDb>) {
    let meta = kind == RecordKind::Flow;
    let identity = meta || kind == RecordKind::FlowPurge;
    let d = &f.detection;
    let m = d.meta;
    let (l, o) = (&f.local_stats, &f.other_stats);
    let geo = meta.then(|| geo.load());
    let [local_geo, other_geo] = geo.as_ref().map_or([GeoInfo::default(); 2], |db| {
        db.flow_sides(f.local.ip, f.local.class == AddrClass::Public, f.other.ip)
    });
    if meta {
        // Netify's overrides flowstat does not do.
        j.constant_fields(r#""app_ip_override":false,"app_proto_twins":false"#);
        if let Some(hash) = &m.bt_info_hash {
            j.field_object(key!("bt"), |j| {
                j.ascii(key!("info_hash"), &digest_hex(hash))
            });
        }
        // nDPI category ids. Only the application has a category: the
        // protocol table holds none, and flowstat has no domain or overlay
        // category lists, so those are 0 (unspecified).
        j.field_object(key!("category"), |j| {
            j.u64(key!("application"), d.category.id());
            j.constant_fields(r#""domain":0,"overlay":0,"protocol":0"#);
        });
        j.u64(key!("detected_application"), d.application);
    }
    if identity {
        j.str(key!("detected_application_name"), d.application_name);
    }
    if meta {
        j.u64(key!("detected_protocol"), d.protocol.0);
    }
    if identity {
        j.ascii(key!("detected_protocol_name"), d.protocol.name().as_bytes());
    }
    if meta {
        j.bool(key!("detection_guessed"), d.guessed);
    }
    j.u64(key!("detection_packets"), d.packets);
    if meta {
        j.bool(key!("detection_updated"), d.updated);
        j.bool(key!("dhc_hit"), d.dns_cache_hit);
        if let Some(dhcp) = &m.dhcp {
            j.field_object(key!("dhcp"), |j| {
                j.str(key!("class_ident"), &dhcp.class_ident);
                j.str(key!("fingerprint"), &dhcp.fingerprint);
            });
        }
    }
    j.ascii(key!("digest"), &digest_hex(&f.digest));
    j.ascii_array(
        key!("digest_prev"),
        f.digest_prev
            .iter()
            .flat_map(|d| d.all())
            .map(|d| digest_hex(&d)),
    );
    if meta {
        // A DNS flow's query name goes in `dns_host_name` too.
        let dns = if d.protocol.0 == 5 {
            m.host_server_name.as_str()
        } else {
            ""
        };
        j.str(key!("dns_host_name"), dns);
        j.bool(key!("fhc_hit"), false);
    }
    if identity {
        j.u64(key!("first_seen_at"), f.first_seen.as_millis());
    }
    if meta {
        j.str(key!("host_server_name"), &m.host_server_name);
        if let Some(http) = &m.http {
            j.field_object(key!("http"), |j| {
                j.str(key!("url"), &http.url);
                j.str(key!("user_agent"), &http.user_agent);
            });
        }
        j.u64(key!("ip_dscp"), f.ip_dscp);
        j.bool(key!("ip_nat"), false);
    }
    if identity {
        j.u64(key!("ip_protocol"), f.ip_protocol);
        j.u64(key!("ip_version"), f.ip_version);
    }
    j.u64(key!("last_seen_at"), f.last_seen.as_millis());
    if let Some(name) = local_geo.as_name {
        j.str(key!("local_as_name"), name);
    }
    if let Some(asn) = local_geo.asn {
        j.u64(key!("local_asn"), asn);
    }
    j.u64(key!("local_bytes"), l.bytes);
    if let Some(country) = local_geo.country {
        j.str(key!("local_country"), country);
    }
    if identity {
        j.ip(key!("local_ip"), f.local.ip);
    }
    if meta {
        j.ascii(key!("local_mac"), &mac_text(f.local.mac));
    }
    if identity {
        j.bool(key!("local_origin"), f.local_origin);
    }
    j.u64(key!("local_packets"), l.packets);
    if identity {
        j.u64(key!("local_port"), f.local.port);
    }
    j.u64(key!("local_rate"), l.rate);
    if meta && let Some(answer) = &m.mdns_answer {
        j.field_object(key!("mdns"), |j| j.str(key!("answer"), answer));
    }
    if let Some(name) = other_geo.as_name {
        j.str(key!("other_as_name"), name);
    }
    if let Some(asn) = other_geo.asn {
        j.u64(key!("other_asn"), asn);
    }
    j.u64(key!("other_bytes"), o.bytes);
    if let Some(country) = other_geo.country {
        j.str(key!("other_country"), country);
    }
    if identity {
        j.ip(key!("other_ip"), f.other.ip);
    }
    if meta {
        j.ascii(key!("other_mac"), &mac_text(f.other.mac));
    }
    j.u64(key!("other_packets"), o.packets);
    if identity {
        j.u64(key!("other_port"), f.other.port);
    }
    j.u64(key!("other_rate"), o.rate);
    if meta {
        j.ascii(key!("other_type"), f.other_type.as_str().as_bytes());
        j.bool(key!("soft_dissector"), false);
        protocol_objects(j, m);
    }
    if let Some(tcp) = &f.tcp {
        j.field_object(key!("tcp"), |j| {
            j.u64(key!("local_flags"), l.tcp_flags);
            j.u64(key!("other_flags"), o.tcp_flags);
            j.u64(key!("resets"), tcp.resets);
            j.u64(key!("retrans"), tcp.retrans);
            j.u64(key!("seq_errors"), tcp.seq_errors);
        });
    }
    if kind == RecordKind::FlowPurge
        && let Some(total) = &f.tcp_total
    {
        j.field_object(key!("tcp_total"), |j| {
            j.u64(key!("resets"), total.resets);
            j.u64(key!("retrans"), total.retrans);
            j.u64(key!("seq_errors"), total.seq_errors);
        });
    }
    j.u64(key!("total_bytes"), l.total_bytes + o.total_bytes);
    j.u64(key!("total_local_bytes"), l.total_bytes);
    j.u64(key!("total_local_packets"), l.total_packets);
    j.u64(key!("total_other_bytes"), o.total_bytes);
    j.u64(key!("total_other_packets"), o.total_packets);
    j.u64(key!("total_packets"), l.total_packets + o.total_packets);
    if identity {
        j.u64(key!("vlan_id"), f.vlan_id);
    }
}

/// The `ssdp`, `ssh`, `ssl` and `stun` objects of a `flow` record.
fn protocol_objects(j: &mut Json<'_>, m: &Metadata) {
    if let Some(ua) = &m.ssdp_user_agent {
        j.field_object(key!("ssdp"), |j| j.str(key!("user_agent"), ua));
    }
    if let Some(ssh) = &m.ssh {
        j.field_object(key!("ssh"), |j| {
            j.str(key!("client"), &ssh.client);
            j.str(key!("server"), &ssh.server);
        });
    }
    if let Some(ssl) = &m.ssl {
        j.field_object(key!("ssl"), |j| {
            j.str_array(key!("alpn"), ssl.alpn.iter().map(String::as_str));
            j.str_array(
                key!("alpn_server"),
                ssl.alpn_server.iter().map(String::as_str),
            );
            j.display(
                key!("cipher_suite"),
                format_args!("0x{:04x}", ssl.cipher_suite),
            );
            j.str(key!("client_ja4"), &ssl.client_ja4);
            j.str(key!("client_sni"), &ssl.client_sni);
            j.str(key!("fingerprint"), &ssl.fingerprint);
            j.str(key!("issuer_dn"), &ssl.issuer_dn);
            j.str(key!("server_cn"), &ssl.server_cn);
            j.str(key!("server_ja4s"), &ssl.server_ja4s);
            j.str(key!("subject_dn"), &ssl.subject_dn);
            j.display(key!("version"), format_args!("0x{:04x}", ssl.version));
        });
    }
    if let Some(stun) = &m.stun {
        j.field_object(key!("stun"), |j| {
            j.str(key!("mapped"), &stun.mapped);
            j.str(key!("other"), &stun.other);
            j.str(key!("peer"), &stun.peer);
            j.str(key!("relayed"), &stun.relayed);
            j.str(key!("response"), &stun.response);
        });
    }
}

/// `agent_version` and `build_version`.
fn versions(j: &mut Json<'_>) {
    j.ascii(key!("agent_version"), AGENT_VERSION.as_bytes());
    j.display(
        key!("build_version"),
        format_args!(
            "flowstatd/{AGENT_VERSION} ({}-{})",
            std::env::consts::ARCH,
            std::env::consts::OS
        ),
    );
}

fn agent_status(j: &mut Json<'_>, a: &AgentStatus) {
    versions(j);
    j.field_object(key!("captures"), |j| {
        for c in &a.captures {
            j.named_object(&c.name, |j| {
                j.u64(key!("dropped"), c.dropped);
                j.u64(key!("received"), c.received);
            });
        }
    });
    j.u64(key!("cpu_cores"), a.cpu_cores);
    j.u64(key!("cpu_system"), a.cpu_system_ms / 1000);
    j.u64(key!("cpu_system_ms"), a.cpu_system_ms);
    j.u64(key!("cpu_system_prev"), a.cpu_system_prev_ms / 1000);
    j.u64(key!("cpu_user"), a.cpu_user_ms / 1000);
    j.u64(key!("cpu_user_ms"), a.cpu_user_ms);
    j.u64(key!("cpu_user_prev"), a.cpu_user_prev_ms / 1000);
    j.bool(key!("dhc_status"), false);
    j.bool(key!("fhc_status"), false);
    j.u64(key!("flow_count"), a.flow_count);
    j.u64(key!("flow_count_prev"), a.flow_count_prev);
    j.u64(key!("flows_active"), a.flows_active);
    j.u64(key!("flows_evicted"), a.flows_evicted);
    j.u64(key!("flows_expired"), a.flows_expired);
    j.u64(key!("flows_expiring"), a.flows_expiring);
    j.u64(key!("flows_in_use"), a.flow_count);
    j.u64(key!("flows_purged"), a.flows_purged);
    j.u64(key!("maxrss_kb"), a.maxrss_kb);
    j.u64(key!("maxrss_kb_prev"), a.maxrss_kb_prev);
    j.u64(key!("memrss_kb"), a.memrss_kb);
    j.u64(key!("memrss_kb_prev"), a.memrss_kb_prev);
    j.field_object(key!("sinks"), |j| {
        for s in &a.sinks {
            j.named_object(&s.name, |j| {
                j.u64(key!("disconnected"), s.disconnected);
                j.u64(key!("dropped"), s.dropped);
                j.u64(key!("queued"), s.queued);
                j.u64(key!("sent"), s.sent);
            });
        }
    });
    // flowstat does not use TCMalloc.
    j.u64(key!("tcm_kb"), 0u8);
    j.u64(key!("tcm_kb_prev"), 0u8);
    j.u64(key!("timestamp"), a.timestamp.as_secs());
    j.u64(key!("update_imf"), 1u8);
    j.u64(key!("update_interval"), a.update_interval);
    j.u64(key!("uptime"), a.uptime);
}

fn interface_counters(j: &mut Json<'_>, iface: &InterfaceReport) {
    let c = &iface.counters;
    let k = iface.kernel.as_ref();
    j.u64(key!("capture_dropped"), c.capture_dropped);
    j.u64(key!("capture_filtered"), c.capture_filtered);
    j.field_object(key!("decode_issues"), |j| {
        // Every kind listed, sorted by name.
        let mut kinds = DecodeError::ALL;
        kinds.sort_by_key(|k| k.name());
        for k in kinds {
            j.named_u64(k.name(), c.decode_issues[k.index()]);
        }
    });
    j.u64(key!("discarded"), c.discarded);
    j.u64(key!("discarded_bytes"), c.discarded_bytes);
    j.u64(key!("ethernet"), c.ethernet);
    // Netify v5's packets dropped in flow processing: flowstat drops none
    // (a full table evicts, counted in agent_status's flows_evicted), so
    // always 0, written because v5 consumers require the field.
    j.u64(key!("flow_dropped"), 0u64);
    j.u64(key!("fragmented"), c.fragmented);
    j.u64(key!("icmp"), c.icmp);
    j.u64(key!("igmp"), c.igmp);
    j.u64(key!("ip"), c.ip);
    j.u64(key!("ip_bytes"), c.ip_bytes);
    j.u64(key!("largest_bytes"), c.largest_bytes);
    j.u64(key!("mpls"), c.mpls);
    j.u64(key!("pppoe"), c.pppoe);
    j.u64(key!("queue_dropped"), c.queue_dropped);
    j.u64(key!("raw"), c.raw);
    if let Some(k) = k {
        j.u64(key!("rx_bytes"), k.rx_bytes);
        j.u64(key!("rx_bytes_per_sec"), k.rx_bytes_per_sec);
        j.u64(key!("rx_drops"), k.rx_drops);
        j.u64(key!("rx_errors"), k.rx_errors);
        j.u64(key!("rx_packets"), k.rx_packets);
        j.u64(key!("rx_packets_per_sec"), k.rx_packets_per_sec);
    }
    j.u64(key!("tcp"), c.tcp);
    j.u64(key!("tcp_resets"), c.tcp_resets);
    j.u64(key!("tcp_seq_errors"), c.tcp_seq_errors);
    if let Some(k) = k {
        j.u64(key!("tx_bytes"), k.tx_bytes);
        j.u64(key!("tx_bytes_per_sec"), k.tx_bytes_per_sec);
        j.u64(key!("tx_drops"), k.tx_drops);
        j.u64(key!("tx_errors"), k.tx_errors);
        j.u64(key!("tx_packets"), k.tx_packets);
        j.u64(key!("tx_packets_per_sec"), k.tx_packets_per_sec);
    }
    j.u64(key!("udp"), c.udp);
    j.u64(key!("vlan"), c.vlan);
    j.u64(key!("wire_bytes"), c.wire_bytes);
}

#[cfg(test)]
mod tests;
