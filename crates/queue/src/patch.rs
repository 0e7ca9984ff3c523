//! In-place edits of a committed queue file.
//!
//! Postfix counterparts: `global/deliver_completed.c` and `rec_put_type`
//! in `global/record.c` (crossing off a recipient), and the in-place
//! updates of `REC_TYPE_WARN` in `qmgr/qmgr_active.c`.
//!
//! These are the only writes to a committed file. Each rewrites bytes whose
//! width is fixed by construction (a type byte, or a fixed-width payload),
//! checks first that the expected record is at the offset given, and
//! (but for [`mark_done`]) fsyncs before returning. The caller holds the lock that the style guide
//! prescribes (shared for delivery agents, exclusive for qmgr and
//! postsuper).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use postern_wire::RecordType;

use crate::Error;
use crate::format::{
    self, FORMAT_VERSION, HEADER_PAYLOAD_LEN, MAGIC, SIZE_FLAGS_INDEX, SIZE_PAYLOAD_LEN,
    SIZE_PAYLOAD_OFFSET, SIZE_RECORD_OFFSET, WARN_PAYLOAD_LEN,
};

fn io(e: std::io::Error) -> Error {
    Error::Io {
        path: None,
        source: e,
    }
}

fn not_patchable(offset: u64, expected: RecordType, found: u8) -> Error {
    Error::NotPatchable {
        path: None,
        offset,
        expected,
        found,
    }
}

fn read_at<const N: usize>(file: &File, offset: u64) -> Result<[u8; N], Error> {
    let mut buf = [0u8; N];
    file.read_exact_at(&mut buf, offset).map_err(io)?;
    Ok(buf)
}

/// Marks the recipient whose record starts at `offset` as done, by
/// rewriting its type byte from `R` to `D`.
///
/// Unlike the other patches this one is not fsynced, as in Postfix
/// (`deliver_completed` only flushes): the write is in the kernel's page
/// cache once this returns, so a killed agent or queue manager can no
/// longer deliver the recipient again; only a crash of the whole system
/// before the next writeback can, and then the result is a duplicate,
/// never a lost message. Syncing here would cost a disk flush per
/// delivered recipient.
///
/// Marking a recipient that is already done succeeds without writing.
/// Any other byte at `offset` is [`Error::NotPatchable`].
pub fn mark_done(file: &File, offset: u64) -> Result<(), Error> {
    let [found] = read_at::<1>(file, offset)?;
    if found == RecordType::Done.as_byte() {
        return Ok(());
    }
    if found != RecordType::Recipient.as_byte() {
        return Err(not_patchable(offset, RecordType::Recipient, found));
    }
    file.write_all_at(&[RecordType::Done.as_byte()], offset)
        .map_err(io)
}

/// Rewrites the warning time of the `W` record at `offset` (`None`: no
/// warning due), then fsyncs the file.
pub fn set_warn_time(file: &File, offset: u64, at: Option<SystemTime>) -> Result<(), Error> {
    let [kind, len] = read_at::<2>(file, offset)?;
    if kind != RecordType::Warn.as_byte() || usize::from(len) != WARN_PAYLOAD_LEN {
        return Err(not_patchable(offset, RecordType::Warn, kind));
    }
    let payload = format::encode_warn(at).ok_or(Error::InvalidTime)?;
    file.write_all_at(&payload, offset.saturating_add(2))
        .map_err(io)?;
    // fdatasync: the patch changes bytes in place, never the size, so
    // no metadata needs to reach the disk with it.
    file.sync_data().map_err(io)
}

/// Rewrites the queue manager flags in the size record, then fsyncs the
/// file.
pub fn set_qmgr_flags(file: &File, flags: u64) -> Result<(), Error> {
    let head = read_at::<15>(file, 0)?;
    let header_ok = head.first() == Some(&RecordType::Header.as_byte())
        && head.get(1).copied().map(usize::from) == Some(HEADER_PAYLOAD_LEN)
        && head.get(2..9) == Some(MAGIC.as_slice())
        && head.get(9..13).and_then(format::le_u32) == Some(FORMAT_VERSION);
    if !header_ok {
        let found = head.first().copied().unwrap_or(0);
        return Err(not_patchable(0, RecordType::Header, found));
    }
    let size_kind = head.get(13).copied().unwrap_or(0);
    let size_len = head.get(14).copied().map(usize::from).unwrap_or(0);
    // A one-byte length code: payloads of 40 to 127 bytes.
    if size_kind != RecordType::Size.as_byte() || !(SIZE_PAYLOAD_LEN..=0x7f).contains(&size_len) {
        return Err(not_patchable(
            SIZE_RECORD_OFFSET,
            RecordType::Size,
            size_kind,
        ));
    }
    let field = SIZE_PAYLOAD_OFFSET + 8 * SIZE_FLAGS_INDEX;
    file.write_all_at(&flags.to_le_bytes(), field).map_err(io)?;
    // fdatasync: the patch changes bytes in place, never the size, so
    // no metadata needs to reach the disk with it.
    file.sync_data().map_err(io)
}
