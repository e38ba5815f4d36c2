//! The record stream as the API serves it: a sink that keeps the newest
//! records in a bounded window, numbered, for `GET /stream` (Server-Sent
//! Events, resumed with `Last-Event-ID` from within the window) and
//! `GET /flows/json` (a long-poll of `flow_purge` records, sFlow-RT's
//! logged flows). The window keeps only the record types asked for: those
//! of every request so far, from its arrival on (`/flows/json` asks for
//! `flow_purge`), and those of [`ApiState::keep`](crate::ApiState::keep).
//! Holding 16 MiB of records nobody reads cost a sixth of a replay's time.
//! Each batch of records is framed as Server-Sent Events once, by the
//! first stream that sends it, into one buffer that every stream sends
//! slices of: framed for each client, ten streams of `flow_purge` spent
//! more on copying records than the kernel did on sending them. The sink
//! never waits: the window drops its oldest records, and a client that
//! falls out of it is cut and counted. When nothing more comes (the agent
//! stops), each stream ends once it has sent every record.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use flowstat_core::{Delivery, GrowingKindSet, KindSet, Record, RecordKind, Sink, SinkError};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::ApiState;

/// Records the window holds at most.
const WINDOW_RECORDS: usize = 65_536;
/// Bytes the window's records hold at most (their buffers' sizes).
const WINDOW_BYTES: usize = 16 << 20;
/// The longest a `/flows/json` long-poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The newest records, numbered from 1.
pub(crate) struct Window {
    records: Mutex<Kept>,
    /// The record types kept.
    kinds: GrowingKindSet,
    /// The newest record's number: streams wait for it to change.
    newest: watch::Sender<u64>,
    /// Stream clients cut for falling out of the window.
    cut: AtomicU64,
}

/// What [`Window::after`] found.
struct Found {
    /// Some records after the one asked for have left the window.
    gone: bool,
    /// The number of the last record looked at.
    upto: u64,
    /// The records of the kinds asked for.
    records: Vec<Entry>,
}

#[derive(Default)]
struct Kept {
    records: VecDeque<Entry>,
    /// The records' JSON buffers' sizes; a batch that was streamed holds
    /// its events beside them, uncounted (each event is its record's JSON
    /// and a few dozen bytes).
    bytes: usize,
}

/// A record in the window: its number, and its place in its batch.
#[derive(Clone)]
struct Entry {
    seq: u64,
    batch: Arc<Batch>,
    index: usize,
}

impl Entry {
    fn record(&self) -> &Record {
        &self.batch.records[self.index]
    }
}

/// Records added to the window together, and their events (`id`, `event`
/// and `data` lines), framed by the first stream that sends any of them.
struct Batch {
    /// The first record's number.
    first: u64,
    records: Vec<Arc<Record>>,
    /// The events one after another, and where each one ends.
    events: OnceLock<(Bytes, Vec<usize>)>,
}

impl Batch {
    /// The events, framed if they are not yet, and where each one ends.
    fn events(&self) -> &(Bytes, Vec<usize>) {
        self.events.get_or_init(|| {
            let size = self.records.iter().map(|r| r.json.len() + 64).sum();
            let mut buf = Vec::with_capacity(size);
            let mut ends = Vec::with_capacity(self.records.len());
            for (seq, record) in (self.first..).zip(&self.records) {
                let _ = write!(buf, "id: {seq}\nevent: {}\ndata: ", record.kind.as_str());
                buf.extend_from_slice(&record.json);
                buf.extend_from_slice(b"\n\n");
                ends.push(buf.len());
            }
            (Bytes::from(buf), ends)
        })
    }

    /// The events of records `first..=last`, one slice of the events.
    fn slice(&self, first: usize, last: usize) -> Bytes {
        let (events, ends) = self.events();
        let start = first.checked_sub(1).map_or(0, |i| ends[i]);
        events.slice(start..ends[last])
    }
}

