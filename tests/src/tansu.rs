//! A Kafka-protocol broker on loopback for the Kafka sink's tests and
//! bench: tansu, which `.ci/deps test` installs into `target/tools`.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the broker keeps its topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// In memory: a restart forgets everything.
    Memory,
    /// A SQLite file in the broker's directory, which outlives a restart
    /// (even a `kill -9`).
    Sqlite,
}

/// A tansu broker on `127.0.0.1`, a port of its own and a scratch
/// directory; killed, and its directory removed, when dropped.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    storage: Storage,
}

impl Broker {
    /// Starts a broker, waits until it listens, and creates `topics` with
    /// `partitions` partitions each.
    pub fn start(name: &str, storage: Storage, topics: &[String], partitions: u32) -> Broker {
        let dir =
            std::env::temp_dir().join(format!("flowstat-tansu-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the broker's directory");
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut broker = Broker {
            child: None,
            port,
            dir,
            storage,
        };
        broker.restart();
        for topic in topics {
            let out = Command::new(binary())
                .args(["topic", "create", topic, "--broker", &broker.url()])
                .args(["--partitions", &partitions.to_string()])
                .output()
                .expect("run tansu topic create");
            assert!(
                out.status.success(),
                "tansu topic create {topic}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        broker
    }

    /// `127.0.0.1:PORT`, for a `brokers` list.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://{}", self.address())
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker (again, after [`kill`](Self::kill)) on the same
    /// port and storage, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let storage = match self.storage {
            Storage::Memory => "memory://tansu/",
            Storage::Sqlite => "sqlite://tansu.db",
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("the broker's log");
        let child = Command::new(binary())
            .args(["broker", "--listener-url", &self.url()])
            .args(["--advertised-listener-url", &self.url()])
            .args(["--storage-engine", storage, "--silent"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the broker's log"))
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tansu never listened on {}: {}",
                self.address(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the broker logged, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tansu binary: `$TANSU`, else `tools/bin/tansu` under the cargo
/// target directory, where `.ci/deps test` installs it, else on `PATH`.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let installed = target.join("tools/bin/tansu");
    if installed.exists() {
        return installed;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "tansu, the Kafka-protocol broker the Kafka sink is tested against, is not installed \
             (looked for $TANSU, {} and PATH): run .ci/deps test",
            installed.display()
        )
    })
}
