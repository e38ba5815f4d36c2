//! Dropping root once the captures are open.
//!
//! The agent starts as root (or with CAP_NET_RAW, CAP_NET_ADMIN and
//! CAP_BPF), opens every capture, then switches to the configured user and
//! group keeping only CAP_NET_RAW, to capture (libpcap reopens on some
//! errors). An open capture needs nothing more: AF_XDP's program goes when
//! its BPF link is closed, which takes no privilege.
//!
//! After the switch the bounding set holds that one alone and
//! no_new_privs is set: nothing else can come back, not even through an
//! exec. Capabilities are per thread, so this runs before any thread
//! starts.

use anyhow::{Context, bail};
use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Group, Uid, User, setgroups, setresgid, setresuid};

/// The capabilities kept after the switch.
pub const KEPT: [Capability; 1] = [Capability::CAP_NET_RAW];

/// The uid and gid `agent.user` and `agent.group` name, which the agent
/// runs as once it drops root; `None` when it keeps its user (no user
/// set, or one this host lacks: [`drop_to`] then says so).
pub fn owner(agent: &crate::config::AgentSection) -> Option<(u32, u32)> {
    let account = User::from_name(&agent.user).ok().flatten()?;
    let gid = match agent.group.as_str() {
        "" => account.gid,
        group => Group::from_name(group).ok().flatten()?.gid,
    };
    Some((account.uid.as_raw(), gid.as_raw()))
}

/// Whether this host has a user `name`.
pub fn user_exists(name: &str) -> bool {
    User::from_name(name).ok().flatten().is_some()
}

/// Whether this host has a group `name`.
pub fn group_exists(name: &str) -> bool {
    Group::from_name(name).ok().flatten().is_some()
}

/// Whether `uid` with group `gid` alone (the agent's groups after the
/// drop) may create files in directory `dir`, by its mode bits.
pub fn can_write(dir: &std::path::Path, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return false;
    };
    let bits = if uid == 0 {
        return true;
    } else if meta.uid() == uid {
        0o300
    } else if meta.gid() == gid {
        0o030
    } else {
        0o003
    };
    meta.mode() & bits == bits
}

/// Switches to `user` (and `group`, or the user's primary group) keeping
/// [`KEPT`]. With an empty `user`, root stays root; an unprivileged user
/// started with file capabilities (setcap) keeps only [`KEPT`] of them.
pub fn drop_to(user: &str, group: &str) -> anyhow::Result<()> {
    if user.is_empty() {
        if !Uid::effective().is_root() {
            narrow_to_kept().context("dropping capabilities not needed after start")?;
        }
        return Ok(());
    }
    let account = User::from_name(user)
        .with_context(|| format!("looking up user {user:?}"))?
        .with_context(|| {
            format!(
                "agent.user: no user {user:?} on this host; create it \
                 (adduser --system --group {user}) or set agent.user = \"\""
            )
        })?;
    let gid: Gid = if group.is_empty() {
        account.gid
    } else {
        Group::from_name(group)
            .with_context(|| format!("looking up group {group:?}"))?
            .with_context(|| format!("agent.group: no group {group:?} on this host"))?
            .gid
    };
    if Uid::effective() == account.uid {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        bail!(
            "agent.user: switching to {user:?} needs root (running as uid {})",
            Uid::effective()
        );
    }
    narrow_bounding_set();
    nix::sys::prctl::set_no_new_privs().context("setting no_new_privs")?;
    // Keep the permitted set across the uid change, then narrow it.
    caps::securebits::set_keepcaps(true).context("keeping capabilities across the user switch")?;
    setgroups(&[gid]).context("setting supplementary groups")?;
    setresgid(gid, gid, gid).with_context(|| format!("switching to group {gid}"))?;
    setresuid(account.uid, account.uid, account.uid)
        .with_context(|| format!("switching to user {user:?}"))?;
    narrow_to_kept()?;
    tracing::info!(
        user,
        gid = gid.as_raw(),
        "dropped root; kept CAP_NET_RAW (and no other, ever: bounding set and no_new_privs)"
    );
    Ok(())
}

/// Takes every capability but [`KEPT`] out of the bounding set, so that
/// none can ever come back. That needs CAP_SETPCAP, which root has (and
/// the package's unit grants until the drop); without it the set stays as
/// it is, and the log says so.
fn narrow_bounding_set() {
    let Ok(bounding) = caps::read(None, CapSet::Bounding) else {
        return;
    };
    for cap in bounding.into_iter().filter(|c| !KEPT.contains(c)) {
        if let Err(e) = caps::drop(None, CapSet::Bounding, cap) {
            tracing::warn!(
                "cannot narrow the capability bounding set ({cap}: {e}); it stays as it is"
            );
            return;
        }
    }
}

/// Keeps those of [`KEPT`] the process has, and no other capability (the
/// effective set is set to them too: a uid change from root clears it).
fn narrow_to_kept() -> anyhow::Result<()> {
    let have = caps::read(None, CapSet::Permitted).context("reading capabilities")?;
    let kept: CapsHashSet = KEPT.into_iter().filter(|c| have.contains(c)).collect();
    // Effective first: it must stay within the permitted set.
    caps::set(None, CapSet::Effective, &kept).context("setting effective capabilities")?;
    caps::set(None, CapSet::Permitted, &kept).context("narrowing permitted capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("clearing inheritable capabilities")?;
    Ok(())
}
