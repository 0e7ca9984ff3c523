//! Receivers: byte chunks in, commands lines or message content out.
//!
//! One receiver per phase of the session, as in Stalwart's smtp-proto:
//!
//! - [`RequestReceiver`] frames command lines (PIPELINING-safe: many
//!   commands in one chunk come out one at a time, and the unconsumed rest
//!   stays buffered);
//! - [`DataReceiver`] reads DATA content up to `<CR><LF>.<CR><LF>`,
//!   removing dot-stuffing;
//! - [`BdatReceiver`] reads exact BDAT chunk sizes (RFC 3030).
//!
//! Each takes `&[u8]` slices of any size, remembers its state across
//! chunk boundaries, and never interprets bytes that belong to another
//! phase: when DATA or BDAT ends, the receiver says how many input bytes it
//! consumed and the caller hands the rest back to the [`RequestReceiver`].
//! Oversized input is drained to its natural end, never guessed at, so the
//! command stream stays in sync (STYLE.md §9).
//!
//! ```
//! use postern_smtp_proto::{DataOptions, DataProgress, DataReceiver, RequestReceiver};
//!
//! let mut commands = RequestReceiver::default();
//! commands.feed(b"DATA\r\nSubject: hi\r\n\r\n..dots\r\n.\r\nQUIT\r\n");
//! let line = commands.next_line().unwrap().unwrap();
//! assert_eq!(line.bytes, b"DATA");
//!
//! // DATA was accepted: the buffered rest belongs to the data receiver.
//! let input = commands.take_buffered();
//! let mut data = DataReceiver::new(DataOptions::default());
//! let mut message = Vec::new();
//! let DataProgress::Done(end) = data.feed(&input, &mut message) else { panic!() };
//! assert_eq!(message, b"Subject: hi\r\n\r\n.dots\r\n");
//! assert!(end.error.is_none());
//!
//! // What follows the terminator is the next command.
//! commands.feed(&input[end.consumed..]);
//! assert_eq!(commands.next_line().unwrap().unwrap().bytes, b"QUIT");
//! ```

mod bdat;
mod data;
mod line;
mod stats;

pub use crate::framing::LineEnding;

pub use bdat::{BdatReceiver, ChunkEnd, ChunkProgress};
pub use data::{
    BareNewline, DEFAULT_MESSAGE_SIZE_LIMIT, DataEnd, DataError, DataOptions, DataProgress,
    DataReceiver,
};
pub use line::{DEFAULT_LINE_LIMIT, Line, LineError, RequestReceiver};
pub use stats::ContentStats;
