//! Mailbox writers shared by the delivery agents and the mail readers
//! (Postfix `maildir.c` of local(8)/virtual(8), `mbox_open.c`,
//! `mail_copy.c`, `dot_lockfile.c`, `deliver_flock.c`).
//!
//! - [`write_maildir`]: one new file in a Maildir: written unnamed in
//!   `tmp/` (`O_TMPFILE`; where the system has none, under `tmp/` with a
//!   unique name), synced, linked into `new/` as `TIME.PID_SEQ.HOSTNAME`
//!   with the Maildir++ size suffix (`,S=SIZE`), and `new/` synced.
//!   `tmp/`, `new/` and `cur/` are created (mode 0700) when missing.
//! - [`write_mbox`]: appends to a UNIX mailbox file under a `.lock`
//!   dotlock and an fcntl lock, with the `From sender  date` separator,
//!   `>From ` quoting and a trailing blank line; on error the file is
//!   truncated back to its original size.
//!
//! - [`deliver`]: either, as a delivery agent reports it.
//!
//! Both writers prepend `Return-Path: <sender>` and `Delivered-To: recipient` and
//! copy the content (LF-terminated lines, as stored in the queue)
//! otherwise byte for byte. Mailboxes use LF line endings, as Postfix's do.
//!
//! A size limit (`mailbox_size_limit`, `virtual_mailbox_limit`; 0 = none)
//! applies to the file written: the whole mbox file, or the one Maildir
//! file. Exceeding it fails like a write with `EFBIG`: `5.2.2`.
//!
//! DIAGNOSTICS: every failure is an [`Error`] that says whether it is
//! temporary (out of space or quota, a locked mailbox, `EAGAIN`, an mbox
//! file that cannot be opened or locked: `4.x.x`) or permanent (other
//! write errors: `5.2.0`, as Postfix bounces on e.g. `EACCES` in a
//! Maildir).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use postern_util::fs::sync_dir;

/// One message to store.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The envelope sender, empty for `<>`.
    pub sender: &'a str,
    /// The recipient, for `Delivered-To:` (lower-cased there, as Postfix
    /// does).
    pub recipient: &'a str,
    /// The message: header and body, LF-terminated lines.
    pub content: &'a [u8],
    /// The largest file this delivery may leave behind, in bytes; 0 means
    /// no limit.
    pub limit: u64,
}

/// A failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// Whether to try again later (otherwise bounce).
    pub temporary: bool,
    /// The RFC 3463 status, e.g. `4.2.2` or `5.2.0`.
    pub dsn: &'static str,
    /// Why, for logs and the DSN.
    pub reason: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.dsn, self.reason)
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Classifies a system error the way Postfix `mbox_dsn()` does, with
    /// full disks and quotas as temporary.
    fn io(e: &io::Error, what: impl std::fmt::Display) -> Error {
        Error::io_or(e, what, (false, "5.2.0"))
    }

    /// Like [`Error::io`], with `default` for errors not classified.
    fn io_or(e: &io::Error, what: impl std::fmt::Display, default: (bool, &'static str)) -> Error {
        let (temporary, dsn) = match e.raw_os_error() {
            Some(libc::EDQUOT) => (true, "4.2.2"),
            Some(libc::ENOSPC) => (true, "4.3.0"),
            Some(libc::EAGAIN | libc::ESTALE | libc::EINTR) => (true, "4.3.0"),
            Some(libc::EFBIG) => (false, "5.2.2"),
            _ => default,
        };
        Error {
            temporary,
            dsn,
            reason: format!("{what}: {e}"),
        }
    }
}

/// How [`write_mbox`] locks a mailbox (Postfix `deliver_lock_attempts`,
/// `deliver_lock_delay`, `stale_lock_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockOptions {
    /// How often to try each lock before giving up (at least once).
    pub attempts: u32,
    /// The pause between attempts.
    pub delay: Duration,
    /// A dotlock older than this is removed as stale.
    pub stale_after: Duration,
}

impl LockOptions {
    /// From the configuration's `deliver_lock_attempts`,
    /// `deliver_lock_delay` and `stale_lock_time`.
    pub fn from_config(cfg: &postern_config::Config) -> LockOptions {
        LockOptions {
            attempts: u32::try_from(cfg.int("deliver_lock_attempts")).unwrap_or(1),
            delay: cfg.time("deliver_lock_delay"),
            stale_after: cfg.time("stale_lock_time"),
        }
    }
}

impl Default for LockOptions {
    /// Postfix's defaults: 20 attempts, 1 s apart, stale after 500 s.
    fn default() -> LockOptions {
        LockOptions {
            attempts: 20,
            delay: Duration::from_secs(1),
            stale_after: Duration::from_secs(500),
        }
    }
}

