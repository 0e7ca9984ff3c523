//! master - Postern's resident process manager (Postfix `master(8)`).
//!
//! SYNOPSIS: `master [-c config_dir] [-o name=value]... [-t] [-v] [-w]`
//!
//! master reads `main.toml` and the service table `master.toml`, creates
//! and checks the spool, takes the `pid/master.pid` lock (so a second
//! master on the same spool is refused), opens every listening socket
//! itself and starts daemons on demand, each with the listener and its
//! service's status channel at fixed descriptors (see `postern_server::proto`).
//! It stays in the foreground (for systemd and `make run`) unless given
//! `-w`, as `postern start` does: then, as Postfix's `master -w`, the
//! process continues in the background in a new session, and the command
//! returns once start-up is complete (exit 0) or has failed (exit 1, with
//! the error on standard error).
//!
//! - A service gets a new process when a client waits and none of its
//!   processes is free, up to `maxproc`.
//! - A process that dies abnormally is logged (`process X pid N killed by
//!   signal 9`); one that dies before serving anything throttles its
//!   service with exponential backoff up to `service_throttle_time`.
//! - Services with a `wakeup` time get a `W` trigger at start and then
//!   periodically (pickup, qmgr).
//! - SIGHUP re-reads both files; on any error the old configuration stays.
//!   Listeners that did not change stay open, running processes finish
//!   their connection and then exit, new ones start with the new
//!   configuration.
//! - SIGTERM or SIGINT stops every process (SIGTERM, then SIGKILL after
//!   five seconds) and exits.
//! - Before any daemon starts, files in `incoming/` that are not ready
//!   and that nobody holds locked (what a stopped or killed cleanup left,
//!   see `postern_queue::reclaim`) go back into the reuse pool.
//!
//! SECURITY: master runs as root in production so it can bind privileged
//! ports and start daemons that drop to `mail_owner` (and chroot). It reads
//! only its configuration and never handles mail or client input.
//!
//! DIAGNOSTICS: problems go to the mail log; configuration errors name the
//! file, line and key, and also go to standard error.

mod listen;
mod supervisor;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use postern_config::take_common;
use postern_util::lock::{LockError, PidLock};
use postern_util::msg::{self, Sink};
use postern_util::{error, info, privs};

/// Version shown in the start and reload log lines.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

fn usage() -> ExitCode {
    eprintln!("usage: master [-c config_dir] [-o name=value]... [-t] [-v] [-w]");
    ExitCode::from(64)
}

fn main() -> ExitCode {
    let _ = msg::init("postern", "master", &Sink::Stderr);
    let mut argv: Vec<OsString> = std::env::args_os().collect();
    let common = match take_common(&mut argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("master: fatal: {e}");
            return usage();
        }
    };
    let mut test_only = false;
    let mut verbose = false;
    let mut wait = false;
    for arg in argv.iter().skip(1) {
        match arg.to_str() {
            Some("-t") => test_only = true,
            Some("-v") => verbose = true,
            Some("-w") => wait = true,
            Some("-h") | Some("--help") => {
                let _ = usage();
                return ExitCode::SUCCESS;
            }
            _ => {
                eprintln!("master: fatal: unknown argument: {}", arg.to_string_lossy());
                return usage();
            }
        }
    }
    // Before anything else, while this process has one thread.
    let ready = if wait && !test_only {
        match postern_util::spawn::background() {
            Ok(ready) => Some(ready),
            Err(e) => {
                eprintln!("master: fatal: cannot detach: {e}");
                return ExitCode::from(71);
            }
        }
    } else {
        None
    };
    let loaded = match supervisor::load(&common) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("master: fatal: {e}");
            return ExitCode::from(78);
        }
    };
    let config = &loaded.config;
    let queue_dir = config.path("queue_directory");
    if !queue_dir.is_absolute() {
        eprintln!(
            "master: fatal: queue_directory must be an absolute path, not {}",
            queue_dir.display()
        );
        return ExitCode::from(78);
    }
    let pid_file = queue_dir.join("pid").join("master.pid");
    if test_only {
        return test_running(&pid_file);
    }
    if let Err(e) = postern_server::init_logging("master", config) {
        eprintln!("master: fatal: cannot start logging: {e}");
        return ExitCode::from(73);
    }
    msg::set_verbose(verbose);
    let owners = match postern_server::spool::owners(config) {
        Ok(o) => o,
        Err(e) => return fatal(&e, 78),
    };
    if let Err(problems) = postern_queue::layout::prepare(&queue_dir, &owners) {
        for p in &problems {
            error!("unsafe spool: {p}");
            eprintln!("master: fatal: unsafe spool: {p}");
        }
        return fatal(
            "refusing to run on a spool with unsafe ownership or permissions",
            78,
        );
    }
    let lock = match PidLock::acquire(&pid_file) {
        Ok(l) => l,
        Err(LockError::Held(pid)) => {
            let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            return fatal(
                &format!(
                    "the Postern mail system is already running{who} on {}",
                    queue_dir.display()
                ),
                75,
            );
        }
        Err(LockError::Io(e)) => return fatal(&format!("lock {}: {e}", pid_file.display()), 73),
    };
    // Before any cleanup runs: files a killed one left in incoming/.
    let reclaimed = postern_queue::reclaim(&queue_dir);
    if reclaimed > 0 {
        info!(
            "incoming: {reclaimed} unfinished queue files of stopped cleanup processes reclaimed"
        );
    }
    let mut master = match supervisor::Master::start(common, verbose, loaded) {
        Ok(m) => m,
        Err(e) => return fatal(&e, 71),
    };
    if privs::is_root() {
        info!(
            "daemon started -- version {VERSION}, configuration {}",
            master.config_dir().display()
        );
    } else {
        info!(
            "daemon started -- version {VERSION}, configuration {} (development mode: every service runs as {})",
            master.config_dir().display(),
            privs::current().name
        );
    }
    if let Some(ready) = ready
        && let Err(e) = ready.done()
    {
        error!("cannot detach from the terminal: {e}");
    }
    master.run();
    drop(lock);
    ExitCode::SUCCESS
}

fn fatal(text: &str, code: u8) -> ExitCode {
    msg::log(msg::Level::Fatal, format_args!("{text}"));
    // Also tell whoever started us when logging goes elsewhere.
    eprintln!("master: fatal: {text}");
    ExitCode::from(code)
}

/// `-t`: exit 0 when no master holds the lock (Postfix `master -t`).
fn test_running(pid_file: &Path) -> ExitCode {
    if !pid_file.exists() {
        return ExitCode::SUCCESS;
    }
    match PidLock::acquire(pid_file) {
        Ok(_) => ExitCode::SUCCESS,
        Err(LockError::Held(pid)) => {
            let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            eprintln!("master: the Postern mail system is running{who}");
            ExitCode::from(1)
        }
        Err(LockError::Io(e)) => {
            eprintln!("master: {}: {e}", pid_file.display());
            ExitCode::from(73)
        }
    }
}
