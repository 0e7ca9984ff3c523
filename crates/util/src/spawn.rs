//! Starting a child with descriptors at fixed numbers (Postfix
//! `master_spawn.c`, `master_proto.h`).
//!
//! master hands each daemon its status channel and listening socket at
//! numbers the daemon knows in advance. `std::process::Command` cannot do
//! that by itself, so [`place_fds`] adds a `pre_exec` step that moves the
//! descriptors into place. This is the one module of Postern with `unsafe`.
#![allow(unsafe_code)]

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Descriptors at or above this number are free for shuffling: targets are
/// small numbers (3..=15 in practice).
const SCRATCH_BASE: RawFd = 64;

/// Arranges for each `(source, target)` pair that the child sees `source`
/// at descriptor `target`, without close-on-exec. Sources stay open in the
/// parent. Targets must be distinct and below 64.
pub fn place_fds(cmd: &mut Command, pairs: &[(RawFd, RawFd)]) {
    let pairs: Vec<(RawFd, RawFd)> = pairs.to_vec();
    let mut scratch: Vec<RawFd> = vec![-1; pairs.len()];
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed. It calls fcntl/dup2/close
    // only and touches only the vectors allocated above (no allocation,
    // no locks).
    unsafe {
        cmd.pre_exec(move || {
            // First move every source out of the way, so that a source
            // whose number is another pair's target is not clobbered.
            for (i, (src, _)) in pairs.iter().enumerate() {
                let fd = libc::fcntl(*src, libc::F_DUPFD_CLOEXEC, SCRATCH_BASE);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                scratch[i] = fd;
            }
            for (i, (_, dst)) in pairs.iter().enumerate() {
                // dup2 clears close-on-exec on the new descriptor.
                if libc::dup2(scratch[i], *dst) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn child_sees_descriptor_at_fixed_number() {
        let (r, mut w) = std::io::pipe().unwrap();
        w.write_all(b"hello").unwrap();
        drop(w);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat <&6"]);
        place_fds(&mut cmd, &[(r.as_raw_fd(), 6)]);
        let out = cmd.output().unwrap();
        assert_eq!(out.stdout, b"hello");
    }
}
