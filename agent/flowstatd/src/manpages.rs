//! The man pages: flowstatd(8), a flowstatd-COMMAND(8) for each command
//! (`man` itself, hidden, has none), and flowstatd.toml(5).
//!
//! The command pages take their synopsis, description and options from the
//! command line through clap_mangen's sections; what clap knows nothing of
//! (COMMANDS' pointers aside: FILES, SIGNALS, EXIT STATUS, SEE ALSO) is
//! written here with `roff`. A command's examples, its `after_help`, are
//! copied line for line between `.EX` and `.EE`, never refilled.
//! flowstatd.toml(5) is read from the comments of conf/flowstatd.toml, the
//! reference configuration, so that the two cannot disagree.

use std::io::{self, Write};

use clap::Command;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, italic, roman};

/// The reference configuration: every key with its default, and above it
/// (or after it) the comment that describes it.
const REFERENCE_CONFIG: &str = include_str!("../../../conf/flowstatd.toml");

/// One man page.
pub struct Page {
    /// Its file name: `flowstatd.8`, `flowstatd-run.8`, `flowstatd.toml.5`.
    pub file: String,
    /// The roff source.
    pub source: String,
}

/// Every page, flowstatd(8) first.
pub fn pages(cli: Command) -> io::Result<Vec<Page>> {
    let cli = prepare(cli);
    let source = format!("flowstatd {}", cli.get_version().unwrap_or_default());
    let commands: Vec<&Command> = cli.get_subcommands().filter(|c| !c.is_hide_set()).collect();
    let mut pages = vec![command_page(&cli, &source, &commands)?];
    for command in &commands {
        pages.push(command_page(command, &source, &[])?);
    }
    pages.push(config_page(&source));
    Ok(pages)
}

/// The command line as the pages show it: built (global options in every
/// command, display names such as flowstatd-run), without the `help`
/// command (--help is there), its commands under COMMANDS.
fn prepare(cli: Command) -> Command {
    let mut cli = cli
        .disable_help_subcommand(true)
        .subcommand_help_heading("COMMANDS");
    cli.build();
    cli
}

/// A page being written from clap_mangen's sections and our own `Roff`s.
/// Each rendering starts with the same preamble (the apostrophe string),
/// which the page keeps once.
struct Writer {
    out: String,
    preamble: String,
}

impl Writer {
    fn new() -> Writer {
        Writer {
            out: String::new(),
            preamble: Roff::new().render(),
        }
    }

    fn clap(&mut self, render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
        let mut chunk = Vec::new();
        render(&mut chunk)?;
        self.push(&String::from_utf8_lossy(&chunk));
        Ok(())
    }

    fn roff(&mut self, roff: &Roff) {
        self.push(&roff.render());
    }

    fn push(&mut self, chunk: &str) {
        let chunk = match chunk.strip_prefix(&self.preamble) {
            Some(rest) if !self.out.is_empty() => rest,
            _ => chunk,
        };
        self.out.push_str(chunk);
    }

    /// EXAMPLES: the command's `after_help` below its "Examples:" line,
    /// less the indentation of --help, one source line per line.
    fn examples(&mut self, cmd: &Command) {
        let Some(help) = cmd.get_after_help() else {
            return;
        };
        let help = help.to_string();
        self.roff(Roff::new().control("SH", ["EXAMPLES"]).control("EX", []));
        for line in example_lines(&help) {
            self.out.push_str(&verbatim(line));
            self.out.push('\n');
        }
        self.roff(Roff::new().control("EE", []));
    }
}

/// The lines of an `after_help`: its "Examples:" heading dropped, and the
/// indentation all lines share.
fn example_lines(help: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = help.lines().collect();
    if lines.first().is_some_and(|l| l.trim() == "Examples:") {
        lines.remove(0);
    }
    let indent = (lines.iter().filter(|l| !l.trim().is_empty()))
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect()
}

/// A line for roff to print as it is: only a backslash, and a `.` or `'`
/// that would start a request, are escaped.
fn verbatim(line: &str) -> String {
    let line = line.replace('\\', "\\e");
    if line.starts_with(['.', '\'']) {
        format!("\\&{line}")
    } else {
        line
    }
}

