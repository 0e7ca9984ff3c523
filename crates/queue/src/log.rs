//! Per-message delivery logs: `bounce/ID` (failed recipients), `defer/ID`
//! (delayed ones, one line per attempt) and `trace/ID` (recipients
//! delivered with `NOTIFY=SUCCESS`).
//!
//! Postfix counterparts: `global/bounce_log.c` and the logs that the
//! bounce, defer and trace services of `bounce(8)` append to. Postern's
//! delivery agents and qmgr append to them directly; qmgr reads them to
//! build delivery status notifications, showq(8) reads the defer log for
//! each recipient's reason, and postsuper(1) removes them with the message.
//!
//! Each line is `address TAB dsn TAB reason`, optionally followed by `TAB
//! action` (the RFC 3464 action, for the trace log) and, when a remote
//! server gave the result, `TAB diagnostic TAB mta` (`smtp; 550 5.1.1
//! ...`, `dns; mx.example.com`). Tabs and line breaks inside the fields
//! become spaces. Every append is one `write` to a file
//! opened with `O_APPEND` and is fsynced before returning, so a line is
//! never lost once the caller goes on (e.g. to mark the recipient done).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The longest log read (a log grows by one line per recipient and
/// attempt; anything larger is damaged, and only its start is used).
pub const MAX_LOG_LEN: u64 = 16 << 20;

/// One line of a delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogEntry {
    /// The recipient.
    pub address: String,
    /// The RFC 3463 status (`5.1.1`).
    pub dsn: String,
    /// Why (or what happened).
    pub reason: String,
    /// The RFC 3464 action (`delivered`, `expanded`, `relayed`), empty in
    /// bounce and defer logs.
    pub action: String,
    /// The remote server's reply for the DSN `Diagnostic-Code:`
    /// (`smtp; 550 5.1.1 ...`), empty if none.
    pub diagnostic: String,
    /// The remote server for the DSN `Remote-MTA:` (`dns; mx.example`),
    /// empty if none.
    pub mta: String,
}

impl LogEntry {
    /// An entry without an action.
    pub fn new(address: &str, dsn: &str, reason: &str) -> LogEntry {
        LogEntry {
            address: address.into(),
            dsn: dsn.into(),
            reason: reason.into(),
            action: String::new(),
            diagnostic: String::new(),
            mta: String::new(),
        }
    }
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

/// The text of `entries`, one line each.
pub fn format(entries: &[LogEntry]) -> String {
    let mut text = String::new();
    for e in entries {
        text.push_str(&clean(&e.address));
        text.push('\t');
        text.push_str(&clean(&e.dsn));
        text.push('\t');
        text.push_str(&clean(&e.reason));
        let remote = !e.diagnostic.is_empty() || !e.mta.is_empty();
        if !e.action.is_empty() || remote {
            text.push('\t');
            text.push_str(&clean(&e.action));
        }
        if remote {
            text.push('\t');
            text.push_str(&clean(&e.diagnostic));
            text.push('\t');
            text.push_str(&clean(&e.mta));
        }
        text.push('\n');
    }
    text
}

/// Appends entries to the log at `path` (created mode 0600) and fsyncs it.
pub fn append(path: &Path, entries: &[LogEntry]) -> io::Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(format(entries).as_bytes())?;
    f.sync_all()
}

/// Parses a log; malformed lines are skipped.
pub fn parse(text: &str) -> Vec<LogEntry> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(6, '\t');
            Some(LogEntry {
                address: it.next()?.to_string(),
                dsn: it.next()?.to_string(),
                reason: it.next()?.to_string(),
                action: it.next().unwrap_or_default().to_string(),
                diagnostic: it.next().unwrap_or_default().to_string(),
                mta: it.next().unwrap_or_default().to_string(),
            })
        })
        .collect()
}

/// Reads a log (at most [`MAX_LOG_LEN`] bytes); a missing file is empty.
pub fn read(path: &Path) -> io::Result<Vec<LogEntry>> {
    read_existing(path).map(Option::unwrap_or_default)
}

/// Reads a log (at most [`MAX_LOG_LEN`] bytes); `None` when there is no
/// file, so that the caller need not try to remove it.
pub fn read_existing(path: &Path) -> io::Result<Option<Vec<LogEntry>>> {
    use std::io::Read;
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.take(MAX_LOG_LEN).read_to_end(&mut bytes)?;
    Ok(Some(parse(&String::from_utf8_lossy(&bytes))))
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
    fn round_trip_with_and_without_action() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ID");
        let a = LogEntry::new("a@x", "4.0.0", "try\tagain\nlater");
        let b = LogEntry {
            action: "delivered".into(),
            ..LogEntry::new("b@x", "2.0.0", "delivered to mailbox")
        };
        append(&p, &[a, b.clone()]).unwrap();
        append(&p, &[]).unwrap();
        let got = read(&p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].reason, "try again later");
        assert_eq!(got[0].action, "");
        assert_eq!(got[1], b);
        assert!(read(&dir.path().join("none")).unwrap().is_empty());
        assert_eq!(parse("junk\nx\ty\n"), vec![]);
    }

    #[test]
    fn remote_fields_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ID");
        let e = LogEntry {
            diagnostic: "smtp; 550 5.1.1 no".into(),
            mta: "dns; mx.remote.test".into(),
            ..LogEntry::new("a@x", "5.1.1", "host said no")
        };
        append(&p, std::slice::from_ref(&e)).unwrap();
        assert_eq!(read(&p).unwrap(), vec![e]);
    }

    #[test]
    fn append_parse_and_latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        assert!(read(&path).unwrap().is_empty());
        let e = |a: &str, r: &str| LogEntry::new(a, "4.0.0", r);
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
