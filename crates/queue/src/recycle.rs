//! Reusing the inodes of finished queue files for new ones.
//!
//! Every message costs the file system one inode allocation (cleanup
//! creates the queue file) and one inode release (qmgr removes it). Both
//! touch the inode bitmap and group descriptors, and on ext4 without a
//! journal the allocator also skips every inode freed in the last half
//! minute (`recently_deleted`), so under a steady load each new file costs
//! a scan over the files removed before it. Postern keeps the inodes
//! instead: qmgr retires a finished file into a small pool, the spool
//! directory `pool/` ([`retire`]), and cleanup's next new queue file takes
//! one from there (`take`, called by [`crate::QueueFileWriter::create`],
//! or ahead of its messages in batches, [`prepare`]), written over. The
//! queue id stays unique: it is made of the creation time and the inode
//! number, and a retired file's old name is gone before the inode is used
//! again.
//!
//! Safety:
//! - a pool file lives outside the queues (no scanner lists it) and has
//!   the not-ready mode 0600 before it is renamed into the pool, so no
//!   reader ever takes it for a message;
//! - before a taker uses the files it has listed, it fsyncs `active/`, so
//!   that the removal of their old names is on disk before their inodes
//!   hold new messages (one directory fsync per listing, not per file);
//! - a file is taken by renaming it to the taker's private temporary name
//!   (atomic: two cleanup processes never get the same file) and is used
//!   only when it is a regular file with a single link that belongs to
//!   this user: a crash can leave a file both in the pool and in a queue
//!   (the pool rename is not fsynced), and such a file is never truncated;
//! - the pool holds at most [`POOL_MAX`] files: each keeps its blocks up
//!   to [`KEEP_SMALL_MAX`] bytes, and at most [`KEEP_BLOCKS_FILES`] of
//!   them up to [`KEEP_BLOCKS_MAX`] (so at most 248 MiB in all, after a
//!   burst of that much mail); those have names that begin with
//!   [`BLOCKS_PREFIX`], so a count of names tells how many there are,
//!   and takers try them first. Larger files are emptied (an empty inode
//!   costs the disk nothing but still spares the inode allocator).
//!   Beyond that, and whenever anything fails, a finished file is removed
//!   as before;
//! - anyone may remove pool files (`rm pool/*` is safe while Postern
//!   runs); that only shrinks the pool.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, Permissions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Error, Queue, QueueId};

/// The most finished files kept for reuse.
pub const POOL_MAX: usize = 16384;

/// How many pool files keep blocks beyond [`KEEP_SMALL_MAX`].
const KEEP_BLOCKS_FILES: usize = 1024;

/// The start of the pool names of files that keep blocks beyond
/// [`KEEP_SMALL_MAX`] (not a queue id character).
const BLOCKS_PREFIX: char = '+';

/// A retired file larger than this gives its blocks back at once; a
/// smaller one keeps them for the next message to write over (no block
/// to free and allocate again: emptying a file cost qmgr a seventh of its
/// time in a burst). 128 KiB holds a message with a small attachment;
/// at 64 KiB, a 64 KiB message (whose queue file is a little longer)
/// lost its blocks, and accepting such messages in one session was 7 to
/// 12 % slower (block allocation, and a discard per freed extent where
/// the file system is mounted with `discard`).
const KEEP_BLOCKS_MAX: u64 = 128 * 1024;

/// What every pool file may keep.
const KEEP_SMALL_MAX: u64 = 8 * 1024;

/// The most names a taker reads from the pool at a time (a full pool is
/// long; the first names serve as well as any).
const LIST_MAX: usize = 1024;

/// The pool's bounds ([`POOL_MAX`] and [`KEEP_BLOCKS_FILES`]; tests use
/// smaller ones).
#[derive(Clone, Copy)]
struct Limits {
    max: usize,
    keep_blocks: usize,
}

const LIMITS: Limits = Limits {
    max: POOL_MAX,
    keep_blocks: KEEP_BLOCKS_FILES,
};

/// The spool directory of the pool (created by master with the others;
/// without it nothing is kept).
pub const POOL_DIR: &str = "pool";

/// How long a taker waits before it looks at an empty pool again.
const RESCAN_EMPTY: Duration = Duration::from_millis(50);

/// How many names a taker finds gone before it makes a new file instead.
const MAX_MISSES: usize = 3;

/// How many locked files a taker puts back before it makes a new file
/// instead.
const MAX_BUSY: usize = 8;

/// How many retirements pass between two counts of the pool.
const RECOUNT_EVERY: usize = 64;

/// A process's view of the pool: names seen (taker) and an estimate of the
/// pool's size (retirer).
struct Pool {
    /// The pool directory the rest is about.
    dir: PathBuf,
    candidates: Vec<String>,
    next_scan: Option<Instant>,
    estimate: Option<Count>,
    retired: usize,
}

/// What a listing of the pool tells.
#[derive(Clone, Copy, Debug, Default)]
struct Count {
    /// Files in the pool.
    files: usize,
    /// Those that keep blocks beyond [`KEEP_SMALL_MAX`].
    large: usize,
}