/// flowstatd(8) when `commands` are given (its COMMANDS), else the page of
/// one command.
fn command_page(cmd: &Command, source: &str, commands: &[&Command]) -> io::Result<Page> {
    let man = Man::new(cmd.clone()).section("8").source(source);
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    let main = !commands.is_empty();
    let mut w = Writer::new();
    w.clap(|o| man.render_title(o))?;
    w.clap(|o| man.render_name_section(o))?;
    w.clap(|o| man.render_synopsis_section(o))?;
    w.clap(|o| man.render_description_section(o))?;
    w.clap(|o| man.render_options_section(o))?;
    if main {
        w.clap(|o| man.render_subcommands_section(o))?;
    }
    // The agent's own: the main page (whose default is `run`) and run's.
    if main || cmd.get_name() == "run" {
        w.roff(&files());
        w.roff(&signals());
    }
    w.roff(&exit_status(cmd, main));
    w.examples(cmd);
    let mut see_also: Vec<String> = commands
        .iter()
        .map(|c| format!("{}(8)", c.get_display_name().unwrap_or(c.get_name())))
        .collect();
    if !main {
        see_also.push("flowstatd(8)".to_owned());
    }
    see_also.push("flowstatd.toml(5)".to_owned());
    w.roff(&see_also_section(&see_also));
    Ok(Page {
        file: format!("{name}.8"),
        source: w.out,
    })
}

/// `.TP` entries: a bold tag, then its text.
fn entries(roff: &mut Roff, items: &[(&str, &str)]) {
    for (tag, text) in items {
        roff.control("TP", [])
            .text([bold(*tag)])
            .text([roman(*text)]);
    }
}

fn files() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    entries(
        &mut roff,
        &[
            (
                "/etc/flowstatd/flowstatd.toml",
                "The configuration file (-c CONFIG names another); see flowstatd.toml(5). \
                 Without it, and without -c, the defaults apply.",
            ),
            (
                "/etc/flowstatd/applications.toml",
                "The application table (the config's dpi.applications): which host names \
                 and networks belong to which application. Its header describes the format. \
                 Read again at SIGHUP.",
            ),
            (
                "/run/flowstatd/status.json",
                "The latest agent_status and interface_stats records (the config's \
                 agent.status_file), which flowstatd status shows.",
            ),
            (
                "/var/lib/flowstatd",
                "The agent's state directory; the package's configuration writes its \
                 records there, to flows.json and its rotated copies.",
            ),
            (
                "/usr/lib/systemd/system/flowstatd.service",
                "The systemd unit: runs flowstatd run -c /etc/flowstatd/flowstatd.toml; \
                 systemctl reload flowstatd sends SIGHUP.",
            ),
        ],
    );
    roff
}

fn signals() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["SIGNALS"]);
    entries(
        &mut roff,
        &[
            (
                "SIGHUP",
                "Reload the configuration file, keeping every flow. The sinks, local \
                 networks, update interval, status file, flow definitions, thresholds, \
                 the application table and the address databases (read again even when \
                 their paths are unchanged) take effect at once; [[capture]], [flows], \
                 [decode], [api], workers, queue_packets, run_to_completion, user and group keep their \
                 running values until a restart, and a warning names them. A file with \
                 errors is refused, logged, and the running configuration kept.",
            ),
            (
                "SIGTERM, SIGINT",
                "Stop: purge every flow (a flow_purge record each), flush the sinks and \
                 exit 0. A second one while stopping exits at once, with status 1. \
                 replay --api --linger stops serving on either.",
            ),
        ],
    );
    roff
}

