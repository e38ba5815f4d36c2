//! A stream socket server (Unix or TCP): every connected client gets the
//! `agent_hello` record, then every record written while it is connected.
//!
//! Nothing here blocks on a client. The framed records are kept once, in
//! a log that every client reads from at its own position with
//! non-blocking writes, so a client's backlog costs a position, not a
//! copy. While a client is more than [`SocketOptions::client_buffer_bytes`]
//! behind, the sink takes no more records (they wait in its queue), so a
//! client that keeps reading survives any burst; one that stays that far
//! behind for [`SocketOptions::client_stall`] is disconnected and counted.
//! Only [`Sink::close`] waits, at most a second.

use std::collections::VecDeque;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowstat_core::{Delivery, Record, Sink, SinkError};

mod config;

pub use config::SocketConfig;

/// Where a [`SocketSink`] listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix stream socket at an absolute path: `unix:///run/flowstatd/flows.sock`.
    Unix(PathBuf),
    /// A TCP address and port: `tcp://127.0.0.1:7150`, `tcp://[::1]:7150`.
    Tcp(SocketAddr),
}

impl Endpoint {
    /// Parses `unix:///absolute/path` or `tcp://ADDRESS:PORT` (an IPv6
    /// address in brackets); the error says which form was expected.
    pub fn parse(s: &str) -> Result<Endpoint, String> {
        if let Some(path) = s.strip_prefix("unix://") {
            let path = Path::new(path);
            if !path.is_absolute() || path.file_name().is_none() {
                return Err(format!(
                    "invalid socket endpoint {s:?}: expected unix:///absolute/path/to/socket"
                ));
            }
            Ok(Endpoint::Unix(path.to_owned()))
        } else if let Some(addr) = s.strip_prefix("tcp://") {
            addr.parse().map(Endpoint::Tcp).map_err(|_| {
                format!(
                    "invalid socket endpoint {s:?}: expected tcp://IPV4:PORT or tcp://[IPV6]:PORT \
                     (an IP address, not a host name), e.g. tcp://127.0.0.1:7150"
                )
            })
        } else {
            Err(format!(
                "invalid socket endpoint {s:?}: expected unix:///absolute/path/to/socket \
                 or tcp://IPV4:PORT or tcp://[IPV6]:PORT"
            ))
        }
    }
}

impl fmt::Display for Endpoint {
    /// The URL form that [`Endpoint::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

/// How records are delimited on the stream (SPEC section 5); the config's
/// `framing` says `"lines"` or `"length"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub enum Framing {
    /// One JSON object per line: `json` then `\n`.
    #[default]
    #[serde(rename = "lines")]
    Lines,
    /// `{"length":N}\n` before each line, N counting the JSON and its
    /// trailing newline.
    #[serde(rename = "length")]
    LengthHeader,
}

impl Framing {
    /// Appends `json` framed this way to `out`.
    fn frame(self, json: &[u8], out: &mut Vec<u8>) {
        if self == Framing::LengthHeader {
            // Writing to a Vec cannot fail.
            let _ = writeln!(out, "{{\"length\":{}}}", json.len() + 1);
        }
        out.extend_from_slice(json);
        out.push(b'\n');
    }
}

/// How a [`SocketSink`] listens and treats its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketOptions {
    /// Where to listen.
    pub endpoint: Endpoint,
    /// How records are delimited; default [`Framing::Lines`].
    pub framing: Framing,
    /// The `agent_hello` record's JSON (no trailing newline), sent framed
    /// as the first record to every new client; empty: no hello.
    pub hello: Vec<u8>,
    /// Bytes a client may fall behind, beyond what the kernel socket
    /// buffer holds; default 4 MiB. While one is further behind, records
    /// wait in the sink's queue. The log of records the clients share
    /// holds about this much at most.
    pub client_buffer_bytes: usize,
    /// How long a client may stay more than `client_buffer_bytes` behind
    /// before it is disconnected; default 2 s.
    pub client_stall: Duration,
    /// [`Sink::poll`] says "not ready", so records wait in the queue,
    /// until this many clients have connected since the sink was opened;
    /// afterwards it says "ready" whenever a client is connected.
    /// Default 1.
    pub wait_for_clients: usize,
    /// Clients served at once: one more is sent an error record and
    /// closed. Default 64 (with `client_buffer_bytes`, what the clients
    /// can hold is bounded).
    pub max_clients: usize,
    /// Unix socket: permission bits set on the socket file (e.g. `0o660`);
    /// default `None`: as the umask leaves them.
    pub unix_mode: Option<u32>,
    /// Unix socket: owner (uid) given to the socket file; default `None`.
    pub unix_owner: Option<u32>,
    /// Unix socket: group (gid) given to the socket file; default `None`.
    pub unix_group: Option<u32>,
    /// A token every client must send as its first line before it is
    /// sent anything; default `None`: none asked.
    pub token: Option<String>,
}

impl SocketOptions {
    /// Default [`client_buffer_bytes`](SocketOptions::client_buffer_bytes): 4 MiB.
    pub const CLIENT_BUFFER_BYTES: usize = 4 << 20;
    /// Default [`wait_for_clients`](SocketOptions::wait_for_clients): 1.
    pub const WAIT_FOR_CLIENTS: usize = 1;
    /// Default [`max_clients`](SocketOptions::max_clients): 64.
    pub const MAX_CLIENTS: usize = 64;
    /// Default [`client_stall`](SocketOptions::client_stall): 2 s.
    pub const CLIENT_STALL: Duration = Duration::from_secs(2);

    /// Listens on `endpoint` and greets clients with `hello` (the
    /// `agent_hello` JSON); lines framing and the other defaults.
    pub fn new(endpoint: Endpoint, hello: Vec<u8>) -> Self {
        SocketOptions {
            endpoint,
            framing: Framing::Lines,
            hello,
            client_buffer_bytes: Self::CLIENT_BUFFER_BYTES,
            client_stall: Self::CLIENT_STALL,
            wait_for_clients: Self::WAIT_FOR_CLIENTS,
            max_clients: Self::MAX_CLIENTS,
            unix_mode: None,
            unix_owner: None,
            unix_group: None,
            token: None,
        }
    }
}

