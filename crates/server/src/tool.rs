//! What the command-line tools share (postqueue, postsuper, postdrop,
//! sendmail, postern): talking to the user on standard error as
//! `program: text`, and to the mail log as well once the configuration
//! names it (Postfix's `msg_vstream` plus `maillog_client`).
//!
//! A tool calls [`init`] first, [`start_logging`] after loading its
//! configuration, then [`say`] or [`die`]. Lines logged with the
//! `postern_util` macros go to standard error until [`start_logging`].

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use postern_config::Config;
use postern_util::msg::{self, Level, Sink};
use postern_util::sysexits::{EX_USAGE, exit_code};

static PROGRAM: OnceLock<String> = OnceLock::new();

/// Whether lines also go to the mail log (they always go to stderr).
static LOGGING: AtomicBool = AtomicBool::new(false);

/// Names the tool (`postsuper`) for its messages and log lines.
pub fn init(program: &str) {
    let _ = PROGRAM.set(program.to_string());
    let _ = msg::init("postern", program, &Sink::Stderr);
}

fn program() -> &'static str {
    PROGRAM.get().map_or("postern", String::as_str)
}

/// Logs as `syslog_name/program` where the configuration says too, unless
/// that is standard error (the user sees the messages there anyway) or
/// cannot be opened by this user (a root-owned `maillog_file`). Returns
/// whether [`say`] now writes to the mail log as well.
pub fn start_logging(config: &Config) -> bool {
    let syslog_name = config.str("syslog_name");
    let on = if config.str("maillog_file") == "/dev/stderr" {
        let _ = msg::init(&syslog_name, program(), &Sink::Stderr);
        false
    } else {
        crate::init_logging(program(), config).is_ok()
    };
    LOGGING.store(on, Ordering::Relaxed);
    on
}

/// Whether [`say`] writes to the mail log too.
pub fn logging() -> bool {
    LOGGING.load(Ordering::Relaxed)
}

/// Tells the user (`postsuper: warning: text`) and the mail log.
pub fn say(level: Level, text: &str) {
    eprintln!("{}: {}{text}", program(), level.prefix());
    if logging() {
        msg::log(level, format_args!("{text}"));
    }
}

/// Says `text` as fatal and exits with `code` (a sysexits status).
pub fn die(code: i32, text: &str) -> ! {
    say(Level::Fatal, text);
    std::process::exit(code)
}

/// Parses `argv` (program name first) with clap. On an error, or for
/// `--help`, clap's text is printed and the status to exit with is
/// returned: `EX_USAGE` for a usage error, 0 for help.
pub fn parse_args<C: clap::Parser>(
    argv: impl IntoIterator<Item = OsString>,
) -> Result<C, ExitCode> {
    C::try_parse_from(argv).map_err(|e| {
        let code = if e.use_stderr() { EX_USAGE } else { 0 };
        let _ = e.print();
        exit_code(code)
    })
}