/// EXIT STATUS. 78 only where a configuration file is read: commands with
/// -c, and check-config.
fn exit_status(cmd: &Command, main: bool) -> Roff {
    let reads_config =
        cmd.get_name() == "check-config" || cmd.get_arguments().any(|a| a.get_id() == "config");
    let agent = main || cmd.get_name() == "run";
    let error = if agent {
        "An error, which is printed on standard error; or a second SIGTERM or SIGINT \
         while stopping."
    } else {
        "An error, which is printed on standard error."
    };
    let usage = if main {
        "A usage error: an unknown option or a bad value; or -c, -I or -E before a \
         command (they belong to run, after it)."
    } else {
        "A usage error: an unknown option or a bad value."
    };
    let config = "A configuration error (EX_CONFIG): the file cannot be read, is not TOML, \
                  or has a key with a wrong name, type or value; or a capture interface, \
                  application table or address database it names is missing or damaged. \
                  The message names the file and the key. The systemd unit does not restart \
                  the agent after it.";
    let mut items = vec![("0", "Success."), ("1", error), ("2", usage)];
    if reads_config {
        items.push(("78", config));
    }
    let mut roff = Roff::new();
    roff.control("SH", ["EXIT STATUS"]);
    entries(&mut roff, &items);
    roff
}

/// SEE ALSO: `name(N)` references, comma-separated.
fn see_also_section(pages: &[String]) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]);
    let mut line = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let (name, section) = page.split_at(page.find('(').unwrap_or(page.len()));
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(bold(name));
        line.push(roman(section));
    }
    roff.text(line);
    roff
}

/// flowstatd.toml(5), from the reference configuration.
fn config_page(source: &str) -> Page {
    let mut roff = Roff::new();
    roff.control("TH", ["flowstatd.toml", "5", "", source]);
    roff.control("SH", ["NAME"]);
    roff.text([roman("flowstatd.toml - flowstatd configuration file")]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([bold("/etc/flowstatd/flowstatd.toml")]);
    roff.control("SH", ["DESCRIPTION"]);
    roff.text([roman(
        "flowstatd reads its configuration from a TOML file: /etc/flowstatd/flowstatd.toml, \
         or the file -c CONFIG names. It holds tables ([agent]) and arrays of tables \
         ([[sink]]), one entry each; every key may be left out, and then has its default.",
    )]);
    roff.control("PP", []);
    roff.text([roman(
        "The package installs the reference file, which lists every key with its default \
         and shows the optional tables commented out. Below are its tables and keys, each \
         key with the value it shows there (its default; in a table shown commented out, \
         an example) and its comment.",
    )]);
    roff.control("PP", []);
    roff.text([roman(
        "flowstatd check-config FILE checks a file: it prints every error with its key and \
         reason, and exits 78 when there is one. The running agent reads the file again at \
         SIGHUP (systemctl reload flowstatd); flowstatd(8), SIGNALS, says what takes \
         effect then and what at the next restart.",
    )]);
    roff.control("SH", ["OPTIONS"]);
    let tables = tables(REFERENCE_CONFIG);
    for (i, table) in tables.iter().enumerate() {
        let first = tables.iter().position(|t| t.header == table.header) == Some(i);
        let repeated = tables.iter().filter(|t| t.header == table.header).count() > 1;
        let mut title = table.header.to_owned();
        let mut intro = &table.intro[..];
        if repeated {
            // The first one's comment is about the whole array.
            if first && !intro.is_empty() {
                roff.control("SS", []).text([roman(title.as_str())]);
                blocks(&mut roff, intro);
                intro = &[];
            }
            if let Some(s) = table.first_setting() {
                title = format!("{title} {} = {}", s.key, s.value);
            }
        }
        roff.control("SS", []).text([roman(title)]);
        if table.commented {
            roff.text([italic(
                "The reference file shows this table commented out: it is not there \
                 unless added.",
            )]);
            roff.control("PP", []);
        }
        blocks(&mut roff, intro);
        if !intro.is_empty() && !table.body.is_empty() {
            roff.control("PP", []);
        }
        blocks(&mut roff, &table.body);
    }
    roff.control("SH", ["FILES"]);
    entries(
        &mut roff,
        &[
            (
                "/etc/flowstatd/flowstatd.toml",
                "The configuration file that flowstatd run reads by default.",
            ),
            (
                "/etc/flowstatd/applications.toml",
                "The application table that dpi.applications names by default.",
            ),
        ],
    );
    roff.control("SH", ["SEE ALSO"]);
    roff.text([
        bold("flowstatd"),
        roman("(8), "),
        bold("flowstatd-run"),
        roman("(8), "),
        bold("flowstatd-check-config"),
        roman("(8)"),
    ]);
    Page {
        file: "flowstatd.toml.5".to_owned(),
        source: roff.render(),
    }
}

/// A table of the reference file: `[agent]`, or one `[[sink]]`.
struct Table<'a> {
    header: &'a str,
    /// Shown commented out (`# [[capture]]`).
    commented: bool,
    /// The comment above the header, and keys listed in it.
    intro: Vec<Block<'a>>,
    body: Vec<Block<'a>>,
}