/// [`SocketSink::write`] pushes a client's bytes out once this many wait
/// (or it is over its limit); [`Sink::flush`] and [`Sink::poll`] push out
/// whatever waits. Saves a system call per record and client.
const WRITE_BATCH_BYTES: usize = 32 * 1024;
/// Framed records are appended to chunks of the log of about this size.
const CHUNK_BYTES: usize = 64 * 1024;
/// How long a new client has to send the token, when one is asked.
const TOKEN_WAIT: Duration = Duration::from_secs(5);
/// The longest token line read.
const MAX_TOKEN_LINE: usize = 1024;
/// Reads per client and poll, to discard what clients send.
const MAX_READS: usize = 16;
/// How long [`Sink::close`] waits for clients to take their bytes.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Sleep between attempts while closing.
const CLOSE_STEP: Duration = Duration::from_millis(2);

/// A stream socket server sink, Unix or TCP, with any number of clients.
///
/// Each new client first gets the `agent_hello` record, then every record
/// written while it is connected, framed per [`Framing`]. What clients
/// send is read and discarded (a read returning end-of-file means the
/// client left), after the token line when a
/// [`token`](SocketOptions::token) is asked. While a client is more than
/// [`client_buffer_bytes`](SocketOptions::client_buffer_bytes) behind,
/// and with no client connected, [`Sink::write`] answers
/// [`Delivery::Retry`] and records wait in the runtime's queue. A client
/// that stays that far behind for
/// [`client_stall`](SocketOptions::client_stall) is disconnected and
/// counted in [`Sink::disconnected`], and the others go on.
pub struct SocketSink {
    name: String,
    options: SocketOptions,
    /// The hello, framed.
    hello: Vec<u8>,
    listener: Option<Listener>,
    /// The Unix socket file we created, to remove when done.
    bound: Option<BoundFile>,
    clients: Vec<Client>,
    /// Every record written since the oldest client's position.
    log: Log,
    /// The oldest client's position at the last service.
    oldest: u64,
    next_id: u64,
    connected_since_open: usize,
    disconnected: u64,
    /// An accept error was logged and no client was accepted since.
    accept_failing: bool,
}

enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

/// A socket file this sink created, identified so that it never removes
/// a file someone else put at the same path.
struct BoundFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl BoundFile {
    fn remove(self, sink: &str) {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(e) = fs::remove_file(&self.path) {
                    tracing::warn!(sink, path = %self.path.display(), error = %e, "cannot remove socket file");
                }
            }
            _ => {}
        }
    }
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn shutdown(&self) {
        // The client may be gone already; nothing to do about it.
        let _ = match self {
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
        };
    }
}

/// The framed records written since the oldest client's position, kept
/// once for all clients: each client is a position in it.
#[derive(Default)]
struct Log {
    /// Chunks of framed records, each with the stream offset of its first
    /// byte, oldest first.
    chunks: VecDeque<(u64, Vec<u8>)>,
    /// The stream offset after the last byte.
    end: u64,
}

impl Log {
    fn append(&mut self, framing: Framing, json: &[u8]) {
        if !matches!(self.chunks.back(), Some((_, chunk)) if chunk.len() < CHUNK_BYTES) {
            self.chunks
                .push_back((self.end, Vec::with_capacity(CHUNK_BYTES)));
        }
        if let Some((_, chunk)) = self.chunks.back_mut() {
            let before = chunk.len();
            framing.frame(json, chunk);
            self.end += (chunk.len() - before) as u64;
        }
    }

    /// The bytes from stream offset `pos` to the end of its chunk (empty
    /// at the end of the log).
    fn bytes_from(&self, pos: u64) -> &[u8] {
        let after = self.chunks.partition_point(|(start, _)| *start <= pos);
        match after.checked_sub(1).and_then(|i| self.chunks.get(i)) {
            Some((start, chunk)) => chunk.get((pos - start) as usize..).unwrap_or_default(),
            None => &[],
        }
    }

    /// Forgets the bytes before stream offset `oldest`, which no client
    /// needs any more (keeping the last chunk's room for what follows).
    fn trim(&mut self, oldest: u64) {
        let end = self.end;
        while let Some((start, chunk)) = self.chunks.front() {
            if start + chunk.len() as u64 > oldest {
                break;
            }
            if self.chunks.len() > 1 {
                self.chunks.pop_front();
            } else if let Some((start, chunk)) = self.chunks.front_mut() {
                chunk.clear();
                *start = end;
                break;
            }
        }
    }
}

struct Client {
    id: u64,
    /// The peer address (TCP) or "unix".
    peer: String,
    stream: Stream,
    /// Until it sent the token line: what it sent of it so far, and when
    /// it must have sent it by.
    token: Option<(Vec<u8>, Instant)>,
    /// Sent before the log: the hello; `greeting[greeted..]` not yet.
    greeting: Vec<u8>,
    greeted: usize,
    /// Its position in the log: the stream offset of the next byte it is
    /// sent.
    pos: u64,
    /// When it was last within its budget.
    within_at: Instant,
}

/// Why a client was dropped.
enum Gone {
    /// It closed the connection.
    Closed,
    /// Reading or writing failed (reset, broken pipe).
    Failed(io::Error),
    /// It fell too far behind.
    TooSlow,
    /// It did not send the right token in time; sent this error.
    Unauthorized(&'static str),
}

impl Client {
    fn log_connected(&self, sink: &str, clients: usize) {
        tracing::info!(sink, client = self.id, peer = %self.peer, clients, "client connected");
    }