impl Window {
    pub(crate) fn new() -> Window {
        Window {
            records: Mutex::default(),
            kinds: GrowingKindSet::default(),
            newest: watch::Sender::new(0),
            cut: AtomicU64::new(0),
        }
    }

    /// Wakes every stream and long-poll that waits for a record.
    pub(crate) fn wake(&self) {
        self.newest.send_modify(|_| {});
    }

    /// Keeps the records of `kinds` from now on.
    pub(crate) fn keep(&self, kinds: KindSet) {
        self.kinds.add(kinds);
    }

    /// Adds records (taking them from `records`), numbering them on.
    fn push(&self, records: &mut Vec<Arc<Record>>) {
        let mut kept = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        // Numbered on from the newest number given, even if the window
        // has emptied since (one record over its bytes).
        let before = self.newest();
        let batch = Arc::new(Batch {
            first: before + 1,
            records: std::mem::take(records),
            events: OnceLock::new(),
        });
        let mut seq = before;
        for (index, record) in batch.records.iter().enumerate() {
            seq += 1;
            // What the record holds on to, not just its text.
            kept.bytes += record.json.capacity();
            let batch = Arc::clone(&batch);
            kept.records.push_back(Entry { seq, batch, index });
        }
        while kept.records.len() > WINDOW_RECORDS || kept.bytes > WINDOW_BYTES {
            if let Some(old) = kept.records.pop_front() {
                kept.bytes -= old.record().json.capacity();
            }
        }
        // Sent while the lock is held, so that the next push numbers on
        // from it.
        if seq > before {
            self.newest.send_replace(seq);
        }
        drop(kept);
    }

    /// Records after number `after` of the kinds in `kinds`, at most
    /// `most`.
    fn after(&self, after: u64, kinds: KindSet, most: usize) -> Found {
        let kept = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let mut found = Found {
            gone: kept.records.front().is_some_and(|f| f.seq > after + 1),
            upto: after,
            records: Vec::new(),
        };
        let start = kept.records.partition_point(|f| f.seq <= after);
        for record in kept.records.range(start..) {
            if found.records.len() == most {
                break;
            }
            found.upto = record.seq;
            if kinds.contains(record.record().kind) {
                found.records.push(record.clone());
            }
        }
        found
    }

    fn newest(&self) -> u64 {
        *self.newest.borrow()
    }
}

/// Records the sink gathers before it adds them to the window.
const SINK_BATCH: usize = 1024;

/// The sink that feeds the window (`api` in `agent_status`); it adds
/// records in batches, whenever its queue runs empty.
pub struct ApiSink {
    state: ApiState,
    pending: Vec<Arc<Record>>,
}

impl ApiSink {
    /// A sink feeding `state`'s stream.
    pub fn new(state: ApiState) -> ApiSink {
        ApiSink {
            state,
            pending: Vec::with_capacity(SINK_BATCH),
        }
    }
}

impl Sink for ApiSink {
    fn name(&self) -> &str {
        "api"
    }

