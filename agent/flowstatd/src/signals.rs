//! SIGTERM, SIGINT and SIGHUP, turned into messages for the main thread.

use anyhow::Context;
use crossbeam_channel::{Receiver, unbounded};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What a signal asks of the agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM or SIGINT: purge every flow, flush the sinks, exit.
    Stop,
    /// SIGHUP: read the configuration again.
    Reload,
}

/// Starts listening. A second SIGTERM or SIGINT, while the first is being
/// handled, exits the process at once.
pub fn listen() -> anyhow::Result<Receiver<Signal>> {
    let mut signals =
        Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("flowstat-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                if signal == SIGHUP {
                    let _ = tx.send(Signal::Reload);
                } else if stopping {
                    eprintln!("flowstatd: second stop signal, exiting at once");
                    std::process::exit(1);
                } else {
                    stopping = true;
                    let _ = tx.send(Signal::Stop);
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(rx)
}

/// Catches SIGTERM and SIGINT from now on (replay's `--linger`): waiting
/// on the result (`forever().next()`) returns once one came.
pub fn catch_stop() -> anyhow::Result<Signals> {
    Signals::new([SIGTERM, SIGINT]).context("installing signal handlers")
}
