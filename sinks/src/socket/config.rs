//! The socket sink's keys: `[[sink]]` with `type = "socket"`.

use flowstat_core::Sink;
use serde::{Deserialize, Deserializer};

use super::{Endpoint, Framing, SocketOptions, SocketSink};
use crate::config::{BuildSink, ConfigProblem, SinkContext};

/// `type = "socket"`: a stream socket server, Unix or TCP, that sends
/// every client the stream (see [`SocketSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SocketConfig {
    /// `endpoint`: `unix:///PATH` or `tcp://IP:PORT` (required).
    pub endpoint: Option<Endpoint>,
    /// `framing`: `"lines"` (the default) or `"length"` (a
    /// `{"length":N}` line before each record).
    pub framing: Framing,
    /// `client_buffer_bytes`: bytes a client may fall behind (default 4
    /// MiB); while one is further behind, records wait in the sink's
    /// queue, and one that stays so for 2 s is disconnected.
    pub client_buffer_bytes: usize,
    /// `wait_for_consumers`: clients to wait for before the first record
    /// is sent (default 1).
    pub wait_for_consumers: usize,
    /// `max_clients`: clients served at once; more are refused (default
    /// 64).
    pub max_clients: usize,
    /// `socket_mode`: the Unix socket file's mode, an octal string such as
    /// `"0660"` (default: as the umask leaves it).
    #[serde(deserialize_with = "octal_mode")]
    pub socket_mode: Option<u32>,
    /// `socket_owner`: the Unix socket file's owner, a user name (default:
    /// the agent's user).
    pub socket_owner: Option<String>,
    /// `socket_group`: the Unix socket file's group, a group name
    /// (default: the agent's group).
    pub socket_group: Option<String>,
    /// `token`: a secret every client must send as its first line before
    /// it is sent anything (default: none asked).
    pub token: Option<String>,
}

impl Default for SocketConfig {
    /// No endpoint (required), and [`SocketOptions`]' defaults.
    fn default() -> Self {
        SocketConfig {
            endpoint: None,
            framing: Framing::default(),
            client_buffer_bytes: SocketOptions::CLIENT_BUFFER_BYTES,
            wait_for_consumers: SocketOptions::WAIT_FOR_CLIENTS,
            max_clients: SocketOptions::MAX_CLIENTS,
            socket_mode: None,
            socket_owner: None,
            socket_group: None,
            token: None,
        }
    }
}

impl SocketConfig {
    /// The sink's options, greeting each client with `hello` first; a Unix
    /// socket belongs to `owner` (uid, gid) unless socket_owner and
    /// socket_group say otherwise.
    fn options(
        &self,
        hello: &[u8],
        owner: Option<(u32, u32)>,
    ) -> Result<SocketOptions, ConfigProblem> {
        let mut o = SocketOptions::new(self.endpoint()?.clone(), hello.to_vec());
        o.framing = self.framing;
        o.client_buffer_bytes = self.client_buffer_bytes;
        o.wait_for_clients = self.wait_for_consumers;
        o.max_clients = self.max_clients()?;
        o.unix_mode = self.socket_mode;
        o.unix_owner = self.owner()?.or(owner.map(|(uid, _)| uid));
        o.unix_group = self.group()?.or(owner.map(|(_, gid)| gid));
        o.token = self.token()?;
        Ok(o)
    }

    /// `token`, which is one line of printable text when set.
    fn token(&self) -> Result<Option<String>, ConfigProblem> {
        match &self.token {
            Some(t)
                if t.is_empty() || t.len() > 256 || !t.chars().all(|c| c.is_ascii_graphic()) =>
            {
                Err(ConfigProblem::new(
                    "token",
                    "must be 1 to 256 printable ASCII characters without spaces, \
                     e.g. from `openssl rand -hex 32`",
                ))
            }
            t => Ok(t.clone()),
        }
    }

    /// `max_clients`, which is at least 1.
    fn max_clients(&self) -> Result<usize, ConfigProblem> {
        match self.max_clients {
            0 => Err(ConfigProblem::new(
                "max_clients",
                "must be at least 1: the clients served at once (default 64)",
            )),
            n => Ok(n),
        }
    }

    /// The endpoint, which is required.
    fn endpoint(&self) -> Result<&Endpoint, ConfigProblem> {
        self.endpoint.as_ref().ok_or_else(|| {
            ConfigProblem::new("endpoint", "is required: unix:///PATH or tcp://HOST:PORT")
        })
    }

    /// The uid of `socket_owner`, if set.
    fn owner(&self) -> Result<Option<u32>, ConfigProblem> {
        self.socket_owner
            .as_deref()
            .map(|name| {
                uid_of(name).ok_or_else(|| {
                    ConfigProblem::new(
                        "socket_owner",
                        format!("no user named {name:?} on this host"),
                    )
                })
            })
            .transpose()
    }

    /// The gid of `socket_group`, if set.
    fn group(&self) -> Result<Option<u32>, ConfigProblem> {
        self.socket_group
            .as_deref()
            .map(|name| {
                gid_of(name).ok_or_else(|| {
                    ConfigProblem::new(
                        "socket_group",
                        format!("no group named {name:?} on this host"),
                    )
                })
            })
            .transpose()
    }
}

