//! [`XdpSource`]: one AF_XDP socket on one RX queue, through xsk-rs and
//! libxdp, behind a redirect program of our own (every frame of a queue
//! with a socket goes to that socket, the others to the kernel stack as
//! usual), attached through a BPF link: closing the link detaches it, so
//! the program leaves with the last socket or with the process, crashed
//! or not, and no step needs more than CAP_NET_ADMIN, CAP_BPF and
//! CAP_NET_RAW.

use std::collections::BTreeMap;
use std::ffi::c_int;
use std::io;
use std::num::NonZeroU32;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::file::prefetch_line;
use flowstat_core::{Batch, CaptureError, CaptureSource, CaptureStats, Frame, LinkType, Timestamp};
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::{CompQueue, FillQueue, FrameDesc, RxQueue, Socket, TxQueue, Umem};

use crate::live::{self, RefreshTimer, interface_error};

/// Ring size for the transmit side, which a capture never uses (libxdp
/// insists on creating it).
const UNUSED_RING: u32 = 64;

/// How long a busy queue is waited for. The kernel frees a closed
/// socket's queue a little after the close (deferred work), so a socket
/// opened again at once (a restart, a reload, a mode fallback) can find
/// its queue still taken: 1 s was once too short on a 2-core machine
/// busy with the whole test suite.
const BUSY_WAIT: Duration = Duration::from_secs(3);

/// How long [`XdpSource::wait`] lets frames gather at most, per frame the
/// kernel can deliver while the thread sleeps (the fill ring's, as far as
/// the RX ring has room): the time in which 2M frames a second take them
/// all (4 ms for 8192 frames), so that no burst this machine can deliver
/// overflows the rings while the thread sleeps. The gather adapts between
/// [`MIN_GATHER`] and this so that each wake-up finds about an eighth of
/// them: the longest at a low rate (at 50k frames a second each wake-up
/// of a 4 ms gather carries about 200 frames), shorter as the rate rises.
const MAX_GATHER_PER_FRAME: Duration = Duration::from_nanos(500);
/// The shortest gather.
const MIN_GATHER: Duration = Duration::from_micros(50);

/// Frames ahead whose headers are prefetched while one is decoded.
const PREFETCH_FRAMES_AHEAD: usize = 4;

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native if the driver supports it, else generic.
    #[default]
    Auto,
    /// In the driver (`XDP_FLAGS_DRV_MODE`): fastest; the driver must
    /// support XDP.
    Native,
    /// In the kernel's receive path after the driver (`XDP_FLAGS_SKB_MODE`):
    /// works on every interface, always copies frames.
    Generic,
}

/// Whether the socket shares the driver's receive buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ZeroCopy {
    /// Zero-copy if the driver supports it (native mode only), else copy.
    #[default]
    Auto,
    /// Zero-copy or fail.
    On,
    /// Always copy.
    Off,
}

/// How to open an [`XdpSource`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpConfig {
    /// The interface, e.g. `eth0`.
    pub interface: String,
    /// The RX queue the socket binds to, `0..rx_queue_count(interface)`.
    pub queue: u32,
    /// Where the XDP program runs. Default [`XdpMode::Auto`].
    pub mode: XdpMode,
    /// Zero-copy or copy. Default [`ZeroCopy::Auto`].
    pub zero_copy: ZeroCopy,
    /// Fill ring entries (a power of two), and the UMEM's frames: every
    /// frame is in the fill ring, the RX ring or being read, and those in
    /// the fill ring are what the kernel can fill while the thread sleeps
    /// (more frames would only wait outside the rings). Default 8192.
    pub fill_ring: u32,
    /// RX ring entries (a power of two). Default 8192.
    pub rx_ring: u32,
    /// Bytes per UMEM frame: 2048 or 4096. A frame holds at most
    /// `frame_size - 256` bytes (256 is XDP's headroom); longer frames are
    /// dropped and counted in `dropped`. Default 4096.
    pub frame_size: u32,
    /// Frames taken from the RX ring at a time (one timestamp each).
    /// Default 64.
    pub batch: usize,
    /// Busy polling: when not 0, the socket prefers busy polling
    /// (`SO_PREFER_BUSY_POLL`) and its waits spin on the driver's queue
    /// for up to this many microseconds (`SO_BUSY_POLL`), `batch` frames
    /// a turn (`SO_BUSY_POLL_BUDGET`), instead of sleeping until an
    /// interrupt. Default 0 (off).
    pub busy_poll_usecs: u32,
}

impl XdpConfig {
    /// The defaults for `queue` of `interface`.
    pub fn new(interface: impl Into<String>, queue: u32) -> Self {
        XdpConfig {
            interface: interface.into(),
            queue,
            mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            fill_ring: 8192,
            rx_ring: 8192,
            frame_size: 4096,
            batch: 64,
            busy_poll_usecs: 0,
        }
    }

    /// The first thing wrong with the numbers, if any.
    fn check(&self) -> Result<(), String> {
        for (name, value) in [("fill_ring", self.fill_ring), ("rx_ring", self.rx_ring)] {
            if !value.is_power_of_two() {
                return Err(format!("{name} {value} is not a power of two"));
            }
        }
        if !(self.frame_size == 2048 || self.frame_size == 4096) {
            return Err(format!(
                "frame_size {} is not 2048 or 4096",
                self.frame_size
            ));
        }
        if self.batch == 0 {
            return Err("batch is 0".to_string());
        }
        if self.mode == XdpMode::Generic && self.zero_copy == ZeroCopy::On {
            return Err("zero-copy needs native mode (mode = generic)".to_string());
        }
        Ok(())
    }
}

/// Identifies an interface across network namespaces: (namespace inode,
/// interface index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct IfKey {
    netns: u64,
    ifindex: u32,
}

impl IfKey {
    fn here(ifindex: u32) -> IfKey {
        IfKey {
            netns: current_netns(),
            ifindex,
        }
    }
}

