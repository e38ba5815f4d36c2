//! `flowstatd list-protocols`: what the agent can name.

use std::collections::BTreeMap;
use std::io::Write;

use flowstat_core::Protocol;

/// Writes one line per protocol the agent can name, by id: its name and
/// how it is detected (the dissectors that name it from payload, with
/// their transports and ports, or the IP protocol number that is enough).
pub fn protocols(out: &mut dyn Write) -> std::io::Result<()> {
    let mut how: BTreeMap<Protocol, Vec<String>> = BTreeMap::new();
    for d in flowstat_dpi::dissectors() {
        let transports = match (d.tcp, d.udp) {
            (true, true) => "TCP, UDP",
            (true, false) => "TCP",
            _ => "UDP",
        };
        let ports = d
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        let ports = match (d.ports.is_empty(), d.ports_only) {
            (true, _) => String::new(),
            (false, true) => format!("; only on ports {ports}"),
            (false, false) => format!("; ports {ports} first"),
        };
        for &p in d.protocols {
            how.entry(p)
                .or_default()
                .push(format!("payload ({}: {transports}{ports})", d.name));
        }
    }
    for number in 0..=u8::MAX {
        if let Some(p) = Protocol::from_ip_protocol(number) {
            how.entry(p)
                .or_default()
                .push(format!("IP protocol {number}"));
        }
    }
    let width = how.keys().map(|p| p.name().len()).max().unwrap_or(4);
    writeln!(out, "{:>5}  {:<width$}  DETECTED BY", "ID", "NAME")?;
    for (p, ways) in &how {
        writeln!(out, "{:>5}  {:<width$}  {}", p.0, p.name(), ways.join("; "))?;
    }
    writeln!(out, "{} protocols", how.len())
}
