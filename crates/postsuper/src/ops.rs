//! The spool operations of postsuper (Postfix `postsuper.c`: `delete_one`,
//! `requeue_one`, `hold_one`, `release_one`, `super`, `fix_queue_id`).
//!
//! Every change is a rename(2) or unlink(2) followed by an fsync of the
//! directory, so a message is always either whole in one place or gone:
//! deleting removes the message's logs (`bounce`, `defer`, `trace`) first
//! and its queue file last, as Postfix does, so an interrupted delete
//! leaves the message intact (at worst without its logs); the queue file
//! itself goes in one unlink.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use postern_queue::{NewRecipient, Queue, QueueFile, QueueFileWriter, QueueId, RecipientStatus};
use postern_util::fs::sync_dir;

/// Non-ready files older than this in a message queue are left-overs of
/// a crashed writer (Postfix `MAX_TEMP_AGE`).
pub(crate) const MAX_TEMP_AGE: Duration = Duration::from_secs(24 * 3600);
/// A non-ready file this old whose writer is gone (no lock, see
/// `postern_queue::in_use`) is a left-over too. Younger files may belong
/// to a writer that has only just created them.
pub(crate) const MIN_TEMP_AGE: Duration = Duration::from_secs(5 * 60);

/// Whether a non-ready file of `age` at `path` was abandoned: a few
/// minutes old with no live writer, or, when the writer's lock cannot be
/// checked (e.g. a maildrop file the queue owner may not open), a day old
/// (Postfix's rule). A file whose writer holds its lock is never
/// abandoned: its time stamp can be far older than the writer's work (a
/// reused pool file keeps its old one until the message's first write).
fn abandoned(path: &Path, age: Duration) -> bool {
    match postern_queue::in_use(path) {
        Ok(true) => false,
        Ok(false) => age > MIN_TEMP_AGE,
        Err(_) => age > MAX_TEMP_AGE,
    }
}

/// Per-message log directories, removed with the message.
pub(crate) const LOG_QUEUES: [Queue; 3] = [Queue::Bounce, Queue::Defer, Queue::Trace];

/// The default queues of `-s`, `-p`, `-d` and `-r`: log directories
/// first, so that their files are in place before message files are
/// renamed (Postfix `default_queues`).
pub(crate) const DEFAULT_QUEUES: [Queue; 8] = [
    Queue::Defer,
    Queue::Bounce,
    Queue::Trace,
    Queue::Maildrop,
    Queue::Incoming,
    Queue::Active,
    Queue::Deferred,
    Queue::Hold,
];
/// The default queues of `-h`.
pub(crate) const HOLD_QUEUES: [Queue; 3] = [Queue::Incoming, Queue::Active, Queue::Deferred];
/// The default queues of `-H`.
pub(crate) const RELEASE_QUEUES: [Queue; 1] = [Queue::Hold];

/// Whether `queue` holds queue files (as opposed to per-message logs).
pub(crate) fn is_message_queue(queue: Queue) -> bool {
    matches!(
        queue,
        Queue::Maildrop | Queue::Incoming | Queue::Active | Queue::Deferred | Queue::Hold
    )
}

/// Counters for the summary lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) deleted: u64,
    pub(crate) requeued: u64,
    pub(crate) held: u64,
    pub(crate) released: u64,
    pub(crate) renamed: u64,
    pub(crate) moved: u64,
    pub(crate) corrupt: u64,
    pub(crate) purged: u64,
}

/// What `super_pass` does to every file it visits.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mass {
    pub(crate) structure: bool,
    pub(crate) purge: bool,
    pub(crate) delete_all: bool,
    pub(crate) requeue_all: bool,
    pub(crate) hold_all: bool,
    pub(crate) release_all: bool,
}

/// Where messages and warnings go (standard error and the mail log).
pub(crate) trait Report {
    /// An informational line (`ID: removed`).
    fn info(&mut self, text: &str);
    /// A warning.
    fn warn(&mut self, text: &str);
}

/// Removes `path`; a missing file is `Ok(false)`.
fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("remove {}: {e}", path.display()),
        )),
    }
}

/// Renames without replacing an existing file; a missing source is
/// `Ok(false)`.
fn rename_new(from: &Path, to: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "rename {} to {}: target exists",
                from.display(),
                to.display()
            ),
        ));
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("rename {} to {}: {e}", from.display(), to.display()),
        )),
    }
}