/// The inode of the calling thread's network namespace (0 if /proc cannot
/// tell, which then stands for "the one namespace").
fn current_netns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").map_or(0, |m| m.ino())
}

/// An interface this process has AF_XDP sockets on.
struct Attached {
    sockets: usize,
    /// The mode the program is attached in.
    mode: XdpMode,
    program: Program,
}

/// Every interface with an [`XdpSource`] of this process. Its lock is held
/// across opening (attach, socket creation) and across the last drop
/// (socket deletion, detach), so sources of one interface may be opened
/// and dropped from any thread in any order.
static REGISTRY: Mutex<BTreeMap<IfKey, Attached>> = Mutex::new(BTreeMap::new());

fn registry() -> MutexGuard<'static, BTreeMap<IfKey, Attached>> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The number of RX queues of `interface`, counted in
/// `/sys/class/net/INTERFACE/queues/rx-*`, so the caller can open one
/// [`XdpSource`] per queue.
///
/// sysfs shows the network namespace it was mounted in (what
/// `ip netns exec` arranges); a thread that entered another namespace
/// with setns(2) alone still sees the old one here.
pub fn rx_queue_count(interface: &str) -> Result<u32, CaptureError> {
    let dir = sysfs_path(interface, "queues")?;
    let entries = std::fs::read_dir(&dir).map_err(|e| sysfs_error(interface, "list", &dir, &e))?;
    let mut count = 0;
    for entry in entries {
        let entry = entry.map_err(|e| sysfs_error(interface, "list", &dir, &e))?;
        if entry.file_name().as_encoded_bytes().starts_with(b"rx-") {
            count += 1;
        }
    }
    if count == 0 {
        return Err(interface_error(
            interface,
            format!("{dir} lists no RX queue"),
        ));
    }
    Ok(count)
}

/// `/sys/class/net/INTERFACE/LEAF`, for a valid interface name.
fn sysfs_path(interface: &str, leaf: &str) -> Result<String, CaptureError> {
    if interface.is_empty() || interface.contains('/') {
        return Err(interface_error(interface, "not a valid interface name"));
    }
    Ok(format!("/sys/class/net/{interface}/{leaf}"))
}

/// Why `path`, a sysfs file of `interface`, could not be read (`doing`:
/// "read" or "list"): the interface is missing, or the OS's reason.
fn sysfs_error(interface: &str, doing: &str, path: &str, e: &io::Error) -> CaptureError {
    if e.kind() == io::ErrorKind::NotFound {
        interface_error(interface, live::NO_SUCH_INTERFACE)
    } else {
        interface_error(interface, format!("cannot {doing} {path}: {e}"))
    }
}

/// The UMEM frame size for `interface`: 2048 bytes when its largest frame
/// (the MTU, an Ethernet header and two VLAN tags) fits one after XDP's
/// 256 bytes of headroom, else 4096. Half the memory a frame, or twice the
/// frames for the same memory.
pub fn frame_size_for(interface: &str) -> Result<u32, CaptureError> {
    let path = sysfs_path(interface, "mtu")?;
    let mtu: u32 = std::fs::read_to_string(&path)
        .map_err(|e| sysfs_error(interface, "read", &path, &e))?
        .trim()
        .parse()
        .map_err(|e| interface_error(interface, format!("{path}: {e}")))?;
    Ok(if mtu + 14 + 8 <= 2048 - 256 {
        2048
    } else {
        4096
    })
}

/// The redirect program on one interface: an XSKMAP from RX queue to
/// socket, the program, and the BPF link that attaches it. Dropping it
/// closes the link, which detaches the program, as the kernel does when
/// the process ends however it ends: no privilege is needed for that, and
/// no program outlives the agent.
struct Program {
    map: OwnedFd,
    _prog: OwnedFd,
    _link: OwnedFd,
}

impl Program {
    /// Loads the program, with room for sockets on `queues` RX queues, and
    /// attaches it to interface `ifindex` of the calling thread's network
    /// namespace in `mode` (native or generic).
    fn attach(ifindex: u32, queues: u32, mode: XdpMode) -> io::Result<Program> {
        let ifindex =
            c_int::try_from(ifindex).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
        // SAFETY: the name is NUL-terminated; null options take libbpf's
        // defaults.
        let map = bpf_fd(unsafe {
            libxdp_sys::bpf_map_create(
                libxdp_sys::bpf_map_type_BPF_MAP_TYPE_XSKMAP,
                c"flowstat_xsks".as_ptr(),
                4,
                4,
                queues,
                std::ptr::null(),
            )
        })?;
        let insns = redirect_program(map.as_raw_fd());
        // SAFETY: the names are NUL-terminated, `insns` is valid for its
        // length, and null options take libbpf's defaults.
        let prog = bpf_fd(unsafe {
            libxdp_sys::bpf_prog_load(
                libxdp_sys::bpf_prog_type_BPF_PROG_TYPE_XDP,
                c"flowstat_xsk".as_ptr(),
                c"Dual BSD/GPL".as_ptr(),
                insns.as_ptr(),
                insns.len(),
                std::ptr::null_mut(),
            )
        })?;
        // SAFETY: an all-zero bpf_link_create_opts is its default (null
        // pointers, zero numbers).
        let mut opts: libxdp_sys::bpf_link_create_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libxdp_sys::bpf_link_create_opts>();
        // XDP_FLAGS_DRV_MODE and XDP_FLAGS_SKB_MODE of <linux/if_link.h>.
        opts.flags = if mode == XdpMode::Native {
            1 << 2
        } else {
            1 << 1
        };
        // SAFETY: `opts` is initialised, its `sz` is its size, and it
        // outlives the call.
        let link = bpf_fd(unsafe {
            libxdp_sys::bpf_link_create(
                prog.as_raw_fd(),
                ifindex,
                libxdp_sys::bpf_attach_type_BPF_XDP,
                &opts,
            )
        })?;
        Ok(Program {
            map,
            _prog: prog,
            _link: link,
        })
    }