/// The views of the pools a process uses: one in a daemon, several in
/// tests (which run in parallel; a single view reset by each switch of
/// directory made their counts depend on each other).
struct Pools(Vec<Pool>);

/// The most pools a process keeps a view of.
const POOLS_MAX: usize = 8;

static POOL: Mutex<Pools> = Mutex::new(Pools(Vec::new()));

impl Pools {
    /// The view of the pool in `dir`, made when new.
    fn at(&mut self, dir: &Path) -> &mut Pool {
        let i = match self.0.iter().position(|p| p.dir == dir) {
            Some(i) => i,
            None => {
                if self.0.len() >= POOLS_MAX {
                    self.0.remove(0);
                }
                self.0.push(Pool {
                    dir: dir.to_path_buf(),
                    candidates: Vec::new(),
                    next_scan: None,
                    estimate: None,
                    retired: 0,
                });
                self.0.len() - 1
            }
        };
        &mut self.0[i]
    }
}

/// Up to `max` names of pool files.
fn pool_names(pool_dir: &Path, max: usize) -> Vec<String> {
    let Ok(entries) = fs::read_dir(pool_dir) else {
        return Vec::new();
    };
    // Every large file is listed (they are the ones takers want first,
    // and at most KEEP_BLOCKS_FILES), small ones fill up to `max`: with
    // only the first names of a pool grown full of small files, the large
    // ones were never taken, and every large retired file was emptied
    // since the large ones were at their limit (64 KiB messages then paid
    // a block allocation each in cleanup and a truncation in qmgr).
    let (mut large, mut small) = (Vec::new(), Vec::new());
    for name in entries.filter_map(|e| e.ok()?.file_name().into_string().ok()) {
        if name.starts_with('.') {
            continue;
        }
        if is_large(name.as_bytes()) {
            if large.len() < max {
                large.push(name);
            }
        } else if small.len() < max {
            small.push(name);
        }
        if large.len() >= max && small.len() >= max {
            break;
        }
    }
    small.truncate(max.saturating_sub(large.len()));
    large.append(&mut small);
    large
}

/// How many files the pool holds, and how many of them are large.
fn pool_count(pool_dir: &Path) -> Count {
    let mut count = Count::default();
    let Ok(entries) = fs::read_dir(pool_dir) else {
        return count;
    };
    for e in entries.filter_map(Result::ok) {
        let name = e.file_name();
        let name = name.as_encoded_bytes();
        if !name.starts_with(b".") {
            count.files += 1;
            count.large += usize::from(is_large(name));
        }
    }
    count
}

fn is_large(name: &[u8]) -> bool {
    name.first() == Some(&(BLOCKS_PREFIX as u8))
}

/// The pool name of the retired file `id`: the id, with [`BLOCKS_PREFIX`]
/// when it keeps blocks beyond [`KEEP_SMALL_MAX`].
fn pool_name(id: &QueueId, large: bool) -> String {
    if large {
        format!("{BLOCKS_PREFIX}{}", id.as_str())
    } else {
        id.as_str().to_string()
    }
}

/// Takes the file `id` out of `from` once every recipient is done: into
/// the pool when it has room, else removed ([`crate::remove`]).
pub fn retire(spool: &Path, id: &QueueId, from: Queue) -> Result<(), Error> {
    retire_within(spool, id, from, LIMITS)
}

fn retire_within(spool: &Path, id: &QueueId, from: Queue, limits: Limits) -> Result<(), Error> {
    let pool_dir = spool.join(POOL_DIR);
    // The pool's size as of this retirement, if it has room.
    let room = {
        let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
        let pool = guard.at(&pool_dir);
        // The estimate only grows here (takers in other processes shrink
        // the pool), so it is counted afresh whenever it would decide
        // something (a full pool, or as many large files as may be), but
        // not at every retirement: counting reads the whole pool.
        let deciding = pool
            .estimate
            .is_none_or(|n| n.files >= limits.max || n.large >= limits.keep_blocks);
        if pool.estimate.is_none() || (deciding && pool.retired >= RECOUNT_EVERY) {
            pool.estimate = Some(pool_count(&pool_dir));
            pool.retired = 0;
        }
        let n = pool.estimate.unwrap_or_default();
        pool.retired += 1;
        (n.files < limits.max).then_some(n)
    };
    if let Some(n) = room {
        let old = id.path(spool, from);
        // Not ready before it is renamed, so no name ever shows a reader a
        // ready file that is not a message.
        let kept = fs::set_permissions(&old, Permissions::from_mode(0o600))
            .and_then(|()| shrink(&old, n.large < limits.keep_blocks))
            .and_then(|large| {
                fs::rename(&old, pool_dir.join(pool_name(id, large))).map(|()| large)
            });
        if let Ok(large) = kept {
            let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
            let pool = guard.at(&pool_dir);
            let mut count = pool.estimate.unwrap_or_default();
            count.files += 1;
            count.large += usize::from(large);
            pool.estimate = Some(count);
            // A taker in this process need not wait for its next scan.
            pool.next_scan = None;
            return Ok(());
        }
    }
    crate::remove(spool, id, from)
}