impl BuildSink for SocketConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let dir = match &self.endpoint {
            Some(Endpoint::Unix(path)) => crate::dirs::check_parent(path)
                .err()
                .map(|reason| ConfigProblem::new("endpoint", reason)),
            _ => None,
        };
        [
            self.endpoint().err(),
            dir,
            self.max_clients().err(),
            self.owner().err(),
            self.group().err(),
            self.token().err(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        Ok(Box::new(SocketSink::new(
            self.options(&ctx.hello, ctx.owner)?,
        )))
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    /// Reads `unix:///PATH` or `tcp://IP:PORT` (see [`Endpoint::parse`]).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Endpoint::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Reads an octal file mode written as a string (`"0660"`).
fn octal_mode<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let s = String::deserialize(deserializer)?;
    u32::from_str_radix(&s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid mode {s:?}: expected an octal mode such as \"0660\""
            ))
        })
}

/// The uid of user `name` on this host.
fn uid_of(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

/// The gid of group `name` on this host.
fn gid_of(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::{SinkConfig, read_for_test};

    fn read(text: &str) -> Result<SocketConfig, Vec<(String, String)>> {
        match read_for_test("socket", text)? {
            SinkConfig::Socket(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not a socket sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "endpoint = \"unix:///run/f.sock\"\nframing = \"length\"\nclient_buffer_bytes = 100\n\
             wait_for_consumers = 3\nmax_clients = 5\nsocket_mode = \"0660\"\n\
             socket_owner = \"root\"\nsocket_group = \"root\"\ntoken = \"a1-b2\"\n",
        )
        .unwrap();
        let o = c.options(b"hi", Some((1000, 1000))).unwrap();
        assert_eq!(o.endpoint, Endpoint::Unix(PathBuf::from("/run/f.sock")));
        assert_eq!(o.framing, Framing::LengthHeader);
        assert_eq!(
            (o.client_buffer_bytes, o.wait_for_clients, o.max_clients),
            (100, 3, 5)
        );
        assert_eq!(
            (o.unix_mode, o.unix_owner, o.unix_group),
            (Some(0o660), Some(0), Some(0))
        );
        assert_eq!(o.hello, b"hi");
        assert_eq!(o.token.as_deref(), Some("a1-b2"));
        // The agent's user owns the socket unless the keys say otherwise.
        let c = read("endpoint = \"unix:///run/f.sock\"\nsocket_group = \"root\"\n").unwrap();
        let o = c.options(b"", Some((1000, 1001))).unwrap();
        assert_eq!((o.unix_owner, o.unix_group), (Some(1000), Some(0)));
        let c = read("endpoint = \"tcp://[::1]:7150\"\n").unwrap();
        let o = c.options(b"", None).unwrap();
        let want = SocketOptions::new(Endpoint::Tcp("[::1]:7150".parse().unwrap()), Vec::new());
        assert_eq!(o, want);
        assert_eq!(c.framing, Framing::Lines);
        assert!(read("endpoint = \"tcp://127.0.0.1:1\"\nframing = \"lines\"\n").is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key, reason) in [
            (
                "",
                "endpoint",
                "is required: unix:///PATH or tcp://HOST:PORT",
            ),
            (
                "endpoint = \"http://127.0.0.1:1\"",
                "endpoint",
                "expected unix:///",
            ),
            ("endpoint = \"unix://run/f.sock\"", "endpoint", "absolute"),
            (
                "endpoint = \"tcp://localhost:1\"",
                "endpoint",
                "not a host name",
            ),
            (
                "endpoint = \"tcp://127.0.0.1\"",
                "endpoint",
                "tcp://IPV4:PORT",
            ),
            ("endpoint = 7150", "endpoint", "invalid type: integer"),
            ("framing = \"json\"", "framing", "unknown variant `json`"),
            (
                "socket_mode = \"999\"",
                "socket_mode",
                "expected an octal mode",
            ),
            (
                "socket_mode = \"1777\"",
                "socket_mode",
                "expected an octal mode",
            ),
            ("socket_mode = 660", "socket_mode", "invalid type: integer"),
            (
                "socket_owner = \"no-such-user-9\"",
                "socket_owner",
                "no user named",
            ),
            (
                "socket_group = \"no-such-group-9\"",
                "socket_group",
                "no group named",
            ),
            (
                "client_buffer_bytes = -1",
                "client_buffer_bytes",
                "invalid value",
            ),
            ("max_clients = 0", "max_clients", "must be at least 1"),
            ("token = \"\"", "token", "1 to 256 printable"),
            ("token = \"two words\"", "token", "without spaces"),
        ] {
            let text = if key == "endpoint" {
                text.to_owned()
            } else {
                format!("endpoint = \"unix:///f.sock\"\n{text}")
            };
            let got = read(&text).unwrap_err();
            assert!(
                got.len() == 1 && got[0].0 == key && got[0].1.contains(reason),
                "{text}: want {key}: {reason}, got {got:?}"
            );
        }
        // Every problem at once, and none twice.
        let got = read(
            "endpoint = \"unix://x\"\nsocket_mode = \"9\"\nsocket_owner = \"no-such-user-9\"\n\
             socket_group = \"no-such-group-9\"\npath = \"/x\"\n",
        )
        .unwrap_err();
        let keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys.len(), 5, "{got:?}");
        for key in [
            "endpoint",
            "socket_mode",
            "socket_owner",
            "socket_group",
            "path",
        ] {
            assert!(keys.contains(&key), "{key} not in {got:?}");
        }
    }

    #[test]
    fn a_user_gone_since_the_check_fails_the_build() {
        let c = SocketConfig {
            endpoint: Some(Endpoint::Unix("/f.sock".into())),
            socket_owner: Some("no-such-user-9".into()),
            ..SocketConfig::default()
        };
        let e = c.build(&SinkContext::default()).err().unwrap();
        assert_eq!(e.key, "socket_owner");
    }
}
