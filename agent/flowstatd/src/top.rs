//! `flowstatd top`: a live terminal view of an agent through its HTTP API
//! (`flowstat-api`): the largest flows or applications by rate, the
//! interfaces' rates and the latest events, refreshed every few seconds.
//!
//! A background thread asks the API (blocking `ureq` calls with a short
//! timeout) and hands each [`Data`] to the UI thread, which only draws and
//! reads keys, so a slow or absent agent never freezes the screen: its
//! error shows in the status line above the last data received. Every view
//! is a [`Table`] of cells that carry their sort key, so drawing, sorting
//! and `--once` text are one code path for the four views.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row};
use serde_json::{Value, json};

/// The flow definition the applications view reads; created when missing.
pub const APPS_DEFINITION: &str = "top-apps";
/// Rows asked of the API per view.
const MAX_ROWS: usize = 100;
/// Events kept for the events view.
const MAX_EVENTS: usize = 200;
/// The longest one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// What `flowstatd top` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum View {
    /// The largest flows of the latest interval.
    Flows,
    /// The applications (flow definition `top-apps`) by rate.
    Apps,
    /// Each capture interface's rates.
    Interfaces,
    /// The latest threshold events, newest first.
    Events,
}

impl View {
    const ALL: [View; 4] = [View::Flows, View::Apps, View::Interfaces, View::Events];

    fn title(self) -> &'static str {
        match self {
            View::Flows => "flows",
            View::Apps => "applications",
            View::Interfaces => "interfaces",
            View::Events => "events",
        }
    }

    fn columns(self) -> &'static [Column] {
        match self {
            View::Flows => FLOW_COLUMNS,
            View::Apps => APP_COLUMNS,
            View::Interfaces => INTERFACE_COLUMNS,
            View::Events => EVENT_COLUMNS,
        }
    }

    fn next(self) -> View {
        View::ALL[(self as usize + 1) % View::ALL.len()]
    }
}

/// Options of `flowstatd top`.
#[derive(Clone, Debug)]
pub struct TopOptions {
    /// The API's base URL (`http://127.0.0.1:8008`; the scheme may be left out).
    pub url: String,
    /// The bearer token, when the agent has one.
    pub token: Option<String>,
    /// Time between refreshes.
    pub interval: Duration,
    /// The view shown first.
    pub view: View,
}

/// The agent's HTTP API.
struct Api {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
}

impl Api {
    fn new(opts: &TopOptions) -> Api {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(CALL_TIMEOUT))
            .http_status_as_error(false)
            .build();
        Api {
            agent: ureq::Agent::new_with_config(config),
            base: base_url(&opts.url),
            auth: opts.token.as_ref().map(|t| format!("Bearer {t}")),
        }
    }

    /// GETs `path` (or PUTs `body` there) and reads the JSON answer; any
    /// status but 2xx is a failure, with the API's own message.
    fn call(&self, path: &str, body: Option<&Value>) -> Result<Value, Failed> {
        let url = format!("{}{path}", self.base);
        let failed = |status, why: String| Failed {
            status,
            why: format!("{path}: {why}"),
        };
        let answer = match body {
            None => {
                let req = self.agent.get(&url);
                match &self.auth {
                    Some(a) => req.header("Authorization", a).call(),
                    None => req.call(),
                }
            }
            Some(body) => {
                let req = self.agent.put(&url);
                match &self.auth {
                    Some(a) => req.header("Authorization", a).send_json(body),
                    None => req.send_json(body),
                }
            }
        };
        let mut answer = answer.map_err(|e| failed(None, e.to_string()))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .read_to_string()
            .map_err(|e| failed(Some(status), e.to_string()))?;
        let value = serde_json::from_str(&text);
        if !(200..300).contains(&status) {
            let why = match &value {
                Ok(Value::Object(o)) => text_of(&o["error"]),
                _ => text.trim().to_owned(),
            };
            let hint = if status == 401 {
                " (give --token or FLOWSTAT_API_TOKEN)"
            } else {
                ""
            };
            return Err(failed(Some(status), format!("{status} {why}{hint}")));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        value.map_err(|e| failed(Some(status), format!("not JSON: {e}")))
    }

    fn get(&self, path: &str) -> Result<Value, Failed> {
        self.call(path, None)
    }
}