    /// It is sent records: it sent the token, or none was asked.
    fn streaming(&self) -> bool {
        self.token.is_none()
    }

    /// Bytes waiting for it.
    fn pending(&self, log: &Log) -> usize {
        if !self.streaming() {
            return 0;
        }
        self.greeting.len() - self.greeted + (log.end - self.pos) as usize
    }

    /// Writes what the kernel takes without waiting.
    fn send(&mut self, log: &Log) -> io::Result<()> {
        loop {
            let greeting = self.greeted < self.greeting.len();
            let bytes = if greeting {
                &self.greeting[self.greeted..]
            } else {
                log.bytes_from(self.pos)
            };
            if bytes.is_empty() {
                return Ok(());
            }
            match self.stream.write(bytes) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if greeting => self.greeted += n,
                Ok(n) => self.pos += n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads what the client sent: the token line while one is awaited
    /// (`hello` greets it once the line is `token`), then input that is
    /// discarded; `Some` if it is gone.
    fn read_input(&mut self, token: Option<&str>, hello: &[u8], log: &Log) -> Option<Gone> {
        let mut scratch = [0u8; 4096];
        for _ in 0..MAX_READS {
            let n = match self.stream.read(&mut scratch) {
                Ok(0) => return Some(Gone::Closed),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Some(Gone::Failed(e)),
            };
            let Some((line, _)) = &mut self.token else {
                continue;
            };
            let Some(newline) = scratch[..n].iter().position(|&b| b == b'\n') else {
                line.extend_from_slice(&scratch[..n]);
                if line.len() > MAX_TOKEN_LINE {
                    return Some(Gone::Unauthorized("wrong token"));
                }
                continue;
            };
            line.extend_from_slice(&scratch[..newline]);
            let sent = line.strip_suffix(b"\r").unwrap_or(line);
            if !token.is_some_and(|t| same_secret(sent, t.as_bytes())) {
                return Some(Gone::Unauthorized("wrong token"));
            }
            self.token = None;
            self.greeting = hello.to_vec();
            self.pos = log.end;
            self.within_at = Instant::now();
        }
        match &self.token {
            Some((_, by)) if Instant::now() >= *by => Some(Gone::Unauthorized(
                "no token: send the token as the first line",
            )),
            _ => None,
        }
    }
}

/// `a == b`, in a time that does not tell how much of them matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl SocketSink {
    /// A sink listening as `options` say, once opened.
    pub fn new(options: SocketOptions) -> Self {
        let mut hello = Vec::new();
        if !options.hello.is_empty() {
            options.framing.frame(&options.hello, &mut hello);
        }
        SocketSink {
            name: format!("socket:{}", options.endpoint),
            options,
            hello,
            listener: None,
            bound: None,
            clients: Vec::new(),
            log: Log::default(),
            oldest: 0,
            next_id: 0,
            connected_since_open: 0,
            disconnected: 0,
            accept_failing: false,
        }
    }

    /// The address the TCP listener is bound to (the actual port when the
    /// endpoint asked for port 0); `None` for Unix or when not open.
    fn local_addr(&self) -> Option<SocketAddr> {
        match &self.listener {
            Some(Listener::Tcp(l)) => l.local_addr().ok(),
            _ => None,
        }
    }

    /// Clients connected now.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.clients.len()
    }

    fn error(&self, context: impl Into<String>, source: io::Error) -> SinkError {
        SinkError::io(&self.name, context, source)
    }

    fn ready(&self) -> bool {
        self.listener.is_some()
            && self.connected_since_open >= self.options.wait_for_clients
            && self.clients.iter().any(Client::streaming)
    }