    /// Sends queue `queue`'s frames to the AF_XDP socket `fd`. The kernel
    /// takes the socket out of the map when it closes.
    fn insert(&self, queue: u32, fd: RawFd) -> io::Result<()> {
        let socket = u32::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: key and value point to 4-byte values, the map's sizes.
        let rc = unsafe {
            libxdp_sys::bpf_map_update_elem(
                self.map.as_raw_fd(),
                (&raw const queue).cast(),
                (&raw const socket).cast(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }
}

/// A descriptor libbpf returned, or its error (libbpf returns -errno).
fn bpf_fd(rc: c_int) -> io::Result<OwnedFd> {
    if rc < 0 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    // SAFETY: a non-negative result is a new descriptor that nothing else
    // owns.
    Ok(unsafe { OwnedFd::from_raw_fd(rc) })
}

/// One eBPF instruction.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> libxdp_sys::bpf_insn {
    // SAFETY: an all-zero instruction is valid plain data.
    let mut insn: libxdp_sys::bpf_insn = unsafe { std::mem::zeroed() };
    insn.code = code;
    insn.set_dst_reg(dst);
    insn.set_src_reg(src);
    insn.off = off;
    insn.imm = imm;
    insn
}

/// The program: `return bpf_redirect_map(&xsks, ctx->rx_queue_index,
/// XDP_PASS);`, so a frame goes to the socket of its RX queue, or, when
/// that queue has none, on to the kernel's stack.
fn redirect_program(map_fd: RawFd) -> [libxdp_sys::bpf_insn; 6] {
    [
        // r2 = *(u32 *)(r1 + 16): xdp_md.rx_queue_index.
        insn(0x61, 2, 1, 16, 0),
        // r1 = the map (a two-slot load; source 1 is BPF_PSEUDO_MAP_FD).
        insn(0x18, 1, 1, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // r3 = XDP_PASS: the action when the queue has no socket.
        insn(0xb7, 3, 0, 0, 2),
        // call bpf_redirect_map (helper 51); its result is the action.
        insn(0x85, 0, 0, 0, 51),
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// Where libxdp's and libbpf's messages go: to `tracing` (debug level),
/// instead of stderr. The last "Kernel error message" (the netlink extack
/// that says why the kernel refused an attach) is kept per thread, for the
/// failure reason.
mod library_log {
    use std::cell::RefCell;
    use std::sync::Once;

    thread_local! {
        static KERNEL_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Routes the libraries' messages to `tracing`, once per process.
    pub(super) fn install() {
        static INSTALL: Once = Once::new();
        #[cfg(target_arch = "x86_64")]
        INSTALL.call_once(|| {
            // SAFETY: both setters only store the function pointer, whose
            // signature is the one they expect (level, format, va_list).
            unsafe {
                libxdp_sys::libxdp_set_print(Some(x86_64::from_libxdp));
                x86_64::libbpf_set_print(Some(x86_64::from_libbpf));
            }
        });
        #[cfg(not(target_arch = "x86_64"))]
        INSTALL.call_once(|| {});
    }

    /// Forgets the last kernel message of this thread.
    pub(super) fn clear() {
        KERNEL_MESSAGE.with(|m| m.borrow_mut().take());
    }

    /// The last kernel message of this thread since [`clear`].
    pub(super) fn take_kernel_message() -> Option<String> {
        KERNEL_MESSAGE.with(|m| m.borrow_mut().take())
    }

    fn record(library: &'static str, message: &str) {
        let message = message.trim_end();
        if let Some(kernel) = message.strip_prefix("Kernel error message: ") {
            KERNEL_MESSAGE.with(|m| *m.borrow_mut() = Some(kernel.to_string()));
        }
        tracing::debug!(library, "{message}");
    }

    #[cfg(target_arch = "x86_64")]
    mod x86_64 {
        use std::ffi::{CStr, c_char, c_int, c_uint};

        use libxdp_sys::__va_list_tag;

        /// libbpf's and libxdp's debug level; not even formatted.
        const DEBUG: c_uint = 2;

        unsafe extern "C" {
            /// libbpf (linked through libxdp-sys). On x86_64 a `va_list`
            /// argument is a pointer to its one `__va_list_tag`.
            pub(super) fn libbpf_set_print(
                f: libxdp_sys::libxdp_print_fn_t,
            ) -> libxdp_sys::libxdp_print_fn_t;
            fn vsnprintf(
                buf: *mut c_char,
                len: usize,
                format: *const c_char,
                ap: *mut __va_list_tag,
            ) -> c_int;
        }

        /// Formats one message and records it under `library`, unless it is
        /// a debug message.
        ///
        /// # Safety
        ///
        /// `format` and `ap` must be a printf format and its arguments.
        unsafe fn forward(
            library: &'static str,
            level: c_uint,
            format: *const c_char,
            ap: *mut __va_list_tag,
        ) -> c_int {
            if level >= DEBUG {
                return 0;
            }
            let mut buf = [0 as c_char; 512];
            // SAFETY: `buf` is writable for its length, which is what is
            // passed; the format and arguments are the caller's promise.
            if unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), format, ap) } >= 0 {
                // SAFETY: vsnprintf NUL-terminates within the buffer.
                let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
                super::record(library, &text.to_string_lossy());
            }
            0
        }

        pub(super) unsafe extern "C" fn from_libxdp(
            level: c_uint,
            format: *const c_char,
            ap: *mut __va_list_tag,
        ) -> c_int {
            // SAFETY: libxdp passes a format and its arguments.
            unsafe { forward("libxdp", level, format, ap) }
        }

        pub(super) unsafe extern "C" fn from_libbpf(
            level: c_uint,
            format: *const c_char,
            ap: *mut __va_list_tag,
        ) -> c_int {
            // SAFETY: libbpf passes a format and its arguments.
            unsafe { forward("libbpf", level, format, ap) }
        }
    }
}

/// One way to try to open the socket.
#[derive(Clone, Copy, Debug)]
struct Attempt {
    /// `Native` or `Generic`.
    mode: XdpMode,
    zero_copy: bool,
}

impl Attempt {
    fn label(self) -> &'static str {
        match (self.mode, self.zero_copy) {
            (XdpMode::Generic, _) => "generic",
            (_, true) => "native zero-copy",
            (_, false) => "native copy",
        }
    }
}

/// The attempts `config` allows, best first, given the mode the program
/// is already attached in (by another source of this process), if any.
fn attempts(config: &XdpConfig, attached: Option<XdpMode>) -> Result<Vec<Attempt>, String> {
    let modes: &[XdpMode] = match (config.mode, attached) {
        (XdpMode::Auto, None) => &[XdpMode::Native, XdpMode::Generic],
        (XdpMode::Auto, Some(m)) | (m, None) => {
            if m == XdpMode::Native {
                &[XdpMode::Native]
            } else {
                &[XdpMode::Generic]
            }
        }
        (wanted, Some(m)) if wanted == m => {
            if m == XdpMode::Native {
                &[XdpMode::Native]
            } else {
                &[XdpMode::Generic]
            }
        }
        (wanted, Some(m)) => {
            return Err(format!(
                "another queue of this interface is open in {} mode; open every queue in \
                 the same mode (asked for {})",
                mode_name(m),
                mode_name(wanted)
            ));
        }
    };
    let mut out = Vec::new();
    for &mode in modes {
        let zero_copy: &[bool] = match (mode, config.zero_copy) {
            (XdpMode::Native, ZeroCopy::Auto) => &[true, false],
            (XdpMode::Native, ZeroCopy::On) => &[true],
            (_, ZeroCopy::Off) | (XdpMode::Generic, ZeroCopy::Auto) => &[false],
            _ => &[],
        };
        out.extend(
            zero_copy
                .iter()
                .map(|&zero_copy| Attempt { mode, zero_copy }),
        );
    }
    if out.is_empty() {
        return Err("zero-copy needs native mode".to_string());
    }
    Ok(out)
}

fn mode_name(mode: XdpMode) -> &'static str {
    match mode {
        XdpMode::Auto => "auto",
        XdpMode::Native => "native",
        XdpMode::Generic => "generic",
    }
}

/// Why an attempt failed: a one-line reason, and whether trying another
/// mode is pointless.
struct Failure {
    reason: String,
    fatal: bool,
}

/// Turns an OS error of an attempt into a [`Failure`].
fn failure(error: &io::Error, attempt: Attempt, config: &XdpConfig) -> Failure {
    let interface = &config.interface;
    let (reason, fatal) = match error.raw_os_error().unwrap_or(0) {
        libc::EPERM | libc::EACCES => (
            "AF_XDP needs root or CAP_NET_ADMIN+CAP_BPF (and CAP_NET_RAW)".to_string(),
            true,
        ),
        libc::EAFNOSUPPORT => (
            "the kernel lacks AF_XDP (CONFIG_XDP_SOCKETS)".to_string(),
            true,
        ),
        libc::ENOPROTOOPT => (
            "the kernel lacks an AF_XDP feature libxdp needs (ENOPROTOOPT)".to_string(),
            true,
        ),
        libc::ENODEV | libc::ENXIO => (live::NO_SUCH_INTERFACE.to_string(), true),
        libc::ENOMEM | libc::ENOBUFS => (
            format!(
                "not enough locked memory for the UMEM ({} frames of {} bytes) and rings: \
                 raise RLIMIT_MEMLOCK (systemd: LimitMEMLOCK=infinity; shell: ulimit -l unlimited)",
                config.fill_ring, config.frame_size
            ),
            true,
        ),
        libc::EOPNOTSUPP if attempt.zero_copy => {
            ("the driver does not support zero-copy".to_string(), false)
        }
        libc::EOPNOTSUPP if attempt.mode == XdpMode::Native => {
            ("the driver does not support native XDP".to_string(), false)
        }
        libc::ERANGE => (
            "the MTU is too large for XDP in this mode (lower it, or use generic mode)".to_string(),
            false,
        ),
        libc::EBUSY => (
            format!(
                "queue {} is taken by another AF_XDP socket, or another XDP program is \
                 attached (see `ip link show {interface}`; one nothing uses any more goes with \
                 `ip link set dev {interface} xdp off`, or `xdpgeneric off`)",
                config.queue
            ),
            false,
        ),
        libc::EEXIST => (
            format!(
                "an XDP program is attached in another mode (see `ip link show {interface}`; one \
                 nothing uses any more goes with `ip link set dev {interface} xdp off`, or \
                 `xdpgeneric off`)"
            ),
            false,
        ),
        libc::EINVAL => (
            format!(
                "the kernel refused the socket (EINVAL): does queue {} exist?",
                config.queue
            ),
            false,
        ),
        _ => (error.to_string(), false),
    };
    Failure { reason, fatal }
}

/// The xsk-rs pieces of one socket. Each queue holds the socket; libxdp
/// deletes it when the last is dropped.
struct Xsk {
    rx: RxQueue,
    fill: FillQueue,
    _comp: CompQueue,
    _tx: TxQueue,
    umem: Umem,
    /// The UMEM is on huge pages.
    huge_pages: bool,
}

/// The OS error behind an xsk-rs error, if it has one.
fn os_error(error: &dyn std::error::Error) -> io::Error {
    error
        .source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error)
        .map_or_else(
            || io::Error::other(error.to_string()),
            io::Error::from_raw_os_error,
        )
}