/// A call that failed: the HTTP status when the agent answered, and why.
#[derive(Debug)]
struct Failed {
    status: Option<u16>,
    why: String,
}

impl From<Failed> for String {
    fn from(f: Failed) -> String {
        f.why
    }
}

/// `url` with a scheme (`http://` when it has none) and no trailing `/`.
fn base_url(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.contains("://") {
        url.to_owned()
    } else {
        format!("http://{url}")
    }
}

/// One update of every view, and what went wrong getting it.
#[derive(Clone, Debug, Default)]
struct Data {
    flows: Vec<Value>,
    apps: Vec<Value>,
    /// Each interface's record, by name.
    interfaces: Vec<(String, Value)>,
    /// Seconds per interval, to turn interface counters into rates.
    interval_secs: u64,
    /// The latest events, oldest first.
    events: VecDeque<Value>,
    /// Why the applications view may be empty.
    apps_note: Option<String>,
    error: Option<String>,
}

/// Asks the API for every view; keeps what it had when a call fails.
struct Fetcher {
    api: Api,
    data: Data,
    apps_defined: bool,
}

impl Fetcher {
    fn fetch(&mut self) -> &Data {
        self.data.error = self.try_fetch().err();
        &self.data
    }

    fn try_fetch(&mut self) -> Result<(), String> {
        let d = &mut self.data;
        d.flows = array(
            self.api
                .get(&format!("/flows/top/json?maxFlows={MAX_ROWS}"))?,
        );
        let status = self.api.get("/agent/json")?;
        d.interval_secs = status["update_interval"].as_u64().unwrap_or(0);
        let interfaces = self.api.get("/interfaces/json")?;
        d.interfaces = interfaces
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| *k != "type")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let after = d.events.back().and_then(|e| e["event_id"].as_u64());
        let events = self.api.get(&format!(
            "/events/json?eventID={}&maxEvents={MAX_EVENTS}",
            after.unwrap_or(0)
        ))?;
        d.events.extend(array(events));
        let excess = d.events.len().saturating_sub(MAX_EVENTS);
        d.events.drain(..excess);
        if !self.apps_defined {
            self.define_apps()?;
        }
        self.data.apps = array(self.api.get(&format!(
            "/activeflows/ALL/{APPS_DEFINITION}/json?maxFlows={MAX_ROWS}"
        ))?);
        Ok(())
    }

    /// Creates the applications definition unless the agent has it.
    fn define_apps(&mut self) -> Result<(), String> {
        let path = format!("/flow/{APPS_DEFINITION}/json");
        match self.api.get(&path) {
            Ok(_) => {}
            Err(e) if e.status == Some(404) => {
                let body = json!({"keys": ["application"], "value": "bytes", "n": 20});
                self.api.call(&path, Some(&body))?;
                self.data.apps_note = Some(format!(
                    "defined flow definition {APPS_DEFINITION}: applications count from the next interval"
                ));
            }
            Err(e) => return Err(e.into()),
        }
        self.apps_defined = true;
        Ok(())
    }
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        _ => Vec::new(),
    }
}

/// A cell: its text and what it sorts by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Sort {
    /// Largest first.
    Num(u64),
    /// Alphabetical.
    Text(String),
}

#[derive(Clone, Debug)]
struct Column {
    title: &'static str,
    /// Fixed width; 0 for a column that takes a share of what is left.
    width: u16,
    right: bool,
}

const fn col(title: &'static str, width: u16, right: bool) -> Column {
    Column {
        title,
        width,
        right,
    }
}

/// A view's rows, each cell with its text and sort key.
struct Table {
    columns: &'static [Column],
    rows: Vec<Vec<(String, Sort)>>,
}