impl Table<'_> {
    fn first_setting(&self) -> Option<&Setting<'_>> {
        self.body.iter().find_map(|b| match b {
            Block::Entry(e) => e.settings.first(),
            Block::Text(_) => None,
        })
    }
}

enum Block<'a> {
    /// A paragraph of comment.
    Text(Vec<Text<'a>>),
    Entry(Entry<'a>),
}

/// Keys and what their comments say. Keys without a comment of their own
/// after one with a comment above (user and group) share it.
struct Entry<'a> {
    settings: Vec<Setting<'a>>,
    text: Vec<Text<'a>>,
    /// Its text came from a comment above it.
    above: bool,
}

struct Setting<'a> {
    key: &'a str,
    value: &'a str,
    /// Commented out in a table that is not: not set by default.
    unset: bool,
}

#[derive(Clone, Copy)]
enum Text<'a> {
    /// Prose, filled.
    Line(&'a str),
    /// An indented line (an example), kept as it is.
    Pre(&'a str),
    /// A lone `#`: a new paragraph.
    Break,
}

/// A line of the reference file.
enum Line<'a> {
    Blank,
    Break,
    Prose(&'a str),
    /// An indented comment line: more of the trailing comment above it.
    More(&'a str),
    Header {
        name: &'a str,
        commented: bool,
    },
    Key {
        setting: Setting<'a>,
        /// Its trailing comment.
        note: &'a str,
        commented: bool,
        /// Indented in a comment: listed in a paragraph ("Keys for every
        /// type:"), not a key of the table above.
        listed: bool,
    },
}

fn classify(line: &str) -> Line<'_> {
    let line = line.trim_end();
    let text = line.trim_start();
    if text.is_empty() {
        return Line::Blank;
    }
    let Some(body) = text.strip_prefix('#') else {
        return setting(text, false, false).unwrap_or(Line::Prose(text));
    };
    if line.starts_with(char::is_whitespace) {
        return Line::More(body.trim());
    }
    let body = body.strip_prefix(' ').unwrap_or(body);
    if body.trim().is_empty() {
        return Line::Break;
    }
    let indented = body.starts_with(char::is_whitespace);
    if let Some(inner) = body.trim_start().strip_prefix('#') {
        // `#     # more`, or `# # prose` in a table shown commented out.
        return if indented {
            Line::More(inner.trim())
        } else {
            Line::Prose(inner.strip_prefix(' ').unwrap_or(inner))
        };
    }
    setting(body.trim_start(), true, indented).unwrap_or(Line::Prose(body))
}

/// A header or `key = value  # note`, if `text` is one that TOML reads.
fn setting(text: &str, commented: bool, listed: bool) -> Option<Line<'_>> {
    let parses = |s: &str| toml::from_str::<toml::Table>(s).is_ok();
    if text.starts_with('[') {
        let end = if text.starts_with("[[") {
            text.find("]]")? + 2
        } else {
            text.find(']')? + 1
        };
        let rest = text[end..].trim_start();
        return (parses(&text[..end]) && (rest.is_empty() || rest.starts_with('#'))).then_some(
            Line::Header {
                name: &text[..end],
                commented,
            },
        );
    }
    let eq = text.find('=')?;
    let rest = &text[eq + 1..];
    // The value ends at the first `#` that TOML reads as a comment.
    let ends = rest.match_indices('#').map(|(i, _)| i).chain([rest.len()]);
    for end in ends {
        let value = rest[..end].trim();
        if !value.is_empty() && parses(&text[..eq + 1 + end]) {
            return Some(Line::Key {
                setting: Setting {
                    key: text[..eq].trim(),
                    value,
                    unset: false,
                },
                note: rest[end..].trim_start_matches('#').trim(),
                commented,
                listed,
            });
        }
    }
    None
}

