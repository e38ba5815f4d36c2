//! The agent's own CPU and memory use, for `agent_status`.

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU cores available to the process.
    pub cpu_cores: u64,
    /// User CPU time since start, ms.
    pub cpu_user_ms: u64,
    /// System CPU time since start, ms.
    pub cpu_system_ms: u64,
    /// Peak resident set, KiB.
    pub maxrss_kb: u64,
    /// Current resident set, KiB.
    pub memrss_kb: u64,
}

/// Reads this process's usage; fields it cannot read stay 0.
pub fn read() -> Usage {
    let mut usage = Usage {
        cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u64),
        ..Usage::default()
    };
    // Current RSS and its peak: /proc/self/status `VmRSS:` and `VmHWM:`, in kB.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let kb = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if line.starts_with("VmRSS:") {
                usage.memrss_kb = kb(line);
            } else if line.starts_with("VmHWM:") {
                usage.maxrss_kb = kb(line);
            }
        }
    }
    // CPU: /proc/self/stat fields 14 and 15 (utime, stime) in clock ticks;
    // the comm field (2) may hold spaces, so count from its closing paren.
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some((_, rest)) = stat.rsplit_once(')')
    {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        usage.cpu_user_ms = ticks(11) * (1000 / USER_HZ);
        usage.cpu_system_ms = ticks(12) * (1000 / USER_HZ);
    }
    usage
}

/// The unit of /proc's CPU times: the kernel's USER_HZ, 100 on every Linux
/// architecture (fixed by its ABI; what `sysconf(_SC_CLK_TCK)` returns).
const USER_HZ: u64 = 100;

/// Raises the soft limit on `resource` to its hard limit, which needs no
/// privilege: AF_XDP locks its UMEM (RLIMIT_MEMLOCK, 32 MiB a socket by
/// default), and every socket sink client is a file descriptor
/// (RLIMIT_NOFILE, often 1,024 soft).
pub fn raise_soft_limit(resource: nix::sys::resource::Resource) {
    use nix::sys::resource::{getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(resource)
        && soft < hard
        && let Err(e) = setrlimit(resource, hard, hard)
    {
        tracing::debug!(%e, ?resource, "cannot raise the soft limit");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let u = super::read();
        assert!(u.memrss_kb > 0 && u.maxrss_kb >= u.memrss_kb, "{u:?}");
    }
}
