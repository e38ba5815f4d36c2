//! How often the built-in application table names a host as nDPI does.
//!
//!     cargo run --release -p flowstat-dpi --example host_agreement -- \
//!         NDPI_DATA_DIR CAPTURE.pcap.out...
//!
//! For every flow of nDPI's `.out` files that shows a `Hostname/SNI` and
//! an application after the dot of `proto:` (`TLS.Google`) that nDPI's host
//! patterns name (`NDPI_DATA_DIR/hosts.tsv`), looks the host up in the
//! built-in table. Agreement: the same name, or the same id (the table
//! keeps a few older nDPI names: 21 "Hotmail" is nDPI's "Outlook"). Prints
//! the figure over flows and over distinct host names, and each
//! disagreement.

use std::collections::{BTreeMap, HashSet};

use flowstat_dpi::Applications;

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(name)? + name.len();
    let rest = line.get(start..)?;
    rest.get(..rest.find(']')?)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((data, outs)) = args.split_first() else {
        eprintln!("usage: host_agreement NDPI_DATA_DIR CAPTURE.pcap.out...");
        std::process::exit(2);
    };
    let hosts = std::fs::read_to_string(format!("{data}/hosts.tsv")).expect("hosts.tsv");
    let by_patterns: HashSet<String> = hosts
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').nth(1))
        .map(|n| n.to_lowercase().replace('_', ""))
        .collect();
    let apps = Applications::builtin().expect("the built-in table");
    // nDPI's patterns alone, one application each, to tell the names
    // nDPI resolves through them (not by address, certificate or
    // heuristics): those its own patterns give the application it names.
    let mut patterns: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in hosts.lines().filter(|l| !l.starts_with('#')) {
        if let [pattern, app, ..] = l.split('\t').collect::<Vec<_>>()[..] {
            let key = app.to_lowercase().replace('_', "");
            patterns
                .entry(key)
                .or_default()
                .push(pattern.to_lowercase());
        }
    }
    let mut toml = String::new();
    let keys: Vec<&String> = patterns.keys().collect();
    for (i, key) in keys.iter().enumerate() {
        let list: Vec<String> = patterns[*key].iter().map(|p| format!("{p:?}")).collect();
        toml += &format!(
            "[[application]]\nid = {}\nname = {key:?}\ncategory = \"Web\"\ndomains = [{}]\n",
            i + 1,
            list.join(", ")
        );
    }
    let ndpi = Applications::parse(&toml, "hosts.tsv").expect("nDPI's patterns as a table");
    let (mut by_pattern, mut same_by_pattern) = (0u32, 0u32);
    let (mut flows, mut same_flows) = (0u32, 0u32);
    // host -> (nDPI id, nDPI name, ours)
    let mut distinct: BTreeMap<String, (u32, String, String, bool)> = BTreeMap::new();
    for out in outs {
        let Ok(text) = std::fs::read_to_string(out) else {
            continue;
        };
        for line in text.lines() {
            let (Some(proto), Some(host)) =
                (field(line, "[proto: "), field(line, "[Hostname/SNI: "))
            else {
                continue;
            };
            let Some((ids, names)) = proto.split_once('/') else {
                continue;
            };
            let (Some((_, app_id)), Some((_, app))) = (ids.split_once('.'), names.split_once('.'))
            else {
                continue;
            };
            let Ok(app_id) = app_id.parse::<u32>() else {
                continue;
            };
            if host.is_empty() || !by_patterns.contains(&app.to_lowercase().replace('_', "")) {
                continue;
            }
            let ours = apps.by_host(host);
            let same = ours.is_some_and(|id| id == app_id || apps.name(id) == app);
            flows += 1;
            same_flows += u32::from(same);
            let key = app.to_lowercase().replace('_', "");
            if ndpi.by_host(host).is_some_and(|id| ndpi.name(id) == key) {
                by_pattern += 1;
                same_by_pattern += u32::from(same);
            }
            let name = ours.map_or("-", |id| apps.name(id)).to_owned();
            distinct.insert(host.to_lowercase(), (app_id, app.to_owned(), name, same));
        }
    }
    let same_hosts = distinct.values().filter(|v| v.3).count();
    for (host, (id, app, ours, same)) in &distinct {
        if !same {
            println!("  {host}: nDPI {id}/{app}, flowstat {ours}");
        }
    }
    println!(
        "flows whose host nDPI's own patterns give nDPI's application: \
         {same_by_pattern}/{by_pattern} agree ({:.1}%)",
        f64::from(same_by_pattern) * 100.0 / f64::from(by_pattern.max(1))
    );
    println!(
        "flows: {same_flows}/{flows} agree ({:.1}%); distinct host names: {same_hosts}/{} ({:.1}%)",
        f64::from(same_flows) * 100.0 / f64::from(flows.max(1)),
        distinct.len(),
        same_hosts as f64 * 100.0 / distinct.len().max(1) as f64
    );
}
