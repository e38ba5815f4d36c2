//! The ZeroMQ sink's keys: `[[sink]]` with `type = "zmq"`.

use flowstat_core::Sink;
use serde::Deserialize;

use super::{ZmqMode, ZmqOptions, ZmqSink};
use crate::config::{BuildSink, ConfigProblem, SinkContext, check_host_port, is_host_name};

/// `type = "zmq"`: a ZeroMQ PUB socket (see [`ZmqSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ZmqConfig {
    /// `endpoint` (required): `tcp://HOST:PORT` or `ipc:///PATH`. Binding,
    /// HOST is `*` (every interface), an IP address (IPv6 in brackets) or
    /// an interface's name; connecting, it is the collector's IP address
    /// or host name.
    pub endpoint: String,
    /// `mode`: `"bind"` (the default: subscribers connect to the agent)
    /// or `"connect"` (the agent connects to a collector).
    pub mode: ZmqMode,
    /// `send_hwm`: messages libzmq queues per subscriber before sends are
    /// held back (default 10000, at least 1).
    pub send_hwm: i32,
    /// `wait_for_consumers`: subscriptions to wait for before the first
    /// record is sent (default 1).
    pub wait_for_consumers: usize,
}

impl Default for ZmqConfig {
    /// No endpoint (required), and [`ZmqOptions`]' defaults.
    fn default() -> Self {
        let o = ZmqOptions::new("");
        ZmqConfig {
            endpoint: o.endpoint,
            mode: o.mode,
            send_hwm: o.send_hwm,
            wait_for_consumers: o.wait_for_subscribers,
        }
    }
}

impl ZmqConfig {
    /// The sink's options.
    pub fn options(&self) -> ZmqOptions {
        ZmqOptions {
            mode: self.mode,
            send_hwm: self.send_hwm,
            wait_for_subscribers: self.wait_for_consumers,
            ..ZmqOptions::new(&self.endpoint)
        }
    }
}

impl BuildSink for ZmqConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if let Err(reason) = check_endpoint(&self.endpoint, self.mode) {
            out.push(ConfigProblem::new("endpoint", reason));
        }
        if self.send_hwm < 1 {
            out.push(ConfigProblem::new("send_hwm", "must be at least 1"));
        }
        out
    }

    fn build(&self, _: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        Ok(Box::new(ZmqSink::new(self.options())))
    }
}

/// The forms of endpoint the sink takes.
const FORMS: &str = "expected tcp://HOST:PORT or ipc:///PATH";

/// Checks the transport and address of `endpoint`, for `mode`.
fn check_endpoint(endpoint: &str, mode: ZmqMode) -> Result<(), String> {
    if endpoint.is_empty() {
        return Err(format!("is required: {FORMS}"));
    }
    let invalid = |why: String| format!("invalid ZeroMQ endpoint {endpoint:?}: {why}");
    let Some((transport, address)) = endpoint.split_once("://") else {
        return Err(invalid(FORMS.into()));
    };
    match transport {
        "tcp" => check_tcp(address, mode).map_err(invalid),
        "ipc" => check_ipc(address).map_err(invalid),
        "inproc" => Err(invalid(
            "inproc:// reaches only sockets in the same ZeroMQ context, and the sink's is its \
             own: use ipc:// (or tcp://)"
                .into(),
        )),
        "pgm" | "epgm" => Err(invalid(format!(
            "this flowstatd's libzmq is built without {transport} (OpenPGM): {FORMS}"
        ))),
        _ => Err(invalid(format!("unknown transport {transport:?}, {FORMS}"))),
    }
}

/// Checks `HOST:PORT` of a `tcp://` endpoint.
fn check_tcp(address: &str, mode: ZmqMode) -> Result<(), String> {
    check_host_port(address, "tcp://HOST:PORT", |host| match mode {
        ZmqMode::Bind if host == "*" => Ok(()),
        ZmqMode::Bind if !host.is_empty() && nix::net::if_::if_nametoindex(host).is_ok() => Ok(()),
        ZmqMode::Bind => Err(format!(
            "cannot bind {host:?}: binding takes *, an IP address or the name of an interface \
             on this host, e.g. tcp://*:5556 or tcp://127.0.0.1:5556"
        )),
        ZmqMode::Connect if host == "*" => Err(
            "* (every interface) is for binding: connecting takes the collector's address".into(),
        ),
        ZmqMode::Connect if is_host_name(host) => Ok(()),
        ZmqMode::Connect => Err(format!(
            "{host:?} is not an IP address or a host name, e.g. tcp://collector.example:5556"
        )),
    })
}

