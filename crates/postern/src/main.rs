//! postern(1): control the Postern mail system (Postfix `postfix(1)` and
//! `postfix-script`).
//!
//! SYNOPSIS: `postern [-v] [-c config_dir] [-o name=value]... command`
//!
//! Commands:
//! - `check`: load `main.toml` and `master.toml` as master would, check
//!   that every service's program exists, that `mail_owner` and
//!   `setgid_group` exist, and that the spool has the ownership and modes
//!   master expects; print each problem with what to run to fix it. Exit
//!   1 when there is a problem.
//! - `start`: check the configuration, refuse when the mail system is
//!   already running, then run `master -w`, which continues in the
//!   background and returns once start-up is complete.
//! - `start-fg`: like `start`, but master runs in the foreground in place
//!   of this command (for container init systems).
//! - `stop`: SIGTERM to master, which stops every daemon (SIGKILL after
//!   five seconds); wait until it is gone.
//! - `abort`: SIGKILL to master. Its daemons notice that master is gone
//!   and exit at their earliest convenience.
//! - `reload`: check the configuration, then SIGHUP to master, which
//!   re-reads both files without dropping connections in progress.
//! - `status`: `the Postern mail system is running: PID: N` (exit 0) or
//!   `... is not running` (exit 1).
//! - `flush`: ask qmgr to retry deferred mail now (as `postqueue -f`).
//! - `set-permissions`: create missing spool directories and set the
//!   owner and mode of every spool directory, and the owner of the files
//!   in the queues, to what master expects; as root outside development
//!   mode, also make `postdrop` and `postqueue` in `command_directory`
//!   set-group-id `setgid_group` (mode 2755, unless they already are
//!   set-group-id to it and not writable by group or others, like the
//!   Debian package's 2555).
//!
//! Whether master runs is decided by the lock on
//! `$queue_directory/pid/master.pid`, not by the pid in it alone, so a
//! stale file never fools `status` or `start`.
//!
//! DIAGNOSTICS: messages go to standard error as
//! `postern/postern-script: ...` and, unless the log is standard error,
//! to the mail log. Exit status: 0 success, 1 failure (as `postfix`: not
//! running, already running, problems found, start-up failed), 64 usage
//! error, 78 configuration error.
//!
//! ENVIRONMENT: `MAIL_CONFIG`: the configuration directory when `-c` is
//! not given.
//!
//! SEE ALSO: master(8), postconf(1), sendmail(1) (`-bd` runs
//! `postern start`).

use std::ffi::OsString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{ArgAction, Parser, Subcommand};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use postern_config::{Config, MasterTable};
use postern_queue::layout;
use postern_server::tool;
use postern_util::msg::{self, Level};
use postern_util::sysexits::{EX_CONFIG, exit_code};
use postern_util::{lock, privs};

/// How long `stop` waits for master to exit (it gives its daemons five
/// seconds before SIGKILL).
const STOP_WAIT: Duration = Duration::from_secs(30);

/// The commands that are set-group-id `setgid_group` (Postfix: postdrop
/// and postqueue).
const SETGID_PROGRAMS: [&str; 2] = ["postdrop", "postqueue"];

/// Control the Postern mail system.
#[derive(Parser, Debug)]
#[command(
    name = "postern",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    override_usage = "postern [-v] [-c config_dir] [-o name=value]... command"
)]
struct Cli {
    /// The configuration directory (default $MAIL_CONFIG, else /etc/postern).
    #[arg(short = 'c', value_name = "config_dir", global = true)]
    config_dir: Option<PathBuf>,
    /// Override a main.toml parameter (passed on to master with start).
    #[arg(short = 'o', value_name = "name=value", global = true)]
    overrides: Vec<String>,
    /// Verbose logging (passed on to master with start).
    #[arg(short = 'v', action = ArgAction::Count, global = true)]
    verbose: u8,
    /// Print this help.
    #[arg(long = "help", action = ArgAction::Help, global = true)]
    help: Option<bool>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// Stop master at once with SIGKILL.
    Abort,
    /// Check the configuration and the spool's ownership and modes.
    Check,
    /// Retry deferred mail now (postqueue -f).
    Flush,
    /// Make master re-read main.toml and master.toml (SIGHUP).
    Reload,
    /// Fix the spool's ownership and modes.
    SetPermissions,
    /// Start the mail system in the background.
    Start,
    /// Start the mail system with master in the foreground.
    StartFg,
    /// Say whether the mail system is running.
    Status,
    /// Stop the mail system (SIGTERM) and wait until it is down.
    Stop,
}

