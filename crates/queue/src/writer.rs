//! Creating and committing a queue file.
//!
//! Postfix counterparts: `global/mail_queue.c` (`mail_queue_enter`: create
//! under a temporary name, learn the inode, rename to the id) and
//! `global/mail_stream.c` (`mail_stream_finish_file`: flush, fsync, set the
//! ready mode).

use std::fs::{self, File, OpenOptions, Permissions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use postern_wire::attr::is_valid_name;
use postern_wire::content::LineSplitter;
use postern_wire::{DEFAULT_MAX_RECORD_LEN, RecordType, varint};

use crate::format::{
    self, HEADER_RECORD_LEN, SIZE_PAYLOAD_LEN, SIZE_PAYLOAD_OFFSET, SizeRecord, header_payload,
};
use crate::id::unique_time;
use crate::{Error, Notify, Queue, QueueId};

/// The default longest piece of a content line in one record (Postfix
/// `line_length_limit`).
pub const DEFAULT_LINE_CHUNK: usize = postern_wire::content::DEFAULT_CHUNK;

/// Mode of a file being written.
pub(crate) const MODE_WRITING: u32 = 0o600;
/// Mode of a committed file: the owner-execute bit means "ready" (Postfix
/// `MAIL_QUEUE_STAT_READY`).
const MODE_READY: u32 = 0o700;

/// How often to retry when the id of a new file is already taken.
const NAME_ATTEMPTS: usize = 100;

/// How much of a file the writer holds before it writes: a message
/// smaller than this reaches the file in one write, its size record
/// included.
const BUF_SIZE: usize = 64 * 1024;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A recipient to write; see [`QueueFileWriter::recipient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecipient<'a> {
    /// The address to deliver to.
    pub address: &'a str,
    /// The address as originally given, before rewriting (`O` record).
    pub orcpt: Option<&'a str>,
    /// The DSN original recipient, `type;address` (`o` record).
    pub dsn_orcpt: Option<&'a str>,
    /// The DSN notify flags (`n` record).
    pub notify: Option<Notify>,
}

impl<'a> NewRecipient<'a> {
    /// A recipient with only an address.
    pub fn new(address: &'a str) -> NewRecipient<'a> {
        NewRecipient {
            address,
            orcpt: None,
            dsn_orcpt: None,
            notify: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Envelope,
    Content,
    Extracted,
}

/// Writes one queue file; see the [crate documentation](crate) for the
/// format.
///
/// Methods must be called in file order: envelope records, then
/// [`begin_content`](QueueFileWriter::begin_content) and content, then
/// [`end_content`](QueueFileWriter::end_content) and extracted records,
/// then [`finish`](QueueFileWriter::finish). A call out of order returns
/// [`Error::OutOfOrder`] and writes nothing. After any error the writer
/// should be dropped; dropping a writer that was not finished removes its
/// file.
#[derive(Debug)]
pub struct QueueFileWriter {
    file: File,
    /// Bytes not yet written to `file`; they start at `flushed`.
    buf: Vec<u8>,
    flushed: u64,
    /// The fsync of the queue directory, started once the file has its
    /// name; `None` where the directory cannot be fsynced (see
    /// [`open_queue_dir`]).
    dir_sync: Option<DirSync>,
    path: PathBuf,
    id: QueueId,
    queue: Queue,
    state: State,
    offset: u64,
    max_record_len: u32,
    splitter: LineSplitter,
    size: SizeRecord,
    have_time: bool,
    have_sender: bool,
    have_warn: bool,
    attr_names: Vec<String>,
    committed: bool,
    extra_mode: u32,
    /// How long the file was when taken from the reuse pool (0 for a new
    /// one): a longer old file is cut at the new end.
    old_len: u64,
    /// An exclusive flock(2) on the file while it is written, so that
    /// [`crate::in_use`] tells a live writer from a crashed one.
    _lock: Option<nix::fcntl::Flock<File>>,
}

/// A queue file made for a writer, named under its id.
struct Made {
    file: File,
    lock: Option<nix::fcntl::Flock<File>>,
    id: QueueId,
    /// Its length when taken from the reuse pool (0 for a new one).
    old_len: u64,
    /// The directory's fsync still due for the name, if it can be done.
    dir_sync: Option<DirSync>,
}

impl Made {
    fn new(
        file: File,
        lock: Option<nix::fcntl::Flock<File>>,
        id: QueueId,
        old_len: u64,
        dir_sync: Option<DirSync>,
    ) -> Made {
        Made {
            file,
            lock,
            id,
            old_len,
            dir_sync,
        }
    }
}

impl QueueFileWriter {
    /// Creates a new queue file in `queue` under the spool root `spool`
    /// and writes its header and size records.
    ///
    /// The file is created under a temporary hidden name with `O_EXCL` and
    /// mode 0600, its inode number gives the [`QueueId`], and it is renamed
    /// to that id without replacing any existing file.
    pub fn create(spool: &Path, queue: Queue) -> Result<QueueFileWriter, Error> {
        Self::create_with(spool, queue, open_queue_dir)
    }

    /// [`QueueFileWriter::create`] with the way the queue directory is
    /// opened given (tests force the path-only handle).
    fn create_with(
        spool: &Path,
        queue: Queue,
        open_dir: fn(&Path) -> std::io::Result<(File, bool)>,
    ) -> Result<QueueFileWriter, Error> {
        let dir_path = spool.join(queue.dir_name());
        // A file this process placed already (its name is durable), else
        // one made now, whose name the directory's fsync makes durable.
        let Made {
            file,
            lock,
            id,
            old_len,
            dir_sync,
        } = match crate::recycle::take_reserved(&dir_path) {
            Some((t, id)) => Made::new(t.file, Some(t.lock), id, t.len, None),
            None => Self::make_file(&dir_path, open_dir)?,
        };
        let path = id.path(spool, queue);
        let mut writer = QueueFileWriter {
            file,
            buf: SPARE_BUF
                .try_with(|b| b.take())
                .ok()
                .filter(|b| b.capacity() >= BUF_SIZE)
                .unwrap_or_else(|| Vec::with_capacity(BUF_SIZE)),
            flushed: 0,
            dir_sync,
            path,
            id,
            queue,
            state: State::Envelope,
            offset: 0,
            max_record_len: DEFAULT_MAX_RECORD_LEN,
            splitter: LineSplitter::new(DEFAULT_LINE_CHUNK),
            size: SizeRecord::default(),
            have_time: false,
            have_sender: false,
            have_warn: false,
            attr_names: Vec::new(),
            committed: false,
            extra_mode: 0,
            old_len,
            _lock: lock,
        };
        writer.put(RecordType::Header, &header_payload())?;
        writer.put(RecordType::Size, &[0u8; SIZE_PAYLOAD_LEN])?;
        debug_assert_eq!(writer.offset, SIZE_PAYLOAD_OFFSET + SIZE_PAYLOAD_LEN as u64);
        debug_assert_eq!(HEADER_RECORD_LEN, format::SIZE_RECORD_OFFSET);
        Ok(writer)
    }

    /// A new file named in `dir_path` under its queue id: a pool file
    /// taken now (see crate::recycle), else an unnamed new file, else a
    /// new file under a temporary name. Its name is in place: the
    /// directory's fsync can run while the content comes.
    fn make_file(
        dir_path: &Path,
        open_dir: fn(&Path) -> std::io::Result<(File, bool)>,
    ) -> Result<Made, Error> {
        let (dir, dir_syncable) = open_dir(dir_path).map_err(|e| Error::io(dir_path, e))?;
        let due = |dir| dir_syncable.then_some(DirSync::Due(dir));
        let temp_name = format!(
            ".tmp.{}.{}",
            postern_util::msg::pid(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let temp_path = dir_path.join(&temp_name);
        let create_named = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(MODE_WRITING)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&temp_path)
                .map_err(|e| Error::io(&temp_path, e))
        };
        // Locks are advisory: a file system without them only loses the
        // crash detection of `in_use`.
        let lock_new = |file: &File| {
            file.try_clone().ok().and_then(|f| {
                nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock).ok()
            })
        };
        let name_by_rename = |inode: u64| {
            name_with(dir_path, inode, |id| {
                rename_noreplace(&dir, dir_path, &temp_name, id)
            })
            .inspect_err(|_| {
                let _ = fs::remove_file(&temp_path);
            })
        };
        if let Some(t) = crate::recycle::take(dir_path, &temp_name, MODE_WRITING) {
            let id = name_by_rename(t.ino)?;
            return Ok(Made::new(t.file, Some(t.lock), id, t.len, due(dir)));
        }
        // An unnamed file linked under its id; where the system refuses
        // the link, a named one as before.
        let linked = postern_util::fs::unnamed_file(dir_path, MODE_WRITING).and_then(|file| {
            let lock = lock_new(&file);
            let inode = file.metadata().ok()?.ino();
            let id = name_with(dir_path, inode, |id| {
                postern_util::fs::link_unnamed(&file, &dir, Path::new(id))
            })
            .ok()?;
            Some((file, lock, id))
        });
        if let Some((file, lock, id)) = linked {
            return Ok(Made::new(file, lock, id, 0, due(dir)));
        }
        let file = create_named()?;
        let lock = lock_new(&file);
        let inode = file.metadata().map_err(|e| Error::io(&temp_path, e))?.ino();
        let id = name_by_rename(inode)?;
        Ok(Made::new(file, lock, id, 0, due(dir)))
    }

    /// The queue id of the file.
    pub fn id(&self) -> &QueueId {
        &self.id
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The queue the file is in.
    pub fn queue(&self) -> Queue {
        self.queue
    }

    /// The number of bytes written so far: the offset of the next record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Sets the longest piece of a content line in one record (default
    /// [`DEFAULT_LINE_CHUNK`]); only before content is written.
    pub fn set_line_chunk(&mut self, size: usize) -> Result<(), Error> {
        if self.state != State::Envelope {
            return Err(Error::OutOfOrder {
                call: "set_line_chunk",
            });
        }
        let max = usize::try_from(self.max_record_len).unwrap_or(usize::MAX);
        if size == 0 || size > max {
            return Err(Error::InvalidLineChunk { size });
        }
        self.splitter = LineSplitter::new(size);
        Ok(())
    }

    /// Adds group and other read permission (`bits & 0o044`) to the ready
    /// mode, so that a file written by one user can be read by another:
    /// postdrop runs as the submitting user, pickup as `mail_owner` (Postfix
    /// creates maildrop files with mode 0744 for the same reason). Other
    /// bits are ignored.
    pub fn set_extra_mode(&mut self, bits: u32) {
        self.extra_mode = bits & 0o044;
    }

    /// Sets the queue manager flags of the size record.
    pub fn set_qmgr_flags(&mut self, flags: u64) {
        self.size.qmgr_flags = flags;
    }

    /// Writes the arrival time (`T`); once, in the envelope.
    pub fn time(&mut self, at: SystemTime) -> Result<(), Error> {
        self.expect(State::Envelope, "time")?;
        if self.have_time {
            return Err(Error::OutOfOrder { call: "time" });
        }
        let payload = format::encode_time(at).ok_or(Error::InvalidTime)?;
        self.put(RecordType::Time, &payload)?;
        self.have_time = true;
        Ok(())
    }

    /// Writes the envelope sender (`S`), empty for `<>`; once, in the
    /// envelope.
    pub fn sender(&mut self, sender: &str) -> Result<(), Error> {
        self.expect(State::Envelope, "sender")?;
        if self.have_sender {
            return Err(Error::OutOfOrder { call: "sender" });
        }
        self.put(RecordType::Sender, sender.as_bytes())?;
        self.have_sender = true;
        Ok(())
    }

    /// Writes a named attribute (`A`, `name=value`) in the envelope or the
    /// extracted segment. Names follow
    /// [`postern_wire::attr::is_valid_name`] and may appear once per
    /// segment.
    pub fn attr(&mut self, name: &str, value: &[u8]) -> Result<(), Error> {
        if self.state == State::Content {
            return Err(Error::OutOfOrder { call: "attr" });
        }
        if !is_valid_name(name.as_bytes()) {
            return Err(Error::InvalidAttrName { name: name.into() });
        }
        if self.attr_names.iter().any(|n| n == name) {
            return Err(Error::DuplicateAttr { name: name.into() });
        }
        let mut payload = Vec::with_capacity(name.len() + 1 + value.len());
        payload.extend_from_slice(name.as_bytes());
        payload.push(b'=');
        payload.extend_from_slice(value);
        self.put(RecordType::Attr, &payload)?;
        self.attr_names.push(name.to_owned());
        Ok(())
    }

    /// Writes a recipient in the envelope or the extracted segment and
    /// returns the offset of its `R` record (for [`crate::mark_done`]).
    pub fn recipient(&mut self, rcpt: &NewRecipient<'_>) -> Result<u64, Error> {
        if self.state == State::Content {
            return Err(Error::OutOfOrder { call: "recipient" });
        }
        // Check every length first, so that an error writes nothing.
        for (kind, text) in [
            (RecordType::Orcpt, rcpt.orcpt),
            (RecordType::DsnOrcpt, rcpt.dsn_orcpt),
            (RecordType::Recipient, Some(rcpt.address)),
        ] {
            if let Some(text) = text {
                self.check_len(kind, text.len())?;
            }
        }
        if let Some(orcpt) = rcpt.orcpt {
            self.put(RecordType::Orcpt, orcpt.as_bytes())?;
        }
        if let Some(dsn_orcpt) = rcpt.dsn_orcpt {
            self.put(RecordType::DsnOrcpt, dsn_orcpt.as_bytes())?;
        }
        if let Some(notify) = rcpt.notify {
            self.put(RecordType::DsnNotify, &[notify.bits()])?;
        }
        let offset = self.put(RecordType::Recipient, rcpt.address.as_bytes())?;
        self.size.recipient_count = self.size.recipient_count.saturating_add(1);
        Ok(offset)
    }

    /// Writes the time of the next "delayed mail" warning (`W`, whole
    /// seconds; `None` for no warning) and returns the record offset for
    /// [`crate::set_warn_time`]; once, in the envelope.
    pub fn warn(&mut self, at: Option<SystemTime>) -> Result<u64, Error> {
        self.expect(State::Envelope, "warn")?;
        if self.have_warn {
            return Err(Error::OutOfOrder { call: "warn" });
        }
        let payload = format::encode_warn(at).ok_or(Error::InvalidTime)?;
        let offset = self.put(RecordType::Warn, &payload)?;
        self.have_warn = true;
        Ok(offset)
    }

    /// Ends the envelope (`M`).
    pub fn begin_content(&mut self) -> Result<(), Error> {
        self.expect(State::Envelope, "begin_content")?;
        self.put(RecordType::Message, b"")?;
        self.size.data_offset = self.offset;
        self.state = State::Content;
        self.attr_names.clear();
        Ok(())
    }

    /// Appends message content. The bytes are stored exactly; calls may
    /// split the content anywhere, with the same result.
    pub fn write_content(&mut self, data: &[u8]) -> Result<(), Error> {
        self.expect(State::Content, "write_content")?;
        let mut splitter = std::mem::replace(&mut self.splitter, LineSplitter::new(1));
        let result = splitter.feed(data, |kind, line| self.put(kind, line).map(|_| ()));
        self.splitter = splitter;
        result?;
        self.count_content(data.len());
        Ok(())
    }

    /// Ends the content (`X`); a last line without a line feed is written
    /// as an `L` record.
    pub fn end_content(&mut self) -> Result<(), Error> {
        self.expect(State::Content, "end_content")?;
        let mut splitter = std::mem::replace(&mut self.splitter, LineSplitter::new(1));
        let result = splitter.finish(|kind, line| self.put(kind, line).map(|_| ()));
        self.splitter = splitter;
        result?;
        self.size.extracted_offset = self.offset;
        self.put(RecordType::Xtra, b"")?;
        self.state = State::Extracted;
        Ok(())
    }

    /// Commits the file and returns its id.
    ///
    /// Ends any open segment, writes `E`, flushes, fills in the size
    /// record, sets mode 0700 (ready), fsyncs the file (data and mode in
    /// one go) and fsyncs the directory.
    pub fn finish(mut self) -> Result<QueueId, Error> {
        if !self.have_time {
            return Err(Error::Incomplete {
                missing: RecordType::Time,
            });
        }
        if !self.have_sender {
            return Err(Error::Incomplete {
                missing: RecordType::Sender,
            });
        }
        if self.state == State::Envelope {
            self.begin_content()?;
        }
        if self.state == State::Content {
            self.end_content()?;
        }
        self.put(RecordType::End, b"")?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |e| Error::io(&path, e)
        };
        // The size record goes into the buffer while the file's start is
        // still there (a message under BUF_SIZE: one write in all), else
        // over what was written.
        let size = self.size.encode();
        let at = SIZE_PAYLOAD_OFFSET;
        if self.flushed == 0 {
            let at = usize::try_from(at).unwrap_or(usize::MAX);
            self.buf
                .get_mut(at..at + size.len())
                .ok_or(Error::OutOfOrder { call: "finish" })?
                .copy_from_slice(&size);
            self.write_buf().map_err(io(&self.path))?;
        } else {
            self.write_buf().map_err(io(&self.path))?;
            self.file.write_all_at(&size, at).map_err(io(&self.path))?;
        }
        let file = &self.file;
        // A reused file (crate::recycle) may be longer than what was
        // written.
        if self.old_len > self.offset {
            file.set_len(self.offset).map_err(io(&self.path))?;
        }
        // Postfix mail_stream_finish(): mark ready, then one fsync for the
        // data and the mode together. A crash before the fsync completes
        // can at worst leave a ready file without its END record or with
        // wrong sizes, which every reader refuses as corrupt; it can never
        // pass for a complete message. Nothing is acknowledged before the
        // fsync returns.
        file.set_permissions(Permissions::from_mode(MODE_READY | self.extra_mode))
            .map_err(io(&self.path))?;
        file.sync_all().map_err(io(&self.path))?;
        let dir_path = self.path.parent().unwrap_or(Path::new("."));
        match self.dir_sync.take() {
            Some(DirSync::Due(dir)) => dir.sync_all().map_err(io(dir_path))?,
            Some(DirSync::Started(pending)) => pending.wait().map_err(io(dir_path))?,
            Some(DirSync::Done(result)) => result.map_err(io(dir_path))?,
            None => {}
        }
        self.committed = true;
        Ok(self.id.clone())
    }

    /// Starts the fsync of the queue directory (the file has its name
    /// there already) in a helper thread, so that [`finish`] finds it
    /// done: for writers that go on at once with the content.
    ///
    /// [`finish`]: QueueFileWriter::finish
    pub fn start_dir_sync(&mut self) {
        self.dir_sync = match self.dir_sync.take() {
            Some(DirSync::Due(dir)) => Some(DirSync::Started(crate::dirsync::start(&dir))),
            other => other,
        };
    }

    /// fsyncs the queue directory now, in this thread: for a writer with
    /// time on its hands before the content comes (cleanup between its
    /// greeting and the client's data), which then needs no helper
    /// thread woken and no wait for it. A failure is reported by
    /// [`finish`].
    ///
    /// [`finish`]: QueueFileWriter::finish
    pub fn sync_dir(&mut self) {
        self.dir_sync = match self.dir_sync.take() {
            Some(DirSync::Due(dir)) => Some(DirSync::Done(dir.sync_all())),
            other => other,
        };
    }

    fn expect(&self, state: State, call: &'static str) -> Result<(), Error> {
        if self.state == state {
            Ok(())
        } else {
            Err(Error::OutOfOrder { call })
        }
    }

    fn check_len(&self, kind: RecordType, len: usize) -> Result<u32, Error> {
        u32::try_from(len)
            .ok()
            .filter(|l| *l <= self.max_record_len)
            .ok_or(Error::RecordTooLong {
                kind,
                len,
                max: self.max_record_len,
            })
    }

    fn count_content(&mut self, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        self.size.content_length = self.size.content_length.saturating_add(bytes);
    }

    /// Writes one record and returns its offset.
    fn put(&mut self, kind: RecordType, data: &[u8]) -> Result<u64, Error> {
        let len = self.check_len(kind, data.len())?;
        // The record head on the stack: this runs once per content line.
        let (code, n) = varint::encode_array(len);
        let mut head = [0u8; 1 + varint::MAX_BYTES];
        head[0] = kind.as_byte();
        head[1..=n].copy_from_slice(&code[..n]);
        let head = &head[..=n];
        let at = self.offset;
        if self.buf.len() + head.len() + data.len() > BUF_SIZE && !self.buf.is_empty() {
            self.write_buf().map_err(|e| Error::io(&self.path, e))?;
        }
        self.buf.extend_from_slice(head);
        self.buf.extend_from_slice(data);
        let written = u64::try_from(head.len() + data.len()).unwrap_or(u64::MAX);
        self.offset = self.offset.saturating_add(written);
        Ok(at)
    }

    /// Writes out the buffer, at the file's end so far.
    fn write_buf(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.file.write_all_at(&self.buf, self.flushed)?;
            self.flushed += u64::try_from(self.buf.len()).unwrap_or(u64::MAX);
            self.buf.clear();
        }
        Ok(())
    }
}

impl Drop for QueueFileWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
        let mut buf = std::mem::take(&mut self.buf);
        if buf.capacity() <= 2 * BUF_SIZE {
            buf.clear();
            let _ = SPARE_BUF.try_with(|b| b.replace(buf));
        }
    }
}

/// The fsync of a writer's queue directory: due, under way, or done.
#[derive(Debug)]
enum DirSync {
    Due(File),
    Started(crate::dirsync::Pending),
    Done(std::io::Result<()>),
}

thread_local! {
    /// The last writer's buffer, for the next (cleanup writes a file per
    /// message; a 64 KiB buffer allocated and freed each time went back
    /// to the system and came again as fresh pages).
    static SPARE_BUF: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Names the file with inode number `inode` in the queue directory
/// `dir_path` with a fresh queue id, by `name` (a rename or a link that
/// fails with `AlreadyExists` when the id is taken).
pub(crate) fn name_with(
    dir_path: &Path,
    inode: u64,
    name: impl Fn(&str) -> std::io::Result<()>,
) -> Result<QueueId, Error> {
    for _ in 0..NAME_ATTEMPTS {
        let (secs, micros) = unique_time(SystemTime::now());
        let id = QueueId::from_parts(secs, micros, inode);
        match name(id.as_str()) {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&dir_path.join(id.as_str()), e)),
        }
    }
    Err(Error::io(
        dir_path,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "no free queue id after repeated attempts",
        ),
    ))
}

/// Opens a queue directory for the `*at` calls and the directory fsync at
/// commit; returns whether the handle can be fsynced. postdrop runs
/// set-group-id with write and search permission only on `maildrop`
/// (mode 0730, as in Postfix), so it cannot open the directory for
/// reading: it gets an `O_PATH` handle, which serves `renameat` but not
/// `fsync`. Its file is still fsynced before postdrop reports success;
/// only the directory entry is left to the file system's own ordering,
/// as Postfix's postdrop leaves it.
fn open_queue_dir(path: &Path) -> std::io::Result<(File, bool)> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
    {
        Ok(dir) => Ok((dir, true)),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            open_queue_dir_path_only(path).map(|dir| (dir, false))
        }
        Err(e) => Err(e),
    }
}

/// A handle on a directory that can be searched but perhaps not read.
fn open_queue_dir_path_only(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path)
}

/// [`rename_noreplace`] between any two paths (of one file system).
pub(crate) fn rename_noreplace_path(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
        match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            Err(Errno::EINVAL | Errno::ENOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// rename(2) that fails with `AlreadyExists` instead of replacing a file.
fn rename_noreplace(dir: &File, dir_path: &Path, from: &str, to: &str) -> std::io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::errno::Errno;
        use nix::fcntl::{RenameFlags, renameat2};
        match renameat2(dir, from, dir, to, RenameFlags::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            // The file system does not support the flag: fall back.
            Err(Errno::EINVAL | Errno::ENOSYS) => {}
            Err(e) => return Err(e.into()),
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = dir;
    // link(2) refuses to replace; then drop the temporary name.
    fs::hard_link(dir_path.join(from), dir_path.join(to))?;
    fs::remove_file(dir_path.join(from))
}

#[cfg(test)]
mod dir_tests {
    use super::*;

    /// The queue directory is fsynced before `finish` returns whichever
    /// way it is asked for: in a helper thread, here and now, or by
    /// `finish` itself.
    #[test]
    fn each_way_of_syncing_the_directory_commits() {
        let spool = tempfile::tempdir().unwrap();
        std::fs::create_dir(spool.path().join("incoming")).unwrap();
        for way in 0..3 {
            let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
            assert!(matches!(w.dir_sync, Some(DirSync::Due(_))));
            // Asking twice, or the other way after, changes nothing.
            match way {
                0 => (0..2).for_each(|_| w.start_dir_sync()),
                1 => (0..2).for_each(|_| w.sync_dir()),
                _ => {}
            }
            if way == 1 {
                w.start_dir_sync();
            }
            let expected = ["started", "done", "due"][way];
            let state = match &w.dir_sync {
                Some(DirSync::Started(_)) => "started",
                Some(DirSync::Done(r)) => {
                    assert!(r.is_ok());
                    "done"
                }
                Some(DirSync::Due(_)) => "due",
                None => "none",
            };
            assert_eq!(state, expected);
            w.time(SystemTime::now()).unwrap();
            w.sender("a@example.test").unwrap();
            w.recipient(&NewRecipient::new("b@example.test")).unwrap();
            let id = w.finish().unwrap();
            assert!(id.path(spool.path(), Queue::Incoming).exists());
        }
    }

    /// What postdrop gets on a maildrop it cannot read: a path-only
    /// handle, with which a file is still named, written and committed.
    #[test]
    fn writes_through_a_path_only_directory_handle() {
        let spool = tempfile::tempdir().unwrap();
        std::fs::create_dir(spool.path().join("maildrop")).unwrap();
        let path_only = |p: &Path| open_queue_dir_path_only(p).map(|d| (d, false));
        let mut w = QueueFileWriter::create_with(spool.path(), Queue::Maildrop, path_only).unwrap();
        assert!(w.dir_sync.is_none());
        w.time(SystemTime::now()).unwrap();
        w.sender("a@example.test").unwrap();
        w.recipient(&NewRecipient::new("b@example.test")).unwrap();
        w.begin_content().unwrap();
        w.write_content(b"hello\n").unwrap();
        w.end_content().unwrap();
        let id = w.finish().unwrap();
        let qf = crate::QueueFile::open(&id.path(spool.path(), Queue::Maildrop)).unwrap();
        assert_eq!(qf.sender(), "a@example.test");
    }
}