/// Checks the path of an `ipc://` endpoint: absolute (or `@NAME`, an
/// abstract socket), and short enough for a Unix socket address.
fn check_ipc(path: &str) -> Result<(), String> {
    let usable = path.len() > 1 && (path.starts_with('/') || path.starts_with('@'));
    if !usable {
        return Err("expected ipc:///absolute/path (or ipc://@NAME, an abstract socket)".into());
    }
    // sun_path holds 108 bytes, with the terminating NUL.
    if path.len() > 107 {
        return Err(format!(
            "the path is {} bytes long; a Unix socket's is at most 107",
            path.len()
        ));
    }
    if path.starts_with('/') {
        crate::dirs::check_parent(std::path::Path::new(path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkConfig, read_for_test};

    fn read(text: &str) -> Result<ZmqConfig, Vec<(String, String)>> {
        match read_for_test("zmq", text)? {
            SinkConfig::Zmq(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not a zmq sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "endpoint = \"tcp://10.0.0.1:5556\"\nmode = \"connect\"\nsend_hwm = 5\n\
             wait_for_consumers = 0\n",
        )
        .unwrap();
        assert_eq!(
            c.options(),
            ZmqOptions {
                endpoint: "tcp://10.0.0.1:5556".into(),
                mode: ZmqMode::Connect,
                send_hwm: 5,
                wait_for_subscribers: 0,
            }
        );
        let c = read("endpoint = \"ipc:///run/f.zmq\"\n").unwrap();
        assert_eq!(c.options(), ZmqOptions::new("ipc:///run/f.zmq"));
        assert_eq!(c.mode, ZmqMode::Bind);
    }

    #[test]
    fn endpoints_are_checked_for_transport_and_address() {
        use ZmqMode::{Bind, Connect};
        for (endpoint, mode) in [
            ("tcp://*:5556", Bind),
            ("tcp://127.0.0.1:5556", Bind),
            ("tcp://127.0.0.1:5556", Connect),
            ("tcp://[::1]:65535", Bind),
            ("tcp://[::]:1", Bind),
            ("tcp://lo:5556", Bind),
            ("tcp://collector.example.:5556", Connect),
            ("tcp://localhost:5556", Connect),
            ("ipc:///run/flowstatd/flows.zmq", Bind),
            ("ipc://@flowstatd", Connect),
        ] {
            assert_eq!(check_endpoint(endpoint, mode), Ok(()), "{endpoint}");
        }
        for (endpoint, mode, reason) in [
            (
                "",
                Bind,
                "is required: expected tcp://HOST:PORT or ipc:///PATH",
            ),
            ("foo://bar", Bind, "unknown transport \"foo\""),
            (
                "127.0.0.1:5556",
                Bind,
                "expected tcp://HOST:PORT or ipc:///PATH",
            ),
            ("tcp://127.0.0.1", Bind, "no port"),
            (
                "tcp://127.0.0.1:",
                Bind,
                "the port must be a number from 1 to 65535",
            ),
            ("tcp://127.0.0.1:0", Bind, "the port must be"),
            ("tcp://*:*", Bind, "the port must be"),
            ("tcp://127.0.0.1:65536", Bind, "the port must be"),
            ("tcp://:5556", Bind, "cannot bind \"\""),
            (
                "tcp://:5556",
                Connect,
                "\"\" is not an IP address or a host name",
            ),
            (
                "tcp://300.1.1.1:5556",
                Connect,
                "\"300.1.1.1\" is not an IPv4 address",
            ),
            ("tcp://::1:5556", Bind, "an IPv6 address goes in brackets"),
            ("tcp://[::g]:5556", Bind, "\"::g\" is not an IPv6 address"),
            (
                "tcp://*:5556",
                Connect,
                "* (every interface) is for binding",
            ),
            ("tcp://localhost:5556", Bind, "cannot bind \"localhost\""),
            ("tcp://nosuch9:5556", Bind, "cannot bind \"nosuch9\""),
            (
                "tcp://bad_name:5556",
                Connect,
                "not an IP address or a host name",
            ),
            (
                "tcp://-x.example:5556",
                Connect,
                "not an IP address or a host name",
            ),
            (
                "tcp://a;b:5556",
                Connect,
                "not an IP address or a host name",
            ),
            ("ipc://", Bind, "expected ipc:///absolute/path"),
            ("ipc://run/f.zmq", Bind, "expected ipc:///absolute/path"),
            ("ipc://*", Bind, "expected ipc:///absolute/path"),
            ("inproc://flows", Bind, "use ipc://"),
            ("pgm://eth0;239.192.1.1:5555", Connect, "built without pgm"),
            (
                "epgm://eth0;239.192.1.1:5555",
                Connect,
                "built without epgm",
            ),
        ] {
            let got = check_endpoint(endpoint, mode).unwrap_err();
            assert!(got.contains(reason), "{endpoint}: {got}");
            if !endpoint.is_empty() {
                assert!(got.starts_with(&format!("invalid ZeroMQ endpoint {endpoint:?}: ")));
            }
        }
        let long = format!("ipc:///{}", "x".repeat(107));
        let got = check_endpoint(&long, Bind).unwrap_err();
        assert!(got.contains("108 bytes long"), "{got}");
    }

    #[test]
    fn bad_values_are_named() {
        let got =
            read("endpoint = \"tcp://127.0.0.1\"\nsend_hwm = 0\nmode = \"pub\"\n").unwrap_err();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].0, "mode");
        assert!(
            got[0]
                .1
                .contains("unknown variant `pub`, expected `bind` or `connect`")
        );
        assert_eq!(got[1].0, "endpoint");
        assert!(got[1].1.contains("no port"), "{got:?}");
        assert_eq!(got[2], ("send_hwm".into(), "must be at least 1".into()));
        // The mode read decides what the endpoint may be.
        let got = read("endpoint = \"tcp://*:5556\"\nmode = \"connect\"\n").unwrap_err();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, "endpoint");
        let got = read("").unwrap_err();
        assert_eq!(
            got,
            vec![(
                "endpoint".into(),
                "is required: expected tcp://HOST:PORT or ipc:///PATH".into()
            )]
        );
    }
}