/// Creates the UMEM and the socket for one attempt (libxdp attaches no
/// program: [`Program`] is ours).
fn create(config: &XdpConfig, attempt: Attempt) -> Result<(Xsk, Vec<FrameDesc>), io::Error> {
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let frame_size = FrameSize::new(config.frame_size).map_err(|e| invalid(&e))?;
    let fill_size = QueueSize::new(config.fill_ring).map_err(|e| invalid(&e))?;
    let rx_size = QueueSize::new(config.rx_ring).map_err(|e| invalid(&e))?;
    let unused = QueueSize::new(UNUSED_RING).map_err(|e| invalid(&e))?;
    let umem_config = UmemConfig::builder()
        .frame_size(frame_size)
        .fill_queue_size(fill_size)
        .comp_queue_size(unused)
        .build()
        .map_err(|e| invalid(&e))?;
    let frame_count =
        NonZeroU32::new(config.fill_ring).ok_or_else(|| invalid(&"fill_ring is 0"))?;
    // On huge pages where the administrator reserved them (vm.nr_hugepages):
    // frames come from anywhere in the UMEM, and on 4 KiB pages reading
    // each one's headers was a TLB miss (28% of the capture thread's time
    // at 50k frames a second).
    let (huge_pages, (umem, descs)) = match Umem::new(umem_config, frame_count, true) {
        Ok(umem) => (true, umem),
        Err(_) => (
            false,
            Umem::new(umem_config, frame_count, false).map_err(|e| os_error(&e))?,
        ),
    };

    let mut bind = BindFlags::XDP_USE_NEED_WAKEUP;
    bind |= if attempt.zero_copy {
        BindFlags::XDP_ZEROCOPY
    } else {
        BindFlags::XDP_COPY
    };
    let socket_config = SocketConfig::builder()
        .rx_queue_size(rx_size)
        .tx_queue_size(unused)
        .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
        .bind_flags(bind)
        .build();
    let name: Interface = config
        .interface
        .parse()
        .map_err(|e: std::ffi::NulError| invalid(&e))?;
    // SAFETY: Socket::new's contract concerns sharing a UMEM between
    // sockets on one (interface, queue) pair. This UMEM is new and used by
    // this one socket only, so there is nothing to share.
    let (tx, rx, rings) = unsafe { Socket::new(socket_config, &umem, &name, config.queue) }
        .map_err(|e| os_error(&e))?;
    let (fill, comp) = rings.ok_or_else(|| io::Error::other("libxdp returned no fill ring"))?;
    Ok((
        Xsk {
            rx,
            fill,
            _comp: comp,
            _tx: tx,
            umem,
            huge_pages,
        },
        descs,
    ))
}

