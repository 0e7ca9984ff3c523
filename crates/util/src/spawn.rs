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

/// The child's side of [`background`]: tell the waiting parent that start-up
/// is complete.
#[derive(Debug)]
pub struct Ready {
    pipe: std::io::PipeWriter,
}

impl Ready {
    /// Tells the parent that start-up succeeded (it exits 0), then points
    /// standard input, output and error at `/dev/null`, as a daemon does:
    /// the terminal that started us may go away.
    pub fn done(self) -> std::io::Result<()> {
        use std::io::Write;
        let mut pipe = self.pipe;
        pipe.write_all(b"R")?;
        drop(pipe);
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        nix::unistd::dup2_stdin(&null)?;
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&null)?;
        Ok(())
    }
}

/// Postfix `master -w`: runs the rest of the program in a background
/// process in a new session and makes the foreground process wait until
/// that one calls [`Ready::done`] (the foreground process then exits 0) or
/// exits without calling it (exit 1; its errors went to the standard error
/// both share). Only the background process returns.
///
/// Must be called while the process has a single thread.
pub fn background() -> std::io::Result<Ready> {
    use nix::unistd::{ForkResult, fork, setsid};
    use std::io::Read;
    let (mut reader, writer) = std::io::pipe()?;
    // SAFETY: the caller guarantees that no other thread exists, so the
    // child may run arbitrary code after fork (no lock can be held by a
    // thread that does not exist in the child).
    match unsafe { fork() }.map_err(std::io::Error::from)? {
        ForkResult::Parent { .. } => {
            drop(writer);
            let mut byte = [0u8; 1];
            let code = match reader.read(&mut byte) {
                Ok(1) => 0,
                _ => 1,
            };
            std::process::exit(code)
        }
        ForkResult::Child => {
            crate::msg::forget_pid();
            drop(reader);
            setsid().map_err(std::io::Error::from)?;
            Ok(Ready { pipe: writer })
        }
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
