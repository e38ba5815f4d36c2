//! A mosquitto broker and mosquitto_sub subscribers (Debian's mosquitto
//! and mosquitto-clients), run on 127.0.0.1 for the MQTT sink's tests
//! and bench.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A mosquitto broker on 127.0.0.1 with its files in a directory of its
/// own; killed and removed on drop. Persistence is on, so that a
/// subscriber's session, and the records queued for it (QoS 0 too),
/// outlive a restart: what the broker acknowledged, it delivers.
pub struct Broker {
    dir: PathBuf,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    child: Child,
    ca: Option<PathBuf>,
}

/// Runs `program` from Debian's mosquitto packages, or says how to get it.
fn command(program: &str) -> Command {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).exists()))
        || Path::new("/usr/sbin").join(program).exists();
    assert!(
        found,
        "{program} is not installed: run `.ci/deps test` (Debian's mosquitto and \
         mosquitto-clients)"
    );
    let path = Path::new("/usr/sbin").join(program);
    Command::new(if path.exists() {
        path.into_os_string()
    } else {
        program.into()
    })
}

impl Broker {
    /// Starts a broker; `name` tells its directory from others'.
    pub fn start(name: &str) -> Broker {
        Broker::launch(name, false)
    }

    /// Starts a broker that speaks TLS only, with a certificate for
    /// 127.0.0.1 signed by the CA of [`ca`](Broker::ca).
    pub fn start_tls(name: &str) -> Broker {
        Broker::launch(name, true)
    }

    /// The PEM file of the CA that signed a TLS broker's certificate.
    pub fn ca(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    fn launch(name: &str, tls: bool) -> Broker {
        let dir = std::env::temp_dir().join(format!("flowstat-mqtt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Run as root, mosquitto drops to its own user: it writes its
        // database here all the same.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
             persistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 0\n\
             queue_qos0_messages true\nlog_dest stderr\n",
            dir.display(),
        );
        let ca = tls.then(|| {
            let certs = crate::certs::make(&dir);
            conf.push_str(&format!(
                "cafile {}\ncertfile {}\nkeyfile {}\n",
                certs.ca.display(),
                certs.cert.display(),
                certs.key.display()
            ));
            certs.ca
        });
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        let child = Broker::spawn(&dir, port);
        Broker {
            dir,
            port,
            child,
            ca,
        }
    }

    fn spawn(dir: &Path, port: u16) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("mosquitto.log"))
            .unwrap();
        let child = command("mosquitto")
            .arg("-c")
            .arg(dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    /// Sends the broker `signal`.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(sent.success());
    }

    /// Stops the broker as an operator would (SIGTERM: it saves its
    /// sessions) and starts it again on the same port.
    pub fn restart(&mut self) {
        self.signal("-TERM");
        self.child.wait().unwrap();
        self.child = Broker::spawn(&self.dir, self.port);
    }

    /// A subscriber to `topic` at QoS 1 writing each payload on a line of
    /// the file it returns. Its session is persistent and exists before
    /// this returns: from then on the broker keeps what comes for it.
    pub fn subscribe(&self, id: &str, topic: &str) -> Subscriber {
        let port = self.port.to_string();
        let mut args = vec![
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-q",
            "1",
            "-c",
            "-i",
            id,
            "-t",
            topic,
        ];
        let ca = self.ca.as_ref().map(|ca| ca.to_string_lossy().into_owned());
        if let Some(ca) = &ca {
            args.extend(["--cafile", ca]);
        }
        let made = command("mosquitto_sub")
            .args(args.iter())
            // Exits once subscribed, or after 10 s.
            .args(["-E", "-W", "10"])
            .status()
            .unwrap();
        assert!(made.success(), "mosquitto_sub -E failed");
        let path = self.dir.join(format!("{id}.out"));
        let out = std::fs::File::create(&path).unwrap();
        let child = command("mosquitto_sub")
            .args(args)
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Subscriber { path, child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A mosquitto_sub process; killed on drop.
pub struct Subscriber {
    path: PathBuf,
    child: Child,
}

impl Subscriber {
    /// The payloads received so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The payloads, once `done` says they are all there or 20 s passed.
    pub fn wait_for(&self, mut done: impl FnMut(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        loop {
            let lines = self.lines();
            if done(&lines) || start.elapsed() > Duration::from_secs(20) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