/// Whether `queue/id` is a committed queue file (Postfix `mail_open_ok`).
fn ready(spool: &Path, queue: Queue, id: &QueueId) -> bool {
    fs::symlink_metadata(id.path(spool, queue))
        .is_ok_and(|m| postern_queue::is_ready(&m) && m.nlink() == 1)
}

/// Moves `id` between queues, fsyncing both directories.
fn move_to(spool: &Path, id: &QueueId, from: Queue, to: Queue) -> io::Result<bool> {
    if !rename_new(&id.path(spool, from), &id.path(spool, to))? {
        return Ok(false);
    }
    sync_dir(&spool.join(to.dir_name()))?;
    sync_dir(&spool.join(from.dir_name()))?;
    Ok(true)
}

/// Deletes the message `id` from the first of `queues` that has it, with
/// its logs: logs first, queue file last.
pub(crate) fn delete_one(
    spool: &Path,
    queues: &[Queue],
    id: &QueueId,
    out: &mut impl Report,
) -> io::Result<bool> {
    for &queue in queues.iter().filter(|q| is_message_queue(**q)) {
        if !ready(spool, queue, id) {
            continue;
        }
        for log in LOG_QUEUES {
            if remove(&id.path(spool, log))? {
                sync_dir(&spool.join(log.dir_name()))?;
            }
        }
        if remove(&id.path(spool, queue))? {
            sync_dir(&spool.join(queue.dir_name()))?;
            out.info(&format!("{id}: removed"));
            return Ok(true);
        }
        // Lost a race (qmgr moved or removed it): look further.
    }
    Ok(false)
}

/// Puts `id` on hold.
pub(crate) fn hold_one(
    spool: &Path,
    queues: &[Queue],
    id: &QueueId,
    out: &mut impl Report,
) -> io::Result<bool> {
    // Maildrop mail is not sanitized yet and must not mix with the rest.
    for &queue in queues
        .iter()
        .filter(|q| is_message_queue(**q) && !matches!(q, Queue::Maildrop | Queue::Hold))
    {
        if ready(spool, queue, id) && move_to(spool, id, queue, Queue::Hold)? {
            out.info(&format!("{id}: placed on hold"));
            return Ok(true);
        }
    }
    Ok(false)
}

/// Releases `id` from hold into the deferred queue.
pub(crate) fn release_one(
    spool: &Path,
    queues: &[Queue],
    id: &QueueId,
    out: &mut impl Report,
) -> io::Result<bool> {
    if queues.contains(&Queue::Hold)
        && ready(spool, Queue::Hold, id)
        && move_to(spool, id, Queue::Hold, Queue::Deferred)?
    {
        out.info(&format!("{id}: released from hold"));
        return Ok(true);
    }
    Ok(false)
}

