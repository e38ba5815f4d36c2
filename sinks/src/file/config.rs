//! The file sink's keys: `[[sink]]` with `type = "file"`.

use std::path::PathBuf;

use flowstat_core::Sink;
use serde::Deserialize;

use super::{FileOptions, FileSink, FsyncPolicy};
use crate::config::{BuildSink, ConfigProblem, SinkContext};

/// `type = "file"`: newline-delimited JSON appended to a file, rotated by
/// size or age (see [`FileSink`]).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    /// `path`: the file written (required).
    pub path: PathBuf,
    /// `rotate_bytes`: rotate before the file would grow past this size
    /// (at least 4096; default: no limit).
    pub rotate_bytes: Option<u64>,
    /// `rotate_secs`: rotate once the file has been written this long (at
    /// least 1; default: no limit).
    pub rotate_secs: Option<u64>,
    /// `keep`: rotated files kept (default 5, at most 1000).
    pub keep: u32,
    /// `gzip`: compress rotated files (default false).
    pub gzip: bool,
    /// `fsync`: `"never"`, `"rotate"` (the default), `"flush"` or
    /// `"always"`.
    pub fsync: FsyncPolicy,
}

impl Default for FileConfig {
    /// No path (required), and [`FileOptions`]' defaults.
    fn default() -> Self {
        let o = FileOptions::new("");
        FileConfig {
            path: o.path,
            rotate_bytes: o.rotate_bytes,
            rotate_secs: o.rotate_secs,
            keep: o.keep,
            gzip: o.gzip,
            fsync: o.fsync,
        }
    }
}

impl FileConfig {
    /// The sink's options: these, appending to the file, whose directory,
    /// if the sink makes it, goes to `owner`.
    pub fn options(&self, owner: Option<(u32, u32)>) -> FileOptions {
        FileOptions {
            rotate_bytes: self.rotate_bytes,
            rotate_secs: self.rotate_secs,
            keep: self.keep,
            gzip: self.gzip,
            fsync: self.fsync,
            owner,
            ..FileOptions::new(&self.path)
        }
    }
}

impl BuildSink for FileConfig {
    fn problems(&self) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let mut check = |ok: bool, key: &str, reason: &str| {
            if !ok {
                out.push(ConfigProblem::new(key, reason));
            }
        };
        check(
            !self.path.as_os_str().is_empty(),
            "path",
            "is required for a file sink",
        );
        check(
            self.rotate_bytes.is_none_or(|b| b >= 4096),
            "rotate_bytes",
            "must be at least 4096",
        );
        check(
            self.rotate_secs.is_none_or(|s| s >= 1),
            "rotate_secs",
            "must be at least 1",
        );
        check(self.keep <= 1000, "keep", "must be at most 1000");
        if let Err(reason) = crate::dirs::check_parent(&self.path) {
            out.push(ConfigProblem::new("path", reason));
        }
        out
    }

    fn build(&self, ctx: &SinkContext) -> Result<Box<dyn Sink>, ConfigProblem> {
        if let Some(problem) = self.problems().into_iter().next() {
            return Err(problem);
        }
        Ok(Box::new(FileSink::new(self.options(ctx.owner))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SinkConfig, read_for_test};

    fn read(text: &str) -> Result<FileConfig, Vec<(String, String)>> {
        match read_for_test("file", text)? {
            SinkConfig::File(c) => Ok(c),
            #[allow(
                unreachable_patterns,
                reason = "unreachable when it is the only type built"
            )]
            other => panic!("not a file sink: {other:?}"),
        }
    }

    #[test]
    fn every_key_is_read_and_the_rest_default() {
        let c = read(
            "path = \"/var/lib/f.json\"\nrotate_bytes = 4096\nrotate_secs = 60\nkeep = 0\n\
             gzip = true\nfsync = \"always\"\n",
        )
        .unwrap();
        let o = c.options(None);
        assert_eq!(o.path, PathBuf::from("/var/lib/f.json"));
        assert!(o.append);
        assert_eq!((o.rotate_bytes, o.rotate_secs), (Some(4096), Some(60)));
        assert_eq!((o.keep, o.gzip, o.fsync), (0, true, FsyncPolicy::Always));
        let c = read("path = \"f.json\"\n").unwrap();
        assert_eq!(
            c,
            FileConfig {
                path: "f.json".into(),
                ..FileConfig::default()
            }
        );
        assert_eq!(
            (c.keep, c.gzip, c.fsync, c.rotate_bytes),
            (5, false, FsyncPolicy::Rotate, None)
        );
        for fsync in ["never", "rotate", "flush", "always"] {
            assert!(read(&format!("path = \"f\"\nfsync = \"{fsync}\"\n")).is_ok());
        }
    }

    #[test]
    fn bad_values_are_named() {
        let got = read(
            "rotate_bytes = 4095\nrotate_secs = 0\nkeep = 1001\ngzip = \"yes\"\n\
             fsync = \"sometimes\"\n",
        )
        .unwrap_err();
        for (key, reason) in [
            ("path", "is required for a file sink"),
            ("rotate_bytes", "must be at least 4096"),
            ("rotate_secs", "must be at least 1"),
            ("keep", "must be at most 1000"),
            ("gzip", "invalid type: string \"yes\", expected a boolean"),
            (
                "fsync",
                "unknown variant `sometimes`, expected one of `never`, `rotate`, `flush`, `always`",
            ),
        ] {
            assert!(
                got.iter().any(|(k, r)| k == key && r == reason),
                "{key}: {reason} not in {got:?}"
            );
        }
        assert_eq!(got.len(), 6, "{got:?}");
        let got = read("path = \"\"\nkeep = -1\n").unwrap_err();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[1],
            ("path".into(), "is required for a file sink".into())
        );
        assert_eq!(got[0].0, "keep");
    }

    #[test]
    #[cfg(feature = "socket")]
    fn keys_of_other_types_are_refused_by_name() {
        let got = read("path = \"f\"\nframing = \"length\"\n").unwrap_err();
        assert_eq!(
            got,
            vec![("framing".into(), "applies to type socket only".into())]
        );
    }

    #[test]
    fn an_invalid_config_does_not_build() {
        let e = FileConfig::default()
            .build(&SinkContext::default())
            .err()
            .unwrap();
        assert_eq!(e.to_string(), "path: is required for a file sink");
    }
}
