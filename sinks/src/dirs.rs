//! The directory a file or Unix socket goes in: made at start when it is
//! missing, as systemd's StateDirectory and RuntimeDirectory would, so
//! that a config with the package's paths also runs outside systemd.

use std::io;
use std::path::Path;

/// Whether the directory `path` goes in exists or can be made: its
/// nearest existing ancestor is a directory. Says what is in the way.
pub fn check_parent(path: &Path) -> Result<(), String> {
    let Some(dir) = parent(path) else {
        return Ok(());
    };
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(format!(
                    "the directory {} cannot be made: {} is not a directory",
                    dir.display(),
                    at.display()
                ));
            }
            // A file on the way shows as "not a directory" from below it.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                match at.parent() {
                    Some(up) if !up.as_os_str().is_empty() => at = up,
                    _ => return Ok(()),
                }
            }
            Err(e) => return Err(format!("cannot look at {}: {e}", at.display())),
        }
    }
}

/// Makes the directory `path` goes in, and the missing ones above it,
/// when it is missing; the directory made is given to `owner` (uid, gid),
/// the user the agent runs as once it drops root. True if one was made.
pub fn make_parent(path: &Path, owner: Option<(u32, u32)>) -> io::Result<bool> {
    let Some(dir) = parent(path).filter(|d| !d.is_dir()) else {
        return Ok(false);
    };
    std::fs::create_dir_all(dir)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    }
    tracing::info!(dir = %dir.display(), "made the missing directory");
    Ok(true)
}

fn parent(path: &Path) -> Option<&Path> {
    path.parent().filter(|d| !d.as_os_str().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_made_and_a_file_in_the_way_is_named() {
        let tmp = std::env::temp_dir().join(format!("flowstat-dirs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let deep = tmp.join("a/b/flows.json");
        assert_eq!(check_parent(&deep), Ok(()));
        assert!(make_parent(&deep, None).unwrap());
        assert!(tmp.join("a/b").is_dir());
        assert!(!make_parent(&deep, None).unwrap(), "made only once");
        std::fs::write(tmp.join("file"), b"").unwrap();
        let blocked = tmp.join("file/sub/flows.json");
        let err = check_parent(&blocked).unwrap_err();
        assert!(err.contains("file is not a directory"), "{err}");
        assert!(make_parent(&blocked, None).is_err());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
