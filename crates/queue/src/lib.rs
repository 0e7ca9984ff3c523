//! The Postern mail spool: queue names, queue ids, and queue files.
//!
//! Postfix counterparts: `global/mail_queue.c` (names, ids, paths, moves),
//! `global/mail_stream.c` (writing and committing a queue file),
//! `global/mail_open_ok.c` (which files a scanner may open),
//! `global/deliver_completed.c` (crossing off recipients) and the record
//! layout of `global/rec_type.h`.
//!
//! # Brief overview
//!
//! - [`Queue`] names a queue directory; [`spool_layout`] lists every spool
//!   directory with its mode and ownership; [`layout`] creates, checks and
//!   repairs the tree (master, `postern check`, `postern set-permissions`).
//! - [`QueueId`] names a queue file (Postfix long queue ids) and is the only
//!   way to build its path. Queues are flat: no hashed subdirectories.
//! - [`QueueFileWriter`] creates, fills and commits a queue file.
//! - [`QueueFile`] reads and checks one.
//! - [`mark_done`], [`set_warn_time`] and [`set_qmgr_flags`] are the only
//!   changes made to a committed file: each rewrites bytes of fixed width
//!   in place.
//! - [`move_file`], [`remove`] and [`scan`] work on the spool directories;
//!   [`retire`] keeps a finished file's inode for the next new one.
//! - [`log`] reads and appends the per-message delivery logs (`bounce/`,
//!   `defer/`, `trace/`).
//!
//! # The queue file
//!
//! A queue file is a stream of [`postern_wire`] records:
//!
//! ```text
//! H  header: "POSTERN" + u32 format version (1)
//! C  size: content length, data offset, recipient count, qmgr flags,
//!    extracted offset (u64 LE each, patched in place)
//! T  arrival time (u64 seconds + u32 microseconds, LE)
//! S  sender                            | envelope segment, any order
//! A  name=value attributes             | after the prologue; O/o/n
//! O/o/n then R  recipients             | apply to the R that follows
//! W  warning time (u64 LE, patched)    |
//! M  start of content
//! N/L content lines                    | content segment
//! X  end of content
//! A, O/o/n then R                      | extracted segment
//! E  end (required)
//! ```
//!
//! Content is stored byte for byte. Each line becomes one `N` record without
//! its line feed; a line longer than the chunk limit is split into `L`
//! records followed by a final `N`; content that does not end in a line
//! feed ends with an `L` record. Carriage returns, NUL and 8-bit bytes are
//! kept as they are, so the reader gives back exactly the bytes written,
//! and `content_length` in the size record is that exact length.
//!
//! # Crash safety
//!
//! A file is created under a temporary name with `O_EXCL` and mode 0600,
//! renamed to its id without replacing anything, written and flushed, then
//! given mode 0700 and fsynced once (data and mode together, as Postfix's
//! `mail_stream_finish`): the owner-execute bit means "ready", and readers
//! skip files without it ([`is_ready`], [`scan`]). The directory is fsynced
//! last; only then is the message acknowledged. A file without its `E` record, or with
//! any structural damage, is reported as [`Error::Corrupt`], and the caller
//! moves it to [`Queue::Corrupt`]. After commit, only type bytes and
//! fixed-width fields are rewritten.
//!
//! # Example
//!
//! ```
//! use std::time::SystemTime;
//! use postern_queue::{NewRecipient, Queue, QueueFile, QueueFileWriter};
//!
//! # let spool = tempfile::tempdir().unwrap();
//! # std::fs::create_dir(spool.path().join("incoming")).unwrap();
//! let mut w = QueueFileWriter::create(spool.path(), Queue::Incoming).unwrap();
//! w.time(SystemTime::now()).unwrap();
//! w.sender("alice@example.org").unwrap();
//! w.recipient(&NewRecipient::new("bob@example.org")).unwrap();
//! w.begin_content().unwrap();
//! w.write_content(b"Subject: hi\n\nhello\n").unwrap();
//! let id = w.finish().unwrap();
//!
//! let qf = QueueFile::open(&id.path(spool.path(), Queue::Incoming)).unwrap();
//! assert_eq!(qf.sender(), "alice@example.org");
//! assert_eq!(qf.content_to_vec(), b"Subject: hi\n\nhello\n");
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::io;
use std::path::{Path, PathBuf};

use postern_wire::RecordType;

mod dirsync;
mod format;
mod id;
pub mod layout;
pub mod log;
mod name;
mod patch;
mod reader;
mod recycle;
mod scan;
mod spool;
#[cfg(test)]
mod tests;
mod writer;

pub use format::{FORMAT_VERSION, MAGIC, Notify, SizeRecord};
pub use id::{MAX_LEN as QUEUE_ID_MAX_LEN, MIN_LEN as QUEUE_ID_MIN_LEN, QueueId};
pub use name::{GroupKind, OwnerKind, Queue, SpoolDir, spool_layout};
pub use patch::{mark_done, set_qmgr_flags, set_warn_time};
pub use reader::{
    Attr, Content, DEFAULT_MAX_FILE_LEN, Envelope, QueueFile, ReadOptions, Recipient,
    RecipientStatus, WarnTime, is_ready,
};
pub use recycle::{POOL_DIR, POOL_MAX, RESERVE_AGE, prepare, reclaim, retire, unprepare};
pub use scan::{Entry, Rejection, Scan, scan};
pub use spool::{in_use, lock_shared, move_file, remove, set_next_attempt};
pub use writer::{DEFAULT_LINE_CHUNK, NewRecipient, QueueFileWriter};