/// Empties a retired file larger than it may stay (`KEEP_BLOCKS_MAX`
/// when `large_ok`, else `KEEP_SMALL_MAX`); returns whether it stays
/// large.
fn shrink(path: &Path, large_ok: bool) -> std::io::Result<bool> {
    // One lstat, and the file is opened only to be emptied.
    let len = fs::symlink_metadata(path)?.len();
    if len <= KEEP_SMALL_MAX {
        return Ok(false);
    }
    if large_ok && len <= KEEP_BLOCKS_MAX {
        return Ok(true);
    }
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?
        .set_len(0)?;
    Ok(false)
}

/// Takes a file from the pool in the queue directory `dir` under the name
/// `temp_name`, with mode `mode`, or `None` when there is none fit for
/// use. The file still has its old bytes: the writer writes over them
/// and cuts the file at its own end ([`crate::QueueFileWriter::finish`]).
pub(crate) fn take(dir: &Path, temp_name: &str, mode: u32) -> Option<Taken> {
    // Only incoming/ takes from the pool.
    if dir.file_name().and_then(|n| n.to_str()) != Some(Queue::Incoming.dir_name()) {
        return None;
    }
    let pool_dir = dir.parent()?.join(POOL_DIR);
    let temp_path = dir.join(temp_name);
    let mut failures = 0;
    let mut busy = 0;
    loop {
        let name = next_candidate(dir, &pool_dir)?;
        // Another process may have taken it: then try the next one, but
        // not for long. Takers that listed the pool together race through
        // the same names, and a failed rename costs about as much as a
        // new file; the next take lists the pool afresh.
        if fs::rename(pool_dir.join(&name), &temp_path).is_err() {
            failures += 1;
            if failures >= MAX_MISSES {
                let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
                guard.at(&pool_dir).candidates.clear();
                return None;
            }
            continue;
        }
        match fit(&temp_path, mode) {
            Ok(taken) => return Some(taken),
            // Locked: another cleanup readied it (prepare) or an agent
            // is closing it. It goes back, unchanged: removing it freed
            // an inode each time (at 50 sessions 4 % of the messages),
            // and every new inode of its group then paid for the freed
            // one (ext4's recently_deleted scan).
            Err(Refused::Busy) => {
                if crate::writer::rename_noreplace_path(&temp_path, &pool_dir.join(&name)).is_err()
                {
                    let _ = fs::remove_file(&temp_path);
                }
                // Counted, and never a reason to list the pool again: a
                // pool of one locked file would be listed (and active/
                // fsynced) and tried again without end.
                busy += 1;
                let listed_out = POOL
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .at(&pool_dir)
                    .candidates
                    .is_empty();
                if busy >= MAX_BUSY || listed_out {
                    return None;
                }
            }
            // Not ours to reuse: drop this name (another may remain).
            Err(Refused::Unfit) => {
                let _ = fs::remove_file(&temp_path);
            }
        }
    }
}

/// Why a pool file is not used.
#[derive(Debug, PartialEq)]
enum Refused {
    /// Another process holds its lock.
    Busy,
    /// Not a plain file of ours with one link, or not open.
    Unfit,
}

/// The next pool file name this process may try, listing the pool when
/// its list is used up (at most every [`RESCAN_EMPTY`] while empty).
fn next_candidate(dir: &Path, pool_dir: &Path) -> Option<String> {
    let mut guard = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let pool = guard.at(pool_dir);
    if pool.candidates.is_empty() {
        if pool.next_scan.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        pool.candidates = pool_names(pool_dir, LIST_MAX);
        if pool.candidates.is_empty() {
            pool.next_scan = Some(Instant::now() + RESCAN_EMPTY);
            return None;
        }
        // Takers in other processes try the names in another
        // order, so they seldom race for the same file; the large ones
        // go last, to be tried first: a file's blocks are written over
        // sooner, and their count goes down for the retirer to keep
        // more (else a pool grown full of small files in a burst would
        // leave no room for large ones long after).
        shuffle(&mut pool.candidates);
        pool.candidates.sort_by_key(|n| is_large(n.as_bytes()));
        pool.next_scan = None;
        // The files listed left active/ before this point; make
        // that durable before their inodes carry new messages, or
        // a crash could bring back an old name for a new message.
        if !sync_active(dir) {
            pool.candidates.clear();
            pool.next_scan = Some(Instant::now() + RESCAN_EMPTY);
            return None;
        }
    }
    pool.candidates.pop()
}

/// A pool file this process has named in a queue directory under a queue
/// id: locked, not ready, its name durable ([`prepare`]).
struct Placed {
    taken: Taken,
    id: QueueId,
    at: Instant,
}

/// The files placed in one queue directory for this process's next
/// messages.
struct Reserve {
    /// The incoming/ directory they are in.
    dir: PathBuf,
    files: VecDeque<Placed>,
    /// How many the next [`prepare`] places: doubled when a batch was
    /// used up within [`RESERVE_AGE`], halved when one outlived it.
    batch: usize,
    /// When the last batch was placed.
    placed_at: Option<Instant>,
}