    /// Binds the Unix socket at `path`, replacing a stale socket file.
    fn bind_unix(&self, path: &Path) -> Result<(UnixListener, BoundFile), SinkError> {
        let endpoint = &self.options.endpoint;
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => {
                match UnixStream::connect(path) {
                    Ok(_) => {
                        return Err(self.error(
                            format!("cannot bind {endpoint}: in use by another process"),
                            io::ErrorKind::AddrInUse.into(),
                        ));
                    }
                    Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                        tracing::info!(sink = %self.name, path = %path.display(), "removing stale socket file");
                        match fs::remove_file(path) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => {
                                return Err(self.error(
                                    format!("cannot remove stale socket file {}", path.display()),
                                    e,
                                ));
                            }
                        }
                    }
                    // Removed meanwhile: bind below.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(self.error(
                        format!("cannot bind {endpoint}: cannot tell whether the socket file is in use"),
                        e,
                    ));
                    }
                }
            }
            Ok(_) => {
                return Err(self.error(
                    format!(
                        "cannot bind {endpoint}: the path exists and is not a socket (not removed)"
                    ),
                    io::ErrorKind::AlreadyExists.into(),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(self.error(
                    format!("cannot bind {endpoint}: cannot inspect the path"),
                    e,
                ));
            }
        }
        let o = &self.options;
        if let Err(e) = crate::dirs::make_parent(path, o.unix_owner.zip(o.unix_group)) {
            return Err(self.error(
                format!("cannot bind {endpoint}: cannot make its directory"),
                e,
            ));
        }
        // Bound in a private directory beside the path, given its owner
        // and mode there, then moved into place: it is never reachable with
        // the access the umask left it.
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let private = parent.join(format!(".flowstatd-bind-{}", std::process::id()));
        let _ = fs::remove_dir_all(&private);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&private)
            .map_err(|e| {
                self.error(
                    format!(
                        "cannot bind {endpoint}: cannot create {}",
                        private.display()
                    ),
                    e,
                )
            })?;
        let staged = private.join("socket");
        let bound = UnixListener::bind(&staged)
            .map_err(|e| self.error(format!("cannot bind {endpoint}"), e))
            .and_then(|listener| {
                // A socket we cannot give the configured access is not served.
                self.set_owner_and_mode(&staged)?;
                fs::rename(&staged, path).map_err(|e| {
                    self.error(
                        format!("cannot bind {endpoint}: cannot move the socket into place"),
                        e,
                    )
                })?;
                let meta = fs::symlink_metadata(path).map_err(|e| {
                    self.error(format!("cannot bind {endpoint}: socket file vanished"), e)
                })?;
                let bound = BoundFile {
                    path: path.to_owned(),
                    dev: meta.dev(),
                    ino: meta.ino(),
                };
                Ok((listener, bound))
            });
        let _ = fs::remove_dir_all(&private);
        bound
    }

    fn set_owner_and_mode(&self, path: &Path) -> Result<(), SinkError> {
        let endpoint = &self.options.endpoint;
        let o = &self.options;
        if o.unix_owner.is_some() || o.unix_group.is_some() {
            std::os::unix::fs::chown(path, o.unix_owner, o.unix_group).map_err(|e| {
                self.error(
                    format!(
                        "cannot change owner of {endpoint} to uid {:?} gid {:?}",
                        o.unix_owner, o.unix_group
                    ),
                    e,
                )
            })?;
        }
        if let Some(mode) = o.unix_mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| self.error(format!("cannot set mode {mode:o} on {endpoint}"), e))?;
        }
        Ok(())
    }

    /// Sends a client that is turned away an error record saying why; the
    /// caller then closes it.
    fn tell_error(&self, stream: &mut Stream, error: &str) {
        let json = format!(r#"{{"type":"error","error":"{error}"}}"#);
        let mut framed = Vec::new();
        self.options.framing.frame(json.as_bytes(), &mut framed);
        // Best effort: it fits the socket's buffer, and the client is
        // closed either way.
        let _ = stream.write(&framed);
    }

    /// Accepts every pending client.
    fn accept(&mut self) {
        loop {
            let accepted = match &self.listener {
                Some(Listener::Unix(l)) => l
                    .accept()
                    .map(|(s, _)| (Stream::Unix(s), "unix".to_owned())),
                Some(Listener::Tcp(l)) => l.accept().map(|(s, addr)| {
                    // Records are already batched; do not hold back the tail.
                    let _ = s.set_nodelay(true);
                    (Stream::Tcp(s), addr.to_string())
                }),
                None => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE, ENOBUFS, ECONNABORTED...: try again at the
                    // next poll; log once until an accept succeeds.
                    if !self.accept_failing {
                        tracing::warn!(sink = %self.name, error = %e, "cannot accept a client");
                        self.accept_failing = true;
                    }
                    return;
                }
            };
            self.accept_failing = false;
            let nonblocking = match &stream {
                Stream::Unix(s) => s.set_nonblocking(true),
                Stream::Tcp(s) => s.set_nonblocking(true),
            };
            if let Err(e) = nonblocking {
                tracing::warn!(sink = %self.name, peer, error = %e, "cannot make client socket non-blocking; dropping it");
                continue;
            }
            if self.clients.len() >= self.options.max_clients {
                let max = self.options.max_clients;
                let mut stream = stream;
                self.tell_error(&mut stream, &format!(
                    "too many clients: this socket sink serves at most {max} at once (its max_clients)"
                ));
                tracing::warn!(sink = %self.name, peer, max_clients = max, "client refused: too many clients");
                continue;
            }
            self.next_id += 1;
            let now = Instant::now();
            let mut client = Client {
                id: self.next_id,
                peer,
                stream,
                token: self
                    .options
                    .token
                    .is_some()
                    .then(|| (Vec::new(), now + TOKEN_WAIT)),
                greeting: Vec::new(),
                greeted: 0,
                pos: self.log.end,
                within_at: now,
            };
            if client.streaming() {
                client.greeting = self.hello.clone();
                self.connected_since_open += 1;
                client.log_connected(&self.name, self.clients.len() + 1);
            }
            self.clients.push(client);
        }
    }

    /// Pushes out the bytes of every client holding at least `batch`
    /// (all with 0), reading their input if `read`; drops the clients that
    /// left, failed, did not send the token or are too slow.
    fn service(&mut self, batch: usize, read: bool) {
        let (budget, stall) = (self.options.client_buffer_bytes, self.options.client_stall);
        let now = Instant::now();
        let mut i = 0;
        while i < self.clients.len() {
            let count = self.clients.len();
            let client = &mut self.clients[i];
            let waiting_token = !client.streaming();
            let mut gone = if read {
                client.read_input(self.options.token.as_deref(), &self.hello, &self.log)
            } else {
                None
            };
            if waiting_token && client.streaming() {
                self.connected_since_open += 1;
                client.log_connected(&self.name, count);
            }
            if gone.is_none() && client.streaming() {
                let pending = client.pending(&self.log);
                if pending > 0
                    && (pending >= batch || pending > budget)
                    && let Err(e) = client.send(&self.log)
                {
                    gone = Some(Gone::Failed(e));
                }
                if client.pending(&self.log) <= budget {
                    client.within_at = now;
                } else if now.saturating_duration_since(client.within_at) >= stall {
                    gone.get_or_insert(Gone::TooSlow);
                }
            }
            match gone {
                Some(why) => {
                    let client = self.clients.swap_remove(i);
                    self.drop_client(client, why);
                }
                None => i += 1,
            }
        }
        let streaming = self.clients.iter().filter(|c| c.streaming());
        self.oldest = streaming.map(|c| c.pos).min().unwrap_or(self.log.end);
        self.log.trim(self.oldest);
    }

    /// Some client is more than its budget behind.
    fn over_budget(&self) -> bool {
        (self.log.end - self.oldest) as usize > self.options.client_buffer_bytes
    }

    fn drop_client(&mut self, mut client: Client, why: Gone) {
        let (sink, id, left) = (&self.name, client.id, self.clients.len());
        let peer = &client.peer;
        match why {
            Gone::Closed => {
                tracing::info!(sink = %sink, client = id, peer = %peer, clients = left, "client disconnected");
            }
            Gone::Failed(e) => {
                tracing::info!(sink = %sink, client = id, peer = %peer, clients = left, error = %e, "client connection failed; disconnected");
            }
            Gone::TooSlow => {
                self.disconnected += 1;
                tracing::warn!(
                    sink = %sink,
                    client = id,
                    peer = %peer,
                    clients = left,
                    behind_bytes = client.pending(&self.log),
                    limit_bytes = self.options.client_buffer_bytes,
                    "client too slow: disconnected"
                );
            }
            Gone::Unauthorized(error) => {
                tracing::warn!(sink = %sink, client = id, peer = %peer, error, "client refused");
                self.tell_error(&mut client.stream, error);
            }
        }
        client.stream.shutdown();
    }

    /// Drops every client and the listener, removes our socket file.
    fn shut(&mut self) {
        for client in self.clients.drain(..) {
            client.stream.shutdown();
        }
        self.listener = None;
        if let Some(bound) = self.bound.take() {
            bound.remove(&self.name);
        }
        self.log = Log::default();
        self.oldest = 0;
        self.connected_since_open = 0;
    }
}

