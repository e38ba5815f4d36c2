//! `flowstatd list-protocols` and `list-applications`: what the agent can
//! name.

use std::collections::BTreeMap;
use std::io::Write;

use flowstat_core::Protocol;
use flowstat_dpi::Applications;

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

/// `flowstatd list-applications`: one line per application of `apps`, by
/// id: its name, category, and how many domains and networks name it;
/// aligned under a header, or tab-separated (`tsv`) for scripts.
pub fn applications(apps: &Applications, tsv: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if tsv {
        for a in apps.iter() {
            writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}",
                a.id, a.name, a.category, a.domains, a.networks
            )?;
        }
        return Ok(());
    }
    let name_width = apps.iter().map(|a| a.name.len()).max().unwrap_or(0).max(4);
    let category_width = apps
        .iter()
        .map(|a| a.category.name().len())
        .max()
        .unwrap_or(0)
        .max(8);
    writeln!(
        out,
        "{:>7}  {:<name_width$}  {:<category_width$}  {:>7}  {:>8}",
        "ID", "NAME", "CATEGORY", "DOMAINS", "NETWORKS"
    )?;
    for a in apps.iter() {
        writeln!(
            out,
            "{:>7}  {:<name_width$}  {:<category_width$}  {:>7}  {:>8}",
            a.id,
            a.name,
            a.category.name(),
            a.domains,
            a.networks
        )?;
    }
    writeln!(out, "{} applications", apps.len())
}