/// One attempt at opening: attaches the program in the attempt's mode
/// unless `existing` is attached already (the new one is returned, to be
/// kept), creates the socket, waiting up to [`BUSY_WAIT`] for a queue a
/// closed socket still holds, and puts it in the program's map.
fn try_open(
    config: &XdpConfig,
    attempt: Attempt,
    ifindex: u32,
    queues: u32,
    existing: Option<&Program>,
) -> Result<(Xsk, Vec<FrameDesc>, Option<Program>), io::Error> {
    let mut new = None;
    let program = match existing {
        Some(program) => program,
        None => &*new.insert(Program::attach(ifindex, queues, attempt.mode)?),
    };
    let busy_until = Instant::now() + BUSY_WAIT;
    let (xsk, descs) = loop {
        match create(config, attempt) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < busy_until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            created => break created?,
        }
    };
    program.insert(config.queue, xsk.rx.fd().as_raw_fd())?;
    Ok((xsk, descs, new))
}

/// Sets busy polling on the socket `fd` as `config` says.
fn busy_poll(fd: RawFd, config: &XdpConfig) -> io::Result<()> {
    let budget = c_int::try_from(config.batch).unwrap_or(c_int::MAX);
    let usecs = c_int::try_from(config.busy_poll_usecs).unwrap_or(c_int::MAX);
    for (option, value) in [
        (libc::SO_PREFER_BUSY_POLL, 1),
        (libc::SO_BUSY_POLL, usecs),
        (libc::SO_BUSY_POLL_BUDGET, budget),
    ] {
        // SAFETY: `value` is a c_int valid for reads of its size, which is
        // the length passed.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                option,
                (&raw const value).cast(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether the socket `fd` is bound in zero-copy mode.
fn bound_zero_copy(fd: RawFd) -> bool {
    let mut options = libc::xdp_options { flags: 0 };
    let mut len = std::mem::size_of::<libc::xdp_options>() as libc::socklen_t;
    // SAFETY: `options` and `len` are valid for writes and `len` is the
    // size of `options`; the kernel writes at most that much.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_XDP,
            libc::XDP_OPTIONS,
            (&raw mut options).cast(),
            &mut len,
        )
    };
    rc == 0 && options.flags & libc::XDP_OPTIONS_ZEROCOPY != 0
}

/// Live capture from one RX queue of one interface through an AF_XDP
/// socket.
///
/// Frames are lent straight from the UMEM and go back to the fill ring
/// when the callback has returned. AF_XDP delivers no receive timestamp,
/// so each batch is stamped with CLOCK_REALTIME, read once per batch.
/// Frames are Ethernet.
///
/// The source is `Send`. Sources of one interface (one per queue) may be
/// opened in any order from any thread: the first of this process on an
/// interface attaches the program, the others share it, and dropping the
/// last one detaches it.
pub struct XdpSource {
    interface: String,
    queue: u32,
    key: IfKey,
    mode: XdpMode,
    zero_copy: bool,
    /// `None` only while dropping.
    xsk: Option<Xsk>,
    fd: RawFd,
    /// Scratch descriptors the RX ring is read into.
    rx_descs: Vec<FrameDesc>,
    /// Frames owned by this source: neither in the fill ring nor in the
    /// RX ring.
    free: Vec<FrameDesc>,
    received: u64,
    dropped: u64,
    refresh: RefreshTimer,
    /// How long the next wait lets frames gather, at most `max_gather`
    /// (see [`MAX_GATHER_PER_FRAME`]).
    gather: Duration,
    max_gather: Duration,
    /// Frames a wake-up should find: an eighth of what the rings take
    /// while the thread sleeps.
    wake_frames: usize,
    /// Frames lent since the last wait (none: no traffic, and the next
    /// wait polls at once).
    lent_since_wait: usize,
}

impl std::fmt::Debug for XdpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpSource")
            .field("interface", &self.interface)
            .field("queue", &self.queue)
            .field("mode", &self.mode)
            .field("zero_copy", &self.zero_copy)
            .field("received", &self.received)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl XdpSource {
    /// Opens an AF_XDP socket on `config.queue` of `config.interface`.
    ///
    /// [`XdpMode::Auto`] tries native mode, then generic;
    /// [`ZeroCopy::Auto`] tries zero-copy (native only), then copy.
    ///
    /// Every error is a [`CaptureError::Interface`] whose reason is one
    /// line saying why (for every mode tried): no such interface, no such
    /// queue, AF_XDP missing from the kernel, missing privileges, the
    /// driver refusing a mode, another program in the way. The caller may
    /// log it and fall back to libpcap.
    pub fn open(config: &XdpConfig) -> Result<XdpSource, CaptureError> {
        library_log::install();
        let interface = config.interface.as_str();
        let error = |reason: String| interface_error(interface, reason);
        config
            .check()
            .map_err(|r| error(format!("bad AF_XDP configuration: {r}")))?;
        let ifindex = live::if_index(interface)?;
        let queues = rx_queue_count(interface).ok();
        if let Some(queues) = queues {
            if config.queue >= queues {
                return Err(error(format!(
                    "no RX queue {}: the interface has {queues} (0-{})",
                    config.queue,
                    queues - 1
                )));
            }
        }
        let key = IfKey::here(ifindex);
        let mut registry = registry();
        let attached = registry.get(&key).map(|a| a.mode);
        let attempts = attempts(config, attached).map_err(error)?;
        // Room for a socket on every queue (on as many as a queue number
        // allows, if sysfs cannot tell).
        let queues = queues.unwrap_or(config.queue + 1);
        let mut failures = Vec::new();
        for attempt in attempts {
            library_log::clear();
            let existing = registry.get(&key).map(|a| &a.program);
            let (xsk, descs, program) = match try_open(config, attempt, ifindex, queues, existing) {
                Ok(opened) => opened,
                Err(e) => {
                    let mut f = failure(&e, attempt, config);
                    if let Some(kernel) = library_log::take_kernel_message() {
                        f.reason = format!("{} (kernel: {kernel})", f.reason);
                    }
                    tracing::debug!(interface, queue = config.queue, attempt = attempt.label(), reason = %f.reason, "AF_XDP attempt failed");
                    if f.fatal {
                        return Err(error(f.reason));
                    }
                    failures.push(format!("{}: {}", attempt.label(), f.reason));
                    continue;
                }
            };
            let fd = xsk.rx.fd().as_raw_fd();
            if config.busy_poll_usecs > 0 {
                busy_poll(fd, config).map_err(|e| {
                    error(format!("cannot set busy polling (busy_poll_usecs): {e}"))
                })?;
            }
            let zero_copy = bound_zero_copy(fd);
            if let Some(program) = program {
                registry.insert(
                    key,
                    Attached {
                        sockets: 0,
                        mode: attempt.mode,
                        program,
                    },
                );
            }
            let mode = registry.get_mut(&key).map_or(attempt.mode, |a| {
                a.sockets += 1;
                a.mode
            });
            drop(registry);
            tracing::info!(
                interface,
                queue = config.queue,
                mode = mode_name(mode),
                zero_copy,
                huge_pages = xsk.huge_pages,
                "AF_XDP socket open"
            );
            if !xsk.huge_pages {
                static HINT: std::sync::Once = std::sync::Once::new();
                HINT.call_once(|| {
                    tracing::info!(
                        "AF_XDP frames are on 4 KiB pages: reserve huge pages (sysctl \
                         vm.nr_hugepages; {} of 2 MiB per socket) to spend less CPU per packet",
                        (u64::from(config.fill_ring) * u64::from(config.frame_size))
                            .div_ceil(2 << 20)
                    );
                });
            }
            // What the kernel can deliver while the thread sleeps: the
            // frames in the fill ring, as far as the RX ring has room.
            let capacity = config.fill_ring.min(config.rx_ring);
            let mut source = XdpSource {
                interface: interface.to_string(),
                queue: config.queue,
                key,
                mode,
                zero_copy,
                xsk: Some(xsk),
                fd,
                rx_descs: vec![FrameDesc::default(); config.batch],
                free: descs,
                received: 0,
                dropped: 0,
                refresh: RefreshTimer::new(),
                gather: MAX_GATHER_PER_FRAME * capacity,
                max_gather: MAX_GATHER_PER_FRAME * capacity,
                wake_frames: capacity as usize / 8,
                lent_since_wait: 0,
            };
            source.refill();
            return Ok(source);
        }
        Err(error(if failures.len() == 1 {
            failures.remove(0)
        } else {
            failures.join("; ")
        }))
    }

    /// The RX queue this socket is bound to.
    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Where the XDP program runs: [`XdpMode::Native`] or
    /// [`XdpMode::Generic`] (never `Auto`).
    pub fn mode(&self) -> XdpMode {
        self.mode
    }

    /// Whether the socket is bound in zero-copy mode.
    pub fn is_zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Whether the UMEM is on huge pages (as many as it needs were
    /// reserved: `vm.nr_hugepages`).
    pub fn on_huge_pages(&self) -> bool {
        self.xsk.as_ref().is_some_and(|x| x.huge_pages)
    }

    /// The socket's busy-poll time in microseconds, as the kernel holds it
    /// (`SO_BUSY_POLL`; 0: off).
    pub fn busy_poll_usecs(&self) -> io::Result<u32> {
        let mut value: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are valid for writes and `len` is the
        // size of `value`; the kernel writes at most that much.
        let rc = unsafe {
            libc::getsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_BUSY_POLL,
                (&raw mut value).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u32::try_from(value).unwrap_or(0))
    }

    /// Re-reads the kernel's socket statistics now (one system call) and
    /// returns the counters. The source also does this by itself, at most
    /// every 100 ms, while it is polled.
    pub fn refresh_stats(&mut self) -> Result<CaptureStats, CaptureError> {
        self.refresh.reset();
        self.read_kernel_stats()?;
        Ok(self.stats())
    }

    fn read_kernel_stats(&mut self) -> Result<(), CaptureError> {
        let Some(xsk) = &self.xsk else {
            return Ok(());
        };
        let s = xsk.rx.fd().xdp_statistics().map_err(|e| {
            interface_error(
                &self.interface,
                format!("cannot read AF_XDP statistics: {e}"),
            )
        })?;
        // rx_dropped: no frame for the packet or the packet too large
        // (copy mode counts an empty fill ring here too); rx_ring_full:
        // the RX ring was full. A zero-copy driver that finds the fill
        // ring empty leaves the packet to the NIC, which drops it: only
        // rx_fill_ring_empty_descs sees that.
        self.dropped = s.rx_dropped() + s.rx_ring_full();
        if self.zero_copy {
            self.dropped += s.rx_fill_ring_empty_descs();
        }
        Ok(())
    }

    fn maybe_refresh(&mut self) {
        if self.refresh.due() {
            if let Err(error) = self.read_kernel_stats() {
                tracing::debug!(%error, "XDP_STATISTICS failed");
            }
        }
    }

    /// Puts as many owned frames as fit back into the fill ring, and
    /// wakes the driver if it asked to be.
    fn refill(&mut self) {
        let Some(xsk) = &mut self.xsk else {
            return;
        };
        let owned = u32::try_from(self.free.len()).unwrap_or(u32::MAX);
        if owned == 0 {
            return;
        }
        let room = xsk.fill.nb_free(owned).min(owned) as usize;
        if room == 0 {
            return;
        }
        let start = self.free.len() - room;
        // SAFETY: the frames in `free` belong to this source's UMEM and
        // are in neither ring, so handing them to the kernel cannot alias
        // a frame it or a callback is using.
        let given = unsafe { xsk.fill.produce(&self.free[start..]) };
        self.free.drain(start..start + given);
        if given > 0 && xsk.fill.needs_wakeup() {
            // A poll(0) is the wakeup; its result does not matter.
            let _ = xsk.fill.wakeup(xsk.rx.fd_mut(), 0);
        }
    }
}

/// The gather after one that let `lent` frames come: halved when they
/// were more than `wake_frames`, doubled when less than half that, within
/// [`MIN_GATHER`] and `max`.
fn next_gather(gather: Duration, lent: usize, wake_frames: usize, max: Duration) -> Duration {
    if lent > wake_frames {
        (gather / 2).max(MIN_GATHER)
    } else if lent < wake_frames / 2 {
        (gather * 2).min(max)
    } else {
        gather
    }
}

/// The wall clock, for stamping a batch.
fn now() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    Timestamp::from_nanos(nanos)
}

impl CaptureSource for XdpSource {
    /// The interface name (the same for every queue).
    fn name(&self) -> &str {
        &self.interface
    }

    /// Lends up to `budget` frames from the RX ring, `batch` at a time,
    /// each batch stamped with one read of CLOCK_REALTIME; their UMEM
    /// frames go back to the fill ring after `f` has seen them. `Idle`
    /// when the ring is empty.
    fn poll_batch(
        &mut self,
        budget: usize,
        f: &mut dyn FnMut(&Frame<'_>),
    ) -> Result<Batch, CaptureError> {
        self.maybe_refresh();
        let mut lent = 0;
        while lent < budget {
            let Some(xsk) = &mut self.xsk else {
                return Ok(Batch::End);
            };
            let want = (budget - lent).min(self.rx_descs.len());
            // SAFETY: consume overwrites these scratch descriptors with
            // frames of the UMEM this RX ring belongs to.
            let n = unsafe { xsk.rx.consume(&mut self.rx_descs[..want]) };
            if n == 0 {
                break;
            }
            let ts = now();
            for (i, desc) in self.rx_descs[..n].iter().enumerate() {
                // The kernel wrote the frames from another CPU, and they
                // come from anywhere in the UMEM: the headers of one a
                // few ahead are fetched while this one is decoded.
                if let Some(ahead) = self.rx_descs[..n].get(i + PREFETCH_FRAMES_AHEAD) {
                    // SAFETY: as for `data` below: a frame of this UMEM
                    // the kernel handed over, read only.
                    let ahead = unsafe { xsk.umem.data(ahead) }.contents();
                    prefetch_line(ahead, 0);
                    prefetch_line(ahead, 64);
                }
                // SAFETY: `desc` is a frame of `xsk.umem` that the kernel
                // handed over in the RX ring. It goes back to the fill
                // ring only in `refill` below, after `f` has returned, so
                // nothing writes it while `f` borrows it, and the borrow
                // ends with `f`.
                let data = unsafe { xsk.umem.data(desc) }.contents();
                f(&Frame {
                    ts,
                    wire_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
                    link: LinkType::ETHERNET,
                    data,
                });
            }
            self.free.extend_from_slice(&self.rx_descs[..n]);
            lent += n;
            self.received += n as u64;
            self.refill();
        }
        if lent == 0 {
            // Frames may still be owed to the fill ring (it was full).
            self.refill();
            return Ok(Batch::Idle);
        }
        self.lent_since_wait += lent;
        Ok(Batch::Frames(lent))
    }

    /// Polls the socket (poll(2)) until a frame is in the RX ring or
    /// `timeout` has passed. While traffic flows it first sleeps a moment
    /// to let frames gather, so that each wake-up (of this thread, and of
    /// the flow workers it hands frames to) carries a batch rather than a
    /// frame or two, as a TPACKET_V3 block does for libpcap; the poll after
    /// it then finds them without sleeping again. The moment halves when a
    /// wake-up found more than `wake_frames`, and doubles when it
    /// found less than half that. (At 50k frames a second in a VM, a fixed
    /// 1 ms gather after the poll took 40% of the capture thread's time in
    /// context switches.)
    fn wait(&mut self, timeout: Duration) -> Result<(), CaptureError> {
        let lent = std::mem::take(&mut self.lent_since_wait);
        if lent > 0 {
            self.gather = next_gather(self.gather, lent, self.wake_frames, self.max_gather);
            std::thread::sleep(self.gather.min(timeout));
        }
        live::poll_readable(self.fd, timeout)
            .map_err(|e| interface_error(&self.interface, format!("poll failed: {e}")))?;
        self.maybe_refresh();
        Ok(())
    }

    /// `received` counts the frames lent; `dropped` is the kernel's count
    /// for this socket (frames with no UMEM frame to go to, too large for
    /// one, or finding the RX ring full), at most ~100 ms old while the
    /// source is polled (see [`refresh_stats`](XdpSource::refresh_stats));
    /// `filtered` is 0.
    fn stats(&self) -> CaptureStats {
        CaptureStats {
            received: self.received,
            dropped: self.dropped,
            filtered: 0,
        }
    }
}

impl Drop for XdpSource {
    fn drop(&mut self) {
        let mut registry = registry();
        // Deletes the socket, which leaves the program's map with it.
        drop(self.xsk.take());
        let last = registry.get_mut(&self.key).is_some_and(|attached| {
            attached.sockets -= 1;
            attached.sockets == 0
        });
        if last {
            // Closes the link: the program is detached.
            registry.remove(&self.key);
            tracing::debug!(interface = %self.interface, "last AF_XDP socket closed, program detached");
        }
    }
}

/// The source moves to its polling thread: checked when compiling, not
/// a test to run.
const _: fn() = || {
    fn is_send<T: Send>() {}
    is_send::<XdpSource>();
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_the_documentation() {
        let c = XdpConfig::new("eth0", 3);
        assert_eq!((c.interface.as_str(), c.queue), ("eth0", 3));
        assert_eq!((c.mode, c.zero_copy), (XdpMode::Auto, ZeroCopy::Auto));
        assert_eq!((c.fill_ring, c.rx_ring), (8192, 8192));
        assert_eq!((c.frame_size, c.batch), (4096, 64));
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn the_gather_follows_the_rate_within_its_bounds() {
        let ms = Duration::from_millis;
        let max = MAX_GATHER_PER_FRAME * 8192;
        assert_eq!(max, ms(4096) / 1000);
        // A slow link: each wake-up finds few frames, the gather grows to
        // the most the ring allows, and stays there.
        let mut g = ms(1);
        for _ in 0..4 {
            g = next_gather(g, 50, 1024, max);
        }
        assert_eq!(g, max);
        // A fast one: it shrinks until a wake-up finds about an eighth of
        // the ring, then holds.
        let rate = 1_000_000.0; // frames a second
        for _ in 0..6 {
            g = next_gather(g, (rate * g.as_secs_f64()) as usize, 1024, max);
        }
        assert_eq!(g, max / 4);
        assert_eq!(next_gather(g, 700, 1024, max), g);
        // Never below the floor.
        assert_eq!(next_gather(MIN_GATHER, 100_000, 1024, max), MIN_GATHER);
    }

    #[test]
    fn bad_numbers_are_named() {
        let mut c = XdpConfig::new("eth0", 0);
        c.fill_ring = 3000;
        assert_eq!(
            c.check(),
            Err("fill_ring 3000 is not a power of two".into())
        );
        let mut c = XdpConfig::new("eth0", 0);
        c.frame_size = 3000;
        assert!(c.check().unwrap_err().contains("frame_size 3000"));
    }

    fn labels(config: &XdpConfig, attached: Option<XdpMode>) -> Result<Vec<&'static str>, String> {
        attempts(config, attached).map(|a| a.into_iter().map(Attempt::label).collect())
    }

    #[test]
    fn auto_tries_native_zero_copy_then_native_copy_then_generic() {
        let mut c = XdpConfig::new("eth0", 0);
        assert_eq!(
            labels(&c, None).unwrap(),
            ["native zero-copy", "native copy", "generic"]
        );
        c.zero_copy = ZeroCopy::Off;
        assert_eq!(labels(&c, None).unwrap(), ["native copy", "generic"]);
        c.zero_copy = ZeroCopy::On;
        assert_eq!(labels(&c, None).unwrap(), ["native zero-copy"]);
        c.mode = XdpMode::Generic;
        c.zero_copy = ZeroCopy::Auto;
        assert_eq!(labels(&c, None).unwrap(), ["generic"]);
    }

    #[test]
    fn later_queues_follow_the_mode_already_attached() {
        let mut c = XdpConfig::new("eth0", 1);
        assert_eq!(labels(&c, Some(XdpMode::Generic)).unwrap(), ["generic"]);
        c.mode = XdpMode::Native;
        let e = labels(&c, Some(XdpMode::Generic)).unwrap_err();
        assert!(e.contains("generic mode"), "{e}");
        assert_eq!(
            labels(&c, Some(XdpMode::Native)).unwrap(),
            ["native zero-copy", "native copy"]
        );
    }

    #[test]
    fn permission_errors_are_fatal_and_say_what_is_needed() {
        let c = XdpConfig::new("eth0", 0);
        let a = Attempt {
            mode: XdpMode::Native,
            zero_copy: true,
        };
        let f = failure(&io::Error::from_raw_os_error(libc::EPERM), a, &c);
        assert!(f.fatal);
        assert!(f.reason.contains("needs root or CAP_NET_ADMIN+CAP_BPF"));
        let f = failure(&io::Error::from_raw_os_error(libc::EOPNOTSUPP), a, &c);
        assert!(!f.fatal);
        assert!(f.reason.contains("zero-copy"));
    }
}