    fn open(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn write(&mut self, record: &Record) -> Result<Delivery, SinkError> {
        self.write_shared(&Arc::new(record.clone()))
    }

    /// Keeps the runtime's shared record, if its type was asked for: no
    /// copy. (One not kept is freed as soon as the other sinks are done.)
    fn write_shared(&mut self, record: &Arc<Record>) -> Result<Delivery, SinkError> {
        if !self.state.window().kinds.get().contains(record.kind) {
            return Ok(Delivery::Sent);
        }
        self.pending.push(Arc::clone(record));
        if self.pending.len() >= SINK_BATCH {
            self.flush()?;
        }
        Ok(Delivery::Sent)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if !self.pending.is_empty() {
            self.state.window().push(&mut self.pending);
        }
        Ok(())
    }

    fn disconnected(&self) -> u64 {
        self.state.window().cut.load(Ordering::Relaxed)
    }
}

#[derive(Deserialize)]
pub(crate) struct StreamQuery {
    types: Option<String>,
}

/// The kinds a comma-separated `types` names (all when absent).
fn kinds(types: Option<&str>) -> Result<KindSet, String> {
    let Some(types) = types else {
        return Ok(KindSet::ALL);
    };
    let mut kinds = Vec::new();
    for t in types.split(',').filter(|t| !t.is_empty()) {
        kinds.push(RecordKind::parse(t).ok_or_else(|| format!("unknown record type {t:?}"))?);
    }
    Ok(KindSet::of(&kinds))
}

/// `GET /stream?types=...`: every record as it comes, as Server-Sent
/// Events (`id`, `event: <type>`, `data: <record>`); with `Last-Event-ID`,
/// from after that record, if the window still holds what came after it.
pub(crate) async fn stream(
    State(s): State<ApiState>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    let kinds = match kinds(q.types.as_deref()) {
        Ok(k) => k,
        Err(e) => return crate::routes::bad_request(e, "types"),
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    s.window().keep(kinds);
    let cursor = resume.unwrap_or_else(|| s.window().newest());
    let newest = s.window().newest.subscribe();
    let frames = futures_util::stream::unfold(
        (s, newest, cursor, Instant::now()),
        move |(s, mut newest, mut cursor, mut sent)| async move {
            loop {
                let found = s.window().after(cursor, kinds, 256);
                if found.gone {
                    // Fell out of the window: cut, as a slow socket client is.
                    s.window().cut.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                cursor = found.upto;
                if !found.records.is_empty() {
                    sent = Instant::now();
                    let frames = sse_frames(&found.records);
                    return Some((frames, (s, newest, cursor, sent)));
                }
                newest.borrow_and_update();
                if cursor >= s.window().newest() {
                    if s.closed() {
                        // Every record sent, and no more to come.
                        return None;
                    }
                    match tokio::time::timeout(KEEP_ALIVE, newest.changed()).await {
                        // Caught up: what comes within a gap of the last
                        // send goes out together.
                        Ok(Ok(())) => tokio::time::sleep_until(sent + SEND_GAP).await,
                        Ok(Err(_)) => return None,
                        // A comment, so that proxies and clients see the
                        // stream alive.
                        Err(_) => {
                            let comment = Bytes::from_static(b":\n\n");
                            return Some((vec![comment], (s, newest, cursor, sent)));
                        }
                    }
                }
            }
        },
    );
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames.flat_map(|frames| {
            futures_util::stream::iter(frames.into_iter().map(Ok::<_, Infallible>))
        })),
    )
        .into_response()
}

/// An idle stream sends a comment this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A stream that has caught up sends at most once in this time (one
/// behind sends as fast as it can): in a fast replay intervals end
/// thousands of times a second, and each send is a wake-up and a write.
const SEND_GAP: Duration = Duration::from_millis(20);

/// The events of `records`, as slices of the buffers they were framed
/// into: one slice for each run of records that follow one another in one
/// buffer.
fn sse_frames(records: &[Entry]) -> Vec<Bytes> {
    let mut frames = Vec::new();
    // The batch, first and last index of a run.
    let mut run: Option<(&Arc<Batch>, usize, usize)> = None;
    for r in records {
        match &mut run {
            Some((batch, _, last)) if Arc::ptr_eq(batch, &r.batch) && *last + 1 == r.index => {
                *last = r.index;
            }
            _ => {
                let done = run.replace((&r.batch, r.index, r.index));
                frames.extend(done.map(|(batch, first, last)| batch.slice(first, last)));
            }
        }
    }
    frames.extend(run.map(|(batch, first, last)| batch.slice(first, last)));
    frames
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FlowsQuery {
    #[serde(rename = "flowID")]
    flow_id: Option<u64>,
    max_flows: Option<usize>,
    timeout: Option<u64>,
}

/// `GET /flows/json?flowID=ID&maxFlows=N&timeout=S`: the `flow_purge`
/// records after number ID, `[{"flowID": n, "record": {...}}]`; with none
/// yet, waits up to S seconds for one.
pub(crate) async fn flows(State(s): State<ApiState>, Query(q): Query<FlowsQuery>) -> Response {
    let after = q.flow_id.unwrap_or(0);
    let most = q.max_flows.unwrap_or(100);
    let purges = KindSet::of(&[RecordKind::FlowPurge]);
    s.window().keep(purges);
    let mut newest = s.window().newest.subscribe();
    let wait = Duration::from_secs(q.timeout.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    let mut cursor = after;
    let found = loop {
        newest.borrow_and_update();
        let found = s.window().after(cursor, purges, most);
        cursor = found.upto;
        if !found.records.is_empty() {
            break found.records;
        }
        if cursor < s.window().newest() {
            continue;
        }
        if s.closed() {
            break Vec::new();
        }
        match tokio::time::timeout_at(deadline, newest.changed()).await {
            Ok(Ok(())) => continue,
            _ => break Vec::new(),
        }
    };
    let answer: Vec<serde_json::Value> = found
        .into_iter()
        .map(|f| {
            let json = String::from_utf8_lossy(&f.record().json).into_owned();
            let record = RawValue::from_string(json).ok();
            serde_json::json!({ "flowID": f.seq, "record": record })
        })
        .collect();
    Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_out_as_one_data_line_each_in_slices_of_their_batch() {
        let record = |kind: RecordKind, json: &str| {
            Arc::new(Record {
                kind,
                json: json.as_bytes().to_vec(),
            })
        };
        let window = Window::new();
        window.push(&mut vec![
            record(RecordKind::Event, r#"{"type":"event"}"#),
            record(
                RecordKind::AgentStatus,
                r#"{"type":"agent_status","a":"b"}"#,
            ),
        ]);
        window.push(&mut vec![record(
            RecordKind::Event,
            r#"{"type":"event","n":3}"#,
        )]);
        let text = |frames: Vec<Bytes>| (frames.len(), frames.concat());
        // Records 1 and 2 are one slice of their batch, 3 another.
        let all = window.after(0, KindSet::ALL, 10);
        assert_eq!(
            text(sse_frames(&all.records)),
            (
                2,
                b"id: 1\nevent: event\ndata: {\"type\":\"event\"}\n\n\
                  id: 2\nevent: agent_status\ndata: {\"type\":\"agent_status\",\"a\":\"b\"}\n\n\
                  id: 3\nevent: event\ndata: {\"type\":\"event\",\"n\":3}\n\n"
                    .to_vec()
            )
        );
        // Without record 2, records 1 and 3 are a slice each.
        let events = window.after(0, KindSet::of(&[RecordKind::Event]), 10);
        assert_eq!(
            text(sse_frames(&events.records)),
            (
                2,
                b"id: 1\nevent: event\ndata: {\"type\":\"event\"}\n\n\
                  id: 3\nevent: event\ndata: {\"type\":\"event\",\"n\":3}\n\n"
                    .to_vec()
            )
        );
        assert_eq!(
            all.records[1].record().json,
            br#"{"type":"agent_status","a":"b"}"#
        );
    }

    /// Once the state is closed (the sinks are finished: nothing more
    /// comes), a stream sends what it has not sent yet and ends: its
    /// client gets every record, then the end of the response, not a cut.
    #[tokio::test]
    async fn closing_ends_each_stream_after_its_last_record() {
        let state = ApiState::new(Default::default());
        let query = Query(StreamQuery { types: None });
        let response = stream(State(state.clone()), query, HeaderMap::new()).await;
        let mut records = (1..=2)
            .map(|n| {
                let json = format!(r#"{{"n":{n}}}"#).into_bytes();
                Arc::new(Record {
                    kind: RecordKind::FlowPurge,
                    json,
                })
            })
            .collect();
        state.window().push(&mut records);
        state.close();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX);
        let body = tokio::time::timeout(Duration::from_secs(60), body)
            .await
            .expect("the stream never ended")
            .unwrap();
        assert_eq!(
            body,
            b"id: 1\nevent: flow_purge\ndata: {\"n\":1}\n\n\
              id: 2\nevent: flow_purge\ndata: {\"n\":2}\n\n"
                .as_slice()
        );
    }
}