impl Sink for SocketSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<(), SinkError> {
        // Start afresh: our own listener would otherwise look like
        // another process serving the path.
        self.shut();
        let endpoint = &self.options.endpoint;
        let listener = match endpoint {
            Endpoint::Unix(path) => {
                let (listener, bound) = self.bind_unix(path)?;
                self.bound = Some(bound);
                Listener::Unix(listener)
            }
            Endpoint::Tcp(addr) => Listener::Tcp(
                TcpListener::bind(addr)
                    .map_err(|e| self.error(format!("cannot bind {endpoint}"), e))?,
            ),
        };
        let nonblocking = match &listener {
            Listener::Unix(l) => l.set_nonblocking(true),
            Listener::Tcp(l) => l.set_nonblocking(true),
        };
        self.listener = Some(listener);
        if let Err(e) = nonblocking {
            let error = self.error(
                format!("cannot make the {endpoint} listener non-blocking"),
                e,
            );
            self.shut();
            return Err(error);
        }
        match self.local_addr() {
            Some(addr) => {
                tracing::info!(sink = %self.name, address = %addr, "listening");
                crate::warn_if_exposed(&self.name, addr, self.options.token.is_some());
            }
            None => tracing::info!(sink = %self.name, "listening"),
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<bool, SinkError> {
        self.accept();
        self.service(0, true);
        Ok(self.ready())
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        if !self.ready() {
            return Ok(Delivery::Retry);
        }
        if self.over_budget() {
            self.service(0, false);
            if self.over_budget() {
                return Ok(Delivery::Retry);
            }
        }
        self.log.append(self.options.framing, &record.json);
        self.service(WRITE_BATCH_BYTES, false);
        Ok(Delivery::Sent)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.service(0, false);
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + CLOSE_WAIT;
        loop {
            self.service(0, false);
            if self.clients.iter().all(|c| c.pending(&self.log) == 0) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            std::thread::sleep(CLOSE_STEP.min(deadline - now));
        }
        for client in std::mem::take(&mut self.clients) {
            if client.pending(&self.log) > 0 {
                self.drop_client(client, Gone::TooSlow);
            } else {
                tracing::info!(sink = %self.name, client = client.id, peer = %client.peer, "closing client connection");
                client.stream.shutdown();
            }
        }
        self.shut();
        tracing::info!(sink = %self.name, "closed");
        Ok(())
    }

    fn disconnected(&self) -> u64 {
        self.disconnected
    }
}

impl Drop for SocketSink {
    fn drop(&mut self) {
        if let Some(bound) = self.bound.take() {
            bound.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowstat_core::RecordKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const HELLO: &[u8] = br#"{"type":"agent_hello","agent_version":"0.1.0"}"#;
    const TIMEOUT: Duration = Duration::from_secs(10);

    /// A fresh directory under the temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir()
                .join(format!("flowstat-socket-{}-{test}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn record(seq: usize) -> Record {
        Record {
            kind: RecordKind::Flow,
            json: format!(r#"{{"type":"flow","seq":{seq}}}"#).into_bytes(),
        }
    }

    fn unix_client(path: &Path) -> UnixStream {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    }

    fn tcp_client(addr: SocketAddr) -> TcpStream {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        s
    }

    /// Polls until `done` holds, failing after a while.
    fn poll_until(sink: &mut SocketSink, mut done: impl FnMut(&SocketSink, bool) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let ready = sink.poll().unwrap();
            if done(sink, ready) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "condition not reached while polling"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn lines(records: impl IntoIterator<Item = usize>) -> Vec<u8> {
        let mut out = HELLO.to_vec();
        out.push(b'\n');
        for seq in records {
            out.extend_from_slice(&record(seq).json);
            out.push(b'\n');
        }
        out
    }

    fn read_all(mut r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn endpoints_parse_and_display_as_urls() {
        for url in [
            "unix:///run/flowstatd/flows.sock",
            "tcp://127.0.0.1:7150",
            "tcp://[::1]:7150",
        ] {
            let e = Endpoint::parse(url).unwrap();
            assert_eq!(e.to_string(), url);
        }
        assert_eq!(
            Endpoint::parse("unix:///run/flowstatd/flows.sock").unwrap(),
            Endpoint::Unix(PathBuf::from("/run/flowstatd/flows.sock"))
        );
        assert_eq!(
            Endpoint::parse("tcp://[::1]:7150").unwrap(),
            Endpoint::Tcp("[::1]:7150".parse().unwrap())
        );
        for bad in [
            "unix://relative.sock",
            "unix://",
            "tcp://localhost:7150",
            "tcp://127.0.0.1",
            "udp://1.2.3.4:5",
            "/run/x.sock",
        ] {
            let err = Endpoint::parse(bad).unwrap_err();
            assert!(err.contains("expected"), "{bad}: {err}");
        }
        assert!(
            Endpoint::parse("udp://1.2.3.4:5")
                .unwrap_err()
                .contains("unix:///")
        );
        assert!(
            Endpoint::parse("tcp://localhost:7150")
                .unwrap_err()
                .contains("tcp://")
        );
    }

    #[test]
    fn write_is_retried_without_clients() {
        let dir = TempDir::new("retry");
        let mut sink = SocketSink::new(SocketOptions::new(
            Endpoint::Unix(dir.path("s.sock")),
            HELLO.to_vec(),
        ));
        assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Retry, "not open");
        sink.open().unwrap();
        assert!(!sink.poll().unwrap());
        assert_eq!(
            sink.write(&record(0)).unwrap(),
            Delivery::Retry,
            "no client"
        );
        sink.close().unwrap();
    }

    #[test]
    fn unix_clients_get_hello_then_every_record_in_order() {
        let dir = TempDir::new("unix-order");
        let path = dir.path("flows.sock");
        let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
        options.wait_for_clients = 2;
        let mut sink = SocketSink::new(options);
        assert_eq!(sink.name(), format!("socket:unix://{}", path.display()));
        sink.open().unwrap();
        let a = unix_client(&path);
        let b = unix_client(&path);
        poll_until(&mut sink, |_, ready| ready);
        for seq in 0..100 {
            assert_eq!(sink.write(&record(seq)).unwrap(), Delivery::Sent);
        }
        sink.flush().unwrap();
        // A late client gets the hello, then only what follows.
        let late = unix_client(&path);
        poll_until(&mut sink, |s, _| s.clients() == 3);
        for seq in 100..200 {
            assert_eq!(sink.write(&record(seq)).unwrap(), Delivery::Sent);
            if seq % 7 == 0 {
                sink.poll().unwrap();
            }
        }
        sink.close().unwrap();
        assert!(!path.exists(), "socket file removed on close");
        assert_eq!(read_all(a), lines(0..200));
        assert_eq!(read_all(b), lines(0..200));
        assert_eq!(read_all(late), lines(100..200));
        assert_eq!(sink.disconnected(), 0);
    }

    #[test]
    fn tcp_clients_get_hello_then_every_record_in_order() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let addr: SocketAddr = host.parse().unwrap();
            let mut sink = SocketSink::new(SocketOptions::new(Endpoint::Tcp(addr), HELLO.to_vec()));
            if let Err(e) = sink.open() {
                if addr.is_ipv6() {
                    eprintln!("skipping IPv6 loopback: {e}");
                    continue;
                }
                panic!("{e}");
            }
            let bound = sink.local_addr().unwrap();
            assert_ne!(bound.port(), 0);
            let a = tcp_client(bound);
            let b = tcp_client(bound);
            poll_until(&mut sink, |s, ready| ready && s.clients() == 2);
            for seq in 0..300 {
                assert_eq!(sink.write(&record(seq)).unwrap(), Delivery::Sent);
            }
            sink.close().unwrap();
            assert_eq!(read_all(a), lines(0..300), "{host}");
            assert_eq!(read_all(b), lines(0..300), "{host}");
        }
    }

    #[test]
    fn length_header_framing_is_exactly_spec_section_5() {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut options = SocketOptions::new(Endpoint::Tcp(addr), br#"{"h":1}"#.to_vec());
        options.framing = Framing::LengthHeader;
        let mut sink = SocketSink::new(options);
        sink.open().unwrap();
        let client = tcp_client(sink.local_addr().unwrap());
        poll_until(&mut sink, |_, ready| ready);
        for json in [&br#"{"a":1}"#[..], br#"{"type":"flow","x":"\u00e9"}"#] {
            let r = Record {
                kind: RecordKind::Flow,
                json: json.to_vec(),
            };
            assert_eq!(sink.write(&r).unwrap(), Delivery::Sent);
        }
        sink.close().unwrap();
        let expected = concat!(
            "{\"length\":8}\n{\"h\":1}\n",
            "{\"length\":8}\n{\"a\":1}\n",
            "{\"length\":29}\n{\"type\":\"flow\",\"x\":\"\\u00e9\"}\n",
        );
        assert_eq!(String::from_utf8(read_all(client)).unwrap(), expected);
    }

    /// Writes `r` as the runtime does: polls and tries again while the
    /// sink answers [`Delivery::Retry`]; says whether it had to.
    fn deliver(sink: &mut SocketSink, r: &Record) -> bool {
        let deadline = Instant::now() + TIMEOUT;
        let mut held = false;
        while sink.write(r).unwrap() == Delivery::Retry {
            held = true;
            assert!(
                Instant::now() < deadline,
                "the sink held a record back too long"
            );
            sink.poll().unwrap();
            std::thread::sleep(Duration::from_millis(1));
        }
        held
    }

    /// Bytes the shared log holds, allocated.
    fn log_capacity(sink: &SocketSink) -> usize {
        sink.log.chunks.iter().map(|(_, c)| c.capacity()).sum()
    }

    /// A client reading 4 KiB at a time, `pause` between reads, until the
    /// end of the stream; returns what it read.
    fn slow_reader(mut stream: UnixStream, pause: Duration) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf).unwrap() {
                    0 => return all,
                    n => all.extend_from_slice(&buf[..n]),
                }
                std::thread::sleep(pause);
            }
        })
    }