/// Files placed longer ago than this go back to the pool: their queue
/// ids tell the time they were placed, not the time of their message.
pub const RESERVE_AGE: Duration = Duration::from_secs(1);

/// The most files placed at once (one directory fsync for all of them).
const RESERVE_MAX: usize = 8;

static RESERVES: Mutex<Vec<Reserve>> = Mutex::new(Vec::new());

fn reserves() -> std::sync::MutexGuard<'static, Vec<Reserve>> {
    RESERVES.lock().unwrap_or_else(|p| p.into_inner())
}

/// Readies pool files for this process's next new files in the spool's
/// `incoming/`: each is opened, checked and locked where it lies, then
/// renamed straight to a queue id (not ready, mode 0600, so no reader
/// takes it) and one fsync of `incoming/` makes the names of the whole
/// batch durable. [`crate::QueueFileWriter::create`] then takes one with
/// no rename and no directory fsync of its own: the name a message gets
/// is on disk before its client has sent it. cleanup calls this after it
/// answered its client, off the client's path.
///
/// A batch is one file at first and grows while messages come faster than
/// [`RESERVE_AGE`] each; files left that long go back to the pool, and so
/// do all of them when the process has waited that long for a client or
/// ends ([`unprepare`]). A process killed meanwhile leaves them in
/// `incoming/`, not ready, where no reader takes them: master reclaims
/// them at its next start ([`reclaim`]), `postsuper -p` removes them.
pub fn prepare(spool: &Path) {
    let dir = spool.join(Queue::Incoming.dir_name());
    let pool_dir = spool.join(POOL_DIR);
    let mut all = reserves();
    let i = match all.iter().position(|r| r.dir == dir) {
        Some(i) => i,
        None => {
            if all.len() >= POOLS_MAX {
                let gone = all.remove(0);
                give_back(&gone.dir, gone.files);
            }
            all.push(Reserve {
                dir: dir.clone(),
                files: VecDeque::new(),
                batch: 1,
                placed_at: None,
            });
            all.len() - 1
        }
    };
    let r = &mut all[i];
    let stale = expire(r);
    if !r.files.is_empty() {
        return;
    }
    if !stale && r.placed_at.is_some_and(|t| t.elapsed() < RESERVE_AGE) {
        r.batch = (r.batch * 2).min(RESERVE_MAX);
    }
    let mut placed = VecDeque::new();
    let mut misses = 0;
    while placed.len() < r.batch && misses < MAX_MISSES {
        let Some(name) = next_candidate(&dir, &pool_dir) else {
            break;
        };
        match place(&dir, &pool_dir.join(&name)) {
            Some(p) => placed.push_back(p),
            None => misses += 1,
        }
    }
    if placed.is_empty() {
        return;
    }
    // One fsync for the batch; without it the names are not durable and
    // the files go back.
    if postern_util::fs::sync_dir(&dir).is_err() {
        give_back(&dir, placed);
        return;
    }
    r.files = placed;
    r.placed_at = Some(Instant::now());
}

/// Names the pool file `path` in `dir` under a queue id, if it is fit and
/// no other process holds it.
fn place(dir: &Path, path: &Path) -> Option<Placed> {
    let taken = open_pool_file(path).and_then(|f| lock_in_place(f, path))?;
    let id = crate::writer::name_with(dir, taken.ino, |id| {
        crate::writer::rename_noreplace_path(path, &dir.join(id))
    })
    .ok()?;
    // Ours now (the rename moved the one inode ever named `path`): only
    // now may its mode change.
    if taken
        .file
        .set_permissions(Permissions::from_mode(crate::writer::MODE_WRITING))
        .is_err()
    {
        let _ = fs::remove_file(dir.join(id.as_str()));
        return None;
    }
    Some(Placed {
        taken,
        id,
        at: Instant::now(),
    })
}

/// Gives the files placed longer than [`RESERVE_AGE`] ago back to the
/// pool and halves the next batch; returns whether there were any.
fn expire(r: &mut Reserve) -> bool {
    let old = r
        .files
        .iter()
        .take_while(|p| p.at.elapsed() >= RESERVE_AGE)
        .count();
    if old == 0 {
        return false;
    }
    let gone: VecDeque<Placed> = r.files.drain(..old).collect();
    give_back(&r.dir, gone);
    r.batch = (r.batch / 2).max(1);
    true
}

fn pool_dir_of(dir: &Path) -> PathBuf {
    dir.parent().unwrap_or(Path::new(".")).join(POOL_DIR)
}

/// Puts files placed in `dir` back into the pool under their ids (still
/// locked while they move); one that cannot go back is removed.
fn give_back(dir: &Path, files: impl IntoIterator<Item = Placed>) {
    let pool_dir = pool_dir_of(dir);
    for p in files {
        let name = pool_name(&p.id, p.taken.len > KEEP_SMALL_MAX);
        let from = dir.join(p.id.as_str());
        if crate::writer::rename_noreplace_path(&from, &pool_dir.join(name)).is_err() {
            let _ = fs::remove_file(&from);
        }
    }
}

