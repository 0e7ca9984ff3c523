//! Per-message defer and bounce logs (`defer/ID`, `bounce/ID`).
//!
//! Postfix counterparts: the logs that `bounce_append` writes and
//! `bounce_notify` and showq(8) read (`global/bounce_log.c`). qmgr appends
//! to them, showq reads the defer log for each recipient's reason, and
//! postsuper removes them with the message.
//!
//! A log holds one line per recipient and attempt:
//! `address TAB dsn TAB reason`, with tabs and line breaks in the fields
//! replaced by spaces.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The longest log read (a log grows by one line per recipient and
/// attempt; anything larger is damaged, and only its start is used).
pub const MAX_LOG_LEN: u64 = 16 << 20;

/// One line of a defer or bounce log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// The recipient.
    pub address: String,
    /// The RFC 3463 status (`5.1.1`).
    pub dsn: String,
    /// Why.
    pub reason: String,
}

fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '\t' | '\n' | '\r') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Appends entries to the log at `path` (created mode 0600), then fsyncs.
pub fn append(path: &Path, entries: &[LogEntry]) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut text = String::new();
    for e in entries {
        text.push_str(&clean(&e.address));
        text.push('\t');
        text.push_str(&clean(&e.dsn));
        text.push('\t');
        text.push_str(&clean(&e.reason));
        text.push('\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Parses a log; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<LogEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, '\t');
            Some(LogEntry {
                address: it.next()?.to_string(),
                dsn: it.next()?.to_string(),
                reason: it.next()?.to_string(),
            })
        })
        .collect()
}

/// Reads a log (at most [`MAX_LOG_LEN`] bytes); a missing file is empty.
pub fn read(path: &Path) -> io::Result<Vec<LogEntry>> {
    use std::io::Read;
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_LOG_LEN).read_to_end(&mut bytes)?;
    Ok(parse(&String::from_utf8_lossy(&bytes)))
}

/// The latest reason logged for each address (what `mailq` shows).
pub fn latest_reasons(log: &[LogEntry]) -> std::collections::HashMap<&str, &str> {
    log.iter()
        .map(|e| (e.address.as_str(), e.reason.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_parse_and_latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        assert!(read(&path).unwrap().is_empty());
        let e = |a: &str, r: &str| LogEntry {
            address: a.into(),
            dsn: "4.0.0".into(),
            reason: r.into(),
        };
        append(&path, &[e("a@x", "first\ttry"), e("b@x", "down")]).unwrap();
        append(&path, &[e("a@x", "second\ntry")]).unwrap();
        let log = read(&path).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(log[0].reason, "first try");
        let latest = latest_reasons(&log);
        assert_eq!(latest["a@x"], "second try");
        assert_eq!(latest["b@x"], "down");
        assert_eq!(parse("junk\nx\ty\n"), Vec::new());
    }
}