/// How messages are prefixed, and whether they also go to the log.
struct Say {
    tag: String,
    logging: bool,
}

impl Say {
    fn line(&self, level: Level, text: &str) {
        eprintln!("{}: {}{text}", self.tag, level.prefix());
        if self.logging {
            msg::log(level, format_args!("{text}"));
        }
    }
    fn info(&self, text: &str) {
        self.line(Level::Info, text);
    }
    fn warn(&self, text: &str) {
        self.line(Level::Warning, text);
    }
    fn fatal(&self, text: &str, code: i32) -> ExitCode {
        self.line(Level::Fatal, text);
        exit_code(code)
    }
}

fn main() -> ExitCode {
    tool::init("postern-script");
    let cli: Cli = match tool::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let dir = postern_config::config_dir(cli.config_dir.clone());
    let early = Say {
        tag: "postern/postern-script".into(),
        logging: false,
    };
    let config = match Config::load(&dir, &cli.overrides) {
        Ok(c) => c,
        Err(e) => return early.fatal(&e.to_string(), EX_CONFIG),
    };
    let say = Say {
        tag: format!("{}/postern-script", config.str("syslog_name")),
        logging: tool::start_logging(&config),
    };
    let ctl = Control {
        cli: &cli,
        dir: &dir,
        config: &config,
        say: &say,
        pid_file: config.path("queue_directory").join("pid/master.pid"),
    };
    match cli.command {
        Cmd::Abort => ctl.abort(),
        Cmd::Check => ctl.check(),
        Cmd::Flush => ctl.flush(),
        Cmd::Reload => ctl.reload(),
        Cmd::SetPermissions => ctl.set_permissions(),
        Cmd::Start => ctl.start(false),
        Cmd::StartFg => ctl.start(true),
        Cmd::Status => ctl.status(),
        Cmd::Stop => ctl.stop(),
    }
}

struct Control<'a> {
    cli: &'a Cli,
    dir: &'a Path,
    config: &'a Config,
    say: &'a Say,
    pid_file: PathBuf,
}

