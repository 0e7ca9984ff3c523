//! Scanning `maildrop/` and copying each file to cleanup (Postfix
//! `pickup.c`: `pickup_service`, `pickup_file`, `pickup_copy`).
//!
//! A file is removed only after cleanup has answered that the message is
//! on stable storage (or discarded on purpose), so a crash at any point
//! loses nothing: at worst the message is queued twice. Outcomes:
//!
//! - accepted: the maildrop file is removed;
//! - refused for good (size, content, hops, no recipients): logged as a
//!   warning and removed (Postfix has cleanup bounce it; Postern has no
//!   bounce service yet, so the sender learns it from the log only);
//! - refused for now (cleanup's write or lookup errors) or cleanup
//!   unreachable: the file stays and the scan stops, to be retried at the
//!   next wakeup; after a cleanup internal error (which may concern this
//!   file only) the file stays and the scan goes on with the others;
//! - unreadable as a queue file (damaged, wrong record types): moved to
//!   `corrupt/` with a warning.
//!
//! Abandoned files (`.tmp.*`, or named files never made ready, left by a
//! postdrop that was killed) are removed once they are a day old.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use postern_ipc::cleanup::{self, Client, Recipient, flags, status};
use postern_queue::{Entry, Queue, QueueFile, QueueId, ReadOptions, is_ready};
use postern_util::{info, warn};
use postern_wire::Rules;

/// How old an abandoned file must be before it is removed (Postfix
/// pickup uses a day, too).
pub(crate) const STALE_AGE: Duration = Duration::from_secs(24 * 3600);

/// What happened to one maildrop file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Queued by cleanup (queue id) and removed from maildrop.
    Queued(String),
    /// Refused for good by cleanup and removed.
    Rejected(String),
    /// Moved to `corrupt/`.
    Corrupt,
    /// Left alone (vanished, or a problem with this file only).
    Skipped,
    /// Left alone; stop scanning (cleanup unreachable or in trouble).
    Stop,
}

/// The maildrop queue of one spool.
#[derive(Debug)]
pub(crate) struct Maildrop {
    queue_dir: PathBuf,
    timeout: Duration,
    warned: HashSet<OsString>,
}

/// What cleanup is told about a maildrop file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Request flags.
    pub(crate) flags: u64,
    /// The submitting user's numeric id.
    pub(crate) uid: u32,
    /// Envelope attributes, in order.
    pub(crate) attrs: Vec<(&'static str, String)>,
}

