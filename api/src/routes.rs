//! The API's routes and handlers.

use std::time::Duration;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
use flowstat_analytics::{DefinitionConfig, ThresholdConfig};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tower::ServiceBuilder;

use crate::{ApiConfig, ApiState, metrics, stream};

/// Request bodies larger than this are refused.
const MAX_BODY: usize = 64 * 1024;
/// The longest a long-poll waits.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// An error answer: `{"error": ..., "field": ...}`.
struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            field: None,
        }
    }

    fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.error });
        if let Some(f) = self.field {
            body["field"] = Value::String(f);
        }
        (self.status, Json(body)).into_response()
    }
}

type Answer = Result<Response, ApiError>;

/// A 400 answer naming the query field at fault.
pub(crate) fn bad_request(error: String, field: &str) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, error)
        .field(field)
        .into_response()
}

/// The API's router over `state`.
pub(crate) fn app(state: ApiState, config: &ApiConfig) -> Router {
    let token = (!config.token.is_empty()).then(|| format!("Bearer {}", config.token));
    let api = Router::new()
        .route("/version", get(version))
        .route("/agent/json", get(agent))
        .route("/interfaces/json", get(interfaces))
        .route("/flow/json", get(definitions))
        .route(
            "/flow/{name}/json",
            get(definition).put(define).delete(undefine),
        )
        .route("/activeflows/{interface}/{name}/json", get(active_flows))
        .route("/flows/top/json", get(top_flows))
        .route("/threshold/json", get(thresholds))
        .route(
            "/threshold/{name}/json",
            get(threshold).put(set_threshold).delete(remove_threshold),
        )
        .route("/events/json", get(events))
        .route("/events/{id}/unlock", post(unlock))
        .route("/metrics", get(prometheus))
        .route("/stream", get(stream::stream))
        .route("/flows/json", get(stream::flows))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such path") })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let token = token.clone();
            async move {
                let given = req.headers().get(header::AUTHORIZATION);
                match token {
                    Some(t) if given.and_then(|g| g.to_str().ok()) != Some(t.as_str()) => {
                        ApiError::new(StatusCode::UNAUTHORIZED, "a bearer token is needed")
                            .into_response()
                    }
                    _ => next.run(req).await,
                }
            }
        }));
    Router::new()
        // The page holds no data, so it loads without the token; its
        // requests carry one.
        .route("/", get(dashboard))
        .merge(api)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: BoxError| async {
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "too many clients")
                }))
                .load_shed()
                .concurrency_limit(config.max_clients),
        )
        .with_state(state)
}

/// The dashboard: one page (HTML, CSS and script inline, nothing fetched
/// from elsewhere) fed by the endpoints above.
async fn dashboard() -> Html<&'static str> {
    Html(DASHBOARD)
}

const DASHBOARD: &str = include_str!("dashboard.html");

async fn version() -> &'static str {
    flowstat_core::AGENT_VERSION
}

/// A record's JSON text as the answer.
fn raw_json(text: Option<String>) -> Answer {
    let text = text.ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no interval has ended yet")
    })?;
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

async fn agent(State(s): State<ApiState>) -> Answer {
    raw_json(s.latest().agent_status.clone())
}

async fn interfaces(State(s): State<ApiState>) -> Answer {
    raw_json(s.latest().interface_stats.clone())
}

async fn definitions(State(s): State<ApiState>) -> Json<Vec<DefinitionConfig>> {
    let spec = s.analytics().spec();
    Json(spec.definitions().map(|d| d.config().clone()).collect())
}

async fn definition(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    let spec = s.analytics().spec();
    let d = spec.definition(&name).ok_or_else(|| no_definition(&name))?;
    Ok(Json(d).into_response())
}

fn no_definition(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no flow definition {name:?}"),
    )
    .field("name")
}

/// A request body, or why it could not be read (too large, cut off).
type Body = Result<Bytes, BytesRejection>;

