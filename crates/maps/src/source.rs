//! Reading table source files: logical lines (Postfix `readlline.c`) and
//! reloading a file when it changes (Postfix `dict_file.c`, and the
//! `dict_changed_name()` check that makes Postfix daemons restart).
//!
//! A file table keeps the parsed contents of its file together with the
//! file's identity (device, inode, size, modification time). At most once
//! per [`RECHECK`] a lookup compares that identity with the file on disk
//! and parses the file again when it differs. A file that cannot be read
//! at that point keeps the previous contents and logs a warning, once per
//! distinct failure.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::Error;

/// How often a lookup may look at the file on disk.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// One logical line: its first physical line number and its text, with
/// continuation lines joined on and the trailing newline removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) number: usize,
    pub(crate) text: String,
}

/// Splits `text` into logical lines, as Postfix `readlline()`: blank
/// lines and lines whose first non-blank character is `#` are skipped; a
/// line that starts with whitespace continues the previous logical line.
/// A continuation line with nothing to continue is reported in `warnings`
/// as `ORIGIN, line N: ...` and skipped.
pub(crate) fn logical_lines(text: &str, origin: &str, warnings: &mut Vec<String>) -> Vec<Line> {
    // Comments and blank lines end nothing: as in Postfix, they are
    // invisible, so a continuation after them still continues.
    let mut out: Vec<Line> = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some(line) => line.text.push_str(raw),
                _ => warnings.push(format!(
                    "{origin}, line {number}: logical line must not start with whitespace; ignoring it"
                )),
            }
            continue;
        }
        out.push(Line {
            number,
            text: raw.to_owned(),
        });
    }
    for line in &mut out {
        let end = line.text.trim_end().len();
        line.text.truncate(end);
    }
    out
}

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

/// Parses a file's text into a table; warnings are `PATH, line N: ...`.
pub(crate) type Parser<T> = Box<dyn Fn(&str, &str) -> (T, Vec<String>) + Send + Sync>;

struct State<T> {
    data: T,
    stamp: Stamp,
    checked: Instant,
    /// The last reload failure that was logged, so that a missing file is
    /// not reported on every check.
    last_failure: Option<String>,
}

/// A table built from a file, reloaded when the file changes.
pub(crate) struct FileTable<T> {
    spec: String,
    path: PathBuf,
    parse: Parser<T>,
    recheck: Duration,
    state: Mutex<State<T>>,
}

impl<T> std::fmt::Debug for FileTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileTable")
            .field("spec", &self.spec)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Reads the whole file and its identity (taken from the open descriptor,
/// before reading, so that a write during the read shows up as a change
/// at the next check).
pub(crate) fn read(path: &Path) -> Result<(String, Stamp), String> {
    let mut file = File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("fstat {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("open {}: not a regular file", path.display()));
    }
    let stamp = Stamp::of(&meta);
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes)
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    Ok((text, stamp))
}

fn log_warnings(warnings: &[String]) {
    for w in warnings {
        postern_util::warn!("{w}");
    }
}

impl<T> FileTable<T> {
    /// Reads and parses `path`; a file that cannot be read is an error
    /// (Postfix: fatal), bad lines are logged and skipped. `recheck` is
    /// how often lookups look at the file ([`RECHECK`] outside tests).
    pub(crate) fn open_with(
        spec: &str,
        path: &Path,
        parse: Parser<T>,
        recheck: Duration,
    ) -> Result<FileTable<T>, Error> {
        let (text, stamp) = read(path).map_err(|m| Error::new(spec, m))?;
        let (data, warnings) = parse(&text, &path.display().to_string());
        log_warnings(&warnings);
        Ok(FileTable {
            spec: spec.to_owned(),
            path: path.to_path_buf(),
            parse,
            recheck,
            state: Mutex::new(State {
                data,
                stamp,
                checked: Instant::now(),
                last_failure: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic elsewhere while holding the lock cannot leave the state
        // half-updated (it is replaced in one assignment), so carry on.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the current contents, reloading them first when the
    /// file changed and the last check is at least `recheck` old.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let mut state = self.lock();
        if state.checked.elapsed() >= self.recheck {
            state.checked = Instant::now();
            self.refresh(&mut state);
        }
        f(&state.data)
    }

    fn refresh(&self, state: &mut State<T>) {
        let changed = match std::fs::metadata(&self.path) {
            Ok(meta) => Stamp::of(&meta) != state.stamp,
            // Let read() produce the error message.
            Err(_) => true,
        };
        if !changed {
            return;
        }
        match read(&self.path) {
            Ok((text, stamp)) => {
                let (data, warnings) = (self.parse)(&text, &self.path.display().to_string());
                log_warnings(&warnings);
                postern_util::info!("{}: table has changed; reloaded", self.spec);
                state.data = data;
                state.stamp = stamp;
                state.last_failure = None;
            }
            Err(message) => {
                if state.last_failure.as_deref() != Some(message.as_str()) {
                    postern_util::warn!("{}: {message}; keeping the previous contents", self.spec);
                    state.last_failure = Some(message);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_join_continuations_and_skip_comments() {
        let text = "# comment\n\na b\n  c\n\t# indented comment\n d\ne f\r\n   \n";
        let mut w = Vec::new();
        let lines = logical_lines(text, "f", &mut w);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            lines,
            vec![
                Line {
                    number: 3,
                    text: "a b  c d".into()
                },
                Line {
                    number: 7,
                    text: "e f".into()
                },
            ]
        );
    }

    #[test]
    fn leading_continuation_is_reported() {
        let mut w = Vec::new();
        let lines = logical_lines("  orphan\nkey value\n", "/x/y", &mut w);
        assert_eq!(lines.len(), 1);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("/x/y, line 1: "), "{}", w[0]);
    }
}