/// Fails a write that would take the file beyond `limit` with `EFBIG`
/// (Postfix limits the stream the same way).
struct Limited<W> {
    inner: W,
    written: u64,
    limit: u64,
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if self.limit > 0 && self.written.saturating_add(len) > self.limit {
            return Err(io::Error::from_raw_os_error(libc::EFBIG));
        }
        let n = self.inner.write(buf)?;
        self.written = self
            .written
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the delivery headers and the content (Postfix `mail_copy()`);
/// `mbox` adds the `From ` line, `>From ` quoting and the blank line.
fn copy_message<W: Write>(out: &mut W, d: &Delivery<'_>, mbox: bool) -> io::Result<()> {
    if mbox {
        let sender = if d.sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            d.sender
        };
        let date = postern_util::time::now_local().strftime("%a %b %e %H:%M:%S %Y");
        writeln!(out, "From {sender}  {date}")?;
    }
    writeln!(out, "Return-Path: <{}>", d.sender)?;
    writeln!(out, "Delivered-To: {}", d.recipient.to_lowercase())?;
    if !mbox {
        // A Maildir file holds the content as it is: one write.
        return out.write_all(d.content);
    }
    for line in d.content.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    if !d.content.is_empty() && !d.content.ends_with(b"\n") {
        out.write_all(b"\n")?;
    }
    out.write_all(b"\n")
}

/// The size of what [`copy_message`] writes.
fn message_size(d: &Delivery<'_>, mbox: bool) -> u64 {
    let mut counter = Limited {
        inner: io::sink(),
        written: 0,
        limit: 0,
    };
    // Writing to a sink cannot fail.
    let _ = copy_message(&mut counter, d, mbox);
    counter.written
}

/// Writes the message to `file`, which holds `already` bytes, within
/// `d.limit`. On error nothing more is written later (the buffer is
/// discarded, not flushed on drop).
fn write_limited(file: &File, already: u64, d: &Delivery<'_>, mbox: bool) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(
        64 * 1024,
        Limited {
            inner: file,
            written: already,
            limit: d.limit,
        },
    );
    let result = copy_message(&mut out, d, mbox).and_then(|()| out.flush());
    let _ = out.into_parts();
    result
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// This host's name with `/` and `:` encoded as Maildir readers expect
/// (asked once per process: agents live for many deliveries).
fn maildir_hostname() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "localhost".to_string());
        host.replace('/', "\\057").replace(':', "\\072")
    })
    .clone()
}

/// Maildirs found whole (`tmp/`, `new/`, `cur/`) in the last minute, so
/// that a delivery does not look at the three directories each time; a
/// delivery that fails where one has gone since looks again.
fn whole_lately() -> &'static std::sync::Mutex<postern_util::cache::TtlCache<PathBuf, ()>> {
    static WHOLE: std::sync::OnceLock<
        std::sync::Mutex<postern_util::cache::TtlCache<PathBuf, ()>>,
    > = std::sync::OnceLock::new();
    WHOLE.get_or_init(|| {
        std::sync::Mutex::new(postern_util::cache::TtlCache::new(
            std::time::Duration::from_secs(60),
            1024,
        ))
    })
}

/// A name unique to this process and moment: `TIME.PID_SEQ.HOSTNAME`.
fn unique_name(host: &str) -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("{secs}.{}_{seq}.{host}", postern_util::msg::pid())
}

fn make_dir(path: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| Error::io(&e, format_args!("create maildir {}", path.display())))
}

/// Attempts at a unique name before giving up (names clash only when a
/// process ID is reused within a second).
const NAME_ATTEMPTS: u32 = 100;

/// Delivers `d` into the Maildir `dir` and returns the path of the new
/// file under `new/`.
pub fn write_maildir(dir: &Path, d: &Delivery<'_>) -> Result<PathBuf, Error> {
    write_maildir_as(dir, d, true)
}

/// [`write_maildir`], through an unnamed file when `unnamed` and the
/// system has them, else under a name in `tmp/`.
fn write_maildir_as(dir: &Path, d: &Delivery<'_>, unnamed: bool) -> Result<PathBuf, Error> {
    let subs = [dir.join("tmp"), dir.join("new"), dir.join("cur")];
    let lock = || whole_lately().lock().unwrap_or_else(|p| p.into_inner());
    let known = lock().get(dir).is_some();
    if !known {
        for sub in &subs {
            if !sub.is_dir() {
                make_dir(sub)?;
            }
        }
        lock().put(dir.to_path_buf(), ());
    }
    let result = write_maildir_in(&subs, d, unnamed);
    if result.is_err() && known && !subs.iter().all(|s| s.is_dir()) {
        // Removed since it was seen whole: make it again.
        lock().remove(dir);
        return write_maildir_as(dir, d, unnamed);
    }
    result
}

