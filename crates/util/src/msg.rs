//! Logging in Postfix's line shape (Postfix `msg.c`, `msg_syslog.c`, `logwriter.c`).
//!
//! Every line is `ident[pid]: text`, where the ident is `syslog_name/program`
//! (`postern/smtpd[1234]: 4Ab1Cd2Ef: client=localhost[127.0.0.1]`), so that
//! log tools written for Postfix (pflogsumm) read it. Warnings, errors,
//! fatal errors and panics carry Postfix's `warning: `, `error: `, `fatal: `
//! and `panic: ` prefixes.
//!
//! Lines go to one sink, chosen at [`init`]:
//! - syslog over the `/dev/log` datagram socket (RFC 3164 framing, the
//!   daemon adds the host name); the socket is connected at `init`, so a
//!   process that chroots afterwards keeps logging;
//! - a file (`maillog_file`), where each line carries its own time stamp
//!   and host name like a syslog file: `Nov 24 16:43:46 host postern/master[12]: ...`.
//!   `/dev/stderr` and `/dev/stdout` write to the inherited descriptors.
//!
//! When syslog cannot be reached the line goes to standard error instead, so
//! nothing is lost silently.

use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Longest text of one log line; longer text is cut (Postfix caps lines too).
const MAX_LINE: usize = 4096;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// Syslog over `/dev/log` with the given facility name (`mail`, `local0`, ...).
    Syslog(String),
    /// Syslog over another datagram socket (containers that relocate it,
    /// tests), with the facility name.
    SyslogAt(PathBuf, String),
    /// A plain file, appended to; `/dev/stderr` and `/dev/stdout` are the
    /// standard descriptors.
    File(PathBuf),
    /// Standard error, without syslog framing (tools before configuration).
    Stderr,
    /// Standard error as `program: text`, the way Postfix's command-line
    /// tools talk to a user (`postmap: warning: ...`).
    Terminal,
}

/// How serious a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Normal operation.
    Info,
    /// Something is wrong but the program continues.
    Warning,
    /// A failed operation that is reported and survived.
    Error,
    /// The program exits.
    Fatal,
    /// A broken invariant: a bug.
    Panic,
}

impl Level {
    /// Postfix's prefix for the level: `warning: `, or nothing for info.
    pub fn prefix(self) -> &'static str {
        match self {
            Level::Info => "",
            Level::Warning => "warning: ",
            Level::Error => "error: ",
            Level::Fatal => "fatal: ",
            Level::Panic => "panic: ",
        }
    }

    /// syslog(3) severity.
    fn severity(self) -> u8 {
        match self {
            Level::Info => 6,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Fatal | Level::Panic => 2,
        }
    }
}

enum Out {
    Syslog {
        path: PathBuf,
        sock: Option<UnixDatagram>,
        facility: u8,
    },
    File(File),
    Fd(i32),
    /// Standard error, prefixed with this program name only.
    Terminal(String),
}

struct Logger {
    ident: String,
    host: String,
    out: Out,
    verbose: bool,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

const SYSLOG_SOCKET: &str = "/dev/log";

/// Facility number of a syslog facility name, or `None` if unknown.
pub fn facility_code(name: &str) -> Option<u8> {
    let code = match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    };
    Some(code)
}

/// Sets up logging for this process as `syslog_name/program`.
///
/// Call again after reading the configuration to switch sinks; lines
/// logged before the first call go to standard error.
pub fn init(syslog_name: &str, program: &str, sink: &Sink) -> io::Result<()> {
    let out = match sink {
        Sink::Syslog(facility) => syslog_out(Path::new(SYSLOG_SOCKET), facility)?,
        Sink::SyslogAt(path, facility) => syslog_out(path, facility)?,
        Sink::File(path) => open_file(path)?,
        Sink::Stderr => Out::Fd(2),
        Sink::Terminal => Out::Terminal(program.to_string()),
    };
    let ident = if syslog_name.is_empty() {
        program.to_string()
    } else {
        format!("{syslog_name}/{program}")
    };
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .map(|h| h.split('.').next().unwrap_or("localhost").to_string())
        .unwrap_or_else(|| "localhost".to_string());
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let verbose = guard.as_ref().is_some_and(|l| l.verbose);
    *guard = Some(Logger {
        ident,
        host,
        out,
        verbose,
    });
    Ok(())
}

