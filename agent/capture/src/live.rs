//! What the live sources share: interface names, poll(2), the stats timer
//! and the one-line reasons an open fails with.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use flowstat_core::CaptureError;

/// How often a live source re-reads the kernel's drop counters on its own
/// (each read is a system call).
pub(crate) const STATS_REFRESH: Duration = Duration::from_millis(100);

/// A [`CaptureError::Interface`] for `interface`.
pub(crate) fn interface_error(interface: &str, reason: impl Into<String>) -> CaptureError {
    CaptureError::Interface {
        interface: interface.to_string(),
        reason: reason.into(),
    }
}

/// The reason for an interface that does not exist in this network
/// namespace.
pub(crate) const NO_SUCH_INTERFACE: &str = "no such interface (see `ip link`)";

/// The interface index of `name` in the calling thread's network namespace,
/// or the one-line reason there is none.
pub(crate) fn if_index(name: &str) -> Result<u32, CaptureError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', '\0']) {
        return Err(interface_error(
            name,
            format!(
                "not a valid interface name (1 to {} bytes, no '/')",
                libc::IFNAMSIZ - 1
            ),
        ));
    }
    let c_name = CString::new(name).map_err(|_| interface_error(name, NO_SUCH_INTERFACE))?;
    // SAFETY: `c_name` is a valid NUL-terminated string that outlives the
    // call; if_nametoindex only reads it.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        let error = io::Error::last_os_error();
        return Err(match error.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) | None => {
                interface_error(name, NO_SUCH_INTERFACE)
            }
            Some(_) => interface_error(name, format!("cannot look the interface up: {error}")),
        });
    }
    Ok(index)
}

/// Waits until `fd` is readable (or reports an error or hang-up, which the
/// next read turns into a proper error) or `timeout` has passed.
///
/// An interrupted wait (EINTR) returns early, which callers treat like a
/// timeout: they poll again and check their shutdown flag.
pub(crate) fn poll_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up, so that a 100 µs timeout does not become a busy loop.
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    let millis = libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd that lives across the call, and the
    // count says one.
    let ready = unsafe { libc::poll(&mut pfd, 1, millis) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(error);
    }
    Ok(ready > 0)
}

/// Decides when a source re-reads its kernel counters: at most every
/// [`STATS_REFRESH`].
#[derive(Debug)]
pub(crate) struct RefreshTimer {
    next: Instant,
}

impl RefreshTimer {
    /// A timer that is due at once.
    pub(crate) fn new() -> Self {
        RefreshTimer {
            next: Instant::now(),
        }
    }

    /// Whether a refresh is due; if so, the next one is due
    /// [`STATS_REFRESH`] from now.
    #[inline]
    pub(crate) fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + STATS_REFRESH;
        true
    }

    /// Restarts the period after an on-demand refresh.
    pub(crate) fn reset(&mut self) {
        self.next = Instant::now() + STATS_REFRESH;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_interface_names_are_refused_before_any_lookup() {
        for name in ["", "a/b", "sixteen-letters!", "nul\0"] {
            match if_index(name) {
                Err(CaptureError::Interface { reason, .. }) => {
                    assert!(reason.contains("not a valid interface name"), "{reason}");
                }
                other => panic!("{name:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn missing_interface_says_so_in_one_line() {
        match if_index("fscapnone0") {
            Err(CaptureError::Interface { interface, reason }) => {
                assert_eq!(interface, "fscapnone0");
                assert_eq!(reason, NO_SUCH_INTERFACE);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refresh_timer_is_due_at_once_then_rests() {
        let mut t = RefreshTimer::new();
        assert!(t.due());
        assert!(!t.due());
        t.reset();
        assert!(!t.due());
    }
}