/// Gives every file [`prepare`] placed back to the pool: cleanup calls
/// this before it exits.
pub fn unprepare() {
    let all = std::mem::take(&mut *reserves());
    for r in all {
        give_back(&r.dir, r.files);
    }
}

/// [`unprepare`] for the queue directory `dir` only.
#[cfg(test)]
fn unprepare_dir(dir: &Path) {
    let mut all = reserves();
    if let Some(i) = all.iter().position(|r| r.dir == dir) {
        let r = all.remove(i);
        give_back(&r.dir, r.files);
    }
}

/// Moves the files of the spool's `incoming/` that are not ready and that
/// no writer holds into the pool, or removes them: what a cleanup killed
/// in the middle of a message, or while it held files placed for its next
/// ones ([`prepare`]), left behind. master calls this at start; a file a
/// live writer holds is locked and stays. Returns how many it took.
pub fn reclaim(spool: &Path) -> usize {
    let Ok(entries) = crate::scan(spool, Queue::Incoming) else {
        return 0;
    };
    let pool_dir = spool.join(POOL_DIR);
    let mut n = 0;
    for entry in entries.flatten() {
        let crate::Entry::NotReady { id } = entry else {
            continue;
        };
        let path = id.path(spool, Queue::Incoming);
        if !matches!(crate::in_use(&path), Ok(false)) {
            continue;
        }
        let pooled = fs::set_permissions(&path, Permissions::from_mode(0o600))
            .and_then(|()| shrink(&path, false))
            .and_then(|large| {
                crate::writer::rename_noreplace_path(&path, &pool_dir.join(pool_name(&id, large)))
            });
        if pooled.is_ok() || fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    n
}

/// The next file [`prepare`] placed in the queue directory `dir`, with its
/// queue id (its name there, already durable).
pub(crate) fn take_reserved(dir: &Path) -> Option<(Taken, QueueId)> {
    let mut all = reserves();
    let r = all.iter_mut().find(|r| r.dir == dir)?;
    expire(r);
    r.files.pop_front().map(|p| (p.taken, p.id))
}

/// Puts `names` in an order of this process and moment (xorshift seeded
/// from the pid and the clock; nothing here needs more than that).
fn shuffle(names: &mut [String]) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut x = ((u64::from(std::process::id()) << 32) | u64::from(nanos)) | 1;
    for i in (1..names.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).unwrap_or(0);
        names.swap(i, j);
    }
}

/// fsyncs `active/` next to the queue directory `dir`.
fn sync_active(dir: &Path) -> bool {
    let Some(spool) = dir.parent() else {
        return false;
    };
    postern_util::fs::sync_dir(&spool.join(Queue::Active.dir_name())).is_ok()
}

/// A file taken from the pool: open for writing, locked, with its inode
/// number.
pub(crate) struct Taken {
    pub(crate) file: File,
    pub(crate) lock: nix::fcntl::Flock<File>,
    pub(crate) ino: u64,
    /// Its length when taken.
    pub(crate) len: u64,
}

/// Opens a taken pool file, if it is safe to reuse.
fn fit(path: &Path, mode: u32) -> Result<Taken, Refused> {
    let taken = lock_fit(open_pool_file(path).ok_or(Refused::Unfit)?)?;
    taken
        .file
        .set_permissions(Permissions::from_mode(mode))
        .map_err(|_| Refused::Unfit)?;
    Ok(taken)
}

fn open_pool_file(path: &Path) -> Option<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()
}

/// Locks `file` (opened at `path` in the pool, not claimed by a rename)
/// if it is fit for use and still lies at `path` once locked. Nothing is
/// changed in it: until it is renamed away by its holder, another taker
/// may have it, and a file taken, used for a message and unlocked since
/// the open is a live queue file now (its name is no longer `path`).
fn lock_in_place(file: File, path: &Path) -> Option<Taken> {
    let taken = lock_fit(file).ok()?;
    let here = fs::symlink_metadata(path).ok()?;
    (here.ino() == taken.ino && here.dev() == taken.file.metadata().ok()?.dev()).then_some(taken)
}