/// Turns debug (`-v`) logging on or off.
pub fn set_verbose(on: bool) {
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = guard.as_mut() {
        l.verbose = on;
    }
}

/// Whether verbose logging is on.
pub fn verbose() -> bool {
    let guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().is_some_and(|l| l.verbose)
}

fn open_file(path: &Path) -> io::Result<Out> {
    match path.to_str() {
        Some("/dev/stderr") => return Ok(Out::Fd(2)),
        Some("/dev/stdout") => return Ok(Out::Fd(1)),
        _ => {}
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    Ok(Out::File(file))
}

fn syslog_out(path: &Path, facility: &str) -> io::Result<Out> {
    let code = facility_code(facility).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown syslog facility: {facility}"),
        )
    })?;
    Ok(Out::Syslog {
        path: path.to_path_buf(),
        sock: connect_syslog(path),
        facility: code,
    })
}

fn connect_syslog(path: &Path) -> Option<UnixDatagram> {
    let sock = UnixDatagram::unbound().ok()?;
    sock.connect(path).ok()?;
    Some(sock)
}

/// Cleans text for one log line: control characters become `?` like
/// Postfix's `printable()`, and the length is capped on a char boundary.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_LINE));
    for c in text.chars() {
        if out.len() + c.len_utf8() > MAX_LINE {
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    out
}

/// This process's ID, asked once: glibc's `getpid` is a system call at
/// every use, and every log line, status update and file name wants it.
pub fn pid() -> u32 {
    match PID.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            PID.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

static PID: AtomicU32 = AtomicU32::new(0);

/// Forgets the cached ID: the child of a `fork` that goes on running
/// this program (not one that execs) calls it first.
pub(crate) fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// Logs one line at `level`. Lines are whole: one `write` each.
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    let text = sanitize(&format!("{}{}", level.prefix(), args));
    let pid = pid();
    // Before the lock: twenty qmgr threads log.
    let stamp = stamp();
    let mut guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let Some(logger) = guard.as_mut() else {
        let _ = write_fd(2, format!("postern[{pid}]: {text}\n").as_bytes());
        return;
    };
    match &mut logger.out {
        Out::Syslog {
            path,
            sock,
            facility,
        } => {
            let pri = *facility as u16 * 8 + level.severity() as u16;
            let line = format!("<{pri}>{stamp} {}[{pid}]: {text}", logger.ident);
            if !send_syslog(path, sock, line.as_bytes()) {
                let line = format!("{stamp} {} {}[{pid}]: {text}\n", logger.host, logger.ident);
                let _ = write_fd(2, line.as_bytes());
            }
        }
        Out::File(file) => {
            let line = format!("{stamp} {} {}[{pid}]: {text}\n", logger.host, logger.ident);
            if file.write_all(line.as_bytes()).is_err() {
                let _ = write_fd(2, line.as_bytes());
            }
        }
        Out::Fd(fd) => {
            let line = format!("{stamp} {} {}[{pid}]: {text}\n", logger.host, logger.ident);
            let _ = write_fd(*fd, line.as_bytes());
        }
        Out::Terminal(program) => {
            let _ = write_fd(2, format!("{program}: {text}\n").as_bytes());
        }
    }
}

/// Now as a log time stamp (`Dec  7 22:05:33`), made once a second per
/// thread: a zone conversion and a strftime cost more than the rest of a
/// log line.
fn stamp() -> String {
    thread_local! {
        static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let now = jiff::Timestamp::now();
    let second = now.as_second();
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        if last.0 != second {
            let text = now
                .to_zoned_datetime(crate::time::local_zone())
                .strftime("%b %e %H:%M:%S")
                .to_string();
            *last = (second, text);
        }
        last.1.clone()
    })
}

/// Sends to syslog, reconnecting once if the daemon restarted.
fn send_syslog(path: &Path, sock: &mut Option<UnixDatagram>, line: &[u8]) -> bool {
    if let Some(s) = sock.as_ref()
        && s.send(line).is_ok()
    {
        return true;
    }
    *sock = connect_syslog(path);
    sock.as_ref().is_some_and(|s| s.send(line).is_ok())
}

