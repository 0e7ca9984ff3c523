//! The master↔child contract (Postfix `master_proto.h`).
//!
//! Every daemon master starts finds:
//! - descriptor [`STATUS_FD`]: its service's status channel, a
//!   `SOCK_SEQPACKET` socket shared by all processes of the service. The
//!   child writes [`Status`] records to it; when master closes its end (on
//!   reload, or when master dies) the channel reads as end-of-file and the
//!   child exits as soon as it is idle, so connections in progress finish;
//! - descriptors [`LISTEN_FD`] and up: the listening sockets, non-blocking,
//!   shared by all processes of the service; they race to accept.

use std::os::fd::RawFd;

/// The status channel descriptor.
pub const STATUS_FD: RawFd = 5;
/// The first listening socket descriptor; a service with several listen
/// addresses gets them at consecutive numbers (master passes `-s N`).
pub const LISTEN_FD: RawFd = 6;
/// Size of a status record: pid, generation, status (u32 each, host order:
/// both ends are on one host).
pub const STATUS_LEN: usize = 12;

/// What a child tells master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Ready to accept a connection.
    Avail,
    /// Busy with a connection.
    Taken,
}

/// Encodes a status record.
pub fn encode(pid: u32, generation: u32, status: Status) -> [u8; STATUS_LEN] {
    let mut out = [0u8; STATUS_LEN];
    out[0..4].copy_from_slice(&pid.to_ne_bytes());
    out[4..8].copy_from_slice(&generation.to_ne_bytes());
    let code: u32 = match status {
        Status::Avail => 1,
        Status::Taken => 0,
    };
    out[8..12].copy_from_slice(&code.to_ne_bytes());
    out
}

/// Decodes a status record; `None` for anything malformed.
pub fn decode(buf: &[u8]) -> Option<(u32, u32, Status)> {
    if buf.len() != STATUS_LEN {
        return None;
    }
    let word =
        |i: usize| -> Option<u32> { Some(u32::from_ne_bytes(buf.get(i..i + 4)?.try_into().ok()?)) };
    let status = match word(8)? {
        1 => Status::Avail,
        0 => Status::Taken,
        _ => return None,
    };
    Some((word(0)?, word(4)?, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects() {
        let rec = encode(1234, 7, Status::Taken);
        assert_eq!(decode(&rec), Some((1234, 7, Status::Taken)));
        assert_eq!(
            decode(&encode(1, 2, Status::Avail)),
            Some((1, 2, Status::Avail))
        );
        assert_eq!(decode(&rec[..11]), None);
        let mut bad = rec;
        bad[8] = 9;
        assert_eq!(decode(&bad), None);
    }
}