impl Table {
    /// Sorts by column `by` (largest numbers first, text A to Z).
    fn sort(&mut self, by: usize) {
        self.rows.sort_by(|a, b| match (&a[by].1, &b[by].1) {
            (Sort::Num(x), Sort::Num(y)) => y.cmp(x),
            (x, y) => x.cmp(y),
        });
    }

    /// Each column's width in `total` cells, one space between columns:
    /// the flexible ones share what the fixed ones leave.
    fn widths(&self, total: u16) -> Vec<u16> {
        let n = self.columns.len() as u16;
        let fixed: u16 = self.columns.iter().map(|c| c.width).sum();
        let flex = self.columns.iter().filter(|c| c.width == 0).count() as u16;
        let rest = total.saturating_sub(fixed + n.saturating_sub(1));
        let share = rest.checked_div(flex).unwrap_or(0).max(8);
        self.columns
            .iter()
            .map(|c| if c.width == 0 { share } else { c.width })
            .collect()
    }
}

const FLOW_COLUMNS: &[Column] = &[
    col("Application", 12, false),
    col("Proto", 6, false),
    col("Local", 0, false),
    col("Other", 0, false),
    col("Rate", 10, true),
    col("Bytes", 8, true),
];
const APP_COLUMNS: &[Column] = &[
    col("Application", 0, false),
    col("Rate", 10, true),
    col("Bytes", 10, true),
];
const INTERFACE_COLUMNS: &[Column] = &[
    col("Interface", 0, false),
    col("Wire/s", 10, true),
    col("Pkts/s", 7, true),
    col("RX/s", 10, true),
    col("TX/s", 10, true),
    col("RX pk/s", 7, true),
    col("TX pk/s", 7, true),
];
const EVENT_COLUMNS: &[Column] = &[
    col("UTC", 8, false),
    col("Threshold", 12, false),
    col("Metric", 12, false),
    col("Value", 9, true),
    col("Limit", 9, true),
    col("Subject", 0, false),
];

/// The column each view sorts by at first.
fn default_sort(view: View) -> usize {
    match view {
        View::Flows => 4,
        View::Apps | View::Interfaces => 1,
        View::Events => 0,
    }
}

pub(crate) fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn num_cell(n: u64, show: fn(u64) -> String) -> (String, Sort) {
    (show(n), Sort::Num(n))
}

fn text_cell(s: String) -> (String, Sort) {
    (s.clone(), Sort::Text(s))
}

/// An endpoint as `ip:port`, IPv6 in brackets.
pub(crate) fn endpoint(ip: &Value, port: &Value) -> String {
    let ip = text_of(ip);
    if ip.contains(':') {
        format!("[{ip}]:{}", text_of(port))
    } else {
        format!("{ip}:{}", text_of(port))
    }
}

/// A key of a flow definition (`{"application":"Google"}`) as its values.
fn key_text(key: &Value) -> String {
    match key {
        Value::Object(m) => m.values().map(text_of).collect::<Vec<_>>().join(" "),
        v => text_of(v),
    }
}

