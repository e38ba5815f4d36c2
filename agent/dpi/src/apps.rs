//! The application table: ids, names and categories, and the host-name
//! suffixes and networks that identify each application.

use std::path::Path;

/// Why an application table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The reason.
        source: std::io::Error,
    },
}

/// The loaded application table.
#[derive(Debug, Default)]
pub struct Applications {}

impl Applications {
    /// The table shipped with flowstat (`conf/applications.toml`).
    pub fn builtin() -> Applications {
        Applications {}
    }

    /// Loads the table from `path`.
    pub fn load(path: &Path) -> Result<Applications, AppsError> {
        std::fs::read_to_string(path).map_err(|source| AppsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Applications {})
    }

    /// The application a host name belongs to.
    pub fn by_host(&self, _host: &str) -> Option<u32> {
        None
    }

    /// The application an address belongs to (`ip_version` 4 or 6; an
    /// IPv4 address in the first 4 bytes).
    pub fn by_addr(&self, _ip_version: u8, _addr: &[u8; 16]) -> Option<u32> {
        None
    }

    /// The name of application `id`, "Unknown" when the table has none.
    pub fn name(&self, _id: u32) -> &str {
        "Unknown"
    }
}