/// Reads the reference file into its tables. The comment before the first
/// table is about the file, and the page has its own DESCRIPTION.
fn tables(conf: &str) -> Vec<Table<'_>> {
    let mut tables: Vec<Table<'_>> = Vec::new();
    // Paragraphs (and keys listed in them) not yet placed: a paragraph
    // describes what comes after it.
    let mut pending: Vec<Block<'_>> = Vec::new();
    let mut comment: Vec<Text<'_>> = Vec::new();
    // The last line was a key with a trailing comment, or more of it.
    let mut note_open = false;
    for line in conf.lines() {
        let line = classify(line);
        let mut note_continues = false;
        match line {
            Line::More(t) if note_open && comment.is_empty() => {
                let last = pending
                    .last_mut()
                    .or_else(|| tables.last_mut().and_then(|table| table.body.last_mut()));
                if let Some(Block::Entry(entry)) = last {
                    entry.text.push(Text::Line(t));
                }
                note_continues = true;
            }
            Line::More(t) | Line::Prose(t) => comment.push(text(t)),
            Line::Break => {
                if !comment.is_empty() {
                    comment.push(Text::Break);
                }
            }
            Line::Blank => flush(&mut comment, &mut pending),
            Line::Header { name, commented } => {
                let mut intro = std::mem::take(&mut pending);
                if tables.is_empty() {
                    intro.clear();
                }
                flush(&mut comment, &mut intro);
                tables.push(Table {
                    header: name,
                    commented,
                    intro,
                    body: Vec::new(),
                });
            }
            Line::Key {
                mut setting,
                note,
                commented,
                listed,
            } => {
                note_continues = !note.is_empty();
                // A listed key's paragraph is not its own description.
                if listed {
                    flush(&mut comment, &mut pending);
                }
                let mut text = std::mem::take(&mut comment);
                trim_breaks(&mut text);
                let above = !text.is_empty();
                if !note.is_empty() {
                    text.push(Text::Line(note));
                }
                let to = match tables.last_mut() {
                    Some(table) if !listed => {
                        table.body.append(&mut pending);
                        setting.unset = commented && !table.commented;
                        &mut table.body
                    }
                    _ => &mut pending,
                };
                match to.last_mut() {
                    Some(Block::Entry(entry)) if text.is_empty() && entry.above => {
                        entry.settings.push(setting);
                    }
                    _ => to.push(Block::Entry(Entry {
                        settings: vec![setting],
                        text,
                        above,
                    })),
                }
            }
        }
        note_open = note_continues;
    }
    tables
}

fn text(line: &str) -> Text<'_> {
    if line.starts_with("  ") {
        Text::Pre(line)
    } else {
        Text::Line(line)
    }
}

fn trim_breaks(text: &mut Vec<Text<'_>>) {
    while matches!(text.last(), Some(Text::Break)) {
        text.pop();
    }
}

/// Moves the comment read so far, a paragraph, to `to`.
fn flush<'a>(comment: &mut Vec<Text<'a>>, to: &mut Vec<Block<'a>>) {
    trim_breaks(comment);
    if !comment.is_empty() {
        to.push(Block::Text(std::mem::take(comment)));
    }
}