impl Data {
    fn table(&self, view: View) -> Table {
        let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
        let rows = match view {
            View::Flows => self
                .flows
                .iter()
                .map(|f| {
                    vec![
                        text_cell(text_of(&f["detected_application_name"])),
                        text_cell(text_of(&f["detected_protocol_name"])),
                        text_cell(endpoint(&f["local_ip"], &f["local_port"])),
                        text_cell(endpoint(&f["other_ip"], &f["other_port"])),
                        num_cell(n(f, "total_rate"), rate),
                        num_cell(n(f, "total_bytes"), bytes),
                    ]
                })
                .collect(),
            View::Apps => self
                .apps
                .iter()
                .map(|a| {
                    vec![
                        text_cell(key_text(&a["key"])),
                        num_cell(n(a, "value"), rate),
                        num_cell(n(a, "total"), bytes),
                    ]
                })
                .collect(),
            View::Interfaces => {
                let per_sec = |v: u64| v / self.interval_secs.max(1);
                let kernel = |i: &Value, k: &str| match i[k].as_u64() {
                    Some(v) => num_cell(v, rate),
                    None => ("-".into(), Sort::Num(0)),
                };
                let kernel_pk = |i: &Value, k: &str| match i[k].as_u64() {
                    Some(v) => num_cell(v, |v| v.to_string()),
                    None => ("-".into(), Sort::Num(0)),
                };
                self.interfaces
                    .iter()
                    .map(|(name, i)| {
                        vec![
                            text_cell(name.clone()),
                            num_cell(per_sec(n(i, "wire_bytes")), rate),
                            num_cell(per_sec(n(i, "raw")), |v| v.to_string()),
                            kernel(i, "rx_bytes_per_sec"),
                            kernel(i, "tx_bytes_per_sec"),
                            kernel_pk(i, "rx_packets_per_sec"),
                            kernel_pk(i, "tx_packets_per_sec"),
                        ]
                    })
                    .collect()
            }
            View::Events => self
                .events
                .iter()
                .map(|e| {
                    let subject = if let Some(f) = e.get("flow") {
                        format!(
                            "{} {}",
                            endpoint(&f["other_ip"], &f["other_port"]),
                            text_of(&f["detected_application_name"])
                        )
                    } else if let Some(k) = e.get("key") {
                        key_text(k)
                    } else {
                        text_of(&e["interface"])
                    };
                    vec![
                        (clock(n(e, "at")), Sort::Num(n(e, "event_id"))),
                        text_cell(text_of(&e["threshold"])),
                        text_cell(text_of(&e["metric"])),
                        num_cell(n(e, "value"), |v| v.to_string()),
                        num_cell(n(e, "threshold_value"), |v| v.to_string()),
                        text_cell(subject),
                    ]
                })
                .collect(),
        };
        Table {
            columns: view.columns(),
            rows,
        }
    }
}

/// Bytes per second for a person: `652 B/s`, `12.3 kB/s`, `4.1 MB/s`.
fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", bytes(bytes_per_sec))
}