/// Errors of this crate.
///
/// [`Error::Corrupt`] means the file itself is bad (the caller moves it to
/// [`Queue::Corrupt`]); [`Error::Io`] means the system failed and the
/// operation may succeed later; the other variants are misuse by the
/// caller or bad names from a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue file is damaged.
    #[error("{}corrupt queue file at offset {offset}: {kind}", prefix(.path.as_deref()))]
    Corrupt {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The offset of the record where the damage was found.
        offset: u64,
        /// What is wrong.
        kind: Corruption,
    },
    /// An attribute name is repeated in one segment of the file.
    #[error("duplicate attribute {name:?}")]
    DuplicateAttr {
        /// The name.
        name: String,
    },
    /// The writer was finished without a required record.
    #[error("queue file has no {missing} record")]
    Incomplete {
        /// The missing record.
        missing: RecordType,
    },
    /// A system call failed.
    #[error("{}{source}", prefix(.path.as_deref()))]
    Io {
        /// The file or directory, when known.
        path: Option<PathBuf>,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// An attribute name is empty, too long, or has a forbidden byte.
    #[error("invalid attribute name {name:?}")]
    InvalidAttrName {
        /// The name.
        name: String,
    },
    /// The chunk size for content lines is out of range.
    #[error("invalid line chunk size {size}")]
    InvalidLineChunk {
        /// The size asked for.
        size: usize,
    },
    /// A name is not a valid queue id.
    #[error("invalid queue id {name:?}")]
    InvalidQueueId {
        /// The name, cut short.
        name: String,
    },
    /// A name is not a queue.
    #[error("invalid queue name {name:?}")]
    InvalidQueueName {
        /// The name.
        name: String,
    },
    /// A time is before the epoch or out of range.
    #[error("time before the epoch or out of range")]
    InvalidTime,
    /// The bytes at a patch offset are not the record the patch expects.
    #[error("{}no {expected} record at offset {offset} (found byte 0x{found:02x})", prefix(.path.as_deref()))]
    NotPatchable {
        /// The file, when known.
        path: Option<PathBuf>,
        /// The offset given.
        offset: u64,
        /// The record type the patch expects.
        expected: RecordType,
        /// The byte found.
        found: u8,
    },
    /// A writer method was called at the wrong point of the file.
    #[error("{call}() called out of order")]
    OutOfOrder {
        /// The method.
        call: &'static str,
    },
    /// A record is longer than readers accept.
    #[error("{kind} record of {len} bytes exceeds the limit of {max}")]
    RecordTooLong {
        /// The record type.
        kind: RecordType,
        /// The payload length.
        len: usize,
        /// The limit.
        max: u32,
    },
}

impl Error {
    /// Whether the error says the file is damaged, so that the caller
    /// should move it to [`Queue::Corrupt`] rather than retry.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, Error::Corrupt { .. })
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: Some(path.to_owned()),
            source,
        }
    }
}

fn prefix(path: Option<&Path>) -> String {
    match path {
        Some(p) => format!("{}: ", p.display()),
        None => String::new(),
    }
}

/// What is wrong with a corrupt queue file; see [`Error::Corrupt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// An `A` record is not `name=value` with a valid name.
    #[error("malformed attribute record")]
    BadAttr,
    /// The header record is missing or has the wrong magic.
    #[error("not a Postern queue file")]
    BadHeader,
    /// A fixed-width record has the wrong length.
    #[error("{kind} record has length {len}")]
    BadLength {
        /// The record type.
        kind: RecordType,
        /// The length found.
        len: usize,
    },
    /// A DSN notify record has invalid flags.
    #[error("invalid DSN notify flags 0x{bits:02x}")]
    BadNotify {
        /// The byte found.
        bits: u8,
    },
    /// The size record is missing or malformed.
    #[error("malformed size record")]
    BadSizeRecord,
    /// A time or warning time is out of range.
    #[error("time out of range in {kind} record")]
    BadTime {
        /// The record type.
        kind: RecordType,
    },
    /// An `O`, `o` or `n` record is not followed by its recipient.
    #[error("{kind} record without a following recipient")]
    DanglingRecipientField {
        /// The record type.
        kind: RecordType,
    },
    /// A record that may appear once appears again.
    #[error("duplicate {kind} record")]
    Duplicate {
        /// The record type.
        kind: RecordType,
    },
    /// An attribute name appears twice in one segment.
    #[error("duplicate attribute {name:?}")]
    DuplicateAttr {
        /// The name.
        name: String,
    },
    /// A required record is missing.
    #[error("no {kind} record")]
    Missing {
        /// The record type.
        kind: RecordType,
    },
    /// The path is not a regular file.
    #[error("not a regular file")]
    NotRegularFile,
    /// A text record is not UTF-8.
    #[error("{kind} record is not UTF-8")]
    NotUtf8 {
        /// The record type.
        kind: RecordType,
    },
    /// A record is malformed or out of place.
    #[error("{0}")]
    Record(#[from] postern_wire::Error),
    /// The size record disagrees with the file.
    #[error("size record says {field} is {recorded}, file has {actual}")]
    SizeMismatch {
        /// The field.
        field: &'static str,
        /// The value in the size record.
        recorded: u64,
        /// The value found.
        actual: u64,
    },
    /// The file is larger than the reader accepts.
    #[error("file of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The file length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Bytes follow the end record.
    #[error("data after the end record")]
    TrailingData,
    /// The file ends before its end record.
    #[error("file ends before the end record")]
    Truncated,
    /// The header names a format version this crate does not read.
    #[error("unsupported format version {version}")]
    UnsupportedVersion {
        /// The version found.
        version: u32,
    },
}
