//! The URLs of the MQTT and HTTP sinks: `SCHEME://HOST[:PORT][PATH]`,
//! checked once at startup so that a bad one is named with its fix.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::config::is_host_name;

/// A checked URL: its scheme (one of those asked for), its host (an IPv6
/// address without its brackets), its port and the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Url<'a> {
    /// `mqtt`, `https`...
    pub(crate) scheme: &'a str,
    /// A host name, an IPv4 address or an IPv6 address (no brackets).
    pub(crate) host: &'a str,
    /// The port given, if any.
    pub(crate) port: Option<u16>,
    /// What follows the authority: empty, or from its `/` or `?`.
    pub(crate) path: &'a str,
}

/// Checks `url` against the schemes of `forms` (e.g. `mqtt://HOST[:PORT]`
/// and `mqtts://HOST[:PORT]`), which the reasons name as the fix.
pub(crate) fn parse<'a>(url: &'a str, forms: &[&str]) -> Result<Url<'a>, String> {
    let expected = || format!("expected {}", forms.join(" or "));
    if url.is_empty() {
        return Err(format!("is required: {}", expected()));
    }
    let invalid = |why: String| format!("invalid URL {url:?}: {why}");
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(expected()));
    };
    if !forms
        .iter()
        .any(|f| f.split_once("://").is_some_and(|(s, _)| s == scheme))
    {
        return Err(invalid(format!(
            "unknown scheme {scheme:?}, {}",
            expected()
        )));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err(invalid(
            "credentials do not go in the URL: use the username and password keys".into(),
        ));
    }
    let (host, port) = split_port(authority).map_err(invalid)?;
    check_host(host).map_err(invalid)?;
    Ok(Url {
        scheme,
        host: host.trim_start_matches('[').trim_end_matches(']'),
        port,
        path,
    })
}

/// `HOST[:PORT]` as its host (IPv6 still in brackets) and port.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = match authority.rfind(':') {
        // A colon inside brackets belongs to an IPv6 address.
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    let Some(port) = port else {
        return Ok((host, None));
    };
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host, Some(p))),
        _ => Err(format!(
            "the port must be a number from 1 to 65535, not {port:?}"
        )),
    }
}

/// Checks a host: a DNS name, an IPv4 address, or an IPv6 address in
/// brackets.
fn check_host(host: &str) -> Result<(), String> {
    if let Some(ip) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match ip.parse::<Ipv6Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err(format!("{ip:?} is not an IPv6 address")),
        };
    }
    if host.contains(':') {
        return Err("an IPv6 address goes in brackets, e.g. [::1]".into());
    }
    if host.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{host:?} is not an IPv4 address"));
    }
    if is_host_name(host) {
        Ok(())
    } else {
        Err(format!("{host:?} is not an IP address or a host name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMS: &[&str] = &["mqtt://HOST[:PORT]", "mqtts://HOST[:PORT]"];

    #[test]
    fn hosts_ports_and_paths_are_split() {
        let u = parse("mqtt://broker.example:1884", FORMS).unwrap();
        assert_eq!(
            u,
            Url {
                scheme: "mqtt",
                host: "broker.example",
                port: Some(1884),
                path: ""
            }
        );
        let u = parse("mqtts://[::1]", FORMS).unwrap();
        assert_eq!((u.scheme, u.host, u.port), ("mqtts", "::1", None));
        let u = parse("https://127.0.0.1:8080/ingest?x=1", &["https://HOST/PATH"]).unwrap();
        assert_eq!(
            (u.host, u.port, u.path),
            ("127.0.0.1", Some(8080), "/ingest?x=1")
        );
        let u = parse("http://[fe80::1]:80/", &["http://HOST/PATH"]).unwrap();
        assert_eq!((u.host, u.port, u.path), ("fe80::1", Some(80), "/"));
    }

    #[test]
    fn every_bad_part_is_named_with_the_fix() {
        for (url, reason) in [
            (
                "",
                "is required: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
            ),
            (
                "broker:1883",
                "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
            ),
            ("tcp://broker:1883", "unknown scheme \"tcp\""),
            ("mqtt://u:p@broker", "use the username and password keys"),
            (
                "mqtt://broker:0",
                "the port must be a number from 1 to 65535",
            ),
            ("mqtt://broker:x", "not \"x\""),
            ("mqtt://broker:65536", "the port must be"),
            ("mqtt://:1883", "\"\" is not an IP address or a host name"),
            ("mqtt://::1:1883", "an IPv6 address goes in brackets"),
            ("mqtt://[::g]:1883", "\"::g\" is not an IPv6 address"),
            ("mqtt://300.1.1.1", "\"300.1.1.1\" is not an IPv4 address"),
            ("mqtt://bad_name", "not an IP address or a host name"),
        ] {
            let got = parse(url, FORMS).unwrap_err();
            assert!(got.contains(reason), "{url}: {got}");
            if !url.is_empty() {
                assert!(got.starts_with(&format!("invalid URL {url:?}: ")), "{got}");
            }
        }
    }
}