/// Checks and locks an opened pool file.
fn lock_fit(file: File) -> Result<Taken, Refused> {
    let meta = file.metadata().map_err(|_| Refused::Unfit)?;
    if !meta.file_type().is_file()
        || meta.nlink() != 1
        || meta.uid() != nix::unistd::geteuid().as_raw()
    {
        return Err(Refused::Unfit);
    }
    // A process that still holds a lock on it (a delivery agent closing
    // its request, another cleanup that readied it) is left alone; the
    // lock is then the writer's.
    let probe = file.try_clone().map_err(|_| Refused::Unfit)?;
    let lock = nix::fcntl::Flock::lock(probe, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| Refused::Busy)?;
    Ok(Taken {
        file,
        lock,
        ino: meta.ino(),
        len: meta.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueueFileWriter, move_file};
    use std::time::SystemTime;

    const SMALL: Limits = Limits {
        max: 40,
        keep_blocks: 10,
    };

    fn spool() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for q in [
            Queue::Incoming.dir_name(),
            Queue::Active.dir_name(),
            POOL_DIR,
        ] {
            fs::create_dir(d.path().join(q)).unwrap();
        }
        d
    }

    fn message(spool: &Path, text: &[u8]) -> QueueId {
        let mut w = QueueFileWriter::create(spool, Queue::Incoming).unwrap();
        w.time(SystemTime::now()).unwrap();
        w.sender("a@example.test").unwrap();
        w.begin_content().unwrap();
        w.write_content(text).unwrap();
        w.finish().unwrap()
    }

    /// Takes the queued message `id` through active/ into the pool, as
    /// qmgr does after its delivery; its path in the pool and its inode.
    /// The inode of the message `id` in incoming/.
    fn incoming_ino(spool: &Path, id: &QueueId) -> u64 {
        fs::metadata(id.path(spool, Queue::Incoming)).unwrap().ino()
    }

    fn delivered(spool: &Path, id: &QueueId) -> (PathBuf, u64) {
        move_file(spool, id, Queue::Incoming, Queue::Active).unwrap();
        let ino = fs::metadata(id.path(spool, Queue::Active)).unwrap().ino();
        retire(spool, id, Queue::Active).unwrap();
        (spool.join(POOL_DIR).join(id.as_str()), ino)
    }

    #[test]
    fn a_pool_file_locked_by_another_stays_in_the_pool() {
        let d = spool();
        let s = d.path();
        let old = message(s, b"Subject: one\n\n");
        let (pooled, ino) = delivered(s, &old);
        // As another cleanup that readied it holds it (its own open).
        let other = OpenOptions::new().write(true).open(&pooled).unwrap();
        let lock =
            nix::fcntl::Flock::lock(other, nix::fcntl::FlockArg::LockExclusiveNonblock).unwrap();
        let new = message(s, b"Subject: two\n\n");
        assert_ne!(incoming_ino(s, &new), ino);
        assert_eq!(
            fs::metadata(&pooled).unwrap().ino(),
            ino,
            "put back under its name, not removed"
        );
        // Once let go, it serves the next file.
        drop(lock);
        let third = message(s, b"Subject: three\n\n");
        assert_eq!(incoming_ino(s, &third), ino);
    }

    #[test]
    fn a_retired_file_is_reused_empty_and_never_twice() {
        let d = spool();
        let s = d.path();
        let old = message(s, b"Subject: one\n\nfirst message, with a long body\n");
        let (pooled, ino) = delivered(s, &old);
        assert!(!old.path(s, Queue::Active).exists());
        let meta = fs::metadata(&pooled).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600, "pool files are never ready");
        // A scan of incoming does not see it.
        assert_eq!(crate::scan(s, Queue::Incoming).unwrap().count(), 0);

        let new = message(s, b"Subject: two\n\nx\n");
        assert!(!pooled.exists());
        let path = new.path(s, Queue::Incoming);
        assert_eq!(
            fs::metadata(&path).unwrap().ino(),
            ino,
            "the inode is reused"
        );
        assert_ne!(new, old);
        let qf = crate::QueueFile::open(&path).unwrap();
        assert_eq!(qf.content_to_vec(), b"Subject: two\n\nx\n");
        let bytes = fs::read(&path).unwrap();
        assert!(
            !bytes.windows(4).any(|w| w == b"long"),
            "nothing of the old message is left past the new one's end"
        );
        // The pool is empty now: the next file is new.
        let third = message(s, b"Subject: three\n\n");
        assert_ne!(incoming_ino(s, &third), ino);
    }

    /// The names in `queue`, sorted.
    fn names(spool: &Path, queue: &str) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(spool.join(queue))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_prepared_file_is_named_in_incoming_before_its_message() {
        let d = spool();
        let s = d.path();
        let old = message(s, b"Subject: one\n\nfirst\n");
        let (pooled, ino) = delivered(s, &old);
        prepare(s);
        assert!(!pooled.exists(), "moved out of the pool");
        let placed = names(s, "incoming");
        assert_eq!(placed.len(), 1);
        let path = s.join("incoming").join(&placed[0]);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.ino(), meta.mode() & 0o777), (ino, 0o600));
        assert!(crate::in_use(&path).unwrap(), "held by this process");
        // No scanner takes it for a message.
        let entries: Vec<_> = crate::scan(s, Queue::Incoming).unwrap().flatten().collect();
        assert!(matches!(entries[..], [crate::Entry::NotReady { .. }]));
        // The next message gets that very file under that very name.
        let new = message(s, b"Subject: two\n\nx\n");
        assert_eq!(new.as_str(), placed[0]);
        let qf = crate::QueueFile::open(&new.path(s, Queue::Incoming)).unwrap();
        assert_eq!(qf.content_to_vec(), b"Subject: two\n\nx\n");
        assert_eq!(names(s, "incoming"), [new.as_str()], "nothing else left");
    }

    #[test]
    fn batches_grow_while_used_at_once_and_go_back_when_left() {
        let d = spool();
        let s = d.path();
        let ids: Vec<QueueId> = (0..20).map(|_| message(s, b"Subject: s\n\n")).collect();
        for id in &ids {
            delivered(s, id);
        }
        // Each batch is used up at once: 1, 2, 4, 8, 8 files.
        let mut sizes = Vec::new();
        for _ in 0..5 {
            prepare(s);
            let placed = names(s, "incoming").len();
            sizes.push(placed);
            for _ in 0..placed {
                let id = message(s, b"Subject: t\n\n");
                delivered(s, &id);
            }
        }
        assert_eq!(sizes, [1, 2, 4, 8, 8]);
        // Files left longer than RESERVE_AGE go back to the pool, and the
        // next batch is smaller.
        prepare(s);
        assert_eq!(names(s, "incoming").len(), 8);
        let pool_before = names(s, POOL_DIR).len();
        std::thread::sleep(RESERVE_AGE + Duration::from_millis(50));
        prepare(s);
        assert_eq!(names(s, "incoming").len(), 4);
        assert_eq!(names(s, POOL_DIR).len(), pool_before + 8 - 4);
        // All of them go back when the process ends.
        unprepare_dir(&s.join("incoming"));
        assert!(names(s, "incoming").is_empty());
        assert_eq!(names(s, POOL_DIR).len(), pool_before + 8);
    }

    #[test]
    fn reclaim_takes_what_a_killed_cleanup_left_but_not_held_files() {
        let d = spool();
        let s = d.path();
        for _ in 0..2 {
            let id = message(s, b"Subject: s\n\n");
            delivered(s, &id);
        }
        prepare(s);
        let held = names(s, "incoming");
        assert_eq!(held.len(), 1);
        // As a killed cleanup leaves one: not ready, nobody's lock.
        let left_id = QueueId::from_parts(1_700_000_000, 1, 4242);
        let left = s.join("incoming").join(left_id.as_str());
        fs::write(&left, b"partial").unwrap();
        fs::set_permissions(&left, Permissions::from_mode(0o600)).unwrap();
        // And a ready message, which stays.
        let ready = message(s, b"Subject: r\n\n");
        assert_eq!(reclaim(s), 1);
        assert!(!left.exists());
        assert!(ready.path(s, Queue::Incoming).exists());
        assert!(s.join("incoming").join(&held[0]).exists());
        assert!(
            names(s, POOL_DIR).contains(&left_id.as_str().to_string()),
            "into the pool"
        );
    }

    #[test]
    fn a_file_readied_too_late_is_left_alone() {
        // A opens a pool file to ready it; before A locks it, another
        // process takes it, queues a message in it and lets it go. A must
        // then neither lock nor change the live queue file.
        let d = spool();
        let s = d.path();
        let old = message(s, b"Subject: one\n\nfirst\n");
        let (pooled, _) = delivered(s, &old);
        let opened = open_pool_file(&pooled).unwrap();
        let live = message(s, b"Subject: two\n\nx\n");
        let path = live.path(s, Queue::Incoming);
        assert_eq!(
            fs::metadata(&path).unwrap().ino(),
            opened.metadata().unwrap().ino(),
            "the other process got that very file"
        );
        assert!(lock_in_place(opened, &pooled).is_none());
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700, "still ready");
        assert!(crate::QueueFile::open(&path).is_ok());
    }

    #[test]
    fn a_full_pool_is_counted_again_once_others_have_emptied_it() {
        let d = spool();
        let s = d.path();
        let pool_dir = s.join(POOL_DIR);
        // All files first: a new file would take one from the pool.
        let retire_all = |n: usize| {
            let big = vec![b'x'; usize::try_from(KEEP_SMALL_MAX).unwrap() + 1];
            let ids: Vec<QueueId> = (0..n).map(|_| message(s, &big)).collect();
            for id in ids {
                move_file(s, &id, Queue::Incoming, Queue::Active).unwrap();
                retire_within(s, &id, Queue::Active, SMALL).unwrap();
            }
        };
        retire_all(SMALL.max + 1);
        assert_eq!(
            pool_count(&pool_dir).files,
            SMALL.max,
            "never more than the most"
        );
        // Only the first files kept blocks beyond KEEP_SMALL_MAX.
        let sizes: Vec<u64> = pool_names(&pool_dir, usize::MAX)
            .iter()
            .map(|n| fs::metadata(pool_dir.join(n)).unwrap().len())
            .collect();
        assert_eq!(sizes.iter().filter(|&&l| l > 0).count(), SMALL.keep_blocks);
        // Takers in other processes empty the pool.
        for name in pool_names(&pool_dir, usize::MAX) {
            fs::remove_file(pool_dir.join(name)).unwrap();
        }
        retire_all(RECOUNT_EVERY + 1);
        assert!(
            pool_count(&pool_dir).files > 0,
            "the retirer sees the room again"
        );
    }

    /// The length of `id`'s file in the pool, under either name.
    fn pooled_len(pool_dir: &Path, id: &QueueId) -> u64 {
        let large = pool_dir.join(format!("{BLOCKS_PREFIX}{}", id.as_str()));
        fs::metadata(&large)
            .or_else(|_| fs::metadata(pool_dir.join(id.as_str())))
            .unwrap()
            .len()
    }

    #[test]
    fn large_files_are_named_apart_and_taken_first() {
        let d = spool();
        let s = d.path();
        let pool_dir = s.join(POOL_DIR);
        let big = vec![b'x'; usize::try_from(KEEP_SMALL_MAX).unwrap() + 1];
        let ids: Vec<QueueId> = (0..6)
            .map(|i| message(s, if i == 3 { &big[..] } else { b"Subject: s\n\n" }))
            .collect();
        for id in &ids {
            move_file(s, id, Queue::Incoming, Queue::Active).unwrap();
            retire_within(s, id, Queue::Active, LIMITS).unwrap();
        }
        let names = pool_names(&pool_dir, usize::MAX);
        let large: Vec<&String> = names.iter().filter(|n| is_large(n.as_bytes())).collect();
        assert_eq!(large, [&format!("{BLOCKS_PREFIX}{}", ids[3].as_str())]);
        let count = pool_count(&pool_dir);
        assert_eq!((count.files, count.large), (6, 1));
        // The next new file is the large one, whatever the listing order.
        let ino = fs::metadata(pool_dir.join(large[0])).unwrap().ino();
        let new = message(s, b"Subject: new\n\n");
        assert_eq!(incoming_ino(s, &new), ino);
    }

    #[test]
    fn a_listing_holds_every_large_file_however_many_small_ones() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for i in 0..50 {
            fs::write(p.join(format!("small{i:03}")), b"").unwrap();
        }
        for i in 0..3 {
            fs::write(p.join(format!("{BLOCKS_PREFIX}large{i}")), b"").unwrap();
        }
        fs::write(p.join(".hidden"), b"").unwrap();
        let names = pool_names(p, 10);
        assert_eq!(names.len(), 10);
        assert_eq!(names.iter().filter(|n| is_large(n.as_bytes())).count(), 3);
        assert!(!names.iter().any(|n| n.starts_with('.')));
        // More large files than the listing holds: only large ones.
        let names = pool_names(p, 2);
        assert!(names.len() == 2 && names.iter().all(|n| is_large(n.as_bytes())));
    }

    #[test]
    fn files_keep_their_blocks_again_once_takers_have_emptied_the_pool() {
        let d = spool();
        let s = d.path();
        let pool_dir = s.join(POOL_DIR);
        // Never full, so only the count past keep_blocks can call for a
        // recount.
        let limits = Limits {
            max: 1000,
            keep_blocks: 10,
        };
        let big = vec![b'x'; usize::try_from(KEEP_SMALL_MAX).unwrap() + 1];
        let retire = |id: &QueueId| {
            move_file(s, id, Queue::Incoming, Queue::Active).unwrap();
            retire_within(s, id, Queue::Active, limits).unwrap();
            pooled_len(&pool_dir, id)
        };
        let empty_pool = || {
            for name in pool_names(&pool_dir, usize::MAX) {
                fs::remove_file(pool_dir.join(name)).unwrap();
            }
        };
        // A burst: more files than keep their blocks.
        let ids: Vec<QueueId> = (0..limits.keep_blocks + 2)
            .map(|_| message(s, &big))
            .collect();
        let sizes: Vec<u64> = ids.iter().map(retire).collect();
        assert!(sizes.last().is_some_and(|&l| l == 0), "{sizes:?}");
        // Then takers in other processes take every file as it comes.
        empty_pool();
        let sizes: Vec<u64> = (0..=RECOUNT_EVERY)
            .map(|_| {
                let id = message(s, &big);
                let len = retire(&id);
                empty_pool();
                len
            })
            .collect();
        assert!(
            sizes.iter().any(|&l| l > KEEP_SMALL_MAX),
            "the retirer sees the room again: {sizes:?}"
        );
    }

    #[test]
    fn a_pool_file_with_another_link_is_not_reused() {
        let d = spool();
        let s = d.path();
        let old = message(s, b"Subject: one\n\nbody\n");
        move_file(s, &old, Queue::Incoming, Queue::Active).unwrap();
        retire(s, &old, Queue::Active).unwrap();
        // As if a crash had left the message in active/ as well.
        let pooled = s.join(POOL_DIR).join(old.as_str());
        fs::hard_link(&pooled, old.path(s, Queue::Active)).unwrap();
        let new = message(s, b"Subject: two\n\n");
        assert_ne!(
            incoming_ino(s, &new),
            fs::metadata(old.path(s, Queue::Active)).unwrap().ino()
        );
        // The other name still has the old message, untouched.
        let qf = crate::QueueFile::open(&old.path(s, Queue::Active)).unwrap();
        assert_eq!(qf.content_to_vec(), b"Subject: one\n\nbody\n");
    }
}