/// Requeues `id` from the first of `queues` that has it (never from
/// maildrop): its sender, arrival time, pending recipients (with DSN
/// NOTIFY), DSN envelope attributes and content are written as a new
/// maildrop file, which pickup(8) hands to cleanup(8) for rewriting
/// again as a new message; then the old queue file and its logs go.
///
/// Postfix renames the queue file into maildrop and lets pickup read it;
/// Postern's pickup reads only what postdrop writes, so the file is
/// rewritten in that form. XXX: DSN ORCPT and the original recipient
/// (`o`, `O` records) are not in that form and are lost, and a bounce log
/// (recipients that already failed but have not been reported yet) is
/// removed with the old file, so those recipients get no report.
pub(crate) fn requeue_one(
    spool: &Path,
    queues: &[Queue],
    id: &QueueId,
    out: &mut impl Report,
) -> io::Result<bool> {
    for &queue in queues
        .iter()
        .filter(|q| is_message_queue(**q) && **q != Queue::Maildrop)
    {
        if !ready(spool, queue, id) {
            continue;
        }
        let qf = match QueueFile::open(&id.path(spool, queue)) {
            Ok(qf) => qf,
            Err(postern_queue::Error::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) if e.is_corrupt() => {
                out.warn(&format!("{queue}/{id}: {e}: not requeued"));
                return Ok(false);
            }
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        let new = write_maildrop(spool, &qf).map_err(|e| io::Error::other(e.to_string()))?;
        if id.path(spool, Queue::Bounce).exists() {
            out.warn(&format!(
                "{id}: its bounce log is removed: recipients that already failed get no report"
            ));
        }
        for log in LOG_QUEUES {
            if remove(&id.path(spool, log))? {
                sync_dir(&spool.join(log.dir_name()))?;
            }
        }
        if remove(&id.path(spool, queue))? {
            sync_dir(&spool.join(queue.dir_name()))?;
        }
        out.info(&format!("{id}: requeued as maildrop/{new}"));
        return Ok(true);
    }
    Ok(false)
}

/// Writes what pickup reads (postdrop's form) for `qf` into maildrop.
fn write_maildrop(spool: &Path, qf: &QueueFile) -> Result<QueueId, postern_queue::Error> {
    let mut w = QueueFileWriter::create(spool, Queue::Maildrop)?;
    w.start_dir_sync();
    // pickup reads maildrop files as mail_owner; postdrop's are 0744 too.
    w.set_extra_mode(0o044);
    w.time(qf.arrival())?;
    w.sender(qf.sender())?;
    for name in ["envid", "ret", "encoding", "rewrite_context"] {
        if let Some(v) = qf.attr(name) {
            w.attr(name, v)?;
        }
    }
    for r in qf
        .recipients()
        .iter()
        .filter(|r| r.status == RecipientStatus::Pending)
    {
        w.recipient(&NewRecipient {
            notify: r.notify,
            ..NewRecipient::new(&r.address)
        })?;
    }
    w.begin_content()?;
    for piece in qf.content() {
        w.write_content(piece)?;
    }
    w.finish()
}

/// The id a file with name `id` and inode `ino` should have: the same
/// time, the right inode (Postfix `fix_queue_id`).
fn fixed_id(id: &QueueId, ino: u64) -> QueueId {
    let t = id
        .time()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    QueueId::from_parts(t.as_secs(), t.subsec_micros(), ino)
}

/// One pass over `queues` (Postfix `super`): structure check and repair,
/// purging of stale temporary files, and the `ALL` operations.
pub(crate) fn super_pass(
    spool: &Path,
    queues: &[Queue],
    mass: Mass,
    counts: &mut Counts,
    out: &mut impl Report,
) -> io::Result<()> {
    for &queue in queues {
        let dir = spool.join(queue.dir_name());
        Pass {
            spool,
            mass,
            counts: &mut *counts,
            out: &mut *out,
        }
        .visit(queue, &dir, 0)?;
    }
    Ok(())
}

/// Deepest subdirectory visited (Postfix hashed queues are at most a few
/// levels deep).
const MAX_DEPTH: usize = 4;

/// One walk over the queues, with what it does and what it found.
struct Pass<'a, R> {
    spool: &'a Path,
    mass: Mass,
    counts: &'a mut Counts,
    out: &'a mut R,
}