fn write_fd(fd: i32, bytes: &[u8]) -> io::Result<()> {
    // std's handles write whole buffers (retrying short writes), so a line
    // is not interleaved with another process's line in practice.
    if fd == 1 {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    } else {
        io::stderr().lock().write_all(bytes)
    }
}

/// Logs an informational line: `info!("{id}: from=<{sender}>")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::msg::log($crate::msg::Level::Info, format_args!($($arg)*)) };
}

/// Logs a line only when verbose logging (`-v`) is on.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::msg::verbose() {
            $crate::msg::log($crate::msg::Level::Info, format_args!($($arg)*))
        }
    };
}

/// Logs a `warning: ` line.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::msg::log($crate::msg::Level::Warning, format_args!($($arg)*)) };
}

/// Logs an `error: ` line.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::msg::log($crate::msg::Level::Error, format_args!($($arg)*)) };
}

/// Logs a `fatal: ` line and exits with status 1 (master restarts daemons
/// that die this way, with backoff).
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        $crate::msg::log($crate::msg::Level::Fatal, format_args!($($arg)*));
        ::std::process::exit(1)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The logger is process-wide: tests that set it take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn sanitize_replaces_controls_and_caps() {
        assert_eq!(sanitize("a\nb\tc\u{7f}"), "a?b?c?");
        let long = "é".repeat(MAX_LINE);
        let s = sanitize(&long);
        assert!(s.len() <= MAX_LINE);
        assert!(s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_time_stamp_is_syslog_style_and_follows_the_clock() {
        let shape = |s: &str| {
            let b = s.as_bytes();
            b.len() == 15 && b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':'
        };
        let a = stamp();
        assert!(shape(&a), "{a:?}");
        let now = || {
            crate::time::now_local()
                .strftime("%b %e %H:%M:%S")
                .to_string()
        };
        // Equal to a fresh one unless a second ticked in between.
        for _ in 0..3 {
            let (before, got, after) = (now(), stamp(), now());
            assert!(
                got == before || got == after,
                "{got:?} {before:?} {after:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(400));
        }
    }

    #[test]
    fn facilities() {
        assert_eq!(facility_code("mail"), Some(2));
        assert_eq!(facility_code("LOCAL7"), Some(23));
        assert_eq!(facility_code("nope"), None);
    }

    #[test]
    fn syslog_sink_sends_rfc3164_with_mail_facility() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        init(
            "postern",
            "qmgr",
            &Sink::SyslogAt(path.clone(), "mail".into()),
        )
        .unwrap();
        warn!("queue file size limit exceeded");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        // facility mail (2) * 8 + warning (4) = 20
        assert!(got.starts_with("<20>"), "{got}");
        let pid = pid();
        assert!(
            got.ends_with(&format!(
                " postern/qmgr[{pid}]: warning: queue file size limit exceeded"
            )),
            "{got}"
        );
        // A restarted syslog daemon (new socket at the same path) is
        // reconnected to.
        drop(server);
        std::fs::remove_file(&path).unwrap();
        let server = UnixDatagram::bind(&path).unwrap();
        info!("after restart");
        let n = server.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).ends_with("after restart"));
    }

    #[test]
    fn file_sink_writes_postfix_shape() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("maillog");
        init("postern", "smtpd", &Sink::File(path.clone())).unwrap();
        info!("4Ab1Cd2Ef: client=localhost[127.0.0.1]");
        warn!("disk {}", "full");
        let text = std::fs::read_to_string(&path).unwrap();
        let pid = pid();
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        assert!(
            first.ends_with(&format!(
                " postern/smtpd[{pid}]: 4Ab1Cd2Ef: client=localhost[127.0.0.1]"
            )),
            "{first}"
        );
        // "Nov 24 16:43:46 host ..." : month, day, time, host.
        let fields: Vec<&str> = first.split_whitespace().collect();
        assert_eq!(fields[2].len(), 8, "{first}");
        assert!(
            lines
                .next()
                .unwrap()
                .ends_with(&format!("postern/smtpd[{pid}]: warning: disk full"))
        );
    }
}