/// Bytes for a person, in SI units: `652 B`, `12.3 kB`, `4.1 GB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Epoch milliseconds as the UTC time of day, `HH:MM:SS`.
pub(crate) fn clock(ms: u64) -> String {
    let s = ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `s` cut to `width` characters: an address loses its middle (the port
/// stays), anything else its end, with `…` where text was cut.
fn fit(s: &str, width: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    let port = match chars.iter().rposition(|&c| c == ':') {
        Some(colon) if chars.len() - colon < width => chars.len() - colon,
        _ => 0,
    };
    cut(s, width, port)
}

/// `s` cut to `width` characters, keeping its last `keep` (at most
/// `width - 1`), with `…` where text was cut.
pub(crate) fn cut(s: &str, width: usize, keep: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= width {
        return s.to_owned();
    }
    if width < 2 {
        return chars[..width].iter().collect();
    }
    let keep = keep.min(width - 1);
    let head = &chars[..width - 1 - keep];
    let tail = &chars[chars.len() - keep..];
    format!(
        "{}…{}",
        head.iter().collect::<String>(),
        tail.iter().collect::<String>()
    )
}

/// The width in columns of the terminal `fd` is, if it is one.
pub(crate) fn terminal_width(fd: &impl std::os::fd::AsFd) -> Option<usize> {
    terminal_size::terminal_size_of(fd).map(|(w, _)| usize::from(w.0))
}

/// Prints one snapshot of `opts.view` as text, for scripts.
pub fn once(opts: &TopOptions, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut fetcher = Fetcher {
        api: Api::new(opts),
        data: Data::default(),
        apps_defined: false,
    };
    let data = fetcher.fetch();
    if let Some(e) = &data.error {
        anyhow::bail!("{}{e}", base_url(&opts.url));
    }
    let mut table = data.table(opts.view);
    table.sort(default_sort(opts.view));
    let widths: Vec<usize> = (0..table.columns.len())
        .map(|i| {
            table
                .rows
                .iter()
                .map(|r| r[i].0.chars().count())
                .chain([table.columns[i].title.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let titles: Vec<(String, Sort)> = table
        .columns
        .iter()
        .map(|c| text_cell(c.title.to_owned()))
        .collect();
    for row in std::iter::once(&titles).chain(&table.rows) {
        let line: Vec<String> = row
            .iter()
            .zip(table.columns)
            .zip(&widths)
            .map(|(((t, _), c), &w)| {
                if c.right {
                    format!("{t:>w$}")
                } else {
                    format!("{t:w$}")
                }
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    if let Some(note) = data.apps_note.as_ref().filter(|_| opts.view == View::Apps) {
        writeln!(out, "({note})")?;
    }
    Ok(())
}

/// The UI's state: what is shown and how it is sorted.
struct Screen {
    url: String,
    view: View,
    sort: [usize; 4],
    data: Data,
    updated: Option<Instant>,
}

impl Screen {
    fn draw(&self, frame: &mut ratatui::Frame<'_>) {
        let [header, body, status, footer] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        let bold = Style::new().add_modifier(Modifier::BOLD);
        let reversed = Style::new().add_modifier(Modifier::REVERSED);

        let mut table = self.data.table(self.view);
        let by = self.sort[self.view as usize];
        table.sort(by);
        let updated = match self.updated {
            Some(at) => format!("updated {}s ago", at.elapsed().as_secs()),
            None => "no data yet".into(),
        };
        let head = format!(
            "flowstatd top  {}  {} by {}  {updated}",
            self.url,
            self.view.title(),
            table.columns[by].title.to_lowercase()
        );
        frame.render_widget(
            Paragraph::new(fit(&head, usize::from(header.width))).style(reversed),
            header,
        );

        let widths = table.widths(body.width);
        let cells =
            |row: Vec<(String, Sort)>| {
                Row::new(row.into_iter().zip(table.columns).zip(&widths).map(
                    |(((t, _), c), &w)| {
                        let t = fit(&t, usize::from(w));
                        if c.right {
                            Cell::from(Line::from(t).right_aligned())
                        } else {
                            Cell::from(t)
                        }
                    },
                ))
            };
        let titles = table.columns.iter().enumerate().map(|(i, c)| {
            let title = if i == by {
                format!("{}▼", c.title)
            } else {
                c.title.to_owned()
            };
            (title, Sort::Num(0))
        });
        let header_row = cells(titles.collect()).style(bold);
        let rows: Vec<Row<'_>> = std::mem::take(&mut table.rows)
            .into_iter()
            .map(cells)
            .collect();
        let shown = rows.len();
        let widget =
            ratatui::widgets::Table::new(rows, widths.iter().map(|&w| Constraint::Length(w)))
                .header(header_row);
        frame.render_widget(widget, body);

        let (line, style) = match (&self.data.error, &self.data.apps_note) {
            (Some(e), _) => (e.clone(), Style::new().fg(Color::Red)),
            (None, Some(note)) if self.view == View::Apps && shown == 0 => {
                (note.clone(), Style::new())
            }
            _ => (format!("{shown} {}", self.view.title()), Style::new()),
        };
        frame.render_widget(
            Paragraph::new(fit(&line, usize::from(status.width))).style(style),
            status,
        );

        let mut keys = Vec::new();
        for (key, view) in [
            ("f", View::Flows),
            ("a", View::Apps),
            ("i", View::Interfaces),
            ("e", View::Events),
        ] {
            let style = if view == self.view {
                reversed
            } else {
                Style::new()
            };
            keys.push(Span::styled(key, bold));
            keys.push(Span::styled(format!(" {} ", view.title()), style));
            keys.push(Span::raw(" "));
        }
        keys.push(Span::raw("Tab next  "));
        keys.push(Span::styled("s", bold));
        keys.push(Span::raw(" sort  "));
        keys.push(Span::styled("q", bold));
        keys.push(Span::raw(" quit"));
        frame.render_widget(Paragraph::new(Line::from(keys)), footer);
    }

    /// Acts on a key; false to quit.
    fn key(&mut self, code: KeyCode, modifiers: KeyModifiers) -> bool {
        match code {
            KeyCode::Char('q') | KeyCode::Esc => return false,
            KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => return false,
            KeyCode::Char('f') => self.view = View::Flows,
            KeyCode::Char('a') => self.view = View::Apps,
            KeyCode::Char('i') => self.view = View::Interfaces,
            KeyCode::Char('e') => self.view = View::Events,
            KeyCode::Tab => self.view = self.view.next(),
            KeyCode::Char('s') => {
                let by = &mut self.sort[self.view as usize];
                *by = (*by + 1) % self.view.columns().len();
            }
            _ => {}
        }
        true
    }
}

/// Restores the terminal however `run` ends (ratatui's panic hook covers
/// a panic).
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// Runs the live view until `q`, Esc or Ctrl-C.
pub fn run(opts: &TopOptions) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel();
    let mut fetcher = Fetcher {
        api: Api::new(opts),
        data: Data::default(),
        apps_defined: false,
    };
    let interval = opts.interval;
    std::thread::Builder::new()
        .name("flowstat-top".into())
        .spawn(move || {
            // Ends when the UI has gone (the send fails).
            while tx.send(fetcher.fetch().clone()).is_ok() {
                std::thread::sleep(interval);
            }
        })?;
    let _restore = Restore;
    let mut terminal = ratatui::try_init().context("cannot use the terminal")?;
    let mut screen = Screen {
        url: base_url(&opts.url),
        view: opts.view,
        sort: View::ALL.map(default_sort),
        data: Data::default(),
        updated: None,
    };
    loop {
        while let Ok(data) = rx.try_recv() {
            if data.error.is_none() {
                screen.updated = Some(Instant::now());
            }
            screen.data = data;
        }
        terminal.draw(|f| screen.draw(f))?;
        if event::poll(Duration::from_millis(200))? {
            if let Event::Key(k) = event::read()? {
                if k.kind == KeyEventKind::Press && !screen.key(k.code, k.modifiers) {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_si_units() {
        assert_eq!(bytes(652), "652 B");
        assert_eq!(bytes(12_345), "12.3 kB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(rate(4_100_000), "4.1 MB/s");
        assert_eq!(rate(u64::MAX), "18.4 EB/s");
    }

    #[test]
    fn long_cells_lose_their_middle_or_end() {
        assert_eq!(fit("216.58.212.100:443", 18), "216.58.212.100:443");
        assert_eq!(fit("[2a00:1450:400b:c02::5f]:443", 16), "[2a00:1450:…:443");
        assert_eq!(fit("Google.Services", 8), "Google.…");
        assert_eq!(fit("abc", 1), "a");
    }

    #[test]
    fn tables_sort_numbers_down_and_text_up() {
        let data = Data {
            apps: vec![
                json!({"key": {"application": "B"}, "value": 1, "total": 9}),
                json!({"key": {"application": "A"}, "value": 5, "total": 1}),
            ],
            ..Data::default()
        };
        let mut t = data.table(View::Apps);
        t.sort(1);
        assert_eq!(t.rows[0][0].0, "A");
        t.sort(2);
        assert_eq!(t.rows[0][0].0, "B");
        t.sort(0);
        assert_eq!(t.rows[0][0].0, "A");
        assert_eq!(t.rows[0][1].0, "5 B/s");
    }

    #[test]
    fn columns_fill_80_cells() {
        for view in View::ALL {
            let t = Data::default().table(view);
            let widths = t.widths(80);
            let used: u16 = widths.iter().sum::<u16>() + widths.len() as u16 - 1;
            assert!((78..=80).contains(&used), "{view:?}: {widths:?}");
        }
    }

    #[test]
    fn clock_is_utc_time_of_day() {
        assert_eq!(clock(1_434_443_401_000), "08:30:01");
    }
}
