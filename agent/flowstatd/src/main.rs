//! The `flowstatd` command line.

use std::io::{ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use flowstat_api::{ApiConfig, ApiServer};
use flowstat_core::Plugin;
use flowstat_core::{CaptureError, KindSet, RecordKind, SinkStatus};
use flowstat_dpi::Applications;
use flowstat_plugins::CorePlugin;
use flowstatd::agent::{self, RunOptions};
use flowstatd::config::{self, SinkSection, Tunnel};
use flowstatd::{
    Config, ConfigError, PipelineConfig, ReplayOptions, ReplaySummary, listing, outputs, replay,
    status, tail, top,
};
use indicatif::HumanCount;
use ipnet::IpNet;

mod manpages;

/// flowstat: packet-capture flow statistics with DPI, as JSON telemetry.
///
/// flowstatd turns packets into bidirectional flows and streams their
/// statistics as newline-delimited JSON records (`flow`, `flow_stats`,
/// `flow_purge`, `agent_status`, `interface_stats`), the record types and
/// fields of the Netify Agent v5.
#[derive(Parser, Debug)]
#[command(name = "flowstatd", version, about, long_about)]
#[command(after_help = "Examples:\n  \
    flowstatd -I eth0 -E eth1                          # run the agent on two interfaces\n  \
    flowstatd status                                   # the running agent's status\n  \
    flowstatd tail --type flow unix:///run/flowstatd/flows.sock  # watch its records\n  \
    flowstatd top                                      # its top flows, live\n  \
    flowstatd replay capture.pcap                      # records to stdout\n  \
    flowstatd replay -o flows.json a.pcap b.pcapng     # two sources, to a file\n  \
    flowstatd replay --local-network 10.0.0.0/8 --interval 60 capture.pcap\n  \
    flowstatd check-config /etc/flowstatd/flowstatd.toml")]
struct Cli {
    /// More log output on stderr (-v info, -vv debug; the agent, `run`,
    /// logs info without it); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Option<Command>,

    /// Show the running agent's status, as `flowstatd status` (netifyd's
    /// --status); -c names the config.
    #[arg(long, conflicts_with_all = ["dump_protos", "internal", "external"])]
    status: bool,

    /// List the protocols the agent can name, as `flowstatd
    /// list-protocols` (netifyd's --dump-protos).
    #[arg(long, conflicts_with_all = ["internal", "external"])]
    dump_protos: bool,

    /// Without a command, flowstatd runs the agent (`run`).
    #[command(flatten)]
    run: RunArgs,
}

/// Options of `flowstatd run`.
#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// Configuration file. If the default does not exist, the defaults of
    /// conf/flowstatd.toml apply.
    #[arg(short, long, value_name = "CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,

    /// Capture on IFACE as an internal (lan) interface: records say
    /// internal: true. Repeat for more; added to the config's [[capture]].
    /// As with netifyd, local networks may follow the name:
    /// -I eth0,192.168.0.0/24,fd00::/8 (a bare address is a /32 or /128).
    #[arg(short = 'I', long = "internal", value_name = "IFACE[,CIDR...]", value_parser = parse_interface)]
    internal: Vec<Interface>,

    /// Capture on IFACE as an external (wan) interface: internal: false;
    /// local networks may follow as for -I.
    #[arg(short = 'E', long = "external", value_name = "IFACE[,CIDR...]", value_parser = parse_interface)]
    external: Vec<Interface>,

    /// Run as USER (and GROUP, else USER's own group) once the captures
    /// are open, instead of the config's agent.user and agent.group. The
    /// package's service passes --user flowstatd.
    #[arg(long, value_name = "USER[:GROUP]", value_parser = parse_user)]
    user: Option<(String, String)>,
}

/// Reads `USER[:GROUP]`.
fn parse_user(s: &str) -> Result<(String, String), String> {
    let (user, group) = s.split_once(':').unwrap_or((s, ""));
    if user.is_empty() {
        return Err(format!("{s:?}: expected USER or USER:GROUP"));
    }
    Ok((user.to_owned(), group.to_owned()))
}