/// Decides the request flags and attributes for a maildrop file whose
/// owner is `owner` (the fallback when postdrop did not record a `uid`).
pub(crate) fn plan(qf: &QueueFile, owner: u32) -> Plan {
    let text = |name: &str| {
        qf.attr(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let uid = text("uid")
        .and_then(|u| u.parse::<u32>().ok())
        .unwrap_or(owner);
    let extract = text("extract_recipients").as_deref() == Some("1");
    let mut fl = flags::LOCAL;
    if extract {
        fl |= flags::EXTRACT_RECIPIENTS | flags::DROP_BCC;
    }
    let context = match text("rewrite_context").as_deref() {
        Some("remote") => "remote",
        _ => "local",
    };
    let mut attrs: Vec<(&'static str, String)> = vec![("rewrite_context", context.into())];
    if let Some(name) = text("full_name") {
        attrs.push(("full_name", name));
    }
    attrs.push(("submission_uid", uid.to_string()));
    for name in ["envid", "ret", "encoding"] {
        if let Some(value) = text(name) {
            attrs.push((name, value));
        }
    }
    Plan {
        flags: fl,
        uid,
        attrs,
    }
}

/// Whether a refusal is temporary: keep the file and try again later.
fn is_temporary(outcome: &cleanup::Outcome) -> bool {
    outcome.status & (status::BAD | status::WRITE | status::DEFER) != 0
}

impl Maildrop {
    /// The maildrop of the spool at `queue_dir`; cleanup requests time out
    /// after `timeout` (`ipc_timeout`).
    pub(crate) fn new(queue_dir: PathBuf, timeout: Duration) -> Maildrop {
        Maildrop {
            queue_dir,
            timeout,
            warned: HashSet::new(),
        }
    }

    /// Picks up every ready file, oldest id first, until cleanup cannot
    /// take more. Returns what happened to each file.
    pub(crate) fn scan(&mut self) -> Vec<(QueueId, Step)> {
        let entries = match postern_queue::scan(&self.queue_dir, Queue::Maildrop) {
            Ok(s) => s,
            Err(e) => {
                warn!("scan maildrop: {e}");
                return Vec::new();
            }
        };
        let mut ids = Vec::new();
        for entry in entries {
            match entry {
                Ok(Entry::Ready { id, .. }) => ids.push(id),
                Ok(Entry::NotReady { .. }) => {}
                Ok(Entry::Rejected { name, reason }) => {
                    if self.warned.insert(name.clone()) {
                        warn!(
                            "maildrop/{}: not a queue file ({reason:?}); left alone",
                            name.to_string_lossy()
                        );
                    }
                }
                Err(e) => warn!("scan maildrop: {e}"),
            }
        }
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let mut done = Vec::new();
        for id in ids {
            let step = self.pickup_file(&id);
            let stop = step == Step::Stop;
            done.push((id, step));
            if stop {
                break;
            }
        }
        done
    }

    /// Handles one ready maildrop file.
    pub(crate) fn pickup_file(&self, id: &QueueId) -> Step {
        let path = id.path(&self.queue_dir, Queue::Maildrop);
        let owner = match fs::symlink_metadata(&path) {
            Ok(meta) => meta.uid(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Step::Skipped,
            Err(e) => {
                warn!("maildrop/{id}: {e}");
                return Step::Skipped;
            }
        };
        let opts = ReadOptions {
            rules: Rules::Post,
            ..ReadOptions::default()
        };
        let qf = match QueueFile::open_with(&path, &opts) {
            Ok(qf) => qf,
            Err(e) if e.is_corrupt() => {
                warn!("maildrop/{id}: {e}; moving it to the corrupt queue");
                if let Err(e) =
                    postern_queue::move_file(&self.queue_dir, id, Queue::Maildrop, Queue::Corrupt)
                {
                    warn!("maildrop/{id}: cannot move to corrupt: {e}");
                    return Step::Skipped;
                }
                return Step::Corrupt;
            }
            Err(postern_queue::Error::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                return Step::Skipped;
            }
            Err(e) => {
                warn!("maildrop/{id}: {e}");
                return Step::Skipped;
            }
        };
        let plan = plan(&qf, owner);
        let mut client = match Client::connect(&self.queue_dir, self.timeout, plan.flags) {
            Ok(c) => c,
            Err(e) => {
                warn!("connect to the cleanup service: {e}; maildrop/{id} stays for later");
                return Step::Stop;
            }
        };
        let queue_id = client.queue_id().to_string();
        info!("{queue_id}: uid={} from=<{}>", plan.uid, qf.sender());
        let outcome = (|| {
            client.sender(qf.sender())?;
            for (name, value) in &plan.attrs {
                client.attr(name, value)?;
            }
            for r in qf.recipients() {
                client.recipient(&Recipient {
                    address: &r.address,
                    notify: r.notify.map_or(0, |n| n.bits()),
                    ..Recipient::default()
                })?;
            }
            client.begin_content()?;
            for piece in qf.content() {
                client.write_content(piece)?;
            }
            client.end_content()?;
            client.finish()
        })();
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                warn!("{queue_id}: cleanup service: {e}; maildrop/{id} stays for later");
                return Step::Stop;
            }
        };
        if !outcome.accepted() && is_temporary(&outcome) {
            warn!(
                "{queue_id}: cleanup refused maildrop/{id} for now: {}; will try again",
                outcome.smtp_reply().2
            );
            // A write or lookup failure affects every message: stop. An
            // internal error may be about this file only: go on with the
            // others, so one file cannot hold up the queue.
            if outcome.status & (status::WRITE | status::DEFER) != 0 {
                return Step::Stop;
            }
            return Step::Skipped;
        }
        if let Err(e) = postern_queue::remove(&self.queue_dir, id, Queue::Maildrop) {
            warn!("maildrop/{id}: remove after pickup: {e}");
        }
        if outcome.accepted() {
            Step::Queued(queue_id)
        } else {
            let reason = outcome.smtp_reply().2;
            warn!(
                "{queue_id}: maildrop/{id}: uid={} from=<{}>: rejected: {reason}",
                plan.uid,
                qf.sender()
            );
            Step::Rejected(reason)
        }
    }

    /// Removes abandoned files older than `max_age`: temporary names
    /// (`.tmp.*`) and queue files never made ready.
    pub(crate) fn sweep(&self, now: SystemTime, max_age: Duration) -> usize {
        let dir = self.queue_dir.join(Queue::Maildrop.dir_name());
        let Ok(entries) = fs::read_dir(&dir) else {
            return 0;
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let temp = name.as_encoded_bytes().starts_with(b".tmp.");
            let named = name.to_str().is_some_and(|n| QueueId::parse(n).is_ok());
            if !temp && !named {
                continue;
            }
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if !meta.file_type().is_file() || (named && is_ready(&meta)) {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            if age < max_age {
                continue;
            }
            let path: &Path = &entry.path();
            match fs::remove_file(path) {
                Ok(()) => {
                    warn!(
                        "maildrop/{}: removed an abandoned file ({}h old)",
                        name.to_string_lossy(),
                        age.as_secs() / 3600
                    );
                    removed += 1;
                }
                Err(e) => warn!("maildrop/{}: remove: {e}", name.to_string_lossy()),
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc;

    use postern_ipc::Conn;
    use postern_queue::{NewRecipient, Notify, QueueFileWriter};
    use postern_wire::RecordType;

    use super::*;

    fn spool() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for d in ["maildrop", "corrupt", "private"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        dir
    }

    /// A maildrop file as postdrop writes it.
    fn drop_file(spool: &Path, extract: bool) -> QueueId {
        let mut w = QueueFileWriter::create(spool, Queue::Maildrop).unwrap();
        w.time(SystemTime::now()).unwrap();
        w.attr("uid", b"1234").unwrap();
        w.attr("login", b"alice").unwrap();
        w.attr("rewrite_context", b"local").unwrap();
        w.attr("full_name", b"Alice Example").unwrap();
        w.sender("alice").unwrap();
        if extract {
            w.attr("extract_recipients", b"1").unwrap();
        }
        w.attr("envid", b"env-7").unwrap();
        w.recipient(&NewRecipient {
            notify: Notify::from_bits(10),
            ..NewRecipient::new("bob@example.test")
        })
        .unwrap();
        w.begin_content().unwrap();
        w.write_content(b"Subject: hi\n\nbody\nlast").unwrap();
        w.finish().unwrap()
    }

    /// What a fake cleanup saw.
    #[derive(Debug, Default)]
    struct Seen {
        flags: u64,
        records: Vec<(RecordType, Vec<u8>)>,
        content: Vec<u8>,
    }

    /// Serves `answers.len()` connections on private/cleanup, answering
    /// each with the given status and reason.
    fn fake_cleanup(spool: &Path, answers: Vec<(u64, &'static str)>) -> mpsc::Receiver<Seen> {
        let listener = UnixListener::bind(spool.join("private/cleanup")).unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for (n, (status, reason)) in answers.into_iter().enumerate() {
                let (stream, _) = listener.accept().unwrap();
                let conn = Conn::new(stream, Duration::from_secs(10)).unwrap();
                let id = format!("CLEANUPID{n}");
                let mut server = cleanup::Server::accept(conn, &id).unwrap();
                let mut seen = Seen {
                    flags: server.flags,
                    ..Seen::default()
                };
                loop {
                    let (kind, data) = server.next_record().unwrap();
                    postern_wire::content::join(kind, &data, &mut seen.content);
                    seen.records.push((kind, data));
                    if kind == RecordType::End {
                        break;
                    }
                }
                server.reply(status, reason).unwrap();
                tx.send(seen).unwrap();
            }
        });
        rx
    }

    fn maildrop_names(spool: &Path, queue: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(spool.join(queue))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn copies_to_cleanup_and_removes_only_after_ok() {
        let dir = spool();
        let id = drop_file(dir.path(), true);
        let seen = fake_cleanup(dir.path(), vec![(status::OK, "")]);
        let mut md = Maildrop::new(dir.path().to_path_buf(), Duration::from_secs(10));
        let steps = md.scan();
        assert_eq!(steps, vec![(id, Step::Queued("CLEANUPID0".into()))]);
        assert!(maildrop_names(dir.path(), "maildrop").is_empty());
        let seen = seen.recv().unwrap();
        assert_eq!(
            seen.flags,
            flags::LOCAL | flags::EXTRACT_RECIPIENTS | flags::DROP_BCC
        );
        let attrs: Vec<String> = seen
            .records
            .iter()
            .filter(|(k, _)| *k == RecordType::Attr)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
            .collect();
        assert_eq!(
            attrs,
            [
                "rewrite_context=local",
                "full_name=Alice Example",
                "submission_uid=1234",
                "envid=env-7"
            ]
        );
        assert!(
            seen.records
                .contains(&(RecordType::Sender, b"alice".to_vec()))
        );
        let rcpt = seen
            .records
            .iter()
            .position(|r| *r == (RecordType::Recipient, b"bob@example.test".to_vec()))
            .unwrap();
        assert_eq!(seen.records[rcpt - 1], (RecordType::DsnNotify, vec![10]));
        assert_eq!(seen.content, b"Subject: hi\n\nbody\nlast");
    }

    #[test]
    fn temporary_refusal_keeps_the_file_permanent_removes_it() {
        let dir = spool();
        let first = drop_file(dir.path(), false);
        let second = drop_file(dir.path(), false);
        let _seen = fake_cleanup(
            dir.path(),
            vec![
                (status::WRITE, ""),
                (status::SIZE, "5.3.4 message too big"),
                (status::OK, ""),
            ],
        );
        let mut md = Maildrop::new(dir.path().to_path_buf(), Duration::from_secs(10));
        // A write error stops the scan and keeps both files.
        let steps = md.scan();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].1, Step::Stop);
        assert_eq!(maildrop_names(dir.path(), "maildrop").len(), 2);
        // Next time: the first is refused for good, the second queued.
        let steps = md.scan();
        assert_eq!(
            steps,
            vec![
                (first, Step::Rejected("5.3.4 message too big".into())),
                (second, Step::Queued("CLEANUPID2".into())),
            ]
        );
        assert!(maildrop_names(dir.path(), "maildrop").is_empty());
    }

    #[test]
    fn an_internal_error_skips_one_file_only() {
        let dir = spool();
        let first = drop_file(dir.path(), false);
        let second = drop_file(dir.path(), false);
        let _seen = fake_cleanup(dir.path(), vec![(status::BAD, ""), (status::OK, "")]);
        let mut md = Maildrop::new(dir.path().to_path_buf(), Duration::from_secs(10));
        let steps = md.scan();
        assert_eq!(
            steps,
            vec![
                (first.clone(), Step::Skipped),
                (second, Step::Queued("CLEANUPID1".into())),
            ]
        );
        assert_eq!(maildrop_names(dir.path(), "maildrop"), [first.to_string()]);
    }

    #[test]
    fn without_cleanup_files_wait() {
        let dir = spool();
        drop_file(dir.path(), false);
        let mut md = Maildrop::new(dir.path().to_path_buf(), Duration::from_secs(1));
        let steps = md.scan();
        assert_eq!(steps[0].1, Step::Stop);
        assert_eq!(maildrop_names(dir.path(), "maildrop").len(), 1);
    }

    #[test]
    fn damaged_files_go_to_corrupt() {
        let dir = spool();
        let good = drop_file(dir.path(), false);
        // A truncated copy of a good file, committed (ready).
        let bad = QueueId::from_parts(1, 2, 3);
        let path = bad.path(dir.path(), Queue::Maildrop);
        let bytes = fs::read(good.path(dir.path(), Queue::Maildrop)).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
        let _seen = fake_cleanup(dir.path(), vec![(status::OK, "")]);
        let mut md = Maildrop::new(dir.path().to_path_buf(), Duration::from_secs(10));
        let steps = md.scan();
        assert!(steps.contains(&(bad.clone(), Step::Corrupt)), "{steps:?}");
        assert!(
            steps
                .iter()
                .any(|(id, s)| *id == good && matches!(s, Step::Queued(_)))
        );
        assert_eq!(maildrop_names(dir.path(), "corrupt"), [bad.to_string()]);
        assert!(maildrop_names(dir.path(), "maildrop").is_empty());
    }

    #[test]
    fn abandoned_files_are_swept_after_a_day() {
        let dir = spool();
        let ready = drop_file(dir.path(), false);
        let md_dir = dir.path().join("maildrop");
        fs::write(md_dir.join(".tmp.99.1"), b"partial").unwrap();
        let unready = QueueId::from_parts(5, 6, 7);
        fs::write(md_dir.join(unready.as_str()), b"partial").unwrap();
        fs::write(md_dir.join("README"), b"not ours").unwrap();
        let md = Maildrop::new(dir.path().to_path_buf(), Duration::from_secs(1));
        let now = SystemTime::now();
        assert_eq!(md.sweep(now, STALE_AGE), 0, "too young");
        assert_eq!(
            md.sweep(now + STALE_AGE + Duration::from_secs(60), STALE_AGE),
            2
        );
        assert_eq!(maildrop_names(dir.path(), "maildrop"), {
            let mut v = vec!["README".to_string(), ready.to_string()];
            v.sort();
            v
        });
    }

    #[test]
    fn plan_falls_back_to_the_file_owner() {
        let dir = spool();
        let mut w = QueueFileWriter::create(dir.path(), Queue::Maildrop).unwrap();
        w.time(SystemTime::now()).unwrap();
        w.sender("").unwrap();
        w.attr("rewrite_context", b"remote").unwrap();
        let id = w.finish().unwrap();
        let opts = ReadOptions {
            rules: Rules::Post,
            ..ReadOptions::default()
        };
        let qf = QueueFile::open_with(&id.path(dir.path(), Queue::Maildrop), &opts).unwrap();
        let p = plan(&qf, 42);
        assert_eq!(p.uid, 42);
        assert_eq!(p.flags, flags::LOCAL);
        assert_eq!(
            p.attrs,
            vec![
                ("rewrite_context", "remote".to_string()),
                ("submission_uid", "42".to_string())
            ]
        );
    }
}