/// [`write_maildir_as`] in a Maildir whose `tmp/`, `new/` and `cur/` are
/// `subs`.
fn write_maildir_in(
    subs: &[PathBuf; 3],
    d: &Delivery<'_>,
    unnamed: bool,
) -> Result<PathBuf, Error> {
    let [tmp_dir, new_dir, _] = subs;
    let host = maildir_hostname();
    let size = message_size(d, false);
    // An unnamed file: deliveries to one mailbox do not queue on tmp/'s
    // lock while the file system looks for a free inode, and a crash
    // leaves nothing behind in tmp/.
    let unnamed_file = unnamed
        .then(|| postern_util::fs::unnamed_file(tmp_dir, 0o600))
        .flatten();
    if let Some(file) = unnamed_file {
        return write_unnamed(file, new_dir, &host, size, d);
    }

    // Create the file in tmp/ under a name nobody else has.
    let mut created = None;
    for _ in 0..NAME_ATTEMPTS {
        let name = unique_name(&host);
        let path = tmp_dir.join(&name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => {
                created = Some((name, path, f));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::io(
                    &e,
                    format_args!("create maildir file {}", path.display()),
                ));
            }
        }
    }
    let Some((name, tmp_path, file)) = created else {
        return Err(no_unique_name(tmp_dir));
    };
    let fail = |e: &io::Error, what: &str| {
        let _ = fs::remove_file(&tmp_path);
        Error::io(
            e,
            format_args!("{what} maildir file {}", tmp_path.display()),
        )
    };
    write_limited(&file, 0, d, false).map_err(|e| fail(&e, "write"))?;
    file.sync_all().map_err(|e| fail(&e, "fsync"))?;
    drop(file);

    // Link it into new/; a clash gets a fresh name.
    let linked = link_new(new_dir, &name, &host, size, |to| {
        fs::hard_link(&tmp_path, to)
    });
    let _ = fs::remove_file(&tmp_path);
    let new_path = linked.map_err(|e| match e {
        Some(e) => fail(&e, "link into new/ from"),
        None => no_unique_name(new_dir),
    })?;
    sync_new(new_dir, new_path)
}

/// Writes, syncs and names an unnamed file made in `tmp/`.
fn write_unnamed(
    file: File,
    new_dir: &Path,
    host: &str,
    size: u64,
    d: &Delivery<'_>,
) -> Result<PathBuf, Error> {
    let fail = |e: &io::Error, what: &str| {
        Error::io(
            e,
            format_args!("{what} maildir file in {}", new_dir.display()),
        )
    };
    write_limited(&file, 0, d, false).map_err(|e| fail(&e, "write"))?;
    file.sync_all().map_err(|e| fail(&e, "fsync"))?;
    let name = unique_name(host);
    let new_path = link_new(new_dir, &name, host, size, |to| {
        postern_util::fs::link_unnamed(&file, &nix::fcntl::AT_FDCWD, to)
    })
    .map_err(|e| match e {
        Some(e) => fail(&e, "link into new/"),
        None => no_unique_name(new_dir),
    })?;
    drop(file);
    sync_new(new_dir, new_path)
}

/// Gives the synced message file a name in `new/` with `link`: `name`
/// with the size suffix, or a fresh name after a clash. `Err(None)` when
/// no name was free.
fn link_new(
    new_dir: &Path,
    name: &str,
    host: &str,
    size: u64,
    link: impl Fn(&Path) -> io::Result<()>,
) -> Result<PathBuf, Option<io::Error>> {
    let mut new_path = new_dir.join(format!("{name},S={size}"));
    for _ in 0..NAME_ATTEMPTS {
        match link(&new_path) {
            Ok(()) => return Ok(new_path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                new_path = new_dir.join(format!("{},S={size}", unique_name(host)));
            }
            Err(e) => return Err(Some(e)),
        }
    }
    Err(None)
}

/// Makes the new name durable; without that the message is not
/// delivered, and its file goes.
fn sync_new(new_dir: &Path, new_path: PathBuf) -> Result<PathBuf, Error> {
    if let Err(e) = sync_dir(new_dir) {
        let _ = fs::remove_file(&new_path);
        return Err(Error::io(&e, format_args!("fsync {}", new_dir.display())));
    }
    Ok(new_path)
}