impl Control<'_> {
    /// master's pid when it runs: the pid file is locked and the process
    /// exists.
    fn running(&self) -> Option<i32> {
        match lock::holder(&self.pid_file) {
            Ok(Some(pid)) if pid > 0 && kill(Pid::from_raw(pid), None).is_ok() => Some(pid),
            Ok(Some(_)) => {
                self.say.warn(&format!(
                    "{} is locked but holds no valid process ID",
                    self.pid_file.display()
                ));
                None
            }
            Ok(None) => None,
            Err(e) => {
                self.say
                    .warn(&format!("cannot read {}: {e}", self.pid_file.display()));
                None
            }
        }
    }

    fn not_running(&self) -> ExitCode {
        self.say.fatal("the Postern mail system is not running", 1)
    }

    fn master_program(&self) -> PathBuf {
        self.config.path("daemon_directory").join("master")
    }

    /// master's command line: `-c DIR` (absolute: master and its daemons
    /// outlive this command's working directory), the `-o` overrides and
    /// `-v`.
    fn master_args(&self) -> Vec<OsString> {
        let dir = std::path::absolute(self.dir).unwrap_or_else(|_| self.dir.to_path_buf());
        let mut args: Vec<OsString> = vec!["-c".into(), dir.into_os_string()];
        for o in &self.cli.overrides {
            args.push("-o".into());
            args.push(o.into());
        }
        if self.cli.verbose > 0 {
            args.push("-v".into());
        }
        args
    }

    /// The configuration problems that would stop master.
    fn config_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let table = match MasterTable::load(self.dir, self.config) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let master = self.master_program();
        if !is_executable(&master) {
            problems.push(format!(
                "{}: master(8) is missing or not executable; check daemon_directory",
                master.display()
            ));
        }
        for s in table.iter().flat_map(|t| &t.services) {
            let program = if s.command.starts_with('/') {
                PathBuf::from(&s.command)
            } else {
                self.config.path("daemon_directory").join(&s.command)
            };
            if !is_executable(&program) {
                problems.push(format!(
                    "service {} ({}): {}: program is missing or not executable",
                    s.name,
                    s.kind.as_str(),
                    program.display()
                ));
            }
        }
        problems
    }

    fn check(&self) -> ExitCode {
        let mut problems = self.config_problems();
        match postern_server::spool::owners(self.config) {
            Ok(owners) => {
                let queue_dir = self.config.path("queue_directory");
                if let Err(unsafe_parts) = layout::check(&queue_dir, &owners) {
                    problems.extend(unsafe_parts.iter().map(ToString::to_string));
                }
                problems.extend(self.setgid_problems(&owners).into_iter().map(|(_, p)| p));
            }
            Err(e) => problems.push(e),
        }
        for p in &problems {
            self.say.warn(p);
        }
        if problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    /// As root outside development mode, postdrop and postqueue must be
    /// set-group-id `setgid_group` (and writable by root only) so that
    /// users can submit mail and list the queue.
    fn setgid_problems(&self, owners: &layout::Owners) -> Vec<(PathBuf, String)> {
        if !self.production() {
            return Vec::new();
        }
        SETGID_PROGRAMS
            .iter()
            .filter_map(|name| {
                let path = self.config.path("command_directory").join(name);
                let meta = std::fs::metadata(&path).ok()?;
                let mode = meta.mode() & 0o7777;
                let fine = meta.gid() == owners.setgid_gid.as_raw()
                    && mode & 0o2000 != 0
                    && mode & 0o022 == 0;
                (!fine).then(|| {
                    let text = format!(
                        "{}: group {} mode {mode:04o}, expected group {} and set-group-id \
                         (mode 2755); fix: postern set-permissions",
                        path.display(),
                        meta.gid(),
                        owners.setgid_gid
                    );
                    (path, text)
                })
            })
            .collect()
    }

    fn production(&self) -> bool {
        privs::is_root() && !self.config.bool("development_mode")
    }

    fn set_permissions(&self) -> ExitCode {
        let owners = match postern_server::spool::owners(self.config) {
            Ok(o) => o,
            Err(e) => return self.say.fatal(&e, EX_CONFIG),
        };
        let queue_dir = self.config.path("queue_directory");
        let mut failed = false;
        match layout::repair(&queue_dir, &owners) {
            Ok(changed) => {
                for c in changed {
                    self.say.info(&c);
                }
            }
            Err(problems) => {
                for p in problems {
                    self.say.warn(&p.to_string());
                }
                failed = true;
            }
        }
        for (path, _) in self.setgid_problems(&owners) {
            let fixed = nix::unistd::chown(&path, None, Some(owners.setgid_gid))
                .map_err(std::io::Error::from)
                .and_then(|()| {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o2755))
                });
            match fixed {
                Ok(()) => self.say.info(&format!(
                    "{}: group {}, mode 2755",
                    path.display(),
                    owners.setgid_gid
                )),
                Err(e) => {
                    self.say.warn(&format!("{}: {e}", path.display()));
                    failed = true;
                }
            }
        }
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    }

    fn start(&self, foreground: bool) -> ExitCode {
        if let Some(pid) = self.running() {
            return self.say.fatal(
                &format!("the Postern mail system is already running (PID: {pid})"),
                1,
            );
        }
        let problems = self.config_problems();
        if !problems.is_empty() {
            for p in &problems {
                self.say.warn(p);
            }
            return self
                .say
                .fatal("configuration problems; the mail system was not started", 1);
        }
        let log = self.config.str("maillog_file");
        if !foreground && (log == "/dev/stderr" || log == "/dev/stdout") {
            self.say.warn(&format!(
                "maillog_file is {log}, which a background master does not have: \
                 its log will be lost; use postern start-fg"
            ));
        }
        self.say.info("starting the Postern mail system");
        let mut cmd = Command::new(self.master_program());
        cmd.args(self.master_args());
        if foreground {
            let e = cmd.exec();
            return self.say.fatal(
                &format!("cannot run {}: {e}", self.master_program().display()),
                1,
            );
        }
        cmd.arg("-w").stdin(Stdio::null()).stdout(Stdio::null());
        match cmd.status() {
            Ok(st) if st.success() => ExitCode::SUCCESS,
            Ok(_) => self.say.fatal("mail system startup failed", 1),
            Err(e) => self.say.fatal(
                &format!("cannot run {}: {e}", self.master_program().display()),
                1,
            ),
        }
    }

    fn stop(&self) -> ExitCode {
        let Some(pid) = self.running() else {
            return self.not_running();
        };
        self.say.info("stopping the Postern mail system");
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            return self.say.fatal(&format!("cannot signal PID {pid}: {e}"), 1);
        }
        self.wait_down(pid, STOP_WAIT)
    }

    fn abort(&self) -> ExitCode {
        let Some(pid) = self.running() else {
            return self.not_running();
        };
        self.say.info("aborting the Postern mail system");
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
            return self.say.fatal(&format!("cannot signal PID {pid}: {e}"), 1);
        }
        self.wait_down(pid, Duration::from_secs(5))
    }

    /// Waits until the pid-file lock is released.
    fn wait_down(&self, pid: i32, limit: Duration) -> ExitCode {
        let start = Instant::now();
        let mut told = false;
        while matches!(lock::holder(&self.pid_file), Ok(Some(_))) {
            if start.elapsed() >= limit {
                return self.say.fatal(
                    &format!("the Postern mail system (PID: {pid}) did not stop"),
                    1,
                );
            }
            if !told && start.elapsed() >= Duration::from_secs(2) {
                self.say
                    .info("waiting for the Postern mail system to terminate");
                told = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        ExitCode::SUCCESS
    }

    fn reload(&self) -> ExitCode {
        let Some(pid) = self.running() else {
            return self.not_running();
        };
        let problems = self.config_problems();
        if !problems.is_empty() {
            for p in &problems {
                self.say.warn(p);
            }
            return self.say.fatal(
                "configuration problems; the mail system was not refreshed",
                1,
            );
        }
        self.say.info("refreshing the Postern mail system");
        match kill(Pid::from_raw(pid), Signal::SIGHUP) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => self.say.fatal(&format!("cannot signal PID {pid}: {e}"), 1),
        }
    }

    fn status(&self) -> ExitCode {
        match self.running() {
            Some(pid) => {
                self.say
                    .info(&format!("the Postern mail system is running: PID: {pid}"));
                ExitCode::SUCCESS
            }
            None => {
                self.say.info("the Postern mail system is not running");
                ExitCode::from(1)
            }
        }
    }

    fn flush(&self) -> ExitCode {
        let queue_dir = self.config.path("queue_directory");
        match postern_ipc::trigger::send(&queue_dir, postern_ipc::service::QMGR, b"F") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => self.say.fatal(
                &format!("Cannot flush mail queue - mail system is down: {e}"),
                69,
            ),
        }
    }
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["postern", "-c", "/x", "set-permissions"]).unwrap();
        assert_eq!(cli.command, Cmd::SetPermissions);
        let cli = Cli::try_parse_from(["postern", "start-fg", "-o", "a=b"]).unwrap();
        assert_eq!(cli.command, Cmd::StartFg);
        assert_eq!(cli.overrides, ["a=b"]);
        assert!(Cli::try_parse_from(["postern", "explode"]).is_err());
    }
}
