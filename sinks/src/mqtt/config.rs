//! The MQTT sink's keys: `[[sink]]` with `type = "mqtt"`.

use std::path::PathBuf;
use std::time::Duration;

use flowstat_core::Sink;
use serde::Deserialize;

use super::{MqttOptions, MqttSink, Qos};
use crate::config::{BuildSink, ConfigProblem, SinkContext};

/// `type = "mqtt"`: an MQTT publisher (see [`MqttSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `url` (required): `mqtt://HOST[:PORT]` (port 1883 by default) or
    /// `mqtts://HOST[:PORT]` (TLS, port 8883).
    pub url: String,
    /// `topic`: each record's topic; `{hostname}` and `{type}` (the
    /// record's type) are replaced (default `flowstat/{hostname}/{type}`).
    pub topic: String,
    /// `qos`: 0 (at most once) or 1 (at least once: held until the
    /// broker's PUBACK, published again after a reconnect), default 1.
    pub qos: u8,
    /// `client_id`: the MQTT client id, `{hostname}` replaced (default
    /// `flowstatd-{hostname}`); unique per broker.
    pub client_id: String,
    /// `username` and `password`: the broker's login, if it asks for one.
    pub username: String,
    /// See `username`.
    pub password: String,
    /// `tls_ca_file`: with `mqtts://`, a PEM file of the CA certificates
    /// to trust instead of the Mozilla roots.
    pub tls_ca_file: Option<PathBuf>,
    /// `keep_alive_secs`: the longest the connection stays silent; 0 for
    /// none (default 30).
    pub keep_alive_secs: u64,
    /// `connect_timeout_secs`: for connecting, the TLS handshake and the
    /// broker's CONNACK (default 10).
    pub connect_timeout_secs: u64,
    /// `inflight_records`: records published and not yet settled, at most
    /// (default 1000, 1 to 65535).
    pub inflight_records: usize,
}

impl Default for MqttConfig {
    /// No URL (required), and [`MqttOptions`]' defaults.
    fn default() -> Self {
        let o = MqttOptions::new("", 0);
        MqttConfig {
            url: String::new(),
            topic: o.topic,
            qos: 1,
            client_id: o.client_id,
            username: String::new(),
            password: String::new(),
            tls_ca_file: None,
            keep_alive_secs: o.keep_alive.as_secs(),
            connect_timeout_secs: o.connect_timeout.as_secs(),
            inflight_records: o.inflight,
        }
    }
}

/// The forms of URL the sink takes.
const FORMS: &[&str] = &["mqtt://HOST[:PORT]", "mqtts://HOST[:PORT]"];
/// What a topic may hold in braces.
const PLACEHOLDERS: &str = "the topic takes {hostname} and {type}";

impl MqttConfig {
    /// The sink's options, `hostname` standing for `{hostname}`; `None`
    /// while [`problems`](BuildSink::problems) has some.
    pub fn options(&self, hostname: &str) -> Option<MqttOptions> {
        let url = crate::url::parse(&self.url, FORMS).ok()?;
        let tls = url.scheme == "mqtts";
        let port = url.port.unwrap_or(if tls { 8883 } else { 1883 });
        Some(MqttOptions {
            tls,
            ca_file: self.tls_ca_file.clone(),
            topic: self.topic.clone(),
            hostname: hostname.to_owned(),
            qos: if self.qos == 0 {
                Qos::AtMostOnce
            } else {
                Qos::AtLeastOnce
            },
            client_id: self.client_id.clone(),
            credentials: (!self.username.is_empty())
                .then(|| (self.username.clone(), self.password.clone())),
            keep_alive: Duration::from_secs(self.keep_alive_secs),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            inflight: self.inflight_records,
            ..MqttOptions::new(url.host, port)
        })
    }
}

impl BuildSink for MqttConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let url = crate::url::parse(&self.url, FORMS);
        match &url {
            Err(reason) => out.push(ConfigProblem::new("url", reason.clone())),
            Ok(u) if !u.path.is_empty() => out.push(ConfigProblem::new(
                "url",
                format!(
                    "an MQTT URL has no path ({:?}): the topic goes in the topic key",
                    u.path
                ),
            )),
            Ok(_) => {}
        }
        if let Err(reason) = check_topic(&self.topic) {
            out.push(ConfigProblem::new("topic", reason));
        }
        if self.qos > 1 {
            out.push(ConfigProblem::new(
                "qos",
                format!(
                    "must be 0 (at most once) or 1 (at least once), not {}: QoS 2 is not \
                     supported",
                    self.qos
                ),
            ));
        }
        if self.client_id.len() > 65_535 || self.client_id.contains('\0') {
            out.push(ConfigProblem::new(
                "client_id",
                "must be at most 65535 bytes, without NUL",
            ));
        }
        if self.username.is_empty() && !self.password.is_empty() {
            out.push(ConfigProblem::new(
                "password",
                "is sent only with a username: set username too",
            ));
        }
        if let Some(path) = &self.tls_ca_file {
            if url.as_ref().is_ok_and(|u| u.scheme != "mqtts") {
                out.push(ConfigProblem::new(
                    "tls_ca_file",
                    "applies to TLS only: use an mqtts:// url",
                ));
            } else if let Err(reason) = crate::tls::ca_certificates(path) {
                out.push(ConfigProblem::new("tls_ca_file", reason));
            }
        }
        if self.keep_alive_secs > 65_535 {
            out.push(ConfigProblem::new(
                "keep_alive_secs",
                "must be at most 65535 (0 for none)",
            ));
        }
        if self.connect_timeout_secs < 1 {
            out.push(ConfigProblem::new(
                "connect_timeout_secs",
                "must be at least 1",
            ));
        }
        if !(1..=65_535).contains(&self.inflight_records) {
            out.push(ConfigProblem::new(
                "inflight_records",
                "must be from 1 to 65535 (MQTT packet ids)",
            ));
        }
        out
    }

    fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        let options = self
            .options(&ctx.hostname)
            .ok_or_else(|| ConfigProblem::new("url", "invalid"))?;
        Ok(Box::new(MqttSink::new(options)))
    }
}