/// Reads a JSON body into `T`, its `name` taken from the path.
fn body<T: DeserializeOwned>(name: &str, bytes: Body) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let bad = |e: String| ApiError::new(StatusCode::BAD_REQUEST, e);
    let mut v: Value = serde_json::from_slice(&bytes).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(obj) = v.as_object_mut() else {
        return Err(bad("the body must be a JSON object".into()));
    };
    if obj.get("name").is_some_and(|n| n != name) {
        return Err(bad("the name differs from the path's".into()).field("name"));
    }
    obj.insert("name".into(), Value::String(name.into()));
    serde_path_to_error::deserialize(v).map_err(|e| {
        let field = e.path().to_string();
        bad(e.into_inner().to_string()).field(field)
    })
}

async fn define(State(s): State<ApiState>, Path(name): Path<String>, bytes: Body) -> Answer {
    let config: DefinitionConfig = body(&name, bytes)?;
    s.analytics()
        .define(config)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn undefine(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    match s.analytics().remove(&name) {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(no_definition(&name)),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Limits {
    max_flows: Option<usize>,
    min_value: Option<u64>,
    /// `field=value` pairs, comma-separated, all of which a key must have.
    filter: Option<String>,
}

/// The `field=value` pairs of a `filter`.
fn filter_pairs(filter: Option<&str>) -> Result<Vec<(&str, &str)>, ApiError> {
    filter
        .into_iter()
        .flat_map(|f| f.split(','))
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=').ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, format!("{p:?} is not field=value"))
                    .field("filter")
            })
        })
        .collect()
}

/// Whether `key` has every field of `filter` with its value (numbers
/// compared as written).
fn matches(key: &Value, filter: &[(&str, &str)]) -> bool {
    filter.iter().all(|(field, want)| match key.get(*field) {
        Some(Value::String(s)) => s == want,
        Some(v) => serde_json::from_str::<Value>(want).is_ok_and(|w| w == *v),
        None => false,
    })
}

async fn active_flows(
    State(s): State<ApiState>,
    Path((interface, name)): Path<(String, String)>,
    Query(q): Query<Limits>,
) -> Answer {
    let filter = filter_pairs(q.filter.as_deref())?;
    let latest = s.latest();
    let table = latest
        .snapshot
        .analytics
        .definitions
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| no_definition(&name))?;
    let mut rows = Vec::new();
    for row in &table.rows {
        let key: Value = serde_json::from_str(row.key.get()).unwrap_or(Value::Null);
        if interface != "ALL" {
            match key.get("interface") {
                Some(i) if *i == interface => {}
                Some(_) => continue,
                None => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("flow definition {name:?} has no interface key: ask for ALL"),
                    )
                    .field("interface"));
                }
            }
        }
        if row.rate < q.min_value.unwrap_or(0) || !matches(&key, &filter) {
            continue;
        }
        rows.push(json!({"key": key, "value": row.rate, "total": row.total}));
    }
    rows.truncate(q.max_flows.unwrap_or(usize::MAX));
    Ok(Json(rows).into_response())
}

async fn top_flows(State(s): State<ApiState>, Query(q): Query<Limits>) -> Answer {
    let latest = s.latest();
    let top = &latest.snapshot.analytics.top_flows;
    let n = q.max_flows.unwrap_or(top.len()).min(top.len());
    Ok(Json(&top[..n]).into_response())
}

async fn thresholds(State(s): State<ApiState>) -> Json<Vec<ThresholdConfig>> {
    let spec = s.analytics().spec();
    Json(spec.thresholds().cloned().collect())
}

async fn threshold(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    let spec = s.analytics().spec();
    let t = spec.threshold(&name).ok_or_else(|| no_threshold(&name))?;
    Ok(Json(t).into_response())
}

fn no_threshold(name: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no threshold {name:?}")).field("name")
}