/// An interface given with -I/-E, and the local networks after its name.
#[derive(Clone, Debug)]
struct Interface {
    name: String,
    networks: Vec<IpNet>,
}

/// Reads `IFACE[,CIDR...]`.
fn parse_interface(s: &str) -> Result<Interface, String> {
    let mut parts = s.split(',');
    let name = parts.next().unwrap_or_default().trim();
    if name.is_empty() {
        return Err(format!(
            "{s:?}: expected IFACE or IFACE,CIDR,... (e.g. eth0,192.168.0.0/24)"
        ));
    }
    let networks = parts
        .map(|p| config::parse_network(p.trim()).map_err(|e| format!("{s:?}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Interface {
        name: name.to_owned(),
        networks,
    })
}

const DEFAULT_CONFIG: &str = "/etc/flowstatd/flowstatd.toml";

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent in the foreground (the default): capture on the
    /// configured interfaces and stream telemetry to the configured sinks.
    ///
    /// Logs go to stderr (journald under systemd). SIGHUP reloads the
    /// configuration (sinks, local networks, interval, application table,
    /// address databases) keeping every flow;
    /// SIGTERM or SIGINT purges every flow, flushes the sinks and exits; a
    /// second one exits at once.
    Run(RunArgs),

    /// Show the running agent's latest status (from its status file).
    Status {
        /// The agent's configuration file, to find its status file.
        #[arg(short, long, value_name = "CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,

        /// The status file itself (overrides the config's agent.status_file).
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
    },

    /// Replay capture files (pcap or pcapng) and write their flow telemetry.
    ///
    /// Each file is a source of its own, named after the file (the records'
    /// `interface`), replayed in the order given. Time is packet time:
    /// update intervals end on multiples of the interval in the capture's
    /// clock, and the same files and config always give byte-identical
    /// output. At the end of each file every remaining flow is purged.
    Replay {
        /// Capture files; the format is read from the file's first bytes.
        /// `-` is standard input (`tcpdump -w - | flowstatd replay -`);
        /// pipes and FIFOs are read as streams.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,

        /// Configuration file (default: built-in defaults, the values shown
        /// in conf/flowstatd.toml).
        #[arg(short, long, value_name = "CONFIG")]
        config: Option<PathBuf>,

        /// Seconds between flow_stats/agent_status/interface_stats records
        /// (overrides agent.update_interval_secs).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        interval: Option<u64>,

        /// A local network (CIDR); repeat for more. Added to the config's
        /// agent.local_networks.
        #[arg(long = "local-network", value_name = "CIDR", value_parser = config::parse_network)]
        local_networks: Vec<IpNet>,

        /// Where the records go: a file path, or - for stdout. Without it,
        /// the config's [[sink]]s, or stdout when it has none.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,

        /// Record types to write (comma-separated or repeated; default: all):
        /// flow, flow_stats, flow_purge, agent_status, interface_stats, event,
        /// aggregate.
        /// Types not asked for are not even encoded.
        #[arg(long, alias = "type", value_name = "TYPE", value_delimiter = ',', value_parser = parse_kind)]
        types: Vec<RecordKind>,

        /// Pace the replay by packet timestamps, as if live, and write each
        /// interval's records out as it ends.
        #[arg(long)]
        realtime: bool,

        /// Role of the sources: lan (records say internal: true) or wan.
        #[arg(long, value_enum, default_value_t = Role::Lan)]
        role: Role,

        /// Also look inside these tunnels (added to decode.decapsulate).
        #[arg(long, value_enum, value_name = "TUNNEL")]
        decapsulate: Vec<Tunnel>,

        /// Report the host's cores and the agent's CPU and memory use in
        /// agent_status. Off by default in replay, where those fields are 0
        /// so that the same input always gives the same output.
        #[arg(long)]
        resource_usage: bool,

        /// Flow worker threads (default: one per core; 1 runs the whole
        /// replay on one thread). The output is the same for any number:
        /// records come in one order (see README, "Record order"); only
        /// evictions for max_flows depend on how the workers run.
        #[arg(short = 'w', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
        workers: Option<u16>,

        /// Serve the HTTP API on ADDR (e.g. 127.0.0.1:8008) while the
        /// replay runs: the latest interval, flow definitions, top flows,
        /// events, /metrics. The config's [api] token applies.
        #[arg(long, value_name = "ADDR")]
        api: Option<std::net::SocketAddr>,

        /// With --api: after the last packet, keep serving the final state
        /// until SIGTERM or SIGINT, to explore the capture (/stream and
        /// /flows/json then hold the newest records of every type from the
        /// start, not only from the first request for them).
        #[arg(long, requires = "api")]
        linger: bool,
    },

    /// Watch a running agent's records: connect to its socket or ZeroMQ
    /// sink and print what comes, until the agent closes the stream.
    Tail {
        /// unix:///PATH or tcp://HOST:PORT for a socket sink;
        /// zmq+tcp://HOST:PORT or zmq+ipc:///PATH for a ZeroMQ sink.
        /// Default: the first socket or zmq sink of the config.
        #[arg(value_name = "ENDPOINT")]
        endpoint: Option<String>,

        /// The agent's configuration file, to find its endpoint.
        #[arg(short, long, value_name = "CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,

        /// Only records of TYPE (comma-separated or repeated).
        #[arg(short, long = "type", alias = "types", value_name = "TYPE", value_delimiter = ',', value_parser = parse_kind)]
        types: Vec<RecordKind>,

        /// Print each record whole, one JSON object per line, instead of
        /// a summary line (time, type, endpoints, protocol/application,
        /// bytes).
        #[arg(long, alias = "raw")]
        json: bool,

        /// Exit after N records.
        #[arg(short = 'n', long, value_name = "N")]
        count: Option<u64>,

        /// The token of a socket sink that asks one (default: the
        /// FLOWSTAT_SOCKET_TOKEN environment variable, or the config's
        /// token when the endpoint is taken from the config).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,
    },

    /// A live terminal view of an agent through its HTTP API: the largest
    /// flows or applications by rate, the interfaces' rates, the latest
    /// threshold events.
    ///
    /// Keys: f flows, a applications, i interfaces, e events (Tab cycles
    /// through them); s sorts by the next column (numbers largest first,
    /// text A to Z); q, Esc or Ctrl-C quits. Errors (the agent not
    /// answering, a token missing) show in the status line and the view
    /// keeps the last data it had. Fits 80x24, so it works over SSH.
    ///
    /// The applications view reads the flow definition `top-apps` (keys
    /// ["application"]); when the agent has none, top defines it, and it
    /// counts from the agent's next interval on.
    #[command(after_help = "Examples:\n  \
        flowstatd top                                   # the local agent\n  \
        flowstatd top http://10.0.0.1:8008 --token T    # another one, with its token\n  \
        flowstatd replay --api 127.0.0.1:8008 --linger x.pcap & flowstatd top\n  \
        flowstatd top --once --view apps                # one snapshot, as text")]
    Top {
        /// The agent's API (its [api] listen address).
        #[arg(value_name = "URL", default_value = "http://127.0.0.1:8008")]
        url: String,

        /// The bearer token when the agent has an api.token (default: the
        /// FLOWSTAT_API_TOKEN environment variable).
        #[arg(long, value_name = "TOKEN")]
        token: Option<String>,

        /// Seconds between refreshes.
        #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3_600))]
        interval: u64,

        /// The view shown first.
        #[arg(long, value_enum, default_value_t = top::View::Flows)]
        view: top::View,

        /// Print one snapshot of the view as text and exit, for scripts.
        #[arg(long)]
        once: bool,
    },

    /// Check a configuration file; print every error with its key and
    /// reason. Also checks that the capture interfaces exist on this host.
    CheckConfig {
        /// The file to check.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },

    /// List the protocols the agent can name: nDPI's id and name, and how
    /// each is detected (from payload by which dissector, on which
    /// transports, which ports it is tried first or only on; or from the
    /// IP protocol number alone).
    ListProtocols,

    /// List the applications the agent can name: id, name, category, and how
    /// it detects each (how many host-name patterns and networks name it).
    ///
    /// An application is named from the flow's host name (TLS/QUIC SNI,
    /// HTTP Host, DNS query name), else from the DNS cache, else from the
    /// server's address. Without -c, the built-in table (conf/applications.toml,
    /// whose header describes the format); with -c, the table the config's
    /// dpi.applications names, as the agent would load it. Columns are
    /// separated by spaces; `--format tsv` gives tabs and no header, for
    /// scripts.
    #[command(after_help = "Examples:\n  \
        flowstatd list-applications                     # the built-in table\n  \
        flowstatd list-applications -c /etc/flowstatd/flowstatd.toml\n  \
        flowstatd list-applications | grep -i video     # applications by category\n  \
        flowstatd list-applications --format tsv | cut -f2")]
    ListApplications {
        /// The agent's configuration file: list the table its
        /// dpi.applications names (default: the built-in table).
        #[arg(short, long, value_name = "CONFIG")]
        config: Option<PathBuf>,

        /// Output format: aligned columns with a header, or tab-separated.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },

    /// Print flowstatd(8) (roff), built from this command line; with --dir,
    /// write every page (flowstatd-COMMAND(8), flowstatd.toml(5)) there.
    #[command(hide = true)]
    Man {
        /// The folder to write the pages to, one file each.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// How `list-applications` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    /// Aligned columns under a header.
    Table,
    /// One tab-separated line per application, no header.
    Tsv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Role {
    /// Internal interface (internal: true).
    Lan,
    /// External interface (internal: false).
    Wan,
}

/// mimalloc: flows, DPI state and records are many small, short-lived
/// allocations; it serves them faster than glibc's malloc (3-6% of replay
/// time on the corpus mix) and keeps per-thread heaps for the workers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let run_args_given = !cli.run.internal.is_empty()
        || !cli.run.external.is_empty()
        || cli.run.config != Path::new(DEFAULT_CONFIG);
    let command = match cli.command {
        None if cli.status => Command::Status {
            config: cli.run.config,
            file: None,
        },
        None if cli.dump_protos => Command::ListProtocols,
        None => Command::Run(cli.run),
        Some(_) if run_args_given => {
            eprintln!(
                "flowstatd: -c/-I/-E before a command belong to `run`; put them after the command"
            );
            return ExitCode::from(2);
        }
        Some(command) => command,
    };
    // The agent says what it captures and where records go; the tools
    // speak only of trouble.
    let agent = matches!(command, Command::Run(_));
    init_logging(cli.verbose + u8::from(agent));
    match run(command) {
        Ok(code) => code,
        Err(e) => {
            // A reader that went away (`| head`) is not an error.
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            // Every line says whose it is (a config error has one a key,
            // a TOML syntax error shows the line and a caret under it).
            for line in format!("{e:#}").lines() {
                eprintln!("flowstatd: {line}");
            }
            // EX_CONFIG for configuration errors: a supervisor should not
            // retry those (the unit says RestartPreventExitStatus=78).
            if e.downcast_ref::<ConfigError>().is_some() {
                ExitCode::from(78)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// `check-config`: every problem the agent would meet before capturing
/// with `file`, as one error (a line each), or `FILE: ok`.
fn check_config(file: &Path) -> anyhow::Result<ExitCode> {
    let (cfg, mut problems) = Config::load_all(file)?;
    problems.extend(cfg.check_host());
    for found in [cfg.applications(file).err(), cfg.geo(file).err()]
        .into_iter()
        .flatten()
    {
        match found {
            ConfigError::Invalid { errors, .. } => problems.extend(errors),
            other => return Err(other.into()),
        }
    }
    for note in &cfg.notes {
        println!("{} (note)", note.display(file));
    }
    if !problems.is_empty() {
        return Err(ConfigError::invalid(file, problems).into());
    }
    println!("{}: ok", file.display());
    Ok(ExitCode::SUCCESS)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Plain lines: a terminal gets colour; journald adds its own timestamps.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .init();
}

fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Man { dir } => {
            let pages = manpages::pages(Cli::command())?;
            match dir {
                None => print!("{}", pages[0].source),
                Some(dir) => {
                    std::fs::create_dir_all(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    for page in &pages {
                        let path = dir.join(&page.file);
                        std::fs::write(&path, &page.source)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ListProtocols => {
            listing::protocols(&mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ListApplications { config, format } => {
            let apps = match &config {
                Some(path) => Config::load(path)?.applications(path)?,
                None => Arc::new(Applications::builtin()?),
            };
            let mut out = std::io::stdout().lock();
            listing::applications(&apps, format == ListFormat::Tsv, &mut out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { file } => check_config(&file),
        Command::Run(args) => {
            let names = |given: &[Interface]| given.iter().map(|i| i.name.clone()).collect();
            let opts = RunOptions {
                config_given: args.config != Path::new(DEFAULT_CONFIG),
                internal: names(&args.internal),
                external: names(&args.external),
                local_networks: (args.internal.iter().chain(&args.external))
                    .flat_map(|i| i.networks.iter().copied())
                    .collect(),
                config: args.config,
                user: args.user,
            };
            agent::run(&opts, &|pipeline| {
                vec![Box::new(CorePlugin::new(Arc::clone(&pipeline.geo))) as Box<dyn Plugin>]
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config, file } => {
            let path = match file {
                Some(path) => path,
                None if config.exists() || config != Path::new(DEFAULT_CONFIG) => {
                    Config::load(&config)?.agent.status_file
                }
                None => Config::default().agent.status_file,
            };
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "cannot read the status file {} (is the agent running? It writes the \
                     agent.status_file of its config: give that config with -c CONFIG, or \
                     the file with --file PATH)",
                    path.display()
                )
            })?;
            print!("{}", status::render(&text, status::now_secs())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail {
            endpoint,
            config,
            types,
            json,
            count,
            token,
        } => {
            let token = token.or_else(|| std::env::var("FLOWSTAT_SOCKET_TOKEN").ok());
            let (endpoint, token) = match endpoint {
                Some(e) => (e, token),
                None => {
                    let cfg = Config::load(&config)?;
                    let (endpoint, configured) =
                        tail::endpoint_of(&cfg.sink).with_context(|| {
                            format!(
                                "{} has no socket or zmq sink: give the ENDPOINT to watch",
                                config.display()
                            )
                        })?;
                    (endpoint, token.or(configured))
                }
            };
            let opts = tail::TailOptions {
                endpoint,
                types,
                json,
                count,
                token,
                fit: std::io::stdout().is_terminal(),
            };
            tail::tail(&opts, &mut std::io::stdout().lock())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Top {
            url,
            token,
            interval,
            view,
            once,
        } => {
            let opts = top::TopOptions {
                url,
                token: token.or_else(|| std::env::var("FLOWSTAT_API_TOKEN").ok()),
                interval: Duration::from_secs(interval),
                view,
            };
            if once {
                top::once(&opts, &mut std::io::stdout().lock())?;
            } else {
                top::run(&opts)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay {
            files,
            config,
            interval,
            local_networks,
            output,
            types,
            realtime,
            role,
            decapsulate,
            resource_usage,
            workers,
            api,
            linger,
        } => {
            let mut cfg = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            if let Some(secs) = interval {
                cfg.agent.update_interval_secs = secs;
            }
            cfg.agent.local_networks.extend(local_networks);
            cfg.decode.decapsulate.extend(decapsulate);
            let path = config.as_deref().unwrap_or(Path::new("(defaults)"));
            let mut pipeline = PipelineConfig::from_config(&cfg, path, resource_usage)?;
            let server = match api {
                Some(listen) => {
                    let config = ApiConfig {
                        listen,
                        ..cfg.api.clone()
                    };
                    if let Err((key, reason)) = config.check() {
                        anyhow::bail!("--api: {reason} ({key})");
                    }
                    let state = pipeline.serve_api();
                    if linger {
                        // Explored afterwards: every record kept from the start.
                        state.keep(KindSet::ALL);
                    }
                    let server = ApiServer::start(&config, state)?;
                    tracing::info!(address = %server.addr(), "API listening");
                    Some(server)
                }
                None => None,
            };
            let mut stop = if linger {
                Some(flowstatd::signals::catch_stop()?)
            } else {
                None
            };
            let workers = match workers {
                Some(n) => usize::from(n),
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
            };
            let opts = ReplayOptions {
                files,
                internal: role == Role::Lan,
                realtime,
                progress: std::io::stderr().is_terminal(),
                workers,
            };
            // The config's sinks, when the records go there.
            let mut sections = match output {
                Some(_) => Vec::new(),
                None => cfg.sink,
            };
            let mut sinks = match output {
                Some(path) => outputs::single(&path, kinds(&types), realtime)?,
                None if sections.is_empty() => {
                    outputs::single(Path::new("-"), kinds(&types), realtime)?
                }
                None => {
                    if !types.is_empty() {
                        for s in &mut sections {
                            s.types.clone_from(&types);
                        }
                    }
                    // A replay waits for its sinks rather than drop.
                    outputs::start(&sections, None)?
                        .with_patience(flowstat_sinks::SinkRuntime::REPLAY_PATIENCE)
                }
            };
            // The summary counts the records of the sinks asked for, not
            // the API's window.
            let asked = sinks.status().len();
            outputs::add_api_sink(&mut sinks, pipeline.api.as_ref())?;
            let (summary, sinks) = replay(pipeline, &opts, sinks)?;
            tell_unconsumed(&sinks.status(), &sections);
            let statuses = sinks.finish(REPLAY_DRAIN);
            let dropped = outputs::log_final(&statuses);
            eprintln!(
                "flowstatd: {}",
                replay_summary(&summary, &statuses[..asked])
            );
            let outcome = replay_outcome(summary.error, &statuses, dropped);
            if let (Ok(()), Some(server), Some(stop)) = (&outcome, &server, &mut stop) {
                tracing::info!(address = %server.addr(), "replay done; serving until SIGTERM");
                stop.forever().next();
            }
            // Whatever the outcome, the streams end after their last record.
            if let Some(server) = server {
                server.finish(REPLAY_DRAIN);
            }
            outcome.map(|()| ExitCode::SUCCESS)
        }
    }
}

/// A replay's failure: the damage that ended it early, else the records
/// the sinks dropped (`dropped` in all, per sink in `statuses`).
fn replay_outcome(
    error: Option<CaptureError>,
    statuses: &[SinkStatus],
    dropped: u64,
) -> anyhow::Result<()> {
    if let Some(e) = error {
        return Err(e.into());
    }
    let each: Vec<String> = statuses
        .iter()
        .filter(|s| s.dropped > 0)
        .map(|s| {
            if s.dropped > s.unconsumed {
                format!("{}: {}", s.name, s.dropped)
            } else {
                format!("{}: {} that no consumer took", s.name, s.dropped)
            }
        })
        .collect();
    anyhow::ensure!(
        dropped == 0,
        "the sinks dropped {dropped} records ({})",
        each.join("; ")
    );
    Ok(())
}

/// How long a replay's sinks may take, after the last packet, to deliver
/// what they hold (a ZeroMQ or socket sink waits for its first consumer).
const REPLAY_DRAIN: Duration = Duration::from_secs(10);

/// Says which of a replay's sinks (of `sections`) hold records for a
/// consumer that has not come, how long the replay waits for one, and how
/// not to wait.
fn tell_unconsumed(statuses: &[SinkStatus], sections: &[SinkSection]) {
    for (s, section) in statuses.iter().zip(sections) {
        if !s.no_consumer || s.queued == 0 {
            continue;
        }
        let tail = match tail::sink_endpoint(section) {
            Some((endpoint, Some(_))) => format!("flowstatd tail --token TOKEN {endpoint}"),
            Some((endpoint, None)) => format!("flowstatd tail {endpoint}"),
            None => "flowstatd tail ENDPOINT".to_owned(),
        };
        eprintln!(
            "flowstatd: sink {}: {} records wait for a consumer; waiting up to {} s for one \
             (connect one, e.g. `{tail}`, or write to a file: -o FILE)",
            s.name,
            HumanCount(s.queued),
            REPLAY_DRAIN.as_secs()
        );
    }
}

/// The line that sums a replay up: files, packets, flows, the records
/// the `sinks` took and dropped, time and packet rate.
fn replay_summary(summary: &ReplaySummary, sinks: &[SinkStatus]) -> String {
    let plural = |n: u64, one: &str, many: &str| {
        format!("{} {}", HumanCount(n), if n == 1 { one } else { many })
    };
    let sent: u64 = sinks.iter().map(|s| s.sent).sum();
    let dropped: u64 = sinks.iter().map(|s| s.dropped).sum();
    let to = if sinks.len() > 1 {
        format!(" to {} sinks", sinks.len())
    } else {
        String::new()
    };
    let secs = summary.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        (summary.packets as f64 / secs) as u64
    } else {
        0
    };
    format!(
        "replayed {}: {}, {}, {}{to} ({} dropped) in {secs:.2} s ({} packets/s)",
        plural(summary.files as u64, "file", "files"),
        plural(summary.packets, "packet", "packets"),
        plural(summary.flows, "flow", "flows"),
        plural(sent, "record", "records"),
        HumanCount(dropped),
        HumanCount(rate),
    )
}

/// The record types of `--types`: all when none is given.
fn kinds(types: &[RecordKind]) -> KindSet {
    if types.is_empty() {
        KindSet::ALL
    } else {
        KindSet::of(types)
    }
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    RecordKind::parse(s).ok_or_else(|| {
        let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("unknown record type {s:?}; one of: {}", names.join(", "))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_is_summed_up_in_a_line() {
        let summary = ReplaySummary {
            files: 2,
            packets: 1_234,
            flows: 56,
            elapsed: Duration::from_millis(410),
            ..Default::default()
        };
        let sink = |sent, dropped| SinkStatus {
            sent,
            dropped,
            ..Default::default()
        };
        assert_eq!(
            replay_summary(&summary, &[sink(180, 0)]),
            "replayed 2 files: 1,234 packets, 56 flows, 180 records (0 dropped) \
             in 0.41 s (3,009 packets/s)"
        );
        let one = ReplaySummary {
            files: 1,
            packets: 1,
            flows: 1,
            ..Default::default()
        };
        assert_eq!(
            replay_summary(&one, &[sink(1, 2), sink(3, 0)]),
            "replayed 1 file: 1 packet, 1 flow, 4 records to 2 sinks (2 dropped) \
             in 0.00 s (0 packets/s)"
        );
    }

    #[test]
    fn interfaces_take_local_networks_after_their_name() {
        let i = parse_interface("eth0,192.168.0.0/24,10.1.2.3,fd00::/8").unwrap();
        assert_eq!(i.name, "eth0");
        let want: Vec<IpNet> = ["192.168.0.0/24", "10.1.2.3/32", "fd00::/8"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(i.networks, want);
        assert!(parse_interface("ppp0").unwrap().networks.is_empty());
        assert!(
            parse_interface(",10.0.0.0/8")
                .unwrap_err()
                .contains("expected IFACE")
        );
    }
}