fn blocks(roff: &mut Roff, blocks: &[Block<'_>]) {
    for (i, block) in blocks.iter().enumerate() {
        match block {
            Block::Text(text) => {
                if i > 0 {
                    roff.control("PP", []);
                }
                prose(roff, text, "PP");
            }
            Block::Entry(entry) => {
                for (j, s) in entry.settings.iter().enumerate() {
                    roff.control(if j == 0 { "TP" } else { "TQ" }, []);
                    let mut tag = vec![bold(s.key), roman(" = "), roman(s.value)];
                    if s.unset {
                        tag.push(italic(" (not set by default)"));
                    }
                    roff.text(tag);
                }
                prose(roff, &entry.text, "IP");
            }
        }
    }
}

/// Comment text: lines filled, indented lines as they are, `paragraph` (PP,
/// or IP under a key) at a lone `#`.
fn prose(roff: &mut Roff, text: &[Text<'_>], paragraph: &str) {
    let mut nofill = false;
    for t in text {
        let pre = matches!(t, Text::Pre(_));
        if pre != nofill {
            roff.control(if pre { "nf" } else { "fi" }, []);
            nofill = pre;
        }
        match t {
            Text::Line(s) | Text::Pre(s) => {
                roff.text([roman(*s)]);
            }
            Text::Break => {
                roff.control(paragraph, []);
            }
        }
    }
    if nofill {
        roff.control("fi", []);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use flowstatd::{Config, ConfigError};

    fn cli() -> Command {
        prepare(crate::Cli::command())
    }

    fn all() -> Vec<Page> {
        pages(crate::Cli::command()).unwrap()
    }

    fn source<'a>(pages: &'a [Page], file: &str) -> &'a str {
        let page = pages.iter().find(|p| p.file == file);
        &page.unwrap_or_else(|| panic!("no page {file}")).source
    }

    /// How roff source spells `text` (dashes escaped).
    fn spelled(text: &str) -> String {
        Roff::new()
            .text([roman(text)])
            .to_roff()
            .trim_end()
            .to_owned()
    }

    /// The `.SH` headings of a page.
    fn sections(source: &str) -> Vec<&str> {
        source
            .lines()
            .filter_map(|l| l.strip_prefix(".SH "))
            .map(|h| h.trim_matches('"'))
            .collect()
    }

    #[test]
    fn every_command_has_a_page_with_its_options_and_sections() {
        let pages = all();
        let cli = cli();
        let main = source(&pages, "flowstatd.8");
        let mut want = vec![
            ("flowstatd.8".to_owned(), &cli),
            ("flowstatd.toml.5".to_owned(), &cli),
        ];
        for cmd in cli.get_subcommands() {
            let file = format!("flowstatd-{}.8", cmd.get_name());
            if cmd.is_hide_set() {
                assert!(pages.iter().all(|p| p.file != file), "{file}");
                continue;
            }
            let pointer = spelled(&format!("flowstatd-{}(8)", cmd.get_name()));
            assert!(main.contains(&pointer), "flowstatd.8 lacks {pointer}");
            want.push((file, cmd));
        }
        let files: Vec<&str> = pages.iter().map(|p| p.file.as_str()).collect();
        let want_files: Vec<&str> = want.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(files.len(), want_files.len(), "{files:?}");
        for (file, cmd) in want.iter().filter(|(f, _)| f.ends_with(".8")) {
            let page = source(&pages, file);
            let have = sections(page);
            let mut required = vec!["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"];
            required.extend(["EXIT STATUS", "SEE ALSO"]);
            if cmd.get_after_help().is_some() {
                required.push("EXAMPLES");
            }
            if file == "flowstatd.8" {
                required.extend(["COMMANDS", "FILES", "SIGNALS"]);
            }
            for s in required {
                assert!(have.contains(&s), "{file} has no {s} section: {have:?}");
            }
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                let name = match (arg.get_long(), arg.get_value_names()) {
                    (Some(long), _) => format!("--{long}"),
                    (None, Some(names)) => names.join(" "),
                    (None, None) => continue,
                };
                assert!(page.contains(&spelled(&name)), "{file} lacks {name}");
            }
        }
        let have = sections(source(&pages, "flowstatd.toml.5"));
        for s in ["NAME", "DESCRIPTION", "OPTIONS", "FILES", "SEE ALSO"] {
            assert!(have.contains(&s), "flowstatd.toml.5 has no {s} section");
        }
    }

    #[test]
    fn examples_are_copied_line_for_line() {
        let pages = all();
        let cli = cli();
        let commands = std::iter::once((&cli, "flowstatd.8".to_owned())).chain(
            (cli.get_subcommands().filter(|c| !c.is_hide_set()))
                .map(|c| (c, format!("flowstatd-{}.8", c.get_name()))),
        );
        let mut checked = 0;
        for (cmd, file) in commands {
            let Some(help) = cmd.get_after_help() else {
                continue;
            };
            let help = help.to_string();
            let want: Vec<&str> = (help.lines().skip(1))
                .map(|l| l.strip_prefix("  ").unwrap_or(l))
                .collect();
            let page = source(&pages, &file);
            let have: Vec<&str> = (page.lines().skip_while(|l| *l != ".EX").skip(1))
                .take_while(|l| *l != ".EE")
                .collect();
            assert_eq!(have, want, "{file}");
            checked += 1;
        }
        assert!(checked >= 3, "{checked} commands with examples");
    }

    #[test]
    fn every_page_named_is_a_page_written() {
        let pages = all();
        let mut named = 0;
        for page in &pages {
            let text = (page.source)
                .replace("\\fB", "")
                .replace("\\fR", "")
                .replace("\\fI", "")
                .replace("\\-", "-");
            for (at, _) in text.match_indices("flowstatd") {
                let rest = &text[at..];
                let name_end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                    .unwrap_or(rest.len());
                let Some(section) = rest[name_end..].strip_prefix('(') else {
                    continue;
                };
                let Some(section) = section.get(..2).and_then(|s| s.strip_suffix(')')) else {
                    continue;
                };
                let file = format!("{}.{section}", &rest[..name_end]);
                assert!(
                    pages.iter().any(|p| p.file == file),
                    "{} names {file}, which is not written",
                    page.file
                );
                named += 1;
            }
        }
        assert!(named > 20, "{named}");
    }

    /// The names a refusal of `text` lists after the unknown `zzz`:
    /// "unknown field `zzz`, expected one of `a`, `b`".
    fn accepted(text: &str, quote: char) -> Vec<String> {
        let errors = match Config::parse(text, std::path::Path::new("t.toml")) {
            Err(ConfigError::Invalid { errors, .. }) => errors,
            other => panic!("{text}: {other:?}"),
        };
        let reason = errors.iter().find(|e| e.reason.contains("zzz"));
        let reason = reason.map_or("", |e| e.reason.as_str());
        reason
            .split(quote)
            .skip(3)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_config_page_has_every_key_the_config_accepts() {
        let pages = all();
        // (subsection title, key) of every key the page describes.
        let mut keys: Vec<(&str, &str)> = Vec::new();
        let mut titles: Vec<&str> = Vec::new();
        let mut lines = source(&pages, "flowstatd.toml.5").lines();
        while let Some(line) = lines.next() {
            let next = lines.clone().next().unwrap_or("");
            match line {
                ".SS" => titles.push(next),
                ".TP" | ".TQ" => {
                    if let Some(key) = next
                        .strip_prefix("\\fB")
                        .and_then(|k| k.split("\\fR").next())
                    {
                        keys.push((titles.last().copied().unwrap_or(""), key));
                    }
                }
                _ => {}
            }
        }
        let has = |title: &dyn Fn(&str) -> bool, table: &str, key: &str| {
            keys.iter().any(|(t, k)| title(t) && *k == key)
                || titles.contains(&format!("[{table}.{key}]").as_str())
        };
        let tables = accepted("zzz = 1", '`');
        assert!(tables.len() >= 10, "{tables:?}");
        let mut checked = 0;
        for table in tables.iter().filter(|t| *t != "sink") {
            let mut fields = accepted(&format!("[{table}]\nzzz = 1"), '`');
            if fields.is_empty() {
                fields = accepted(&format!("[[{table}]]\nzzz = 1"), '`');
            }
            assert!(!fields.is_empty(), "{table}");
            let title = |t: &str| t == format!("[{table}]") || t == format!("[[{table}]]");
            for key in &fields {
                assert!(has(&title, table, key), "the page lacks {table}.{key}");
                checked += 1;
            }
        }
        let types = accepted("[[sink]]\ntype = \"zzz\"", '"');
        assert!(types.len() >= 2, "{types:?}");
        for kind in &types {
            let fields = accepted(&format!("[[sink]]\ntype = \"{kind}\"\nzzz = 1"), '`');
            assert!(fields.contains(&"type".to_owned()), "{kind}: {fields:?}");
            let title = |t: &str| t == "[[sink]]" || t == format!("[[sink]] type = \"{kind}\"");
            for key in &fields {
                assert!(
                    has(&title, "sink", key),
                    "the page lacks the {kind} sink's {key}"
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked} keys");
    }
}