async fn set_threshold(State(s): State<ApiState>, Path(name): Path<String>, bytes: Body) -> Answer {
    let config: ThresholdConfig = body(&name, bytes)?;
    s.analytics()
        .set_threshold(config)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e).field("metric"))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_threshold(State(s): State<ApiState>, Path(name): Path<String>) -> Answer {
    if s.analytics().remove_threshold(&name) {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(no_threshold(&name))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventQuery {
    #[serde(rename = "eventID")]
    event_id: Option<u64>,
    max_events: Option<usize>,
    timeout: Option<u64>,
}

/// Events newer than `eventID`; with none yet, waits up to `timeout`
/// seconds for one (a long-poll), then answers (maybe `[]`).
async fn events(State(s): State<ApiState>, Query(q): Query<EventQuery>) -> Answer {
    let after = q.event_id.unwrap_or(0);
    let most = q.max_events.unwrap_or(100);
    let mut newest = s.watch_events();
    let wait = Duration::from_secs(q.timeout.unwrap_or(0)).min(MAX_WAIT);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if *newest.borrow_and_update() > after || s.closed() {
            break;
        }
        match tokio::time::timeout_at(deadline, newest.changed()).await {
            Ok(Ok(())) => continue,
            _ => break,
        }
    }
    Ok(Json(s.events_after(after, most)).into_response())
}

async fn unlock(State(s): State<ApiState>, Path(id): Path<u64>) -> Answer {
    let threshold = s.threshold_of(id).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, format!("no event {id} is kept")).field("id")
    })?;
    s.analytics().acknowledge(&threshold);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn prometheus(State(s): State<ApiState>) -> Response {
    let text = metrics::render(&s.latest(), &s.analytics().spec());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use flowstat_core::{KindSet, RecordKind};
    use tower::ServiceExt;

    use super::*;

    async fn status(app: &Router, path: &str) -> (StatusCode, String) {
        let req = Request::get(path).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let kind = res.headers().get(header::CONTENT_TYPE).unwrap();
        (res.status(), kind.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn dashboard_loads_without_the_token_the_data_needs() {
        let config = ApiConfig {
            token: "secret".into(),
            ..ApiConfig::default()
        };
        let app = app(ApiState::new(Default::default()), &config);
        let (code, kind) = status(&app, "/").await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(kind, "text/html; charset=utf-8");
        for path in ["/agent/json", "/flow/json", "/no/such/path"] {
            assert_eq!(
                status(&app, path).await.0,
                StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
    }

    async fn logged_flows(app: &Router) -> serde_json::Value {
        let req = Request::get("/flows/json?flowID=0")
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Writes a record of `kind` to the API's sink.
    fn write(sink: &mut crate::ApiSink, kind: RecordKind, n: u32) {
        use flowstat_core::Sink;
        let json = format!(r#"{{"type":"{}","n":{n}}}"#, kind.as_str()).into_bytes();
        let record = std::sync::Arc::new(flowstat_core::Record { kind, json });
        sink.write_shared(&record).unwrap();
        sink.flush().unwrap();
    }

    #[tokio::test]
    async fn the_window_keeps_the_record_types_asked_for_from_the_first_request_on() {
        let state = ApiState::new(Default::default());
        let app = app(state.clone(), &ApiConfig::default());
        let mut sink = crate::ApiSink::new(state.clone());
        write(&mut sink, RecordKind::FlowPurge, 1);
        // Nobody asked for flow_purge yet: nothing was kept.
        assert_eq!(logged_flows(&app).await, serde_json::json!([]));
        write(&mut sink, RecordKind::AgentStatus, 2);
        write(&mut sink, RecordKind::FlowPurge, 3);
        // Numbered among the records kept: agent_status was not.
        let logged = logged_flows(&app).await;
        assert_eq!(
            logged,
            serde_json::json!([{"flowID": 1, "record": {"type": "flow_purge", "n": 3}}])
        );
        // Kept before any request: every type from then on.
        state.keep(KindSet::ALL);
        write(&mut sink, RecordKind::AgentStatus, 4);
        write(&mut sink, RecordKind::FlowPurge, 5);
        let logged = logged_flows(&app).await;
        assert_eq!(
            logged[1],
            serde_json::json!({"flowID": 3, "record": {"type": "flow_purge", "n": 5}})
        );
    }

    #[test]
    fn dashboard_fetches_nothing_from_elsewhere() {
        assert!(!DASHBOARD.contains("://"));
        assert!(!DASHBOARD.contains("innerHTML"));
    }
}