fn no_unique_name(dir: &Path) -> Error {
    Error {
        temporary: true,
        dsn: "4.2.0",
        reason: format!("no unique file name in {}", dir.display()),
    }
}

/// Failing to open or lock an mbox file defers (Postfix virtual(8)
/// opens mailboxes with the default status `4.2.0`): a missing parent
/// directory or a permission problem is usually fixed by the
/// administrator soon. Failing to write it bounces (`5.2.0`).
const OPEN_FAILURE: (bool, &str) = (true, "4.2.0");

/// A dotlock we created; removed on drop.
struct DotLock(PathBuf);

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn locked(path: &Path, how: &str) -> Error {
    Error {
        temporary: true,
        dsn: "4.2.0",
        reason: format!(
            "cannot update mailbox {}: mailbox locked ({how})",
            path.display()
        ),
    }
}

/// Creates `PATH.lock` exclusively (Postfix `dot_lockfile()`), removing a
/// stale one.
fn dotlock(path: &Path, opts: &LockOptions) -> Result<DotLock, Error> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    for attempt in 0..opts.attempts.max(1) {
        if attempt > 0 {
            std::thread::sleep(opts.delay);
        }
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&lock)
        {
            Ok(_) => return Ok(DotLock(lock)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stale = fs::metadata(&lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > opts.stale_after);
                if stale {
                    let _ = fs::remove_file(&lock);
                }
            }
            Err(e) => {
                return Err(Error::io_or(
                    &e,
                    format_args!("cannot create lock file {}", lock.display()),
                    OPEN_FAILURE,
                ));
            }
        }
    }
    Err(locked(path, "dotlock"))
}

/// Takes an exclusive fcntl lock on the whole file, with retries.
fn fcntl_lock(file: &File, path: &Path, opts: &LockOptions) -> Result<(), Error> {
    let spec = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    for attempt in 0..opts.attempts.max(1) {
        if attempt > 0 {
            std::thread::sleep(opts.delay);
        }
        match nix::fcntl::fcntl(file, nix::fcntl::FcntlArg::F_SETLK(&spec)) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {}
            Err(e) => {
                return Err(Error::io_or(
                    &io::Error::from(e),
                    format_args!("cannot lock mailbox {}", path.display()),
                    OPEN_FAILURE,
                ));
            }
        }
    }
    Err(locked(path, "fcntl"))
}

/// Where [`deliver`] stores a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailbox {
    /// A Maildir directory ([`write_maildir`]).
    Maildir(PathBuf),
    /// A UNIX mbox file ([`write_mbox`]).
    Mbox(PathBuf),
}

/// Stores `d` in `mailbox` and says how, for the delivery status
/// (`delivered to maildir`, `delivered to mailbox`). A failure's reason
/// names the kind of delivery (`mailbox delivery failed: ...`), as
/// local(8) and virtual(8) report it.
pub fn deliver(
    mailbox: &Mailbox,
    d: &Delivery<'_>,
    opts: &LockOptions,
) -> Result<&'static str, Error> {
    let (result, kind) = match mailbox {
        Mailbox::Maildir(dir) => (
            write_maildir(dir, d).map(|_| "delivered to maildir"),
            "maildir",
        ),
        Mailbox::Mbox(path) => (
            write_mbox(path, d, opts).map(|()| "delivered to mailbox"),
            "mailbox",
        ),
    };
    result.map_err(|e| Error {
        reason: format!("{kind} delivery failed: {}", e.reason),
        ..e
    })
}

/// Appends `d` to the mbox file `path` (created mode 0600 when missing)
/// under a dotlock and an fcntl lock.
pub fn write_mbox(path: &Path, d: &Delivery<'_>, opts: &LockOptions) -> Result<(), Error> {
    let _dotlock = dotlock(path, opts)?;
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Error::io_or(
                &e,
                format_args!("cannot open mailbox {}", path.display()),
                OPEN_FAILURE,
            )
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io(&e, format_args!("cannot stat mailbox {}", path.display())))?;
    if !meta.is_file() {
        return Err(Error {
            temporary: false,
            dsn: "5.2.0",
            reason: format!("mailbox {} is not a regular file", path.display()),
        });
    }
    fcntl_lock(&file, path, opts)?;
    // Size after locking: nobody else appends now.
    let original = file
        .metadata()
        .map_err(|e| Error::io(&e, format_args!("cannot stat mailbox {}", path.display())))?
        .len();
    let result = write_limited(&file, original, d, true).and_then(|()| file.sync_all());
    if let Err(e) = result {
        // Undo the partial append (Postfix mail_copy() does the same).
        let _ = file.set_len(original);
        return Err(Error::io(
            &e,
            format_args!("cannot update mailbox {}", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