    fn padded(seq: usize) -> Record {
        let pad = "x".repeat(200);
        Record {
            kind: RecordKind::Flow,
            json: format!(r#"{{"type":"flow","seq":{seq},"pad":"{pad}"}}"#).into_bytes(),
        }
    }

    #[test]
    fn a_slow_reader_holds_records_back_and_survives_a_burst_far_beyond_its_budget() {
        let dir = TempDir::new("slow-reader");
        let path = dir.path("flows.sock");
        let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
        options.client_buffer_bytes = 64 * 1024;
        // Long enough that no scheduling hiccup counts as a stall.
        options.client_stall = Duration::from_secs(60);
        options.wait_for_clients = 2;
        let mut sink = SocketSink::new(options);
        sink.open().unwrap();
        let fast = slow_reader(unix_client(&path), Duration::ZERO);
        let slow = slow_reader(unix_client(&path), Duration::from_micros(200));
        poll_until(&mut sink, |s, ready| ready && s.clients() == 2);

        // 4.6 MB at once: 70 times the budget.
        let mut expected = lines([]);
        let (mut held, mut most) = (0, 0);
        for seq in 0..20_000 {
            let r = padded(seq);
            held += usize::from(deliver(&mut sink, &r));
            most = most.max(log_capacity(&sink));
            expected.extend_from_slice(&r.json);
            expected.push(b'\n');
        }
        assert!(held > 0, "the sink never held a record back");
        assert!(
            most <= 64 * 1024 + 2 * CHUNK_BYTES,
            "the log grew to {most} bytes"
        );
        sink.close().unwrap();
        assert_eq!(sink.disconnected(), 0);
        for (name, client) in [("fast", fast), ("slow", slow)] {
            let got = client.join().unwrap();
            assert!(
                got == expected,
                "the {name} client got {} of {} bytes",
                got.len(),
                expected.len()
            );
        }
    }

    #[test]
    fn a_client_that_stops_reading_is_cut_after_its_stall_and_the_others_go_on() {
        let dir = TempDir::new("stalled");
        let path = dir.path("flows.sock");
        let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
        options.client_buffer_bytes = 64 * 1024;
        options.client_stall = Duration::from_millis(100);
        options.wait_for_clients = 2;
        let mut sink = SocketSink::new(options);
        sink.open().unwrap();
        let stalled = unix_client(&path);
        let reader = slow_reader(unix_client(&path), Duration::ZERO);
        poll_until(&mut sink, |s, ready| ready && s.clients() == 2);

        let mut expected = lines([]);
        let mut held = 0;
        for seq in 0..20_000 {
            let r = padded(seq);
            held += usize::from(deliver(&mut sink, &r));
            expected.extend_from_slice(&r.json);
            expected.push(b'\n');
        }
        assert!(
            held > 0,
            "the sink never held a record back for the stalled client"
        );
        assert_eq!(sink.disconnected(), 1, "the stalled client");
        assert_eq!(sink.clients(), 1);
        sink.close().unwrap();
        assert_eq!(sink.disconnected(), 1);
        let got = reader.join().unwrap();
        assert!(
            got == expected,
            "the reader got {} of {} bytes",
            got.len(),
            expected.len()
        );
        // The stalled client got a prefix and then end-of-file.
        let partial = read_all(stalled);
        assert!(partial.starts_with(&lines([])));
        assert!(
            partial.len() < expected.len() / 2,
            "{} bytes",
            partial.len()
        );
        assert!(expected.starts_with(&partial));
    }

    #[test]
    fn a_token_is_asked_before_anything_is_sent() {
        let dir = TempDir::new("token");
        let path = dir.path("flows.sock");
        let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
        options.token = Some("s3cret".into());
        let mut sink = SocketSink::new(options);
        sink.open().unwrap();
        let mut silent = unix_client(&path);
        let mut wrong = unix_client(&path);
        wrong.write_all(b"s3crex\n").unwrap();
        poll_until(&mut sink, |s, _| s.clients() == 1);
        assert!(!sink.poll().unwrap(), "no client sent the token yet");
        assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Retry);
        // The token may come in pieces, with CRLF.
        let mut right = unix_client(&path);
        right.write_all(b"s3c").unwrap();
        sink.poll().unwrap();
        right.write_all(b"ret\r\nignored\n").unwrap();
        poll_until(&mut sink, |_, ready| ready);
        assert_eq!(sink.write(&record(1)).unwrap(), Delivery::Sent);
        // The silent one is refused once its time is up.
        silent.set_read_timeout(Some(TOKEN_WAIT + TIMEOUT)).unwrap();
        let silent = std::thread::spawn(move || {
            let mut text = String::new();
            silent.read_to_string(&mut text).map(|_| text)
        });
        while !silent.is_finished() {
            sink.poll().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        sink.close().unwrap();
        assert_eq!(read_all(right), lines([1]));
        assert_eq!(
            String::from_utf8(read_all(wrong)).unwrap(),
            "{\"type\":\"error\",\"error\":\"wrong token\"}\n"
        );
        let text = silent.join().unwrap().unwrap();
        assert!(
            text.starts_with(r#"{"type":"error","error":"no token"#),
            "{text}"
        );
    }

    #[test]
    fn a_stale_socket_file_is_replaced() {
        let dir = TempDir::new("stale");
        let path = dir.path("flows.sock");
        drop(UnixListener::bind(&path).unwrap());
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
        let mut sink = SocketSink::new(SocketOptions::new(
            Endpoint::Unix(path.clone()),
            HELLO.to_vec(),
        ));
        sink.open().unwrap();
        let client = unix_client(&path);
        poll_until(&mut sink, |_, ready| ready);
        sink.close().unwrap();
        assert_eq!(read_all(client), lines([]));
        assert!(!path.exists());
    }

    #[test]
    fn a_regular_file_at_the_path_is_refused_and_kept() {
        let dir = TempDir::new("regular");
        let path = dir.path("flows.sock");
        fs::write(&path, b"precious").unwrap();
        let mut sink = SocketSink::new(SocketOptions::new(
            Endpoint::Unix(path.clone()),
            HELLO.to_vec(),
        ));
        let err = sink.open().unwrap_err().to_string();
        assert!(
            err.contains("not a socket") && err.contains(&path.display().to_string()),
            "{err}"
        );
        drop(sink);
        assert_eq!(fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn a_socket_served_by_another_process_is_refused_and_kept() {
        let dir = TempDir::new("live");
        let path = dir.path("flows.sock");
        let other = UnixListener::bind(&path).unwrap();
        let mut sink = SocketSink::new(SocketOptions::new(
            Endpoint::Unix(path.clone()),
            HELLO.to_vec(),
        ));
        let err = sink.open().unwrap_err().to_string();
        assert!(err.contains("in use by another process"), "{err}");
        drop(sink);
        assert!(path.exists(), "the other server's socket file is kept");
        // And still works.
        let _c = UnixStream::connect(&path).unwrap();
        other.accept().unwrap();

        // Same with a live SocketSink.
        drop(other);
        let mut first = SocketSink::new(SocketOptions::new(
            Endpoint::Unix(path.clone()),
            HELLO.to_vec(),
        ));
        first.open().unwrap();
        let mut second = SocketSink::new(SocketOptions::new(
            Endpoint::Unix(path.clone()),
            HELLO.to_vec(),
        ));
        assert!(second.open().unwrap_err().to_string().contains("in use"));
        drop(second);
        assert!(path.exists());
        // Reopening itself is fine.
        first.open().unwrap();
        drop(first);
        assert!(
            !path.exists(),
            "removed when the sink that bound it is dropped"
        );
    }

    #[test]
    fn tcp_address_in_use_is_an_error_naming_the_endpoint() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let mut sink = SocketSink::new(SocketOptions::new(Endpoint::Tcp(addr), HELLO.to_vec()));
        let err = sink.open().unwrap_err().to_string();
        assert!(err.contains(&format!("cannot bind tcp://{addr}")), "{err}");
    }

    #[test]
    fn poll_waits_for_the_configured_number_of_clients() {
        let dir = TempDir::new("wait");
        let path = dir.path("flows.sock");
        let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
        options.wait_for_clients = 3;
        let mut sink = SocketSink::new(options);
        sink.open().unwrap();
        assert!(!sink.poll().unwrap());
        let a = unix_client(&path);
        let b = unix_client(&path);
        poll_until(&mut sink, |s, _| s.clients() == 2);
        assert!(!sink.poll().unwrap(), "2 of 3 clients");
        assert_eq!(sink.write(&record(0)).unwrap(), Delivery::Retry);
        // One leaves: still 2 connected since open, not ready.
        drop(a);
        poll_until(&mut sink, |s, _| s.clients() == 1);
        assert!(!sink.poll().unwrap());
        let c = unix_client(&path);
        poll_until(&mut sink, |s, _| s.clients() == 2);
        assert!(sink.poll().unwrap(), "3 connected since open");
        assert_eq!(sink.write(&record(1)).unwrap(), Delivery::Sent);
        // Afterwards: ready while at least one client is connected.
        drop(b);
        poll_until(&mut sink, |s, _| s.clients() == 1);
        assert!(sink.poll().unwrap());
        drop(c);
        poll_until(&mut sink, |s, _| s.clients() == 0);
        assert!(!sink.poll().unwrap());
        assert_eq!(sink.write(&record(2)).unwrap(), Delivery::Retry);
        // Reopening starts the count afresh.
        sink.open().unwrap();
        let _d = unix_client(&path);
        poll_until(&mut sink, |s, _| s.clients() == 1);
        assert!(!sink.poll().unwrap());
        sink.close().unwrap();
    }

    #[test]
    fn unix_mode_and_owner_are_applied() {
        let dir = TempDir::new("mode");
        let path = dir.path("flows.sock");
        let me = fs::metadata(&dir.0).unwrap();
        for mode in [0o640, 0o602] {
            let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
            options.unix_mode = Some(mode);
            options.unix_owner = Some(me.uid());
            options.unix_group = Some(me.gid());
            let mut sink = SocketSink::new(options);
            sink.open().unwrap();
            let meta = fs::symlink_metadata(&path).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, mode);
            assert_eq!((meta.uid(), meta.gid()), (me.uid(), me.gid()));
            sink.close().unwrap();
        }
    }

    #[test]
    fn a_client_beyond_max_clients_gets_an_error_record_and_is_closed() {
        let dir = TempDir::new("max-clients");
        let path = dir.path("flows.sock");
        let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
        options.max_clients = 2;
        let mut sink = SocketSink::new(options);
        sink.open().unwrap();
        let _a = unix_client(&path);
        let _b = unix_client(&path);
        poll_until(&mut sink, |s, _| s.clients() == 2);
        let mut refused = unix_client(&path);
        let mut text = String::new();
        // Accepted, sent its error, closed: read to the end.
        let reader = std::thread::spawn(move || refused.read_to_string(&mut text).map(|_| text));
        while !reader.is_finished() {
            sink.poll().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = reader.join().unwrap().unwrap();
        assert!(
            text.starts_with(r#"{"type":"error","error":"too many clients"#)
                && text.contains("at most 2")
                && text.ends_with("}\n"),
            "{text:?}"
        );
        assert_eq!(sink.clients(), 2, "the first two are still served");
        sink.close().unwrap();
    }

    #[test]
    fn the_unix_socket_is_never_seen_without_its_mode() {
        let dir = TempDir::new("mode-race");
        let path = dir.path("flows.sock");
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watcher = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let mut seen = std::collections::BTreeSet::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(meta) = fs::symlink_metadata(&path) {
                        seen.insert(meta.permissions().mode() & 0o7777);
                    }
                }
                seen
            })
        };
        for _ in 0..300 {
            let mut options = SocketOptions::new(Endpoint::Unix(path.clone()), HELLO.to_vec());
            options.unix_mode = Some(0o600);
            let mut sink = SocketSink::new(options);
            sink.open().unwrap();
            sink.close().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let seen = watcher.join().unwrap();
        assert_eq!(seen, [0o600].into(), "modes seen at {}", path.display());
    }
}