/// Checks a topic template: not empty, no wildcard, no NUL, and only the
/// placeholders it knows.
fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err(format!(
            "must not be empty, e.g. \"flowstat/{{hostname}}/{{type}}\": {PLACEHOLDERS}"
        ));
    }
    if topic.contains(['+', '#']) {
        return Err("+ and # are wildcards for subscribers: a topic to publish to has none".into());
    }
    if topic.contains('\0') {
        return Err("must not hold NUL".into());
    }
    let bare = topic.replace("{hostname}", "").replace("{type}", "");
    if let Some(start) = bare.find('{') {
        let name = bare[start..]
            .find('}')
            .map_or(&bare[start..], |end| &bare[start..=start + end]);
        return Err(format!("unknown placeholder {name}: {PLACEHOLDERS}"));
    }
    if bare.contains('}') {
        return Err(format!("a }} without its {{: {PLACEHOLDERS}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkConfig, read_for_test};

    fn read(text: &str) -> Result<MqttConfig, Vec<(String, String)>> {
        match read_for_test("mqtt", text)? {
            SinkConfig::Mqtt(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not an mqtt sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "url = \"mqtts://broker.example\"\ntopic = \"t/{type}\"\nqos = 0\n\
             client_id = \"agent-{hostname}\"\nusername = \"u\"\npassword = \"p\"\n\
             keep_alive_secs = 0\nconnect_timeout_secs = 3\ninflight_records = 7\n",
        )
        .unwrap();
        assert_eq!(
            c.options("edge1").unwrap(),
            MqttOptions {
                host: "broker.example".into(),
                port: 8883,
                tls: true,
                ca_file: None,
                topic: "t/{type}".into(),
                hostname: "edge1".into(),
                qos: Qos::AtMostOnce,
                client_id: "agent-{hostname}".into(),
                credentials: Some(("u".into(), "p".into())),
                keep_alive: Duration::ZERO,
                connect_timeout: Duration::from_secs(3),
                inflight: 7,
            }
        );
        let c = read("url = \"mqtt://127.0.0.1\"\n").unwrap();
        let want = MqttOptions {
            hostname: "h".into(),
            ..MqttOptions::new("127.0.0.1", 1883)
        };
        assert_eq!(c.options("h").unwrap(), want);
        let c = read("url = \"mqtt://[::1]:1884\"\n").unwrap();
        let o = c.options("h").unwrap();
        assert_eq!((o.host.as_str(), o.port, o.tls), ("::1", 1884, false));
    }

    #[test]
    fn a_bad_url_or_qos_is_named_with_the_fix() {
        let got = read("url = \"tcp://broker:1883\"\nqos = 2\n").unwrap_err();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].0, "url");
        assert!(
            got[0].1.contains(
                "unknown scheme \"tcp\", expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
            ),
            "{got:?}"
        );
        assert_eq!(got[1].0, "qos");
        assert!(
            got[1]
                .1
                .contains("must be 0 (at most once) or 1 (at least once), not 2"),
            "{got:?}"
        );
        let got = read("").unwrap_err();
        assert_eq!(
            got,
            vec![(
                "url".into(),
                "is required: expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]".into()
            )]
        );
        let got = read("url = \"mqtt://b/flows\"\nqos = -1\n").unwrap_err();
        assert_eq!(got[0].0, "qos", "{got:?}");
        assert!(got[0].1.contains("invalid value"), "{got:?}");
        assert_eq!(got[1].0, "url");
        assert!(got[1].1.contains("the topic goes in the topic key"));
    }

    #[test]
    fn every_other_bad_value_is_named() {
        let got = read(
            "url = \"mqtt://b\"\ntopic = \"a/{host}/#\"\npassword = \"p\"\n\
             tls_ca_file = \"/x.pem\"\nkeep_alive_secs = 70000\nconnect_timeout_secs = 0\n\
             inflight_records = 0\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "topic",
                "password",
                "tls_ca_file",
                "keep_alive_secs",
                "connect_timeout_secs",
                "inflight_records"
            ]
        );
        assert!(got[0].1.contains("wildcards"), "{got:?}");
        assert!(got[2].1.contains("use an mqtts:// url"), "{got:?}");
        let got = read("url = \"mqtts://b\"\ntls_ca_file = \"/nonexistent.pem\"\n").unwrap_err();
        assert_eq!(got[0].0, "tls_ca_file");
        assert!(got[0].1.contains("cannot read CA certificates"), "{got:?}");
        for (topic, reason) in [
            ("", "must not be empty"),
            ("a/{host}", "unknown placeholder {host}"),
            ("a/{type", "unknown placeholder {type"),
            ("a}", "a } without its {"),
            ("a/+/b", "wildcards"),
        ] {
            let got = check_topic(topic).unwrap_err();
            assert!(got.contains(reason), "{topic}: {got}");
        }
        assert_eq!(check_topic("flowstat/{hostname}/{type}"), Ok(()));
    }
}