impl<R: Report> Pass<'_, R> {
    fn visit(&mut self, queue: Queue, dir: &Path, depth: usize) -> io::Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound && depth == 0 => {
                self.out
                    .warn(&format!("{}: no such directory", dir.display()));
                return Ok(());
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        let message_queue = is_message_queue(queue);
        for name in names {
            let path = dir.join(&name);
            let shown = format!(
                "{}/{}",
                queue.dir_name(),
                path.strip_prefix(self.spool.join(queue.dir_name()))
                    .unwrap_or(&path)
                    .display()
            );
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                // Queues are flat: a subdirectory is left from hashed
                // queues (another mail system) or alien. Its files go up to
                // the right place, then it goes.
                if depth < MAX_DEPTH && (self.mass.structure || self.mass.delete_all) {
                    self.visit(queue, &path, depth + 1)?;
                    match fs::remove_dir(&path) {
                        Ok(()) => self.out.info(&format!("{shown}: removed subdirectory")),
                        Err(e) => self.out.warn(&format!("remove subdirectory {shown}: {e}")),
                    }
                }
                continue;
            }
            if self.mass.delete_all {
                // A message file that is not ready is still being written:
                // its writer has not acknowledged it yet, and deleting it
                // would make that acknowledgement a lie. A message goes with
                // its logs, logs first.
                let name = name.to_str().and_then(|n| QueueId::parse(n).ok());
                match (message_queue, name) {
                    (true, _) if !postern_queue::is_ready(&meta) => {}
                    (true, Some(id)) if depth == 0 => {
                        if delete_one(self.spool, &[queue], &id, &mut *self.out)? {
                            self.counts.deleted += 1;
                        }
                    }
                    _ => {
                        if remove(&path)? && message_queue {
                            self.counts.deleted += 1;
                        }
                    }
                }
                continue;
            }
            let age = SystemTime::now()
                .duration_since(meta.modified().unwrap_or(SystemTime::now()))
                .unwrap_or_default();
            if !meta.file_type().is_file()
                || (self.mass.purge
                    && message_queue
                    && !postern_queue::is_ready(&meta)
                    && abandoned(&path, age))
            {
                // Symbolic links, FIFOs, sockets; abandoned temporary files.
                if remove(&path)? {
                    self.counts.purged += 1;
                    self.out.info(&format!(
                        "{shown}: removed {}",
                        if meta.file_type().is_file() {
                            "stale temporary file"
                        } else {
                            "non-file object"
                        }
                    ));
                }
                continue;
            }
            let name_str = name.to_str().unwrap_or("");
            let id = match QueueId::parse(name_str) {
                Ok(id) => id,
                Err(_) if name_str.starts_with('.') => continue, // a file being written
                Err(_) => {
                    if self.mass.structure && message_queue {
                        let target = self.spool.join(Queue::Corrupt.dir_name()).join(&name);
                        match rename_new(&path, &target) {
                            Ok(_) => {
                                sync_dir(&self.spool.join(Queue::Corrupt.dir_name()))?;
                                self.counts.corrupt += 1;
                                self.out
                                    .warn(&format!("bogus file name: {shown}: moved to corrupt"));
                            }
                            Err(e) => self.out.warn(&format!("bogus file name: {shown}: {e}")),
                        }
                    } else {
                        self.out.warn(&format!("bogus file name: {shown}"));
                    }
                    continue;
                }
            };
            let mut id = id;
            let mut path = path;
            // A file in a subdirectory goes up to its queue.
            if depth > 0 && self.mass.structure {
                let wanted = id.path(self.spool, queue);
                match rename_new(&path, &wanted) {
                    Ok(true) => {
                        sync_dir(&self.spool.join(queue.dir_name()))?;
                        self.counts.moved += 1;
                        self.out.info(&format!("{shown}: moved to {queue}/{id}"));
                        path = wanted;
                    }
                    Ok(false) => continue,
                    Err(e) => {
                        self.out.warn(&format!("{shown}: {e}"));
                        continue;
                    }
                }
            }
            // The name must match the inode (restored from a backup, or
            // copied from another machine): rename logs first, then the file,
            // to a name derived from the old one, so an interrupted run is
            // finished by the next.
            if self.mass.structure && message_queue && id.inode() != meta.ino() {
                let new = fixed_id(&id, meta.ino());
                for log in LOG_QUEUES {
                    if let Err(e) =
                        rename_new(&id.path(self.spool, log), &new.path(self.spool, log))
                    {
                        self.out.warn(&format!("{id}: {log} log: {e}"));
                    }
                }
                match rename_new(&path, &new.path(self.spool, queue)) {
                    Ok(true) => {
                        sync_dir(&self.spool.join(queue.dir_name()))?;
                        self.counts.renamed += 1;
                        self.out.info(&format!(
                            "{queue}/{id}: renamed to {new} to match its inode number"
                        ));
                        id = new;
                    }
                    Ok(false) => continue,
                    Err(e) => {
                        self.out.warn(&format!("{queue}/{id}: {e}"));
                        continue;
                    }
                }
            }
            if !message_queue || !postern_queue::is_ready(&meta) {
                continue;
            }
            if self.mass.requeue_all && queue != Queue::Maildrop {
                if requeue_one(self.spool, &[queue], &id, &mut *self.out)? {
                    self.counts.requeued += 1;
                }
            } else if self.mass.hold_all && queue != Queue::Maildrop && queue != Queue::Hold {
                if move_to(self.spool, &id, queue, Queue::Hold)? {
                    self.counts.held += 1;
                }
            } else if self.mass.release_all
                && queue == Queue::Hold
                && move_to(self.spool, &id, queue, Queue::Deferred)?
            {
                self.counts.released += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[derive(Default)]
    struct Notes(Vec<String>);
    impl Report for Notes {
        fn info(&mut self, t: &str) {
            self.0.push(t.to_string());
        }
        fn warn(&mut self, t: &str) {
            self.0.push(format!("warning: {t}"));
        }
    }

    fn spool() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for q in Queue::ALL {
            fs::create_dir(dir.path().join(q.dir_name())).unwrap();
        }
        dir
    }

    fn message(spool: &Path, queue: Queue, rcpts: &[&str]) -> QueueId {
        let mut w = QueueFileWriter::create(spool, queue).unwrap();
        w.time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
            .unwrap();
        w.sender("alice@example.org").unwrap();
        w.attr("envid", b"ENV1").unwrap();
        for r in rcpts {
            w.recipient(&NewRecipient {
                notify: Some(postern_queue::Notify::FAILURE),
                orcpt: Some("orig@example.org"),
                ..NewRecipient::new(r)
            })
            .unwrap();
        }
        w.begin_content().unwrap();
        w.write_content(b"Subject: s\n\nbody\n").unwrap();
        w.finish().unwrap()
    }

    fn log(spool: &Path, queue: Queue, id: &QueueId) {
        fs::write(id.path(spool, queue), "a@b\t4.0.0\tdown\n").unwrap();
    }

    #[test]
    fn delete_removes_logs_and_file() {
        let d = spool();
        let s = d.path();
        let id = message(s, Queue::Deferred, &["b@example.org"]);
        log(s, Queue::Defer, &id);
        log(s, Queue::Bounce, &id);
        let mut n = Notes::default();
        assert!(delete_one(s, &DEFAULT_QUEUES, &id, &mut n).unwrap());
        for q in [Queue::Deferred, Queue::Defer, Queue::Bounce] {
            assert!(!id.path(s, q).exists(), "{q}");
        }
        assert_eq!(n.0, [format!("{id}: removed")]);
        assert!(!delete_one(s, &DEFAULT_QUEUES, &id, &mut n).unwrap());
        // Only the named queues.
        let id = message(s, Queue::Hold, &["b@example.org"]);
        assert!(!delete_one(s, &[Queue::Deferred], &id, &mut n).unwrap());
        assert!(delete_one(s, &[Queue::Hold], &id, &mut n).unwrap());
    }

    #[test]
    fn hold_release_and_requeue() {
        let d = spool();
        let s = d.path();
        let mut n = Notes::default();
        let id = message(s, Queue::Deferred, &["b@example.org", "c@example.org"]);
        assert!(hold_one(s, &HOLD_QUEUES, &id, &mut n).unwrap());
        assert!(id.path(s, Queue::Hold).exists());
        assert!(!hold_one(s, &HOLD_QUEUES, &id, &mut n).unwrap());
        assert!(release_one(s, &RELEASE_QUEUES, &id, &mut n).unwrap());
        assert!(id.path(s, Queue::Deferred).exists());
        // Cross one recipient off, then requeue: only the other goes.
        let qf = QueueFile::open(&id.path(s, Queue::Deferred)).unwrap();
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(id.path(s, Queue::Deferred))
            .unwrap();
        postern_queue::mark_done(&f, qf.recipients()[0].offset).unwrap();
        log(s, Queue::Defer, &id);
        assert!(requeue_one(s, &DEFAULT_QUEUES, &id, &mut n).unwrap());
        assert!(!id.path(s, Queue::Deferred).exists());
        assert!(!id.path(s, Queue::Defer).exists());
        let dropped: Vec<_> = fs::read_dir(s.join("maildrop")).unwrap().collect();
        assert_eq!(dropped.len(), 1);
        let path = dropped[0].as_ref().unwrap().path();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o744
        );
        let opts = postern_queue::ReadOptions {
            rules: postern_wire::Rules::Post,
            ..Default::default()
        };
        let new = QueueFile::open_with(&path, &opts).unwrap();
        assert_eq!(new.sender(), "alice@example.org");
        assert_eq!(new.arrival(), qf.arrival());
        assert_eq!(new.attr("envid"), Some(&b"ENV1"[..]));
        let rcpts: Vec<_> = new
            .recipients()
            .iter()
            .map(|r| r.address.as_str())
            .collect();
        assert_eq!(rcpts, ["c@example.org"]);
        assert_eq!(
            new.recipients()[0].notify,
            Some(postern_queue::Notify::FAILURE)
        );
        assert_eq!(new.content_to_vec(), b"Subject: s\n\nbody\n");
    }

    #[test]
    fn structure_repair_and_purge() {
        let d = spool();
        let s = d.path();
        let mut n = Notes::default();
        let mut c = Counts::default();
        // A bogus name, a file in a hashed subdirectory, a name that does
        // not match its inode (with its defer log), a stale temporary file,
        // a fresh one, and a symbolic link.
        fs::write(s.join("deferred/not-an-id"), b"x").unwrap();
        let sub = message(s, Queue::Deferred, &["b@example.org"]);
        fs::create_dir(s.join("deferred/A")).unwrap();
        fs::rename(
            sub.path(s, Queue::Deferred),
            s.join("deferred/A").join(sub.as_str()),
        )
        .unwrap();
        let good = message(s, Queue::Incoming, &["b@example.org"]);
        let wrong = QueueId::from_parts(1_700_000_000, 5, 12345);
        fs::rename(
            good.path(s, Queue::Incoming),
            wrong.path(s, Queue::Incoming),
        )
        .unwrap();
        log(s, Queue::Defer, &wrong);
        let stale = s.join("incoming/.tmp.1.2");
        fs::write(&stale, b"partial").unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let fresh = s.join("incoming/.tmp.1.3");
        fs::write(&fresh, b"partial").unwrap();
        // Ten minutes old: abandoned, unless a writer still holds it.
        let minutes = SystemTime::now() - Duration::from_secs(600);
        let dead = s.join("incoming/.tmp.1.4");
        let live = s.join("incoming/.tmp.1.5");
        for p in [&dead, &live] {
            fs::write(p, b"partial").unwrap();
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(minutes)
                .unwrap();
        }
        // Two days old but locked: a writer took an old pool file.
        let reused = s.join("incoming/.tmp.1.6");
        fs::write(&reused, b"partial").unwrap();
        fs::File::options()
            .write(true)
            .open(&reused)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let _writers = [&live, &reused].map(|p| {
            nix::fcntl::Flock::lock(
                fs::File::open(p).unwrap(),
                nix::fcntl::FlockArg::LockExclusiveNonblock,
            )
            .unwrap()
        });
        std::os::unix::fs::symlink("/etc/passwd", s.join("hold/4Y5Lrq3yTsz1Qwm")).unwrap();
        let mass = Mass {
            structure: true,
            purge: true,
            ..Mass::default()
        };
        super_pass(s, &DEFAULT_QUEUES, mass, &mut c, &mut n).unwrap();
        assert!(s.join("corrupt/not-an-id").exists(), "{:?}", n.0);
        assert!(sub.path(s, Queue::Deferred).exists(), "{:?}", n.0);
        assert!(!s.join("deferred/A").exists());
        let fixed: Vec<_> = fs::read_dir(s.join("incoming"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(fixed.len(), 1);
        let fixed = QueueId::parse(&fixed[0]).unwrap();
        assert_eq!(fixed.time(), wrong.time());
        assert_eq!(
            fixed.inode(),
            fs::metadata(fixed.path(s, Queue::Incoming)).unwrap().ino()
        );
        assert!(fixed.path(s, Queue::Defer).exists());
        assert!(!stale.exists());
        assert!(fresh.exists());
        assert!(!dead.exists());
        assert!(live.exists());
        assert!(reused.exists());
        assert!(!s.join("hold/4Y5Lrq3yTsz1Qwm").exists());
        assert_eq!((c.corrupt, c.moved, c.renamed, c.purged), (1, 1, 1, 3));
        // A second pass finds nothing to do.
        let mut again = Counts::default();
        super_pass(s, &DEFAULT_QUEUES, mass, &mut again, &mut n).unwrap();
        assert_eq!(again, Counts::default());
    }

    #[test]
    fn mass_operations() {
        let d = spool();
        let s = d.path();
        let mut n = Notes::default();
        let a = message(s, Queue::Incoming, &["b@example.org"]);
        let b = message(s, Queue::Deferred, &["b@example.org"]);
        let m = message(s, Queue::Maildrop, &["b@example.org"]);
        let mut c = Counts::default();
        let hold = Mass {
            hold_all: true,
            ..Mass::default()
        };
        super_pass(s, &HOLD_QUEUES, hold, &mut c, &mut n).unwrap();
        assert_eq!(c.held, 2);
        assert!(a.path(s, Queue::Hold).exists() && b.path(s, Queue::Hold).exists());
        let release = Mass {
            release_all: true,
            ..Mass::default()
        };
        super_pass(s, &RELEASE_QUEUES, release, &mut c, &mut n).unwrap();
        assert_eq!(c.released, 2);
        let delete = Mass {
            delete_all: true,
            ..Mass::default()
        };
        log(s, Queue::Defer, &a);
        super_pass(s, &DEFAULT_QUEUES, delete, &mut c, &mut n).unwrap();
        assert_eq!(c.deleted, 3);
        assert!(!a.path(s, Queue::Defer).exists());
        assert!(!m.path(s, Queue::Maildrop).exists());
    }
}
