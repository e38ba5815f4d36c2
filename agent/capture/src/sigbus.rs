//! A capture file that shrinks while it is mapped must not kill the
//! process: reading a page past the file's new end raises SIGBUS.
//!
//! [`guard`] runs a read of a map with that map's range noted for the
//! thread. A SIGBUS inside the range maps zero pages over the rest of it,
//! so that the faulting read goes on (reading zeros) and notes that the
//! file shrank; [`guard`] then says so, and the reader stops lending
//! frames ([`shrank`]). A SIGBUS anywhere else is the default: the
//! process dies, as it would have without the handler.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    /// The map being read by this thread: start and end addresses (0, 0
    /// when none). Read by the signal handler: const-initialised, so its
    /// access allocates nothing.
    static READING: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// A SIGBUS hit the map being read.
    static SHRANK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` on `map` and says whether the file behind it shrank
/// meanwhile (the bytes past its end read as zeros).
pub(crate) fn guard<T>(map: &[u8], read: impl FnOnce() -> T) -> (T, bool) {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(install);
    let start = map.as_ptr() as usize;
    READING.set((start, start + map.len()));
    let out = read();
    READING.set((0, 0));
    (out, SHRANK.replace(false))
}

/// Whether the map this thread reads has shrunk under it.
#[inline]
pub(crate) fn shrank() -> bool {
    SHRANK.get()
}

fn install() {
    // SAFETY: a plain sigaction with a handler that only calls
    // async-signal-safe functions (mmap, signal, raise) and reads and
    // writes const-initialised thread-locals.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut action.sa_mask);
        if libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut()) != 0 {
            tracing::debug!(
                "no SIGBUS handler: a capture file that shrinks while read kills the process"
            );
        }
    }
}

extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo_t to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (start, end) = READING.get();
    if (start..end).contains(&addr) {
        // SAFETY: sysconf is async-signal-safe.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as usize;
        let from = addr & !(page - 1);
        // Zero pages over the rest of the map (which is ours, read-only):
        // the faulting read is retried on them.
        // SAFETY: [from, end) lies within the map being read, which
        // outlives the read; replacing its pages changes only what the
        // reader sees.
        let mapped = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if mapped != libc::MAP_FAILED {
            SHRANK.set(true);
            return;
        }
    }
    // Not a map being read: die of it, as without this handler.
    // SAFETY: signal and raise are async-signal-safe.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
        libc::raise(libc::SIGBUS);
    }
}
