//! flowstat-api: the agent's HTTP face, on a thread of its own (a small
//! tokio runtime that never touches the capture or worker path).
//!
//! REST after sFlow-RT's paths, so that its scripts port easily:
//!
//! | path | what |
//! | --- | --- |
//! | `GET /` | the dashboard (an HTML page; no token needed to load it) |
//! | `GET /version` | the agent's version (text) |
//! | `GET /agent/json`, `GET /interfaces/json` | the latest `agent_status`, `interface_stats` |
//! | `GET /flow/json`, `GET\|PUT\|DELETE /flow/{name}/json` | flow definitions |
//! | `GET /activeflows/{interface\|ALL}/{name}/json?maxFlows=N&minValue=V&filter=F=V,...` | a definition's top keys now, by rate |
//! | `GET /flows/top/json?maxFlows=N` | the largest flows of the latest interval |
//! | `GET /threshold/json`, `GET\|PUT\|DELETE /threshold/{name}/json` | thresholds |
//! | `GET /events/json?maxEvents=N&timeout=S&eventID=ID` | events newer than ID; waits up to S seconds for one |
//! | `POST /events/{id}/unlock` | lets a `lock = true` threshold fire again |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /stream?types=T,...` | records as they come, as Server-Sent Events; `Last-Event-ID` resumes |
//! | `GET /flows/json?flowID=ID&maxFlows=N&timeout=S` | `flow_purge` records after ID; waits up to S seconds for one |
//!
//! Errors are `{"error": "...", "field": "..."}` with a 4xx or 5xx status.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod metrics;
mod routes;
mod state;
mod stream;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::oneshot;

pub use metrics::flow_exporter_definitions;
pub use state::ApiState;
pub use stream::ApiSink;

/// `[api]`: where the HTTP face listens and who may use it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Serve the API (`run`; replay serves it only with `--api`).
    pub enabled: bool,
    /// Address and port (sFlow-RT's 8008 by default).
    pub listen: SocketAddr,
    /// A bearer token every request must carry (`Authorization: Bearer
    /// TOKEN`); empty for none.
    pub token: String,
    /// Listen beyond loopback without a token.
    pub allow_unauthenticated: bool,
    /// Requests served at once (long-polls included); more get 503.
    pub max_clients: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: true,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8008)),
            token: String::new(),
            allow_unauthenticated: false,
            max_clients: 64,
        }
    }
}

impl ApiConfig {
    /// What is wrong with the settings, by key.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.listen.ip().is_loopback() && self.token.is_empty() && !self.allow_unauthenticated {
            return Err((
                "api.listen",
                format!(
                    "{} is reachable from other hosts: set api.token, or api.allow_unauthenticated = true",
                    self.listen
                ),
            ));
        }
        if !(1..=4096).contains(&self.max_clients) {
            return Err(("api.max_clients", "must be between 1 and 4096".into()));
        }
        Ok(())
    }
}

/// The running server; stopped when dropped (every request cut), or by
/// [`finish`](ApiServer::finish).
pub struct ApiServer {
    addr: SocketAddr,
    state: ApiState,
    /// Stops taking connections, and ends each one once it is done.
    drain: Option<oneshot::Sender<()>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Binds `config.listen` (an error names the address) and serves
    /// `state` on a thread of its own.
    pub fn start(config: &ApiConfig, state: ApiState) -> std::io::Result<ApiServer> {
        let listener = TcpListener::bind(config.listen)
            .map_err(|e| std::io::Error::new(e.kind(), format!("API on {}: {e}", config.listen)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "the API listens on {addr}, beyond loopback ({})",
                if config.token.is_empty() {
                    "without authentication"
                } else {
                    "with a bearer token"
                }
            );
        }
        let app = routes::app(state.clone(), config);
        let (stop, stopped) = oneshot::channel::<()>();
        let (drain, drained) = oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("flowstat-api".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => return tracing::error!("API on {addr}: {e}"),
                    };
                    // Draining lets open requests finish; stopping cuts
                    // them at once.
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                        let _ = drained.await;
                    });
                    tokio::select! {
                        r = serve => {
                            if let Err(e) = r {
                                tracing::error!("API on {addr}: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(ApiServer {
            addr,
            state,
            drain: Some(drain),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops once every stream has sent the records published so far
    /// (the sinks are finished: no more come) and long-polls have
    /// answered, or after `within`, which cuts a client that has not read
    /// them: a stream ends, not cut, with the last record of a replay or
    /// of a stopped agent.
    pub fn finish(mut self, within: Duration) {
        self.state.close();
        if let Some(drain) = self.drain.take() {
            let _ = drain.send(());
        }
        let deadline = Instant::now() + within;
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
